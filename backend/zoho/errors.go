package zoho

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind classifies a failed call to Zoho's accounts server.
type Kind int

const (
	// KindRejected: Zoho answered with an OAuth error code (often with HTTP 200).
	KindRejected Kind = iota + 1
	// KindThrottled: Zoho's "Access Denied" answer to too many token requests.
	KindThrottled
	// KindTransport: the request did not complete (timeout, reset, DNS, TLS).
	KindTransport
	// KindServer: Zoho answered with an HTTP 5xx status.
	KindServer
	// KindMalformed: the answer could not be understood (not JSON, truncated,
	// or neither a token nor an error).
	KindMalformed
)

func (k Kind) String() string {
	switch k {
	case KindRejected:
		return "rejected"
	case KindThrottled:
		return "throttled"
	case KindTransport:
		return "unreachable"
	case KindServer:
		return "server error"
	case KindMalformed:
		return "malformed answer"
	}
	return "unknown"
}

// Zoho error codes the engine reacts to.
const (
	CodeInvalidCode         = "invalid_code"
	CodeInvalidClient       = "invalid_client"
	CodeInvalidClientSecret = "invalid_client_secret"
	CodeInvalidRedirectURI  = "invalid_redirect_uri"
	CodeAccessDenied        = "access_denied"
	CodeThrottled           = "Access Denied"
	CodeInvalidToken        = "invalid_token"
	CodeMissingOrgInfo      = "missing_org_info"
	CodeInvalidScope        = "invalid_scope"
)

// Error is a failed call to Zoho. Its message never contains a secret: it is
// built only from the operation, Zoho's error code and description, and the
// HTTP status.
type Error struct {
	Op          string // "code exchange", "refresh", "client credentials", "revoke"
	Kind        Kind
	Code        string // Zoho's error code, e.g. invalid_code; empty for transport failures
	Description string // Zoho's error_description, if any (truncated)
	HTTPStatus  int    // 0 when no answer arrived
	Err         error  // underlying transport error, if any
	// UserLocation is the data center Zoho named in an other_dc answer to a
	// device token poll (truncated, not checked against the table: see
	// FollowOtherDC); empty otherwise.
	UserLocation string
	// NotSent is set on a transport failure of a request that never left this
	// host (the connection could not be opened, the URL was unusable): Zoho
	// did nothing. Any other transport failure may have reached Zoho.
	NotSent bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("zoho ")
	b.WriteString(e.Op)
	b.WriteString(" failed: ")
	switch {
	case e.Code != "":
		fmt.Fprintf(&b, "Zoho answered %q", e.Code)
		if e.Description != "" {
			fmt.Fprintf(&b, " (%s)", e.Description)
		}
	case e.Err != nil:
		b.WriteString(e.Kind.String())
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Kind.String())
		if e.Description != "" {
			b.WriteString(": ")
			b.WriteString(e.Description)
		}
	}
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " [HTTP %d]", e.HTTPStatus)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed without any change
// by an operator.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case KindThrottled, KindTransport, KindServer, KindMalformed:
		return true
	case KindRejected:
		// A device authorization still waiting for the user.
		return e.Code == CodeAuthorizationPending || e.Code == CodeSlowDown
	}
	return false
}

// Hint tells an operator what to do about the error.
func (e *Error) Hint() string {
	switch e.Kind {
	case KindThrottled:
		if e.Op == OpClientCredentials {
			return "Zoho throttles client-credentials tokens like refreshes (10 per 10 minutes); wait for the window to clear"
		}
		return "Zoho allows 10 access tokens per refresh token per 10 minutes; wait for the window to clear"
	case KindTransport, KindServer, KindMalformed:
		return "Zoho's accounts server could not be used; the engine retries with back-off"
	}
	if h := deviceHint(e); h != "" {
		return h
	}
	switch e.Code {
	case CodeInvalidCode:
		if e.Op == OpClientCredentials {
			return "Zoho refused the client credentials grant: check that the client is a Self Client and that its scopes and soid are right"
		}
		if e.Op == OpExchange {
			return "the grant code is expired or already used: generate a new one and write it as grant_code within its lifetime"
		}
		return "the refresh token was revoked, evicted or never valid: re-authorize by writing a new grant_code (or refresh_token) to the account"
	case CodeInvalidClient:
		return "the client_id is unknown in this data center: check client_id and data_center (or accounts_url)"
	case CodeInvalidClientSecret:
		return "the client_secret is wrong for this data center: write the correct client_secret"
	case CodeInvalidRedirectURI:
		return "redirect_uri must match one registered for the client in Zoho's API console exactly"
	case CodeAccessDenied:
		return "Zoho refused the request (consent refused or too many grant codes): try again later"
	case CodeInvalidScope:
		return "Zoho does not accept the scopes for this client: check scopes (Service.scope.OPERATION, comma-separated)"
	case CodeMissingOrgInfo:
		return "the client's product has several organisations or portals: set soid on the account to <Service>.<org id> (e.g. soid=ZohoCRM.600000000434, the org id shown under the product's organisation settings)"
	}
	return "check the account's client credentials and data center"
}

// Operation names used in errors.
const (
	OpExchange          = "code exchange"
	OpRefresh           = "refresh"
	OpClientCredentials = "client credentials"
	OpRevoke            = "revoke"
)

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var ze *Error
	if errors.As(err, &ze) {
		return ze, true
	}
	return nil, false
}

// NeverSent reports whether err is a transport failure of a request that never
// reached Zoho (see Error.NotSent), so that Zoho cannot have acted on it: no
// token was minted, no grant code used. Any other failure without an answer
// (a reset, a timeout, a body cut short) may have been carried out.
func NeverSent(err error) bool {
	ze, ok := AsError(err)
	return ok && ze.Kind == KindTransport && ze.NotSent
}

// IsThrottled reports whether err is Zoho's "Access Denied" token throttle.
func IsThrottled(err error) bool {
	ze, ok := AsError(err)
	return ok && ze.Kind == KindThrottled
}

// IsInvalidGrant reports whether Zoho rejected the grant itself: an expired or
// used grant code, or a revoked, evicted or unknown refresh token.
func IsInvalidGrant(err error) bool {
	ze, ok := AsError(err)
	return ok && ze.Kind == KindRejected && ze.Code == CodeInvalidCode
}

// IsTokenInvalid reports whether a revoke failed because Zoho answered
// explicitly that the token is invalid (already dead, or never existed); for
// revocation that counts as success. Any other failure, a bare HTTP 400
// included, does not.
func IsTokenInvalid(err error) bool {
	ze, ok := AsError(err)
	return ok && ze.Op == OpRevoke && ze.Kind == KindRejected && ze.Code == CodeInvalidToken
}

// IsTemporary reports whether err is a Zoho failure that may clear by itself.
func IsTemporary(err error) bool {
	ze, ok := AsError(err)
	return ok && ze.Temporary()
}

// redact returns err with every occurrence of the secrets, raw or
// URL-escaped, removed from the text of its *Error: an answer that echoes a
// token, or a transport error naming the request URL, must not show it. Codes
// this package defines are left alone.
func redact(err error, secrets ...string) error {
	ze, ok := err.(*Error)
	if !ok || ze == nil {
		return err
	}
	var pairs []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		pairs = append(pairs, s, "[redacted]")
		if q := url.QueryEscape(s); q != s {
			pairs = append(pairs, q, "[redacted]")
		}
		if p := url.PathEscape(s); p != s {
			pairs = append(pairs, p, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return err
	}
	r := strings.NewReplacer(pairs...)
	out := *ze
	if !knownCode(out.Code) {
		out.Code = r.Replace(out.Code)
	}
	out.Description = r.Replace(out.Description)
	out.UserLocation = r.Replace(out.UserLocation)
	if out.Err != nil {
		if msg := out.Err.Error(); r.Replace(msg) != msg {
			out.Err = errors.New(r.Replace(msg))
		}
	}
	return &out
}

func knownCode(code string) bool {
	switch code {
	case CodeInvalidCode, CodeInvalidClient, CodeInvalidClientSecret, CodeInvalidRedirectURI,
		CodeAccessDenied, CodeThrottled, CodeInvalidToken, CodeMissingOrgInfo, CodeInvalidScope:
		return true
	}
	return isDeviceCode(code)
}
