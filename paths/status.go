package paths

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathStatus(e Engine) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "status/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "account-statuses",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
						all, err := e.AccountStatuses(ctx, req.Storage)
						if err != nil {
							return respondError(err)
						}
						return healthList(all, nil), nil
					},
					Summary: "Health of every account at a glance.",
				},
			},
			HelpSynopsis:    "Health of every account.",
			HelpDescription: "Lists every account with, in key_info, whether it holds a refresh token, whether it needs re-authorization, its token's expiry, the last refresh, consecutive failures, Zoho's last error and the token requests left in Zoho's 10-minute window. Never a secret.",
		},
		{
			Pattern: "status/" + accountNameRegex,
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "account-status",
			},
			Fields: map[string]*framework.FieldSchema{FieldName: nameField()},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
						st, err := e.ReadAccount(ctx, req.Storage, name)
						if err != nil {
							return respondError(err)
						}
						if st == nil {
							return nil, nil
						}
						return &logical.Response{Data: healthData(st)}, nil
					}),
					Summary: "Health of one account.",
				},
			},
			HelpSynopsis:    "Health of one account.",
			HelpDescription: "The health fields of config/<name>: refresh token held, re-authorization needed, token expiry, last refresh, failures, last error, rate budget left, live tokens; once device/<name> was written, the device authorization's state, user code, verification URL, expiry, last poll and Zoho's answer.",
		},
	}
}

// healthData is the health part of an account's status.
func healthData(st *AccountStatus) map[string]interface{} {
	full := statusData(st)
	out := make(map[string]interface{}, len(healthFields))
	for _, k := range healthFields {
		out[k] = full[k]
	}
	addDeviceStatus(out, st)
	return out
}

var healthFields = []string{
	FieldGrantType, FieldDataCenter, "has_refresh_token", "needs_reauthorization", "token_expires_at", "last_refresh",
	"consecutive_failures", "last_error", "last_error_at", "next_attempt_at", "rate_budget_remaining", "live_tokens",
	"interrupted_exchange_at", "revocation_abandoned_at", "revoked_at",
}

// healthList lists accounts with their health in key_info, plus what extra
// adds for each (nil: nothing).
func healthList(all []*AccountStatus, extra func(*AccountStatus, map[string]interface{})) *logical.Response {
	keys := make([]string, 0, len(all))
	info := make(map[string]interface{}, len(all))
	for _, st := range all {
		keys = append(keys, st.Name)
		h := healthData(st)
		if extra != nil {
			extra(st, h)
		}
		info[st.Name] = h
	}
	return logical.ListResponseWithInfo(keys, info)
}
