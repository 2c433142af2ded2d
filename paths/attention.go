package paths

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathAttention(e Engine) *framework.Path {
	return &framework.Path{
		Pattern: "attention/?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "accounts-needing-attention",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: &framework.PathOperation{
				Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					all, err := e.AccountsNeedingAttention(ctx, req.Storage)
					if err != nil {
						return respondError(err)
					}
					return healthList(all, func(st *AccountStatus, h map[string]interface{}) {
						h["reasons"] = st.AttentionReasons()
					}), nil
				},
				Summary: "The accounts that need an operator, and why.",
			},
		},
		HelpSynopsis:    "Accounts that need an operator.",
		HelpDescription: attentionHelp,
	}
}

const attentionHelp = `
Lists only the accounts that need an operator, with their health and, in
key_info, the reasons: needs_reauthorization (write a new grant_code or
refresh_token), failing (the last token request failed), backing_off (the
engine waits before the next one), interrupted_exchange (a grant-code exchange
was cut off: Zoho may hold a refresh token Vault never stored),
revocation_abandoned (Zoho did not confirm a revocation for 72 hours),
device_authorization_denied, device_authorization_expired and
device_authorization_failed (a device authorization ended without a refresh
token; start another with device/<name>). The
engine keeps an index of such accounts, so the list costs the same with ten
accounts or a hundred thousand.

    vault list -format=json zoho/attention
`
