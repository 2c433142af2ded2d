// Write-ahead-log entries: revocations Zoho has not confirmed yet and grant-code
// exchanges on the wire, settled by Vault's rollback manager.

package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

// Write-ahead-log entries record an intent before the call to Zoho that
// carries it out, so that a crash or a failed call is settled later:
//
//   - revoke_refresh_token: a refresh token Vault gave up (replaced by a new
//     grant, revoke/<name>, a delete) that Zoho has not confirmed revoked yet.
//     Written before the account stops using the token; deleted once Zoho
//     confirms; retried until then, for at most revokeRetryFor. A revocation
//     that still fails then is given up: logged, counted in metrics and, if
//     the account still exists, shown in its status.
//   - exchange: a grant-code exchange is on the wire. Deleted once its refresh
//     token is stored (or Zoho answered with an error); if it is still there
//     later, the refresh token Zoho may have issued was lost, and the account's
//     status says so (the engine cannot revoke a token it never learned).
//
// Vault's rollback manager hands entries older than walMinAge back to
// walRollback (every minute), which settles them; an entry it settles (nil
// error) is deleted.
const (
	walKindRevokeRefresh = "revoke_refresh_token"
	walKindExchange      = "exchange"
	walMinAge            = 30 * time.Second
	revokeRetryFor       = 72 * time.Hour
)

type revokeWAL struct {
	Account     string `json:"account" mapstructure:"account"`
	AccountsURL string `json:"accounts_url" mapstructure:"accounts_url"` // the accounts server that issued the token
	Token       string `json:"token" mapstructure:"token"`
	GiveUpAt    int64  `json:"give_up_at" mapstructure:"give_up_at"` // unix seconds; 0: never (entries written before it existed)
	// Generation is the account's generation the token belonged to: leases
	// of that generation are revoked at Zoho themselves while the entry
	// exists (revokeStaleLeaseLocked). 0 in entries written before it.
	Generation int64 `json:"generation,omitempty" mapstructure:"generation"`
	// Tokens maps the access tokens minted from it that may still be alive
	// when it was given up (by id) to the accounts server that minted each:
	// while the entry exists, a lease of one of them is revoked there
	// (revokeStaleLeaseLocked). Absent in entries written before it.
	Tokens map[string]string `json:"tokens,omitempty" mapstructure:"tokens"`
}

type exchangeWAL struct {
	Account string `json:"account" mapstructure:"account"`
	// At is when the exchange was sent (unix nanoseconds); the account's
	// GrantedAt equals it once the exchange is stored.
	At int64 `json:"at" mapstructure:"at"`
}

// putRevokeWAL records that the refresh token of generation gen, issued by
// issuer, is being given up, with the access tokens a (the account object
// holding it; nil when none is loaded) minted from it that are still alive.
func (b *Backend) putRevokeWAL(ctx context.Context, s logical.Storage, a *account, name, issuer, token string, gen int64) (string, error) {
	now := b.now()
	return framework.PutWAL(ctx, sealWrapping{s}, walKindRevokeRefresh, &revokeWAL{
		Account: name, AccountsURL: issuer, Token: token, GiveUpAt: now.Add(revokeRetryFor).Unix(), Generation: gen, Tokens: a.mintedTokens(issuer, now),
	})
}

func (b *Backend) putExchangeWAL(ctx context.Context, s logical.Storage, name string, at time.Time) (string, error) {
	return framework.PutWAL(ctx, sealWrapping{s}, walKindExchange, &exchangeWAL{Account: name, At: at.UnixNano()})
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

// walRollback settles one entry under its account's lock.
func (b *Backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	var account string
	var settle func() error
	switch kind {
	case walKindRevokeRefresh:
		var entry revokeWAL
		settle = func() error { return b.settleRevokeLocked(ctx, req.Storage, &entry) }
		if err := decodeWAL(data, &entry, &account); err != nil {
			return err
		}
	case walKindExchange:
		var entry exchangeWAL
		settle = func() error { return b.settleExchangeLocked(ctx, req.Storage, &entry) }
		if err := decodeWAL(data, &entry, &account); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown write-ahead-log kind %q", kind)
	}
	unlock, err := b.locks.lock(ctx, account)
	if err != nil {
		return err
	}
	defer unlock()
	return settle()
}

// decodeWAL decodes an entry's data into out and reads its account.
func decodeWAL(data, out interface{}, account *string) error {
	if err := mapstructure.WeakDecode(data, out); err != nil {
		return fmt.Errorf("decoding write-ahead-log entry: %w", err)
	}
	var named struct {
		Account string `mapstructure:"account"`
	}
	if err := mapstructure.WeakDecode(data, &named); err != nil || named.Account == "" {
		return fmt.Errorf("write-ahead-log entry names no account")
	}
	*account = named.Account
	return nil
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
		if entry.GiveUpAt > 0 && !b.now().Before(time.Unix(entry.GiveUpAt, 0)) {
			return b.giveUpRevocationLocked(ctx, s, entry, cfg, err)
		}
		b.logger.Warn("retrying revocation of a refresh token failed; will retry", "account", entry.Account, "error", err)
		return fmt.Errorf("account %q: revoking a refresh token Vault gave up: %s", entry.Account, safeText(err))
	}
	b.logger.Info("refresh token revoked at Zoho", "account", entry.Account)
	return nil
}

// giveUpRevocationLocked ends the retries of a revocation that kept failing
// for revokeRetryFor: it says so in the log, the metrics and, if the account
// still exists, its status. The caller holds the account's lock.
func (b *Backend) giveUpRevocationLocked(ctx context.Context, s logical.Storage, entry *revokeWAL, cfg *accountConfig, err error) error {
	b.metrics.revocationsAbandoned.Inc()
	b.logger.Error("gave up revoking a refresh token Vault no longer uses: Zoho did not confirm it for "+revokeRetryFor.String()+"; revoke it under the user's Connected Apps in Zoho",
		"account", entry.Account, "accounts_server", entry.AccountsURL, "error", err)
	if cfg == nil {
		return nil
	}
	now := b.now()
	stored, err := b.setMarksLocked(ctx, s, entry.Account, func(m *accountMarks) { m.RevocationAbandonedAt = now.UTC() })
	if err != nil || stored == nil {
		return err
	}
	b.flagAttention(ctx, s, entry.Account, now)
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
	stored, err := b.setMarksLocked(ctx, s, entry.Account, func(m *accountMarks) { m.InterruptedExchangeAt = at })
	if err != nil || stored == nil {
		return err
	}
	b.flagAttention(ctx, s, entry.Account, b.now())
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
