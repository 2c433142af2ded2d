// When leases end and when tokens are refreshed, derived from a token's
// lifetime.

package backend

import (
	"hash/fnv"
	"math"
	"time"
)

// Timing: from an access token's lifetime, when leases end and when the token
// is refreshed.

func clampDuration(d, lo, hi time.Duration) time.Duration {
	if d < lo {
		return lo
	}
	if d > hi {
		return hi
	}
	return d
}

// margin is how long before the token's expiry every lease ends: 1/20 of the
// lifetime, between 1 s and 60 s (60 s for Zoho's one-hour tokens).
func leaseMargin(lifetime time.Duration) time.Duration {
	return clampDuration(lifetime/20, time.Second, time.Minute)
}

// longestLease is the longest lease a token of lifetime gives (a fresh one):
// the most a min_ttl may ask for.
func longestLease(lifetime time.Duration) time.Duration {
	return lifetime - leaseMargin(lifetime)
}

// floor is the shortest lease worth handing out when a refresh is possible:
// 1/20 of the lifetime, between 1 s and 5 min.
func leaseFloor(lifetime time.Duration) time.Duration {
	return clampDuration(lifetime/20, time.Second, 5*time.Minute)
}

// refreshLead is how long before expiry a token in steady use is refreshed:
// the margin, the spread of lease ends and the floor (so readers never wait
// on Zoho, and the refresh comes before the first lease on the token ends)
// plus a sixtieth of the lifetime (1 s to 1 min) for the background refresh
// to land: 8 minutes for Zoho's hour.
func refreshLead(lifetime time.Duration) time.Duration {
	return leaseMargin(lifetime) + leaseSpread(lifetime) + leaseFloor(lifetime) + clampDuration(lifetime/60, time.Second, time.Minute)
}

// nearEnd reports whether a lease that leaves its client only left more is so
// short that the client will be back for the next token soon: then the
// next token should be on its way.
func nearEnd(left, lifetime time.Duration) bool {
	return left <= refreshLead(lifetime)
}

// rhythm says how a token came to be, which decides when it is refreshed.
type rhythm bool

const (
	// inRhythm: minted by a refresh (ahead, or after its predecessor ran out).
	inRhythm rhythm = true
	// newRhythm: an account's first token (a grant; a client-credentials
	// account's first mint).
	newRhythm rhythm = false
)

// refreshPoint is when a token in use is refreshed in the background. A token
// minted in rhythm is refreshed refreshLead before its expiry, so an account
// in steady use spends one token request per lifetime (L/(L−lead): 1.15 for
// Zoho's hour). A token that starts a new rhythm is refreshed at the fraction
// frac of its lifetime (up to the lead) before that latest point: accounts
// whose tokens were minted together (a bulk import) keep refreshing spread
// over a lifetime from then on instead of in bursts.
func refreshPoint(issued, expires time.Time, r rhythm, frac float64) time.Time {
	lifetime := expires.Sub(issued)
	if lifetime <= 0 {
		return expires
	}
	latest := expires.Add(-refreshLead(lifetime))
	span := latest.Sub(issued)
	if r == inRhythm || span <= 0 {
		return latest
	}
	return latest.Add(-time.Duration(frac * float64(span)))
}

// nextSpread is the place of the next new rhythm's refresh point within its
// token's life (tokenState.Spread): the fractional parts of n·φ, so that
// tokens minted together, in any number, fan out evenly over their life
// (points drawn at random would leave some stretches twice as busy as
// others), stored with the token so that the point is the same after a
// restart.
func (b *Backend) nextSpread() uint32 {
	return max(1, uint32(goldenShare(b.spreads.Add(1))*(1<<32)))
}

// spreadFraction is the stored Spread as a fraction of the span; for tokens
// stored without one, a fraction derived from the token's ID (stable across
// restarts too).
func (t *tokenState) spreadFraction() float64 {
	if t.Spread != 0 {
		return float64(t.Spread) / (1 << 32)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.TokenID))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// leaseSpread is the window before the latest possible end (the token's
// expiry less the margin) over which the leases of one token end, so that
// Vault does not revoke them all in one burst: the floor (3 min for Zoho's
// hour). It ends after the token's latest refresh point (refreshLead covers
// margin and floor), so a client whose lease ends reads the next token.
func leaseSpread(lifetime time.Duration) time.Duration {
	return leaseFloor(lifetime)
}

// goldenFrac is the fractional part of the golden ratio: lease n is brought
// forward by frac(n·goldenFrac) of the window, so that consecutive leases fan
// out evenly over it.
const goldenFrac = 0.6180339887498949

// goldenShare is the n-th share of that sequence: the fractional part of
// n·goldenFrac, in [0, 1).
func goldenShare(n uint64) float64 {
	_, frac := math.Modf(float64(n) * goldenFrac)
	return frac
}

// leaseEnd is when lease number seq on v's token, handed out at now to a
// reader that needs at least minTTL, ends: the token's expiry less the margin,
// brought forward by a share of the spread window derived from seq (at most
// half of what is left, never below minTTL), on a whole second after now.
// The lease lasts at least a second: Vault registers a TTL of 0 as the
// mount's default TTL (hours past the token), so where bringing the end
// forward would leave less than a second it is not brought forward. ok is
// false when not even a second is left before the margin (the caller must
// not hand out the token).
func leaseEnd(v *tokenView, now time.Time, seq int64, minTTL time.Duration) (end time.Time, ok bool) {
	left := leaseTTL(v, now)
	if left < time.Second {
		return time.Time{}, false
	}
	window := min(leaseSpread(v.lifetime), left/2)
	early := time.Duration(goldenShare(uint64(seq)) * float64(window))
	if left-early < minTTL {
		early = max(0, left-minTTL)
	}
	ttl := (left - early).Truncate(time.Second)
	if ttl < time.Second {
		ttl = left // left is whole seconds, at least one
	}
	return now.Add(ttl), true
}

// leaseTTL is the TTL of a lease issued at now: the token's remaining life
// less the margin, whole seconds (Vault's granularity), never negative.
func leaseTTL(v *tokenView, now time.Time) time.Duration {
	ttl := v.expiresAt.Sub(now) - leaseMargin(v.lifetime)
	if ttl < 0 {
		return 0
	}
	return ttl.Truncate(time.Second)
}

// floorRule says whether a token must also last the floor to be handed out.
type floorRule bool

const (
	withFloor    floorRule = true  // a refresh is possible: insist on the floor
	withoutFloor floorRule = false // the refresh failed: anything still valid will do
)

// satisfies reports whether v can be handed out at now to a reader that needs
// at least minTTL (and, withFloor, at least the floor).
func satisfies(v *tokenView, now time.Time, minTTL time.Duration, floor floorRule) bool {
	if v == nil {
		return false
	}
	need := minTTL
	if floor == withFloor {
		if f := leaseFloor(v.lifetime); f > need {
			need = f
		}
	}
	// A fresh token cannot give more than its lifetime less the margin; asking
	// for more means "as fresh as possible" (2 s of slack for Vault's whole
	// seconds).
	if most := longestLease(v.lifetime) - 2*time.Second; need > most {
		need = most
	}
	if need < time.Second {
		need = time.Second
	}
	return leaseTTL(v, now) >= need
}
