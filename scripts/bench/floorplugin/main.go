// Command floorplugin is the benchmark's "floor": the least an external
// secrets-engine plugin can do per read, built and mounted by scripts/bench
// beside the Zoho engine so that the engine's cached creds/ read can be
// compared with the cost Vault and the plugin protocol impose anyway.
//
//	const/<name>   a constant body of the same shape and size as a creds/ answer
//	leased/<name>  the same body under a lease (1 h TTL, no-op revocation)
//	leasedint/<name>  as leased/, with lease internal data shaped like the
//	               engine's (a diagnostic: Vault's cost of the bigger lease)
//	body           write: replace the constant body (the harness copies a real
//	               creds/ answer into it so the sizes match exactly)
//
// It is not part of the product and is never installed.
package main

import (
	"context"
	"os"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	}); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("floor plugin shutting down", "error", err)
	os.Exit(1)
}

// secretType is the lease type of leased/ reads.
const secretType = "floor_token"

type backend struct {
	*framework.Backend
	body atomic.Pointer[map[string]interface{}]
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// defaultBody has the shape of a creds/ answer against the simulator: a
// Zoho-shaped token, a loopback api_domain, an RFC 3339 expiry, two scopes.
func defaultBody() map[string]interface{} {
	return map[string]interface{}{
		"access_token": "1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef",
		"api_domain":   "http://127.0.0.1:40000/us/api",
		"token_type":   "Bearer",
		"expires_at":   "2030-01-01T00:00:00Z",
		"scopes":       []interface{}{"ZohoCRM.modules.ALL", "ZohoCRM.users.READ"},
	}
}

func newBackend() *backend {
	b := &backend{}
	def := defaultBody()
	b.body.Store(&def)
	secret := &framework.Secret{
		Type:            secretType,
		DefaultDuration: time.Hour,
		Fields: map[string]*framework.FieldSchema{
			"access_token": {Type: framework.TypeString},
		},
		Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
			return nil, nil
		},
	}
	nameField := map[string]*framework.FieldSchema{"name": {Type: framework.TypeString, Description: "Any name."}}
	b.Backend = &framework.Backend{
		Help:           "Benchmark floor: constant answers, with and without a lease.",
		BackendType:    logical.TypeLogical,
		RunningVersion: "v0.1.0",
		Secrets:        []*framework.Secret{secret},
		Paths: []*framework.Path{
			{
				Pattern: "const/" + framework.GenericNameRegex("name"),
				Fields:  nameField,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{
						Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
							return &logical.Response{Data: b.copyBody()}, nil
						},
					},
				},
			},
			{
				Pattern: "leased/" + framework.GenericNameRegex("name"),
				Fields:  nameField,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{
						Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
							resp := secret.Response(b.copyBody(), nil)
							resp.Secret.TTL = time.Hour
							resp.Secret.MaxTTL = time.Hour
							return resp, nil
						},
					},
				},
			},
			{
				// As leased/, with lease internal data shaped like the
				// engine's (account, access token, token id, generation,
				// expiry): tells Vault's cost of the bigger lease entry apart
				// from the engine's own work.
				Pattern: "leasedint/" + framework.GenericNameRegex("name"),
				Fields:  nameField,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{
						Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
							body := b.copyBody()
							token, _ := body["access_token"].(string)
							resp := secret.Response(body, map[string]interface{}{
								"account":      d.Get("name").(string),
								"access_token": token,
								"token_id":     "0123456789abcdef01234567",
								"generation":   int64(1),
								"expires_at":   time.Now().Add(time.Hour).Unix(),
							})
							resp.Secret.TTL = time.Hour
							resp.Secret.MaxTTL = time.Hour
							return resp, nil
						},
					},
				},
			},
			{
				Pattern: "body$",
				Fields: map[string]*framework.FieldSchema{
					"access_token": {Type: framework.TypeString},
					"api_domain":   {Type: framework.TypeString},
					"token_type":   {Type: framework.TypeString},
					"expires_at":   {Type: framework.TypeString},
					"scopes":       {Type: framework.TypeCommaStringSlice},
				},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.UpdateOperation: &framework.PathOperation{
						Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
							scopes := d.Get("scopes").([]string)
							list := make([]interface{}, len(scopes))
							for i, s := range scopes {
								list[i] = s
							}
							body := map[string]interface{}{
								"access_token": d.Get("access_token").(string),
								"api_domain":   d.Get("api_domain").(string),
								"token_type":   d.Get("token_type").(string),
								"expires_at":   d.Get("expires_at").(string),
								"scopes":       list,
							}
							b.body.Store(&body)
							return nil, nil
						},
					},
				},
			},
		},
	}
	return b
}

// copyBody returns a fresh map per answer, as a real engine builds one.
func (b *backend) copyBody() map[string]interface{} {
	src := *b.body.Load()
	out := make(map[string]interface{}, len(src))
	for k, v := range src {
		out[k] = v
	}
	return out
}
