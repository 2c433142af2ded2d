package backend

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func (e *env) staticCreds(name string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp := e.must(logical.ReadOperation, "static-creds/"+name, data)
	if resp.Secret != nil {
		e.t.Fatalf("static-creds/%s created a lease", name)
	}
	return resp
}

func ttlOf(t *testing.T, resp *logical.Response) time.Duration {
	t.Helper()
	n, ok := resp.Data["ttl"].(int64)
	if !ok {
		t.Fatalf("ttl %#v is not an int64", resp.Data["ttl"])
	}
	return time.Duration(n) * time.Second
}

// A token handed out unleased is held until it expires: revoking the last
// lease on it does not revoke it at Zoho, before or after a restart, and
// readers keep getting it.
func TestUnleasedReadHoldsTheTokenUntilItExpires(t *testing.T) {
	e := newEnv(t)
	c := e.account("shared", nil)
	leased := e.creds("shared", nil)
	static := e.staticCreds("shared", nil)
	tok := accessToken(static)
	if accessToken(leased) != tok {
		t.Fatal("creds/ and static-creds/ handed out different tokens")
	}
	if err := e.revokeLease(leased); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Revokes; got != 0 || !e.sim.AccessTokenValid(tok) {
		t.Fatalf("the last lease's revocation revoked a token handed out unleased (%d revokes, valid %v)", got, e.sim.AccessTokenValid(tok))
	}
	if accessToken(e.creds("shared", nil)) != tok {
		t.Fatal("the token was retired: creds/ handed out another")
	}

	e.restart()
	again := e.creds("shared", nil)
	if accessToken(again) != tok {
		t.Fatal("after a restart creds/ handed out another token")
	}
	if err := e.revokeLease(again); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Revokes; got != 0 || !e.sim.AccessTokenValid(tok) {
		t.Fatalf("after a restart a lease revocation revoked the unleased token (%d revokes)", got)
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 0 {
		t.Fatalf("%d refreshes: the shared token was replaced", got)
	}
}

// An unleased token counts as held against the live-token cap: no refresh
// lets Zoho invalidate it, after a restart either, and the refusal says why.
func TestLiveCapNeverEvictsAnUnleasedToken(t *testing.T) {
	e := newEnv(t)
	c := e.account("capped", map[string]interface{}{"live_token_cap": 2})
	held := accessToken(e.staticCreds("capped", nil))
	e.clock.Advance(time.Minute)
	second := e.creds("capped", map[string]interface{}{"min_ttl": "59m"})
	if accessToken(second) == held {
		t.Fatal("min_ttl did not force a refresh")
	}
	for _, restart := range []bool{false, true} {
		if restart {
			e.restart()
		}
		e.clock.Advance(time.Minute)
		msg, status := e.fails(logical.ReadOperation, "creds/capped", map[string]interface{}{"min_ttl": "59m"})
		if status != http.StatusTooManyRequests || !strings.Contains(msg, "static-creds/") || !strings.Contains(msg, "held until it expires") {
			t.Fatalf("restart %v: got %d %q, want 429 saying the token was handed out unleased", restart, status, msg)
		}
	}
	if got := e.sim.ClientCounters(c.ID); got.Evictions != 0 || got.Refreshes != 1 {
		t.Fatalf("Zoho evicted a token or was asked past the refusal: %+v", got)
	}
	if !e.sim.AccessTokenValid(held) {
		t.Fatal("the unleased token died")
	}
	// Once it has expired, refreshes go ahead.
	e.clock.Advance(time.Hour)
	e.creds("capped", map[string]interface{}{"min_ttl": "59m"})
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 2 {
		t.Fatalf("after the unleased token expired: %d refreshes, want 2", got)
	}
}

// The unleased hot path: the first unleased read of a token stores that it
// is held (one write), later ones touch neither storage nor Zoho.
func TestUnleasedReadsStoreOncePerToken(t *testing.T) {
	e := newEnv(t)
	c := e.account("busy", nil)
	e.staticCreds("busy", nil)
	puts, gets := e.storage.puts.Load(), e.storage.gets.Load()
	for i := 0; i < 200; i++ {
		e.staticCreds("busy", nil)
	}
	if p, g := e.storage.puts.Load()-puts, e.storage.gets.Load()-gets; p != 0 || g != 0 {
		t.Fatalf("200 cached unleased reads made %d storage writes and %d reads, want none", p, g)
	}
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 0 || got.Exchanges != 1 {
		t.Fatalf("cached unleased reads called Zoho: %+v", got)
	}
	if body := scrapeMetrics(t, e, false); !strings.Contains(body, "zoho_static_creds_reads_total 201\n") || !strings.Contains(body, "zoho_live_leases 0\n") {
		t.Fatalf("metrics after 201 unleased reads:\n%s", body)
	}
	// The next token is stored as held once more, at its first unleased read.
	e.clock.Advance(59 * time.Minute)
	puts = e.storage.puts.Load()
	e.staticCreds("busy", nil)
	e.b.bgWG.Wait()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want one refresh for the expiring token, got %d", got)
	}
	if p := e.storage.puts.Load() - puts; p < 1 {
		t.Fatalf("the new token's first unleased read stored nothing (%d writes)", p)
	}
}

// The answer's ttl ends like a lease: a margin before the token's expiry,
// never below min_ttl, spread across readers; expires_at and
// last_vault_rotation describe the token.
func TestUnleasedTTL(t *testing.T) {
	e := newEnv(t)
	e.account("timing", nil)
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		resp := e.staticCreds("timing", nil)
		ttl := ttlOf(t, resp)
		if ttl > 59*time.Minute || ttl < 56*time.Minute {
			t.Fatalf("ttl %s on a fresh 1h token: want within the last 3 minutes before expiry less the 60s margin", ttl)
		}
		seen[ttl] = true
		if got := resp.Data["rotation_period"]; got != int64(3600) {
			t.Fatalf("rotation_period %#v, want 3600", got)
		}
		if got := resp.Data["last_vault_rotation"]; got != e.clock.Now().UTC().Format(time.RFC3339Nano) {
			t.Fatalf("last_vault_rotation %v, want the token's issue %v", got, e.clock.Now())
		}
	}
	if len(seen) < 5 {
		t.Fatalf("20 readers got only %d different ttls: ends are not spread", len(seen))
	}
	e.clock.Advance(10 * time.Minute)
	resp := e.staticCreds("timing", map[string]interface{}{"min_ttl": "49m"})
	if ttl := ttlOf(t, resp); ttl < 49*time.Minute || ttl > 49*time.Minute {
		t.Fatalf("min_ttl=49m with 49m left before the margin: ttl %s", ttl)
	}
	exp, _ := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	if left := exp.Sub(e.clock.Now()); ttlOf(t, resp) > left-time.Minute {
		t.Fatalf("ttl %s reaches into the last minute before expiry (%s left)", ttlOf(t, resp), left)
	}
}

// revoke/ ends unleased tokens too: they die with the refresh token.
func TestRevokeEndsUnleasedTokens(t *testing.T) {
	e := newEnv(t)
	e.account("gone", nil)
	tok := accessToken(e.staticCreds("gone", nil))
	e.must(logical.UpdateOperation, "revoke/gone", nil)
	if e.sim.AccessTokenValid(tok) {
		t.Fatal("revoke/ left the unleased token alive at Zoho")
	}
	if _, status := e.fails(logical.ReadOperation, "static-creds/gone", nil); status != http.StatusBadRequest {
		t.Fatalf("static-creds/ after revoke/: %d, want 400 (write a new grant)", status)
	}
}

// rejected= on static-creds/ retires the token and serves its successor.
func TestUnleasedRejectedReport(t *testing.T) {
	e := newEnv(t)
	c := e.account("rej", nil)
	first := e.staticCreds("rej", nil)
	next := e.staticCreds("rej", map[string]interface{}{"rejected": first.Data["token_id"]})
	if accessToken(next) == accessToken(first) {
		t.Fatal("the rejected token was served again")
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want one refresh, got %d", got)
	}
	if accessToken(e.creds("rej", nil)) != accessToken(next) {
		t.Fatal("creds/ serves another token than the successor")
	}
}

// Unleased reads racing refreshes that would evict their token and lease
// revocations that would revoke it: every token an unleased reader got is
// alive at Zoho afterwards. With a cap of 1 a refresh must evict the only
// live token: it either finds it unheld (and no unleased reader gets it
// after that) or is refused.
func TestUnleasedReadsRacingEvictions(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 1 })
	e.account("race", map[string]interface{}{"live_token_cap": 1})
	for round := 0; round < 50; round++ {
		e.clock.Advance(time.Hour) // the previous round's tokens expired
		var mu sync.Mutex
		got := map[string]bool{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 9; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				switch i % 3 {
				case 0:
					// Makes the current token too short for min_ttl=59m.
					e.clock.Advance(time.Minute)
				case 1:
					// A leased reader that lets go at once: its revocation
					// must not revoke a token unleased readers got.
					resp, _, status := e.attempt(logical.ReadOperation, "creds/race", map[string]interface{}{"min_ttl": "59m"})
					if status == http.StatusOK {
						_ = e.revokeLease(resp)
					}
				default:
					resp, _, status := e.attempt(logical.ReadOperation, "static-creds/race", nil)
					if status == http.StatusOK {
						mu.Lock()
						got[accessToken(resp)] = true
						mu.Unlock()
					}
				}
			}(i)
		}
		close(start)
		wg.Wait()
		e.b.bgWG.Wait()
		for tok := range got {
			if !e.sim.AccessTokenValid(tok) {
				t.Fatalf("round %d: token %s handed out unleased died at Zoho before its expiry: %+v", round, tokenID(tok), e.sim.Counters())
			}
		}
	}
}

// A client_credentials account's unleased token: its last lease's revocation
// leaves it, revoke/ revokes it at Zoho (it has no refresh token to die
// with).
func TestUnleasedClientCredentialsToken(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	tok := accessToken(e.staticCreds("org", nil))
	leased := e.creds("org", nil)
	if accessToken(leased) != tok {
		t.Fatal("creds/ and static-creds/ handed out different tokens")
	}
	if err := e.revokeLease(leased); err != nil {
		t.Fatal(err)
	}
	if !e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).RevokedAccess != 0 {
		t.Fatal("the last lease's revocation revoked the token handed out unleased")
	}
	e.must(logical.UpdateOperation, "revoke/org", nil)
	if e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).RevokedAccess != 1 {
		t.Fatalf("revoke/ left the unleased token alive: %+v", e.sim.ClientCounters(c.ID))
	}
}
