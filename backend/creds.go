// creds/<name>: handing out the shared access token under a lease (the hot
// path) and the lease reservations that keep lease counts across restarts.

package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// IssueCreds implements paths.Engine. The cached path touches neither storage
// nor Zoho: an atomic view load, a lease-count increment and, rarely, a
// reservation write (unleased: once per token, the write that holds it until
// it expires).
func (b *Backend) IssueCreds(ctx context.Context, s logical.Storage, name string, minTTL time.Duration, hold paths.Holding) (*paths.Creds, error) {
	a, err := b.account(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, noAccountError(name)
	}
	now := b.now()
	b.markRead(s, a, now)
	if minTTL > 0 {
		if life := a.tokenLifetime(); minTTL > longestLease(life) {
			return nil, &paths.InputError{Field: paths.FieldMinTTL, Msg: fmt.Sprintf(
				"account %q: no lease lasts %s: this account's tokens live %s and a lease ends %s before its token, so min_ttl is at most %s (as fresh as possible); every read asking for more would force a refresh and spend Zoho's budget of 10 tokens per 10 minutes",
				name, minTTL, life, leaseMargin(life), longestLease(life))}
		}
	}

	var refreshErr error
	for attempt := 0; attempt < 4; attempt++ {
		v := a.view.Load()
		if satisfies(v, now, minTTL, withFloor) {
			if minTTL == 0 && !now.Before(v.refreshAt) {
				b.refreshInBackground(s, a)
			}
			if c, ok, err := b.handOut(ctx, s, a, v, now, minTTL, hold); err != nil || ok {
				if err == nil && attempt == 0 {
					b.metrics.cacheHits.Inc()
				}
				return c, err
			}
			// The token was retired meanwhile, or the account object left
			// memory (evictAccount): go on with the live one.
			if a.gone.Load() {
				if a, err = b.account(ctx, s, name); err != nil {
					return nil, err
				}
				if a == nil {
					return nil, noAccountError(name)
				}
			}
			continue
		}
		if attempt == 0 {
			b.metrics.cacheMisses.Inc()
		}
		if refreshErr != nil {
			break
		}
		refreshErr = b.refreshNow(ctx, s, a, minTTL)
		now = b.now()
	}
	// The refresh failed or is not allowed yet: a token that is still valid
	// (if only for less than the floor) is better than none, unless the caller
	// asked for a minimum TTL.
	if v := a.view.Load(); refreshErr != nil && minTTL == 0 && satisfies(v, now, 0, withoutFloor) {
		if c, ok, err := b.handOut(ctx, s, a, v, now, 0, hold); err != nil || ok {
			return c, err
		}
	}
	if refreshErr == nil {
		refreshErr = upstreamError(name, errTokenUnavailable)
	}
	return nil, refreshErr
}

var errTokenUnavailable = &zoho.Error{Op: zoho.OpRefresh, Kind: zoho.KindMalformed, Description: "no usable access token after refreshing"}

// handOut records how the reader holds v's token and returns the creds for
// it. ok is false when the token was retired concurrently (or is too close to
// its end) and the caller must decide again.
func (b *Backend) handOut(ctx context.Context, s logical.Storage, a *account, v *tokenView, now time.Time, minTTL time.Duration, hold paths.Holding) (*paths.Creds, bool, error) {
	if hold == paths.HoldUntilExpiry {
		return b.holdUntilExpiry(ctx, s, a, v, now, minTTL)
	}
	return b.holdByLease(ctx, s, a, v, now, minTTL)
}

// holdByLease records one more lease on v's token.
func (b *Backend) holdByLease(ctx context.Context, s logical.Storage, a *account, v *tokenView, now time.Time, minTTL time.Duration) (*paths.Creds, bool, error) {
	rec := v.rec
	n := rec.issued.Add(1)
	if rec.retired.Load() {
		rec.released.Add(1)
		return nil, false, nil
	}
	if n > rec.reserved.Load() {
		if err := b.reserve(ctx, s, a, rec, n); err != nil {
			rec.released.Add(1)
			if errors.Is(err, errAccountGone) {
				return nil, false, nil // the caller loads the live account
			}
			return nil, false, err
		}
	}
	end, ok := leaseEnd(v, now, n, minTTL)
	if !ok {
		// Too close to the end to lease (the caller checked at an earlier
		// instant): give the number back and let the caller decide again.
		rec.released.Add(1)
		return nil, false, nil
	}
	c := v.creds(now, end)
	c.Lease = paths.LeaseData{
		Account:     a.name,
		AccessToken: v.accessToken,
		TokenID:     rec.ID,
		Generation:  v.generation,
		ExpiresAt:   v.expiresAt,
		Seq:         n,
		EndsAt:      end,
	}
	return c, true, nil
}

// holdUntilExpiry hands v's token out without a lease (static-creds/): the
// token is marked held until it expires, so that no lease revocation revokes
// it and no refresh lets Zoho's live-token cap invalidate it. The mark is
// stored once per token, before its first unleased read is answered (so it
// holds across restarts); later reads pay two atomic loads and an increment.
// The answer's TTL ends like a lease would (a margin before the expiry,
// spread by the read's number), so readers that come back then find the next
// token ready.
func (b *Backend) holdUntilExpiry(ctx context.Context, s logical.Storage, a *account, v *tokenView, now time.Time, minTTL time.Duration) (*paths.Creds, bool, error) {
	rec := v.rec
	if !rec.pinned.Load() {
		if err := b.pin(ctx, s, a, rec); err != nil {
			if errors.Is(err, errAccountGone) || errors.Is(err, errRetiredMeanwhile) {
				return nil, false, nil
			}
			return nil, false, err
		}
	}
	if rec.retired.Load() {
		// Rejected, or revoked with the refresh token: the caller moves on.
		return nil, false, nil
	}
	end, ok := leaseEnd(v, now, rec.unleased.Add(1), minTTL)
	if !ok {
		return nil, false, nil
	}
	b.metrics.unleasedReads.Inc()
	return v.creds(now, end), true, nil
}

// errRetiredMeanwhile: the token was retired before it could be pinned.
var errRetiredMeanwhile = errors.New("access token retired meanwhile")

// pin stores that rec's token is held until it expires. It runs under the
// account's mutex, as every retirement does, so that a token is either
// pinned before a retirement looks (which then keeps it) or seen retired
// here (and not handed out).
func (b *Backend) pin(ctx context.Context, s logical.Storage, a *account, rec *leaseRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rec.pinned.Load() {
		return nil
	}
	if rec.retired.Load() {
		return errRetiredMeanwhile
	}
	rec.HeldUntilExpiry = true
	if err := b.persistTokenLocked(ctx, s, a); err != nil {
		rec.HeldUntilExpiry = false
		return err
	}
	rec.pinned.Store(true)
	b.logger.Debug("access token handed out unleased: held until it expires", "account", a.name, "token_id", rec.ID)
	return nil
}

// creds is what a reader is handed for v's token at now, to be used until end.
func (v *tokenView) creds(now, end time.Time) *paths.Creds {
	return &paths.Creds{
		AccessToken: v.accessToken,
		APIDomain:   v.apiDomain,
		TokenType:   v.tokenType,
		ExpiresAt:   v.expiresAt,
		Scopes:      v.scopes,
		TokenID:     v.rec.ID,
		TTL:         end.Sub(now),
		IssuedAt:    v.rec.IssuedAt,
		Lifetime:    v.lifetime,
	}
}

// reserve raises the persisted upper bound of a token's lease numbers to at
// least n, doubling it so that a token's leases cost O(log n) writes. The new
// bound is published only once stored: readers beyond the old one wait here.
func (b *Backend) reserve(ctx context.Context, s logical.Storage, a *account, rec *leaseRecord, n int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rec.reserved.Load() >= n {
		return nil
	}
	old := rec.Reserved
	rec.Reserved = max(2*n, n+initialReservation)
	if err := b.persistTokenLocked(ctx, s, a); err != nil {
		rec.Reserved = old
		return err
	}
	rec.reserved.Store(rec.Reserved)
	return nil
}
