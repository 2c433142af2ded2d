// The system view the engine gives the framework: Vault's, with its answers
// about this node's replication role kept for a second.

package backend

import (
	"crypto/rand"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// replicationCache is Vault's system view with ReplicationState and
// LocalMount answered from a copy at most replicationStateTTL old. The
// framework asks ReplicationState before every operation (and LocalMount
// before every operation with forwarding flags, such as creds/ reads) to
// decide whether to forward it to the active node; for an external plugin
// each question is a gRPC call back to Vault, which cost a creds/ read two
// round trips and Vault and the plugin about a fifth of their CPU per read.
// A node's role changes only with a seal, a step-down, a promotion or a
// replication change, and Vault sets its mounts up anew for each of those,
// with a new cache.
type replicationCache struct {
	logical.SystemView
	last atomic.Pointer[replicationAnswer]
}

// replicationStateTTL is how long Vault's answers are kept.
const replicationStateTTL = time.Second

type replicationAnswer struct {
	at         time.Time
	state      consts.ReplicationState
	localMount bool
}

func newReplicationCache(sys logical.SystemView) *replicationCache {
	return &replicationCache{SystemView: sys}
}

func (c *replicationCache) answer() *replicationAnswer {
	now := time.Now()
	if a := c.last.Load(); a != nil && now.Sub(a.at) < replicationStateTTL {
		return a
	}
	a := &replicationAnswer{at: now, state: c.SystemView.ReplicationState(), localMount: c.SystemView.LocalMount()}
	c.last.Store(a)
	return a
}

// ReplicationState implements logical.SystemView from the cache.
func (c *replicationCache) ReplicationState() consts.ReplicationState { return c.answer().state }

// LocalMount implements logical.SystemView from the cache.
func (c *replicationCache) LocalMount() bool { return c.answer().localMount }

// GetRandom keeps the framework's entropy source (it looks for it on the
// system view, entropy.Sourcer): Vault's when it offers one.
func (c *replicationCache) GetRandom(n int) ([]byte, error) {
	if s, ok := c.SystemView.(interface{ GetRandom(int) ([]byte, error) }); ok {
		return s.GetRandom(n)
	}
	out := make([]byte, n)
	_, err := rand.Read(out)
	return out, err
}
