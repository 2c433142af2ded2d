// Part 1: cached creds/ read throughput and latency at 1, 16 and 64 clients
// beside a KV v2 read and the floor plugin's unleased and leased reads, with
// the CPU each process spends per read; and the engine's own cost per read
// in process (the backend's Go benchmarks, no Vault).

package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

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
	targets, err := prepareTargets(ctx, c, "bench")
	if err != nil {
		return err
	}

	b.pids.vault = b.v.PID()
	b.pids.engine = waitPlugin(b.pids.vault, engineCommand, 10*time.Second)
	b.pids.floor = waitPlugin(b.pids.vault, floorCommand, 10*time.Second)
	if b.pids.engine == 0 || b.pids.floor == 0 {
		return fmt.Errorf("plugin processes not found (engine pid %d, floor pid %d)", b.pids.engine, b.pids.floor)
	}
	b.res.AnswerBytes = map[string]int{}
	for _, t := range targets {
		b.res.AnswerBytes[t.Key] = answerBytes(ctx, c, t.Path)
	}
	b.res.Settle, b.res.SettleWaited = waitQuiet(ctx, b.pids, 0.3, b.set.SettleMax)
	logf("  background load before measuring: %.2f cores (waited %.0f s)", b.res.Settle, b.res.SettleWaited.Seconds())

	issued := map[string]int64{"engine": 2, "static": 1, "leased": 1, "leasedint": 1} // the reads just made
	per := b.set.Duration / time.Duration(b.set.Rounds)
	for _, n := range b.set.Levels {
		level := targets
		rounds := b.set.Rounds
		if n == diagnosticClients {
			rounds = b.set.TargetRounds
		}
		slices, err := interleaved(ctx, b.client, level, n, rounds, b.set.Warm, per, b.pids)
		if err != nil {
			return err
		}
		for _, t := range level {
			for _, sl := range slices[t.Key] {
				issued[t.Key] += sl.issued
			}
			lr := merge(t.Key, n, slices[t.Key], t.cpu)
			b.res.Throughput = append(b.res.Throughput, lr)
			logLevel(lr)
		}
	}
	// static-creds/ answers carry no lease: none should be listed.
	b.res.StaticReads = issued["static"]
	if ids, err := listLeases(ctx, c, "zoho/static-creds/bench/"); err != nil {
		b.res.StaticLeases, b.res.StaticLeasesErr = -1, err.Error()
	} else {
		b.res.StaticLeases = len(ids)
	}
	logf("  static-creds/: %d reads, %d leases listed under sys/leases/lookup/zoho/static-creds/bench/ %s", b.res.StaticReads, b.res.StaticLeases, b.res.StaticLeasesErr)
	b.res.Revocations = append(b.res.Revocations,
		b.revokePrefix(ctx, "zoho/creds/bench/", "engine leases of part 1", issued["engine"]),
		b.revokePrefix(ctx, "floor/leased/", "floor leases of part 1", issued["leased"]),
		b.revokePrefix(ctx, "floor/leasedint/", "floor leases shaped like the engine's, part 1", issued["leasedint"]))
	return nil
}

// The CPU of the plugin serving a target.
var (
	engineCPU = func(d cpuDelta) time.Duration { return d.engine }
	floorCPU  = func(d cpuDelta) time.Duration { return d.floor }
	noPlugin  = func(cpuDelta) time.Duration { return 0 }
)

// prepareTargets reads creds/<account> once, copies the answer into the
// floor's body and a KV v2 entry (mounting kv/), and returns the compared
// targets: the engine's creds/ and static-creds/, the floor leased (plain,
// and shaped like the engine's lease) and unleased, and KV v2.
func prepareTargets(ctx context.Context, c *api.Client, account string) ([]target, error) {
	sec, err := c.Logical().ReadWithContext(ctx, "zoho/creds/"+account)
	if err != nil || sec == nil {
		return nil, fmt.Errorf("first creds/%s read: %v", account, err)
	}
	// The floor answers exactly this body; KV holds the same fields.
	if _, err := c.Logical().WriteWithContext(ctx, "floor/body", sec.Data); err != nil {
		return nil, fmt.Errorf("floor/body: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "sys/mounts/kv", map[string]interface{}{
		"type": "kv", "options": map[string]interface{}{"version": "2"},
	}); err != nil {
		return nil, fmt.Errorf("mounting kv v2: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// KV v2 upgrades its storage in the background after mounting.
		_, err = c.Logical().WriteWithContext(ctx, "kv/data/"+account, map[string]interface{}{"data": sec.Data})
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("writing kv/data/%s: %w", account, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return []target{
		{"engine", "zoho/creds/" + account, engineCPU},
		{"static", "zoho/static-creds/" + account, engineCPU},
		{"leased", "floor/leased/" + account, floorCPU},
		{"leasedint", "floor/leasedint/" + account, floorCPU},
		{"const", "floor/const/" + account, floorCPU},
		{"kv", "kv/data/" + account, noPlugin},
	}, nil
}

// interleaved runs every target rounds times at n clients for warm + per
// each, in alternating order (so that drift, such as leases piling up or
// other load on the machine, favours no target), and returns each target's
// runs.
func interleaved(ctx context.Context, mk func() *api.Client, targets []target, n, rounds int, warm, per time.Duration, p pids) (map[string][]slice, error) {
	slices := map[string][]slice{}
	for r := 0; r < rounds; r++ {
		order := append([]target(nil), targets...)
		if r%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, t := range order {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			slices[t.Key] = append(slices[t.Key], closedLoop(ctx, mk, t.Path, n, warm, per, p))
		}
	}
	return slices, nil
}

// logLevel logs one target at one level.
func logLevel(lr levelResult) {
	logf("  %-9s %2d clients: %7.0f reads/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  (µs/read: vault %.0f, plugin %.0f, harness %.0f; others %.2f cores)",
		lr.Target, lr.Clients, lr.Stats.OpsPerS, ms(lr.Stats.P50), ms(lr.Stats.P99), lr.Stats.Errors, lr.VaultUS, lr.PluginUS, lr.SelfUS, lr.OtherCores)
	if lr.Stats.Errors > 0 {
		logf("    first error: %s", lr.Stats.FirstErr)
	}
}

// diagnosticClients is the target level: the one the summary's ratios are
// judged at, with more rounds.
const diagnosticClients = 16

// goBench is one line of `go test -bench` output.
type goBench struct {
	Name        string
	NsPerOp     float64
	BytesPerOp  int64
	AllocsPerOp int64
}

// inProcessBench runs the backend's own read benchmarks (no Vault, no gRPC).
func inProcessBench(ctx context.Context, root string) ([]goBench, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	cmd := exec.CommandContext(ctx, goBin, "test", "-run", "^$", "-bench", "^(BenchmarkIssueCredsCached|BenchmarkCredsReadHandleRequest|BenchmarkStaticCredsReadHandleRequest)$",
		"-benchmem", "-benchtime", "1s", "-count", "1", "./backend/")
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, buf.String())
	}
	var out []goBench
	name := ""
	// The engine's log lines may come between a benchmark's name and its result.
	for _, line := range strings.Split(buf.String(), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "Benchmark") {
			name = f[0]
		}
		if name == "" || !strings.Contains(line, " ns/op") {
			continue
		}
		gb := goBench{Name: name}
		for i := 1; i < len(f); i++ {
			v, _ := strconv.ParseFloat(f[i-1], 64)
			switch f[i] {
			case "ns/op":
				gb.NsPerOp = v
			case "B/op":
				gb.BytesPerOp = int64(v)
			case "allocs/op":
				gb.AllocsPerOp = int64(v)
			}
		}
		out = append(out, gb)
		name = ""
	}
	return out, nil
}
