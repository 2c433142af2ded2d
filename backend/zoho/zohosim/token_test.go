package zohosim

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRegisterClientShapes(t *testing.T) {
	sim := New(Config{})
	c := sim.RegisterClient(Client{})
	if !regexp.MustCompile(`^1000\.[A-Z0-9]{30}$`).MatchString(c.ID) {
		t.Errorf("client id %q", c.ID)
	}
	if !regexp.MustCompile(`^[0-9a-f]{42}$`).MatchString(c.Secret) {
		t.Errorf("client secret %q", c.Secret)
	}
	if c.DC != "us" {
		t.Errorf("default dc %q", c.DC)
	}
	if other := sim.RegisterClient(Client{}); other.ID == c.ID || other.Secret == c.Secret {
		t.Error("generated ids or secrets repeat")
	}
	kept := sim.RegisterClient(Client{ID: "1000.MINE", Secret: "s", DC: "EU"})
	if got, ok := sim.LookupClient("1000.MINE"); !ok || got.Secret != "s" || got.DC != "eu" || kept.DC != "eu" {
		t.Errorf("registered %+v, looked up %+v", kept, got)
	}
}

func TestExchangeAnswer(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.exchangeWith(e.client, e.selfCode())
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if !tokenShape.MatchString(r.str("access_token")) || !tokenShape.MatchString(r.str("refresh_token")) {
		t.Errorf("token shapes: %s", r.raw)
	}
	if r.str("api_domain") != e.ts.URL+"/us/api" || r.str("api_domain") != e.sim.APIDomain("us") {
		t.Errorf("api_domain %q", r.str("api_domain"))
	}
	if r.str("token_type") != "Bearer" || r.num("expires_in") != 3600 {
		t.Errorf("token_type/expires_in: %s", r.raw)
	}
	if _, ok := r.body["scope"]; ok {
		t.Errorf("exchange answer carries scope: %s", r.raw)
	}
	if _, ok := r.body["expires_in_sec"]; ok {
		t.Errorf("expires_in_sec without legacy mode: %s", r.raw)
	}
	if !e.sim.RefreshTokenValid(r.str("refresh_token")) || !e.sim.AccessTokenValid(r.str("access_token")) {
		t.Error("tokens not valid after the exchange")
	}
	if e.sim.AccessTokenValid(r.str("refresh_token")) || e.sim.RefreshTokenValid(r.str("access_token")) {
		t.Error("token kinds mixed up")
	}
}

func TestGrantCodeSingleUse(t *testing.T) {
	e := newEnv(t, Config{})
	code := e.selfCode()
	if r := e.exchangeWith(e.client, code); r.str("access_token") == "" {
		t.Fatalf("first use: %s", r.raw)
	}
	wantError(t, e.exchangeWith(e.client, code), "invalid_code")
	wantError(t, e.exchangeWith(e.client, "1000.00000000000000000000000000000000.00000000000000000000000000000000"), "invalid_code")
	wantError(t, e.exchangeWith(e.client, ""), "invalid_code")
}

func TestSelfClientCodeExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	def := e.selfCode() // 3 minutes by default
	short, err := e.sim.SelfClientCode(e.client.ID, "", []string{"a.b.READ"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(3*time.Minute - time.Second)
	live := e.selfCode()
	e.clock.Advance(time.Second)
	wantError(t, e.exchangeWith(e.client, def), "invalid_code")
	if r := e.exchangeWith(e.client, live); r.str("access_token") == "" {
		t.Fatalf("code within its ttl: %s", r.raw)
	}
	if r := e.exchangeWith(e.client, short); r.str("access_token") == "" {
		t.Fatalf("10-minute code after 3 minutes: %s", r.raw)
	}
	if _, err := e.sim.SelfClientCode("1000.NOPE", "", nil, 0); err == nil {
		t.Error("code for an unknown client")
	}
}

func TestCodeOfAnotherClient(t *testing.T) {
	e := newEnv(t, Config{})
	other := e.sim.RegisterClient(Client{DC: "us"})
	code := e.selfCode()
	wantError(t, e.exchangeWith(other, code), "invalid_code")
	// The failed attempt did not consume the code.
	if r := e.exchangeWith(e.client, code); r.str("access_token") == "" {
		t.Fatalf("owner's exchange: %s", r.raw)
	}
}

func TestClientErrors(t *testing.T) {
	e := newEnv(t, Config{})
	code := e.selfCode()
	rt, _ := e.offline()

	wrongSecret := e.client
	wrongSecret.Secret = "0000"
	wantError(t, e.exchangeWith(wrongSecret, code), "invalid_client_secret")
	wantError(t, e.refreshWith(wrongSecret, rt), "invalid_client_secret")

	unknown := Client{ID: "1000.UNKNOWN", Secret: e.client.Secret, DC: "us"}
	wantError(t, e.exchangeWith(unknown, code), "invalid_client")

	// The right client at another data center's accounts server.
	wrongDC := e.client
	wrongDC.DC = "eu"
	wantError(t, e.exchangeWith(wrongDC, code), "invalid_client")
	wantError(t, e.refreshWith(wrongDC, rt), "invalid_client")
	// invalid_client is checked before the secret.
	wrongDC.Secret = "0000"
	wantError(t, e.refreshWith(wrongDC, rt), "invalid_client")

	// None of this consumed the code.
	if r := e.exchangeWith(e.client, code); r.str("access_token") == "" {
		t.Fatalf("code after failed attempts: %s", r.raw)
	}
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{
		TokenRequests: 7, Exchanges: 2, ExchangeFailures: 2, RefreshFailures: 3,
	})
	// The unknown client's request is counted, but not under its made-up id.
	wantCounters(t, "unknown clients", e.sim.ClientCounters(""), Counters{TokenRequests: 1, ExchangeFailures: 1})
	wantCounters(t, "made-up id", e.sim.ClientCounters(unknown.ID), Counters{})
}

func TestUnsupportedGrantType(t *testing.T) {
	e := newEnv(t, Config{})
	for _, g := range []string{"password", "", "device_token"} {
		r := e.postForm("/us/oauth/v2/token", url.Values{"grant_type": {g}, "client_id": {e.client.ID}, "client_secret": {e.client.Secret}})
		wantError(t, r, "unsupported_grant_type")
	}
}

func TestParametersInQueryOrBody(t *testing.T) {
	e := newEnv(t, Config{})
	q := url.Values{"grant_type": {"authorization_code"}, "client_id": {e.client.ID}, "client_secret": {e.client.Secret}, "code": {e.selfCode()}}
	r := e.postQuery("/us/oauth/v2/token", q)
	if r.str("refresh_token") == "" {
		t.Fatalf("query-string exchange: %s", r.raw)
	}
	rt := r.str("refresh_token")
	r = e.postQuery("/us/oauth/v2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {e.client.ID}, "client_secret": {e.client.Secret}, "refresh_token": {rt}})
	if r.str("access_token") == "" {
		t.Fatalf("query-string refresh: %s", r.raw)
	}
	// Mixed: identity in the query, secret in the body.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/us/oauth/v2/token?grant_type=refresh_token&client_id="+url.QueryEscape(e.client.ID),
		strings.NewReader(url.Values{"client_secret": {e.client.Secret}, "refresh_token": {rt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := e.do(req); r.str("access_token") == "" {
		t.Fatalf("mixed refresh: %s", r.raw)
	}
	if r := e.get("/us/oauth/v2/token"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint: %d", r.status)
	}
}

func TestRefreshAnswer(t *testing.T) {
	e := newEnv(t, Config{})
	rt, first := e.offline()
	r := e.refreshWith(e.client, rt)
	if r.status != http.StatusOK || !tokenShape.MatchString(r.str("access_token")) || r.str("access_token") == first {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	if _, ok := r.body["refresh_token"]; ok {
		t.Errorf("refresh answer carries a refresh token: %s", r.raw)
	}
	if r.str("scope") != "ZohoCRM.modules.ALL ZohoCRM.users.READ" {
		t.Errorf("scope %q, want space-separated", r.str("scope"))
	}
	if r.str("api_domain") != e.sim.APIDomain("us") || r.str("token_type") != "Bearer" || r.num("expires_in") != 3600 {
		t.Errorf("answer: %s", r.raw)
	}
	if !e.sim.RefreshTokenValid(rt) || !e.sim.AccessTokenValid(first) {
		t.Error("refresh invalidated the refresh token or the earlier access token")
	}
}

func TestRefreshTokenErrors(t *testing.T) {
	e := newEnv(t, Config{})
	rt, _ := e.offline()
	wantError(t, e.refreshWith(e.client, "1000.00000000000000000000000000000000.00000000000000000000000000000000"), "invalid_code")
	wantError(t, e.refreshWith(e.client, ""), "invalid_code")
	other := e.sim.RegisterClient(Client{DC: "us"})
	wantError(t, e.refreshWith(other, rt), "invalid_code")
	e.sim.RevokeRefreshToken(rt)
	wantError(t, e.refreshWith(e.client, rt), "invalid_code")
	if got := e.sim.ClientCounters(e.client.ID); got.RefreshFailures != 3 || got.Refreshes != 0 {
		t.Errorf("counters %+v", got)
	}
}

func TestOnlineAndSelfClientScopes(t *testing.T) {
	e := newEnv(t, Config{})
	code, _ := e.sim.SelfClientCode(e.client.ID, "", []string{"Desk.tickets.READ"}, 0)
	r := e.exchangeWith(e.client, code, "redirect_uri", "https://ignored.example/for/self/client")
	if r.str("refresh_token") == "" {
		t.Fatalf("self client codes are offline and ignore redirect_uri: %s", r.raw)
	}
	if w := e.whoami("us", r.str("access_token")); w.str("scope") != "Desk.tickets.READ" {
		t.Errorf("whoami scope: %s", w.raw)
	}
}

func TestAccessTokenExpiry(t *testing.T) {
	e := newEnv(t, Config{AccessTokenTTL: 10 * time.Minute})
	rt, at := e.offline()
	if r := e.refreshWith(e.client, rt); r.num("expires_in") != 600 {
		t.Errorf("expires_in %v", r.body["expires_in"])
	}
	e.clock.Advance(10*time.Minute - time.Second)
	if !e.sim.AccessTokenValid(at) {
		t.Fatal("expired early")
	}
	e.clock.Advance(time.Second)
	if e.sim.AccessTokenValid(at) {
		t.Fatal("valid after its ttl")
	}
	if r := e.whoami("us", at); r.status != http.StatusUnauthorized {
		t.Errorf("expired token accepted: %d", r.status)
	}
	if !e.sim.RefreshTokenValid(rt) {
		t.Error("refresh tokens never expire")
	}
	e.sim.SetAccessTokenTTL(30 * time.Second)
	if r := e.refreshWith(e.client, rt); r.num("expires_in") != 30 {
		t.Errorf("after SetAccessTokenTTL: %s", r.raw)
	}
}

func TestLegacyMillis(t *testing.T) {
	e := newEnv(t, Config{LegacyMillis: true})
	rt, _ := e.offline()
	r := e.refreshWith(e.client, rt)
	if r.num("expires_in") != 3_600_000 || r.num("expires_in_sec") != 3600 {
		t.Fatalf("legacy refresh answer: %s", r.raw)
	}
	x := e.exchangeWith(e.client, e.selfCode())
	if x.num("expires_in") != 3_600_000 || x.num("expires_in_sec") != 3600 {
		t.Fatalf("legacy exchange answer: %s", x.raw)
	}
	e.sim.SetLegacyMillis(false)
	r = e.refreshWith(e.client, rt)
	if _, ok := r.body["expires_in_sec"]; ok || r.num("expires_in") != 3600 {
		t.Fatalf("after SetLegacyMillis(false): %s", r.raw)
	}
}

// ccForm is a client_credentials request of c with extra parameters.
func ccForm(c Client, kv ...string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, Config{})
	wantError(t, e.postForm("/us/oauth/v2/token", ccForm(e.client, "soid", "ZohoCRM.123")), "invalid_scope")
	wantError(t, e.postForm("/us/oauth/v2/token", ccForm(e.client, "scope", "ZohoCRM.org.READ", "client_secret", "wrong")), "invalid_client_secret")
	wantError(t, e.postForm("/eu/oauth/v2/token", ccForm(e.client, "scope", "ZohoCRM.org.READ")), "invalid_client")
	// A product with one organisation needs no soid.
	r := e.postForm("/us/oauth/v2/token", ccForm(e.client, "scope", "ZohoCRM.org.READ"))
	if r.str("access_token") == "" || r.body["refresh_token"] != nil || !e.sim.AccessTokenValid(r.str("access_token")) {
		t.Fatalf("client credentials without soid: %s", r.raw)
	}
	r = e.postForm("/us/oauth/v2/token", ccForm(e.client, "scope", "ZohoCRM.org.READ,ZohoCRM.users.READ", "soid", "ZohoCRM.123"))
	if r.str("scope") != "ZohoCRM.org.READ ZohoCRM.users.READ" || r.body["refresh_token"] != nil || !e.sim.AccessTokenValid(r.str("access_token")) {
		t.Fatalf("client credentials: %s", r.raw)
	}
	if r.str("api_domain") != e.sim.APIDomain("us") || r.num("expires_in") != 3600 {
		t.Fatalf("client credentials answer: %s", r.raw)
	}
	if n, m := e.sim.LiveClientCredentialsTokens(e.client.ID, "us", ""), e.sim.LiveClientCredentialsTokens(e.client.ID, "us", "ZohoCRM.123"); n != 1 || m != 1 {
		t.Fatalf("live tokens per soid: %d without, %d with ZohoCRM.123; want 1 and 1", n, m)
	}
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{
		TokenRequests: 5, ClientCredentials: 2, ClientCredentialsFailures: 3,
	})
	// The token is revoked like any access token.
	if rv := e.revoke(r.str("access_token")); rv.status != http.StatusOK || e.sim.AccessTokenValid(r.str("access_token")) {
		t.Fatalf("revoking a client-credentials token: %d %s", rv.status, rv.raw)
	}
}

// A client whose product has several organisations must name one.
func TestClientCredentialsMultiOrg(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.sim.RegisterClient(Client{DC: "us", MultiOrg: true})
	wantError(t, e.postForm("/us/oauth/v2/token", ccForm(c, "scope", "ZohoCRM.org.READ")), "missing_org_info")
	r := e.postForm("/us/oauth/v2/token", ccForm(c, "scope", "ZohoCRM.org.READ", "soid", "ZohoCRM.600000000434"))
	if !e.sim.AccessTokenValid(r.str("access_token")) {
		t.Fatalf("with soid: %s", r.raw)
	}
	if got := e.sim.ClientCounters(c.ID); got.ClientCredentials != 1 || got.ClientCredentialsFailures != 1 {
		t.Fatalf("counters %+v", got)
	}
	// Registered over the control API too.
	reg := e.sendJSON(http.MethodPost, "/sim/clients", `{"dc":"eu","multi_org":true}`)
	if reg.status != http.StatusOK || reg.body["multi_org"] != true {
		t.Fatalf("control API registration: %d %s", reg.status, reg.raw)
	}
}

// Zoho's per-refresh-token limits hold per client and soid for client
// credentials: the rate limit throttles one soid, not another, and past the
// live cap the oldest token of that soid is silently invalidated.
func TestClientCredentialsLimitsPerSoid(t *testing.T) {
	e := newEnv(t, Config{TokenRateLimit: 3, LiveTokenCap: 2})
	mint := func(soid string) reply {
		return e.postForm("/us/oauth/v2/token", ccForm(e.client, "scope", "ZohoCRM.org.READ", "soid", soid))
	}
	var toks []string
	for i := 0; i < 3; i++ {
		r := mint("ZohoCRM.1")
		if r.str("access_token") == "" {
			t.Fatalf("mint %d: %s", i, r.raw)
		}
		toks = append(toks, r.str("access_token"))
	}
	if e.sim.AccessTokenValid(toks[0]) || !e.sim.AccessTokenValid(toks[1]) || !e.sim.AccessTokenValid(toks[2]) {
		t.Fatal("past the live cap the oldest token must die, the newer ones live")
	}
	if r := mint("ZohoCRM.1"); r.str("error") != "Access Denied" || r.str("error_description") != ThrottleDescription {
		t.Fatalf("fourth token of the window: %s", r.raw)
	}
	if r := mint("ZohoCRM.2"); r.str("access_token") == "" {
		t.Fatalf("another soid has its own budget: %s", r.raw)
	}
	got := e.sim.ClientCounters(e.client.ID)
	if got.Evictions != 1 || got.Throttled != 1 || got.ClientCredentials != 4 || got.ClientCredentialsFailures != 1 {
		t.Fatalf("counters %+v", got)
	}
	e.clock.Advance(DefaultTokenRateWindow)
	if r := mint("ZohoCRM.1"); r.str("access_token") == "" {
		t.Fatalf("after the window: %s", r.raw)
	}
}

func TestRefreshTokenBoundToItsDataCenter(t *testing.T) {
	e := newEnv(t, Config{})
	rt, _ := e.offline()
	// The client moves to eu (same id and secret): the us refresh token is
	// refused there, and us no longer knows the client.
	moved := e.sim.RegisterClient(Client{ID: e.client.ID, Secret: e.client.Secret, DC: "eu"})
	wantError(t, e.refreshWith(moved, rt), "invalid_code")
	wantError(t, e.refreshWith(e.client, rt), "invalid_client")
}
