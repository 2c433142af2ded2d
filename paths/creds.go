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
		Fields: credsReadFields(),
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

Zoho kills every access token of a refresh token when the user removes the
app under Connected Apps or changes their password, and the oldest one when
too many are live. A reader whose call Zoho answers INVALID_OAUTHTOKEN,
INVALID_TOKEN or HTTP 401 reports it with the answer's token_id (a
non-secret fingerprint of the token):

    vault read zoho/creds/analytics rejected=<token_id>

The rejected token is not served again (a renewal of a lease on it fails, so
Vault Agent reads anew). If it is still the current token one refresh mints
a new one (concurrent reports share it, Zoho's budget of 10 per 10 minutes
still holds: 429 with the time to retry); if Zoho no longer accepts the
refresh token the account needs re-authorization, is listed under
attention/ and every read fails at once saying what to write; a report of a
token already replaced returns the current one without calling Zoho.
`

func credsRead(e Engine, secret *framework.Secret) framework.OperationFunc {
	return namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
		c, resp, err := readCreds(ctx, e, req, d, name, HoldByLease)
		if c == nil {
			return resp, err
		}
		resp = secret.Response(map[string]interface{}{
			FieldAccessToken: c.AccessToken,
			FieldAPIDomain:   c.APIDomain,
			FieldTokenType:   c.TokenType,
			FieldExpiresAt:   c.ExpiresAt.UTC().Format(time.RFC3339),
			FieldScopes:      c.Scopes,
			FieldTokenID:     c.TokenID,
		}, leaseInternal(c.Lease))
		resp.Secret.TTL = c.TTL
		resp.Secret.MaxTTL = c.TTL
		return resp, nil
	})
}

// readCreds validates min_ttl and rejected= and asks the engine for the
// token, held as hold says. It returns the creds, or the response (400, or
// the engine's error) to answer instead.
func readCreds(ctx context.Context, e Engine, req *logical.Request, d *framework.FieldData, name string, hold Holding) (*Creds, *logical.Response, error) {
	minTTL := time.Duration(d.Get(FieldMinTTL).(int)) * time.Second
	if minTTL < 0 {
		resp, err := badRequest(inputErr(FieldMinTTL, "must not be negative"))
		return nil, resp, err
	}
	if minTTL > 24*time.Hour {
		resp, err := badRequest(inputErr(FieldMinTTL, "must be at most 24h (Zoho tokens live about an hour)"))
		return nil, resp, err
	}
	rejected := d.Get(FieldRejected).(string)
	if _, given := req.Data[FieldRejected]; given && !validTokenID(rejected) {
		resp, err := badRequest(inputErr(FieldRejected, "must be the token_id of a creds/ answer (%d lowercase hex characters), not the access token itself", TokenIDLen))
		return nil, resp, err
	}
	var c *Creds
	var err error
	if rejected != "" {
		c, err = e.ReplaceRejectedCreds(ctx, req.Storage, name, rejected, minTTL, hold)
	} else {
		c, err = e.IssueCreds(ctx, req.Storage, name, minTTL, hold)
	}
	if err != nil {
		resp, err := respondError(err)
		return nil, resp, err
	}
	return c, nil, nil
}

// credsReadFields are the fields of creds/ and static-creds/ reads.
func credsReadFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
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
		FieldRejected: {
			Type: framework.TypeString,
			Description: "The token_id of a token Zoho just rejected (INVALID_OAUTHTOKEN, INVALID_TOKEN or HTTP 401): " +
				"the engine stops serving it and returns a fresh token; concurrent reports of one token cost one refresh, " +
				"and a report of a token already replaced costs none. Only the token_id is sent, never the token.",
			Query: true,
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Rejected token ID",
			},
		},
	}
}
