package zohosim

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The consent page names the application, its scopes, offline access and
// the way back, escapes everything it shows, and keeps the state to itself.
func TestConsentPageContents(t *testing.T) {
	e := newEnv(t, Config{})
	nasty := `https://app.example.com/cb?x=<script>alert("x")</script>&y='1'`
	c := e.sim.RegisterClient(Client{ID: `1000.<b>"ID"&'x'`, DC: "eu", RedirectURIs: []string{nasty}})
	state := `<img src=x onerror="alert(1)">`
	page := e.openAuth(c, "redirect_uri", nasty, "scope", `ZohoCRM.modules.ALL,Zoho<i>CRM</i>.users.READ"`, "state", state)
	id := pageID(t, page)
	if len(id) != 32 {
		t.Fatalf("consent id %q: want 32 hex characters", id)
	}
	for _, want := range []string{
		"Zoho Accounts <span>(simulator)</span>",
		`<code id="client">` + html.EscapeString(c.ID) + `</code>`,
		`data center <b>eu</b>`,
		`<li><code>ZohoCRM.modules.ALL</code></li><li><code>Zoho&lt;i&gt;CRM&lt;/i&gt;.users.READ&#34;</code></li>`,
		`Offline access:</b> the application gets a refresh token`,
		`<code>` + html.EscapeString(nasty) + `</code>`,
		`name="user" value="` + DefaultUser + `"`,
		`<form method="post" action="/eu/oauth/v2/auth/consent">`,
		`name="decision" value="accept">Accept</button>`,
		`name="decision" value="deny">Deny</button>`,
		"expires in 5 minutes",
	} {
		if !strings.Contains(page.raw, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	for _, raw := range []string{"<script>", "<i>", `"ID"`, "onerror", "st-42"} {
		if strings.Contains(page.raw, raw) {
			t.Errorf("the page shows %q unescaped (or shows the state)", raw)
		}
	}
	if got := page.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "form-action") {
		t.Errorf("Content-Security-Policy %q: scripts must be off, and form-action would block the redirect", csp)
	}
	// Accepting goes back to the registered URI with its own query kept and
	// the state exactly as sent.
	q := redirected(t, e.submit("eu", id, DefaultUser, "accept"), "https://app.example.com/cb")
	if q.Get("state") != state || q.Get("x") != `<script>alert("x")</script>` || q.Get("y") != "'1'" || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
}

// Only the consent id, the user and the decision come from the form: the
// redirect target, client, scopes and state were fixed when the page was
// shown.
func TestConsentFormCannotChangeTheRequest(t *testing.T) {
	e := newEnv(t, Config{})
	other := e.sim.RegisterClient(Client{DC: "us", RedirectURIs: []string{"https://evil.example/cb"}})
	id := pageID(t, e.openAuth(e.client, "scope", "ZohoCRM.users.READ"))
	r := e.submit("us", id, "ann@example.com", "accept",
		"redirect_uri", "https://evil.example/cb", "client_id", other.ID, "scope", "ZohoCRM.modules.ALL", "state", "forged", "access_type", "online")
	q := redirected(t, r, e.client.RedirectURIs[0])
	if q.Get("state") != "st-42" {
		t.Fatalf("state %q", q.Get("state"))
	}
	x := e.exchangeWith(e.client, q.Get("code"), "redirect_uri", e.client.RedirectURIs[0])
	if x.str("refresh_token") == "" {
		t.Fatalf("exchange: %s", x.raw)
	}
	if w := e.whoami("us", x.str("access_token")); w.str("scope") != "ZohoCRM.users.READ" || w.str("client_id") != e.client.ID || w.str("Email") != "ann@example.com" {
		t.Fatalf("whoami: %s", w.raw)
	}
	// Form fields in the query string are not a form.
	id = pageID(t, e.openAuth(e.client))
	form := url.Values{FieldConsentID: {id}, FieldUser: {DefaultUser}, FieldDecision: {"accept"}}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+consentPath("us")+"?"+form.Encode(), strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantPage(t, e.do(req), http.StatusBadRequest, "invalid_consent")
	// Nor is JSON.
	r = e.sendJSON(http.MethodPost, consentPath("us"), `{"consent_id":"`+id+`","user":"u","decision":"accept"}`)
	wantPage(t, r, http.StatusBadRequest, "invalid_request", "x-www-form-urlencoded")
	// The request survived both: the page can still be answered.
	redirected(t, e.submit("us", id, DefaultUser, "accept"), e.client.RedirectURIs[0])
	if got := e.sim.ClientCounters(e.client.ID); got.ConsentsAccepted != 2 {
		t.Fatalf("counters %+v", got)
	}
	if got := e.sim.Counters(); got.ConsentsInvalid != 2 {
		t.Fatalf("total counters %+v", got)
	}
}

// A bad answer names the field and leaves the page answerable.
func TestConsentFormFields(t *testing.T) {
	e := newEnv(t, Config{})
	id := pageID(t, e.openAuth(e.client))
	wantPage(t, e.submit("us", id, "  ", "accept"), http.StatusBadRequest, "user:")
	wantPage(t, e.submit("us", id, DefaultUser, ""), http.StatusBadRequest, "decision:")
	wantPage(t, e.submit("us", id, DefaultUser, "maybe"), http.StatusBadRequest, "decision:")
	if got := e.sim.ClientCounters(e.client.ID); got.ConsentsInvalid != 3 || got.ConsentsAccepted+got.ConsentsDenied != 0 {
		t.Fatalf("counters %+v", got)
	}
	q := redirected(t, e.submit("us", id, " bo@example.com ", "accept"), e.client.RedirectURIs[0])
	x := e.exchangeWith(e.client, q.Get("code"), "redirect_uri", e.client.RedirectURIs[0])
	if w := e.whoami("us", x.str("access_token")); w.str("Email") != "bo@example.com" {
		t.Fatalf("whoami: %s", w.raw)
	}
}

// A consent id answers once, in its own data center.
func TestConsentIDSingleUse(t *testing.T) {
	e := newEnv(t, Config{})
	uri := e.client.RedirectURIs[0]
	id := pageID(t, e.openAuth(e.client))
	// Posted to another data center it is unknown there, and not used up.
	wantPage(t, e.submit("eu", id, DefaultUser, "accept"), http.StatusBadRequest, "invalid_consent")
	first := redirected(t, e.submit("us", id, DefaultUser, "accept"), uri)
	for _, d := range []string{"accept", "deny"} {
		wantPage(t, e.submit("us", id, DefaultUser, d), http.StatusBadRequest, "invalid_consent", "already answered")
	}
	// A denied page is used up as well.
	denied := pageID(t, e.openAuth(e.client))
	redirected(t, e.submit("us", denied, DefaultUser, "deny"), uri)
	wantPage(t, e.submit("us", denied, DefaultUser, "accept"), http.StatusBadRequest, "invalid_consent")
	if got := e.sim.ClientCounters(e.client.ID); got.ConsentsAccepted != 1 || got.ConsentsDenied != 1 || got.AuthRequests != 2 {
		t.Fatalf("counters %+v", got)
	}
	if got := e.sim.Counters().ConsentsInvalid; got != 4 {
		t.Fatalf("%d invalid consent answers, want 4", got)
	}
	if r := e.exchangeWith(e.client, first.Get("code"), "redirect_uri", uri); r.str("access_token") == "" {
		t.Fatalf("the one code: %s", r.raw)
	}
	e.sim.mu.Lock()
	left := len(e.sim.st.consents)
	e.sim.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d consent requests kept after their answers", left)
	}
}

func TestConsentUnknownID(t *testing.T) {
	e := newEnv(t, Config{})
	for _, id := range []string{"", "0123456789abcdef0123456789abcdef", `<script>`} {
		r := e.submit("us", id, DefaultUser, "accept")
		wantPage(t, r, http.StatusBadRequest, "invalid_consent", "start again")
		if strings.Contains(r.raw, "<script>") {
			t.Fatalf("the error page echoes the id: %s", r.raw)
		}
	}
	if r := e.submit("xx", "1", DefaultUser, "accept"); r.status != http.StatusNotFound {
		t.Fatalf("consent at an unknown data center: %d", r.status)
	}
	if got := e.sim.Counters(); got.ConsentsInvalid != 3 || got.ConsentsAccepted != 0 || got.AuthRequests != 0 {
		t.Fatalf("counters %+v", got)
	}
}

func TestConsentExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	uri := e.client.RedirectURIs[0]
	early := pageID(t, e.openAuth(e.client))
	e.clock.Advance(DefaultConsentTTL - time.Second)
	late := pageID(t, e.openAuth(e.client))
	redirected(t, e.submit("us", early, DefaultUser, "accept"), uri) // one second left
	expired := pageID(t, e.openAuth(e.client))
	e.clock.Advance(DefaultConsentTTL)
	wantPage(t, e.submit("us", expired, DefaultUser, "accept"), http.StatusBadRequest, "consent_expired", "expired")
	// An expired request is gone: a second answer finds nothing.
	wantPage(t, e.submit("us", expired, DefaultUser, "deny"), http.StatusBadRequest, "invalid_consent")
	wantPage(t, e.submit("us", late, DefaultUser, "deny"), http.StatusBadRequest, "consent_expired")
	if got := e.sim.ClientCounters(e.client.ID); got.ConsentsAccepted != 1 || got.ConsentsDenied != 0 || got.ConsentsInvalid != 2 {
		t.Fatalf("counters %+v", got)
	}
	e.sim.SetConsentTTL(30 * time.Second)
	page := e.openAuth(e.client)
	if !strings.Contains(page.raw, "expires in 30 seconds") {
		t.Fatalf("the page does not tell the new lifetime: %s", page.raw)
	}
	e.clock.Advance(30 * time.Second)
	wantPage(t, e.submit("us", pageID(t, page), DefaultUser, "accept"), http.StatusBadRequest, "consent_expired")
}

// Consent, the helper for Go tests, plays the browser with a plain client.
func TestConsentHelper(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	authURL := func(c Client, scope string) string {
		return e.sim.AccountsURL(c.DC) + "/oauth/v2/auth?" + url.Values{
			"client_id": {c.ID}, "response_type": {"code"}, "redirect_uri": {c.RedirectURIs[0]},
			"scope": {scope}, "access_type": {"offline"}, "state": {"s&1"},
		}.Encode()
	}
	uri := e.client.RedirectURIs[0]
	loc, err := Consent(ctx, e.http, authURL(e.client, "ZohoCRM.modules.ALL"), "kim@example.com", Accept)
	if err != nil || !strings.HasPrefix(loc.String(), uri+"?") {
		t.Fatalf("accept: %v %v", loc, err)
	}
	q := loc.Query()
	if q.Get("state") != "s&1" || q.Get("location") != "us" || q.Get("accounts-server") != e.sim.AccountsURL("us") {
		t.Fatalf("accept redirect %v", q)
	}
	x := e.exchangeWith(e.client, q.Get("code"), "redirect_uri", uri)
	if w := e.whoami("us", x.str("access_token")); w.str("Email") != "kim@example.com" {
		t.Fatalf("whoami: %s", w.raw)
	}
	// nil client, default user, deny.
	loc, err = Consent(ctx, nil, authURL(e.client, "ZohoCRM.modules.ALL"), "", Deny)
	if err != nil || loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" {
		t.Fatalf("deny: %v %v", loc, err)
	}
	// A request refused before the page: its redirect.
	loc, err = Consent(ctx, e.http, authURL(e.client, ""), "", Accept)
	if err != nil || loc.Query().Get("error") != "invalid_scope" {
		t.Fatalf("no scope: %v %v", loc, err)
	}
	// An error page is an error saying what the page said.
	stranger := Client{ID: "1000.NOPE", DC: "us", RedirectURIs: []string{uri}}
	if _, err = Consent(ctx, e.http, authURL(stranger, "a"), "", Accept); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("unknown client: %v", err)
	}
	// A following client is not followed.
	follows := &http.Client{Timeout: 10 * time.Second}
	if loc, err = Consent(ctx, follows, authURL(e.client, "a"), "", Accept); err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("with a client that follows redirects: %v %v", loc, err)
	}
	e.sim.AddFault(Fault{Endpoint: "auth", Kind: FaultStatus, Status: 503, Times: 1})
	if _, err = Consent(ctx, e.http, authURL(e.client, "a"), "", Accept); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("fault: %v", err)
	}
	if got := e.sim.ClientCounters(e.client.ID); got.ConsentsAccepted != 2 || got.ConsentsDenied != 1 || got.AuthRequests != 5 {
		t.Fatalf("counters %+v", got)
	}
}
