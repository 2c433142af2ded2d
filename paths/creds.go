package paths

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathCreds(e Engine, secret *framework.Secret) *framework.Path {
	return &framework.Path{
		Pattern: "creds/" + accountNameRegex,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			FieldName: nameField(),
			FieldMinTTL: {
				Type: framework.TypeDurationSecond,
				Description: "If the shared access token expires sooner than this (e.g. 30m), a fresh one is fetched first. Zoho tokens live about an hour, so values near 1h force a refresh and spend Zoho's budget of 10 tokens per 10 minutes. " +
					"At most the token lifetime less the lease margin (1/20 of it, between 1s and 1m): 59m for Zoho's hour, which means as fresh as possible; more is refused (400), as no lease could last it.",
				Query: true,
				DisplayAttrs: &framework.DisplayAttributes{
					Name: "Minimum TTL",
				},
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: credsRead(e, secret),
				// Lease counts live in the active node's memory (and reservations in
				// storage): a performance standby would count on its own.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Get the account's shared access token under a lease.",
				Responses: map[int][]framework.Response{
					200: {{
						Description: "OK",
						Fields:      tokenFields(),
					}},
				},
			},
		},
		HelpSynopsis:    "Get a Zoho access token for the account.",
		HelpDescription: credsHelp,
	}
}

const credsHelp = `
Returns the account's access token with the api_domain to call, under a lease
whose TTL never outlasts the token. All readers of an account share one access
token: a cached token is served without calling Zoho, it is refreshed ahead of
expiry in the background for accounts in use, and concurrent readers of an
expired token cause exactly one refresh. Zoho's limit of 10 new tokens per
refresh token per 10 minutes is enforced locally.

When the last unexpired lease on a token is revoked, the token is revoked at
Zoho and the next read gets a new one. Use min_ttl to ask for a token that stays
valid at least that long. A lease ends a margin before its token (a minute for
Zoho's hour), so min_ttl is at most the token lifetime less that margin (59m
for Zoho's hour: as fresh as possible); more is refused with 400.

    vault read zoho/creds/analytics
    curl -H "Authorization: Zoho-oauthtoken $TOKEN" "$API_DOMAIN/..."
`

func credsRead(e Engine, secret *framework.Secret) framework.OperationFunc {
	return namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
		minTTL := time.Duration(d.Get(FieldMinTTL).(int)) * time.Second
		if minTTL < 0 {
			return badRequest(inputErr(FieldMinTTL, "must not be negative"))
		}
		if minTTL > 24*time.Hour {
			return badRequest(inputErr(FieldMinTTL, "must be at most 24h (Zoho tokens live about an hour)"))
		}
		c, err := e.IssueCreds(ctx, req.Storage, name, minTTL)
		if err != nil {
			return respondError(err)
		}
		resp := secret.Response(map[string]interface{}{
			FieldAccessToken: c.AccessToken,
			FieldAPIDomain:   c.APIDomain,
			FieldTokenType:   c.TokenType,
			FieldExpiresAt:   c.ExpiresAt.UTC().Format(time.RFC3339),
			FieldScopes:      c.Scopes,
		}, leaseInternal(c.Lease))
		resp.Secret.TTL = c.TTL
		resp.Secret.MaxTTL = c.TTL
		return resp, nil
	})
}
