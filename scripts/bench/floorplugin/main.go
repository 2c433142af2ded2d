// Command floorplugin is the benchmark's "floor": the least an external
// secrets-engine plugin can do per read, built and mounted by scripts/bench
// beside the Zoho engine so that the engine's cached creds/ read can be
// compared with the cost Vault and the plugin protocol impose anyway.
//
//	const/<name>   a constant body of the same shape and size as a creds/ answer
//	leased/<name>  the same body under a lease (1 h TTL, no-op revocation)
//	leasedint/<name>  a lease shaped like the engine's: renewable (a renewal
//	               answers the lease as it is, with its TTL) and with the
//	               engine's seven keys of internal data; the comparator for
//	               the engine's creds/ reads
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

// secretType is the lease type of leased/ reads; secretTypeInt that of
// leasedint/ reads.
const (
	secretType    = "floor_token"
	secretTypeInt = "floor_token_int"
)

type backend struct {
	*framework.Backend
	body atomic.Pointer[map[string]interface{}]
	seq  atomic.Int64 // leasedint/: the lease number, as the engine's lease_seq
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
		"token_id":     "0123456789abcdef01234567",
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
	// The engine's lease type is renewable: a renewal answers what is left
	// of the lease. This one answers the lease as it is, with its TTL.
	secretInt := &framework.Secret{
		Type:            secretTypeInt,
		DefaultDuration: time.Hour,
		Fields: map[string]*framework.FieldSchema{
			"access_token": {Type: framework.TypeString},
		},
		Renew: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			resp := &logical.Response{Secret: req.Secret}
			resp.Secret.TTL = req.Secret.TTL
			resp.Secret.MaxTTL = req.Secret.TTL
			return resp, nil
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
		Secrets:        []*framework.Secret{secret, secretInt},
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
				// A lease shaped like the engine's creds/ lease: renewable,
				// with the engine's internal data (account, access token,
				// token id, generation, token expiry, lease number, lease
				// end): tells Vault's cost of that lease apart from the
				// engine's own work.
				Pattern: "leasedint/" + framework.GenericNameRegex("name"),
				Fields:  nameField,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{
						Callback: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
							body := b.copyBody()
							token, _ := body["access_token"].(string)
							tokenID, _ := body["token_id"].(string)
							now := time.Now()
							resp := secretInt.Response(body, map[string]interface{}{
								"account":       d.Get("name").(string),
								"access_token":  token,
								"token_id":      tokenID,
								"generation":    int64(1),
								"expires_at":    now.Add(time.Hour + time.Minute).Unix(),
								"lease_seq":     b.seq.Add(1),
								"lease_ends_at": now.Add(time.Hour).Unix(),
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
					"token_id":     {Type: framework.TypeString},
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
								"token_id":     d.Get("token_id").(string),
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
