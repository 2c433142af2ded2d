package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

func TestStatusList(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	e.account("b", nil)
	c := e.newClient("us")
	e.must(logical.CreateOperation, "config/c", map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret})
	resp := e.must(logical.ListOperation, "status/", nil)
	keys := resp.Data["keys"].([]string)
	info := resp.Data["key_info"].(map[string]interface{})
	if len(keys) != 3 || len(info) != 3 {
		t.Fatalf("status list: %v", resp.Data)
	}
	a := info["a"].(map[string]interface{})
	if a["has_refresh_token"] != true || a["rate_budget_remaining"] != 9 || a["token_expires_at"] == "" {
		t.Fatalf("status of a: %v", a)
	}
	if info["c"].(map[string]interface{})["has_refresh_token"] != false {
		t.Fatal("c has no token")
	}
	one := e.must(logical.ReadOperation, "status/b", nil)
	if one.Data["live_tokens"] != 1 {
		t.Fatalf("status/b: %v", one.Data)
	}
	if _, ok := one.Data["client_id"]; ok {
		t.Fatal("status shows only health")
	}
}

// Listing status/ reads no device record per account: one listing of the
// device authorizations tells which accounts have one, and only those are
// read (the accounts are loaded: their own state needs no storage).
func TestStatusListReadsOnlyDeviceRecordsThatExist(t *testing.T) {
	e, _ := newDeviceEnv(t, nil)
	const n = 30
	for i := 0; i < n; i++ {
		e.account(fmt.Sprintf("acct%02d", i), nil)
	}
	e.deviceAccount("tv", e.newClient("us"))
	e.startDevice("tv")
	e.must(logical.ListOperation, "status/", nil) // loads every account
	var read []string
	e.storage.setGetHook(func(key string) {
		if strings.HasPrefix(key, devicePrefix) {
			read = append(read, key)
		}
	})
	resp := e.must(logical.ListOperation, "status/", nil)
	e.storage.setGetHook(nil)
	if keys := resp.Data["keys"].([]string); len(keys) != n+1 {
		t.Fatalf("%d accounts listed, want %d", len(keys), n+1)
	}
	if len(read) != 1 || read[0] != devicePrefix+"tv" {
		t.Fatalf("listing status/ read %d device records (%v), want only tv's", len(read), read[:min(3, len(read))])
	}
	info := resp.Data["key_info"].(map[string]interface{})
	if got := info["tv"].(map[string]interface{})["device_authorization"]; got != paths.DeviceStatePending {
		t.Fatalf("tv's device authorization listed as %v", got)
	}
	if _, ok := info["acct00"].(map[string]interface{})["device_authorization"]; ok {
		t.Fatal("acct00 listed with a device authorization")
	}
}

// attention/ names the accounts that need an operator, and only those, from
// an index kept as their health changes: failing, needing re-authorization,
// and back to healthy.
func TestAttentionIndex(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"fine", "sick", "dead"} {
		e.account(n, nil)
	}
	list := func() []string {
		resp, err := e.request(logical.ListOperation, "attention/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp == nil || resp.Data["keys"] == nil {
			return nil
		}
		return resp.Data["keys"].([]string)
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("healthy accounts listed: %v", got)
	}
	e.clock.Advance(2 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	e.fails(logical.ReadOperation, "creds/sick", map[string]interface{}{"min_ttl": "59m"})
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultError, ErrorCode: "invalid_code", Times: 1})
	e.fails(logical.ReadOperation, "creds/dead", map[string]interface{}{"min_ttl": "59m"})
	if got := list(); strings.Join(got, ",") != "dead,sick" {
		t.Fatalf("attention/ lists %v, want dead and sick", got)
	}
	resp, _ := e.request(logical.ListOperation, "attention/", nil)
	reasons := resp.Data["key_info"].(map[string]interface{})["dead"].(map[string]interface{})["reasons"]
	if !strings.Contains(fmt.Sprint(reasons), "needs_reauthorization") {
		t.Fatalf("reasons for dead: %v", reasons)
	}
	// Recovery takes them off: a refresh that works, a new grant.
	e.clock.Advance(10 * time.Minute)
	e.creds("sick", map[string]interface{}{"min_ttl": "59m"})
	c := e.b.cachedAccount("dead").cfg
	e.must(logical.UpdateOperation, "config/dead", map[string]interface{}{"grant_code": e.code(zohosim.Client{ID: c.ClientID})})
	if got := list(); len(got) != 0 {
		t.Fatalf("recovered accounts still listed: %v", got)
	}
	if keys, _ := e.storage.List(context.Background(), attentionPrefix); len(keys) != 0 {
		t.Fatalf("the index keeps %v", keys)
	}
	// Every index write worked, so no failure was reported; one that fails is.
	if logs := e.logs.String(); strings.Contains(logs, "attention index") {
		t.Fatalf("a working index write was logged as failed:\n%s", logs)
	}
	e.storage.failPutsUnder(attentionPrefix)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultError, ErrorCode: "invalid_code", Times: 1})
	e.clock.Advance(time.Minute)
	e.fails(logical.ReadOperation, "creds/fine", map[string]interface{}{"min_ttl": "59m"})
	if !strings.Contains(e.logs.String(), "could not add the account to the attention index") {
		t.Fatal("a failed index write was not logged")
	}
}

// An account stays in attention/ while any reason holds: a routine refresh
// or a client change that ends a back-off does not take off an account whose
// revocation was given up, and a new secret does not take off one that needs
// re-authorization (it ends its failure count; it cannot end the need).
func TestAttentionOutlivesOtherRecoveries(t *testing.T) {
	e := newEnv(t)
	listed := func(name string) bool {
		t.Helper()
		resp, err := e.request(logical.ListOperation, "attention/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp == nil || resp.Data["keys"] == nil {
			return false
		}
		return slices.Contains(resp.Data["keys"].([]string), name)
	}
	const storeFailure = "could not store the cleared back-off"

	// Needs re-authorization; a new secret is stored unverified.
	e.account("dead", nil)
	e.clock.Advance(2 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultError, ErrorCode: "invalid_code", Times: 1})
	e.fails(logical.ReadOperation, "creds/dead", map[string]interface{}{"min_ttl": "59m"})
	if !listed("dead") {
		t.Fatal("an account needing re-authorization is not listed")
	}
	e.must(logical.UpdateOperation, "config/dead", map[string]interface{}{"client_secret": "a-new-secret"})
	st := e.must(logical.ReadOperation, "status/dead", nil)
	if st.Data["needs_reauthorization"] != true || st.Data["consecutive_failures"] != 0 {
		t.Fatalf("after a new secret: %v", st.Data)
	}
	if !listed("dead") {
		t.Fatal("a new secret took an account needing re-authorization off attention/")
	}
	if strings.Contains(e.logs.String(), storeFailure) {
		t.Fatal("a stored back-off reset was logged as not stored")
	}

	// A revocation given up.
	c := e.account("stubborn", nil)
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502})
	e.must(logical.UpdateOperation, "config/stubborn", map[string]interface{}{"grant_code": e.code(c)})
	rollback := func() {
		t.Helper()
		if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
			t.Fatal(err)
		}
	}
	rollback()
	e.clock.Advance(revokeRetryFor)
	rollback()
	e.sim.ClearFaults()
	if !listed("stubborn") {
		t.Fatal("an account whose revocation was given up is not listed")
	}
	e.clock.Advance(2 * time.Minute)
	e.creds("stubborn", map[string]interface{}{"min_ttl": "59m"})
	if !listed("stubborn") {
		t.Fatal("a routine refresh took an account whose revocation was given up off attention/")
	}
	e.clock.Advance(2 * time.Minute)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503, Times: 1})
	e.fails(logical.ReadOperation, "creds/stubborn", map[string]interface{}{"min_ttl": "59m"})
	// The operator moves it to another client: the back-off ends (storing
	// that fails here, and the log says so); the given-up revocation stays.
	e.storage.failPutsUnder(tokenPrefix)
	c2 := e.newClient("us")
	e.must(logical.UpdateOperation, "config/stubborn", map[string]interface{}{"client_id": c2.ID, "client_secret": c2.Secret})
	e.storage.setPutHook(nil)
	if st := e.must(logical.ReadOperation, "status/stubborn", nil); st.Data["consecutive_failures"] != 0 || st.Data["next_attempt_at"] != "" {
		t.Fatalf("the back-off did not end: %v", st.Data)
	}
	if !strings.Contains(e.logs.String(), storeFailure) {
		t.Fatal("a back-off reset that could not be stored was not logged")
	}
	if !listed("stubborn") {
		t.Fatal("ending the back-off took an account whose revocation was given up off attention/")
	}
}

// An account deleted while its removal from the index failed is left out
// of attention/, which still lists the others.
func TestAttentionSkipsADeletedAccountLeftInTheIndex(t *testing.T) {
	e := newEnv(t)
	e.account("gone", nil)
	e.account("sick", nil)
	e.clock.Advance(2 * time.Minute)
	for _, n := range []string{"gone", "sick"} {
		e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultError, ErrorCode: "invalid_code", Times: 1})
		e.fails(logical.ReadOperation, "creds/"+n, map[string]interface{}{"min_ttl": "59m"})
	}
	e.storage.setDeleteHook(func(key string) error {
		if key == attentionPrefix+"gone" {
			return errors.New("injected storage failure")
		}
		return nil
	})
	e.must(logical.DeleteOperation, "config/gone", nil)
	if keys, _ := e.storage.List(context.Background(), attentionPrefix); !slices.Contains(keys, "gone") {
		t.Fatalf("the index lost the deleted account despite the failure: %v", keys)
	}
	resp, err := e.request(logical.ListOperation, "attention/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := resp.Data["keys"].([]string); strings.Join(got, ",") != "sick" {
		t.Fatalf("attention/ lists %v, want sick only", got)
	}
}
