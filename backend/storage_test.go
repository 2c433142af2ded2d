package backend

import (
	"context"
	"strings"
	"sync"
	"testing"

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
