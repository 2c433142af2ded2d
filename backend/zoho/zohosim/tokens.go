package zohosim

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Client is an OAuth client registered at the simulator.
type Client struct {
	ID           string   `json:"client_id"`
	Secret       string   `json:"client_secret"`
	DC           string   `json:"dc"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// MultiOrg: the client's product has several organisations or portals,
	// so a client_credentials grant without soid answers missing_org_info.
	MultiOrg bool `json:"multi_org,omitempty"`

	// MultiDC lists the data centers besides DC the client is enabled in
	// (Zoho's "Multi DC support"): the same id and secret are accepted
	// there, and users of those data centers may approve a device code.
	MultiDC []string `json:"multi_dc,omitempty"`
}

// servesDC reports whether the client is known at data center dc's
// accounts server.
func (c *Client) servesDC(dc string) bool {
	return c != nil && (c.DC == dc || slices.Contains(c.MultiDC, dc))
}

type grantCode struct {
	clientID, user, redirectURI string
	scopes                      []string
	offline                     bool
	redirectFlow                bool // consent redirect: redirect_uri is checked at exchange
	expires                     time.Time
}

// owner is whom refresh tokens are counted against: a user of a client.
type owner struct{ clientID, user string }

// refreshToken is a refresh token, or the source of a client's
// client_credentials tokens for one organisation (value empty, never in
// store.refresh): Zoho's per-refresh-token limits apply to either.
type refreshToken struct {
	value  string
	owner  owner
	dc     string
	scopes []string
	seq    uint64
	mints  []time.Time    // access tokens minted within the rate window, oldest first
	live   []*accessToken // access tokens minted, oldest first; pruned lazily
}

type accessToken struct {
	value, clientID, user, dc string
	scopes                    []string
	expires                   time.Time
	parent                    *refreshToken // the refresh token or client-credentials source; nil for an online-only grant
	dead                      bool
}

func (at *accessToken) liveAt(now time.Time) bool { return !at.dead && now.Before(at.expires) }

// maxGraves bounds how many dead tokens are remembered (to attribute late
// revocations and API calls to their client).
const maxGraves = 1 << 16

// store is the simulator's state; Server.mu guards it.
type store struct {
	clients  map[string]*Client
	codes    map[string]*grantCode
	codeLog  map[string][]time.Time     // consent codes issued per client, oldest first
	consents map[string]*consentRequest // consent pages shown and not answered, by consent id
	refresh  map[string]*refreshToken
	owners   map[owner][]*refreshToken // live refresh tokens, oldest first
	access   map[string]*accessToken
	ccSrc    map[ccKey]*refreshToken // client_credentials sources
	graves   map[string]string       // dead token → client id
	graveQ   []string
	seq      uint64
	work     int // tokens and codes created since the last sweep
}

func newStore() store {
	return store{
		clients:  map[string]*Client{},
		codes:    map[string]*grantCode{},
		codeLog:  map[string][]time.Time{},
		consents: map[string]*consentRequest{},
		refresh:  map[string]*refreshToken{},
		owners:   map[owner][]*refreshToken{},
		access:   map[string]*accessToken{},
		ccSrc:    map[ccKey]*refreshToken{},
		graves:   map[string]string{},
	}
}

// RegisterClient registers (or replaces) a client. An empty ID or Secret is
// generated the way Zoho shapes them; DC defaults to "us".
func (s *Server) RegisterClient(c Client) Client {
	if c.ID == "" {
		c.ID = "1000." + randAlnumUpper(30)
	}
	if c.Secret == "" {
		c.Secret = randHex(21)
	}
	c.DC = strings.ToLower(c.DC)
	if c.DC == "" {
		c.DC = "us"
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.MultiDC = slices.Clone(c.MultiDC)
	for i, dc := range c.MultiDC {
		c.MultiDC[i] = strings.ToLower(dc)
	}
	stored := c
	stored.RedirectURIs = slices.Clone(c.RedirectURIs)
	stored.MultiDC = slices.Clone(c.MultiDC)
	s.mu.Lock()
	s.st.clients[c.ID] = &stored
	s.mu.Unlock()
	return c
}

// LookupClient returns a registered client.
func (s *Server) LookupClient(id string) (Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.st.clients[id]
	if c == nil {
		return Client{}, false
	}
	cp := *c
	cp.RedirectURIs = slices.Clone(c.RedirectURIs)
	cp.MultiDC = slices.Clone(c.MultiDC)
	return cp, true
}

// SelfClientCode mints a grant code as Zoho's API console does for a Self
// Client: offline access, redirect_uri not checked at exchange, a chosen
// lifetime (0 means 3 minutes). An empty user is the default user.
func (s *Server) SelfClientCode(clientID, user string, scopes []string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		ttl = DefaultSelfClientCodeTTL
	}
	if user == "" {
		user = DefaultUser
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.clients[clientID] == nil {
		return "", fmt.Errorf("zohosim: unknown client %q", clientID)
	}
	now := s.cfg.Now()
	code := newToken()
	s.st.codes[code] = &grantCode{clientID: clientID, user: user, scopes: slices.Clone(scopes), offline: true, expires: now.Add(ttl)}
	s.maybeSweepLocked(now)
	return code, nil
}

// consentCodeLocked mints a consent-redirect code, or reports false when the
// client is past its grant-code limit.
func (s *Server) consentCodeLocked(clientID, user, redirectURI string, scopes []string, offline bool, now time.Time) (string, bool) {
	issued := pruneBefore(s.st.codeLog[clientID], now.Add(-grantCodeWindow))
	if len(issued) >= s.cfg.GrantCodeRateLimit {
		s.st.codeLog[clientID] = issued
		return "", false
	}
	s.st.codeLog[clientID] = append(issued, now)
	code := newToken()
	s.st.codes[code] = &grantCode{clientID: clientID, user: user, redirectURI: redirectURI, scopes: scopes,
		offline: offline, redirectFlow: true, expires: now.Add(s.cfg.GrantCodeTTL)}
	s.maybeSweepLocked(now)
	return code, true
}

// liveCodeLocked returns a usable grant code of clientID.
func (s *Server) liveCodeLocked(value, clientID string, now time.Time) *grantCode {
	c := s.st.codes[value]
	if c == nil || c.clientID != clientID || !now.Before(c.expires) {
		return nil
	}
	return c
}

// issueRefreshLocked mints a refresh token for a user of a client. Past
// RefreshTokenCap the pair's oldest refresh token is deleted with its access
// tokens, as Zoho does.
func (s *Server) issueRefreshLocked(clientID, user, dc string, scopes []string) *refreshToken {
	o := owner{clientID, user}
	for len(s.st.owners[o]) >= s.cfg.RefreshTokenCap {
		s.killRefreshLocked(s.st.owners[o][0], true)
	}
	s.st.seq++
	rt := &refreshToken{value: newToken(), owner: o, dc: dc, scopes: scopes, seq: s.st.seq}
	s.st.refresh[rt.value] = rt
	s.st.owners[o] = append(s.st.owners[o], rt)
	return rt
}

// ccKey names the tokens a client mints with its own credentials for one
// organisation (soid; "" when the product has one) in one data center.
type ccKey struct{ clientID, dc, soid string }

// ccSourceLocked returns the source of a client's client_credentials tokens
// for soid. Zoho documents its token rate limit and live-token cap per refresh
// token only; the simulator applies the same figures to each client and soid,
// the strictest reading, which is what the engine keeps to.
func (s *Server) ccSourceLocked(k ccKey) *refreshToken {
	src := s.st.ccSrc[k]
	if src == nil {
		src = &refreshToken{owner: owner{clientID: k.clientID}, dc: k.dc}
		s.st.ccSrc[k] = src
	}
	return src
}

// LiveClientCredentialsTokens counts the live access tokens a client minted
// with client_credentials for soid ("" for none) in data center dc.
func (s *Server) LiveClientCredentialsTokens(clientID, dc, soid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.st.ccSrc[ccKey{clientID, dc, soid}]
	if src == nil {
		return 0
	}
	return len(s.liveLocked(src, s.cfg.Now()))
}

// rateUsedLocked prunes rt's mint log to the rolling window and returns how
// many access tokens were minted within it.
func (s *Server) rateUsedLocked(rt *refreshToken, now time.Time) int {
	rt.mints = pruneBefore(rt.mints, now.Add(-s.cfg.TokenRateWindow))
	return len(rt.mints)
}

// liveLocked prunes and returns rt's live access tokens, oldest first.
func (s *Server) liveLocked(rt *refreshToken, now time.Time) []*accessToken {
	kept := rt.live[:0]
	for _, at := range rt.live {
		if at.liveAt(now) {
			kept = append(kept, at)
		}
	}
	clear(rt.live[len(kept):])
	rt.live = kept
	return kept
}

// mintLocked issues an access token, from rt (a refresh token or a
// client-credentials source) unless nil (an online-only grant). Past
// LiveTokenCap the oldest live token of rt is silently invalidated.
func (s *Server) mintLocked(rt *refreshToken, clientID, user, dc string, scopes []string, now time.Time) *accessToken {
	at := &accessToken{value: newToken(), clientID: clientID, user: user, dc: dc, scopes: scopes,
		expires: now.Add(s.cfg.AccessTokenTTL), parent: rt}
	s.st.access[at.value] = at
	if rt != nil {
		rt.mints = append(rt.mints, now)
		live := append(s.liveLocked(rt, now), at)
		for len(live) > s.cfg.LiveTokenCap {
			s.killAccessLocked(live[0])
			s.countLocked(clientID).Evictions++
			live = live[1:]
		}
		rt.live = live
	}
	s.maybeSweepLocked(now)
	return at
}

func (s *Server) killAccessLocked(at *accessToken) {
	if at.dead {
		return
	}
	at.dead = true
	delete(s.st.access, at.value)
	s.buryLocked(at.value, at.clientID)
}

// killRefreshLocked deletes rt and every access token minted from it;
// evicted says whether its live access tokens count as evictions.
func (s *Server) killRefreshLocked(rt *refreshToken, evicted bool) {
	now := s.cfg.Now()
	for _, at := range rt.live {
		if evicted && at.liveAt(now) {
			s.countLocked(rt.owner.clientID).Evictions++
		}
		s.killAccessLocked(at)
	}
	rt.live = nil
	delete(s.st.refresh, rt.value)
	list := s.st.owners[rt.owner]
	if i := slices.Index(list, rt); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(s.st.owners, rt.owner)
	} else {
		s.st.owners[rt.owner] = list
	}
	s.buryLocked(rt.value, rt.owner.clientID)
}

// buryLocked remembers a dead token's client for a while.
func (s *Server) buryLocked(token, clientID string) {
	if _, ok := s.st.graves[token]; ok {
		return
	}
	s.st.graves[token] = clientID
	s.st.graveQ = append(s.st.graveQ, token)
	if len(s.st.graveQ) > maxGraves {
		delete(s.st.graves, s.st.graveQ[0])
		s.st.graveQ[0] = ""
		s.st.graveQ = s.st.graveQ[1:]
	}
}

// tokenClientLocked returns the client a live or recently dead token belongs to.
func (s *Server) tokenClientLocked(token string) string {
	if rt := s.st.refresh[token]; rt != nil {
		return rt.owner.clientID
	}
	if at := s.st.access[token]; at != nil {
		return at.clientID
	}
	return s.st.graves[token]
}

// maybeSweepLocked garbage-collects expired codes, consent requests and
// tokens once enough new ones were created since the last sweep, so the cost
// stays amortised O(1).
func (s *Server) maybeSweepLocked(now time.Time) {
	s.st.work++
	if s.st.work < 256+(len(s.st.access)+len(s.st.codes)+len(s.st.consents))/2 {
		return
	}
	s.sweepLocked(now)
}

func (s *Server) sweepLocked(now time.Time) {
	s.st.work = 0
	for _, at := range s.st.access {
		if !at.liveAt(now) {
			s.killAccessLocked(at)
		}
	}
	for k, c := range s.st.codes {
		if !now.Before(c.expires) {
			delete(s.st.codes, k)
		}
	}
	for id, cr := range s.st.consents {
		if !now.Before(cr.expires) {
			delete(s.st.consents, id)
		}
	}
	for id, issued := range s.st.codeLog {
		if issued = pruneBefore(issued, now.Add(-grantCodeWindow)); len(issued) == 0 {
			delete(s.st.codeLog, id)
		} else {
			s.st.codeLog[id] = issued
		}
	}
}

// RevokeRefreshToken revokes a refresh token and its access tokens behind
// the engine's back, as when the user removes the app under Connected Apps.
func (s *Server) RevokeRefreshToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.st.refresh[token]
	if rt == nil {
		return false
	}
	s.killRefreshLocked(rt, false)
	return true
}

// ErrNotConnected answers RemoveConnectedApp for a user who holds no token
// of the client: Zoho's Connected Apps page does not list such an app.
var ErrNotConnected = errors.New("the app is not connected for this user (no live token of the client)")

// RemoveConnectedApp does what a user does by removing the app under Zoho's
// Connected Apps page (or what a password change that terminates API tokens
// does): every refresh token the user granted the client dies, in every data
// center, with every access token minted from it, and so do the user's
// online-only access tokens of the client. Nothing tells the engine: its
// cached access token simply stops working and its next refresh gets
// invalid_code. It returns how many refresh and access tokens died; an
// unknown client, or a user holding no live token of it, is an error and
// changes nothing. user "" is DefaultUser. No counter changes: nothing was
// requested of the accounts server.
func (s *Server) RemoveConnectedApp(clientID, user string) (refreshTokens, accessTokens int, err error) {
	if user == "" {
		user = DefaultUser
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.clients[clientID] == nil {
		return 0, 0, fmt.Errorf("unknown client %q", clientID)
	}
	now := s.cfg.Now()
	o := owner{clientID, user}
	for _, rt := range slices.Clone(s.st.owners[o]) {
		accessTokens += len(s.liveLocked(rt, now))
		s.killRefreshLocked(rt, false)
		refreshTokens++
	}
	for _, at := range s.st.access {
		if at.parent == nil && at.clientID == clientID && at.user == user && at.liveAt(now) {
			s.killAccessLocked(at)
			accessTokens++
		}
	}
	if refreshTokens == 0 && accessTokens == 0 {
		return 0, 0, ErrNotConnected
	}
	return refreshTokens, accessTokens, nil
}

// EvictOldestAccessToken silently invalidates the oldest live access token
// of a refresh token, as Zoho does past its live-token cap.
func (s *Server) EvictOldestAccessToken(refreshToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.st.refresh[refreshToken]
	if rt == nil {
		return false
	}
	live := s.liveLocked(rt, s.cfg.Now())
	if len(live) == 0 {
		return false
	}
	s.killAccessLocked(live[0])
	s.countLocked(rt.owner.clientID).Evictions++
	return true
}

// AccessTokenValid reports whether token is a live access token.
func (s *Server) AccessTokenValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.st.access[token]
	return at != nil && at.liveAt(s.cfg.Now())
}

// RefreshTokenValid reports whether token is a live refresh token.
func (s *Server) RefreshTokenValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.refresh[token] != nil
}

// LiveAccessTokens counts the live access tokens minted from a refresh token.
func (s *Server) LiveAccessTokens(refreshToken string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.st.refresh[refreshToken]
	if rt == nil {
		return 0
	}
	return len(s.liveLocked(rt, s.cfg.Now()))
}

// RefreshTokens lists the live refresh tokens of a client, oldest first.
func (s *Server) RefreshTokens(clientID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var mine []*refreshToken
	for o, list := range s.st.owners {
		if o.clientID == clientID {
			mine = append(mine, list...)
		}
	}
	slices.SortFunc(mine, func(a, b *refreshToken) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]string, len(mine))
	for i, rt := range mine {
		out[i] = rt.value
	}
	return out
}

// pruneBefore drops the leading times at or before cut.
func pruneBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == len(ts) {
		return ts[:0]
	}
	return ts[i:]
}

// splitScopes reads a scope list: comma-separated as Zoho documents it,
// spaces tolerated.
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// newToken returns a value shaped like Zoho's tokens: 1000.<32 hex>.<32 hex>.
func newToken() string { return "1000." + randHex(16) + "." + randHex(16) }

func randHex(nBytes int) string {
	b := make([]byte, nBytes)
	if _, err := rand.Read(b); err != nil {
		panic("zohosim: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// randAlnumUpper returns n characters from A-Z0-9, uniformly.
func randAlnumUpper(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("zohosim: crypto/rand: " + err.Error())
		}
		for _, b := range buf {
			if b < 252 && len(out) < n { // 252 = 7*36: no modulo bias
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
