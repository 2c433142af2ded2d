package backend

import (
	"fmt"
	"testing"
	"time"
)

// Tokens minted together are refreshed spread over half their lifetime.
func TestRefreshPointsSpread(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expires := issued.Add(time.Hour)
	buckets := make([]int, 12) // 5-minute buckets over the hour
	for i := 0; i < 6000; i++ {
		at := refreshPoint(issued, expires, tokenID(fmt.Sprintf("1000.%032d.x", i)))
		off := at.Sub(issued)
		if off < 15*time.Minute || off > 45*time.Minute {
			t.Fatalf("refresh point %s after minting is outside [15m, 45m]", off)
		}
		buckets[int(off/(5*time.Minute))]++
	}
	// Six buckets hold them all: 1000 each on average; none may be a herd.
	for i := 3; i < 9; i++ {
		if buckets[i] < 800 || buckets[i] > 1200 {
			t.Fatalf("bucket %d holds %d of 6000 refreshes: %v", i, buckets[i], buckets)
		}
	}
}
