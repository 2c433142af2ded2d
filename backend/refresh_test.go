package backend

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
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

// nextAttemptIn is how long after now the stored back-off lets the account's
// next token request go out (the stored state, at full precision).
func nextAttemptIn(t *testing.T, e *env, name string) time.Duration {
	t.Helper()
	st, err := loadTokenState(context.Background(), e.storage, name)
	if err != nil || st == nil {
		t.Fatalf("token state of %s: %v", name, err)
	}
	return st.Failure().NextAttemptAt.Sub(e.clock.Now())
}

// After a failed token request (Zoho unreachable or failing) the engine waits
// 2 s, doubling with each further failure up to 5 minutes; each wait is
// jittered within its upper half, never below half of it.
func TestBackoffDoublesFromTwoSecondsToFiveMinutes(t *testing.T) {
	e := newEnv(t)
	c := e.account("slow", nil)
	e.clock.Advance(time.Hour) // the exchange has left Zoho's window; the token expired
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503})
	want := []time.Duration{
		2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute,
	}
	for i, d := range want {
		before := e.sim.ClientCounters(c.ID).TokenRequests
		if _, status := e.fails(logical.ReadOperation, "creds/slow", nil); status != http.StatusBadGateway {
			t.Fatalf("failure %d: status %d, want 502 (Zoho's 503)", i+1, status)
		}
		if got := e.sim.ClientCounters(c.ID).TokenRequests; got != before+1 {
			t.Fatalf("failure %d: Zoho saw %d requests, want 1", i+1, got-before)
		}
		wait := nextAttemptIn(t, e, "slow")
		if wait < d/2 || wait > d {
			t.Fatalf("after failure %d the next attempt is in %s, want within [%s, %s]", i+1, wait, d/2, d)
		}
		// A second before it, the read is refused without calling Zoho.
		e.clock.Advance(wait - time.Second)
		if _, status := e.fails(logical.ReadOperation, "creds/slow", nil); status != http.StatusServiceUnavailable {
			t.Fatalf("during back-off %d: status %d, want 503", i+1, status)
		}
		e.clock.Advance(time.Second)
	}
}

// A rejection that needs an operator (a wrong client secret) backs off from
// 30 s, doubling up to 5 minutes, each wait jittered within its upper half.
func TestRejectedRefreshBacksOffFromThirtySeconds(t *testing.T) {
	e := newEnv(t)
	c := e.account("wrong", nil)
	e.sim.RegisterClient(zohosim.Client{ID: c.ID, Secret: "regenerated-" + c.Secret, DC: "us"})
	e.clock.Advance(time.Hour)
	for i, d := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		if msg, _ := e.fails(logical.ReadOperation, "creds/wrong", nil); !strings.Contains(msg, "invalid_client_secret") {
			t.Fatalf("failure %d: %q", i+1, msg)
		}
		wait := nextAttemptIn(t, e, "wrong")
		if wait < d/2 || wait > d {
			t.Fatalf("after rejection %d the next attempt is in %s, want within [%s, %s]", i+1, wait, d/2, d)
		}
		e.clock.Advance(wait)
	}
}

// An account stored without live_token_cap (a record from before the field)
// has Zoho's default cap of 10 live tokens, not none.
func TestStoredAccountWithoutLiveTokenCapHasTheDefault(t *testing.T) {
	e := newEnv(t)
	c := e.account("old", nil)
	cfg, err := loadConfig(context.Background(), e.storage, "old")
	if err != nil {
		t.Fatal(err)
	}
	cfg.LiveTokenCap = 0
	if err := putJSON(context.Background(), e.storage, configPrefix+"old", cfg); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if got := e.must(logical.ReadOperation, "config/old", nil).Data["live_token_cap"]; got != 10 {
		t.Fatalf("live_token_cap %v, want the default 10", got)
	}
	held := e.creds("old", nil)
	e.clock.Advance(2 * time.Minute)
	if accessToken(e.creds("old", map[string]interface{}{"min_ttl": "59m"})) == accessToken(held) {
		t.Fatal("min_ttl did not force a refresh")
	}
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 1 || !e.sim.AccessTokenValid(accessToken(held)) {
		t.Fatalf("with two live tokens of ten: %+v, held token valid %v", got, e.sim.AccessTokenValid(accessToken(held)))
	}
}

// A background refresh that finds the token already refreshed (another
// caller got there first) sends nothing; one past the refresh point does.
func TestRefreshAheadOfAFreshTokenSendsNothing(t *testing.T) {
	e := newEnv(t)
	c := e.account("ahead", nil)
	e.creds("ahead", nil)
	a := e.b.cachedAccount("ahead")
	if err := e.b.refreshAhead(e.storage, a); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 0 {
		t.Fatalf("a fresh token was refreshed %d times", got)
	}
	e.clock.Advance(55*time.Minute + 30*time.Second) // past the latest refresh point
	if err := e.b.refreshAhead(e.storage, a); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("a token past its refresh point: %d refreshes, want 1", got)
	}
}

// A node that became a performance standby (or a replica) after it scheduled
// a refresh leaves refreshing to the active node: the timer sends nothing.
func TestScheduledRefreshDoesNotRunOnAStandby(t *testing.T) {
	e := newEnv(t)
	c := e.account("standby", nil)
	e.creds("standby", nil)
	sys, ok := e.b.System().(*replicationCache)
	if !ok {
		t.Fatalf("system view %T", e.b.System())
	}
	// Vault's answer about the node's role, as the engine keeps it.
	role := func(st consts.ReplicationState) {
		sys.last.Store(&replicationAnswer{at: time.Now().Add(time.Hour), state: st, localMount: false})
	}
	a := e.b.cachedAccount("standby")
	at := a.view.Load().refreshAt
	e.clock.Advance(at.Sub(e.clock.Now()) - time.Second) // a second before the refresh point
	e.b.scheduleIfSoon(e.storage, a, e.clock.Now())
	e.timers.mu.Lock()
	pending := append([]fakeTimer(nil), e.timers.pending...)
	e.timers.mu.Unlock()
	if len(pending) != 1 || !pending[0].at.Equal(at) {
		t.Fatalf("want one refresh scheduled at %s, got %d", at, len(pending))
	}
	e.clock.Advance(time.Second)
	role(consts.ReplicationPerformanceStandby)
	e.fireDueTimers()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 0 {
		t.Fatalf("a performance standby refreshed %d times", got)
	}
	// Active again, the same timer refreshes.
	role(0)
	e.timers.mu.Lock()
	e.timers.pending = pending
	e.timers.mu.Unlock()
	e.fireDueTimers()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("the active node: %d refreshes, want 1", got)
	}
}

// With a live-token cap of 1 a refresh retires the current token first (Zoho
// would drop it); when Zoho answers with an error nothing was minted and
// nothing dropped, so readers get that token again, without another request.
func TestRefusedRefreshAtTheCapServesTheCurrentTokenAgain(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 1 })
	c := e.account("single", map[string]interface{}{"live_token_cap": 1})
	st, _ := loadTokenState(context.Background(), e.storage, "single")
	current := st.AccessToken
	e.clock.Advance(2 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultThrottle, Times: 1})
	if _, status := e.fails(logical.ReadOperation, "creds/single", map[string]interface{}{"min_ttl": "59m"}); status != http.StatusTooManyRequests {
		t.Fatalf("throttled refresh: %d", status)
	}
	n := e.sim.ClientCounters(c.ID).TokenRequests
	if got := accessToken(e.creds("single", nil)); got != current {
		t.Fatal("the current token was not served after the refused refresh")
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != n || !e.sim.AccessTokenValid(current) {
		t.Fatalf("serving it sent %d token requests (want 0); valid at Zoho %v", got-n, e.sim.AccessTokenValid(current))
	}
}

// A failed refresh is stored (the back-off survives a restart); if storing it
// fails, the log says so, and only then.
func TestFailedRefreshIsStoredOrLogged(t *testing.T) {
	e := newEnv(t)
	e.account("flaky", nil)
	e.clock.Advance(time.Hour)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503})
	e.fails(logical.ReadOperation, "creds/flaky", nil)
	if st, _ := loadTokenState(context.Background(), e.storage, "flaky"); st.Failure().ConsecutiveFailures != 1 {
		t.Fatalf("stored failures %d, want 1", st.Failure().ConsecutiveFailures)
	}
	if logs := e.logs.String(); strings.Contains(logs, "could not store") {
		t.Fatalf("a stored failure was logged as not stored:\n%s", logs)
	}
	// The request is recorded (that write works), the failure is not.
	e.clock.Advance(backoffMax)
	var tokenPuts atomic.Int64
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, tokenPrefix) && tokenPuts.Add(1) > 1 {
			return errors.New("injected storage failure")
		}
		return nil
	})
	e.fails(logical.ReadOperation, "creds/flaky", nil)
	e.storage.setPutHook(nil)
	if !strings.Contains(e.logs.String(), "could not store refresh failure") {
		t.Fatal("a failure that could not be stored was not logged")
	}
}

// A new client secret Zoho refuses leaves the account as it was, but its
// token request counts in the budget and is stored; if storing it fails, the
// log says so, and only then.
func TestRefusedVerificationIsStoredOrLogged(t *testing.T) {
	e := newEnv(t)
	e.account("rot", nil)
	requests := func() int {
		st, _ := loadTokenState(context.Background(), e.storage, "rot")
		return len(st.Requests)
	}
	before := requests()
	if msg, _ := e.fails(logical.UpdateOperation, "config/rot", map[string]interface{}{"client_secret": "wrong-secret"}); !strings.Contains(msg, "client_secret") {
		t.Fatalf("got %q", msg)
	}
	if got := requests(); got != before+1 {
		t.Fatalf("stored requests %d, want %d", got, before+1)
	}
	if logs := e.logs.String(); strings.Contains(logs, "could not store") {
		t.Fatalf("a stored verification was logged as not stored:\n%s", logs)
	}
	var tokenPuts atomic.Int64
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, tokenPrefix) && tokenPuts.Add(1) > 1 {
			return errors.New("injected storage failure")
		}
		return nil
	})
	e.fails(logical.UpdateOperation, "config/rot", map[string]interface{}{"client_secret": "wrong-again"})
	e.storage.setPutHook(nil)
	if !strings.Contains(e.logs.String(), "could not store a verification's token request") {
		t.Fatal("a verification that could not be stored was not logged")
	}
}

// A refresh serves the api_domain and scopes Zoho answered with, not those
// stored with the previous token.
func TestRefreshTakesZohosAPIDomainAndScope(t *testing.T) {
	e := newEnv(t)
	e.account("moved", nil)
	st, _ := loadTokenState(context.Background(), e.storage, "moved")
	// Stored as Zoho answered the previous token: its own api_domain and
	// scopes (comma- or space-separated), and no token_type (Bearer).
	st.APIDomain, st.Scope, st.TokenType = "https://stale.example.com", "ZohoCRM.users.READ,ZohoCRM.org.READ ZohoCRM.bulk.READ", ""
	if err := putJSON(context.Background(), e.storage, tokenPrefix+"moved", st); err != nil {
		t.Fatal(err)
	}
	e.restart()
	stored := e.creds("moved", nil)
	if got := stored.Data["api_domain"]; got != "https://stale.example.com" {
		t.Fatalf("the stored api_domain is not served: %v", got)
	}
	if got := strings.Join(stored.Data["scopes"].([]string), "|"); got != "ZohoCRM.users.READ|ZohoCRM.org.READ|ZohoCRM.bulk.READ" {
		t.Fatalf("scopes %s, want the three Zoho reported for the stored token", got)
	}
	if got := stored.Data["token_type"]; got != "Bearer" {
		t.Fatalf("token_type %v for a token stored without one, want Bearer", got)
	}
	e.clock.Advance(2 * time.Minute)
	resp := e.creds("moved", map[string]interface{}{"min_ttl": "59m"})
	if resp.Data["api_domain"] != e.sim.APIDomain("us") {
		t.Fatalf("api_domain %v after the refresh, want Zoho's %s", resp.Data["api_domain"], e.sim.APIDomain("us"))
	}
	if got := strings.Join(resp.Data["scopes"].([]string), ","); got != "ZohoCRM.modules.ALL" {
		t.Fatalf("scopes %s after the refresh, want Zoho's ZohoCRM.modules.ALL", got)
	}
}

// A refresh-ahead timer that fires after the account lost its token (Zoho
// refused the refresh token meanwhile) does nothing: no token request, no
// crash on the missing token.
func TestRefreshTimerOfAnAccountThatLostItsTokenDoesNothing(t *testing.T) {
	e := newEnv(t)
	c := e.account("lost", nil)
	e.creds("lost", nil)
	a := e.unscheduled("lost")
	point := a.view.Load().refreshAt
	e.b.scheduleRefresh(e.storage, a, point.Sub(e.clock.Now()), point)
	cfg, _ := loadConfig(context.Background(), e.storage, "lost")
	if !e.sim.RevokeRefreshToken(cfg.RefreshToken) {
		t.Fatal("simulator did not know the refresh token")
	}
	e.clock.Advance(10 * time.Minute)
	if _, status := e.fails(logical.ReadOperation, "creds/lost", map[string]interface{}{"min_ttl": "55m"}); status != http.StatusBadRequest {
		t.Fatalf("a read needing a refresh of a revoked refresh token: %d, want 400", status)
	}
	if a.view.Load() != nil {
		t.Fatal("the account still serves a token after Zoho refused its refresh token")
	}
	sent := e.sim.ClientCounters(c.ID).TokenRequests
	e.clock.Advance(point.Sub(e.clock.Now()))
	e.fireDueTimers()
	if got := e.sim.ClientCounters(c.ID).TokenRequests - sent; got != 0 {
		t.Fatalf("the timer sent %d token requests for an account that needs re-authorization", got)
	}
}
