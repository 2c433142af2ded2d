package paths

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Fields of a static-creds/ answer beside the token's own (tokenFields).
// Vault's database engine names its static credentials' fields so, and Vault
// Agent templates and the Vault Secrets Operator read them to know when to
// read again.
const (
	FieldTTL               = "ttl"
	FieldRotationPeriod    = "rotation_period"
	FieldLastVaultRotation = "last_vault_rotation"
)

func pathStaticCreds(e Engine) *framework.Path {
	return &framework.Path{
		Pattern: "static-creds/" + accountNameRegex,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "static-credentials",
		},
		Fields: credsReadFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: staticCredsRead(e),
				// The first unleased read of a token stores that it is held
				// until it expires: only the active node writes.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Get the account's shared access token without a lease; the answer's ttl says how long to use it.",
				Responses: map[int][]framework.Response{
					200: {{
						Description: "OK",
						Fields:      staticTokenFields(),
					}},
				},
			},
		},
		HelpSynopsis:    "Get a Zoho access token for the account, without a Vault lease.",
		HelpDescription: staticCredsHelp,
	}
}

const staticCredsHelp = `
Returns the account's shared access token like creds/<name>, but without a
Vault lease: the answer's ttl (seconds) says how long to use the token before
reading again, expires_at when Zoho stops accepting it. Every reader of the
account gets the same token; Vault stores nothing per read.

Use it for busy readers: each creds/ read makes Vault store a lease and later
revoke it (on Raft storage, a write each way), which buys only "revoke the
token when its last holder lets go". A token handed out here is held until it
expires instead: no lease revocation revokes it early, and it counts as held
against the account's live-token cap, so no refresh makes Zoho invalidate it.
Refresh-ahead, coalescing of concurrent refreshes, Zoho's budget of 10 tokens
per 10 minutes, min_ttl and rejected=<token_id> work as on creds/.

    vault read zoho/static-creds/analytics

Vault Agent templates re-read it when ttl runs out (the answer carries
rotation_period, which makes them honour ttl); the Vault Secrets Operator
reads it with allowStaticCreds. revoke/<name> (and deleting the account, or
writing a new grant) still ends every token of the account, these included.
Grant creds/ and static-creds/ by separate policies.
`

func staticCredsRead(e Engine) framework.OperationFunc {
	return namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
		c, resp, err := readCreds(ctx, e, req, d, name, HoldUntilExpiry)
		if c == nil {
			return resp, err
		}
		return &logical.Response{Data: map[string]interface{}{
			FieldAccessToken:       c.AccessToken,
			FieldAPIDomain:         c.APIDomain,
			FieldTokenType:         c.TokenType,
			FieldExpiresAt:         c.ExpiresAt.UTC().Format(time.RFC3339),
			FieldScopes:            c.Scopes,
			FieldTokenID:           c.TokenID,
			FieldTTL:               int64(c.TTL / time.Second),
			FieldRotationPeriod:    int64(c.Lifetime / time.Second),
			FieldLastVaultRotation: c.IssuedAt.UTC().Format(time.RFC3339Nano),
		}}, nil
	})
}

// staticTokenFields describe a static-creds/ answer.
func staticTokenFields() map[string]*framework.FieldSchema {
	f := tokenFields()
	f[FieldTTL] = &framework.FieldSchema{Type: framework.TypeInt64, Description: "Seconds to use the token before reading again: it ends a margin before expires_at (a minute for Zoho's hour), at least min_ttl, and readers' ends are spread over the last part of the token's life."}
	f[FieldRotationPeriod] = &framework.FieldSchema{Type: framework.TypeInt64, Description: "The token's whole life in seconds, as Zoho announced it (3600 for Zoho's hour): how often the shared token changes."}
	f[FieldLastVaultRotation] = &framework.FieldSchema{Type: framework.TypeTime, Description: "When the engine got this token from Zoho (RFC 3339)."}
	return f
}
