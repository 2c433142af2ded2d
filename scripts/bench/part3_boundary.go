// Part 3: read latency across refresh boundaries: a steady open-loop read
// rate on one account with short-lived tokens, p99 near refreshes and near
// the moments Vault revokes many of the part's leases ÷ p99 elsewhere. When
// leases end is read from the answers themselves (lease_duration), so the
// part follows whatever the engine does to spread them.

package main

import (
	"context"
	"sort"
	"time"
)

type boundaryResult struct {
	Rate                   float64
	Seconds                float64
	TTL                    time.Duration
	Reads, Errors          int
	FirstErr               string
	Refreshes              int
	RefreshN, QuietN       int
	LeaseN                 int
	RefreshP50, RefreshP99 time.Duration
	QuietP50, QuietP99     time.Duration
	LeaseP50, LeaseP99     time.Duration
	RefreshOnlyP99         time.Duration // across a refresh and not at lease ends
	RefreshOnlyN           int
	AllP50, AllP99         time.Duration
	Ratio, LeaseRatio      float64
	OtherCores             float64 // other processes' load meanwhile
	Slowest                []slowSecond
	Created                time.Duration   // when the account's first token was minted (config write answered)
	RefreshesAtLeaseEnd    int             // refreshes that fell inside a lease-end window
	RefreshAt              []time.Duration // when the simulator saw each refresh

	// Lease ends of the part's own reads, per whole second from the part's
	// start, up to the end of the reads.
	LeaseEndsPerSecond []int64
	LeaseEnds          int64 // leases of the part that ended while it read
	BurstMin           int   // lease ends in a second that make it a burst
	BurstSeconds       int   // seconds with at least BurstMin lease ends
	BusiestEnds        int64 // most lease ends in one second
}

// slowSecond is one second of part 3 with its slowest read, placed relative
// to the nearest refresh and the nearest end of a token's leases.
type slowSecond struct {
	At, Max               time.Duration
	Reads                 int
	ToRefresh, ToLeaseEnd time.Duration // signed: negative = before it
}

// slowestSeconds bins reads by start second and returns the n seconds with
// the slowest reads; bursts are the starts of the seconds with many lease
// ends.
func slowestSeconds(reads []timedRead, from time.Duration, refreshes, bursts []time.Duration, n int) []slowSecond {
	bins := map[int]*slowSecond{}
	for _, r := range reads {
		if r.err || r.at < from {
			continue
		}
		k := int(r.at / time.Second)
		b := bins[k]
		if b == nil {
			b = &slowSecond{At: time.Duration(k) * time.Second}
			bins[k] = b
		}
		b.Reads++
		if r.lat > b.Max {
			b.Max = r.lat
		}
	}
	nearest := func(at time.Duration, marks []time.Duration) time.Duration {
		best := time.Duration(1<<62 - 1)
		for _, m := range marks {
			if d := at - m; absDur(d) < absDur(best) {
				best = d
			}
		}
		return best
	}
	var ends []time.Duration
	for _, k := range bursts {
		ends = append(ends, k+time.Second/2)
	}
	var all []slowSecond
	for _, b := range bins {
		mid := b.At + time.Second/2
		b.ToRefresh, b.ToLeaseEnd = nearest(mid, refreshes), nearest(mid, ends)
		all = append(all, *b)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Max > all[j].Max })
	if len(all) > n {
		all = all[:n]
	}
	return all
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

const (
	refreshHalfWindow = time.Second // reads within ±1 s of a refresh
	leaseHalfWindow   = time.Second // reads within ±1 s of a second with a burst of lease ends
	// burstShare: a second in which at least this share of the part's read
	// rate of its leases end holds a burst of lease ends (Vault revokes each
	// lease at its end, one revocation and one plugin call each).
	burstShare = 0.25
)

// leaseEndBursts counts the lease ends of reads per whole second from the
// origin, up to (not including) second upto, and returns the counts and the
// starts of the seconds with at least min of them.
func leaseEndBursts(reads []timedRead, upto time.Duration, min int) ([]int64, []time.Duration) {
	n := int(upto / time.Second)
	if n < 0 {
		n = 0
	}
	per := make([]int64, n)
	for _, r := range reads {
		if r.err || r.leaseEnd <= 0 {
			continue
		}
		if k := int(r.leaseEnd / time.Second); k < n {
			per[k]++
		}
	}
	var bursts []time.Duration
	for k, c := range per {
		if c >= int64(min) {
			bursts = append(bursts, time.Duration(k)*time.Second)
		}
	}
	return per, bursts
}

func (b *bench) partBoundary(ctx context.Context) error {
	ttl := b.set.ShortTTL
	logf("part 3: steady %.0f reads/s for %s on one account, token lifetime %s", b.set.BoundaryRate, b.set.BoundaryDuration, ttl)
	c := b.client()
	origin := time.Now()
	a, err := b.createAccount(ctx, c, b.simShort, "boundary")
	if err != nil {
		return err
	}
	mints := []time.Duration{time.Since(origin)}
	stopWatch := watchRefreshes(ctx, a, origin)
	loopStart := time.Since(origin)
	cpu0 := snapCPU(b.pids)
	reads, firstErr := openLoop(ctx, c, "zoho/creds/"+a.name, b.set.BoundaryRate, b.set.BoundaryDuration, origin)
	otherCores := cpu0.to(snapCPU(b.pids)).otherCores()
	refreshes := stopWatch()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	mints = append(mints, refreshes...)
	// The seconds in which many of the part's leases end, from the answers.
	var last time.Duration
	for _, r := range reads {
		last = max(last, r.at+r.lat)
	}
	burstMin := max(1, int(burstShare*b.set.BoundaryRate))
	perSecond, bursts := leaseEndBursts(reads, last, burstMin)
	inRefresh := func(at time.Duration) bool {
		for _, r := range refreshes {
			if at >= r-refreshHalfWindow && at <= r+refreshHalfWindow {
				return true
			}
		}
		return false
	}
	// Within ±1 s of a second with a burst of lease ends.
	inLeaseEnd := func(at time.Duration) bool {
		for _, k := range bursts {
			if at >= k-leaseHalfWindow && at < k+time.Second+leaseHalfWindow {
				return true
			}
		}
		return false
	}
	var all, refresh, quiet, lease, refreshOnly []time.Duration
	res := boundaryResult{Rate: b.set.BoundaryRate, Seconds: b.set.BoundaryDuration.Seconds(), TTL: ttl, Refreshes: len(refreshes), FirstErr: firstErr, OtherCores: otherCores}
	for _, r := range reads {
		res.Reads++
		if r.err {
			res.Errors++
			continue
		}
		if r.at < loopStart+2*time.Second {
			continue // warm-up
		}
		all = append(all, r.lat)
		// A token's refresh comes while the leases of the token before it
		// end, so the two windows overlap: a read in both counts in both.
		rf, le := inRefresh(r.at), inLeaseEnd(r.at)
		if le {
			lease = append(lease, r.lat)
		}
		if rf {
			refresh = append(refresh, r.lat)
			if !le {
				refreshOnly = append(refreshOnly, r.lat)
			}
		}
		if !le && !rf {
			quiet = append(quiet, r.lat)
		}
	}
	res.RefreshAt = append(res.RefreshAt, refreshes...)
	res.Created = mints[0]
	for _, r := range refreshes {
		if inLeaseEnd(r) {
			res.RefreshesAtLeaseEnd++
		}
	}
	res.LeaseEndsPerSecond, res.BurstMin, res.BurstSeconds = perSecond, burstMin, len(bursts)
	for _, c := range perSecond {
		res.LeaseEnds += c
		res.BusiestEnds = max(res.BusiestEnds, c)
	}
	res.Slowest = slowestSeconds(reads, loopStart+2*time.Second, refreshes, bursts, 3)
	sa, sr, sq, sl := summarise(all, 0, 0, ""), summarise(refresh, 0, 0, ""), summarise(quiet, 0, 0, ""), summarise(lease, 0, 0, "")
	res.AllP50, res.AllP99 = sa.P50, sa.P99
	res.RefreshP50, res.RefreshP99, res.RefreshN = sr.P50, sr.P99, sr.N
	res.QuietP50, res.QuietP99, res.QuietN = sq.P50, sq.P99, sq.N
	res.LeaseP50, res.LeaseP99, res.LeaseN = sl.P50, sl.P99, sl.N
	so := summarise(refreshOnly, 0, 0, "")
	res.RefreshOnlyP99, res.RefreshOnlyN = so.P99, so.N
	if sq.P99 > 0 {
		res.Ratio = float64(sr.P99) / float64(sq.P99)
		res.LeaseRatio = float64(sl.P99) / float64(sq.P99)
	}
	b.res.Boundary = res
	logf("  token minted at %.1f s, refreshes at %v", res.Created.Seconds(), roundAll(res.RefreshAt))
	logf("  %d of the part's leases ended while it read, in %d seconds with ≥ %d ends (busiest %d): %v", res.LeaseEnds, res.BurstSeconds, res.BurstMin, res.BusiestEnds, perSecond)
	logf("  %d reads, %d errors, %d refreshes (%d at lease ends); p99 across refreshes %.2f ms (n=%d), quiet %.2f ms (n=%d), at lease ends %.2f ms (n=%d): lease ends ÷ steady %.2f",
		res.Reads, res.Errors, res.Refreshes, res.RefreshesAtLeaseEnd, ms(res.RefreshP99), res.RefreshN, ms(res.QuietP99), res.QuietN, ms(res.LeaseP99), res.LeaseN, res.LeaseRatio)
	return nil
}
