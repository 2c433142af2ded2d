// status/ and the health part of config/<name> reads: what may be shown about
// an account (never a secret).

package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// ReadAccount implements paths.Engine.
func (b *Backend) ReadAccount(ctx context.Context, s logical.Storage, name string) (*paths.AccountStatus, error) {
	return b.readAccount(ctx, s, name, true)
}

// readAccount is an account's status; mayHaveDevice false says that it has
// no device authorization record (the caller listed them), which saves the
// storage read.
func (b *Backend) readAccount(ctx context.Context, s logical.Storage, name string, mayHaveDevice bool) (*paths.AccountStatus, error) {
	a, err := b.peekAccount(ctx, s, name)
	if err != nil || a == nil {
		return nil, err
	}
	now := b.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, tok := a.cfg, a.tok
	st := &paths.AccountStatus{
		Name:                 name,
		GrantType:            cfg.grantType(),
		SOID:                 cfg.SOID,
		ClientID:             cfg.ClientID,
		DataCenter:           cfg.DataCenter,
		AccountsURL:          accountsURL(cfg),
		APIDomain:            firstNonEmpty(tok.APIDomain, cfg.APIDomain),
		RedirectURI:          cfg.RedirectURI,
		Scopes:               append([]string(nil), cfg.Scopes...),
		LiveTokenCap:         liveCap(cfg),
		HasRefreshToken:      cfg.RefreshToken != "",
		NeedsReauthorization: tok.Failure().NeedsReauth,
		LastRefresh:          tok.LastRefresh,
		LastError:            tok.Failure().LastError,
		LastErrorAt:          tok.Failure().LastErrorAt,
		ConsecutiveFailures:  tok.Failure().ConsecutiveFailures,
		RateBudgetRemaining:  b.remainingBudgetLocked(a, now),
		LiveTokens:           len(a.liveRecordsLocked(now)),

		InterruptedExchangeAt: cfg.Marks().InterruptedExchangeAt,
		RevocationAbandonedAt: cfg.Marks().RevocationAbandonedAt,
		RevokedAt:             cfg.Marks().RevokedAt,
	}
	if v := a.view.Load(); v != nil {
		st.TokenExpiresAt = v.expiresAt
	}
	if now.Before(tok.Failure().NextAttemptAt) {
		st.NextAttemptAt = tok.Failure().NextAttemptAt
	}
	if mayHaveDevice {
		if st.Device, err = b.deviceStatus(ctx, s, name); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// AccountStatuses implements paths.Engine.
func (b *Backend) AccountStatuses(ctx context.Context, s logical.Storage) ([]*paths.AccountStatus, error) {
	names, err := b.ListAccounts(ctx, s)
	if err != nil {
		return nil, err
	}
	// One listing says which accounts have a device authorization record;
	// only those are read.
	withDevice, err := s.List(ctx, devicePrefix)
	if err != nil {
		return nil, err
	}
	hasDevice := make(map[string]bool, len(withDevice))
	for _, name := range withDevice {
		hasDevice[name] = true
	}
	out := make([]*paths.AccountStatus, 0, len(names))
	for _, name := range names {
		st, err := b.readAccount(ctx, s, name, hasDevice[name])
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}
