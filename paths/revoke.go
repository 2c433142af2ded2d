package paths

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathRevoke(e Engine) *framework.Path {
	return &framework.Path{
		Pattern: "revoke/" + accountNameRegex,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "revoke",
			OperationSuffix: "account",
		},
		Fields: map[string]*framework.FieldSchema{
			FieldName: nameField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback: namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
					res, err := e.RevokeAccount(ctx, req.Storage, name)
					if err != nil {
						return respondError(err)
					}
					return warningsResponse(res), nil
				}),
				Summary:                     "Revoke the account's refresh token (client_credentials: its live access tokens) at Zoho and stop minting.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis:    "Revoke the account's refresh token (client_credentials: its live access tokens) at Zoho, keeping the client configuration.",
		HelpDescription: revokeHelp,
	}
}

const revokeHelp = `
Revokes the account's refresh token at Zoho, which also kills every access
token minted from it, and removes the refresh and access tokens from Vault. The
client configuration stays, so a new grant_code can be written to config/<name>
afterwards. Revoking an account that holds no token succeeds and does nothing.

It ends every token of the account: those under creds/ leases and those
static-creds/ handed out without a lease (held until they expire otherwise)
alike. Vault's leases on them remain until they end; renewing one fails.

    vault write -f zoho/revoke/analytics

A client_credentials account has no refresh token: it stops minting and every
live access token it minted whose value it holds is revoked at Zoho (only
Zoho's confirmation counts; if one is not confirmed the answer is 502 and
writing revoke/ again retries). It mints again once config/<name> is written.
`
