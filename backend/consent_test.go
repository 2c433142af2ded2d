package backend

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// Two callbacks with the same state: exactly one exchanges the code.
func TestCallbackStateIsSingleUseUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	c := newConsentAccount(e, "twice")
	resp := e.must(logical.ReadOperation, "auth-url/twice", nil)
	back := consent(t, resp.Data["auth_url"].(string), zohosim.Accept)
	// Hold each callback after it read the pending authorization until the
	// other one read it too, if the engine lets them both read it.
	arrived := make(chan struct{}, 2)
	e.storage.setGetHook(func(key string) {
		if key != stateKey(back.Get("state")) {
			return
		}
		arrived <- struct{}{}
		deadline := time.After(300 * time.Millisecond)
		for len(arrived) < 2 {
			select {
			case <-deadline:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	statuses := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			s, _ := e.callback(back)
			statuses <- s
		}()
	}
	ok := 0
	for i := 0; i < 2; i++ {
		if receive(t, statuses, "the answer to a callback") == 200 {
			ok++
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 1 || ok != 1 {
		t.Fatalf("one state, two callbacks: %d token requests at Zoho, %d successes (want 1 and 1)", got, ok)
	}
}

const callbackURI = "https://vault.example.com/v1/zoho/callback"

// consent plays the browser: opens the auth URL at the simulator, answers
// its consent page as the default user and returns the query Zoho redirects
// back with.
func consent(t *testing.T, authURL string, d zohosim.Decision) url.Values {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loc, err := zohosim.Consent(ctx, nil, authURL, "", d)
	if err != nil || !strings.HasPrefix(loc.String(), callbackURI+"?") {
		t.Fatalf("consent did not redirect to the callback: %v %v", loc, err)
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
	back := consent(t, authURL, zohosim.Accept)
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
	back := consent(t, start(), zohosim.Deny)
	if status, page := e.callback(back); status != 400 || !strings.Contains(page, "access_denied") {
		t.Fatalf("refused: %d %s", status, page)
	}
	// Forged accounts-server: the secret is never sent there.
	back = consent(t, start(), zohosim.Accept)
	back.Set("accounts-server", "https://accounts.zoho.com.evil.example")
	if status, page := e.callback(back); status != 400 || !strings.Contains(page, "not one of Zoho") {
		t.Fatalf("forged accounts-server: %d %s", status, page)
	}
	// Expired.
	authURL := start()
	e.clock.Advance(10 * time.Minute) // a consent is pending for 10 minutes
	back = consent(t, authURL, zohosim.Accept)
	if status, page := e.callback(back); status != 400 || !strings.Contains(page, "expired") {
		t.Fatalf("expired: %d %s", status, page)
	}
	if got := e.sim.ClientCounters(c.ID); got.TokenRequests != 0 || got.ConsentsDenied != 1 || got.ConsentsAccepted != 2 {
		t.Fatalf("rejected callbacks reached Zoho: %+v", got)
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

// auth-url/ refuses an account whose redirect_uri is not this mount's
// callback before anything is stored: the browser would never come back.
func TestAuthURLChecksTheRedirectURI(t *testing.T) {
	e := newEnv(t)
	newConsentAccount(e, "elsewhere")
	e.must(logical.UpdateOperation, "config/elsewhere", map[string]interface{}{"redirect_uri": "https://vault.example.com/v1/other/callback"})
	req := &logical.Request{Operation: logical.ReadOperation, Path: "auth-url/elsewhere", Storage: e.storage, MountPoint: "zoho/"}
	resp, err := e.b.HandleRequest(t0ctx(), req)
	msg, status := e.classify(resp, err)
	if status != http.StatusBadRequest || !strings.Contains(msg, "redirect_uri") || !strings.Contains(msg, "/zoho/callback") {
		t.Fatalf("got %d %q", status, msg)
	}
	if keys, _ := e.storage.List(t0ctx(), pendingPrefix); len(keys) != 0 {
		t.Fatal("a consent was started for a redirect that cannot come back")
	}
	// Writing such a redirect_uri warns; this mount's callback is accepted.
	req = &logical.Request{Operation: logical.UpdateOperation, Path: "config/elsewhere", Storage: e.storage, MountPoint: "zoho/",
		Data: map[string]interface{}{"redirect_uri": "https://vault.example.com/v1/other/callback"}}
	resp, err = e.b.HandleRequest(t0ctx(), req)
	if err != nil || resp == nil || len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "auth-url/elsewhere will refuse it") {
		t.Fatalf("no warning for a foreign redirect_uri: %v %v", resp, err)
	}
	e.must(logical.UpdateOperation, "config/elsewhere", map[string]interface{}{"redirect_uri": "https://vault.example.com/v1/zoho/callback"})
	req = &logical.Request{Operation: logical.ReadOperation, Path: "auth-url/elsewhere", Storage: e.storage, MountPoint: "zoho/"}
	if resp, err := e.b.HandleRequest(t0ctx(), req); err != nil || resp == nil || resp.IsError() {
		t.Fatalf("auth-url with this mount's callback: %v %v", resp, err)
	}
}

// A pending authorization found under a state's key but holding another
// state is not the state's: the callback is refused and nothing reaches Zoho.
func TestCallbackRefusesAPendingRecordOfAnotherState(t *testing.T) {
	e := newEnv(t)
	c := newConsentAccount(e, "crm")
	now := e.clock.Now()
	if err := putJSON(t0ctx(), e.storage, stateKey("forged"), &pendingAuth{Account: "crm", State: "other", ExpiresAt: now.Add(time.Hour), At: now}); err != nil {
		t.Fatal(err)
	}
	if status, page := e.callback(url.Values{"state": {"forged"}, "code": {"1000.x"}}); status != 400 || !strings.Contains(page, "unknown") {
		t.Fatalf("mismatched pending record: %d %s", status, page)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != 0 {
		t.Fatalf("a mismatched state reached Zoho: %d token requests", got)
	}
}

// Invalidation of an account's storage (another node wrote it) drops the
// cached account: the next read loads it from storage again.
func TestInvalidationReloadsTheAccount(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	e.creds("a", nil)
	before := e.storage.gets.Load()
	e.b.invalidate(t0ctx(), "config/a")
	e.creds("a", nil)
	if e.storage.gets.Load() == before {
		t.Fatal("a read after invalidation did not reload the account from storage")
	}
}

// routedZoho sends every call to the simulator's accounts server and records
// the accounts server each exchange was meant for.
type routedZoho struct {
	ZohoAPI
	mu   sync.Mutex
	to   string
	seen []string
}

func (r *routedZoho) Revoke(ctx context.Context, accountsURL, token string) error {
	return r.ZohoAPI.Revoke(ctx, r.to, token)
}

func (r *routedZoho) route(app zoho.App) zoho.App {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, app.AccountsURL)
	app.AccountsURL = r.to
	return app
}

func (r *routedZoho) ExchangeCode(ctx context.Context, app zoho.App, code, redirectURI, scopes string) (*zoho.Token, error) {
	return r.ZohoAPI.ExchangeCode(ctx, r.route(app), code, redirectURI, scopes)
}

func (r *routedZoho) Refresh(ctx context.Context, app zoho.App, refreshToken string) (*zoho.Token, error) {
	return r.ZohoAPI.Refresh(ctx, r.route(app), refreshToken)
}

// A callback naming another of Zoho's accounts servers than the account's
// (the user's data center) exchanges the code there and moves the account to
// that data center.
func TestCallbackFollowsAnotherZohoAccountsServer(t *testing.T) {
	rz := &routedZoho{ZohoAPI: zoho.NewClient(zoho.Options{})}
	e := newEnv(t, func(_ *zohosim.Config, o *Options) { o.Zoho = rz })
	rz.to = e.sim.AccountsURL("us")
	c := e.sim.RegisterClient(zohosim.Client{DC: "us", RedirectURIs: []string{callbackURI}})
	e.must(logical.CreateOperation, "config/crm", map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "data_center": "eu",
		"redirect_uri": callbackURI, "scopes": "ZohoCRM.modules.ALL",
	})
	authURL, err := url.Parse(e.must(logical.ReadOperation, "auth-url/crm", nil).Data["auth_url"].(string))
	if err != nil || authURL.Host != "accounts.zoho.eu" {
		t.Fatalf("auth URL %v %v", authURL, err)
	}
	// The browser reaches the simulator.
	back := consent(t, e.sim.AccountsURL("us")+"/oauth/v2/auth?"+authURL.RawQuery, zohosim.Accept)
	back.Set("accounts-server", "https://accounts.zoho.com")
	if status, page := e.callback(back); status != http.StatusOK {
		t.Fatalf("callback: %d %s", status, page)
	}
	rz.mu.Lock()
	seen := append([]string(nil), rz.seen...)
	rz.mu.Unlock()
	if len(seen) == 0 || seen[0] != "https://accounts.zoho.com" {
		t.Fatalf("exchange sent to %v (want https://accounts.zoho.com)", seen)
	}
	if d := e.must(logical.ReadOperation, "config/crm", nil).Data; d["data_center"] != "us" {
		t.Fatalf("data_center after the callback: %v (want us)", d["data_center"])
	}
}
