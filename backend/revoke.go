// revoke/<name>: giving up an account's refresh token, and revoking refresh
// tokens at the accounts server that issued them.

package backend

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// RevokeAccount implements paths.Engine. The account stops using its refresh
// token at once (the revocation is recorded first); Zoho is asked next, and if
// it does not confirm, the engine retries in the background and the caller is
// told. On an account without a refresh token it retries pending revocations.
func (b *Backend) RevokeAccount(ctx context.Context, s logical.Storage, name string) (*paths.WriteResult, error) {
	a, unlock, err := b.lockAccount(ctx, s, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if a == nil {
		return nil, noAccountError(name)
	}
	a.mu.Lock()
	next := *a.cfg
	a.mu.Unlock()
	if next.RefreshToken == "" {
		if err := b.retryRevocationsLocked(ctx, s, name); err != nil {
			return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
				"account %q holds no refresh token, but Zoho has not confirmed the revocation of one it held (%s); the engine keeps retrying in the background", name, safeText(err)))
		}
		return nil, nil
	}
	rt, issuer := next.RefreshToken, refreshTokenIssuer(&next)
	next.RefreshToken, next.RefreshTokenIssuer = "", ""
	next.Generation++
	next.UpdatedAt = b.now()
	walID, err := b.putRevokeWAL(ctx, s, name, issuer, rt)
	if err != nil {
		return nil, err
	}
	if err := putJSON(ctx, s, configPrefix+name, &next); err != nil {
		return nil, err
	}
	if err := s.Delete(ctx, tokenPrefix+name); err != nil {
		return nil, err
	}
	a.install(&next, nil, justMinted)
	if err := b.revokeRefreshToken(ctx, issuer, rt); err != nil {
		b.logger.Warn("could not revoke refresh token; will retry", "account", name, "error", err)
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"account %q no longer uses its refresh token, but Zoho has not confirmed its revocation (%s); the engine retries it in the background every minute, or write revoke/%s again",
			name, safeText(err), name))
	}
	if err := b.deleteWAL(ctx, s, walID); err != nil {
		b.logger.Warn("could not delete revocation record", "account", name, "error", err)
	}
	b.logger.Info("refresh token revoked", "account", name)
	return nil, nil
}

// revokeRefreshToken revokes at the accounts server that issued the token;
// only Zoho's confirmation (or its answer that the token is invalid) counts.
func (b *Backend) revokeRefreshToken(ctx context.Context, issuer, rt string) error {
	uctx, cancel := b.requestUpstreamCtx(ctx)
	defer cancel()
	began := time.Now()
	err := b.zoho.Revoke(uctx, issuer, rt)
	if err != nil && zoho.IsTokenInvalid(err) {
		err = nil
	}
	b.metrics.observe(zoho.OpRevoke, began, err)
	if err == nil {
		b.metrics.revocations.WithLabelValues("refresh").Inc()
	}
	return err
}
