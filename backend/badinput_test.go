package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// Every malformed request is answered 400 naming the field; nothing is
// stored and Zoho is not called.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	ok := func(extra map[string]interface{}) map[string]interface{} {
		m := map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us")}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	long := strings.Repeat("a", 5000)
	cases := []struct {
		name  string
		op    logical.Operation
		path  string
		data  map[string]interface{}
		field string
	}{
		{"name with space", logical.CreateOperation, "config/bad name", ok(nil), "name"},
		{"name with slash", logical.CreateOperation, "config/a/b", ok(nil), "name"},
		{"name starting with dot", logical.CreateOperation, "config/.hidden", ok(nil), "name"},
		{"name ending with dash", logical.CreateOperation, "config/x-", ok(nil), "name"},
		{"name too long", logical.CreateOperation, "config/" + strings.Repeat("n", 200), ok(nil), "name"},
		{"name unicode", logical.CreateOperation, "config/zoho☃", ok(nil), "name"},
		{"name with two dots", logical.CreateOperation, "config/a..b", ok(nil), "name"},
		{"name with three dots", logical.CreateOperation, "config/a...b", ok(nil), "name"},
		{"missing client_id", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_id": nil}), "client_id"},
		{"missing client_secret", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_secret": nil}), "client_secret"},
		{"empty client_id", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_id": ""}), "client_id"},
		{"empty client_secret", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_secret": ""}), "client_secret"},
		{"blank client_id", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_id": " \n "}), "client_id"},
		{"huge client_id", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_id": long}), "client_id"},
		{"huge client_secret", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_secret": long}), "client_secret"},
		{"client_id with newline", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_id": "a\nb"}), "client_id"},
		{"client_id wrong type", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_id": map[string]interface{}{"x": 1}}), "client_id"},
		{"unknown data center", logical.CreateOperation, "config/a", ok(map[string]interface{}{"data_center": "mars"}), "data_center"},
		{"empty data center", logical.CreateOperation, "config/a", ok(map[string]interface{}{"data_center": ""}), "data_center"},
		{"data center ae (unconfirmed)", logical.CreateOperation, "config/a", ok(map[string]interface{}{"data_center": "ae"}), "data_center"},
		{"http accounts_url off loopback", logical.CreateOperation, "config/a", ok(map[string]interface{}{"accounts_url": "http://accounts.zoho.com"}), "accounts_url"},
		{"private http accounts_url", logical.CreateOperation, "config/a", ok(map[string]interface{}{"accounts_url": "http://10.1.2.3/us"}), "accounts_url"},
		{"accounts_url not a URL", logical.CreateOperation, "config/a", ok(map[string]interface{}{"accounts_url": "accounts.zoho.com"}), "accounts_url"},
		{"accounts_url with credentials", logical.CreateOperation, "config/a", ok(map[string]interface{}{"accounts_url": "https://u:p@accounts.zoho.com"}), "accounts_url"},
		{"accounts_url ftp", logical.CreateOperation, "config/a", ok(map[string]interface{}{"accounts_url": "ftp://accounts.zoho.com"}), "accounts_url"},
		{"huge accounts_url", logical.CreateOperation, "config/a", ok(map[string]interface{}{"accounts_url": "https://" + long}), "accounts_url"},
		{"redirect_uri relative", logical.CreateOperation, "config/a", ok(map[string]interface{}{"redirect_uri": "/callback"}), "redirect_uri"},
		{"scope with space", logical.CreateOperation, "config/a", ok(map[string]interface{}{"scopes": []interface{}{"ZohoCRM.modules ALL"}}), "scopes"},
		{"scopes only commas", logical.CreateOperation, "config/a", ok(map[string]interface{}{"scopes": ",,,"}), "scopes"},
		{"empty scopes", logical.CreateOperation, "config/a", ok(map[string]interface{}{"scopes": ""}), "scopes"},
		{"scope not of Zoho's shape", logical.CreateOperation, "config/a", ok(map[string]interface{}{"scopes": "x"}), "scopes"},
		{"scopes separated by semicolons", logical.CreateOperation, "config/a", ok(map[string]interface{}{"scopes": "ZohoCRM.modules.ALL;ZohoCRM.users.READ"}), "scopes"},
		{"scopes wrong type", logical.CreateOperation, "config/a", ok(map[string]interface{}{"scopes": map[string]interface{}{"a": 1}}), "scopes"},
		{"live_token_cap zero", logical.CreateOperation, "config/a", ok(map[string]interface{}{"live_token_cap": 0}), "live_token_cap"},
		{"live_token_cap too big", logical.CreateOperation, "config/a", ok(map[string]interface{}{"live_token_cap": 31}), "live_token_cap"},
		{"live_token_cap not a number", logical.CreateOperation, "config/a", ok(map[string]interface{}{"live_token_cap": "many"}), "live_token_cap"},
		{"live_token_cap JSON true", logical.CreateOperation, "config/a", ok(map[string]interface{}{"live_token_cap": true}), "live_token_cap"},
		{"live_token_cap a fraction", logical.CreateOperation, "config/a", ok(map[string]interface{}{"live_token_cap": 1.5}), "live_token_cap"},
		{"live_token_cap with a space", logical.CreateOperation, "config/a", ok(map[string]interface{}{"live_token_cap": " 5"}), "live_token_cap"},
		{"client_id a JSON number", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_id": 123}), "client_id"},
		{"scopes a JSON number", logical.CreateOperation, "config/a", ok(map[string]interface{}{"scopes": 123}), "scopes"},
		{"creds min_ttl JSON true", logical.ReadOperation, "creds/a", map[string]interface{}{"min_ttl": true}, "min_ttl"},
		{"grant_code and refresh_token", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_code": "1000.x", "refresh_token": "1000.y"}), "grant_code"},
		{"empty grant_code", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_code": ""}), "grant_code"},
		{"empty refresh_token", logical.CreateOperation, "config/a", ok(map[string]interface{}{"refresh_token": ""}), "refresh_token"},
		{"huge grant_code", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_code": long}), "grant_code"},
		{"unknown field", logical.CreateOperation, "config/a", ok(map[string]interface{}{"client_secrte": "x"}), "client_secrte"},
		{"access_token is not writable", logical.CreateOperation, "config/a", ok(map[string]interface{}{"access_token": "x"}), "access_token"},
		{"creds bad name", logical.ReadOperation, "creds/bad name", nil, "name"},
		{"creds min_ttl garbage", logical.ReadOperation, "creds/a", map[string]interface{}{"min_ttl": "soon"}, "min_ttl"},
		{"creds min_ttl negative", logical.ReadOperation, "creds/a", map[string]interface{}{"min_ttl": "-5m"}, "min_ttl"},
		{"creds min_ttl too long", logical.ReadOperation, "creds/a", map[string]interface{}{"min_ttl": "48h"}, "min_ttl"},
		{"creds unknown field", logical.ReadOperation, "creds/a", map[string]interface{}{"ttl": "1h"}, "ttl"},
		{"creds rejected not a token_id", logical.ReadOperation, "creds/a", map[string]interface{}{"rejected": "abc"}, "rejected"},
		{"creds rejected is an access token", logical.ReadOperation, "creds/a", map[string]interface{}{"rejected": "1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef"}, "rejected"},
		{"revoke bad name", logical.UpdateOperation, "revoke/-x", nil, "name"},
		{"revoke unknown field", logical.UpdateOperation, "revoke/a", map[string]interface{}{"force": true}, "force"},
		{"delete bad name", logical.DeleteOperation, "config/a b", nil, "name"},
		{"unknown grant_type", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_type": "password"}), "grant_type"},
		{"soid of the wrong shape", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_type": "client_credentials", "scopes": "a.b.READ", "soid": "ZohoCRM-600"}), "soid"},
		{"soid on a refresh_token account", logical.CreateOperation, "config/a", ok(map[string]interface{}{"soid": "ZohoCRM.600"}), "soid"},
		{"client_credentials without scopes", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_type": "client_credentials"}), "scopes"},
		{"client_credentials with a grant_code", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_type": "client_credentials", "scopes": "a.b.READ", "grant_code": "1000.x"}), "grant_code"},
		{"client_credentials with a refresh_token", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_type": "client_credentials", "scopes": "a.b.READ", "refresh_token": "1000.x"}), "refresh_token"},
		{"client_credentials with a redirect_uri", logical.CreateOperation, "config/a", ok(map[string]interface{}{"grant_type": "client_credentials", "scopes": "a.b.READ", "redirect_uri": "https://v.example.com/v1/zoho/callback"}), "redirect_uri"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.request(tc.op, tc.path, tc.data)
			if err != nil {
				t.Fatalf("want a 400 response, got error %v", err)
			}
			if resp == nil || !resp.IsError() {
				t.Fatalf("want a 400 response, got %#v", resp)
			}
			code, _ := logical.RespondErrorCommon(&logical.Request{Operation: tc.op}, resp, nil)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d", code)
			}
			if msg := respErr(resp); !strings.Contains(msg, tc.field) {
				t.Fatalf("error %q does not name %s", msg, tc.field)
			}
		})
	}
	if keys, _ := e.storage.List(context.Background(), ""); len(keys) != 0 {
		t.Fatalf("bad input stored %v", keys)
	}
	if got := e.sim.Counters(); got.TokenRequests != 0 || got.Revokes+got.RevokeInvalid != 0 {
		t.Fatalf("bad input reached Zoho: %+v", got)
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("| Bad input | %d malformed requests", len(cases)); !strings.Contains(string(doc), want) {
		t.Errorf("docs/operations.md does not state the %d cases of this table (%q)", len(cases), want)
	}
}

// A name with two '.' in a row would be a relative storage path, which
// Vault's storage refuses: every path taking a name refuses it as a bad name
// (not as an unknown account, not with a 500), and nothing is stored.
func TestNameWithTwoDotsIsRefusedEverywhere(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	create := map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us")}
	for _, tc := range []struct {
		op   logical.Operation
		path string
		data map[string]interface{}
	}{
		{logical.CreateOperation, "config/a..b", create},
		{logical.UpdateOperation, "config/a..b", create},
		{logical.ReadOperation, "config/a..b", nil},
		{logical.DeleteOperation, "config/a..b", nil},
		{logical.ReadOperation, "creds/a..b", nil},
		{logical.UpdateOperation, "revoke/a..b", nil},
		{logical.UpdateOperation, "device/a..b", nil},
		{logical.ReadOperation, "device/a..b", nil},
		{logical.ReadOperation, "status/a..b", nil},
		{logical.ReadOperation, "auth-url/a..b", nil},
		{logical.ReadOperation, "config/..", nil},
		{logical.ReadOperation, "status/x...y", nil},
	} {
		_, msg, status := e.attempt(tc.op, tc.path, tc.data)
		if status != http.StatusBadRequest || !strings.HasPrefix(msg, "name: ") || !strings.Contains(msg, "is not a valid name") {
			t.Errorf("%s %s: %d %q, want 400 refusing the name", tc.op, tc.path, status, msg)
		}
	}
	if keys, _ := e.storage.List(context.Background(), ""); len(keys) != 0 {
		t.Fatalf("a refused name stored %v", keys)
	}
	if got := e.sim.Counters(); got.TokenRequests != 0 {
		t.Fatalf("a refused name reached Zoho: %+v", got)
	}
}

// vaultAttempt sends a request as Vault does: a create or update of a path
// with an existence check runs the check first, and an error from it is the
// answer (400 for a user error).
func (e *env) vaultAttempt(op logical.Operation, path string, data map[string]interface{}) (string, int) {
	e.t.Helper()
	if op == logical.CreateOperation || op == logical.UpdateOperation {
		if e.stuck.Load() {
			e.t.Fatalf("the existence check of %s %s not sent: an earlier request never got an answer", op, path)
		}
		// Bounded like request: an existence check waiting on an account
		// lock nobody releases fails the test instead of hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage}
		found, exists, err := e.b.HandleExistenceCheck(ctx, req)
		if ctx.Err() != nil {
			e.stuck.Store(true)
			e.t.Fatalf("the existence check of %s %s did not answer within %s", op, path, waitLimit)
		}
		if err != nil {
			if _, ok := err.(errutil.UserError); ok {
				return err.Error(), http.StatusBadRequest
			}
			return err.Error(), http.StatusInternalServerError
		}
		if found {
			op = logical.UpdateOperation
			if !exists {
				op = logical.CreateOperation
			}
		}
	}
	_, msg, status := e.attempt(op, path, data)
	return msg, status
}

// A value of the wrong JSON type, or a string the field's type cannot take,
// is refused 400 naming the field and the expected form, whether Vault's
// existence check or the handler meets it first; nothing is stored (JSON true
// for live_token_cap is not stored as 1).
func TestWrongTypesAreExplained(t *testing.T) {
	e := newEnv(t)
	e.account("a", map[string]interface{}{"live_token_cap": 7})
	c := e.newClient("us")
	create := func(k string, v interface{}) map[string]interface{} {
		m := map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us")}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		field string
		value interface{}
		want  string
	}{
		{"live_token_cap", "abc", "a whole number"},
		{"live_token_cap", "1.5", "a whole number"},
		{"live_token_cap", " 5", "a whole number"},
		{"live_token_cap", true, "a whole number"},
		{"live_token_cap", 1.5, "a whole number"},
		{"live_token_cap", json.Number("1.5"), "a whole number"},
		{"live_token_cap", []interface{}{5}, "a whole number"},
		{"client_id", map[string]interface{}{"x": 1}, "a string"},
		{"client_id", 123, "a string"},
		{"client_secret", true, "a string"},
		{"data_center", []interface{}{"eu"}, "a string"},
		{"scopes", 123, "a comma-separated list"},
		{"scopes", []interface{}{"ZohoCRM.modules.ALL", 5}, "a comma-separated list"},
		{"scopes", map[string]interface{}{"a": 1}, "a comma-separated list"},
		{"grant_type", false, "a string"},
	} {
		for _, op := range []logical.Operation{logical.UpdateOperation, logical.CreateOperation} {
			path, data := "config/a", map[string]interface{}{tc.field: tc.value}
			if op == logical.CreateOperation {
				path, data = "config/b", create(tc.field, tc.value)
			}
			msg, status := e.vaultAttempt(op, path, data)
			if status != http.StatusBadRequest || !strings.HasPrefix(msg, tc.field+": ") || !strings.Contains(msg, tc.want) {
				t.Errorf("%s %s=%#v: %d %q, want 400 naming %s and %q", op, tc.field, tc.value, status, msg, tc.field, tc.want)
			}
		}
	}
	for _, tc := range []struct {
		path string
		data map[string]interface{}
		want string
	}{
		{"creds/a", map[string]interface{}{"min_ttl": true}, "min_ttl: "},
		{"creds/a", map[string]interface{}{"min_ttl": map[string]interface{}{}}, "min_ttl: "},
		{"metrics", map[string]interface{}{"per_account": 3}, "per_account: "},
	} {
		msg, status := e.vaultAttempt(logical.ReadOperation, tc.path, tc.data)
		if status != http.StatusBadRequest || !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%s %v: %d %q, want 400 %q...", tc.path, tc.data, status, msg, tc.want)
		}
	}
	if got := e.must(logical.ReadOperation, "config/a", nil).Data["live_token_cap"]; got != 7 {
		t.Fatalf("live_token_cap is %v after refused writes, want 7", got)
	}
	if ok, _ := e.b.AccountExists(context.Background(), e.storage, "b"); ok {
		t.Fatal("a refused create stored the account")
	}
}

// An empty scopes= is refused locally whatever the account (a
// client_credentials account would send it to Zoho, a refresh_token account
// would silently lose the scopes consent and the device flow need), and
// every scope has Zoho's Service.scope.OPERATION shape wherever scopes are
// written; nothing is stored and Zoho is not asked.
func TestScopesAreCheckedLocally(t *testing.T) {
	e := newEnv(t)
	e.ccAccount("cc", nil)
	e.account("rt", nil)
	before := e.sim.Counters().TokenRequests
	bad := []interface{}{"", " ", []interface{}{}, "x", `Zoho"x`, "ZohoCRM.modules.ALL;ZohoCRM.users.READ", "123", "ZohoCRM.modules", "ZohoCRM..ALL", ".ZohoCRM.modules.ALL", "ZohoCRM.modules.ALL.", "a b", "ZohoCRM.modules.ALL ZohoCRM.users.READ"}
	for _, name := range []string{"cc", "rt"} {
		for _, v := range bad {
			msg, status := e.vaultAttempt(logical.UpdateOperation, "config/"+name, map[string]interface{}{"scopes": v})
			if status != http.StatusBadRequest || !strings.HasPrefix(msg, "scopes: ") {
				t.Errorf("%s scopes=%#v: %d %q, want 400 naming scopes", name, v, status, msg)
			}
		}
		if got := e.must(logical.ReadOperation, "config/"+name, nil).Data["scopes"].([]string); len(got) == 0 {
			t.Errorf("%s: scopes %v after refused writes", name, got)
		}
	}
	c := e.newClient("us")
	for _, v := range bad[3:] {
		msg, status := e.vaultAttempt(logical.CreateOperation, "config/new", map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"), "scopes": v})
		if status != http.StatusBadRequest || !strings.HasPrefix(msg, "scopes: ") {
			t.Errorf("create scopes=%#v: %d %q, want 400 naming scopes", v, status, msg)
		}
	}
	if got := e.sim.Counters().TokenRequests; got != before {
		t.Errorf("refused scopes reached Zoho: %d token requests", got-before)
	}
	if ok, _ := e.b.AccountExists(context.Background(), e.storage, "new"); ok {
		t.Error("an account with refused scopes was stored")
	}
	// The shapes Zoho's documentation shows are taken.
	for _, v := range []string{"ZohoCRM.modules.ALL,ZohoCRM.settings.READ", "ZohoAnalytics.data.all", "zohopulse.feedList.READ", "AaaServer.profile.READ", "ZohoCRM.modules.leads.READ"} {
		e.must(logical.UpdateOperation, "config/rt", map[string]interface{}{"scopes": v})
	}
}

// An existence check that fails for a reason other than a value (storage
// failing) is answered as the server error it is, not as a user error.
func TestExistenceCheckStorageFailureIsAServerError(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	e.b.invalidate(context.Background(), "config/a") // the check must read storage
	e.storage.setGetErr(func(key string) error {
		if strings.HasPrefix(key, "config/") {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	msg, status := e.vaultAttempt(logical.UpdateOperation, "config/a", map[string]interface{}{"scopes": "ZohoCRM.modules.ALL"})
	if status != http.StatusInternalServerError || !strings.Contains(msg, "storage unavailable") {
		t.Fatalf("existence check with failing storage: %d %q (want 500)", status, msg)
	}
}

// Each call to Zoho is bounded by the client's timeout plus a second; without
// one configured, by 10 s plus a second.
func TestUpstreamTimeoutIsTheClientsPlusASecond(t *testing.T) {
	e := newEnv(t) // Timeout: 2s
	if got := e.b.upstreamTimeout(); got != 3*time.Second {
		t.Fatalf("upstream timeout with a 2s client timeout: %s (want 3s)", got)
	}
	e = newEnv(t, func(_ *zohosim.Config, o *Options) { o.Timeout = 0 })
	if got := e.b.upstreamTimeout(); got != 11*time.Second {
		t.Fatalf("upstream timeout without a client timeout: %s (want 11s)", got)
	}
}

// A duration the framework cannot parse is answered in the engine's words:
// the field, what was given and what is expected, not the framework's.
func TestUnparsableDurationIsExplained(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	msg, status := e.fails(logical.ReadOperation, "creds/a", map[string]interface{}{"min_ttl": "soon"})
	if status != http.StatusBadRequest || strings.Contains(msg, "error converting") || !strings.Contains(msg, `min_ttl: "soon" is not a duration`) {
		t.Fatalf("min_ttl=soon: %d %q", status, msg)
	}
}
