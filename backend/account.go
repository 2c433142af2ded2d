package backend

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// account is the in-memory state of one Zoho account. Operations that talk to
// Zoho or change the refresh token are serialised by the account's stripe lock
// (Backend.locks); mu guards the fields below against the short, network-free
// critical sections of lease bookkeeping. The hot path reads only view and the
// atomics of the current lease record.
type account struct {
	name string

	mu      sync.Mutex
	cfg     *accountConfig
	tok     *tokenState
	records map[string]*leaseRecord // by token ID

	view       atomic.Pointer[tokenView]
	lastRead   atomic.Int64 // unix nanoseconds of the last creds read
	refreshing atomic.Bool  // a background refresh is scheduled or running
}

// tokenView is an immutable snapshot of the current access token, swapped
// atomically, so that a cached read needs no lock, storage or Zoho.
type tokenView struct {
	accessToken string
	tokenType   string
	apiDomain   string
	scopes      []string
	expiresAt   time.Time
	expiresStr  string
	lifetime    time.Duration
	refreshAt   time.Time // when a background refresh should start
	generation  int64
	rec         *leaseRecord
}

// leaseRecord tracks the leases holding one access token. Every lease gets a
// number: issued is the highest number handed out (leases abandoned before
// being handed out and leases revoked both count in released), so the leases
// outstanding are issued - released, and ended remembers which numbers were
// revoked, so that Vault's retried revocations count once. reserved is the
// persisted upper bound of issued, published only once stored: after a restart
// issued starts at it, so every lease handed out before the restart is still
// counted (an access token is never revoked at Zoho while such a lease may
// hold it; the price is that it may simply expire instead).
type leaseRecord struct {
	*mintedToken
	issued   atomic.Int64
	released atomic.Int64
	reserved atomic.Int64
	retired  atomic.Bool // revoked, being revoked, or evicted: hand out no new leases
	ended    leaseSet    // guarded by account.mu
}

// outstanding is the number of leases that may hold the token.
func (r *leaseRecord) outstanding() int64 {
	return r.issued.Load() - r.released.Load()
}

// retireIfUnheld marks the token retired unless a lease holds it, and reports
// whether it did. A reader that takes a lease concurrently either is counted
// before the check (and the token stays) or sees the mark and backs off.
// The caller holds account.mu.
func (r *leaseRecord) retireIfUnheld() bool {
	r.retired.Store(true)
	if r.outstanding() > 0 {
		r.retired.Store(r.Retired || r.Revoked || r.Unknown)
		return false
	}
	return true
}

// leaseSet is a set of lease numbers (1, 2, ...) as a bitmap.
type leaseSet []uint64

func (s leaseSet) has(n int64) bool {
	i := n / 64
	return n > 0 && i < int64(len(s)) && s[i]&(1<<(n%64)) != 0
}

func (s *leaseSet) add(n int64) {
	i := n / 64
	for int64(len(*s)) <= i {
		*s = append(*s, 0)
	}
	(*s)[i] |= 1 << (n % 64)
}

func (s leaseSet) remove(n int64) {
	if i := n / 64; i < int64(len(s)) {
		s[i] &^= 1 << (n % 64)
	}
}

// initialReservation is the lease reservation a new token is stored with, so
// that its first leases cost no storage write.
const initialReservation = 16

// newLeaseRecord tracks m. A token just minted has no leases; one loaded from
// storage may have up to its reservation.
func newLeaseRecord(m *mintedToken, fresh bool) *leaseRecord {
	r := &leaseRecord{mintedToken: m}
	if !fresh {
		r.issued.Store(m.Reserved)
	}
	r.reserved.Store(m.Reserved)
	r.retired.Store(m.Retired || m.Revoked || m.Unknown)
	return r
}

func newAccount(name string, cfg *accountConfig, tok *tokenState, fresh bool, t timingPolicy) *account {
	a := &account{name: name}
	a.install(cfg, tok, fresh, t)
	return a
}

// install replaces the account's configuration and token state and rebuilds
// the lease records and the view. fresh says the tokens were just minted (no
// leases yet) rather than loaded from storage. The caller holds the stripe lock.
func (a *account) install(cfg *accountConfig, tok *tokenState, fresh bool, t timingPolicy) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tok == nil || tok.Generation != cfg.Generation {
		tok = &tokenState{Generation: cfg.Generation}
	}
	if !fresh {
		settleInFlight(tok)
	}
	a.cfg = cfg
	a.tok = tok
	a.records = make(map[string]*leaseRecord, len(tok.Minted))
	for _, m := range tok.Minted {
		a.records[m.ID] = newLeaseRecord(m, fresh)
	}
	a.view.Store(a.buildViewLocked(t))
}

// setConfig replaces the configuration only, keeping the token state and the
// exact lease counts. The caller holds the stripe lock.
func (a *account) setConfig(cfg *accountConfig, t timingPolicy) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg = cfg
	a.view.Store(a.buildViewLocked(t))
}

// buildViewLocked derives the hot-path view from tok; nil when no usable access
// token is held. The caller holds mu.
func (a *account) buildViewLocked(t timingPolicy) *tokenView {
	tok := a.tok
	if a.cfg.RefreshToken == "" || tok.AccessToken == "" {
		return nil
	}
	rec := a.records[tok.TokenID]
	if rec == nil || rec.retired.Load() {
		return nil
	}
	lifetime := tok.ExpiresAt.Sub(tok.IssuedAt)
	apiDomain := tok.APIDomain
	if apiDomain == "" {
		apiDomain = a.cfg.APIDomain
	}
	tokenType := tok.TokenType
	if tokenType == "" {
		tokenType = "Bearer"
	}
	return &tokenView{
		accessToken: tok.AccessToken,
		tokenType:   tokenType,
		apiDomain:   apiDomain,
		scopes:      tokenScopes(tok.Scope, a.cfg.Scopes),
		expiresAt:   tok.ExpiresAt,
		expiresStr:  tok.ExpiresAt.UTC().Format(time.RFC3339),
		lifetime:    lifetime,
		refreshAt:   t.refreshAt(tok.IssuedAt, tok.ExpiresAt, tok.TokenID),
		generation:  tok.Generation,
		rec:         rec,
	}
}

// tokenScopes prefers the scopes Zoho reported for the token (comma- or
// space-separated) over the configured ones.
func tokenScopes(granted string, configured []string) []string {
	if granted != "" {
		f := strings.FieldsFunc(granted, func(r rune) bool { return r == ',' || r == ' ' })
		if len(f) > 0 {
			return f
		}
	}
	out := make([]string, len(configured))
	copy(out, configured)
	return out
}

// liveRecordsLocked returns the minted tokens that Zoho still counts as live
// at now, oldest first. The caller holds mu.
func (a *account) liveRecordsLocked(now time.Time) []*leaseRecord {
	var out []*leaseRecord
	for _, m := range a.tok.Minted {
		if m.Revoked || !now.Before(m.ExpiresAt) {
			continue
		}
		if r := a.records[m.ID]; r != nil {
			out = append(out, r)
		}
	}
	return out
}

// snapshotLocked copies tok for persisting. The caller holds mu.
func (a *account) snapshotLocked() *tokenState {
	cp := *a.tok
	cp.Requests = append([]time.Time(nil), a.tok.Requests...)
	cp.Minted = make([]*mintedToken, 0, len(a.tok.Minted))
	for _, m := range a.tok.Minted {
		mc := *m
		cp.Minted = append(cp.Minted, &mc)
	}
	return &cp
}

// dropViewLocked stops serving rec if it is the current token. The caller
// holds mu.
func (a *account) dropViewLocked(rec *leaseRecord) {
	if v := a.view.Load(); v != nil && v.rec == rec {
		a.view.Store(nil)
	}
}

// settleInFlight turns a token request whose answer was never stored (the
// process died while it was on the wire, or before the answer was stored)
// into an unknown live token: Zoho may have minted it, so it counts against
// the live-token cap until it would have expired. It is never served.
func settleInFlight(tok *tokenState) *mintedToken {
	if tok.InFlight.IsZero() {
		return nil
	}
	lifetime := tok.ExpiresAt.Sub(tok.IssuedAt)
	if lifetime <= 0 {
		lifetime = assumedLifetime
	}
	m := &mintedToken{
		ID:        "unknown-" + strconv.FormatInt(tok.InFlight.UnixNano(), 36),
		IssuedAt:  tok.InFlight,
		ExpiresAt: tok.InFlight.Add(lifetime),
		Unknown:   true,
	}
	tok.Minted = append(tok.Minted, m)
	tok.InFlight = time.Time{}
	return m
}

// settleInFlightLocked settles the account's request in flight whose answer
// was lost (see settleInFlight). The caller holds mu.
func (a *account) settleInFlightLocked() {
	if m := settleInFlight(a.tok); m != nil {
		a.records[m.ID] = newLeaseRecord(m, true)
	}
}

// assumedLifetime is how long an access token whose answer was lost may live:
// Zoho's tokens live an hour.
const assumedLifetime = time.Hour
