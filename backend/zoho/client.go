// Package zoho is a small HTTP client of Zoho's OAuth 2.0 accounts server:
// grant-code exchange, refresh, client credentials, revocation, the data-center table and the
// mapping of Zoho's answers (which report errors with HTTP 200) to errors.
// It has no Vault dependencies.
package zoho

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds every call when the caller's context has no earlier deadline.
const DefaultTimeout = 10 * time.Second

// maxBody bounds how much of an answer is read.
const maxBody = 1 << 20

// App identifies an OAuth client at one accounts server.
type App struct {
	AccountsURL  string // e.g. https://accounts.zoho.eu, no trailing slash
	ClientID     string
	ClientSecret string
}

// Client calls Zoho's accounts server. It is safe for concurrent use and holds
// no per-account state.
type Client struct {
	http      *http.Client
	timeout   time.Duration
	userAgent string
}

// Options configure a Client. The zero value is usable.
type Options struct {
	HTTPClient *http.Client  // default: a dedicated client with pooled connections
	Timeout    time.Duration // per call; default DefaultTimeout
	UserAgent  string
}

// NewClient returns a Client.
func NewClient(opts Options) *Client {
	hc := opts.HTTPClient
	if hc == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = 16
		hc = &http.Client{Transport: transport}
	}
	// Never follow redirects: a token endpoint that redirects is misconfigured,
	// and following would resend the request elsewhere.
	clone := *hc
	clone.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "vault-plugin-secrets-zoho"
	}
	return &Client{http: &clone, timeout: timeout, userAgent: ua}
}

// ExchangeCode trades a grant code for an access token and, with offline access,
// a refresh token (grant_type=authorization_code).
func (c *Client) ExchangeCode(ctx context.Context, app App, code, redirectURI, scopes string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"code":          {code},
	}
	if redirectURI != "" {
		form.Set("redirect_uri", redirectURI)
	}
	if scopes != "" {
		form.Set("scope", scopes)
	}
	return c.token(ctx, OpExchange, app.AccountsURL, form)
}

// Refresh mints a new access token from a refresh token
// (grant_type=refresh_token). Zoho's answer carries no refresh token: the
// caller keeps the one it has.
func (c *Client) Refresh(ctx context.Context, app App, refreshToken string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"refresh_token": {refreshToken},
	}
	tok, err := c.token(ctx, OpRefresh, app.AccountsURL, form)
	if tok != nil {
		tok.RefreshToken = ""
	}
	return tok, err
}

// ClientCredentials mints an access token with the client's own credentials
// (grant_type=client_credentials; Zoho offers it to Self Clients). scopes is
// comma-separated, as Zoho documents it. soid (<Service>.<org id>, e.g.
// ZohoCRM.600…434) is sent when not empty: for products with several
// organisations or portals Zoho answers missing_org_info without it. The
// answer carries no refresh token: the caller asks again when the token
// expires.
func (c *Client) ClientCredentials(ctx context.Context, app App, scopes, soid string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"scope":         {scopes},
	}
	if soid != "" {
		form.Set("soid", soid)
	}
	tok, err := c.token(ctx, OpClientCredentials, app.AccountsURL, form)
	if tok != nil {
		tok.RefreshToken = ""
	}
	return tok, err
}

// Revoke revokes a refresh token (and with it every access token minted from
// it) or a single access token. It returns nil only on Zoho's success answer;
// Zoho's explicit invalid-token answer is an error for which IsTokenInvalid is
// true, and anything else is a failure to retry.
//
// The token goes in the query string, as Zoho documents
// (POST /oauth/v2/token/revoke?token=…), with no body. That URL is never
// put in an error.
func (c *Client) Revoke(ctx context.Context, accountsURL, token string) error {
	endpoint := accountsURL + "/oauth/v2/token/revoke?" + url.Values{"token": {token}}.Encode()
	status, body, err := c.post(ctx, OpRevoke, endpoint, nil)
	if err != nil {
		return redact(err, token)
	}
	return redact(ParseRevokeResponse(status, body), token)
}

// token calls /oauth/v2/token with form in the body, never in the query
// string, which ends up in access logs.
func (c *Client) token(ctx context.Context, op, accountsURL string, form url.Values) (*Token, error) {
	status, body, err := c.post(ctx, op, accountsURL+"/oauth/v2/token", form)
	if err != nil {
		return nil, redact(err, form.Get("client_secret"), form.Get("code"), form.Get("refresh_token"))
	}
	tok, err := ParseTokenResponse(op, status, body)
	return tok, redact(err, form.Get("client_secret"), form.Get("code"), form.Get("refresh_token"))
}

// post sends form, if any, in the body and returns the status and a bounded
// body. Errors never carry endpoint, which may hold a token.
func (c *Client) post(ctx context.Context, op, endpoint string, form url.Values) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	payload := io.Reader(http.NoBody)
	if form != nil {
		payload = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, payload)
	if err != nil {
		return 0, nil, &Error{Op: op, Kind: KindTransport, Err: errors.New("invalid accounts server URL"), NotSent: true}
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, &Error{Op: op, Kind: KindTransport, Err: transportCause(ctx, err), NotSent: dialFailed(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		// A body cut short is a malformed answer, not a success.
		return 0, nil, &Error{Op: op, Kind: KindTransport, HTTPStatus: resp.StatusCode, Err: transportCause(ctx, err)}
	}
	return resp.StatusCode, body, nil
}

// dialFailed reports whether err says the connection to the accounts server
// could not be opened (refused, no route, DNS): the request was never sent.
// net/http resends a POST on a new connection only when nothing of it was
// written on the old one, so a dial error is never the end of a request that
// was sent. It is read before transportCause reduces err.
func dialFailed(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// transportCause reduces a transport error to its cause, dropping the request
// URL that net/http wraps around it.
func transportCause(ctx context.Context, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return errors.New("timed out")
	}
	if ctx.Err() == context.Canceled {
		return errors.New("canceled")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("timed out")
	}
	return err
}
