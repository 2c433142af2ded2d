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
		if at := refreshPoint(issued, expires, id, inRhythm); !at.Equal(expires.Add(-lead)) {
			t.Fatalf("a token minted in rhythm is refreshed %s before expiry, want %s", expires.Sub(at), lead)
		}
		off := refreshPoint(issued, expires, id, newRhythm).Sub(issued)
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
