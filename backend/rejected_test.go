package backend

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

func tokenIDOf(t *testing.T, resp *logical.Response) string {
	t.Helper()
	id, _ := resp.Data[paths.FieldTokenID].(string)
	if len(id) != paths.TokenIDLen || id != tokenID(accessToken(resp)) {
		t.Fatalf("token_id %q is not the fingerprint of the access token", id)
	}
	return id
}

func (e *env) report(name, id string) (*logical.Response, string, int) {
	e.t.Helper()
	return e.attempt(logical.ReadOperation, "creds/"+name, map[string]interface{}{paths.FieldRejected: id})
}

// N readers reporting the same token at once cause exactly one refresh, all
// get its token, and the reported one is never served or renewed again.
func TestRejectedReportsCoalesceIntoOneRefresh(t *testing.T) {
	e := newEnv(t)
	c := e.account("a", nil)
	first := e.creds("a", nil)
	old := tokenIDOf(t, first)
	before := e.sim.ClientCounters(c.ID)
	// Keep the refresh on the wire while the reports pile up.
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 300 * time.Millisecond, Times: 1})

	const n = 16
	tokens, fails := make([]string, n), make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, msg, status := e.report("a", old)
			if status != http.StatusOK {
				fails[i] = msg
				return
			}
			tokens[i] = accessToken(resp)
		}()
	}
	close(start)
	waitDone(t, wg.Wait, fmt.Sprintf("%d concurrent reports finishing", n))
	for i := range n {
		if fails[i] != "" || tokens[i] == "" || tokens[i] != tokens[0] {
			t.Fatalf("report %d: token %q error %q (first %q)", i, tokens[i], fails[i], tokens[0])
		}
	}
	if tokens[0] == accessToken(first) {
		t.Fatal("the rejected token was served again")
	}
	after := e.sim.ClientCounters(c.ID)
	if got := after.Refreshes - before.Refreshes; got != 1 || after.TokenRequests-before.TokenRequests != 1 {
		t.Fatalf("%d refreshes (%d token requests) for %d reports of one token, want 1", got, after.TokenRequests-before.TokenRequests, n)
	}
	if id := tokenIDOf(t, e.creds("a", nil)); id == old {
		t.Fatal("a plain read served the rejected token")
	}
	// A lease on the rejected token is not renewed: Vault Agent reads anew.
	if _, err := e.renewLease(first, e.clock.Now()); err == nil || !strings.Contains(err.Error(), "Zoho rejected its access token") {
		t.Fatalf("renewal of a lease on the rejected token: %v", err)
	}
	body := scrapeMetrics(t, e, false)
	cur, repl := metricValue(body, `zoho_rejected_token_reports_total{token="current"}`), metricValue(body, `zoho_rejected_token_reports_total{token="replaced"}`)
	if cur < 1 || cur+repl != n {
		t.Fatalf("report counters current %v replaced %v, want %d in all", cur, repl, n)
	}
	assertNoSecrets(t, "logs", e.logs.String(), accessToken(first), tokens[0])
	// The retirement was stored: no failure to store it is reported.
	if logs := e.logs.String(); strings.Contains(logs, "could not store a rejected access token's retirement") {
		t.Fatalf("a stored retirement was logged as failed:\n%s", logs)
	}
}

// A report when Zoho's budget is spent sends nothing and answers 429 with the
// time to retry; the rejected token is not served meanwhile.
func TestRejectedReportRespectsTheBudget(t *testing.T) {
	e := newEnv(t, func(_ *zohosim.Config, o *Options) { o.RateLimit = 2 })
	c := e.account("a", nil) // request 1 of 2 (the exchange)
	id := tokenIDOf(t, e.creds("a", nil))
	e.clock.Advance(10 * time.Second)
	resp, msg, status := e.report("a", id) // request 2 of 2
	if status != http.StatusOK {
		t.Fatalf("first report: %d %s", status, msg)
	}
	id = tokenIDOf(t, resp)
	n := e.sim.ClientCounters(c.ID).TokenRequests
	_, msg, status = e.report("a", id)
	if status != http.StatusTooManyRequests || !strings.Contains(msg, "next request allowed at") || !strings.Contains(msg, id) || !strings.Contains(msg, `"a"`) {
		t.Fatalf("report with the budget spent: %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != n {
		t.Fatalf("%d token requests sent with the budget spent", got-n)
	}
	// The dead token is not served by plain reads either.
	if _, status := e.fails(logical.ReadOperation, "creds/a", nil); status != http.StatusTooManyRequests {
		t.Fatalf("plain read after the refused report: %d", status)
	}
	e.clock.Advance(DefaultRateWindow)
	if got := tokenIDOf(t, e.creds("a", nil)); got == id {
		t.Fatal("the rejected token was served once the budget allowed a refresh")
	}
}

// A report of a token already replaced (or unknown) is answered with the
// current token without calling Zoho.
func TestStaleRejectedReportCostsNothing(t *testing.T) {
	e := newEnv(t)
	c := e.account("a", nil)
	old := tokenIDOf(t, e.creds("a", nil))
	resp, msg, status := e.report("a", old)
	if status != http.StatusOK {
		t.Fatalf("report: %d %s", status, msg)
	}
	current := accessToken(resp)
	n := e.sim.ClientCounters(c.ID)
	for _, id := range []string{old, old, "0123456789abcdef01234567"} {
		resp, msg, status := e.report("a", id)
		if status != http.StatusOK || accessToken(resp) != current {
			t.Fatalf("stale report of %s: %d %s", id, status, msg)
		}
	}
	if got := e.sim.ClientCounters(c.ID); got != n {
		t.Fatalf("stale reports called Zoho: before %+v after %+v", n, got)
	}
	if got := metricValue(scrapeMetrics(t, e, false), `zoho_rejected_token_reports_total{token="replaced"}`); got != 3 {
		t.Fatalf("replaced reports counted %v, want 3", got)
	}
}

// The user removes the app under Connected Apps: the cached token is dead and
// so is the refresh token. The report's refresh gets invalid_code, the account
// needs re-authorization at once, attention/ lists it, the metrics count it,
// and later reads fail without calling Zoho, saying what to write.
func TestConnectedAppsRemovalReportedNeedsReauthorization(t *testing.T) {
	e := newEnv(t)
	c := e.account("a", nil)
	first := e.creds("a", nil)
	id := tokenIDOf(t, first)
	if _, _, err := e.sim.RemoveConnectedApp(c.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, msg, status := e.report("a", id)
	if status != http.StatusBadRequest || !strings.Contains(msg, "needs re-authorization") || !strings.Contains(msg, "grant_code") || !strings.Contains(msg, "invalid_code") {
		t.Fatalf("report after the app was removed: %d %q", status, msg)
	}
	n := e.sim.ClientCounters(c.ID).TokenRequests
	for range 3 {
		msg, status := e.fails(logical.ReadOperation, "creds/a", nil)
		if status != http.StatusBadRequest || !strings.Contains(msg, "write a new grant_code") {
			t.Fatalf("later read: %d %q", status, msg)
		}
	}
	if _, msg, status := e.report("a", id); status != http.StatusBadRequest || !strings.Contains(msg, "needs re-authorization") {
		t.Fatalf("later report: %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != n {
		t.Fatalf("%d token requests after Zoho refused the refresh token", got-n)
	}
	if reasons := e.attention()["a"]; !strings.Contains(strings.Join(reasons, ","), paths.ReasonNeedsReauthorization) {
		t.Fatalf("attention/ lists %v", e.attention())
	}
	body := scrapeMetrics(t, e, false)
	for series, want := range map[string]float64{
		"zoho_accounts_needing_reauthorization":                          1,
		"zoho_reauthorization_needed_total":                              1,
		`zoho_rejected_token_reports_total{token="current"}`:             2, // the later report: the dead token stays the current one
		`zoho_upstream_failures_total{code="invalid_code",op="refresh"}`: 1,
	} {
		if got := metricValue(body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Re-authorizing serves again.
	e.must(logical.UpdateOperation, "config/a", map[string]interface{}{"grant_code": e.code(c)})
	if got := tokenIDOf(t, e.creds("a", nil)); got == id {
		t.Fatal("the dead token was served after re-authorization")
	}
	if got := metricValue(scrapeMetrics(t, e, false), "zoho_accounts_needing_reauthorization"); got != 0 {
		t.Fatalf("still counted as needing re-authorization: %v", got)
	}
}

// A background refresh that finds the refresh token dead stops the cached
// token from being served: the next read fails at once instead of serving a
// token Zoho killed with its refresh token.
func TestBackgroundReauthStopsServingTheCachedToken(t *testing.T) {
	e := newEnv(t)
	c := e.account("a", nil)
	resp := e.creds("a", nil)
	cfg, _ := loadConfig(t0ctx(), e.storage, "a")
	e.sim.RevokeRefreshToken(cfg.RefreshToken)
	// Past the refresh point, before expiry: the read is served the cached
	// token and starts the background refresh.
	v := e.b.cachedAccount("a").view.Load()
	e.clock.Advance(v.refreshAt.Sub(e.clock.Now()) + time.Second)
	if got := accessToken(e.creds("a", nil)); got != accessToken(resp) {
		t.Fatal("the cached token was not served before the refresh")
	}
	e.waitBackground()
	n := e.sim.ClientCounters(c.ID).TokenRequests
	msg, status := e.fails(logical.ReadOperation, "creds/a", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "write a new grant_code") {
		t.Fatalf("read after the background refresh failed: %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != n {
		t.Fatal("the dead refresh token was tried again")
	}
}

// metricValue is the value of one series in a Prometheus text scrape; -1 if
// absent.
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(rest, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// A rejected token held by leases does not hold up the refresh that Zoho's
// live-token cap makes evict it (with a cap of 1, the current token): its
// holders said it is dead. An unreported held token still does.
func TestRejectedHeldTokenDoesNotBlockTheLiveCap(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 1 })
	c := e.account("one", map[string]interface{}{"live_token_cap": 1})
	held := e.creds("one", nil)
	e.clock.Advance(10 * time.Second)
	// Unreported, the held token blocks a forced refresh.
	if _, status := e.fails(logical.ReadOperation, "creds/one", map[string]interface{}{"min_ttl": "59m"}); status != http.StatusTooManyRequests {
		t.Fatalf("forced refresh over a held token: %d, want 429", status)
	}
	resp, msg, status := e.report("one", tokenIDOf(t, held))
	if status != http.StatusOK || accessToken(resp) == accessToken(held) {
		t.Fatalf("report of the held token with a cap of 1: %d %s", status, msg)
	}
	if !e.sim.AccessTokenValid(accessToken(resp)) {
		t.Fatal("the new token is not alive at Zoho")
	}
	if got := e.sim.ClientCounters(c.ID).Evictions; got != 1 {
		t.Fatalf("Zoho evicted %d tokens, want the rejected one", got)
	}
	// Its lease's revocation needs no call: the token is counted evicted.
	if err := e.revokeLease(held); err != nil {
		t.Fatal(err)
	}
}
