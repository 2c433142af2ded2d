package backend

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestBackgroundRefreshAhead(t *testing.T) {
	e := newEnv(t)
	c := e.account("ahead", nil)
	old := accessToken(e.creds("ahead", nil))
	// Not due yet: nothing happens.
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("%d accounts due right after minting", n)
	}
	e.clock.Advance(55*time.Minute + 30*time.Second) // past the latest refresh point
	// Recently read. A creds read here would start its own background refresh
	// and race the periodic check; mark the read instead.
	e.b.cachedAccount("ahead").lastRead.Store(e.clock.Now().UnixNano())
	if n := e.b.refreshDue(context.Background(), e.storage); n != 1 {
		t.Fatalf("want 1 account due, got %d", n)
	}
	e.b.bgWG.Wait()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want 1 background refresh, got %d", got)
	}
	if tok := accessToken(e.creds("ahead", nil)); tok == old {
		t.Fatal("readers still get the old token after the background refresh")
	}
	// An idle account is left alone.
	e.clock.Advance(2 * time.Hour)
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("idle account refreshed in the background (%d)", n)
	}
}

func TestExpiredConsentsAreSwept(t *testing.T) {
	e := newEnv(t)
	newConsentAccount(e, "sweep")
	e.must(logical.ReadOperation, "auth-url/sweep", nil)
	e.must(logical.ReadOperation, "auth-url/sweep", nil)
	if keys, _ := e.storage.List(context.Background(), pendingPrefix); len(keys) != 2 {
		t.Fatalf("pending: %v", keys)
	}
	req := &logical.Request{Operation: logical.RollbackOperation, Storage: e.storage}
	e.clock.Advance(pendingTTL - time.Second)
	if _, err := e.b.HandleRequest(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if keys, _ := e.storage.List(context.Background(), pendingPrefix); len(keys) != 2 {
		t.Fatal("live consents swept")
	}
	e.clock.Advance(time.Second)
	if _, err := e.b.HandleRequest(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if keys, _ := e.storage.List(context.Background(), pendingPrefix); len(keys) != 0 {
		t.Fatalf("expired consents kept: %v", keys)
	}
}
