package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// vaultLeaseEnd is when Vault ends a lease the engine answered with ttl and
// maxTTL at now, as its lease registration computes it
// (framework.CalculateTTL: a TTL of 0 becomes the mount's default).
func vaultLeaseEnd(t *testing.T, sys logical.SystemView, now time.Time, ttl, maxTTL time.Duration) time.Time {
	t.Helper()
	if ttl <= 0 {
		ttl = sys.DefaultLeaseTTL()
	}
	most := sys.MaxLeaseTTL()
	if maxTTL > 0 && maxTTL < most {
		most = maxTTL
	}
	return now.Add(min(ttl, most))
}

func TestLeaseNearExpiryWhileZohoIsDownNeverOutlivesItsToken(t *testing.T) {
	e := newEnv(t)
	e.account("edge", nil)
	first := e.creds("edge", nil)
	exp, _ := time.Parse(time.RFC3339, first.Data["expires_at"].(string))
	// 61.5 s left: about 1.5 s of leasable life after the 60 s margin.
	e.clock.Advance(exp.Sub(e.clock.Now()) - 61500*time.Millisecond)
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503})
	for i := 0; i < 8; i++ {
		resp, err := e.request(logical.ReadOperation, "creds/edge", nil)
		if err != nil || resp == nil || resp.IsError() {
			continue // refusing is allowed; an overlong lease is not
		}
		now := e.clock.Now()
		end := vaultLeaseEnd(t, e.b.System(), now, resp.Secret.TTL, resp.Secret.MaxTTL)
		if resp.Secret.TTL < time.Second || end.After(exp) {
			t.Fatalf("read %d: lease TTL %s / max %s: Vault ends it at %s, its token expires at %s", i, resp.Secret.TTL, resp.Secret.MaxTTL, end, exp)
		}
	}
}
