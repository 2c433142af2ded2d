package backend

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// Vault seal-wraps every key under the prefixes the backend declares; every
// key the engine writes must fall under one of them.
func TestStorageIsSealWrapped(t *testing.T) {
	e := newEnv(t)
	c := e.account("wrap", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502, Times: 1})
	e.must(logical.UpdateOperation, "config/wrap", map[string]interface{}{"grant_code": e.code(c)}) // leaves a WAL entry
	prefixes := e.b.SpecialPaths().SealWrapStorage
	keys, err := logical.CollectKeys(context.Background(), e.storage)
	if err != nil || len(keys) < 3 {
		t.Fatalf("keys %v: %v", keys, err)
	}
	for _, k := range keys {
		wrapped := false
		for _, p := range prefixes {
			wrapped = wrapped || strings.HasPrefix(k, p)
		}
		if !wrapped {
			t.Fatalf("%s is not under a seal-wrapped prefix %v", k, prefixes)
		}
	}
}

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

// Rarely set fields are held apart in memory but stored flat, as before they
// were split: old entries load, new entries read the same.
func TestRareFieldsAreStoredFlat(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	tok := &tokenState{Generation: 3, AccessToken: "1000.a.b"}
	tok.SetFailure(tokenFailure{LastError: "throttled", LastErrorCode: "Access Denied", ConsecutiveFailures: 2, NextAttemptAt: at, NeedsReauth: true})
	cfg := &accountConfig{ClientID: "1000.X", Generation: 3}
	cfg.SetMarks(accountMarks{RevokedAt: at, InterruptedExchangeAt: at})
	for _, c := range []struct {
		v    interface{}
		keys []string
	}{
		{tok, []string{"generation", "access_token", "last_error", "last_error_code", "consecutive_failures", "next_attempt_at", "needs_reauth"}},
		{cfg, []string{"client_id", "generation", "revoked_at", "interrupted_exchange_at", "revocation_abandoned_at"}},
	} {
		raw, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		var flat map[string]interface{}
		if err := json.Unmarshal(raw, &flat); err != nil {
			t.Fatal(err)
		}
		for _, k := range c.keys {
			if _, ok := flat[k]; !ok {
				t.Errorf("%s lacks top-level %q", raw, k)
			}
		}
	}
	raw, _ := json.Marshal(tok)
	var back tokenState
	if err := json.Unmarshal(raw, &back); err != nil || back.Failure() != tok.Failure() || back.AccessToken != tok.AccessToken {
		t.Fatalf("token state round trip: %+v %+v (%v)", back, back.Failure(), err)
	}
	raw, _ = json.Marshal(cfg)
	var backCfg accountConfig
	if err := json.Unmarshal(raw, &backCfg); err != nil || backCfg.Marks() != cfg.Marks() || backCfg.ClientID != cfg.ClientID {
		t.Fatalf("config round trip: %+v (%v)", backCfg, err)
	}
	// A healthy account stored with zero values holds nothing apart.
	var healthy tokenState
	if err := json.Unmarshal([]byte(`{"generation":1,"last_error":"","last_error_at":"0001-01-01T00:00:00Z","consecutive_failures":0,"next_attempt_at":"0001-01-01T00:00:00Z"}`), &healthy); err != nil || healthy.failure != nil {
		t.Fatalf("zero failure kept: %+v (%v)", healthy.failure, err)
	}
	var plain accountConfig
	if err := json.Unmarshal([]byte(`{"client_id":"1000.X","revoked_at":"0001-01-01T00:00:00Z","interrupted_exchange_at":"0001-01-01T00:00:00Z"}`), &plain); err != nil || plain.marks != nil {
		t.Fatalf("zero marks kept: %+v (%v)", plain.marks, err)
	}
}

// A failure with any one of its fields set is kept; a missing token state
// loads as none.
func TestTokenFailureWithOneFieldIsKept(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i, f := range []tokenFailure{{LastError: "boom"}, {LastErrorAt: at}, {LastErrorCode: "invalid_code"},
		{ConsecutiveFailures: 1}, {NextAttemptAt: at}, {NeedsReauth: true}} {
		var st tokenState
		st.SetFailure(f)
		if st.Failure() != f {
			t.Errorf("case %d: failure %+v dropped: %+v", i, f, st.Failure())
		}
	}
	st, err := loadTokenState(context.Background(), &logical.InmemStorage{}, "missing")
	if st != nil || err != nil {
		t.Fatalf("missing token state loaded as %+v, %v", st, err)
	}
}
