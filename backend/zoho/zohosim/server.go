// Package zohosim is an in-memory simulator of Zoho's OAuth 2.0 accounts
// server: grant codes (from a consent page with Accept and Deny, and from the
// Self Client), code exchange, refresh, client credentials (per client and
// soid; missing_org_info for a client registered as multi-org), revocation,
// the device authorization flow (device.go), a protected resource, the APIs
// of four Zoho products in the request forms their documents give
// (products.go), Zoho's
// limits (token throttle, live-token cap, refresh-token cap, grant-code
// throttle) and its habit of answering errors with HTTP 200. Unit and end-to-end tests run it in process
// and read its counters or inject faults; cmd/zoho-sim runs it as a loopback
// process so the engine can be tried without a Zoho account.
//
// Every data center is served under its own path prefix (/us, /eu, …), so one
// listener plays all of Zoho's accounts servers. Tokens are valid only in the
// data center that issued them; a client is known in its own data center and
// in those it has Multi DC support for (Client.MultiDC). Like Zoho's documents, revocation takes the
// token in the query string only (POST /<dc>/oauth/v2/token/revoke?token=…);
// a token in a form body is no token. The simulator never logs token or
// secret values.
package zohosim

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DataCenters are the data centers served, each under the prefix /<dc>.
var DataCenters = []string{"us", "eu", "in", "au", "jp", "cn", "ca", "sa", "uk", "ae"}

func knownDC(dc string) bool {
	for _, d := range DataCenters {
		if d == dc {
			return true
		}
	}
	return false
}

// Config sets the simulator's behaviour. Zero values take Zoho's defaults,
// the strictest figure where Zoho's documents disagree.
type Config struct {
	AccessTokenTTL     time.Duration    // lifetime of access tokens; default 1h
	GrantCodeTTL       time.Duration    // lifetime of consent-redirect codes; default 60s
	TokenRateLimit     int              // access tokens per refresh token per window; default 10
	TokenRateWindow    time.Duration    // rolling window of TokenRateLimit; default 10m
	ThrottleHTTPStatus int              // status of the "Access Denied" answer: 200 (default) or 400
	LiveTokenCap       int              // live access tokens per refresh token; default 10
	RefreshTokenCap    int              // refresh tokens per user and client; default 20
	GrantCodeRateLimit int              // consent codes per client per 10 minutes; default 10
	ConsentTTL         time.Duration    // how long a consent page can be answered; default 5m
	LegacyMillis       bool             // expires_in in milliseconds, expires_in_sec beside it
	DeviceCodeTTL      time.Duration    // lifetime of device and user codes; default 5m
	DevicePollInterval time.Duration    // least time between two polls of a device code; default 30s
	DeviceAutoApprove  bool             // approve every device code as DefaultUser as soon as it is issued
	Now                func() time.Time // clock; default time.Now

	// DeviceAnnouncedPollInterval, when set, is the interval device code
	// answers announce instead of DevicePollInterval, which slow_down still
	// enforces. Zoho documents one poll per 30 s ("two polling requests within
	// 30 seconds" get slow_down) whatever interval it announces, so a client
	// keeping to a shorter announced one is slowed down.
	DeviceAnnouncedPollInterval time.Duration

	// DeviceOmitsInterval leaves interval out of device code answers (Zoho's
	// documentation lists it, but a client must not depend on it); the
	// enforced interval is still DevicePollInterval.
	DeviceOmitsInterval bool
}

// Defaults of Config.
const (
	DefaultAccessTokenTTL     = time.Hour
	DefaultGrantCodeTTL       = time.Minute
	DefaultTokenRateLimit     = 10
	DefaultTokenRateWindow    = 10 * time.Minute
	DefaultLiveTokenCap       = 10
	DefaultRefreshTokenCap    = 20
	DefaultGrantCodeRateLimit = 10
	DefaultSelfClientCodeTTL  = 3 * time.Minute
	DefaultDeviceCodeTTL      = 5 * time.Minute
	DefaultDevicePollInterval = 30 * time.Second
	DefaultConsentTTL         = 5 * time.Minute
	DefaultUser               = "demo@example.com" // prefilled on the consent page

	grantCodeWindow = 10 * time.Minute
)

func (c *Config) fill() {
	if c.AccessTokenTTL <= 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.GrantCodeTTL <= 0 {
		c.GrantCodeTTL = DefaultGrantCodeTTL
	}
	if c.TokenRateLimit <= 0 {
		c.TokenRateLimit = DefaultTokenRateLimit
	}
	if c.TokenRateWindow <= 0 {
		c.TokenRateWindow = DefaultTokenRateWindow
	}
	if c.ThrottleHTTPStatus != http.StatusBadRequest {
		c.ThrottleHTTPStatus = http.StatusOK
	}
	if c.LiveTokenCap <= 0 {
		c.LiveTokenCap = DefaultLiveTokenCap
	}
	if c.RefreshTokenCap <= 0 {
		c.RefreshTokenCap = DefaultRefreshTokenCap
	}
	if c.GrantCodeRateLimit <= 0 {
		c.GrantCodeRateLimit = DefaultGrantCodeRateLimit
	}
	if c.DeviceCodeTTL <= 0 {
		c.DeviceCodeTTL = DefaultDeviceCodeTTL
	}
	if c.DevicePollInterval <= 0 {
		c.DevicePollInterval = DefaultDevicePollInterval
	}
	if c.ConsentTTL <= 0 {
		c.ConsentTTL = DefaultConsentTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Server is the simulator. All its methods are safe for concurrent use.
type Server struct {
	mu       sync.Mutex // guards everything below
	cfg      Config
	baseURL  string
	st       store
	counters map[string]*Counters // by registered client id; "" for the rest
	faults   []*Fault
	dev      devices   // device authorizations (device.go)
	secrets  secretLog // requests that carried a client_secret (secretlog.go)

	lifeMu  sync.Mutex
	httpSrv *http.Server
}

// New returns a simulator configured by cfg.
func New(cfg Config) *Server {
	cfg.fill()
	return &Server{cfg: cfg, st: newStore(), counters: map[string]*Counters{}, dev: newDevices()}
}

// Start listens on addr, which must be a loopback address ("127.0.0.1:0"
// picks a free port), serves in the background and returns the base URL.
func (s *Server) Start(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("zohosim: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("zohosim: refusing to listen on %q: loopback addresses only", addr)
	}
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.httpSrv != nil {
		return "", errors.New("zohosim: already started")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("zohosim: %w", err)
	}
	base := "http://" + l.Addr().String()
	s.SetBaseURL(base)
	s.httpSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func(srv *http.Server) { _ = srv.Serve(l) }(s.httpSrv)
	return base, nil
}

// Close stops a started simulator, dropping open connections. The state
// stays readable.
func (s *Server) Close() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.httpSrv == nil {
		return nil
	}
	err := s.httpSrv.Close()
	s.httpSrv = nil
	return err
}

// SetBaseURL sets the URL the simulator is reached at; AccountsURL and
// APIDomain build on it. Start sets it. Without one, answers use the Host of
// each request.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	s.baseURL = strings.TrimRight(u, "/")
	s.mu.Unlock()
}

// AccountsURL is the accounts server of data center dc: base + "/" + dc.
func (s *Server) AccountsURL(dc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL + "/" + dc
}

// APIDomain is the api_domain handed out in data center dc.
func (s *Server) APIDomain(dc string) string { return s.AccountsURL(dc) + "/api" }

// baseLocked is the base URL, or the one a request came in at when unset.
func (s *Server) baseLocked(r *http.Request) string {
	if s.baseURL != "" || r == nil {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Runtime knobs; zero or invalid values restore the defaults.

// SetAccessTokenTTL sets the lifetime of access tokens minted from now on.
func (s *Server) SetAccessTokenTTL(d time.Duration) {
	s.configure(func(c *Config) { c.AccessTokenTTL = d })
}

// SetGrantCodeTTL sets the lifetime of consent codes issued from now on.
func (s *Server) SetGrantCodeTTL(d time.Duration) {
	s.configure(func(c *Config) { c.GrantCodeTTL = d })
}

// SetConsentTTL sets how long consent pages shown from now on can be
// answered.
func (s *Server) SetConsentTTL(d time.Duration) {
	s.configure(func(c *Config) { c.ConsentTTL = d })
}

// SetLegacyMillis switches expires_in to milliseconds with expires_in_sec.
func (s *Server) SetLegacyMillis(on bool) {
	s.configure(func(c *Config) { c.LegacyMillis = on })
}

// SetThrottleHTTPStatus sets the status of "Access Denied": 200 or 400.
func (s *Server) SetThrottleHTTPStatus(code int) {
	s.configure(func(c *Config) { c.ThrottleHTTPStatus = code })
}

// SetLiveTokenCap sets how many access tokens per refresh token stay live.
func (s *Server) SetLiveTokenCap(n int) {
	s.configure(func(c *Config) { c.LiveTokenCap = n })
}

// SetRefreshTokenCap sets how many refresh tokens a user of a client keeps.
func (s *Server) SetRefreshTokenCap(n int) {
	s.configure(func(c *Config) { c.RefreshTokenCap = n })
}

// SetGrantCodeRateLimit sets the consent codes per client per 10 minutes.
func (s *Server) SetGrantCodeRateLimit(n int) {
	s.configure(func(c *Config) { c.GrantCodeRateLimit = n })
}

// SetDeviceCodeTTL sets the lifetime of device codes issued from now on.
func (s *Server) SetDeviceCodeTTL(d time.Duration) {
	s.configure(func(c *Config) { c.DeviceCodeTTL = d })
}

// SetDevicePollInterval sets the polling interval of device codes issued
// from now on: the interval their answer announces and the one slow_down
// enforces.
func (s *Server) SetDevicePollInterval(d time.Duration) {
	s.configure(func(c *Config) { c.DevicePollInterval = d })
}

// SetDeviceAnnouncedPollInterval sets the interval announced by device codes
// issued from now on, leaving the enforced one (SetDevicePollInterval) alone;
// 0 announces the enforced one.
func (s *Server) SetDeviceAnnouncedPollInterval(d time.Duration) {
	s.configure(func(c *Config) { c.DeviceAnnouncedPollInterval = d })
}

// SetDeviceOmitsInterval makes device code answers issued from now on
// leave interval out (on) or carry it (off).
func (s *Server) SetDeviceOmitsInterval(on bool) {
	s.configure(func(c *Config) { c.DeviceOmitsInterval = on })
}

// SetDeviceAutoApprove makes every device code issued from now on approved
// at once, as DefaultUser in the data center that issued it.
func (s *Server) SetDeviceAutoApprove(on bool) {
	s.configure(func(c *Config) { c.DeviceAutoApprove = on })
}

// SetTokenRateLimit sets the access tokens minted per refresh token per
// rolling window.
func (s *Server) SetTokenRateLimit(limit int, window time.Duration) {
	s.configure(func(c *Config) { c.TokenRateLimit, c.TokenRateWindow = limit, window })
}

func (s *Server) configure(f func(*Config)) {
	s.mu.Lock()
	f(&s.cfg)
	s.cfg.fill()
	s.mu.Unlock()
}

// Handler serves the simulator's whole HTTP surface: every data center's
// OAuth endpoints and protected resource, /oauth/serverinfo and the /sim/
// control API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/serverinfo", s.serveServerInfo)
	mux.HandleFunc("GET /{dc}/oauth/v2/auth", s.inDC(s.serveAuth))
	mux.HandleFunc("POST /{dc}/oauth/v2/auth/consent", s.inDC(s.serveConsent))
	mux.HandleFunc("POST /{dc}/oauth/v2/token", s.inDC(s.serveToken))
	mux.HandleFunc("POST /{dc}/oauth/v2/token/revoke", s.inDC(s.serveRevoke))
	mux.HandleFunc("GET /{dc}/api/whoami", s.inDC(s.serveResource))
	mux.HandleFunc("GET /{dc}/oauth/user/info", s.inDC(s.serveResource))
	mux.HandleFunc("POST /{dc}/oauth/v3/device/code", s.inDC(s.serveDeviceCode))
	mux.HandleFunc("POST /{dc}/oauth/v3/device/token", s.inDC(s.serveDeviceToken))
	mux.HandleFunc("GET /{dc}/oauth/v3/device", s.inDC(s.serveVerifyPage))
	mux.HandleFunc("POST /{dc}/oauth/v3/device", s.inDC(s.serveVerifyDecision))
	s.productRoutes(mux) // products.go
	s.controlRoutes(mux)
	s.deviceControlRoutes(mux)
	return mux
}

// inDC answers 404 for an unknown data-center prefix.
func (s *Server) inDC(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dc := r.PathValue("dc")
		if !knownDC(dc) {
			http.NotFound(w, r)
			return
		}
		h(w, r, dc)
	}
}
