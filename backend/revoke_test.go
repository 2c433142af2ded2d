package backend

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRevokePathKeepsClient(t *testing.T) {
	e := newEnv(t)
	c := e.account("rev", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "rev")
	tok := accessToken(e.creds("rev", nil))
	e.must(logical.UpdateOperation, "revoke/rev", nil)
	if e.sim.RefreshTokenValid(cfg.RefreshToken) || e.sim.AccessTokenValid(tok) {
		t.Fatal("tokens alive after revoke")
	}
	st := e.must(logical.ReadOperation, "config/rev", nil)
	if st.Data["has_refresh_token"] != false || st.Data["client_id"] != c.ID || st.Data["token_expires_at"] != "" {
		t.Fatalf("status after revoke: %v", st.Data)
	}
	msg, status := e.fails(logical.ReadOperation, "creds/rev", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "grant_code") {
		t.Fatalf("got %d %q", status, msg)
	}
	// Idempotent: no token, no call.
	n := e.sim.ClientCounters(c.ID).Revokes
	e.must(logical.UpdateOperation, "revoke/rev", nil)
	if e.sim.ClientCounters(c.ID).Revokes != n {
		t.Fatal("second revoke called Zoho")
	}
	// A new grant code brings it back.
	e.must(logical.UpdateOperation, "config/rev", map[string]interface{}{"grant_code": e.code(c)})
	e.creds("rev", nil)
	if _, status := e.fails(logical.UpdateOperation, "revoke/none", nil); status != http.StatusBadRequest {
		t.Fatalf("revoke of a missing account: %d", status)
	}
}
