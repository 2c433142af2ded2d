// The doors every change of an account's credentials goes through (see
// docs/design.md, "Invariants and how they are kept"):
//
//   - commitCredentialsLocked: every replacement of a refresh token (grant
//     code, import, consent, device approval), every new client secret,
//     client or accounts server, revoke/ and the stop of a client_credentials
//     account. It bumps the account's credentials epoch, records a replaced
//     refresh token for confirmed revocation before storing its successor,
//     stores, publishes to readers, ends the flows started under the old
//     epoch, and revokes the replaced token.
//   - setMarksLocked: the marks WAL settlements and lost device grants set,
//     updated in place on the live account object.
//   - evictAccount: the one way an account object leaves the in-memory map;
//     a reader still holding it can no longer write from it.
//   - flows (device authorizations, consents) carry the epoch they started
//     under and never write an account whose epoch moved on.

package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// credentialCommit is one change of an account's credentials.
type credentialCommit struct {
	prev, next *accountConfig // next holds the new values; prev is zero for a new account
	// tok is the token state of a new refresh token (or a new
	// client_credentials account); nil keeps the current one unless
	// clearTok drops it (revoke/).
	tok      *tokenState
	clearTok bool
	// replaced is the refresh token given up, revoked at prev's issuer once
	// next is stored.
	replaced string
	// exchangeWAL is the record of the grant-code exchange that brought tok,
	// deleted once tok's refresh token is stored.
	exchangeWAL string
	flow        *flowOrigin // the flow that makes this change (not ended by it)
	why         string      // what made the change, for the flows it ends
}

// commitOutcome is what a commit did beyond storing.
type commitOutcome struct {
	account  *account
	warnings []string
	// tokErr: the refresh token is stored, its access token could not be.
	tokErr error
	// revokeErr: Zoho has not confirmed the revocation of the replaced
	// refresh token; the write-ahead log retries it.
	revokeErr error
}

// credentialsMoved reports whether a change gives the account other
// credentials: flows started before it may no longer complete.
func credentialsMoved(prev, next *accountConfig) bool {
	return prev.RefreshToken != next.RefreshToken || credentialsChanged(prev, next) ||
		!prev.Marks().RevokedAt.Equal(next.Marks().RevokedAt)
}

// commitCredentialsLocked is the door every change of an account's
// credentials goes through (a is nil for a new account). The caller holds the
// account's lock.
func (b *Backend) commitCredentialsLocked(ctx context.Context, s logical.Storage, a *account, name string, c *credentialCommit) (*commitOutcome, error) {
	prev, next := c.prev, c.next
	moved := a == nil || credentialsMoved(prev, next)
	switch {
	case a == nil:
		// Unique across deletes and re-creations: a flow of a deleted
		// account never completes on its successor.
		next.Epoch = b.now().UnixNano()
	case moved:
		next.Epoch = prev.Epoch + 1
	}
	var walID string
	if c.replaced != "" {
		// Remember the replaced refresh token durably before storing its
		// successor, so that it is revoked even if this node dies right
		// after, and so that leases on its tokens know Zoho has not
		// confirmed it yet (revokeStaleLeaseLocked).
		var err error
		if walID, err = b.putRevokeWAL(ctx, s, a, name, refreshTokenIssuer(prev), c.replaced, prev.Generation); err != nil {
			return nil, err
		}
	}
	// A refresh token Zoho issued is stored before anything else is done with it.
	next.compact()
	if err := putJSON(ctx, s, configPrefix+name, next); err != nil {
		return nil, err
	}
	out := &commitOutcome{account: a}
	tok := c.tok
	switch {
	case tok != nil:
		// Then the access token that came with it, before it is served:
		// leases are only handed out on a token whose state is stored.
		if out.tokErr = putJSON(ctx, s, tokenPrefix+name, tok); out.tokErr != nil {
			// Not served; the next read refreshes. Zoho holds it as its
			// oldest live token, which no lease holds, so it may be evicted.
			tok = &tokenState{Generation: next.Generation, Requests: tok.Requests}
		}
	case c.clearTok:
		if err := s.Delete(ctx, tokenPrefix+name); err != nil {
			return nil, err
		}
	}
	switch {
	case a == nil:
		out.account = newAccount(name, next, tok, justMinted)
		b.accounts.Store(name, out.account)
	case tok != nil || c.clearTok:
		a.install(next, tok, justMinted)
	default:
		a.setConfig(next)
		if credentialsChanged(prev, next) || (!prev.Marks().RevokedAt.IsZero() && next.Marks().RevokedAt.IsZero()) {
			// Fixed, or resumed after revoke/: the next read may try at once.
			b.clearBackoff(ctx, s, a)
		}
	}
	if err := b.deleteWAL(ctx, s, c.exchangeWAL); err != nil {
		b.logger.Warn("could not delete the exchange record", "account", name, "error", err)
	}
	if moved && a != nil {
		out.warnings = append(out.warnings, b.endFlowsLocked(ctx, s, name, c.flow, c.why)...)
	}
	if c.tok != nil && a != nil && out.tokErr == nil {
		b.clearAttention(ctx, s, name) // a new refresh token: whatever needed an operator is settled
	}
	if c.replaced == "" || out.tokErr != nil {
		return out, nil // (after a tokErr the write-ahead log revokes it)
	}
	if err := b.revokeRefreshToken(ctx, refreshTokenIssuer(prev), c.replaced); err != nil {
		b.logger.Warn("could not revoke a refresh token the account gave up; will retry", "account", name, "error", err)
		out.revokeErr = err
	} else if err := b.deleteWAL(ctx, s, walID); err != nil {
		b.logger.Warn("could not delete revocation record", "account", name, "error", err)
	}
	return out, nil
}

// flowOrigin is a consent or device authorization completing: it may change
// the account only while the account's credentials are those it started
// under.
type flowOrigin struct {
	epoch   int64
	device  string      // the device authorization's ID (device approvals)
	granted *zoho.Token // the token a device approval brought
	what    string      // "the consent started at …", for errors
}

// errSuperseded answers a flow whose account's credentials changed after it started.
func supersededError(name string, f *flowOrigin) error {
	return logical.CodedError(http.StatusConflict, fmt.Sprintf(
		"account %q: %s was superseded: the account's credentials were changed after it started, so it may not replace them; nothing was exchanged or stored; start a new one if it is still wanted",
		name, f.what))
}

// endFlowsLocked ends the account's pending device authorization (unless it
// is the flow making the change) after a change of its credentials, and says
// so. A pending consent needs no storage change: its state carries the epoch
// it started under, and the callback refuses it (see flowOrigin). The caller
// holds the account's lock.
func (b *Backend) endFlowsLocked(ctx context.Context, s logical.Storage, name string, keep *flowOrigin, why string) []string {
	var rec deviceRecord
	found, err := getJSON(ctx, s, devicePrefix+name, &rec)
	if err != nil {
		// Not ended here: its next poll sees the epoch moved and ends it.
		b.logger.Warn("could not read the device authorization to end it after a change of credentials", "account", name, "error", err)
		return nil
	}
	if !found || rec.State != paths.DeviceStatePending || (keep != nil && keep.device == rec.ID) {
		return nil
	}
	if why == "" {
		why = "a change of the account's credentials"
	}
	rec.LastAnswer = "ended before the user decided: " + why + " changed the account's credentials; start a new device authorization if it is still wanted"
	b.endDeviceLocked(ctx, s, name, &rec, nil, paths.DeviceStateSuperseded, b.now())
	return []string{fmt.Sprintf(
		"the pending device authorization (user code %s) was ended: it started before this change of the account's credentials and may no longer replace them; write device/%s to start a new one if it is still wanted",
		rec.UserCode, name)}
}

// setMarksLocked changes the account's marks (a WAL settlement, a lost device
// grant) in storage and on the live account object, which readers keep
// using. It returns the stored configuration, nil if the account does not
// exist. The caller holds the account's lock.
func (b *Backend) setMarksLocked(ctx context.Context, s logical.Storage, name string, change func(*accountMarks)) (*accountConfig, error) {
	a := b.cachedAccount(name)
	var next accountConfig
	if a != nil {
		a.mu.Lock()
		next = *a.cfg
		a.mu.Unlock()
	} else {
		cfg, err := loadConfig(ctx, s, name)
		if err != nil || cfg == nil {
			return nil, err
		}
		next = *cfg
	}
	marks := next.Marks()
	change(&marks)
	next.SetMarks(marks)
	if err := putJSON(ctx, s, configPrefix+name, &next); err != nil {
		return nil, err
	}
	if a != nil {
		a.setConfig(&next)
	}
	return &next, nil
}

// errAccountGone refuses a write from an account object that is no longer
// the live one (evictAccount): the caller loads the account again.
var errAccountGone = errors.New("the account was reloaded or deleted meanwhile")

// evictAccount is the one way an account object leaves the in-memory maps
// (a delete; another node's write): it is marked gone first, under its mu,
// so that a reader still holding it can no longer store its token state over
// the live object's (persistTokenLocked refuses).
func (b *Backend) evictAccount(a *account) {
	a.mu.Lock()
	a.gone.Store(true)
	a.mu.Unlock()
	b.accounts.CompareAndDelete(a.name, a)
	b.inUse.CompareAndDelete(a.name, a)
}

// unconfirmedRevocation returns the pending revocation of the refresh token
// the lease's access token came from, nil if Zoho confirmed it (or it was
// never given up). An entry names the tokens it covers (generations repeat
// when an account is deleted and created again); entries written before
// they did count for every lease of the account.
func (b *Backend) unconfirmedRevocation(ctx context.Context, s logical.Storage, l paths.LeaseData) (*revokeWAL, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		w, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if w == nil || w.Kind != walKindRevokeRefresh {
			continue
		}
		var entry revokeWAL
		if mapstructure.WeakDecode(w.Data, &entry) != nil || entry.Account != l.Account {
			continue
		}
		if _, ok := entry.Tokens[l.TokenID]; ok || (entry.Generation == 0 && entry.Tokens == nil) {
			return &entry, nil
		}
	}
	return nil, nil
}

// revokeStaleLeaseLocked ends a lease whose token came from a refresh token
// the account gave up (revoke/, delete, a new grant). Revoking a refresh
// token kills its access tokens, but only once Zoho confirmed it: until then
// the lease's access token is revoked itself, and a failure is returned so
// that Vault retries. The caller holds the account's lock.
func (b *Backend) revokeStaleLeaseLocked(ctx context.Context, s logical.Storage, l paths.LeaseData) error {
	if !b.now().Before(l.ExpiresAt) {
		return nil // expired: dead at Zoho whatever happened to its refresh token
	}
	entry, err := b.unconfirmedRevocation(ctx, s, l)
	if err != nil {
		return fmt.Errorf("account %q: looking up the revocation of the refresh token a lease's token came from: %w", l.Account, err)
	}
	if entry == nil {
		return nil // confirmed: its access tokens died with it
	}
	issuer := entry.AccountsURL
	if minter, ok := entry.Tokens[l.TokenID]; ok {
		issuer = minter // where it was minted (the account may have moved since the grant)
	}
	if err := b.revokeAt(ctx, issuer, l.AccessToken); err != nil {
		b.logger.Warn("could not revoke the access token of a lease whose refresh token's revocation Zoho has not confirmed; Vault retries the lease revocation", "account", l.Account, "error", err)
		return fmt.Errorf("revoking the access token of account %q at Zoho (the revocation of the refresh token it came from is not confirmed yet): %w", l.Account, upstreamError(l.Account, err))
	}
	b.metrics.revocations.WithLabelValues("access").Inc()
	return nil
}

// supersededDeviceAnswer is the last answer of a device authorization that
// was not polled because the account's credentials moved on.
const supersededDeviceAnswer = "not polled: the account's credentials changed since it started (a new grant, client secret, client or accounts server, or revoke/); start a new device authorization if it is still wanted"

// mintedTokens maps the account's unexpired access tokens (those marked
// revoked too: an eviction the engine assumed may have hit another token,
// and Zoho answers a second revocation as invalid, which counts as done) to
// the accounts server that minted them (issuer for tokens stored before it was recorded):
// the revocation record of the refresh token they came from lists them, so
// that a lease of one of them is revoked where it was minted while that
// revocation is unconfirmed. nil for a nil account.
func (a *account) mintedTokens(issuer string, now time.Time) map[string]string {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for _, r := range a.records {
		if r.Unknown || !now.Before(r.ExpiresAt) {
			continue
		}
		out[r.ID] = issuer
		if r.Issuer != "" {
			out[r.ID] = r.Issuer
		}
	}
	return out
}
