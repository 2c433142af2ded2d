package zohosim

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func wantThrottle(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status || r.str("error") != "Access Denied" || r.str("status") != "failure" ||
		r.str("error_description") != ThrottleDescription || r.body["access_token"] != nil {
		t.Fatalf("want the Access Denied answer with HTTP %d, got %d %s", status, r.status, r.raw)
	}
}

func TestTokenThrottleRollingWindow(t *testing.T) {
	e := newEnv(t, Config{})
	rt, _ := e.offline() // the exchange's token is the first of ten
	for i := 1; i <= 9; i++ {
		e.clock.Advance(10 * time.Second)
		e.mustRefresh(rt)
	}
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusOK)
	e.clock.Advance(10*time.Minute - 91*time.Second) // 1s before the exchange leaves the window
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusOK)

	e.clock.Advance(time.Second) // the exchange left the window: one slot
	e.mustRefresh(rt)
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusOK)
	e.clock.Advance(10 * time.Second) // the first refresh left too
	e.mustRefresh(rt)
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusOK)

	// Other refresh tokens have their own window.
	other, _ := e.offline()
	e.mustRefresh(other)

	e.clock.Advance(10 * time.Minute) // the whole window cleared
	for i := 0; i < 10; i++ {
		e.mustRefresh(rt)
	}
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusOK)

	got := e.sim.ClientCounters(e.client.ID)
	if got.Throttled != 5 || got.RefreshFailures != 5 || got.Refreshes != 9+2+1+10 {
		t.Fatalf("counters %+v", got)
	}
	if !e.sim.RefreshTokenValid(rt) {
		t.Fatal("throttling killed the refresh token")
	}
}

func TestThrottleStatus(t *testing.T) {
	for _, tc := range []struct {
		cfg, set, want int
	}{
		{0, 0, http.StatusOK},
		{http.StatusBadRequest, 0, http.StatusBadRequest},
		{0, http.StatusBadRequest, http.StatusBadRequest},
		{http.StatusBadRequest, http.StatusOK, http.StatusOK},
		{http.StatusServiceUnavailable, 0, http.StatusOK}, // not an allowed value: the default
	} {
		e := newEnv(t, Config{ThrottleHTTPStatus: tc.cfg, TokenRateLimit: 1})
		if tc.set != 0 {
			e.sim.SetThrottleHTTPStatus(tc.set)
		}
		rt, _ := e.offline()
		wantThrottle(t, e.refreshWith(e.client, rt), tc.want)
	}
}

func TestSetTokenRateLimit(t *testing.T) {
	e := newEnv(t, Config{})
	e.sim.SetTokenRateLimit(3, time.Minute)
	rt, _ := e.offline()
	e.mustRefresh(rt)
	e.mustRefresh(rt)
	wantThrottle(t, e.refreshWith(e.client, rt), http.StatusOK)
	e.clock.Advance(time.Minute)
	e.mustRefresh(rt)
}

func TestLiveTokenCapEvictsOldest(t *testing.T) {
	e := newEnv(t, Config{TokenRateLimit: 1000})
	rt, first := e.offline()
	tokens := []string{first}
	for i := 0; i < 9; i++ {
		tokens = append(tokens, e.mustRefresh(rt))
	}
	if n := e.sim.LiveAccessTokens(rt); n != 10 {
		t.Fatalf("%d live, want 10", n)
	}
	// The 11th is minted without any error; the oldest silently dies.
	tokens = append(tokens, e.mustRefresh(rt))
	if e.sim.AccessTokenValid(tokens[0]) {
		t.Fatal("oldest token still valid past the cap")
	}
	for _, tok := range tokens[1:] {
		if !e.sim.AccessTokenValid(tok) {
			t.Fatal("a newer token was evicted")
		}
	}
	if r := e.whoami("us", tokens[0]); r.status != http.StatusUnauthorized {
		t.Errorf("evicted token accepted: %d", r.status)
	}
	if n := e.sim.LiveAccessTokens(rt); n != 10 {
		t.Fatalf("%d live after eviction", n)
	}
	if got := e.sim.ClientCounters(e.client.ID).Evictions; got != 1 {
		t.Fatalf("evictions %d", got)
	}

	e.sim.SetLiveTokenCap(3)
	tokens = append(tokens, e.mustRefresh(rt))
	if n := e.sim.LiveAccessTokens(rt); n != 3 {
		t.Fatalf("%d live with cap 3", n)
	}
	for i, tok := range tokens {
		if want := i >= len(tokens)-3; e.sim.AccessTokenValid(tok) != want {
			t.Fatalf("token %d valid=%v, want %v", i, !want, want)
		}
	}
	if got := e.sim.ClientCounters(e.client.ID).Evictions; got != 1+8 {
		t.Fatalf("evictions %d", got)
	}
}

func TestExpiredTokensAreNotLive(t *testing.T) {
	e := newEnv(t, Config{LiveTokenCap: 2, AccessTokenTTL: time.Minute})
	rt, _ := e.offline()
	e.mustRefresh(rt)
	e.clock.Advance(time.Minute)
	if n := e.sim.LiveAccessTokens(rt); n != 0 {
		t.Fatalf("%d live after expiry", n)
	}
	a, b := e.mustRefresh(rt), e.mustRefresh(rt)
	if got := e.sim.ClientCounters(e.client.ID).Evictions; got != 0 || !e.sim.AccessTokenValid(a) || !e.sim.AccessTokenValid(b) {
		t.Fatalf("expired tokens counted toward the live cap (evictions %d)", got)
	}
}

func TestEvictOldestAccessToken(t *testing.T) {
	e := newEnv(t, Config{})
	rt, first := e.offline()
	second := e.mustRefresh(rt)
	if !e.sim.EvictOldestAccessToken(rt) || e.sim.AccessTokenValid(first) || !e.sim.AccessTokenValid(second) {
		t.Fatal("oldest not evicted")
	}
	if !e.sim.EvictOldestAccessToken(rt) || e.sim.AccessTokenValid(second) {
		t.Fatal("second not evicted")
	}
	if e.sim.EvictOldestAccessToken(rt) || e.sim.EvictOldestAccessToken("nope") {
		t.Fatal("evicted from nothing")
	}
	if got := e.sim.ClientCounters(e.client.ID).Evictions; got != 2 {
		t.Fatalf("evictions %d", got)
	}
	if !e.sim.RefreshTokenValid(rt) {
		t.Fatal("refresh token died")
	}
}

func TestRefreshTokenCap(t *testing.T) {
	e := newEnv(t, Config{})
	var rts, ats []string
	for i := 0; i < 20; i++ {
		rt, at := e.offline()
		rts, ats = append(rts, rt), append(ats, at)
	}
	extra := e.mustRefresh(rts[0])
	// Another user of the same client and the same user of another client
	// have their own 20.
	otherUser, _ := e.sim.SelfClientCode(e.client.ID, "someone@example.com", []string{"a.b.ALL"}, 0)
	if r := e.exchangeWith(e.client, otherUser); r.str("refresh_token") == "" {
		t.Fatal(r.raw)
	}
	if !e.sim.RefreshTokenValid(rts[0]) || e.sim.ClientCounters(e.client.ID).Evictions != 0 {
		t.Fatal("another user's consent evicted a refresh token")
	}

	rt21, _ := e.offline()
	if e.sim.RefreshTokenValid(rts[0]) || e.sim.AccessTokenValid(ats[0]) || e.sim.AccessTokenValid(extra) {
		t.Fatal("the 21st refresh token did not delete the first with its access tokens")
	}
	wantError(t, e.refreshWith(e.client, rts[0]), "invalid_code")
	for i := 1; i < 20; i++ {
		if !e.sim.RefreshTokenValid(rts[i]) || !e.sim.AccessTokenValid(ats[i]) {
			t.Fatalf("refresh token %d or its access token died", i)
		}
	}
	if got := e.sim.ClientCounters(e.client.ID).Evictions; got != 2 {
		t.Fatalf("evictions %d, want the deleted token's 2 access tokens", got)
	}
	listed := e.sim.RefreshTokens(e.client.ID)
	if len(listed) != 21 || listed[0] != rts[1] || listed[len(listed)-1] != rt21 || slices.Contains(listed, rts[0]) {
		t.Fatalf("RefreshTokens: %d listed", len(listed))
	}

	e.sim.SetRefreshTokenCap(5)
	e.offline()
	if got := len(e.sim.RefreshTokens(e.client.ID)); got != 5+1 {
		t.Fatalf("%d refresh tokens after lowering the cap to 5 (plus the other user's)", got)
	}
}
