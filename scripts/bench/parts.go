package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
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
	t := time.Now()
	_, err := b.admin.Logical().WriteWithContext(ctx, "sys/leases/revoke-prefix/"+prefix, map[string]interface{}{"sync": true})
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

// ---------------------------------------------------------------------------
// Part 1: cached read throughput beside KV v2 and the floor plugin.

type target struct {
	Key, Path string
	cpu       func(cpuDelta) time.Duration // the CPU of the plugin serving it
}

func (b *bench) partThroughput(ctx context.Context) error {
	logf("part 1: cached read throughput")
	c := b.client()
	if _, err := b.createAccount(ctx, c, b.simLong, "bench"); err != nil {
		return err
	}
	sec, err := c.Logical().ReadWithContext(ctx, "zoho/creds/bench")
	if err != nil || sec == nil {
		return fmt.Errorf("first creds/bench read: %v", err)
	}
	// The floor answers exactly this body; KV holds the same fields.
	if _, err := c.Logical().WriteWithContext(ctx, "floor/body", sec.Data); err != nil {
		return fmt.Errorf("floor/body: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "sys/mounts/kv", map[string]interface{}{
		"type": "kv", "options": map[string]interface{}{"version": "2"},
	}); err != nil {
		return fmt.Errorf("mounting kv v2: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// KV v2 upgrades its storage in the background after mounting.
		_, err = c.Logical().WriteWithContext(ctx, "kv/data/bench", map[string]interface{}{"data": sec.Data})
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("writing kv/data/bench: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	b.pids.vault = b.v.PID()
	b.pids.engine = waitPlugin(b.pids.vault, engineCommand, 10*time.Second)
	b.pids.floor = waitPlugin(b.pids.vault, floorCommand, 10*time.Second)
	if b.pids.engine == 0 || b.pids.floor == 0 {
		return fmt.Errorf("plugin processes not found (engine pid %d, floor pid %d)", b.pids.engine, b.pids.floor)
	}
	engineCPU := func(d cpuDelta) time.Duration { return d.engine }
	floorCPU := func(d cpuDelta) time.Duration { return d.floor }
	noPlugin := func(cpuDelta) time.Duration { return 0 }
	targets := []target{
		{"engine", "zoho/creds/bench", engineCPU},
		{"leased", "floor/leased/bench", floorCPU},
		{"const", "floor/const/bench", floorCPU},
		{"kv", "kv/data/bench", noPlugin},
	}
	diag := target{"leasedint", "floor/leasedint/bench", floorCPU}
	b.res.AnswerBytes = map[string]int{}
	for _, t := range append(targets, diag) {
		b.res.AnswerBytes[t.Key] = answerBytes(ctx, c, t.Path)
	}
	b.res.Settle, b.res.SettleWaited = waitQuiet(ctx, b.pids, 0.3, b.set.SettleMax)
	logf("  background load before measuring: %.2f cores (waited %.0f s)", b.res.Settle, b.res.SettleWaited.Seconds())

	issued := map[string]int64{"engine": 2, "leased": 1, "leasedint": 1} // the reads just made
	per := b.set.Duration / time.Duration(b.set.Rounds)
	for _, n := range b.set.Levels {
		level := targets
		if n == diagnosticClients {
			level = append(append([]target(nil), targets...), diag)
		}
		slices := map[string][]slice{}
		// Rounds alternate the order, so that drift (leases piling up, other
		// load on the machine) does not favour one target.
		rounds := b.set.Rounds
		if n == diagnosticClients {
			rounds = b.set.TargetRounds
		}
		for r := 0; r < rounds; r++ {
			order := append([]target(nil), level...)
			if r%2 == 1 {
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, t := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				sl := closedLoop(ctx, b.client, t.Path, n, b.set.Warm, per, b.pids)
				slices[t.Key] = append(slices[t.Key], sl)
				issued[t.Key] += sl.issued
			}
		}
		for _, t := range level {
			lr := merge(t.Key, n, slices[t.Key], t.cpu)
			b.res.Throughput = append(b.res.Throughput, lr)
			logf("  %-9s %2d clients: %7.0f reads/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  (µs/read: vault %.0f, plugin %.0f, harness %.0f; others %.2f cores)",
				t.Key, n, lr.Stats.OpsPerS, ms(lr.Stats.P50), ms(lr.Stats.P99), lr.Stats.Errors, lr.VaultUS, lr.PluginUS, lr.SelfUS, lr.OtherCores)
			if lr.Stats.Errors > 0 {
				logf("    first error: %s", lr.Stats.FirstErr)
			}
		}
	}
	b.res.Revocations = append(b.res.Revocations,
		b.revokePrefix(ctx, "zoho/creds/bench/", "engine leases of part 1", issued["engine"]),
		b.revokePrefix(ctx, "floor/leased/", "floor leases of part 1", issued["leased"]),
		b.revokePrefix(ctx, "floor/leasedint/", "floor leases with internal data, part 1", issued["leasedint"]))
	return nil
}

// diagnosticClients is the level at which the floor with engine-shaped lease
// internal data also runs.
const diagnosticClients = 16

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---------------------------------------------------------------------------
// Part 2: token calls per account per lifetime under bursts at expiry.

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

// ---------------------------------------------------------------------------
// Part 3: p99 across refresh boundaries ÷ steady-state p99.

type boundaryResult struct {
	Rate                   float64
	Seconds                float64
	TTL                    time.Duration
	Reads, Errors          int
	FirstErr               string
	Refreshes              int
	RefreshN, QuietN       int
	LeaseN                 int
	RefreshP50, RefreshP99 time.Duration
	QuietP50, QuietP99     time.Duration
	LeaseP50, LeaseP99     time.Duration
	AllP50, AllP99         time.Duration
	Ratio, LeaseRatio      float64
	OtherCores             float64 // other processes' load meanwhile
	Slowest                []slowSecond
	Created                time.Duration   // when the account's first token was minted (config write answered)
	RefreshesAtLeaseEnd    int             // refreshes that fell inside a lease-end window
	RefreshAt              []time.Duration // when the simulator saw each refresh
}

// slowSecond is one second of part 3 with its slowest read, placed relative
// to the nearest refresh and the nearest end of a token's leases.
type slowSecond struct {
	At, Max               time.Duration
	Reads                 int
	ToRefresh, ToLeaseEnd time.Duration // signed: negative = before it
}

// slowestSeconds bins reads by start second and returns the n seconds with
// the slowest reads.
func slowestSeconds(reads []timedRead, from time.Duration, refreshes, mints []time.Duration, leaseEndAfterMint time.Duration, n int) []slowSecond {
	bins := map[int]*slowSecond{}
	for _, r := range reads {
		if r.err || r.at < from {
			continue
		}
		k := int(r.at / time.Second)
		b := bins[k]
		if b == nil {
			b = &slowSecond{At: time.Duration(k) * time.Second}
			bins[k] = b
		}
		b.Reads++
		if r.lat > b.Max {
			b.Max = r.lat
		}
	}
	nearest := func(at time.Duration, marks []time.Duration) time.Duration {
		best := time.Duration(1<<62 - 1)
		for _, m := range marks {
			if d := at - m; absDur(d) < absDur(best) {
				best = d
			}
		}
		return best
	}
	var ends []time.Duration
	for _, m := range mints {
		ends = append(ends, m+leaseEndAfterMint)
	}
	var all []slowSecond
	for _, b := range bins {
		mid := b.At + time.Second/2
		b.ToRefresh, b.ToLeaseEnd = nearest(mid, refreshes), nearest(mid, ends)
		all = append(all, *b)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Max > all[j].Max })
	if len(all) > n {
		all = all[:n]
	}
	return all
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

const (
	refreshHalfWindow = time.Second // reads within ±1 s of a refresh
	leaseWindowBefore = 1500 * time.Millisecond
	leaseWindowAfter  = 1500 * time.Millisecond
)

func (b *bench) partBoundary(ctx context.Context) error {
	ttl := b.set.ShortTTL
	logf("part 3: steady %.0f reads/s for %s on one account, token lifetime %s", b.set.BoundaryRate, b.set.BoundaryDuration, ttl)
	c := b.client()
	origin := time.Now()
	a, err := b.createAccount(ctx, c, b.simShort, "boundary")
	if err != nil {
		return err
	}
	mints := []time.Duration{time.Since(origin)}
	var (
		mu        sync.Mutex
		refreshes []time.Duration
	)
	wctx, wcancel := context.WithCancel(ctx)
	var wwg sync.WaitGroup
	wwg.Add(1)
	go func() {
		defer wwg.Done()
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
	loopStart := time.Since(origin)
	cpu0 := snapCPU(b.pids)
	reads, firstErr := openLoop(ctx, c, "zoho/creds/"+a.name, b.set.BoundaryRate, b.set.BoundaryDuration, origin)
	otherCores := cpu0.to(snapCPU(b.pids)).otherCores()
	wcancel()
	wwg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	margin := ttl / 20
	if margin < time.Second {
		margin = time.Second
	}
	if margin > time.Minute {
		margin = time.Minute
	}
	mints = append(mints, refreshes...)
	inRefresh := func(at time.Duration) bool {
		for _, r := range refreshes {
			if at >= r-refreshHalfWindow && at <= r+refreshHalfWindow {
				return true
			}
		}
		return false
	}
	// All leases of one token end together, margin before it expires.
	inLeaseEnd := func(at time.Duration) bool {
		for _, m := range mints {
			e := m + ttl - margin
			if at >= e-leaseWindowBefore && at <= e+leaseWindowAfter {
				return true
			}
		}
		return false
	}
	var all, refresh, quiet, lease []time.Duration
	res := boundaryResult{Rate: b.set.BoundaryRate, Seconds: b.set.BoundaryDuration.Seconds(), TTL: ttl, Refreshes: len(refreshes), FirstErr: firstErr, OtherCores: otherCores}
	for _, r := range reads {
		res.Reads++
		if r.err {
			res.Errors++
			continue
		}
		if r.at < loopStart+2*time.Second {
			continue // warm-up
		}
		all = append(all, r.lat)
		rf, le := inRefresh(r.at), inLeaseEnd(r.at)
		switch {
		case le:
			// The end of a token's leases is its own event (part of it may
			// overlap a refresh window); it is reported apart.
			lease = append(lease, r.lat)
		case rf:
			refresh = append(refresh, r.lat)
		default:
			quiet = append(quiet, r.lat)
		}
	}
	for _, r := range refreshes {
		res.RefreshAt = append(res.RefreshAt, r)
	}
	res.Created = mints[0]
	for _, r := range refreshes {
		if inLeaseEnd(r) {
			res.RefreshesAtLeaseEnd++
		}
	}
	res.Slowest = slowestSeconds(reads, loopStart+2*time.Second, refreshes, mints, ttl-margin, 3)
	sa, sr, sq, sl := summarise(all, 0, 0, ""), summarise(refresh, 0, 0, ""), summarise(quiet, 0, 0, ""), summarise(lease, 0, 0, "")
	res.AllP50, res.AllP99 = sa.P50, sa.P99
	res.RefreshP50, res.RefreshP99, res.RefreshN = sr.P50, sr.P99, sr.N
	res.QuietP50, res.QuietP99, res.QuietN = sq.P50, sq.P99, sq.N
	res.LeaseP50, res.LeaseP99, res.LeaseN = sl.P50, sl.P99, sl.N
	if sq.P99 > 0 {
		res.Ratio = float64(sr.P99) / float64(sq.P99)
		res.LeaseRatio = float64(sl.P99) / float64(sq.P99)
	}
	b.res.Boundary = res
	logf("  token minted at %.1f s, refreshes at %v", res.Created.Seconds(), roundAll(res.RefreshAt))
	logf("  %d reads, %d errors, %d refreshes; p99 across refreshes %.2f ms (n=%d), quiet %.2f ms (n=%d), at lease ends %.2f ms (n=%d)",
		res.Reads, res.Errors, res.Refreshes, ms(res.RefreshP99), res.RefreshN, ms(res.QuietP99), res.QuietN, ms(res.LeaseP99), res.LeaseN)
	return nil
}

// ---------------------------------------------------------------------------
// Part 5: lease growth per 1000 reads.

type leaseResult struct {
	Reads            int
	Errors           int
	LeasesBefore     int
	LeasesAfter      int
	VaultRSSBeforeKB int64
	VaultRSSAfterKB  int64
	EngineEntryBytes int // one engine lease entry in Vault's storage (sys/expire/id/...)
	FloorEntryBytes  int // one floor leased/ lease entry, for comparison
	Seconds          float64
}

func (b *bench) partLeases(ctx context.Context) error {
	n := b.set.LeaseReads
	logf("part 5: lease growth over %d reads", n)
	c := b.client()
	a, err := b.createAccount(ctx, c, b.simLong, "leases")
	if err != nil {
		return err
	}
	prefix := "zoho/creds/" + a.name + "/"
	before, err := listLeases(ctx, c, prefix)
	if err != nil {
		return err
	}
	res := leaseResult{Reads: n, LeasesBefore: len(before)}
	t := time.Now()
	failed, _ := parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		return readRaw(ctx, c, "zoho/creds/"+a.name)
	})
	res.Seconds = time.Since(t).Seconds()
	res.Errors = failed
	after, err := listLeases(ctx, c, prefix)
	if err != nil {
		return err
	}
	res.LeasesAfter = len(after)
	// Sizes of the lease entries Vault stores (decrypted, through sys/raw).
	var sizes []int
	for i := 0; i < len(after) && i < 20; i++ {
		if s, err := rawEntrySize(ctx, c, "sys/expire/id/"+prefix+after[i]); err == nil {
			sizes = append(sizes, s)
		}
	}
	res.EngineEntryBytes = median(sizes)
	if err := readRaw(ctx, c, "floor/leased/sample"); err == nil {
		if ids, err := listLeases(ctx, c, "floor/leased/sample/"); err == nil && len(ids) > 0 {
			res.FloorEntryBytes, _ = rawEntrySize(ctx, c, "sys/expire/id/floor/leased/sample/"+ids[0])
		}
	}
	b.res.Leases = res
	logf("  leases %d → %d; lease entry %d bytes (floor %d)", res.LeasesBefore, res.LeasesAfter, res.EngineEntryBytes, res.FloorEntryBytes)
	return nil
}

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := append([]int(nil), v...)
	sort.Ints(s)
	return s[len(s)/2]
}

// ---------------------------------------------------------------------------
// Part 4: many accounts, plugin memory and start after a reload.

type manyResult struct {
	Accounts         int
	CreateSeconds    float64
	CreateErrors     int
	CreateFirstErr   string
	ReadSeconds      float64
	ReadErrors       int
	ReadP50, ReadP99 time.Duration
	RSSBeforeKB      int64 // plugin, before the accounts were created
	RSSKB, HWMKB     int64 // plugin, after creating and reading every account
	VaultRSSKB       int64
	ReloadCall       time.Duration
	ReloadToRead     time.Duration // reload request sent → first creds read answered
	PIDBefore        int
	PIDAfter         int
	LazySeconds      float64
	LazyErrors       int
	LazyP50, LazyP99 time.Duration
	RSSAfterReloadKB int64 // the new plugin process, one account loaded
	RSSAfterLazyKB   int64
	LoadedBefore     int64 // zoho_accounts_loaded after the first pass (other parts' accounts too)
	LoadedAfterLazy  int64 // zoho_accounts_loaded after the lazy pass
	LeasesIssued     int64
	OtherCores       float64
}

func (b *bench) partMany(ctx context.Context) error {
	n := b.set.ManyAccounts
	logf("part 4: %d accounts", n)
	vaultPID := b.v.PID()
	res := manyResult{Accounts: n}
	cpu0 := snapCPU(b.pids)
	res.PIDBefore = findPlugin(vaultPID, engineCommand)
	res.RSSBeforeKB = procStatusKB(res.PIDBefore, "VmRSS")
	name := func(i int) string { return fmt.Sprintf("many-%05d", i) }
	c := b.client()

	t := time.Now()
	failed, err := parallel(ctx, n, b.set.CreateLimit, func(ctx context.Context, i int) error {
		_, err := b.createAccount(ctx, c, b.simLong, name(i))
		return err
	})
	res.CreateSeconds = time.Since(t).Seconds()
	res.CreateErrors = failed
	if err != nil {
		res.CreateFirstErr = err.Error()
	}
	logf("  created %d accounts in %.1f s (%d errors)", n, res.CreateSeconds, failed)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	pass := func() (float64, int, latStats) {
		var mu sync.Mutex
		lats := make([]time.Duration, 0, n)
		t := time.Now()
		failed, _ := parallel(ctx, n, b.set.CreateLimit, func(ctx context.Context, i int) error {
			t := time.Now()
			err := readRaw(ctx, c, "zoho/creds/"+name(i))
			if err == nil {
				mu.Lock()
				lats = append(lats, time.Since(t))
				mu.Unlock()
			}
			return err
		})
		secs := time.Since(t).Seconds()
		res.LeasesIssued += int64(len(lats))
		return secs, failed, summarise(lats, failed, secs, "")
	}
	var st latStats
	res.ReadSeconds, res.ReadErrors, st = pass()
	res.ReadP50, res.ReadP99 = st.P50, st.P99
	res.RSSKB = procStatusKB(res.PIDBefore, "VmRSS")
	res.HWMKB = procStatusKB(res.PIDBefore, "VmHWM")
	res.VaultRSSKB = procStatusKB(vaultPID, "VmRSS")
	res.LoadedBefore = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_loaded")
	logf("  read each once in %.1f s; plugin RSS %d KB (peak %d KB), vault RSS %d KB", res.ReadSeconds, res.RSSKB, res.HWMKB, res.VaultRSSKB)

	// Other load while creating and reading (the plugin's pid changes below).
	res.OtherCores = cpu0.to(snapCPU(b.pids)).otherCores()

	// Reload the plugin and time it until a creds read is answered.
	t = time.Now()
	if _, err := b.admin.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Plugin: engineName}); err != nil {
		return fmt.Errorf("reloading the plugin: %w", err)
	}
	res.ReloadCall = time.Since(t)
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := readRaw(rctx, c, "zoho/creds/"+name(0))
		cancel()
		if err == nil {
			break
		}
		if time.Since(t) > 60*time.Second || ctx.Err() != nil {
			return fmt.Errorf("no creds read within 60 s of the reload: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.ReloadToRead = time.Since(t)
	res.PIDAfter = waitPlugin(vaultPID, engineCommand, 5*time.Second)
	b.pids.engine = res.PIDAfter
	res.RSSAfterReloadKB = procStatusKB(res.PIDAfter, "VmRSS")
	logf("  reload: call %.0f ms, first read after %.0f ms (plugin pid %d → %d)", ms(res.ReloadCall), ms(res.ReloadToRead), res.PIDBefore, res.PIDAfter)

	res.LazySeconds, res.LazyErrors, st = pass()
	res.LazyP50, res.LazyP99 = st.P50, st.P99
	res.RSSAfterLazyKB = procStatusKB(res.PIDAfter, "VmRSS")
	res.LoadedAfterLazy = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_loaded")
	logf("  lazy first reads of %d accounts in %.1f s (p99 %.1f ms); plugin RSS %d KB; %d accounts loaded",
		n, res.LazySeconds, ms(res.LazyP99), res.RSSAfterLazyKB, res.LoadedAfterLazy)
	b.res.Many = res
	return nil
}

// metricValue reads one unlabelled series from a Prometheus text answer.
func metricValue(ctx context.Context, c *api.Client, path, name string) int64 {
	resp, err := c.Logical().ReadRawWithContext(ctx, path)
	if err != nil || resp == nil || resp.StatusCode != http.StatusOK {
		if resp != nil {
			resp.Body.Close()
		}
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, name+" ") {
			f, err := strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
			if err == nil {
				return int64(f)
			}
		}
	}
	return -1
}

// ---------------------------------------------------------------------------
// Part 4b: the spread of background refreshes over time.

type spreadResult struct {
	Accounts       int
	TTL            time.Duration
	ReadEvery      time.Duration
	CreateSeconds  float64
	CreateErrors   int
	FirstRefreshAt float64 // seconds after creation began
	WindowSeconds  float64
	Buckets        []int64 // refreshes per 10 s from the first refresh
	Total          int64
	Busiest        int64
	Mean           float64
	Ratio          float64
	AllDoneAfter   float64 // seconds from the first refresh until every account had refreshed once
	ReadErrors     int64
	ReadFirstErr   string
	Timeline       []int64 // refreshes per 10 s from the start of creation
}

type spreadRun struct {
	done chan struct{}
	err  error
}

func (r *spreadRun) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

const bucket = 10 * time.Second

// startSpread creates the accounts (as fast as the engine takes them: every
// token is minted within the creation time) and observes their refreshes in
// the background while other parts run.
func (b *bench) startSpread(ctx context.Context) (*spreadRun, error) {
	n := b.set.SpreadAccounts
	logf("refresh spread: creating %d accounts with a %s token lifetime", n, b.set.SpreadTTL)
	c := b.client()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("spread-%04d", i)
	}
	t0 := time.Now()
	failed, err := parallel(ctx, n, b.set.CreateLimit, func(ctx context.Context, i int) error {
		_, err := b.createAccount(ctx, c, b.simSpread, names[i])
		return err
	})
	res := &b.res.Spread
	res.Accounts, res.TTL, res.ReadEvery = n, b.set.SpreadTTL, b.set.SpreadReadEvery
	res.CreateSeconds = time.Since(t0).Seconds()
	res.CreateErrors = failed
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d accounts not created: %v", failed, n, err)
	}
	logf("  created in %.1f s; observing in the background", res.CreateSeconds)
	run := &spreadRun{done: make(chan struct{})}
	go func() {
		defer close(run.done)
		run.err = b.observeSpread(ctx, names, t0)
	}()
	return run, nil
}

func (b *bench) observeSpread(ctx context.Context, names []string, t0 time.Time) error {
	res := &b.res.Spread
	n := len(names)
	ttl := b.set.SpreadTTL
	// One token lifetime from the first refresh: every account in use
	// refreshes at least once in it, whatever the engine's refresh policy,
	// and a steady state would spread those refreshes evenly. Whole buckets.
	window := ttl / bucket * bucket
	nb := int(window / bucket)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Readers: every account read once per ReadEvery, evenly spaced.
	jobs := make(chan int, 64)
	var rwg sync.WaitGroup
	var rmu sync.Mutex
	for w := 0; w < 8; w++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			c := b.client()
			for i := range jobs {
				rctx, rcancel := context.WithTimeout(sctx, 30*time.Second)
				err := readRaw(rctx, c, "zoho/creds/"+names[i])
				rcancel()
				if err != nil && sctx.Err() == nil {
					rmu.Lock()
					res.ReadErrors++
					if res.ReadFirstErr == "" {
						res.ReadFirstErr = err.Error()
					}
					rmu.Unlock()
				}
			}
		}()
	}
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		defer close(jobs)
		interval := b.set.SpreadReadEvery / time.Duration(n)
		next := time.Now()
		for i := 0; ; i++ {
			select {
			case jobs <- i % n:
			case <-sctx.Done():
				return
			}
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				if sleepCtx(sctx, d) != nil {
					return
				}
			}
		}
	}()

	// Poll the simulator's refresh counter.
	type point struct {
		at time.Time
		n  int64
	}
	base := b.simSpread.Counters().Refreshes
	points := []point{{time.Now(), base}}
	var first time.Time
	hardStop := t0.Add(ttl + window + time.Minute)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			rwg.Wait()
			return ctx.Err()
		case <-tick.C:
		}
		now := time.Now()
		cur := b.simSpread.Counters().Refreshes
		if first.IsZero() && cur > points[len(points)-1].n {
			first = points[len(points)-1].at // it happened after the previous poll
		}
		points = append(points, point{now, cur})
		if (!first.IsZero() && now.After(first.Add(window+time.Second))) || now.After(hardStop) {
			break
		}
	}
	cancel()
	rwg.Wait()
	if first.IsZero() {
		return fmt.Errorf("no refresh seen within %s of creating the accounts", time.Since(t0).Round(time.Second))
	}
	res.FirstRefreshAt = first.Sub(t0).Seconds()
	res.WindowSeconds = window.Seconds()
	res.Buckets = make([]int64, nb)
	res.AllDoneAfter = -1
	for i := 1; i < len(points); i++ {
		d := points[i].n - points[i-1].n
		if d == 0 {
			continue
		}
		at := points[i].at.Add(-time.Nanosecond)
		if k := int(at.Sub(first) / bucket); k >= 0 && k < nb {
			res.Buckets[k] += d
		}
		if k := int(at.Sub(t0) / bucket); k >= 0 {
			for len(res.Timeline) <= k {
				res.Timeline = append(res.Timeline, 0)
			}
			res.Timeline[k] += d
		}
		if res.AllDoneAfter < 0 && points[i].n-base >= int64(n) {
			res.AllDoneAfter = points[i].at.Sub(first).Seconds()
		}
	}
	for _, v := range res.Buckets {
		res.Total += v
		if v > res.Busiest {
			res.Busiest = v
		}
	}
	if nb > 0 {
		res.Mean = float64(res.Total) / float64(nb)
	}
	if res.Mean > 0 {
		res.Ratio = float64(res.Busiest) / res.Mean
	}
	logf("refresh spread: %d refreshes in the %s window after the first; busiest 10 s %d, mean %.1f, ratio %.2f",
		res.Total, window, res.Busiest, res.Mean, res.Ratio)
	return nil
}

func roundAll(v []time.Duration) []string {
	out := make([]string, len(v))
	for i, d := range v {
		out[i] = fmt.Sprintf("%.1fs", d.Seconds())
	}
	return out
}
