// Package zohosim simulates Zoho's OAuth 2.0 accounts server on loopback:
// grant codes (Self Client and consent redirect), code exchange, refresh,
// revocation, a protected resource, Zoho's limits and its habit of answering
// errors with HTTP 200. Tests read its call counters and inject faults; `make
// dev` runs it as a process (cmd/zoho-sim) so the engine can be tried offline.
package zohosim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DataCenters served by the simulator, each under the path prefix /<dc>.
var DataCenters = []string{"us", "eu", "in", "au", "jp", "cn", "ca", "sa", "uk", "ae"}

// Config sets the simulator's behaviour; zero values take Zoho's defaults
// (the strictest where Zoho's documents disagree).
type Config struct {
	AccessTokenTTL     time.Duration // default 1h
	GrantCodeTTL       time.Duration // redirect-flow codes; default 60s
	TokenRateLimit     int           // access tokens per refresh token per window; default 10
	TokenRateWindow    time.Duration // rolling; default 10m
	ThrottleHTTPStatus int           // status of the "Access Denied" answer: 200 (default) or 400
	LiveTokenCap       int           // live access tokens per refresh token; default 10
	RefreshTokenCap    int           // refresh tokens per user and client; default 20
	GrantCodeRateLimit int           // grant codes per client per 10 minutes; default 10
	LegacyMillis       bool          // expires_in in milliseconds with expires_in_sec beside it
	Now                func() time.Time
}

func (c *Config) defaults() {
	if c.AccessTokenTTL <= 0 {
		c.AccessTokenTTL = time.Hour
	}
	if c.GrantCodeTTL <= 0 {
		c.GrantCodeTTL = time.Minute
	}
	if c.TokenRateLimit <= 0 {
		c.TokenRateLimit = 10
	}
	if c.TokenRateWindow <= 0 {
		c.TokenRateWindow = 10 * time.Minute
	}
	if c.ThrottleHTTPStatus == 0 {
		c.ThrottleHTTPStatus = http.StatusOK
	}
	if c.LiveTokenCap <= 0 {
		c.LiveTokenCap = 10
	}
	if c.RefreshTokenCap <= 0 {
		c.RefreshTokenCap = 20
	}
	if c.GrantCodeRateLimit <= 0 {
		c.GrantCodeRateLimit = 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Client is an OAuth client registered at the simulator.
type Client struct {
	ID           string   `json:"client_id"`
	Secret       string   `json:"client_secret"`
	DC           string   `json:"dc"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
}

// Counters count calls by outcome.
type Counters struct {
	AuthRequests     int64 `json:"auth_requests"`
	Exchanges        int64 `json:"exchanges"`
	ExchangeFailures int64 `json:"exchange_failures"`
	Refreshes        int64 `json:"refreshes"`
	RefreshFailures  int64 `json:"refresh_failures"`
	Throttled        int64 `json:"throttled"`
	TokenRequests    int64 `json:"token_requests"`
	Revokes          int64 `json:"revokes"`
	RevokedRefresh   int64 `json:"revoked_refresh"`
	RevokedAccess    int64 `json:"revoked_access"`
	RevokeInvalid    int64 `json:"revoke_invalid"`
	Evictions        int64 `json:"evictions"`
	ResourceOK       int64 `json:"resource_ok"`
	ResourceDenied   int64 `json:"resource_denied"`
	FaultsInjected   int64 `json:"faults_injected"`
}

func (c *Counters) add(o *Counters) {
	c.AuthRequests += o.AuthRequests
	c.Exchanges += o.Exchanges
	c.ExchangeFailures += o.ExchangeFailures
	c.Refreshes += o.Refreshes
	c.RefreshFailures += o.RefreshFailures
	c.Throttled += o.Throttled
	c.TokenRequests += o.TokenRequests
	c.Revokes += o.Revokes
	c.RevokedRefresh += o.RevokedRefresh
	c.RevokedAccess += o.RevokedAccess
	c.RevokeInvalid += o.RevokeInvalid
	c.Evictions += o.Evictions
	c.ResourceOK += o.ResourceOK
	c.ResourceDenied += o.ResourceDenied
	c.FaultsInjected += o.FaultsInjected
}

type grantCode struct {
	clientID, user, redirectURI string
	scopes                      []string
	offline, redirectFlow       bool
	expires                     time.Time
}

type refreshToken struct {
	value, clientID, user, dc string
	scopes                    []string
	created                   time.Time
	mints                     []time.Time    // rolling window of minted access tokens
	live                      []*accessToken // oldest first
	dead                      bool
}

type accessToken struct {
	value, clientID, user, dc string
	scopes                    []string
	expires                   time.Time
	parent                    *refreshToken // nil for client_credentials tokens
	dead                      bool
}

// Server is the simulator. All methods are safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	cfg      Config
	baseURL  string
	clients  map[string]*Client
	codes    map[string]*grantCode
	codeLog  map[string][]time.Time // grant codes issued per client
	refresh  map[string]*refreshToken
	access   map[string]*accessToken
	counters map[string]*Counters // by client id; "" for unknown clients
	faults   []*Fault
	minted   int // access tokens minted since the last sweep

	listener net.Listener
	httpSrv  *http.Server
	closed   atomic.Bool
}

// New returns a simulator with cfg.
func New(cfg Config) *Server {
	cfg.defaults()
	return &Server{
		cfg:      cfg,
		clients:  map[string]*Client{},
		codes:    map[string]*grantCode{},
		codeLog:  map[string][]time.Time{},
		refresh:  map[string]*refreshToken{},
		access:   map[string]*accessToken{},
		counters: map[string]*Counters{},
	}
}

// Start listens on addr (loopback only; "127.0.0.1:0" picks a free port),
// serves in the background and returns the base URL.
func (s *Server) Start(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("zohosim: refusing to listen on %q: loopback only", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.listener = l
	base := "http://" + l.Addr().String()
	s.SetBaseURL(base)
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(l) }()
	return base, nil
}

// Close stops a started server.
func (s *Server) Close() error {
	if s.httpSrv == nil || !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.httpSrv.Close()
}

// SetBaseURL sets the URL the simulator is reached at (Start does this).
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	s.baseURL = strings.TrimRight(u, "/")
	s.mu.Unlock()
}

// AccountsURL is the accounts server of data center dc.
func (s *Server) AccountsURL(dc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL + "/" + dc
}

// APIDomain is the api_domain handed out for data center dc.
func (s *Server) APIDomain(dc string) string { return s.AccountsURL(dc) + "/api" }

// Runtime knobs.
func (s *Server) SetAccessTokenTTL(d time.Duration) { s.with(func(c *Config) { c.AccessTokenTTL = d }) }
func (s *Server) SetLegacyMillis(on bool)           { s.with(func(c *Config) { c.LegacyMillis = on }) }
func (s *Server) SetThrottleHTTPStatus(code int) {
	s.with(func(c *Config) { c.ThrottleHTTPStatus = code })
}
func (s *Server) SetLiveTokenCap(n int) { s.with(func(c *Config) { c.LiveTokenCap = n }) }
func (s *Server) SetTokenRateLimit(limit int, window time.Duration) {
	s.with(func(c *Config) { c.TokenRateLimit, c.TokenRateWindow = limit, window })
}

func (s *Server) with(f func(*Config)) {
	s.mu.Lock()
	f(&s.cfg)
	s.cfg.defaults()
	s.mu.Unlock()
}

// RegisterClient registers c, generating its id and secret if empty.
func (s *Server) RegisterClient(c Client) Client {
	if c.ID == "" {
		c.ID = "1000." + randUpper(30)
	}
	if c.Secret == "" {
		c.Secret = randHex(21)
	}
	if c.DC == "" {
		c.DC = "us"
	}
	s.mu.Lock()
	cp := c
	cp.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	s.clients[c.ID] = &cp
	s.mu.Unlock()
	return c
}

// SelfClientCode mints a grant code the way a Self Client does in Zoho's API
// console: offline access, no redirect URI, a chosen lifetime (default 3 min).
func (s *Server) SelfClientCode(clientID, user string, scopes []string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		ttl = 3 * time.Minute
	}
	if user == "" {
		user = "demo@example.com"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[clientID] == nil {
		return "", fmt.Errorf("zohosim: unknown client %q", clientID)
	}
	code := newToken()
	s.codes[code] = &grantCode{clientID: clientID, user: user, scopes: append([]string(nil), scopes...), offline: true, expires: s.cfg.Now().Add(ttl)}
	return code, nil
}

// RevokeRefreshToken revokes a refresh token behind the engine's back (as when
// a user removes the app under Connected Apps), with its access tokens.
func (s *Server) RevokeRefreshToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.refresh[token]
	if rt == nil || rt.dead {
		return false
	}
	s.killRefreshLocked(rt)
	return true
}

// EvictOldestAccessToken invalidates the oldest live access token of a
// refresh token, as Zoho does silently when too many are live.
func (s *Server) EvictOldestAccessToken(refreshToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.refresh[refreshToken]
	if rt == nil {
		return false
	}
	live := s.liveLocked(rt)
	if len(live) == 0 {
		return false
	}
	live[0].dead = true
	s.countLocked(rt.clientID).Evictions++
	return true
}

// AccessTokenValid reports whether token is a live access token.
func (s *Server) AccessTokenValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.access[token]
	return at != nil && !at.dead && s.cfg.Now().Before(at.expires)
}

// RefreshTokenValid reports whether token is a live refresh token.
func (s *Server) RefreshTokenValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.refresh[token]
	return rt != nil && !rt.dead
}

// LiveAccessTokens counts the live access tokens of a refresh token.
func (s *Server) LiveAccessTokens(refreshToken string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.refresh[refreshToken]
	if rt == nil {
		return 0
	}
	return len(s.liveLocked(rt))
}

// Counters returns the totals over all clients.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total Counters
	for _, c := range s.counters {
		total.add(c)
	}
	return total
}

// ClientCounters returns the counters of one client.
func (s *Server) ClientCounters(clientID string) Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counters[clientID]; c != nil {
		return *c
	}
	return Counters{}
}

// ResetCounters zeroes every counter.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	s.counters = map[string]*Counters{}
	s.mu.Unlock()
}

func (s *Server) countLocked(clientID string) *Counters {
	c := s.counters[clientID]
	if c == nil {
		c = &Counters{}
		s.counters[clientID] = c
	}
	return c
}

func (s *Server) liveLocked(rt *refreshToken) []*accessToken {
	now := s.cfg.Now()
	kept := rt.live[:0]
	for _, at := range rt.live {
		if !at.dead && now.Before(at.expires) {
			kept = append(kept, at)
		}
	}
	rt.live = kept
	return kept
}

func (s *Server) killRefreshLocked(rt *refreshToken) {
	rt.dead = true
	for _, at := range rt.live {
		at.dead = true
	}
	rt.live = nil
}

// mintLocked issues an access token from rt (nil for client credentials),
// evicting the oldest live one past the cap.
func (s *Server) mintLocked(rt *refreshToken, clientID, user, dc string, scopes []string) *accessToken {
	now := s.cfg.Now()
	at := &accessToken{value: newToken(), clientID: clientID, user: user, dc: dc, scopes: scopes, expires: now.Add(s.cfg.AccessTokenTTL), parent: rt}
	s.access[at.value] = at
	if rt != nil {
		rt.mints = append(rt.mints, now)
		live := append(s.liveLocked(rt), at)
		for len(live) > s.cfg.LiveTokenCap {
			live[0].dead = true
			live = live[1:]
			s.countLocked(clientID).Evictions++
		}
		rt.live = live
	}
	s.minted++
	if s.minted >= 1024 {
		s.sweepLocked(now)
	}
	return at
}

// sweepLocked forgets expired codes and dead or expired access tokens so a
// long run stays within bounded memory.
func (s *Server) sweepLocked(now time.Time) {
	s.minted = 0
	for k, at := range s.access {
		if at.dead || !now.Before(at.expires) {
			delete(s.access, k)
		}
	}
	for k, c := range s.codes {
		if !now.Before(c.expires) {
			delete(s.codes, k)
		}
	}
}

// windowLocked prunes rt's mint log to the rolling window and returns its size.
func (s *Server) windowLocked(rt *refreshToken) int {
	cut := s.cfg.Now().Add(-s.cfg.TokenRateWindow)
	i := 0
	for i < len(rt.mints) && !rt.mints[i].After(cut) {
		i++
	}
	rt.mints = rt.mints[i:]
	return len(rt.mints)
}

// newToken returns a token shaped like Zoho's: 1000.<32 hex>.<32 hex>.
func newToken() string { return "1000." + randHex(16) + "." + randHex(16) }

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func randUpper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// RefreshTokens lists the live refresh tokens of a client, oldest first, so
// tests can check that none was lost and none leaked.
func (s *Server) RefreshTokens(clientID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var live []*refreshToken
	for _, rt := range s.refresh {
		if rt.clientID == clientID && !rt.dead {
			live = append(live, rt)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].created.Before(live[j].created) })
	out := make([]string, len(live))
	for i, rt := range live {
		out[i] = rt.value
	}
	return out
}
