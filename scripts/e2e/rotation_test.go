package e2e

import (
	"strings"
	"testing"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// TestSecretRotationCLI rotates the client secret of a refresh-token account
// with the vault CLI, as docs/operations.md tells operators to: a mistyped
// secret is refused (400 naming client_secret) after one verification and
// the old one keeps working; once the secret is regenerated in Zoho's
// console, the new one is verified by one refresh whose token is served next.
func TestSecretRotationCLI(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	a := newAccount(t, sim, "rotate")
	a.configure(t, v.root())
	cfgPath := mountPath + "/config/" + a.name
	credsPath := mountPath + "/creds/" + a.name
	var before cliSecret
	v.cliJSON(t, &before, "read", "-format=json", credsPath)
	old := toString(before.Data["access_token"])
	a.expectAccepted(t, old)
	base := a.counters()

	r := v.cli(t, v.Token, "write", cfgPath, "client_secret=mistyped-secret")
	if r.code != 2 || !strings.Contains(r.stderr, "Code: 400") || !strings.Contains(r.stderr, "client_secret") || !strings.Contains(r.stderr, "invalid_client_secret") {
		t.Fatalf("wrong secret: %s\nwant exit 2, Code: 400 naming client_secret", r)
	}
	if strings.Contains(r.stdout+r.stderr, "mistyped-secret") || strings.Contains(r.stdout+r.stderr, a.client.Secret) {
		t.Fatalf("the refusal shows a secret: %s", r)
	}
	if got := a.counters(); got.TokenRequests != base.TokenRequests+1 || got.Refreshes != base.Refreshes {
		t.Fatalf("wrong secret: %+v after %+v; want exactly one request that minted nothing", got, base)
	}
	var cached cliSecret
	v.cliJSON(t, &cached, "read", "-format=json", credsPath)
	if toString(cached.Data["access_token"]) != old {
		t.Fatal("a refused secret changed the served token")
	}

	// The secret is regenerated in Zoho's console: the old one stops working.
	a.client = sim.RegisterClient(zohosim.Client{ID: a.client.ID, Secret: "regenerated-" + a.client.Secret, DC: a.client.DC})
	base = a.counters()
	r = v.mustCLI(t, "write", cfgPath, "client_secret="+a.client.Secret)
	if strings.Contains(r.stdout+r.stderr, a.client.Secret) {
		t.Fatalf("the write shows the secret: %s", r)
	}
	if got := a.counters(); got.TokenRequests != base.TokenRequests+1 || got.Refreshes != base.Refreshes+1 {
		t.Fatalf("good secret: %+v after %+v; want exactly one refresh", got, base)
	}
	var after cliSecret
	v.cliJSON(t, &after, "read", "-format=json", credsPath)
	tok := toString(after.Data["access_token"])
	if tok == old || a.counters().TokenRequests != base.TokenRequests+1 {
		t.Fatal("the verification's token is not the one served")
	}
	a.expectAccepted(t, tok)
}
