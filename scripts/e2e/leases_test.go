package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLeases checks that a shared access token is revoked at Zoho exactly
// when its last lease goes, through the real CLI's lease commands.
func TestLeases(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	a := newAccount(t, sim, "leases")
	a.configure(t, c)

	// Two readers share one token under two leases, neither outliving it.
	one := readCreds(t, c, a)
	two := readCreds(t, c, a)
	if one.accessToken != two.accessToken {
		t.Fatalf("the two reads returned different tokens")
	}
	if one.leaseID == two.leaseID {
		t.Fatalf("the two reads share the lease %s", one.leaseID)
	}
	a.expectAccepted(t, one.accessToken)
	a.expectCounters(t, 1, 0)

	// The lease Vault tracks has the TTL the read reported, within the
	// token's life.
	look, err := c.Sys().Lookup(one.leaseID)
	if err != nil {
		t.Fatalf("lease lookup %s: %v", one.leaseID, err)
	}
	n, _ := look.Data["ttl"].(json.Number)
	ttlSecs, err := n.Int64()
	if err != nil || ttlSecs <= 0 || time.Duration(ttlSecs)*time.Second > time.Until(one.expiresAt)+time.Second {
		t.Fatalf("lease %s ttl %v (token expires %s)", one.leaseID, look.Data["ttl"], one.expiresAt.Format(time.RFC3339))
	}
	if look.Data["renewable"] != true {
		t.Fatalf("lease %s renewable = %v", one.leaseID, look.Data["renewable"])
	}

	// Revoke the first lease: the other still holds the token.
	base := a.counters()
	// Without -sync the CLI only queues the revocation.
	r := v.mustCLI(t, "lease", "revoke", one.leaseID)
	if !strings.Contains(r.stdout, "revocation operations queued successfully") {
		t.Fatalf("lease revoke: %s", r)
	}
	eventually(t, 30*time.Second, func() error { return leaseGone(c, one.leaseID) })
	if got := a.counters(); got.RevokedAccess != base.RevokedAccess || got.Revokes != base.Revokes {
		t.Fatalf("revoking one of two leases revoked the token at Zoho: %+v (before %+v)", got, base)
	}
	a.expectAccepted(t, one.accessToken)
	if err := leaseGone(c, two.leaseID); err == nil {
		t.Fatalf("the second lease went with the first")
	}

	// Revoke the last lease: the token is revoked at Zoho.
	v.mustCLI(t, "lease", "revoke", two.leaseID)
	eventually(t, 30*time.Second, func() error {
		if got := a.counters().RevokedAccess; got != base.RevokedAccess+1 {
			return fmt.Errorf("simulator revoked %d access tokens; want 1", got-base.RevokedAccess)
		}
		return tokenDead(t, sim, one.accessToken)
	})
	eventually(t, 30*time.Second, func() error { return leaseGone(c, two.leaseID) })

	// The next read mints a new token (one refresh), shared again.
	three := readCreds(t, c, a)
	four := readCreds(t, c, a)
	if three.accessToken == one.accessToken {
		t.Fatalf("read after the last lease was revoked returned the revoked token")
	}
	if four.accessToken != three.accessToken {
		t.Fatalf("reads after the refresh returned different tokens")
	}
	a.expectAccepted(t, three.accessToken)
	a.expectCounters(t, 1, 1)

	// Revoking every lease of the account by prefix revokes the token.
	r = v.mustCLI(t, "lease", "revoke", "-prefix", "-sync", mountPath+"/creds/"+a.name+"/")
	if !strings.Contains(r.stdout, "Success! Revoked any leases with prefix: "+mountPath+"/creds/"+a.name) {
		t.Fatalf("prefix revoke: %s", r)
	}
	for _, id := range []string{three.leaseID, four.leaseID} {
		if err := leaseGone(c, id); err != nil {
			t.Fatalf("after a synchronous prefix revoke: %v", err)
		}
	}
	if err := tokenDead(t, sim, three.accessToken); err != nil {
		t.Fatalf("after a synchronous prefix revoke: %v", err)
	}
	if got := a.counters(); got.RevokedAccess != base.RevokedAccess+2 || got.RevokeInvalid != 0 {
		t.Fatalf("after the prefix revoke: %+v; want 2 access tokens revoked in all, no invalid revocation", got)
	}
	a.expectCounters(t, 1, 1)
	// The refresh token was never touched.
	if got := a.counters(); got.RevokedRefresh != 0 {
		t.Fatalf("lease revocation revoked the refresh token: %+v", got)
	}
}
