package backend

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// Every entry the engine writes is marked for seal wrapping and lies under a
// prefix declared in SealWrapStorage.
func TestEveryPutIsSealWrapped(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var puts []*logical.StorageEntry
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		mu.Lock()
		puts = append(puts, en)
		mu.Unlock()
		return nil
	})
	c := newConsentAccount(e, "wrapall")
	e.must(logical.ReadOperation, "auth-url/wrapall", nil) // pending/
	e.must(logical.UpdateOperation, "config/wrapall", map[string]interface{}{"grant_code": e.code(c)})
	for i := 0; i < initialReservation+1; i++ { // a reservation write
		e.creds("wrapall", nil)
	}
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502, Times: 1})
	e.must(logical.UpdateOperation, "config/wrapall", map[string]interface{}{"grant_code": e.code(c)}) // wal/ stays
	prefixes := e.b.SpecialPaths().SealWrapStorage
	seen := map[string]bool{}
	mu.Lock()
	defer mu.Unlock()
	for _, en := range puts {
		under := ""
		for _, p := range prefixes {
			if strings.HasPrefix(en.Key, p) {
				under = p
			}
		}
		if under == "" || !en.SealWrap {
			t.Fatalf("%s written without seal wrapping (SealWrap=%v, prefixes %v)", en.Key, en.SealWrap, prefixes)
		}
		seen[under] = true
	}
	for _, p := range []string{configPrefix, tokenPrefix, "wal/", pendingPrefix} {
		if !seen[p] {
			t.Fatalf("no write under %s was seen: the test does not cover it", p)
		}
	}
}

// The token request is recorded in storage (budget and in-flight mark)
// before it is sent.
func TestTokenRequestIsStoredBeforeItIsSent(t *testing.T) {
	e := newEnv(t)
	c := e.account("ledger", nil)
	e.clock.Advance(2 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 500 * time.Millisecond, Times: 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.creds("ledger", map[string]interface{}{"min_ttl": "59m59s"})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.sim.ClientCounters(c.ID).TokenRequests < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never reached Zoho")
		}
		time.Sleep(2 * time.Millisecond)
	}
	st, err := loadTokenState(context.Background(), e.storage, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Requests) != 2 || !st.Requests[1].Equal(e.clock.Now()) || !st.InFlight.Equal(e.clock.Now()) {
		t.Fatalf("while the request is on the wire storage holds %d requests (want 2, the last now) and in-flight %v", len(st.Requests), st.InFlight)
	}
	<-done
	st, _ = loadTokenState(context.Background(), e.storage, "ledger")
	if !st.InFlight.IsZero() {
		t.Fatal("the answered request is still marked in flight")
	}
}

// A failed refresh logs why, never the refresh token or the client secret.
func TestFailedRefreshLogsNoSecret(t *testing.T) {
	for _, f := range []zohosim.Fault{
		{Endpoint: "token", Kind: zohosim.FaultError, ErrorCode: "invalid_code", Times: 1},
		{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503, Times: 1},
		{Endpoint: "token", Kind: zohosim.FaultReset, Times: 1},
		{Endpoint: "token", Kind: zohosim.FaultGarbage, Times: 1},
	} {
		t.Run(string(f.Kind), func(t *testing.T) {
			e := newEnv(t)
			c := e.account("quiet", nil)
			cfg, _ := loadConfig(context.Background(), e.storage, "quiet")
			e.clock.Advance(2 * time.Hour)
			e.sim.AddFault(f)
			e.fails(logical.ReadOperation, "creds/quiet", nil)
			logs := e.logs.String()
			if !strings.Contains(logs, "token refresh failed") {
				t.Fatal("the failed refresh was not logged")
			}
			assertNoSecrets(t, "engine log", logs, cfg.RefreshToken, c.Secret)
		})
	}
}

// A revocation record of the refresh token still in use (the write that
// would have replaced it never landed) is settled without revoking it.
func TestRollbackLeavesTheCurrentRefreshTokenAlive(t *testing.T) {
	e := newEnv(t)
	c := e.account("inuse", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "inuse")
	if _, err := e.b.putRevokeWAL(context.Background(), e.storage, "inuse", cfg.RefreshTokenIssuer, cfg.RefreshToken, cfg.Generation+1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
		t.Fatal(err)
	}
	if !e.sim.RefreshTokenValid(cfg.RefreshToken) || e.sim.ClientCounters(c.ID).Revokes != 0 {
		t.Fatal("the rollback revoked the refresh token the account still uses")
	}
	if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
		t.Fatalf("the settled record is still there: %v", keys)
	}
	e.creds("inuse", map[string]interface{}{"min_ttl": "59m59s"})
}
