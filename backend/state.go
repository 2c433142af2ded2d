// The in-memory state of an account: its configuration and token state as
// loaded from storage, the immutable view the hot path reads, loading an account
// under its lock, and where its tokens are issued and revoked.

package backend

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

// account is the in-memory state of one Zoho account. Operations that talk to
// Zoho or change the refresh token are serialised by the account's own lock
// (Backend.locks); mu guards the fields below against the short sections that
// never call Zoho (lease bookkeeping and the storage writes that go with it).
// The hot path reads only view and the atomics of the current lease record.
type account struct {
	name string

	mu      sync.Mutex
	cfg     *accountConfig
	tok     *tokenState
	records []*leaseRecord // one per tok.Minted, in the same order

	view       atomic.Pointer[tokenView]
	lastRead   atomic.Int64 // unix nanoseconds of the last creds read
	inUse      atomic.Bool  // listed in Backend.inUse
	refreshing atomic.Bool  // a background refresh is scheduled or running
	gone       atomic.Bool  // no longer the live object: nothing is stored from it (evictAccount)

	scheduledFor atomic.Int64 // unix nanoseconds of the refresh point a timer is set for (periodic.go)
}

// markRead records a creds read at now; an account read for the first time
// since it went idle joins the set the periodic function looks at: a refresh
// point that passed while it was idle is moved into the time its token has
// left (deferPassedPoint), and it gets a timer if its point comes before the
// next run could set one.
func (b *Backend) markRead(s logical.Storage, a *account, now time.Time) {
	a.lastRead.Store(now.UnixNano())
	if !a.inUse.Load() && a.inUse.CompareAndSwap(false, true) {
		b.inUse.Store(a.name, a)
		if v := a.view.Load(); v != nil && !now.Before(v.refreshAt) {
			b.deferPassedPoint(a, v, now)
		}
		b.scheduleIfSoon(s, a, now)
	}
}

// peekAccount returns the account without keeping it in memory if it is not
// already there (status listings must not load every account for good).
func (b *Backend) peekAccount(ctx context.Context, s logical.Storage, name string) (*account, error) {
	if a := b.cachedAccount(name); a != nil {
		return a, nil
	}
	cfg, err := loadConfig(ctx, s, name)
	if err != nil || cfg == nil {
		return nil, err
	}
	tok, err := loadTokenState(ctx, s, name)
	if err != nil {
		return nil, err
	}
	return newAccount(name, cfg, tok, fromStorage), nil
}

// tokenView is an immutable snapshot of the current access token, swapped
// atomically, so that a cached read needs no lock, storage or Zoho.
type tokenView struct {
	accessToken string
	tokenType   string
	apiDomain   string
	scopes      []string
	expiresAt   time.Time
	lifetime    time.Duration
	refreshAt   time.Time // when a background refresh should start
	generation  int64
	rec         *leaseRecord
}

// origin says where token state comes from.
type origin int

const (
	justMinted  origin = iota // no lease has been handed out on its tokens yet
	fromStorage               // stored by this or another process: leases may exist
)

func newAccount(name string, cfg *accountConfig, tok *tokenState, from origin) *account {
	a := &account{name: name}
	a.install(cfg, tok, from)
	return a
}

// install replaces the account's configuration and token state and rebuilds
// the lease records and the view. The caller holds the account's lock.
func (a *account) install(cfg *accountConfig, tok *tokenState, from origin) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tok == nil || tok.Generation != cfg.Generation {
		tok = &tokenState{Generation: cfg.Generation}
	}
	if from == fromStorage {
		settleInFlight(tok)
	}
	a.cfg = cfg
	a.tok = tok
	a.records = make([]*leaseRecord, 0, len(tok.Minted))
	for _, m := range tok.Minted {
		a.records = append(a.records, newLeaseRecord(m, from))
	}
	a.view.Store(a.buildViewLocked())
}

// setConfig replaces the configuration only, keeping the token state and the
// exact lease counts. The caller holds the account's lock.
func (a *account) setConfig(cfg *accountConfig) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg = cfg
	a.view.Store(a.buildViewLocked())
}

// buildViewLocked derives the hot-path view from tok; nil when no usable access
// token is held. An account that needs re-authorization serves nothing: Zoho
// refused its refresh token, which kills every access token minted from it,
// so reads fail at once saying what to write. The caller holds mu.
func (a *account) buildViewLocked() *tokenView {
	tok := a.tok
	if !a.cfg.canMint() || tok.AccessToken == "" || tok.Failure().NeedsReauth {
		return nil
	}
	rec := a.recordLocked(tok.TokenID)
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
		lifetime:    lifetime,
		refreshAt:   refreshPoint(tok.IssuedAt, tok.ExpiresAt, rhythm(tok.InRhythm), tok.spreadFraction()),
		generation:  tok.Generation,
		rec:         rec,
	}
}

// tokenScopes prefers the scopes Zoho reported for the token (comma- or
// space-separated) over the configured ones (shared, never modified: a
// config write stores a new slice).
func tokenScopes(granted string, configured []string) []string {
	if granted == "" {
		return configured
	}
	if f, ok := grantedScopes.Load(granted); ok {
		return f.([]string)
	}
	f := strings.FieldsFunc(granted, func(r rune) bool { return r == ',' || r == ' ' })
	if len(f) == 0 {
		return configured
	}
	for i := range f {
		f[i] = intern(f[i])
	}
	// Accounts mostly share a few scope lists: keep one copy of each (shared,
	// never modified), up to a bound.
	if grantedScopesLen.Load() < maxGrantedScopes {
		if _, loaded := grantedScopes.LoadOrStore(granted, f); !loaded {
			grantedScopesLen.Add(1)
		}
	}
	return f
}

// grantedScopes holds the split form of the scope strings Zoho reported.
var (
	grantedScopes    sync.Map // string → []string
	grantedScopesLen atomic.Int64
)

const maxGrantedScopes = 1024

// recordLocked returns the lease record of token id, nil if the account
// tracks no such token. The caller holds mu.
func (a *account) recordLocked(id string) *leaseRecord {
	for _, r := range a.records {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// liveRecordsLocked returns the minted tokens that Zoho still counts as live
// at now, oldest first. The caller holds mu.
func (a *account) liveRecordsLocked(now time.Time) []*leaseRecord {
	var out []*leaseRecord
	for _, r := range a.records {
		if !r.Revoked && now.Before(r.ExpiresAt) {
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
		a.records = append(a.records, newLeaseRecord(m, justMinted))
	}
}

// assumedLifetime is how long an access token whose answer was lost may live:
// Zoho's tokens live an hour.
const assumedLifetime = time.Hour

// cachedAccount returns the in-memory account without touching storage.
func (b *Backend) cachedAccount(name string) *account {
	return b.accounts.Load(name)
}

// loadAccountLocked returns the account, loading it from storage on a cache
// miss; nil if it does not exist. The caller holds the account's lock.
func (b *Backend) loadAccountLocked(ctx context.Context, s logical.Storage, name string) (*account, error) {
	if a := b.cachedAccount(name); a != nil {
		return a, nil
	}
	cfg, err := loadConfig(ctx, s, name)
	if err != nil || cfg == nil {
		return nil, err
	}
	tok, err := loadTokenState(ctx, s, name)
	if err != nil {
		return nil, err
	}
	a := newAccount(name, cfg, tok, fromStorage)
	b.accounts.Store(name, a)
	return a, nil
}

// lockAccount waits (within ctx) for the account's own lock and loads the
// account (nil if it does not exist). On success the caller must call unlock.
// Operations that talk to Zoho or replace an account's state hold this lock;
// it is never shared with another account.
func (b *Backend) lockAccount(ctx context.Context, s logical.Storage, name string) (a *account, unlock func(), err error) {
	unlock, err = b.locks.lock(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	a, err = b.loadAccountLocked(ctx, s, name)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return a, unlock, nil
}

// account returns the account, from memory when cached (the hot path) or
// from storage under the account's lock.
func (b *Backend) account(ctx context.Context, s logical.Storage, name string) (*account, error) {
	if a := b.cachedAccount(name); a != nil {
		return a, nil
	}
	a, unlock, err := b.lockAccount(ctx, s, name)
	if err != nil {
		return nil, err
	}
	unlock()
	return a, nil
}

// persistToken writes the account's token state. The caller holds a.mu.
func (b *Backend) persistTokenLocked(ctx context.Context, s logical.Storage, a *account) error {
	if a.gone.Load() {
		return errAccountGone
	}
	return putJSON(ctx, s, tokenPrefix+a.name, a.snapshotLocked())
}

// accountsURL is where the account's tokens are issued and revoked.
func accountsURL(cfg *accountConfig) string {
	if cfg.AccountsURL != "" {
		return cfg.AccountsURL
	}
	if dc, ok := zoho.LookupDataCenter(cfg.DataCenter); ok {
		return dc.AccountsURL
	}
	dc, _ := zoho.LookupDataCenter(zoho.DefaultDataCenter)
	return dc.AccountsURL
}

// refreshTokenIssuer is where the account's refresh token is revoked: the
// accounts server that issued it (accounts stored before it was recorded: the
// configured one).
func refreshTokenIssuer(cfg *accountConfig) string {
	if cfg.RefreshTokenIssuer != "" {
		return cfg.RefreshTokenIssuer
	}
	return accountsURL(cfg)
}

func appFor(cfg *accountConfig) zoho.App {
	return zoho.App{AccountsURL: accountsURL(cfg), ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret}
}

// tokenLifetime is how long the account's access tokens live: the current
// token's lifetime, or Zoho's hour before the first one.
func (a *account) tokenLifetime() time.Duration {
	if v := a.view.Load(); v != nil && v.lifetime > 0 {
		return v.lifetime
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.tok.ExpiresAt.Sub(a.tok.IssuedAt); l > 0 {
		return l
	}
	return assumedLifetime
}
