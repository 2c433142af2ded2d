package zoho

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

const testDeviceCode = "1004.71c4b3d036cbcc5ca5e6f26e4ac0ef11.3a141ff0e7fb15cbf8fc83113b10ec6e"

// longURL is an https verification URL of n bytes.
func longURL(n int) string {
	const base = "https://accounts.zoho.com/oauth/v3/device?r="
	return base + strings.Repeat("a", n-len(base))
}

func TestParseDeviceCodeResponse(t *testing.T) {
	answer := func(fields string) string {
		return `{"user_code":"ABCD-EFGH","device_code":"` + testDeviceCode + `",` + fields + `}`
	}
	const verify = `"verification_url":"https://accounts.zoho.com/oauth/v3/device"`
	// Without a usable interval the pace is Zoho's documented one, 30 s, and
	// without a usable lifetime the codes live as long as Zoho documents, 5
	// minutes (written out here, not taken from the package's constants).
	if DocumentedDevicePollInterval != 30*time.Second {
		t.Fatalf("DocumentedDevicePollInterval = %s, Zoho documents 30s", DocumentedDevicePollInterval)
	}
	cases := []struct {
		name           string
		status         int
		body           string
		kind           Kind // 0: success
		code           string
		life, interval time.Duration
		verification   string
		user, device   string // the codes when not ABCD-EFGH and testDeviceCode
	}{
		{name: "documented seconds", status: 200, body: answer(verify + `,"expires_in":300,"interval":30`), life: 5 * time.Minute, interval: 30 * time.Second},
		{name: "older page's milliseconds", status: 200, body: answer(verify + `,"expires_in":300000,"interval":30000`), life: 5 * time.Minute, interval: 30 * time.Second},
		{name: "numbers as strings", status: 200, body: answer(verify + `,"expires_in":"120","interval":"10"`), life: 2 * time.Minute, interval: 10 * time.Second},
		{name: "missing lifetimes", status: 200, body: answer(verify), life: 5 * time.Minute, interval: 30 * time.Second},
		{name: "zero and negative", status: 200, body: answer(verify + `,"expires_in":-5,"interval":0`), life: 5 * time.Minute, interval: 30 * time.Second},
		{name: "not numbers", status: 200, body: answer(verify + `,"expires_in":"soon","interval":{"s":1}`), life: 5 * time.Minute, interval: 30 * time.Second},
		{name: "interval below a second", status: 200, body: answer(verify + `,"expires_in":300,"interval":0.2`), life: 5 * time.Minute, interval: MinDevicePollInterval},
		{name: "interval in seconds capped", status: 200, body: answer(verify + `,"expires_in":300,"interval":999`), life: 5 * time.Minute, interval: MaxDevicePollInterval},
		{name: "interval of 1000 is milliseconds", status: 200, body: answer(verify + `,"expires_in":300000,"interval":1000`), life: 5 * time.Minute, interval: time.Second},
		{name: "interval in milliseconds capped", status: 200, body: answer(verify + `,"expires_in":300000,"interval":3600000`), life: 5 * time.Minute, interval: MaxDevicePollInterval},
		{name: "lifetime capped", status: 200, body: answer(verify + `,"expires_in":7200,"interval":30`), life: MaxDeviceCodeLifetime, interval: 30 * time.Second},
		{name: "lifetime of a day is seconds", status: 200, body: answer(verify + `,"expires_in":86400,"interval":30`), life: MaxDeviceCodeLifetime, interval: 30 * time.Second},
		{name: "lifetime over a day is milliseconds", status: 200, body: answer(verify + `,"expires_in":90000,"interval":30`), life: 90 * time.Second, interval: 30 * time.Second},
		{name: "milliseconds interval makes milliseconds lifetime", status: 200, body: answer(verify + `,"expires_in":60000,"interval":5000`), life: time.Minute, interval: 5 * time.Second},
		{name: "short milliseconds lifetime", status: 200, body: answer(verify + `,"expires_in":500,"interval":30000`), life: time.Second, interval: 30 * time.Second},
		{name: "success despite status", status: 400, body: answer(verify), life: 5 * time.Minute, interval: 30 * time.Second},
		{name: "loopback http (simulator)", status: 200, body: answer(`"verification_url":"http://127.0.0.1:8090/us/oauth/v3/device"`), life: 5 * time.Minute, interval: 30 * time.Second, verification: "http://127.0.0.1:8090/us/oauth/v3/device"},
		{name: "loopback http ipv6", status: 200, body: answer(`"verification_url":"http://[::1]:8090/us/oauth/v3/device"`), life: 5 * time.Minute, interval: 30 * time.Second, verification: "http://[::1]:8090/us/oauth/v3/device"},
		{name: "longest device code", status: 200, body: `{"user_code":"ABCD-EFGH","device_code":"` + strings.Repeat("a", maxDeviceCodeLen) + `",` + verify + `}`,
			life: 5 * time.Minute, interval: 30 * time.Second, device: strings.Repeat("a", maxDeviceCodeLen)},
		{name: "longest user code", status: 200, body: `{"user_code":"` + strings.Repeat("A", maxUserCodeLen) + `","device_code":"` + testDeviceCode + `",` + verify + `}`,
			life: 5 * time.Minute, interval: 30 * time.Second, user: strings.Repeat("A", maxUserCodeLen)},

		{name: "http elsewhere", status: 200, body: answer(`"verification_url":"http://accounts.zoho.com/oauth/v3/device"`), kind: KindMalformed},
		{name: "no verification url", status: 200, body: answer(`"expires_in":300`), kind: KindMalformed},
		{name: "relative verification url", status: 200, body: answer(`"verification_url":"/oauth/v3/device"`), kind: KindMalformed},
		{name: "javascript verification url", status: 200, body: answer(`"verification_url":"javascript:alert(1)"`), kind: KindMalformed},
		{name: "credentials in verification url", status: 200, body: answer(`"verification_url":"https://u:p@accounts.zoho.com/oauth/v3/device"`), kind: KindMalformed},
		{name: "verification url without a host", status: 200, body: answer(`"verification_url":"https:///oauth/v3/device"`), kind: KindMalformed},
		{name: "verification url not a URL", status: 200, body: answer(`"verification_url":"https://[::1/oauth/v3/device"`), kind: KindMalformed},
		{name: "longest verification url", status: 200, body: answer(`"verification_url":"` + longURL(2048) + `"`), life: 5 * time.Minute, interval: 30 * time.Second, verification: longURL(2048)},
		{name: "verification url one byte too long", status: 200, body: answer(`"verification_url":"` + longURL(2049) + `"`), kind: KindMalformed},
		{name: "no user code", status: 200, body: `{"device_code":"` + testDeviceCode + `",` + verify + `}`, kind: KindMalformed},
		{name: "blank user code", status: 200, body: `{"user_code":"  ","device_code":"` + testDeviceCode + `",` + verify + `}`, kind: KindMalformed},
		{name: "long user code", status: 200, body: `{"user_code":"` + strings.Repeat("A", 65) + `","device_code":"` + testDeviceCode + `",` + verify + `}`, kind: KindMalformed},
		{name: "user code with control characters", status: 200, body: `{"user_code":"AB\u001b[2J","device_code":"` + testDeviceCode + `",` + verify + `}`, kind: KindMalformed},
		{name: "user code starting with a control character", status: 200, body: `{"user_code":"\u001bABCD","device_code":"` + testDeviceCode + `",` + verify + `}`, kind: KindMalformed},
		{name: "device code with a space", status: 200, body: `{"user_code":"ABCD","device_code":"1004.a b",` + verify + `}`, kind: KindMalformed},
		{name: "device code starting with a space", status: 200, body: `{"user_code":"ABCD","device_code":" 1004.ab",` + verify + `}`, kind: KindMalformed},
		{name: "device code with DEL", status: 200, body: `{"user_code":"ABCD","device_code":"1004.a\u007fb",` + verify + `}`, kind: KindMalformed},
		{name: "huge device code", status: 200, body: `{"user_code":"ABCD","device_code":"` + strings.Repeat("a", 4096) + `",` + verify + `}`, kind: KindMalformed},
		{name: "device code one byte too long", status: 200, body: `{"user_code":"ABCD","device_code":"` + strings.Repeat("a", maxDeviceCodeLen+1) + `",` + verify + `}`, kind: KindMalformed},

		{name: "unknown client", status: 200, body: `{"error":"invalid_client"}`, kind: KindRejected, code: CodeInvalidClient},
		{name: "no scope", status: 200, body: `{"error":"invalid_scope"}`, kind: KindRejected, code: "invalid_scope"},
		{name: "throttle", status: 400, body: `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`, kind: KindThrottled, code: CodeThrottled},
		{name: "server error", status: 502, body: `<html>bad gateway</html>`, kind: KindServer},
		{name: "server error json", status: 503, body: `{}`, kind: KindServer},
		{name: "HTTP 500 json", status: 500, body: `{}`, kind: KindServer},
		{name: "garbage", status: 200, body: `not json`, kind: KindMalformed},
		{name: "truncated", status: 200, body: `{"user_code":"ABCD-EFGH","device_co`, kind: KindMalformed},
		{name: "empty object", status: 200, body: `{}`, kind: KindMalformed},
		{name: "device code not a string", status: 200, body: `{"device_code":{"x":1},"user_code":"A",` + verify + `}`, kind: KindMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dc, err := ParseDeviceCodeResponse(tc.status, []byte(tc.body))
			if tc.kind == 0 {
				if err != nil || dc == nil {
					t.Fatalf("want a device code, got %v", err)
				}
				want, user, device := tc.verification, tc.user, tc.device
				if want == "" {
					want = "https://accounts.zoho.com/oauth/v3/device"
				}
				if user == "" {
					user = "ABCD-EFGH"
				}
				if device == "" {
					device = testDeviceCode
				}
				if dc.UserCode != user || dc.DeviceCode != device || dc.VerificationURL != want {
					t.Fatalf("fields %+v", *dc)
				}
				if dc.ExpiresIn != tc.life || dc.Interval != tc.interval {
					t.Fatalf("lifetime/interval = %s/%s, want %s/%s", dc.ExpiresIn, dc.Interval, tc.life, tc.interval)
				}
				return
			}
			ze, ok := AsError(err)
			if !ok || dc != nil {
				t.Fatalf("want *Error, got %v (device code %v)", err, dc)
			}
			if ze.Op != OpDeviceCode || ze.Kind != tc.kind || ze.Code != tc.code {
				t.Fatalf("op/kind/code = %q/%s/%q, want %q/%s/%q", ze.Op, ze.Kind, ze.Code, OpDeviceCode, tc.kind, tc.code)
			}
			if strings.Contains(err.Error(), testDeviceCode) {
				t.Fatalf("error shows the device code: %v", err)
			}
		})
	}
}

func TestParseDeviceTokenResponse(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		poll      DevicePoll
		kind      Kind
		code      string
		location  string
		temporary bool
	}{
		{"pending", 200, `{"error":"authorization_pending"}`, DevicePending, KindRejected, CodeAuthorizationPending, "", true},
		{"slow down", 200, `{"error":"slow_down"}`, DeviceSlowDown, KindRejected, CodeSlowDown, "", true},
		{"slow down with 400", 400, `{"error":"slow_down"}`, DeviceSlowDown, KindRejected, CodeSlowDown, "", true},
		{"other dc", 200, `{"user_location":"eu","error":"other_dc"}`, DeviceOtherDC, KindRejected, CodeOtherDC, "eu", false},
		{"other dc normalised", 200, `{"user_location":" IN ","error":"other_dc"}`, DeviceOtherDC, KindRejected, CodeOtherDC, "in", false},
		{"other dc without location", 200, `{"error":"other_dc"}`, DeviceOtherDC, KindRejected, CodeOtherDC, "", false},
		{"other dc location not a string", 200, `{"error":"other_dc","user_location":["eu"]}`, DeviceOtherDC, KindRejected, CodeOtherDC, "", false},
		{"denied", 200, `{"error":"access_denied"}`, DeviceDenied, KindRejected, CodeAccessDenied, "", false},
		{"expired", 200, `{"error":"expired"}`, DeviceExpired, KindRejected, CodeExpired, "", false},
		{"spent", 200, `{"error":"invalid_code"}`, DeviceInvalidCode, KindRejected, CodeInvalidCode, "", false},
		{"wrong secret", 200, `{"error":"invalid_client_secret"}`, DeviceFailed, KindRejected, CodeInvalidClientSecret, "", false},
		{"unknown code", 200, `{"error":"general_error"}`, DeviceFailed, KindRejected, "general_error", "", false},
		{"throttle", 200, `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`, DeviceRetry, KindThrottled, CodeThrottled, "", true},
		{"server error", 503, `<html>unavailable</html>`, DeviceRetry, KindServer, "", "", true},
		{"garbage", 200, `}{`, DeviceRetry, KindMalformed, "", "", true},
		{"neither", 200, `{"status":"ok"}`, DeviceRetry, KindMalformed, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ParseDeviceTokenResponse(tc.status, []byte(tc.body))
			ze, ok := AsError(err)
			if !ok || tok != nil {
				t.Fatalf("want *Error, got %v (token %v)", err, tok)
			}
			if ze.Op != OpDevicePoll || ze.Kind != tc.kind || ze.Code != tc.code || ze.UserLocation != tc.location {
				t.Fatalf("op/kind/code/location = %q/%s/%q/%q", ze.Op, ze.Kind, ze.Code, ze.UserLocation)
			}
			if got := ClassifyDevicePoll(err); got != tc.poll {
				t.Fatalf("ClassifyDevicePoll = %s, want %s", got, tc.poll)
			}
			if IsTemporary(err) != tc.temporary {
				t.Fatalf("IsTemporary = %v, want %v", !tc.temporary, tc.temporary)
			}
			if ze.Hint() == "" {
				t.Fatal("no hint")
			}
		})
	}

	tok, err := ParseDeviceTokenResponse(200, []byte(`{"access_token":"1000.a.b","refresh_token":"1000.c.d","api_domain":"https://www.zohoapis.eu","token_type":"Bearer","expires_in":3600}`))
	if err != nil || tok.AccessToken != "1000.a.b" || tok.RefreshToken != "1000.c.d" || tok.APIDomain != "https://www.zohoapis.eu" || tok.ExpiresIn != time.Hour {
		t.Fatalf("token answer: %+v %v", tok, err)
	}
	if ClassifyDevicePoll(nil) != DeviceGranted || !DeviceGranted.Final() {
		t.Fatal("nil error is not a final grant")
	}
}

func TestDevicePollFinalAndStrings(t *testing.T) {
	final := map[DevicePoll]bool{
		DeviceGranted: true, DevicePending: false, DeviceSlowDown: false, DeviceOtherDC: false, DeviceDenied: true,
		DeviceExpired: true, DeviceInvalidCode: true, DeviceRetry: false, DeviceFailed: true,
	}
	seen := map[string]bool{}
	for p, want := range final {
		if p.Final() != want {
			t.Errorf("%s.Final() = %v", p, !want)
		}
		if s := p.String(); s == "unknown" || seen[s] {
			t.Errorf("String of %d: %q", int(p), s)
		}
		seen[p.String()] = true
	}
	if DevicePoll(99).String() != "unknown" {
		t.Error("out of range")
	}
	// A call the client refused to make is a failure, not a retry.
	if ClassifyDevicePoll(fmt.Errorf("some other error")) != DeviceFailed {
		t.Error("foreign error")
	}
}

func TestDeviceHints(t *testing.T) {
	for _, tc := range []struct {
		code, location, want string
	}{
		{CodeAuthorizationPending, "", "keep polling"},
		{CodeSlowDown, "", "30 seconds"},
		{CodeOtherDC, "eu", "https://accounts.zoho.eu"},
		{CodeOtherDC, "mars", "not a known data center"},
		{CodeAccessDenied, "", "refused"},
		{CodeExpired, "", "lifetime"},
		{CodeInvalidCode, "", "already used"},
	} {
		e := &Error{Op: OpDevicePoll, Kind: KindRejected, Code: tc.code, UserLocation: tc.location}
		if h := e.Hint(); !strings.Contains(h, tc.want) {
			t.Errorf("%s/%s: hint %q lacks %q", tc.code, tc.location, h, tc.want)
		}
	}
	// The refresh path keeps its own hints.
	if h := (&Error{Op: OpRefresh, Kind: KindRejected, Code: CodeInvalidCode}).Hint(); !strings.Contains(h, "re-authorize") {
		t.Errorf("refresh hint %q", h)
	}
	if h := (&Error{Op: OpDeviceCode, Kind: KindRejected, Code: "invalid_scope"}).Hint(); !strings.Contains(h, "comma-separated") {
		t.Errorf("scope hint %q", h)
	}
}

func TestFollowOtherDC(t *testing.T) {
	for _, tc := range []struct {
		accounts, location string
		wantDC, wantURL    string // wantDC "" means an error
	}{
		{"https://accounts.zoho.com", "eu", "eu", "https://accounts.zoho.eu"},
		{"https://accounts.zoho.com/", "EU", "eu", "https://accounts.zoho.eu"},
		{"https://accounts.zoho.eu", "au", "au", "https://accounts.zoho.com.au"},
		{"http://127.0.0.1:8090/us", "eu", "eu", "http://127.0.0.1:8090/eu"},
		{"http://127.0.0.1:8090/us/", "in", "in", "http://127.0.0.1:8090/in"},
		{"http://localhost:1/prefix/us", "jp", "jp", "http://localhost:1/prefix/jp"},
		{"https://[::1]:8443/ca", "uk", "uk", "https://[::1]:8443/uk"},
		// Unknown locations never map to anything.
		{"https://accounts.zoho.com", "mars", "", ""},
		{"https://accounts.zoho.com", "", "", ""},
		{"https://accounts.zoho.com", "ae", "", ""},
		{"https://accounts.zoho.com", "https://evil.example.com", "", ""},
		// Overrides that are not the simulator's layout on loopback.
		{"https://zoho-proxy.example.com/us", "eu", "", ""},
		{"http://127.0.0.1:8090", "eu", "", ""},
		{"http://127.0.0.1:8090/sim", "eu", "", ""},
		{"http://user:pw@127.0.0.1:8090/us", "eu", "", ""},
		{"ftp://127.0.0.1/us", "eu", "", ""},
	} {
		dc, u, err := FollowOtherDC(tc.accounts, tc.location)
		if tc.wantDC == "" {
			if err == nil {
				t.Errorf("%s → %q: want an error, got %s %q", tc.accounts, tc.location, dc.Code, u)
			}
			continue
		}
		if err != nil || dc.Code != tc.wantDC || u != tc.wantURL {
			t.Errorf("%s → %q: got %q %q %v, want %q %q", tc.accounts, tc.location, dc.Code, u, err, tc.wantDC, tc.wantURL)
		}
	}
}

func TestDeviceRequestForms(t *testing.T) {
	app := func(u string) App { return App{AccountsURL: u, ClientID: "1000.CLIENT", ClientSecret: "s3cret"} }
	codeAnswer := `{"user_code":"ABCD-EFGH","device_code":"` + testDeviceCode + `","verification_url":"https://accounts.zoho.com/oauth/v3/device","expires_in":300,"interval":30}`
	c := NewClient(Options{})
	for _, tc := range []struct {
		name, answer, path string
		call               func(string) error
		want               url.Values
	}{
		{"device code offline", codeAnswer, "/oauth/v3/device/code", func(u string) error {
			_, err := c.RequestDeviceCode(context.Background(), app(u), " ZohoCRM.modules.ALL,ZohoCRM.users.READ ", true)
			return err
		}, url.Values{
			"grant_type": {"device_request"}, "client_id": {"1000.CLIENT"}, "scope": {"ZohoCRM.modules.ALL,ZohoCRM.users.READ"},
			"access_type": {"offline"}, "prompt": {"consent"},
		}},
		{"device code online", codeAnswer, "/oauth/v3/device/code", func(u string) error {
			_, err := c.RequestDeviceCode(context.Background(), app(u), "AaaServer.profile.READ", false)
			return err
		}, url.Values{"grant_type": {"device_request"}, "client_id": {"1000.CLIENT"}, "scope": {"AaaServer.profile.READ"}}},
		{"poll", `{"access_token":"A","expires_in":3600}`, "/oauth/v3/device/token", func(u string) error {
			_, err := c.PollDeviceToken(context.Background(), app(u), testDeviceCode)
			return err
		}, url.Values{"grant_type": {"device_token"}, "client_id": {"1000.CLIENT"}, "client_secret": {"s3cret"}, "code": {testDeviceCode}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, seen := recorder(t, http.StatusOK, tc.answer)
			if err := tc.call(ts.URL); err != nil {
				t.Fatal(err)
			}
			r := received(t, seen)
			if r.method != http.MethodPost || r.path != tc.path {
				t.Fatalf("request %s %s", r.method, r.path)
			}
			if r.rawQuery != "" {
				t.Fatalf("query string %q: parameters travel in the body only", r.rawQuery)
			}
			if r.contentType != "application/x-www-form-urlencoded" {
				t.Fatalf("Content-Type %q", r.contentType)
			}
			if fmt.Sprint(r.form) != fmt.Sprint(tc.want) {
				t.Fatalf("body\n got %v\nwant %v", r.form, tc.want)
			}
		})
	}

	// Calls that cannot be right are not made.
	ts, seen := recorder(t, http.StatusOK, codeAnswer)
	if _, err := c.RequestDeviceCode(context.Background(), app(ts.URL), "  ", true); err == nil {
		t.Fatal("no scopes: want an error")
	}
	if _, err := c.PollDeviceToken(context.Background(), app(ts.URL), ""); err == nil || ClassifyDevicePoll(err) != DeviceFailed {
		t.Fatalf("no device code: %v", err)
	}
	select {
	case r := <-seen:
		t.Fatalf("a request was sent: %s %s", r.method, r.path)
	default:
	}
}

func TestDeviceErrorsCarryNoSecrets(t *testing.T) {
	const secret = "s3cret-value-0123456789"
	echo := func(status int, format string) func(*testing.T) string {
		return func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				fmt.Fprintf(w, format, r.PostForm.Get("code")+" "+r.PostForm.Get("client_secret"))
			})
		}
	}
	for _, tc := range []struct {
		name        string
		accountsURL func(*testing.T) string
		timeout     time.Duration
		poll        DevicePoll
	}{
		{name: "connection refused", accountsURL: closedURL, poll: DeviceRetry},
		{name: "reset", accountsURL: resetServer, poll: DeviceRetry},
		{name: "timeout", timeout: 50 * time.Millisecond, poll: DeviceRetry, accountsURL: func(t *testing.T) string { return serve(t, hang) }},
		{name: "pending echo", poll: DevicePending, accountsURL: echo(200, `{"error":"authorization_pending","error_description":"waiting for %s"}`)},
		{name: "rejection echo", poll: DeviceFailed, accountsURL: echo(200, `{"error":"invalid_client_secret","error_description":"bad %s"}`)},
		{name: "code echoed as error", poll: DeviceFailed, accountsURL: echo(200, `{"error":"%s"}`)},
		{name: "other dc echo", poll: DeviceOtherDC, accountsURL: echo(200, `{"error":"other_dc","user_location":"%s"}`)},
		{name: "server error echo", poll: DeviceRetry, accountsURL: echo(502, `upstream failed for %s`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(Options{Timeout: tc.timeout})
			app := App{AccountsURL: tc.accountsURL(t), ClientID: "1000.CLIENT", ClientSecret: secret}
			_, err := c.PollDeviceToken(context.Background(), app, testDeviceCode)
			wantNoToken(t, err, testDeviceCode)
			wantNoToken(t, err, secret)
			ze, _ := AsError(err)
			if ze.Op != OpDevicePoll || ClassifyDevicePoll(err) != tc.poll {
				t.Fatalf("op %q, poll %s, want %s: %v", ze.Op, ClassifyDevicePoll(err), tc.poll, err)
			}
			if strings.Contains(ze.UserLocation, testDeviceCode) || strings.Contains(ze.Hint(), testDeviceCode) {
				t.Fatalf("user location or hint shows the device code: %q %q", ze.UserLocation, ze.Hint())
			}
		})
	}

	// An initiation answer rejected as malformed does not show the device
	// code it carried, even one that happens to be a word of the message.
	for _, code := range []string{testDeviceCode, "https"} {
		u := serve(t, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"user_code":"ABCD","device_code":"%s","verification_url":"http://evil.example.com/%s"}`, code, code)
		})
		_, err := NewClient(Options{}).RequestDeviceCode(context.Background(), App{AccountsURL: u, ClientID: "1000.C", ClientSecret: secret}, "a.b.READ", true)
		wantNoToken(t, err, code)
		if ze, _ := AsError(err); ze.Kind != KindMalformed || ze.Op != OpDeviceCode {
			t.Fatalf("malformed initiation: %v", err)
		}
	}
}

func TestDeviceCodeFormattingHidesDeviceCode(t *testing.T) {
	dc := &DeviceCode{UserCode: "ABCD-EFGH", DeviceCode: testDeviceCode, VerificationURL: "https://accounts.zoho.com/oauth/v3/device",
		ExpiresIn: 5 * time.Minute, Interval: 30 * time.Second}
	for _, s := range []string{fmt.Sprint(dc), fmt.Sprintf("%v %+v %#v %s", dc, dc, dc, dc), fmt.Sprintf("%v %+v %#v", *dc, *dc, *dc)} {
		if strings.Contains(s, testDeviceCode) || !strings.Contains(s, "ABCD-EFGH") || !strings.Contains(s, "[redacted]") {
			t.Fatalf("formatted: %s", s)
		}
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := dc.ExpiresAt(start); !got.Equal(start.Add(5 * time.Minute)) {
		t.Fatalf("ExpiresAt %s", got)
	}
}

// simClock is a settable clock for the simulator.
type simClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// deviceSim is a simulator with a fake clock behind an httptest server.
func deviceSim(t *testing.T, cfg zohosim.Config) (*zohosim.Server, *simClock) {
	t.Helper()
	clk := &simClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg.Now = clk.Now
	sim := zohosim.New(cfg)
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(ts.Close)
	sim.SetBaseURL(ts.URL)
	return sim, clk
}

var simUserCode = regexp.MustCompile(`^[A-Z]{4}-[A-Z]{4}$`)

// TestDeviceFlowAgainstSimulator runs the whole flow: pending, slow_down,
// approval, the token, then the spent code.
func TestDeviceFlowAgainstSimulator(t *testing.T) {
	sim, clk := deviceSim(t, zohosim.Config{})
	cl := sim.RegisterClient(zohosim.Client{DC: "us"})
	app := App{AccountsURL: sim.AccountsURL("us"), ClientID: cl.ID, ClientSecret: cl.Secret}
	c := NewClient(Options{})
	ctx := context.Background()

	dc, err := c.RequestDeviceCode(ctx, app, "ZohoCRM.modules.ALL,ZohoCRM.users.READ", true)
	if err != nil {
		t.Fatal(err)
	}
	if !simUserCode.MatchString(dc.UserCode) || dc.VerificationURL != sim.AccountsURL("us")+"/oauth/v3/device" ||
		dc.ExpiresIn != 5*time.Minute || dc.Interval != 30*time.Second || dc.DeviceCode == "" {
		t.Fatalf("device code %v", dc)
	}
	_, err = c.PollDeviceToken(ctx, app, dc.DeviceCode)
	if ClassifyDevicePoll(err) != DevicePending || !IsTemporary(err) {
		t.Fatalf("first poll: %v", err)
	}
	_, err = c.PollDeviceToken(ctx, app, dc.DeviceCode)
	if ClassifyDevicePoll(err) != DeviceSlowDown {
		t.Fatalf("second poll at once: %v", err)
	}
	if err := sim.ApproveDevice(dc.UserCode, "bo@example.com", ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(dc.Interval)
	tok, err := c.PollDeviceToken(ctx, app, dc.DeviceCode)
	if err != nil {
		t.Fatalf("poll after approval: %v", err)
	}
	if !sim.RefreshTokenValid(tok.RefreshToken) || !sim.AccessTokenValid(tok.AccessToken) || tok.APIDomain != sim.APIDomain("us") || tok.ExpiresIn != time.Hour {
		t.Fatalf("token %+v", tok)
	}
	if fresh, err := c.Refresh(ctx, app, tok.RefreshToken); err != nil || !sim.AccessTokenValid(fresh.AccessToken) {
		t.Fatalf("refresh with the device flow's refresh token: %v", err)
	}
	clk.Advance(dc.Interval)
	_, err = c.PollDeviceToken(ctx, app, dc.DeviceCode)
	if p := ClassifyDevicePoll(err); p != DeviceInvalidCode || !p.Final() {
		t.Fatalf("spent code: %s %v", p, err)
	}
	if got := sim.ClientCounters(cl.ID); got.DeviceCodeRequests != 1 || got.DevicePolls != 4 || got.DeviceSlowDowns != 1 || got.DeviceGrants != 1 {
		t.Fatalf("counters %+v", got)
	}
}

func TestDeviceOutcomesAgainstSimulator(t *testing.T) {
	sim, clk := deviceSim(t, zohosim.Config{DeviceCodeTTL: time.Minute})
	cl := sim.RegisterClient(zohosim.Client{DC: "eu"})
	app := App{AccountsURL: sim.AccountsURL("eu"), ClientID: cl.ID, ClientSecret: cl.Secret}
	c := NewClient(Options{})
	ctx := context.Background()
	start := func() *DeviceCode {
		t.Helper()
		dc, err := c.RequestDeviceCode(ctx, app, "ZohoCRM.modules.ALL", true)
		if err != nil {
			t.Fatal(err)
		}
		return dc
	}

	denied := start()
	if err := sim.DenyDevice(denied.UserCode); err != nil {
		t.Fatal(err)
	}
	_, err := c.PollDeviceToken(ctx, app, denied.DeviceCode)
	if p := ClassifyDevicePoll(err); p != DeviceDenied || !p.Final() || IsTemporary(err) {
		t.Fatalf("denied: %s %v", p, err)
	}

	expired := start()
	if expired.ExpiresIn != time.Minute {
		t.Fatalf("lifetime %s", expired.ExpiresIn)
	}
	clk.Advance(expired.ExpiresIn)
	_, err = c.PollDeviceToken(ctx, app, expired.DeviceCode)
	if ClassifyDevicePoll(err) != DeviceExpired {
		t.Fatalf("expired: %v", err)
	}

	wrong := app
	wrong.ClientSecret = "not-the-secret"
	_, err = c.PollDeviceToken(ctx, wrong, start().DeviceCode)
	if ze, _ := AsError(err); ClassifyDevicePoll(err) != DeviceFailed || ze.Code != CodeInvalidClientSecret || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("wrong secret: %v", err)
	}

	_, err = c.RequestDeviceCode(ctx, App{AccountsURL: sim.AccountsURL("us"), ClientID: cl.ID}, "ZohoCRM.modules.ALL", true)
	if ze, ok := AsError(err); !ok || ze.Op != OpDeviceCode || ze.Code != CodeInvalidClient {
		t.Fatalf("wrong data center: %v", err)
	}

	sim.AddFault(zohosim.Fault{Endpoint: "device_token", Kind: zohosim.FaultStatus, Times: 1})
	pending := start()
	_, err = c.PollDeviceToken(ctx, app, pending.DeviceCode)
	if ClassifyDevicePoll(err) != DeviceRetry {
		t.Fatalf("503: %v", err)
	}
	_, err = c.PollDeviceToken(ctx, app, pending.DeviceCode)
	if ClassifyDevicePoll(err) != DevicePending {
		t.Fatalf("after the fault: %v", err)
	}

	// Zoho's older page: interval and expires_in in milliseconds.
	sim.SetLegacyMillis(true)
	if dc := start(); dc.Interval != 30*time.Second || dc.ExpiresIn != time.Minute {
		t.Fatalf("legacy millis: %v", dc)
	}
}

// TestDeviceOtherDCAgainstSimulator: the user approves in another data
// center; the poll there, found through FollowOtherDC, gives the token.
func TestDeviceOtherDCAgainstSimulator(t *testing.T) {
	sim, _ := deviceSim(t, zohosim.Config{})
	cl := sim.RegisterClient(zohosim.Client{DC: "us", MultiDC: []string{"eu"}})
	app := App{AccountsURL: sim.AccountsURL("us"), ClientID: cl.ID, ClientSecret: cl.Secret}
	c := NewClient(Options{})
	ctx := context.Background()
	dc, err := c.RequestDeviceCode(ctx, app, "ZohoCRM.modules.ALL", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.ApproveDevice(dc.UserCode, "eve@example.eu", "eu"); err != nil {
		t.Fatal(err)
	}
	_, err = c.PollDeviceToken(ctx, app, dc.DeviceCode)
	ze, _ := AsError(err)
	if ClassifyDevicePoll(err) != DeviceOtherDC || ze.UserLocation != "eu" || !strings.Contains(ze.Hint(), `"eu"`) {
		t.Fatalf("want other_dc eu: %v", err)
	}
	userDC, next, err := FollowOtherDC(app.AccountsURL, ze.UserLocation)
	if err != nil || userDC.Code != "eu" || next != sim.AccountsURL("eu") {
		t.Fatalf("follow: %q %q %v", userDC.Code, next, err)
	}
	app.AccountsURL = next
	tok, err := c.PollDeviceToken(ctx, app, dc.DeviceCode)
	if err != nil {
		t.Fatalf("poll at eu: %v", err)
	}
	if tok.APIDomain != sim.APIDomain("eu") || !sim.RefreshTokenValid(tok.RefreshToken) {
		t.Fatalf("token %+v", tok)
	}
	if _, err := c.Refresh(ctx, app, tok.RefreshToken); err != nil {
		t.Fatalf("refresh at eu: %v", err)
	}
}
