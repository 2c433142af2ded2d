package backend

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

const callbackURI = "https://vault.example.com/v1/zoho/callback"

// consent plays the browser: opens the auth URL at the simulator and returns
// the query Zoho redirects back with.
func consent(t *testing.T, authURL string, extra url.Values) url.Values {
	t.Helper()
	u, _ := url.Parse(authURL)
	q := u.Query()
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), callbackURI) {
		t.Fatalf("consent did not redirect to the callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func (e *env) callback(q url.Values) (int, string) {
	e.t.Helper()
	data := map[string]interface{}{}
	for k := range q {
		data[k] = q.Get(k)
	}
	resp, err := e.b.HandleRequest(t0ctx(), &logical.Request{Operation: logical.ReadOperation, Path: "callback", Data: data, Storage: e.storage, Unauthenticated: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Data[logical.HTTPStatusCode].(int), string(resp.Data[logical.HTTPRawBody].([]byte))
}

func newConsentAccount(e *env, name string) zohosim.Client {
	c := e.sim.RegisterClient(zohosim.Client{DC: "us", RedirectURIs: []string{callbackURI}})
	e.must(logical.CreateOperation, "config/"+name, map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"),
		"redirect_uri": callbackURI, "scopes": "ZohoCRM.modules.ALL,ZohoCRM.users.READ",
	})
	return c
}

func TestConsentFlowThroughCallback(t *testing.T) {
	e := newEnv(t)
	c := newConsentAccount(e, "crm")
	resp := e.must(logical.ReadOperation, "auth-url/crm", nil)
	authURL := resp.Data["auth_url"].(string)
	u, _ := url.Parse(authURL)
	q := u.Query()
	if q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || q.Get("scope") != "ZohoCRM.modules.ALL,ZohoCRM.users.READ" ||
		q.Get("redirect_uri") != callbackURI || q.Get("client_id") != c.ID || q.Get("state") != resp.Data["state"] || len(q.Get("state")) < 40 {
		t.Fatalf("consent URL: %s", authURL)
	}
	back := consent(t, authURL, nil)
	status, page := e.callback(back)
	if status != http.StatusOK || !strings.Contains(page, `&#34;crm&#34;`) {
		t.Fatalf("callback: %d %s", status, page)
	}
	if got := e.sim.ClientCounters(c.ID).Exchanges; got != 1 {
		t.Fatalf("exchanges: %d", got)
	}
	tok := accessToken(e.creds("crm", nil))
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("token from the consent flow is not valid")
	}
	// The state is single-use: replaying the redirect exchanges nothing.
	status, page = e.callback(back)
	if status != http.StatusBadRequest || !strings.Contains(page, "already used") {
		t.Fatalf("replay: %d %s", status, page)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 1 {
		t.Fatalf("replay reached Zoho: %d", got)
	}
	assertNoSecrets(t, "callback page", page, c.Secret, tok)
}

func TestCallbackRejections(t *testing.T) {
	e := newEnv(t)
	c := newConsentAccount(e, "crm")
	start := func() string { return e.must(logical.ReadOperation, "auth-url/crm", nil).Data["auth_url"].(string) }

	// Unknown state.
	if status, page := e.callback(url.Values{"state": {"forged"}, "code": {"1000.x"}}); status != 400 || !strings.Contains(page, "unknown") {
		t.Fatalf("unknown state: %d %s", status, page)
	}
	// Missing state.
	if status, _ := e.callback(url.Values{"code": {"1000.x"}}); status != 400 {
		t.Fatalf("missing state: %d", status)
	}
	// Consent refused.
	back := consent(t, start(), url.Values{"sim_deny": {"1"}})
	if status, page := e.callback(back); status != 400 || !strings.Contains(page, "access_denied") {
		t.Fatalf("refused: %d %s", status, page)
	}
	// Forged accounts-server: the secret is never sent there.
	back = consent(t, start(), nil)
	back.Set("accounts-server", "https://accounts.zoho.com.evil.example")
	if status, page := e.callback(back); status != 400 || !strings.Contains(page, "not one of Zoho") {
		t.Fatalf("forged accounts-server: %d %s", status, page)
	}
	// Expired.
	authURL := start()
	e.clock.Advance(pendingTTL)
	back = consent(t, authURL, nil)
	if status, page := e.callback(back); status != 400 || !strings.Contains(page, "expired") {
		t.Fatalf("expired: %d %s", status, page)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 0 {
		t.Fatalf("rejected callbacks reached Zoho %d times", got)
	}
	// auth-url needs a redirect_uri and scopes.
	c2 := e.newClient("us")
	e.must(logical.CreateOperation, "config/bare", map[string]interface{}{"client_id": c2.ID, "client_secret": c2.Secret})
	if msg, status := e.fails(logical.ReadOperation, "auth-url/bare", nil); status != 400 || !strings.Contains(msg, "redirect_uri") {
		t.Fatalf("auth-url without redirect_uri: %d %q", status, msg)
	}
	if e.b.SpecialPaths().Unauthenticated[0] != "callback" {
		t.Fatal("callback must be unauthenticated")
	}
}

func TestStatusList(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	e.account("b", nil)
	c := e.newClient("us")
	e.must(logical.CreateOperation, "config/c", map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret})
	resp := e.must(logical.ListOperation, "status/", nil)
	keys := resp.Data["keys"].([]string)
	info := resp.Data["key_info"].(map[string]interface{})
	if len(keys) != 3 || len(info) != 3 {
		t.Fatalf("status list: %v", resp.Data)
	}
	a := info["a"].(map[string]interface{})
	if a["has_refresh_token"] != true || a["rate_budget_remaining"] != 9 || a["token_expires_at"] == "" {
		t.Fatalf("status of a: %v", a)
	}
	if info["c"].(map[string]interface{})["has_refresh_token"] != false {
		t.Fatal("c has no token")
	}
	one := e.must(logical.ReadOperation, "status/b", nil)
	if one.Data["live_tokens"] != 1 {
		t.Fatalf("status/b: %v", one.Data)
	}
	if _, ok := one.Data["client_id"]; ok {
		t.Fatal("status shows only health")
	}
}

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

func scrapeMetrics(t *testing.T, e *env, perAccount bool) string {
	t.Helper()
	resp := e.must(logical.ReadOperation, "metrics", map[string]interface{}{"per_account": perAccount})
	if ct := resp.Data[logical.HTTPContentType].(string); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	return string(resp.Data[logical.HTTPRawBody].([]byte))
}
