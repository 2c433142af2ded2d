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
	t.Cleanup(func() { v.Kill() })
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
	// Zoho mints the token; its answer never arrives.
	zs.AddFault(zohosim.Fault{Endpoint: "token", ClientID: a.client.ID, Kind: zohosim.FaultLostAnswer, Latency: time.Minute, Times: 1})
	sent := a.counters().TokenRequests
	go func() { _, _ = c.Logical().Read(mountPath + "/creds/" + a.name) }()
	eventually(t, 30*time.Second, func() error {
		if a.counters().TokenRequests == sent {
			return fmt.Errorf("refresh not sent yet")
		}
		return nil
	})

	// A new grant code for an account that has one, cut off mid-exchange:
	// Zoho mints a refresh token Vault never learns (the simulator answers
	// after Vault is dead).
	g := newAccount(t, zs, "midgrant")
	g.configure(t, c)
	zs.AddFault(zohosim.Fault{Endpoint: "token", ClientID: g.client.ID, GrantType: "authorization_code", Kind: zohosim.FaultLostAnswer, Latency: time.Minute, Times: 1})
	go func() {
		_, _ = c.Logical().Write(mountPath+"/config/"+g.name, map[string]interface{}{"grant_code": g.grantCode(t)})
	}()
	eventually(t, 30*time.Second, func() error {
		if g.counters().TokenRequests < 2 {
			return fmt.Errorf("exchange not sent yet")
		}
		return nil
	})

	// Mid-exchange on a new account.
	b := newAccount(t, zs, "midexchange")
	zs.AddFault(zohosim.Fault{Endpoint: "token", ClientID: b.client.ID, GrantType: "authorization_code", Kind: zohosim.FaultLatency, Latency: time.Minute, Times: 1})
	go func() { _, _ = c.Logical().Write(mountPath+"/config/"+b.name, b.configData(t)) }()
	eventually(t, 30*time.Second, func() error {
		if b.counters().TokenRequests == 0 {
			return fmt.Errorf("exchange not sent yet")
		}
		return nil
	})

	v.Kill() // SIGKILL to Vault and its plugin processes
	v2, err := pv.start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v2.Kill() })
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
	// The token the interrupted refresh may have minted counts as live, so
	// that no later refresh evicts a token a lease holds.
	if got := fmt.Sprint(cfg.Data["live_tokens"]); got != "1" || zs.LiveAccessTokens(rts[0]) != 1 {
		t.Fatalf("live tokens after a refresh lost in a crash = %s, Zoho holds %d; want 1 and 1 (the one Zoho minted)", got, zs.LiveAccessTokens(rts[0]))
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

	// The cut-off grant: the account keeps its refresh token, and once Vault's
	// rollback (every minute, for records older than 30 s) has settled the
	// exchange record, its status says a refresh token may have been lost.
	if n := len(zs.RefreshTokens(g.client.ID)); n != 2 {
		t.Fatalf("%d refresh tokens at Zoho, want the stored one and the lost one", n)
	}
	cg := readCreds(t, c, g)
	g.expectAccepted(t, cg.accessToken)
	eventually(t, 150*time.Second, func() error {
		s, err := c.Logical().Read(mountPath + "/status/" + g.name)
		if err != nil || s == nil {
			return fmt.Errorf("status: %v", err)
		}
		if at, _ := s.Data["interrupted_exchange_at"].(string); at == "" {
			return fmt.Errorf("no interrupted exchange reported yet")
		}
		return nil
	})
}
