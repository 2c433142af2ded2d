// Refreshing an account's access token: coalescing readers, refreshing ahead
// of expiry, Zoho's budget and live-token cap enforced locally, back-off after
// failures, and installing the token Zoho returns.

package backend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

// Back-off after failed token requests: exponential from backoffBase, capped,
// with full jitter in the upper half. Rejections that need an operator (other
// than a dead refresh token, which stops refreshing altogether) back off from a
// longer base.
const (
	backoffBase         = 2 * time.Second
	backoffRejectedBase = 30 * time.Second
	backoffMax          = 5 * time.Minute
)

// refreshNow refreshes the account's token unless it already satisfies
// minTTL, coalescing concurrent callers into one upstream request.
func (b *Backend) refreshNow(ctx context.Context, s logical.Storage, a *account, minTTL time.Duration) error {
	ch := b.flights.DoChan(a.name, func() (interface{}, error) {
		return nil, b.refreshUnless(s, a, func(v *tokenView, now time.Time) bool {
			return satisfies(v, now, minTTL, withFloor)
		})
	})
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refreshInBackground starts one refresh ahead of expiry, unless one is
// already under way; the reader that noticed is served the current token.
func (b *Backend) refreshInBackground(s logical.Storage, a *account) {
	if b.bgCtx.Err() != nil || b.isReplicaOrStandby() || !a.refreshing.CompareAndSwap(false, true) {
		return
	}
	b.bgWG.Add(1)
	go func() {
		defer b.bgWG.Done()
		defer a.refreshing.Store(false)
		_ = b.refreshAhead(s, a)
	}()
}

// refreshAhead refreshes the account's token if it has reached its refresh
// point, joining a refresh already in flight for the account.
func (b *Backend) refreshAhead(s logical.Storage, a *account) error {
	_, err, _ := b.flights.Do(a.name, func() (interface{}, error) {
		return nil, b.refreshUnless(s, a, func(v *tokenView, now time.Time) bool {
			return v != nil && now.Before(v.refreshAt)
		})
	})
	return err
}

// refreshUnless takes the account's lock and refreshes unless fresh reports
// that the current view is good enough (another caller may have refreshed
// while this one waited). It runs for every coalesced caller, so it waits
// within the backend's life, not one request's.
func (b *Backend) refreshUnless(s logical.Storage, a *account, fresh func(*tokenView, time.Time) bool) error {
	unlock, err := b.locks.lock(b.bgCtx, a.name)
	if err != nil {
		return err
	}
	defer unlock()
	if b.cachedAccount(a.name) != a {
		// The account was deleted or reloaded meanwhile; let the caller retry
		// with the current state.
		return nil
	}
	if fresh(a.view.Load(), b.now()) {
		return nil
	}
	return b.refreshLocked(s, a)
}

// refreshLocked performs one token request (a refresh_token grant, or a
// client_credentials grant), within Zoho's limits. The caller holds the
// account's lock.
func (b *Backend) refreshLocked(s logical.Storage, a *account) error {
	return b.mintLocked(s, a, nil)
}

// mintLocked requests one access token within Zoho's limits and makes it the
// account's current token. cand, when not nil, is a configuration being
// written whose credentials must be verified before it is stored (see
// verifyLocked): the request uses them; a back-off does not hold it up (an
// operator is fixing things), Zoho's throttle does; and a failure is returned
// as Zoho answered it, leaving the account's failure state alone. Either way
// the request counts in the budget and the live-token bookkeeping. The caller
// holds the account's lock.
func (b *Backend) mintLocked(s logical.Storage, a *account, cand *accountConfig) error {
	ctx, cancel := b.upstreamCtx()
	defer cancel()
	now := b.now()
	verifying := cand != nil

	a.mu.Lock()
	cfg, tok := a.cfg, a.tok
	if verifying {
		cfg = cand
	}
	if !cfg.canMint() {
		a.mu.Unlock()
		return cannotMintError(a.name, cfg)
	}
	if tok.Failure().NeedsReauth && !verifying {
		a.mu.Unlock()
		return reauthError(a.name, tok.Failure().LastError)
	}
	throttled := tok.Failure().LastErrorCode == zoho.CodeThrottled
	if now.Before(tok.Failure().NextAttemptAt) && (!verifying || throttled) {
		err := backoffError(a.name, cfg.budgetHolder(), tok.Failure().LastError, tok.Failure().NextAttemptAt, throttled)
		a.mu.Unlock()
		return err
	}
	if until, ok := b.budgetLocked(a, now); !ok {
		a.mu.Unlock()
		return budgetError(a.name, cfg.budgetHolder(), b.opts.RateLimit, b.opts.RateWindow, until)
	}
	capacity := liveCap(cfg)
	var evict *leaseRecord
	if live := a.liveRecordsLocked(now); len(live) >= capacity {
		// Zoho will invalidate its oldest live token: retire it first, so that
		// no reader takes a lease on it while the request is on the wire.
		evict = zohoVictim(live, capacity)
		// A token a reader reported Zoho rejected is dead for its leases
		// already: they do not hold the refresh up (ReplaceRejectedCreds).
		if !evict.retireIfUnheld() && !evict.Rejected {
			a.mu.Unlock()
			return liveCapError(a.name, capacity, evict)
		}
		a.dropViewLocked(evict)
	}
	undoEvict := func() {
		if evict != nil && !evict.Retired && !evict.Revoked && !evict.Unknown {
			evict.retired.Store(false)
			if a.tok.TokenID == evict.ID && a.view.Load() == nil {
				a.view.Store(a.buildViewLocked())
			}
		}
	}
	// Record the request before sending it, so that the budget holds across
	// crashes and a token minted by a lost answer still counts as live.
	tok.Requests = append(tok.Requests, now)
	tok.InFlight = now
	if err := b.persistTokenLocked(ctx, s, a); err != nil {
		tok.Requests = tok.Requests[:len(tok.Requests)-1]
		tok.InFlight = time.Time{}
		undoEvict()
		a.mu.Unlock()
		return err
	}
	app := appFor(cfg)
	a.mu.Unlock()

	start := time.Now()
	op, t, err := b.requestToken(ctx, cfg)
	elapsed := time.Since(start)
	b.metrics.observe(op, start, err)
	now = b.now()

	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if mayHaveMinted(err) {
			// Zoho may have minted a token whose answer was lost: it counts
			// as live until it would have expired, and the victim may be gone.
			a.settleInFlightLocked()
			if evict != nil {
				evict.Retired = true
			}
		} else {
			tok.InFlight = time.Time{}
			undoEvict() // Zoho answered: nothing was minted, nothing evicted
		}
		if verifying {
			// The account keeps its configuration, which may work: no
			// back-off, no attention. The request stays in the budget.
			if perr := b.persistTokenLocked(ctx, s, a); perr != nil {
				b.logger.Error("could not store a verification's token request", "account", a.name, "error", perr)
			}
			b.logger.Warn("new credentials not verified; the account keeps its configuration", "account", a.name, "error", err, "elapsed", elapsed)
			return err
		}
		b.recordFailureLocked(a, err, now)
		if a.tok.Failure().NeedsReauth {
			// Zoho refused the refresh token: its access tokens are dead too.
			// Stop serving the cached one, whoever refreshed (a reader, a
			// report, the background).
			a.view.Store(nil)
			b.metrics.reauthNeeded.Inc()
		}
		if perr := b.persistTokenLocked(ctx, s, a); perr != nil {
			b.logger.Error("could not store refresh failure", "account", a.name, "error", perr)
		}
		if a.tok.Failure().ConsecutiveFailures == 1 {
			b.flagAttention(ctx, s, a.name, now)
		}
		b.logger.Warn("token refresh failed", "account", a.name, "error", err, "elapsed", elapsed,
			"next_attempt_at", a.tok.Failure().NextAttemptAt, "needs_reauthorization", a.tok.Failure().NeedsReauth)
		if a.tok.Failure().NeedsReauth {
			return reauthError(a.name, a.tok.Failure().LastError)
		}
		return upstreamError(a.name, err)
	}
	tok.InFlight = time.Time{}
	if evict != nil && !evict.Revoked {
		// Zoho has silently invalidated the oldest live token; no lease held it.
		evict.Revoked = true
	}
	b.countMinted(cfg)
	// A refresh keeps the rhythm: its token is refreshed a lead before it
	// expires, even when its predecessor ran out (readers that come only at
	// expiry must find the successor fresh, not due). Only an account's first
	// token (a client-credentials account's first mint; a refresh-token
	// account's comes from the grant) starts a new rhythm, spread over its
	// life, so that a bulk import does not refresh in one burst.
	r := inRhythm
	if a.tok.TokenID == "" {
		r = newRhythm
	}
	recovered := a.tok.Failure().ConsecutiveFailures > 0 || a.tok.Failure().NeedsReauth
	b.installTokenLocked(a, t, now, app.AccountsURL, r)
	if err := b.persistTokenLocked(ctx, s, a); err != nil {
		// Leases are only handed out on a stored token (a restart would not
		// know them): this one is never served. It counts as live; after a
		// restart, as the unknown token of the request stored in flight.
		rec := a.recordLocked(a.tok.TokenID)
		rec.Retired = true
		rec.retired.Store(true)
		b.logger.Error("could not store refreshed access token; it is not served", "account", a.name, "error", err)
		return fmt.Errorf("account %q: storing the new access token: %w", a.name, err)
	}
	a.view.Store(a.buildViewLocked())
	if recovered {
		b.clearAttention(ctx, s, a.name)
	}
	b.logger.Debug("access token refreshed", "account", a.name, "grant_type", cfg.grantType(), "verification", verifying, "expires_at", a.tok.ExpiresAt, "elapsed", elapsed)
	return nil
}

// budgetLocked prunes the request log to Zoho's window and reports whether a
// request may be sent at now; if not, when it may. The caller holds a.mu.
func (b *Backend) budgetLocked(a *account, now time.Time) (time.Time, bool) {
	tok := a.tok
	cut := 0
	for cut < len(tok.Requests) && !tok.Requests[cut].After(now.Add(-b.opts.RateWindow)) {
		cut++
	}
	tok.Requests = tok.Requests[cut:]
	if len(tok.Requests) < b.opts.RateLimit {
		return time.Time{}, true
	}
	return tok.Requests[len(tok.Requests)-b.opts.RateLimit].Add(b.opts.RateWindow), false
}

// remainingBudget is how many token requests the window still allows.
func (b *Backend) remainingBudgetLocked(a *account, now time.Time) int {
	n := 0
	for _, t := range a.tok.Requests {
		if t.After(now.Add(-b.opts.RateWindow)) {
			n++
		}
	}
	if n >= b.opts.RateLimit {
		return 0
	}
	return b.opts.RateLimit - n
}

func liveCap(cfg *accountConfig) int {
	if cfg.LiveTokenCap > 0 {
		return cfg.LiveTokenCap
	}
	return DefaultLiveCap
}

// recordFailureLocked updates the back-off state after a failed token
// request. The caller holds a.mu.
func (b *Backend) recordFailureLocked(a *account, err error, now time.Time) {
	f := a.tok.Failure()
	f.LastError, f.LastErrorCode = describeError(err)
	f.LastErrorAt = now
	f.ConsecutiveFailures++
	switch {
	case zoho.IsInvalidGrant(err) && !a.cfg.clientCredentials():
		f.NeedsReauth = true
	case zoho.IsThrottled(err):
		// Zoho's window is rolling and may hold requests this engine did not
		// make: wait a whole window.
		f.NextAttemptAt = now.Add(b.opts.RateWindow)
	default:
		base := backoffBase
		if !zoho.IsTemporary(err) {
			base = backoffRejectedBase
		}
		f.NextAttemptAt = now.Add(backoffDelay(base, f.ConsecutiveFailures))
	}
	a.tok.SetFailure(f)
}

// backoffDelay is base·2^(failures-1), capped, with jitter in [d/2, d].
func backoffDelay(base time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < backoffMax; i++ {
		d *= 2
	}
	if d > backoffMax {
		d = backoffMax
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// zohoVictim is the live token (oldest first) to treat as the one Zoho
// invalidates when one more is minted. Some tokens may already be dead at
// Zoho: unknown ones (their answer was lost) and retired ones (a revocation or
// an eviction was under way when an answer was lost). So the victim is the
// oldest token sure to be alive whenever it and the tokens newer than it could
// fill Zoho's cap on their own; otherwise one of the uncertain older ones.
func zohoVictim(live []*leaseRecord, capacity int) *leaseRecord {
	for i, r := range live {
		if !r.Unknown && !r.Retired {
			if len(live)-i >= capacity {
				return r
			}
			break
		}
	}
	return live[0]
}

// mayHaveMinted reports whether a failed token request may still have minted
// a token at Zoho (the answer was lost or unreadable), as opposed to Zoho
// answering with an error or the request never being sent (the connection
// could not be opened). It must be given the client's error as returned, not
// one of this package's answers built from it (fieldError, upstreamError),
// which hide Zoho's.
func mayHaveMinted(err error) bool {
	ze, ok := zoho.AsError(err)
	if !ok {
		return true
	}
	switch ze.Kind {
	case zoho.KindTransport:
		return !zoho.NeverSent(err)
	case zoho.KindServer, zoho.KindMalformed:
		return true
	}
	return false
}

// installTokenLocked makes t, minted by the accounts server issuer, the
// account's current token; the caller publishes the view once the state is
// stored. The caller holds a.mu.
func (b *Backend) installTokenLocked(a *account, t *zoho.Token, now time.Time, issuer string, r rhythm) {
	tok := a.tok
	id := tokenID(t.AccessToken)
	m := &mintedToken{ID: id, IssuedAt: now, ExpiresAt: now.Add(t.ExpiresIn), Reserved: initialReservation, Issuer: issuer}
	if a.cfg.clientCredentials() {
		m.AccessToken = t.AccessToken // revoke/ revokes each one
	}
	// Forget tokens that have expired: no lease can hold them any more.
	kept, keptRecs := tok.Minted[:0], a.records[:0]
	for _, rec := range a.records {
		if now.Before(rec.ExpiresAt) {
			kept, keptRecs = append(kept, rec.mintedToken), append(keptRecs, rec)
		}
	}
	clear(a.records[len(keptRecs):])
	tok.Minted = append(kept, m)
	a.records = append(keptRecs, newLeaseRecord(m, justMinted))
	tok.AccessToken = t.AccessToken
	tok.TokenID = id
	tok.TokenType = t.TokenType
	if t.APIDomain != "" {
		tok.APIDomain = t.APIDomain
	}
	if t.Scope != "" {
		tok.Scope = t.Scope
	}
	tok.IssuedAt = m.IssuedAt
	tok.ExpiresAt = m.ExpiresAt
	tok.InRhythm = bool(r)
	tok.Spread = 0
	if r == newRhythm {
		tok.Spread = b.nextSpread()
	}
	tok.LastRefresh = now
	f := tok.Failure() // the last error stays on record
	f.ConsecutiveFailures = 0
	f.NextAttemptAt = time.Time{}
	f.NeedsReauth = false
	tok.SetFailure(f)
	tok.compact()
}
