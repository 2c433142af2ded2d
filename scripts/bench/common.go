// What every part of the harness uses: engine accounts on a simulator,
// lease listing and revocation, sizes of answers and storage entries, and
// small helpers.

package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

var benchScopes = []string{"ZohoCRM.modules.ALL", "ZohoCRM.users.READ"}

// account is one engine account backed by its own simulator client, so that
// the simulator's per-client counters are the account's.
type account struct {
	name string
	sim  *zohosim.Server
	id   string
}

// createAccount registers a simulator client, mints a Self Client code and
// writes config/<name>, which exchanges the code.
func (b *bench) createAccount(ctx context.Context, c *api.Client, sim *zohosim.Server, name string) (account, error) {
	cl := sim.RegisterClient(zohosim.Client{DC: "us"})
	code, err := sim.SelfClientCode(cl.ID, name+"@example.com", benchScopes, 0)
	if err != nil {
		return account{}, err
	}
	if _, err := c.Logical().WriteWithContext(ctx, "zoho/config/"+name, map[string]interface{}{
		"client_id":     cl.ID,
		"client_secret": cl.Secret,
		"accounts_url":  sim.AccountsURL("us"),
		"scopes":        strings.Join(benchScopes, ","),
		"grant_code":    code,
	}); err != nil {
		return account{}, fmt.Errorf("writing config/%s: %w", name, err)
	}
	return account{name: name, sim: sim, id: cl.ID}, nil
}

// revokePrefix revokes every lease under prefix, synchronously, and times it.
func (b *bench) revokePrefix(ctx context.Context, prefix, what string, leases int64) revokeResult {
	return revokePrefixOn(ctx, b.admin, prefix, what, leases)
}

// revokePrefixOn is revokePrefix on the Vault of client c.
func revokePrefixOn(ctx context.Context, c *api.Client, prefix, what string, leases int64) revokeResult {
	t := time.Now()
	_, err := c.Logical().WriteWithContext(ctx, "sys/leases/revoke-prefix/"+prefix, map[string]interface{}{"sync": true})
	r := revokeResult{Prefix: prefix, What: what, Leases: leases, Seconds: time.Since(t).Seconds()}
	if err != nil {
		r.Err = err.Error()
	}
	logf("revoke-prefix %s (%s): %.1f s %s", prefix, what, r.Seconds, r.Err)
	return r
}

// listLeases lists the lease IDs (last segment) under prefix.
func listLeases(ctx context.Context, c *api.Client, prefix string) ([]string, error) {
	sec, err := c.Logical().ListWithContext(ctx, "sys/leases/lookup/"+prefix)
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	raw, _ := sec.Data["keys"].([]interface{})
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		keys = append(keys, fmt.Sprint(k))
	}
	return keys, nil
}

// rawEntrySize is the size of a storage entry read through sys/raw.
func rawEntrySize(ctx context.Context, c *api.Client, key string) (int, error) {
	sec, err := c.Logical().ReadWithContext(ctx, "sys/raw/"+key)
	if err != nil {
		return 0, err
	}
	if sec == nil || sec.Data == nil {
		return 0, fmt.Errorf("sys/raw/%s: no entry", key)
	}
	v, _ := sec.Data["value"].(string)
	return len(v), nil
}

// answerBytes is the size of the HTTP body of one read of path.
func answerBytes(ctx context.Context, c *api.Client, path string) int {
	resp, err := c.Logical().ReadRawWithContext(ctx, path)
	if err != nil || resp == nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return len(data)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := append([]int(nil), v...)
	sort.Ints(s)
	return s[len(s)/2]
}

func roundAll(v []time.Duration) []string {
	out := make([]string, len(v))
	for i, d := range v {
		out[i] = fmt.Sprintf("%.1fs", d.Seconds())
	}
	return out
}

// watchRefreshes records, every 20 ms until the returned stop is called, when
// the simulator counted each refresh of a's token (as time since origin);
// stop returns them.
func watchRefreshes(ctx context.Context, a account, origin time.Time) (stop func() []time.Duration) {
	var (
		mu        sync.Mutex
		refreshes []time.Duration
	)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := a.sim.ClientCounters(a.id).Refreshes
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			if n := a.sim.ClientCounters(a.id).Refreshes; n > last {
				at := time.Since(origin)
				mu.Lock()
				for ; last < n; last++ {
					refreshes = append(refreshes, at)
				}
				mu.Unlock()
			}
		}
	}()
	return func() []time.Duration {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return refreshes
	}
}
