package paths

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathAuthURL(e Engine) *framework.Path {
	return &framework.Path{
		Pattern: "auth-url/" + accountNameRegex,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "generate",
			OperationSuffix: "authorization-url",
		},
		Fields: map[string]*framework.FieldSchema{
			FieldName: nameField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
					a, err := e.StartAuthorization(ctx, req.Storage, name, callbackSuffix(req))
					if err != nil {
						return respondError(err)
					}
					return &logical.Response{Data: map[string]interface{}{
						"auth_url":       a.URL,
						"state":          a.State,
						FieldRedirectURI: a.RedirectURI,
						FieldExpiresAt:   a.ExpiresAt.UTC().Format(time.RFC3339),
					}}, nil
				}),
				Summary: "Build Zoho's consent URL for the account; the redirect comes back to callback.",
				// It stores the pending consent: only the active node writes.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Responses: map[int][]framework.Response{
					200: {{
						Description: "OK",
						Fields: map[string]*framework.FieldSchema{
							"auth_url":       {Type: framework.TypeString, Description: "Open this URL in a browser signed in to Zoho as the account's user."},
							"state":          {Type: framework.TypeString, Description: "Single-use value tying Zoho's redirect to this request."},
							FieldRedirectURI: {Type: framework.TypeString, Description: "Where Zoho sends the browser back: this mount's callback path."},
							FieldExpiresAt:   {Type: framework.TypeString, Description: "When the pending authorization expires (RFC 3339)."},
						},
					}},
				},
			},
		},
		HelpSynopsis:    "Build Zoho's consent URL; Vault itself receives the redirect.",
		HelpDescription: authURLHelp,
	}
}

const authURLHelp = `
Zoho's grant codes live a minute or two, so copying one from a browser into
'vault write' is a race. Instead, set the account's redirect_uri to this
mount's callback path as Vault's clients reach it, e.g.

    https://vault.example.com/v1/zoho/callback

register the same URI for the client in Zoho's API console, then read
auth-url/<name> and open the URL it returns. Zoho redirects the browser to
the callback, which exchanges the code at once and stores the refresh token.
Each URL is single-use and expires after 10 minutes. It asks for offline
access and prompt=consent, with the account's scopes.
`

// callbackSuffix is how the path of this mount's callback URL ends, as Zoho
// must redirect the browser to it ("" when the mount point is unknown).
func callbackSuffix(req *logical.Request) string {
	if req.MountPoint == "" {
		return ""
	}
	return "/" + strings.TrimPrefix(req.MountPoint, "/") + CallbackPath
}
