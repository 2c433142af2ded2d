package backend

import (
	"context"
	"net/http"
	"strings"
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

// Accounts whose tokens Zoho granted the same scope list share one copy of
// its split form.
func TestGrantedScopeListsAreShared(t *testing.T) {
	const granted = "ZohoCRM.settings.READ,ZohoCRM.coql.READ"
	first, second := tokenScopes(granted, nil), tokenScopes(granted, nil)
	if len(first) != 2 || len(second) != 2 || &first[0] != &second[0] {
		t.Fatalf("two splits of %q are not one shared list: %v %v", granted, first, second)
	}
}

// The process died while an account's first token request was on the wire
// (recorded before sending, no token stored yet): Zoho may have minted a
// token, which counts as live for Zoho's hour. The account's tokens are taken
// to live an hour for min_ttl until one is stored.
func TestFirstRequestLostInACrashCountsAsLiveForAnHour(t *testing.T) {
	e := newEnv(t)
	e.account("crashed", nil)
	st, err := loadTokenState(context.Background(), e.storage, "crashed")
	if err != nil {
		t.Fatal(err)
	}
	sent := e.clock.Now()
	lost := &tokenState{Generation: st.Generation, Requests: []time.Time{sent}, InFlight: sent}
	if err := putJSON(context.Background(), e.storage, tokenPrefix+"crashed", lost); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.clock.Advance(time.Minute)
	resp := e.creds("crashed", map[string]interface{}{"min_ttl": "30m"})
	if resp.Secret.TTL < 30*time.Minute {
		t.Fatalf("lease %s with min_ttl=30m", resp.Secret.TTL)
	}
	if n := e.must(logical.ReadOperation, "status/crashed", nil).Data["live_tokens"]; n != 2 {
		t.Fatalf("live_tokens %v, want 2: the token read and the one the lost request may have minted", n)
	}
	e.clock.Advance(59*time.Minute - time.Second) // 1 s before the lost request's hour ends
	if n := e.must(logical.ReadOperation, "status/crashed", nil).Data["live_tokens"]; n != 2 {
		t.Fatalf("live_tokens %v a second before the lost request's hour ended, want 2", n)
	}
	e.clock.Advance(time.Second)
	if n := e.must(logical.ReadOperation, "status/crashed", nil).Data["live_tokens"]; n != 1 {
		t.Fatalf("live_tokens %v once the lost request's hour ended, want 1", n)
	}
}

// Zoho refused the refresh token, which killed the access tokens minted from
// it: the account serves none of them, also after a restart, while the last
// one's time has not run out.
func TestAccountNeedingReauthorizationServesNoTokenAfterARestart(t *testing.T) {
	e := newEnv(t)
	e.account("refused", nil)
	old := accessToken(e.creds("refused", nil))
	cfg, _ := loadConfig(context.Background(), e.storage, "refused")
	if !e.sim.RevokeRefreshToken(cfg.RefreshToken) {
		t.Fatal("simulator did not know the refresh token")
	}
	e.clock.Advance(2 * time.Minute)
	if _, status := e.fails(logical.ReadOperation, "creds/refused", map[string]interface{}{"min_ttl": "59m"}); status != http.StatusBadRequest {
		t.Fatalf("refused refresh answered %d, want 400", status)
	}
	e.restart()
	resp, msg, status := e.attempt(logical.ReadOperation, "creds/refused", nil)
	if status == http.StatusOK {
		t.Fatalf("after a restart an account needing re-authorization served a token (the dead one: %v)", accessToken(resp) == old)
	}
	if status != http.StatusBadRequest || !strings.Contains(msg, "write a new grant_code") {
		t.Fatalf("got %d %q, want 400 asking for a new grant_code", status, msg)
	}
}
