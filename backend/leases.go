package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// RevokeLease implements paths.Engine. The access token is revoked at Zoho
// only when this is the last unexpired lease holding it; otherwise only the
// lease ends. A token that is already dead (expired, evicted, or minted from a
// refresh token since revoked or replaced) needs no call.
func (b *Backend) RevokeLease(ctx context.Context, s logical.Storage, l paths.LeaseData) error {
	b.rememberStorage(s)
	a, unlock, err := b.lockAccount(ctx, s, l.Account)
	defer unlock()
	if err != nil {
		return err
	}
	if a == nil {
		return nil // deleting the account revoked its refresh token and every access token
	}
	now := b.now()

	a.mu.Lock()
	rec := a.records[l.TokenID]
	stale := a.cfg.Generation != l.Generation || a.cfg.RefreshToken == ""
	if stale || rec == nil || rec.Revoked || !now.Before(rec.ExpiresAt) {
		if rec != nil {
			decrementFloor(rec)
		}
		a.mu.Unlock()
		return nil
	}
	// Retire the token before checking the count: a reader that increments
	// after this sees retired and backs off, and one that incremented before
	// makes the compare-and-swap fail.
	rec.retired.Store(true)
	if !rec.leases.CompareAndSwap(1, 0) {
		rec.retired.Store(false)
		decrementFloor(rec)
		a.mu.Unlock()
		return nil
	}
	wasCurrent := false
	if v := a.view.Load(); v != nil && v.rec == rec {
		a.view.Store(nil)
		wasCurrent = true
	}
	accounts := accountsURL(a.cfg)
	a.mu.Unlock()

	uctx, cancel := b.upstreamCtx()
	defer cancel()
	began := time.Now()
	err = b.zoho.Revoke(uctx, accounts, l.AccessToken)
	if err != nil && zoho.IsTokenInvalid(err) {
		err = nil
	}
	b.metrics.observe(zoho.OpRevoke, began, err)

	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		// Undo: the lease stays, Vault retries its revocation.
		rec.leases.Add(1)
		rec.retired.Store(false)
		if wasCurrent && a.view.Load() == nil {
			a.view.Store(a.buildViewLocked(b.timing))
		}
		b.logger.Warn("could not revoke access token at Zoho", "account", l.Account, "error", err)
		return fmt.Errorf("revoking the access token of account %q at Zoho: %w", l.Account, upstreamError(l.Account, err))
	}
	b.metrics.revocations.WithLabelValues("access").Inc()
	rec.Revoked = true
	if a.tok.TokenID == rec.ID {
		a.tok.AccessToken = ""
	}
	if perr := b.persistTokenLocked(ctx, s, a); perr != nil {
		b.logger.Error("could not store access token revocation", "account", l.Account, "error", perr)
	}
	b.logger.Debug("access token revoked after its last lease", "account", l.Account)
	return nil
}

// decrementFloor removes one lease from rec without going below zero.
func decrementFloor(rec *leaseRecord) {
	for {
		n := rec.leases.Load()
		if n <= 0 || rec.leases.CompareAndSwap(n, n-1) {
			return
		}
	}
}
