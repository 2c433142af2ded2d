// How an account gets its access tokens: with a refresh token (from a grant
// code, the consent redirect or an import) or with its client's own
// credentials (client_credentials); whether it may mint one now, what becomes
// of its tokens when it stops, and the token request itself.

package backend

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// grantType is the account's grant type; accounts stored before it was
// recorded hold refresh tokens.
func (c *accountConfig) grantType() string {
	if c.GrantType == "" {
		return paths.GrantRefreshToken
	}
	return c.GrantType
}

// clientCredentials reports whether the account mints with its client's own
// credentials (no refresh token).
func (c *accountConfig) clientCredentials() bool {
	return c.GrantType == paths.GrantClientCredentials
}

// canMint reports whether the account may request access tokens: it holds a
// refresh token, or it uses client credentials and revoke/ has not stopped it.
func (c *accountConfig) canMint() bool {
	if c.clientCredentials() {
		return c.Marks().RevokedAt.IsZero()
	}
	return c.RefreshToken != ""
}

// tokensDiedWithGrant reports whether every access token minted under the
// current generation is dead at Zoho because the account gave up what minted
// them: revoking a refresh token kills its access tokens, so their leases
// need no call to Zoho. A client_credentials token dies only when it is
// revoked itself (or expires).
func (c *accountConfig) tokensDiedWithGrant() bool {
	return !c.clientCredentials() && c.RefreshToken == ""
}

// staleLeaseReason says why a lease of an older generation, or of an account
// that can no longer mint, cannot be renewed.
func (c *accountConfig) staleLeaseReason() string {
	if c.clientCredentials() {
		return "revoke/ stopped the account and revoked its access tokens"
	}
	return "the refresh token it was minted from was replaced or revoked"
}

// budgetHolder names what Zoho's token budget is counted against, for errors.
func (c *accountConfig) budgetHolder() string {
	if c.clientCredentials() {
		return "this client and organisation"
	}
	return "this refresh token"
}

// requestToken sends the account's token request with cfg's credentials and
// returns the operation's name for metrics and errors.
func (b *Backend) requestToken(ctx context.Context, cfg *accountConfig) (string, *zoho.Token, error) {
	if cfg.clientCredentials() {
		t, err := b.zoho.ClientCredentials(ctx, appFor(cfg), strings.Join(cfg.Scopes, ","), cfg.SOID)
		return zoho.OpClientCredentials, t, err
	}
	t, err := b.zoho.Refresh(ctx, appFor(cfg), cfg.RefreshToken)
	return zoho.OpRefresh, t, err
}

// countMinted counts a successful token request in the metrics.
func (b *Backend) countMinted(cfg *accountConfig) {
	if cfg.clientCredentials() {
		b.metrics.clientCredentials.Inc()
		return
	}
	b.metrics.refreshes.Inc()
}

// cannotMintError answers a token request of an account that may not mint.
func cannotMintError(name string, cfg *accountConfig) error {
	if cfg.clientCredentials() {
		return logical.CodedError(http.StatusBadRequest, fmt.Sprintf(
			"account %q was stopped by revoke/%s at %s: write config/%s again (vault write -f zoho/config/%s, or with a new client_secret) to mint tokens again",
			name, name, cfg.Marks().RevokedAt.UTC().Format(time.RFC3339), name, name))
	}
	return noRefreshTokenError(name)
}

// checkGrantInput checks a config write against the account's grant type
// (cur: its configuration before the write, with the grant type a new account
// is created with). The grant type of an existing account is fixed.
func checkGrantInput(name string, cur *accountConfig, in paths.AccountInput, existed bool) error {
	if in.GrantType != nil && existed && *in.GrantType != cur.grantType() {
		return &paths.InputError{Field: paths.FieldGrantType, Msg: fmt.Sprintf(
			"account %q uses %s; an account's grant type cannot change: delete config/%s and write it again with grant_type=%s",
			name, cur.grantType(), name, *in.GrantType)}
	}
	if cur.clientCredentials() {
		if ie := paths.CheckClientCredentialsInput(&in, !existed); ie != nil {
			ie.Msg = fmt.Sprintf("account %q: %s", name, ie.Msg)
			return ie
		}
		return nil
	}
	if in.SOID != nil {
		return &paths.InputError{Field: paths.FieldSOID, Msg: fmt.Sprintf(
			"account %q uses %s: soid applies to %s accounts only (a refresh token already belongs to one organisation)",
			name, paths.GrantRefreshToken, paths.GrantClientCredentials)}
	}
	return nil
}

// mintsDifferently reports whether a write changes what a client_credentials
// account's token request sends, so that the write must verify it.
func mintsDifferently(prev, next *accountConfig) bool {
	return credentialsChanged(prev, next) || prev.SOID != next.SOID || !slices.Equal(prev.Scopes, next.Scopes)
}

// verifyField is the field of a config write that Zoho's rejection of its
// token request points at.
func verifyField(err error, prev, next *accountConfig, in paths.AccountInput) string {
	return rejectedField(err, paths.FieldClientSecret, prev, next, in)
}

// rejectedField is the field of a config write that Zoho's rejection of a
// request with it points at (a token request verifying it, a grant-code
// exchange, a refresh-token import): the secret, the client (or the accounts
// server, if the write moved it), the redirect URI, the scopes or the soid;
// any other rejection is fallback's (the grant code, the refresh token, the
// secret being verified). prev is the account before the write, nil for a new
// one.
func rejectedField(err error, fallback string, prev, next *accountConfig, in paths.AccountInput) string {
	ze, ok := zoho.AsError(err)
	if !ok {
		return fallback
	}
	switch ze.Code {
	case zoho.CodeMissingOrgInfo:
		return paths.FieldSOID
	case zoho.CodeInvalidScope:
		return paths.FieldScopes
	case zoho.CodeInvalidClientSecret:
		return paths.FieldClientSecret
	case zoho.CodeInvalidRedirectURI:
		return paths.FieldRedirectURI
	case zoho.CodeInvalidClient:
		if prev != nil && accountsURL(prev) != accountsURL(next) {
			if in.AccountsURL != nil && *in.AccountsURL != "" {
				return paths.FieldAccountsURL
			}
			return paths.FieldDataCenter
		}
		return paths.FieldClientID
	}
	return fallback
}

// firstClientCredentialsToken mints a new client_credentials account's first
// access token, which verifies its client, secret, scopes and soid before
// anything is stored.
func (b *Backend) firstClientCredentialsToken(name string, next *accountConfig, in paths.AccountInput, now time.Time) (*tokenState, error) {
	uctx, cancel := b.upstreamCtx()
	defer cancel()
	began := time.Now()
	op, t, err := b.requestToken(uctx, next)
	b.metrics.observe(op, began, err)
	if err != nil {
		b.logger.Warn("client credentials verification failed", "account", name, "error", err)
		return nil, fieldError(name, verifyField(err, nil, next, in), err)
	}
	b.countMinted(next)
	return b.freshTokenState(next, t, now), nil
}

// verifyLocked verifies what a write changes in an existing account's token
// request (a new client secret, a client_credentials account's scopes or
// soid, ...) by one token request with the new configuration, counted in the
// budget; its token becomes the current one, so nothing is wasted. A
// rejection is a 400 naming the field Zoho objected to, and the account keeps
// its configuration. The caller holds the account's lock and stores next
// only on success.
func (b *Backend) verifyLocked(s logical.Storage, a *account, prev, next *accountConfig, in paths.AccountInput) error {
	err := b.mintLocked(s, a, next)
	if err == nil {
		return nil
	}
	if _, ok := zoho.AsError(err); !ok {
		// Not sent (the budget, the live-token cap) or not stored.
		return notVerifiedError(a.name, err)
	}
	if zoho.IsInvalidGrant(err) && !next.clientCredentials() {
		return &paths.InputError{Field: paths.FieldGrantCode, Msg: fmt.Sprintf(
			"account %q: %s: Zoho no longer accepts the account's refresh token, so the new client_secret could not be verified; write it together with a new grant_code (or refresh_token); nothing was stored",
			a.name, safeText(err))}
	}
	return fieldError(a.name, verifyField(err, prev, next, in), err)
}
