package zohosim

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The consent page: GET /<dc>/oauth/v2/auth validates the request as Zoho
// does (an unknown client or an unregistered redirect_uri gets an error page,
// never a redirect), then shows the simulated user a page naming the
// application, its scopes and whether it asks for offline access, with
// Accept and Deny. The validated parameters stay here, under a random,
// single-use consent id that lives ConsentTTL; the form posts only that id,
// the user and the decision to POST /<dc>/oauth/v2/auth/consent, which
// redirects the browser to redirect_uri: with code, state, location and
// accounts-server on Accept, with error=access_denied on Deny.

// consentRequest is a consent page shown and not answered yet.
type consentRequest struct {
	clientID, dc, redirectURI, state string
	scopes                           []string
	offline                          bool
	expires                          time.Time
}

// Form fields of the consent page.
const (
	FieldConsentID = "consent_id"
	FieldUser      = "user"
	FieldDecision  = "decision"
)

// Decision is the button the user clicks on the consent page.
type Decision string

const (
	Accept Decision = "accept"
	Deny   Decision = "deny"
)

// consentPath is where the consent page of data center dc posts.
func consentPath(dc string) string { return "/" + dc + "/oauth/v2/auth/consent" }

// serveAuth is Zoho's GET /oauth/v2/auth: it validates the request and shows
// the consent page.
func (s *Server) serveAuth(w http.ResponseWriter, r *http.Request, dc string) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if s.admit(w, r, "auth", "", constant(clientID), func(c *Counters, _ *pendingFault) { c.AuthRequests++ }) {
		return
	}
	s.mu.Lock()
	c := s.st.clients[clientID]
	known := c != nil && c.DC == dc
	registered := known && slices.Contains(c.RedirectURIs, redirectURI)
	s.mu.Unlock()
	target, err := url.Parse(redirectURI)
	switch {
	case !known:
		authPage(w, http.StatusOK, "invalid_client", "The application is not registered in this data center.")
		return
	case !registered || err != nil:
		authPage(w, http.StatusOK, "invalid_redirect_uri", "The redirect URI does not match any registered for the application.")
		return
	}
	state := q.Get("state")
	scopes := splitScopes(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		redirectBack(w, r, target, state, url.Values{"error": {"unsupported_response_type"}})
		return
	case len(scopes) == 0:
		redirectBack(w, r, target, state, url.Values{"error": {"invalid_scope"}})
		return
	}
	cr := &consentRequest{clientID: clientID, dc: dc, redirectURI: redirectURI, state: state, scopes: scopes,
		offline: strings.EqualFold(q.Get("access_type"), "offline")}
	id := randHex(16)
	s.mu.Lock()
	now, ttl := s.cfg.Now(), s.cfg.ConsentTTL
	cr.expires = now.Add(ttl)
	s.st.consents[id] = cr
	s.maybeSweepLocked(now)
	s.mu.Unlock()
	writePage(w, http.StatusOK, consentTmpl, consentView{
		ID: id, Action: consentPath(dc), ClientID: clientID, DC: dc, User: DefaultUser,
		Scopes: scopes, Offline: cr.offline, RedirectURI: redirectURI, Expiry: spell(ttl),
	})
}

// spell writes a lifetime for people: "5 minutes", "90 seconds".
func spell(d time.Duration) string {
	switch {
	case d%time.Minute == 0 && d/time.Minute == 1:
		return "1 minute"
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d%time.Second == 0 && d/time.Second == 1:
		return "1 second"
	default:
		return fmt.Sprintf("%d seconds", (d+time.Second-1)/time.Second)
	}
}

// serveConsent takes the consent page's answer. Only the consent id, the
// user and the decision come from the form; everything else was validated
// when the page was shown and stayed here.
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request, dc string) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		s.consentInvalid("")
		authPage(w, http.StatusBadRequest, "invalid_request", "The consent form must be posted as application/x-www-form-urlencoded.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.consentInvalid("")
		authPage(w, http.StatusBadRequest, "invalid_request", "The consent form could not be read.")
		return
	}
	f := r.PostForm
	id, user, decision := f.Get(FieldConsentID), strings.TrimSpace(f.Get(FieldUser)), Decision(f.Get(FieldDecision))
	s.mu.Lock()
	now := s.cfg.Now()
	cr := s.st.consents[id]
	if cr == nil || cr.dc != dc {
		s.countLocked("").ConsentsInvalid++
		s.mu.Unlock()
		authPage(w, http.StatusBadRequest, "invalid_consent", "This consent request is unknown or was already answered. Go back to the application and start again.")
		return
	}
	cnt := s.countLocked(cr.clientID)
	if !now.Before(cr.expires) {
		delete(s.st.consents, id)
		cnt.ConsentsInvalid++
		s.mu.Unlock()
		authPage(w, http.StatusBadRequest, "consent_expired", "This consent request expired. Go back to the application and start again.")
		return
	}
	// A form missing a field is refused without using up the request: the
	// user can go back and answer it.
	switch {
	case user == "" && decision == Accept:
		cnt.ConsentsInvalid++
		s.mu.Unlock()
		authPage(w, http.StatusBadRequest, "invalid_request", "user: sign in with a user name to accept.")
		return
	case decision != Accept && decision != Deny:
		cnt.ConsentsInvalid++
		s.mu.Unlock()
		authPage(w, http.StatusBadRequest, "invalid_request", `decision: choose Accept or Deny.`)
		return
	}
	delete(s.st.consents, id)
	out := url.Values{}
	if decision == Deny {
		cnt.ConsentsDenied++
		out.Set("error", "access_denied")
	} else {
		cnt.ConsentsAccepted++
		code, ok := s.consentCodeLocked(cr.clientID, user, cr.redirectURI, cr.scopes, cr.offline, now)
		if ok {
			out.Set("code", code)
			out.Set("location", dc)
			out.Set("accounts-server", s.baseLocked(r)+"/"+dc)
		} else {
			out.Set("error", "access_denied")
		}
	}
	s.mu.Unlock()
	target, _ := url.Parse(cr.redirectURI) // parsed when the page was shown
	redirectBack(w, r, target, cr.state, out)
}

// consentInvalid counts a consent form that names no request.
func (s *Server) consentInvalid(clientID string) {
	s.mu.Lock()
	s.countLocked(clientID).ConsentsInvalid++
	s.mu.Unlock()
}

// redirectBack sends the browser to target with set (and state) added to
// the query target already has.
func redirectBack(w http.ResponseWriter, r *http.Request, target *url.URL, state string, set url.Values) {
	u := *target
	q := u.Query()
	if state != "" {
		q.Set("state", state)
	}
	for k, v := range set {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// authPage is an error page of the accounts server.
func authPage(w http.ResponseWriter, status int, code, msg string) {
	writePage(w, status, errorTmpl, errorView{Code: code, Message: msg})
}

func writePage(w http.ResponseWriter, status int, t *template.Template, v any) {
	h := w.Header()
	h.Set("Content-Type", "text/html;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	// No form-action: browsers apply it to the redirect after the form too,
	// and the redirect goes to the application.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = t.Execute(w, v)
}

type consentView struct {
	ID, Action, ClientID, DC, User, RedirectURI string
	Scopes                                      []string
	Offline                                     bool
	Expiry                                      string
}

type errorView struct{ Code, Message string }

const pageHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{block "title" .}}{{end}} · Zoho Accounts (simulator)</title>
<style>
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:#f2f4f7;color:#1d2733}
header{background:#17324d;color:#fff;padding:13px 28px;font-size:16px;font-weight:600}
header span{font-weight:400;color:#b9c8d8}
main{max-width:560px;margin:28px auto;background:#fff;border:1px solid #d8dee6;border-radius:8px;padding:22px 30px 26px;box-shadow:0 1px 3px rgba(16,24,40,.08)}
h1{font-size:21px;margin:0 0 10px}
p{margin:8px 0}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f5;padding:1px 5px;border-radius:3px;word-break:break-all}
label,.label{display:block;font-weight:600;margin:16px 0 4px}
input[type=text]{width:100%;box-sizing:border-box;padding:8px 10px;border:1px solid #b4bfcc;border-radius:4px;font:inherit}
ul{margin:4px 0 0;padding-left:22px}
.offline{margin-top:14px;padding:8px 12px;border-radius:4px;background:#fff7e0;border:1px solid #f0d68a}
.online{margin-top:14px;padding:8px 12px;border-radius:4px;background:#eef6ee;border:1px solid #b9d9ba}
.buttons{display:flex;gap:12px;margin-top:22px}
button{flex:1;padding:10px 0;border-radius:5px;font:inherit;font-weight:600;cursor:pointer;border:1px solid}
.accept{background:#1d6fd6;border-color:#1d6fd6;color:#fff}
.deny{background:#fff;border-color:#b4bfcc;color:#1d2733}
.note{font-size:13px;color:#5a6776}
.error{color:#a61b1b}
</style></head>
<body><header>Zoho Accounts <span>(simulator)</span></header>
<main>{{block "main" .}}{{end}}</main>
</body></html>
`

var consentTmpl = template.Must(template.Must(template.New("page").Parse(pageHead)).Parse(`
{{define "title"}}Authorize {{.ClientID}}{{end}}
{{define "main"}}<h1>Authorize an application</h1>
<p>The application <code id="client">{{.ClientID}}</code> asks for access to your Zoho account in data center <b>{{.DC}}</b>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="consent_id" value="{{.ID}}">
<label for="user">Signed in as</label>
<input type="text" id="user" name="user" value="{{.User}}" autocomplete="username" spellcheck="false">
<span class="label">It asks to</span>
<ul id="scopes">{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>
{{if .Offline}}<p id="access" class="offline"><b>Offline access:</b> the application gets a refresh token and keeps access while you are away, until you revoke it.</p>
{{else}}<p id="access" class="online"><b>Online access only:</b> no refresh token; access ends when the access token expires.</p>
{{end}}<p class="note">After your choice the browser returns to <code>{{.RedirectURI}}</code>. This request expires in {{.Expiry}}.</p>
<div class="buttons"><button class="accept" type="submit" name="decision" value="accept">Accept</button><button class="deny" type="submit" name="decision" value="deny">Deny</button></div>
</form>{{end}}
`))

var errorTmpl = template.Must(template.Must(template.New("page").Parse(pageHead)).Parse(`
{{define "title"}}{{.Code}}{{end}}
{{define "main"}}<h1 class="error">{{.Code}}</h1>
<p>{{.Message}}</p>{{end}}
`))
