package zohosim

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Zoho's device authorization flow ("non-browser apps"), as its accounts
// pages document it:
//
//	POST /<dc>/oauth/v3/device/code   client_id, grant_type=device_request,
//	                                  scope (comma-separated), access_type
//	                                  (online|offline, default online),
//	                                  prompt (consent, optional)
//	  → user_code, device_code, verification_url, expires_in, interval
//	POST /<dc>/oauth/v3/device/token  client_id, client_secret,
//	                                  grant_type=device_token, code=<device_code>
//	  → authorization_pending | slow_down | access_denied | expired |
//	    other_dc (+ user_location) | the usual token answer
//	GET  /<dc>/oauth/v3/device        the verification page (verification_url)
//	POST /<dc>/oauth/v3/device        the user's decision on that page
//
// Errors are answered with HTTP 200 and {"error": …}, as on /oauth/v2/token.
// Parameters may come in the query string or a form body, like the token
// endpoint's. Only the documented forms are accepted: another grant_type is
// unsupported_grant_type, no scope is invalid_scope, an access_type or
// prompt outside the documented values is invalid_request, and the device
// code goes in "code" (RFC 8628's "device_code" parameter is not Zoho's: a
// poll carrying it names no code and gets invalid_code).
//
// Behaviour the tests rely on:
//   - expires_in and interval are seconds (milliseconds with
//     Config.LegacyMillis, as Zoho's older initiation page documents); the
//     announced interval is Config.DevicePollInterval (or
//     Config.DeviceAnnouncedPollInterval when set) rounded up to a whole
//     second, the enforced one is Config.DevicePollInterval; with
//     Config.DeviceOmitsInterval the answer carries no interval.
//   - slow_down: a poll of a device code at a data center within the interval
//     of the previous poll there. Every poll counts, the slowed ones too
//     ("two polling requests within 30 seconds").
//   - expired: a poll at or after expires_in, whatever the user did. Expired
//     codes are forgotten some time later (then invalid_code).
//   - a device code is known at the data center that issued it and, once a
//     user of another data center approved it, at the user's data center.
//     Polled at the issuing one it answers other_dc with user_location; polled
//     at the user's it answers the token, minted there. Elsewhere: invalid_code.
//   - the token is minted like a grant-code exchange: with access_type=offline
//     a refresh token counted against the user's refresh-token cap. Without
//     prompt=consent Zoho hands a refresh token out only the first time, so
//     the simulator gives one only when the user holds no live refresh token
//     of the client.
//   - a device code that yielded a token is spent: invalid_code from then on.
//   - a user of another data center can approve only when the client has
//     Multi DC support there (Client.MultiDC).

// Errors of ApproveDevice and DenyDevice.
var (
	ErrUnknownUserCode   = errors.New("zohosim: unknown user code")
	ErrDeviceCodeExpired = errors.New("zohosim: the device code has expired")
	ErrDeviceDecided     = errors.New("zohosim: the device code was already approved or denied")
)

type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDenied
)

// deviceAuth is one device authorization, from initiation to its token.
type deviceAuth struct {
	deviceCode string
	userCode   string // normalised: upper case, no separator
	clientID   string
	dc         string // the data center that issued it
	scopes     []string
	offline    bool
	consent    bool // prompt=consent
	expires    time.Time
	interval   time.Duration
	seq        uint64

	state    deviceState
	user     string               // who approved or denied
	userDC   string               // where the user approved
	lastPoll map[string]time.Time // by data center polled
}

// devices holds the live device authorizations; Server.mu guards it.
type devices struct {
	byCode map[string]*deviceAuth // device_code → authorization
	byUser map[string]*deviceAuth // normalised user_code → authorization
	seq    uint64
	work   int // codes issued since the last sweep
}

func newDevices() devices {
	return devices{byCode: map[string]*deviceAuth{}, byUser: map[string]*deviceAuth{}}
}

// deviceGrace is how long an expired device code is remembered (answering
// "expired") before it is forgotten.
const deviceGrace = 10 * time.Minute

func (d *devices) remove(a *deviceAuth) {
	delete(d.byCode, a.deviceCode)
	delete(d.byUser, a.userCode)
}

// maybeSweep forgets codes expired for longer than deviceGrace, once enough
// codes were issued since the last sweep (amortised O(1)).
func (d *devices) maybeSweep(now time.Time) {
	d.work++
	if d.work < 256+len(d.byCode)/2 {
		return
	}
	d.work = 0
	for _, a := range d.byCode {
		if now.After(a.expires.Add(deviceGrace)) {
			d.remove(a)
		}
	}
}

// userCodeAlphabet has no vowels (no words) and no digits (no 0/O, 1/I).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// newUserCode returns 8 characters of userCodeAlphabet, uniformly.
func newUserCode() string {
	out := make([]byte, 0, 8)
	buf := make([]byte, 16)
	for len(out) < 8 {
		if _, err := rand.Read(buf); err != nil {
			panic("zohosim: crypto/rand: " + err.Error())
		}
		for _, b := range buf {
			if b < 240 && len(out) < 8 { // 240 = 12*20: no modulo bias
				out = append(out, userCodeAlphabet[int(b)%len(userCodeAlphabet)])
			}
		}
	}
	return string(out)
}

// displayUserCode shows a normalised user code as people type it: ABCD-EFGH.
func displayUserCode(code string) string {
	if len(code) != 8 {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// normalizeUserCode accepts what a person types: any case, with or without
// the hyphen, with stray spaces.
func normalizeUserCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// seconds rounds d up to whole seconds, at least 1.
func seconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// serveDeviceCode is the initiation request.
func (s *Server) serveDeviceCode(w http.ResponseWriter, r *http.Request, dc string) {
	p := params(r)
	s.noteSecret(dc, "device_code", p)
	clientID, grant := p.Get("client_id"), p.Get("grant_type")
	answered, f := s.admitFault(w, r, "device_code", grant, constant(clientID), func(c *Counters, _ *pendingFault) {
		c.DeviceCodeRequests++
	})
	if answered {
		return
	}
	s.mu.Lock()
	a := s.deviceCodeLocked(clientID, grant, p.Get("scope"), p.Get("access_type"), p.Get("prompt"), dc, s.baseLocked(r))
	s.mu.Unlock()
	f.deliver(w, r, a)
}

func invalidRequest(param string) answer {
	return answer{http.StatusOK, map[string]string{"error": "invalid_request", "error_description": "invalid value of " + param}}
}

func (s *Server) deviceCodeLocked(clientID, grant, scope, accessType, prompt, dc, base string) answer {
	if !s.st.clients[clientID].servesDC(dc) {
		return errorAnswer("invalid_client")
	}
	if grant != "device_request" {
		return errorAnswer("unsupported_grant_type")
	}
	scopes := splitScopes(scope)
	if len(scopes) == 0 {
		return errorAnswer("invalid_scope")
	}
	if accessType != "" && accessType != "online" && accessType != "offline" {
		return invalidRequest("access_type")
	}
	if prompt != "" && prompt != "consent" {
		return invalidRequest("prompt")
	}
	now := s.cfg.Now()
	s.dev.seq++
	a := &deviceAuth{
		deviceCode: newToken(),
		clientID:   clientID,
		dc:         dc,
		scopes:     scopes,
		offline:    accessType == "offline",
		consent:    prompt == "consent",
		expires:    now.Add(s.cfg.DeviceCodeTTL),
		interval:   s.cfg.DevicePollInterval,
		seq:        s.dev.seq,
		lastPoll:   map[string]time.Time{},
	}
	for a.userCode == "" || s.dev.byUser[a.userCode] != nil {
		a.userCode = newUserCode()
	}
	if s.cfg.DeviceAutoApprove {
		a.state, a.user, a.userDC = deviceApproved, DefaultUser, dc
	}
	s.dev.byCode[a.deviceCode] = a
	s.dev.byUser[a.userCode] = a
	s.dev.maybeSweep(now)
	s.countLocked(clientID).DeviceCodesIssued++

	announced := a.interval
	if s.cfg.DeviceAnnouncedPollInterval > 0 {
		announced = s.cfg.DeviceAnnouncedPollInterval
	}
	expiresIn, interval := seconds(s.cfg.DeviceCodeTTL), seconds(announced)
	if s.cfg.LegacyMillis {
		expiresIn, interval = expiresIn*1000, interval*1000
	}
	body := map[string]any{
		"user_code":        displayUserCode(a.userCode),
		"device_code":      a.deviceCode,
		"verification_url": base + "/" + dc + "/oauth/v3/device",
		"expires_in":       expiresIn,
		"interval":         interval,
	}
	if s.cfg.DeviceOmitsInterval {
		delete(body, "interval")
	}
	return answer{http.StatusOK, body}
}

// serveDeviceToken is the polling request.
func (s *Server) serveDeviceToken(w http.ResponseWriter, r *http.Request, dc string) {
	p := params(r)
	s.noteSecret(dc, "device_token", p)
	clientID, grant := p.Get("client_id"), p.Get("grant_type")
	answered, f := s.admitFault(w, r, "device_token", grant, constant(clientID), func(c *Counters, _ *pendingFault) {
		c.DevicePolls++
	})
	if answered {
		return
	}
	s.mu.Lock()
	a := s.deviceTokenLocked(clientID, p.Get("client_secret"), grant, p.Get("code"), dc, s.baseLocked(r))
	s.mu.Unlock()
	f.deliver(w, r, a)
}

func (s *Server) deviceTokenLocked(clientID, secret, grant, code, dc, base string) answer {
	c := s.st.clients[clientID]
	if !c.servesDC(dc) {
		return errorAnswer("invalid_client")
	}
	if secret != c.Secret {
		return errorAnswer("invalid_client_secret")
	}
	if grant != "device_token" {
		return errorAnswer("unsupported_grant_type")
	}
	a := s.dev.byCode[code]
	if a == nil || a.clientID != clientID || (a.dc != dc && !(a.state == deviceApproved && a.userDC == dc)) {
		return errorAnswer("invalid_code")
	}
	now := s.cfg.Now()
	if !now.Before(a.expires) {
		return errorAnswer("expired")
	}
	last, polled := a.lastPoll[dc]
	a.lastPoll[dc] = now
	if polled && now.Sub(last) < a.interval {
		s.countLocked(clientID).DeviceSlowDowns++
		return errorAnswer("slow_down")
	}
	switch {
	case a.state == devicePending:
		return errorAnswer("authorization_pending")
	case a.state == deviceDenied:
		return errorAnswer("access_denied")
	case a.userDC != dc:
		return answer{http.StatusOK, map[string]string{"error": "other_dc", "user_location": a.userDC}}
	}
	s.dev.remove(a)
	var rt *refreshToken
	if a.offline && (a.consent || len(s.st.owners[owner{clientID, a.user}]) == 0) {
		rt = s.issueRefreshLocked(clientID, a.user, dc, a.scopes)
	}
	at := s.mintLocked(rt, clientID, a.user, dc, a.scopes, now)
	s.countLocked(clientID).DeviceGrants++
	body := s.tokenBodyLocked(at, base+"/"+dc+"/api")
	if rt != nil {
		body["refresh_token"] = rt.value
	}
	return answer{http.StatusOK, body}
}

// ApproveDevice approves the device authorization of a user code as user
// (DefaultUser if empty) of data center dc (the issuing one if empty). A dc
// other than the issuing one makes polls there answer other_dc; the client
// must have Multi DC support for it.
func (s *Server) ApproveDevice(userCode, user, dc string) error {
	if user == "" {
		user = DefaultUser
	}
	dc = strings.ToLower(strings.TrimSpace(dc))
	return s.decideDevice(userCode, func(a *deviceAuth) error {
		where := dc
		if where == "" {
			where = a.dc
		}
		if !knownDC(where) {
			return fmt.Errorf("zohosim: unknown data center %q", where)
		}
		if !s.st.clients[a.clientID].servesDC(where) {
			return fmt.Errorf("zohosim: client %s has no Multi DC support for %s: register it with multi_dc", a.clientID, where)
		}
		a.state, a.user, a.userDC = deviceApproved, user, where
		return nil
	})
}

// DenyDevice records that the user refused the device authorization of a
// user code: polls answer access_denied.
func (s *Server) DenyDevice(userCode string) error {
	return s.decideDevice(userCode, func(a *deviceAuth) error {
		a.state = deviceDenied
		return nil
	})
}

func (s *Server) decideDevice(userCode string, decide func(*deviceAuth) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.dev.byUser[normalizeUserCode(userCode)]
	switch {
	case a == nil:
		return ErrUnknownUserCode
	case !s.cfg.Now().Before(a.expires):
		return ErrDeviceCodeExpired
	case a.state != devicePending:
		return ErrDeviceDecided
	}
	return decide(a)
}

// DeviceUserCodes lists the user codes (as shown to users) of a client's
// device authorizations that await a decision and have not expired, oldest
// first; every client's with an empty clientID.
func (s *Server) DeviceUserCodes(clientID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	var pending []*deviceAuth
	for _, a := range s.dev.byCode {
		if a.state == devicePending && now.Before(a.expires) && (clientID == "" || a.clientID == clientID) {
			pending = append(pending, a)
		}
	}
	slices.SortFunc(pending, func(x, y *deviceAuth) int { return cmp.Compare(x.seq, y.seq) })
	out := make([]string, len(pending))
	for i, a := range pending {
		out[i] = displayUserCode(a.userCode)
	}
	return out
}

// serveVerifyPage is verification_url: a form to enter the user code, sign
// in as a simulated user of a data center, and accept or deny.
func (s *Server) serveVerifyPage(w http.ResponseWriter, r *http.Request, dc string) {
	code := r.URL.Query().Get("user_code")
	var opts strings.Builder
	for _, d := range DataCenters {
		sel := ""
		if d == dc {
			sel = " selected"
		}
		fmt.Fprintf(&opts, `<option value="%s"%s>%s</option>`, d, sel, d)
	}
	devicePage(w, http.StatusOK, "Connect a device", fmt.Sprintf(
		`<form method="post">`+
			`<p><label>Code shown on your device <input name="user_code" value="%s" autocomplete="off"></label></p>`+
			`<p><label>Sign in as <input name="user" value="%s"></label></p>`+
			`<p><label>Your data center <select name="location">%s</select></label></p>`+
			`<p><button name="decision" value="accept">Accept</button> <button name="decision" value="deny">Deny</button></p>`+
			`</form>`,
		html.EscapeString(code), html.EscapeString(DefaultUser), opts.String()))
}

// serveVerifyDecision records what the user chose on the verification page.
func (s *Server) serveVerifyDecision(w http.ResponseWriter, r *http.Request, dc string) {
	if err := r.ParseForm(); err != nil {
		devicePage(w, http.StatusBadRequest, "Invalid request", "<p>The form could not be read.</p>")
		return
	}
	code, user, location := r.PostForm.Get("user_code"), r.PostForm.Get("user"), r.PostForm.Get("location")
	if location == "" {
		location = dc
	}
	var err error
	var done string
	switch r.PostForm.Get("decision") {
	case "accept":
		err, done = s.ApproveDevice(code, user, location), "Access granted. You may return to your device."
	case "deny":
		err, done = s.DenyDevice(code), "Access denied. The device will not be connected."
	default:
		devicePage(w, http.StatusBadRequest, "Invalid request", "<p>Choose Accept or Deny.</p>")
		return
	}
	if err != nil {
		devicePage(w, http.StatusBadRequest, "Cannot continue", "<p>"+html.EscapeString(strings.TrimPrefix(err.Error(), "zohosim: "))+"</p>")
		return
	}
	devicePage(w, http.StatusOK, "Done", "<p>"+html.EscapeString(done)+"</p>")
}

func devicePage(w http.ResponseWriter, status int, title, body string) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>Zoho Accounts</title></head><body><h1>%s</h1>%s</body></html>\n",
		html.EscapeString(title), body)
}

// deviceControlRoutes adds the device flow's part of the control API.
func (s *Server) deviceControlRoutes(mux *http.ServeMux) {
	decided := func(w http.ResponseWriter, status, userCode string, err error) {
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, map[string]string{"status": status, "user_code": userCode})
		case errors.Is(err, ErrUnknownUserCode):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, ErrDeviceCodeExpired), errors.Is(err, ErrDeviceDecided):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		default:
			badRequest(w, err.Error())
		}
	}
	mux.HandleFunc("POST /sim/device/approve", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UserCode string `json:"user_code"`
			User     string `json:"user"`
			DC       string `json:"dc"`
		}
		if readJSON(w, r, &req) {
			decided(w, "approved", req.UserCode, s.ApproveDevice(req.UserCode, req.User, req.DC))
		}
	})
	mux.HandleFunc("POST /sim/device/deny", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UserCode string `json:"user_code"`
		}
		if readJSON(w, r, &req) {
			decided(w, "denied", req.UserCode, s.DenyDevice(req.UserCode))
		}
	})
	mux.HandleFunc("GET /sim/device/pending", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]string{"user_codes": s.DeviceUserCodes(r.URL.Query().Get("client_id"))})
	})
}
