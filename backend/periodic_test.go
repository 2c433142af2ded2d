package backend

import (
	"context"
	"fmt"
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

// The periodic function's work grows with the accounts in use, not with all
// accounts: idle accounts are neither loaded nor looked at, and a status
// listing does not keep every account in memory.
func TestPeriodicLooksOnlyAtAccountsInUse(t *testing.T) {
	e := newEnv(t)
	const accounts, used = 60, 3
	for i := 0; i < accounts; i++ {
		e.account(fmt.Sprintf("acct%02d", i), nil)
	}
	e.restart() // nothing loaded
	gets := e.storage.gets.Load()
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil { // a periodic tick
		t.Fatal(err)
	}
	e.b.refreshDue(context.Background(), e.storage)
	if got := e.storage.gets.Load() - gets; got != 0 {
		t.Fatalf("a periodic tick with %d idle accounts read storage %d times", accounts, got)
	}
	// Listing every account's status loads none of them for good.
	e.must(logical.ListOperation, "status/", nil)
	if n := loadedAccounts(e.b); n != 0 {
		t.Fatalf("listing statuses left %d accounts in memory", n)
	}
	for i := 0; i < used; i++ {
		e.creds(fmt.Sprintf("acct%02d", i), nil)
	}
	if n := e.b.inUseCount(); n != used {
		t.Fatalf("%d accounts in use, want %d", n, used)
	}
	// Past their refresh point the accounts in use are refreshed; nothing else
	// is looked at. Once idle they leave the set.
	e.clock.Advance(55*time.Minute + 30*time.Second)
	for i := 0; i < used; i++ {
		e.b.cachedAccount(fmt.Sprintf("acct%02d", i)).lastRead.Store(e.clock.Now().UnixNano())
	}
	gets = e.storage.gets.Load()
	if due := e.b.refreshDue(context.Background(), e.storage); due != used {
		t.Fatalf("%d accounts due, want the %d in use", due, used)
	}
	e.b.bgWG.Wait()
	if got := e.storage.gets.Load() - gets; got != 0 {
		t.Fatalf("refreshing the accounts in use read storage %d times", got)
	}
	e.clock.Advance(3 * time.Hour)
	e.b.refreshDue(context.Background(), e.storage)
	if n := e.b.inUseCount(); n != 0 {
		t.Fatalf("%d idle accounts still in use", n)
	}
}

func loadedAccounts(b *Backend) int {
	n := 0
	b.accounts.Range(func(_, _ interface{}) bool { n++; return true })
	return n
}
