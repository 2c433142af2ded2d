package zohosim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a simulator behind an httptest server with a fake clock and one
// registered client in "us".
type env struct {
	t      *testing.T
	sim    *Server
	ts     *httptest.Server
	clock  *clock
	client Client
	http   *http.Client // does not follow redirects
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clk := newClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	sim := New(cfg)
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(ts.Close)
	sim.SetBaseURL(ts.URL)
	e := &env{t: t, sim: sim, ts: ts, clock: clk}
	e.client = sim.RegisterClient(Client{DC: "us", RedirectURIs: []string{"https://app.example.com/cb"}})
	e.http = &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r reply) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r reply) num(key string) float64 {
	n, _ := r.body[key].(float64)
	return n
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// postForm POSTs form-encoded parameters to path.
func (e *env) postForm(path string, form url.Values) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

// postQuery POSTs with the parameters in the query string, as Zoho's examples do.
func (e *env) postQuery(path string, q url.Values) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path+"?"+q.Encode(), nil)
	return e.do(req)
}

func (e *env) get(path string, header ...string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.do(req)
}

func (e *env) sendJSON(method, path, body string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.do(req)
}

// selfCode mints a Self Client code for the env's client.
func (e *env) selfCode(scopes ...string) string {
	e.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"ZohoCRM.modules.ALL", "ZohoCRM.users.READ"}
	}
	code, err := e.sim.SelfClientCode(e.client.ID, "", scopes, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

func (e *env) exchangeWith(c Client, code string, extra ...string) reply {
	e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "code": {code}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return e.postForm("/"+c.DC+"/oauth/v2/token", form)
}

// offline exchanges a fresh Self Client code and returns the tokens.
func (e *env) offline() (refresh, access string) {
	e.t.Helper()
	r := e.exchangeWith(e.client, e.selfCode())
	if r.status != http.StatusOK || r.str("refresh_token") == "" || r.str("access_token") == "" {
		e.t.Fatalf("exchange: %d %s", r.status, r.raw)
	}
	return r.str("refresh_token"), r.str("access_token")
}

func (e *env) refreshWith(c Client, rt string) reply {
	e.t.Helper()
	return e.postForm("/"+c.DC+"/oauth/v2/token", url.Values{
		"grant_type": {"refresh_token"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "refresh_token": {rt},
	})
}

// mustRefresh refreshes and returns the new access token.
func (e *env) mustRefresh(rt string) string {
	e.t.Helper()
	r := e.refreshWith(e.client, rt)
	if r.status != http.StatusOK || r.str("access_token") == "" {
		e.t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	return r.str("access_token")
}

// revoke revokes at "us" the way Zoho documents: the token in the query
// string, no body.
func (e *env) revoke(token string) reply {
	e.t.Helper()
	return e.postQuery("/us/oauth/v2/token/revoke", url.Values{"token": {token}})
}

func (e *env) whoami(dc, token string) reply {
	e.t.Helper()
	return e.get("/"+dc+"/api/whoami", "Authorization", "Zoho-oauthtoken "+token)
}

var tokenShape = regexp.MustCompile(`^1000\.[0-9a-f]{32}\.[0-9a-f]{32}$`)

func wantError(t *testing.T, r reply, code string) {
	t.Helper()
	if r.status != http.StatusOK || r.str("error") != code || r.body["access_token"] != nil {
		t.Fatalf("want HTTP 200 {\"error\":%q}, got %d %s", code, r.status, r.raw)
	}
}

func wantCounters(t *testing.T, what string, got, want Counters) {
	t.Helper()
	if got != want {
		t.Fatalf("%s counters:\n got %+v\nwant %+v", what, got, want)
	}
}
