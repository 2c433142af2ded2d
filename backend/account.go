package backend

import (
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

// leaseRecord tracks the leases holding one access token. leases is exact for
// the life of the process; reserved is the persisted upper bound (after a
// restart leases starts at reserved, so an access token is never revoked at
// Zoho while a lease issued before the restart may still hold it).
type leaseRecord struct {
	*mintedToken
	leases   atomic.Int64
	reserved atomic.Int64
	retired  atomic.Bool // revoked, being revoked, or evicted: hand out no new leases
}

// initialReservation is the lease reservation a new token is stored with, so
// that its first leases cost no storage write.
const initialReservation = 16

// newLeaseRecord tracks m. A token just minted has no leases; one loaded from
// storage may have up to its reservation.
func newLeaseRecord(m *mintedToken, fresh bool) *leaseRecord {
	r := &leaseRecord{mintedToken: m}
	if !fresh {
		r.leases.Store(m.Reserved)
	}
	r.reserved.Store(m.Reserved)
	if m.Revoked {
		r.retired.Store(true)
	}
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

// snapshotLocked copies tok for persisting, with each record's current
// reservation. The caller holds mu.
func (a *account) snapshotLocked() *tokenState {
	cp := *a.tok
	cp.Requests = append([]time.Time(nil), a.tok.Requests...)
	cp.Minted = make([]*mintedToken, 0, len(a.tok.Minted))
	for _, m := range a.tok.Minted {
		mc := *m
		if r := a.records[m.ID]; r != nil {
			mc.Reserved = r.reserved.Load()
			mc.Revoked = m.Revoked
		}
		cp.Minted = append(cp.Minted, &mc)
	}
	return &cp
}
