package backend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

func TestGrantCodeExchangeTokenIsUsed(t *testing.T) {
	e := newEnv(t)
	c := e.account("analytics", nil)
	if got := e.sim.ClientCounters(c.ID); got.Exchanges != 1 || got.TokenRequests != 1 {
		t.Fatalf("want exactly one exchange, got %+v", got)
	}
	resp := e.creds("analytics", nil)
	tok := accessToken(resp)
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("the token handed out is not valid at Zoho")
	}
	for k, want := range map[string]string{"api_domain": e.sim.APIDomain("us"), "token_type": "Bearer"} {
		if resp.Data[k] != want {
			t.Fatalf("%s = %v, want %v", k, resp.Data[k], want)
		}
	}
	exp, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	if err != nil || !exp.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("expires_at = %v (%v)", resp.Data["expires_at"], err)
	}
	// The exchange's access token was served: no refresh at all.
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 0 || got.TokenRequests != 1 {
		t.Fatalf("reading creds after the exchange must not refresh: %+v", got)
	}
	if resp.Secret == nil || resp.Secret.Renewable {
		t.Fatalf("want a non-renewable lease, got %+v", resp.Secret)
	}
}

func TestCachedReadTouchesNeitherStorageNorZoho(t *testing.T) {
	e := newEnv(t)
	c := e.account("crm", nil)
	first := accessToken(e.creds("crm", nil))
	gets, puts := e.storage.gets.Load(), e.storage.puts.Load()
	before := e.sim.ClientCounters(c.ID).TokenRequests
	const reads = 2000
	for i := 0; i < reads; i++ {
		if tok := accessToken(e.creds("crm", nil)); tok != first {
			t.Fatalf("read %d got another token", i)
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != before {
		t.Fatalf("cached reads called Zoho %d times", got-before)
	}
	if g := e.storage.gets.Load() - gets; g != 0 {
		t.Fatalf("cached reads did %d storage reads", g)
	}
	// Lease reservations double: 2000 leases cost at most log2(2000)+1 writes.
	if p := e.storage.puts.Load() - puts; p > 8 {
		t.Fatalf("cached reads did %d storage writes, want ≤ 8", p)
	}
}

func TestConcurrentReadersCoalesceIntoOneRefresh(t *testing.T) {
	e := newEnv(t)
	c := e.account("books", nil)
	e.clock.Advance(time.Hour) // the exchanged token has expired
	const readers = 100
	var wg sync.WaitGroup
	tokens := make([]string, readers)
	errs := make([]error, readers)
	start := make(chan struct{})
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			resp, msg, status := e.attempt(logical.ReadOperation, "creds/books", nil)
			if status != http.StatusOK {
				errs[i] = errString(msg)
				return
			}
			tokens[i] = accessToken(resp)
		}(i)
	}
	close(start)
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
		if tokens[i] != tokens[0] || tokens[i] == "" {
			t.Fatalf("reader %d got a different token", i)
		}
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("%d readers caused %d refreshes, want 1", readers, got)
	}
}

func TestLeaseNeverOutlivesToken(t *testing.T) {
	e := newEnv(t)
	e.account("desk", nil)
	for _, step := range []time.Duration{0, 10 * time.Minute, 20 * time.Minute} {
		e.clock.Advance(step)
		resp := e.creds("desk", nil)
		exp, _ := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
		left := exp.Sub(e.clock.Now())
		if resp.Secret.TTL <= 0 || resp.Secret.TTL > left-time.Minute {
			t.Fatalf("lease TTL %s with %s left on the token", resp.Secret.TTL, left)
		}
	}
}

func TestLeaseRevocationRevokesAtZohoWithLastLease(t *testing.T) {
	e := newEnv(t)
	c := e.account("people", nil)
	r1 := e.creds("people", nil)
	r2 := e.creds("people", nil)
	tok := accessToken(r1)
	if err := e.revokeLease(r1); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 0 {
		t.Fatalf("revoked at Zoho while another lease holds the token (%d)", got)
	}
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("token died while a lease holds it")
	}
	if err := e.revokeLease(r2); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("last lease revoked: want 1 upstream revoke, got %d", got)
	}
	if e.sim.AccessTokenValid(tok) {
		t.Fatal("token still valid at Zoho after its last lease")
	}
	// The revoked token left the cache: the next read gets a fresh one.
	next := accessToken(e.creds("people", nil))
	if next == tok || !e.sim.AccessTokenValid(next) {
		t.Fatal("next read did not get a fresh, valid token")
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want 1 refresh after the revocation, got %d", got)
	}
	// Revoking a lease twice (Vault retries) is harmless and calls nobody.
	if err := e.revokeLease(r2); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Revokes; got != 1 {
		t.Fatalf("a repeated revocation called Zoho again (%d)", got)
	}
}

func TestLeaseRevocationFailureIsReportedAndRetried(t *testing.T) {
	e := newEnv(t)
	c := e.account("retry", nil)
	r := e.creds("retry", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	if err := e.revokeLease(r); err == nil || !strings.Contains(err.Error(), `"retry"`) {
		t.Fatalf("a failed upstream revoke must fail the lease revocation, naming the account: %v", err)
	}
	if err := e.revokeLease(r); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("want the retried revoke to reach Zoho once, got %d", got)
	}
}

func TestLeaseOfDeadTokenNeedsNoCall(t *testing.T) {
	e := newEnv(t)
	c := e.account("old", nil)
	r := e.creds("old", nil)
	e.clock.Advance(2 * time.Hour)
	if err := e.revokeLease(r); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Revokes + e.sim.ClientCounters(c.ID).RevokeInvalid; got != 0 {
		t.Fatalf("revoking the lease of an expired token called Zoho %d times", got)
	}
}

func TestRateLimitEnforcedLocally(t *testing.T) {
	e := newEnv(t)
	c := e.account("budget", nil) // the exchange is request 1 of 10
	refreshed := 0
	var lastErr string
	var status int
	for i := 0; i < 15; i++ {
		e.clock.Advance(10 * time.Second)
		_, msg, st := e.attempt(logical.ReadOperation, "creds/budget", map[string]interface{}{"min_ttl": "59m55s"})
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
	// Once the window rolls past the exchange, one more request is allowed.
	e.clock.Advance(10*time.Minute - 100*time.Second + time.Second)
	e.creds("budget", map[string]interface{}{"min_ttl": "59m55s"})
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
	msg, status := e.fails(logical.ReadOperation, "creds/throttled", map[string]interface{}{"min_ttl": "59m59s"})
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
	second := e.creds("capped", map[string]interface{}{"min_ttl": "59m59s"}) // token 2
	if accessToken(second) == accessToken(held) {
		t.Fatal("min_ttl did not force a refresh")
	}
	e.clock.Advance(time.Minute)
	msg, status := e.fails(logical.ReadOperation, "creds/capped", map[string]interface{}{"min_ttl": "59m59s"})
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
	e.creds("capped", map[string]interface{}{"min_ttl": "59m59s"})
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 2 {
		t.Fatalf("want the refresh to go ahead, got %d refreshes", got)
	}
}

func TestBackgroundRefreshAhead(t *testing.T) {
	e := newEnv(t)
	c := e.account("ahead", nil)
	old := accessToken(e.creds("ahead", nil))
	// Not due yet: nothing happens.
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("%d accounts due right after minting", n)
	}
	e.clock.Advance(46 * time.Minute) // past the refresh point (≤ 45 min before... 15 min ahead)
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

func TestReaderTriggersAsyncRefreshAndIsServedAtOnce(t *testing.T) {
	e := newEnv(t)
	c := e.account("async", nil)
	old := accessToken(e.creds("async", nil))
	e.clock.Advance(50 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 300 * time.Millisecond, Times: 1})
	if tok := accessToken(e.creds("async", nil)); tok != old {
		t.Fatal("the reader waited for the refresh instead of getting the cached token")
	}
	e.b.bgWG.Wait()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want one background refresh, got %d", got)
	}
	if tok := accessToken(e.creds("async", nil)); tok == old {
		t.Fatal("new token not installed")
	}
}

func TestRestartKeepsTokensWithoutRefresh(t *testing.T) {
	e := newEnv(t)
	c := e.account("durable", nil)
	tok := accessToken(e.creds("durable", nil))
	// A new backend on the same storage, as after a restart or failover.
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, err := FactoryWithOptions(Options{Now: e.clock.Now})(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b.Cleanup(context.Background())
	e.b = lb.(*Backend)
	if got := accessToken(e.creds("durable", nil)); got != tok {
		t.Fatal("restart lost the cached token")
	}
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 0 || got.TokenRequests != 1 {
		t.Fatalf("restart caused upstream calls: %+v", got)
	}
}

func TestRestartKeepsRateBudget(t *testing.T) {
	e := newEnv(t)
	e.account("persist", nil)
	for i := 0; i < 9; i++ {
		e.clock.Advance(10 * time.Second)
		e.creds("persist", map[string]interface{}{"min_ttl": "59m59s"})
	}
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, err := FactoryWithOptions(Options{Now: e.clock.Now})(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b = lb.(*Backend)
	e.clock.Advance(10 * time.Second)
	if _, status := e.fails(logical.ReadOperation, "creds/persist", map[string]interface{}{"min_ttl": "59m59s"}); status != http.StatusTooManyRequests {
		t.Fatalf("budget forgotten across restart: %d", status)
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

func TestManyConcurrentReadersAcrossAccounts(t *testing.T) {
	e := newEnv(t)
	const accounts, readers = 50, 1000
	clients := make([]zohosim.Client, accounts)
	for i := range clients {
		clients[i] = e.account(fmt.Sprintf("acct-%d", i), nil)
	}
	e.clock.Advance(time.Hour) // every token expired: refreshes in flight under load
	var wg sync.WaitGroup
	var failed sync.Map
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			_, msg, status := e.attempt(logical.ReadOperation, fmt.Sprintf("creds/acct-%d", r%accounts), nil)
			if status != http.StatusOK {
				failed.Store(r, msg)
			}
		}(r)
	}
	wg.Wait()
	failed.Range(func(k, v interface{}) bool {
		t.Fatalf("reader %v failed: %v", k, v)
		return false
	})
	for _, c := range clients {
		if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
			t.Fatalf("client %s refreshed %d times", c.ID, got)
		}
	}
}

func TestDataCenterListsAgree(t *testing.T) {
	codes := zoho.DataCenterCodes()
	if strings.Join(codes, ",") != strings.Join(paths.DataCenters, ",") {
		t.Fatalf("paths accepts %v, the client knows %v", paths.DataCenters, codes)
	}
}

func TestConfigUpdateKeepsLeaseCounts(t *testing.T) {
	e := newEnv(t)
	c := e.account("keep", nil)
	r1 := e.creds("keep", nil)
	e.must(logical.UpdateOperation, "config/keep", map[string]interface{}{"scopes": "ZohoCRM.modules.READ"})
	if err := e.revokeLease(r1); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("a config update lost the lease count: %d upstream revokes", got)
	}
}

func TestFirstLeasesCostNoStorageWrite(t *testing.T) {
	e := newEnv(t)
	e.account("quiet", nil)
	puts := e.storage.puts.Load()
	for i := 0; i < initialReservation; i++ {
		e.creds("quiet", nil)
	}
	if p := e.storage.puts.Load() - puts; p != 0 {
		t.Fatalf("the first %d leases of a token wrote storage %d times", initialReservation, p)
	}
	e.creds("quiet", nil)
	if p := e.storage.puts.Load() - puts; p != 1 {
		t.Fatalf("crossing the reservation should write once, wrote %d", p)
	}
}

// Tokens minted together are refreshed spread over half their lifetime.
func TestRefreshPointsSpread(t *testing.T) {
	var tp timingPolicy
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expires := issued.Add(time.Hour)
	buckets := make([]int, 12) // 5-minute buckets over the hour
	for i := 0; i < 6000; i++ {
		at := tp.refreshAt(issued, expires, tokenID(fmt.Sprintf("1000.%032d.x", i)))
		off := at.Sub(issued)
		if off < 15*time.Minute || off > 45*time.Minute {
			t.Fatalf("refresh point %s after minting is outside [15m, 45m]", off)
		}
		buckets[int(off/(5*time.Minute))]++
	}
	// Six buckets hold them all: 1000 each on average; none may be a herd.
	for i := 3; i < 9; i++ {
		if buckets[i] < 800 || buckets[i] > 1200 {
			t.Fatalf("bucket %d holds %d of 6000 refreshes: %v", i, buckets[i], buckets)
		}
	}
}
