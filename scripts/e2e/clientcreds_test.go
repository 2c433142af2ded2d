package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// TestClientCredentialsAccount runs a client_credentials account through the
// real vault CLI and API: the write mints (and a missing soid is a 400 naming
// it, nothing stored), two creds reads share that one token, a new secret is
// verified (a wrong one refused), revoke/ revokes the token at Zoho and stops
// minting, and the lease's revocation then costs no call.
func TestClientCredentialsAccount(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	a := &account{name: "cc-org", sim: sim, scopes: []string{"ZohoCRM.org.READ", "ZohoCRM.modules.ALL"},
		client: sim.RegisterClient(zohosim.Client{DC: "us", MultiOrg: true})}
	cfgPath := mountPath + "/config/" + a.name
	write := []string{"write", cfgPath,
		"grant_type=client_credentials",
		"client_id=" + a.client.ID,
		"client_secret=" + a.client.Secret,
		"data_center=us",
		"accounts_url=" + sim.AccountsURL("us"),
		"scopes=" + strings.Join(a.scopes, ","),
	}

	// Without soid Zoho answers missing_org_info: 400 naming soid, nothing stored.
	r := v.cli(t, v.Token, write...)
	if r.code != 2 || !strings.Contains(r.stderr, "Code: 400") || !strings.Contains(r.stderr, "soid") || !strings.Contains(r.stderr, "missing_org_info") {
		t.Fatalf("write without soid: %s\nwant exit 2, Code: 400 naming soid and missing_org_info", r)
	}
	if r := v.cli(t, v.Token, "read", cfgPath); r.code != 2 || !strings.Contains(r.stderr, "No value found") {
		t.Fatalf("a refused account was stored: %s", r)
	}

	r = v.mustCLI(t, append(write, "soid=ZohoCRM.600000000434")...)
	if strings.Contains(r.stdout+r.stderr, a.client.Secret) || zohoTokenRe.MatchString(r.stdout+r.stderr) {
		t.Fatalf("config write shows a secret: %s", r)
	}
	if got := a.counters(); got.ClientCredentials != 1 || got.ClientCredentialsFailures != 1 || got.TokenRequests != 2 {
		t.Fatalf("after the writes: %+v; want the refused request and the one that minted", got)
	}
	var cfg cliSecret
	r = v.cliJSON(t, &cfg, "read", "-format=json", cfgPath)
	if cfg.Data["grant_type"] != "client_credentials" || cfg.Data["soid"] != "ZohoCRM.600000000434" || cfg.Data["has_refresh_token"] != false || cfg.Data["token_expires_at"] == "" {
		t.Fatalf("config read: %s", r.stdout)
	}
	if strings.Contains(r.stdout, a.client.Secret) || zohoTokenRe.MatchString(r.stdout) {
		t.Fatalf("config read shows a secret: %s", r.stdout)
	}

	// Two reads, one token (the write's), two leases.
	var first, second cliSecret
	v.cliJSON(t, &first, "read", "-format=json", mountPath+"/creds/"+a.name)
	v.cliJSON(t, &second, "read", "-format=json", mountPath+"/creds/"+a.name)
	tok := toString(first.Data["access_token"])
	if tok == "" || toString(second.Data["access_token"]) != tok || first.LeaseID == second.LeaseID || !first.Renewable || first.LeaseDuration <= 0 {
		t.Fatalf("creds reads: %+v / %+v", first, second)
	}
	if status, _ := whoami(t, sim, tok); status != http.StatusOK {
		t.Fatalf("the simulator refuses the token: HTTP %d", status)
	}
	if got := a.counters(); got.ClientCredentials != 1 || got.TokenRequests != 2 || got.Refreshes != 0 {
		t.Fatalf("after two reads: %+v; want no token request beyond the write's", got)
	}

	// A wrong secret is refused after one verification; the account is unchanged.
	c := v.root()
	_, err := c.Logical().Write(cfgPath, map[string]interface{}{"client_secret": "not-the-secret"})
	expectStatus(t, "wrong client_secret", err, http.StatusBadRequest, "client_secret", "invalid_client_secret", "nothing was stored")
	if got := a.counters(); got.TokenRequests != 3 || got.ClientCredentialsFailures != 2 || got.ClientCredentials != 1 {
		t.Fatalf("after the wrong secret: %+v; want exactly one verification request", got)
	}
	if st, err := c.Logical().Read(mountPath + "/status/" + a.name); err != nil || fmt.Sprint(st.Data["consecutive_failures"]) != "0" {
		t.Fatalf("status after a refused write: %v %v", st, err)
	}

	// revoke/: the token dies at Zoho, reads answer 400 saying what to write.
	r = v.mustCLI(t, "write", "-f", mountPath+"/revoke/"+a.name)
	if !strings.Contains(r.stdout, "Success!") {
		t.Fatalf("revoke output: %s", r)
	}
	if err := tokenDead(t, sim, tok); err != nil {
		t.Fatalf("after revoke: %v", err)
	}
	if got := a.counters(); got.RevokedAccess != 1 || got.RevokeInvalid != 0 {
		t.Fatalf("after revoke: %+v; want one access token revoked", got)
	}
	r = v.cli(t, v.Token, "read", mountPath+"/creds/"+a.name)
	if r.code != 2 || !strings.Contains(r.stderr, "Code: 400") || !strings.Contains(r.stderr, "config/"+a.name) {
		t.Fatalf("creds after revoke: %s\nwant exit 2, Code: 400 saying to write config/%s", r, a.name)
	}
	// Revoking a lease on the revoked token costs no call.
	v.mustCLI(t, "lease", "revoke", first.LeaseID)
	eventually(t, 30*time.Second, func() error { return leaseGone(c, first.LeaseID) })
	if got := a.counters(); got.Revokes != 1 || got.RevokeInvalid != 0 {
		t.Fatalf("after the lease revocation: %+v; want no further call", got)
	}

	// Written again, it mints again; deleting it revokes that token.
	v.mustCLI(t, "write", "-f", cfgPath)
	var third cliSecret
	v.cliJSON(t, &third, "read", "-format=json", mountPath+"/creds/"+a.name)
	next := toString(third.Data["access_token"])
	if next == "" || next == tok || a.counters().ClientCredentials != 2 {
		t.Fatalf("after writing the account again: token changed %v, counters %+v", next != tok, a.counters())
	}
	v.mustCLI(t, "delete", cfgPath)
	if err := tokenDead(t, sim, next); err != nil {
		t.Fatalf("after delete: %v", err)
	}
}
