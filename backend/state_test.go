package backend

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRestartKeepsTokensWithoutRefresh(t *testing.T) {
	e := newEnv(t)
	c := e.account("durable", nil)
	tok := accessToken(e.creds("durable", nil))
	// A new backend on the same storage, as after a restart or failover.
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, err := FactoryWithOptions(Options{Now: e.clock.Now})(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b.Cleanup(context.Background())
	e.b = lb.(*Backend)
	if got := accessToken(e.creds("durable", nil)); got != tok {
		t.Fatal("restart lost the cached token")
	}
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 0 || got.TokenRequests != 1 {
		t.Fatalf("restart caused upstream calls: %+v", got)
	}
}

func TestRestartKeepsRateBudget(t *testing.T) {
	e := newEnv(t)
	e.account("persist", nil)
	for i := 0; i < 9; i++ {
		e.clock.Advance(10 * time.Second)
		e.creds("persist", map[string]interface{}{"min_ttl": "59m"})
	}
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, err := FactoryWithOptions(Options{Now: e.clock.Now})(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b = lb.(*Backend)
	e.clock.Advance(10 * time.Second)
	if _, status := e.fails(logical.ReadOperation, "creds/persist", map[string]interface{}{"min_ttl": "59m"}); status != http.StatusTooManyRequests {
		t.Fatalf("budget forgotten across restart: %d", status)
	}
}
