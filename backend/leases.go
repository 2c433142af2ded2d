package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// RevokeLease implements paths.Engine. Each lease counts once, however often
// Vault sends its revocation. The access token is revoked at Zoho only when
// no other lease may hold it; before that call the token is retired in
// storage, so that it is never served again, restart or not. A token that is
// already dead (expired, evicted, or minted from a refresh token since revoked
// or replaced) needs no call.
func (b *Backend) RevokeLease(ctx context.Context, s logical.Storage, l paths.LeaseData) error {
	b.rememberStorage(s)
	a, unlock, err := b.lockAccount(ctx, s, l.Account)
	if err != nil {
		return err
	}
	defer unlock()
	if a == nil {
		return nil // deleting the account revoked its refresh token and every access token
	}
	now := b.now()

	a.mu.Lock()
	rec := a.records[l.TokenID]
	stale := a.cfg.Generation != l.Generation || a.cfg.RefreshToken == ""
	if stale || rec == nil || rec.Revoked || !now.Before(rec.ExpiresAt) {
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
				a.view.Store(a.buildViewLocked(b.timing))
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

	uctx, cancel := b.requestUpstreamCtx(ctx)
	defer cancel()
	began := time.Now()
	err = b.zoho.Revoke(uctx, issuer, l.AccessToken)
	if err != nil && zoho.IsTokenInvalid(err) {
		err = nil
	}
	b.metrics.observe(zoho.OpRevoke, began, err)

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
	b.logger.Debug("access token revoked after its last lease", "account", l.Account)
	return nil
}
