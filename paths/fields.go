package paths

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Field names. Other tooling (policies, templates, Terraform) depends on them.
const (
	FieldName         = "name"
	FieldClientID     = "client_id"
	FieldClientSecret = "client_secret"
	FieldDataCenter   = "data_center"
	FieldAccountsURL  = "accounts_url"
	FieldRedirectURI  = "redirect_uri"
	FieldScopes       = "scopes"
	FieldGrantCode    = "grant_code"
	FieldRefreshToken = "refresh_token"
	FieldLiveTokenCap = "live_token_cap"
	FieldGrantType    = "grant_type"
	FieldSOID         = "soid"
	FieldMinTTL       = "min_ttl"
	FieldRejected     = "rejected"

	FieldAccessToken = "access_token"
	FieldAPIDomain   = "api_domain"
	FieldTokenType   = "token_type"
	FieldExpiresAt   = "expires_at"
	FieldTokenID     = "token_id"
)

// TokenIDLen is the length of a token_id: the first 12 bytes of the SHA-256
// of the access token, in lowercase hex. It names a token without revealing
// it (see tokenIDDescription).
const TokenIDLen = 24

var tokenIDRe = regexp.MustCompile(`^[0-9a-f]{24}$`)

// validTokenID reports whether s has the shape of a token_id.
func validTokenID(s string) bool { return tokenIDRe.MatchString(s) }

const tokenIDDescription = "Non-secret fingerprint of the access token (the first 96 bits of its SHA-256, in hex): " +
	"it names the token in logs, tickets and rejected= reports without revealing it (a Zoho access token carries 256 random bits, " +
	"far beyond any search of a 96-bit hash). After Zoho rejects the token (INVALID_OAUTHTOKEN, INVALID_TOKEN or HTTP 401), " +
	"read creds/<name> again with rejected=<token_id> for a fresh one."

// Grant types of an account (the grant_type field): how it gets access tokens.
const (
	// GrantRefreshToken: the account holds a Zoho user's refresh token (from
	// a grant code, the consent redirect or an import) and mints with it. The
	// default.
	GrantRefreshToken = "refresh_token"
	// GrantClientCredentials: the client (a Self Client) mints with its own
	// credentials, for its scopes and, for products with several
	// organisations, the organisation named by soid. No refresh token.
	GrantClientCredentials = "client_credentials"
)

// Limits on input sizes: anything longer is a mistake, not a credential.
const (
	maxNameLen       = 128
	maxIDLen         = 256
	maxSecretLen     = 1024
	maxURLLen        = 2048
	maxSOIDLen       = 128
	maxScopes        = 100
	maxScopeLen      = 256
	maxLiveTokenCap  = 30
	defaultLiveCap   = 10
	operationPrefix  = "zoho"
	accountNameRegex = `(?P<name>.+)`
)

// nameRe is Vault's generic name pattern (letters, digits, '_', '-', '.', not
// starting or ending with '-' or '.'), anchored. It lets "a..b" through, which
// Vault's storage refuses as a relative path in every key holding the name;
// validateName refuses it.
var nameRe = regexp.MustCompile(`^\w(([\w.-]+)?\w)?$`)

// nameRule is the account-name rule as the field's description and the error
// state it.
const nameRule = "letters, digits, '_', '-' and '.', not starting or ending with '-' or '.', no two '.' in a row"

func nameField() *framework.FieldSchema {
	return &framework.FieldSchema{
		Type:        framework.TypeString,
		Description: "Name of the Zoho account: " + nameRule + ".",
		Required:    true,
	}
}

// InputError is a request the caller must correct; it becomes HTTP 400 and
// always names the field.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

func inputErr(field, format string, args ...interface{}) *InputError {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// badRequest turns an input error into Vault's 400 response.
func badRequest(err *InputError) (*logical.Response, error) {
	return logical.ErrorResponse(err.Error()), nil
}

// namedHandler adapts a handler of one account: unknown fields and a bad
// name are answered 400 before it runs.
func namedHandler(h func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error)) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		if ie := rejectUnknownFields(req, d); ie != nil {
			return badRequest(ie)
		}
		name := d.Get(FieldName).(string)
		if ie := validateName(name); ie != nil {
			return badRequest(ie)
		}
		return h(ctx, req, d, name)
	}
}

// tokenFields describe what a creds/ read returns (response schema and the
// lease type's fields alike).
func tokenFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		FieldAccessToken: {Type: framework.TypeString, Description: "Access token, sent as 'Authorization: Zoho-oauthtoken <access_token>'."},
		FieldAPIDomain:   {Type: framework.TypeString, Description: "Base URL of the account's Zoho APIs, as Zoho returned it."},
		FieldTokenType:   {Type: framework.TypeString, Description: "Token type Zoho reported (Bearer)."},
		FieldExpiresAt:   {Type: framework.TypeString, Description: "When the access token expires (RFC 3339)."},
		FieldScopes:      {Type: framework.TypeCommaStringSlice, Description: "Scopes of the token."},
		FieldTokenID:     {Type: framework.TypeString, Description: tokenIDDescription},
	}
}

// validateName checks the captured account name.
func validateName(name string) *InputError {
	switch {
	case name == "":
		return inputErr(FieldName, "must not be empty")
	case len(name) > maxNameLen:
		return inputErr(FieldName, "must be at most %d characters", maxNameLen)
	case !nameRe.MatchString(name) || strings.Contains(name, ".."):
		return inputErr(FieldName, "%q is not a valid name: use %s", truncateForMsg(name), nameRule)
	}
	return nil
}

// rejectUnknownFields answers 400 for fields the path does not declare:
// a misspelt field must not be silently ignored.
func rejectUnknownFields(req *logical.Request, d *framework.FieldData) *InputError {
	var unknown []string
	for k := range req.Data {
		if _, ok := d.Schema[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	for i, k := range unknown {
		unknown[i] = truncateForMsg(k)
	}
	return inputErr(unknown[0], "unknown field (this path does not accept: %s)", strings.Join(unknown, ", "))
}

// optString returns a string field if it was given, trimmed of surrounding
// white space (values written with key=@file end in a newline), rejecting
// empty values, control characters and values over max bytes.
func optString(d *framework.FieldData, field string, max int) (*string, *InputError) {
	raw, ok := d.GetOk(field)
	if !ok {
		return nil, nil
	}
	s, _ := raw.(string)
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, inputErr(field, "must not be empty")
	}
	if len(s) > max {
		return nil, inputErr(field, "must be at most %d characters", max)
	}
	if strings.ContainsAny(s, "\x00\r\n") {
		return nil, inputErr(field, "must not contain control characters")
	}
	return &s, nil
}

// validateRedirectURI accepts an absolute http(s) URL.
func validateRedirectURI(s string) *InputError {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return inputErr(FieldRedirectURI, "must be an absolute http(s) URL registered for the client in Zoho's API console")
	}
	return nil
}

// scopeRe is the shape of a Zoho scope, Service.scope.OPERATION: a service
// name, one or more scope parts (CRM's module scopes have two, as in
// ZohoCRM.modules.leads.READ) and the operation, separated by single dots.
// Case varies between products (ZohoAnalytics.data.all,
// AaaServer.profile.READ).
var scopeRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+){2,}$`)

// scopeRule is the scope rule as the field's description and the error state
// it.
const scopeRule = "Zoho's Service.scope.OPERATION, such as ZohoCRM.modules.ALL or ZohoAnalytics.data.read; several scopes are comma-separated (or a list)"

// normalizeScopes trims and de-duplicates scopes, keeping their order. Every
// scope has Zoho's shape, and at least one is named: a write of scopes that
// names none (scopes=) is refused, as a token request or a consent without
// scopes would be.
func normalizeScopes(in []string) ([]string, *InputError) {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if len(s) > maxScopeLen {
			return nil, inputErr(FieldScopes, "%q is too long for a Zoho scope (at most %d characters)", truncateForMsg(s), maxScopeLen)
		}
		if !scopeRe.MatchString(s) {
			return nil, inputErr(FieldScopes, "%q is not a Zoho scope: expected %s", truncateForMsg(s), scopeRule)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, inputErr(FieldScopes, "must name at least one scope (%s); the account's scopes are sent with its token requests, consent and device authorizations, so they cannot be removed", scopeRule)
	}
	if len(out) > maxScopes {
		return nil, inputErr(FieldScopes, "at most %d scopes", maxScopes)
	}
	return out, nil
}

func truncateForMsg(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// respondError maps an engine error to a response: input errors become 400
// naming the field, errors that carry an HTTP status keep it (as a plain JSON
// error body, without the "1 error occurred" wrapping Vault adds to handler
// errors), anything else is an internal error.
func respondError(err error) (*logical.Response, error) {
	var ie *InputError
	if errors.As(err, &ie) {
		return badRequest(ie)
	}
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) {
		return nil, err
	}
	if coded.Code() == http.StatusBadRequest {
		return logical.ErrorResponse(err.Error()), nil
	}
	body, jerr := json.Marshal(map[string][]string{"errors": {err.Error()}})
	if jerr != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: "application/json",
		logical.HTTPStatusCode:  coded.Code(),
		logical.HTTPRawBody:     body,
	}}, nil
}
