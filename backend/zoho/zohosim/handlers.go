package zohosim

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The OAuth endpoints of every data center (the consent page is in
// consent.go), the protected resource and /oauth/serverinfo.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError answers an OAuth error the way Zoho does: with HTTP 200.
func oauthError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, map[string]string{"error": code})
}

// ThrottleDescription is the error_description of Zoho's token throttle.
const ThrottleDescription = "You have made too many requests continuously. Please try again after some time."

func throttleBody() map[string]string {
	return map[string]string{"error": "Access Denied", "error_description": ThrottleDescription, "status": "failure"}
}

func throttled(w http.ResponseWriter, status int) { writeJSON(w, status, throttleBody()) }

// answer is a JSON answer computed under the lock and written after it.
type answer struct {
	status int
	body   any
}

func (a answer) write(w http.ResponseWriter) { writeJSON(w, a.status, a.body) }

func errorAnswer(code string) answer {
	return answer{http.StatusOK, map[string]string{"error": code}}
}

// admit counts a request and applies the first matching fault; it reports
// whether the request has been answered. clientOf runs under the lock.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, endpoint, grantType string,
	clientOf func() string, count func(*Counters, *pendingFault)) bool {
	answered, _ := s.admitFault(w, r, endpoint, grantType, clientOf, count)
	return answered
}

// admitFault is admit that also returns the fault taken, for handlers whose
// answer the fault may still change (FaultLostAnswer).
func (s *Server) admitFault(w http.ResponseWriter, r *http.Request, endpoint, grantType string,
	clientOf func() string, count func(*Counters, *pendingFault)) (bool, *pendingFault) {
	s.mu.Lock()
	clientID := clientOf()
	f := s.takeFaultLocked(endpoint, grantType, clientID)
	if count != nil {
		count(s.countLocked(clientID), f)
	}
	s.mu.Unlock()
	return f != nil && f.apply(w, r), f
}

func constant(v string) func() string { return func() string { return v } }

// params are the request's parameters from the query string and an
// application/x-www-form-urlencoded body, as the token endpoint takes them.
// The revoke endpoint reads the query string only.
func params(r *http.Request) url.Values {
	_ = r.ParseForm()
	return r.Form
}

func (s *Server) serveServerInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	base := s.baseLocked(r)
	s.mu.Unlock()
	locations := make(map[string]string, len(DataCenters))
	for _, dc := range DataCenters {
		locations[dc] = base + "/" + dc
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": "success", "locations": locations})
}

func countFailure(c *Counters, grantType string) {
	switch grantType {
	case "authorization_code":
		c.ExchangeFailures++
	case "refresh_token":
		c.RefreshFailures++
	case "client_credentials":
		c.ClientCredentialsFailures++
	}
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, dc string) {
	p := params(r)
	s.noteSecret(dc, "token", p)
	grant, clientID := p.Get("grant_type"), p.Get("client_id")
	answered, f := s.admitFault(w, r, "token", grant, constant(clientID), func(c *Counters, f *pendingFault) {
		c.TokenRequests++
		if f != nil && f.answersWithError() {
			countFailure(c, grant)
		}
	})
	if answered {
		return
	}
	s.mu.Lock()
	a := s.tokenLocked(p, dc, s.baseLocked(r))
	s.mu.Unlock()
	f.deliver(w, r, a)
}

// tokenLocked runs a token grant.
func (s *Server) tokenLocked(p url.Values, dc, base string) answer {
	grant, clientID := p.Get("grant_type"), p.Get("client_id")
	cnt := s.countLocked(clientID)
	fail := func(code string) answer {
		countFailure(cnt, grant)
		return errorAnswer(code)
	}
	c := s.st.clients[clientID]
	if !c.servesDC(dc) {
		return fail("invalid_client")
	}
	if p.Get("client_secret") != c.Secret {
		return fail("invalid_client_secret")
	}
	now := s.cfg.Now()
	apiDomain := base + "/" + dc + "/api"
	switch grant {
	case "authorization_code":
		code := s.liveCodeLocked(p.Get("code"), clientID, now)
		if code == nil {
			return fail("invalid_code")
		}
		if code.redirectFlow && p.Get("redirect_uri") != code.redirectURI {
			return fail("invalid_redirect_uri")
		}
		delete(s.st.codes, p.Get("code"))
		var rt *refreshToken
		if code.offline {
			rt = s.issueRefreshLocked(clientID, code.user, dc, code.scopes)
		}
		at := s.mintLocked(rt, clientID, code.user, dc, code.scopes, now)
		cnt.Exchanges++
		body := s.tokenBodyLocked(at, apiDomain)
		if rt != nil {
			body["refresh_token"] = rt.value
		}
		return answer{http.StatusOK, body}
	case "refresh_token":
		rt := s.st.refresh[p.Get("refresh_token")]
		if rt == nil || rt.owner.clientID != clientID || rt.dc != dc {
			return fail("invalid_code")
		}
		if s.rateUsedLocked(rt, now) >= s.cfg.TokenRateLimit {
			cnt.RefreshFailures++
			cnt.Throttled++
			return answer{s.cfg.ThrottleHTTPStatus, throttleBody()}
		}
		at := s.mintLocked(rt, clientID, rt.owner.user, rt.dc, rt.scopes, now)
		cnt.Refreshes++
		body := s.tokenBodyLocked(at, apiDomain)
		body["scope"] = strings.Join(rt.scopes, " ")
		return answer{http.StatusOK, body}
	case "client_credentials":
		scopes := splitScopes(p.Get("scope"))
		if len(scopes) == 0 {
			return fail("invalid_scope")
		}
		soid := p.Get("soid")
		if soid == "" && c.MultiOrg {
			return fail("missing_org_info")
		}
		src := s.ccSourceLocked(ccKey{clientID, dc, soid})
		if s.rateUsedLocked(src, now) >= s.cfg.TokenRateLimit {
			cnt.ClientCredentialsFailures++
			cnt.Throttled++
			return answer{s.cfg.ThrottleHTTPStatus, throttleBody()}
		}
		at := s.mintLocked(src, clientID, "", dc, scopes, now)
		cnt.ClientCredentials++
		body := s.tokenBodyLocked(at, apiDomain)
		body["scope"] = strings.Join(scopes, " ")
		return answer{http.StatusOK, body}
	default:
		return fail("unsupported_grant_type")
	}
}

func (s *Server) tokenBodyLocked(at *accessToken, apiDomain string) map[string]any {
	secs := int64(s.cfg.AccessTokenTTL / time.Second)
	body := map[string]any{
		"access_token": at.value,
		"api_domain":   apiDomain,
		"token_type":   "Bearer",
		"expires_in":   secs,
	}
	if s.cfg.LegacyMillis {
		body["expires_in"] = secs * 1000
		body["expires_in_sec"] = secs
	}
	return body
}

// serveRevoke revokes a refresh token (with every access token minted from
// it) or a single access token, named as Zoho documents it: in the query
// string, as token (or refresh_token, as one Zoho page shows). A form body is
// ignored. A known live token answers 200 {"status":"success"}; any other
// token 400 {"status":"failure","error":"invalid_token"}.
//
// A request with no token in the query string gets HTTP 400 with an
// invalid_request answer, counted in RevokeMalformed. Zoho documents no
// answer for it; the simulator's is deliberately not the invalid-token one,
// so a caller that misplaces the token cannot take it for a revocation.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request, dc string) {
	q := r.URL.Query()
	token := q.Get("token")
	if token == "" {
		token = q.Get("refresh_token")
	}
	// A token sent in a form body only attributes the request to its client
	// (so tests see who misplaced it); it is never revoked.
	named := token
	if named == "" && r.ParseForm() == nil {
		if named = r.PostForm.Get("token"); named == "" {
			named = r.PostForm.Get("refresh_token")
		}
	}
	clientOf := func() string {
		if id := s.tokenClientLocked(named); id != "" {
			return id
		}
		return q.Get("client_id")
	}
	s.noteSecret(dc, "revoke", params(r))
	answered, f := s.admitFault(w, r, "revoke", "", clientOf, nil)
	if answered {
		return
	}
	s.mu.Lock()
	cnt := s.countLocked(clientOf())
	var a answer
	if token == "" {
		cnt.RevokeMalformed++
		a = answer{http.StatusBadRequest, map[string]string{
			"status": "failure", "error": "invalid_request",
			"error_description": "the token to revoke is required in the query string",
		}}
	} else if rt := s.st.refresh[token]; rt != nil && rt.dc == dc {
		s.killRefreshLocked(rt, false)
		cnt.Revokes++
		cnt.RevokedRefresh++
		a = answer{http.StatusOK, map[string]string{"status": "success"}}
	} else if at := s.st.access[token]; at != nil && at.liveAt(s.cfg.Now()) && at.dc == dc {
		s.killAccessLocked(at)
		cnt.Revokes++
		cnt.RevokedAccess++
		a = answer{http.StatusOK, map[string]string{"status": "success"}}
	} else {
		cnt.RevokeInvalid++
		a = answer{http.StatusBadRequest, map[string]string{"status": "failure", "error": "invalid_token"}}
	}
	s.mu.Unlock()
	f.deliver(w, r, a)
}

// bearer returns the token of an "Authorization: Zoho-oauthtoken <token>"
// (or "Bearer <token>") header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !(strings.EqualFold(scheme, "Zoho-oauthtoken") || strings.EqualFold(scheme, "Bearer")) {
		return ""
	}
	return strings.TrimSpace(token)
}

// serveResource is a protected API: it accepts live access tokens issued in
// its data center.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, dc string) {
	token := bearer(r)
	clientOf := func() string { return s.tokenClientLocked(token) }
	if s.admit(w, r, "resource", "", clientOf, nil) {
		return
	}
	s.mu.Lock()
	cnt := s.countLocked(clientOf())
	var a answer
	if at := s.st.access[token]; token != "" && at != nil && at.liveAt(s.cfg.Now()) && at.dc == dc {
		cnt.ResourceOK++
		a = answer{http.StatusOK, map[string]any{
			"Email": at.user, "ZUID": zuid(at.user), "client_id": at.clientID,
			"scope": strings.Join(at.scopes, ","), "dc": dc,
		}}
	} else {
		cnt.ResourceDenied++
		a = answer{http.StatusUnauthorized, map[string]string{"code": "INVALID_OAUTHTOKEN", "message": "invalid oauth token"}}
	}
	s.mu.Unlock()
	a.write(w)
}

// zuid is a stable Zoho user id for a user name.
func zuid(user string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(user))
	return 10_000_000 + int64(h.Sum64()%890_000_000)
}
