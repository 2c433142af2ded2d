// Part 4: many accounts, at each size of -many in turn: creating them through
// the API, LIST config/, plugin start after a reload, the periodic function
// with 1 % of them in use, the memory of a fresh plugin process holding
// exactly them (lazy first reads) and the CPU of cached reads, under the
// default runtime settings and under each memory knob (an environment for
// the plugin's Go runtime, set by registering the plugin again). The heap
// probe (heapprobe.go) shows where the plugin's memory goes.

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

// manyResult is part 4 at one size.
type manyResult struct {
	Accounts int
	Prefix   string // account names: Prefix + a number

	// a. Creating them, and one read of each by the process that created them.
	CreateSeconds    float64
	CreateErrors     int
	CreateFirstErr   string
	ReadSeconds      float64
	ReadErrors       int
	ReadP50, ReadP99 time.Duration
	RSSBeforeKB      int64 // plugin, before the accounts were created
	RSSKB, HWMKB     int64 // plugin, after creating and reading every account
	VaultRSSKB       int64
	LoadedBefore     int64 // zoho_accounts_loaded then (earlier sizes' and other parts' accounts too)
	OtherCores       float64

	// b. LIST config/.
	ListTimes []time.Duration
	ListKeys  int
	ListErr   string

	// c. Reload with the default runtime settings → first creds/ read.
	PIDBefore int
	Reload    reloadResult

	// d. The periodic function with 1 % of the accounts in use.
	Periodic periodicResult

	// e. The fresh process of c: lazy pass, cached pass.
	Default settingResult
	// f. The same under each memory knob, then back to the defaults.
	Knobs   []settingResult
	Restore reloadResult

	LeasesIssued int64
}

// reloadResult is one reload of the plugin, timed until a creds/ read is answered.
type reloadResult struct {
	Call, ToRead time.Duration
	PID          int
	Env          map[string]string // the knob's variables as the new process has them
	Mem          memSample         // right after the first read
}

// settingResult is a fresh plugin process under one runtime setting (Env
// empty: the defaults) reading every account twice.
type settingResult struct {
	Env    []string
	Reload reloadResult

	LazySeconds      float64
	LazyErrors       int
	LazyP50, LazyP99 time.Duration
	AfterLazy        memSample // the fresh process holding exactly the accounts
	Loaded           int64     // zoho_accounts_loaded after the lazy pass

	// The cached pass with the median plugin CPU per read (of
	// cachedPasses(N)), and every pass's.
	CachedSeconds        float64
	CachedErrors         int
	CachedP50, CachedP99 time.Duration
	CachedPluginUS       float64 // plugin CPU per cached read
	CachedRunsUS         []float64
	CachedVaultUS        float64
	CachedOtherCores     float64
	AfterCached          memSample
}

func (s settingResult) name() string {
	if len(s.Env) == 0 {
		return "default runtime settings"
	}
	return "`" + strings.Join(s.Env, " ") + "`"
}

// periodicResult is the periodic function's work with N/100 accounts in use.
type periodicResult struct {
	Configured   int // keys of LIST config/ (every size so far and the other parts' accounts)
	Read         int // accounts read to put them in use
	ReadErrors   int
	Runs         int64 // periodic runs seen during the wait
	WaitSeconds  float64
	Examined     int64   // zoho_periodic_accounts_examined of the last run
	RunSeconds   float64 // zoho_periodic_duration_seconds of the last run
	Loaded       int64
	InUse        int64
	PluginCPU    time.Duration // over the wait
	CPUPerRun    time.Duration
	CPUPerMinute time.Duration
	Err          string
}

// Periodic runs to wait for, and how long at most: Vault runs the periodic
// function every minute.
const (
	periodicRuns = 2
	periodicWait = 150 * time.Second
	listRuns     = 5
)

func (b *bench) partMany(ctx context.Context) error {
	for i, n := range b.set.ManySizes {
		res, err := b.manyAtSize(ctx, n, i)
		if res != nil {
			b.res.Many = append(b.res.Many, *res)
			// This size's leases, before the next size: only its
			// leases are left under zoho/creds/ (earlier parts' were
			// revoked before part 4). Several leases per account:
			// more time than the admin client's 10 minutes at
			// 100 000 accounts and beyond.
			admin := newAdminClient(b.v.Addr, b.tr, 10*time.Minute+time.Duration(res.LeasesIssued)*2*time.Millisecond)
			b.res.Revocations = append(b.res.Revocations, revokePrefixOn(ctx, admin, "zoho/creds/", fmt.Sprintf("engine leases of part 4, %d accounts", n), res.LeasesIssued))
		}
		if err != nil {
			return fmt.Errorf("%d accounts: %w", n, err)
		}
	}
	return nil
}

func (b *bench) manyAtSize(ctx context.Context, n, index int) (*manyResult, error) {
	prefix := fmt.Sprintf("many%d-", n)
	for _, m := range b.set.ManySizes[:index] {
		if m == n { // the same size again: other names
			prefix = fmt.Sprintf("many%d-%d-", n, index)
		}
	}
	logf("part 4: %d accounts (%s…)", n, prefix)
	vaultPID := b.v.PID()
	res := &manyResult{Accounts: n, Prefix: prefix}
	cpu0 := snapCPU(b.pids)
	res.PIDBefore = findPlugin(vaultPID, engineCommand)
	res.RSSBeforeKB = procStatusKB(res.PIDBefore, "VmRSS")
	name := func(i int) string { return fmt.Sprintf("%s%06d", prefix, i) }
	c := b.client()

	// a. Create them through the API, then read each once.
	t := time.Now()
	failed, err := parallel(ctx, n, b.set.CreateLimit, func(ctx context.Context, i int) error {
		_, err := b.createAccount(ctx, c, b.simMany, name(i))
		return err
	})
	res.CreateSeconds = time.Since(t).Seconds()
	res.CreateErrors = failed
	if err != nil {
		res.CreateFirstErr = err.Error()
	}
	logf("  created %d accounts in %.1f s (%.0f/s, %d errors)", n, res.CreateSeconds, ratio(float64(n), res.CreateSeconds), failed)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	// pass reads accounts [0, upto) once each.
	pass := func(upto int) (float64, int, latStats) {
		var mu sync.Mutex
		lats := make([]time.Duration, 0, upto)
		t := time.Now()
		failed, _ := parallel(ctx, upto, b.set.CreateLimit, func(ctx context.Context, i int) error {
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
	res.ReadSeconds, res.ReadErrors, st = pass(n)
	res.ReadP50, res.ReadP99 = st.P50, st.P99
	res.RSSKB = procStatusKB(res.PIDBefore, "VmRSS")
	res.HWMKB = procStatusKB(res.PIDBefore, "VmHWM")
	res.VaultRSSKB = procStatusKB(vaultPID, "VmRSS")
	res.LoadedBefore = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_loaded")
	logf("  read each once in %.1f s; plugin RSS %d KB (peak %d KB), vault RSS %d KB", res.ReadSeconds, res.RSSKB, res.HWMKB, res.VaultRSSKB)
	res.OtherCores = cpu0.to(snapCPU(b.pids)).otherCores()

	// b. LIST config/, a few times.
	for i := 0; i < listRuns; i++ {
		t := time.Now()
		sec, err := c.Logical().ListWithContext(ctx, "zoho/config")
		d := time.Since(t)
		if err != nil {
			res.ListErr = err.Error()
			break
		}
		res.ListTimes = append(res.ListTimes, d)
		if sec != nil && sec.Data != nil {
			keys, _ := sec.Data["keys"].([]interface{})
			res.ListKeys = len(keys)
		}
	}
	if res.ListErr == "" && res.ListKeys < n {
		res.ListErr = fmt.Sprintf("LIST config/ returned %d keys; want at least %d", res.ListKeys, n)
	}
	logf("  LIST config/: %d keys, median %.0f ms, max %.0f ms %s", res.ListKeys, ms(medianDuration(res.ListTimes)), ms(maxDuration(res.ListTimes)), res.ListErr)

	// c. Reload (default runtime settings) → first creds/ read answered.
	probe := "zoho/creds/" + name(0)
	if res.Reload, err = b.reloadEngine(ctx, c, probe, res.PIDBefore, nil); err != nil {
		return res, err
	}
	res.LeasesIssued++
	res.Default.Reload = res.Reload
	logf("  reload: call %.0f ms, first read after %.0f ms (plugin pid %d → %d)", ms(res.Reload.Call), ms(res.Reload.ToRead), res.PIDBefore, res.Reload.PID)

	// d. The periodic function with 1 % in use.
	res.Periodic = b.periodicWithOnePercent(ctx, c, n, name, res.ListKeys)
	res.LeasesIssued += int64(res.Periodic.Read - res.Periodic.ReadErrors)

	// e. The same fresh process: lazy pass, cached pass.
	b.readTwice(ctx, c, n, pass, &res.Default)

	// f. Each memory knob: register the plugin again with it, reload, both
	// passes; then back to the defaults.
	sum, err := filesum.SHA256(b.enginePath())
	if err != nil {
		return res, err
	}
	plugin := vaultproc.Plugin{Name: engineName, Command: engineCommand, Version: pluginVersion, SHA256: sum}
	pid := res.Reload.PID
	for _, env := range b.set.Knobs {
		s := settingResult{Env: env}
		plugin.Env = env
		if err := b.v.RegisterPlugin(ctx, plugin); err != nil {
			return res, err
		}
		if s.Reload, err = b.reloadEngine(ctx, c, probe, pid, env); err != nil {
			return res, err
		}
		res.LeasesIssued++
		pid = s.Reload.PID
		logf("  %s: reload, first read after %.0f ms (pid %d)", s.name(), ms(s.Reload.ToRead), pid)
		b.readTwice(ctx, c, n, pass, &s)
		res.Knobs = append(res.Knobs, s)
	}
	if len(b.set.Knobs) > 0 {
		plugin.Env = nil
		if err := b.v.RegisterPlugin(ctx, plugin); err != nil {
			return res, err
		}
		if res.Restore, err = b.reloadEngine(ctx, c, probe, pid, nil); err != nil {
			return res, err
		}
		res.LeasesIssued++
		logf("  back to the default runtime settings (pid %d)", res.Restore.PID)
	}
	return res, nil
}

// readTwice is steps e and f on the fresh process of s.Reload: every account
// read once (each loaded from storage), its memory, then every account read
// again (all cached) with the plugin's CPU per read.
func (b *bench) readTwice(ctx context.Context, c *api.Client, n int, pass func(int) (float64, int, latStats), s *settingResult) {
	var st latStats
	s.LazySeconds, s.LazyErrors, st = pass(n)
	s.LazyP50, s.LazyP99 = st.P50, st.P99
	s.AfterLazy = procMem(s.Reload.PID)
	s.Loaded = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_loaded")
	logf("  %s: lazy first reads of %d accounts in %.1f s (p99 %.1f ms); plugin RSS %d KB (anon %d KB, file %d KB); %d accounts loaded",
		s.name(), n, s.LazySeconds, ms(s.LazyP99), s.AfterLazy.RSS, s.AfterLazy.Anon, s.AfterLazy.File, s.Loaded)

	// Cached passes: a few at small sizes, so that the median of their CPU
	// per read holds against other load on the machine.
	p := b.pids
	p.engine = s.Reload.PID
	type cached struct {
		seconds           float64
		errors            int
		st                latStats
		pluginUS, vaultUS float64
		other             float64
	}
	var runs []cached
	for i := 0; i < cachedPasses(n); i++ {
		var c cached
		before := snapCPU(p)
		c.seconds, c.errors, c.st = pass(n)
		d := before.to(snapCPU(p))
		if ok := n - c.errors; ok > 0 {
			c.pluginUS = float64(d.engine) / float64(time.Microsecond) / float64(ok)
			c.vaultUS = float64(d.vault) / float64(time.Microsecond) / float64(ok)
		}
		c.other = d.otherCores()
		runs = append(runs, c)
		s.CachedRunsUS = append(s.CachedRunsUS, c.pluginUS)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].pluginUS < runs[j].pluginUS })
	med := runs[len(runs)/2]
	s.CachedSeconds, s.CachedErrors, s.CachedP50, s.CachedP99 = med.seconds, med.errors, med.st.P50, med.st.P99
	s.CachedPluginUS, s.CachedVaultUS, s.CachedOtherCores = med.pluginUS, med.vaultUS, med.other
	s.AfterCached = procMem(s.Reload.PID)
	logf("  %s: cached reads in %.1f s (%.0f/s), plugin CPU %.0f µs per read (passes: %.0f µs), other load %.2f cores",
		s.name(), s.CachedSeconds, ratio(float64(n-s.CachedErrors), s.CachedSeconds), s.CachedPluginUS, s.CachedRunsUS, s.CachedOtherCores)
}

// cachedPasses is how many cached passes run at n accounts: enough for
// 30 000 reads, at most 3.
func cachedPasses(n int) int {
	return max(1, min(3, 30000/n))
}

// periodicWithOnePercent reads n/100 accounts of the fresh process (they
// join the in-use set) and waits for the periodic function to run twice,
// then reads what its last run looked at and the plugin's CPU meanwhile.
func (b *bench) periodicWithOnePercent(ctx context.Context, c *api.Client, n int, name func(int) string, configured int) periodicResult {
	r := periodicResult{Configured: configured, Read: max(1, n/100)}
	r.ReadErrors, _ = parallel(ctx, r.Read, b.set.CreateLimit, func(ctx context.Context, i int) error {
		return readRaw(ctx, c, "zoho/creds/"+name(i))
	})
	pid := b.pids.engine
	runs0, ok := metricFloat(ctx, c, "zoho/metrics", "zoho_periodic_runs_total")
	if !ok {
		r.Err = "zoho/metrics has no zoho_periodic_runs_total"
		return r
	}
	t0, cpu0 := time.Now(), procCPU(pid)
	for {
		if sleepCtx(ctx, time.Second) != nil {
			r.Err = ctx.Err().Error()
			return r
		}
		runs, _ := metricFloat(ctx, c, "zoho/metrics", "zoho_periodic_runs_total")
		if int64(runs-runs0) >= periodicRuns {
			r.Runs = int64(runs - runs0)
			break
		}
		if time.Since(t0) > periodicWait {
			r.Runs = int64(runs - runs0)
			r.Err = fmt.Sprintf("%d periodic runs within %s; waited for %d", r.Runs, periodicWait, periodicRuns)
			break
		}
	}
	wait := time.Since(t0)
	r.PluginCPU = procCPU(pid) - cpu0
	r.WaitSeconds = wait.Seconds()
	if r.Runs > 0 {
		r.CPUPerRun = r.PluginCPU / time.Duration(r.Runs)
	}
	r.CPUPerMinute = time.Duration(float64(r.PluginCPU) * float64(time.Minute) / float64(wait))
	examined, _ := metricFloat(ctx, c, "zoho/metrics", "zoho_periodic_accounts_examined")
	r.Examined = int64(examined)
	r.RunSeconds, _ = metricFloat(ctx, c, "zoho/metrics", "zoho_periodic_duration_seconds")
	r.Loaded = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_loaded")
	r.InUse = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_in_use")
	logf("  periodic: %d configured, %d loaded, %d in use; last run examined %d in %.1f ms; plugin CPU %.0f ms over %.0f s (%d runs) %s",
		r.Configured, r.Loaded, r.InUse, r.Examined, r.RunSeconds*1000, ms(r.PluginCPU), r.WaitSeconds, r.Runs, r.Err)
	return r
}

// reloadEngine reloads the engine plugin and times it until a read of probe
// is answered by a new plugin process (not old); env are the variables that
// process must have (the knob just registered), checked in its environment.
func (b *bench) reloadEngine(ctx context.Context, c *api.Client, probe string, old int, env []string) (reloadResult, error) {
	var r reloadResult
	t := time.Now()
	if _, err := b.admin.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Plugin: engineName}); err != nil {
		return r, fmt.Errorf("reloading the plugin: %w", err)
	}
	r.Call = time.Since(t)
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := readRaw(rctx, c, probe)
		cancel()
		if err == nil {
			break
		}
		if time.Since(t) > 60*time.Second || ctx.Err() != nil {
			return r, fmt.Errorf("no creds read within 60 s of the reload: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.ToRead = time.Since(t)
	vaultPID := b.v.PID()
	deadline := time.Now().Add(10 * time.Second)
	for r.PID = findPluginExcept(vaultPID, engineCommand, old); r.PID == 0; r.PID = findPluginExcept(vaultPID, engineCommand, old) {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("no new plugin process within 10 s of the reload (pid %d before)", old)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.pids.engine = r.PID
	r.Mem = procMem(r.PID)
	r.Env = map[string]string{}
	have := procEnviron(r.PID)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		r.Env[k] = have[k]
		if have[k] != v {
			return r, fmt.Errorf("the plugin process after the reload has %s=%q; the catalog entry says %q", k, have[k], v)
		}
	}
	return r, nil
}

// enginePath is the engine plugin's binary.
func (b *bench) enginePath() string {
	return filepath.Join(b.pluginDir, engineCommand)
}

// metricValue reads one unlabelled series from a Prometheus text answer, -1
// when absent.
func metricValue(ctx context.Context, c *api.Client, path, name string) int64 {
	f, ok := metricFloat(ctx, c, path, name)
	if !ok {
		return -1
	}
	return int64(f)
}

// metricFloat reads one unlabelled series from a Prometheus text answer.
func metricFloat(ctx context.Context, c *api.Client, path, name string) (float64, bool) {
	resp, err := c.Logical().ReadRawWithContext(ctx, path)
	if err != nil || resp == nil || resp.StatusCode != http.StatusOK {
		if resp != nil {
			resp.Body.Close()
		}
		return 0, false
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, name+" ") {
			f, err := strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
			if err == nil {
				return f, true
			}
		}
	}
	return 0, false
}

func medianDuration(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxDuration(v []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range v {
		m = max(m, d)
	}
	return m
}
