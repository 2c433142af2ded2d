// Errors returned to Vault: which account, what Zoho said, what to do; never a
// secret.

package backend

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// Errors of the engine say which account, what Zoho said and what to do; they
// never contain a secret. Statuses: 400 when an operator must act (an action
// on an unknown account, Zoho rejected the client, the secret, the code), 429
// while Zoho's token budget is spent or Zoho throttles, 503 while backing off
// after failures, 502 when Zoho could not be reached or failed.

// noAccountError answers an action on an account that does not exist (creds,
// revoke, auth-url) with 400 naming it and what to write; reading the account
// itself (config/, status/) answers 404, as Vault does for any absent object.
// (Vault's client and CLI turn a 404 on a read into "no value", which would
// hide this message.)
func noAccountError(name string) error {
	return &paths.InputError{Field: paths.FieldName, Msg: fmt.Sprintf("no account named %q: write config/%s first", name, name)}
}

func noRefreshTokenError(name string) error {
	return logical.CodedError(http.StatusBadRequest, fmt.Sprintf(
		"account %q holds no refresh token: write a grant_code (or refresh_token) to config/%s", name, name))
}

func reauthError(name, lastErr string) error {
	return logical.CodedError(http.StatusBadRequest, fmt.Sprintf(
		"account %q needs re-authorization: Zoho no longer accepts its refresh token (%s); write a new grant_code (or refresh_token) to config/%s",
		name, lastErr, name))
}

func budgetError(name, holder string, limit int, window time.Duration, until time.Time) error {
	return logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf(
		"account %q: Zoho's budget of %d token requests per %s for %s is spent; next request allowed at %s",
		name, limit, window, holder, until.UTC().Format(time.RFC3339)))
}

func backoffError(name, holder, lastErr string, until time.Time, throttled bool) error {
	status := http.StatusServiceUnavailable
	what := "backing off after failed token requests"
	if throttled {
		status = http.StatusTooManyRequests
		what = "Zoho throttled " + holder + " (\"Access Denied\")"
	}
	return logical.CodedError(status, fmt.Sprintf(
		"account %q: %s (last error: %s); next attempt at %s",
		name, what, lastErr, until.UTC().Format(time.RFC3339)))
}

func liveCapError(name string, capacity int, rec *leaseRecord) error {
	until := rec.ExpiresAt.UTC().Format(time.RFC3339)
	holders := "static-creds/ handed out unleased, so it is held until it expires; wait until " + until
	if !rec.pinned.Load() {
		holders = fmt.Sprintf("%d lease(s) still hold; revoke those leases or wait until %s", rec.outstanding(), until)
	}
	return logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf(
		"account %q: a new access token would make Zoho invalidate the oldest of the %d live ones, which %s", name, capacity, holders))
}

// upstreamError wraps a failed call to Zoho for the caller.
func upstreamError(name string, err error) error {
	ze, ok := zoho.AsError(err)
	if !ok {
		return fmt.Errorf("account %q: %w", name, err)
	}
	return logical.CodedError(upstreamStatus(ze), fmt.Sprintf("account %q: %s; %s", name, ze.Error(), ze.Hint()))
}

// upstreamStatus is the one rule on every path: Zoho rejected what an
// operator must fix → 400; throttled → 429; Zoho out of reach or failing → 502.
func upstreamStatus(ze *zoho.Error) int {
	switch ze.Kind {
	case zoho.KindThrottled:
		return http.StatusTooManyRequests
	case zoho.KindRejected:
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

// fieldError reports Zoho's rejection of a value written to config/ as a 400
// naming the field; temporary failures stay 502.
//
// A write is one-shot: nothing retries it, so a temporary failure says what
// the operator must do instead of promising a retry.
func fieldError(name, field string, err error) error {
	ze, ok := zoho.AsError(err)
	if !ok {
		return upstreamError(name, err)
	}
	if ze.Temporary() {
		status := http.StatusBadGateway
		if ze.Kind == zoho.KindThrottled {
			status = http.StatusTooManyRequests
		}
		again := "write it again"
		if field == paths.FieldGrantCode {
			again = "write a new grant_code (this one may have expired or been used meanwhile), or open a new auth-url"
		}
		return logical.CodedError(status, fmt.Sprintf("account %q: %s; nothing was stored and nothing will retry: once Zoho is reachable, %s", name, ze.Error(), again))
	}
	return &paths.InputError{Field: field, Msg: fmt.Sprintf("account %q: %s; %s; nothing was stored", name, ze.Error(), ze.Hint())}
}

// notVerifiedError answers a config write whose new credentials could not be
// verified because no token request could be sent (Zoho's budget, the
// live-token cap) or its answer not stored: nothing of the write was stored.
func notVerifiedError(name string, err error) error {
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return logical.CodedError(coded.Code(), fmt.Sprintf(
			"%s; the new configuration of account %q could not be verified, so nothing was stored: write it again once a token request is allowed", err.Error(), name))
	}
	return fmt.Errorf("account %q: the new configuration could not be verified, so nothing was stored: %w", name, err)
}

// safeText is an error's text if it is one of Zoho's (which never carry
// secrets), else a generic description.
func safeText(err error) string {
	text, _ := describeError(err)
	return text
}

// describeError returns a secret-free description of a failed token request
// and Zoho's error code (or the failure kind) for status and metrics.
func describeError(err error) (text, code string) {
	ze, ok := zoho.AsError(err)
	if !ok {
		return "internal error", "internal"
	}
	code = ze.Code
	if code == "" {
		code = ze.Kind.String()
	}
	return ze.Error(), code
}

// leaseEndedError answers the renewal of a lease that cannot go on.
func leaseEndedError(name, why string) error {
	return logical.CodedError(http.StatusBadRequest, fmt.Sprintf(
		"account %q: the lease cannot be renewed: %s; read creds/%s again for a current token", name, why, name))
}
