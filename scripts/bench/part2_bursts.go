// Part 2: token calls per account per token lifetime under bursts of
// concurrent readers released at each expiry.

package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

type burstRow struct {
	Account    string
	Burst      int
	Calls      int64 // token-endpoint requests since the previous burst (or creation)
	CallsAhead int64 // of which before this burst began (refreshes ahead of expiry)
	Revokes    int64 // revocations at Zoho in the same interval
	Tokens     int   // distinct access tokens the burst's readers got
	Errors     int
	Readers    int
	LateBy     time.Duration // burst start after the token's expiry
	Wall       time.Duration
	P50, P99   time.Duration
	FirstErr   string
}

func (b *bench) partBursts(ctx context.Context) error {
	n, ttl := b.set.BurstAccounts, b.set.ShortTTL
	logf("part 2: %d accounts, token lifetime %s, %d readers at each expiry, %d lifetimes", n, ttl, b.set.BurstReaders, b.set.BurstLifetimes)
	c := b.client()
	stagger := ttl / time.Duration(n)
	start := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		rows []burstRow
		errs []error
	)
	for i := 0; i < n; i++ {
		// Stagger the accounts so that their bursts do not overlap.
		if d := time.Until(start.Add(time.Duration(i) * stagger)); d > 0 {
			if err := sleepCtx(ctx, d); err != nil {
				return err
			}
		}
		a, err := b.createAccount(ctx, c, b.simShort, fmt.Sprintf("burst-%d", i))
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.burstLoop(ctx, a)
			mu.Lock()
			rows = append(rows, r...)
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Account != rows[j].Account {
			return rows[i].Account < rows[j].Account
		}
		return rows[i].Burst < rows[j].Burst
	})
	b.res.Bursts = rows
	return nil
}

func (b *bench) burstLoop(ctx context.Context, a account) ([]burstRow, error) {
	c := b.client()
	st, err := c.Logical().ReadWithContext(ctx, "zoho/status/"+a.name)
	if err != nil || st == nil {
		return nil, fmt.Errorf("status/%s: %v", a.name, err)
	}
	exp, err := time.Parse(time.RFC3339, fmt.Sprint(st.Data["token_expires_at"]))
	if err != nil {
		return nil, fmt.Errorf("status/%s token_expires_at: %w", a.name, err)
	}
	prev := a.sim.ClientCounters(a.id)
	var rows []burstRow
	for k := 1; k <= b.set.BurstLifetimes; k++ {
		// expires_at is whole seconds: the token is gone within the second after it.
		at := exp.Add(1250 * time.Millisecond)
		var pre zohosim.Counters
		row, maxExp := b.burst(ctx, a.name, b.set.BurstReaders, at, func() { pre = a.sim.ClientCounters(a.id) })
		cur := a.sim.ClientCounters(a.id)
		row.Account, row.Burst = a.name, k
		row.Calls = cur.TokenRequests - prev.TokenRequests
		row.CallsAhead = pre.TokenRequests - prev.TokenRequests
		row.Revokes = cur.Revokes - prev.Revokes
		row.LateBy = at.Sub(exp)
		prev = cur
		rows = append(rows, row)
		logf("  %s burst %d: %d readers, %d token calls (%d before the burst), %d distinct tokens, %d errors, wall %.0f ms, p99 %.0f ms",
			a.name, k, row.Readers, row.Calls, row.CallsAhead, row.Tokens, row.Errors, ms(row.Wall), ms(row.P99))
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
		if maxExp.After(exp) {
			exp = maxExp
		} else {
			exp = exp.Add(b.set.ShortTTL)
		}
	}
	return rows, nil
}

// burst starts readers concurrent reads of creds/<name> at the instant at;
// release runs just before they are let go.
func (b *bench) burst(ctx context.Context, name string, readers int, at time.Time, release func()) (burstRow, time.Time) {
	c := b.client()
	type one struct {
		token string
		exp   time.Time
		lat   time.Duration
		err   error
	}
	out := make([]one, readers)
	startCh := make(chan struct{})
	var wg sync.WaitGroup
	// Prepare the goroutines a little ahead, release them together.
	if d := time.Until(at.Add(-300 * time.Millisecond)); d > 0 {
		_ = sleepCtx(ctx, d)
	}
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startCh
			t := time.Now()
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			sec, err := c.Logical().ReadWithContext(rctx, "zoho/creds/"+name)
			cancel()
			o := one{lat: time.Since(t), err: err}
			if err == nil && sec != nil {
				o.token, _ = sec.Data["access_token"].(string)
				o.exp, _ = time.Parse(time.RFC3339, fmt.Sprint(sec.Data["expires_at"]))
			} else if err == nil {
				o.err = fmt.Errorf("empty answer")
			}
			out[i] = o
		}()
	}
	if d := time.Until(at); d > 0 {
		_ = sleepCtx(ctx, d)
	}
	release()
	t0 := time.Now()
	close(startCh)
	wg.Wait()
	row := burstRow{Readers: readers, Wall: time.Since(t0)}
	tokens := map[string]bool{}
	var lats []time.Duration
	var maxExp time.Time
	for _, o := range out {
		if o.err != nil {
			row.Errors++
			if row.FirstErr == "" {
				row.FirstErr = o.err.Error()
			}
			continue
		}
		tokens[o.token] = true
		lats = append(lats, o.lat)
		if o.exp.After(maxExp) {
			maxExp = o.exp
		}
	}
	row.Tokens = len(tokens)
	s := summarise(lats, row.Errors, 0, "")
	row.P50, row.P99 = s.P50, s.P99
	return row, maxExp
}
