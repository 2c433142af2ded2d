// Part 3, lease ends at a lifetime where the engine spreads them as designed.
// With part 3's 20-second tokens an hour of lease ends is compressed into
// seconds (the spread window is a twentieth of the lifetime, at least 1 s),
// so that measurement is informational. Here one account's tokens live long
// enough (20 minutes in a full run) that the window is a minute or more. A
// lease's end depends only on the token's expiry and the lease's number, not
// on when it was read, so the leases are taken early (when the dev server
// starts) and the latency is measured later, when their ends come, between
// other parts: at the same open-loop rate, over a steady stretch before the
// ends and through them.

package main

import (
	"context"
	"fmt"
	"time"
)

// leaseEndResult is the lease-end measurement.
type leaseEndResult struct {
	TTL, Window, Margin time.Duration // the token lifetime and the engine's spread window and margin for it
	Rate                float64
	Take                time.Duration
	TakeReads           int
	TakeErrors          int
	TakeFirstErr        string
	Leases              int           // leases taken with a known end
	FirstEnd, LastEnd   time.Duration // from the account's creation, whole seconds
	Start               time.Duration // the measurement's start, from the account's creation
	Waited              time.Duration // how long the run waited for it, with no part running
	Before              string        // the part it ran before ("" = after the last)
	SinceOtherPart      time.Duration // from the end of the part before it to its start
	Steady              time.Duration // the steady stretch before the ends (warm-up excluded)

	Reads, Errors      int
	FirstErr           string
	SteadyN, EndsN     int
	SteadyP50, EndsP50 time.Duration
	SteadyP99, EndsP99 time.Duration
	Ratio              float64
	EndSeconds         int     // seconds from the first end to the last
	MaxEnds            int64   // most lease ends in one of them
	MeanEnds           float64 // lease ends per second over them
	PerSecond          []int64 // lease ends per second from the measurement's start to its end
	Refreshes          int     // refreshes of the account's token during the measurement
	NearRefresh        int     // reads set aside within ±1 s of one
	OtherCores         float64
	Err                string
}

// leaseEndRun is the state between taking the leases and measuring.
type leaseEndRun struct {
	a        account
	origin   time.Time
	taken    []timedRead
	measure  time.Time // when the measurement starts
	done     bool
	lastPart time.Time // when the part before the measurement ended
}

// leaseEndWarm is the start of the measurement that is not counted.
const leaseEndWarm = 2 * time.Second

// startLeaseEnd creates the account and takes its leases; nil when part 3
// does not run.
func (b *bench) startLeaseEnd(ctx context.Context) (*leaseEndRun, error) {
	res := &b.res.LeaseEnd
	res.TTL, res.Rate, res.Take = b.set.LeaseEndTTL, b.set.LeaseEndRate, b.set.LeaseEndTake
	res.Window, res.Margin = leaseSpreadOf(res.TTL), leaseMarginOf(res.TTL)
	logf("part 3 (lease ends): one account with %s tokens (lease-end window %s), taking its leases at %.0f reads/s for %s", res.TTL, res.Window, res.Rate, res.Take)
	c := b.client()
	origin := time.Now()
	a, err := b.createAccount(ctx, c, b.simLeaseEnd, "leaseend")
	if err != nil {
		return nil, err
	}
	reads, firstErr := openLoop(ctx, c, "zoho/creds/"+a.name, res.Rate, res.Take, origin)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res.TakeFirstErr = firstErr
	first, last := time.Duration(-1), time.Duration(0)
	for _, r := range reads {
		res.TakeReads++
		if r.err {
			res.TakeErrors++
			continue
		}
		if r.leaseEnd <= 0 {
			continue
		}
		res.Leases++
		if first < 0 || r.leaseEnd < first {
			first = r.leaseEnd
		}
		last = max(last, r.leaseEnd)
	}
	if res.Leases == 0 {
		return nil, fmt.Errorf("no lease taken (%d reads, %d errors: %s)", res.TakeReads, res.TakeErrors, firstErr)
	}
	res.FirstEnd, res.LastEnd = first.Truncate(time.Second), last.Truncate(time.Second)
	res.Steady = b.set.LeaseEndSteady
	run := &leaseEndRun{a: a, origin: origin, taken: reads, measure: origin.Add(res.FirstEnd - res.Steady - leaseEndWarm)}
	logf("  %d leases taken (%d errors); they end %.0f–%.0f s after the account was created; measuring from %.0f s (%s)",
		res.Leases, res.TakeErrors, res.FirstEnd.Seconds(), res.LastEnd.Seconds(), run.measure.Sub(origin).Seconds(), run.measure.Format("15:04:05"))
	return run, nil
}

// leaseEndBefore runs the lease-end measurement before the part named next
// if that part, taking about est, would not end before the measurement is
// due (waiting for it when early); est < 0: run it now in any case.
func (b *bench) leaseEndBefore(ctx context.Context, run *leaseEndRun, next string, est time.Duration) error {
	if run == nil || run.done {
		return nil
	}
	run.lastPart = time.Now()
	if est >= 0 && time.Now().Add(est).Before(run.measure) {
		return nil
	}
	run.done = true
	res := &b.res.LeaseEnd
	res.Before = next
	if d := time.Until(run.measure); d > 0 {
		logf("part 3 (lease ends): waiting %.0f s for the lease ends, before %s", d.Seconds(), orText(next, "the end of the dev-server parts"))
		res.Waited = d
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
	if err := b.measureLeaseEnds(ctx, run); err != nil {
		res.Err = err.Error()
		logf("  lease ends: %v", err)
	}
	return ctx.Err()
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// measureLeaseEnds reads at the same rate from now until the last lease has
// ended and classes the reads: before the first end (steady) and in the
// seconds from the first end to the last (at lease ends).
func (b *bench) measureLeaseEnds(ctx context.Context, run *leaseEndRun) error {
	res := &b.res.LeaseEnd
	start := time.Since(run.origin)
	res.Start = start
	res.SinceOtherPart = time.Since(run.lastPart)
	end := res.LastEnd + time.Second + time.Second // through the last end's second
	if start > res.FirstEnd-leaseEndWarm-5*time.Second {
		return fmt.Errorf("too late: the measurement could only start %.0f s after the account was created, and its leases began to end at %.0f s", start.Seconds(), res.FirstEnd.Seconds())
	}
	res.Steady = res.FirstEnd - start - leaseEndWarm
	logf("part 3 (lease ends): %.0f reads/s from %.0f s to %.0f s after the account was created; its leases end from %.0f s", res.Rate, start.Seconds(), end.Seconds(), res.FirstEnd.Seconds())
	c := b.client()
	a := run.a
	stopWatch := watchRefreshes(ctx, a, run.origin)
	cpu0 := snapCPU(b.pids)
	reads, firstErr := openLoop(ctx, c, "zoho/creds/"+a.name, res.Rate, end-start, run.origin)
	res.OtherCores = cpu0.to(snapCPU(b.pids)).otherCores()
	refreshes := stopWatch()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.FirstErr = firstErr
	res.Refreshes = len(refreshes)

	// Lease ends per second, from every answer of this account (the
	// measurement's own reads may add ends in the window while the token
	// they get is the one whose leases end).
	from, upto := int(start/time.Second), int(end/time.Second)
	per := make([]int64, max(0, upto-from))
	for _, set := range [][]timedRead{run.taken, reads} {
		for _, r := range set {
			if r.err || r.leaseEnd <= 0 {
				continue
			}
			if k := int(r.leaseEnd/time.Second) - from; k >= 0 && k < len(per) {
				per[k]++
			}
		}
	}
	res.PerSecond = per
	first, last := int(res.FirstEnd/time.Second)-from, int(res.LastEnd/time.Second)-from
	var sum int64
	for k := first; k <= last && k < len(per); k++ {
		if k < 0 {
			continue
		}
		sum += per[k]
		res.MaxEnds = max(res.MaxEnds, per[k])
	}
	res.EndSeconds = last - first + 1
	res.MeanEnds = float64(sum) / float64(max(1, res.EndSeconds))

	nearRefresh := func(at time.Duration) bool {
		for _, r := range refreshes {
			if at >= r-refreshHalfWindow && at <= r+refreshHalfWindow {
				return true
			}
		}
		return false
	}
	var steady, ends []time.Duration
	for _, r := range reads {
		res.Reads++
		if r.err {
			res.Errors++
			continue
		}
		if r.at < start+leaseEndWarm {
			continue
		}
		k := int(r.at/time.Second) - from
		inEnds := k >= first && k <= last
		if !inEnds && r.at >= res.FirstEnd {
			continue // after the last end
		}
		if nearRefresh(r.at) {
			res.NearRefresh++
			continue
		}
		if inEnds {
			ends = append(ends, r.lat)
		} else {
			steady = append(steady, r.lat)
		}
	}
	ss, se := summarise(steady, 0, 0, ""), summarise(ends, 0, 0, "")
	res.SteadyN, res.SteadyP50, res.SteadyP99 = ss.N, ss.P50, ss.P99
	res.EndsN, res.EndsP50, res.EndsP99 = se.N, se.P50, se.P99
	if ss.P99 > 0 {
		res.Ratio = float64(se.P99) / float64(ss.P99)
	}
	logf("  lease ends: %d reads, %d errors; %d lease-end seconds, up to %d ends a second (mean %.1f); p99 %.2f ms at lease ends (n=%d) vs %.2f ms steady (n=%d): %.2f; %d refreshes (%d reads set aside); other load %.2f cores",
		res.Reads, res.Errors, res.EndSeconds, res.MaxEnds, res.MeanEnds, ms(res.EndsP99), res.EndsN, ms(res.SteadyP99), res.SteadyN, res.Ratio, res.Refreshes, res.NearRefresh, res.OtherCores)
	return nil
}

// The engine's timing at a token lifetime (backend/timing.go): the margin
// before expiry at which every lease has ended (lifetime/20, 1 s to 1 min)
// and the window before that over which one token's leases end
// (lifetime/20, 1 s to 5 min).
func leaseMarginOf(lifetime time.Duration) time.Duration {
	return min(max(lifetime/20, time.Second), time.Minute)
}

func leaseSpreadOf(lifetime time.Duration) time.Duration {
	return min(max(lifetime/20, time.Second), 5*time.Minute)
}

// Rough durations of the dev-server parts, to plan the lease-end
// measurement between them (a quarter added for a slow machine).
func (b *bench) estimate(part string) time.Duration {
	s := b.set
	var d time.Duration
	switch part {
	case "leases":
		d = 30 * time.Second
	case "boundary":
		d = s.BoundaryDuration + 30*time.Second
	case "bursts":
		d = time.Duration(s.BurstLifetimes+2)*s.ShortTTL + 30*time.Second
	case "spread":
		d = time.Duration(s.SpreadAccounts)*5*time.Millisecond + 2*s.SpreadTTL + 30*time.Second
	}
	return d + d/4
}
