// Command bench is the benchmark harness of the Zoho secrets engine. It
// starts one real Vault dev server, the engine plugin, a "floor" plugin
// (scripts/bench/floorplugin) and in-process Zoho simulators, measures in one
// run on that Vault:
//
//  1. cached creds/ and static-creds/ read throughput and latency at 1, 16
//     and 64 clients beside a KV v2 read and the floor plugin's unleased and
//     leased reads (plain, and shaped like the engine's lease);
//  2. token calls per account per token lifetime under bursts of 1000
//     concurrent readers at expiry;
//  3. p99 read latency across refresh boundaries ÷ steady-state p99, and
//     p99 while one token's leases end, at a lifetime (20 minutes) where the
//     engine spreads them over a minute, ÷ p99 before (the leases are taken
//     when the dev server starts and the latency measured when they end,
//     between the other parts and before part 4);
//  4. many accounts, at each size of -many (10 000 by default): creating
//     them, LIST config/, plugin start after a reload, the periodic
//     function's work with 1 % of them in use, the RSS of a fresh plugin
//     process holding exactly them and the CPU of cached reads, under the
//     default runtime settings and under a memory knob (-knobs); the spread
//     of background refreshes;
//  5. Vault lease growth per 1000 reads;
//
// then, on a second Vault, single-node on integrated storage (Raft) and
// initialized and unsealed by the harness:
//
//  6. the reads of part 1 at 1 and 16 clients, the lease entries and storage
//     bytes 1000 reads leave (creds/, the floor, static-creds/), the
//     revocation rate, the same reads through a real Vault Agent with a
//     lease cache, and, beside all that, the leases a caching Agent takes per
//     token over three lifetimes of 6-minute tokens (one read a second);
//
// prints a Markdown report and writes it to docs/benchmarks.md. Each part has
// its file (part1_throughput.go, part2_bursts.go, part3_boundary.go,
// part3b_leaseends.go, part4_many.go, part4b_spread.go, part5_leases.go,
// part6_raft.go); this one
// holds the settings and runs them in order.
//
//	go run ./scripts/bench [-quick] [-many 10000,100000] [-knobs GOGC=25] [-parts many] [-out docs/benchmarks.md]
//
// -quick runs every part shorter and with 1000 accounts (a smoke test); its
// report is written only when -out is given. The report in docs/ is made
// with -many 10000,100000 (100 000 accounts add about 17 minutes). Traffic
// goes to 127.0.0.1 only.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

// settings are the sizes and durations of one run.
type settings struct {
	Quick bool

	Levels         []int
	Warm, Duration time.Duration // per target and level: Duration split in Rounds, each after Warm
	Rounds         int
	TargetRounds   int           // rounds at the target level (16 clients), where every round counts most
	SettleMax      time.Duration // longest wait for a quiet machine before part 1

	BurstAccounts  int
	BurstReaders   int
	BurstLifetimes int
	ShortTTL       time.Duration // simulator token lifetime for parts 2 and 3

	BoundaryRate     float64 // reads per second
	BoundaryDuration time.Duration

	// Part 3's lease ends at a lifetime where they are spread as designed:
	// an account on a simulator whose tokens live LeaseEndTTL, created when
	// the dev server starts; its leases taken at LeaseEndRate reads/s for
	// LeaseEndTake, then, when their ends approach and no other part runs,
	// the same rate for LeaseEndSteady before the ends and through them.
	LeaseEndTTL    time.Duration
	LeaseEndRate   float64
	LeaseEndTake   time.Duration
	LeaseEndSteady time.Duration

	ManySizes   []int         // part 4 runs at each size in turn
	ManyTTL     time.Duration // part 4's token lifetime: long enough that no background refresh falls within it
	Knobs       [][]string    // part 4: runtime settings (plugin environments) measured beside the defaults
	CreateLimit int           // config writes at once

	SpreadAccounts  int
	SpreadTTL       time.Duration
	SpreadReadEvery time.Duration

	LeaseReads int

	// Part 6, on a Raft Vault: levels, rounds at 1 client and at the target
	// level (16), each warm-up + RaftRound; the run through an Agent.
	RaftLevels                   []int
	RaftRounds, RaftTargetRounds int
	RaftRound                    time.Duration
	AgentDuration                time.Duration
	// Part 6's leases per token through a caching Agent: tokens living
	// AgentLeaseTTL, AgentLeaseLifetimes of them, one read a second.
	AgentLeaseTTL       time.Duration
	AgentLeaseLifetimes int
}

func fullSettings() settings {
	return settings{
		Levels: []int{1, 16, 64}, Warm: 500 * time.Millisecond, Duration: 8 * time.Second, Rounds: 4, TargetRounds: 6, SettleMax: time.Minute,
		BurstAccounts: 5, BurstReaders: 1000, BurstLifetimes: 3, ShortTTL: 20 * time.Second,
		BoundaryRate: 250, BoundaryDuration: 62 * time.Second,
		LeaseEndTTL: 20 * time.Minute, LeaseEndRate: 100, LeaseEndTake: 60 * time.Second, LeaseEndSteady: 60 * time.Second,
		ManySizes: []int{10000}, ManyTTL: 24 * time.Hour, Knobs: [][]string{{"GOGC=25"}}, CreateLimit: 16,
		SpreadAccounts: 1000, SpreadTTL: 3 * time.Minute, SpreadReadEvery: 30 * time.Second,
		LeaseReads: 1000,
		RaftLevels: []int{1, 16}, RaftRounds: 2, RaftTargetRounds: 4, RaftRound: 2 * time.Second, AgentDuration: 45 * time.Second,
		AgentLeaseTTL: 6 * time.Minute, AgentLeaseLifetimes: 3,
	}
}

func quickSettings() settings {
	return settings{
		Quick:  true,
		Levels: []int{1, 16, 64}, Warm: 500 * time.Millisecond, Duration: 3 * time.Second, Rounds: 2, TargetRounds: 2, SettleMax: 10 * time.Second,
		BurstAccounts: 3, BurstReaders: 1000, BurstLifetimes: 2, ShortTTL: 20 * time.Second,
		BoundaryRate: 250, BoundaryDuration: 32 * time.Second,
		LeaseEndTTL: 4 * time.Minute, LeaseEndRate: 100, LeaseEndTake: 20 * time.Second, LeaseEndSteady: 30 * time.Second,
		ManySizes: []int{1000}, ManyTTL: 24 * time.Hour, Knobs: [][]string{{"GOGC=25"}}, CreateLimit: 16,
		SpreadAccounts: 200, SpreadTTL: time.Minute, SpreadReadEvery: 10 * time.Second,
		LeaseReads: 1000,
		RaftLevels: []int{1, 16}, RaftRounds: 1, RaftTargetRounds: 2, RaftRound: time.Second, AgentDuration: 25 * time.Second,
		AgentLeaseTTL: time.Minute, AgentLeaseLifetimes: 2,
	}
}

// bench is the state of one run.
type bench struct {
	set       settings
	root      string
	work      string
	pluginDir string
	vaultBin  string
	v         *vaultproc.Server
	tr        *http.Transport
	admin     *api.Client // long timeout, for revocations and reloads
	pids      pids
	parts     map[string]bool

	simLong, simShort, simSpread, simMany, simLeaseEnd *zohosim.Server

	res *results
}

func main() {
	quick := flag.Bool("quick", false, "shorter run with 1000 accounts (smoke test); writes a report only with -out")
	out := flag.String("out", "", "where to write the Markdown report (default docs/benchmarks.md for a full run)")
	keep := flag.Bool("keep", false, "keep the temporary directory (Vault log, plugins)")
	only := flag.String("parts", "all", "comma-separated parts to run, for working on the harness: throughput, leases, boundary, bursts, spread, many, raft")
	many := flag.String("many", "", "part 4's sizes, comma-separated (default 10000, 1000 with -quick; docs/benchmarks.md is made with 10000,100000)")
	knobs := flag.String("knobs", "GOGC=25", "part 4's memory knobs: plugin environments measured beside the defaults, ';' between settings, ',' between the KEY=VALUE of one; empty for none")
	probe := flag.Int("heap-probe", 0, "internal: run the in-process heap probe with this many accounts and exit")
	probeProfile := flag.String("heap-profile", "", "internal: where the heap probe writes its profile")
	flag.Parse()
	if *probe > 0 {
		if err := runHeapProbe(*probe, *probeProfile); err != nil {
			fmt.Fprintln(os.Stderr, "heap probe:", err)
			os.Exit(1)
		}
		return
	}

	set := fullSettings()
	if *quick {
		set = quickSettings()
	}
	var err error
	if *many != "" {
		if set.ManySizes, err = parseSizes(*many); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -many:", err)
			os.Exit(2)
		}
	}
	if set.Knobs, err = parseKnobs(*knobs); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -knobs:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Every loop below is bounded; this is the backstop for the whole run.
	ctx, cancel := context.WithTimeout(ctx, backstop(set))
	defer cancel()

	b := &bench{set: set, res: &results{Started: time.Now(), Quick: set.Quick}, parts: map[string]bool{}}
	for _, p := range strings.Split(*only, ",") {
		b.parts[strings.TrimSpace(p)] = true
	}
	b.res.Partial = !b.parts["all"]
	err = b.run(ctx)
	b.res.TotalSeconds = time.Since(b.res.Started).Seconds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if b.v != nil {
			fmt.Fprintf(os.Stderr, "--- vault log (tail) ---\n%s\n", b.v.LogTail(40))
		}
	}
	b.shutdown(*keep || err != nil)
	if err != nil {
		os.Exit(1)
	}

	report := renderMarkdown(b.res, set)
	fmt.Println(report)
	target := *out
	if target == "" && !set.Quick && !b.res.Partial {
		target = filepath.Join(b.root, "docs", "benchmarks.md")
	}
	if target != "" {
		if !filepath.IsAbs(target) {
			target = filepath.Join(b.root, target)
		}
		if err := os.WriteFile(target, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench: writing the report:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "bench: report written to %s\n", target)
	}
	fmt.Fprintf(os.Stderr, "bench: total %.0f s\n", b.res.TotalSeconds)
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) run(ctx context.Context) error {
	root, err := vaultproc.RepoRoot()
	if err != nil {
		return err
	}
	b.root = root
	// $VAULT_BIN, vault on PATH or the cached build; otherwise
	// scripts/vault.sh builds it.
	if b.vaultBin, err = vaultproc.FindOrBuild(ctx, root, os.Stderr); err != nil {
		return err
	}
	// The API clients of this process must not pick up a developer's Vault.
	for _, kv := range os.Environ() {
		if k := strings.SplitN(kv, "=", 2)[0]; strings.HasPrefix(k, "VAULT_") {
			os.Unsetenv(k)
		}
	}
	if b.work, err = os.MkdirTemp("", "zoho-bench-"); err != nil {
		return err
	}
	if b.work, err = filepath.EvalSymlinks(b.work); err != nil {
		return err
	}
	b.res.Machine = describeMachine(runtime.NumCPU())
	b.res.GoVersion = runtime.Version()
	b.res.Commit = gitCommit(root)

	b.res.VaultVersion = vaultVersion(b.vaultBin)
	logf("vault %s (%s)", b.vaultBin, b.res.VaultVersion)

	// Plugins.
	t := time.Now()
	pluginDir := filepath.Join(b.work, "plugins")
	b.pluginDir = pluginDir
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		return err
	}
	if err := goBuild(root, "./cmd/"+engineCommand, filepath.Join(pluginDir, engineCommand), "-X main.version="+pluginVersion); err != nil {
		return err
	}
	if err := goBuild(root, "./scripts/bench/floorplugin", filepath.Join(pluginDir, floorCommand), ""); err != nil {
		return err
	}
	b.res.BuildSeconds = time.Since(t).Seconds()
	if st, err := os.Stat(filepath.Join(pluginDir, engineCommand)); err == nil {
		b.res.PluginBinaryBytes = st.Size()
	}
	logf("plugins built in %.1f s", b.res.BuildSeconds)
	if b.want("throughput") {
		// The engine's own cost per read, in process, before anything else runs.
		b.res.InProcess, err = inProcessBench(ctx, root)
		if err != nil {
			logf("in-process benchmark: %v", err)
		}
	}

	// Simulators: one per token lifetime, so that changing nothing at run
	// time keeps each part's accounts on the lifetime it needs.
	b.simLong = zohosim.New(zohosim.Config{AccessTokenTTL: time.Hour})
	b.simShort = zohosim.New(zohosim.Config{AccessTokenTTL: b.set.ShortTTL})
	b.simSpread = zohosim.New(zohosim.Config{AccessTokenTTL: b.set.SpreadTTL})
	b.simMany = zohosim.New(zohosim.Config{AccessTokenTTL: b.set.ManyTTL})
	b.simLeaseEnd = zohosim.New(zohosim.Config{AccessTokenTTL: b.set.LeaseEndTTL})
	for _, s := range []*zohosim.Server{b.simLong, b.simShort, b.simSpread, b.simMany, b.simLeaseEnd} {
		if _, err := s.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting the simulator: %w", err)
		}
	}

	if b.wantDev() {
		if err := b.runDev(ctx, pluginDir); err != nil {
			return err
		}
	}
	if b.want("raft") {
		// On a Vault of its own, with the dev server and its plugins gone.
		if b.v != nil {
			b.v.Stop()
		}
		if err := b.partRaft(ctx); err != nil {
			return fmt.Errorf("raft: %w", err)
		}
	}
	return nil
}

// devParts are the parts that run on the dev server.
var devParts = []string{"throughput", "leases", "boundary", "bursts", "spread", "many"}

func (b *bench) wantDev() bool {
	for _, p := range devParts {
		if b.want(p) {
			return true
		}
	}
	return false
}

// runDev starts the dev server, mounts the plugins and runs parts 1 to 5 on it.
func (b *bench) runDev(ctx context.Context, pluginDir string) error {
	var err error
	// Vault.
	b.v, err = vaultproc.StartDev(vaultproc.Config{
		Bin: b.vaultBin, Dir: filepath.Join(b.work, "vault"), PluginDir: pluginDir,
		LogLevel: "warn", HCL: "raw_storage_endpoint = true\n", ReadyTimeout: 90 * time.Second,
	})
	if err != nil {
		return err
	}
	b.tr = newTransport()
	b.admin = newAdminClient(b.v.Addr, b.tr, 10*time.Minute)
	for _, p := range []struct{ name, command, path string }{{engineName, engineCommand, "zoho"}, {floorName, floorCommand, "floor"}} {
		sum, err := filesum.SHA256(filepath.Join(pluginDir, p.command))
		if err != nil {
			return err
		}
		plugin := vaultproc.Plugin{Name: p.name, Command: p.command, Version: pluginVersion, SHA256: sum}
		if err := b.v.EnablePlugin(ctx, plugin, p.path); err != nil {
			return err
		}
	}
	logf("vault %s up (pid %d), plugins mounted at zoho/ and floor/", b.v.Addr, b.v.PID())

	b.pids = pids{vault: b.v.PID(), engine: waitPlugin(b.v.PID(), engineCommand, 10*time.Second), floor: waitPlugin(b.v.PID(), floorCommand, 10*time.Second)}
	// Part 3's lease ends: the leases are taken now, the latency measured
	// when they end, between parts (before part 4 at the latest).
	var le *leaseEndRun
	if b.want("boundary") {
		if le, err = b.startLeaseEnd(ctx); err != nil {
			return fmt.Errorf("lease ends: %w", err)
		}
	}
	if b.want("throughput") {
		if err := b.partThroughput(ctx); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
	}
	var spread *spreadRun
	if b.want("spread") {
		// Parts 5, 3 and 2 run while the spread is observed: the lease-end
		// measurement comes before all of them or after.
		est := max(b.estimate("spread"), b.estimate("leases")+b.estimate("boundary")+b.estimate("bursts"))
		if err := b.leaseEndBefore(ctx, le, "the refresh spread", est); err != nil {
			return err
		}
		if spread, err = b.startSpread(ctx); err != nil {
			return fmt.Errorf("refresh spread: %w", err)
		}
	}
	if b.want("leases") {
		if spread == nil {
			if err := b.leaseEndBefore(ctx, le, "part 5", b.estimate("leases")); err != nil {
				return err
			}
		}
		if err := b.partLeases(ctx); err != nil {
			return fmt.Errorf("leases: %w", err)
		}
	}
	if b.want("boundary") {
		if spread == nil {
			if err := b.leaseEndBefore(ctx, le, "part 3's refresh boundaries", b.estimate("boundary")); err != nil {
				return err
			}
		}
		if err := b.partBoundary(ctx); err != nil {
			return fmt.Errorf("refresh boundary: %w", err)
		}
	}
	if b.want("bursts") {
		if spread == nil {
			if err := b.leaseEndBefore(ctx, le, "part 2", b.estimate("bursts")); err != nil {
				return err
			}
		}
		if err := b.partBursts(ctx); err != nil {
			return fmt.Errorf("bursts: %w", err)
		}
	}
	if spread != nil {
		logf("waiting for the refresh-spread observation to end")
		if err := spread.wait(ctx); err != nil {
			return fmt.Errorf("refresh spread: %w", err)
		}
	}
	// Before part 4 in any case (it revokes every engine lease first).
	next := ""
	if b.want("many") {
		next = "part 4"
	}
	if err := b.leaseEndBefore(ctx, le, next, -1); err != nil {
		return err
	}
	if b.want("many") {
		// On a Vault without the leases of the parts before it.
		b.res.Revocations = append(b.res.Revocations, b.revokePrefix(ctx, "zoho/creds/", "engine leases of parts 2, 3, 5 and the spread", -1))
		// Each size revokes its leases when done.
		if err := b.partMany(ctx); err != nil {
			return fmt.Errorf("many accounts: %w", err)
		}
		// The live heap per account at each size; the first with a profile.
		for i, n := range b.set.ManySizes {
			logf("heap probe: the engine in process with %d accounts", n)
			h := heapProbe(ctx, b.work, n, i == 0)
			if h.Err != "" {
				logf("  heap probe: %s", h.Err)
			} else {
				logf("  %.0f bytes of live heap per account", h.HeapPerAccount)
			}
			h.Accounts = n
			b.res.Heaps = append(b.res.Heaps, h)
		}
	} else {
		b.res.Revocations = append(b.res.Revocations, b.revokePrefix(ctx, "zoho/creds/", "engine leases left", -1))
	}
	b.res.Revocations = append(b.res.Revocations, b.revokePrefix(ctx, "floor/", "floor leases left", -1))
	return nil
}

// parseSizes reads -many: account counts, each at least 100 (part 4 puts
// 1 % of them in use).
func parseSizes(v string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 || n > 1000000 {
			return nil, fmt.Errorf("%q is not a number of accounts between 100 and 1000000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseKnobs reads -knobs: settings separated by ';', each KEY=VALUE pairs
// separated by ','.
func parseKnobs(v string) ([][]string, error) {
	var out [][]string
	for _, setting := range strings.Split(v, ";") {
		if strings.TrimSpace(setting) == "" {
			continue
		}
		var env []string
		for _, kv := range strings.Split(setting, ",") {
			kv = strings.TrimSpace(kv)
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return nil, fmt.Errorf("%q is not KEY=VALUE", kv)
			}
			env = append(env, kv)
		}
		out = append(out, env)
	}
	return out, nil
}

// backstop bounds the whole run: 30 minutes for a full run at 10 000
// accounts, plus part 3's lease-end token lifetime and part 6's Agent
// lifetimes, plus, per account beyond them at each size of part 4, 25 ms and
// 6 ms per memory knob (at 100 000 accounts with one knob, part 4 took
// about 10 ms per account here: creating, reading each up to 5 times,
// waiting for the periodic function, and revoking the leases).
func backstop(set settings) time.Duration {
	// About twice what a full run took on the 2-core machine of
	// docs/benchmarks.md: the same machine ran at half that speed on other
	// days, and a run cut short writes no report.
	d := 30 * time.Minute
	// Part 3's lease ends come about a token lifetime after the dev server
	// starts, and part 6 lasts at least its Agent's token lifetimes.
	d += set.LeaseEndTTL + set.AgentLeaseTTL*time.Duration(set.AgentLeaseLifetimes)
	perAccount := 25*time.Millisecond + time.Duration(len(set.Knobs))*6*time.Millisecond
	for _, n := range set.ManySizes {
		if n > 10000 {
			d += time.Duration(n-10000) * perAccount
		}
	}
	return d
}

func (b *bench) want(part string) bool { return b.parts["all"] || b.parts[part] }

func (b *bench) shutdown(keep bool) {
	if b.v != nil {
		b.v.Stop()
	}
	for _, s := range []*zohosim.Server{b.simLong, b.simShort, b.simSpread, b.simMany, b.simLeaseEnd} {
		if s != nil {
			_ = s.Close()
		}
	}
	if b.work != "" {
		if keep {
			fmt.Fprintf(os.Stderr, "bench: kept %s\n", b.work)
		} else {
			_ = os.RemoveAll(b.work)
		}
	}
}

// client is a fresh root-token API client on the shared transport.
func (b *bench) client() *api.Client {
	return newAdminClient(b.v.Addr, b.tr, time.Minute)
}
