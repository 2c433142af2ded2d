package e2e

import (
	"testing"
	"time"
)

// TestPersistenceAcrossRestart stops a file-storage Vault and starts it again
// on the same storage: the account and its cached access token survive, and
// no token is spent at Zoho for it.
func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pv, v, err := newPersistentVault(dir)
	if err != nil {
		t.Fatalf("starting a file-storage Vault: %v", err)
	}
	t.Cleanup(func() { v.Kill() })
	v.dumpLogOnFailure(t, "file-storage Vault")

	if err := v.enablePlugin(); err != nil {
		t.Fatal(err)
	}
	a := newAccount(t, sim, "persist")
	a.configure(t, v.root())
	before := readCreds(t, v.root(), a)
	a.expectAccepted(t, before.accessToken)
	a.expectCounters(t, 1, 0)
	cfgBefore, err := v.root().Logical().Read(mountPath + "/config/" + a.name)
	if err != nil || cfgBefore == nil {
		t.Fatalf("config read: %v %v", cfgBefore, err)
	}
	counters := a.counters()

	// Stop with SIGTERM and wait for a clean exit.
	if err := v.Terminate(60 * time.Second); err != nil {
		t.Fatalf("stopping Vault: %v", err)
	}

	// Start again on the same storage; it comes up sealed.
	v2, err := pv.start()
	if err != nil {
		t.Fatalf("restarting Vault: %v", err)
	}
	t.Cleanup(func() { v2.Kill() })
	if st, err := v2.Client("").Sys().SealStatus(); err != nil || !st.Sealed || !st.Initialized {
		t.Fatalf("restarted Vault: seal status %+v %v; want initialized and sealed", st, err)
	}
	if err := pv.unseal(v2); err != nil {
		t.Fatal(err)
	}
	c := v2.root()

	// The mount, the catalog entry and the account are all there.
	mo, err := c.Sys().GetMount(mountPath)
	if err != nil || mo.RunningVersion != pluginVersion {
		t.Fatalf("mount after restart: %+v %v", mo, err)
	}
	cfg, err := c.Logical().Read(mountPath + "/config/" + a.name)
	if err != nil || cfg == nil {
		t.Fatalf("config/%s after restart: %v %v", a.name, cfg, err)
	}
	for _, k := range []string{"client_id", "data_center", "accounts_url", "api_domain", "has_refresh_token", "token_expires_at"} {
		if cfg.Data[k] != cfgBefore.Data[k] {
			t.Errorf("config %s after restart = %v; before %v", k, cfg.Data[k], cfgBefore.Data[k])
		}
	}
	list, err := c.Logical().List(mountPath + "/config")
	if err != nil || list == nil || !contains(stringList(list.Data["keys"]), a.name) {
		t.Fatalf("list after restart: %v %v", list, err)
	}

	// The same access token, without a call to Zoho.
	after := readCreds(t, c, a)
	if after.accessToken != before.accessToken {
		t.Fatalf("creds after restart returned a different token")
	}
	if !after.expiresAt.Equal(before.expiresAt) {
		t.Fatalf("expires_at changed across the restart: %s -> %s", before.expiresAt, after.expiresAt)
	}
	a.expectAccepted(t, after.accessToken)
	if got := a.counters(); got.TokenRequests != counters.TokenRequests || got.Exchanges != counters.Exchanges ||
		got.Refreshes != counters.Refreshes || got.Revokes != counters.Revokes {
		t.Fatalf("the restart cost calls to Zoho: %+v (before %+v)", got, counters)
	}

	// Leases issued before the restart survive it too.
	if _, err := c.Sys().Lookup(before.leaseID); err != nil {
		t.Fatalf("lease %s after restart: %v", before.leaseID, err)
	}
	// Revoking the pre-restart lease keeps the token: the new lease holds it.
	if err := c.Sys().Revoke(before.leaseID); err != nil {
		t.Fatalf("revoking the pre-restart lease: %v", err)
	}
	eventually(t, 30*time.Second, func() error { return leaseGone(c, before.leaseID) })
	a.expectAccepted(t, after.accessToken)
	if got := a.counters(); got.RevokedAccess != counters.RevokedAccess {
		t.Fatalf("revoking one of two leases revoked the token: %+v", got)
	}
}
