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

func htmlPage(status int, title, msg string) *logical.Response {
	body := fmt.Sprintf("<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: "text/html; charset=utf-8",
		logical.HTTPStatusCode:  status,
		logical.HTTPRawBody:     []byte(body),
	}}
}
