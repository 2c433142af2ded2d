package backend

import (
	"fmt"
	"testing"
	"time"
)

// Tokens that start a new rhythm (minted together by a bulk import) are
// refreshed spread over their whole lifetime; tokens minted in rhythm are
// refreshed just ahead of expiry, so steady use costs about one token request
// per lifetime.
func TestRefreshPoints(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expires := issued.Add(time.Hour)
	lead := refreshLead(time.Hour)
	if lead < leaseMargin(time.Hour)+leaseSpread(time.Hour)+leaseFloor(time.Hour) || lead > 9*time.Minute {
		t.Fatalf("lead %s: must leave the margin, the spread of lease ends and the floor, and not much more", lead)
	}
	if perLifetime := float64(time.Hour) / float64(time.Hour-lead); perLifetime > 1.16 {
		t.Fatalf("steady use spends %.2f token requests per lifetime", perLifetime)
	}
	const n, width = 5500, 5 * time.Minute
	buckets := make([]int, int((time.Hour-lead+width-1)/width))
	for i := 0; i < n; i++ {
		id := tokenID(fmt.Sprintf("1000.%032d.x", i))
		tok := &tokenState{TokenID: id}
		if at := refreshPoint(issued, expires, inRhythm, tok.spreadFraction()); !at.Equal(expires.Add(-lead)) {
			t.Fatalf("a token minted in rhythm is refreshed %s before expiry, want %s", expires.Sub(at), lead)
		}
		off := refreshPoint(issued, expires, newRhythm, tok.spreadFraction()).Sub(issued)
		if off < 0 || off > time.Hour-lead {
			t.Fatalf("refresh point %s after minting is outside [0, %s]", off, time.Hour-lead)
		}
		buckets[int(off/width)]++
	}
	// 5-minute buckets over the 52 minutes: about 530 each; none may be a herd.
	for i, got := range buckets[:len(buckets)-1] { // the last bucket is partial
		if got < 400 || got > 650 {
			t.Fatalf("bucket %d holds %d of %d first refreshes: %v", i, got, n, buckets)
		}
	}
}

// Accounts whose first tokens are minted together (a bulk import) get refresh
// points that fan out evenly over the tokens' life, in any number, and keep
// them across a restart.
func TestFirstRefreshPointsOfACohortAreEven(t *testing.T) {
	e := newEnv(t)
	const n, parts = 100, 20
	start := e.clock.Now()
	span := time.Hour - refreshLead(time.Hour)
	counts := make([]int, parts)
	points := map[string]time.Time{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("import%03d", i)
		e.account(name, nil)
		at := e.b.cachedAccount(name).view.Load().refreshAt
		points[name] = at
		counts[min(parts-1, int(at.Sub(start)*parts/span))]++
	}
	// n/parts = 5 in each twentieth of the span; random points would put
	// 10 in some and none in others.
	for i, c := range counts {
		if c < n/parts-1 || c > n/parts+1 {
			t.Fatalf("twentieth %d of the span holds %d of %d first refresh points: %v", i, c, n, counts)
		}
	}
	e.restart()
	for name, at := range points {
		e.creds(name, nil)
		if got := e.b.cachedAccount(name).view.Load().refreshAt; !got.Equal(at) {
			t.Fatalf("%s: refresh point %s after a restart, %s before", name, got.Format(time.TimeOnly), at.Format(time.TimeOnly))
		}
	}
}

// The timing rules, written out for a few lifetimes (Zoho's hour, shorter
// tokens as the simulator and tests use, longer ones): the margin is a
// twentieth of the lifetime within [1 s, 60 s], the floor and the spread of
// lease ends a twentieth within [1 s, 5 min], and the refresh lead their sum
// plus a sixtieth within [1 s, 1 min].
func TestTimingForLifetimes(t *testing.T) {
	for _, tc := range []struct {
		lifetime, margin, floor, lead time.Duration
	}{
		{time.Hour, 60 * time.Second, 3 * time.Minute, 8 * time.Minute},
		{10 * time.Minute, 30 * time.Second, 30 * time.Second, 100 * time.Second},
		{10 * time.Second, time.Second, time.Second, 4 * time.Second},
		{4 * time.Hour, 60 * time.Second, 5 * time.Minute, 12 * time.Minute},
	} {
		if got := leaseMargin(tc.lifetime); got != tc.margin {
			t.Errorf("lifetime %s: margin %s, want %s", tc.lifetime, got, tc.margin)
		}
		if got := leaseFloor(tc.lifetime); got != tc.floor {
			t.Errorf("lifetime %s: floor %s, want %s", tc.lifetime, got, tc.floor)
		}
		if got := leaseSpread(tc.lifetime); got != tc.floor {
			t.Errorf("lifetime %s: spread of lease ends %s, want %s", tc.lifetime, got, tc.floor)
		}
		if got := refreshLead(tc.lifetime); got != tc.lead {
			t.Errorf("lifetime %s: refresh lead %s, want %s", tc.lifetime, got, tc.lead)
		}
		if got := longestLease(tc.lifetime); got != tc.lifetime-tc.margin {
			t.Errorf("lifetime %s: longest lease %s, want %s", tc.lifetime, got, tc.lifetime-tc.margin)
		}
		// A lease that leaves exactly the lead is near its end; a second more is not.
		if !nearEnd(tc.lead, tc.lifetime) || nearEnd(tc.lead+time.Second, tc.lifetime) {
			t.Errorf("lifetime %s: nearEnd is not true up to the lead %s and false past it", tc.lifetime, tc.lead)
		}
	}
}
