package backend

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// Every path whose handler writes storage or hands out a lease is forwarded
// from performance standbys and secondaries to the active node.
func TestWritingPathsAreForwarded(t *testing.T) {
	e := newEnv(t)
	want := map[string][]logical.Operation{
		"creds/x":    {logical.ReadOperation},
		"auth-url/x": {logical.ReadOperation},
		"callback":   {logical.ReadOperation},
		"revoke/x":   {logical.UpdateOperation},
		"config/x":   {logical.CreateOperation, logical.UpdateOperation, logical.DeleteOperation},
	}
	for path, ops := range want {
		p := e.b.Route(path)
		if p == nil {
			t.Fatalf("no route for %s", path)
		}
		for _, op := range ops {
			h, ok := p.Operations[op]
			if !ok {
				t.Fatalf("%s has no %s operation", path, op)
			}
			props := h.Properties()
			if !props.ForwardPerformanceStandby || !props.ForwardPerformanceSecondary {
				t.Errorf("%s %s is not forwarded to the active node", op, path)
			}
		}
	}
}

// The backend answers values the framework cannot convert in its own words.
func TestConversionErrorsInTheEnginesWords(t *testing.T) {
	e := newEnv(t)
	e.account("conv", nil)
	msg, status := e.fails(logical.UpdateOperation, "config/conv", map[string]interface{}{"live_token_cap": "abc"})
	if status != http.StatusBadRequest || !strings.Contains(msg, `live_token_cap: "abc" is not a whole number`) {
		t.Fatalf("got %d %q", status, msg)
	}
	msg, status = e.fails(logical.ReadOperation, "metrics", map[string]interface{}{"per_account": "yes"})
	if status != http.StatusBadRequest || !strings.Contains(msg, `per_account: "yes" is not true or false`) {
		t.Fatalf("got %d %q", status, msg)
	}
}
