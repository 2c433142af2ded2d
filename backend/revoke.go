// revoke/<name>: giving up an account's refresh token, and revoking refresh
// tokens at the accounts server that issued them; stopping a
// client_credentials account and revoking the access tokens it minted.

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
	if next.clientCredentials() {
		rep, err := b.stopClientCredentialsLocked(ctx, s, a, next)
		if err != nil {
			return nil, err
		}
		if len(rep.failed) > 0 {
			return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
				"account %q no longer mints tokens, but %s; write revoke/%s again to retry (they expire by %s anyway)",
				name, rep.unconfirmed(), name, rep.lastExpiry.UTC().Format(time.RFC3339)))
		}
		return rep.result(), nil
	}
	// A device authorization approved later would hand the account a new
	// refresh token behind the revocation: stop it first.
	b.forgetDeviceLocked(ctx, s, name)
	if next.RefreshToken == "" {
		if err := b.retryRevocationsLocked(ctx, s, name); err != nil {
			return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
				"account %q holds no refresh token, but Zoho has not confirmed the revocation of one it held (%s); the engine keeps retrying in the background", name, safeText(err)))
		}
		return nil, nil
	}
	prev := next
	prev.Scopes = append([]string(nil), next.Scopes...)
	rt := next.RefreshToken
	next.RefreshToken, next.RefreshTokenIssuer = "", ""
	next.Generation++
	next.UpdatedAt = b.now()
	marks := next.Marks()
	marks.RevokedAt = next.UpdatedAt
	next.SetMarks(marks)
	out, err := b.commitCredentialsLocked(ctx, s, a, name, &credentialCommit{
		prev: &prev, next: &next, clearTok: true, replaced: rt, why: "revoke/" + name,
	})
	if err != nil {
		return nil, err
	}
	if out.revokeErr != nil {
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"account %q no longer uses its refresh token, but Zoho has not confirmed its revocation (%s); the engine retries it in the background every minute, or write revoke/%s again; until Zoho confirms it, revoking a lease of the account revokes its access token at Zoho",
			name, safeText(out.revokeErr), name))
	}
	b.logger.Info("refresh token revoked", "account", name)
	return nil, nil
}

// revokeRefreshToken revokes at the accounts server that issued the token;
// only Zoho's confirmation (or its answer that the token is invalid) counts.
func (b *Backend) revokeRefreshToken(ctx context.Context, issuer, rt string) error {
	err := b.revokeAt(ctx, issuer, rt)
	if err == nil {
		b.metrics.revocations.WithLabelValues("refresh").Inc()
	}
	return err
}

// revokeAt revokes a token at the accounts server that issued it, within the
// request's context and the upstream timeout; Zoho's "invalid token" counts
// as done, any other failure is returned.
func (b *Backend) revokeAt(ctx context.Context, issuer, token string) error {
	uctx, cancel := b.requestUpstreamCtx(ctx)
	defer cancel()
	began := time.Now()
	err := b.zoho.Revoke(uctx, issuer, token)
	if err != nil && zoho.IsTokenInvalid(err) {
		err = nil
	}
	b.metrics.observe(zoho.OpRevoke, began, err)
	return err
}

// stopClientCredentialsLocked stops a client_credentials account from
// minting (stored first, so that no node mints again), then revokes its live
// access tokens at Zoho (revoke/ and delete). A second call retries the
// revocations Zoho did not confirm; the error is a storage failure only. The
// caller holds the account's lock.
func (b *Backend) stopClientCredentialsLocked(ctx context.Context, s logical.Storage, a *account, next accountConfig) (*tokenRevocations, error) {
	if marks := next.Marks(); marks.RevokedAt.IsZero() {
		prev := next
		marks.RevokedAt = b.now()
		next.SetMarks(marks)
		next.UpdatedAt = marks.RevokedAt
		if _, err := b.commitCredentialsLocked(ctx, s, a, a.name, &credentialCommit{
			prev: &prev, next: &next, why: "revoke/" + a.name,
		}); err != nil {
			return nil, err
		}
	}
	rep, err := b.revokeLiveTokensLocked(ctx, s, a)
	if err != nil {
		return nil, err
	}
	b.logger.Info("client credentials account stopped", "account", a.name, "access_tokens_revoked", rep.revoked,
		"unconfirmed", len(rep.failed), "unknown_tokens", rep.unknown)
	return rep, nil
}

// tokenRevocations is what revoking an account's live access tokens did.
type tokenRevocations struct {
	revoked    int     // confirmed by Zoho now
	failed     []error // not confirmed: still retired, retried by the next revoke/ or their last lease's revocation
	unknown    int     // live tokens whose answer was lost: never learned, so never revocable
	lastExpiry time.Time
}

// unconfirmed says how many revocations Zoho did not confirm, and why.
func (r *tokenRevocations) unconfirmed() string {
	return fmt.Sprintf("Zoho has not confirmed the revocation of %d of its live access token(s) (%s)", len(r.failed), safeText(r.failed[0]))
}

// result tells the caller about the tokens that could not be revoked.
func (r *tokenRevocations) result() *paths.WriteResult {
	if r.unknown == 0 {
		return nil
	}
	return &paths.WriteResult{Warnings: []string{fmt.Sprintf(
		"%d access token(s) minted by requests whose answer was lost could not be revoked (Zoho's answer never arrived, so the engine never learned them); they expire by %s",
		r.unknown, r.lastExpiry.UTC().Format(time.RFC3339))}}
}

// revokeLiveTokensLocked retires every live access token of a
// client_credentials account, durably, so that none is served again (leases
// on them end: revoke/ is an operator's decision, as revoking a refresh token
// is), then revokes at Zoho each one whose value it holds, where it was
// minted. Only Zoho's confirmation (or its answer that the token is invalid)
// marks one revoked. The caller holds the account's lock and has stopped it
// from minting.
func (b *Backend) revokeLiveTokensLocked(ctx context.Context, s logical.Storage, a *account) (*tokenRevocations, error) {
	type target struct {
		rec           *leaseRecord
		token, issuer string
	}
	rep := &tokenRevocations{}
	var targets []target
	now := b.now()
	a.mu.Lock()
	changed := false
	for _, rec := range a.liveRecordsLocked(now) {
		rec.retired.Store(true)
		a.dropViewLocked(rec)
		if !rec.Retired {
			rec.Retired, changed = true, true
		}
		if rec.ExpiresAt.After(rep.lastExpiry) {
			rep.lastExpiry = rec.ExpiresAt
		}
		if rec.AccessToken == "" {
			rep.unknown++
			continue
		}
		issuer := rec.Issuer
		if issuer == "" {
			issuer = accountsURL(a.cfg)
		}
		targets = append(targets, target{rec, rec.AccessToken, issuer})
	}
	if changed {
		if err := b.persistTokenLocked(ctx, s, a); err != nil {
			a.mu.Unlock()
			return nil, fmt.Errorf("account %q: storing the retirement of its access tokens before revoking them: %w", a.name, err)
		}
	}
	a.mu.Unlock()

	var done []*leaseRecord
	for _, t := range targets {
		if err := b.revokeAt(ctx, t.issuer, t.token); err != nil {
			b.logger.Warn("could not revoke an access token at Zoho", "account", a.name, "error", err)
			rep.failed = append(rep.failed, err)
			continue
		}
		b.metrics.revocations.WithLabelValues("access").Inc()
		done = append(done, t.rec)
	}
	rep.revoked = len(done)
	if len(done) == 0 {
		return rep, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, rec := range done {
		rec.Revoked, rec.AccessToken = true, ""
		if a.tok.TokenID == rec.ID {
			a.tok.AccessToken = ""
		}
	}
	if err := b.persistTokenLocked(ctx, s, a); err != nil {
		// The retirement is stored: the tokens are not served after a restart.
		b.logger.Warn("could not store access token revocations", "account", a.name, "error", err)
	}
	return rep, nil
}
