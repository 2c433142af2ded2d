// Part 4b: the spread of background refreshes over time: accounts created
// at once, read steadily in the background while the other parts run, their
// refreshes counted per 10 s.

package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

type spreadResult struct {
	Accounts       int
	TTL            time.Duration
	ReadEvery      time.Duration
	CreateSeconds  float64
	CreateErrors   int
	FirstRefreshAt float64 // seconds after creation began
	WindowSeconds  float64
	Buckets        []int64 // refreshes per 10 s from the first refresh
	Total          int64
	Busiest        int64
	Mean           float64
	Ratio          float64
	AllDoneAfter   float64 // seconds from the first refresh until every account had refreshed once
	ReadErrors     int64
	ReadFirstErr   string
	Timeline       []int64 // refreshes per 10 s from the start of creation
	// Runs of the periodic function seen (zoho_periodic_runs_total grew),
	// seconds after creation began, and the refreshes in the 2 s before
	// each was seen (the counter grows at the end of a run, after the
	// refreshes it started).
	PeriodicAt        []float64
	PeriodicRefreshes []int64
}

type spreadRun struct {
	done chan struct{}
	err  error
}

func (r *spreadRun) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

const bucket = 10 * time.Second

// startSpread creates the accounts (as fast as the engine takes them: every
// token is minted within the creation time) and observes their refreshes in
// the background while other parts run.
func (b *bench) startSpread(ctx context.Context) (*spreadRun, error) {
	n := b.set.SpreadAccounts
	logf("refresh spread: creating %d accounts with a %s token lifetime", n, b.set.SpreadTTL)
	c := b.client()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("spread-%04d", i)
	}
	t0 := time.Now()
	failed, err := parallel(ctx, n, b.set.CreateLimit, func(ctx context.Context, i int) error {
		_, err := b.createAccount(ctx, c, b.simSpread, names[i])
		return err
	})
	res := &b.res.Spread
	res.Accounts, res.TTL, res.ReadEvery = n, b.set.SpreadTTL, b.set.SpreadReadEvery
	res.CreateSeconds = time.Since(t0).Seconds()
	res.CreateErrors = failed
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d accounts not created: %v", failed, n, err)
	}
	logf("  created in %.1f s; observing in the background", res.CreateSeconds)
	run := &spreadRun{done: make(chan struct{})}
	go func() {
		defer close(run.done)
		run.err = b.observeSpread(ctx, names, t0)
	}()
	return run, nil
}

func (b *bench) observeSpread(ctx context.Context, names []string, t0 time.Time) error {
	res := &b.res.Spread
	n := len(names)
	ttl := b.set.SpreadTTL
	// One token lifetime from the first refresh: every account in use
	// refreshes at least once in it, whatever the engine's refresh policy,
	// and a steady state would spread those refreshes evenly. Whole buckets.
	window := ttl / bucket * bucket
	nb := int(window / bucket)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Readers: every account read once per ReadEvery, evenly spaced.
	jobs := make(chan int, 64)
	var rwg sync.WaitGroup
	var rmu sync.Mutex
	for w := 0; w < 8; w++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			c := b.client()
			for i := range jobs {
				rctx, rcancel := context.WithTimeout(sctx, 30*time.Second)
				err := readRaw(rctx, c, "zoho/creds/"+names[i])
				rcancel()
				if err != nil && sctx.Err() == nil {
					rmu.Lock()
					res.ReadErrors++
					if res.ReadFirstErr == "" {
						res.ReadFirstErr = err.Error()
					}
					rmu.Unlock()
				}
			}
		}()
	}
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		defer close(jobs)
		interval := b.set.SpreadReadEvery / time.Duration(n)
		next := time.Now()
		for i := 0; ; i++ {
			select {
			case jobs <- i % n:
			case <-sctx.Done():
				return
			}
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				if sleepCtx(sctx, d) != nil {
					return
				}
			}
		}
	}()

	// Poll the simulator's refresh counter and the engine's count of
	// periodic runs.
	type point struct {
		at   time.Time
		n    int64
		runs float64
	}
	mc := b.client()
	runs := func() float64 {
		mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
		defer mcancel()
		v, _ := metricFloat(mctx, mc, "zoho/metrics", "zoho_periodic_runs_total")
		return v
	}
	base := b.simSpread.Counters().Refreshes
	points := []point{{time.Now(), base, runs()}}
	var first time.Time
	hardStop := t0.Add(ttl + window + time.Minute)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			rwg.Wait()
			return ctx.Err()
		case <-tick.C:
		}
		now := time.Now()
		cur := b.simSpread.Counters().Refreshes
		if first.IsZero() && cur > points[len(points)-1].n {
			first = points[len(points)-1].at // it happened after the previous poll
		}
		points = append(points, point{now, cur, runs()})
		if (!first.IsZero() && now.After(first.Add(window+time.Second))) || now.After(hardStop) {
			break
		}
	}
	cancel()
	rwg.Wait()
	if first.IsZero() {
		return fmt.Errorf("no refresh seen within %s of creating the accounts", time.Since(t0).Round(time.Second))
	}
	res.FirstRefreshAt = first.Sub(t0).Seconds()
	res.WindowSeconds = window.Seconds()
	res.Buckets = make([]int64, nb)
	res.AllDoneAfter = -1
	for i := 1; i < len(points); i++ {
		d := points[i].n - points[i-1].n
		if d == 0 {
			continue
		}
		at := points[i].at.Add(-time.Nanosecond)
		if k := int(at.Sub(first) / bucket); k >= 0 && k < nb {
			res.Buckets[k] += d
		}
		if k := int(at.Sub(t0) / bucket); k >= 0 {
			for len(res.Timeline) <= k {
				res.Timeline = append(res.Timeline, 0)
			}
			res.Timeline[k] += d
		}
		if res.AllDoneAfter < 0 && points[i].n-base >= int64(n) {
			res.AllDoneAfter = points[i].at.Sub(first).Seconds()
		}
	}
	for i := 1; i < len(points); i++ {
		if points[i].runs <= points[i-1].runs {
			continue
		}
		var near int64
		for j := i; j > 0 && points[i].at.Sub(points[j].at) < 2*time.Second; j-- {
			near += points[j].n - points[j-1].n
		}
		res.PeriodicAt = append(res.PeriodicAt, points[i].at.Sub(t0).Seconds())
		res.PeriodicRefreshes = append(res.PeriodicRefreshes, near)
	}
	for _, v := range res.Buckets {
		res.Total += v
		if v > res.Busiest {
			res.Busiest = v
		}
	}
	if nb > 0 {
		res.Mean = float64(res.Total) / float64(nb)
	}
	if res.Mean > 0 {
		res.Ratio = float64(res.Busiest) / res.Mean
	}
	logf("refresh spread: %d refreshes in the %s window after the first; busiest 10 s %d, mean %.1f, ratio %.2f",
		res.Total, window, res.Busiest, res.Mean, res.Ratio)
	return nil
}
