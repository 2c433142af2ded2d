package backend

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.account("m", nil)
	for i := 0; i < 5; i++ {
		e.creds("m", nil)
	}
	if !strings.Contains(scrapeMetrics(t, e, false), "zoho_live_leases 5\n") {
		t.Fatal("five leases on the live token")
	}
	e.clock.Advance(time.Hour)
	e.creds("m", nil) // a miss and a refresh
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultError, ErrorCode: "weird_code"})
	e.clock.Advance(time.Hour)
	e.fails(logical.ReadOperation, "creds/m", nil)
	scrape := func(perAccount bool) string { return scrapeMetrics(t, e, perAccount) }
	body := scrape(false)
	for _, want := range []string{
		"zoho_creds_cache_hits_total 5",
		"zoho_creds_cache_misses_total 2",
		"zoho_token_refreshes_total 1",
		"zoho_code_exchanges_total 1",
		`zoho_upstream_failures_total{code="other",op="refresh"} 1`,
		`zoho_upstream_request_duration_seconds_count{op="refresh"} 2`,
		"zoho_live_leases 0",
		"zoho_accounts_backing_off 1",
		"zoho_accounts_loaded 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `"m"`) {
		t.Fatal("account names must not be labels unless asked for")
	}
	if !strings.Contains(scrape(true), `zoho_account_consecutive_failures{account="m"} 1`) {
		t.Fatal("per-account series missing")
	}
}

// The grant type shows in the metrics: its own token counter, the op label
// of upstream calls, and the per-account info series.
func TestMetricsShowTheGrantType(t *testing.T) {
	e := newEnv(t)
	e.account("user", nil)
	e.ccAccount("org", nil)
	e.clock.Advance(time.Hour)
	e.creds("org", nil)
	body := scrapeMetrics(t, e, false)
	for _, want := range []string{
		"zoho_client_credentials_tokens_total 2",
		"zoho_token_refreshes_total 0",
		`zoho_upstream_request_duration_seconds_count{op="client credentials"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}
	per := scrapeMetrics(t, e, true)
	for _, want := range []string{
		`zoho_account_info{account="org",grant_type="client_credentials"} 1`,
		`zoho_account_info{account="user",grant_type="refresh_token"} 1`,
	} {
		if !strings.Contains(per, want+"\n") {
			t.Fatalf("per-account metrics lack %q", want)
		}
	}
}

// The revocation counter counts what Zoho confirmed: a refresh token whose
// revocation failed is not counted, its confirmed retry is, once.
func TestRevocationMetricCountsConfirmedRevocations(t *testing.T) {
	e := newEnv(t)
	e.account("rv", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	if _, status := e.fails(logical.UpdateOperation, "revoke/rv", nil); status != http.StatusBadGateway {
		t.Fatalf("revoke/ whose revocation failed answered %d, want 502", status)
	}
	if body := scrapeMetrics(t, e, false); strings.Contains(body, `zoho_revocations_total{kind="refresh"}`) {
		t.Fatalf("a failed revocation was counted:\n%s", body)
	}
	e.must(logical.UpdateOperation, "revoke/rv", nil) // the retry, confirmed
	if body := scrapeMetrics(t, e, false); !strings.Contains(body, `zoho_revocations_total{kind="refresh"} 1`+"\n") {
		t.Fatalf("the confirmed revocation was not counted once:\n%s", body)
	}
}

func scrapeMetrics(t *testing.T, e *env, perAccount bool) string {
	t.Helper()
	resp := e.must(logical.ReadOperation, "metrics", map[string]interface{}{"per_account": perAccount})
	if ct := resp.Data[logical.HTTPContentType].(string); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	return string(resp.Data[logical.HTTPRawBody].([]byte))
}

// The live-lease gauges count the leases on every live token of every
// account, and the per-account expiry is the current token's.
func TestLiveLeaseGaugesSumEveryToken(t *testing.T) {
	e := newEnv(t)
	e.account("one", nil)
	oneExpiry := e.clock.Now().Add(time.Hour).Unix()
	for i := 0; i < 4; i++ {
		e.creds("one", nil)
	}
	e.account("two", nil)
	e.creds("two", nil)
	e.creds("two", nil)
	e.clock.Advance(2 * time.Minute)
	e.creds("two", map[string]interface{}{"min_ttl": "59m"}) // a second live token
	if body := scrapeMetrics(t, e, false); !strings.Contains(body, "zoho_live_leases 7\n") {
		t.Fatalf("want 7 live leases (4 + 2 + 1):\n%s", body)
	}
	per := scrapeMetrics(t, e, true)
	for _, want := range []string{
		`zoho_account_live_leases{account="one"} 4`,
		`zoho_account_live_leases{account="two"} 3`,
		fmt.Sprintf(`zoho_account_token_expiry_timestamp_seconds{account="one"} %g`, float64(oneExpiry)),
	} {
		if !strings.Contains(per, want+"\n") {
			t.Fatalf("per-account metrics lack %q:\n%s", want, per)
		}
	}
}
