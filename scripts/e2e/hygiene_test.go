package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// TestSecretHygiene runs the engine's flows with Vault at trace level and a
// file audit device, then looks for the client secret, refresh tokens and
// access tokens in plain text in the Vault log (which carries the plugin's
// log), the audit log and every response other than creds/.
func TestSecretHygiene(t *testing.T) {
	t.Parallel()
	v, err := startDevVaultLevel(t.TempDir(), "trace")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Kill() })
	v.dumpLogOnFailure(t, "trace Vault")
	if err := v.enablePlugin(); err != nil {
		t.Fatal(err)
	}
	c := v.root()
	auditPath := filepath.Join(v.Dir, "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": auditPath}}); err != nil {
		t.Fatal(err)
	}

	a := newAccount(t, sim, "hygiene")
	var responses []string
	record := func(s *api.Secret, err error) {
		t.Helper()
		if err != nil {
			responses = append(responses, err.Error())
		}
		if s != nil {
			responses = append(responses, mustMarshal(t, s))
		}
	}
	code := a.grantCode(t)
	data := a.configData(t)
	data["grant_code"] = code
	record(c.Logical().Write(mountPath+"/config/"+a.name, data))
	var tokens []string
	var leases []string
	for i := 0; i < 3; i++ {
		cr := readCreds(t, c, a)
		tokens = append(tokens, cr.accessToken)
		leases = append(leases, cr.leaseID)
	}
	record(c.Logical().Read(mountPath + "/config/" + a.name))
	record(c.Logical().List(mountPath + "/config"))
	record(c.Logical().List(mountPath + "/status"))
	record(c.Logical().Read(mountPath + "/status/" + a.name))
	rawMetrics := v.raw(t, v.Token, "GET", mountPath+"/metrics?per_account=true", nil)
	responses = append(responses, string(rawMetrics.body))
	// Errors: a bad code, a forced refresh, bad input.
	bad := a.configData(t)
	bad["grant_code"] = "1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef"
	record(c.Logical().Write(mountPath+"/config/"+a.name+"-bad", bad))
	cr, err := c.Logical().ReadWithData(mountPath+"/creds/"+a.name, map[string][]string{"min_ttl": {"59m"}})
	if err == nil && cr != nil {
		tokens = append(tokens, toString(cr.Data["access_token"]))
		leases = append(leases, cr.LeaseID)
	}
	// An unleased read (its first of a token stores the hold, logged by id).
	if sr, err := c.Logical().ReadWithData(mountPath+"/static-creds/"+a.name, map[string][]string{"min_ttl": {"59m"}}); err == nil && sr != nil {
		tokens = append(tokens, toString(sr.Data["access_token"]))
	} else {
		t.Fatalf("static-creds/ read: %v", err)
	}
	// Rotate: a new grant code replaces (and revokes) the refresh token.
	rtsBefore := sim.RefreshTokens(a.client.ID)
	record(c.Logical().Write(mountPath+"/config/"+a.name, map[string]interface{}{"grant_code": a.grantCode(t)}))
	rts := append(rtsBefore, sim.RefreshTokens(a.client.ID)...)
	for _, l := range leases {
		if err := c.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: l, Sync: true}); err != nil {
			t.Fatalf("revoking lease: %v", err)
		}
	}
	record(c.Logical().Write(mountPath+"/revoke/"+a.name, nil))
	record(c.Logical().Delete(mountPath + "/config/" + a.name))

	// A client_credentials account: a refused secret, reads, a rotated
	// secret, revoke/ and delete.
	cc := sim.RegisterClient(zohosim.Client{DC: "us", MultiOrg: true})
	ccPath := mountPath + "/config/hygiene-cc"
	ccData := map[string]interface{}{
		"grant_type": "client_credentials", "client_id": cc.ID, "client_secret": "wrong-" + cc.Secret,
		"accounts_url": sim.AccountsURL("us"), "scopes": "ZohoCRM.org.READ", "soid": "ZohoCRM.600000000434",
	}
	record(c.Logical().Write(ccPath, ccData))
	ccData["client_secret"] = cc.Secret
	record(c.Logical().Write(ccPath, ccData))
	for i := 0; i < 2; i++ {
		s, err := c.Logical().Read(mountPath + "/creds/hygiene-cc")
		if err != nil {
			t.Fatalf("creds of the client_credentials account: %v", err)
		}
		tokens = append(tokens, toString(s.Data["access_token"]))
	}
	rotated := sim.RegisterClient(zohosim.Client{ID: cc.ID, Secret: "rotated-" + cc.Secret, DC: "us", MultiOrg: true})
	record(c.Logical().Write(ccPath, map[string]interface{}{"client_secret": rotated.Secret}))
	if s, err := c.Logical().ReadWithData(mountPath+"/creds/hygiene-cc", map[string][]string{"min_ttl": {"59m"}}); err == nil && s != nil {
		tokens = append(tokens, toString(s.Data["access_token"]))
	}
	record(c.Logical().Read(ccPath))
	record(c.Logical().Write(mountPath+"/revoke/hygiene-cc", nil))
	record(c.Logical().Delete(ccPath))

	secrets := map[string]string{"client secret": a.client.Secret, "refused client secret": "wrong-" + cc.Secret,
		"client_credentials secret": cc.Secret, "rotated client secret": rotated.Secret}
	for i, rt := range rts {
		secrets["refresh token "+string(rune('A'+i))] = rt
	}
	for i, tok := range tokens {
		secrets["access token "+string(rune('A'+i))] = tok
	}
	if len(rts) < 2 || len(tokens) < 7 {
		t.Fatalf("the flow did not produce the secrets to look for: %d refresh, %d access", len(rts), len(tokens))
	}
	// Give the audit device and log a moment to flush what they have.
	eventually(t, 10*time.Second, func() error {
		_, err := os.Stat(auditPath)
		return err
	})
	vaultLog, _ := os.ReadFile(v.LogPath)
	auditLog, _ := os.ReadFile(auditPath)
	if !strings.Contains(string(vaultLog), "account written") {
		t.Fatal("the Vault log carries nothing of the plugin: the check would prove nothing")
	}
	if !strings.Contains(string(auditLog), "creds/"+a.name) {
		t.Fatal("the audit log did not record the creds reads")
	}
	for what, s := range secrets {
		if strings.Contains(string(vaultLog), s) {
			t.Errorf("%s appears in the Vault/plugin log", what)
		}
		if strings.Contains(string(auditLog), s) {
			t.Errorf("%s appears in plain text in the audit log", what)
		}
		for _, r := range responses {
			if strings.Contains(r, s) {
				t.Errorf("%s appears in a non-creds response", what)
			}
		}
	}
}

func mustMarshal(t *testing.T, v interface{}) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
