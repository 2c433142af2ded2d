package e2e

import (
	"strings"
	"testing"
)

// cliSecret is the JSON the vault CLI prints for a read.
type cliSecret struct {
	LeaseID       string                 `json:"lease_id"`
	LeaseDuration int                    `json:"lease_duration"`
	Renewable     bool                   `json:"renewable"`
	Data          map[string]interface{} `json:"data"`
	Warnings      []string               `json:"warnings"`
}

// TestCLIFlows runs the main operator and reader flows through the real
// vault CLI.
func TestCLIFlows(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	a := newAccount(t, sim, "cli")
	cfgPath := mountPath + "/config/" + a.name

	// Bad input first: the CLI shows the 400 and the field.
	r := v.cli(t, v.Token, "write", cfgPath, "client_id="+a.client.ID, "client_secret="+a.client.Secret,
		"data_center=mars", "accounts_url="+sim.AccountsURL("us"), "grant_code="+a.grantCode(t))
	if r.code != 2 || !strings.Contains(r.stderr, "Code: 400") || !strings.Contains(r.stderr, "data_center") {
		t.Fatalf("bad data_center: %s\nwant exit 2 with Code: 400 naming data_center", r)
	}

	r = v.mustCLI(t, "write", cfgPath,
		"client_id="+a.client.ID,
		"client_secret="+a.client.Secret,
		"data_center=us",
		"accounts_url="+sim.AccountsURL("us"),
		"scopes="+strings.Join(a.scopes, ","),
		"grant_code="+a.grantCode(t))
	if !strings.Contains(r.stdout, "Success! Data written to: "+cfgPath) {
		t.Fatalf("config write output: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, a.client.Secret) {
		t.Fatalf("config write echoes the client secret: %s", r)
	}
	a.expectCounters(t, 1, 0)

	// Config read through the CLI: no secret.
	var cfg cliSecret
	r = v.cliJSON(t, &cfg, "read", "-format=json", cfgPath)
	if cfg.Data["client_id"] != a.client.ID || cfg.Data["has_refresh_token"] != true || cfg.Data["api_domain"] != sim.APIDomain("us") {
		t.Fatalf("config read: %s", r.stdout)
	}
	if strings.Contains(r.stdout, a.client.Secret) || zohoTokenRe.MatchString(r.stdout) {
		t.Fatalf("config read shows a secret: %s", r.stdout)
	}

	// Two creds reads: one shared, cached token under two leases.
	var first, second cliSecret
	v.cliJSON(t, &first, "read", "-format=json", mountPath+"/creds/"+a.name)
	v.cliJSON(t, &second, "read", "-format=json", mountPath+"/creds/"+a.name)
	for _, s := range []cliSecret{first, second} {
		if !strings.HasPrefix(s.LeaseID, mountPath+"/creds/"+a.name+"/") || !s.Renewable || s.LeaseDuration <= 0 {
			t.Fatalf("creds lease: id %q renewable %v ttl %d", s.LeaseID, s.Renewable, s.LeaseDuration)
		}
		for _, k := range []string{"access_token", "api_domain", "token_type", "expires_at", "scopes"} {
			if _, ok := s.Data[k]; !ok {
				t.Fatalf("creds read has no %s: %v", k, s.Data)
			}
		}
	}
	tok := toString(first.Data["access_token"])
	if toString(second.Data["access_token"]) != tok {
		t.Fatalf("two cached reads returned different tokens")
	}
	if first.LeaseID == second.LeaseID {
		t.Fatalf("two reads share a lease")
	}
	if toString(first.Data["api_domain"]) != sim.APIDomain("us") {
		t.Fatalf("api_domain %v", first.Data["api_domain"])
	}
	a.expectAccepted(t, tok)
	a.expectCounters(t, 1, 0)

	// Plain table output names the fields too.
	r = v.mustCLI(t, "read", mountPath+"/creds/"+a.name)
	for _, k := range []string{"lease_id", "lease_duration", "lease_renewable", "access_token", "api_domain", "expires_at", tok} {
		if !strings.Contains(r.stdout, k) {
			t.Fatalf("table output of creds read lacks %q:\n%s", k, r.stdout)
		}
	}
	a.expectCounters(t, 1, 0)

	// -field prints just the token.
	r = v.mustCLI(t, "read", "-field=access_token", mountPath+"/creds/"+a.name)
	if strings.TrimSpace(r.stdout) != tok {
		t.Fatalf("-field=access_token printed %q; want the shared token", r.stdout)
	}

	// List.
	var keys []string
	v.cliJSON(t, &keys, "list", "-format=json", mountPath+"/config")
	if !contains(keys, a.name) {
		t.Fatalf("vault list %s/config = %v; want %s in it", mountPath, keys, a.name)
	}

	// Revoke the refresh token.
	r = v.mustCLI(t, "write", "-f", mountPath+"/revoke/"+a.name)
	if !strings.Contains(r.stdout, "Success! Data written to: "+mountPath+"/revoke/"+a.name) {
		t.Fatalf("revoke output: %s", r)
	}
	if got := a.counters(); got.RevokedRefresh != 1 || got.Exchanges != 1 || got.Refreshes != 0 {
		t.Fatalf("after revoke: %+v; want 1 revoked refresh token, 1 exchange, 0 refreshes", got)
	}
	if err := tokenDead(t, sim, tok); err != nil {
		t.Fatalf("after revoke: %v", err)
	}
	r = v.cli(t, v.Token, "read", mountPath+"/creds/"+a.name)
	if r.code != 2 || !strings.Contains(r.stderr, "Code: 400") || !strings.Contains(r.stderr, "grant_code") {
		t.Fatalf("creds after revoke: %s\nwant exit 2, Code: 400, telling to write a grant_code", r)
	}

	// Delete the account.
	r = v.mustCLI(t, "delete", cfgPath)
	if !strings.Contains(r.stdout, "Success! Data deleted (if it existed) at: "+cfgPath) {
		t.Fatalf("delete output: %s", r)
	}
	r = v.cli(t, v.Token, "read", cfgPath)
	if r.code != 2 || !strings.Contains(r.stderr, "No value found at "+cfgPath) {
		t.Fatalf("config read after delete: %s\nwant exit 2, No value found", r)
	}
	r = v.cli(t, v.Token, "list", "-format=json", mountPath+"/config")
	if r.code == 0 && strings.Contains(r.stdout, `"`+a.name+`"`) {
		t.Fatalf("list after delete still has %s: %s", a.name, r.stdout)
	}
	if r.code != 0 && r.code != 2 {
		t.Fatalf("list after delete: %s", r)
	}
	// The revoked refresh token needed no second revocation; nothing else
	// was asked of Zoho.
	if got := a.counters(); got.Exchanges != 1 || got.Refreshes != 0 || got.RevokedRefresh != 1 || got.RevokeInvalid != 0 {
		t.Fatalf("final counters %+v; want 1 exchange, 0 refreshes, 1 revoked refresh token, no invalid revocation", got)
	}
}
