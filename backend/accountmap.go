// The maps of accounts by name: loaded accounts and accounts in use.

package backend

import (
	"hash/maphash"
	"sync"
)

// accountShards is how many independently locked parts an accountMap has, so
// that readers of different accounts rarely meet on one lock.
const accountShards = 64

// accountMap maps account names to accounts. It is a plain map per shard under
// a read-write lock: a sync.Map entry costs several times a map entry, which
// adds up over 100 000 accounts, and the hot path only takes a read lock.
type accountMap struct {
	seed   maphash.Seed
	shards [accountShards]accountShard
}

type accountShard struct {
	mu sync.RWMutex
	m  map[string]*account
}

func newAccountMap() *accountMap {
	return &accountMap{seed: maphash.MakeSeed()}
}

func (m *accountMap) shard(name string) *accountShard {
	return &m.shards[maphash.String(m.seed, name)%accountShards]
}

// Load returns the account stored under name, or nil.
func (m *accountMap) Load(name string) *account {
	sh := m.shard(name)
	sh.mu.RLock()
	a := sh.m[name]
	sh.mu.RUnlock()
	return a
}

// Store sets name's account.
func (m *accountMap) Store(name string, a *account) {
	sh := m.shard(name)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = map[string]*account{}
	}
	sh.m[name] = a
	sh.mu.Unlock()
}

// Delete removes name.
func (m *accountMap) Delete(name string) {
	sh := m.shard(name)
	sh.mu.Lock()
	delete(sh.m, name)
	sh.mu.Unlock()
}

// CompareAndDelete removes name if it maps to a.
func (m *accountMap) CompareAndDelete(name string, a *account) {
	sh := m.shard(name)
	sh.mu.Lock()
	if sh.m[name] == a {
		delete(sh.m, name)
	}
	sh.mu.Unlock()
}

// Len is the number of accounts in the map.
func (m *accountMap) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Range calls f for each account until f returns false. It copies one shard
// at a time and calls f without holding a lock, so f may change the map;
// accounts stored or deleted meanwhile may or may not be seen.
func (m *accountMap) Range(f func(a *account) bool) {
	var batch []*account
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		batch = batch[:0]
		for _, a := range sh.m {
			batch = append(batch, a)
		}
		sh.mu.RUnlock()
		for _, a := range batch {
			if !f(a) {
				return
			}
		}
	}
}
