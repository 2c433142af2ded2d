package paths

import (
	"context"
	"fmt"
	"net/url"
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

func configFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		FieldName: nameField(),
		FieldClientID: {
			Type:        framework.TypeString,
			Description: "OAuth client ID from Zoho's API console (https://api-console.zoho.com). Required when the account is created.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Client ID",
			},
		},
		FieldClientSecret: {
			Type:        framework.TypeString,
			Description: "OAuth client secret from Zoho's API console. Required when the account is created. Write-only: it is never returned.",
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
			Description: "Redirect URI registered for the client. Zoho requires it when a grant code from the redirect flow is exchanged; Self Client codes need none.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Redirect URI",
			},
		},
		FieldScopes: {
			Type:        framework.TypeCommaStringSlice,
			Description: "Zoho scopes the account is used for, as a comma-separated string or a list, e.g. ZohoCRM.modules.ALL,ZohoCRM.settings.READ. Informational: the grant code carries the scopes actually granted.",
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
			Description: "How many access tokens Zoho keeps alive per refresh token before it silently invalidates the oldest (10, 15 or 30 depending on the product; 1 to 30). The engine never mints a token that would push out one a lease still holds. Defaults to 10, the strictest.",
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
			HelpSynopsis:    "Configure one Zoho account: client credentials and a grant code or refresh token.",
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
Zoho's error code. Writing a new grant_code or refresh_token to an account that
already holds one revokes the replaced refresh token at Zoho, because Zoho keeps
only 20 refresh tokens per user and client.

Reading the account never returns the client secret, the refresh token or an
access token; it shows the data center, the api_domain to call, whether a
refresh token is held, the current token's expiry, the last refresh and the
last error. Deleting the account revokes its refresh token at Zoho first; if
Zoho cannot be reached the delete fails and nothing is removed.
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
		if suffix := callbackSuffix(req); in.RedirectURI != nil && suffix != "" && !redirectsHere(*in.RedirectURI, suffix) {
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
	if in.RedirectURI, ie = optString(d, FieldRedirectURI, maxURLLen); ie != nil {
		return nil, ie
	}
	if in.RedirectURI != nil {
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
	return in, nil
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
