package zoho

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// request is what a test server saw of one call.
type request struct {
	method, path, rawQuery, contentType string
	userAgent                           string
	query, form                         url.Values
	body                                string
}

// recorder answers every call with status and body and hands what it saw to
// the test.
func recorder(t *testing.T, status int, body string) (*httptest.Server, <-chan request) {
	t.Helper()
	seen := make(chan request, 4)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		seen <- request{
			method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, contentType: r.Header.Get("Content-Type"), userAgent: r.UserAgent(),
			query: r.URL.Query(), form: form, body: string(raw),
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts, seen
}

// received is the request the recorder saw during a call that has returned:
// the handler hands it over before answering, so it is there already, or
// the call never reached the server; the test never waits for it.
func received(t *testing.T, seen <-chan request) request {
	t.Helper()
	select {
	case r := <-seen:
		return r
	default:
		t.Fatal("the call returned without the server seeing a request")
		return request{}
	}
}

func TestRevokeSendsTokenInQueryString(t *testing.T) {
	ts, seen := recorder(t, http.StatusOK, `{"status":"success"}`)
	// A token with characters that need escaping checks the encoding.
	const token = "1000.abc/def+ghi=&x y"
	if err := NewClient(Options{UserAgent: "ops-tool/1.0"}).Revoke(context.Background(), ts.URL, token); err != nil {
		t.Fatal(err)
	}
	r := received(t, seen)
	if r.method != http.MethodPost || r.path != "/oauth/v2/token/revoke" {
		t.Fatalf("request %s %s", r.method, r.path)
	}
	if r.userAgent != "ops-tool/1.0" {
		t.Fatalf("User-Agent %q, want the one in Options", r.userAgent)
	}
	if got := r.query["token"]; len(got) != 1 || got[0] != token || len(r.query) != 1 {
		t.Fatalf("query %q: want exactly token=%q", r.rawQuery, token)
	}
	if r.body != "" || r.contentType != "" {
		t.Fatalf("revoke sent a body %q (Content-Type %q); the token belongs in the query string only", r.body, r.contentType)
	}
}

func TestTokenEndpointKeepsSecretsInBody(t *testing.T) {
	ok := `{"access_token":"A","refresh_token":"R","expires_in":3600}`
	app := func(u string) App { return App{AccountsURL: u, ClientID: "1000.CLIENT", ClientSecret: "s3cret"} }
	c := NewClient(Options{})
	for _, tc := range []struct {
		name string
		call func(string) error
		want url.Values
	}{
		{"exchange", func(u string) error {
			_, err := c.ExchangeCode(context.Background(), app(u), "1000.code", "https://app.example.com/cb", "ZohoCRM.modules.ALL")
			return err
		}, url.Values{
			"grant_type": {"authorization_code"}, "client_id": {"1000.CLIENT"}, "client_secret": {"s3cret"}, "code": {"1000.code"},
			"redirect_uri": {"https://app.example.com/cb"}, "scope": {"ZohoCRM.modules.ALL"},
		}},
		{"refresh", func(u string) error {
			_, err := c.Refresh(context.Background(), app(u), "1000.refresh")
			return err
		}, url.Values{
			"grant_type": {"refresh_token"}, "client_id": {"1000.CLIENT"}, "client_secret": {"s3cret"}, "refresh_token": {"1000.refresh"},
		}},
		{"client credentials", func(u string) error {
			_, err := c.ClientCredentials(context.Background(), app(u), "ZohoCRM.org.READ,ZohoCRM.users.READ", "ZohoCRM.600000000434")
			return err
		}, url.Values{
			"grant_type": {"client_credentials"}, "client_id": {"1000.CLIENT"}, "client_secret": {"s3cret"},
			"scope": {"ZohoCRM.org.READ,ZohoCRM.users.READ"}, "soid": {"ZohoCRM.600000000434"},
		}},
		{"client credentials without soid", func(u string) error {
			_, err := c.ClientCredentials(context.Background(), app(u), "ZohoCRM.org.READ", "")
			return err
		}, url.Values{
			"grant_type": {"client_credentials"}, "client_id": {"1000.CLIENT"}, "client_secret": {"s3cret"}, "scope": {"ZohoCRM.org.READ"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, seen := recorder(t, http.StatusOK, ok)
			if err := tc.call(ts.URL); err != nil {
				t.Fatal(err)
			}
			r := received(t, seen)
			if r.method != http.MethodPost || r.path != "/oauth/v2/token" {
				t.Fatalf("request %s %s", r.method, r.path)
			}
			if r.rawQuery != "" {
				t.Fatalf("query string %q: secrets must travel in the body only", r.rawQuery)
			}
			if r.contentType != "application/x-www-form-urlencoded" {
				t.Fatalf("Content-Type %q", r.contentType)
			}
			if !strings.Contains(r.userAgent, "vault-plugin-secrets-zoho") {
				t.Fatalf("User-Agent %q: by default the plugin names itself", r.userAgent)
			}
			if fmt.Sprint(r.form) != fmt.Sprint(tc.want) {
				t.Fatalf("body\n got %v\nwant %v", r.form, tc.want)
			}
		})
	}
}

// roundTrip is an http.RoundTripper made of a function.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Every call has a deadline: Options.Timeout, 10 s by default (the timeout
// docs/operations.md promises), or the caller's if it is earlier.
func TestCallDeadline(t *testing.T) {
	for _, tc := range []struct {
		name            string
		timeout, caller time.Duration // caller: the caller's context's timeout, if any
		want            time.Duration
	}{
		{"default", 0, 0, 10 * time.Second},
		{"option", 3 * time.Second, 0, 3 * time.Second},
		{"caller's earlier deadline", 0, 2 * time.Second, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var deadline time.Time
			hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				deadline, _ = r.Context().Deadline()
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"status":"success"}`))}, nil
			})}
			start := time.Now()
			ctx := context.Background()
			if tc.caller > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.caller)
				defer cancel()
			}
			if err := NewClient(Options{HTTPClient: hc, Timeout: tc.timeout}).Revoke(ctx, "https://accounts.zoho.eu", "1000.t"); err != nil {
				t.Fatal(err)
			}
			end := time.Now()
			// The deadline was set during the call: want after some instant
			// between start and end.
			if deadline.Before(start.Add(tc.want)) || deadline.After(end.Add(tc.want)) {
				t.Fatalf("deadline %s after the call began (the call took %s), want %s", deadline.Sub(start), end.Sub(start), tc.want)
			}
		})
	}
}

func TestTokenErrorsCarryNoSecrets(t *testing.T) {
	const secret, refresh = "s3cret-value", "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"
	ts, _ := recorder(t, http.StatusOK, `{"error":"invalid_code","error_description":"refresh token `+refresh+` with secret `+secret+` is unknown"}`)
	app := App{AccountsURL: ts.URL, ClientID: "1000.CLIENT", ClientSecret: secret}
	_, err := NewClient(Options{}).Refresh(context.Background(), app, refresh)
	if !IsInvalidGrant(err) {
		t.Fatalf("want invalid_code, got %v", err)
	}
	for _, s := range []string{secret, refresh} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error shows a secret: %q", err)
		}
	}
}

// closedURL is an address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	_ = l.Close()
	return u
}

// resetServer accepts connections, reads the request and resets the
// connection without answering.
func resetServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Read(make([]byte, 4096))
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST
			}
			_ = conn.Close()
		}
	}()
	return "http://" + l.Addr().String()
}

// hang answers only when the client has given up (or after a minute).
func hang(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}

// serve answers every call with h.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// wantNoToken fails if err, or any error it wraps, shows the token (raw or
// escaped) or carries the request URL.
func wantNoToken(t *testing.T, err error, token string) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	if _, ok := AsError(err); !ok {
		t.Fatalf("error is not a *zoho.Error: %T %v", err, err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		for _, s := range []string{token, url.QueryEscape(token), url.PathEscape(token)} {
			if strings.Contains(msg, s) {
				t.Fatalf("error shows the token: %q", msg)
			}
		}
		if strings.Contains(msg, "/oauth/v2/token/revoke") {
			t.Fatalf("error shows the revoke URL: %q", msg)
		}
		if _, ok := e.(*url.Error); ok {
			t.Fatalf("error wraps a *url.Error: %q", msg)
		}
	}
	if s := fmt.Sprintf("%+v %#v", err, err); strings.Contains(s, token) {
		t.Fatalf("formatted error shows the token: %s", s)
	}
}

func TestRevokeErrorsCarryNoToken(t *testing.T) {
	const token = "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"
	echo := func(status int, contentType, format string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			fmt.Fprintf(w, format, r.URL.Query().Get("token"))
		}
	}
	for _, tc := range []struct {
		name        string
		token       string // revoked instead of token
		accountsURL func(*testing.T) string
		timeout     time.Duration
		kind        Kind
		invalid     bool   // the answer is Zoho's invalid-token answer
		says        string // in the error's text
		dial        bool   // the dial error stays in the chain
	}{
		{name: "connection refused", accountsURL: closedURL, kind: KindTransport, says: "refused", dial: true},
		{name: "reset", accountsURL: resetServer, kind: KindTransport},
		{name: "timeout", timeout: 50 * time.Millisecond, kind: KindTransport, says: "timed out", accountsURL: func(t *testing.T) string {
			return serve(t, hang)
		}},
		{name: "redirect", kind: KindMalformed, accountsURL: func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://elsewhere.example.com/revoke?"+r.URL.RawQuery, http.StatusFound)
			})
		}},
		{name: "bad url", kind: KindTransport, accountsURL: func(*testing.T) string { return "http://[::1" }},
		{name: "html echo", kind: KindMalformed, accountsURL: func(t *testing.T) string {
			return serve(t, echo(http.StatusBadRequest, "text/html", "<html><body>bad token %s</body></html>"))
		}},
		{name: "json echo", kind: KindRejected, accountsURL: func(t *testing.T) string {
			return serve(t, echo(http.StatusBadRequest, "application/json", `{"error":"invalid_request","error_description":"cannot revoke %s"}`))
		}},
		// A token that escaping changes, echoed escaped as in a query string and in a path.
		{name: "escaped echo", token: "1000.abc/def+ghi jkl", kind: KindRejected, accountsURL: func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				tok := r.URL.Query().Get("token")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":"invalid_request","error_description":"cannot revoke ?token=%s nor /tokens/%s"}`, url.QueryEscape(tok), url.PathEscape(tok))
			})
		}},
		{name: "invalid token echo", kind: KindRejected, invalid: true, accountsURL: func(t *testing.T) string {
			return serve(t, echo(http.StatusBadRequest, "application/json", `{"status":"failure","error":"invalid_token","error_description":"token %s is invalid"}`))
		}},
		{name: "server error echo", kind: KindServer, accountsURL: func(t *testing.T) string {
			return serve(t, echo(http.StatusBadGateway, "text/plain", "upstream failed for %s"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token
			if tc.token != "" {
				tok = tc.token
			}
			c := NewClient(Options{Timeout: tc.timeout})
			err := c.Revoke(context.Background(), tc.accountsURL(t), tok)
			wantNoToken(t, err, tok)
			ze, _ := AsError(err)
			if ze.Kind != tc.kind || ze.Op != OpRevoke {
				t.Fatalf("kind %s op %q, want %s: %v", ze.Kind, ze.Op, tc.kind, err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q does not say %q", err, tc.says)
			}
			var oe *net.OpError
			if tc.dial && !(errors.As(err, &oe) && oe.Op == "dial") {
				t.Fatalf("the dial error is not in the chain of %v", err)
			}
			if IsTokenInvalid(err) != tc.invalid {
				t.Fatalf("IsTokenInvalid = %v, want %v: %v", !tc.invalid, tc.invalid, err)
			}
		})
	}
}

func TestRevokeCanceledCarriesNoToken(t *testing.T) {
	const token = "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"
	u := serve(t, hang)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := NewClient(Options{}).Revoke(ctx, u, token)
	wantNoToken(t, err, token)
	if !IsTemporary(err) || IsTokenInvalid(err) {
		t.Fatalf("canceled revoke: %v", err)
	}
}

// TestRevokeAgainstSimulator runs the client against the simulator, which
// accepts the token only in the query string.
func TestRevokeAgainstSimulator(t *testing.T) {
	sim := zohosim.New(zohosim.Config{})
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(ts.Close)
	sim.SetBaseURL(ts.URL)
	cl := sim.RegisterClient(zohosim.Client{DC: "eu"})
	code, err := sim.SelfClientCode(cl.ID, "", []string{"ZohoCRM.modules.ALL"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(Options{})
	app := App{AccountsURL: sim.AccountsURL("eu"), ClientID: cl.ID, ClientSecret: cl.Secret}
	tok, err := c.ExchangeCode(context.Background(), app, code, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(context.Background(), app.AccountsURL, tok.RefreshToken); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if sim.RefreshTokenValid(tok.RefreshToken) || sim.AccessTokenValid(tok.AccessToken) {
		t.Fatal("tokens alive after revocation")
	}
	err = c.Revoke(context.Background(), app.AccountsURL, tok.RefreshToken)
	if !IsTokenInvalid(err) {
		t.Fatalf("second revoke: want the invalid-token answer, got %v", err)
	}
	wantNoToken(t, err, tok.RefreshToken)
	if got := sim.ClientCounters(cl.ID); got.RevokedRefresh != 1 || got.RevokeInvalid != 1 {
		t.Fatalf("counters %+v", got)
	}
}

// TestClientCredentialsAgainstSimulator: a client-credentials token carries no
// refresh token (even if an answer had one); missing_org_info is a rejection
// whose hint tells the operator to set soid.
func TestClientCredentialsAgainstSimulator(t *testing.T) {
	sim := zohosim.New(zohosim.Config{})
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(ts.Close)
	sim.SetBaseURL(ts.URL)
	cl := sim.RegisterClient(zohosim.Client{DC: "eu", MultiOrg: true})
	c := NewClient(Options{})
	app := App{AccountsURL: sim.AccountsURL("eu"), ClientID: cl.ID, ClientSecret: cl.Secret}

	_, err := c.ClientCredentials(context.Background(), app, "ZohoCRM.org.READ", "")
	ze, ok := AsError(err)
	if !ok || ze.Kind != KindRejected || ze.Code != CodeMissingOrgInfo || ze.Op != OpClientCredentials || ze.Temporary() {
		t.Fatalf("without soid: %v", err)
	}
	if !strings.Contains(ze.Hint(), "soid") || !strings.Contains(err.Error(), "client credentials") {
		t.Fatalf("error %q with hint %q must name the grant and tell to set soid", err, ze.Hint())
	}
	tok, err := c.ClientCredentials(context.Background(), app, "ZohoCRM.org.READ,ZohoCRM.users.READ", "ZohoCRM.600000000434")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || tok.ExpiresIn != time.Hour || tok.APIDomain != sim.APIDomain("eu") || tok.Scope != "ZohoCRM.org.READ ZohoCRM.users.READ" {
		t.Fatalf("token %+v", tok)
	}
	if !sim.AccessTokenValid(tok.AccessToken) {
		t.Fatal("the simulator does not know the token")
	}

	// An answer carrying a refresh token is not trusted to have one.
	rec, _ := recorder(t, http.StatusOK, `{"access_token":"A","refresh_token":"R","expires_in":3600}`)
	tok, err = c.ClientCredentials(context.Background(), App{AccountsURL: rec.URL}, "s.x.READ", "")
	if err != nil || tok.RefreshToken != "" {
		t.Fatalf("got %+v, %v", tok, err)
	}
}

// NeverSent tells a request that never left this host (the dial failed, the
// URL was unusable: Zoho did nothing) from one whose answer may be lost.
func TestNeverSent(t *testing.T) {
	app := App{ClientID: "1000.CLIENT", ClientSecret: "secret"}
	for _, tc := range []struct {
		name        string
		accountsURL func(*testing.T) string
		timeout     time.Duration
		neverSent   bool
	}{
		{name: "connection refused", accountsURL: closedURL, neverSent: true},
		{name: "bad url", accountsURL: func(*testing.T) string { return "http://[::1" }, neverSent: true},
		{name: "reset after the request", accountsURL: resetServer},
		{name: "timeout waiting for the answer", timeout: 50 * time.Millisecond, accountsURL: func(t *testing.T) string { return serve(t, hang) }},
		{name: "server error", accountsURL: func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
		}},
		{name: "rejected", accountsURL: func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"error":"invalid_code"}`) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := app
			app.AccountsURL = tc.accountsURL(t)
			_, err := NewClient(Options{Timeout: tc.timeout}).ExchangeCode(context.Background(), app, "1000.code", "", "")
			if err == nil {
				t.Fatal("want an error")
			}
			if got := NeverSent(err); got != tc.neverSent {
				t.Fatalf("NeverSent = %v, want %v: %v", got, tc.neverSent, err)
			}
			if got := NeverSent(fmt.Errorf("wrapped: %w", err)); got != tc.neverSent {
				t.Fatalf("NeverSent of a wrapped error = %v, want %v", got, tc.neverSent)
			}
		})
	}
}
