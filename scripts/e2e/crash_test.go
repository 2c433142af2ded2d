package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// leaseCount lists the leases Vault holds under zoho/creds/<name>.
func leaseCount(t *testing.T, c *api.Client, name string) int {
	t.Helper()
	s, err := c.Logical().List("sys/leases/lookup/" + mountPath + "/creds/" + name + "/")
	if err != nil {
		t.Fatalf("listing leases: %v", err)
	}
	if s == nil {
		return 0
	}
	return len(stringList(s.Data["keys"]))
}

// TestCrashMidRefreshAndMidExchange kills a file-storage Vault with SIGKILL
// while the plugin waits on Zoho, restarts and unseals it, and checks that
// no refresh token is lost, the request was counted against Zoho's budget,
// no lease is orphaned and nothing half-written remains.
func TestCrashMidRefreshAndMidExchange(t *testing.T) {
	t.Parallel()
	zs := zohosim.New(zohosim.Config{})
	if _, err := zs.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zs.Close() })

	pv, v, err := newPersistentVault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.stop() })
	v.dumpLogOnFailure(t, "crash Vault")
	if err := v.enablePlugin(); err != nil {
		t.Fatal(err)
	}
	c := v.root()

	// Mid-refresh: revoke the only lease so the next read must refresh, make
	// Zoho slow, and kill Vault while the refresh is on the wire.
	a := newAccount(t, zs, "midrefresh")
	a.configure(t, c)
	rts := zs.RefreshTokens(a.client.ID)
	if len(rts) != 1 {
		t.Fatalf("want one refresh token at Zoho, got %d", len(rts))
	}
	first := readCreds(t, c, a)
	if err := c.Sys().RevokeWithOptions(&api.RevokeOptions{LeaseID: first.leaseID, Sync: true}); err != nil {
		t.Fatal(err)
	}
	zs.AddFault(zohosim.Fault{Endpoint: "token", ClientID: a.client.ID, Kind: zohosim.FaultLatency, Latency: time.Minute, Times: 1})
	sent := a.counters().TokenRequests
	go func() { _, _ = c.Logical().Read(mountPath + "/creds/" + a.name) }()
	eventually(t, 30*time.Second, func() error {
		if a.counters().TokenRequests == sent {
			return fmt.Errorf("refresh not sent yet")
		}
		return nil
	})

	// Mid-exchange on a second account.
	b := newAccount(t, zs, "midexchange")
	zs.AddFault(zohosim.Fault{Endpoint: "token", ClientID: b.client.ID, GrantType: "authorization_code", Kind: zohosim.FaultLatency, Latency: time.Minute, Times: 1})
	go func() { _, _ = c.Logical().Write(mountPath+"/config/"+b.name, b.configData(t)) }()
	eventually(t, 30*time.Second, func() error {
		if b.counters().TokenRequests == 0 {
			return fmt.Errorf("exchange not sent yet")
		}
		return nil
	})

	v.stop() // SIGKILL to Vault and its plugin processes
	v2, err := pv.start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v2.stop() })
	if err := pv.unseal(v2); err != nil {
		t.Fatal(err)
	}
	c = v2.root()

	// The refresh token survived and is the one Zoho knows; the request on the
	// wire was counted against Zoho's budget before it was sent.
	cfg, err := c.Logical().Read(mountPath + "/config/" + a.name)
	if err != nil || cfg == nil || cfg.Data["has_refresh_token"] != true {
		t.Fatalf("config after the crash: %v %v", cfg, err)
	}
	if got := fmt.Sprint(cfg.Data["rate_budget_remaining"]); got != "8" {
		t.Fatalf("rate budget after exchange + interrupted refresh = %s, want 8", got)
	}
	if !zs.RefreshTokenValid(rts[0]) {
		t.Fatal("the refresh token died")
	}
	if n := leaseCount(t, c, a.name); n != 0 {
		t.Fatalf("%d orphaned leases", n)
	}
	after := readCreds(t, c, a)
	a.expectAccepted(t, after.accessToken)
	if n := leaseCount(t, c, a.name); n != 1 {
		t.Fatalf("want exactly the new lease, got %d", n)
	}
	if got := zs.RefreshTokens(a.client.ID); len(got) != 1 || got[0] != rts[0] {
		t.Fatal("refresh tokens at Zoho changed")
	}

	// The interrupted exchange left nothing behind; a new code works.
	if s, err := c.Logical().Read(mountPath + "/config/" + b.name); err != nil || s != nil {
		t.Fatalf("half-written account after a crash mid-exchange: %v %v", s, err)
	}
	b.configure(t, c)
	cb := readCreds(t, c, b)
	b.expectAccepted(t, cb.accessToken)
}
