// Lease bookkeeping: numbered leases per access token, the retired flag
// readers and revokers agree through, and revoking a lease (the token is revoked
// at Zoho with its last lease).

package backend

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

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
	retired  atomic.Bool  // revoked, being revoked, or evicted: hand out no new leases
	pinned   atomic.Bool  // HeldUntilExpiry is stored: an unleased read holds it until it expires
	unleased atomic.Int64 // unleased reads of it in this process (spreads their ends)
	ended    leaseSet     // guarded by account.mu
}

// outstanding is the number of leases that may hold the token.
func (r *leaseRecord) outstanding() int64 {
	return r.issued.Load() - r.released.Load()
}

// retireIfUnheld marks the token retired unless a lease or an unleased read
// holds it, and reports whether it did. A reader that takes a lease
// concurrently either is counted before the check (and the token stays) or
// sees the mark and backs off; an unleased reader pins the token under
// account.mu, which the caller holds.
func (r *leaseRecord) retireIfUnheld() bool {
	r.retired.Store(true)
	if r.outstanding() > 0 || r.pinned.Load() {
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
func newLeaseRecord(m *mintedToken, from origin) *leaseRecord {
	r := &leaseRecord{mintedToken: m}
	if from == fromStorage {
		r.issued.Store(m.Reserved)
	}
	r.reserved.Store(m.Reserved)
	r.retired.Store(m.Retired || m.Revoked || m.Unknown)
	r.pinned.Store(m.HeldUntilExpiry)
	return r
}

// RevokeLease implements paths.Engine. Each lease counts once, however often
// Vault sends its revocation. The access token is revoked at Zoho only when
// no other lease may hold it; before that call the token is retired in
// storage, so that it is never served again, restart or not. A token that is
// already dead (expired, evicted, or minted from a refresh token since revoked
// or replaced) needs no call.
func (b *Backend) RevokeLease(ctx context.Context, s logical.Storage, l paths.LeaseData) error {
	a, unlock, err := b.lockAccount(ctx, s, l.Account)
	if err != nil {
		return err
	}
	defer unlock()
	if a == nil {
		// Deleting the account gave up its refresh token, which killed every
		// access token once Zoho confirmed it.
		return b.revokeStaleLeaseLocked(ctx, s, l)
	}
	now := b.now()

	a.mu.Lock()
	rec := a.recordLocked(l.TokenID)
	// A token the account does not track is stale too: generations repeat
	// when an account is deleted and created again, and a token of the
	// current generation that expired needs nothing (revokeStaleLeaseLocked
	// looks at the expiry first).
	stale := a.cfg.Generation != l.Generation || a.cfg.tokensDiedWithGrant() || rec == nil
	if stale {
		a.mu.Unlock()
		return b.revokeStaleLeaseLocked(ctx, s, l)
	}
	if rec.Revoked || !now.Before(rec.ExpiresAt) {
		a.mu.Unlock()
		return nil
	}
	if l.Seq <= 0 || l.Seq > rec.issued.Load() || rec.ended.has(l.Seq) {
		// Sent again (Vault retries), or a lease the engine did not number
		// (issued before upgrading): nothing to count. An uncounted lease
		// keeps its token from being revoked early; it simply expires.
		a.mu.Unlock()
		return nil
	}
	rec.ended.add(l.Seq)
	rec.released.Add(1)
	if !rec.retireIfUnheld() {
		a.mu.Unlock()
		return nil
	}
	// The last lease: retire the token durably before asking Zoho.
	undo := func() {
		rec.ended.remove(l.Seq)
		rec.released.Add(-1)
	}
	a.dropViewLocked(rec)
	if !rec.Retired {
		rec.Retired = true
		if err := b.persistTokenLocked(ctx, s, a); err != nil {
			rec.Retired = false
			rec.retired.Store(false)
			undo()
			if a.tok.TokenID == rec.ID {
				a.view.Store(a.buildViewLocked())
			}
			a.mu.Unlock()
			return fmt.Errorf("account %q: storing the retirement of an access token before revoking it: %w", l.Account, err)
		}
	}
	issuer := rec.Issuer
	if issuer == "" {
		issuer = refreshTokenIssuer(a.cfg)
	}
	a.mu.Unlock()

	err = b.revokeAt(ctx, issuer, l.AccessToken)

	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		// Not confirmed: the lease stays and Vault retries its revocation.
		// The token stays retired (Zoho may have revoked it); readers get a
		// new one.
		undo()
		b.logger.Warn("could not revoke access token at Zoho; Vault retries the lease revocation", "account", l.Account, "error", err)
		return fmt.Errorf("revoking the access token of account %q at Zoho: %w", l.Account, upstreamError(l.Account, err))
	}
	b.metrics.revocations.WithLabelValues("access").Inc()
	rec.Revoked = true
	if a.tok.TokenID == rec.ID {
		a.tok.AccessToken = ""
	}
	if perr := b.persistTokenLocked(ctx, s, a); perr != nil {
		// The retirement is stored: the token is not served after a restart.
		b.logger.Warn("could not store access token revocation", "account", l.Account, "error", perr)
	}
	b.logger.Debug("access token revoked after its last lease", "account", l.Account, "token_id", l.TokenID)
	return nil
}

// RenewLease implements paths.Engine. It answers how long the lease may still
// live on the token it holds: until the end it was given (never past the
// token's expiry less the margin), capped by the mount's maximum lease TTL
// from the lease's issue. It never extends a lease and itself touches
// neither storage (for a loaded account) nor Zoho; past the token's refresh
// point it starts the background refresh a read would. It fails with a
// read-again message when the token is gone or going.
func (b *Backend) RenewLease(ctx context.Context, s logical.Storage, l paths.LeaseData) (time.Duration, error) {
	a, err := b.account(ctx, s, l.Account)
	if err != nil {
		return 0, err
	}
	if a == nil {
		return 0, leaseEndedError(l.Account, "the account was deleted")
	}
	now := b.now()
	a.mu.Lock()
	rec := a.recordLocked(l.TokenID)
	why := ""
	switch {
	case a.cfg.Generation != l.Generation || !a.cfg.canMint():
		why = a.cfg.staleLeaseReason()
	case rec == nil || !now.Before(rec.ExpiresAt):
		why = "its access token expired"
	case rec.Revoked:
		why = "its access token was revoked or invalidated by Zoho's live-token cap"
	case rec.Rejected:
		why = "Zoho rejected its access token (a reader reported it)"
	case rec.Retired || rec.Unknown:
		why = "its access token is being revoked"
	}
	end := l.EndsAt
	if rec != nil && (end.IsZero() || end.After(rec.ExpiresAt)) {
		end = rec.ExpiresAt.Add(-leaseMargin(rec.ExpiresAt.Sub(rec.IssuedAt)))
	}
	a.mu.Unlock()
	if why != "" {
		return 0, leaseEndedError(l.Account, why)
	}
	// A client that only renews (Vault Agent's cache and templates) must
	// find the next token when its lease ends: past the refresh point, or
	// when what is left is short, a renewal starts the one background
	// refresh, as a read does.
	// (An account that joins the in-use set here may have its passed point
	// moved into the time its token has left; see markRead.)
	needs := func(v *tokenView) bool {
		return v != nil && v.rec == rec && (!now.Before(v.refreshAt) || nearEnd(end.Sub(now), v.lifetime))
	}
	if needs(a.view.Load()) {
		b.markRead(s, a, now)
		if needs(a.view.Load()) {
			b.refreshInBackground(s, a)
		}
	}
	ttl := end.Sub(now).Truncate(time.Second)
	if ttl <= 0 {
		return 0, leaseEndedError(l.Account, "it has reached the end of its token's life")
	}
	return ttl, nil
}
