package backend

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// One rule for statuses on every path: what an operator must fix is 400 (an
// action on an unknown account, Zoho rejected the client, the secret, the
// code), reading an absent account is 404 like any absent object, Zoho out of
// reach is 502.
func TestStatusCodesFollowOneRule(t *testing.T) {
	t.Run("unknown account", func(t *testing.T) {
		e := newEnv(t)
		for _, tc := range []struct {
			op   logical.Operation
			path string
		}{
			{logical.ReadOperation, "creds/nope"},
			{logical.UpdateOperation, "revoke/nope"},
			{logical.ReadOperation, "auth-url/nope"},
		} {
			if msg, status := e.fails(tc.op, tc.path, nil); status != http.StatusBadRequest || !strings.Contains(msg, "write config/nope first") {
				t.Errorf("%s %s: %d %q, want 400 saying what to write", tc.op, tc.path, status, msg)
			}
		}
		for _, path := range []string{"status/nope", "config/nope"} {
			if resp, err := e.request(logical.ReadOperation, path, nil); err != nil || resp != nil {
				t.Errorf("read %s: %v %v, want no response (Vault answers 404)", path, resp, err)
			}
		}
	})
	for _, tc := range []struct {
		name   string
		fault  zohosim.Fault
		status int
	}{
		{"wrong client secret", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "invalid_client_secret"}, http.StatusBadRequest},
		{"unknown client", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "invalid_client"}, http.StatusBadRequest},
		{"Zoho unreachable", zohosim.Fault{Kind: zohosim.FaultReset}, http.StatusBadGateway},
		{"Zoho failing", zohosim.Fault{Kind: zohosim.FaultStatus, Status: 503}, http.StatusBadGateway},
		{"organisation missing", zohosim.Fault{Kind: zohosim.FaultError, ErrorCode: "missing_org_info"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.account("acct", nil)
			f := tc.fault
			f.Endpoint, f.Times = "token", 1
			// A code exchange (config write) ...
			e.sim.AddFault(f)
			if _, status := e.fails(logical.UpdateOperation, "config/acct", map[string]interface{}{"grant_code": e.code(c)}); status != tc.status {
				t.Errorf("code exchange: %d, want %d", status, tc.status)
			}
			// ... and a refresh (creds read of an expired token) answer alike.
			e.clock.Advance(2 * time.Hour)
			e.sim.AddFault(f)
			if _, status := e.fails(logical.ReadOperation, "creds/acct", nil); status != tc.status {
				t.Errorf("refresh: %d, want %d", status, tc.status)
			}
			// A client_credentials account: a verified write (a new secret)
			// and a read of an expired token answer alike too.
			cc := e.ccAccount("org", nil)
			cc = rotate(e, cc)
			e.sim.AddFault(f)
			if _, status := e.fails(logical.UpdateOperation, "config/org", map[string]interface{}{"client_secret": cc.Secret}); status != tc.status {
				t.Errorf("client_credentials verification: %d, want %d", status, tc.status)
			}
			e.must(logical.UpdateOperation, "config/org", map[string]interface{}{"client_secret": cc.Secret})
			e.clock.Advance(2 * time.Hour)
			e.sim.AddFault(f)
			if _, status := e.fails(logical.ReadOperation, "creds/org", nil); status != tc.status {
				t.Errorf("client_credentials: %d, want %d", status, tc.status)
			}
		})
	}
}
