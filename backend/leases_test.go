package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func TestLeaseRevocationRevokesAtZohoWithLastLease(t *testing.T) {
	e := newEnv(t)
	c := e.account("people", nil)
	r1 := e.creds("people", nil)
	r2 := e.creds("people", nil)
	tok := accessToken(r1)
	if err := e.revokeLease(r1); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 0 {
		t.Fatalf("revoked at Zoho while another lease holds the token (%d)", got)
	}
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("token died while a lease holds it")
	}
	if err := e.revokeLease(r2); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("last lease revoked: want 1 upstream revoke, got %d", got)
	}
	if e.sim.AccessTokenValid(tok) {
		t.Fatal("token still valid at Zoho after its last lease")
	}
	// The revoked token left the cache: the next read gets a fresh one.
	next := accessToken(e.creds("people", nil))
	if next == tok || !e.sim.AccessTokenValid(next) {
		t.Fatal("next read did not get a fresh, valid token")
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want 1 refresh after the revocation, got %d", got)
	}
	// Revoking a lease twice (Vault retries) is harmless and calls nobody.
	if err := e.revokeLease(r2); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Revokes; got != 1 {
		t.Fatalf("a repeated revocation called Zoho again (%d)", got)
	}
}

func TestLeaseRevocationFailureIsReportedAndRetried(t *testing.T) {
	e := newEnv(t)
	c := e.account("retry", nil)
	r := e.creds("retry", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	if err := e.revokeLease(r); err == nil || !strings.Contains(err.Error(), `"retry"`) {
		t.Fatalf("a failed upstream revoke must fail the lease revocation, naming the account: %v", err)
	}
	if err := e.revokeLease(r); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("want the retried revoke to reach Zoho once, got %d", got)
	}
}

func TestLeaseOfDeadTokenNeedsNoCall(t *testing.T) {
	e := newEnv(t)
	c := e.account("old", nil)
	r := e.creds("old", nil)
	e.clock.Advance(2 * time.Hour)
	if err := e.revokeLease(r); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Revokes + e.sim.ClientCounters(c.ID).RevokeInvalid; got != 0 {
		t.Fatalf("revoking the lease of an expired token called Zoho %d times", got)
	}
}

func TestConfigUpdateKeepsLeaseCounts(t *testing.T) {
	e := newEnv(t)
	c := e.account("keep", nil)
	r1 := e.creds("keep", nil)
	e.must(logical.UpdateOperation, "config/keep", map[string]interface{}{"scopes": "ZohoCRM.modules.READ"})
	if err := e.revokeLease(r1); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("a config update lost the lease count: %d upstream revokes", got)
	}
}

// Vault sends a lease's revocation again when deleting the lease entry failed
// or the revocation deadline passed: each lease counts once.
func TestRepeatedLeaseRevocationCountsOnce(t *testing.T) {
	e := newEnv(t)
	c := e.account("retried", nil)
	r1, r2, r3 := e.creds("retried", nil), e.creds("retried", nil), e.creds("retried", nil)
	tok := accessToken(r3)
	for _, r := range []*logical.Response{r1, r1, r2} {
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
	}
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("the token was revoked at Zoho while the third lease still holds it")
	}
	if got := e.sim.ClientCounters(c.ID).Revokes; got != 0 {
		t.Fatalf("%d revocations at Zoho with a lease outstanding", got)
	}
	if err := e.revokeLease(r3); err != nil {
		t.Fatal(err)
	}
	if e.sim.AccessTokenValid(tok) {
		t.Fatal("the last lease ended but the token is still valid at Zoho")
	}
}

// A lease revoked before a restart whose revocation Vault sends again after
// it, while leases issued after the revocation hold the token.
func TestLeaseCountsStayExactAcrossRestart(t *testing.T) {
	e := newEnv(t)
	e.account("restarted", nil)
	var leases []*logical.Response
	for i := 0; i < initialReservation; i++ {
		leases = append(leases, e.creds("restarted", nil))
	}
	// Vault revoked the first lease but could not delete its entry.
	if err := e.revokeLease(leases[0]); err != nil {
		t.Fatal(err)
	}
	late := e.creds("restarted", nil)
	tok := accessToken(late)
	e.restart()
	for _, r := range leases { // the first one again, then the others
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
	}
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("after a restart the token was revoked while a lease issued before the restart holds it")
	}
}

// The revocation waits on the account and calls Zoho within the request's
// context: Vault's revocation deadline is honoured.
func TestLeaseRevocationHonoursTheRequestContext(t *testing.T) {
	e := newEnv(t)
	e.account("ctx", nil)
	r := e.creds("ctx", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultLatency, Latency: 1500 * time.Millisecond, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := e.revokeLeaseCtx(ctx, r)
	if took := time.Since(began); took > time.Second {
		t.Fatalf("the revocation outlived its context by %s", took-200*time.Millisecond)
	}
	if err == nil {
		t.Fatal("a revocation Zoho did not confirm in time must fail (Vault retries it)")
	}
	// Vault's retry reaches Zoho and confirms.
	if err := e.revokeLease(r); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if e.sim.AccessTokenValid(accessToken(r)) {
		t.Fatal("the retried revocation left the token alive")
	}
}

// A token the engine revoked at Zoho is never served again, restart or not.
func TestRevokedTokenIsNotServedAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.account("gone", nil)
	r := e.creds("gone", nil)
	e.storage.failPutsUnder(tokenPrefix)
	_ = e.revokeLease(r) // whatever it answers
	e.storage.setPutHook(nil)
	e.restart()
	if tok := accessToken(e.creds("gone", nil)); !e.sim.AccessTokenValid(tok) {
		t.Fatal("after a restart the engine served a token it had revoked at Zoho")
	}
}

// The revocation goes to the accounts server that issued the token, even after
// the operator pointed the account elsewhere; a revocation Zoho does not
// confirm fails.
func TestRevocationGoesToTheIssuingAccountsServer(t *testing.T) {
	e := newEnv(t)
	e.account("moved", nil)
	rt := e.sim.RefreshTokens(e.b.cachedAccount("moved").cfg.ClientID)
	if len(rt) != 1 {
		t.Fatalf("want 1 refresh token at Zoho, got %d", len(rt))
	}
	r := e.creds("moved", nil)
	e.must(logical.UpdateOperation, "config/moved", map[string]interface{}{"accounts_url": e.sim.AccountsURL("eu")})
	if err := e.revokeLease(r); err != nil {
		t.Fatalf("lease revocation: %v", err)
	}
	if e.sim.AccessTokenValid(accessToken(r)) {
		t.Fatal("the access token is still valid at the data center that issued it")
	}
	resp, err := e.request(logical.UpdateOperation, "revoke/moved", nil)
	if err != nil || resp.IsError() {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	if e.sim.RefreshTokenValid(rt[0]) {
		t.Fatal("revoke/ answered success while the refresh token is alive at the data center that issued it")
	}
}

// A 400 from the revoke endpoint that is not Zoho's invalid-token answer is
// not a revocation.
func TestUnconfirmedRevocationFails(t *testing.T) {
	e := newEnv(t)
	e.account("unsure", nil)
	r := e.creds("unsure", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 400, Times: 1})
	if err := e.revokeLease(r); err == nil {
		t.Fatal("an HTTP 400 without an invalid-token answer was taken as a revocation")
	}
	if !e.sim.AccessTokenValid(accessToken(r)) {
		t.Fatal("the fault should have kept the token alive")
	}
	if err := e.revokeLease(r); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if e.sim.AccessTokenValid(accessToken(r)) {
		t.Fatal("the retried revocation left the token alive")
	}
}

// Zoho revokes the token but its answer is lost: the lease revocation fails
// (Vault retries it) and the token is not served again.
func TestTokenWhoseRevocationAnswerWasLostIsNotServed(t *testing.T) {
	e := newEnv(t)
	e.account("lostans", nil)
	r := e.creds("lostans", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultLostAnswer, Times: 1})
	if err := e.revokeLease(r); err == nil {
		t.Fatal("a revocation whose answer was lost was taken as confirmed")
	}
	if tok := accessToken(e.creds("lostans", nil)); tok == accessToken(r) || !e.sim.AccessTokenValid(tok) {
		t.Fatal("the engine served a token Zoho may have revoked")
	}
	e.restart()
	if tok := accessToken(e.creds("lostans", nil)); tok == accessToken(r) || !e.sim.AccessTokenValid(tok) {
		t.Fatal("after a restart the engine served a token Zoho may have revoked")
	}
	if err := e.revokeLease(r); err != nil { // Vault's retry: Zoho says the token is invalid
		t.Fatalf("retry: %v", err)
	}
}

// renewLease renews the lease of a creds response, as Vault's expiration
// manager does, with the lease issued at issued; it returns Vault's view of
// the renewal: the TTL and the maximum TTL from the issue.
func (e *env) renewLease(resp *logical.Response, issued time.Time) (*logical.Secret, error) {
	e.t.Helper()
	secret := roundTrip(e.t, resp.Secret)
	secret.LeaseID = leaseIDOf(resp)
	secret.IssueTime = issued
	r, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Storage: e.storage, Secret: secret})
	if err != nil {
		return nil, err
	}
	if r == nil || r.Secret == nil {
		return nil, errString(respErrText(r))
	}
	return r.Secret, nil
}

// A renewal answers what is left of the lease and never goes past the end
// it was given, which never outlives the token; it calls nobody and writes
// nothing.
func TestRenewalNeverExtendsTheLease(t *testing.T) {
	e := newEnv(t)
	c := e.account("renew", nil)
	issued := e.clock.Now()
	resp := e.creds("renew", nil)
	end := issued.Add(resp.Secret.TTL)
	exp, _ := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	if end.After(exp.Add(-time.Minute)) {
		t.Fatalf("lease ends %s, after the token's expiry less the margin", end)
	}
	// Renewals before the token's refresh point call nobody and write nothing.
	refreshAt := e.b.cachedAccount("renew").view.Load().refreshAt
	before, puts := e.sim.ClientCounters(c.ID), e.storage.puts.Load()
	for _, at := range []time.Time{issued.Add(refreshAt.Sub(issued) / 3), issued.Add(refreshAt.Sub(issued) * 2 / 3)} {
		e.clock.Advance(at.Sub(e.clock.Now()))
		sec, err := e.renewLease(resp, issued)
		if err != nil {
			t.Fatal(err)
		}
		if want := end.Sub(e.clock.Now()).Truncate(time.Second); sec.TTL != want {
			t.Fatalf("renewal answered %s, want what is left: %s", sec.TTL, want)
		}
		// Vault lets an increment grow the TTL up to the maximum from the issue.
		if issued.Add(sec.MaxTTL) != end {
			t.Fatalf("renewal allows growth up to %s, past the lease's end %s", issued.Add(sec.MaxTTL), end)
		}
	}
	e.waitBackground()
	if got := e.sim.ClientCounters(c.ID); got != before || e.storage.puts.Load() != puts {
		t.Fatalf("renewals called Zoho (%+v → %+v) or wrote storage (%d)", before, got, e.storage.puts.Load()-puts)
	}
	// Past the refresh point a renewal starts the one background refresh a
	// read would: a client that only renews finds the next token at its end.
	e.clock.Advance(refreshAt.Sub(e.clock.Now()) + time.Second)
	if _, err := e.renewLease(resp, issued); err != nil {
		t.Fatal(err)
	}
	e.waitBackground()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("a renewal past the refresh point made %d refreshes, want 1", got)
	}
	e.clock.Advance(end.Sub(e.clock.Now()))
	if _, err := e.renewLease(resp, issued); err == nil || !strings.Contains(err.Error(), "read creds/renew again") {
		t.Fatalf("a renewal at the lease's end must say to read again: %v", err)
	}
}

// A lease issued before leases carried their end (no lease_ends_at in its
// internal data) still ends when the token's expiry less the margin, 60 s for
// Zoho's one-hour tokens, comes: a renewal never answers up to the expiry.
func TestRenewalOfALeaseWithoutARecordedEndKeepsTheMargin(t *testing.T) {
	e := newEnv(t)
	e.account("old", nil)
	issued := e.clock.Now()
	resp := e.creds("old", nil)
	exp, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	secret := roundTrip(t, resp.Secret)
	if _, ok := secret.InternalData["lease_ends_at"]; !ok {
		t.Fatalf("the lease carries no lease_ends_at to remove: %v", secret.InternalData)
	}
	delete(secret.InternalData, "lease_ends_at")
	secret.LeaseID = leaseIDOf(resp)
	secret.IssueTime = issued
	for _, after := range []time.Duration{10 * time.Minute, 40 * time.Minute} {
		e.clock.Advance(issued.Add(after).Sub(e.clock.Now()))
		r, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Storage: e.storage, Secret: secret})
		if err != nil || r == nil || r.Secret == nil {
			t.Fatalf("renewal %s after the issue: %v %v", after, err, respErrText(r))
		}
		if want := exp.Add(-60 * time.Second).Sub(e.clock.Now()); r.Secret.TTL != want {
			t.Fatalf("renewal %s after the issue answered %s; want %s, to 60 s before the token's expiry", after, r.Secret.TTL, want)
		}
	}
}

// Renewing a lease whose token is gone says to read creds/ again.
func TestRenewalOfAGoneTokenSaysReadAgain(t *testing.T) {
	e := newEnv(t)
	c := e.account("gone2", nil)
	issued := e.clock.Now()
	r1 := e.creds("gone2", nil)
	e.must(logical.UpdateOperation, "config/gone2", map[string]interface{}{"grant_code": e.code(c)}) // the refresh token is replaced
	if _, err := e.renewLease(r1, issued); err == nil || !strings.Contains(err.Error(), "replaced or revoked") || !strings.Contains(err.Error(), "read creds/gone2 again") {
		t.Fatalf("renewal after the refresh token was replaced: %v", err)
	}
	// A token whose last lease ended is revoked; a lease issued on it before
	// (as Vault may still renew one whose revocation is pending) cannot go on.
	r2, r3 := e.creds("gone2", nil), e.creds("gone2", nil)
	if err := e.revokeLease(r2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.renewLease(r3, issued); err != nil {
		t.Fatalf("the token is still held: %v", err)
	}
	if err := e.revokeLease(r3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.renewLease(r3, issued); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("renewal of a revoked token's lease: %v", err)
	}
}

// The leases of one token end spread over a window before the token's end,
// never after it.
func TestLeaseEndsAreSpread(t *testing.T) {
	e := newEnv(t)
	e.account("spread", nil)
	now := e.clock.Now()
	var ends []time.Time
	var exp time.Time
	for i := 0; i < 200; i++ {
		resp := e.creds("spread", nil)
		exp, _ = time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
		ends = append(ends, now.Add(resp.Secret.TTL))
	}
	latest := exp.Add(-time.Minute) // the margin of a one-hour token
	window := leaseSpread(time.Hour)
	const slots = 12 // 15-second buckets over the 3-minute window
	buckets := make([]int, slots)
	for _, end := range ends {
		if end.After(latest) || end.Before(latest.Add(-window)) {
			t.Fatalf("a lease ends %s before the latest end, outside the %s window", latest.Sub(end), window)
		}
		buckets[min(slots-1, int(latest.Sub(end)/(window/slots)))]++
	}
	for i, n := range buckets {
		if n < 8 || n > 26 { // 200/12 ≈ 17 each
			t.Fatalf("bucket %d before the latest end holds %d of 200 lease ends: %v", i, n, buckets)
		}
	}
	// The window starts after the token's latest refresh point: a client
	// whose lease ends reads the next token.
	if first := latest.Add(-window); !first.After(exp.Add(-refreshLead(time.Hour))) {
		t.Fatalf("leases may end at %s, before the latest refresh point %s", first, exp.Add(-refreshLead(time.Hour)))
	}
	// A reader that asks for a minimum TTL gets at least that.
	resp := e.creds("spread", map[string]interface{}{"min_ttl": "55m"})
	if resp.Secret.TTL < 55*time.Minute {
		t.Fatalf("min_ttl=55m got a lease of %s", resp.Secret.TTL)
	}
}

// Near the token's end the leases' ends are brought forward by at most half
// of what is left: a token 4 minutes from its latest lease end (its margin
// of 60 s before expiry) gives leases of at least 2 minutes.
func TestLeaseEndsNearTheTokensEndKeepHalfOfWhatIsLeft(t *testing.T) {
	e := newEnv(t)
	e.account("late", nil)
	issued := e.clock.Now()
	e.clock.Advance(55 * time.Minute)
	// Refreshes fail, so every read below is served the same token.
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503})
	for i := 0; i < 12; i++ {
		resp := e.creds("late", nil)
		exp, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(issued.Add(time.Hour)) {
			t.Fatalf("read %d was served a token expiring %s, want the first token", i+1, exp)
		}
		if ttl := resp.Secret.TTL; ttl < 2*time.Minute || ttl > 4*time.Minute {
			t.Fatalf("read %d, 4m before the latest lease end, got a lease of %s; want 2m to 4m", i+1, ttl)
		}
		e.waitBackground()
	}
}

// The set of ended lease numbers holds numbers in every 64-bit word: adding
// one keeps the others of its word, and removing a number never added (past
// the set's words too) changes nothing.
func TestLeaseSetTracksNumbersInEveryWord(t *testing.T) {
	var s leaseSet
	nums := []int64{1, 2, 63, 64, 65, 127, 128, 129, 200}
	for i, n := range nums {
		s.add(n)
		for _, m := range nums[:i+1] {
			if !s.has(m) {
				t.Fatalf("after adding %d, %d is no longer in the set", n, m)
			}
		}
		for _, m := range nums[i+1:] {
			if s.has(m) {
				t.Fatalf("after adding %d, %d is in the set before it was added", n, m)
			}
		}
	}
	s.remove(64)
	if s.has(64) || !s.has(63) || !s.has(65) || !s.has(128) {
		t.Fatalf("removing 64: has(63) %v has(64) %v has(65) %v has(128) %v", s.has(63), s.has(64), s.has(65), s.has(128))
	}
	var empty leaseSet
	empty.remove(1)
	empty.remove(64)
	short := leaseSet{}
	short.add(3)
	short.remove(64)
	short.remove(128)
	if !short.has(3) || short.has(64) || short.has(128) {
		t.Fatalf("removing numbers never added changed the set: has(3) %v", short.has(3))
	}
}

// Leases numbered past the first 64 count once each, however often Vault
// sends their revocation: the token is revoked at Zoho with the last lease,
// not before.
func TestLeaseNumbersPast64CountOnce(t *testing.T) {
	e := newEnv(t)
	c := e.account("many", nil)
	var leases []*logical.Response
	for i := 0; i < 130; i++ {
		leases = append(leases, e.creds("many", nil))
	}
	tok := accessToken(leases[0])
	if last := accessToken(leases[129]); last != tok {
		t.Fatal("the leases are not all on one token")
	}
	// Leases 64, 65 and 128 ended, each revocation sent twice.
	for _, i := range []int{63, 64, 127, 63, 64, 127} {
		if err := e.revokeLease(leases[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range leases[:129] {
		if i == 63 || i == 64 || i == 127 {
			continue
		}
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
	}
	if !e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).Revokes != 0 {
		t.Fatalf("the token was revoked at Zoho (%d calls) while lease 130 holds it", e.sim.ClientCounters(c.ID).Revokes)
	}
	if err := e.revokeLease(leases[129]); err != nil {
		t.Fatal(err)
	}
	if e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).RevokedAccess != 1 {
		t.Fatalf("after the last lease: token valid %v, %d revocations at Zoho", e.sim.AccessTokenValid(tok), e.sim.ClientCounters(c.ID).RevokedAccess)
	}
}

// revokeLeaseWith revokes the lease of a creds response with its internal
// data edited first (a lease of an older engine, say).
func (e *env) revokeLeaseWith(resp *logical.Response, edit func(map[string]interface{})) error {
	e.t.Helper()
	secret := roundTrip(e.t, resp.Secret)
	secret.LeaseID = leaseIDOf(resp) + "-edited"
	edit(secret.InternalData)
	r, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RevokeOperation, Storage: e.storage, Secret: secret})
	if err == nil && r != nil && r.IsError() {
		return errString(respErr(r))
	}
	return err
}

// A lease the engine did not number (issued before leases were numbered), or
// one numbered past what the token handed out, counts nothing: it never ends
// one of the token's numbered leases, so the token is not revoked early.
func TestUnnumberedLeaseRevocationCountsNothing(t *testing.T) {
	e := newEnv(t)
	c := e.account("old", nil)
	r1, r2 := e.creds("old", nil), e.creds("old", nil)
	tok := accessToken(r1)
	for _, seq := range []interface{}{nil, 1000} {
		err := e.revokeLeaseWith(r1, func(d map[string]interface{}) {
			if seq == nil {
				delete(d, "lease_seq")
			} else {
				d["lease_seq"] = seq
			}
		})
		if err != nil {
			t.Fatalf("revoking a lease numbered %v: %v", seq, err)
		}
	}
	if err := e.revokeLease(r2); err != nil {
		t.Fatal(err)
	}
	if !e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).Revokes != 0 {
		t.Fatal("the token was revoked at Zoho while lease 1 holds it")
	}
	if err := e.revokeLease(r1); err != nil {
		t.Fatal(err)
	}
	if e.sim.AccessTokenValid(tok) {
		t.Fatal("the last lease ended, the token is still valid at Zoho")
	}
}

// When the retirement of a token whose last lease ends cannot be stored, the
// revocation fails and changes nothing: the token is still served (no
// refresh at Zoho) and its lease still counts, so that the token is revoked
// with its last lease and not before.
func TestFailedStoreOfARetirementKeepsTheTokenAndItsLeases(t *testing.T) {
	e := newEnv(t)
	c := e.account("keep", nil)
	a := e.creds("keep", nil)
	tok := accessToken(a)
	e.storage.failPutsUnder(tokenPrefix)
	if err := e.revokeLease(a); err == nil {
		t.Fatal("the retirement was not stored, the revocation reported success")
	}
	e.storage.setPutHook(nil)
	refreshes := e.sim.ClientCounters(c.ID).Refreshes
	b, d := e.creds("keep", nil), e.creds("keep", nil)
	if accessToken(b) != tok || accessToken(d) != tok || e.sim.ClientCounters(c.ID).Refreshes != refreshes {
		t.Fatalf("after the failed revocation the token was not served again (%d refreshes)", e.sim.ClientCounters(c.ID).Refreshes-refreshes)
	}
	if err := e.revokeLease(a); err != nil {
		t.Fatal(err)
	}
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("the token was revoked at Zoho while two leases hold it")
	}
	for _, r := range []*logical.Response{b, d} {
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
	}
	if e.sim.AccessTokenValid(tok) {
		t.Fatal("the last lease ended, the token is still valid at Zoho")
	}
}

// A token retired for revocation (its last lease ended, Zoho did not confirm
// the revocation) is never served again after a restart: not by the first
// read, and not after a lease counted again after the restart ends while
// others may still hold the token and a configuration change rebuilds what
// readers are served.
func TestRetiredTokenIsNeverServedAgainAfterARestart(t *testing.T) {
	for _, leaseEndsFirst := range []bool{false, true} {
		e := newEnv(t)
		e.account("ret", nil)
		r1, r2 := e.creds("ret", nil), e.creds("ret", nil)
		tok := accessToken(r1)
		if err := e.revokeLease(r1); err != nil {
			t.Fatal(err)
		}
		e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
		if err := e.revokeLease(r2); err == nil {
			t.Fatal("a revocation Zoho refused reported success")
		}
		e.restart()
		if leaseEndsFirst {
			// Vault sends lease 1's revocation again: after the restart
			// every lease up to the reservation may hold the token, so it
			// stays unrevoked, and retired.
			if err := e.revokeLease(r1); err != nil {
				t.Fatal(err)
			}
			e.must(logical.UpdateOperation, "config/ret", map[string]interface{}{"scopes": "ZohoCRM.modules.READ"})
		}
		if got := accessToken(e.creds("ret", nil)); got == tok {
			t.Fatalf("the token retired for revocation was served again (lease ended after the restart: %v)", leaseEndsFirst)
		}
	}
}

// A token stored before the engine recorded which accounts server minted it
// is revoked at the account's accounts server.
func TestTokenStoredWithoutItsIssuerIsRevokedAtTheAccountsServer(t *testing.T) {
	e := newEnv(t)
	e.account("noiss", nil)
	var leases []*logical.Response
	for i := 0; i < initialReservation; i++ {
		leases = append(leases, e.creds("noiss", nil))
	}
	e.dropStoredIssuers("noiss")
	e.restart()
	for _, r := range leases {
		if err := e.revokeLease(r); err != nil {
			t.Fatalf("lease revocation: %v", err)
		}
	}
	if e.sim.AccessTokenValid(accessToken(leases[0])) {
		t.Fatal("the leases ended, their token is still valid at Zoho")
	}
}

// dropStoredIssuers rewrites the stored token state of account name as an
// engine that did not record the minting accounts server stored it.
func (e *env) dropStoredIssuers(name string) {
	e.t.Helper()
	var raw map[string]interface{}
	if found, err := getJSON(context.Background(), e.storage, tokenPrefix+name, &raw); err != nil || !found {
		e.t.Fatalf("stored token state: %v %v", found, err)
	}
	minted, _ := raw["minted"].([]interface{})
	if len(minted) == 0 {
		e.t.Fatalf("no minted tokens in %v", raw)
	}
	for _, m := range minted {
		delete(m.(map[string]interface{}), "issuer")
	}
	if err := putJSON(context.Background(), e.storage, tokenPrefix+name, raw); err != nil {
		e.t.Fatal(err)
	}
}

// After its last lease the token is revoked at Zoho and no longer kept in
// storage; a failure to store that is logged for the operator, and only a
// failure is.
func TestRevokedTokenIsNotKeptAndAFailedStoreIsLogged(t *testing.T) {
	const warning = "could not store access token revocation"
	e := newEnv(t)
	e.account("hyg", nil)
	r := e.creds("hyg", nil)
	if err := e.revokeLease(r); err != nil {
		t.Fatal(err)
	}
	raw, err := e.storage.Get(context.Background(), tokenPrefix+"hyg")
	if err != nil || raw == nil {
		t.Fatalf("stored token state: %v %v", raw, err)
	}
	assertNoSecrets(t, "the stored token state after the revocation", string(raw.Value), accessToken(r))
	if strings.Contains(e.logs.String(), warning) {
		t.Fatal("a stored revocation was logged as a failure")
	}
	// The second store (after Zoho confirmed) fails.
	r2 := e.creds("hyg", nil)
	tokenPuts := 0
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, tokenPrefix) {
			if tokenPuts++; tokenPuts == 2 {
				return errors.New("injected storage failure")
			}
		}
		return nil
	})
	if err := e.revokeLease(r2); err != nil {
		t.Fatalf("Zoho confirmed the revocation: %v", err)
	}
	e.storage.setPutHook(nil)
	if tokenPuts != 2 || !strings.Contains(e.logs.String(), warning) {
		t.Fatalf("a failure to store the revocation was not logged (%d token writes)", tokenPuts)
	}
}

// A renewal says to read again when the lease's token is going (retired for
// a revocation Zoho has not confirmed yet) or no longer tracked (the account
// was deleted and created again).
func TestRenewalOfAGoingOrUntrackedTokenSaysReadAgain(t *testing.T) {
	e := newEnv(t)
	e.account("g", nil)
	issued := e.clock.Now()
	r1, r2 := e.creds("g", nil), e.creds("g", nil)
	if err := e.revokeLease(r1); err != nil {
		t.Fatal(err)
	}
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	if err := e.revokeLease(r2); err == nil {
		t.Fatal("a revocation Zoho refused reported success")
	}
	if _, err := e.renewLease(r2, issued); err == nil || !strings.Contains(err.Error(), "read creds/g again") {
		t.Fatalf("renewal of a lease whose token is being revoked: %v", err)
	}
	r3 := e.creds("g", nil)
	e.must(logical.DeleteOperation, "config/g", nil)
	e.account("g", nil)
	if _, err := e.renewLease(r3, issued); err == nil || !strings.Contains(err.Error(), "read creds/g again") {
		t.Fatalf("renewal of a lease of the deleted account's token: %v", err)
	}
}
