package backend

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// Every kind of Zoho fault: while the cached token is valid reads succeed
// with no extra upstream call (except after invalid_code: the refresh token,
// and with it the cached token, is dead, so reads fail at once); once it is
// not, reads fail fast with an error that names the account and what Zoho
// said, and retries stay within budget.
func TestZohoFaults(t *testing.T) {
	cases := []struct {
		name   string
		fault  zohosim.Fault
		status int    // of the read that meets the fault
		says   string // in its message
	}{
		{"latency beyond the timeout", zohosim.Fault{Kind: zohosim.FaultLatency, Latency: 3 * time.Second}, http.StatusBadGateway, "timed out"},
		{"HTTP 500", zohosim.Fault{Kind: zohosim.FaultStatus, Status: 500}, http.StatusBadGateway, "HTTP 500"},
		{"HTTP 503", zohosim.Fault{Kind: zohosim.FaultStatus, Status: 503}, http.StatusBadGateway, "HTTP 503"},
		{"connection reset", zohosim.Fault{Kind: zohosim.FaultReset}, http.StatusBadGateway, "unreachable"},
		{"garbage JSON", zohosim.Fault{Kind: zohosim.FaultGarbage}, http.StatusBadGateway, "not JSON"},
		{"truncated JSON", zohosim.Fault{Kind: zohosim.FaultTruncated}, http.StatusBadGateway, "not JSON"},
		{"invalid_client", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "invalid_client"}, http.StatusBadRequest, "data_center"},
		{"invalid_client_secret", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "invalid_client_secret"}, http.StatusBadRequest, "client_secret"},
		{"invalid_redirect_uri", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "invalid_redirect_uri"}, http.StatusBadRequest, "redirect_uri"},
		{"access_denied", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "access_denied"}, http.StatusBadRequest, "access_denied"},
		{"missing_org_info", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "missing_org_info"}, http.StatusBadRequest, "missing_org_info"},
		{"unknown code", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "general_error"}, http.StatusBadRequest, "general_error"},
		{"invalid_code", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "invalid_code"}, http.StatusBadRequest, "grant_code"},
		{"Access Denied", zohosim.Fault{Kind: zohosim.FaultThrottle}, http.StatusTooManyRequests, "Access Denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(_ *zohosim.Config, o *Options) { o.Timeout = time.Second })
			c := e.account("acct", nil)
			tok := accessToken(e.creds("acct", nil))
			f := tc.fault
			f.Endpoint = "token"
			e.sim.AddFault(f)
			base := e.sim.ClientCounters(c.ID).TokenRequests

			// Due for a background refresh (past the latest refresh point),
			// which fails: readers keep the cached token, unless Zoho
			// refused the refresh token (invalid_code), which kills the
			// cached token with it: then reads fail at once.
			deadGrant := tc.fault.ErrorCode == "invalid_code"
			e.clock.Advance(55*time.Minute + 30*time.Second)
			reads := 5
			if deadGrant {
				reads = 1 // the read that starts the background refresh
			}
			for i := 0; i < reads; i++ {
				if got := accessToken(e.creds("acct", nil)); got != tok {
					t.Fatal("cached token not served while valid")
				}
			}
			e.waitBackground()
			if got := e.sim.ClientCounters(c.ID).TokenRequests - base; got != 1 {
				t.Fatalf("while the cached token is valid: %d upstream calls, want the one background attempt", got)
			}
			if deadGrant {
				for i := 0; i < 5; i++ {
					msg, status := e.fails(logical.ReadOperation, "creds/acct", nil)
					if status != http.StatusBadRequest || !strings.Contains(msg, "re-authorization") {
						t.Fatalf("read after Zoho refused the refresh token: %d %q", status, msg)
					}
				}
				if got := e.sim.ClientCounters(c.ID).TokenRequests - base; got != 1 {
					t.Fatalf("reads after Zoho refused the refresh token called Zoho (%d calls)", got)
				}
				if st := e.must(logical.ReadOperation, "config/acct", nil); st.Data["needs_reauthorization"] != true {
					t.Fatalf("status does not show re-authorization needed: %v", st.Data)
				}
				assertNoSecrets(t, "engine log", e.logs.String(), c.Secret, tok)
				return
			}
			for i := 0; i < 20; i++ {
				e.creds("acct", nil)
			}
			e.waitBackground()
			if got := e.sim.ClientCounters(c.ID).TokenRequests - base; got != 1 {
				t.Fatalf("reads during back-off called Zoho (%d calls)", got)
			}

			// Expired: reads fail fast with a specific error.
			e.clock.Advance(15 * time.Minute)
			began := time.Now()
			msg, status := e.fails(logical.ReadOperation, "creds/acct", nil)
			if time.Since(began) > 3*time.Second {
				t.Fatalf("read took %s", time.Since(began))
			}
			if status != tc.status || !strings.Contains(msg, tc.says) || !strings.Contains(msg, `"acct"`) {
				t.Fatalf("got %d %q; want %d mentioning %q and the account", status, msg, tc.status, tc.says)
			}
			for i := 0; i < 10; i++ {
				msg, _ = e.fails(logical.ReadOperation, "creds/acct", nil)
			}
			if !strings.Contains(msg, "next attempt at") {
				t.Fatalf("back-off error should say when the next attempt is: %q", msg)
			}
			if got := e.sim.ClientCounters(c.ID).TokenRequests - base; got > 2 {
				t.Fatalf("fast failures reached Zoho %d times", got)
			}
			st := e.must(logical.ReadOperation, "config/acct", nil)
			if st.Data["last_error"] == "" || st.Data["consecutive_failures"].(int) < 1 {
				t.Fatalf("status does not show the failure: %v", st.Data)
			}
			assertNoSecrets(t, "engine log", e.logs.String(), c.Secret, tok)
		})
	}
}

// Zoho's silent eviction of a live token (the 11th… or 16th) is never
// triggered by the engine: with the simulator's cap equal to the engine's,
// repeated forced refreshes end in a local refusal, not an eviction.
func TestEngineNeverTriggersEviction(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 3 })
	c := e.account("evict", map[string]interface{}{"live_token_cap": 3})
	var leases []*logical.Response
	leases = append(leases, e.creds("evict", nil))
	for i := 0; i < 5; i++ {
		e.clock.Advance(10 * time.Second)
		resp, _, status := e.attempt(logical.ReadOperation, "creds/evict", map[string]interface{}{"min_ttl": "59m"})
		if status == http.StatusOK {
			leases = append(leases, resp)
		}
	}
	if len(leases) != 3 {
		t.Fatalf("want 3 held tokens, got %d", len(leases))
	}
	if got := e.sim.ClientCounters(c.ID).Evictions; got != 0 {
		t.Fatalf("Zoho evicted %d tokens", got)
	}
	for _, l := range leases {
		if !e.sim.AccessTokenValid(accessToken(l)) {
			t.Fatal("a held token died")
		}
	}
}
