package zohosim

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Consent plays a user's browser on the simulator's consent page with a
// plain HTTP client, for Go tests: it opens authURL (GET /<dc>/oauth/v2/auth
// at the simulator), signs in as user (DefaultUser if empty), clicks
// decision and returns where the simulator redirects the browser, without
// following it: redirect_uri with code, state, location and accounts-server
// after Accept, with error=access_denied (and state) after Deny or past the
// grant-code limit. A request refused before the page is shown (a
// response_type other than code, no scope) returns its error redirect the
// same way. An error page (unknown client, unregistered redirect_uri, an
// unknown or expired consent) or any other answer is an error that says what
// the page said.
//
// hc nil means a client with a 30-second timeout; redirects are never
// followed, whatever hc's policy.
func Consent(ctx context.Context, hc *http.Client, authURL, user string, decision Decision) (*url.URL, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	noFollow := *hc
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if user == "" {
		user = DefaultUser
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("zohosim: consent: %w", err)
	}
	loc, page, err := visit(&noFollow, req)
	if err != nil || loc != nil {
		return loc, err
	}
	action, id, ok := consentForm(page)
	if !ok {
		return nil, fmt.Errorf("zohosim: consent: the page at the auth URL has no consent form: %s", pageSays(page))
	}
	target, err := req.URL.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("zohosim: consent: form action %q: %w", action, err)
	}
	form := url.Values{FieldConsentID: {id}, FieldUser: {user}, FieldDecision: {string(decision)}}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("zohosim: consent: %w", err)
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	loc, page, err = visit(&noFollow, post)
	if err != nil || loc != nil {
		return loc, err
	}
	return nil, fmt.Errorf("zohosim: consent: answering the consent page gave no redirect: %s", pageSays(page))
}

// visit sends req and returns the redirect it answers, or else its page.
func visit(hc *http.Client, req *http.Request) (*url.URL, string, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("zohosim: consent: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("zohosim: consent: %s %s: %w", req.Method, req.URL.Path, err)
	}
	switch {
	case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
		loc, err := resp.Location()
		if err != nil {
			return nil, "", fmt.Errorf("zohosim: consent: %s %s: HTTP %d without a usable Location: %w", req.Method, req.URL.Path, resp.StatusCode, err)
		}
		return loc, "", nil
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("zohosim: consent: %s %s: HTTP %d: %s", req.Method, req.URL.Path, resp.StatusCode, pageSays(string(body)))
	}
	return nil, string(body), nil
}

var (
	formActionRe = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	consentIDRe  = regexp.MustCompile(`<input type="hidden" name="` + FieldConsentID + `" value="([^"]*)">`)
	headingRe    = regexp.MustCompile(`(?s)<h1[^>]*>(.*?)</h1>\s*(?:<p>(.*?)</p>)?`)
)

// consentForm finds the form of a consent page: where it posts and the
// consent id it carries.
func consentForm(page string) (action, id string, ok bool) {
	a, i := formActionRe.FindStringSubmatch(page), consentIDRe.FindStringSubmatch(page)
	if a == nil || i == nil {
		return "", "", false
	}
	return html.UnescapeString(a[1]), html.UnescapeString(i[1]), true
}

// pageSays is the heading and first paragraph of a page, for errors.
func pageSays(page string) string {
	m := headingRe.FindStringSubmatch(page)
	if m == nil {
		if len(page) > 200 {
			page = page[:200] + "…"
		}
		return fmt.Sprintf("%q", page)
	}
	says := html.UnescapeString(m[1])
	if m[2] != "" {
		says += ": " + html.UnescapeString(m[2])
	}
	return says
}
