package backend

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func TestRateLimitEnforcedLocally(t *testing.T) {
	e := newEnv(t)
	c := e.account("budget", nil) // the exchange is request 1 of 10
	refreshed := 0
	var lastErr string
	var status int
	for i := 0; i < 15; i++ {
		e.clock.Advance(10 * time.Second)
		_, msg, st := e.attempt(logical.ReadOperation, "creds/budget", map[string]interface{}{"min_ttl": "59m"})
		if st != http.StatusOK {
			lastErr, status = msg, st
			break
		}
		refreshed++
	}
	if refreshed != 9 {
		t.Fatalf("want 9 refreshes before the local budget stops, got %d", refreshed)
	}
	if status != http.StatusTooManyRequests || !strings.Contains(lastErr, `"budget"`) || !strings.Contains(lastErr, "next request allowed at") {
		t.Fatalf("want a 429 naming the account and the next allowed time, got %d %q", status, lastErr)
	}
	got := e.sim.ClientCounters(c.ID)
	if got.TokenRequests != 10 || got.Throttled != 0 {
		t.Fatalf("Zoho saw %+v; want 10 requests and never a throttle", got)
	}
	// A plain read still gets the valid cached token.
	e.creds("budget", nil)
	// Zoho's documented budget is 10 token requests per 10 minutes, a
	// rolling window: a second before the exchange leaves it, still none;
	// once it has left, one more request is allowed.
	e.clock.Advance(10*time.Minute - 100*time.Second - time.Second)
	if _, status := e.fails(logical.ReadOperation, "creds/budget", map[string]interface{}{"min_ttl": "59m"}); status != http.StatusTooManyRequests {
		t.Fatalf("9m59s after the exchange the 11th request was not refused: %d", status)
	}
	e.clock.Advance(2 * time.Second)
	e.creds("budget", map[string]interface{}{"min_ttl": "59m"})
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 11 {
		t.Fatalf("after the window rolled: %d requests", got)
	}
}

func TestAccessDeniedBacksOffAndServesCache(t *testing.T) {
	e := newEnv(t)
	c := e.account("throttled", nil)
	tok := accessToken(e.creds("throttled", nil))
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultThrottle})
	e.clock.Advance(time.Minute)
	// Force a refresh: it is throttled.
	msg, status := e.fails(logical.ReadOperation, "creds/throttled", map[string]interface{}{"min_ttl": "59m"})
	if status != http.StatusTooManyRequests || !strings.Contains(msg, "Access Denied") {
		t.Fatalf("got %d %q", status, msg)
	}
	after := e.sim.ClientCounters(c.ID).TokenRequests
	// While the cached token is valid, reads succeed without calling Zoho.
	for i := 0; i < 20; i++ {
		if accessToken(e.creds("throttled", nil)) != tok {
			t.Fatal("cached token not served during back-off")
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != after {
		t.Fatalf("cached reads during the back-off called Zoho %d times", got-after)
	}
	// Near expiry the engine tries again once the window allows, is throttled
	// again, and once the token has expired reads fail fast, naming the next
	// attempt.
	e.clock.Advance(58*time.Minute + 30*time.Second)
	if _, status = e.fails(logical.ReadOperation, "creds/throttled", nil); status != http.StatusTooManyRequests {
		t.Fatalf("near expiry: %d", status)
	}
	after = e.sim.ClientCounters(c.ID).TokenRequests
	e.clock.Advance(time.Minute)
	msg, status = e.fails(logical.ReadOperation, "creds/throttled", nil)
	if status != http.StatusTooManyRequests || !strings.Contains(msg, "next attempt at") || !strings.Contains(msg, `"throttled"`) {
		t.Fatalf("got %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != after {
		t.Fatalf("Zoho was called %d times during the back-off", got-after)
	}
	e.sim.ClearFaults()
	e.clock.Advance(10 * time.Minute)
	if accessToken(e.creds("throttled", nil)) == tok {
		t.Fatal("expected a fresh token after the window")
	}
}

func TestTransientFailuresBackOffWithJitter(t *testing.T) {
	e := newEnv(t)
	c := e.account("flaky", nil)
	e.clock.Advance(time.Hour)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503})
	msg, status := e.fails(logical.ReadOperation, "creds/flaky", nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, "HTTP 503") {
		t.Fatalf("got %d %q", status, msg)
	}
	n := e.sim.ClientCounters(c.ID).TokenRequests
	for i := 0; i < 50; i++ {
		_, status = e.fails(logical.ReadOperation, "creds/flaky", nil)
		if status != http.StatusServiceUnavailable {
			t.Fatalf("during back-off want 503, got %d", status)
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != n {
		t.Fatalf("reads during back-off reached Zoho %d times", got-n)
	}
	// Over 10 minutes of constant reads, the attempts stay within Zoho's budget.
	for i := 0; i < 600; i++ {
		e.clock.Advance(time.Second)
		_, _ = e.request(logical.ReadOperation, "creds/flaky", nil)
	}
	attempts := e.sim.ClientCounters(c.ID).TokenRequests - 1 // minus the exchange
	if attempts < 5 || attempts > DefaultRateLimit {
		t.Fatalf("want a handful of backed-off attempts within the budget, got %d", attempts)
	}
	e.sim.ClearFaults()
	e.clock.Advance(backoffMax)
	e.creds("flaky", nil)
	st := e.must(logical.ReadOperation, "config/flaky", nil)
	if st.Data["consecutive_failures"] != 0 || st.Data["last_error"] == "" {
		t.Fatalf("status after recovery: %v", st.Data)
	}
}

func TestRefreshTokenRevokedBehindVaultsBack(t *testing.T) {
	e := newEnv(t)
	c := e.account("gone", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "gone")
	if !e.sim.RevokeRefreshToken(cfg.RefreshToken) {
		t.Fatal("simulator did not know the refresh token")
	}
	e.clock.Advance(time.Hour)
	msg, status := e.fails(logical.ReadOperation, "creds/gone", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "invalid_code") || !strings.Contains(msg, "grant_code") {
		t.Fatalf("got %d %q", status, msg)
	}
	st := e.must(logical.ReadOperation, "config/gone", nil)
	if st.Data["needs_reauthorization"] != true {
		t.Fatalf("account should need re-authorization: %v", st.Data)
	}
	n := e.sim.ClientCounters(c.ID).TokenRequests
	msg, status = e.fails(logical.ReadOperation, "creds/gone", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "write a new grant_code") {
		t.Fatalf("got %d %q", status, msg)
	}
	if e.sim.ClientCounters(c.ID).TokenRequests != n {
		t.Fatal("a dead refresh token was tried again")
	}
	// Re-authorizing fixes it.
	e.must(logical.UpdateOperation, "config/gone", map[string]interface{}{"grant_code": e.code(c)})
	e.creds("gone", nil)
	if st := e.must(logical.ReadOperation, "config/gone", nil); st.Data["needs_reauthorization"] != false {
		t.Fatal("still marked after re-authorization")
	}
}

func TestLiveCapNeverEvictsHeldToken(t *testing.T) {
	e := newEnv(t)
	c := e.account("capped", map[string]interface{}{"live_token_cap": 2})
	held := e.creds("capped", nil) // lease on token 1
	e.clock.Advance(time.Minute)
	second := e.creds("capped", map[string]interface{}{"min_ttl": "59m"}) // token 2
	if accessToken(second) == accessToken(held) {
		t.Fatal("min_ttl did not force a refresh")
	}
	e.clock.Advance(time.Minute)
	msg, status := e.fails(logical.ReadOperation, "creds/capped", map[string]interface{}{"min_ttl": "59m"})
	if status != http.StatusTooManyRequests || !strings.Contains(msg, "lease") {
		t.Fatalf("got %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID); got.Evictions != 0 || got.Refreshes != 1 {
		t.Fatalf("Zoho evicted or was asked again: %+v", got)
	}
	if !e.sim.AccessTokenValid(accessToken(held)) {
		t.Fatal("the held token died")
	}
	// Once the first token's lease is gone, a third token may push it out.
	if err := e.revokeLease(held); err != nil {
		t.Fatal(err)
	}
	e.creds("capped", map[string]interface{}{"min_ttl": "59m"})
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 2 {
		t.Fatalf("want the refresh to go ahead, got %d refreshes", got)
	}
}

func TestReaderTriggersAsyncRefreshAndIsServedAtOnce(t *testing.T) {
	e := newEnv(t)
	c := e.account("async", nil)
	old := accessToken(e.creds("async", nil))
	e.clock.Advance(55*time.Minute + 30*time.Second) // past the latest refresh point, within the floor
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 300 * time.Millisecond, Times: 1})
	if tok := accessToken(e.creds("async", nil)); tok != old {
		t.Fatal("the reader waited for the refresh instead of getting the cached token")
	}
	e.waitBackground()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want one background refresh, got %d", got)
	}
	if tok := accessToken(e.creds("async", nil)); tok == old {
		t.Fatal("new token not installed")
	}
}

func TestLegacyMillisecondLifetimes(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LegacyMillis = true })
	e.account("legacy", nil)
	resp := e.creds("legacy", nil)
	exp, _ := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	if !exp.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("expires_at %v: milliseconds misread", exp)
	}
}

// A crash between Zoho's token answer and storing it leaves a live access
// token the restarted engine never saw; it must still count against the
// live-token cap, so that no later refresh evicts a token a lease holds.
func TestTokenLostInACrashCountsAgainstTheLiveCap(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 2 })
	e.account("lost", map[string]interface{}{"live_token_cap": 2})
	held := accessToken(e.creds("lost", nil)) // a lease holds the first token
	e.clock.Advance(2 * time.Minute)          // so that min_ttl=59m forces a refresh
	// The process dies after Zoho answered the refresh: the answer is never stored.
	var puts atomic.Int64
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, tokenPrefix) && puts.Add(1) > 1 {
			return errors.New("crashed")
		}
		return nil
	})
	_, _ = e.request(logical.ReadOperation, "creds/lost", map[string]interface{}{"min_ttl": "59m"})
	e.storage.setPutHook(nil)
	e.restart()
	e.clock.Advance(time.Minute)
	// Another refresh would now make three live tokens at Zoho.
	_, _ = e.request(logical.ReadOperation, "creds/lost", map[string]interface{}{"min_ttl": "59m"})
	if !e.sim.AccessTokenValid(held) {
		t.Fatal("a refresh after the crash evicted the token a lease holds")
	}
}

// An unknown token (its answer was lost) older than the held ones may not
// exist at Zoho: then a refresh at the cap makes Zoho invalidate the oldest
// known token, so that one must be unheld for the refresh to go ahead.
func TestUnknownTokenIsNotAssumedToBeZohosVictim(t *testing.T) {
	rec := func(id string, unknown bool) *leaseRecord {
		return newLeaseRecord(&mintedToken{ID: id, Unknown: unknown}, justMinted)
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

// With a live-token cap of 1 a refresh evicts the current token: no reader may
// take a lease on it while that refresh is on the wire.
func TestNoLeaseOnATokenTheRefreshEvicts(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 1 })
	c := e.account("single", map[string]interface{}{"live_token_cap": 1})
	e.clock.Advance(2 * time.Minute) // a token no longer as fresh as possible
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 600 * time.Millisecond, Times: 1})
	before := e.sim.ClientCounters(c.ID).TokenRequests
	forced := make(chan error, 1)
	go func() {
		_, err := e.request(logical.ReadOperation, "creds/single", map[string]interface{}{"min_ttl": "59m"})
		forced <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.sim.ClientCounters(c.ID).TokenRequests == before {
		if time.Now().After(deadline) {
			t.Fatal("the forced refresh never reached Zoho")
		}
		time.Sleep(5 * time.Millisecond)
	}
	held := accessToken(e.creds("single", nil)) // while the refresh is on the wire
	if err := receive(t, forced, "the answer to the forced refresh"); err != nil {
		t.Fatal(err)
	}
	if !e.sim.AccessTokenValid(held) {
		t.Fatal("a reader took a lease on the token the refresh evicted")
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
		e.creds("ledger", map[string]interface{}{"min_ttl": "59m"})
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
	receive(t, done, "the answer to the read whose refresh was on the wire")
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

// A refresh whose connection was refused never reached Zoho: it mints no
// token that could be alive, unlike one whose answer was lost.
func TestRefusedRefreshMintsNothing(t *testing.T) {
	refused := refusedURL(t)

	e := newEnv(t)
	e.account("refused", nil)
	e.must(logical.UpdateOperation, "config/refused", map[string]interface{}{"accounts_url": refused})
	e.clock.Advance(time.Hour) // the token has expired: the read must refresh
	if _, status := e.fails(logical.ReadOperation, "creds/refused", nil); status != 502 {
		t.Fatalf("status %d, want 502", status)
	}
	if n := e.must(logical.ReadOperation, "status/refused", nil).Data["live_tokens"]; n != 0 {
		t.Fatalf("live_tokens %v after a refused refresh, want 0 (the expired token is gone, nothing was minted)", n)
	}
}
