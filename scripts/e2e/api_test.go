package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// TestAPIPaths drives every path of the engine over Vault's HTTP API.
func TestAPIPaths(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	a := newAccount(t, sim, "api-acct")
	cfgPath := mountPath + "/config/" + a.name

	// Create: the grant code is exchanged at once.
	a.configure(t, c)
	a.expectCounters(t, 1, 0)

	// Read: non-secret fields only.
	res := v.raw(t, v.Token, http.MethodGet, cfgPath, nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET %s: %s", cfgPath, res)
	}
	var cfg struct {
		Data map[string]interface{} `json:"data"`
	}
	if err := json.Unmarshal(res.body, &cfg); err != nil {
		t.Fatalf("decoding %s: %v", res, err)
	}
	d := cfg.Data
	want := map[string]interface{}{
		"client_id":             a.client.ID,
		"data_center":           "us",
		"accounts_url":          sim.AccountsURL("us"),
		"api_domain":            sim.APIDomain("us"),
		"has_refresh_token":     true,
		"needs_reauthorization": false,
	}
	for k, w := range want {
		if d[k] != w {
			t.Errorf("config %s = %#v; want %#v", k, d[k], w)
		}
	}
	if got := stringList(d["scopes"]); strings.Join(got, ",") != strings.Join(a.scopes, ",") {
		t.Errorf("config scopes = %v; want %v", got, a.scopes)
	}
	exp, err := time.Parse(time.RFC3339, toString(d["token_expires_at"]))
	if err != nil || !exp.After(time.Now().Add(50*time.Minute)) {
		t.Errorf("config token_expires_at = %v (%v); want about an hour from now", d["token_expires_at"], err)
	}
	for _, secret := range []string{"client_secret", "refresh_token", "access_token", "grant_code"} {
		if _, ok := d[secret]; ok {
			t.Errorf("config read returns %q", secret)
		}
	}
	if strings.Contains(string(res.body), a.client.Secret) {
		t.Errorf("config read contains the client secret: %s", res.body)
	}
	if tok := zohoTokenRe.FindString(string(res.body)); tok != "" {
		t.Errorf("config read contains a token %s: %s", tok, res.body)
	}

	// List.
	list, err := c.Logical().List(mountPath + "/config")
	if err != nil || list == nil {
		t.Fatalf("LIST config/: %v %v", list, err)
	}
	if keys := stringList(list.Data["keys"]); !contains(keys, a.name) {
		t.Fatalf("LIST config/ = %v; want it to include %s", keys, a.name)
	}

	// Creds: the token the exchange returned, accepted by Zoho, no refresh.
	cr := readCreds(t, c, a)
	a.expectAccepted(t, cr.accessToken)
	cr2 := readCreds(t, c, a)
	if cr2.accessToken != cr.accessToken {
		t.Fatalf("second read returned another token")
	}
	if cr2.leaseID == cr.leaseID {
		t.Fatalf("two reads share the lease %s", cr.leaseID)
	}
	a.expectCounters(t, 1, 0)

	// The config read still holds no token after creds were issued.
	res = v.raw(t, v.Token, http.MethodGet, cfgPath, nil)
	if strings.Contains(string(res.body), cr.accessToken) {
		t.Fatalf("config read contains the access token: %s", res.body)
	}

	// Revoke: the refresh token dies at Zoho (and with it the access token);
	// the client configuration stays.
	before := a.counters()
	if _, err := c.Logical().Write(mountPath+"/revoke/"+a.name, nil); err != nil {
		t.Fatalf("revoke/%s: %v", a.name, err)
	}
	after := a.counters()
	if after.RevokedRefresh != before.RevokedRefresh+1 {
		t.Fatalf("revoke/%s: simulator revoked %d refresh tokens; want 1", a.name, after.RevokedRefresh-before.RevokedRefresh)
	}
	if err := tokenDead(t, sim, cr.accessToken); err != nil {
		t.Fatalf("after revoke/%s: %v", a.name, err)
	}
	s, err := c.Logical().Read(cfgPath)
	if err != nil || s == nil {
		t.Fatalf("config read after revoke: %v %v", s, err)
	}
	if s.Data["has_refresh_token"] != false || s.Data["client_id"] != a.client.ID {
		t.Fatalf("config after revoke: has_refresh_token=%v client_id=%v; want false, %s", s.Data["has_refresh_token"], s.Data["client_id"], a.client.ID)
	}
	_, err = c.Logical().Read(mountPath + "/creds/" + a.name)
	expectStatus(t, "creds read after revoke", err, http.StatusBadRequest, a.name, "grant_code")
	// Revoking again is a no-op.
	if _, err := c.Logical().Write(mountPath+"/revoke/"+a.name, nil); err != nil {
		t.Fatalf("second revoke/%s: %v", a.name, err)
	}
	if got := a.counters().RevokedRefresh; got != after.RevokedRefresh {
		t.Fatalf("second revoke called Zoho: revoked refresh %d -> %d", after.RevokedRefresh, got)
	}

	// Re-authorize with a new grant code on the kept client.
	if _, err := c.Logical().Write(cfgPath, map[string]interface{}{"grant_code": a.grantCode(t)}); err != nil {
		t.Fatalf("writing a new grant_code: %v", err)
	}
	a.expectCounters(t, 2, 0)
	cr3 := readCreds(t, c, a)
	if cr3.accessToken == cr.accessToken {
		t.Fatalf("creds after re-authorization returned the revoked token")
	}
	a.expectAccepted(t, cr3.accessToken)

	// Delete: the refresh token is revoked at Zoho, the account is gone.
	before = a.counters()
	if _, err := c.Logical().Delete(cfgPath); err != nil {
		t.Fatalf("DELETE %s: %v", cfgPath, err)
	}
	if got := a.counters().RevokedRefresh; got != before.RevokedRefresh+1 {
		t.Fatalf("delete: simulator revoked %d refresh tokens; want 1", got-before.RevokedRefresh)
	}
	if err := tokenDead(t, sim, cr3.accessToken); err != nil {
		t.Fatalf("after delete: %v", err)
	}
	if res := v.raw(t, v.Token, http.MethodGet, cfgPath, nil); res.status != http.StatusNotFound {
		t.Fatalf("GET %s after delete: %s; want 404", cfgPath, res)
	}
	if list, err := c.Logical().List(mountPath + "/config"); err != nil {
		t.Fatalf("LIST after delete: %v", err)
	} else if list != nil && contains(stringList(list.Data["keys"]), a.name) {
		t.Fatalf("LIST after delete still has %s", a.name)
	}
	_, err = c.Logical().Read(mountPath + "/creds/" + a.name)
	expectStatus(t, "creds read after delete", err, http.StatusBadRequest, a.name)

	// The three leases handed out above outlive the account; revoking them
	// succeeds without calling Zoho (their tokens died with the refresh
	// tokens).
	before = a.counters()
	prefix := mountPath + "/creds/" + a.name + "/"
	if err := c.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: prefix, Prefix: true, Sync: true}); err != nil {
		t.Fatalf("revoking the leases of the deleted account: %v", err)
	}
	for _, id := range []string{cr.leaseID, cr2.leaseID, cr3.leaseID} {
		if err := leaseGone(c, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.counters(); got.Revokes != before.Revokes || got.RevokeInvalid != before.RevokeInvalid {
		t.Fatalf("revoking leases of a deleted account called Zoho: %+v (before %+v)", got, before)
	}
}

// TestAPIBadInput checks that bad input is refused with HTTP 400 naming the
// field, before anything is stored or sent to Zoho.
func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	a := newAccount(t, sim, "bad-input")
	cfgPath := mountPath + "/config/" + a.name

	with := func(changes map[string]interface{}, drop ...string) map[string]interface{} {
		d := a.configData(t)
		for _, k := range drop {
			delete(d, k)
		}
		for k, val := range changes {
			d[k] = val
		}
		return d
	}
	cases := []struct {
		name  string
		data  map[string]interface{}
		field string
	}{
		{"unknown data center", with(map[string]interface{}{"data_center": "mars"}), "data_center"},
		{"plain http to a remote host", with(map[string]interface{}{"accounts_url": "http://accounts.example.com"}), "accounts_url"},
		{"accounts_url not a URL", with(map[string]interface{}{"accounts_url": "not a url"}), "accounts_url"},
		{"redirect_uri not a URL", with(map[string]interface{}{"redirect_uri": "nowhere"}), "redirect_uri"},
		{"live_token_cap too high", with(map[string]interface{}{"live_token_cap": 31}), "live_token_cap"},
		{"live_token_cap zero", with(map[string]interface{}{"live_token_cap": 0}), "live_token_cap"},
		{"misspelt field", with(map[string]interface{}{"client_secrte": "x"}), "client_secrte"},
		{"no client_id", with(nil, "client_id"), "client_id"},
		{"no client_secret", with(nil, "client_secret"), "client_secret"},
		{"empty client_id", with(map[string]interface{}{"client_id": ""}), "client_id"},
		{"grant code and refresh token", with(map[string]interface{}{"refresh_token": "1000.x.y"}), "grant_code"},
		{"scope with a space", with(map[string]interface{}{"scopes": "ZohoCRM.modules.ALL,bad scope"}), "scopes"},
	}
	for _, tc := range cases {
		_, err := c.Logical().Write(cfgPath, tc.data)
		expectStatus(t, tc.name, err, http.StatusBadRequest, tc.field)
	}
	// None of these reached Zoho or stored anything.
	if got := a.counters(); got.TokenRequests != 0 {
		t.Fatalf("bad input reached Zoho: %+v", got)
	}
	if res := v.raw(t, v.Token, http.MethodGet, cfgPath, nil); res.status != http.StatusNotFound {
		t.Fatalf("GET %s after refused writes: %s; want 404", cfgPath, res)
	}

	// A grant code Zoho rejects: 400 naming grant_code, nothing stored.
	_, err := c.Logical().Write(cfgPath, with(map[string]interface{}{"grant_code": "1000.0000000000000000000000000000dead.00000000000000000000000000000000"}))
	expectStatus(t, "rejected grant code", err, http.StatusBadRequest, "grant_code", "invalid_code")
	if res := v.raw(t, v.Token, http.MethodGet, cfgPath, nil); res.status != http.StatusNotFound {
		t.Fatalf("GET %s after a rejected grant code: %s; want 404", cfgPath, res)
	}

	// Bad names and bad creds parameters.
	_, err = c.Logical().Write(mountPath+"/config/-leading-dash", a.configData(t))
	expectStatus(t, "invalid account name", err, http.StatusBadRequest, "name")
	_, err = c.Logical().ReadWithData(mountPath+"/creds/no-such-account", nil)
	expectStatus(t, "creds of an unknown account", err, http.StatusBadRequest, "name", "no-such-account")
	_, err = c.Logical().ReadWithData(mountPath+"/creds/"+a.name, map[string][]string{"min_ttl": {"48h"}})
	expectStatus(t, "min_ttl over 24h", err, http.StatusBadRequest, "min_ttl")
	_, err = c.Logical().ReadWithData(mountPath+"/creds/"+a.name, map[string][]string{"ttl": {"1h"}})
	expectStatus(t, "unknown creds parameter", err, http.StatusBadRequest, "ttl")
	_, err = c.Logical().Write(mountPath+"/revoke/"+a.name, map[string]interface{}{"force": true})
	expectStatus(t, "unknown revoke parameter", err, http.StatusBadRequest, "force")

	// Nothing reached Zoho except the one rejected exchange.
	if got := a.counters(); got.TokenRequests != 1 || got.Exchanges != 0 || got.ExchangeFailures != 1 {
		t.Fatalf("simulator counters after bad input: %+v; want exactly one failed exchange", got)
	}
}

func toString(v interface{}) string {
	s, _ := v.(string)
	return s
}
