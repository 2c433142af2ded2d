package backend

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingSystemView counts the questions the plugin sends back to Vault
// about its replication role (each is a gRPC call for an external plugin).
type countingSystemView struct {
	*logical.StaticSystemView
	calls atomic.Int64
}

func (s *countingSystemView) ReplicationState() consts.ReplicationState {
	s.calls.Add(1)
	return s.StaticSystemView.ReplicationState()
}

func (s *countingSystemView) LocalMount() bool {
	s.calls.Add(1)
	return s.StaticSystemView.LocalMount()
}

func backendWithSystem(t *testing.T, sys logical.SystemView) *Backend {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.System = sys
	conf.StorageView = &logical.InmemStorage{}
	lb, err := FactoryWithOptions(Options{})(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	b := lb.(*Backend)
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	return b
}

// The creds/ reads are forwarded from a performance standby, but asking Vault
// whether this node is one costs a call back to Vault: a thousand reads ask
// once (the answer is kept for a second), not twice per read as the
// framework would.
func TestCredsReadsAskVaultAboutForwardingOnce(t *testing.T) {
	for _, path := range []string{"creds/x", "static-creds/x"} {
		sys := &countingSystemView{StaticSystemView: logical.TestSystemView()}
		b := backendWithSystem(t, sys)
		for i := 0; i < 1000; i++ {
			_, _ = b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: path, Storage: &logical.InmemStorage{}})
		}
		if n := sys.calls.Load(); n < 2 || n > 4 {
			t.Errorf("%s: 1000 reads asked Vault %d times about replication, want its two questions once (or twice, if a second passed)", path, n)
		}

		standby := &countingSystemView{StaticSystemView: logical.TestSystemView()}
		standby.ReplicationStateVal = consts.ReplicationPerformanceStandby
		b = backendWithSystem(t, standby)
		if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: path, Storage: &logical.InmemStorage{}}); !errors.Is(err, logical.ErrReadOnly) {
			t.Errorf("%s on a performance standby: %v, want ErrReadOnly (forwarded to the active node)", path, err)
		}
	}
}
