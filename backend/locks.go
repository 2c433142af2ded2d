// Per-key locks: one per account (and per pending consent), never shared.

package backend

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// keyedLocks gives every key (an account name, a pending consent) a lock of
// its own, so that one account's slow Zoho call never stalls another. A lock
// exists while someone holds or waits for it; mu guards only the map and is
// never held while waiting or working.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	sem  *semaphore.Weighted
	refs int // holders and waiters
}

// lock waits for key's lock until ctx ends. On success the caller must call
// the returned unlock exactly once.
func (l *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*keyedLock)
	}
	k := l.m[key]
	if k == nil {
		k = &keyedLock{sem: semaphore.NewWeighted(1)}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()

	if err := k.sem.Acquire(ctx, 1); err != nil {
		l.release(key, k)
		return nil, err
	}
	return func() {
		k.sem.Release(1)
		l.release(key, k)
	}, nil
}

func (l *keyedLocks) release(key string, k *keyedLock) {
	l.mu.Lock()
	k.refs--
	if k.refs == 0 {
		delete(l.m, key)
	}
	l.mu.Unlock()
}

// size is the number of keys locked or waited for (for tests).
func (l *keyedLocks) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
