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
	e.clock.Advance(2 * time.Minute) // so that min_ttl=59m59s forces a refresh
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
	e.creds(fast, map[string]interface{}{"min_ttl": "59m59s"}) // a refresh of the other account
	e.must(logical.UpdateOperation, "config/"+fast, map[string]interface{}{"scopes": "ZohoCRM.modules.READ"})
	if took := time.Since(began); took > time.Second {
		t.Fatalf("account %q waited %s for account %q's Zoho call", fast, took, slow)
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want 1 refresh of %q, got %d", fast, got)
	}
	<-done
}

// A reader whose context ends while another reader's refresh of the same
// account is slow returns at once.
func TestReaderContextEndsWhileRefreshIsSlow(t *testing.T) {
	e := newEnv(t)
	c := e.account("patient", nil)
	e.clock.Advance(2 * time.Hour) // the token expired: reads wait for a refresh
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 1500 * time.Millisecond, Times: 1})
	first := make(chan error, 1)
	go func() {
		_, err := e.request(logical.ReadOperation, "creds/patient", nil)
		first <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.sim.ClientCounters(c.ID).TokenRequests < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never reached Zoho")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/patient", Storage: e.storage})
	if took := time.Since(began); took > 700*time.Millisecond {
		t.Fatalf("a reader with a 100 ms context waited %s", took)
	}
	if err == nil {
		t.Fatal("a reader whose context ended got an answer")
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// Two callbacks with the same state: exactly one exchanges the code.
func TestCallbackStateIsSingleUseUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	c := newConsentAccount(e, "twice")
	resp := e.must(logical.ReadOperation, "auth-url/twice", nil)
	back := consent(t, resp.Data["auth_url"].(string), nil)
	// Hold each callback after it read the pending authorization until the
	// other one read it too, if the engine lets them both read it.
	arrived := make(chan struct{}, 2)
	e.storage.setGetHook(func(key string) {
		if key != stateKey(back.Get("state")) {
			return
		}
		arrived <- struct{}{}
		deadline := time.After(300 * time.Millisecond)
		for len(arrived) < 2 {
			select {
			case <-deadline:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	statuses := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			s, _ := e.callback(back)
			statuses <- s
		}()
	}
	ok := 0
	for i := 0; i < 2; i++ {
		if <-statuses == 200 {
			ok++
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 1 || ok != 1 {
		t.Fatalf("one state, two callbacks: %d token requests at Zoho, %d successes (want 1 and 1)", got, ok)
	}
}

// Every path whose handler writes storage or hands out a lease is forwarded
// from performance standbys and secondaries to the active node.
func TestWritingPathsAreForwarded(t *testing.T) {
	e := newEnv(t)
	want := map[string][]logical.Operation{
		"creds/x":    {logical.ReadOperation},
		"auth-url/x": {logical.ReadOperation},
		"callback":   {logical.ReadOperation},
		"revoke/x":   {logical.UpdateOperation},
		"config/x":   {logical.CreateOperation, logical.UpdateOperation, logical.DeleteOperation},
	}
	for path, ops := range want {
		p := e.b.Route(path)
		if p == nil {
			t.Fatalf("no route for %s", path)
		}
		for _, op := range ops {
			h, ok := p.Operations[op]
			if !ok {
				t.Fatalf("%s has no %s operation", path, op)
			}
			props := h.Properties()
			if !props.ForwardPerformanceStandby || !props.ForwardPerformanceSecondary {
				t.Errorf("%s %s is not forwarded to the active node", op, path)
			}
		}
	}
}
