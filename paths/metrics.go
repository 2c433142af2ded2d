package paths

import (
	"context"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathMetrics(e Engine) *framework.Path {
	return &framework.Path{
		Pattern: "metrics$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "metrics",
		},
		Fields: map[string]*framework.FieldSchema{
			"per_account": {
				Type:        framework.TypeBool,
				Description: "Add per-account series labelled with the account name. Off by default: account names are unbounded labels.",
				Query:       true,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					if ie := rejectUnknownFields(req, d); ie != nil {
						return badRequest(ie)
					}
					body, contentType, err := e.Metrics(ctx, req.Storage, d.Get("per_account").(bool))
					if err != nil {
						return respondError(err)
					}
					return &logical.Response{Data: map[string]interface{}{
						logical.HTTPContentType: contentType,
						logical.HTTPStatusCode:  http.StatusOK,
						logical.HTTPRawBody:     body,
					}}, nil
				},
				Summary: "The engine's metrics in Prometheus text format.",
			},
		},
		HelpSynopsis:    "Prometheus metrics of the engine.",
		HelpDescription: "Refreshes, failures by Zoho error code, upstream latency, cache hits, throttle back-offs, live leases and accounts, as Prometheus text. Scrape with a Vault token allowed to read this path (Prometheus' bearer_token with metrics_path /v1/zoho/metrics). Labels are bounded; per_account=true adds series per account name.",
	}
}
