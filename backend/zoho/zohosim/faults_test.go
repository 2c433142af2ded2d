package zohosim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// try is do without failing on transport errors.
func (e *env) try(req *http.Request) (reply, error) {
	resp, err := e.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r, err
}

func (e *env) exchangeRequest(ctx context.Context, code string) *http.Request {
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {e.client.ID}, "client_secret": {e.client.Secret}, "code": {code}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+"/us/oauth/v2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestFaultAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault Fault
		check func(t *testing.T, r reply, err error)
	}{
		{"status", Fault{Kind: FaultStatus, Status: 502}, func(t *testing.T, r reply, err error) {
			if err != nil || r.status != 502 || !strings.Contains(r.raw, "502 Bad Gateway") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Fatalf("%v %d %q", err, r.status, r.raw)
			}
		}},
		{"status default", Fault{Kind: FaultStatus}, func(t *testing.T, r reply, err error) {
			if err != nil || r.status != 503 {
				t.Fatalf("%v %d", err, r.status)
			}
		}},
		{"reset", Fault{Kind: FaultReset}, func(t *testing.T, r reply, err error) {
			if err == nil {
				t.Fatalf("got an answer: %d %s", r.status, r.raw)
			}
		}},
		{"garbage", Fault{Kind: FaultGarbage}, func(t *testing.T, r reply, err error) {
			if err != nil || r.status != 200 || r.raw == "" || json.Valid([]byte(r.raw)) {
				t.Fatalf("%v %d %q", err, r.status, r.raw)
			}
		}},
		{"truncated", Fault{Kind: FaultTruncated}, func(t *testing.T, r reply, err error) {
			if err != nil || r.status != 200 || !strings.HasPrefix(r.raw, `{"access_token":`) || json.Valid([]byte(r.raw)) {
				t.Fatalf("%v %d %q", err, r.status, r.raw)
			}
		}},
		{"error", Fault{Kind: FaultError, ErrorCode: "invalid_client_secret"}, func(t *testing.T, r reply, err error) {
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, r, "invalid_client_secret")
		}},
		{"error default", Fault{Kind: FaultError}, func(t *testing.T, r reply, err error) {
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, r, "general_error")
		}},
		{"throttle", Fault{Kind: FaultThrottle}, func(t *testing.T, r reply, err error) {
			if err != nil {
				t.Fatal(err)
			}
			wantThrottle(t, r, http.StatusOK)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			f := tc.fault
			f.Endpoint, f.Times = "token", 1
			e.sim.AddFault(f)
			code := e.selfCode()
			r, err := e.try(e.exchangeRequest(context.Background(), code))
			tc.check(t, r, err)
			// The fault was used up and had no side effect: the code still works.
			if len(e.sim.Faults()) != 0 {
				t.Fatal("fault with Times 1 still installed")
			}
			if r := e.exchangeWith(e.client, code); r.str("refresh_token") == "" {
				t.Fatalf("after the fault: %s", r.raw)
			}
			got := e.sim.ClientCounters(e.client.ID)
			if got.TokenRequests != 2 || got.FaultsInjected != 1 || got.Exchanges != 1 {
				t.Fatalf("counters %+v", got)
			}
			wantFailures := int64(0)
			if f.Kind == FaultError || f.Kind == FaultThrottle {
				wantFailures = 1
			}
			if got.ExchangeFailures != wantFailures {
				t.Fatalf("exchange failures %d, want %d", got.ExchangeFailures, wantFailures)
			}
			if thr := map[bool]int64{true: 1}[f.Kind == FaultThrottle]; got.Throttled != thr {
				t.Fatalf("throttled %d, want %d", got.Throttled, thr)
			}
		})
	}
}

func TestThrottleFaultUsesConfiguredStatus(t *testing.T) {
	e := newEnv(t, Config{ThrottleHTTPStatus: 400})
	rt, _ := e.offline()
	e.sim.AddFault(Fault{Endpoint: "token", Kind: FaultThrottle})
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusBadRequest)
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusBadRequest) // Times 0: until cleared
	e.sim.ClearFaults()
	e.mustRefresh(rt)
	if got := e.sim.ClientCounters(e.client.ID); got.Throttled != 2 || got.RefreshFailures != 2 || got.FaultsInjected != 2 {
		t.Fatalf("counters %+v", got)
	}
}

func TestLatencyFault(t *testing.T) {
	e := newEnv(t, Config{})
	const delay = 50 * time.Millisecond
	e.sim.AddFault(Fault{Endpoint: "token", Kind: FaultLatency, Latency: delay, Times: 1})
	began := time.Now()
	r, err := e.try(e.exchangeRequest(context.Background(), e.selfCode()))
	if err != nil || r.str("access_token") == "" {
		t.Fatalf("after latency: %v %s", err, r.raw)
	}
	if took := time.Since(began); took < delay {
		t.Fatalf("answered after %s, want at least %s", took, delay)
	}

	// A client that gives up gets no answer, and nothing happens upstream.
	e.sim.AddFault(Fault{Endpoint: "token", Kind: FaultLatency, Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	code := e.selfCode()
	began = time.Now()
	if _, err := e.try(e.exchangeRequest(ctx, code)); err == nil {
		t.Fatal("answered despite an hour of latency")
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("gave up after %s", took)
	}
	e.sim.ClearFaults()
	if r := e.exchangeWith(e.client, code); r.str("access_token") == "" {
		t.Fatalf("the abandoned exchange consumed the code: %s", r.raw)
	}
	if got := e.sim.ClientCounters(e.client.ID); got.FaultsInjected != 2 || got.Exchanges != 2 || got.TokenRequests != 3 {
		t.Fatalf("counters %+v", got)
	}
}

func TestFaultFilters(t *testing.T) {
	e := newEnv(t, Config{})
	other := e.sim.RegisterClient(Client{DC: "us"})
	rt, at := e.offline()

	// Grant type: refreshes fail, exchanges do not.
	e.sim.AddFault(Fault{Endpoint: "token", GrantType: "refresh_token", Kind: FaultError, ErrorCode: "invalid_code"})
	wantError(t, e.refreshWith(e.client, rt), "invalid_code")
	if r := e.exchangeWith(e.client, e.selfCode()); r.str("access_token") == "" {
		t.Fatalf("exchange hit a refresh fault: %s", r.raw)
	}
	e.sim.ClearFaults()

	// Client: only that client's requests.
	e.sim.AddFault(Fault{Endpoint: "token", ClientID: other.ID, Kind: FaultStatus, Status: 500})
	e.mustRefresh(rt)
	code, _ := e.sim.SelfClientCode(other.ID, "", []string{"a.b.READ"}, 0)
	if r := e.exchangeWith(other, code); r.status != 500 {
		t.Fatalf("other client's exchange: %d", r.status)
	}
	e.sim.ClearFaults()

	// Endpoint: a revoke fault leaves the token endpoint alone.
	e.sim.AddFault(Fault{Endpoint: "revoke", Kind: FaultStatus, Status: 503})
	e.mustRefresh(rt)
	if r := e.revoke(at); r.status != 503 || !e.sim.AccessTokenValid(at) {
		t.Fatalf("revoke under fault: %d", r.status)
	}
	e.sim.ClearFaults()

	// "*" hits every endpoint: token, revoke, resource, auth.
	e.sim.AddFault(Fault{Endpoint: "*", Kind: FaultStatus, Status: 502, Times: 4})
	if r := e.refreshWith(e.client, rt); r.status != 502 {
		t.Fatalf("token: %d", r.status)
	}
	if r := e.revoke(at); r.status != 502 {
		t.Fatalf("revoke: %d", r.status)
	}
	if r := e.whoami("us", at); r.status != 502 {
		t.Fatalf("resource: %d", r.status)
	}
	if r := e.consent(e.client); r.status != 502 {
		t.Fatalf("auth: %d", r.status)
	}
	// Used up: everything answers normally again.
	if r := e.whoami("us", at); r.status != http.StatusOK {
		t.Fatalf("resource after the fault: %d", r.status)
	}
	if got := e.sim.ClientCounters(e.client.ID); got.FaultsInjected != 1+1+4 || got.AuthRequests != 1 || got.ResourceOK != 1 {
		t.Fatalf("counters %+v", got)
	}
	if got := e.sim.ClientCounters(other.ID); got.FaultsInjected != 1 || got.TokenRequests != 1 {
		t.Fatalf("other client's counters %+v", got)
	}
}

func TestFaultsOnOtherEndpoints(t *testing.T) {
	e := newEnv(t, Config{})
	rt, at := e.offline()
	e.sim.AddFault(Fault{Endpoint: "revoke", Kind: FaultReset, Times: 1})
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/us/oauth/v2/token/revoke?token="+url.QueryEscape(rt), nil)
	if _, err := e.try(req); err == nil {
		t.Fatal("revoke answered despite a reset fault")
	}
	if !e.sim.RefreshTokenValid(rt) {
		t.Fatal("a reset revoke revoked")
	}
	e.sim.AddFault(Fault{Endpoint: "resource", Kind: FaultGarbage, Times: 1})
	if r := e.whoami("us", at); r.status != 200 || json.Valid([]byte(r.raw)) {
		t.Fatalf("resource garbage: %d %q", r.status, r.raw)
	}
	e.sim.AddFault(Fault{Endpoint: "auth", Kind: FaultError, ErrorCode: "access_denied", Times: 1})
	if r := e.consent(e.client); r.status != 200 || r.str("error") != "access_denied" {
		t.Fatalf("auth error: %d %s", r.status, r.raw)
	}
	if got := e.sim.ClientCounters(e.client.ID); got.FaultsInjected != 3 || got.AuthRequests != 1 || got.RevokeInvalid+got.Revokes != 0 {
		t.Fatalf("counters %+v", got)
	}
}

func TestFaultTimesUnderConcurrency(t *testing.T) {
	e := newEnv(t, Config{})
	rt, _ := e.offline()
	e.sim.SetTokenRateLimit(1000, time.Minute)
	e.sim.AddFault(Fault{Endpoint: "token", Kind: FaultError, ErrorCode: "x", Times: 7})
	results := make(chan string, 40)
	for i := 0; i < 40; i++ {
		go func() {
			r, err := e.try(e.exchangeRequestRefresh(rt))
			if err != nil {
				results <- err.Error()
				return
			}
			results <- r.str("error")
		}()
	}
	faulted := 0
	for i := 0; i < 40; i++ {
		if <-results == "x" {
			faulted++
		}
	}
	if faulted != 7 {
		t.Fatalf("%d requests faulted, want exactly 7", faulted)
	}
}

func (e *env) exchangeRequestRefresh(rt string) *http.Request {
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {e.client.ID}, "client_secret": {e.client.Secret}, "refresh_token": {rt}}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/us/oauth/v2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestFaultJSONAndValidate(t *testing.T) {
	raw, err := json.Marshal(Fault{Endpoint: "token", Kind: FaultLatency, Latency: 2 * time.Second, Times: 3})
	if err != nil || !strings.Contains(string(raw), `"latency":"2s"`) || !strings.Contains(string(raw), `"times":3`) {
		t.Fatalf("%s %v", raw, err)
	}
	var f Fault
	if err := json.Unmarshal(raw, &f); err != nil || f.Latency != 2*time.Second || f.Kind != FaultLatency || f.Times != 3 || f.Endpoint != "token" {
		t.Fatalf("round trip %+v %v", f, err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"latency","latency":1500000000}`), &f); err != nil || f.Latency != 1500*time.Millisecond {
		t.Fatalf("numeric latency %+v %v", f, err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"latency","latency":"soon"}`), &f); err == nil {
		t.Fatal("bad duration accepted")
	}
	for _, bad := range []Fault{{Kind: "explode"}, {Kind: FaultStatus, Endpoint: "nowhere"}, {Kind: FaultStatus, Status: 42}, {Kind: FaultError, Times: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	for _, k := range faultKinds {
		if (Fault{Kind: k, Endpoint: "*"}).Validate() != nil {
			t.Errorf("kind %s rejected", k)
		}
	}
}

// A lost answer: Zoho carried the request out, the caller never hears.
func TestLostAnswerFault(t *testing.T) {
	e := newEnv(t, Config{})
	e.sim.AddFault(Fault{Endpoint: "token", Kind: FaultLostAnswer, Times: 1})
	if r, err := e.try(e.exchangeRequest(context.Background(), e.selfCode())); err == nil {
		t.Fatalf("got an answer: %d %s", r.status, r.raw)
	}
	if got := e.sim.ClientCounters(e.client.ID); got.Exchanges != 1 || len(e.sim.RefreshTokens(e.client.ID)) != 1 {
		t.Fatalf("the exchange whose answer was lost did not mint: %+v", got)
	}
	rt, _ := e.offline()
	e.sim.AddFault(Fault{Endpoint: "revoke", Kind: FaultLostAnswer, Latency: 10 * time.Millisecond, Times: 1})
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/us/oauth/v2/token/revoke?"+url.Values{"token": {rt}}.Encode(), nil)
	if r, err := e.try(req); err == nil {
		t.Fatalf("got an answer: %d %s", r.status, r.raw)
	}
	if e.sim.RefreshTokenValid(rt) {
		t.Fatal("the revocation whose answer was lost did not revoke")
	}
}
