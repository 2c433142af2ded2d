// Reports of access tokens Zoho rejected (creds/<name> rejected=<token_id>):
// the token is never served again and, if it was the current one, one
// refresh replaces it.

package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// ReplaceRejectedCreds implements paths.Engine. Zoho kills every access token
// of a refresh token when the user removes the app under Connected Apps or
// changes their password, and the oldest when too many are live; nothing
// tells the engine. A reader whose call Zoho rejected names the token by its
// token_id (never the token itself):
//
//   - the reported token is retired: no new lease, no renewal (Vault Agent
//     reads anew), and, stored so, not after a restart either. It is not
//     marked revoked (the report may be wrong, and a token counted dead that
//     Zoho still counts would let the engine mint past the live-token cap);
//     it is revoked at Zoho with its last lease, as any retired token.
//   - if it is the current token, one refresh replaces it: concurrent reports
//     of it share that refresh (a singleflight keyed by the token), which goes
//     through refreshLocked like any other, so Zoho's budget, back-off and the
//     live-token cap hold (a spent budget is a 429 naming when to retry). If
//     Zoho answers invalid_code the account needs re-authorization at once
//     (recordFailureLocked), is flagged for attention/, and every later read
//     fails without calling Zoho.
//   - otherwise (it was replaced already, or is unknown) the current token is
//     served as by IssueCreds: no token request.
func (b *Backend) ReplaceRejectedCreds(ctx context.Context, s logical.Storage, name, rejected string, minTTL time.Duration, hold paths.Holding) (*paths.Creds, error) {
	a, err := b.account(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, noAccountError(name)
	}
	current := b.retireRejected(s, a, rejected)
	if !current {
		b.metrics.rejectedReports.WithLabelValues("replaced").Inc()
		return b.IssueCreds(ctx, s, name, minTTL, hold)
	}
	b.metrics.rejectedReports.WithLabelValues("current").Inc()
	ch := b.flights.DoChan(rejectedFlight(name, rejected), func() (interface{}, error) {
		return nil, b.replaceRejected(s, a, rejected)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, rejectedError(name, rejected, res.Err)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.IssueCreds(ctx, s, name, minTTL, hold)
}

// rejectedFlight is the singleflight key of the refresh that replaces a
// rejected token: one per token, apart from the account's ordinary refresh
// (which may find the view good enough and not refresh). Account names hold
// no NUL.
func rejectedFlight(name, id string) string { return "rejected\x00" + name + "\x00" + id }

// retireRejected retires the reported token if the account tracks it, and
// reports whether it is the account's current token (which then needs a
// refresh). The retirement is stored on a best-effort basis: a failure is
// logged and the token stays retired in memory (the refresh stores it again
// before it is sent).
func (b *Backend) retireRejected(s logical.Storage, a *account, id string) (current bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := a.recordLocked(id)
	if rec == nil {
		return false
	}
	current = a.tok.TokenID == id
	rec.retired.Store(true)
	a.dropViewLocked(rec)
	if rec.Rejected {
		return current
	}
	rec.Rejected = true
	wasRetired := rec.Retired
	rec.Retired = true
	ctx, cancel := b.upstreamCtx()
	defer cancel()
	if err := b.persistTokenLocked(ctx, s, a); err != nil && !errors.Is(err, errAccountGone) {
		b.logger.Warn("could not store a rejected access token's retirement; it stays retired in memory", "account", a.name, "token_id", id, "error", err)
	}
	b.logger.Info("access token reported as rejected by Zoho: it is not served again", "account", a.name, "token_id", id,
		"current", current, "was_retired", wasRetired, "leases", rec.outstanding())
	return current
}

// replaceRejected refreshes the account unless its current token is no
// longer the rejected one (another report or refresh replaced it while this
// one waited for the lock). It runs once for every coalesced report.
func (b *Backend) replaceRejected(s logical.Storage, a *account, id string) error {
	unlock, err := b.locks.lock(b.bgCtx, a.name)
	if err != nil {
		return err
	}
	defer unlock()
	if b.cachedAccount(a.name) != a {
		return nil // deleted or reloaded: the caller reads the live account
	}
	a.mu.Lock()
	replaced := a.tok.TokenID != id
	a.mu.Unlock()
	if replaced {
		return nil
	}
	return b.refreshLocked(s, a)
}

// rejectedError says that the rejected token is not served again, with what
// kept its successor from being minted (keeping that error's status: 429 for
// the budget, 400 for re-authorization, 502 for Zoho out of reach).
func rejectedError(name, id string, err error) error {
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return logical.CodedError(coded.Code(), fmt.Sprintf(
			"%s (the access token %s that Zoho rejected is not served again; no other token could be minted)", err.Error(), id))
	}
	return fmt.Errorf("account %q: replacing the access token %s that Zoho rejected: %w", name, id, err)
}
