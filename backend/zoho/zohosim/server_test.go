package zohosim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStartLoopbackOnly(t *testing.T) {
	sim := New(Config{})
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.1.2.3:0", "example.com:80", "[::]:0", "nonsense"} {
		if base, err := sim.Start(addr); err == nil {
			sim.Close()
			t.Fatalf("Start(%q) = %s, want a refusal", addr, base)
		}
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if !strings.HasPrefix(base, "http://127.0.0.1:") || sim.AccountsURL("eu") != base+"/eu" || sim.APIDomain("eu") != base+"/eu/api" {
		t.Fatalf("base %s, accounts %s", base, sim.AccountsURL("eu"))
	}
	if _, err := sim.Start("127.0.0.1:0"); err == nil {
		t.Fatal("started twice")
	}
	resp, err := http.Get(base + "/sim/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health over loopback: %v", err)
	}
	resp.Body.Close()
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sim.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/sim/health"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after Close")
	}
}

// TestConcurrentUse hammers one refresh token's access token with 1000
// concurrent readers while refreshes, revocations, evictions, faults and
// knob changes happen on other tokens (run with -race).
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, Config{TokenRateLimit: 1 << 20, RefreshTokenCap: 1000})
	e.http.Transport = &http.Transport{MaxIdleConnsPerHost: 1000}
	shared, sharedAT := e.offline()
	other, _ := e.offline()

	const readers = 1000
	var wg sync.WaitGroup
	var failures atomic.Int64
	start := make(chan struct{})
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if !e.sim.AccessTokenValid(sharedAT) || !e.sim.RefreshTokenValid(shared) {
				failures.Add(1)
			}
			req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/us/api/whoami", nil)
			req.Header.Set("Authorization", "Zoho-oauthtoken "+sharedAT)
			r, err := e.try(req)
			if err != nil || r.status != http.StatusOK {
				if failures.Add(1) < 3 {
					t.Logf("reader: %v %d %s", err, r.status, r.raw)
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for i := 0; i < 20; i++ {
		writers.Add(1)
		go func(i int) {
			defer writers.Done()
			<-start
			for j := 0; j < 10; j++ {
				r, err := e.try(e.exchangeRequestRefresh(other))
				if err != nil || r.str("access_token") == "" {
					if failures.Add(1) < 3 {
						t.Logf("writer: %v %d %s", err, r.status, r.raw)
					}
				}
				rt, at := e.offline()
				switch j % 4 {
				case 0:
					e.revoke(at)
				case 1:
					e.sim.EvictOldestAccessToken(rt)
				case 2:
					e.sim.RevokeRefreshToken(rt)
				case 3:
					e.sim.SetLegacyMillis(i%2 == 0)
					e.sim.AddFault(Fault{Endpoint: "revoke", ClientID: "1000.NOBODY", Kind: FaultStatus, Times: 1})
					_ = e.sim.Counters()
					_ = e.sim.LiveAccessTokens(other)
				}
			}
		}(i)
	}
	close(start)
	wg.Wait()
	writers.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d failures under concurrency", n)
	}
	got := e.sim.ClientCounters(e.client.ID)
	if got.ResourceOK != readers || got.Refreshes != 200 || got.Exchanges != 2+200 {
		t.Fatalf("counters %+v", got)
	}
}

// serve runs one request in process, without a network.
func serve(h http.Handler, method, target string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestMemoryStaysBounded: expired codes and tokens are collected lazily, so
// a long run's state does not grow with the number of tokens ever minted.
func TestMemoryStaysBounded(t *testing.T) {
	clk := newClock()
	sim := New(Config{Now: clk.Now, AccessTokenTTL: time.Minute, RefreshTokenCap: 1})
	sim.SetBaseURL("http://127.0.0.1:1")
	h := sim.Handler()
	c := sim.RegisterClient(Client{DC: "us", RedirectURIs: []string{"https://a.example/cb"}})
	const perRound, rounds = 1000, 8
	for round := 0; round < rounds; round++ {
		for i := 0; i < perRound; i++ {
			code, _ := sim.SelfClientCode(c.ID, fmt.Sprintf("u%d@example.com", i), []string{"a"}, 0)
			if i%2 == 0 {
				continue // left to expire unused
			}
			w := serve(h, http.MethodPost, "/us/oauth/v2/token", url.Values{
				"grant_type": {"authorization_code"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "code": {code},
			})
			if !strings.Contains(w.Body.String(), "access_token") {
				t.Fatalf("exchange: %s", w.Body.String())
			}
		}
		// Consent codes feed a per-client grant-code log; consent pages
		// keep a request until answered or expired.
		cc := sim.RegisterClient(Client{DC: "us", RedirectURIs: []string{"https://a.example/cb"}})
		authURL := "/us/oauth/v2/auth?response_type=code&scope=a&client_id=" + url.QueryEscape(cc.ID) + "&redirect_uri=" + url.QueryEscape("https://a.example/cb")
		for i := 0; i < perRound/4; i++ {
			if w := serve(h, http.MethodGet, authURL, nil); w.Code != http.StatusOK {
				t.Fatalf("consent page: %d", w.Code) // left unanswered
			}
		}
		_, id, ok := consentForm(serve(h, http.MethodGet, authURL, nil).Body.String())
		if !ok {
			t.Fatal("no consent form")
		}
		w := serve(h, http.MethodPost, consentPath("us"), url.Values{FieldConsentID: {id}, FieldUser: {"a@example.com"}, FieldDecision: {"accept"}})
		if w.Code != http.StatusFound || !strings.Contains(w.Header().Get("Location"), "code=") {
			t.Fatalf("consent: %d %q", w.Code, w.Header().Get("Location"))
		}
		clk.Advance(11 * time.Minute)
	}
	sim.mu.Lock()
	access, codes, codeLogs, consents := len(sim.st.access), len(sim.st.codes), len(sim.st.codeLog), len(sim.st.consents)
	sim.mu.Unlock()
	// Access tokens, codes, grant-code logs and unanswered consent requests
	// of past rounds are collected.
	if access > 2*perRound || codes > 2*perRound || codeLogs > 2 || consents > perRound/2 {
		t.Fatalf("state grew: %d access tokens, %d codes, %d grant-code logs, %d consent requests after %d rounds",
			access, codes, codeLogs, consents, rounds)
	}
	if got := len(sim.RefreshTokens(c.ID)); got != perRound/2 {
		t.Fatalf("%d refresh tokens, want one per user with a cap of 1 (%d)", got, perRound/2)
	}
}

func TestGravesBounded(t *testing.T) {
	sim := New(Config{})
	c := sim.RegisterClient(Client{})
	sim.mu.Lock()
	for i := 0; i < maxGraves+100; i++ {
		sim.buryLocked(fmt.Sprint(i), c.ID)
	}
	n, q := len(sim.st.graves), len(sim.st.graveQ)
	_, oldest := sim.st.graves["0"]
	newest := sim.st.graves[fmt.Sprint(maxGraves+99)]
	sim.mu.Unlock()
	if n != maxGraves || q != maxGraves || oldest || newest != c.ID {
		t.Fatalf("graves %d (queue %d), oldest kept %v", n, q, oldest)
	}
}
