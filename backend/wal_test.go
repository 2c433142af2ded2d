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
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, configPrefix) {
			return errors.New("crashed")
		}
		return nil
	})
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
