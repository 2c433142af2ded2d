package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// vaultLeaseEnd is when Vault ends a lease the engine answered with ttl and
// maxTTL at now, as its lease registration computes it
// (framework.CalculateTTL: a TTL of 0 becomes the mount's default).
func vaultLeaseEnd(t *testing.T, sys logical.SystemView, now time.Time, ttl, maxTTL time.Duration) time.Time {
	t.Helper()
	if ttl <= 0 {
		ttl = sys.DefaultLeaseTTL()
	}
	most := sys.MaxLeaseTTL()
	if maxTTL > 0 && maxTTL < most {
		most = maxTTL
	}
	return now.Add(min(ttl, most))
}

func TestLeaseNearExpiryWhileZohoIsDownNeverOutlivesItsToken(t *testing.T) {
	e := newEnv(t)
	e.account("edge", nil)
	first := e.creds("edge", nil)
	exp, _ := time.Parse(time.RFC3339, first.Data["expires_at"].(string))
	// 61.5 s left: about 1.5 s of leasable life after the 60 s margin.
	e.clock.Advance(exp.Sub(e.clock.Now()) - 61500*time.Millisecond)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503})
	for i := 0; i < 8; i++ {
		resp, err := e.request(logical.ReadOperation, "creds/edge", nil)
		if err != nil || resp == nil || resp.IsError() {
			continue // refusing is allowed; an overlong lease is not
		}
		now := e.clock.Now()
		end := vaultLeaseEnd(t, e.b.System(), now, resp.Secret.TTL, resp.Secret.MaxTTL)
		if resp.Secret.TTL < time.Second || end.After(exp) {
			t.Fatalf("read %d: lease TTL %s / max %s: Vault ends it at %s, its token expires at %s", i, resp.Secret.TTL, resp.Secret.MaxTTL, end, exp)
		}
	}
}

// rollback runs Vault's rollback manager once, past the WAL entries' least age.
func (e *env) rollback() {
	e.t.Helper()
	e.clock.Advance(walMinAge)
	req := &logical.Request{Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]interface{}{"immediate": true}}
	_, _ = e.b.HandleRequest(context.Background(), req)
}

// firePolls fires the device polls still scheduled (at most n).
func (dt *deviceTimers) firePolls(e *env, n int) int {
	fired := 0
	for ; fired < n && len(dt.live()) > 0; fired++ {
		dt.fire(e)
	}
	return fired
}

// Item 2: a device authorization started before a grant code was written
// must not replace (and revoke) the written refresh token when the user
// approves it late.
func TestLateDeviceApprovalNeverReplacesNewerCredentials(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("tv", c)
	userCode := e.startDevice("tv").Data["user_code"].(string)
	resp := e.must(logical.UpdateOperation, "config/tv", map[string]interface{}{"grant_code": e.code(c)})
	if resp == nil || !strings.Contains(strings.Join(resp.Warnings, " "), userCode) {
		t.Fatalf("the write ended the pending device authorization without saying so: %v", resp)
	}
	written, _ := loadConfig(context.Background(), e.storage, "tv")
	tok := accessToken(e.creds("tv", nil))
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.firePolls(e, 20)
	now, _ := loadConfig(context.Background(), e.storage, "tv")
	if now.RefreshToken != written.RefreshToken || !e.sim.RefreshTokenValid(written.RefreshToken) || !e.sim.AccessTokenValid(tok) {
		t.Fatalf("the late approval replaced the written refresh token (same %v, written one valid %v, leased token valid %v)",
			now.RefreshToken == written.RefreshToken, e.sim.RefreshTokenValid(written.RefreshToken), e.sim.AccessTokenValid(tok))
	}
	if got := e.sim.ClientCounters(c.ID).DeviceGrants; got != 0 {
		t.Fatalf("the superseded device code was redeemed at Zoho %d time(s)", got)
	}
	if st := e.deviceState("tv"); st["state"] != paths.DeviceStateSuperseded {
		t.Fatalf("device/tv after the write: %v", st)
	}
}

// Item 3: a pending device poll must not send the account's new client
// secret to the accounts server the account named when the flow started.
func TestDevicePollNeverSendsASecretToAServerTheAccountNoLongerNames(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("tv", c)
	userCode := e.startDevice("tv").Data["user_code"].(string)
	polls := e.sim.ClientCounters(c.ID).DevicePolls
	e.must(logical.UpdateOperation, "config/tv", map[string]interface{}{
		"accounts_url": e.sim.AccountsURL("eu"), "client_secret": "a-new-secret-for-eu",
	})
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.firePolls(e, 20)
	if got := e.sim.ClientCounters(c.ID).DevicePolls; got != polls {
		t.Fatalf("%d device poll(s) went to the accounts server the account no longer names", got-polls)
	}
	cfg, _ := loadConfig(context.Background(), e.storage, "tv")
	if cfg.AccountsURL != e.sim.AccountsURL("eu") || cfg.RefreshToken != "" {
		t.Fatalf("the old flow wrote the account: accounts_url %q, refresh token held %v", cfg.AccountsURL, cfg.RefreshToken != "")
	}
}

// Item 4: while Zoho has not confirmed the revocation of the refresh token a
// lease's token came from, revoking the lease revokes its access token (or
// fails, so that Vault retries); it never reports success over a token that
// still works.
func TestLeaseRevocationAfterUnconfirmedRevokeNeedsZoho(t *testing.T) {
	for _, how := range []string{"revoke", "delete", "regrant"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			c := e.account("x", nil)
			lease := e.creds("x", nil)
			tok := accessToken(lease)
			e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503})
			switch how {
			case "revoke":
				e.fails(logical.UpdateOperation, "revoke/x", nil)
			case "delete":
				e.fails(logical.DeleteOperation, "config/x", nil)
			case "regrant":
				e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"grant_code": e.code(c)})
			}
			if err := e.revokeLease(lease); err == nil && e.sim.AccessTokenValid(tok) {
				t.Fatal("the lease revocation reported success while its access token still works at Zoho")
			}
			e.sim.ClearFaults()
			if err := e.revokeLease(lease); err != nil {
				t.Fatalf("once Zoho answers, the lease revocation must succeed: %v", err)
			}
			if e.sim.AccessTokenValid(tok) {
				t.Fatal("the lease was revoked, its access token still works")
			}
		})
	}
}

// Item 5: a reader that still holds an account object that left the map
// (a WAL settlement, a delete) never writes its token state over newer state.
func TestEvictedAccountObjectNeverOverwritesNewerState(t *testing.T) {
	e := newEnv(t)
	e.account("r", nil)
	e.creds("r", nil)
	old := e.b.cachedAccount("r")
	// A settlement that marks the account (an exchange whose refresh token
	// was never stored).
	if _, err := e.b.putExchangeWAL(context.Background(), e.storage, "r", e.clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.rollback()
	// Another reader mints a new token on the live account object.
	fresh := accessToken(e.creds("r", map[string]interface{}{"min_ttl": "59m"}))
	// The old reader takes leases past its token's reservation.
	for i := 0; i < 40; i++ {
		v := old.view.Load()
		if v == nil {
			break
		}
		_, _, _ = e.b.holdByLease(context.Background(), e.storage, old, v, e.clock.Now(), 0)
	}
	var tok tokenState
	if _, err := getJSON(context.Background(), e.storage, tokenPrefix+"r", &tok); err != nil {
		t.Fatal(err)
	}
	if tok.TokenID != tokenID(fresh) {
		t.Fatalf("stored token state is %s, the newer token %s was overwritten", tok.TokenID[:6], tokenID(fresh)[:6])
	}
}

// A reader that loaded the account before a delete and a re-creation takes
// its leases on the live account, and stores nothing from the old object.
func TestReaderOfADeletedAccountObjectStoresNothingFromIt(t *testing.T) {
	e := newEnv(t)
	e.account("d", nil)
	e.creds("d", nil)
	old := e.b.cachedAccount("d")
	v := old.view.Load()
	e.must(logical.DeleteOperation, "config/d", nil)
	e.account("d", nil)
	live := e.b.cachedAccount("d")
	if live == old || !old.gone.Load() {
		t.Fatal("the deleted account's object was not marked gone")
	}
	var before tokenState
	_, _ = getJSON(context.Background(), e.storage, tokenPrefix+"d", &before)
	for i := 0; i < 40; i++ {
		if _, ok, err := e.b.holdByLease(context.Background(), e.storage, old, v, e.clock.Now(), 0); ok || err != nil {
			if i >= initialReservation {
				t.Fatalf("lease %d on the deleted object: ok %v, err %v", i+1, ok, err)
			}
		}
	}
	var after tokenState
	_, _ = getJSON(context.Background(), e.storage, tokenPrefix+"d", &after)
	if after.TokenID != before.TokenID || after.Generation != before.Generation {
		t.Fatalf("the old object's state was stored over the live one: %s → %s", before.TokenID[:6], after.TokenID[:6])
	}
}

// A consent started before a grant code was written may not replace the
// written refresh token: the callback is refused and nothing is exchanged.
func TestConsentStartedBeforeARewriteIsRefused(t *testing.T) {
	e := newEnv(t)
	c := newConsentAccount(e, "crm")
	authURL := e.must(logical.ReadOperation, "auth-url/crm", nil).Data["auth_url"].(string)
	e.must(logical.UpdateOperation, "config/crm", map[string]interface{}{"grant_code": e.code(c)})
	written, _ := loadConfig(context.Background(), e.storage, "crm")
	tok := accessToken(e.creds("crm", nil))
	exchanges := e.sim.ClientCounters(c.ID).Exchanges
	status, body := e.callback(consent(t, authURL, zohosim.Accept))
	if status != 409 || !strings.Contains(body, "superseded") {
		t.Fatalf("stale callback answered %d %s", status, body)
	}
	now, _ := loadConfig(context.Background(), e.storage, "crm")
	if got := e.sim.ClientCounters(c.ID).Exchanges; got != exchanges || now.RefreshToken != written.RefreshToken || !e.sim.AccessTokenValid(tok) {
		t.Fatalf("the stale consent changed the account: %d exchange(s), refresh token kept %v, leased token valid %v",
			got-exchanges, now.RefreshToken == written.RefreshToken, e.sim.AccessTokenValid(tok))
	}
	// A consent started after the write completes.
	authURL = e.must(logical.ReadOperation, "auth-url/crm", nil).Data["auth_url"].(string)
	if status, body := e.callback(consent(t, authURL, zohosim.Accept)); status != 200 {
		t.Fatalf("fresh callback answered %d %s", status, body)
	}
}

// A change that keeps the account's credentials (its scopes) ends no flow:
// a device authorization started before it still completes, without a
// warning that it was ended.
func TestChangeThatKeepsTheCredentialsKeepsThePendingDeviceAuthorization(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("tv", c)
	userCode := e.startDevice("tv").Data["user_code"].(string)
	e.clock.Advance(time.Second)
	resp := e.must(logical.UpdateOperation, "config/tv", map[string]interface{}{"scopes": "ZohoCRM.modules.ALL"})
	if resp != nil && strings.Contains(strings.Join(resp.Warnings, " "), userCode) {
		t.Fatalf("a change of scopes ended the pending device authorization: %v", resp.Warnings)
	}
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.firePolls(e, 20)
	cfg, _ := loadConfig(context.Background(), e.storage, "tv")
	if st := e.deviceState("tv"); st["state"] != paths.DeviceStateApproved || cfg.RefreshToken == "" {
		t.Fatalf("the device authorization started before a change of scopes did not complete: %v", st)
	}
}

// The device approval that changes the credentials does not end itself
// (nothing warns that it was ended), a later write does not end it again
// once it is over, and a pending one ended by a write says which write.
func TestDeviceFlowsEndedByAChangeOfCredentials(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("tv", c)
	userCode := e.startDevice("tv").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.firePolls(e, 20)
	if st := e.deviceState("tv"); st["state"] != paths.DeviceStateApproved {
		t.Fatalf("after the approval: %v", st)
	}
	if strings.Contains(e.logs.String(), "was ended") || strings.Contains(e.logs.String(), paths.DeviceStateSuperseded) {
		t.Fatal("the approving device authorization was ended as superseded by its own change")
	}
	resp := e.must(logical.UpdateOperation, "config/tv", map[string]interface{}{"grant_code": e.code(c)})
	if resp != nil && strings.Contains(strings.Join(resp.Warnings, " "), userCode) {
		t.Fatalf("a write ended the device authorization that was over already: %v", resp.Warnings)
	}
	if st := e.deviceState("tv"); st["state"] != paths.DeviceStateApproved {
		t.Fatalf("a write changed the device authorization that was over already: %v", st)
	}
	// A pending one ended by a write names it.
	userCode = e.startDevice("tv").Data["user_code"].(string)
	e.must(logical.UpdateOperation, "config/tv", map[string]interface{}{"grant_code": e.code(c)})
	if st := e.deviceState("tv"); st["state"] != paths.DeviceStateSuperseded || !strings.Contains(st["last_poll_answer"].(string), "config/tv") {
		t.Fatalf("the device authorization (user code %s) ended by a write: %v", userCode, st)
	}
}

// A consent completing ends the pending device authorization at once.
func TestConsentEndsThePendingDeviceAuthorization(t *testing.T) {
	e := newEnv(t)
	newConsentAccount(e, "crm")
	authURL := e.must(logical.ReadOperation, "auth-url/crm", nil).Data["auth_url"].(string)
	e.startDevice("crm")
	if status, body := e.callback(consent(t, authURL, zohosim.Accept)); status != 200 {
		t.Fatalf("callback answered %d %s", status, body)
	}
	if st := e.deviceState("crm"); st["state"] != paths.DeviceStateSuperseded {
		t.Fatalf("after the consent completed: %v", st)
	}
}

// zohoRevocations counts the revocation requests Zoho answered.
func (e *env) zohoRevocations() int64 {
	c := e.sim.Counters()
	return c.Revokes + c.RevokeInvalid
}

// A lease whose refresh token was given up is revoked at Zoho only while a
// revocation record of its own account covers it: records of other kinds and
// of other accounts (listed before its own, too) are passed over, and a
// record written before records named their tokens covers every lease of its
// account.
func TestStaleLeaseRevocationFollowsItsAccountsRevocationRecords(t *testing.T) {
	t.Run("confirmed", func(t *testing.T) {
		e := newEnv(t)
		c := e.account("x", nil)
		r := e.creds("x", nil)
		e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"grant_code": e.code(c)})
		if _, err := e.b.putExchangeWAL(context.Background(), e.storage, "x", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		putRawWAL(t, e, "00000000-other", walKindRevokeRefresh, map[string]interface{}{
			"account": "other", "accounts_url": e.sim.AccountsURL("us"), "token": "1000.other", "give_up_at": 0,
		}, e.clock.Now())
		before := e.zohoRevocations()
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
		if got := e.zohoRevocations() - before; got != 0 {
			t.Fatalf("the refresh token's revocation is confirmed, yet revoking its lease called Zoho %d time(s)", got)
		}
	})
	t.Run("record without tokens", func(t *testing.T) {
		e := newEnv(t)
		c := e.account("x", nil)
		r := e.creds("x", nil)
		e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"grant_code": e.code(c)})
		putRawWAL(t, e, "00000000-old", walKindRevokeRefresh, map[string]interface{}{
			"account": "x", "accounts_url": e.sim.AccountsURL("us"), "token": "1000.old", "give_up_at": 0,
		}, e.clock.Now())
		before := e.zohoRevocations()
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
		if got := e.zohoRevocations() - before; got != 1 {
			t.Fatalf("an old unconfirmed revocation record of the account covers the lease: %d call(s) to Zoho, want 1", got)
		}
	})
	t.Run("after another account's record", func(t *testing.T) {
		e := newEnv(t)
		c := e.account("x", nil)
		r := e.creds("x", nil)
		putRawWAL(t, e, "00000000-other", walKindRevokeRefresh, map[string]interface{}{
			"account": "other", "accounts_url": e.sim.AccountsURL("us"), "token": "1000.other", "give_up_at": 0,
			"generation": 3, "tokens": map[string]interface{}{"t-other": e.sim.AccountsURL("us")},
		}, e.clock.Now())
		e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
		e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"grant_code": e.code(c)})
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
		if e.sim.AccessTokenValid(accessToken(r)) {
			t.Fatal("the refresh token's revocation is unconfirmed and the lease was revoked, its access token still works")
		}
	})
	t.Run("token stored without its issuer", func(t *testing.T) {
		e := newEnv(t)
		c := e.account("x", nil)
		r := e.creds("x", nil)
		e.dropStoredIssuers("x")
		e.restart()
		e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
		e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"grant_code": e.code(c)})
		if err := e.revokeLease(r); err != nil {
			t.Fatal(err)
		}
		if e.sim.AccessTokenValid(accessToken(r)) {
			t.Fatal("the refresh token's revocation is unconfirmed and the lease was revoked, its access token still works")
		}
	})
}

// A new grant deletes the record of its exchange and, once Zoho confirmed
// it, the record of the replaced refresh token's revocation; a failure to
// delete either is logged for the operator, and only a failure is.
func TestNewGrantsRecordsAreDeletedAndFailuresLogged(t *testing.T) {
	const exchange, revocation = "could not delete the exchange record", "could not delete revocation record"
	e := newEnv(t)
	c := e.account("x", nil)
	e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"grant_code": e.code(c)})
	if logs := e.logs.String(); strings.Contains(logs, exchange) || strings.Contains(logs, revocation) {
		t.Fatal("records that were deleted were logged as not deleted")
	}
	if ids, err := framework.ListWAL(context.Background(), e.storage); err != nil || len(ids) != 0 {
		t.Fatalf("records left after the grant: %v %v", ids, err)
	}
	e.storage.failDeletesUnder(framework.WALPrefix)
	e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"grant_code": e.code(c)})
	e.storage.setDeleteHook(nil)
	if logs := e.logs.String(); !strings.Contains(logs, exchange) || !strings.Contains(logs, revocation) {
		t.Fatalf("records that could not be deleted were not logged (exchange %v, revocation %v)", strings.Contains(logs, exchange), strings.Contains(logs, revocation))
	}
}

// A change that keeps the credentials (its scopes) settles nothing: the
// back-off of a failing refresh stays, and so does the account's listing in
// attention/.
func TestChangeThatKeepsTheCredentialsKeepsBackoffAndAttention(t *testing.T) {
	e := newEnv(t)
	c := e.account("x", nil)
	e.clock.Advance(2 * time.Hour)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503})
	e.fails(logical.ReadOperation, "creds/x", nil)
	if _, listed := e.attention()["x"]; !listed {
		t.Fatalf("a failing refresh is not listed in attention/: %v", e.attention())
	}
	e.must(logical.UpdateOperation, "config/x", map[string]interface{}{"scopes": "ZohoCRM.modules.READ"})
	if _, listed := e.attention()["x"]; !listed {
		t.Fatalf("a change of scopes cleared the account's listing in attention/: %v", e.attention())
	}
	e.sim.ClearFaults()
	requests := e.sim.ClientCounters(c.ID).TokenRequests
	e.fails(logical.ReadOperation, "creds/x", nil)
	if got := e.sim.ClientCounters(c.ID).TokenRequests - requests; got != 0 {
		t.Fatalf("a change of scopes cleared the back-off: %d token request(s) during it", got)
	}
}
