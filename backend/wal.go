package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

// Write-ahead-log entries record an intent before the call to Zoho that
// carries it out, so that a crash or a failed call is settled later:
//
//   - revoke_refresh_token: a refresh token Vault gave up (replaced by a new
//     grant, revoke/<name>, a delete) that Zoho has not confirmed revoked yet.
//     Written before the account stops using the token; deleted once Zoho
//     confirms; retried until then.
//   - exchange: a grant-code exchange is on the wire. Deleted once its refresh
//     token is stored (or Zoho answered with an error); if it is still there
//     later, the refresh token Zoho may have issued was lost, and the account's
//     status says so (the engine cannot revoke a token it never learned).
//
// Vault's rollback manager hands entries older than walMinAge back to
// walRollback (every minute), which settles them.
const (
	walKindRevokeRefresh = "revoke_refresh_token"
	walKindExchange      = "exchange"
	walMinAge            = 30 * time.Second
)

type revokeWAL struct {
	Account     string `mapstructure:"account"`
	AccountsURL string `mapstructure:"accounts_url"` // the accounts server that issued the token
	Token       string `mapstructure:"token"`
	// Generation is the account's generation once the token is given up; the
	// token is never revoked while it is still the account's current one.
	Generation int64 `mapstructure:"generation"`
}

type exchangeWAL struct {
	Account string `mapstructure:"account"`
	// At is when the exchange was sent (unix nanoseconds); the account's
	// GrantedAt equals it once the exchange is stored.
	At int64 `mapstructure:"at"`
}

func (b *Backend) putRevokeWAL(ctx context.Context, s logical.Storage, name, issuer, token string, generation int64) (string, error) {
	return framework.PutWAL(ctx, sealWrapping{s}, walKindRevokeRefresh, map[string]interface{}{
		"account":      name,
		"accounts_url": issuer,
		"token":        token,
		"generation":   generation,
	})
}

func (b *Backend) putExchangeWAL(ctx context.Context, s logical.Storage, name string, at time.Time) (string, error) {
	return framework.PutWAL(ctx, sealWrapping{s}, walKindExchange, map[string]interface{}{
		"account": name,
		"at":      at.UnixNano(),
	})
}

// sealWrapping marks every entry written through it for seal wrapping: the
// framework's WAL helper does not (the wal/ prefix is declared in
// SealWrapStorage too).
type sealWrapping struct{ logical.Storage }

func (s sealWrapping) Put(ctx context.Context, e *logical.StorageEntry) error {
	e.SealWrap = true
	return s.Storage.Put(ctx, e)
}

func (b *Backend) deleteWAL(ctx context.Context, s logical.Storage, id string) error {
	if id == "" {
		return nil
	}
	return framework.DeleteWAL(ctx, s, id)
}

func (b *Backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	switch kind {
	case walKindRevokeRefresh:
		var entry revokeWAL
		if err := mapstructure.WeakDecode(data, &entry); err != nil {
			return fmt.Errorf("decoding write-ahead-log entry: %w", err)
		}
		unlock, err := b.locks.lock(ctx, entry.Account)
		if err != nil {
			return err
		}
		defer unlock()
		return b.settleRevokeLocked(ctx, req.Storage, &entry)
	case walKindExchange:
		var entry exchangeWAL
		if err := mapstructure.WeakDecode(data, &entry); err != nil {
			return fmt.Errorf("decoding write-ahead-log entry: %w", err)
		}
		unlock, err := b.locks.lock(ctx, entry.Account)
		if err != nil {
			return err
		}
		defer unlock()
		return b.settleExchangeLocked(ctx, req.Storage, &entry)
	}
	return fmt.Errorf("unknown write-ahead-log kind %q", kind)
}

// settleRevokeLocked revokes a refresh token the account gave up. The caller
// holds the account's lock.
func (b *Backend) settleRevokeLocked(ctx context.Context, s logical.Storage, entry *revokeWAL) error {
	cfg, err := loadConfig(ctx, s, entry.Account)
	if err != nil {
		return err
	}
	if cfg != nil && cfg.RefreshToken == entry.Token {
		// The write that would have given it up never landed: the token is
		// still in use, so there is nothing to revoke.
		return nil
	}
	if err := b.revokeRefreshToken(ctx, entry.AccountsURL, entry.Token); err != nil {
		b.logger.Warn("retrying revocation of a refresh token failed; will retry", "account", entry.Account, "error", err)
		return fmt.Errorf("account %q: revoking a refresh token Vault gave up: %s", entry.Account, safeText(err))
	}
	b.logger.Info("refresh token revoked at Zoho", "account", entry.Account)
	return nil
}

// settleExchangeLocked reports an exchange whose refresh token was never
// stored. The caller holds the account's lock.
func (b *Backend) settleExchangeLocked(ctx context.Context, s logical.Storage, entry *exchangeWAL) error {
	cfg, err := loadConfig(ctx, s, entry.Account)
	if err != nil {
		return err
	}
	at := time.Unix(0, entry.At).UTC()
	if cfg != nil && cfg.GrantedAt.Equal(at) {
		return nil // stored
	}
	b.logger.Warn("a grant-code exchange was interrupted after it was sent: Zoho may hold a refresh token Vault never stored, which counts against Zoho's 20 refresh tokens per user and client until it is removed under the user's Connected Apps",
		"account", entry.Account, "at", at)
	if cfg == nil {
		return nil
	}
	cfg.InterruptedExchangeAt = at
	if err := putJSON(ctx, s, configPrefix+entry.Account, cfg); err != nil {
		return err
	}
	b.accounts.Delete(entry.Account) // reloaded with the mark on next use
	return nil
}

// retryRevocationsLocked settles now the pending revocations of the account's
// refresh tokens. The caller holds the account's lock.
func (b *Backend) retryRevocationsLocked(ctx context.Context, s logical.Storage, name string) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		w, err := framework.GetWAL(ctx, s, id)
		if err != nil || w == nil || w.Kind != walKindRevokeRefresh {
			continue
		}
		var entry revokeWAL
		if mapstructure.WeakDecode(w.Data, &entry) != nil || entry.Account != name {
			continue
		}
		if err := b.settleRevokeLocked(ctx, s, &entry); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := b.deleteWAL(ctx, s, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
