// config/<name>: creating and updating accounts (grant-code exchange,
// refresh-token import, replacing a refresh token, client_credentials
// accounts, verifying a new client secret), listing and deleting them.

package backend

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// AccountExists implements paths.Engine.
func (b *Backend) AccountExists(ctx context.Context, s logical.Storage, name string) (bool, error) {
	a, err := b.account(ctx, s, name)
	return a != nil, err
}

// ListAccounts implements paths.Engine.
func (b *Backend) ListAccounts(ctx context.Context, s logical.Storage) ([]string, error) {
	names, err := s.List(ctx, configPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// WriteAccount implements paths.Engine. Any grant code is exchanged (or an
// imported refresh token verified) before anything is stored, and so are new
// credentials of an account that can mint (a new client secret; a
// client_credentials account's first token, scopes or soid): one token
// request with them, whose token becomes the current one. A failure leaves
// the configuration as it was.
func (b *Backend) WriteAccount(ctx context.Context, s logical.Storage, name string, in paths.AccountInput) (*paths.WriteResult, error) {
	a, unlock, err := b.lockAccount(ctx, s, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return b.writeAccountLocked(ctx, s, a, name, in, nil)
}

// writeAccountLocked is WriteAccount under the account's lock (a is nil for a
// new account). A non-nil flow is a consent or device authorization
// completing: it is refused if the account's credentials changed since the
// flow started; a device approval's token (flow.granted) is stored as an
// exchanged grant code's is. Every change of credentials is committed
// through commitCredentialsLocked. The caller holds the account's lock.
func (b *Backend) writeAccountLocked(ctx context.Context, s logical.Storage, a *account, name string, in paths.AccountInput, flow *flowOrigin) (*paths.WriteResult, error) {
	var err error
	now := b.now()
	existed := a != nil
	var granted *zoho.Token
	if flow != nil {
		if a == nil {
			return nil, noAccountError(name)
		}
		a.mu.Lock()
		epoch := a.cfg.Epoch
		a.mu.Unlock()
		if epoch != flow.epoch {
			return nil, supersededError(name, flow)
		}
		granted = flow.granted
	}

	var next accountConfig
	if a != nil {
		a.mu.Lock()
		next = *a.cfg
		next.Scopes = append([]string(nil), a.cfg.Scopes...)
		a.mu.Unlock()
	} else {
		if in.ClientID == nil || in.ClientSecret == nil {
			field := paths.FieldClientID
			if in.ClientID != nil {
				field = paths.FieldClientSecret
			}
			return nil, &paths.InputError{Field: field, Msg: "is required when an account is created"}
		}
		next = accountConfig{DataCenter: zoho.DefaultDataCenter, LiveTokenCap: DefaultLiveCap, CreatedAt: now, GrantType: paths.GrantRefreshToken}
		if in.GrantType != nil {
			next.GrantType = *in.GrantType
		}
	}
	prev := next
	if err := checkGrantInput(name, &prev, in, existed); err != nil {
		return nil, err
	}
	applyInput(&next, in)
	next.UpdatedAt = now
	if next.clientCredentials() {
		marks := next.Marks()
		marks.RevokedAt = time.Time{} // written again: it mints again
		next.SetMarks(marks)
	}

	res := &paths.WriteResult{}
	var newTok *tokenState
	var exchangeID string
	verified := false
	switch {
	case next.clientCredentials() && !existed:
		if newTok, err = b.firstClientCredentialsToken(name, &next, in, now); err != nil {
			return nil, err
		}
		verified = true
	case next.clientCredentials():
		if mintsDifferently(&prev, &next) {
			if err := b.verifyLocked(s, a, &prev, &next, in); err != nil {
				return nil, err
			}
			verified = true
		}
	case in.GrantCode != "":
		// Record the exchange before sending it: if its answer is lost, the
		// refresh token Zoho issued is reported instead of silently leaked.
		if exchangeID, err = b.putExchangeWAL(ctx, s, name, now); err != nil {
			return nil, err
		}
		var lost bool
		newTok, lost, err = b.exchange(ctx, name, prevIfExisted(existed, &prev), &next, in, now)
		if err != nil {
			if !lost {
				// Zoho answered, or was never reached: nothing was issued.
				if derr := b.deleteWAL(ctx, s, exchangeID); derr != nil {
					b.logger.Warn("could not delete the record of a failed exchange; the rollback will report it as interrupted", "account", name, "error", derr)
				}
			}
			return nil, err
		}
	case granted != nil:
		newTok = b.adoptGrant(&next, granted, now)
	case in.RefreshToken != "" && in.RefreshToken != prev.RefreshToken:
		newTok, err = b.importRefreshToken(ctx, name, prevIfExisted(existed, &prev), &next, in, now)
		if err != nil {
			return nil, err
		}
	case next.RefreshToken != "" && next.ClientSecret != prev.ClientSecret && !clientChanged(&prev, &next):
		// A new secret for the refresh token held: verified by a refresh.
		a.mu.Lock()
		dead := a.tok.Failure().NeedsReauth
		a.mu.Unlock()
		if dead {
			res.Warnings = append(res.Warnings, "the new client_secret was stored without verification: Zoho no longer accepts the account's refresh token, so no refresh can test it; the next grant_code (or refresh_token) written verifies it")
			break
		}
		if err := b.verifyLocked(s, a, &prev, &next, in); err != nil {
			return nil, err
		}
		verified = true
	}
	if newTok == nil && clientChanged(&prev, &next) && next.RefreshToken != "" {
		res.Warnings = append(res.Warnings, "the client or data center changed but no new grant_code or refresh_token was given: the stored refresh token belongs to the previous client and may stop working")
	}
	if in.DataCenter != nil && in.AccountsURL == nil && next.AccountsURL != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("accounts_url (%s) overrides data_center; write accounts_url=\"\" to use the data center's accounts server", next.AccountsURL))
	}

	replaced := ""
	if newTok != nil {
		replaced = prev.RefreshToken
		next.Generation = prev.Generation + 1
		newTok.Generation = next.Generation
	}
	var cur *account
	if existed {
		cur = a
	}
	out, err := b.commitCredentialsLocked(ctx, s, cur, name, &credentialCommit{
		prev: &prev, next: &next, tok: newTok, replaced: replaced, exchangeWAL: exchangeID, flow: flow,
		why: "a write to config/" + name,
	})
	if err != nil {
		return nil, err
	}
	res.Warnings = append(res.Warnings, out.warnings...)
	if out.tokErr != nil {
		return nil, fmt.Errorf("account %q: the refresh token is stored, the access token that came with it could not be (the next read mints one): %w", name, out.tokErr)
	}
	if out.revokeErr != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the replaced refresh token could not be revoked at Zoho yet (%s); the engine retries in the background, and until Zoho confirms it, revoking a lease on its tokens revokes the lease's access token itself", safeText(out.revokeErr)))
	}
	b.logger.Info("account written", "account", name, "grant_type", next.grantType(), "new_refresh_token", newTok != nil && !next.clientCredentials(),
		"verified_by_token_request", verified, "data_center", next.DataCenter)
	return res, nil
}

// prevIfExisted is an existing account's configuration before a write, nil
// for a new account.
func prevIfExisted(existed bool, prev *accountConfig) *accountConfig {
	if !existed {
		return nil
	}
	return prev
}

func applyInput(c *accountConfig, in paths.AccountInput) {
	if in.ClientID != nil {
		c.ClientID = *in.ClientID
	}
	if in.ClientSecret != nil {
		c.ClientSecret = *in.ClientSecret
	}
	if in.DataCenter != nil {
		c.DataCenter = *in.DataCenter
	}
	if in.AccountsURL != nil {
		c.AccountsURL = *in.AccountsURL
	}
	if in.RedirectURI != nil {
		c.RedirectURI = *in.RedirectURI
	}
	if in.Scopes != nil {
		c.Scopes = append([]string(nil), (*in.Scopes)...)
	}
	if in.LiveTokenCap != nil {
		c.LiveTokenCap = *in.LiveTokenCap
	}
	if in.SOID != nil {
		c.SOID = *in.SOID
	}
}

// credentialsChanged reports whether a write changed what a token request
// sends, so that a back-off caused by the old values should end.
func credentialsChanged(a, b *accountConfig) bool {
	return clientChanged(a, b) || a.ClientSecret != b.ClientSecret
}

// clearBackoff lets the next read try Zoho at once (within the rate budget)
// after an operator fixed the client configuration.
func (b *Backend) clearBackoff(ctx context.Context, s logical.Storage, a *account) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok.Failure().NextAttemptAt.IsZero() && a.tok.Failure().ConsecutiveFailures == 0 {
		return
	}
	f := a.tok.Failure()
	f.NextAttemptAt = time.Time{}
	f.ConsecutiveFailures = 0
	a.tok.SetFailure(f)
	if err := b.persistTokenLocked(ctx, s, a); err != nil {
		b.logger.Warn("could not store the cleared back-off", "account", a.name, "error", err)
	}
	if !a.tok.Failure().NeedsReauth && a.cfg.Marks().InterruptedExchangeAt.IsZero() && a.cfg.Marks().RevocationAbandonedAt.IsZero() {
		b.clearAttention(ctx, s, a.name)
	}
}

func clientChanged(a, b *accountConfig) bool {
	return a.ClientID != b.ClientID || accountsURL(a) != accountsURL(b)
}

// exchange trades a grant code for tokens; on success next holds the new
// refresh token and the returned state the access token that came with it.
//
// On failure, lost reports whether Zoho may have issued a refresh token whose
// answer never arrived; it is decided on the client's error, which the
// caller no longer sees once fieldError has turned it into an answer.
//
// A rejection names the field Zoho objected to (rejectedField): the secret,
// the client, the redirect URI, or else the grant code. prev is the account
// before the write, nil for a new one.
func (b *Backend) exchange(ctx context.Context, name string, prev, next *accountConfig, in paths.AccountInput, now time.Time) (tok *tokenState, lost bool, err error) {
	uctx, cancel := b.upstreamCtx()
	defer cancel()
	began := time.Now()
	t, err := b.zoho.ExchangeCode(uctx, appFor(next), in.GrantCode, next.RedirectURI, strings.Join(next.Scopes, ","))
	b.metrics.observe(zoho.OpExchange, began, err)
	if err != nil {
		b.logger.Warn("grant code exchange failed", "account", name, "error", err)
		return nil, mayHaveMinted(err), fieldError(name, rejectedField(err, paths.FieldGrantCode, prev, next, in), err)
	}
	if t.RefreshToken == "" {
		// Without offline access Zoho issues no refresh token; the engine cannot
		// keep the account alive, so it gives the access token back.
		if rerr := b.zoho.Revoke(uctx, accountsURL(next), t.AccessToken); rerr != nil && !zoho.IsTokenInvalid(rerr) {
			b.logger.Warn("could not revoke the access token of an online-only grant", "account", name, "error", rerr)
		}
		return nil, false, &paths.InputError{Field: paths.FieldGrantCode, Msg: fmt.Sprintf(
			"account %q: Zoho issued no refresh token for this grant code; generate it with access_type=offline (Self Client codes always are); nothing was stored", name)}
	}
	return b.adoptGrant(next, t, now), false, nil
}

// adoptGrant makes the refresh token of a grant (a grant-code exchange, a
// device authorization) the one next holds, issued by next's accounts server,
// and starts the token state with the access token that came with it.
func (b *Backend) adoptGrant(next *accountConfig, t *zoho.Token, now time.Time) *tokenState {
	b.metrics.exchanges.Inc()
	next.RefreshToken = t.RefreshToken
	next.GrantedAt = now
	next.RefreshTokenIssuer = accountsURL(next)
	next.SetMarks(accountMarks{})
	return b.freshTokenState(next, t, now)
}

// importRefreshToken verifies an existing refresh token (in.RefreshToken) by
// one refresh. A rejection names the field Zoho objected to (rejectedField):
// the secret, the client, or else the refresh token. prev is the account
// before the write, nil for a new one.
func (b *Backend) importRefreshToken(ctx context.Context, name string, prev, next *accountConfig, in paths.AccountInput, now time.Time) (*tokenState, error) {
	rt := in.RefreshToken
	uctx, cancel := b.upstreamCtx()
	defer cancel()
	began := time.Now()
	t, err := b.zoho.Refresh(uctx, appFor(next), rt)
	b.metrics.observe(zoho.OpRefresh, began, err)
	if err != nil {
		b.logger.Warn("refresh token verification failed", "account", name, "error", err)
		return nil, fieldError(name, rejectedField(err, paths.FieldRefreshToken, prev, next, in), err)
	}
	b.metrics.exchanges.Inc()
	next.RefreshToken = rt
	next.GrantedAt = now
	next.RefreshTokenIssuer = accountsURL(next)
	next.SetMarks(accountMarks{})
	return b.freshTokenState(next, t, now), nil
}

// freshTokenState starts the token state of a new refresh token (or a new
// client_credentials account) with the access token that came with it; that
// request counts in Zoho's window.
func (b *Backend) freshTokenState(next *accountConfig, t *zoho.Token, now time.Time) *tokenState {
	if t.APIDomain != "" {
		next.APIDomain = t.APIDomain
	}
	scratch := &account{name: "", cfg: next, tok: &tokenState{Requests: []time.Time{now}}}
	b.installTokenLocked(scratch, t, now, accountsURL(next), newRhythm)
	return scratch.tok
}

// DeleteAccount implements paths.Engine. The refresh token's revocation is
// recorded first, the account removed, then Zoho asked; if Zoho does not
// confirm, the engine retries in the background and the caller is told. A
// client_credentials account is stopped and its live access tokens revoked
// first (as revoke/ does); it is removed once Zoho confirmed every one.
func (b *Backend) DeleteAccount(ctx context.Context, s logical.Storage, name string) error {
	a, unlock, err := b.lockAccount(ctx, s, name)
	if err != nil {
		return err
	}
	defer unlock()
	if a == nil {
		return nil
	}
	a.mu.Lock()
	cfg := *a.cfg
	a.mu.Unlock()
	if cfg.clientCredentials() {
		rep, err := b.stopClientCredentialsLocked(ctx, s, a, cfg)
		if err != nil {
			return err
		}
		if len(rep.failed) > 0 {
			return logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
				"account %q was not deleted: it no longer mints tokens, but %s; delete config/%s again to retry (they expire by %s anyway)",
				name, rep.unconfirmed(), name, rep.lastExpiry.UTC().Format(time.RFC3339)))
		}
		if rep.unknown > 0 {
			b.logger.Warn("deleted account leaves access tokens whose answer was lost; they expire by themselves", "account", name, "count", rep.unknown, "by", rep.lastExpiry)
		}
	}
	var walID string
	if cfg.RefreshToken != "" {
		if walID, err = b.putRevokeWAL(ctx, s, a, name, refreshTokenIssuer(&cfg), cfg.RefreshToken, cfg.Generation); err != nil {
			return err
		}
	}
	if err := s.Delete(ctx, tokenPrefix+name); err != nil {
		return err
	}
	if err := s.Delete(ctx, configPrefix+name); err != nil {
		return err
	}
	a.view.Store(nil)
	b.evictAccount(a)
	b.forgetDeviceLocked(ctx, s, name) // no polling survives the account
	b.logger.Info("account deleted", "account", name)
	if cfg.RefreshToken == "" {
		return nil
	}
	if err := b.revokeRefreshToken(ctx, refreshTokenIssuer(&cfg), cfg.RefreshToken); err != nil {
		b.logger.Warn("could not revoke the deleted account's refresh token; will retry", "account", name, "error", err)
		return logical.CodedError(http.StatusBadGateway, fmt.Sprintf(
			"account %q was deleted, but Zoho has not confirmed the revocation of its refresh token (%s); the engine retries it in the background every minute until Zoho does, and until then revoking a lease of the account revokes its access token at Zoho",
			name, safeText(err)))
	}
	if err := b.deleteWAL(ctx, s, walID); err != nil {
		b.logger.Warn("could not delete revocation record", "account", name, "error", err)
	}
	return nil
}
