package backend

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// A crash between Zoho's token answer and storing it leaves a live access
// token the restarted engine never saw; it must still count against the
// live-token cap, so that no later refresh evicts a token a lease holds.
func TestTokenLostInACrashCountsAgainstTheLiveCap(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 2 })
	e.account("lost", map[string]interface{}{"live_token_cap": 2})
	held := accessToken(e.creds("lost", nil)) // a lease holds the first token
	e.clock.Advance(2 * time.Minute)          // so that min_ttl=59m59s forces a refresh
	// The process dies after Zoho answered the refresh: the answer is never stored.
	var puts atomic.Int64
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, tokenPrefix) && puts.Add(1) > 1 {
			return errors.New("crashed")
		}
		return nil
	})
	_, _ = e.request(logical.ReadOperation, "creds/lost", map[string]interface{}{"min_ttl": "59m59s"})
	e.storage.setPutHook(nil)
	e.restart()
	e.clock.Advance(time.Minute)
	// Another refresh would now make three live tokens at Zoho.
	_, _ = e.request(logical.ReadOperation, "creds/lost", map[string]interface{}{"min_ttl": "59m59s"})
	if !e.sim.AccessTokenValid(held) {
		t.Fatal("a refresh after the crash evicted the token a lease holds")
	}
}

// A crash between a grant-code exchange and storing the account leaves a
// refresh token at Zoho that Vault never stored: the engine says so.
func TestInterruptedExchangeIsReported(t *testing.T) {
	e := newEnv(t)
	c := e.account("orphan", nil)
	e.clock.Advance(time.Minute)
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, configPrefix) {
			return errors.New("crashed")
		}
		return nil
	})
	_, _ = e.request(logical.UpdateOperation, "config/orphan", map[string]interface{}{"grant_code": e.code(c)})
	e.storage.setPutHook(nil)
	if n := len(e.sim.RefreshTokens(c.ID)); n != 2 {
		t.Fatalf("want 2 refresh tokens at Zoho (the stored one and the lost one), got %d", n)
	}
	e.restart()
	if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
		t.Fatal(err)
	}
	resp := e.must(logical.ReadOperation, "status/orphan", nil)
	if at, _ := resp.Data["interrupted_exchange_at"].(string); at == "" {
		t.Fatalf("status does not report the interrupted exchange: %v", resp.Data)
	}
	if !strings.Contains(e.logs.String(), "interrupted") {
		t.Fatal("the log does not report the interrupted exchange")
	}
}

// An unknown token (its answer was lost) older than the held ones may not
// exist at Zoho: then a refresh at the cap makes Zoho invalidate the oldest
// known token, so that one must be unheld for the refresh to go ahead.
func TestUnknownTokenIsNotAssumedToBeZohosVictim(t *testing.T) {
	rec := func(id string, unknown bool) *leaseRecord {
		return newLeaseRecord(&mintedToken{ID: id, Unknown: unknown}, true)
	}
	u, k0, k1, k2 := rec("u", true), rec("k0", false), rec("k1", false), rec("k2", false)
	// Zoho holds at most 3: minting a fourth invalidates its oldest.
	if got := zohoVictim([]*leaseRecord{u, k0, k1, k2}, 3); got != k0 {
		t.Fatalf("victim %s, want k0: even without the unknown token Zoho is full with k0, k1, k2", got.ID)
	}
	if got := zohoVictim([]*leaseRecord{u, k0, k1}, 3); got != u {
		t.Fatalf("victim %s, want the unknown token: Zoho is full only if it exists", got.ID)
	}
	if got := zohoVictim([]*leaseRecord{k0, u, k1}, 3); got != k0 {
		t.Fatalf("victim %s, want k0", got.ID)
	}
	// A retired token (a revocation or an eviction whose answer was lost) may
	// be gone too.
	gone := rec("gone", false)
	gone.Retired = true
	if got := zohoVictim([]*leaseRecord{gone, k0, k1, k2}, 3); got != k0 {
		t.Fatalf("victim %s, want k0: the retired token may already be gone", got.ID)
	}
}
