package backend

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

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

// A lease is handed out only once the reservation covering it is stored.
func TestNoLeaseBeyondTheStoredReservation(t *testing.T) {
	e := newEnv(t)
	e.account("reserve", nil)
	for i := 0; i < initialReservation; i++ {
		e.creds("reserve", nil)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if en.Key != tokenPrefix+"reserve" {
			return nil
		}
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil
		}
		close(entered)
		<-release
		return errors.New("injected storage failure")
	})
	firstErr := make(chan error, 1)
	go func() {
		_, err := e.request(logical.ReadOperation, "creds/reserve", nil)
		firstErr <- err
	}()
	<-entered // the 17th lease's reservation write is under way
	second := make(chan *logical.Response, 1)
	go func() {
		resp, err := e.request(logical.ReadOperation, "creds/reserve", nil)
		if err != nil || resp == nil || resp.IsError() {
			resp = nil
		}
		second <- resp
	}()
	var got *logical.Response
	select {
	case got = <-second:
	case <-time.After(300 * time.Millisecond):
	}
	close(release) // the first write fails
	if err := <-firstErr; err == nil {
		t.Fatal("a lease was handed out although its reservation was not stored")
	}
	if got == nil {
		got = <-second
	}
	if got == nil {
		t.Fatal("the second reader got no lease once storage worked again")
	}
	// Whatever was handed out is covered by what storage says.
	st, err := loadTokenState(context.Background(), e.storage, "reserve")
	if err != nil {
		t.Fatal(err)
	}
	handed := int64(initialReservation + 1)
	for _, m := range st.Minted {
		if m.ID == st.TokenID && m.Reserved < handed {
			t.Fatalf("%d leases handed out, %d reserved in storage", handed, m.Reserved)
		}
	}
}

// With a live-token cap of 1 a refresh evicts the current token: no reader may
// take a lease on it while that refresh is on the wire.
func TestNoLeaseOnATokenTheRefreshEvicts(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 1 })
	c := e.account("single", map[string]interface{}{"live_token_cap": 1})
	e.clock.Advance(2 * time.Minute) // a token no longer as fresh as possible
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 600 * time.Millisecond, Times: 1})
	before := e.sim.ClientCounters(c.ID).TokenRequests
	forced := make(chan error, 1)
	go func() {
		_, err := e.request(logical.ReadOperation, "creds/single", map[string]interface{}{"min_ttl": "59m59s"})
		forced <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.sim.ClientCounters(c.ID).TokenRequests == before {
		if time.Now().After(deadline) {
			t.Fatal("the forced refresh never reached Zoho")
		}
		time.Sleep(5 * time.Millisecond)
	}
	held := accessToken(e.creds("single", nil)) // while the refresh is on the wire
	if err := <-forced; err != nil {
		t.Fatal(err)
	}
	if !e.sim.AccessTokenValid(held) {
		t.Fatal("a reader took a lease on the token the refresh evicted")
	}
}

// A token the engine revoked at Zoho is never served again, restart or not.
func TestRevokedTokenIsNotServedAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.account("gone", nil)
	r := e.creds("gone", nil)
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, tokenPrefix) {
			return errors.New("injected storage failure")
		}
		return nil
	})
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
