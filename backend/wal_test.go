package backend

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func TestReplacedRefreshTokenRevocationIsRetried(t *testing.T) {
	e := newEnv(t)
	c := e.account("wal", nil)
	old, _ := loadConfig(context.Background(), e.storage, "wal")
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502, Times: 1})
	resp := e.must(logical.UpdateOperation, "config/wal", map[string]interface{}{"grant_code": e.code(c)})
	if resp == nil || len(resp.Warnings) == 0 {
		t.Fatal("want a warning that the old token is not revoked yet")
	}
	if !e.sim.RefreshTokenValid(old.RefreshToken) {
		t.Fatal("fault did not apply")
	}
	entries, _ := e.storage.List(context.Background(), "wal/")
	if len(entries) != 1 {
		t.Fatalf("want one pending revocation, got %v", entries)
	}
	// Vault's rollback manager replays old entries.
	e.clock.Advance(walMinAge)
	req := &logical.Request{Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]interface{}{"immediate": true}}
	if _, err := e.b.HandleRequest(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if e.sim.RefreshTokenValid(old.RefreshToken) {
		t.Fatal("rollback did not revoke the replaced refresh token")
	}
	if entries, _ := e.storage.List(context.Background(), "wal/"); len(entries) != 0 {
		t.Fatalf("pending revocation not cleared: %v", entries)
	}
}

// A crash between a grant-code exchange and storing the account leaves a
// refresh token at Zoho that Vault never stored: the engine says so.
func TestInterruptedExchangeIsReported(t *testing.T) {
	e := newEnv(t)
	c := e.account("orphan", nil)
	e.clock.Advance(time.Minute)
	e.storage.failPutsUnder(configPrefix)
	_, _ = e.request(logical.UpdateOperation, "config/orphan", map[string]interface{}{"grant_code": e.code(c)})
	e.storage.setPutHook(nil)
	if n := len(e.sim.RefreshTokens(c.ID)); n != 2 {
		t.Fatalf("want 2 refresh tokens at Zoho (the stored one and the lost one), got %d", n)
	}
	e.restart()
	if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
		t.Fatal(err)
	}
	resp := e.must(logical.ReadOperation, "status/orphan", nil)
	if at, _ := resp.Data["interrupted_exchange_at"].(string); at == "" {
		t.Fatalf("status does not report the interrupted exchange: %v", resp.Data)
	}
	if !strings.Contains(e.logs.String(), "interrupted") {
		t.Fatal("the log does not report the interrupted exchange")
	}
}

// A revocation record of the refresh token still in use (the write that
// would have replaced it never landed) is settled without revoking it.
func TestRollbackLeavesTheCurrentRefreshTokenAlive(t *testing.T) {
	e := newEnv(t)
	c := e.account("inuse", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "inuse")
	if _, err := e.b.putRevokeWAL(context.Background(), e.storage, nil, "inuse", cfg.RefreshTokenIssuer, cfg.RefreshToken, cfg.Generation); err != nil {
		t.Fatal(err)
	}
	if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
		t.Fatal(err)
	}
	if !e.sim.RefreshTokenValid(cfg.RefreshToken) || e.sim.ClientCounters(c.ID).Revokes != 0 {
		t.Fatal("the rollback revoked the refresh token the account still uses")
	}
	if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
		t.Fatalf("the settled record is still there: %v", keys)
	}
	e.creds("inuse", map[string]interface{}{"min_ttl": "59m"})
}

// A revocation Zoho never confirms is retried for revokeRetryFor, then given
// up: the record goes, the account's status and the metrics say so.
func TestRevocationThatNeverSucceedsIsGivenUp(t *testing.T) {
	e := newEnv(t)
	c := e.account("stubborn", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502})
	e.must(logical.UpdateOperation, "config/stubborn", map[string]interface{}{"grant_code": e.code(c)}) // the replaced token's revocation fails
	rollback := func() {
		if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
			t.Fatal(err)
		}
	}
	rollback()
	if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 1 {
		t.Fatalf("want the revocation still pending, got %v", keys)
	}
	e.clock.Advance(revokeRetryFor)
	rollback()
	if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
		t.Fatalf("the given-up revocation is still retried: %v", keys)
	}
	st := e.must(logical.ReadOperation, "status/stubborn", nil)
	if at, _ := st.Data["revocation_abandoned_at"].(string); at == "" {
		t.Fatalf("status does not say the revocation was given up: %v", st.Data)
	}
	body := e.must(logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte)
	if !strings.Contains(string(body), "zoho_revocations_abandoned_total 1") {
		t.Fatal("metrics do not count the given-up revocation")
	}
	if !strings.Contains(e.logs.String(), "gave up revoking") {
		t.Fatal("the log does not say the revocation was given up")
	}
}

// A grant-code exchange Zoho answered with an error, or that never reached
// Zoho, issued no refresh token: its record goes with the write and the
// rollback raises no alarm. Only an exchange whose answer was lost does.
func TestRejectedExchangeRaisesNoAlarm(t *testing.T) {
	refused := refusedURL(t)

	cases := []struct {
		name  string
		data  func(e *env, c zohosim.Client) map[string]interface{}
		fault *zohosim.Fault
		alarm bool
	}{
		{name: "invalid_code", data: func(e *env, c zohosim.Client) map[string]interface{} {
			return map[string]interface{}{"grant_code": "1000.expired"}
		}},
		{name: "invalid_client_secret", data: func(e *env, c zohosim.Client) map[string]interface{} {
			return map[string]interface{}{"grant_code": e.code(c), "client_secret": "not-the-secret"}
		}},
		{name: "invalid_client", data: func(e *env, c zohosim.Client) map[string]interface{} {
			return map[string]interface{}{"grant_code": e.code(c), "client_id": "1000.UNKNOWNCLIENT"}
		}},
		{name: "connection refused", data: func(e *env, c zohosim.Client) map[string]interface{} {
			return map[string]interface{}{"grant_code": e.code(c), "accounts_url": refused}
		}},
		{name: "answer lost", alarm: true,
			fault: &zohosim.Fault{Endpoint: "token", GrantType: "authorization_code", Kind: zohosim.FaultLostAnswer, Times: 1},
			data: func(e *env, c zohosim.Client) map[string]interface{} {
				return map[string]interface{}{"grant_code": e.code(c)}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.account("demo", nil)
			e.clock.Advance(time.Minute) // the exchange is not the one that created the account
			if tc.fault != nil {
				e.sim.AddFault(*tc.fault)
			}
			msg, _ := e.fails(logical.UpdateOperation, "config/demo", tc.data(e, c))
			if !tc.alarm {
				if !strings.Contains(msg, "nothing was stored") {
					t.Fatalf("write answered %q", msg)
				}
				if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
					t.Fatalf("the failed exchange's record outlived the write: %v", keys)
				}
			}
			e.clock.Advance(walMinAge)
			if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
				t.Fatal(err)
			}
			at, _ := e.must(logical.ReadOperation, "status/demo", nil).Data["interrupted_exchange_at"].(string)
			flagged := len(e.attention()["demo"]) != 0
			warned := strings.Contains(e.logs.String(), "interrupted after it was sent")
			if tc.alarm {
				if at == "" || !flagged || !warned {
					t.Fatalf("a lost answer raised no alarm: mark %q, attention %v, log warning %v", at, e.attention(), warned)
				}
				// As docs/operations.md says: the account keeps working, and a
				// new grant clears the mark.
				e.creds("demo", nil)
				e.must(logical.UpdateOperation, "config/demo", map[string]interface{}{"grant_code": e.code(c)})
				if at, _ := e.must(logical.ReadOperation, "status/demo", nil).Data["interrupted_exchange_at"].(string); at != "" || len(e.attention()) != 0 {
					t.Fatalf("a new grant did not clear the alarm: mark %q, attention %v", at, e.attention())
				}
			} else if at != "" || flagged || warned {
				t.Fatalf("Zoho answered (or was never reached), yet: mark %q, attention %v, log warning %v", at, e.attention(), warned)
			}
			if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
				t.Fatalf("write-ahead-log entries left: %v", keys)
			}
		})
	}
}

// putRawWAL stores a write-ahead-log entry under wal/<id> as Vault's
// framework does, created at createdAt (real time: Vault's rollback manager
// ages entries by the wall clock). Ids starting "0000" are listed before the
// framework's random ones.
func putRawWAL(t *testing.T, e *env, id, kind string, data map[string]interface{}, createdAt time.Time) {
	t.Helper()
	entry, err := logical.StorageEntryJSON("wal/"+id, map[string]interface{}{"type": kind, "data": data, "created_at": createdAt.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.storage.Storage.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
}

func walKeys(e *env) []string {
	keys, _ := e.storage.Storage.List(context.Background(), "wal/")
	return keys
}

func hasWAL(e *env, id string) bool {
	for _, k := range walKeys(e) {
		if k == id {
			return true
		}
	}
	return false
}

// rollbackNow runs Vault's rollback of every entry, whatever its age.
func rollbackNow(t *testing.T, e *env) *logical.Response {
	t.Helper()
	resp, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A revocation is retried for 72 hours from when the token was given up:
// still pending a second before, given up exactly then.
func TestRevocationIsGivenUpExactly72HoursAfterTheTokenWasReplaced(t *testing.T) {
	e := newEnv(t)
	c := e.account("stubborn", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502})
	e.must(logical.UpdateOperation, "config/stubborn", map[string]interface{}{"grant_code": e.code(c)})
	e.clock.Advance(72*time.Hour - time.Second)
	rollbackNow(t, e)
	if len(walKeys(e)) != 1 || strings.Contains(e.logs.String(), "gave up revoking") {
		t.Fatalf("the revocation was given up before 72 h: %v", walKeys(e))
	}
	e.clock.Advance(time.Second)
	rollbackNow(t, e)
	if len(walKeys(e)) != 0 || !strings.Contains(e.logs.String(), "gave up revoking") {
		t.Fatalf("the revocation was not given up at 72 h: %v", walKeys(e))
	}
}

// An entry written before give_up_at existed is retried for ever.
func TestRevocationWithoutGiveUpTimeIsNeverGivenUp(t *testing.T) {
	e := newEnv(t)
	e.account("old", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502})
	putRawWAL(t, e, "0000-old", walKindRevokeRefresh, map[string]interface{}{
		"account": "old", "accounts_url": e.sim.AccountsURL("us"), "token": "1000.gone"}, time.Now())
	e.clock.Advance(1000 * time.Hour)
	rollbackNow(t, e)
	if !hasWAL(e, "0000-old") || strings.Contains(e.logs.String(), "gave up revoking") {
		t.Fatalf("an entry without give_up_at was given up: %v", walKeys(e))
	}
	if at, _ := e.must(logical.ReadOperation, "status/old", nil).Data["revocation_abandoned_at"].(string); at != "" {
		t.Fatalf("status says it was given up at %s", at)
	}
}

// Vault hands back entries older than 30 s without "immediate".
func TestRollbackSettlesEntriesOlderThan30Seconds(t *testing.T) {
	e := newEnv(t)
	e.account("aged", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "aged")
	stored := map[string]interface{}{"account": "aged", "at": cfg.GrantedAt.UnixNano()} // settles quietly
	// Vault ages entries by the wall clock: 15 s on either side of 30 s, so
	// that a slow machine between these lines and the rollback changes
	// nothing (Vault's own default minimum age is 10 minutes).
	putRawWAL(t, e, "0000-young", walKindExchange, stored, time.Now().Add(-15*time.Second))
	putRawWAL(t, e, "0001-old", walKindExchange, stored, time.Now().Add(-45*time.Second))
	if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{}); err != nil {
		t.Fatal(err)
	}
	if !hasWAL(e, "0000-young") || hasWAL(e, "0001-old") {
		t.Fatalf("want only the entry older than 30 s settled, left %v", walKeys(e))
	}
}

// An entry naming no account is not settled (nor reported as an account's).
func TestRollbackKeepsAnEntryNamingNoAccount(t *testing.T) {
	e := newEnv(t)
	putRawWAL(t, e, "0000-anon", walKindExchange, map[string]interface{}{"at": int64(1)}, time.Now())
	resp := rollbackNow(t, e)
	if resp == nil || !resp.IsError() || !hasWAL(e, "0000-anon") || strings.Contains(e.logs.String(), "interrupted") {
		t.Fatalf("an entry naming no account was settled: %v, left %v", resp, walKeys(e))
	}
}

// A mark that cannot be stored leaves the entry for the next rollback.
func TestRollbackKeepsTheEntryWhenTheMarkIsNotStored(t *testing.T) {
	failConfigPuts := func(e *env) {
		e.storage.failPutsUnder(configPrefix)
	}
	t.Run("given-up revocation", func(t *testing.T) {
		e := newEnv(t)
		c := e.account("stubborn", nil)
		e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502})
		e.must(logical.UpdateOperation, "config/stubborn", map[string]interface{}{"grant_code": e.code(c)})
		e.clock.Advance(72 * time.Hour)
		failConfigPuts(e)
		rollbackNow(t, e)
		if len(walKeys(e)) != 1 {
			t.Fatalf("the entry went though its mark was not stored: %v", walKeys(e))
		}
	})
	t.Run("interrupted exchange", func(t *testing.T) {
		e := newEnv(t)
		e.account("orphan", nil)
		putRawWAL(t, e, "0000-x", walKindExchange, map[string]interface{}{"account": "orphan", "at": int64(1)}, time.Now())
		failConfigPuts(e)
		rollbackNow(t, e)
		if !hasWAL(e, "0000-x") {
			t.Fatalf("the entry went though its mark was not stored: %v", walKeys(e))
		}
	})
}

// revokedWithPending gives account name a revocation Zoho has not confirmed
// (revoke/<name> answered 502) and returns the refresh token it gave up.
func revokedWithPending(t *testing.T, e *env, name string) string {
	t.Helper()
	e.account(name, nil)
	cfg, _ := loadConfig(context.Background(), e.storage, name)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502, Times: 1})
	if _, status := e.fails(logical.UpdateOperation, "revoke/"+name, nil); status != 502 {
		t.Fatalf("revoke/%s answered %d", name, status)
	}
	if !e.sim.RefreshTokenValid(cfg.RefreshToken) || len(walKeys(e)) != 1 {
		t.Fatalf("want the revocation pending, entries %v", walKeys(e))
	}
	return cfg.RefreshToken
}

// revoke/<name> of an account holding no refresh token retries its pending
// revocations: all of them, past entries of other kinds, of other accounts,
// and past ones that fail again; it leaves the others alone.
func TestRevokeRetriesEveryPendingRevocationOfTheAccount(t *testing.T) {
	t.Run("past an entry of another kind", func(t *testing.T) {
		e := newEnv(t)
		old := revokedWithPending(t, e, "a")
		putRawWAL(t, e, "0000-x", walKindExchange, map[string]interface{}{"account": "a", "at": int64(1)}, time.Now())
		e.must(logical.UpdateOperation, "revoke/a", nil)
		if e.sim.RefreshTokenValid(old) || !hasWAL(e, "0000-x") || len(walKeys(e)) != 1 {
			t.Fatalf("token still valid %v; entries left %v (want only the exchange)", e.sim.RefreshTokenValid(old), walKeys(e))
		}
	})
	t.Run("past another account's entry", func(t *testing.T) {
		e := newEnv(t)
		old := revokedWithPending(t, e, "a")
		e.account("c", nil)
		cCfg, _ := loadConfig(context.Background(), e.storage, "c")
		putRawWAL(t, e, "0000-b", walKindRevokeRefresh, map[string]interface{}{
			"account": "b", "accounts_url": e.sim.AccountsURL("us"), "token": cCfg.RefreshToken}, time.Now())
		e.must(logical.UpdateOperation, "revoke/a", nil)
		if e.sim.RefreshTokenValid(old) {
			t.Fatal("a's given-up token was not revoked")
		}
		if !e.sim.RefreshTokenValid(cCfg.RefreshToken) || !hasWAL(e, "0000-b") || len(walKeys(e)) != 1 {
			t.Fatalf("another account's entry was settled: entries %v", walKeys(e))
		}
	})
	t.Run("past one failing again", func(t *testing.T) {
		e := newEnv(t)
		old := revokedWithPending(t, e, "a")
		putRawWAL(t, e, "0000-a", walKindRevokeRefresh, map[string]interface{}{
			"account": "a", "accounts_url": refusedURL(t), "token": "1000.elsewhere"}, time.Now())
		if _, status := e.fails(logical.UpdateOperation, "revoke/a", nil); status != 502 {
			t.Fatalf("revoke/a answered %d", status)
		}
		if e.sim.RefreshTokenValid(old) || !hasWAL(e, "0000-a") || len(walKeys(e)) != 1 {
			t.Fatalf("token still valid %v; entries left %v", e.sim.RefreshTokenValid(old), walKeys(e))
		}
	})
	t.Run("past an entry gone meanwhile", func(t *testing.T) {
		e := newEnv(t)
		old := revokedWithPending(t, e, "a")
		putRawWAL(t, e, "0000-gone", walKindExchange, map[string]interface{}{"account": "a", "at": int64(1)}, time.Now())
		e.storage.setGetErr(func(k string) error {
			if k == "wal/0000-gone" {
				_ = e.storage.Storage.Delete(context.Background(), k) // settled by another node between list and read
			}
			return nil
		})
		e.must(logical.UpdateOperation, "revoke/a", nil)
		if e.sim.RefreshTokenValid(old) || len(walKeys(e)) != 0 {
			t.Fatalf("token still valid %v; entries left %v", e.sim.RefreshTokenValid(old), walKeys(e))
		}
	})
	t.Run("entry not deleted", func(t *testing.T) {
		e := newEnv(t)
		old := revokedWithPending(t, e, "a")
		e.storage.failDeletesUnder("wal/")
		if _, status := e.fails(logical.UpdateOperation, "revoke/a", nil); status != 502 {
			t.Fatalf("revoke/a answered %d", status)
		}
		if e.sim.RefreshTokenValid(old) || len(walKeys(e)) != 1 {
			t.Fatalf("token still valid %v; entries left %v", e.sim.RefreshTokenValid(old), walKeys(e))
		}
	})
}

// An account deleted while its entry is settled (between the rollback's
// reading of it and the writing of the mark) is not put in the attention
// index.
func TestRollbackDoesNotFlagAnAccountDeletedMeanwhile(t *testing.T) {
	vanishOnSecondRead := func(e *env, name string) {
		var reads atomic.Int64
		e.storage.setGetErr(func(k string) error {
			if k == configPrefix+name && reads.Add(1) == 2 {
				_ = e.storage.Storage.Delete(context.Background(), k)
			}
			return nil
		})
	}
	flagged := func(e *env, name string) bool {
		entry, _ := e.storage.Storage.Get(context.Background(), attentionPrefix+name)
		return entry != nil
	}
	t.Run("given-up revocation", func(t *testing.T) {
		e := newEnv(t)
		c := e.account("stubborn", nil)
		e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502})
		e.must(logical.UpdateOperation, "config/stubborn", map[string]interface{}{"grant_code": e.code(c)})
		e.clock.Advance(72 * time.Hour)
		e.restart() // nothing cached: the mark's write reads the account again
		vanishOnSecondRead(e, "stubborn")
		rollbackNow(t, e)
		if flagged(e, "stubborn") || len(walKeys(e)) != 0 {
			t.Fatalf("flagged %v, entries %v", flagged(e, "stubborn"), walKeys(e))
		}
	})
	t.Run("interrupted exchange", func(t *testing.T) {
		e := newEnv(t)
		e.account("orphan", nil)
		e.restart()
		putRawWAL(t, e, "0000-x", walKindExchange, map[string]interface{}{"account": "orphan", "at": int64(1)}, time.Now())
		vanishOnSecondRead(e, "orphan")
		rollbackNow(t, e)
		if flagged(e, "orphan") || len(walKeys(e)) != 0 {
			t.Fatalf("flagged %v, entries %v", flagged(e, "orphan"), walKeys(e))
		}
	})
}
