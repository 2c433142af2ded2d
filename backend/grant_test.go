package backend

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

const testSOID = "ZohoCRM.600000000434"

// ccAccount creates client_credentials account name with a fresh simulator
// client (multi-org, so soid is needed) and returns the client.
func (e *env) ccAccount(name string, extra map[string]interface{}) zohosim.Client {
	e.t.Helper()
	c := e.sim.RegisterClient(zohosim.Client{DC: "us", MultiOrg: true})
	data := map[string]interface{}{
		"grant_type":    "client_credentials",
		"client_id":     c.ID,
		"client_secret": c.Secret,
		"accounts_url":  e.sim.AccountsURL("us"),
		"scopes":        "ZohoCRM.org.READ,ZohoCRM.modules.ALL",
		"soid":          testSOID,
	}
	for k, v := range extra {
		if v == nil {
			delete(data, k)
			continue
		}
		data[k] = v
	}
	e.must(logical.CreateOperation, "config/"+name, data)
	return c
}

// The write mints the first token (verifying the client) and the reads share
// it; once it has expired, many concurrent readers cause one token request.
func TestClientCredentialsMintAndShare(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	if got := e.sim.ClientCounters(c.ID); got.ClientCredentials != 1 || got.TokenRequests != 1 {
		t.Fatalf("the write must mint exactly one token: %+v", got)
	}
	resp := e.creds("org", nil)
	tok := accessToken(resp)
	if !e.sim.AccessTokenValid(tok) || e.sim.LiveClientCredentialsTokens(c.ID, "us", testSOID) != 1 {
		t.Fatal("the token handed out is not the one Zoho minted for the soid")
	}
	if resp.Data["api_domain"] != e.sim.APIDomain("us") || strings.Join(resp.Data["scopes"].([]string), ",") != "ZohoCRM.org.READ,ZohoCRM.modules.ALL" {
		t.Fatalf("creds %v", resp.Data)
	}
	if resp.Secret == nil || resp.Secret.TTL <= 0 || resp.Secret.TTL > time.Hour {
		t.Fatalf("lease %+v", resp.Secret)
	}
	for i := 0; i < 5; i++ {
		if accessToken(e.creds("org", nil)) != tok {
			t.Fatal("a cached read got another token")
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 1 {
		t.Fatalf("cached reads asked Zoho: %d requests", got)
	}
	cfg := e.must(logical.ReadOperation, "config/org", nil).Data
	if cfg["grant_type"] != "client_credentials" || cfg["soid"] != testSOID || cfg["has_refresh_token"] != false || cfg["token_expires_at"] == "" {
		t.Fatalf("config read %v", cfg)
	}
	if st := e.must(logical.ReadOperation, "status/org", nil).Data; st["grant_type"] != "client_credentials" || st["revoked_at"] != "" {
		t.Fatalf("status %v", st)
	}
	stored, _ := loadConfig(context.Background(), e.storage, "org")
	if stored.RefreshToken != "" || stored.GrantType != "client_credentials" || stored.SOID != testSOID {
		t.Fatalf("stored %+v", stored)
	}

	e.clock.Advance(time.Hour) // expired
	const readers = 50
	tokens, fails := e.concurrentCreds("org", readers)
	for i := range tokens {
		if fails[i] != "" || tokens[i] == "" || tokens[i] != tokens[0] {
			t.Fatalf("reader %d: %q (token shared: %v)", i, fails[i], tokens[i] == tokens[0])
		}
	}
	if tokens[0] == tok {
		t.Fatal("the expired token was served")
	}
	if got := e.sim.ClientCounters(c.ID); got.ClientCredentials != 2 || got.TokenRequests != 2 {
		t.Fatalf("%d readers caused %+v; want one more token request", readers, got)
	}
	if e.sim.ClientCounters(c.ID).Refreshes != 0 || e.sim.ClientCounters(c.ID).Exchanges != 0 {
		t.Fatal("a client_credentials account used another grant")
	}
}

// Ahead of expiry a reader is served the cached token and starts one
// background request; the next read gets the new token.
func TestClientCredentialsRefreshAhead(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("ahead", nil)
	old := accessToken(e.creds("ahead", nil))
	e.clock.Advance(55*time.Minute + 30*time.Second) // past the latest refresh point, within the floor
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 300 * time.Millisecond, Times: 1})
	if tok := accessToken(e.creds("ahead", nil)); tok != old {
		t.Fatal("the reader waited for the request instead of getting the cached token")
	}
	e.waitBackground()
	if got := e.sim.ClientCounters(c.ID).ClientCredentials; got != 2 {
		t.Fatalf("want one background request after the write's, got %d in all", got)
	}
	fresh := accessToken(e.creds("ahead", nil))
	if fresh == old || !e.sim.AccessTokenValid(fresh) || !e.sim.AccessTokenValid(old) {
		t.Fatal("want the new token served and the old one still alive for its leases")
	}
	if n := e.sim.LiveClientCredentialsTokens(c.ID, "us", testSOID); n != 2 {
		t.Fatalf("live tokens at Zoho: %d, want 2", n)
	}
}

// The local budget counts client_credentials requests as it counts refreshes:
// the 10th request of the window is the last, Zoho never throttles.
func TestClientCredentialsBudget(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("budget", map[string]interface{}{"live_token_cap": 30}) // the write is request 1 of 10
	minted := 0
	var msg string
	var status int
	for i := 0; i < 15; i++ {
		e.clock.Advance(10 * time.Second)
		var st int
		_, msg, st = e.attempt(logical.ReadOperation, "creds/budget", map[string]interface{}{"min_ttl": "59m"})
		if st != http.StatusOK {
			status = st
			break
		}
		minted++
	}
	if minted != 9 {
		t.Fatalf("want 9 more tokens before the local budget stops, got %d", minted)
	}
	if status != http.StatusTooManyRequests || !strings.Contains(msg, `"budget"`) || !strings.Contains(msg, "this client and organisation") {
		t.Fatalf("want a 429 naming the account and what the budget is for, got %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID); got.TokenRequests != 10 || got.Throttled != 0 {
		t.Fatalf("Zoho saw %+v; want 10 requests and no throttle", got)
	}
	if st := e.must(logical.ReadOperation, "status/budget", nil).Data; st["rate_budget_remaining"] != 0 {
		t.Fatalf("status %v", st)
	}
}

// missing_org_info: at write time a 400 naming soid, nothing stored; on a
// read a 400 (Zoho rejected what an operator must fix) that says to set
// soid; Zoho out of reach at write time is a 502, nothing stored.
func TestClientCredentialsMissingOrgInfo(t *testing.T) {
	e := newEnv(t)
	c := e.sim.RegisterClient(zohosim.Client{DC: "us", MultiOrg: true})
	data := map[string]interface{}{
		"grant_type": "client_credentials", "client_id": c.ID, "client_secret": c.Secret,
		"accounts_url": e.sim.AccountsURL("us"), "scopes": "ZohoCRM.org.READ",
	}
	msg, status := e.fails(logical.CreateOperation, "config/org", data)
	if status != http.StatusBadRequest || !strings.HasPrefix(msg, "soid:") || !strings.Contains(msg, "missing_org_info") ||
		!strings.Contains(msg, `"org"`) || !strings.Contains(msg, "nothing was stored") {
		t.Fatalf("got %d %q", status, msg)
	}
	assertNoSecrets(t, "the error", msg, c.Secret)
	if stored, _ := loadConfig(context.Background(), e.storage, "org"); stored != nil {
		t.Fatal("a rejected account was stored")
	}

	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultReset, Times: 1})
	data["soid"] = testSOID
	if msg, status := e.fails(logical.CreateOperation, "config/org", data); status != http.StatusBadGateway || !strings.Contains(msg, "nothing was stored") {
		t.Fatalf("Zoho out of reach: %d %q", status, msg)
	}
	if stored, _ := loadConfig(context.Background(), e.storage, "org"); stored != nil {
		t.Fatal("stored after a failed write")
	}

	e.must(logical.CreateOperation, "config/org", data)
	e.clock.Advance(time.Hour)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", GrantType: "client_credentials", Kind: zohosim.FaultError, ErrorCode: "missing_org_info", Times: 1})
	msg, status = e.fails(logical.ReadOperation, "creds/org", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "missing_org_info") || !strings.Contains(msg, "soid") {
		t.Fatalf("on a read: %d %q", status, msg)
	}
	if st := e.must(logical.ReadOperation, "status/org", nil).Data; st["needs_reauthorization"] != false || st["consecutive_failures"] != 1 {
		t.Fatalf("a client_credentials account never needs re-authorization: %v", st)
	}
}

// What a client_credentials account refuses, it refuses before anything is
// stored or sent; its grant type is fixed.
func TestClientCredentialsInputRules(t *testing.T) {
	e := newEnv(t)
	cc := e.ccAccount("org", nil)
	rt := e.account("user", nil)
	before := e.sim.Counters().TokenRequests
	for _, c := range []struct {
		path  string
		data  map[string]interface{}
		field string
	}{
		{"config/org", map[string]interface{}{"grant_code": e.code(rt)}, "grant_code"},
		{"config/org", map[string]interface{}{"refresh_token": "1000.aaaa.bbbb"}, "refresh_token"},
		{"config/org", map[string]interface{}{"redirect_uri": "https://vault.example.com/v1/zoho/callback"}, "redirect_uri"},
		{"config/org", map[string]interface{}{"grant_type": "refresh_token"}, "grant_type"},
		{"config/user", map[string]interface{}{"grant_type": "client_credentials"}, "grant_type"},
		{"config/user", map[string]interface{}{"soid": testSOID}, "soid"},
	} {
		msg, status := e.fails(logical.UpdateOperation, c.path, c.data)
		if status != http.StatusBadRequest || !strings.HasPrefix(msg, c.field+":") {
			t.Errorf("%s %v: got %d %q, want 400 naming %s", c.path, c.data, status, msg, c.field)
		}
	}
	if msg, status := e.fails(logical.ReadOperation, "auth-url/org", nil); status != http.StatusBadRequest || !strings.HasPrefix(msg, "grant_type:") {
		t.Errorf("auth-url of a client_credentials account: %d %q", status, msg)
	}
	if got := e.sim.Counters().TokenRequests; got != before {
		t.Fatalf("refused writes sent %d token requests", got-before)
	}
	stored, _ := loadConfig(context.Background(), e.storage, "org")
	if stored.RedirectURI != "" || stored.RefreshToken != "" || stored.GrantType != "client_credentials" {
		t.Fatalf("stored after refused writes: %+v", stored)
	}
	// A change that needs no token request sends none.
	e.must(logical.UpdateOperation, "config/org", map[string]interface{}{"live_token_cap": 5})
	if got := e.sim.ClientCounters(cc.ID).TokenRequests; got != 1 {
		t.Fatalf("a cap change sent a token request: %d in all", got)
	}
}

// A new soid or new scopes are verified by one token request, whose token
// (for the new organisation and scopes) becomes the current one.
func TestClientCredentialsScopesAndSoidChangeMint(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	old := accessToken(e.creds("org", nil))
	e.must(logical.UpdateOperation, "config/org", map[string]interface{}{"soid": "ZohoCRM.700", "scopes": "ZohoCRM.users.READ"})
	if got := e.sim.ClientCounters(c.ID).ClientCredentials; got != 2 {
		t.Fatalf("want one verification, got %d tokens in all", got)
	}
	resp := e.creds("org", nil)
	if accessToken(resp) == old || e.sim.LiveClientCredentialsTokens(c.ID, "us", "ZohoCRM.700") != 1 {
		t.Fatal("the verification's token for the new soid is not served")
	}
	if got := resp.Data["scopes"].([]string); len(got) != 1 || got[0] != "ZohoCRM.users.READ" {
		t.Fatalf("scopes %v", got)
	}
	if e.sim.ClientCounters(c.ID).TokenRequests != 2 {
		t.Fatal("the read after the verification asked Zoho")
	}
	// Removing the soid of a multi-org client is refused by Zoho: 400 naming
	// soid, and the account keeps it.
	msg, status := e.fails(logical.UpdateOperation, "config/org", map[string]interface{}{"soid": ""})
	if status != http.StatusBadRequest || !strings.HasPrefix(msg, "soid:") {
		t.Fatalf("got %d %q", status, msg)
	}
	if stored, _ := loadConfig(context.Background(), e.storage, "org"); stored.SOID != "ZohoCRM.700" {
		t.Fatalf("soid %q after a refused write", stored.SOID)
	}
}

// Scopes changed to a different set of the same size change what the token
// request asks for just as much: one verifying token request before the
// change is stored, whose token (for the new scopes) is served next.
func TestClientCredentialsSameSizedScopeChangeIsVerified(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("swap", nil) // two scopes
	old := accessToken(e.creds("swap", nil))
	sent := e.sim.ClientCounters(c.ID).ClientCredentials
	e.must(logical.UpdateOperation, "config/swap", map[string]interface{}{"scopes": "ZohoCRM.users.READ,ZohoCRM.settings.READ"})
	if got := e.sim.ClientCounters(c.ID).ClientCredentials - sent; got != 1 {
		t.Fatalf("changing two scopes for two others sent %d token requests, want 1 verification", got)
	}
	resp := e.creds("swap", nil)
	if accessToken(resp) == old {
		t.Fatal("the token minted for the old scopes is still served")
	}
	if got := resp.Data["scopes"].([]string); len(got) != 2 || got[0] != "ZohoCRM.users.READ" || got[1] != "ZohoCRM.settings.READ" {
		t.Fatalf("scopes %v after the change", got)
	}
	// Writing the same scopes again asks for nothing new: nothing sent.
	sent = e.sim.ClientCounters(c.ID).ClientCredentials
	e.must(logical.UpdateOperation, "config/swap", map[string]interface{}{"scopes": "ZohoCRM.users.READ,ZohoCRM.settings.READ"})
	if got := e.sim.ClientCounters(c.ID).ClientCredentials - sent; got != 0 {
		t.Fatalf("writing the same scopes again sent %d token requests", got)
	}
}

// A write that moves an account to an accounts server that does not know its
// client is refused naming accounts_url (the field the write changed), not
// client_id; nothing is stored.
func TestVerificationAtAnotherAccountsServerNamesIt(t *testing.T) {
	e := newEnv(t)
	e.ccAccount("moved", nil) // a client of the us data center
	msg, status := e.fails(logical.UpdateOperation, "config/moved", map[string]interface{}{"accounts_url": e.sim.AccountsURL("eu")})
	if status != http.StatusBadRequest || !strings.HasPrefix(msg, "accounts_url:") {
		t.Fatalf("moving the account to eu, whose server does not know its client: %d %q, want 400 naming accounts_url", status, msg)
	}
	if stored, _ := loadConfig(context.Background(), e.storage, "moved"); stored.AccountsURL != e.sim.AccountsURL("us") {
		t.Fatalf("the refused accounts server was stored: %q", stored.AccountsURL)
	}
	// The client itself unknown where the account stays: client_id.
	msg, status = e.fails(logical.UpdateOperation, "config/moved", map[string]interface{}{"client_id": "1000.UNKNOWN"})
	if status != http.StatusBadRequest || !strings.HasPrefix(msg, "client_id:") {
		t.Fatalf("an unknown client: %d %q, want 400 naming client_id", status, msg)
	}
}

// An invalid_client answer to a write that moved the account names the field
// the write moved it with: accounts_url when given, data_center when the move
// came from the data center alone (no accounts_url in the write), client_id
// when the account stayed where it was.
func TestRejectedClientNamesTheFieldThatMovedIt(t *testing.T) {
	invalidClient := &zoho.Error{Op: "client credentials", Code: zoho.CodeInvalidClient}
	eu, custom := "eu", "https://accounts.example.test"
	prev := &accountConfig{DataCenter: "us"}
	for _, tc := range []struct {
		name string
		next *accountConfig
		in   paths.AccountInput
		want string
	}{
		{"moved by data_center", &accountConfig{DataCenter: "eu"}, paths.AccountInput{DataCenter: &eu}, paths.FieldDataCenter},
		{"moved by accounts_url", &accountConfig{DataCenter: "us", AccountsURL: custom}, paths.AccountInput{AccountsURL: &custom}, paths.FieldAccountsURL},
		{"not moved", &accountConfig{DataCenter: "us"}, paths.AccountInput{}, paths.FieldClientID},
	} {
		if got := rejectedField(invalidClient, paths.FieldGrantCode, prev, tc.next, tc.in); got != tc.want {
			t.Errorf("%s: invalid_client names %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A restarted engine serves the stored token and knows the account's grant.
func TestClientCredentialsRestart(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	tok := accessToken(e.creds("org", nil))
	e.restart()
	if got := accessToken(e.creds("org", nil)); got != tok {
		t.Fatal("the stored token was not served after the restart")
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 1 {
		t.Fatalf("the restart cost %d token requests", got-1)
	}
	e.clock.Advance(time.Hour)
	if got := accessToken(e.creds("org", nil)); got == tok || !e.sim.AccessTokenValid(got) {
		t.Fatal("no new token after the restart")
	}
	if got := e.sim.ClientCounters(c.ID); got.ClientCredentials != 2 || got.Refreshes != 0 {
		t.Fatalf("after the restart the account minted with %+v", got)
	}
	if st := e.must(logical.ReadOperation, "status/org", nil).Data; st["grant_type"] != "client_credentials" || st["rate_budget_remaining"] != 9 {
		t.Fatalf("status after restart %v", st)
	}
}

// rotate regenerates a client's secret at the simulator, as Zoho's console
// does: the old secret stops working at once.
func rotate(e *env, c zohosim.Client) zohosim.Client {
	return e.sim.RegisterClient(zohosim.Client{ID: c.ID, Secret: "rotated-" + c.Secret, DC: c.DC, MultiOrg: c.MultiOrg})
}

// A good new secret is verified by exactly one token request, whose token
// becomes the current one; a wrong one is refused with 400 naming
// client_secret after exactly one request, and the old secret keeps working.
func TestSecretRotation(t *testing.T) {
	for _, grant := range []string{"refresh_token", "client_credentials"} {
		t.Run(grant, func(t *testing.T) {
			e := newEnv(t)
			var c zohosim.Client
			if grant == "client_credentials" {
				c = e.ccAccount("acct", nil)
			} else {
				c = e.account("acct", nil)
			}
			minted := func() int64 {
				got := e.sim.ClientCounters(c.ID)
				return got.Refreshes + got.ClientCredentials
			}
			requests := func() int64 { return e.sim.ClientCounters(c.ID).TokenRequests }
			budget := func() interface{} {
				return e.must(logical.ReadOperation, "status/acct", nil).Data["rate_budget_remaining"]
			}
			old := accessToken(e.creds("acct", nil))
			r0, m0, b0 := requests(), minted(), budget()

			// Wrong secret: one request, 400 naming client_secret, nothing stored.
			msg, status := e.fails(logical.UpdateOperation, "config/acct", map[string]interface{}{"client_secret": "not-the-secret"})
			if status != http.StatusBadRequest || !strings.HasPrefix(msg, "client_secret:") || !strings.Contains(msg, "invalid_client_secret") {
				t.Fatalf("wrong secret: %d %q", status, msg)
			}
			assertNoSecrets(t, "the error", msg, "not-the-secret", c.Secret)
			if requests() != r0+1 || minted() != m0 {
				t.Fatalf("wrong secret: %d requests, %d tokens; want exactly one request, no token", requests()-r0, minted()-m0)
			}
			if stored, _ := loadConfig(context.Background(), e.storage, "acct"); stored.ClientSecret != c.Secret {
				t.Fatal("the rejected secret was stored")
			}
			if b := budget(); b != b0.(int)-1 {
				t.Fatalf("budget %v after the verification, was %v: the request must count", b, b0)
			}
			st := e.must(logical.ReadOperation, "status/acct", nil).Data
			if st["consecutive_failures"] != 0 || st["next_attempt_at"] != "" || st["last_error"] != "" {
				t.Fatalf("a refused write put the account in trouble: %v", st)
			}
			// The old secret keeps working: cached token, then a new one.
			if accessToken(e.creds("acct", nil)) != old {
				t.Fatal("the cached token changed")
			}
			e.clock.Advance(time.Hour)
			if tok := accessToken(e.creds("acct", nil)); tok == old || !e.sim.AccessTokenValid(tok) {
				t.Fatal("the old secret no longer mints")
			}

			// The secret is regenerated in Zoho's console; the new one is
			// verified by one request whose token is served next.
			c = rotate(e, c)
			r1, m1 := requests(), minted()
			e.must(logical.UpdateOperation, "config/acct", map[string]interface{}{"client_secret": c.Secret})
			if requests() != r1+1 || minted() != m1+1 {
				t.Fatalf("good secret: %d requests, %d tokens; want exactly one of each", requests()-r1, minted()-m1)
			}
			tok := accessToken(e.creds("acct", nil))
			if requests() != r1+1 || !e.sim.AccessTokenValid(tok) {
				t.Fatal("the verification's token was not served")
			}
			if stored, _ := loadConfig(context.Background(), e.storage, "acct"); stored.ClientSecret != c.Secret {
				t.Fatal("the verified secret was not stored")
			}
			e.clock.Advance(time.Hour)
			if got := accessToken(e.creds("acct", nil)); got == tok || requests() != r1+2 {
				t.Fatal("the new secret does not mint")
			}
		})
	}
}

// A secret written to an account whose refresh token Zoho no longer
// accepts cannot be verified: stored with a warning, no request.
func TestSecretOfAnAccountNeedingReauthorization(t *testing.T) {
	e := newEnv(t)
	c := e.account("dead", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "dead")
	e.sim.RevokeRefreshToken(cfg.RefreshToken)
	e.clock.Advance(time.Hour)
	e.fails(logical.ReadOperation, "creds/dead", nil) // invalid_code: needs re-authorization
	n := e.sim.ClientCounters(c.ID).TokenRequests
	resp := e.must(logical.UpdateOperation, "config/dead", map[string]interface{}{"client_secret": "another"})
	if resp == nil || !strings.Contains(strings.Join(resp.Warnings, " "), "without verification") {
		t.Fatalf("want a warning, got %+v", resp)
	}
	if e.sim.ClientCounters(c.ID).TokenRequests != n {
		t.Fatal("a request was sent for an unverifiable secret")
	}
	// A new grant code with the right secret brings the account back.
	e.must(logical.UpdateOperation, "config/dead", map[string]interface{}{"client_secret": c.Secret, "grant_code": e.code(c)})
	e.creds("dead", nil)
}

// A new secret written while Zoho throttles the account is not verified
// inside the throttle window: Zoho counts every request in its rolling
// window, so the verification waits for the window as refreshes do (429,
// nothing sent, nothing stored); after the window it goes out.
func TestSecretVerificationWaitsOutZohosThrottle(t *testing.T) {
	e := newEnv(t)
	c := e.account("thr", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultThrottle, Times: 1})
	e.clock.Advance(time.Minute)
	if _, status := e.fails(logical.ReadOperation, "creds/thr", map[string]interface{}{"min_ttl": "59m"}); status != http.StatusTooManyRequests {
		t.Fatalf("the throttled refresh answered %d", status)
	}
	throttledAt := e.clock.Now()
	sent := e.sim.ClientCounters(c.ID).TokenRequests
	c = rotate(e, c)
	for _, after := range []time.Duration{0, 5 * time.Minute, 10*time.Minute - time.Second} {
		e.clock.Advance(throttledAt.Add(after).Sub(e.clock.Now()))
		_, msg, status := e.attempt(logical.UpdateOperation, "config/thr", map[string]interface{}{"client_secret": c.Secret})
		if status != http.StatusTooManyRequests {
			t.Fatalf("a secret written %s into the throttle window: %d %q (%d token requests sent), want 429 and none sent",
				after, status, msg, e.sim.ClientCounters(c.ID).TokenRequests-sent)
		}
		if got := e.sim.ClientCounters(c.ID).TokenRequests; got != sent {
			t.Fatalf("a secret written %s into the throttle window sent %d token requests", after, got-sent)
		}
		if stored, _ := loadConfig(context.Background(), e.storage, "thr"); stored.ClientSecret == c.Secret {
			t.Fatal("an unverified secret was stored")
		}
	}
	e.clock.Advance(throttledAt.Add(10 * time.Minute).Sub(e.clock.Now()))
	e.must(logical.UpdateOperation, "config/thr", map[string]interface{}{"client_secret": c.Secret})
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != sent+1 {
		t.Fatalf("after the window the verification sent %d token requests, want 1", got-sent)
	}
}

// A verification that the budget does not allow is not sent; nothing is
// stored.
func TestSecretVerificationRespectsTheBudget(t *testing.T) {
	e := newEnv(t, func(_ *zohosim.Config, o *Options) { o.RateLimit = 2 })
	c := e.ccAccount("small", nil)
	e.clock.Advance(10 * time.Second)
	e.creds("small", map[string]interface{}{"min_ttl": "59m"}) // request 2 of 2
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 2 {
		t.Fatalf("%d requests before the write, want 2", got)
	}
	msg, status := e.fails(logical.UpdateOperation, "config/small", map[string]interface{}{"client_secret": "whatever"})
	if status != http.StatusTooManyRequests || !strings.Contains(msg, "nothing was stored") {
		t.Fatalf("got %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
	if stored, _ := loadConfig(context.Background(), e.storage, "small"); stored.ClientSecret != c.Secret {
		t.Fatal("an unverified secret was stored")
	}
}
