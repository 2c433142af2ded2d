package paths

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// CallbackPath is the unauthenticated path Zoho redirects browsers to.
const CallbackPath = "callback"

func pathCallback(e Engine) *framework.Path {
	str := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeString, Description: desc, Query: true}
	}
	return &framework.Path{
		Pattern: CallbackPath + "$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "complete",
			OperationSuffix: "authorization",
		},
		Fields: map[string]*framework.FieldSchema{
			"code":              str("Grant code from Zoho."),
			"state":             str("The state of a pending authorization from auth-url/<name>."),
			"location":          str("The user's data center, as Zoho reports it."),
			"accounts-server":   str("The accounts server to exchange the code at; used only if it is one of Zoho's known accounts servers (or the account's configured one)."),
			"error":             str("Set by Zoho when consent was refused (access_denied)."),
			"error_description": str("Zoho's description of the error."),
		},
		TakesArbitraryInput: true,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: callbackHandler(e),
				// It consumes the pending consent and stores the account: only the
				// active node writes.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Summary:                     "Receive Zoho's consent redirect (unauthenticated).",
			},
		},
		HelpSynopsis:    "Zoho's consent redirect lands here; the grant code is exchanged at once.",
		HelpDescription: "Unauthenticated. Matches 'state' to a pending authorization from auth-url/<name> (single-use, 10 minutes), checks the accounts-server value against Zoho's known accounts servers before the client secret is sent anywhere, exchanges the code and stores the refresh token. Answers a small HTML page.",
	}
}

func callbackHandler(e Engine) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		get := func(k string) string {
			v, _ := d.GetOk(k)
			s, _ := v.(string)
			return s
		}
		res, err := e.CompleteAuthorization(ctx, req.Storage, Callback{
			Code:         get("code"),
			State:        get("state"),
			Location:     get("location"),
			AccountsURL:  get("accounts-server"),
			Error:        get("error"),
			ErrorDetails: get("error_description"),
		})
		if err != nil {
			status := http.StatusBadGateway
			var ie *InputError
			var coded logical.HTTPCodedError
			switch {
			case errors.As(err, &ie):
				status = http.StatusBadRequest
			case errors.As(err, &coded):
				status = coded.Code()
			default:
				return nil, err
			}
			return htmlPage(status, "Authorization failed", err.Error()), nil
		}
		msg := fmt.Sprintf("Vault now holds a refresh token for the Zoho account %q. You can close this window.", res.Account)
		return htmlPage(http.StatusOK, "Authorized", msg), nil
	}
}

// pageStyle keeps the callback page readable in a browser; it loads nothing.
const pageStyle = `body{margin:0;font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1f2328}` +
	`header{background:#000;color:#fff;padding:14px 28px;font-weight:600}` +
	`main{max-width:560px;margin:32px auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:24px 32px}` +
	`h1{font-size:22px;margin:0 0 12px}h1.ok{color:#1a7f37}h1.failed{color:#cf222e}`

func htmlPage(status int, title, msg string) *logical.Response {
	class := "ok"
	if status >= 400 {
		class = "failed"
	}
	body := fmt.Sprintf("<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head>"+
		"<body><header>Vault · Zoho secrets engine</header><main><h1 class=\"%s\">%s</h1><p>%s</p></main></body></html>\n",
		html.EscapeString(title), pageStyle, class, html.EscapeString(title), html.EscapeString(msg))
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: "text/html; charset=utf-8",
		logical.HTTPStatusCode:  status,
		logical.HTTPRawBody:     []byte(body),
	}}
}
