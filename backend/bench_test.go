package backend

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// staticZoho answers every call at once, so benchmarks measure the engine.
type staticZoho struct{ n atomic.Int64 }

func (z *staticZoho) token() *zoho.Token {
	n := z.n.Add(1)
	return &zoho.Token{AccessToken: fmt.Sprintf("1000.%032d.%032d", n, n), RefreshToken: fmt.Sprintf("1000.rt.%d", n),
		APIDomain: "https://www.zohoapis.com", TokenType: "Bearer", ExpiresIn: time.Hour}
}

func (z *staticZoho) ExchangeCode(context.Context, zoho.App, string, string, string) (*zoho.Token, error) {
	return z.token(), nil
}

func (z *staticZoho) Refresh(context.Context, zoho.App, string) (*zoho.Token, error) {
	t := z.token()
	t.RefreshToken = ""
	return t, nil
}

func (z *staticZoho) ClientCredentials(context.Context, zoho.App, string, string) (*zoho.Token, error) {
	return z.Refresh(context.Background(), zoho.App{}, "")
}

func (z *staticZoho) Revoke(context.Context, string, string) error { return nil }

func benchBackend(b *testing.B) (*Backend, logical.Storage) {
	b.Helper()
	conf := logical.TestBackendConfig()
	storage := &logical.InmemStorage{}
	conf.StorageView = storage
	lb, err := FactoryWithOptions(Options{Zoho: &staticZoho{}})(context.Background(), conf)
	if err != nil {
		b.Fatal(err)
	}
	be := lb.(*Backend)
	b.Cleanup(func() { be.Cleanup(context.Background()) })
	_, err = be.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.CreateOperation, Path: "config/bench", Storage: storage,
		Data: map[string]interface{}{"client_id": "1000.ID", "client_secret": "s", "grant_code": "1000.code"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return be, storage
}

// BenchmarkIssueCredsCached is the engine's own work per cached read: account
// lookup, view load and lease bookkeeping.
func BenchmarkIssueCredsCached(b *testing.B) {
	be, s := benchBackend(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := be.IssueCreds(ctx, s, "bench", 0, paths.HoldByLease); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCredsReadHandleRequest adds the framework's routing, field parsing
// and response building: the whole in-plugin cost of a creds/ read.
func BenchmarkCredsReadHandleRequest(b *testing.B) {
	be, s := benchBackend(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/bench", Storage: s})
			if err != nil || resp.Secret == nil {
				b.Errorf("read failed: %v", err)
				return
			}
		}
	})
}

// BenchmarkStaticCredsReadHandleRequest is the whole in-plugin cost of an
// unleased static-creds/ read of a token already held.
func BenchmarkStaticCredsReadHandleRequest(b *testing.B) {
	be, s := benchBackend(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "static-creds/bench", Storage: s})
			if err != nil || resp.Secret != nil || resp.Data["ttl"] == nil {
				b.Errorf("read failed: %v", err)
				return
			}
		}
	})
}

// BenchmarkLeaseRevoke is the cost of one lease ending while others hold the token.
func BenchmarkLeaseRevoke(b *testing.B) {
	be, s := benchBackend(b)
	ctx := context.Background()
	c, err := be.IssueCreds(ctx, s, "bench", 0, paths.HoldByLease)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N+1; i++ {
		if _, err := be.IssueCreds(ctx, s, "bench", 0, paths.HoldByLease); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := be.RevokeLease(ctx, s, c.Lease); err != nil {
			b.Fatal(err)
		}
	}
}
