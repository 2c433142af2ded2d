package zohosim

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var userCodeShape = regexp.MustCompile(`^[` + userCodeAlphabet + `]{4}-[` + userCodeAlphabet + `]{4}$`)

// deviceCodeWith sends an initiation request for c at dc; extra are
// name/value pairs that replace the defaults (an empty value drops one).
func (e *env) deviceCodeWith(c Client, dc string, extra ...string) reply {
	e.t.Helper()
	form := url.Values{
		"client_id": {c.ID}, "grant_type": {"device_request"}, "scope": {"ZohoCRM.modules.ALL,ZohoCRM.users.READ"},
		"access_type": {"offline"}, "prompt": {"consent"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			form.Del(extra[i])
		} else {
			form.Set(extra[i], extra[i+1])
		}
	}
	return e.postForm("/"+dc+"/oauth/v3/device/code", form)
}

// startDevice initiates a device authorization for the env's client and
// returns its user code and device code.
func (e *env) startDevice(extra ...string) (userCode, deviceCode string) {
	e.t.Helper()
	r := e.deviceCodeWith(e.client, e.client.DC, extra...)
	if r.status != http.StatusOK || r.str("user_code") == "" || r.str("device_code") == "" {
		e.t.Fatalf("device code: %d %s", r.status, r.raw)
	}
	return r.str("user_code"), r.str("device_code")
}

func (e *env) pollWith(c Client, dc, deviceCode string, extra ...string) reply {
	e.t.Helper()
	form := url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}, "grant_type": {"device_token"}, "code": {deviceCode}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			form.Del(extra[i])
		} else {
			form.Set(extra[i], extra[i+1])
		}
	}
	return e.postForm("/"+dc+"/oauth/v3/device/token", form)
}

func (e *env) poll(deviceCode string) reply {
	e.t.Helper()
	return e.pollWith(e.client, e.client.DC, deviceCode)
}

func wantTokenAnswer(t *testing.T, r reply, refresh bool) {
	t.Helper()
	if r.status != http.StatusOK || !tokenShape.MatchString(r.str("access_token")) || r.body["error"] != nil {
		t.Fatalf("want a token answer, got %d %s", r.status, r.raw)
	}
	if got := r.str("refresh_token") != ""; got != refresh {
		t.Fatalf("refresh token present = %v, want %v: %s", got, refresh, r.raw)
	}
	if refresh && !tokenShape.MatchString(r.str("refresh_token")) {
		t.Fatalf("refresh token shape: %s", r.raw)
	}
	if r.str("token_type") != "Bearer" || r.num("expires_in") != 3600 {
		t.Fatalf("token_type/expires_in: %s", r.raw)
	}
}

func TestDeviceCodeAnswer(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.deviceCodeWith(e.client, "us")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if !userCodeShape.MatchString(r.str("user_code")) {
		t.Errorf("user_code %q", r.str("user_code"))
	}
	if !tokenShape.MatchString(r.str("device_code")) {
		t.Errorf("device_code %q", r.str("device_code"))
	}
	if r.str("verification_url") != e.ts.URL+"/us/oauth/v3/device" {
		t.Errorf("verification_url %q", r.str("verification_url"))
	}
	if r.num("expires_in") != 300 || r.num("interval") != 30 {
		t.Errorf("expires_in/interval: %s", r.raw)
	}
	if got := e.sim.DeviceUserCodes(e.client.ID); len(got) != 1 || got[0] != r.str("user_code") {
		t.Errorf("pending user codes %v", got)
	}
	other := e.deviceCodeWith(e.client, "us")
	if other.str("user_code") == r.str("user_code") || other.str("device_code") == r.str("device_code") {
		t.Error("codes repeat")
	}
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{DeviceCodeRequests: 2, DeviceCodesIssued: 2})

	// Configured lifetime and interval; the interval is announced in whole
	// seconds, rounded up.
	e.sim.SetDeviceCodeTTL(90 * time.Second)
	e.sim.SetDevicePollInterval(1500 * time.Millisecond)
	if r := e.deviceCodeWith(e.client, "us"); r.num("expires_in") != 90 || r.num("interval") != 2 {
		t.Errorf("configured: %s", r.raw)
	}
	// Zoho's older initiation page documents milliseconds.
	e.sim.SetLegacyMillis(true)
	if r := e.deviceCodeWith(e.client, "us"); r.num("expires_in") != 90_000 || r.num("interval") != 2000 {
		t.Errorf("legacy millis: %s", r.raw)
	}
	// Parameters in the query string, as Zoho's examples show them.
	q := url.Values{"client_id": {e.client.ID}, "grant_type": {"device_request"}, "scope": {"AaaServer.profile.READ"}}
	if r := e.postQuery("/us/oauth/v3/device/code", q); !userCodeShape.MatchString(r.str("user_code")) {
		t.Errorf("query-string initiation: %s", r.raw)
	}
}

func TestDeviceCodeStrictForms(t *testing.T) {
	e := newEnv(t, Config{})
	unknown := Client{ID: "1000.UNKNOWN", DC: "us"}
	for _, tc := range []struct {
		name   string
		client Client
		dc     string
		extra  []string
		code   string
	}{
		{"missing grant_type", e.client, "us", []string{"grant_type", ""}, "unsupported_grant_type"},
		{"token grant_type", e.client, "us", []string{"grant_type", "device_token"}, "unsupported_grant_type"},
		{"rfc grant_type", e.client, "us", []string{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"}, "unsupported_grant_type"},
		{"unknown client", unknown, "us", nil, "invalid_client"},
		{"client of another data center", e.client, "eu", nil, "invalid_client"},
		{"no scope", e.client, "us", []string{"scope", ""}, "invalid_scope"},
		{"blank scope", e.client, "us", []string{"scope", " , "}, "invalid_scope"},
		{"access_type", e.client, "us", []string{"access_type", "forever"}, "invalid_request"},
		{"access_type case", e.client, "us", []string{"access_type", "OFFLINE"}, "invalid_request"},
		{"prompt", e.client, "us", []string{"prompt", "login"}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.deviceCodeWith(tc.client, tc.dc, tc.extra...), tc.code)
		})
	}
	if got := e.sim.DeviceUserCodes(""); len(got) != 0 {
		t.Fatalf("rejected requests issued codes: %v", got)
	}
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{DeviceCodeRequests: 9})
	wantCounters(t, "unknown clients", e.sim.ClientCounters(""), Counters{DeviceCodeRequests: 1})
	// GET is not the initiation request.
	if r := e.get("/us/oauth/v3/device/code?client_id=" + url.QueryEscape(e.client.ID)); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d %s", r.status, r.raw)
	}
}

// An announced interval shorter than the enforced one: Zoho's "one poll per
// 30 seconds" holds whatever the answer says.
func TestDeviceAnnouncedIntervalIsNotEnforced(t *testing.T) {
	e := newEnv(t, Config{DeviceAnnouncedPollInterval: 5 * time.Second})
	if r := e.deviceCodeWith(e.client, "us"); r.num("interval") != 5 {
		t.Fatalf("announced: %s", r.raw)
	}
	_, device := e.startDevice()
	wantError(t, e.poll(device), "authorization_pending")
	e.clock.Advance(5 * time.Second)
	wantError(t, e.poll(device), "slow_down")
	e.clock.Advance(30 * time.Second)
	wantError(t, e.poll(device), "authorization_pending")
	e.sim.SetDeviceAnnouncedPollInterval(0)
	if r := e.deviceCodeWith(e.client, "us"); r.num("interval") != 30 {
		t.Fatalf("announced once the knob is off: %s", r.raw)
	}
}

func TestDevicePollPendingSlowDownApprove(t *testing.T) {
	e := newEnv(t, Config{})
	user, device := e.startDevice()
	wantError(t, e.poll(device), "authorization_pending")
	wantError(t, e.poll(device), "slow_down")
	// Every poll counts: the slowed one restarted the interval.
	e.clock.Advance(30*time.Second - time.Nanosecond)
	wantError(t, e.poll(device), "slow_down")
	e.clock.Advance(30 * time.Second)
	wantError(t, e.poll(device), "authorization_pending")

	if err := e.sim.ApproveDevice(strings.ToLower(strings.ReplaceAll(user, "-", " ")), "bo@example.com", ""); err != nil {
		t.Fatalf("approve with the code typed loosely: %v", err)
	}
	if got := e.sim.DeviceUserCodes(e.client.ID); len(got) != 0 {
		t.Fatalf("approved code still pending: %v", got)
	}
	// Approval does not lift the pacing.
	wantError(t, e.poll(device), "slow_down")
	e.clock.Advance(30 * time.Second)
	r := e.poll(device)
	wantTokenAnswer(t, r, true)
	if r.str("api_domain") != e.sim.APIDomain("us") {
		t.Fatalf("api_domain %q", r.str("api_domain"))
	}
	if who := e.whoami("us", r.str("access_token")); who.str("Email") != "bo@example.com" || who.str("scope") != "ZohoCRM.modules.ALL,ZohoCRM.users.READ" {
		t.Fatalf("whoami: %s", who.raw)
	}
	if !e.sim.RefreshTokenValid(r.str("refresh_token")) || e.mustRefresh(r.str("refresh_token")) == "" {
		t.Fatal("refresh token not usable")
	}
	// Single use: the spent device code is unknown from now on.
	e.clock.Advance(30 * time.Second)
	wantError(t, e.poll(device), "invalid_code")
	if err := e.sim.ApproveDevice(user, "", ""); !errors.Is(err, ErrUnknownUserCode) {
		t.Fatalf("approve a spent code: %v", err)
	}
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{
		DeviceCodeRequests: 1, DeviceCodesIssued: 1, DevicePolls: 7, DeviceSlowDowns: 3, DeviceGrants: 1,
		TokenRequests: 1, Refreshes: 1, ResourceOK: 1,
	})
}

func TestDevicePollStrictForms(t *testing.T) {
	e := newEnv(t, Config{})
	_, device := e.startDevice()
	stranger := e.sim.RegisterClient(Client{DC: "us"})
	wrongSecret := e.client
	wrongSecret.Secret = "0000"
	wantError(t, e.pollWith(wrongSecret, "us", device), "invalid_client_secret")
	wantError(t, e.pollWith(e.client, "us", device, "client_secret", ""), "invalid_client_secret")
	wantError(t, e.pollWith(Client{ID: "1000.UNKNOWN", Secret: e.client.Secret}, "us", device), "invalid_client")
	wantError(t, e.pollWith(e.client, "eu", device), "invalid_client")
	wantError(t, e.pollWith(e.client, "us", device, "grant_type", "authorization_code"), "unsupported_grant_type")
	wantError(t, e.pollWith(e.client, "us", device, "grant_type", ""), "unsupported_grant_type")
	wantError(t, e.pollWith(e.client, "us", device, "grant_type", "urn:ietf:params:oauth:grant-type:device_code"), "unsupported_grant_type")
	// RFC 8628 names the parameter device_code; Zoho names it code.
	wantError(t, e.pollWith(e.client, "us", "", "code", "", "device_code", device), "invalid_code")
	wantError(t, e.pollWith(stranger, "us", device), "invalid_code")
	wantError(t, e.pollWith(e.client, "us", "1000.00000000000000000000000000000000.00000000000000000000000000000000"), "invalid_code")
	// The device code is not a grant code.
	wantError(t, e.exchangeWith(e.client, device), "invalid_code")
	// None of these was a poll of the code: the next one is not slowed down.
	wantError(t, e.poll(device), "authorization_pending")
	// Parameters in the query string, as Zoho's examples show them.
	e.clock.Advance(30 * time.Second)
	q := url.Values{"client_id": {e.client.ID}, "client_secret": {e.client.Secret}, "grant_type": {"device_token"}, "code": {device}}
	wantError(t, e.postQuery("/us/oauth/v3/device/token", q), "authorization_pending")
}

func TestDeviceDenied(t *testing.T) {
	e := newEnv(t, Config{})
	user, device := e.startDevice()
	if err := e.sim.DenyDevice(user); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.poll(device), "access_denied")
	e.clock.Advance(30 * time.Second)
	wantError(t, e.poll(device), "access_denied")
	if err := e.sim.ApproveDevice(user, "", ""); !errors.Is(err, ErrDeviceDecided) {
		t.Fatalf("approve after deny: %v", err)
	}
	if err := e.sim.DenyDevice("BBBB-BBBB"); !errors.Is(err, ErrUnknownUserCode) {
		t.Fatalf("deny an unknown code: %v", err)
	}
	if got := e.sim.RefreshTokens(e.client.ID); len(got) != 0 {
		t.Fatalf("refresh tokens after a denial: %v", got)
	}
}

func TestDeviceExpired(t *testing.T) {
	e := newEnv(t, Config{DeviceCodeTTL: 2 * time.Minute})
	user, device := e.startDevice()
	approvedUser, approved := e.startDevice()
	if err := e.sim.ApproveDevice(approvedUser, "", ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2*time.Minute - time.Second)
	wantError(t, e.poll(device), "authorization_pending")
	e.clock.Advance(time.Second)
	wantError(t, e.poll(device), "expired")
	// Approved but never polled within its lifetime: expired as well.
	wantError(t, e.poll(approved), "expired")
	if err := e.sim.ApproveDevice(user, "", ""); !errors.Is(err, ErrDeviceCodeExpired) {
		t.Fatalf("approve an expired code: %v", err)
	}
	if got := e.sim.DeviceUserCodes(""); len(got) != 0 {
		t.Fatalf("expired codes pending: %v", got)
	}
}

func TestDeviceOtherDataCenter(t *testing.T) {
	e := newEnv(t, Config{})
	multi := e.sim.RegisterClient(Client{DC: "us", MultiDC: []string{"EU"}})
	if got, _ := e.sim.LookupClient(multi.ID); len(got.MultiDC) != 1 || got.MultiDC[0] != "eu" {
		t.Fatalf("multi_dc %v", got.MultiDC)
	}
	e.client = multi
	user, device := e.startDevice()
	// Unknown at the user's data center until a user there approves.
	wantError(t, e.pollWith(multi, "eu", device), "invalid_code")
	if err := e.sim.ApproveDevice(user, "eve@example.eu", "eu"); err != nil {
		t.Fatal(err)
	}
	r := e.pollWith(multi, "us", device)
	if r.status != http.StatusOK || r.str("error") != "other_dc" || r.str("user_location") != "eu" || r.body["access_token"] != nil {
		t.Fatalf("want other_dc with user_location eu, got %d %s", r.status, r.raw)
	}
	// Pacing is per data center: the first poll at eu is not slowed down.
	tok := e.pollWith(multi, "eu", device)
	wantTokenAnswer(t, tok, true)
	if tok.str("api_domain") != e.sim.APIDomain("eu") {
		t.Fatalf("api_domain %q", tok.str("api_domain"))
	}
	if who := e.whoami("eu", tok.str("access_token")); who.str("Email") != "eve@example.eu" {
		t.Fatalf("whoami at eu: %s", who.raw)
	}
	if who := e.whoami("us", tok.str("access_token")); who.status != http.StatusUnauthorized {
		t.Fatalf("eu token accepted at us: %s", who.raw)
	}
	// The refresh token lives at eu, where the client is enabled.
	euClient := multi
	euClient.DC = "eu"
	if r := e.refreshWith(euClient, tok.str("refresh_token")); r.str("access_token") == "" {
		t.Fatalf("refresh at eu: %s", r.raw)
	}
	wantError(t, e.refreshWith(multi, tok.str("refresh_token")), "invalid_code")
	// Spent at both data centers.
	e.clock.Advance(30 * time.Second)
	wantError(t, e.pollWith(multi, "us", device), "invalid_code")
	wantError(t, e.pollWith(multi, "eu", device), "invalid_code")

	// A client without Multi DC support for the user's data center: the
	// approval is refused and the code stays pending.
	e.client = e.sim.RegisterClient(Client{DC: "us"})
	user, device = e.startDevice()
	if err := e.sim.ApproveDevice(user, "", "eu"); err == nil || !strings.Contains(err.Error(), "Multi DC") {
		t.Fatalf("approve in a data center the client lacks: %v", err)
	}
	if err := e.sim.ApproveDevice(user, "", "mars"); err == nil || !strings.Contains(err.Error(), "unknown data center") {
		t.Fatalf("approve in an unknown data center: %v", err)
	}
	wantError(t, e.poll(device), "authorization_pending")
}

func TestDeviceRefreshTokenRules(t *testing.T) {
	e := newEnv(t, Config{RefreshTokenCap: 2})
	grant := func(extra ...string) reply {
		t.Helper()
		user, device := e.startDevice(extra...)
		if err := e.sim.ApproveDevice(user, "", ""); err != nil {
			t.Fatal(err)
		}
		return e.poll(device)
	}
	wantTokenAnswer(t, grant("access_type", ""), false)       // online by default
	wantTokenAnswer(t, grant("access_type", "online"), false) // online
	// Offline without prompt=consent: a refresh token the first time only.
	first := grant("prompt", "")
	wantTokenAnswer(t, first, true)
	wantTokenAnswer(t, grant("prompt", ""), false)
	// With prompt=consent every time, counted against the user's cap (2).
	second := grant()
	wantTokenAnswer(t, second, true)
	third := grant()
	wantTokenAnswer(t, third, true)
	if e.sim.RefreshTokenValid(first.str("refresh_token")) || e.sim.AccessTokenValid(first.str("access_token")) {
		t.Fatal("the oldest refresh token survived the cap")
	}
	if got := e.sim.RefreshTokens(e.client.ID); len(got) != 2 || got[0] != second.str("refresh_token") || got[1] != third.str("refresh_token") {
		t.Fatalf("refresh tokens %v", got)
	}
	if c := e.sim.ClientCounters(e.client.ID); c.Evictions != 1 || c.DeviceGrants != 6 {
		t.Fatalf("counters %+v", c)
	}
}

func TestDeviceAutoApprove(t *testing.T) {
	e := newEnv(t, Config{DeviceAutoApprove: true})
	_, device := e.startDevice()
	if got := e.sim.DeviceUserCodes(""); len(got) != 0 {
		t.Fatalf("auto-approved codes pending: %v", got)
	}
	r := e.poll(device)
	wantTokenAnswer(t, r, true)
	if who := e.whoami("us", r.str("access_token")); who.str("Email") != DefaultUser {
		t.Fatalf("whoami: %s", who.raw)
	}
	e.sim.SetDeviceAutoApprove(false)
	_, device = e.startDevice()
	wantError(t, e.poll(device), "authorization_pending")
}

func TestDeviceVerificationPage(t *testing.T) {
	e := newEnv(t, Config{})
	user, device := e.startDevice()
	page := e.get("/us/oauth/v3/device?user_code=" + url.QueryEscape(user))
	if page.status != http.StatusOK || !strings.Contains(page.raw, `name="user_code" value="`+user+`"`) ||
		!strings.Contains(page.raw, `value="accept"`) || !strings.Contains(page.raw, `value="deny"`) ||
		!strings.Contains(page.raw, `<option value="us" selected>`) {
		t.Fatalf("page: %d %s", page.status, page.raw)
	}
	if p := e.get("/us/oauth/v3/device?user_code=" + url.QueryEscape(`"><script>x</script>`)); strings.Contains(p.raw, "<script>") {
		t.Fatalf("user code not escaped: %s", p.raw)
	}
	if r := e.get("/mars/oauth/v3/device"); r.status != http.StatusNotFound {
		t.Fatalf("unknown data center: %d", r.status)
	}

	decide := func(dc string, form url.Values) reply {
		t.Helper()
		return e.postForm("/"+dc+"/oauth/v3/device", form)
	}
	if r := decide("us", url.Values{"user_code": {user}, "user": {"bo@example.com"}, "decision": {"accept"}}); r.status != http.StatusOK || !strings.Contains(r.raw, "Access granted") {
		t.Fatalf("accept: %d %s", r.status, r.raw)
	}
	tok := e.poll(device)
	wantTokenAnswer(t, tok, true)
	if who := e.whoami("us", tok.str("access_token")); who.str("Email") != "bo@example.com" {
		t.Fatalf("whoami: %s", who.raw)
	}
	if r := decide("us", url.Values{"user_code": {user}, "decision": {"accept"}}); r.status != http.StatusBadRequest || !strings.Contains(r.raw, "unknown user code") {
		t.Fatalf("spent code: %d %s", r.status, r.raw)
	}

	user, device = e.startDevice()
	if r := decide("us", url.Values{"user_code": {user}, "decision": {"maybe"}}); r.status != http.StatusBadRequest {
		t.Fatalf("no decision: %d %s", r.status, r.raw)
	}
	if r := decide("us", url.Values{"user_code": {user}, "decision": {"deny"}}); r.status != http.StatusOK || !strings.Contains(r.raw, "Access denied") {
		t.Fatalf("deny: %d %s", r.status, r.raw)
	}
	wantError(t, e.poll(device), "access_denied")

	// A user signing in at another data center's page approves there.
	e.client = e.sim.RegisterClient(Client{DC: "us", MultiDC: []string{"eu"}})
	user, device = e.startDevice()
	if r := decide("eu", url.Values{"user_code": {user}, "decision": {"accept"}}); r.status != http.StatusOK {
		t.Fatalf("accept at eu: %d %s", r.status, r.raw)
	}
	if r := e.poll(device); r.str("error") != "other_dc" || r.str("user_location") != "eu" {
		t.Fatalf("want other_dc: %s", r.raw)
	}
}

func TestDeviceControlAPI(t *testing.T) {
	e := newEnv(t, Config{})
	e.client = e.sim.RegisterClient(Client{DC: "us", MultiDC: []string{"in"}})
	first, firstDevice := e.startDevice()
	second, secondDevice := e.startDevice()
	third, _ := e.startDevice()
	r := e.get("/sim/device/pending?client_id=" + url.QueryEscape(e.client.ID))
	if r.status != http.StatusOK || fmt.Sprint(r.body["user_codes"]) != fmt.Sprint([]any{first, second, third}) {
		t.Fatalf("pending: %s", r.raw)
	}
	if r := e.get("/sim/device/pending?client_id=1000.NOBODY"); fmt.Sprint(r.body["user_codes"]) != "[]" {
		t.Fatalf("pending of nobody: %s", r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/device/approve", `{"user_code":"`+first+`","user":"cy@example.in","dc":"in"}`); r.status != http.StatusOK || r.str("status") != "approved" {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/device/approve", `{"user_code":"`+first+`"}`); r.status != http.StatusConflict {
		t.Fatalf("approve twice: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/device/approve", `{"user_code":"ZZZZ-ZZZZ"}`); r.status != http.StatusNotFound {
		t.Fatalf("approve unknown: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/device/approve", `{"user_code":"`+third+`","dc":"jp"}`); r.status != http.StatusBadRequest {
		t.Fatalf("approve in a data center the client lacks: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/device/approve", `{"user_code":`); r.status != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/device/deny", `{"user_code":"`+second+`"}`); r.status != http.StatusOK || r.str("status") != "denied" {
		t.Fatalf("deny: %d %s", r.status, r.raw)
	}
	if r := e.pollWith(e.client, "us", firstDevice); r.str("user_location") != "in" {
		t.Fatalf("first: %s", r.raw)
	}
	wantTokenAnswer(t, e.pollWith(e.client, "in", firstDevice), true)
	wantError(t, e.poll(secondDevice), "access_denied")
	if r := e.get("/sim/device/pending"); fmt.Sprint(r.body["user_codes"]) != fmt.Sprint([]any{third}) {
		t.Fatalf("pending after decisions: %s", r.raw)
	}
}

func TestDeviceFaults(t *testing.T) {
	e := newEnv(t, Config{})
	for _, endpoint := range []string{"device_code", "device_token"} {
		if err := (Fault{Endpoint: endpoint, Kind: FaultStatus}).Validate(); err != nil {
			t.Fatalf("%s: %v", endpoint, err)
		}
	}
	e.sim.AddFault(Fault{Endpoint: "device_code", Kind: FaultError, ErrorCode: "general_error", Times: 1})
	wantError(t, e.deviceCodeWith(e.client, "us"), "general_error")
	user, device := e.startDevice()

	e.sim.AddFault(Fault{Endpoint: "device_token", GrantType: "device_token", Kind: FaultStatus, Status: 502, Times: 1})
	if r := e.poll(device); r.status != http.StatusBadGateway {
		t.Fatalf("status fault: %d %s", r.status, r.raw)
	}
	// The faulted request never reached the code: no slow_down now.
	wantError(t, e.poll(device), "authorization_pending")

	// A lost answer: Zoho minted the token, the device never hears, and the
	// code is spent.
	if err := e.sim.ApproveDevice(user, "", ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	e.sim.AddFault(Fault{Endpoint: "device_token", Kind: FaultLostAnswer, Times: 1})
	if r, err := e.try(e.pollRequest(device)); err == nil {
		t.Fatalf("lost answer delivered: %d %s", r.status, r.raw)
	}
	e.clock.Advance(30 * time.Second)
	wantError(t, e.poll(device), "invalid_code")
	if got := e.sim.RefreshTokens(e.client.ID); len(got) != 1 {
		t.Fatalf("refresh tokens after a lost answer: %v", got)
	}
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{
		DeviceCodeRequests: 2, DeviceCodesIssued: 1, DevicePolls: 4, DeviceGrants: 1, FaultsInjected: 3,
	})
}

func (e *env) pollRequest(device string) *http.Request {
	form := url.Values{"client_id": {e.client.ID}, "client_secret": {e.client.Secret}, "grant_type": {"device_token"}, "code": {device}}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/us/oauth/v3/device/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// TestDeviceSingleUseUnderConcurrency: of many simultaneous polls of an
// approved code, exactly one gets the token.
func TestDeviceSingleUseUnderConcurrency(t *testing.T) {
	// Each reading of this clock is a minute later, so no poll is slowed down.
	var ticks atomic.Int64
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newEnv(t, Config{DeviceCodeTTL: time.Hour * 24 * 365, Now: func() time.Time {
		return base.Add(time.Duration(ticks.Add(1)) * time.Minute)
	}})
	user, device := e.startDevice()
	if err := e.sim.ApproveDevice(user, "", ""); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	answers := make(chan reply, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.try(e.pollRequest(device))
			if err != nil {
				t.Error(err)
				return
			}
			answers <- r
		}()
	}
	wg.Wait()
	close(answers)
	tokens, spent := 0, 0
	for r := range answers {
		switch {
		case r.str("access_token") != "":
			tokens++
		case r.str("error") == "invalid_code":
			spent++
		default:
			t.Errorf("unexpected answer %s", r.raw)
		}
	}
	if tokens != 1 || spent != n-1 {
		t.Fatalf("%d tokens, %d invalid_code of %d polls", tokens, spent, n)
	}
}

// TestDeviceCodesCollected: expired device codes are forgotten lazily.
func TestDeviceCodesCollected(t *testing.T) {
	e := newEnv(t, Config{})
	const perRound, rounds = 600, 5
	for round := 0; round < rounds; round++ {
		for i := 0; i < perRound; i++ {
			e.sim.mu.Lock()
			a := e.sim.deviceCodeLocked(e.client.ID, "device_request", "a.b.READ", "", "", "us", "http://127.0.0.1:1")
			e.sim.mu.Unlock()
			if a.body.(map[string]any)["device_code"] == nil {
				t.Fatalf("issue: %v", a.body)
			}
		}
		e.clock.Advance(DefaultDeviceCodeTTL + deviceGrace + time.Second)
	}
	e.sim.mu.Lock()
	codes, users := len(e.sim.dev.byCode), len(e.sim.dev.byUser)
	e.sim.mu.Unlock()
	if codes > 2*perRound || users != codes {
		t.Fatalf("%d device codes, %d user codes kept after %d rounds of %d", codes, users, rounds, perRound)
	}
}
