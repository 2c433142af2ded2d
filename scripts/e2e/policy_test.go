package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestPolicies checks that Vault's ACL policies gate the engine's paths: a
// token allowed to read one account's creds gets nothing else.
func TestPolicies(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	analytics := newAccount(t, sim, "analytics", "ZohoAnalytics.data.all")
	crm := newAccount(t, sim, "crm", "ZohoCRM.modules.ALL")
	analytics.configure(t, c)
	crm.configure(t, c)

	const policy = "zoho-analytics-reader"
	rules := `path "` + mountPath + `/creds/analytics" {
  capabilities = ["read"]
}
`
	if err := c.Sys().PutPolicy(policy, rules); err != nil {
		t.Fatalf("writing policy: %v", err)
	}
	tokSecret, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, TTL: "15m", DisplayName: "analytics-app"})
	if err != nil {
		t.Fatalf("creating a token: %v", err)
	}
	tok := tokSecret.Auth.ClientToken
	app := v.Client(tok)

	// Allowed: the analytics token.
	cr := readCreds(t, app, analytics)
	analytics.expectAccepted(t, cr.accessToken)

	// Denied: another account's creds, any config, revocation, listing.
	_, err = app.Logical().Read(mountPath + "/creds/crm")
	expectStatus(t, "creds/crm with the analytics policy", err, http.StatusForbidden, "permission denied")
	_, err = app.Logical().Read(mountPath + "/config/analytics")
	expectStatus(t, "reading config/analytics with the analytics policy", err, http.StatusForbidden, "permission denied")
	_, err = app.Logical().Write(mountPath+"/config/x", map[string]interface{}{"client_id": "1000.X", "client_secret": "s"})
	expectStatus(t, "writing config/x with the analytics policy", err, http.StatusForbidden, "permission denied")
	_, err = app.Logical().Write(mountPath+"/config/analytics", map[string]interface{}{"grant_code": analytics.grantCode(t)})
	expectStatus(t, "writing config/analytics with the analytics policy", err, http.StatusForbidden, "permission denied")
	_, err = app.Logical().List(mountPath + "/config")
	expectStatus(t, "listing config/ with the analytics policy", err, http.StatusForbidden, "permission denied")
	_, err = app.Logical().Write(mountPath+"/revoke/analytics", nil)
	expectStatus(t, "revoke/analytics with the analytics policy", err, http.StatusForbidden, "permission denied")
	_, err = app.Logical().Delete(mountPath + "/config/analytics")
	expectStatus(t, "deleting config/analytics with the analytics policy", err, http.StatusForbidden, "permission denied")

	// The same through the CLI.
	r := v.cli(t, tok, "read", "-field=access_token", mountPath+"/creds/analytics")
	if r.code != 0 || strings.TrimSpace(r.stdout) != cr.accessToken {
		t.Fatalf("CLI read of creds/analytics with the policy token: %s", r)
	}
	r = v.cli(t, tok, "read", mountPath+"/creds/crm")
	if r.code != 2 || !strings.Contains(r.stderr, "Code: 403") || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("CLI read of creds/crm with the policy token: %s\nwant exit 2, Code: 403", r)
	}
	r = v.mustCLI(t, "token", "capabilities", tok, mountPath+"/creds/analytics")
	if strings.TrimSpace(r.stdout) != "read" {
		t.Fatalf("capabilities on creds/analytics: %q; want read", r.stdout)
	}
	r = v.mustCLI(t, "token", "capabilities", tok, mountPath+"/creds/crm")
	if strings.TrimSpace(r.stdout) != "deny" {
		t.Fatalf("capabilities on creds/crm: %q; want deny", r.stdout)
	}

	// Denied requests never reached the engine: no token was spent, and the
	// accounts are intact.
	analytics.expectCounters(t, 1, 0)
	crm.expectCounters(t, 1, 0)
	if got := crm.counters(); got.Revokes != 0 {
		t.Fatalf("crm at the simulator after denied requests: %+v", got)
	}
	for _, a := range []*account{analytics, crm} {
		s, err := c.Logical().Read(mountPath + "/config/" + a.name)
		if err != nil || s == nil || s.Data["has_refresh_token"] != true {
			t.Fatalf("config/%s after denied requests: %v %v", a.name, s, err)
		}
	}
	if s, err := c.Logical().Read(mountPath + "/config/x"); err != nil || s != nil {
		t.Fatalf("config/x exists after a denied write: %v %v", s, err)
	}
}

// TestExamplePolicies loads the operator and monitoring policies of
// docs/examples/policies into Vault and checks that their tokens may do what
// docs/operations.md sends them to do: list zoho/attention (the accounts
// needing an operator) and zoho/status, and read zoho/metrics; the
// monitoring token changes nothing. An application's policy may not list
// attention/.
func TestExamplePolicies(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	acct := newAccount(t, sim, "policy-examples", "ZohoCRM.modules.ALL")
	acct.configure(t, c)

	token := func(policy string) string {
		t.Helper()
		src, err := os.ReadFile(filepath.Join(repoRoot, "docs", "examples", "policies", policy+".hcl"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Sys().PutPolicy(policy, string(src)); err != nil {
			t.Fatalf("writing policy %s: %v", policy, err)
		}
		s, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, TTL: "15m"})
		if err != nil {
			t.Fatalf("creating a token with %s: %v", policy, err)
		}
		return s.Auth.ClientToken
	}
	for _, policy := range []string{"zoho-operator", "zoho-monitoring"} {
		tok := token(policy)
		app := v.Client(tok)
		// An empty list answers 404, which the client reports as no
		// secret and no error; a denied one is a 403.
		for _, p := range []string{"/attention", "/status"} {
			if _, err := app.Logical().List(mountPath + p); err != nil {
				t.Errorf("%s: vault list %s%s: %v", policy, mountPath, p, err)
			}
		}
		// metrics answers Prometheus text, not a Vault secret.
		if r := v.raw(t, tok, "GET", mountPath+"/metrics", nil); r.status != http.StatusOK {
			t.Errorf("%s: GET %s/metrics: %d", policy, mountPath, r.status)
		}
		if _, err := app.Logical().Read(mountPath + "/status/" + acct.name); err != nil {
			t.Errorf("%s: vault read %s/status/%s: %v", policy, mountPath, acct.name, err)
		}
		r := v.mustCLI(t, "token", "capabilities", tok, mountPath+"/attention/")
		if strings.TrimSpace(r.stdout) != "list" {
			t.Errorf("%s: capabilities on %s/attention/: %q; want list", policy, mountPath, r.stdout)
		}
		_, err := app.Logical().Read(mountPath + "/creds/" + acct.name)
		expectStatus(t, policy+": creds/ read", err, http.StatusForbidden, "permission denied")
	}
	_, err := v.Client(token("zoho-monitoring")).Logical().Delete(mountPath + "/config/" + acct.name)
	expectStatus(t, "zoho-monitoring: deleting config/", err, http.StatusForbidden, "permission denied")
	_, err = v.Client(token("zoho-team-analytics")).Logical().List(mountPath + "/attention")
	expectStatus(t, "zoho-team-analytics: listing attention/", err, http.StatusForbidden, "permission denied")
}
