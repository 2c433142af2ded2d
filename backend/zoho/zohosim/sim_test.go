package zohosim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func start(t *testing.T, cfg Config) (*Server, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	s := New(cfg)
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

func post(t *testing.T, endpoint string, form url.Values) (int, map[string]interface{}) {
	t.Helper()
	resp, err := http.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]interface{}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body
}

func exchange(t *testing.T, s *Server, c Client, code string) (int, map[string]interface{}) {
	return post(t, s.AccountsURL(c.DC)+"/oauth/v2/token", url.Values{
		"grant_type": {"authorization_code"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "code": {code}})
}

func refresh(t *testing.T, s *Server, c Client, rt string) (int, map[string]interface{}) {
	return post(t, s.AccountsURL(c.DC)+"/oauth/v2/token", url.Values{
		"grant_type": {"refresh_token"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "refresh_token": {rt}})
}

func grant(t *testing.T, s *Server, c Client) (string, string) {
	t.Helper()
	code, err := s.SelfClientCode(c.ID, "", []string{"ZohoCRM.modules.ALL"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	status, body := exchange(t, s, c, code)
	if status != 200 || body["refresh_token"] == nil {
		t.Fatalf("exchange: %d %v", status, body)
	}
	return body["refresh_token"].(string), body["access_token"].(string)
}

func TestCodesAreSingleUseAndExpire(t *testing.T) {
	s, clk := start(t, Config{})
	c := s.RegisterClient(Client{})
	code, _ := s.SelfClientCode(c.ID, "", nil, time.Minute)
	if status, body := exchange(t, s, c, code); status != 200 || body["access_token"] == nil || body["expires_in"].(float64) != 3600 {
		t.Fatalf("first use: %d %v", status, body)
	}
	if status, body := exchange(t, s, c, code); status != 200 || body["error"] != "invalid_code" {
		t.Fatalf("second use must be invalid_code with HTTP 200: %d %v", status, body)
	}
	code, _ = s.SelfClientCode(c.ID, "", nil, time.Minute)
	clk.add(time.Minute)
	if _, body := exchange(t, s, c, code); body["error"] != "invalid_code" {
		t.Fatalf("expired code: %v", body)
	}
	if got := s.ClientCounters(c.ID); got.Exchanges != 1 || got.ExchangeFailures != 2 || got.TokenRequests != 3 {
		t.Fatalf("counters: %+v", got)
	}
}

func TestClientErrors(t *testing.T) {
	s, _ := start(t, Config{})
	c := s.RegisterClient(Client{DC: "eu"})
	code, _ := s.SelfClientCode(c.ID, "", nil, 0)
	wrongDC := c
	wrongDC.DC = "us"
	if _, body := exchange(t, s, wrongDC, code); body["error"] != "invalid_client" {
		t.Fatalf("wrong data center: %v", body)
	}
	bad := c
	bad.Secret = "nope"
	if _, body := exchange(t, s, bad, code); body["error"] != "invalid_client_secret" {
		t.Fatalf("wrong secret: %v", body)
	}
	status, body := post(t, s.AccountsURL("eu")+"/oauth/v2/token", url.Values{"grant_type": {"password"}, "client_id": {c.ID}, "client_secret": {c.Secret}})
	if status != 200 || body["error"] != "unsupported_grant_type" {
		t.Fatalf("grant type: %d %v", status, body)
	}
	if resp, _ := http.Get(s.AccountsURL("xx") + "/oauth/v2/auth"); resp.StatusCode != 404 {
		t.Fatalf("unknown data center served: %d", resp.StatusCode)
	}
}

func TestRefreshThrottleAndWindow(t *testing.T) {
	for _, status := range []int{200, 400} {
		s, clk := start(t, Config{ThrottleHTTPStatus: status})
		c := s.RegisterClient(Client{})
		rt, _ := grant(t, s, c) // the exchange's token counts
		for i := 0; i < 9; i++ {
			clk.add(time.Second)
			if _, body := refresh(t, s, c, rt); body["access_token"] == nil || body["refresh_token"] != nil {
				t.Fatalf("refresh %d: %v", i, body)
			}
		}
		got, body := refresh(t, s, c, rt)
		if got != status || body["error"] != "Access Denied" || body["status"] != "failure" {
			t.Fatalf("11th token in the window: %d %v", got, body)
		}
		clk.add(10*time.Minute - 9*time.Second)
		if _, body := refresh(t, s, c, rt); body["access_token"] == nil {
			t.Fatalf("window should have rolled: %v", body)
		}
		if n := s.ClientCounters(c.ID); n.Throttled != 1 || n.Refreshes != 10 {
			t.Fatalf("counters: %+v", n)
		}
	}
}

func TestLiveCapEvictsOldestSilently(t *testing.T) {
	s, _ := start(t, Config{LiveTokenCap: 3})
	c := s.RegisterClient(Client{})
	rt, first := grant(t, s, c)
	var last string
	for i := 0; i < 3; i++ {
		_, body := refresh(t, s, c, rt)
		last = body["access_token"].(string)
	}
	if s.AccessTokenValid(first) || !s.AccessTokenValid(last) || s.LiveAccessTokens(rt) != 3 {
		t.Fatal("the oldest live token should be evicted, silently")
	}
	if s.ClientCounters(c.ID).Evictions != 1 {
		t.Fatalf("evictions: %+v", s.ClientCounters(c.ID))
	}
}

func TestRefreshTokenCapDeletesOldest(t *testing.T) {
	s, _ := start(t, Config{})
	c := s.RegisterClient(Client{})
	firstRT, firstAT := grant(t, s, c)
	for i := 0; i < 19; i++ {
		grant(t, s, c)
	}
	if !s.RefreshTokenValid(firstRT) {
		t.Fatal("20 refresh tokens are allowed")
	}
	grant(t, s, c)
	if s.RefreshTokenValid(firstRT) || s.AccessTokenValid(firstAT) {
		t.Fatal("the 21st refresh token must delete the first and its access tokens")
	}
}

func TestLegacyMillis(t *testing.T) {
	s, _ := start(t, Config{LegacyMillis: true})
	c := s.RegisterClient(Client{})
	code, _ := s.SelfClientCode(c.ID, "", nil, 0)
	_, body := exchange(t, s, c, code)
	if body["expires_in"].(float64) != 3600000 || body["expires_in_sec"].(float64) != 3600 {
		t.Fatalf("legacy lifetimes: %v", body)
	}
}

func TestRevokeAndResource(t *testing.T) {
	s, _ := start(t, Config{})
	c := s.RegisterClient(Client{})
	rt, at := grant(t, s, c)
	_, body := refresh(t, s, c, rt)
	at2 := body["access_token"].(string)
	whoami := func(tok string) int {
		req, _ := http.NewRequest("GET", s.APIDomain("us")+"/whoami", nil)
		req.Header.Set("Authorization", "Zoho-oauthtoken "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if whoami(at) != 200 || whoami("1000.bogus.bogus") != 401 {
		t.Fatal("protected resource")
	}
	revoke := s.AccountsURL("us") + "/oauth/v2/token/revoke"
	if status, body := post(t, revoke, url.Values{"token": {at}}); status != 200 || body["status"] != "success" {
		t.Fatalf("revoke access: %d %v", status, body)
	}
	if whoami(at) != 401 || whoami(at2) != 200 {
		t.Fatal("revoking one access token must leave the other")
	}
	if status, _ := post(t, revoke, url.Values{"token": {at}}); status != 400 {
		t.Fatalf("revoking a dead token must be 400, got %d", status)
	}
	if status, _ := post(t, revoke+"?refresh_token="+rt, nil); status != 200 {
		t.Fatalf("revoke refresh token via query: %d", status)
	}
	if whoami(at2) != 401 || s.RefreshTokenValid(rt) {
		t.Fatal("revoking the refresh token must kill its access tokens")
	}
	if _, body := refresh(t, s, c, rt); body["error"] != "invalid_code" {
		t.Fatalf("revoked refresh token: %v", body)
	}
	n := s.ClientCounters(c.ID)
	if n.RevokedAccess != 1 || n.RevokedRefresh != 1 || n.RevokeInvalid != 1 || n.ResourceOK != 2 || n.ResourceDenied != 2 {
		t.Fatalf("counters: %+v", n)
	}
}

func TestConsentRedirect(t *testing.T) {
	s, clk := start(t, Config{})
	c := s.RegisterClient(Client{DC: "eu", RedirectURIs: []string{"https://app.example.com/cb"}})
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	auth := func(q url.Values) *http.Response {
		resp, err := hc.Get(s.AccountsURL("eu") + "/oauth/v2/auth?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	q := url.Values{"client_id": {c.ID}, "response_type": {"code"}, "redirect_uri": {"https://app.example.com/cb"}, "scope": {"a.b.READ"}, "access_type": {"offline"}, "state": {"xyz"}}
	resp := auth(q)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	lq := loc.Query()
	if resp.StatusCode != 302 || lq.Get("state") != "xyz" || lq.Get("location") != "eu" || lq.Get("accounts-server") != s.AccountsURL("eu") || lq.Get("code") == "" {
		t.Fatalf("redirect: %d %s", resp.StatusCode, loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "code": {lq.Get("code")}, "redirect_uri": {"https://other.example.com/"}}
	if _, body := post(t, s.AccountsURL("eu")+"/oauth/v2/token", form); body["error"] != "invalid_redirect_uri" {
		t.Fatalf("redirect mismatch at exchange: %v", body)
	}
	deny := url.Values{}
	for k, v := range q {
		deny[k] = v
	}
	deny.Set("sim_deny", "1")
	loc, _ = url.Parse(auth(deny).Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" {
		t.Fatalf("deny: %s", loc)
	}
	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("redirect_uri", "https://evil.example.com/")
	if resp := auth(bad); resp.StatusCode != 200 || resp.Header.Get("Location") != "" {
		t.Fatal("an unregistered redirect URI must not be redirected to")
	}
	// Grant-code throttle: 10 per client per 10 minutes.
	for i := 0; i < 10; i++ {
		auth(q)
	}
	loc, _ = url.Parse(auth(q).Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" {
		t.Fatalf("12th code in 10 minutes: %s", loc)
	}
	clk.add(10 * time.Minute)
	loc, _ = url.Parse(auth(q).Header.Get("Location"))
	if loc.Query().Get("code") == "" {
		t.Fatal("code throttle should clear")
	}
}

func TestFaults(t *testing.T) {
	s, _ := start(t, Config{})
	c := s.RegisterClient(Client{})
	rt, _ := grant(t, s, c)
	endpoint := s.AccountsURL("us") + "/oauth/v2/token"
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "refresh_token": {rt}}
	s.AddFault(Fault{Endpoint: "token", Kind: FaultStatus, Status: 503, Times: 1})
	if status, _ := post(t, endpoint, form); status != 503 {
		t.Fatalf("status fault: %d", status)
	}
	s.AddFault(Fault{Endpoint: "token", Kind: FaultError, ErrorCode: "invalid_client", Times: 1})
	if _, body := post(t, endpoint, form); body["error"] != "invalid_client" {
		t.Fatalf("error fault: %v", body)
	}
	s.AddFault(Fault{Endpoint: "token", Kind: FaultThrottle, Times: 1})
	if _, body := post(t, endpoint, form); body["error"] != "Access Denied" {
		t.Fatalf("throttle fault: %v", body)
	}
	for _, kind := range []FaultKind{FaultGarbage, FaultTruncated} {
		s.AddFault(Fault{Endpoint: "token", Kind: kind, Times: 1})
		resp, err := http.PostForm(endpoint, form)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if json.Valid(raw) {
			t.Fatalf("%s fault answered valid JSON", kind)
		}
	}
	s.AddFault(Fault{Endpoint: "token", Kind: FaultReset, Times: 1})
	if _, err := http.PostForm(endpoint, form); err == nil {
		t.Fatal("reset fault should break the connection")
	}
	s.AddFault(Fault{Endpoint: "token", Kind: FaultLatency, Latency: 50 * time.Millisecond, Times: 1})
	began := time.Now()
	if _, body := post(t, endpoint, form); body["access_token"] == nil || time.Since(began) < 50*time.Millisecond {
		t.Fatalf("latency fault: %v after %s", body, time.Since(began))
	}
	if n := s.ClientCounters(c.ID); n.FaultsInjected != 7 || n.Refreshes != 1 {
		t.Fatalf("counters: %+v", n)
	}
	s.AddFault(Fault{Endpoint: "*", Kind: FaultStatus, Status: 502})
	if status, _ := post(t, endpoint, form); status != 502 {
		t.Fatal("persistent fault")
	}
	s.ClearFaults()
	if _, body := post(t, endpoint, form); body["access_token"] == nil {
		t.Fatal("faults not cleared")
	}
}

func TestControlAPI(t *testing.T) {
	s, _ := start(t, Config{})
	base := strings.TrimSuffix(s.AccountsURL("us"), "/us")
	resp, err := http.Post(base+"/sim/clients", "application/json", strings.NewReader(`{"dc":"eu"}`))
	if err != nil {
		t.Fatal(err)
	}
	var c Client
	_ = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if !strings.HasPrefix(c.ID, "1000.") || len(c.ID) != 35 || c.DC != "eu" || len(c.Secret) != 42 {
		t.Fatalf("client: %+v", c)
	}
	resp, _ = http.Post(base+"/sim/self-client", "application/json", strings.NewReader(`{"client_id":"`+c.ID+`","scopes":"a.b.ALL,c.d.READ"}`))
	var sc struct {
		Code      string `json:"code"`
		ExpiresIn int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&sc)
	resp.Body.Close()
	if sc.Code == "" || sc.ExpiresIn != 180 {
		t.Fatalf("self client: %+v", sc)
	}
	if _, body := exchange(t, s, c, sc.Code); body["refresh_token"] == nil {
		t.Fatalf("exchange of a control-API code: %v", body)
	}
	resp, _ = http.Get(base + "/sim/counters?client_id=" + url.QueryEscape(c.ID))
	var n Counters
	_ = json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	if n.Exchanges != 1 {
		t.Fatalf("counters over HTTP: %+v", n)
	}
	resp, _ = http.Post(base+"/sim/faults", "application/json", strings.NewReader(`{"endpoint":"token","kind":"status","status":500,"times":1,"latency":"1ms"}`))
	resp.Body.Close()
	if status, _ := post(t, s.AccountsURL("eu")+"/oauth/v2/token", url.Values{}); status != 500 {
		t.Fatalf("fault via control API: %d", status)
	}
	if _, err := New(Config{}).Start("0.0.0.0:0"); err == nil {
		t.Fatal("non-loopback listen must be refused")
	}
}
