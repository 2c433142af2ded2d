// auth-url/<name> and callback: Zoho's consent flow with a Vault-hosted
// redirect (single-use state, known accounts servers only).

package backend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

const (
	pendingPrefix = "pending/"
	pendingTTL    = 10 * time.Minute
)

// pendingAuth is a consent started by auth-url/<name>, keyed in storage by a
// hash of its state.
type pendingAuth struct {
	Account   string    `json:"account"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
	// Epoch is the account's credentials epoch when the consent started:
	// the callback may not change credentials changed since.
	Epoch int64 `json:"epoch,omitempty"`
	// At is when it started (for errors).
	At time.Time `json:"at,omitempty"`
}

func stateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return pendingPrefix + hex.EncodeToString(sum[:])
}

// StartAuthorization implements paths.Engine.
func (b *Backend) StartAuthorization(ctx context.Context, s logical.Storage, name, callbackSuffix string) (*paths.Authorization, error) {
	a, err := b.account(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, noAccountError(name)
	}
	a.mu.Lock()
	cfg := *a.cfg
	a.mu.Unlock()
	if cfg.clientCredentials() {
		return nil, &paths.InputError{Field: paths.FieldGrantType, Msg: fmt.Sprintf(
			"account %q uses %s: its client mints tokens with its own credentials, so there is no consent to give; read creds/%s",
			name, paths.GrantClientCredentials, name)}
	}
	if cfg.RedirectURI == "" {
		return nil, &paths.InputError{Field: paths.FieldRedirectURI, Msg: fmt.Sprintf(
			"account %q has no redirect_uri: set it to this mount's callback URL (e.g. https://vault.example.com/v1/zoho/callback) and register the same URI in Zoho's API console", name)}
	}
	if u, err := url.Parse(cfg.RedirectURI); callbackSuffix != "" && (err != nil || !strings.HasSuffix(strings.TrimRight(u.Path, "/"), callbackSuffix)) {
		return nil, &paths.InputError{Field: paths.FieldRedirectURI, Msg: fmt.Sprintf(
			"account %q: redirect_uri %q is not this mount's callback: Zoho would send the browser elsewhere; set it to this mount's callback URL (its path ends in %s) and register the same URI in Zoho's API console", name, zoho.Truncate(cfg.RedirectURI), callbackSuffix)}
	}
	if len(cfg.Scopes) == 0 {
		return nil, &paths.InputError{Field: paths.FieldScopes, Msg: fmt.Sprintf("account %q has no scopes: Zoho's consent needs at least one", name)}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	state := base64.RawURLEncoding.EncodeToString(raw)
	started := b.now()
	expires := started.Add(pendingTTL)
	if err := putJSON(ctx, s, stateKey(state), &pendingAuth{Account: name, State: state, ExpiresAt: expires, Epoch: cfg.Epoch, At: started}); err != nil {
		return nil, err
	}
	q := url.Values{
		"scope":         {strings.Join(cfg.Scopes, ",")},
		"client_id":     {cfg.ClientID},
		"response_type": {"code"},
		"redirect_uri":  {cfg.RedirectURI},
		"access_type":   {"offline"},
		"prompt":        {"consent"},
		"state":         {state},
	}
	return &paths.Authorization{
		URL:         accountsURL(&cfg) + "/oauth/v2/auth?" + q.Encode(),
		State:       state,
		RedirectURI: cfg.RedirectURI,
		ExpiresAt:   expires,
	}, nil
}

// CompleteAuthorization implements paths.Engine: the unauthenticated end of
// the consent redirect. Nothing is exchanged unless the state matches a
// pending, unexpired authorization, and the client secret is only ever sent
// to a known Zoho accounts server or the account's configured one.
func (b *Backend) CompleteAuthorization(ctx context.Context, s logical.Storage, cb paths.Callback) (*paths.CallbackResult, error) {
	if cb.State == "" {
		return nil, &paths.InputError{Field: "state", Msg: "missing: start the authorization with auth-url/<name>"}
	}
	p, err := b.takePending(ctx, s, cb.State)
	if err != nil {
		return nil, err
	}
	if !b.now().Before(p.ExpiresAt) {
		return nil, &paths.InputError{Field: "state", Msg: fmt.Sprintf("the authorization of account %q expired: start again with auth-url/%s", p.Account, p.Account)}
	}
	if cb.Error != "" {
		b.logger.Warn("consent refused", "account", p.Account, "error", cb.Error)
		return nil, &paths.InputError{Field: "error", Msg: fmt.Sprintf("Zoho reported %q for account %q (the user refused consent or Zoho throttled grant codes); nothing was stored", zoho.Truncate(cb.Error), p.Account)}
	}
	if cb.Code == "" {
		return nil, &paths.InputError{Field: "code", Msg: "missing from Zoho's redirect"}
	}
	in := paths.AccountInput{GrantCode: cb.Code}
	if cb.AccountsURL != "" {
		a, err := b.account(ctx, s, p.Account)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, noAccountError(p.Account)
		}
		a.mu.Lock()
		current := accountsURL(a.cfg)
		a.mu.Unlock()
		if dc, ok := zoho.IsKnownAccountsServer(cb.AccountsURL); ok {
			if dc.AccountsURL != current {
				empty := ""
				in.DataCenter, in.AccountsURL = &dc.Code, &empty
			}
		} else if strings.TrimRight(cb.AccountsURL, "/") != current {
			b.logger.Warn("callback named an unknown accounts server; nothing exchanged", "account", p.Account)
			return nil, &paths.InputError{Field: "accounts-server", Msg: fmt.Sprintf(
				"%q is not one of Zoho's accounts servers; nothing was exchanged for account %q", zoho.Truncate(cb.AccountsURL), p.Account)}
		}
	}
	res, err := b.completeConsent(ctx, s, p, in)
	if err != nil {
		return nil, err
	}
	out := &paths.CallbackResult{Account: p.Account}
	if res != nil {
		out.Warnings = res.Warnings
	}
	b.logger.Info("account authorized through the consent redirect", "account", p.Account)
	return out, nil
}

// takePending consumes the pending authorization of state: of concurrent
// callers with the same state exactly one gets it.
func (b *Backend) takePending(ctx context.Context, s logical.Storage, state string) (*pendingAuth, error) {
	key := stateKey(state)
	unlock, err := b.locks.lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var p pendingAuth
	found, err := getJSON(ctx, s, key, &p)
	if err != nil {
		return nil, err
	}
	if !found || subtle.ConstantTimeCompare([]byte(p.State), []byte(state)) != 1 {
		return nil, &paths.InputError{Field: "state", Msg: "unknown or already used: start again with auth-url/<name>"}
	}
	// Single use, whatever happens next.
	if err := s.Delete(ctx, key); err != nil {
		return nil, err
	}
	return &p, nil
}

// completeConsent writes the consent's grant code to its account, unless the
// account's credentials changed after the consent started.
func (b *Backend) completeConsent(ctx context.Context, s logical.Storage, p *pendingAuth, in paths.AccountInput) (*paths.WriteResult, error) {
	a, unlock, err := b.lockAccount(ctx, s, p.Account)
	if err != nil {
		return nil, err
	}
	defer unlock()
	flow := &flowOrigin{epoch: p.Epoch, what: "the consent started at " + p.At.UTC().Format(time.RFC3339) + " (auth-url/" + p.Account + ")"}
	return b.writeAccountLocked(ctx, s, a, p.Account, in, flow)
}
