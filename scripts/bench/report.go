// The results of a run and the Markdown report rendered from them, with the
// targets each part is judged against.

package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	Started      time.Time
	Quick        bool
	Machine      machine
	GoVersion    string
	VaultVersion string
	BuildSeconds float64
	// PluginBinaryBytes is the engine plugin's binary on disk.
	PluginBinaryBytes int64
	TotalSeconds      float64
	Partial           bool          // -parts: not every part ran
	Settle            float64       // other processes' load (cores) when part 1 began
	SettleWaited      time.Duration // how long the run waited for it

	InProcess   []goBench // the backend's own benchmarks
	Throughput  []levelResult
	AnswerBytes map[string]int
	Revocations []revokeResult
	Bursts      []burstRow
	Boundary    boundaryResult
	LeaseEnd    leaseEndResult
	// static-creds/ reads of part 1 and the leases listed under their path
	// afterwards (-1: the listing failed).
	StaticReads     int64
	StaticLeases    int
	StaticLeasesErr string
	Leases          leaseResult
	Many            []manyResult      // part 4, one per size
	Heaps           []heapProbeResult // part 4's heap probe at each size, the first with a profile
	Spread          spreadResult
	Raft            raftResult
	Commit          string
}

type revokeResult struct {
	Prefix, What string
	Leases       int64 // -1: not counted
	Seconds      float64
	Err          string
}

// Targets.
const (
	targetSameLease    = 1.0 // creds/ ÷ the floor with the same lease shape
	targetStaticConst  = 1.0 // static-creds/ ÷ the unleased floor
	targetRaftStatic   = 2.5 // on Raft: static-creds/ ÷ the leased floor
	targetBoundary     = 1.5
	targetLeaseEnd     = 1.5 // p99 while one token's leases end ÷ steady, window ≥ 1 min
	targetAgentSpeedup = 10.0
	targetAgentLeases  = 2.0         // Vault leases per caching Agent per token
	targetHeapPerAcct  = 2048.0      // live heap bytes per account (heap probe)
	targetStart        = time.Second // reload → first creds/ read, up to targetManyAccounts
	targetList         = time.Second // LIST config/, up to targetManyAccounts
	targetSpread       = 1.5
	targetManyAccounts = 100000
)

// rssTargetMB is the plugin RSS target of a fresh process holding exactly n
// accounts: at 100 000 only (at 10 000 the RSS is reported, and the memory
// target is the live heap per account, heapPerAccount).
func rssTargetMB(n int) (float64, bool) {
	if n == 100000 {
		return 256, true
	}
	return 0, false
}

// heap is the heap probe at size n, if it ran there.
func (r *results) heap(n int) (heapProbeResult, bool) {
	for _, h := range r.Heaps {
		if h.Accounts == n {
			return h, true
		}
	}
	return heapProbeResult{}, false
}

// heapOK: the probe ran and the live heap per account is within target.
func heapOK(h heapProbeResult) bool {
	return h.Err == "" && h.HeapPerAccount > 0 && h.HeapPerAccount <= targetHeapPerAcct
}

var targetNames = map[string]string{
	"engine":    "engine `creds/` (cached token)",
	"static":    "engine `static-creds/` (no lease)",
	"leased":    "floor `leased/` (same body, 1 h lease)",
	"const":     "floor `const/` (same body, no lease)",
	"kv":        "KV v2 read (same fields)",
	"leasedint": "floor `leasedint/` (same body, lease shaped like the engine's)",
}

// levelKeys are the targets of parts 1 and 6, in table order.
var levelKeys = []string{"engine", "static", "leased", "leasedint", "const", "kv"}

func passFail(ok bool) string {
	if ok {
		return "**PASS**"
	}
	return "**FAIL**"
}

func (r *results) level(key string, clients int) (levelResult, bool) {
	return findLevel(r.Throughput, key, clients)
}

// raftLevel is a target at a level of part 6.
func (r *results) raftLevel(key string, clients int) (levelResult, bool) {
	return findLevel(r.Raft.Throughput, key, clients)
}

// renderLevels writes the closed-loop table of the targets keys at every
// level, then the engine's ratios to the floor and KV v2 (parts 1 and 6).
func renderLevels(p func(string, ...interface{}), all []levelResult, levels []int, keys []string) {
	p("| Target | Clients | Reads/s | p50 ms | p99 ms | Errors | Vault CPU µs/read | Plugin CPU µs/read | Load generator CPU µs/read | Other load, cores |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range levels {
		for _, key := range keys {
			l, ok := findLevel(all, key, n)
			if !ok {
				continue
			}
			plugin := fmt.Sprintf("%.0f", l.PluginUS)
			if key == "kv" {
				plugin = "—"
			}
			p("| %s | %d | %.0f | %.2f | %.2f | %d | %.0f | %s | %.0f | %.2f |\n", targetNames[key], n, l.Stats.OpsPerS, ms(l.Stats.P50), ms(l.Stats.P99), l.Stats.Errors, l.VaultUS, plugin, l.SelfUS, l.OtherCores)
		}
	}
	p("\n| Clients | `creds/` ÷ leased floor | `creds/` ÷ floor with the same lease shape | `creds/` ÷ unleased floor | `creds/` ÷ KV v2 | `static-creds/` ÷ unleased floor | `static-creds/` ÷ leased floor | `static-creds/` ÷ KV v2 |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range levels {
		e, _ := findLevel(all, "engine", n)
		st, _ := findLevel(all, "static", n)
		l, _ := findLevel(all, "leased", n)
		li, _ := findLevel(all, "leasedint", n)
		c, _ := findLevel(all, "const", n)
		k, _ := findLevel(all, "kv", n)
		r := func(a, b levelResult) string {
			if a.Stats.OpsPerS == 0 || b.Stats.OpsPerS == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f×", ratio(a.Stats.OpsPerS, b.Stats.OpsPerS))
		}
		p("| %d | %s | %s | %s | %s | %s | %s | %s |\n", n, r(e, l), r(e, li), r(e, c), r(e, k), r(st, c), r(st, l), r(st, k))
	}
}

func findLevel(all []levelResult, key string, clients int) (levelResult, bool) {
	for _, l := range all {
		if l.Target == key && l.Clients == clients {
			return l, true
		}
	}
	return levelResult{}, false
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

func renderMarkdown(r *results, set settings) string {
	var w strings.Builder
	p := func(format string, args ...interface{}) { fmt.Fprintf(&w, format, args...) }

	p("# Benchmarks\n\n")
	p("Generated by `go run ./scripts/bench` (`make bench`): the numbers below are the output of the last full run on the machine described, not edited by hand. Rerun it to refresh them; `-quick` is a shorter smoke test of the harness.\n\n")
	p("Everything runs on this one machine: one real Vault dev server (in-memory storage) for parts 1–5 and then a single-node Vault on integrated storage (Raft) for part 6, the engine as an external plugin, a minimal \"floor\" plugin built by the harness (`scripts/bench/floorplugin`), in-process Zoho simulators on 127.0.0.1 and the load generator itself (Go `api.Client`, `MaxRetries=0`, one shared `http.Transport`). The load generator takes CPU from Vault, and so does anything else running on the machine (shown as *other load*, from `/proc/stat` less the processes of the run), so absolute throughput is a lower bound; the ratios between targets measured the same way, interleaved, are what to compare.\n\n")

	took := ""
	if !r.Quick && !r.Partial {
		took = fmt.Sprintf(" (this one took %.1f minutes)", r.TotalSeconds/60)
	}
	p("Run it with `make bench` (which also runs the backend's Go benchmarks), or `go run ./scripts/bench [-quick] [-many SIZES] [-out FILE]` from the repository root; the Vault binary is `$VAULT_BIN`, else what `scripts/vault.sh` prints. A full run writes this file%s; `-quick` writes only with `-out`; `-keep` keeps the temporary directory with Vault's log. `-many` (`BENCH_MANY` for make) sets the sizes of part 4: `make bench` runs it at 10 000 accounts; this file is meant to be made with `make bench BENCH_MANY=10000,100000` (this run: %s).\n\n", took, manySizesText(r))
	p("Two measurements follow real token lifetimes and set a floor under a full run's duration: part 3's lease ends come when a %s token nears its expiry, about %.0f minutes after the dev server starts (the parts before it run meanwhile; part 4 waits for it), and part 6 lasts at least the %d lifetimes of %s tokens its caching-Agent lease count spans (%.0f minutes; the rest of part 6 runs meanwhile). A full run at 10 000 accounts takes about 50 minutes, at 10 000 and 100 000 about 70.\n\n",
		durText(set.LeaseEndTTL), (set.LeaseEndTTL - leaseMarginOf(set.LeaseEndTTL) - leaseSpreadOf(set.LeaseEndTTL)).Minutes(), set.AgentLeaseLifetimes, durText(set.AgentLeaseTTL), (set.AgentLeaseTTL * time.Duration(set.AgentLeaseLifetimes)).Minutes())
	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPUs (`nproc`) | %d |\n", r.Machine.CPUs)
	p("| CPU model | %s |\n", r.Machine.Model)
	p("| Memory | %s |\n", r.Machine.MemTotal)
	p("| Kernel | %s |\n", r.Machine.Kernel)
	p("| Go | %s |\n", r.GoVersion)
	p("| Vault | %s |\n", r.VaultVersion)
	p("| Engine source | %s |\n", r.Commit)
	p("| Date | %s |\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	mode := "full"
	if r.Quick {
		mode = "quick (`-quick`: shorter levels, fewer accounts)"
	}
	if r.Partial {
		mode += ", some parts only (`-parts`)"
	}
	p("| Run | %s; %.0f s in all, of which %.0f s building the plugins |\n", mode, r.TotalSeconds, r.BuildSeconds)
	if len(r.Throughput) > 0 {
		lo, hi, sum := r.Throughput[0].OtherCores, r.Throughput[0].OtherCores, 0.0
		for _, l := range r.Throughput {
			lo, hi = math.Min(lo, l.OtherCores), math.Max(hi, l.OtherCores)
			sum += l.OtherCores
		}
		p("| Other load during part 1 | %.2f cores on average (%.2f–%.2f per target and level); %.2f when it began, after waiting %.0f s for a quiet machine |\n",
			sum/float64(len(r.Throughput)), lo, hi, r.Settle, r.SettleWaited.Seconds())
	}
	p("\n")

	// Summary.
	p("## Summary\n\n| Figure | Measured | Target | Result |\n|---|---|---|---|\n")
	e16, ok1 := r.level("engine", diagnosticClients)
	li16, ok2 := r.level("leasedint", diagnosticClients)
	if ok1 && ok2 {
		measured, judged := floorRatioText(e16, li16)
		p("| Cached `creds/` read ÷ leased floor with the same lease shape (renewable, engine-shaped internal data), %d clients | %s | ≥ %.1f× | %s |\n", diagnosticClients, measured, targetSameLease, passFail(judged >= targetSameLease && e16.Stats.Errors == 0))
	}
	s16, ok3 := r.level("static", diagnosticClients)
	c16, ok4 := r.level("const", diagnosticClients)
	if ok3 && ok4 {
		measured, judged := floorRatioText(s16, c16)
		p("| `static-creds/` read ÷ unleased floor (`const/`), %d clients | %s | ≥ %.1f× | %s |\n", diagnosticClients, measured, targetStaticConst, passFail(judged >= targetStaticConst && s16.Stats.Errors == 0))
	}
	if ok3 {
		p("| Leases created by part 1's `static-creds/` reads (`LIST sys/leases/lookup/zoho/static-creds/bench/` after %d reads) | %s | 0 | %s |\n",
			r.StaticReads, leaseCountText(r.StaticLeases, r.StaticLeasesErr), passFail(r.StaticLeases == 0 && r.StaticReads > 0))
	}
	if len(r.Bursts) > 0 {
		minC, maxC, errs, exact, total, maxDuring := r.Bursts[0].Calls, r.Bursts[0].Calls, 0, 0, int64(0), int64(0)
		accounts := map[string]bool{}
		for _, b := range r.Bursts {
			minC, maxC = min(minC, b.Calls), max(maxC, b.Calls)
			maxDuring = max(maxDuring, b.Calls-b.CallsAhead)
			errs += b.Errors
			total += b.Calls
			if b.Calls == 1 {
				exact++
			}
			accounts[b.Account] = true
		}
		p("| Token calls per account per lifetime, %d concurrent readers at each expiry (%d accounts × %d lifetimes) | min %d, max %d (%d of %d lifetimes exactly 1; %d calls in all; at most %d during a burst); %d read errors | exactly 1 | %s |\n",
			r.Bursts[0].Readers, len(accounts), len(r.Bursts)/max(1, len(accounts)), minC, maxC, exact, len(r.Bursts), total, maxDuring, errs, passFail(minC == 1 && maxC == 1 && errs == 0))
	}
	bd := r.Boundary
	if bd.Reads > 0 {
		p("| p99 across a refresh ÷ steady p99 | %.2f (%.2f ms vs %.2f ms; %d refreshes) | ≤ %.1f | %s |\n",
			bd.Ratio, ms(bd.RefreshP99), ms(bd.QuietP99), bd.Refreshes, targetBoundary, passFail(bd.Ratio > 0 && bd.Ratio <= targetBoundary && bd.Refreshes >= 2 && bd.Errors == 0))
	}
	if le := r.LeaseEnd; le.TTL > 0 {
		summaryLeaseEnd(p, le)
	}
	for _, m := range r.Many {
		summaryMany(p, r, m, set.CreateLimit)
	}
	sp := r.Spread
	if sp.WindowSeconds > 0 {
		p("| Background refreshes: busiest 10 s ÷ mean over one token lifetime (%d accounts minted together) | %.2f (busiest %d, mean %.1f per 10 s; %.2f refreshes per account in that lifetime, the one after the first) | ≤ %.1f | %s |\n",
			sp.Accounts, sp.Ratio, sp.Busiest, sp.Mean, ratio(float64(sp.Total), float64(sp.Accounts)), targetSpread, passFail(sp.Ratio > 0 && sp.Ratio <= targetSpread))
	}
	summaryRaft(p, r)
	p("\n")

	if len(r.Throughput) > 0 {
		renderThroughput(p, r, set)
	}
	if len(r.Bursts) > 0 {
		p("## 2. Token calls per account per lifetime, bursts at expiry\n\n")
		p("Simulator access tokens live %s. Accounts are created %s apart so that their bursts do not overlap. For each account, %d times: wait until the token served last expires (`expires_at` + 1.25 s, as `expires_at` is whole seconds), then release %d concurrent `creds/` reads at once. *Token calls* are the simulator's token-endpoint requests for the account's client since the previous burst (for the first burst: since the account was created, its grant-code exchange not counted), so each row is one token lifetime and should hold exactly one refresh. Between bursts nobody reads; the burst's leases end a margin before the token expires and the last one revokes the token at Zoho (*revocations*).\n\n",
			set.ShortTTL, (set.ShortTTL / time.Duration(max(1, set.BurstAccounts))).Round(100*time.Millisecond), set.BurstLifetimes, set.BurstReaders)
		p("| Account | Lifetime | Token calls | of which before the burst | Revocations | Distinct tokens served | Errors | Burst wall ms | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, b := range r.Bursts {
			p("| %s | %d | %d | %d | %d | %d | %d | %.0f | %.1f | %.1f |\n", b.Account, b.Burst, b.Calls, b.CallsAhead, b.Revokes, b.Tokens, b.Errors, ms(b.Wall), ms(b.P50), ms(b.P99))
		}
		p("\n*Before the burst*: refreshes ahead of expiry between bursts (Vault's periodic function refreshes a token in use once its refresh point has passed); the rest happened while the burst's readers were being served, either the one refresh of an expired token they all waited for or a background refresh one of them started.\n")
		for _, b := range r.Bursts {
			if b.FirstErr != "" {
				p("\nFirst error (%s, lifetime %d): `%s`\n", b.Account, b.Burst, oneLine(b.FirstErr))
				break
			}
		}
		p("\n")
	}
	if bd.Reads > 0 || r.LeaseEnd.TTL > 0 {
		p("## 3. Read latency across refresh boundaries and lease ends\n\n")
	}
	if bd.Reads > 0 {
		p("One account, simulator tokens living %s. Open loop: a read is started every %.1f ms (%.0f reads/s) for %.0f s, each in its own goroutine whatever the previous ones are doing. Refreshes are timed from the simulator's counter (polled every 20 ms). When each read's lease ends is taken from its answer (arrival + `lease_duration`; Vault revokes a lease at its end): %d of the part's leases ended while it read, in %d seconds with at least %d ends each (a quarter of the read rate: a *burst* of lease ends), at most %d in one second. Reads are classed by start time: *at lease ends* = within ±%s of a burst second; *across a refresh* = within ±%s of a refresh (%d of the %d refreshes fell inside a lease-end window, and the reads in both windows count in both classes); *steady* = neither. The first 2 s are warm-up. Only this account's leases are counted: no floor plugin lease ends meanwhile (part 1's were revoked after it, part 5's one `leased/` lease lives an hour)%s. Other load meanwhile: %.2f cores.\n\n",
			bd.TTL, 1000/bd.Rate, bd.Rate, bd.Seconds, bd.LeaseEnds, bd.BurstSeconds, bd.BurstMin, bd.BusiestEnds, secs(leaseHalfWindow), secs(refreshHalfWindow), bd.RefreshesAtLeaseEnd, bd.Refreshes, spreadAside(r), bd.OtherCores)
		p("| Reads | Errors | Refreshes | p50 / p99 across refreshes (n) | p50 / p99 steady (n) | p50 / p99 at lease ends (n) | p50 / p99 all |\n|---:|---:|---:|---|---|---|---|\n")
		p("| %d | %d | %d | %.2f / %.2f ms (%d) | %.2f / %.2f ms (%d) | %.2f / %.2f ms (%d) | %.2f / %.2f ms |\n\n",
			bd.Reads, bd.Errors, bd.Refreshes, ms(bd.RefreshP50), ms(bd.RefreshP99), bd.RefreshN, ms(bd.QuietP50), ms(bd.QuietP99), bd.QuietN,
			ms(bd.LeaseP50), ms(bd.LeaseP99), bd.LeaseN, ms(bd.AllP50), ms(bd.AllP99))
		p("p99 across refreshes ÷ steady p99 = **%.2f** (target ≤ %.1f); p99 at lease ends ÷ steady p99 = %.2f (informational: with %s tokens the engine's lease-end window is %s, so these ends are far denser than at a real lifetime; the lease-end target is judged below, at a lifetime where the window is a minute or more).\n",
			bd.Ratio, targetBoundary, bd.LeaseRatio, secs(bd.TTL), secs(leaseSpreadOf(bd.TTL)))
		p("\nLease ends per second of the part (from its start): `%s`.\n", joinInts(bd.LeaseEndsPerSecond))
		p("\nThe account's first token was minted %.1f s into the part; the simulator saw refreshes at %s s", bd.Created.Seconds(), strings.Join(trimS(roundAll(bd.RefreshAt)), ", "))
		if n := len(bd.RefreshAt); n > 0 {
			p(": %.2f refreshes per token lifetime while read steadily", float64(n)/((bd.RefreshAt[n-1]-bd.Created).Seconds()/bd.TTL.Seconds()))
		}
		p(".\n")
		if len(bd.Slowest) > 0 {
			p("\nThe seconds with the slowest reads (start time from the beginning of the part; distance to the nearest refresh and to the middle of the nearest second with a burst of lease ends, negative = before it):")
			for i, sl := range bd.Slowest {
				sep := ";"
				if i == len(bd.Slowest)-1 {
					sep = "."
				}
				p(" %.0f s: %.0f ms (%+.1f s from a refresh, %+.1f s from lease ends)%s", sl.At.Seconds(), ms(sl.Max), sl.ToRefresh.Seconds(), sl.ToLeaseEnd.Seconds(), sep)
			}
			p("\n")
		}
		if bd.Ratio > 0 && bd.Ratio < 0.8 {
			p("\nA ratio well below 1 means the steady reads held slower outliers than the reads across refreshes: stalls unrelated to refreshing (see the slowest seconds above) set the steady p99.\n")
		}
		if bd.FirstErr != "" {
			p("\nFirst error: `%s`\n", oneLine(bd.FirstErr))
		}
		p("\n")
	}
	if r.LeaseEnd.TTL > 0 {
		renderLeaseEnd(p, r)
	}
	if len(r.Many) > 0 {
		renderMany(p, r, set)
	}
	if sp.Accounts > 0 {
		p("### Spread of background refreshes\n\n")
		p("%d accounts on a simulator whose tokens live %s, created as fast as the engine takes them (%.1f s, %d at a time), so that every token is minted within that time: the worst case, as after a bulk import. Every account is then read once every %s (reads evenly spaced), which keeps it *in use* for the periodic function. The simulator's refresh counter is polled every 0.5 s. The window is one token lifetime from the first refresh (%.0f s), in which every account in use refreshes at least once and which an even spread would fill evenly; *mean* is the window's refreshes ÷ its 10 s buckets. This observation runs in the background during parts 5, 3 and 2.\n\n",
			sp.Accounts, sp.TTL, sp.CreateSeconds, set.CreateLimit, sp.ReadEvery, sp.WindowSeconds)
		p("| First refresh after creation began | Refreshes in window | Busiest 10 s | Mean per 10 s | Busiest ÷ mean | As many refreshes as accounts after | Refreshes per account in the window | Read errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		done := "not within the window"
		if sp.AllDoneAfter >= 0 {
			done = fmt.Sprintf("%.0f s", sp.AllDoneAfter)
		}
		p("| %.0f s | %d | %d | %.1f | **%.2f** | %s | %.2f | %d |\n\n", sp.FirstRefreshAt, sp.Total, sp.Busiest, sp.Mean, sp.Ratio, done, ratio(float64(sp.Total), float64(sp.Accounts)), sp.ReadErrors)
		p("*Refreshes per account in the window* is the token requests an account in steady use spends per token lifetime on background refreshes (Zoho allows 10 per refresh token per 10 minutes; its tokens live an hour).\n\n")
		p("Refreshes per 10 s in the window: `%s`.\n\n", joinInts(sp.Buckets))
		p("Refreshes per 10 s from the start of creation: `%s`.\n\n", joinInts(sp.Timeline))
		if len(sp.PeriodicAt) > 0 {
			at := make([]string, len(sp.PeriodicAt))
			for i, t := range sp.PeriodicAt {
				at[i] = fmt.Sprintf("%.1f", t)
			}
			p("Runs of the periodic function (`zoho_periodic_runs_total` polled with the counter) seen at %s s after creation began; refreshes in the 2 s before each was seen: `%s` (%.1f per 2 s on average over the window).\n\n",
				strings.Join(at, ", "), joinInts(sp.PeriodicRefreshes), sp.Mean/5)
		}
		if sp.ReadFirstErr != "" {
			p("First read error: `%s`\n\n", oneLine(sp.ReadFirstErr))
		}
	}
	lr := r.Leases
	if lr.Reads > 0 {
		p("## 5. Leases\n\n")
		p("| | |\n|---|---|\n")
		p("| `creds/` reads of one account | %d (%d errors, %.1f s) |\n", lr.Reads, lr.Errors, lr.Seconds)
		p("| Leases under `zoho/creds/<account>/` before → after (`LIST sys/leases/lookup/…`) | %d → %d: **%d leases per 1000 reads** |\n", lr.LeasesBefore, lr.LeasesAfter, (lr.LeasesAfter-lr.LeasesBefore)*1000/max(1, lr.Reads))
		p("| One engine lease entry in Vault's storage (`sys/raw/sys/expire/id/…`, median of 20) | %d B → ~%.0f KB of lease entries per 1000 reads |\n", lr.EngineEntryBytes, float64(lr.EngineEntryBytes)*1000/1024)
		p("| One floor `leased/` lease entry, for comparison | %d B |\n\n", lr.FloorEntryBytes)
		p("Every read creates a Vault lease (the dev server keeps them in memory; a persistent storage backend writes one entry per lease, plus Vault's index of leases by token). The engine counts the leases on each token in memory and persists only an upper bound, raised by doubling, so its own storage writes grow with the logarithm of the reads, not with the reads. To keep Vault's lease count flat, give each application one lease per token lifetime: Vault Agent (`auto_auth` with a template, or its cache) reads once and serves every process behind it until the lease nears its end.\n\n")
	}
	if len(r.Revocations) > 0 {
		p("### Revocations\n\n`sys/leases/revoke-prefix` with `sync`, timed; the run revokes what it created.\n\n| Prefix | What | Leases | Seconds | Leases/s | Error |\n|---|---|---:|---:|---:|---|\n")
		for _, rv := range r.Revocations {
			n, rate := "—", "—"
			if rv.Leases >= 0 {
				n = fmt.Sprint(rv.Leases)
				rate = fmt.Sprintf("%.0f", ratio(float64(rv.Leases), rv.Seconds))
			}
			p("| `%s` | %s | %s | %.1f | %s | %s |\n", rv.Prefix, rv.What, n, rv.Seconds, rate, oneLine(rv.Err))
		}
		p("\n")
	}

	if len(r.Raft.Throughput) > 0 || r.Raft.Agent.Clients > 0 {
		renderRaft(p, r, set)
	}
	p("## Notes\n\n")
	for _, n := range notes(r) {
		p("- %s\n", n)
	}
	return w.String()
}

func renderThroughput(p func(string, ...interface{}), r *results, set settings) {
	p("## 1. Cached `creds/` reads beside KV v2 and the floor plugin\n\n")
	p("Closed loop: each client sends its next read as soon as the previous one is answered. Per level, every target runs %d times for %s after a %s warm-up, in alternating order (so that leases piling up in Vault or load elsewhere on the machine favour none); the figures merge its runs; the target level, %d clients, runs %d rounds. CPU per read is read from `/proc/<pid>/stat` over the measured time: Vault's process, the plugin's (engine or floor; none for KV) and the load generator's.\n\n",
		set.Rounds, set.Duration/time.Duration(set.Rounds), set.Warm, diagnosticClients, set.TargetRounds)
	p("The targets: the engine's `creds/` (a cached token under a lease) and `static-creds/` (the account's shared token, no lease) on one account; the floor plugin answering the engine's own `creds/` body (copied from a real read, `token_id` included) with no lease (`const/`), under a plain lease (`leased/`: 1 h, not renewable, no internal data; kept for continuity with earlier reports) and under a lease shaped like the engine's (`leasedint/`: renewable, a renewal answering the lease as it is with its TTL, and internal data with the engine's seven keys: account, access token, token id, generation, token expiry, a lease number counting up per read, lease end); and KV v2. `leasedint/` is what the engine's `creds/` is judged against: Vault's cost of the same lease, so that what is left is the engine's own. `static-creds/` is judged against `const/`, the unleased floor. Each of the two target ratios at %d clients sets aside, when at least two rounds remain, the rounds in which other processes kept %.2f cores or more busy during either compared target's run (a rule fixed before the run; the figure over all rounds is shown beside it).\n\n",
		diagnosticClients, quietLimit)
	renderLevels(p, r.Throughput, set.Levels, levelKeys)
	p("\nKV v2 is built into Vault: its reads cross no plugin protocol and create no lease, so *`creds/` ÷ KV v2* measures both of those costs, which the floor pays as well.\n")
	if len(r.InProcess) > 0 {
		p("\nThe engine's own work per read, in process without Vault or gRPC (`go test -bench` in `backend/`, `RunParallel` on all CPUs, run before Vault starts):")
		for i, gb := range r.InProcess {
			sep := ","
			if i == len(r.InProcess)-1 {
				sep = "."
			}
			p(" `%s` %.1f µs/op, %d B and %d allocations per read%s", gb.Name, gb.NsPerOp/1000, gb.BytesPerOp, gb.AllocsPerOp, sep)
		}
		p("\n")
	}
	if len(r.AnswerBytes) > 0 {
		p("\nHTTP answer sizes: engine `creds/` %d B, engine `static-creds/` %d B, floor leased %d B, floor with the engine's lease shape %d B, floor const %d B, KV v2 %d B (the floor answers the engine's own `creds/` body, copied from a real read; `static-creds/` adds `ttl`, `rotation_period` and `last_vault_rotation` and has no lease fields; KV adds its version metadata).\n",
			r.AnswerBytes["engine"], r.AnswerBytes["static"], r.AnswerBytes["leased"], r.AnswerBytes["leasedint"], r.AnswerBytes["const"], r.AnswerBytes["kv"])
	}
	if r.StaticReads > 0 {
		p("\nLeases left by `static-creds/`: after the part, `LIST sys/leases/lookup/zoho/static-creds/bench/` listed %s for its %d reads (expected none: the answer carries no lease). The part's leases are revoked after it (see *Revocations*).\n",
			leaseCountText(r.StaticLeases, r.StaticLeasesErr), r.StaticReads)
	}
	e, ok1 := r.level("engine", diagnosticClients)
	li, ok2 := r.level("leasedint", diagnosticClients)
	l, ok3 := r.level("leased", diagnosticClients)
	c, ok4 := r.level("const", diagnosticClients)
	if ok1 && ok2 && ok3 && ok4 {
		p("\n**Where the time goes (%d clients, CPU µs per read).** *Both, by round* is the lowest and highest Vault + plugin CPU per read among the target's runs: differences smaller than that spread are noise.\n\n| | Vault | Plugin | Both | Both, by round |\n|---|---:|---:|---:|---:|\n", diagnosticClients)
		rows := []levelResult{e, li, l, c}
		if st, ok := r.level("static", diagnosticClients); ok {
			rows = []levelResult{e, li, l, st, c}
		}
		for _, x := range rows {
			lo, hi := minMax(x.RoundServerUS)
			p("| %s | %.0f | %.0f | %.0f | %.0f–%.0f |\n", targetNames[x.Target], x.VaultUS, x.PluginUS, x.VaultUS+x.PluginUS, lo, hi)
		}
		p("\nA lease costs Vault %+.0f µs per read (leased − unleased floor), and the engine's lease shape (renewable, engine-shaped internal data) %+.0f µs more (floor with the engine's lease shape − leased floor). Against the floor with the same lease shape, the engine costs Vault %+.0f µs and its own process %+.0f µs per read: that is the engine's share. Of the engine read's server-side CPU, %.0f%% is spent in Vault and %.0f%% in the plugin process.\n",
			l.VaultUS-c.VaultUS, li.VaultUS-l.VaultUS, e.VaultUS-li.VaultUS, e.PluginUS-li.PluginUS,
			100*e.VaultUS/math.Max(1, e.VaultUS+e.PluginUS), 100*e.PluginUS/math.Max(1, e.VaultUS+e.PluginUS))
		for _, gb := range r.InProcess {
			if strings.HasPrefix(gb.Name, "BenchmarkCredsReadHandleRequest") {
				p("In process, the engine's whole `creds/` handler takes %.1f µs per read (wall time over %d CPUs, so at most %.0f µs of CPU) of the %.0f µs its plugin process spends per read under Vault: the rest is the plugin protocol (gRPC, encoding), which the floor pays too (%.0f µs).\n",
					gb.NsPerOp/1000, r.Machine.CPUs, gb.NsPerOp/1000*float64(r.Machine.CPUs), e.PluginUS, li.PluginUS)
			}
		}
	}
	p("\n")
}

// notes explains failed targets with the run's own numbers.
func notes(r *results) []string {
	var out []string
	out = append(out, throughputNotes(r, r.Throughput, "", r.StaticLeases, r.StaticLeasesErr)...)
	for _, b := range r.Bursts {
		if b.Calls != 1 || b.Errors > 0 {
			out = append(out, fmt.Sprintf("Bursts: %s, lifetime %d made %d token calls (%d before the burst, %d while it was served) with %d read errors; want exactly 1 and none. The readers got %d distinct token(s).",
				b.Account, b.Burst, b.Calls, b.CallsAhead, b.Calls-b.CallsAhead, b.Errors, b.Tokens))
		}
	}
	if bd := r.Boundary; len(bd.RefreshAt) > 0 {
		n := len(bd.RefreshAt)
		if per := float64(n) / ((bd.RefreshAt[n-1] - bd.Created).Seconds() / bd.TTL.Seconds()); per > 1.5 {
			spread := ""
			if r.Spread.Accounts > 0 {
				spread = fmt.Sprintf("; the refresh spread's accounts, read every %s, %.2f", r.Spread.ReadEvery, ratio(float64(r.Spread.Total), float64(r.Spread.Accounts)))
			}
			out = append(out, fmt.Sprintf("An account read steadily spends %.2f token requests per token lifetime on refreshes ahead of expiry (part 3%s): the engine refreshes a token in use well before its expiry, so more than once per lifetime. Within Zoho's budget (10 per 10 minutes against one-hour tokens), but it is where extra token calls in part 2 come from.",
				per, spread))
		}
	}
	bd := r.Boundary
	if bd.Reads > 0 && bd.Ratio > targetBoundary {
		text := fmt.Sprintf("Refresh boundary target missed: p99 %.2f ms across refreshes vs %.2f ms steady (%d and %d samples; other load %.2f cores).",
			ms(bd.RefreshP99), ms(bd.QuietP99), bd.RefreshN, bd.QuietN, bd.OtherCores)
		if bd.RefreshesAtLeaseEnd > 0 {
			only := "no read across a refresh fell outside them"
			if bd.RefreshOnlyN > 0 {
				only = fmt.Sprintf("the reads across a refresh outside them had a p99 of %.2f ms (%d samples, %.2f× steady)", ms(bd.RefreshOnlyP99), bd.RefreshOnlyN, ratio(float64(bd.RefreshOnlyP99), float64(bd.QuietP99)))
			}
			text += fmt.Sprintf(" %d of the %d refreshes came while Vault was revoking the previous token's leases (up to %d a second; p99 at lease ends %.2f ms), so the reads across them carry that load too; %s.",
				bd.RefreshesAtLeaseEnd, bd.Refreshes, bd.BusiestEnds, ms(bd.LeaseP99), only)
		} else {
			text += fmt.Sprintf(" A refresh ahead of expiry runs in the background (storage writes through Vault and one call to the simulator) while readers keep the cached token, so a ratio above target points at that work competing for the %d cores rather than at readers waiting.", r.Machine.CPUs)
		}
		out = append(out, text)
	}
	if le := r.LeaseEnd; le.TTL > 0 && !leaseEndOK(le) {
		out = append(out, leaseEndNote(r, le))
	}
	out = append(out, manyNotes(r)...)
	sp := r.Spread
	if sp.WindowSeconds > 0 && sp.Ratio > targetSpread {
		done := "made fewer refreshes than there are accounts within the window"
		if sp.AllDoneAfter >= 0 {
			done = fmt.Sprintf("made as many refreshes as there are accounts within %.0f s of the first one", sp.AllDoneAfter)
		}
		// Refresh points drawn independently would fill the window's
		// buckets like a Poisson count: the busiest of nb is about
		// mean + sqrt(2 ln nb · mean).
		nb := float64(len(sp.Buckets))
		chance := 0.0
		if sp.Mean > 0 && nb > 1 {
			chance = (sp.Mean + math.Sqrt(2*math.Log(nb)*sp.Mean)) / sp.Mean
		}
		text := fmt.Sprintf("Refresh spread target missed: %d tokens minted within %.1f s %s, so the busiest 10 s held %d refreshes against %.1f on average over the lifetime-long window (%.2f×). Points spread independently at random would by chance alone make the busiest of %.0f buckets about %.2f× the mean at this cohort size.",
			sp.Accounts, sp.CreateSeconds, done, sp.Busiest, sp.Mean, sp.Ratio, nb, chance)
		// The periodic runs within the busiest 10 s, and what came just before them.
		for k, v := range sp.Buckets {
			if v != sp.Busiest {
				continue
			}
			from := sp.FirstRefreshAt + float64(k)*bucket.Seconds()
			for i, at := range sp.PeriodicAt {
				if at >= from && at < from+bucket.Seconds()+2 {
					text += fmt.Sprintf(" The busiest 10 s (from %.0f s after creation began) held the periodic run seen at %.1f s, and %d refreshes came in the 2 s before it was seen, against %.1f per 2 s on average",
						from, at, sp.PeriodicRefreshes[i], sp.Mean/5)
					if float64(sp.PeriodicRefreshes[i]) > 2*sp.Mean/5 {
						text += fmt.Sprintf(": that run refreshed at once the accounts in use whose refresh point had passed without a scheduled refresh (a run schedules only the points that come before the next run, so a token minted between runs with its point before the next one waits for a read past its point, every %s here, or for that run).", sp.ReadEvery)
					} else {
						text += "."
					}
					break
				}
			}
			break
		}
		out = append(out, text)
	}
	out = append(out, raftNotes(r)...)
	if len(out) == 0 {
		out = append(out, "Every target met.")
	}
	return out
}

func biggerSide(e, l levelResult) string {
	dv, dp := e.VaultUS-l.VaultUS, e.PluginUS-l.PluginUS
	total := ratio(e.VaultUS+e.PluginUS+e.SelfUS, l.VaultUS+l.PluginUS+l.SelfUS)
	side := "Vault's process"
	if dp > dv {
		side = "the plugin's process"
	}
	text := fmt.Sprintf("The engine's extra CPU per read is %+.0f µs in Vault and %+.0f µs in the plugin, mostly in %s; all CPU per read together (load generator included) is %.2f× the reference's, which alone would allow %.2f× its throughput", dv, dp, side, total, 1/math.Max(total, 1e-9))
	if d := e.OtherCores - l.OtherCores; d > 0.05 {
		text += fmt.Sprintf("; the rest of the gap matches the other load on the machine, %.2f cores higher during the engine's runs than during the reference's", d)
	}
	return text
}

// secs writes a duration in seconds, "1 s".
func secs(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", d.Seconds()), ".0") + " s"
}

// spreadAside says what the refresh spread's accounts add to part 3's lease
// ends, when they ran beside it.
func spreadAside(r *results) string {
	if r.Spread.Accounts == 0 {
		return ""
	}
	return fmt.Sprintf("; the refresh spread's %d accounts, read in the background, end about one lease each every %s, spread, and are not counted", r.Spread.Accounts, r.Spread.ReadEvery)
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, " ")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// roundRatios is the lowest and highest ratio of a's to b's reads/s among
// runs of the same round.
func roundRatios(a, b levelResult) (float64, float64) {
	var rs []float64
	for i := 0; i < len(a.RoundOps) && i < len(b.RoundOps); i++ {
		rs = append(rs, ratio(a.RoundOps[i], b.RoundOps[i]))
	}
	return minMax(rs)
}

func minMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

func trimS(v []string) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strings.TrimSuffix(x, "s")
	}
	return out
}

// quietLimit is the other processes' load (cores) above which a round of the
// target comparison is set aside.
const quietLimit = 0.15

// quietRatio is a's reads/s ÷ b's over the rounds in which other processes
// stayed under quietLimit during both runs, and how many such rounds there were.
func quietRatio(a, b levelResult) (float64, int) {
	var sa, sb float64
	n := 0
	for i := 0; i < len(a.RoundOps) && i < len(b.RoundOps) && i < len(a.RoundOthers) && i < len(b.RoundOthers); i++ {
		if a.RoundOthers[i] < quietLimit && b.RoundOthers[i] < quietLimit {
			sa += a.RoundOps[i]
			sb += b.RoundOps[i]
			n++
		}
	}
	return ratio(sa, sb), n
}

// judgedFloorRatio is the engine ÷ leased floor ratio the target is judged on:
// over the quiet rounds when at least two of them remain and some were set
// aside, else over all rounds.
func judgedFloorRatio(e, l levelResult) float64 {
	if qr, n := quietRatio(e, l); n >= 2 && n < len(e.RoundOps) {
		return qr
	}
	return ratio(e.Stats.OpsPerS, l.Stats.OpsPerS)
}

// floorRatioText is the measured figure of a "creds/ ÷ leased floor" target
// and the ratio it is judged on.
func floorRatioText(e, l levelResult) (string, float64) {
	lo, hi := roundRatios(e, l)
	measured := fmt.Sprintf("%.2f× (%.0f vs %.0f reads/s, %d errors; round by round %.2f–%.2f×; Vault + plugin CPU per read %.2f× the floor's; other load %.2f vs %.2f cores)",
		ratio(e.Stats.OpsPerS, l.Stats.OpsPerS), e.Stats.OpsPerS, l.Stats.OpsPerS, e.Stats.Errors, lo, hi, ratio(e.VaultUS+e.PluginUS, l.VaultUS+l.PluginUS), e.OtherCores, l.OtherCores)
	if qr, nq := quietRatio(e, l); nq >= 2 && nq < len(e.RoundOps) {
		measured = fmt.Sprintf("%.2f× over the %d of %d rounds in which other processes kept < %.2f cores busy during both; all rounds: %s", qr, nq, len(e.RoundOps), quietLimit, measured)
	}
	return measured, judgedFloorRatio(e, l)
}

// summaryRaft adds part 6's targets to the summary.
func summaryRaft(p func(string, ...interface{}), r *results) {
	n := diagnosticClients
	rf := r.Raft
	e, ok1 := r.raftLevel("engine", n)
	st, okS := r.raftLevel("static", n)
	l, okL := r.raftLevel("leased", n)
	if okS && okL {
		measured, judged := floorRatioText(st, l)
		p("| Raft (single node): `static-creds/` read ÷ leased floor, %d clients | %s | ≥ %.1f× | %s |\n", n, measured, targetRaftStatic, passFail(judged >= targetRaftStatic && st.Stats.Errors == 0))
	}
	if okS {
		var storage *leaseStorage
		for i := range rf.Storage {
			if strings.HasPrefix(rf.Storage[i].Path, "zoho/static-creds/") {
				storage = &rf.Storage[i]
			}
		}
		measured := fmt.Sprintf("%s after the throughput runs' %d reads (`LIST sys/leases/lookup/zoho/static-creds/bench/`)", leaseCountText(rf.StaticLeases, rf.StaticLeasesErr), rf.StaticReads)
		ok := rf.StaticLeases == 0 && rf.StaticReads > 0
		if storage != nil {
			measured += fmt.Sprintf("; %d → %d under `%s/` around its %d reads", storage.LeasesBefore, storage.LeasesAfter, storage.Path, storage.Reads)
			ok = ok && storage.LeasesAfter == 0 && storage.Errors == 0
		}
		p("| Raft: leases created by `static-creds/` reads | %s | 0 | %s |\n", measured, passFail(ok))
	}
	if li, ok := r.raftLevel("leasedint", n); ok && ok1 {
		measured, judged := floorRatioText(e, li)
		p("| Raft: cached `creds/` read ÷ leased floor with the same lease shape, %d clients | %s | ≥ %.1f× | %s |\n", n, measured, targetSameLease, passFail(judged >= targetSameLease && e.Stats.Errors == 0))
	}
	ag := rf.Agent
	if ag.Clients > 0 {
		if ag.Err != "" {
			p("| Raft: app reads through a caching Vault Agent ÷ direct `creds/` reads | failed: `%s` | ≥ %.0f× | **FAIL** |\n", oneLine(ag.Err), targetAgentSpeedup)
		} else if ok1 {
			sp := ratio(ag.Stats.OpsPerS, e.Stats.OpsPerS)
			p("| Raft: app reads through a caching Vault Agent ÷ direct `creds/` reads, %d clients | %.1f× (%.0f vs %.0f reads/s; %d errors through the Agent; other load %.2f vs %.2f cores) | ≥ %.0f× | %s |\n",
				ag.Clients, sp, ag.Stats.OpsPerS, e.Stats.OpsPerS, ag.Stats.Errors, ag.OtherCores, e.OtherCores, targetAgentSpeedup, passFail(sp >= targetAgentSpeedup && ag.Stats.Errors == 0))
		}
	}
	al := rf.AgentLeases
	if al.TTL > 0 {
		figure := fmt.Sprintf("Raft: Vault leases per caching Agent per token (%s tokens, %d lifetimes, one application reading every %s through the Agent)", durText(al.TTL), al.Lifetimes, secs(al.Every))
		if al.Err != "" {
			p("| %s | failed: `%s` | ≤ %.0f | **FAIL** |\n", figure, oneLine(al.Err), targetAgentLeases)
		} else {
			p("| %s | %.2f (%d leases for the %d tokens the application got over %.0f s; per token as it saw them: %s; up to %d alive at once; %d read errors) | ≤ %.0f | %s |\n",
				figure, al.LeasesPerToken, al.Leases, al.Tokens, al.Seconds, joinIntsInt(al.TokenLeases), al.MaxAtOnce, al.Errors, targetAgentLeases, passFail(agentLeasesOK(al)))
		}
	}
}

// agentLeasesOK: the run spanned a refresh, read without errors and took at
// most targetAgentLeases leases per token.
func agentLeasesOK(al agentLeaseResult) bool {
	return al.Err == "" && al.Tokens >= 2 && al.Errors == 0 && al.LeasesPerToken > 0 && al.LeasesPerToken <= targetAgentLeases
}

// renderRaft is part 6's section.
func renderRaft(p func(string, ...interface{}), r *results, set settings) {
	rf := r.Raft
	p("## 6. On integrated storage (Raft), and through a Vault Agent\n\n")
	p("A second Vault, single node, `storage \"raft\"` in a directory of the run's temporary directory on this machine's disk, initialized (one key share) and unsealed by the harness, with the dev server of parts 1–5 stopped first: started, initialized, unsealed and both plugins registered and mounted in %.1f s. The same plugins and KV v2 are mounted and the same bodies copied as in part 1. The whole part took %.0f s.\n\n", rf.StartSeconds, rf.Seconds)
	if len(rf.Throughput) > 0 {
		p("**Cached reads.** As in part 1 (closed loop, interleaved rounds in alternating order, CPU from `/proc`): per level every target runs %s after a %s warm-up, %s. Background load before measuring: %.2f cores.\n\n",
			secs(rf.Round), secs(set.Warm), roundsText(rf.Rounds, set.RaftLevels), rf.Settle)
		renderLevels(p, r.Raft.Throughput, set.RaftLevels, levelKeys)
		if rf.StaticReads > 0 {
			p("\nLeases left by `static-creds/`: after the throughput runs, `LIST sys/leases/lookup/zoho/static-creds/bench/` listed %s for their %d reads.\n", leaseCountText(rf.StaticLeases, rf.StaticLeasesErr), rf.StaticReads)
		}
		if len(r.Throughput) > 0 {
			p("\nBeside the dev server's in-memory storage (part 1, same machine, same targets):\n\n| Target | Clients | Reads/s in memory | Reads/s on Raft | Raft ÷ memory | Vault CPU µs/read in memory → on Raft |\n|---|---:|---:|---:|---:|---|\n")
			for _, n := range set.RaftLevels {
				for _, key := range levelKeys {
					m, ok1 := r.level(key, n)
					f, ok2 := r.raftLevel(key, n)
					if ok1 && ok2 {
						p("| %s | %d | %.0f | %.0f | %.2f× | %.0f → %.0f |\n", targetNames[key], n, m.Stats.OpsPerS, f.Stats.OpsPerS, ratio(f.Stats.OpsPerS, m.Stats.OpsPerS), m.VaultUS, f.VaultUS)
					}
				}
			}
		}
		p("\nEvery leased read writes its lease through Raft (a log entry and the applied entries, each a BoltDB transaction synced to disk); unleased reads and KV reads write nothing.\n\n")
	}
	if len(rf.Storage) > 0 {
		p("**What %d reads leave, and revoking their leases.** On the fresh Vault, before the throughput runs, for each of the engine's `creds/`, the floor's `leased/` and the engine's unleased `static-creds/` in turn: one read, then %d reads (16 at a time) of one path, then `sys/leases/revoke-prefix` of the path's leases with `sync`, timed. Leases are counted with `LIST sys/leases/lookup/…`, Vault's index of leases by token (`sys/expire/token/…`) and the entry sizes through `sys/raw` (decrypted, so before the barrier's encryption), the files of the Raft data directory by `stat` (apparent size and blocks allocated), and the bytes Vault's process caused to be written to disk from `write_bytes` in `/proc/<pid>/io`.\n\n", set.LeaseReads, set.LeaseReads)
		p("| |")
		for _, st := range rf.Storage {
			p(" %s (`%s`) |", st.What, st.Path)
		}
		p("\n|---|")
		for range rf.Storage {
			p("---|")
		}
		p("\n")
		row := func(name string, f func(st leaseStorage) string) {
			p("| %s |", name)
			for _, st := range rf.Storage {
				p(" %s |", f(st))
			}
			p("\n")
		}
		row("Reads", func(st leaseStorage) string {
			return fmt.Sprintf("%d in %.1f s (%.0f/s), %d errors", st.Reads, st.Seconds, ratio(float64(st.Reads), st.Seconds), st.Errors)
		})
		row("Leases before → after", func(st leaseStorage) string {
			return fmt.Sprintf("%d → %d: **%d lease entries per 1000 reads**", st.LeasesBefore, st.LeasesAfter, (st.LeasesAfter-st.LeasesBefore)*1000/max(1, st.Reads))
		})
		row("Index by token, entries before → after", func(st leaseStorage) string {
			if st.IndexBefore < 0 || st.IndexAfter < 0 {
				return "not counted"
			}
			return fmt.Sprintf("%d → %d", st.IndexBefore, st.IndexAfter)
		})
		row("One lease entry + one index entry (decrypted)", func(st leaseStorage) string {
			perK := float64(st.LeasesAfter-st.LeasesBefore) * float64(st.EntryBytes+st.IndexEntryBytes) / float64(max(1, st.Reads))
			return fmt.Sprintf("%d B + %d B: **~%.0f KB of entries per 1000 reads**", st.EntryBytes, st.IndexEntryBytes, perK)
		})
		row("Raft data directory: files that changed", func(st leaseStorage) string {
			if len(st.Files) == 0 {
				return "none changed size"
			}
			var parts []string
			for _, f := range st.Files {
				size := "apparent size " + kb(f.SizeAfter) + ", unchanged"
				if f.SizeAfter != f.SizeBefore {
					size = "apparent size " + kb(f.SizeBefore) + " → " + kb(f.SizeAfter)
				}
				parts = append(parts, fmt.Sprintf("`%s` %+.0f KB allocated (%s → %s; %s)", f.Name, float64(f.BlocksAfter-f.BlocksBefore)/1024, kb(f.BlocksBefore), kb(f.BlocksAfter), size))
			}
			return strings.Join(parts, "; ")
		})
		row("Written to disk by Vault during the reads", func(st leaseStorage) string {
			if st.DiskWriteErr != "" {
				return "not measured: " + oneLine(st.DiskWriteErr)
			}
			return fmt.Sprintf("%.1f MB: **%.1f KB per read**", float64(st.DiskWriteBytes)/(1<<20), float64(st.DiskWriteBytes)/1024/float64(max(1, st.Reads)))
		})
		row("Revoking the path's leases (`revoke-prefix`, `sync`)", func(st leaseStorage) string {
			if st.Revoke.Err != "" {
				return "failed: " + oneLine(st.Revoke.Err)
			}
			return fmt.Sprintf("%d leases in %.2f s: **%.0f leases/s**", st.Revoke.Leases, st.Revoke.Seconds, ratio(float64(st.Revoke.Leases), st.Revoke.Seconds))
		})
		row("Written to disk by Vault during the revocation", func(st leaseStorage) string {
			if st.DiskWriteErr != "" {
				return "not measured"
			}
			return fmt.Sprintf("%.1f MB (%.1f KB per lease)", float64(st.RevokeDiskWriteBytes)/(1<<20), float64(st.RevokeDiskWriteBytes)/1024/float64(max(1, st.Revoke.Leases)))
		})
		p("\nBoltDB sizes its files ahead in large steps (the apparent size) and fills them as it writes pages (the blocks allocated), reusing the pages it frees (each path's reads came after the previous path's leases were revoked); the entries' sizes say what is stored, the bytes written what it costs the disk. `static-creds/` creates no lease, so it leaves no lease or index entry; what it writes is Raft's own traffic meanwhile (its one first read stores that the token is held until it expires). The leases-per-token run through a caching Agent (below) runs beside these reads, one read a second: its few leases may add an entry to the index counts and their writes to the bytes written.\n\n")
	}
	ag := rf.Agent
	if ag.Clients > 0 {
		p("**Through a Vault Agent.** A real `vault agent` (the same binary) with `cache {}`, `api_proxy { use_auto_auth_token = true }`, auto-auth from a token file (a token with read on the account's `creds/` only) and a TCP listener on 127.0.0.1, in front of the Raft Vault. Throughput: the account's tokens come from a simulator whose tokens live %s, so that the run spans token lifetimes (its lease counts below are informational: with tokens this short the Agent's renewals end within seconds; the leases per token are judged on the longer run after it): %d clients (no Vault token: the Agent adds its own) read `creds/` through the Agent back to back for %s after a %s warm-up. Meanwhile the account's leases are listed on Vault every 250 ms (every lease seen counts, those alive at the start included) and one more application reads through the Agent every 100 ms and notes the token and lease it gets. CPU per application read is the Agent's, Vault's and the engine plugin's time from `/proc` over the measured time ÷ the reads.\n\n",
			secs(ag.TTL), ag.Clients, secs(set.AgentDuration), secs(set.Warm))
		if ag.Err != "" {
			p("The run through the Agent failed: `%s`\n\n", oneLine(ag.Err))
		} else {
			e, ok := r.raftLevel("engine", ag.Clients)
			p("| | |\n|---|---|\n")
			p("| Agent up (start → first read through it answered) | %.1f s |\n", ag.StartSeconds)
			p("| Application reads through the Agent | **%.0f reads/s**, p50 %.2f ms, p99 %.2f ms, %d errors |\n", ag.Stats.OpsPerS, ms(ag.Stats.P50), ms(ag.Stats.P99), ag.Stats.Errors)
			if ok {
				p("| Direct `creds/` reads on the same Vault, %d clients (above) | %.0f reads/s: the Agent serves **%.1f×** |\n", ag.Clients, e.Stats.OpsPerS, ratio(ag.Stats.OpsPerS, e.Stats.OpsPerS))
			}
			p("| CPU per application read | Agent %.0f µs, Vault %.0f µs, engine plugin %.0f µs: **%.0f µs** (load generator %.0f µs; other load %.2f cores)", ag.AgentUS, ag.VaultUS, ag.PluginUS, ag.AgentUS+ag.VaultUS+ag.PluginUS, ag.SelfUS, ag.OtherCores)
			if ok {
				p("; direct: Vault %.0f µs + plugin %.0f µs", e.VaultUS, e.PluginUS)
			}
			p(" |\n")
			p("| Vault leases of the account during the run | **%d** (%d alive when it began; up to %d at once); the engine answered %d `creds/` reads meanwhile |\n", ag.Leases, ag.LeasesAtStart, ag.MaxAtOnce, ag.EngineReads)
			p("| Tokens the applications got | %d (the simulator saw %d refreshes of the account's token meanwhile) |\n", ag.Tokens, ag.Refreshes)
			p("| Leases per token lifetime (informational, %s tokens) | %.2f |\n", secs(ag.TTL), ag.LeasesPerToken)
			p("| Distinct leases the sampling application saw, per token | %s |\n", joinIntsInt(ag.TokenLeases))
			if ag.SampleErrors > 0 || ag.ListErrors > 0 {
				p("| Sampling errors | %d reads (first: `%s`), %d listings |\n", ag.SampleErrors, oneLine(ag.SampleFirstErr), ag.ListErrors)
			}
			if ag.AgentLogWarning != "" {
				p("| First warning in the Agent's log | `%s` |\n", oneLine(ag.AgentLogWarning))
			}
			p("\n")
		}
	}
	if al := rf.AgentLeases; al.TTL > 0 {
		renderAgentLeases(p, al)
	}
}

// renderAgentLeases is part 6's long Agent run.
func renderAgentLeases(p func(string, ...interface{}), al agentLeaseResult) {
	p("**Leases per token through a caching Agent.** A second Agent, configured as the first, in front of the same Raft Vault, for an account on a simulator whose tokens live %s: one application reads `creds/` through it every %s for %d token lifetimes (%s), and the account's leases are listed on Vault after each read (every lease seen counts, those alive at the start included). To keep the run's length reasonable, this runs beside the rest of part 6, started at the part's beginning and waited for at its end: one read a second is negligible load beside the measurements above (it counts in their *other load*).\n\n",
		lifeText(al.TTL), secs(al.Every), al.Lifetimes, secs(al.TTL*time.Duration(al.Lifetimes)))
	if al.Err != "" {
		p("The run failed: `%s`\n\n", oneLine(al.Err))
		return
	}
	p("| | |\n|---|---|\n")
	p("| Application reads through the Agent | %d over %.0f s, %d errors |\n", al.Reads, al.Seconds, al.Errors)
	p("| Vault leases of the account during the run | **%d** (%d alive when it began; up to %d at once) |\n", al.Leases, al.LeasesAtStart, al.MaxAtOnce)
	p("| Tokens the application got | %d (the simulator saw %d refreshes of the account's token meanwhile) |\n", al.Tokens, al.Refreshes)
	p("| Distinct leases the application got, per token | %s |\n", joinIntsInt(al.TokenLeases))
	p("| Leases per token | **%.2f** (target ≤ %.0f) |\n", al.LeasesPerToken, targetAgentLeases)
	if al.FirstErr != "" || al.ListErrors > 0 {
		p("| Errors | first read error: `%s`; %d listings failed |\n", oneLine(al.FirstErr), al.ListErrors)
	}
	if al.AgentLogWarning != "" {
		p("| First warning in the Agent's log | `%s` |\n", oneLine(al.AgentLogWarning))
	}
	p("\n")
}

// roundsText says how many rounds each level ran.
func roundsText(rounds map[int]int, levels []int) string {
	var parts []string
	for _, n := range levels {
		parts = append(parts, fmt.Sprintf("%d %s at %d %s", rounds[n], plural(rounds[n], "round", "rounds"), n, plural(n, "client", "clients")))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func kb(n int64) string { return fmt.Sprintf("%.0f KB", float64(n)/1024) }

func joinIntsInt(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// raftNotes explains part 6's missed targets with its own numbers.
func raftNotes(r *results) []string {
	var out []string
	e, ok1 := r.raftLevel("engine", diagnosticClients)
	out = append(out, throughputNotes(r, r.Raft.Throughput, "Raft: ", r.Raft.StaticLeases, r.Raft.StaticLeasesErr)...)
	if al := r.Raft.AgentLeases; al.TTL > 0 && !agentLeasesOK(al) {
		text := fmt.Sprintf("Agent leases-per-token target missed: %d Vault leases for the %d tokens one application got through a caching Agent reading every %s (%.2f per token; per token %s; %d read errors).",
			al.Leases, al.Tokens, secs(al.Every), al.LeasesPerToken, joinIntsInt(al.TokenLeases), al.Errors)
		if al.Err != "" {
			text = fmt.Sprintf("Agent leases-per-token run failed: %s.", oneLine(al.Err))
		} else if al.Tokens < 2 {
			text += " The run did not span a refresh, so it says nothing about leases per token."
		} else if al.LeasesPerToken > targetAgentLeases {
			text += " The Agent caches a leased answer and renews its lease; the engine's renewals answer what is left until the lease's end, so the Agent's renewer halts before that end and evicts the answer, and the next read takes a new lease, on the same token while the token's refresh has not yet happened."
		}
		out = append(out, text)
	}
	ag := r.Raft.Agent
	if ag.Clients == 0 || ag.Err != "" {
		return out
	}
	if ok1 {
		if sp := ratio(ag.Stats.OpsPerS, e.Stats.OpsPerS); sp < targetAgentSpeedup {
			out = append(out, fmt.Sprintf("Agent throughput target missed: %d clients read %.0f times a second through the Agent against %.0f directly (%.1f×); per application read the Agent spent %.0f µs of CPU, the load generator %.0f µs, on %d cores, of which other processes kept %.2f busy during the run through the Agent (%.2f during the direct runs).",
				ag.Clients, ag.Stats.OpsPerS, e.Stats.OpsPerS, sp, ag.AgentUS, ag.SelfUS, r.Machine.CPUs, ag.OtherCores, e.OtherCores))
		}
	}
	return out
}

// summaryMany is part 4's summary rows at one size.
func summaryMany(p func(string, ...interface{}), r *results, m manyResult, createLimit int) {
	judged := m.Accounts <= targetManyAccounts
	result := func(ok bool) string {
		if !judged {
			return fmt.Sprintf("— (targets up to %d accounts)", targetManyAccounts)
		}
		return passFail(ok)
	}
	p("| Create %d accounts through the API (%d config writes at a time, each exchanging a grant code at the simulator) | %.1f s: %.0f accounts/s; %d errors | reported | — |\n",
		m.Accounts, createLimit, m.CreateSeconds, ratio(float64(m.Accounts), m.CreateSeconds), m.CreateErrors)
	listed := fmt.Sprintf("max %.2f s, median %.2f s over %d runs (%d keys)", maxDuration(m.ListTimes).Seconds(), medianDuration(m.ListTimes).Seconds(), len(m.ListTimes), m.ListKeys)
	if m.ListErr != "" {
		listed += "; " + oneLine(m.ListErr)
	}
	p("| `LIST config/` with %d accounts of this size configured | %s | ≤ %s | %s |\n", m.Accounts, listed, secs(targetList),
		result(m.ListErr == "" && len(m.ListTimes) > 0 && maxDuration(m.ListTimes) <= targetList))
	p("| Plugin start with %d accounts: reload → first `creds/` read answered | %.2f s (reload call %.2f s) | ≤ %s | %s |\n",
		m.Accounts, m.Reload.ToRead.Seconds(), m.Reload.Call.Seconds(), secs(targetStart), result(m.Reload.ToRead > 0 && m.Reload.ToRead <= targetStart))
	pr := m.Periodic
	measured := fmt.Sprintf("each run examined %d accounts (%d in use, %d loaded, %d configured) in %s; plugin CPU %.0f ms per run, %.0f ms per minute", pr.Examined, pr.InUse, pr.Loaded, pr.Configured, secondsText(pr.RunSeconds), ms(pr.CPUPerRun), ms(pr.CPUPerMinute))
	if pr.Err != "" {
		measured += "; " + oneLine(pr.Err)
	}
	p("| Periodic function with %d accounts, 1 %% in use (%d read after a reload) | %s | examines the accounts in use, not all | %s |\n",
		m.Accounts, pr.Read, measured, result(periodicOK(pr)))
	p("| Plugin RSS, fresh process holding exactly %d accounts | %s |", m.Accounts, rssMeasured(m))
	if target, ok := rssTargetMB(m.Accounts); ok {
		p(" ≤ %.0f MB | %s |\n", target, rssResult(m, target))
	} else {
		p(" reported | — |\n")
	}
	if h, ok := r.heap(m.Accounts); ok {
		figure := fmt.Sprintf("Live heap per account, engine holding %d accounts (in-process heap probe: live heap after GC of an engine that loaded them, no Vault or gRPC)", m.Accounts)
		if h.Err != "" {
			p("| %s | not measured: `%s` | ≤ %.0f KB | **FAIL** |\n", figure, oneLine(h.Err), targetHeapPerAcct/1024)
		} else {
			p("| %s | %.0f B (%.1f MB for all of them) | ≤ %.0f KB | %s |\n", figure, h.HeapPerAccount, float64(h.HeapAllocBytes)/(1<<20), targetHeapPerAcct/1024, result(heapOK(h)))
		}
	}
}

// periodicOK: the last periodic run looked at the accounts in use (within a
// tenth), far fewer than all the accounts configured.
func periodicOK(pr periodicResult) bool {
	return pr.Err == "" && pr.Examined > 0 && pr.InUse > 0 && float64(pr.Examined) <= 1.1*float64(pr.InUse)+1 && pr.Examined*10 < int64(pr.Configured)
}

// settingOK: the setting's fresh process held every account within target.
func settingOK(s settingResult, n int, target float64) bool {
	return s.AfterLazy.RSS > 0 && mb(s.AfterLazy.RSS) <= target && s.LazyErrors == 0 && s.Loaded >= int64(n)
}

// rssMeasured is the RSS of the fresh process under each setting.
func rssMeasured(m manyResult) string {
	target, judged := rssTargetMB(m.Accounts)
	var parts []string
	for i, s := range append([]settingResult{m.Default}, m.Knobs...) {
		text := fmt.Sprintf("%s: %.1f MB (anon %.1f, file %.1f)", s.name(), mb(s.AfterLazy.RSS), mb(s.AfterLazy.Anon), mb(s.AfterLazy.File))
		if judged {
			text += " " + passFail(settingOK(s, m.Accounts, target))
		}
		if i > 0 {
			text += fmt.Sprintf(", plugin CPU per cached read %.2f× the default's", ratio(s.CachedPluginUS, m.Default.CachedPluginUS))
		}
		parts = append(parts, text)
	}
	return strings.Join(parts, "; ")
}

// rssResult says which setting meets the target.
func rssResult(m manyResult, target float64) string {
	if settingOK(m.Default, m.Accounts, target) {
		return "**PASS** (default settings)"
	}
	var with []string
	for _, s := range m.Knobs {
		if settingOK(s, m.Accounts, target) {
			with = append(with, s.name())
		}
	}
	if len(with) > 0 {
		return "**PASS** with " + strings.Join(with, " or ") + "; **FAIL** with the default settings"
	}
	return "**FAIL**"
}

// renderMany is part 4's section: a column per size.
func renderMany(p func(string, ...interface{}), r *results, set settings) {
	ms4 := r.Many
	p("## 4. Many accounts: creating them, listing, start after a reload, background work, memory\n\n")
	sizes := make([]string, len(ms4))
	for i, m := range ms4 {
		sizes[i] = fmt.Sprint(m.Accounts)
	}
	p("Part 4 runs at each size of `-many` in turn (this run: %s accounts; `make bench` runs 10 000; the report in docs/ is made with `-many 10000,100000`). At each size N, in this order:\n\n", strings.Join(sizes, ", "))
	p("1. N accounts (names `many<N>-…`, each its own simulator client) are created through the API, %d config writes at a time (each exchanges a grant code at the simulator), then each `creds/` read once (%d at a time) by the plugin process that created them. Their simulator's tokens live %s, so that no background refresh falls within the part: with Zoho's hour, the refresh points of tokens minted together are spread over their life (docs/design.md), a few percent of them would come due during the part and their refreshes would add to its CPU figures. Refreshing is measured in parts 2 and 3 and in the refresh spread.\n", set.CreateLimit, set.CreateLimit, secs(set.ManyTTL))
	p("2. `LIST zoho/config/` %d times, timed from the request until the answer is decoded; the accounts of earlier sizes and parts are still configured, so it lists more than N.\n", listRuns)
	p("3. `sys/plugins/reload/backend` with `plugin=zoho`, timed until a `creds/` read is answered by the new plugin process.\n")
	p("4. N/100 accounts are read (the fresh process loads them and they join its accounts *in use*), then the harness waits (at most %s, polling every second) until the engine's `zoho_periodic_runs_total` has grown by %d — Vault runs the periodic function every minute — and reads the last run's `zoho_periodic_accounts_examined` and `zoho_periodic_duration_seconds`, `zoho_accounts_loaded` and `zoho_accounts_in_use`; the plugin's CPU time (`utime + stime` of `/proc/<pid>/stat`) over the wait, which includes the harness's once-a-second read of `zoho/metrics`, is divided by the runs and by the minutes waited.\n", secs(periodicWait), periodicRuns)
	p("5. *Lazy pass*: every account read once; the fresh process loads each from storage on its first read, so it then holds exactly the N accounts: its `VmRSS`, `RssAnon` and `RssFile` (`/proc/<pid>/status`). *Cached pass*: every account read again, all cached: reads/s and the plugin's CPU time per read; as many passes as make 30 000 reads, at most 3 (%s), and the figures are the pass with the median CPU per read.\n", cachedPassesText(ms4))
	knobs := make([]string, len(set.Knobs))
	for i, k := range set.Knobs {
		knobs[i] = "`" + strings.Join(k, " ") + "`"
	}
	if len(knobs) > 0 {
		p("6. The memory knob: the plugin is registered again (same sha256 and version) with the environment %s (`vault plugin register -env=…`, which the Go runtime of the plugin process reads), reloaded (the harness checks the new process's environment), and both passes run again; then it is registered without an environment and reloaded, so that what follows runs on the defaults.\n", strings.Join(knobs, ", then "))
	}
	p("\nThe size's leases are revoked when it is done (see *Revocations*). After the last size, the heap probe (below) runs at each size: the memory target is its live heap per account, ≤ 2 KB; the plugin's RSS is reported beside it, with a target at 100 000 accounts only (RSS counts the binary's mapped pages and the Go runtime's headroom over the live heap, which `GOGC` sets: the default `GOGC=100` lets the heap grow to twice the live heap before a collection).\n\n")

	p("|")
	for _, m := range ms4 {
		p(" | %d accounts", m.Accounts)
	}
	p(" |\n|---|")
	for range ms4 {
		p("---|")
	}
	p("\n")
	row := func(name string, f func(m manyResult) string) {
		p("| %s |", name)
		for _, m := range ms4 {
			p(" %s |", f(m))
		}
		p("\n")
	}
	row("Create them through the API", func(m manyResult) string {
		return fmt.Sprintf("**%.1f s (%.0f accounts/s)**, %d errors; other load %.2f cores while creating and reading", m.CreateSeconds, ratio(float64(m.Accounts), m.CreateSeconds), m.CreateErrors, m.OtherCores)
	})
	row("First `creds/` read of each", func(m manyResult) string {
		return fmt.Sprintf("%.1f s (%.0f/s), p50 %.2f ms, p99 %.2f ms, %d errors", m.ReadSeconds, ratio(float64(m.Accounts), m.ReadSeconds), ms(m.ReadP50), ms(m.ReadP99), m.ReadErrors)
	})
	row("Plugin RSS before creating them → after creating and reading them", func(m manyResult) string {
		return fmt.Sprintf("%.1f → %.1f MB (peak `VmHWM` %.1f MB; `zoho_accounts_loaded` %d, earlier sizes' and parts' accounts included)", mb(m.RSSBeforeKB), mb(m.RSSKB), mb(m.HWMKB), m.LoadedBefore)
	})
	row("Vault RSS then", func(m manyResult) string { return fmt.Sprintf("%.1f MB", mb(m.VaultRSSKB)) })
	row("`LIST config/`", func(m manyResult) string {
		t := make([]string, len(m.ListTimes))
		for i, d := range m.ListTimes {
			t[i] = fmt.Sprintf("%.0f", ms(d))
		}
		text := fmt.Sprintf("%d keys; **max %.0f ms**, median %.0f ms (runs: %s ms)", m.ListKeys, ms(maxDuration(m.ListTimes)), ms(medianDuration(m.ListTimes)), strings.Join(t, ", "))
		if m.ListErr != "" {
			text += "; " + oneLine(m.ListErr)
		}
		return text
	})
	row("Reload → first `creds/` read answered", func(m manyResult) string {
		return fmt.Sprintf("**%.0f ms** (reload request answered in %.0f ms; pid %d → %d)", ms(m.Reload.ToRead), ms(m.Reload.Call), m.PIDBefore, m.Reload.PID)
	})
	row("Fresh process after that first read", func(m manyResult) string { return memText(m.Reload.Mem) })
	row("Periodic function, N/100 accounts in use", func(m manyResult) string {
		pr := m.Periodic
		text := fmt.Sprintf("%d read (%d errors); %d configured, **%d loaded, %d in use; the last run examined %d** in %s; %d runs in %.0f s: plugin CPU **%.0f ms per run**, %.0f ms per minute",
			pr.Read, pr.ReadErrors, pr.Configured, pr.Loaded, pr.InUse, pr.Examined, secondsText(pr.RunSeconds), pr.Runs, pr.WaitSeconds, ms(pr.CPUPerRun), ms(pr.CPUPerMinute))
		if pr.Err != "" {
			text += "; " + oneLine(pr.Err)
		}
		return text
	})
	for k := -1; k < len(set.Knobs); k++ {
		get := func(m manyResult) (settingResult, bool) {
			if k < 0 {
				return m.Default, true
			}
			if k < len(m.Knobs) {
				return m.Knobs[k], true
			}
			return settingResult{}, false
		}
		label := "Default settings"
		if k >= 0 {
			label = "With `" + strings.Join(set.Knobs[k], " ") + "`"
			row(label+": reload → first `creds/` read", func(m manyResult) string {
				s, ok := get(m)
				if !ok {
					return "—"
				}
				return fmt.Sprintf("%.0f ms (pid %d; %s)", ms(s.Reload.ToRead), s.Reload.PID, memText(s.Reload.Mem))
			})
		}
		row(label+": lazy pass (first read of each after the reload)", func(m manyResult) string {
			s, ok := get(m)
			if !ok {
				return "—"
			}
			return fmt.Sprintf("%.1f s (%.0f/s), p50 %.2f ms, p99 %.2f ms, %d errors", s.LazySeconds, ratio(float64(m.Accounts), s.LazySeconds), ms(s.LazyP50), ms(s.LazyP99), s.LazyErrors)
		})
		row(label+": **the fresh process holding exactly them**", func(m manyResult) string {
			s, ok := get(m)
			if !ok {
				return "—"
			}
			text := fmt.Sprintf("**%s** (`zoho_accounts_loaded` %d): %.2f KB of RSS (%.2f KB anonymous) per account over the process after its first read",
				memText(s.AfterLazy), s.Loaded, float64(s.AfterLazy.RSS-s.Reload.Mem.RSS)/float64(max(1, m.Accounts)), float64(s.AfterLazy.Anon-s.Reload.Mem.Anon)/float64(max(1, m.Accounts)))
			if target, ok := rssTargetMB(m.Accounts); ok {
				text += fmt.Sprintf("; target ≤ %.0f MB: %s", target, passFail(settingOK(s, m.Accounts, target)))
			}
			return text
		})
		row(label+": cached pass", func(m manyResult) string {
			s, ok := get(m)
			if !ok {
				return "—"
			}
			runs := make([]string, len(s.CachedRunsUS))
			for i, us := range s.CachedRunsUS {
				runs[i] = fmt.Sprintf("%.0f", us)
			}
			text := fmt.Sprintf("%.1f s (**%.0f reads/s**), p50 %.2f ms, p99 %.2f ms, %d errors; **plugin CPU %.0f µs per read** (passes: %s µs; Vault %.0f µs); other load %.2f cores; RSS after it %.1f MB",
				s.CachedSeconds, ratio(float64(m.Accounts-s.CachedErrors), s.CachedSeconds), ms(s.CachedP50), ms(s.CachedP99), s.CachedErrors, s.CachedPluginUS, strings.Join(runs, ", "), s.CachedVaultUS, s.CachedOtherCores, mb(s.AfterCached.RSS))
			if k >= 0 {
				text += fmt.Sprintf("; **CPU price %.2f×** the default's plugin CPU per read, for %.1f MB less RSS", ratio(s.CachedPluginUS, m.Default.CachedPluginUS), mb(m.Default.AfterLazy.RSS-s.AfterLazy.RSS))
			}
			return text
		})
	}
	if len(set.Knobs) > 0 {
		row("Back to the default settings: reload → first `creds/` read", func(m manyResult) string {
			return fmt.Sprintf("%.0f ms (pid %d)", ms(m.Restore.ToRead), m.Restore.PID)
		})
	}
	row("Heap probe: **live heap per account** (target ≤ 2 KB)", func(m manyResult) string {
		h, ok := r.heap(m.Accounts)
		switch {
		case !ok:
			return "—"
		case h.Err != "":
			return "failed: `" + oneLine(h.Err) + "`"
		}
		return fmt.Sprintf("**%.0f B** (%.1f MB for all of them; %.0f B allocated per account while creating and first reading it): %s", h.HeapPerAccount, float64(h.HeapAllocBytes)/(1<<20), h.AllocsPerCreate, passFail(heapOK(h)))
	})
	row("Leases the size's reads created", func(m manyResult) string { return fmt.Sprint(m.LeasesIssued) })
	for _, m := range ms4 {
		if m.CreateFirstErr != "" {
			p("\nFirst creation error at %d accounts: `%s`\n", m.Accounts, oneLine(m.CreateFirstErr))
		}
	}
	p("\n")

	// What grows with what.
	if len(ms4) >= 2 {
		a, z := ms4[0], ms4[len(ms4)-1]
		p("**What grows with all accounts, and what with the accounts in use.** From %d to %d accounts (%.0f×): the last periodic run examined %d → %d accounts (the accounts in use: %d → %d) and took %s → %s, the plugin's CPU per run went %.0f → %.0f ms; the fresh process's RSS with every account loaded went %.1f → %.1f MB (default settings); `LIST config/` went %.0f → %.0f ms (max); reload → first read %.0f → %.0f ms.\n\n",
			a.Accounts, z.Accounts, ratio(float64(z.Accounts), float64(a.Accounts)), a.Periodic.Examined, z.Periodic.Examined, a.Periodic.InUse, z.Periodic.InUse,
			secondsText(a.Periodic.RunSeconds), secondsText(z.Periodic.RunSeconds), ms(a.Periodic.CPUPerRun), ms(z.Periodic.CPUPerRun),
			mb(a.Default.AfterLazy.RSS), mb(z.Default.AfterLazy.RSS), ms(maxDuration(a.ListTimes)), ms(maxDuration(z.ListTimes)), ms(a.Reload.ToRead), ms(z.Reload.ToRead))
	}

	// RssFile.
	m0 := ms4[0]
	p("**`RssFile`** is the part of the RSS mapped from files: here the plugin binary's code and read-only data (%.1f MB on disk), as far as the process has touched them. The fresh process after its first read had %.1f MB of RSS, of which %.1f MB `RssFile`; with every account loaded, `RssFile` was %.1f MB (default settings). It is a fixed cost of the binary that no per-account change reduces; the pages are the kernel's page cache, shared by every process running the same binary (another mount of the plugin), and dropped and read again from the file under memory pressure. `RssAnon` is what the process allocated (Go heap, stacks, runtime) and is where accounts cost memory.\n\n",
		float64(r.PluginBinaryBytes)/(1<<20), mb(m0.Reload.Mem.RSS), mb(m0.Reload.Mem.File), mb(m0.Default.AfterLazy.File))

	h, _ := r.heap(m0.Accounts)
	if h.Err != "" {
		p("Heap probe failed: `%s`\n\n", oneLine(h.Err))
	} else if h.Accounts > 0 {
		perRSS := float64(m0.Default.AfterLazy.RSS-m0.Reload.Mem.RSS) * 1024 / float64(max(1, m0.Accounts))
		p("**Heap probe.** The engine alone in a child process of the harness (no Vault, no gRPC; storage in memory in the child, as Vault's is in production): %d accounts created and each read once by one engine, then a second engine started on the same storage, as a restarted plugin would be, reads each account once, loading it. **%.0f B of live heap per account** in that second engine (its live heap after the reads less before them, after forced GCs: %.1f MB for all of them; heap obtained from the OS %.1f MB, storage included), and %.0f B allocated per account while creating and first reading it in the first engine. In the plugin under Vault, with the default runtime settings, the same accounts cost %.0f B of RSS each (the fresh process's RSS after the lazy pass less its RSS after its first read, ÷ accounts): the rest is what the Go runtime keeps beyond the live heap (with the default `GOGC=100` the heap may grow to twice the live heap before a collection; the knob lowers that) and the buffers of the plugin protocol. The probe runs at every size of part 4 (with this profile at the first only), and its live heap per account is the memory target (≤ 2 KB). Where the live heap is (`go tool pprof -top -sample_index=inuse_space`):\n\n```\n%s\n```\n\n",
			h.Accounts, h.HeapPerAccount, float64(h.HeapAllocBytes)/(1<<20), float64(h.HeapSysBytes)/(1<<20), h.AllocsPerCreate, perRSS, h.Top)
	}
}

// cachedPassesText says how many cached passes ran at each size.
func cachedPassesText(ms4 []manyResult) string {
	parts := make([]string, len(ms4))
	for i, m := range ms4 {
		parts[i] = fmt.Sprintf("%d at %d accounts", cachedPasses(m.Accounts), m.Accounts)
	}
	return strings.Join(parts, ", ")
}

// manySizesText lists the sizes part 4 ran at.
func manySizesText(r *results) string {
	if len(r.Many) == 0 {
		return "part 4 not run"
	}
	sizes := make([]string, len(r.Many))
	for i, m := range r.Many {
		sizes[i] = fmt.Sprint(m.Accounts)
	}
	return "`-many " + strings.Join(sizes, ",") + "`"
}

// secondsText writes a short duration in ms, or µs below a millisecond.
func secondsText(s float64) string {
	if s < 0.001 {
		return fmt.Sprintf("%.0f µs", s*1e6)
	}
	return fmt.Sprintf("%.1f ms", s*1000)
}

func memText(s memSample) string {
	return fmt.Sprintf("RSS %.1f MB (anon %.1f, file %.1f)", mb(s.RSS), mb(s.Anon), mb(s.File))
}

// manyNotes explains part 4's missed targets with the run's own numbers.
func manyNotes(r *results) []string {
	var out []string
	for _, m := range r.Many {
		if m.Accounts > targetManyAccounts {
			continue
		}
		if target, ok := rssTargetMB(m.Accounts); ok && !settingOK(m.Default, m.Accounts, target) {
			d := m.Default
			text := fmt.Sprintf("Memory target at %d accounts missed with the default runtime settings: the fresh process held them in %.1f MB of RSS (target %.0f MB): %.1f MB when it had answered its first read (of which %.1f MB `RssFile`, the binary), plus %.2f KB per account, %.2f KB of it anonymous memory.",
				m.Accounts, mb(d.AfterLazy.RSS), target, mb(d.Reload.Mem.RSS), mb(d.Reload.Mem.File), float64(d.AfterLazy.RSS-d.Reload.Mem.RSS)/float64(m.Accounts), float64(d.AfterLazy.Anon-d.Reload.Mem.Anon)/float64(m.Accounts))
			if h, ok := r.heap(m.Accounts); ok && h.Err == "" {
				text += fmt.Sprintf(" The heap probe puts the live heap at %.0f B per account (at %d accounts); the rest is the Go runtime's headroom over the live heap.", h.HeapPerAccount, h.Accounts)
			}
			for _, s := range m.Knobs {
				text += fmt.Sprintf(" With %s: %.1f MB, %s, at %.2f× the plugin CPU per cached read.", s.name(), mb(s.AfterLazy.RSS), strings.Trim(passFail(settingOK(s, m.Accounts, target)), "*"), ratio(s.CachedPluginUS, d.CachedPluginUS))
			}
			out = append(out, text)
		}
		if h, ok := r.heap(m.Accounts); ok && !heapOK(h) {
			if h.Err != "" {
				out = append(out, fmt.Sprintf("Heap target at %d accounts not measured: the heap probe failed (%s).", m.Accounts, oneLine(h.Err)))
			} else {
				out = append(out, fmt.Sprintf("Heap target at %d accounts missed: %.0f B of live heap per account in the heap probe (target %.0f B); where it goes is in the probe's profile under part 4.", m.Accounts, h.HeapPerAccount, targetHeapPerAcct))
			}
		}
		if m.Reload.ToRead > targetStart {
			out = append(out, fmt.Sprintf("Start target at %d accounts missed: %.2f s from the reload request to the first `creds/` read answered (the request itself %.2f s; other load while creating %.2f cores).", m.Accounts, m.Reload.ToRead.Seconds(), m.Reload.Call.Seconds(), m.OtherCores))
		}
		if len(m.ListTimes) > 0 && maxDuration(m.ListTimes) > targetList {
			out = append(out, fmt.Sprintf("`LIST config/` target at %d accounts missed: up to %.2f s for %d keys (median %.2f s).", m.Accounts, maxDuration(m.ListTimes).Seconds(), m.ListKeys, medianDuration(m.ListTimes).Seconds()))
		}
		if pr := m.Periodic; !periodicOK(pr) {
			out = append(out, fmt.Sprintf("Periodic target at %d accounts not shown: the last run examined %d accounts with %d in use and %d configured (%d runs seen in %.0f s%s).", m.Accounts, pr.Examined, pr.InUse, pr.Configured, pr.Runs, pr.WaitSeconds, strings.TrimSuffix("; "+pr.Err, "; ")))
		}
	}
	return out
}

// leaseCountText is a count of leases listed, or why there is none.
func leaseCountText(n int, err string) string {
	if n < 0 {
		return "not listed: `" + oneLine(err) + "`"
	}
	return fmt.Sprintf("%d %s", n, plural(n, "lease", "leases"))
}

// durText writes a token lifetime: "20-minute", "20 s".
func durText(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d-minute", int(d/time.Minute))
	}
	return secs(d)
}

// lifeText writes a token lifetime as a length: "20 minutes", "20 s".
func lifeText(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%d %s", int(d/time.Minute), plural(int(d/time.Minute), "minute", "minutes"))
	}
	return secs(d)
}

// leaseEndOK: the measurement ran, at a lifetime whose window is at least a
// minute, read without errors, and kept p99 at lease ends within target.
func leaseEndOK(le leaseEndResult) bool {
	return le.Err == "" && le.Window >= time.Minute && le.Ratio > 0 && le.Ratio <= targetLeaseEnd && le.EndsN > 0 && le.SteadyN > 0 && le.Errors == 0
}

// summaryLeaseEnd is part 3's lease-end row.
func summaryLeaseEnd(p func(string, ...interface{}), le leaseEndResult) {
	figure := fmt.Sprintf("p99 during the seconds in which one token's leases end ÷ steady p99 before them (%s tokens: the engine spreads their ends over %s; %.0f reads/s)", durText(le.TTL), secs(le.Window), le.Rate)
	if le.Err != "" {
		p("| %s | not measured: %s | ≤ %.1f | **FAIL** |\n", figure, oneLine(le.Err), targetLeaseEnd)
		return
	}
	measured := fmt.Sprintf("%.2f (%.2f ms in %d reads vs %.2f ms in %d; %d leases ending over %d s, up to %d a second, %.1f on average; %d read errors)",
		le.Ratio, ms(le.EndsP99), le.EndsN, ms(le.SteadyP99), le.SteadyN, le.Leases, le.EndSeconds, le.MaxEnds, le.MeanEnds, le.Errors)
	result := passFail(leaseEndOK(le))
	if le.Window < time.Minute {
		result = "— (window below 1 minute: shortened run; " + strings.Trim(passFail(le.Ratio > 0 && le.Ratio <= targetLeaseEnd && le.Errors == 0), "*") + " at this window)"
	}
	p("| %s | %s | ≤ %.1f | %s |\n", figure, measured, targetLeaseEnd, result)
}

// renderLeaseEnd is part 3's lease-end section.
func renderLeaseEnd(p func(string, ...interface{}), r *results) {
	le := r.LeaseEnd
	p("### Lease ends at a lifetime where they are spread\n\n")
	p("The engine ends every lease of a token a margin before the token's expiry (a twentieth of its lifetime, 1 s to 1 min) and spreads the ends over a window before that (a twentieth of the lifetime, 1 s to 5 min; 3 minutes for Zoho's hour): with the 20 s tokens above the window is 1 s, which compresses an hour of lease ends into seconds. Here the tokens live %s, so the window is %s", lifeText(le.TTL), secs(le.Window))
	if le.Window < time.Minute {
		p(" (below a minute: this run is shortened, and its figure is not judged)")
	}
	p(". A lease's end depends only on its token's expiry and its number, not on when it was read, so one account is created on a simulator with those tokens when the dev server starts and its leases are taken at once: open loop, %.0f reads/s for %s (%d reads, %d errors; %d leases, each end known from its answer's `lease_duration`), ending %.0f–%.0f s after the account was created. The other parts run meanwhile. When the ends approach and no other part is running (the run plans it by the parts' order and rough durations, waiting if early, and part 4, which revokes every engine lease first, always comes after it), the same account is read at the same rate from %s before the first end (the first %s not counted) to the last end: *steady* is the reads before the first end, *at lease ends* the reads started in the seconds from the first end to the last. Reads within ±%s of a refresh of the account's token are set aside (%d refreshes, %d reads).\n\n",
		le.Rate, secs(le.Take), le.TakeReads, le.TakeErrors, le.Leases, le.FirstEnd.Seconds(), le.LastEnd.Seconds(), secs(le.Steady+leaseEndWarm), secs(leaseEndWarm), secs(refreshHalfWindow), le.Refreshes, le.NearRefresh)
	if le.Err != "" {
		p("Not measured: `%s`\n\n", oneLine(le.Err))
		return
	}
	when := "after the last dev-server part"
	if le.Before != "" {
		when = "before " + le.Before
	}
	p("It ran %s, %.0f s after the account was created (waited %.0f s for it; %.0f s after the part before it ended). Other load meanwhile: %.2f cores.\n\n", when, le.Start.Seconds(), le.Waited.Seconds(), le.SinceOtherPart.Seconds(), le.OtherCores)
	p("| Reads/s | Reads | Errors | Lease-end seconds | Lease ends per second: max / mean | p50 / p99 steady (n) | p50 / p99 at lease ends (n) | p99 ratio |\n|---:|---:|---:|---:|---|---|---|---:|\n")
	p("| %.0f | %d | %d | %d | %d / %.1f | %.2f / %.2f ms (%d) | %.2f / %.2f ms (%d) | **%.2f** |\n\n",
		le.Rate, le.Reads, le.Errors, le.EndSeconds, le.MaxEnds, le.MeanEnds, ms(le.SteadyP50), ms(le.SteadyP99), le.SteadyN, ms(le.EndsP50), ms(le.EndsP99), le.EndsN, le.Ratio)
	p("Lease ends per second of the measurement (from its start; the account's leases only): `%s`.\n\n", joinInts(le.PerSecond))
	if le.FirstErr != "" {
		p("First error: `%s`\n\n", oneLine(le.FirstErr))
	}
}

// throughputNotes explains the throughput targets of part 1 (where "") or
// part 6 (where "Raft ") with the run's own numbers.
func throughputNotes(r *results, all []levelResult, where string, staticLeases int, staticErr string) []string {
	var out []string
	n := diagnosticClients
	e, ok1 := findLevel(all, "engine", n)
	li, ok2 := findLevel(all, "leasedint", n)
	l, ok3 := findLevel(all, "leased", n)
	st, ok4 := findLevel(all, "static", n)
	c, ok5 := findLevel(all, "const", n)
	if ok1 && ok2 {
		fr := judgedFloorRatio(e, li)
		plain := ""
		if ok3 {
			plain = fmt.Sprintf(" (%.2f× the plain leased floor)", ratio(e.Stats.OpsPerS, l.Stats.OpsPerS))
		}
		if fr < targetSameLease || e.Stats.Errors > 0 {
			out = append(out, fmt.Sprintf("%sThroughput target missed: at %d clients `creds/` serves %.2f× the floor with the same lease shape%s, %d errors. Per read the engine costs %.0f µs of CPU in Vault and %.0f µs in its plugin, against %.0f and %.0f for the floor with the engine's lease shape (other load %.2f vs %.2f cores). %s.",
				where, n, fr, plain, e.Stats.Errors, e.VaultUS, e.PluginUS, li.VaultUS, li.PluginUS, e.OtherCores, li.OtherCores, biggerSide(e, li)))
		} else {
			at := "At"
			if where != "" {
				at = "at"
			}
			out = append(out, fmt.Sprintf("%s%s %d clients `creds/` serves %.2f× the floor with the same lease shape%s; per read Vault spends %.0f µs of CPU on it and the plugin %.0f µs, against %.0f and %.0f for the floor.",
				where, at, n, fr, plain, e.VaultUS, e.PluginUS, li.VaultUS, li.PluginUS))
		}
	}
	if ok4 && ok5 && where == "" {
		if fr := judgedFloorRatio(st, c); fr < targetStaticConst || st.Stats.Errors > 0 {
			out = append(out, fmt.Sprintf("`static-creds/` target missed: at %d clients it serves %.2f× the unleased floor, %d errors. Per read the engine costs %.0f µs of CPU in Vault and %.0f µs in its plugin, against %.0f and %.0f for `const/` (other load %.2f vs %.2f cores). %s. Its answer is bigger than the floor's (%d vs %d B).",
				n, fr, st.Stats.Errors, st.VaultUS, st.PluginUS, c.VaultUS, c.PluginUS, st.OtherCores, c.OtherCores, biggerSide(st, c), r.AnswerBytes["static"], r.AnswerBytes["const"]))
		}
	}
	if ok4 && ok3 && where != "" {
		if fr := judgedFloorRatio(st, l); fr < targetRaftStatic || st.Stats.Errors > 0 {
			out = append(out, fmt.Sprintf("%s`static-creds/` target missed: at %d clients it serves %.2f× the leased floor (%.0f vs %.0f reads/s; %.2f× the unleased floor), %d errors; per read %.0f µs of CPU in Vault and %.0f µs in the plugin, against %.0f and %.0f for the leased floor, whose every read writes a lease through Raft.",
				where, n, fr, st.Stats.OpsPerS, l.Stats.OpsPerS, ratio(st.Stats.OpsPerS, c.Stats.OpsPerS), st.Stats.Errors, st.VaultUS, st.PluginUS, l.VaultUS, l.PluginUS))
		}
	}
	if ok4 && staticLeases != 0 {
		out = append(out, fmt.Sprintf("%s`static-creds/` lease check failed: %s under `zoho/static-creds/bench/` after its reads.", where, leaseCountText(staticLeases, staticErr)))
	}
	return out
}

// leaseEndNote explains a missed (or unjudged) lease-end target.
func leaseEndNote(r *results, le leaseEndResult) string {
	if le.Err != "" {
		return fmt.Sprintf("Lease-end target not measured: %s.", oneLine(le.Err))
	}
	text := fmt.Sprintf("Lease ends (part 3, %s tokens, window %s): p99 %.2f ms in the %d seconds in which the account's leases ended (up to %d a second, %.1f on average, at %.0f reads/s) against %.2f ms steady before them (%.2f×; %d and %d samples; %d read errors; other load %.2f cores).",
		durText(le.TTL), secs(le.Window), ms(le.EndsP99), le.EndSeconds, le.MaxEnds, le.MeanEnds, le.Rate, ms(le.SteadyP99), le.Ratio, le.EndsN, le.SteadyN, le.Errors, le.OtherCores)
	if le.Window < time.Minute {
		return text + " The window is below a minute (a shortened run), so the target is not judged."
	}
	return text + fmt.Sprintf(" Target missed: Vault revokes each lease at its end (storage deletes and one plugin call each) on the same %d cores that serve the reads.", r.Machine.CPUs)
}
