package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

// A replaced refresh token is recorded in a write-ahead-log entry before the
// new one is stored; the entry is deleted once Zoho confirms the revocation.
// Vault's rollback manager hands entries older than walMinAge back to
// walRollback, which retries the revocation.
const (
	walKindRevokeRefresh = "revoke_refresh_token"
	walMinAge            = 30 * time.Second
)

type revokeWAL struct {
	Account     string `mapstructure:"account"`
	AccountsURL string `mapstructure:"accounts_url"`
	Token       string `mapstructure:"token"`
	// Generation is the account's generation once the replacement is stored;
	// the token is never revoked while it is still the account's current one.
	Generation int64 `mapstructure:"generation"`
}

func (b *Backend) putRevokeWAL(ctx context.Context, s logical.Storage, name, accounts, token string, generation int64) (string, error) {
	return framework.PutWAL(ctx, s, walKindRevokeRefresh, map[string]interface{}{
		"account":      name,
		"accounts_url": accounts,
		"token":        token,
		"generation":   generation,
	})
}

func (b *Backend) deleteWAL(ctx context.Context, s logical.Storage, id string) error {
	if id == "" {
		return nil
	}
	return framework.DeleteWAL(ctx, s, id)
}

func (b *Backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	if kind != walKindRevokeRefresh {
		return fmt.Errorf("unknown write-ahead-log kind %q", kind)
	}
	var entry revokeWAL
	if err := mapstructure.WeakDecode(data, &entry); err != nil {
		return fmt.Errorf("decoding write-ahead-log entry: %w", err)
	}
	lock := b.lockFor(entry.Account)
	lock.Lock()
	defer lock.Unlock()
	cfg, err := loadConfig(ctx, req.Storage, entry.Account)
	if err != nil {
		return err
	}
	if cfg != nil && cfg.RefreshToken == entry.Token {
		// The write that would have replaced it never landed: the token is
		// still in use, so there is nothing to revoke.
		return nil
	}
	uctx, cancel := b.upstreamCtx()
	defer cancel()
	if err := b.zoho.Revoke(uctx, entry.AccountsURL, entry.Token); err != nil && !zoho.IsTokenInvalid(err) {
		b.logger.Warn("retrying revocation of a replaced refresh token failed", "account", entry.Account, "error", err)
		return fmt.Errorf("account %q: revoking the replaced refresh token: %s", entry.Account, safeText(err))
	}
	b.logger.Info("replaced refresh token revoked", "account", entry.Account)
	return nil
}
