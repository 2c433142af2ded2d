// Part 6: the price of a read where users run. A single-node Vault on
// integrated storage (Raft, file-backed, in the run's temporary directory,
// initialized and unsealed by the harness) with the engine and the floor
// plugin mounted and KV v2 enabled: cached creds/ reads beside the leased and
// unleased floor and KV v2 at 1 and 16 clients; the lease entries and the
// storage bytes 1000 reads leave; how fast Vault revokes the leases; and the
// same reads through a real Vault Agent with a lease cache.

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

type raftResult struct {
	Seconds      float64 // the whole part
	StartSeconds float64 // start, init, unseal, plugins registered and mounted
	Settle       float64 // other processes' load (cores) before measuring
	Throughput   []levelResult
	Rounds       map[int]int // rounds per level
	Round        time.Duration
	Storage      []leaseStorage
	Agent        agentResult
	AgentLeases  agentLeaseResult

	// static-creds/ reads of the throughput runs and the leases listed
	// under their path afterwards (-1: the listing failed).
	StaticReads     int64
	StaticLeases    int
	StaticLeasesErr string
}

// agentLeaseResult is the long run through a second caching Agent: one
// application reading every second over a few token lifetimes, counting the
// Vault leases the Agent takes per token.
type agentLeaseResult struct {
	TTL             time.Duration
	Lifetimes       int
	Every           time.Duration
	Seconds         float64 // the reads' span
	Reads, Errors   int
	FirstErr        string
	LeasesAtStart   int
	Leases          int   // distinct leases of the account listed during the run (every second), those at the start included
	MaxAtOnce       int   // most leases listed at once
	Tokens          int   // distinct access tokens the application got
	TokenLeases     []int // per token, in order: distinct lease ids the application got with it
	Refreshes       int64
	ListErrors      int
	LeasesPerToken  float64
	Err             string
	AgentLogWarning string
}

// leaseStorage is what N leased reads of one path leave in storage, and how
// fast Vault revokes their leases.
type leaseStorage struct {
	What, Path                string
	Reads, Errors             int
	Seconds                   float64
	LeasesBefore, LeasesAfter int
	EntryBytes                int // one lease entry, sys/expire/id/… (decrypted, through sys/raw), median of 20
	IndexBefore, IndexAfter   int // entries of Vault's index of leases by token, sys/expire/token/…
	IndexEntryBytes           int
	Files                     []fileGrowth // the Raft data directory's files that changed
	DiskWriteBytes            int64        // Vault's /proc/<pid>/io write_bytes over the reads
	Revoke                    revokeResult // revoke-prefix of the path's leases
	RevokeDiskWriteBytes      int64        // … and Vault's write_bytes over it
	DiskWriteErr              string
}

// fileGrowth is one file of the Raft data directory before and after.
type fileGrowth struct {
	Name                      string
	SizeBefore, SizeAfter     int64 // apparent size
	BlocksBefore, BlocksAfter int64 // allocated on disk (st_blocks × 512)
}

// agentResult is the run through a caching Vault Agent.
type agentResult struct {
	Clients         int
	TTL             time.Duration
	Stats           latStats
	Issued          int64
	StartSeconds    float64 // Agent started → first read through it answered
	AgentUS         float64 // CPU per application read, µs
	VaultUS         float64
	PluginUS        float64
	SelfUS          float64
	OtherCores      float64
	LeasesAtStart   int   // the account's leases when the run began (the Agent's first read made one)
	Leases          int   // distinct leases of the account seen during the run (LIST every 250 ms), those at the start included
	MaxAtOnce       int   // most leases of the account listed at once
	EngineReads     int64 // creds/ reads the engine answered during the run (its metrics): each made a lease
	Tokens          int   // distinct access tokens the applications got during the run
	TokenLeases     []int // per token, in order: distinct lease ids the sampler saw with it
	Refreshes       int64 // the simulator's refreshes for the account during the run
	SampleErrors    int
	SampleFirstErr  string
	ListErrors      int
	Err             string
	LeasesPerToken  float64
	AgentLogWarning string // first warning or error line of the Agent's log
}

// partRaft runs part 6 on its own Vault, which it stops at the end.
func (b *bench) partRaft(ctx context.Context) (err error) {
	t0 := time.Now()
	logf("part 6: single-node Vault on integrated storage (Raft)")
	dir := filepath.Join(b.work, "raft")
	pluginDir := filepath.Join(b.work, "plugins")
	_, rv, err := vaultproc.InitPersistent(vaultproc.Config{
		Bin: b.vaultBin, Dir: dir, PluginDir: pluginDir, Storage: vaultproc.StorageRaft,
		LogLevel: "warn", HCL: "raw_storage_endpoint = true\n", ReadyTimeout: 90 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("starting the Raft Vault: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n--- Raft Vault log (tail) ---\n%s", err, rv.LogTail(30))
		}
		rv.Stop()
	}()
	for _, p := range []struct{ name, command, path string }{{engineName, engineCommand, "zoho"}, {floorName, floorCommand, "floor"}} {
		sum, err := filesum.SHA256(filepath.Join(pluginDir, p.command))
		if err != nil {
			return err
		}
		if err := rv.EnablePlugin(ctx, vaultproc.Plugin{Name: p.name, Command: p.command, Version: pluginVersion, SHA256: sum}, p.path); err != nil {
			return err
		}
	}
	tr := newTransport()
	defer tr.CloseIdleConnections()
	mk := func() *api.Client {
		c := newAdminClient(rv.Addr, tr, time.Minute)
		c.SetToken(rv.Token)
		return c
	}
	admin := newAdminClient(rv.Addr, tr, 10*time.Minute)
	admin.SetToken(rv.Token)
	c := mk()
	res := &b.res.Raft
	res.StartSeconds = time.Since(t0).Seconds()
	logf("  Raft Vault %s up, initialized and unsealed (pid %d), plugins mounted, in %.1f s", rv.Addr, rv.PID(), res.StartSeconds)

	// The engine's account for the throughput runs and the targets beside it.
	if _, err := b.createAccount(ctx, c, b.simLong, "bench"); err != nil {
		return err
	}
	targets, err := prepareTargets(ctx, c, "bench")
	if err != nil {
		return err
	}
	p := pids{vault: rv.PID(), engine: waitPlugin(rv.PID(), engineCommand, 10*time.Second), floor: waitPlugin(rv.PID(), floorCommand, 10*time.Second)}
	if p.engine == 0 || p.floor == 0 {
		return fmt.Errorf("plugin processes of the Raft Vault not found (engine pid %d, floor pid %d)", p.engine, p.floor)
	}

	// Leases per token through a caching Agent, over several lifetimes of
	// longer tokens: one read a second, in the background of everything
	// else in this part, waited for at its end.
	agentDone := make(chan struct{})
	actx, acancel := context.WithCancel(ctx)
	go func() {
		defer close(agentDone)
		if err := b.raftAgentLeases(actx, rv, mk, &res.AgentLeases); err != nil {
			res.AgentLeases.Err = err.Error()
			logf("  agent leases: %v", err)
		}
	}()
	defer func() {
		// On an early return: stop it and wait for it (its Agent).
		acancel()
		<-agentDone
	}()

	// Storage and revocation: what 1000 leased reads leave, engine and
	// floor, on their own lease paths, before anything else; their leases
	// are then revoked, timed.
	if _, err := b.createAccount(ctx, c, b.simLong, "storage"); err != nil {
		return err
	}
	for _, t := range []struct{ what, path string }{{"engine", "zoho/creds/storage"}, {"floor", "floor/leased/storage"}, {"engine, unleased", "zoho/static-creds/storage"}} {
		st, err := b.raftStorage(ctx, c, admin, dir, p, t.what, t.path)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		res.Storage = append(res.Storage, st)
	}

	// Throughput. Its leases live an hour and go with this Vault.
	res.Settle, _ = waitQuiet(ctx, p, 0.3, b.set.SettleMax/3)
	logf("  background load before measuring: %.2f cores", res.Settle)
	res.Rounds, res.Round = map[int]int{}, b.set.RaftRound
	for _, n := range b.set.RaftLevels {
		rounds := b.set.RaftRounds
		if n == diagnosticClients {
			rounds = b.set.RaftTargetRounds
		}
		res.Rounds[n] = rounds
		slices, err := interleaved(ctx, mk, targets, n, rounds, b.set.Warm, b.set.RaftRound, p)
		if err != nil {
			return err
		}
		for _, t := range targets {
			lr := merge(t.Key, n, slices[t.Key], t.cpu)
			res.Throughput = append(res.Throughput, lr)
			logLevel(lr)
		}
	}

	for _, l := range res.Throughput {
		if l.Target == "static" {
			res.StaticReads += l.Issued // every successful read, warm-ups included
		}
	}
	if ids, err := listLeases(ctx, c, "zoho/static-creds/bench/"); err != nil {
		res.StaticLeases, res.StaticLeasesErr = -1, err.Error()
	} else {
		res.StaticLeases = len(ids)
	}
	logf("  static-creds/: %d reads, %d leases listed under sys/leases/lookup/zoho/static-creds/bench/ %s", res.StaticReads, res.StaticLeases, res.StaticLeasesErr)

	// Through a Vault Agent.
	if err := b.raftAgent(ctx, rv, mk, p, &res.Agent); err != nil {
		res.Agent.Err = err.Error()
		logf("  agent: %v", err)
	}
	select {
	case <-agentDone:
	default:
		logf("  waiting for the Agent's leases-per-token run to end")
		select {
		case <-agentDone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	logf("  part 6 took %.0f s", res.Seconds)
	return nil
}

// raftStorage reads path (leased) N times and measures the lease entries,
// the index entries, the growth of the Raft data directory and the bytes
// Vault writes to disk; then revokes the leases, timed.
func (b *bench) raftStorage(ctx context.Context, c, admin *api.Client, dir string, p pids, what, path string) (leaseStorage, error) {
	n := b.set.LeaseReads
	st := leaseStorage{What: what, Path: path, Reads: n}
	logf("  storage: %d reads of %s", n, path)
	prefix := path + "/"
	// One read first, so that what the path stores once (an account's token
	// and state) is stored before the measured reads.
	if err := readRaw(ctx, c, path); err != nil {
		return st, err
	}
	before, err := listLeases(ctx, c, prefix)
	if err != nil {
		return st, err
	}
	st.LeasesBefore = len(before)
	st.IndexBefore = countTokenIndex(ctx, c)
	dataDir := filepath.Join(dir, "data")
	files0 := dirFiles(dataDir)
	io0, err0 := procWriteBytes(p.vault)
	t := time.Now()
	st.Errors, _ = parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		return readRaw(ctx, c, path)
	})
	st.Seconds = time.Since(t).Seconds()
	io1, err1 := procWriteBytes(p.vault)
	st.Files = growth(files0, dirFiles(dataDir))
	after, err := listLeases(ctx, c, prefix)
	if err != nil {
		return st, err
	}
	st.LeasesAfter = len(after)
	st.IndexAfter = countTokenIndex(ctx, c)
	var sizes []int
	for i := 0; i < len(after) && i < 20; i++ {
		if s, err := rawEntrySize(ctx, c, "sys/expire/id/"+prefix+after[i]); err == nil {
			sizes = append(sizes, s)
		}
	}
	st.EntryBytes = median(sizes)
	st.IndexEntryBytes = tokenIndexEntrySize(ctx, c)

	st.Revoke = revokePrefixOn(ctx, admin, prefix, what+" leases of part 6's storage reads", int64(len(after)))
	io2, err2 := procWriteBytes(p.vault)
	for _, e := range []error{err0, err1, err2} {
		if e != nil && st.DiskWriteErr == "" {
			st.DiskWriteErr = e.Error()
		}
	}
	if st.DiskWriteErr == "" {
		st.DiskWriteBytes, st.RevokeDiskWriteBytes = io1-io0, io2-io1
	}
	var grew int64
	for _, f := range st.Files {
		grew += f.SizeAfter - f.SizeBefore
	}
	logf("  %s: leases %d → %d, token index %d → %d entries; lease entry %d B, index entry %d B; files grew %d B; Vault wrote %d B to disk for the reads, %d B for the revocation %s",
		what, st.LeasesBefore, st.LeasesAfter, st.IndexBefore, st.IndexAfter, st.EntryBytes, st.IndexEntryBytes, grew, st.DiskWriteBytes, st.RevokeDiskWriteBytes, st.DiskWriteErr)
	return st, nil
}

// countTokenIndex counts the entries of Vault's index of leases by token
// (sys/expire/token/<token>/<lease>), through sys/raw; -1 if it cannot.
func countTokenIndex(ctx context.Context, c *api.Client) int {
	tokens, err := rawList(ctx, c, "sys/expire/token/")
	if err != nil {
		return -1
	}
	n := 0
	for i, t := range tokens {
		if i >= 100 {
			return -1 // more tokens than this harness made: not its index
		}
		keys, err := rawList(ctx, c, "sys/expire/token/"+t)
		if err != nil {
			return -1
		}
		n += len(keys)
	}
	return n
}

// tokenIndexEntrySize is the size of one entry of the index of leases by
// token, or 0.
func tokenIndexEntrySize(ctx context.Context, c *api.Client) int {
	tokens, err := rawList(ctx, c, "sys/expire/token/")
	if err != nil || len(tokens) == 0 {
		return 0
	}
	keys, err := rawList(ctx, c, "sys/expire/token/"+tokens[0])
	if err != nil || len(keys) == 0 {
		return 0
	}
	s, _ := rawEntrySize(ctx, c, "sys/expire/token/"+tokens[0]+keys[0])
	return s
}

// rawList lists a storage prefix through sys/raw.
func rawList(ctx context.Context, c *api.Client, prefix string) ([]string, error) {
	sec, err := c.Logical().ListWithContext(ctx, "sys/raw/"+prefix)
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	raw, _ := sec.Data["keys"].([]interface{})
	out := make([]string, 0, len(raw))
	for _, k := range raw {
		out = append(out, fmt.Sprint(k))
	}
	return out, nil
}

// fileSize is a file's apparent size and the bytes allocated to it.
type fileSize struct{ size, blocks int64 }

// dirFiles lists the regular files under dir with their sizes.
func dirFiles(dir string) map[string]fileSize {
	out := map[string]fileSize{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		fsz := fileSize{size: info.Size()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			fsz.blocks = st.Blocks * 512
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = fsz
		return nil
	})
	return out
}

// growth lists the files whose size changed, or that appeared or went.
func growth(before, after map[string]fileSize) []fileGrowth {
	names := map[string]bool{}
	for k := range before {
		names[k] = true
	}
	for k := range after {
		names[k] = true
	}
	var out []fileGrowth
	for k := range names {
		a, b := before[k], after[k]
		if a == b {
			continue
		}
		out = append(out, fileGrowth{Name: k, SizeBefore: a.size, SizeAfter: b.size, BlocksBefore: a.blocks, BlocksAfter: b.blocks})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// procWriteBytes is the bytes a process caused to be written to disk
// (write_bytes of /proc/<pid>/io).
func procWriteBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io: no write_bytes", pid)
}

// agentProc is a caching Vault Agent in front of the Raft Vault.
type agentProc struct {
	proc    *vaultproc.Process
	listen  string
	logPath string
	tr      *http.Transport
	started float64 // seconds from its start to the first read answered through it
}

// client is an API client of the Agent, without a Vault token (the Agent
// adds its auto-auth token).
func (ag *agentProc) client() *api.Client {
	ac := newAdminClient("http://"+ag.listen, ag.tr, time.Minute)
	ac.ClearToken()
	return ac
}

// stop ends the Agent and returns the first warning of its log.
func (ag *agentProc) stop() string {
	ag.proc.Stop(10 * time.Second)
	ag.tr.CloseIdleConnections()
	return firstWarning(ag.logPath)
}

// startAgent starts a caching Agent (its own directory name under the run's
// temporary directory) with a token that may read path only, and waits
// until a read of path through it is answered.
func (b *bench) startAgent(ctx context.Context, rv *vaultproc.Server, c *api.Client, name, path string) (*agentProc, error) {
	policy := "bench-" + name
	if err := c.Sys().PutPolicyWithContext(ctx, policy, `path "`+path+`" { capabilities = ["read"] }`); err != nil {
		return nil, fmt.Errorf("writing the Agent's policy: %w", err)
	}
	tok, err := c.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{policy}, TTL: "2h", DisplayName: "bench-" + name})
	if err != nil {
		return nil, fmt.Errorf("creating the Agent's token: %w", err)
	}
	dir := filepath.Join(b.work, name)
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(tok.Auth.ClientToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := vaultproc.FreePort()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`vault {
  address = %q
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
cache {}
api_proxy {
  use_auto_auth_token = true
}
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, rv.Addr, tokenFile, listen)
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "agent.log")
	t0 := time.Now()
	proc, err := vaultproc.StartProcess(b.vaultBin, []string{"agent", "-config=" + cfgPath, "-log-level=warn"}, vaultproc.Env(home), logPath)
	if err != nil {
		return nil, fmt.Errorf("starting vault agent: %w", err)
	}
	ag := &agentProc{proc: proc, listen: listen, logPath: logPath, tr: newTransport()}
	// Wait until the Agent answers a read (its first one goes to Vault).
	probe := ag.client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if gone, _ := proc.Exited(); gone {
			ag.stop()
			return nil, fmt.Errorf("vault agent exited: %s", lastLog(logPath, 20))
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := readAccessToken(rctx, probe, path)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			ag.stop()
			return nil, fmt.Errorf("no read through the Agent within 30 s: %v; %s", err, lastLog(logPath, 20))
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			ag.stop()
			return nil, ctx.Err()
		}
	}
	ag.started = time.Since(t0).Seconds()
	return ag, nil
}

// raftAgent runs a caching Vault Agent in front of the Raft Vault and reads
// an account on the short-lived simulator through it with the throughput
// target's clients: reads/s through the Agent, and the leases it takes.
func (b *bench) raftAgent(ctx context.Context, rv *vaultproc.Server, mk func() *api.Client, p pids, ar *agentResult) error {
	clients := diagnosticClients
	ar.Clients, ar.TTL = clients, b.set.ShortTTL
	logf("  agent: %d clients through a caching Vault Agent for %s, token lifetime %s", clients, b.set.AgentDuration, ar.TTL)
	c := mk()
	a, err := b.createAccount(ctx, c, b.simShort, "agent")
	if err != nil {
		return err
	}
	path := "zoho/creds/" + a.name
	ag, err := b.startAgent(ctx, rv, c, "agent", path)
	if err != nil {
		return err
	}
	defer func() { ar.AgentLogWarning = ag.stop() }()
	viaAgent := ag.client
	ar.StartSeconds = ag.started
	p.agent = ag.proc.PID()

	start, err := listLeases(ctx, c, path+"/")
	if err != nil {
		return err
	}
	ar.LeasesAtStart = len(start)
	reads0, err := engineReads(ctx, c)
	if err != nil {
		return err
	}
	refreshes0 := a.sim.ClientCounters(a.id).Refreshes

	// Beside the load: the account's leases listed every 250 ms, and one
	// application's read every 100 ms for the token and lease it gets.
	var mu sync.Mutex
	tally := newLeaseTally(start)
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			ids, err := listLeases(wctx, c, path+"/")
			mu.Lock()
			if err != nil {
				if wctx.Err() == nil {
					ar.ListErrors++
				}
			} else {
				tally.listed(ids)
			}
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		sc := viaAgent()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			rctx, cancel := context.WithTimeout(wctx, 10*time.Second)
			token, lease, err := readAccessToken(rctx, sc, path)
			cancel()
			mu.Lock()
			switch {
			case err != nil:
				if wctx.Err() == nil {
					ar.SampleErrors++
					if ar.SampleFirstErr == "" {
						ar.SampleFirstErr = err.Error()
					}
				}
			default:
				tally.read(token, lease)
			}
			mu.Unlock()
		}
	}()
	sl := closedLoop(ctx, viaAgent, path, clients, b.set.Warm, b.set.AgentDuration, p)
	wcancel()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	reads1, err := engineReads(ctx, c)
	if err != nil {
		return err
	}
	// A last listing, for a lease made after the poller's last look.
	if ids, err := listLeases(ctx, c, path+"/"); err == nil {
		tally.listed(ids)
	}
	ar.Refreshes = int64(a.sim.ClientCounters(a.id).Refreshes - refreshes0)
	ar.EngineReads = reads1 - reads0
	ar.Issued = sl.issued
	ar.Leases, ar.Tokens, ar.TokenLeases, ar.LeasesPerToken, ar.MaxAtOnce = tally.result()
	ar.Stats = summarise(sl.lats, sl.errs, sl.cpu.wall.Seconds(), sl.firstErr)
	if n := float64(ar.Stats.N); n > 0 {
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / n }
		ar.AgentUS, ar.VaultUS, ar.PluginUS, ar.SelfUS = us(sl.cpu.agent), us(sl.cpu.vault), us(sl.cpu.engine), us(sl.cpu.self)
	}
	ar.OtherCores = sl.cpu.otherCores()
	logf("  agent: %.0f reads/s, p50 %.2f ms, p99 %.2f ms, %d errors; µs/read: agent %.0f, vault %.0f, plugin %.0f, harness %.0f; others %.2f cores",
		ar.Stats.OpsPerS, ms(ar.Stats.P50), ms(ar.Stats.P99), ar.Stats.Errors, ar.AgentUS, ar.VaultUS, ar.PluginUS, ar.SelfUS, ar.OtherCores)
	logf("  agent: %d leases (%d at the start, at most %d at once; the engine answered %d reads) for %d tokens (leases per token seen: %v); %d refreshes; sampler errors %d %s",
		ar.Leases, ar.LeasesAtStart, ar.MaxAtOnce, ar.EngineReads, ar.Tokens, ar.TokenLeases, ar.Refreshes, ar.SampleErrors, ar.SampleFirstErr)
	return nil
}

// raftAgentLeases runs a second caching Agent in front of the Raft Vault for
// AgentLeaseLifetimes lifetimes of an account on a simulator whose tokens
// live AgentLeaseTTL: one application reads through it every second and
// notes the token and lease it gets, and the account's leases are listed on
// Vault every second. It runs beside part 6's other measurements (one read a
// second), from the part's start.
func (b *bench) raftAgentLeases(ctx context.Context, rv *vaultproc.Server, mk func() *api.Client, ar *agentLeaseResult) error {
	ar.TTL, ar.Lifetimes, ar.Every = b.set.AgentLeaseTTL, b.set.AgentLeaseLifetimes, time.Second
	dur := ar.TTL * time.Duration(ar.Lifetimes)
	logf("  agent leases: one read a second through a second caching Agent for %s (%d lifetimes of %s tokens), beside the rest of part 6", dur, ar.Lifetimes, ar.TTL)
	sim := zohosim.New(zohosim.Config{AccessTokenTTL: ar.TTL})
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("starting the simulator: %w", err)
	}
	defer sim.Close()
	c := mk()
	a, err := b.createAccount(ctx, c, sim, "agentlong")
	if err != nil {
		return err
	}
	path := "zoho/creds/" + a.name
	ag, err := b.startAgent(ctx, rv, c, "agentlong", path)
	if err != nil {
		return err
	}
	defer func() { ar.AgentLogWarning = ag.stop() }()
	start, err := listLeases(ctx, c, path+"/")
	if err != nil {
		return err
	}
	ar.LeasesAtStart = len(start)
	tally := newLeaseTally(start)
	refreshes0 := a.sim.ClientCounters(a.id).Refreshes
	sc := ag.client()
	t0 := time.Now()
	tick := time.NewTicker(ar.Every)
	defer tick.Stop()
	for time.Since(t0) < dur {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		token, lease, err := readAccessToken(rctx, sc, path)
		cancel()
		ar.Reads++
		if err != nil {
			ar.Errors++
			if ar.FirstErr == "" {
				ar.FirstErr = err.Error()
			}
		} else {
			tally.read(token, lease)
		}
		ids, err := listLeases(ctx, c, path+"/")
		if err != nil {
			ar.ListErrors++
			continue
		}
		tally.listed(ids)
	}
	ar.Seconds = time.Since(t0).Seconds()
	ar.Refreshes = int64(a.sim.ClientCounters(a.id).Refreshes - refreshes0)
	ar.Leases, ar.Tokens, ar.TokenLeases, ar.LeasesPerToken, ar.MaxAtOnce = tally.result()
	logf("  agent leases: %d reads (%d errors) over %.0f s: %d leases (%d at the start, at most %d at once) for %d tokens (per token seen: %v; %.2f per token); %d refreshes",
		ar.Reads, ar.Errors, ar.Seconds, ar.Leases, ar.LeasesAtStart, ar.MaxAtOnce, ar.Tokens, ar.TokenLeases, ar.LeasesPerToken, ar.Refreshes)
	return nil
}

// leaseTally counts an account's leases as Vault lists them and, per access
// token an application got through an Agent, the lease ids it came with.
type leaseTally struct {
	leases      map[string]bool
	maxAtOnce   int
	tokenOrder  []string
	tokenLeases map[string]map[string]bool
}

func newLeaseTally(start []string) *leaseTally {
	t := &leaseTally{leases: map[string]bool{}, tokenLeases: map[string]map[string]bool{}}
	t.listed(start)
	return t
}

// listed notes one listing of the account's leases.
func (t *leaseTally) listed(ids []string) {
	t.maxAtOnce = max(t.maxAtOnce, len(ids))
	for _, id := range ids {
		t.leases[id] = true
	}
}

// read notes the token and lease one read got.
func (t *leaseTally) read(token, lease string) {
	if t.tokenLeases[token] == nil {
		t.tokenLeases[token] = map[string]bool{}
		t.tokenOrder = append(t.tokenOrder, token)
	}
	t.tokenLeases[token][lease] = true
}

// result returns the distinct leases listed, the distinct tokens read, the
// leases seen with each token in order, leases per token and the most leases
// listed at once.
func (t *leaseTally) result() (leases, tokens int, perToken []int, leasesPerToken float64, maxAtOnce int) {
	for _, tok := range t.tokenOrder {
		perToken = append(perToken, len(t.tokenLeases[tok]))
	}
	return len(t.leases), len(t.tokenOrder), perToken, ratio(float64(len(t.leases)), float64(len(t.tokenOrder))), t.maxAtOnce
}

// readAccessToken reads path and returns the answer's access token and lease id.
func readAccessToken(ctx context.Context, c *api.Client, path string) (string, string, error) {
	resp, err := c.Logical().ReadRawWithContext(ctx, path)
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return "", "", err
	}
	if resp == nil || resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("GET %s: no answer", path)
	}
	var body struct {
		LeaseID string `json:"lease_id"`
		Data    struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", "", err
	}
	if body.Data.AccessToken == "" {
		return "", "", fmt.Errorf("GET %s: no access_token", path)
	}
	return body.Data.AccessToken, body.LeaseID, nil
}

// engineReads is the number of creds/ reads the engine has answered (cache
// hits and misses from its metrics).
func engineReads(ctx context.Context, c *api.Client) (int64, error) {
	resp, err := c.Logical().ReadRawWithContext(ctx, "zoho/metrics")
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var n float64
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == "zoho_creds_cache_hits_total" || f[0] == "zoho_creds_cache_misses_total") {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, err
			}
			n += v
			found++
		}
	}
	if found != 2 {
		return 0, fmt.Errorf("zoho/metrics: no creds/ read counters")
	}
	return int64(n), nil
}

// firstWarning is the first line of a log with a warning or an error.
func firstWarning(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "[WARN]") || strings.Contains(line, "[ERROR]") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// lastLog is the last n lines of a log file.
func lastLog(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
