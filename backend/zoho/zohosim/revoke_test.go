package zohosim

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func wantRevoked(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusOK || r.str("status") != "success" {
		t.Fatalf("want 200 {\"status\":\"success\"}, got %d %s", r.status, r.raw)
	}
}

func wantInvalidToken(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.str("status") != "failure" || r.str("error") != "invalid_token" || len(r.body) != 2 {
		t.Fatalf("want 400 {\"status\":\"failure\",\"error\":\"invalid_token\"}, got %d %s", r.status, r.raw)
	}
}

func TestRevokeRefreshTokenKillsAccessTokens(t *testing.T) {
	e := newEnv(t, Config{})
	rt, a1 := e.offline()
	a2 := e.mustRefresh(rt)
	keep, keepAT := e.offline()
	wantRevoked(t, e.revoke(rt))
	if e.sim.RefreshTokenValid(rt) || e.sim.AccessTokenValid(a1) || e.sim.AccessTokenValid(a2) {
		t.Fatal("refresh token or its access tokens alive after revocation")
	}
	if !e.sim.RefreshTokenValid(keep) || !e.sim.AccessTokenValid(keepAT) {
		t.Fatal("revocation killed another refresh token's tokens")
	}
	wantError(t, e.refreshWith(e.client, rt), "invalid_code")
	wantInvalidToken(t, e.revoke(rt))
	wantInvalidToken(t, e.revoke(a1))
	if e.sim.LiveAccessTokens(rt) != 0 {
		t.Fatal("live tokens of a revoked refresh token")
	}
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{
		TokenRequests: 4, Exchanges: 2, Refreshes: 1, RefreshFailures: 1,
		Revokes: 1, RevokedRefresh: 1, RevokeInvalid: 2,
	})
}

func TestRevokeAccessToken(t *testing.T) {
	e := newEnv(t, Config{})
	rt, a1 := e.offline()
	a2 := e.mustRefresh(rt)
	wantRevoked(t, e.revoke(a1))
	if e.sim.AccessTokenValid(a1) || !e.sim.AccessTokenValid(a2) || !e.sim.RefreshTokenValid(rt) {
		t.Fatal("revoking an access token touched more than that token")
	}
	wantInvalidToken(t, e.revoke(a1))
	// An expired access token is dead too.
	e.clock.Advance(time.Hour)
	wantInvalidToken(t, e.revoke(a2))
	if got := e.sim.ClientCounters(e.client.ID); got.RevokedAccess != 1 || got.Revokes != 1 || got.RevokeInvalid != 2 {
		t.Fatalf("counters %+v", got)
	}
}

// wantMalformedRevoke checks the answer to a revocation naming no token in
// the query string: HTTP 400, and not the invalid-token answer.
func wantMalformedRevoke(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.str("status") != "failure" || r.str("error") != "invalid_request" ||
		r.str("error_description") == "" || strings.Contains(strings.ToLower(r.raw), "invalid_token") {
		t.Fatalf("want 400 {\"status\":\"failure\",\"error\":\"invalid_request\",…}, got %d %s", r.status, r.raw)
	}
}

func TestRevokeForms(t *testing.T) {
	e := newEnv(t, Config{})
	// In the query string, under the name refresh_token (as one Zoho page shows).
	rt, _ := e.offline()
	wantRevoked(t, e.postQuery("/us/oauth/v2/token/revoke", url.Values{"refresh_token": {rt}}))
	rt, _ = e.offline()
	wantRevoked(t, e.postQuery("/us/oauth/v2/token/revoke", url.Values{"token": {rt}}))
	// The query string wins over a body.
	rt, _ = e.offline()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/us/oauth/v2/token/revoke?token="+url.QueryEscape(rt),
		strings.NewReader(url.Values{"token": {"1000.nope"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantRevoked(t, e.do(req))

	wantInvalidToken(t, e.revoke("1000.00000000000000000000000000000000.00000000000000000000000000000000"))
	// Tokens are revoked at the data center that issued them.
	rt, at := e.offline()
	wantInvalidToken(t, e.postQuery("/eu/oauth/v2/token/revoke", url.Values{"token": {rt}}))
	wantInvalidToken(t, e.postQuery("/eu/oauth/v2/token/revoke", url.Values{"token": {at}}))
	if !e.sim.RefreshTokenValid(rt) || !e.sim.AccessTokenValid(at) {
		t.Fatal("revoked at the wrong data center")
	}
	if got := e.sim.ClientCounters(e.client.ID); got.RevokedRefresh != 3 || got.RevokeInvalid != 2 || got.RevokeMalformed != 0 {
		t.Fatalf("counters %+v", got)
	}
	if got := e.sim.ClientCounters(""); got.RevokeInvalid != 1 || got.RevokeMalformed != 0 {
		t.Fatalf("unattributed counters %+v", got)
	}
}

func TestRevokeTokenOnlyInQueryString(t *testing.T) {
	e := newEnv(t, Config{})
	rt, at := e.offline()
	// A token in a form body is no token: nothing is revoked, and the answer
	// is not the invalid-token one (which would count as revoked).
	for _, form := range []url.Values{{"token": {rt}}, {"refresh_token": {rt}}, {"token": {at}}} {
		wantMalformedRevoke(t, e.postForm("/us/oauth/v2/token/revoke", form))
	}
	if !e.sim.RefreshTokenValid(rt) || !e.sim.AccessTokenValid(at) {
		t.Fatal("a token sent in the body was revoked")
	}
	// Neither is an empty one, nor a request without any.
	wantMalformedRevoke(t, e.revoke(""))
	wantMalformedRevoke(t, e.postQuery("/us/oauth/v2/token/revoke", nil))
	// Misplaced tokens are attributed to their client, so tests of a caller
	// can see it sent them wrong.
	wantCounters(t, "client", e.sim.ClientCounters(e.client.ID), Counters{TokenRequests: 1, Exchanges: 1, RevokeMalformed: 3})
	wantCounters(t, "unattributed", e.sim.ClientCounters(""), Counters{RevokeMalformed: 2})

	wantRevoked(t, e.revoke(rt))
	if e.sim.RefreshTokenValid(rt) || e.sim.AccessTokenValid(at) {
		t.Fatal("tokens alive after revocation in the query string")
	}
	if got := e.sim.Counters(); got.Revokes != 1 || got.RevokedRefresh != 1 || got.RevokeInvalid != 0 || got.RevokeMalformed != 5 {
		t.Fatalf("counters %+v", got)
	}
}

func TestRevokeBehindVaultsBack(t *testing.T) {
	e := newEnv(t, Config{})
	rt, at := e.offline()
	if !e.sim.RevokeRefreshToken(rt) || e.sim.RevokeRefreshToken(rt) || e.sim.RevokeRefreshToken("nope") {
		t.Fatal("RevokeRefreshToken results")
	}
	if e.sim.AccessTokenValid(at) {
		t.Fatal("access token alive")
	}
	wantError(t, e.refreshWith(e.client, rt), "invalid_code")
	// The engine's own later revocation is answered as invalid, and still
	// counted for the client.
	wantInvalidToken(t, e.revoke(rt))
	if got := e.sim.ClientCounters(e.client.ID); got.RevokeInvalid != 1 || got.Revokes != 0 {
		t.Fatalf("counters %+v", got)
	}
}

func TestProtectedResource(t *testing.T) {
	e := newEnv(t, Config{})
	rt, at := e.offline()
	for _, tc := range []struct {
		path, header string
		ok           bool
	}{
		{"/us/api/whoami", "Zoho-oauthtoken " + at, true},
		{"/us/oauth/user/info", "Zoho-oauthtoken " + at, true},
		{"/us/api/whoami", "Bearer " + at, true},
		{"/us/api/whoami", "zoho-oauthtoken " + at, true},
		{"/us/api/whoami", "", false},
		{"/us/api/whoami", at, false},
		{"/us/api/whoami", "Basic " + at, false},
		{"/us/api/whoami", "Zoho-oauthtoken " + rt, false}, // a refresh token is no access token
		{"/us/api/whoami", "Zoho-oauthtoken 1000.00000000000000000000000000000000.00000000000000000000000000000000", false},
		{"/eu/api/whoami", "Zoho-oauthtoken " + at, false},
	} {
		r := e.get(tc.path, "Authorization", tc.header)
		if tc.ok {
			if r.status != http.StatusOK || r.str("client_id") != e.client.ID || r.str("dc") != "us" || r.str("Email") != DefaultUser ||
				r.str("scope") != "ZohoCRM.modules.ALL,ZohoCRM.users.READ" || r.num("ZUID") == 0 {
				t.Errorf("%s %q: %d %s", tc.path, tc.header, r.status, r.raw)
			}
		} else if r.status != http.StatusUnauthorized || r.str("code") != "INVALID_OAUTHTOKEN" || r.str("message") != "invalid oauth token" {
			t.Errorf("%s %q: want 401 INVALID_OAUTHTOKEN, got %d %s", tc.path, tc.header, r.status, r.raw)
		}
	}
	wantRevoked(t, e.revoke(at))
	if r := e.whoami("us", at); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked token accepted: %d", r.status)
	}
	// Tokens of the same user are told apart only by client; ZUID is stable.
	_, at2 := e.offline()
	a, b := e.whoami("us", at2), e.whoami("us", e.mustRefresh(rt))
	if a.num("ZUID") != b.num("ZUID") {
		t.Fatal("ZUID not stable per user")
	}
	// Attribution: denied calls with a known dead token count for its client.
	got := e.sim.ClientCounters(e.client.ID)
	if got.ResourceOK != 4+2 || got.ResourceDenied != 2+1 {
		t.Fatalf("client counters %+v", got)
	}
	if e.sim.ClientCounters("").ResourceDenied != 4 {
		t.Fatalf("unattributed counters %+v", e.sim.ClientCounters(""))
	}
}

func TestRemoveConnectedAppKillsEveryTokenOfTheUser(t *testing.T) {
	e := newEnv(t, Config{})
	rt1, at1 := e.offline()
	rt2, _ := e.offline()
	at2 := e.mustRefresh(rt2)
	other := e.sim.RegisterClient(Client{DC: "us"})
	code, _ := e.sim.SelfClientCode(other.ID, "", []string{"x"}, 0)
	otherRT := e.exchangeWith(other, code).str("refresh_token")
	before := e.sim.ClientCounters(e.client.ID)

	r := e.sendJSON(http.MethodPost, "/sim/connected-apps/remove", `{"client_id":"`+e.client.ID+`"}`)
	if r.status != http.StatusOK || r.num("refresh_tokens") != 2 || r.num("access_tokens") != 3 {
		t.Fatalf("remove: %d %s", r.status, r.raw)
	}
	for _, at := range []string{at1, at2} {
		if e.sim.AccessTokenValid(at) {
			t.Fatal("an access token of the removed app is alive")
		}
		if w := e.whoami("us", at); w.status == http.StatusOK {
			t.Fatalf("the API accepted a dead token: %d %s", w.status, w.raw)
		}
	}
	wantError(t, e.refreshWith(e.client, rt1), "invalid_code")
	wantError(t, e.refreshWith(e.client, rt2), "invalid_code")
	if !e.sim.RefreshTokenValid(otherRT) {
		t.Fatal("another client's refresh token died")
	}
	// Removing an app is not a request to the accounts server: only the two
	// refreshes above were counted.
	after := e.sim.ClientCounters(e.client.ID)
	if after.TokenRequests != before.TokenRequests+2 || after.Evictions != before.Evictions {
		t.Fatalf("counters before %+v after %+v", before, after)
	}

	// Strict: nothing left to remove, an unknown client, no client.
	if r := e.sendJSON(http.MethodPost, "/sim/connected-apps/remove", `{"client_id":"`+e.client.ID+`"}`); r.status != http.StatusNotFound {
		t.Fatalf("second remove: %d %s", r.status, r.raw)
	}
	if _, _, err := e.sim.RemoveConnectedApp(e.client.ID, ""); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("second remove: %v", err)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/connected-apps/remove", `{"client_id":"1000.nope"}`); r.status != http.StatusNotFound {
		t.Fatalf("unknown client: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/connected-apps/remove", `{}`); r.status != http.StatusBadRequest {
		t.Fatalf("no client_id: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/connected-apps/remove", `{"client_id":"`+other.ID+`","user":"someone-else"}`); r.status != http.StatusNotFound || !e.sim.RefreshTokenValid(otherRT) {
		t.Fatalf("another user's app: %d %s", r.status, r.raw)
	}
}
