package zohosim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// openAuth opens Zoho's auth URL for c as a browser does; extra are
// parameter pairs to set ("" removes one).
func (e *env) openAuth(c Client, extra ...string) reply {
	e.t.Helper()
	q := url.Values{
		"client_id": {c.ID}, "response_type": {"code"}, "redirect_uri": {c.RedirectURIs[0]},
		"scope": {"ZohoCRM.modules.ALL,ZohoCRM.users.READ"}, "access_type": {"offline"}, "prompt": {"consent"}, "state": {"st-42"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return e.get("/" + c.DC + "/oauth/v2/auth?" + q.Encode())
}

// consent opens the auth URL and accepts as DefaultUser.
func (e *env) consent(c Client, extra ...string) reply {
	e.t.Helper()
	return e.answer(c, DefaultUser, Accept, extra...)
}

// answer opens the auth URL and answers its consent page as user; an answer
// without a consent form (a redirect, an error page, a fault) is returned
// as is.
func (e *env) answer(c Client, user string, d Decision, extra ...string) reply {
	e.t.Helper()
	page := e.openAuth(c, extra...)
	_, id, ok := consentForm(page.raw)
	if page.status != http.StatusOK || !ok {
		return page
	}
	return e.submit(c.DC, id, user, string(d))
}

// submit posts the consent form of data center dc.
func (e *env) submit(dc, id, user, decision string, extra ...string) reply {
	e.t.Helper()
	form := url.Values{FieldConsentID: {id}, FieldUser: {user}, FieldDecision: {decision}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return e.postForm(consentPath(dc), form)
}

// pageID returns the consent id of a consent page, failing the test if r is
// not one.
func pageID(t *testing.T, r reply) string {
	t.Helper()
	_, id, ok := consentForm(r.raw)
	if r.status != http.StatusOK || !ok || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("want a consent page, got %d %q %s", r.status, r.header.Get("Location"), r.raw)
	}
	return id
}

// wantPage fails unless r is an HTML error page with status saying want.
func wantPage(t *testing.T, r reply, status int, want ...string) {
	t.Helper()
	if r.status != status || r.header.Get("Location") != "" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("want an HTML page with HTTP %d, got %d %q %s", status, r.status, r.header.Get("Location"), r.raw)
	}
	for _, w := range want {
		if !strings.Contains(r.raw, w) {
			t.Fatalf("page does not say %q: %s", w, r.raw)
		}
	}
	if _, _, ok := consentForm(r.raw); ok {
		t.Fatalf("an error page carries a consent form: %s", r.raw)
	}
}

// redirected returns the query of the consent redirect.
func redirected(t *testing.T, r reply, to string) url.Values {
	t.Helper()
	if r.status != http.StatusFound {
		t.Fatalf("want a 302 redirect, got %d %s", r.status, r.raw)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), to+"?") {
		t.Fatalf("redirected to %q, want %s?…", r.header.Get("Location"), to)
	}
	return loc.Query()
}

func TestConsentRedirect(t *testing.T) {
	e := newEnv(t, Config{})
	eu := e.sim.RegisterClient(Client{DC: "eu", RedirectURIs: []string{"https://app.example.com/cb?tenant=7", "http://127.0.0.1:8200/v1/zoho/callback"}})
	q := redirected(t, e.consent(eu, "redirect_uri", eu.RedirectURIs[1]), eu.RedirectURIs[1])
	if q.Get("state") != "st-42" || q.Get("location") != "eu" || !tokenShape.MatchString(q.Get("code")) {
		t.Fatalf("redirect query %v", q)
	}
	if q.Get("accounts-server") != e.sim.AccountsURL("eu") || e.sim.AccountsURL("eu") != e.ts.URL+"/eu" {
		t.Fatalf("accounts-server %q", q.Get("accounts-server"))
	}
	// The exchange goes to the accounts server named in the redirect, with the same redirect_uri.
	code := q.Get("code")
	wantError(t, e.exchangeWith(eu, code, "redirect_uri", "https://evil.example/cb"), "invalid_redirect_uri")
	wantError(t, e.exchangeWith(eu, code), "invalid_redirect_uri")
	r := e.exchangeWith(eu, code, "redirect_uri", eu.RedirectURIs[1])
	if r.str("refresh_token") == "" || r.str("api_domain") != e.sim.APIDomain("eu") {
		t.Fatalf("exchange: %s", r.raw)
	}
	wantError(t, e.exchangeWith(eu, code, "redirect_uri", eu.RedirectURIs[1]), "invalid_code")
	// The token works in eu only.
	if w := e.whoami("eu", r.str("access_token")); w.status != http.StatusOK || w.str("dc") != "eu" || w.str("Email") != DefaultUser {
		t.Fatalf("whoami eu: %d %s", w.status, w.raw)
	}
	if w := e.whoami("us", r.str("access_token")); w.status != http.StatusUnauthorized {
		t.Fatalf("eu token accepted in us: %d", w.status)
	}

	// A redirect URI with its own query keeps it.
	q = redirected(t, e.consent(eu), "https://app.example.com/cb")
	if q.Get("tenant") != "7" || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	if got := e.sim.ClientCounters(eu.ID); got.AuthRequests != 2 || got.ConsentsAccepted != 2 || got.Exchanges != 1 || got.ExchangeFailures != 3 {
		t.Fatalf("counters %+v", got)
	}
}

func TestConsentOnlineAndUser(t *testing.T) {
	e := newEnv(t, Config{})
	page := e.openAuth(e.client, "access_type", "")
	if !strings.Contains(page.raw, "Online access only") || strings.Contains(page.raw, "Offline access") {
		t.Fatalf("the page of an online request: %s", page.raw)
	}
	q := redirected(t, e.submit("us", pageID(t, page), "ann@example.com", "accept"), e.client.RedirectURIs[0])
	r := e.exchangeWith(e.client, q.Get("code"), "redirect_uri", e.client.RedirectURIs[0])
	if r.str("access_token") == "" || r.body["refresh_token"] != nil {
		t.Fatalf("online access gives no refresh token: %s", r.raw)
	}
	if w := e.whoami("us", r.str("access_token")); w.str("Email") != "ann@example.com" || w.str("client_id") != e.client.ID ||
		w.str("scope") != "ZohoCRM.modules.ALL,ZohoCRM.users.READ" || w.num("ZUID") == 0 {
		t.Fatalf("whoami: %s", w.raw)
	}
}

func TestConsentDenied(t *testing.T) {
	e := newEnv(t, Config{})
	q := redirected(t, e.answer(e.client, DefaultUser, Deny), e.client.RedirectURIs[0])
	if q.Get("error") != "access_denied" || q.Get("state") != "st-42" || q.Get("code") != "" || len(q) != 2 {
		t.Fatalf("deny redirect %v", q)
	}
	// Denying needs no user name, and mints nothing.
	q = redirected(t, e.answer(e.client, "", Deny), e.client.RedirectURIs[0])
	if q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Fatalf("deny without a user: %v", q)
	}
	e.sim.mu.Lock()
	codes, logged := len(e.sim.st.codes), len(e.sim.st.codeLog[e.client.ID])
	e.sim.mu.Unlock()
	if codes != 0 || logged != 0 {
		t.Fatalf("a refusal minted %d codes (%d in the grant-code log)", codes, logged)
	}
	if got := e.sim.ClientCounters(e.client.ID); got.ConsentsDenied != 2 || got.ConsentsAccepted != 0 || got.AuthRequests != 2 {
		t.Fatalf("counters %+v", got)
	}
	// Refused before any page is shown.
	q = redirected(t, e.consent(e.client, "response_type", "token"), e.client.RedirectURIs[0])
	if q.Get("error") != "unsupported_response_type" || q.Get("code") != "" {
		t.Fatalf("response_type=token: %v", q)
	}
	q = redirected(t, e.consent(e.client, "scope", ""), e.client.RedirectURIs[0])
	if q.Get("error") != "invalid_scope" || q.Get("code") != "" {
		t.Fatalf("no scope: %v", q)
	}
}

func TestConsentErrorPages(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tc := range []struct {
		name string
		c    Client
		uri  string
		want string
	}{
		{"unknown client", Client{ID: "1000.NOPE", DC: "us", RedirectURIs: []string{"https://app.example.com/cb"}}, "", "invalid_client"},
		{"client of another dc", Client{ID: e.client.ID, DC: "in", RedirectURIs: e.client.RedirectURIs}, "", "invalid_client"},
		{"redirect mismatch", e.client, "https://app.example.com/cb/", "invalid_redirect_uri"},
		{"redirect elsewhere", e.client, "https://evil.example/cb", "invalid_redirect_uri"},
		{"no redirect", e.client, "-", "invalid_redirect_uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r reply
			switch tc.uri {
			case "":
				r = e.consent(tc.c)
			case "-":
				r = e.consent(tc.c, "redirect_uri", "")
			default:
				r = e.consent(tc.c, "redirect_uri", tc.uri)
			}
			wantPage(t, r, http.StatusOK, tc.want, "Zoho Accounts <span>(simulator)</span>")
		})
	}
}

func TestConsentCodeExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	uri := e.client.RedirectURIs[0]
	code := redirected(t, e.consent(e.client), uri).Get("code")
	e.clock.Advance(59 * time.Second)
	late := redirected(t, e.consent(e.client), uri).Get("code")
	e.clock.Advance(time.Second)
	wantError(t, e.exchangeWith(e.client, code, "redirect_uri", uri), "invalid_code")
	if r := e.exchangeWith(e.client, late, "redirect_uri", uri); r.str("access_token") == "" {
		t.Fatalf("code within 60s: %s", r.raw)
	}
	e.sim.SetGrantCodeTTL(2 * time.Minute)
	code = redirected(t, e.consent(e.client), uri).Get("code")
	e.clock.Advance(119 * time.Second)
	if r := e.exchangeWith(e.client, code, "redirect_uri", uri); r.str("access_token") == "" {
		t.Fatalf("code within a 2-minute ttl: %s", r.raw)
	}
}

func TestGrantCodeRateLimit(t *testing.T) {
	e := newEnv(t, Config{})
	other := e.sim.RegisterClient(Client{DC: "us", RedirectURIs: e.client.RedirectURIs})
	uri := e.client.RedirectURIs[0]
	for i := 0; i < 10; i++ {
		e.clock.Advance(time.Second)
		if q := redirected(t, e.consent(e.client), uri); q.Get("code") == "" {
			t.Fatalf("code %d refused: %v", i+1, q)
		}
	}
	q := redirected(t, e.consent(e.client), uri)
	if q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") != "st-42" {
		t.Fatalf("11th code: %v", q)
	}
	if q := redirected(t, e.consent(other), uri); q.Get("code") == "" {
		t.Fatal("another client was throttled")
	}
	// Self Client codes are not consent codes.
	e.selfCode()
	e.clock.Advance(10*time.Minute - 9*time.Second) // the first code (issued at +1s) leaves the window
	if q := redirected(t, e.consent(e.client), uri); q.Get("code") == "" {
		t.Fatalf("after the window: %v", q)
	}
	if q := redirected(t, e.consent(e.client), uri); q.Get("error") != "access_denied" {
		t.Fatalf("the window holds 10 again: %v", q)
	}
	e.sim.SetGrantCodeRateLimit(20)
	if q := redirected(t, e.consent(e.client), uri); q.Get("code") == "" {
		t.Fatalf("after raising the limit: %v", q)
	}
}

func TestServerInfoAndRouting(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.get("/oauth/serverinfo")
	locs, _ := r.body["locations"].(map[string]any)
	if r.status != http.StatusOK || r.str("result") != "success" || len(locs) != len(DataCenters) {
		t.Fatalf("serverinfo: %d %s", r.status, r.raw)
	}
	for _, dc := range DataCenters {
		if locs[dc] != e.sim.AccountsURL(dc) {
			t.Errorf("location %s = %v", dc, locs[dc])
		}
	}
	for _, path := range []string{"/xx/oauth/v2/auth", "/com/api/whoami", "/oauth/v2/auth", "/us/oauth/v2/nothing"} {
		if r := e.get(path); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
	if r := e.postForm("/zz/oauth/v2/token", url.Values{}); r.status != http.StatusNotFound {
		t.Errorf("token at an unknown dc: %d", r.status)
	}
}

func TestBaseURLFromRequestWhenUnset(t *testing.T) {
	e := newEnv(t, Config{})
	e.sim.SetBaseURL("")
	r := e.exchangeWith(e.client, e.selfCode())
	if r.str("api_domain") != e.ts.URL+"/us/api" {
		t.Fatalf("api_domain %q without a base URL", r.str("api_domain"))
	}
	e.sim.SetBaseURL("http://127.0.0.1:1/")
	if got := e.sim.APIDomain("jp"); got != "http://127.0.0.1:1/jp/api" {
		t.Fatalf("APIDomain %q", got)
	}
}
