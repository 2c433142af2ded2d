package zohosim

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// FaultKind is a way of answering badly.
type FaultKind string

const (
	FaultLatency   FaultKind = "latency"   // wait Latency, then answer normally
	FaultStatus    FaultKind = "status"    // answer Status (e.g. 502) with a small HTML body
	FaultReset     FaultKind = "reset"     // close the connection without answering
	FaultGarbage   FaultKind = "garbage"   // HTTP 200 with bytes that are not JSON
	FaultTruncated FaultKind = "truncated" // HTTP 200 with a JSON body cut in half
	FaultError     FaultKind = "error"     // HTTP 200 {"error": ErrorCode}
	FaultThrottle  FaultKind = "throttle"  // the "Access Denied" answer
)

// Fault makes matching requests fail.
type Fault struct {
	Endpoint  string        `json:"endpoint"`             // token, revoke, resource, auth or *
	GrantType string        `json:"grant_type,omitempty"` // for token: authorization_code or refresh_token
	ClientID  string        `json:"client_id,omitempty"`
	Kind      FaultKind     `json:"kind"`
	Latency   time.Duration `json:"latency,omitempty"`
	Status    int           `json:"status,omitempty"`
	ErrorCode string        `json:"error_code,omitempty"`
	Times     int           `json:"times,omitempty"` // 0: until cleared
}

// AddFault installs a fault; faults apply in the order added.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	cp := f
	s.faults = append(s.faults, &cp)
	s.mu.Unlock()
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// takeFaultLocked returns the first fault matching the request, consuming one use.
func (s *Server) takeFaultLocked(endpoint, grantType, clientID string) *Fault {
	for i, f := range s.faults {
		if f.Endpoint != "*" && f.Endpoint != endpoint {
			continue
		}
		if f.GrantType != "" && f.GrantType != grantType {
			continue
		}
		if f.ClientID != "" && f.ClientID != clientID {
			continue
		}
		out := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		s.countLocked(clientID).FaultsInjected++
		return &out
	}
	return nil
}

// applyFault answers according to f; it reports false for latency faults,
// after which the request is answered normally.
func applyFault(w http.ResponseWriter, r *http.Request, f *Fault, throttleStatus int) bool {
	switch f.Kind {
	case FaultLatency:
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
		}
		return false
	case FaultStatus:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, "<html><body>%d %s</body></html>", f.Status, http.StatusText(f.Status))
	case FaultReset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("\x00\xffthis is not json<<<"))
	case FaultTruncated:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"1000.0123456789abcdef`))
	case FaultError:
		writeJSON(w, http.StatusOK, map[string]string{"error": f.ErrorCode})
	case FaultThrottle:
		writeThrottle(w, throttleStatus)
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeThrottle(w http.ResponseWriter, status int) {
	writeJSON(w, status, map[string]string{
		"error":             "Access Denied",
		"error_description": "You have made too many requests continuously. Please try again after some time.",
		"status":            "failure",
	})
}

// zohoError answers an OAuth error the way Zoho does: HTTP 200.
func zohoError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, map[string]string{"error": code})
}

// Handler serves the simulator's whole HTTP surface.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/serverinfo", s.serveServerInfo)
	mux.HandleFunc("GET /{dc}/oauth/v2/auth", s.dcOnly(s.serveAuth))
	mux.HandleFunc("POST /{dc}/oauth/v2/token", s.dcOnly(s.serveToken))
	mux.HandleFunc("POST /{dc}/oauth/v2/token/revoke", s.dcOnly(s.serveRevoke))
	mux.HandleFunc("GET /{dc}/api/whoami", s.dcOnly(s.serveResource))
	mux.HandleFunc("GET /{dc}/oauth/user/info", s.dcOnly(s.serveResource))
	s.controlRoutes(mux)
	return mux
}

func (s *Server) dcOnly(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dc := r.PathValue("dc")
		for _, known := range DataCenters {
			if dc == known {
				h(w, r, dc)
				return
			}
		}
		http.NotFound(w, r)
	}
}

func (s *Server) serveServerInfo(w http.ResponseWriter, r *http.Request) {
	locations := map[string]string{}
	for _, dc := range DataCenters {
		locations[dc] = s.AccountsURL(dc)
	}
	writeJSON(w, http.StatusOK, map[string]interface{}{"result": "success", "locations": locations})
}

// param reads a parameter from the form body or the query string.
func param(r *http.Request, name string) string {
	_ = r.ParseForm()
	return r.Form.Get(name)
}

func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func (s *Server) serveAuth(w http.ResponseWriter, r *http.Request, dc string) {
	q := r.URL.Query()
	clientID, redirect, state := q.Get("client_id"), q.Get("redirect_uri"), q.Get("state")
	s.mu.Lock()
	s.countLocked(clientID).AuthRequests++
	if f := s.takeFaultLocked("auth", "", clientID); f != nil {
		s.mu.Unlock()
		if applyFault(w, r, f, http.StatusOK) {
			return
		}
		s.mu.Lock()
	}
	c := s.clients[clientID]
	if c == nil || c.DC != dc {
		s.mu.Unlock()
		authPage(w, "invalid_client", "The client is not registered in this data center.")
		return
	}
	if !contains(c.RedirectURIs, redirect) {
		s.mu.Unlock()
		authPage(w, "invalid_redirect_uri", "The redirect URI does not match one registered for the client.")
		return
	}
	target, err := url.Parse(redirect)
	if err != nil {
		s.mu.Unlock()
		authPage(w, "invalid_redirect_uri", "The redirect URI is not a URL.")
		return
	}
	out := target.Query()
	out.Set("state", state)
	now := s.cfg.Now()
	log := pruneTimes(s.codeLog[clientID], now.Add(-10*time.Minute))
	switch {
	case q.Get("sim_deny") == "1" || len(log) >= s.cfg.GrantCodeRateLimit:
		out.Set("error", "access_denied")
	default:
		user := q.Get("sim_user")
		if user == "" {
			user = "demo@example.com"
		}
		code := newToken()
		s.codes[code] = &grantCode{clientID: clientID, user: user, redirectURI: redirect, scopes: splitScopes(q.Get("scope")),
			offline: q.Get("access_type") == "offline", redirectFlow: true, expires: now.Add(s.cfg.GrantCodeTTL)}
		s.codeLog[clientID] = append(log, now)
		out.Set("code", code)
		out.Set("location", dc)
		out.Set("accounts-server", s.baseURL+"/"+dc)
	}
	s.mu.Unlock()
	target.RawQuery = out.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func authPage(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	fmt.Fprintf(w, "<html><body><h1>%s</h1><p>%s</p></body></html>", html.EscapeString(code), html.EscapeString(msg))
}

func pruneTimes(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	return ts[i:]
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, dc string) {
	grant, clientID := param(r, "grant_type"), param(r, "client_id")
	s.mu.Lock()
	s.countLocked(clientID).TokenRequests++
	if f := s.takeFaultLocked("token", grant, clientID); f != nil {
		status := s.cfg.ThrottleHTTPStatus
		if f.Kind == FaultThrottle {
			s.countLocked(clientID).Throttled++
		}
		s.mu.Unlock()
		if applyFault(w, r, f, status) {
			return
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	cnt := s.countLocked(clientID)
	fail := func(code string) {
		if grant == "authorization_code" {
			cnt.ExchangeFailures++
		} else {
			cnt.RefreshFailures++
		}
		zohoError(w, code)
	}
	c := s.clients[clientID]
	if c == nil || c.DC != dc {
		fail("invalid_client")
		return
	}
	if param(r, "client_secret") != c.Secret {
		fail("invalid_client_secret")
		return
	}
	now := s.cfg.Now()
	switch grant {
	case "authorization_code":
		code := s.codes[param(r, "code")]
		if code == nil || code.clientID != clientID || !now.Before(code.expires) {
			fail("invalid_code")
			return
		}
		if code.redirectFlow && param(r, "redirect_uri") != code.redirectURI {
			fail("invalid_redirect_uri")
			return
		}
		delete(s.codes, param(r, "code"))
		var rt *refreshToken
		if code.offline {
			rt = s.newRefreshLocked(c, code.user, dc, code.scopes)
		}
		at := s.mintLocked(rt, clientID, code.user, dc, code.scopes)
		cnt.Exchanges++
		ans := s.tokenAnswerLocked(at, dc)
		if rt != nil {
			ans["refresh_token"] = rt.value
		}
		writeJSON(w, http.StatusOK, ans)
	case "refresh_token":
		rt := s.refresh[param(r, "refresh_token")]
		if rt == nil || rt.dead || rt.clientID != clientID || rt.dc != dc {
			fail("invalid_code")
			return
		}
		if s.windowLocked(rt) >= s.cfg.TokenRateLimit {
			cnt.RefreshFailures++
			cnt.Throttled++
			writeThrottle(w, s.cfg.ThrottleHTTPStatus)
			return
		}
		at := s.mintLocked(rt, clientID, rt.user, dc, rt.scopes)
		cnt.Refreshes++
		ans := s.tokenAnswerLocked(at, dc)
		ans["scope"] = strings.Join(rt.scopes, " ")
		writeJSON(w, http.StatusOK, ans)
	case "client_credentials":
		if param(r, "soid") == "" {
			fail("missing_org_info")
			return
		}
		at := s.mintLocked(nil, clientID, "", dc, splitScopes(param(r, "scope")))
		cnt.Refreshes++
		ans := s.tokenAnswerLocked(at, dc)
		ans["scope"] = strings.Join(at.scopes, " ")
		writeJSON(w, http.StatusOK, ans)
	default:
		fail("unsupported_grant_type")
	}
}

// newRefreshLocked issues a refresh token; past the cap per user and client
// the oldest one is deleted with its access tokens.
func (s *Server) newRefreshLocked(c *Client, user, dc string, scopes []string) *refreshToken {
	var mine []*refreshToken
	for _, rt := range s.refresh {
		if rt.clientID == c.ID && rt.user == user && !rt.dead {
			mine = append(mine, rt)
		}
	}
	for len(mine) >= s.cfg.RefreshTokenCap {
		oldest := 0
		for i, rt := range mine {
			if rt.created.Before(mine[oldest].created) {
				oldest = i
			}
		}
		victim := mine[oldest]
		s.countLocked(c.ID).Evictions += int64(len(s.liveLocked(victim)))
		s.killRefreshLocked(victim)
		delete(s.refresh, victim.value)
		mine = append(mine[:oldest], mine[oldest+1:]...)
	}
	rt := &refreshToken{value: newToken(), clientID: c.ID, user: user, dc: dc, scopes: scopes, created: s.cfg.Now()}
	// Distinct creation order even when the clock stands still.
	for _, other := range mine {
		if !rt.created.After(other.created) {
			rt.created = other.created.Add(time.Nanosecond)
		}
	}
	s.refresh[rt.value] = rt
	return rt
}

func (s *Server) tokenAnswerLocked(at *accessToken, dc string) map[string]interface{} {
	ans := map[string]interface{}{
		"access_token": at.value,
		"api_domain":   s.baseURL + "/" + dc + "/api",
		"token_type":   "Bearer",
	}
	secs := int64(s.cfg.AccessTokenTTL / time.Second)
	if s.cfg.LegacyMillis {
		ans["expires_in"] = secs * 1000
		ans["expires_in_sec"] = secs
	} else {
		ans["expires_in"] = secs
	}
	return ans
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request, dc string) {
	token := param(r, "token")
	if token == "" {
		token = param(r, "refresh_token")
	}
	s.mu.Lock()
	clientID := ""
	if rt := s.refresh[token]; rt != nil {
		clientID = rt.clientID
	} else if at := s.access[token]; at != nil {
		clientID = at.clientID
	}
	if f := s.takeFaultLocked("revoke", "", clientID); f != nil {
		s.mu.Unlock()
		if applyFault(w, r, f, http.StatusOK) {
			return
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	cnt := s.countLocked(clientID)
	if rt := s.refresh[token]; rt != nil && !rt.dead && rt.dc == dc {
		s.killRefreshLocked(rt)
		cnt.Revokes++
		cnt.RevokedRefresh++
		writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
		return
	}
	if at := s.access[token]; at != nil && !at.dead && at.dc == dc && s.cfg.Now().Before(at.expires) {
		at.dead = true
		cnt.Revokes++
		cnt.RevokedAccess++
		writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
		return
	}
	cnt.RevokeInvalid++
	writeJSON(w, http.StatusBadRequest, map[string]string{"status": "failure", "error": "invalid_token"})
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, dc string) {
	auth := r.Header.Get("Authorization")
	token := ""
	for _, prefix := range []string{"Zoho-oauthtoken ", "Bearer "} {
		if strings.HasPrefix(auth, prefix) {
			token = strings.TrimSpace(strings.TrimPrefix(auth, prefix))
		}
	}
	s.mu.Lock()
	at := s.access[token]
	clientID := ""
	if at != nil {
		clientID = at.clientID
	}
	if f := s.takeFaultLocked("resource", "", clientID); f != nil {
		s.mu.Unlock()
		if applyFault(w, r, f, http.StatusOK) {
			return
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if at == nil || at.dead || at.dc != dc || !s.cfg.Now().Before(at.expires) {
		s.countLocked(clientID).ResourceDenied++
		writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "INVALID_OAUTHTOKEN", "message": "invalid oauth token"})
		return
	}
	s.countLocked(clientID).ResourceOK++
	writeJSON(w, http.StatusOK, map[string]interface{}{
		"Email": at.user, "ZUID": "6" + fmt.Sprint(len(at.user)*1000003), "client_id": at.clientID,
		"scope": strings.Join(at.scopes, ","), "dc": dc,
	})
}
