package paths

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

// The data-center table lives in backend/zoho; the schema and the validation
// below are derived from it.

func dataCenterValues() []interface{} {
	codes := zoho.DataCenterCodes()
	out := make([]interface{}, len(codes))
	for i, c := range codes {
		out[i] = c
	}
	return out
}

func dataCenterHelp() string {
	return "Zoho data center of the account: " + strings.Join(zoho.DataCenterCodes(), ", ") +
		". It selects the accounts server that issues and revokes tokens. Defaults to " + zoho.DefaultDataCenter + "."
}

// soidRe is the shape of a soid: <Service>.<org id>, e.g. ZohoCRM.600000000434.
var soidRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*\.[0-9]+$`)

func configFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		FieldName: nameField(),
		FieldGrantType: {
			Type: framework.TypeString,
			Description: "How the account gets access tokens. refresh_token (the default): it holds a Zoho user's refresh token, " +
				"from a grant_code, the consent redirect (auth-url/) or an imported refresh_token. client_credentials: the client, " +
				"a Self Client, mints tokens with its own client_id and client_secret for its scopes (required) and, for products " +
				"with several organisations, the one named by soid; it takes no grant_code, refresh_token or redirect_uri, and its " +
				"credentials are verified by minting the first token when the account is written. Fixed once the account exists: " +
				"delete the account and write it again to change it.",
			Default:       GrantRefreshToken,
			AllowedValues: []interface{}{GrantRefreshToken, GrantClientCredentials},
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Grant type",
			},
		},
		FieldSOID: {
			Type: framework.TypeString,
			Description: "client_credentials accounts only: the organisation (or portal) tokens are minted for, as <Service>.<org id>, " +
				"e.g. ZohoCRM.600000000434 (the org id Zoho shows in the product's organisation settings). Products with several " +
				"organisations need it: without it Zoho answers missing_org_info. Write an empty value to remove it.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Service organisation ID (soid)",
			},
		},
		FieldClientID: {
			Type:        framework.TypeString,
			Description: "OAuth client ID from Zoho's API console (https://api-console.zoho.com). Required when the account is created.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Client ID",
			},
		},
		FieldClientSecret: {
			Type: framework.TypeString,
			Description: "OAuth client secret from Zoho's API console. Required when the account is created. Write-only: it is never returned. " +
				"A new secret written to an account that can mint (it holds a refresh token, or uses client_credentials) is verified first " +
				"by one token request with it, whose token becomes the current one; if Zoho rejects it, the write answers 400 and the old " +
				"secret stays in use.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Client secret",
				Sensitive: true,
			},
		},
		FieldDataCenter: {
			Type:          framework.TypeString,
			Description:   dataCenterHelp(),
			Default:       zoho.DefaultDataCenter,
			AllowedValues: dataCenterValues(),
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Data center",
			},
		},
		FieldAccountsURL: {
			Type:        framework.TypeString,
			Description: "Accounts server to use instead of the data center's, such as the accounts-server value Zoho passes back on consent. Must use https; plain http is accepted only for loopback hosts (the simulator). Write an empty value to go back to the data center's accounts server.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Accounts server URL",
			},
		},
		FieldRedirectURI: {
			Type:        framework.TypeString,
			Description: "Redirect URI registered for the client. Zoho requires it when a grant code from the redirect flow is exchanged; Self Client codes need none. Write an empty value to remove it (auth-url/ then asks for one). Not for client_credentials accounts.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Redirect URI",
			},
		},
		FieldScopes: {
			Type: framework.TypeCommaStringSlice,
			Description: "Zoho scopes the account is used for, as a comma-separated string or a list, e.g. ZohoCRM.modules.ALL,ZohoCRM.settings.READ. " +
				"Each has Zoho's Service.scope.OPERATION shape; at least one is named (an empty scopes= is refused: they cannot be removed). " +
				"refresh_token accounts: informational (the grant code carries the scopes actually granted) and used by auth-url/. " +
				"client_credentials accounts: required, and sent with every token request.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Scopes",
			},
		},
		FieldGrantCode: {
			Type:        framework.TypeString,
			Description: "Grant code (from a Self Client or the consent redirect), exchanged at once for a refresh token and an access token. Grant codes are single-use and live one to a few minutes. Write-only. If the account already holds a refresh token, the replaced one is revoked at Zoho after the new one is stored.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Grant code",
				Sensitive: true,
			},
		},
		FieldRefreshToken: {
			Type:        framework.TypeString,
			Description: "An existing refresh token to import instead of a grant code; it is verified at once by one refresh. Write-only. If the account already holds a different refresh token, the replaced one is revoked at Zoho after the new one is stored.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Refresh token",
				Sensitive: true,
			},
		},
		FieldLiveTokenCap: {
			Type:        framework.TypeInt,
			Description: "How many access tokens Zoho keeps alive per refresh token (client_credentials accounts: per client and organisation) before it silently invalidates the oldest (10, 15 or 30 depending on the product; 1 to 30). The engine never mints a token that would push out one a lease still holds. Defaults to 10, the strictest.",
			Default:     defaultLiveCap,
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Live token cap",
			},
		},
	}
}

func pathConfig(e Engine) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "config/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "accounts",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						names, err := e.ListAccounts(ctx, req.Storage)
						if err != nil {
							return respondError(err)
						}
						return logical.ListResponse(names), nil
					},
					Summary: "List the configured Zoho accounts.",
				},
			},
			HelpSynopsis:    "List the configured Zoho accounts.",
			HelpDescription: "Lists the names of the accounts written under config/.",
		},
		{
			Pattern: "config/" + accountNameRegex,
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "account",
			},
			Fields: configFields(),
			ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
				name := d.Get(FieldName).(string)
				if validateName(name) != nil {
					return false, nil
				}
				return e.AccountExists(ctx, req.Storage, name)
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: configRead(e),
					Summary:  "Read an account's configuration and token health (never a secret).",
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    configWrite(e),
					Summary:                     "Create an account; a grant_code or refresh_token is exchanged or verified at once.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    configWrite(e),
					Summary:                     "Update an account; fields not given keep their values.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    configDelete(e),
					Summary:                     "Revoke the account's refresh token at Zoho and delete the account.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis:    "Configure one Zoho account: client credentials and a grant code or refresh token, or a client_credentials Self Client.",
			HelpDescription: configHelp,
		},
	}
}

const configHelp = `
An account is a Zoho OAuth client (client_id, client_secret, data_center) and
the refresh token of one Zoho user for it. Write the client credentials together
with a grant_code (generated in Zoho's API console with a Self Client, or by the
consent redirect) or with an existing refresh_token:

    vault write zoho/config/analytics client_id=1000.XXXX client_secret=... \
        data_center=eu scopes=ZohoAnalytics.data.all grant_code=1000.abcd...

The grant code is exchanged at once (Zoho's codes live one to a few minutes);
a refresh token is verified at once by one refresh. If Zoho rejects it, nothing
is stored (or, on update, the account is left as it was) and the error names
Zoho's error code and the field it points at: client_secret for
invalid_client_secret, client_id for invalid_client, redirect_uri for
invalid_redirect_uri, else the grant_code or refresh_token itself. Writing a new grant_code or refresh_token to an account that
already holds one revokes the replaced refresh token at Zoho, because Zoho keeps
only 20 refresh tokens per user and client.

With grant_type=client_credentials the account holds no refresh token: the
client (a Self Client) mints every token with its own credentials, for the
account's scopes and, for products with several organisations, soid:

    vault write zoho/config/crm-org grant_type=client_credentials \
        client_id=1000.XXXX client_secret=... data_center=eu \
        scopes=ZohoCRM.modules.ALL soid=ZohoCRM.600000000434

The write mints the first token, so a wrong secret, scope or soid fails at
once (400 naming the field, nothing stored).

Writing a new client_secret to an account that can mint verifies it first with
one token request (counted in Zoho's budget; its token becomes the current
one); if Zoho rejects it, the write answers 400 naming client_secret and the old
secret stays in use.

Reading the account never returns the client secret, the refresh token or an
access token; it shows the grant type, the data center, the api_domain to call,
whether a refresh token is held, the current token's expiry, the last refresh
and the last error. Deleting the account revokes its refresh token (a
client_credentials account: its live access tokens) at Zoho.
`

func configRead(e Engine) framework.OperationFunc {
	return namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
		st, err := e.ReadAccount(ctx, req.Storage, name)
		if err != nil {
			return respondError(err)
		}
		if st == nil {
			return nil, nil
		}
		return &logical.Response{Data: statusData(st)}, nil
	})
}

// statusData renders an account's non-secret status.
func statusData(st *AccountStatus) map[string]interface{} {
	scopes := st.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]interface{}{
		FieldGrantType:            st.GrantType,
		FieldSOID:                 st.SOID,
		FieldClientID:             st.ClientID,
		FieldDataCenter:           st.DataCenter,
		FieldAccountsURL:          st.AccountsURL,
		FieldAPIDomain:            st.APIDomain,
		FieldRedirectURI:          st.RedirectURI,
		FieldScopes:               scopes,
		FieldLiveTokenCap:         st.LiveTokenCap,
		"has_refresh_token":       st.HasRefreshToken,
		"needs_reauthorization":   st.NeedsReauthorization,
		"token_expires_at":        formatTime(st.TokenExpiresAt),
		"last_refresh":            formatTime(st.LastRefresh),
		"last_error":              st.LastError,
		"last_error_at":           formatTime(st.LastErrorAt),
		"consecutive_failures":    st.ConsecutiveFailures,
		"next_attempt_at":         formatTime(st.NextAttemptAt),
		"rate_budget_remaining":   st.RateBudgetRemaining,
		"live_tokens":             st.LiveTokens,
		"interrupted_exchange_at": formatTime(st.InterruptedExchangeAt),
		"revocation_abandoned_at": formatTime(st.RevocationAbandonedAt),
		"revoked_at":              formatTime(st.RevokedAt),
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func configWrite(e Engine) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		in, ie := parseConfigInput(e, req, d)
		if ie != nil {
			return badRequest(ie)
		}
		name := d.Get(FieldName).(string)
		res, err := e.WriteAccount(ctx, req.Storage, name, *in)
		if err != nil {
			return respondError(err)
		}
		if suffix := callbackSuffix(req); in.RedirectURI != nil && *in.RedirectURI != "" && suffix != "" && !redirectsHere(*in.RedirectURI, suffix) {
			if res == nil {
				res = &WriteResult{}
			}
			res.Warnings = append(res.Warnings, fmt.Sprintf("redirect_uri is not this mount's callback (its path should end in %s): fine for grant codes from your own redirect flow, but auth-url/%s will refuse it", suffix, name))
		}
		return warningsResponse(res), nil
	}
}

func warningsResponse(res *WriteResult) *logical.Response {
	if res == nil || len(res.Warnings) == 0 {
		return nil
	}
	resp := &logical.Response{}
	for _, w := range res.Warnings {
		resp.AddWarning(w)
	}
	return resp
}

// parseConfigInput validates a config write completely before anything is
// stored or sent to Zoho.
func parseConfigInput(e Engine, req *logical.Request, d *framework.FieldData) (*AccountInput, *InputError) {
	if ie := rejectUnknownFields(req, d); ie != nil {
		return nil, ie
	}
	name := d.Get(FieldName).(string)
	if ie := validateName(name); ie != nil {
		return nil, ie
	}
	in := &AccountInput{Create: req.Operation == logical.CreateOperation}
	var ie *InputError
	if in.ClientID, ie = optString(d, FieldClientID, maxIDLen); ie != nil {
		return nil, ie
	}
	if in.ClientSecret, ie = optString(d, FieldClientSecret, maxSecretLen); ie != nil {
		return nil, ie
	}
	if in.Create && in.ClientID == nil {
		return nil, inputErr(FieldClientID, "is required when an account is created")
	}
	if in.Create && in.ClientSecret == nil {
		return nil, inputErr(FieldClientSecret, "is required when an account is created")
	}
	if in.DataCenter, ie = optString(d, FieldDataCenter, 8); ie != nil {
		return nil, ie
	}
	if in.DataCenter != nil {
		dc, ok := zoho.LookupDataCenter(*in.DataCenter)
		if !ok {
			return nil, inputErr(FieldDataCenter, "%q is not a Zoho data center (one of %s)", truncateForMsg(*in.DataCenter), strings.Join(zoho.DataCenterCodes(), ", "))
		}
		in.DataCenter = &dc.Code
	}
	if raw, ok := d.GetOk(FieldAccountsURL); ok && strings.TrimSpace(raw.(string)) == "" {
		empty := "" // clears the override: the data center's accounts server is used
		in.AccountsURL = &empty
	} else if in.AccountsURL, ie = optString(d, FieldAccountsURL, maxURLLen); ie != nil {
		return nil, ie
	}
	if in.AccountsURL != nil && *in.AccountsURL != "" {
		norm, err := e.ValidateAccountsURL(*in.AccountsURL)
		if err != nil {
			return nil, inputErr(FieldAccountsURL, "%s", err.Error())
		}
		in.AccountsURL = &norm
	}
	if raw, ok := d.GetOk(FieldRedirectURI); ok && strings.TrimSpace(raw.(string)) == "" {
		empty := "" // removes it: auth-url/ then asks for one
		in.RedirectURI = &empty
	} else if in.RedirectURI, ie = optString(d, FieldRedirectURI, maxURLLen); ie != nil {
		return nil, ie
	}
	if in.RedirectURI != nil && *in.RedirectURI != "" {
		if ie := validateRedirectURI(*in.RedirectURI); ie != nil {
			return nil, ie
		}
	}
	if raw, ok := d.GetOk(FieldScopes); ok {
		scopes, ie := normalizeScopes(raw.([]string))
		if ie != nil {
			return nil, ie
		}
		in.Scopes = &scopes
	}
	if raw, ok := d.GetOk(FieldLiveTokenCap); ok {
		n := raw.(int)
		if n < 1 || n > maxLiveTokenCap {
			return nil, inputErr(FieldLiveTokenCap, "must be between 1 and %d", maxLiveTokenCap)
		}
		in.LiveTokenCap = &n
	}
	code, ie := optString(d, FieldGrantCode, maxSecretLen)
	if ie != nil {
		return nil, ie
	}
	rt, ie := optString(d, FieldRefreshToken, maxSecretLen)
	if ie != nil {
		return nil, ie
	}
	if code != nil && rt != nil {
		return nil, inputErr(FieldGrantCode, "give either grant_code or refresh_token, not both")
	}
	if code != nil {
		in.GrantCode = *code
	}
	if rt != nil {
		in.RefreshToken = *rt
	}
	if ie := parseGrantInput(d, in); ie != nil {
		return nil, ie
	}
	return in, nil
}

// parseGrantInput reads grant_type and soid and checks the other fields
// against the grant type where it is known here (given, or the default on
// create); on update without grant_type the engine checks against the stored
// one.
func parseGrantInput(d *framework.FieldData, in *AccountInput) *InputError {
	grant, ie := optString(d, FieldGrantType, 32)
	if ie != nil {
		return ie
	}
	if grant != nil {
		g := strings.ToLower(*grant)
		if g != GrantRefreshToken && g != GrantClientCredentials {
			return inputErr(FieldGrantType, "%q is not a grant type of this engine: use %s (the account holds a refresh token from a grant_code, the consent redirect or an import; the default) or %s (a Self Client mints tokens with its own credentials)",
				truncateForMsg(*grant), GrantRefreshToken, GrantClientCredentials)
		}
		in.GrantType = &g
	}
	if raw, ok := d.GetOk(FieldSOID); ok && strings.TrimSpace(raw.(string)) == "" {
		empty := "" // removes it
		in.SOID = &empty
	} else if in.SOID, ie = optString(d, FieldSOID, maxSOIDLen); ie != nil {
		return ie
	}
	if in.SOID != nil && *in.SOID != "" && !soidRe.MatchString(*in.SOID) {
		return inputErr(FieldSOID, "%q is not a soid: expected <Service>.<org id>, such as ZohoCRM.600000000434", truncateForMsg(*in.SOID))
	}
	switch {
	case in.GrantType != nil && *in.GrantType == GrantClientCredentials:
		return CheckClientCredentialsInput(in, in.Create)
	case in.SOID != nil && (in.GrantType != nil || in.Create):
		return inputErr(FieldSOID, "applies to grant_type=%s accounts only (a refresh token already belongs to one organisation)", GrantClientCredentials)
	}
	return nil
}

// CheckClientCredentialsInput rejects what a client_credentials account does
// not take (and, on create, requires its scopes). The engine calls it too on
// updates that leave grant_type out.
func CheckClientCredentialsInput(in *AccountInput, create bool) *InputError {
	why := "a client_credentials account holds no refresh token: its client mints tokens with its own credentials"
	switch {
	case in.GrantCode != "":
		return inputErr(FieldGrantCode, "%s; write no grant_code (or use a refresh_token account)", why)
	case in.RefreshToken != "":
		return inputErr(FieldRefreshToken, "%s; write no refresh_token (or use a refresh_token account)", why)
	case in.RedirectURI != nil && *in.RedirectURI != "":
		return inputErr(FieldRedirectURI, "%s and has no consent redirect; write no redirect_uri", why)
	case create && (in.Scopes == nil || len(*in.Scopes) == 0):
		return inputErr(FieldScopes, "is required for a client_credentials account: Zoho mints its tokens for these scopes (e.g. scopes=ZohoCRM.modules.ALL)")
	}
	return nil
}

func configDelete(e Engine) framework.OperationFunc {
	return namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
		if err := e.DeleteAccount(ctx, req.Storage, name); err != nil {
			return respondError(err)
		}
		return nil, nil
	})
}

// redirectsHere reports whether a redirect URI's path ends in suffix.
func redirectsHere(redirectURI, suffix string) bool {
	u, err := url.Parse(redirectURI)
	return err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), suffix)
}
