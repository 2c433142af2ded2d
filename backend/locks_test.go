package backend

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// collidingNames returns two account names that Vault's striped locks would
// put on the same stripe.
func collidingNames(t *testing.T) (string, string) {
	t.Helper()
	locks := locksutil.CreateLocks()
	seen := map[*locksutil.LockEntry]string{}
	for i := 0; i < 10000; i++ {
		n := fmt.Sprintf("acct-%d", i)
		l := locksutil.LockForKey(locks, n)
		if other, ok := seen[l]; ok {
			return other, n
		}
		seen[l] = n
	}
	t.Fatal("no two names share a stripe")
	return "", ""
}

// One account's slow Zoho call never stalls another account.
func TestSlowAccountDoesNotStallOthers(t *testing.T) {
	e := newEnv(t)
	slow, fast := collidingNames(t)
	e.account(slow, nil)
	c := e.account(fast, nil)
	e.clock.Advance(2 * time.Minute) // so that min_ttl=59m forces a refresh
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultLatency, Latency: 1500 * time.Millisecond, Times: 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.request(logical.UpdateOperation, "revoke/"+slow, nil)
	}()
	// Wait until the slow revocation is on the wire.
	deadline := time.Now().Add(5 * time.Second)
	for e.sim.Counters().FaultsInjected == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow revocation never reached Zoho")
		}
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	e.creds(fast, map[string]interface{}{"min_ttl": "59m"}) // a refresh of the other account
	e.must(logical.UpdateOperation, "config/"+fast, map[string]interface{}{"scopes": "ZohoCRM.modules.READ"})
	if took := time.Since(began); took > time.Second {
		t.Fatalf("account %q waited %s for account %q's Zoho call", fast, took, slow)
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want 1 refresh of %q, got %d", fast, got)
	}
	receive(t, done, "the end of the slow revocation of "+slow)
}

// A key's lock lives while someone holds or waits for it; a waiter whose
// context ends gives up without taking it.
func TestKeyedLocks(t *testing.T) {
	var l keyedLocks
	unlock, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.lock(context.Background(), "b") // another key: no wait
	if err != nil {
		t.Fatal(err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx, "a"); err == nil {
		t.Fatal("took a held lock")
	}
	if n := l.size(); n != 1 {
		t.Fatalf("%d locks kept, want only the held one", n)
	}
	unlock()
	if n := l.size(); n != 0 {
		t.Fatalf("%d locks kept after every holder left", n)
	}
	again, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	again()
}
