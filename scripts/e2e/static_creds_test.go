package e2e

import (
	"testing"
	"time"
)

// TestStaticCredsThroughCLIAndAgent reads static-creds/ through the real
// vault CLI and a real Vault Agent template: no lease anywhere, the answer's
// ttl ends before the token, revoking the leases of creds/ readers leaves
// the token alone, and the Agent re-renders a fresh token before the one it
// rendered expires (it sleeps ttl+1 s for an unleased answer that carries
// rotation_period).
func TestStaticCredsThroughCLIAndAgent(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	// Tokens live two minutes: the ttl ends at least 6 s before expiry (the
	// margin, 1/20 of the life), the Agent reads 1 s after the ttl, which
	// leaves its render 5 s however busy the machine (with one-minute tokens
	// the new token came 3.2 s before the old one expired, too close under
	// load).
	const tokenTTL = 2 * time.Minute
	zs := shortTokenSim(t, tokenTTL)
	a := newAccount(t, zs, "static")
	written := time.Now()
	a.configure(t, c)

	// The CLI: no lease, the token creds/ hands out, a ttl within its life.
	var st cliSecret
	r := v.cliJSON(t, &st, "read", "-format=json", mountPath+"/static-creds/"+a.name)
	if st.LeaseID != "" || st.LeaseDuration != 0 || st.Renewable {
		t.Fatalf("static-creds/ read made a lease: id %q duration %d renewable %v\n%s", st.LeaseID, st.LeaseDuration, st.Renewable, r.stdout)
	}
	tok := toString(st.Data["access_token"])
	a.expectAccepted(t, tok)
	firstExpiry, err := time.Parse(time.RFC3339, toString(st.Data["expires_at"]))
	if err != nil {
		t.Fatalf("expires_at %v: %v", st.Data["expires_at"], err)
	}
	ttl, ok := st.Data["ttl"].(float64)
	if !ok || ttl < 1 || time.Duration(ttl)*time.Second > tokenTTL {
		t.Fatalf("ttl %#v: want whole seconds within the token's %s", st.Data["ttl"], tokenTTL)
	}
	if p, _ := st.Data["rotation_period"].(float64); p != tokenTTL.Seconds() {
		t.Fatalf("rotation_period %#v, want %v", st.Data["rotation_period"], tokenTTL.Seconds())
	}
	if _, err := time.Parse(time.RFC3339Nano, toString(st.Data["last_vault_rotation"])); err != nil {
		t.Fatalf("last_vault_rotation %v: %v", st.Data["last_vault_rotation"], err)
	}
	var leased cliSecret
	v.cliJSON(t, &leased, "read", "-format=json", mountPath+"/creds/"+a.name)
	if toString(leased.Data["access_token"]) != tok || leased.LeaseID == "" {
		t.Fatalf("creds/ read: lease %q, same token %v", leased.LeaseID, toString(leased.Data["access_token"]) == tok)
	}
	// The last lease on the token ends; the token was handed out unleased,
	// so it stays.
	// The CLI queues the revocation; Vault calls the engine's Revoke before
	// it deletes the lease, so once the lease is gone the engine has acted.
	v.mustCLI(t, "lease", "revoke", leased.LeaseID)
	eventually(t, 30*time.Second, func() error { return leaseGone(c, leased.LeaseID) })
	a.expectAccepted(t, tok)
	if got := a.counters(); got.Revokes != 0 || got.RevokedAccess != 0 {
		t.Fatalf("revoking the creds/ lease revoked the token handed out unleased: %+v", got)
	}

	// A Vault Agent template on static-creds/.
	first, readRendered := startTokenAgent(t, v, c, a, "static-creds")
	if first != tok {
		t.Fatalf("the Agent rendered another token than the shared one")
	}
	// Watch for a lifetime and a quarter: a new token must appear before the
	// first one expires, and whatever the file holds must be accepted.
	var second string
	secondAt := time.Time{}
	until := written.Add(tokenTTL + tokenTTL/4)
	for time.Now().Before(until) {
		s, err := readRendered()
		if err != nil {
			t.Fatal(err)
		}
		if s != first && second == "" {
			second, secondAt = s, time.Now()
		}
		if status, _ := whoami(t, zs, s); status != 200 {
			if again, err := readRendered(); err != nil || again == s {
				t.Fatalf("the Agent renders a token Zoho no longer accepts (HTTP %d)", status)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if second == "" {
		t.Fatalf("the Agent still renders the first token %s after the account was written", tokenTTL+tokenTTL/4)
	}
	if !secondAt.Before(firstExpiry) {
		t.Fatalf("the new token was rendered %s after the first token expired", secondAt.Sub(firstExpiry).Round(time.Millisecond))
	}
	a.expectAccepted(t, second)

	// Vault holds no lease for any of it.
	list, err := c.Logical().List("sys/leases/lookup/" + mountPath + "/static-creds/" + a.name + "/")
	if err != nil {
		t.Fatal(err)
	}
	if list != nil && len(stringList(list.Data["keys"])) > 0 {
		t.Fatalf("Vault holds leases under static-creds/: %v", list.Data["keys"])
	}
	got := a.counters()
	if got.Exchanges != 1 || got.Refreshes < 1 || got.Refreshes > 2 || got.RevokedAccess != 0 {
		t.Fatalf("simulator: %+v; want 1 exchange, 1 or 2 refreshes and no access token revoked", got)
	}
	t.Logf("new token rendered %s before the first one expired (token life %s); %d refreshes", firstExpiry.Sub(secondAt).Round(time.Millisecond), tokenTTL, got.Refreshes)
}
