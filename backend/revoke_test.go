package backend

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func TestRevokePathKeepsClient(t *testing.T) {
	e := newEnv(t)
	c := e.account("rev", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "rev")
	tok := accessToken(e.creds("rev", nil))
	e.must(logical.UpdateOperation, "revoke/rev", nil)
	if e.sim.RefreshTokenValid(cfg.RefreshToken) || e.sim.AccessTokenValid(tok) {
		t.Fatal("tokens alive after revoke")
	}
	st := e.must(logical.ReadOperation, "config/rev", nil)
	if st.Data["has_refresh_token"] != false || st.Data["client_id"] != c.ID || st.Data["token_expires_at"] != "" {
		t.Fatalf("status after revoke: %v", st.Data)
	}
	msg, status := e.fails(logical.ReadOperation, "creds/rev", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "grant_code") {
		t.Fatalf("got %d %q", status, msg)
	}
	// Idempotent: no token, no call.
	n := e.sim.ClientCounters(c.ID).Revokes
	e.must(logical.UpdateOperation, "revoke/rev", nil)
	if e.sim.ClientCounters(c.ID).Revokes != n {
		t.Fatal("second revoke called Zoho")
	}
	// A new grant code brings it back.
	e.must(logical.UpdateOperation, "config/rev", map[string]interface{}{"grant_code": e.code(c)})
	e.creds("rev", nil)
	if _, status := e.fails(logical.UpdateOperation, "revoke/none", nil); status != http.StatusBadRequest {
		t.Fatalf("revoke of a missing account: %d", status)
	}
}

// revoke/ of a client_credentials account stops minting and revokes every
// live token it minted (held by leases or not) at Zoho; the leases' later
// revocations cost no call; writing the account again resumes minting.
func TestRevokeClientCredentialsAccount(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	issued := e.clock.Now()
	r1 := e.creds("org", nil)
	e.clock.Advance(10 * time.Second)
	r2 := e.creds("org", map[string]interface{}{"min_ttl": "59m"}) // a second live token
	first, second := accessToken(r1), accessToken(r2)
	if first == second || e.sim.LiveClientCredentialsTokens(c.ID, "us", testSOID) != 2 {
		t.Fatal("want two live tokens")
	}
	resp := e.must(logical.UpdateOperation, "revoke/org", nil)
	if resp != nil && len(resp.Warnings) > 0 {
		t.Fatalf("warnings %v", resp.Warnings)
	}
	if e.sim.AccessTokenValid(first) || e.sim.AccessTokenValid(second) {
		t.Fatal("a token lives at Zoho after revoke/")
	}
	if got := e.sim.ClientCounters(c.ID); got.RevokedAccess != 2 || got.RevokeInvalid != 0 {
		t.Fatalf("Zoho saw %+v; want two access tokens revoked", got)
	}
	msg, status := e.fails(logical.ReadOperation, "creds/org", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "revoke/org") || !strings.Contains(msg, "config/org") {
		t.Fatalf("creds after revoke/: %d %q", status, msg)
	}
	st := e.must(logical.ReadOperation, "status/org", nil).Data
	if st["revoked_at"] == "" || st["token_expires_at"] != "" {
		t.Fatalf("status after revoke/: %v", st)
	}
	if _, err := e.renewLease(r1, issued); err == nil || !strings.Contains(err.Error(), "revoke/") {
		t.Fatalf("renewal after revoke/: %v", err)
	}
	// The leases end: nothing left to revoke at Zoho.
	for _, r := range []*logical.Response{r1, r2} {
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
	}
	// revoke/ again: nothing to do, no call.
	e.must(logical.UpdateOperation, "revoke/org", nil)
	if got := e.sim.ClientCounters(c.ID); got.Revokes != 2 || got.RevokeInvalid != 0 || got.ClientCredentials != 2 {
		t.Fatalf("after the leases ended and a second revoke/: %+v", got)
	}
	// The stop survives a restart.
	e.restart()
	if _, status := e.fails(logical.ReadOperation, "creds/org", nil); status != http.StatusBadRequest {
		t.Fatalf("creds after restart: %d", status)
	}
	// Written again, it mints again.
	e.must(logical.UpdateOperation, "config/org", map[string]interface{}{})
	tok := accessToken(e.creds("org", nil))
	if !e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).ClientCredentials != 3 {
		t.Fatal("no new token after the account was written again")
	}
	if st := e.must(logical.ReadOperation, "status/org", nil).Data; st["revoked_at"] != "" {
		t.Fatalf("revoked_at after the write: %v", st["revoked_at"])
	}
}

// Zoho does not confirm a revocation: revoke/ answers 502 and the token is
// never served again; revoke/ again retries it.
func TestRevokeClientCredentialsUnconfirmed(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	tok := accessToken(e.creds("org", nil))
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	msg, status := e.fails(logical.UpdateOperation, "revoke/org", nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, "revoke/org again") || !strings.Contains(msg, "1 of its live access token") {
		t.Fatalf("got %d %q", status, msg)
	}
	assertNoSecrets(t, "the error", msg, tok, c.Secret)
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("the simulator revoked despite the fault")
	}
	if _, status := e.fails(logical.ReadOperation, "creds/org", nil); status != http.StatusBadRequest {
		t.Fatal("an unconfirmed token was served")
	}
	e.must(logical.UpdateOperation, "revoke/org", nil)
	if e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).RevokedAccess != 1 {
		t.Fatal("the retry did not revoke the token")
	}
}

// A lease revocation revokes a client_credentials token at Zoho with its last
// lease, as for refresh-token accounts; the next read mints another.
func TestClientCredentialsLeaseRevocation(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	r1, r2 := e.creds("org", nil), e.creds("org", nil)
	tok := accessToken(r1)
	if err := e.revokeLease(r1); err != nil {
		t.Fatal(err)
	}
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("revoked while a lease holds it")
	}
	if err := e.revokeLease(r2); err != nil {
		t.Fatal(err)
	}
	if e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).RevokedAccess != 1 {
		t.Fatal("the last lease's revocation did not revoke the token at Zoho")
	}
	next := accessToken(e.creds("org", nil))
	if next == tok || !e.sim.AccessTokenValid(next) || e.sim.ClientCounters(c.ID).ClientCredentials != 2 {
		t.Fatal("the next read did not mint a new token")
	}
	// revoke/ now revokes only the live one.
	e.must(logical.UpdateOperation, "revoke/org", nil)
	if got := e.sim.ClientCounters(c.ID); got.RevokedAccess != 2 || got.RevokeInvalid != 0 {
		t.Fatalf("counters %+v", got)
	}
}

// Deleting a client_credentials account revokes its live tokens first; if
// Zoho does not confirm, the account stays (stopped) and a second delete
// finishes.
func TestDeleteClientCredentialsAccount(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	tok := accessToken(e.creds("org", nil))
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultReset, Times: 1})
	msg, status := e.fails(logical.DeleteOperation, "config/org", nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, "was not deleted") || !strings.Contains(msg, "delete config/org again") {
		t.Fatalf("got %d %q", status, msg)
	}
	if stored, _ := loadConfig(context.Background(), e.storage, "org"); stored == nil || stored.Marks().RevokedAt.IsZero() {
		t.Fatal("want the account kept, stopped")
	}
	e.must(logical.DeleteOperation, "config/org", nil)
	if stored, _ := loadConfig(context.Background(), e.storage, "org"); stored != nil {
		t.Fatal("not deleted")
	}
	if e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).RevokedAccess != 1 {
		t.Fatal("the live token was not revoked")
	}
}

// Writing a stopped client_credentials account again lets it mint at once,
// even if it was backing off when revoke/ stopped it.
func TestResumedClientCredentialsAccountMintsAtOnce(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	e.clock.Advance(time.Hour)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultError, ErrorCode: "missing_org_info", Times: 1})
	e.fails(logical.ReadOperation, "creds/org", nil) // backing off from now
	e.must(logical.UpdateOperation, "revoke/org", nil)
	e.must(logical.UpdateOperation, "config/org", map[string]interface{}{})
	if _, msg, status := e.attempt(logical.ReadOperation, "creds/org", nil); status != http.StatusOK {
		t.Fatalf("the resumed account still backs off: %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).ClientCredentials; got != 2 {
		t.Fatalf("%d tokens minted, want 2", got)
	}
}

// Deleting a client_credentials account warns about the access tokens whose
// answer was lost (nobody can revoke them; they expire by themselves), and
// only about those.
func TestDeletedClientCredentialsAccountWarnsOnlyOfLostTokens(t *testing.T) {
	e := newEnv(t)
	const warning = "deleted account leaves access tokens whose answer was lost"
	e.ccAccount("known", nil)
	e.creds("known", nil)
	e.must(logical.DeleteOperation, "config/known", nil)
	if strings.Contains(e.logs.String(), warning) {
		t.Fatal("a delete that revoked every token warned of lost ones")
	}
	e.ccAccount("lost", nil)
	e.clock.Advance(2 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLostAnswer, Latency: time.Millisecond, Times: 1})
	e.fails(logical.ReadOperation, "creds/lost", map[string]interface{}{"min_ttl": "59m"})
	e.must(logical.DeleteOperation, "config/lost", nil)
	if !strings.Contains(e.logs.String(), warning) {
		t.Fatal("a delete leaving a token whose answer was lost did not warn")
	}
}

// A lease of a refresh token revoked by revoke/ stays ended after a new grant
// brings the account back: the new grant's tokens are another generation.
func TestLeaseOfARevokedRefreshTokenStaysEndedAfterANewGrant(t *testing.T) {
	e := newEnv(t)
	c := e.account("rg", nil)
	issued := e.clock.Now()
	old := e.creds("rg", nil)
	e.must(logical.UpdateOperation, "revoke/rg", nil)
	e.must(logical.UpdateOperation, "config/rg", map[string]interface{}{"grant_code": e.code(c)})
	e.creds("rg", nil)
	if _, err := e.renewLease(old, issued); err == nil || !strings.Contains(err.Error(), "replaced or revoked") {
		t.Fatalf("renewal of a lease on the revoked refresh token's access token: %v", err)
	}
}

// revoke/ of a client_credentials account revokes every known live token,
// those minted after a token whose answer was lost included, and warns of
// the lost one.
func TestRevokeClientCredentialsPastALostAnswer(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	first := accessToken(e.creds("org", nil))
	e.clock.Advance(2 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLostAnswer, Latency: time.Millisecond, Times: 1})
	e.fails(logical.ReadOperation, "creds/org", map[string]interface{}{"min_ttl": "59m"})
	e.clock.Advance(5 * time.Minute)
	last := accessToken(e.creds("org", map[string]interface{}{"min_ttl": "59m"}))
	if first == last || e.sim.LiveClientCredentialsTokens(c.ID, "us", testSOID) != 3 {
		t.Fatalf("want three live tokens at Zoho, have %d", e.sim.LiveClientCredentialsTokens(c.ID, "us", testSOID))
	}
	resp := e.must(logical.UpdateOperation, "revoke/org", nil)
	if resp == nil || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "1 access token(s)") {
		t.Fatalf("want a warning of the one lost token, got %v", resp)
	}
	if e.sim.AccessTokenValid(first) || e.sim.AccessTokenValid(last) {
		t.Fatal("a known token lives at Zoho after revoke/")
	}
	if got := e.sim.ClientCounters(c.ID); got.RevokedAccess != 2 {
		t.Fatalf("Zoho saw %+v; want the two known tokens revoked", got)
	}
}

// A revocation Zoho does not confirm does not stop revoke/ from revoking the
// account's other live tokens.
func TestRevokeClientCredentialsGoesOnPastAFailure(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	first := accessToken(e.creds("org", nil))
	e.clock.Advance(10 * time.Second)
	second := accessToken(e.creds("org", map[string]interface{}{"min_ttl": "59m"}))
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	msg, status := e.fails(logical.UpdateOperation, "revoke/org", nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, "1 of its live access token") {
		t.Fatalf("got %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID); got.RevokedAccess != 1 || e.sim.AccessTokenValid(first) == e.sim.AccessTokenValid(second) {
		t.Fatalf("Zoho saw %+v; want the token whose revocation did not fail revoked", got)
	}
	e.must(logical.UpdateOperation, "revoke/org", nil)
	if e.sim.AccessTokenValid(first) || e.sim.AccessTokenValid(second) || e.sim.ClientCounters(c.ID).RevokedAccess != 2 {
		t.Fatal("the retry did not revoke the remaining token")
	}
}

// A client_credentials token stored without its issuer (an older engine) is
// revoked by revoke/ at the account's accounts server.
func TestRevokeClientCredentialsTokenStoredWithoutItsIssuer(t *testing.T) {
	e := newEnv(t)
	c := e.ccAccount("org", nil)
	tok := accessToken(e.creds("org", nil))
	e.dropStoredIssuers("org")
	e.restart()
	e.must(logical.UpdateOperation, "revoke/org", nil)
	if e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).RevokedAccess != 1 {
		t.Fatal("the token stored without its issuer was not revoked at Zoho")
	}
}

// Once Zoho confirmed revoke/'s revocations, storage no longer holds the
// revoked tokens; a failure to store that is logged, and only a failure is.
func TestRevokeClientCredentialsForgetsRevokedTokens(t *testing.T) {
	const warning = "could not store access token revocations"
	e := newEnv(t)
	e.ccAccount("org", nil)
	current := accessToken(e.creds("org", nil))
	e.must(logical.UpdateOperation, "revoke/org", nil)
	keys, err := logical.CollectKeys(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		entry, err := e.storage.Get(context.Background(), k)
		if err != nil || entry == nil {
			t.Fatalf("%s: %v", k, err)
		}
		assertNoSecrets(t, "stored "+k, string(entry.Value), current)
	}
	if strings.Contains(e.logs.String(), warning) {
		t.Fatal("a revocation stored without failure was logged as failed")
	}
	// A second account: its revocation fails once, so its retirement is
	// stored; the retry's revocation is confirmed, its store fails.
	e.ccAccount("other", nil)
	e.creds("other", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	e.fails(logical.UpdateOperation, "revoke/other", nil)
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if en.Key == tokenPrefix+"other" {
			return errors.New("injected storage failure")
		}
		return nil
	})
	e.must(logical.UpdateOperation, "revoke/other", nil)
	if !strings.Contains(e.logs.String(), warning) {
		t.Fatal("a failed store of the revocations was not logged")
	}
}
