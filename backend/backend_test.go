package backend

import (
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
