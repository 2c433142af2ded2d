// The load generators the parts drive Vault with (closed loop, open loop,
// bounded parallel), latency summaries, and the CPU accounting that splits a
// measurement's CPU time between Vault, the plugins, this harness and the
// rest of the machine.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
)

// readRaw sends one GET for path and drains the answer; an HTTP error status
// is an error.
func readRaw(ctx context.Context, c *api.Client, path string) error {
	resp, err := c.Logical().ReadRawWithContext(ctx, path)
	if resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		return err
	}
	if resp == nil || resp.StatusCode != http.StatusOK {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return fmt.Errorf("GET %s: HTTP %d", path, code)
	}
	return nil
}

// latStats summarises latencies.
type latStats struct {
	N        int
	Errors   int
	Seconds  float64
	OpsPerS  float64
	P50, P99 time.Duration
	Max      time.Duration
	FirstErr string
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func summarise(lats []time.Duration, errs int, seconds float64, firstErr string) latStats {
	s := append([]time.Duration(nil), lats...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	st := latStats{N: len(s), Errors: errs, Seconds: seconds, FirstErr: firstErr}
	if seconds > 0 {
		st.OpsPerS = float64(len(s)) / seconds
	}
	st.P50 = percentile(s, 0.50)
	st.P99 = percentile(s, 0.99)
	if len(s) > 0 {
		st.Max = s[len(s)-1]
	}
	return st
}

// pids are the processes whose CPU time a measurement splits out (agent: a
// Vault Agent, in part 6; 0 when none runs).
type pids struct {
	vault, engine, floor, agent int
}

// cpuSnap is the CPU time used so far by Vault, the two plugins, a Vault
// Agent, this harness and the whole machine.
type cpuSnap struct {
	at                                time.Time
	vault, engine, floor, agent, self time.Duration
	machine                           time.Duration // busy time of all CPUs together
}

func snapCPU(p pids) cpuSnap {
	return cpuSnap{
		at:      time.Now(),
		vault:   procCPU(p.vault),
		engine:  procCPU(p.engine),
		floor:   procCPU(p.floor),
		agent:   procCPU(p.agent),
		self:    procCPU(os.Getpid()),
		machine: machineBusy(),
	}
}

// cpuDelta is the CPU used between two snapshots.
type cpuDelta struct {
	wall                              time.Duration
	vault, engine, floor, agent, self time.Duration
	others                            time.Duration // everything else on the machine
}

func (a cpuSnap) to(b cpuSnap) cpuDelta {
	d := cpuDelta{wall: b.at.Sub(a.at), vault: b.vault - a.vault, engine: b.engine - a.engine, floor: b.floor - a.floor, agent: b.agent - a.agent, self: b.self - a.self}
	d.others = (b.machine - a.machine) - d.vault - d.engine - d.floor - d.agent - d.self
	if d.others < 0 {
		d.others = 0
	}
	return d
}

func (d *cpuDelta) add(o cpuDelta) {
	d.wall += o.wall
	d.vault += o.vault
	d.engine += o.engine
	d.floor += o.floor
	d.agent += o.agent
	d.self += o.self
	d.others += o.others
}

// otherCores is the average number of cores other processes kept busy.
func (d cpuDelta) otherCores() float64 {
	if d.wall <= 0 {
		return 0
	}
	return float64(d.others) / float64(d.wall)
}

// levelResult is one target at one concurrency.
type levelResult struct {
	Target  string
	Clients int
	Stats   latStats
	Issued  int64 // successful reads including warm-up (= leases created, for leased targets)
	// CPU per measured operation, in microseconds.
	VaultUS, PluginUS, SelfUS float64
	OtherCores                float64 // other processes' load meanwhile, in cores
	// Per run (round): reads/s and Vault+plugin CPU µs per read, to show
	// how much the rounds disagree.
	RoundOps      []float64
	RoundServerUS []float64
	RoundOthers   []float64 // other processes' load during each run, in cores
}

// slice is one closed-loop run of one target.
type slice struct {
	lats     []time.Duration
	errs     int
	firstErr string
	issued   int64
	cpu      cpuDelta
}

// closedLoop runs clients workers, each reading path back to back, for warm
// then dur; only operations started within dur count, and CPU is sampled at
// the edges of dur.
func closedLoop(ctx context.Context, mk func() *api.Client, path string, clients int, warm, dur time.Duration, p pids) slice {
	start := time.Now()
	measureFrom := start.Add(warm)
	end := measureFrom.Add(dur)
	var (
		mu     sync.Mutex
		out    slice
		issued atomic.Int64
		wg     sync.WaitGroup
	)
	var before, after cpuSnap
	var snapWG sync.WaitGroup
	snapWG.Add(1)
	go func() {
		defer snapWG.Done()
		time.Sleep(time.Until(measureFrom))
		before = snapCPU(p)
		time.Sleep(time.Until(end))
		after = snapCPU(p)
	}()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := mk()
			local := make([]time.Duration, 0, 4096)
			localErrs := 0
			var localFirst string
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(end) {
					break
				}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := readRaw(rctx, c, path)
				cancel()
				lat := time.Since(t)
				if err == nil {
					issued.Add(1)
				}
				if t.Before(measureFrom) {
					continue
				}
				if err != nil {
					localErrs++
					if localFirst == "" {
						localFirst = err.Error()
					}
					continue
				}
				local = append(local, lat)
			}
			mu.Lock()
			out.lats = append(out.lats, local...)
			out.errs += localErrs
			if out.firstErr == "" {
				out.firstErr = localFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	snapWG.Wait()
	out.issued = issued.Load()
	out.cpu = before.to(after)
	return out
}

// merge summarises the slices of one target at one level; plugin selects
// which plugin's CPU counts as the target's.
func merge(key string, clients int, slices []slice, plugin func(cpuDelta) time.Duration) levelResult {
	var lats []time.Duration
	var cpu cpuDelta
	r := levelResult{Target: key, Clients: clients}
	errs, firstErr := 0, ""
	for _, s := range slices {
		if n := len(s.lats); n > 0 && s.cpu.wall > 0 {
			r.RoundOps = append(r.RoundOps, float64(n)/s.cpu.wall.Seconds())
			r.RoundServerUS = append(r.RoundServerUS, float64(s.cpu.vault+plugin(s.cpu))/float64(time.Microsecond)/float64(n))
			r.RoundOthers = append(r.RoundOthers, s.cpu.otherCores())
		}
		lats = append(lats, s.lats...)
		errs += s.errs
		if firstErr == "" {
			firstErr = s.firstErr
		}
		r.Issued += s.issued
		cpu.add(s.cpu)
	}
	r.Stats = summarise(lats, errs, cpu.wall.Seconds(), firstErr)
	if r.Stats.N > 0 {
		n := float64(r.Stats.N)
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / n }
		r.VaultUS, r.PluginUS, r.SelfUS = us(cpu.vault), us(plugin(cpu)), us(cpu.self)
	}
	r.OtherCores = cpu.otherCores()
	return r
}

// machineBusy is the busy time of all CPUs together, from /proc/stat.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line := strings.SplitN(string(data), "\n", 2)[0]
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	// user nice system idle iowait irq softirq steal
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		busy += v
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// waitQuiet waits, up to max, for a 3 s window in which processes other than
// Vault, its plugins and this harness keep less than limit cores busy, and
// returns the last window's load.
func waitQuiet(ctx context.Context, p pids, limit float64, max time.Duration) (float64, time.Duration) {
	start := time.Now()
	for {
		a := snapCPU(p)
		if sleepCtx(ctx, 3*time.Second) != nil {
			return -1, time.Since(start)
		}
		load := a.to(snapCPU(p)).otherCores()
		if load < limit || time.Since(start) >= max {
			return load, time.Since(start)
		}
		logf("  other processes keep %.2f cores busy; waiting for a quieter machine (up to %s)", load, max)
	}
}

// readLeased is readRaw that also returns the answer's lease_duration (0
// for an answer without a lease).
func readLeased(ctx context.Context, c *api.Client, path string) (time.Duration, error) {
	resp, err := c.Logical().ReadRawWithContext(ctx, path)
	var body struct {
		LeaseDuration int64 `json:"lease_duration"`
	}
	var decodeErr error
	if resp != nil && resp.Body != nil {
		if err == nil && resp.StatusCode == http.StatusOK {
			decodeErr = json.NewDecoder(resp.Body).Decode(&body)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		return 0, err
	}
	if resp == nil || resp.StatusCode != http.StatusOK {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return 0, fmt.Errorf("GET %s: HTTP %d", path, code)
	}
	if decodeErr != nil {
		return 0, fmt.Errorf("GET %s: %w", path, decodeErr)
	}
	return time.Duration(body.LeaseDuration) * time.Second, nil
}

// timedRead is one read of an open-loop run.
type timedRead struct {
	at  time.Duration // start, from the run's origin
	lat time.Duration
	err bool
	// leaseEnd is when Vault will revoke the read's lease (from the run's
	// origin): the answer's arrival plus its lease_duration, Vault having
	// registered the lease between the request and the answer; 0 without
	// a lease.
	leaseEnd time.Duration
}

// openLoop starts one read of path every 1/rate seconds, each in its own
// goroutine (a slow answer does not delay the next request), for dur.
// Times are offsets from origin; each read's lease end is kept.
func openLoop(ctx context.Context, c *api.Client, path string, rate float64, dur time.Duration, origin time.Time) ([]timedRead, string) {
	interval := time.Duration(float64(time.Second) / rate)
	n := int(rate*dur.Seconds()) + 16
	out := make([]timedRead, n)
	var idx atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; i < n-16; i++ {
		next := start.Add(time.Duration(i) * interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			ttl, err := readLeased(rctx, c, path)
			cancel()
			lat := time.Since(t)
			if err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
			}
			r := timedRead{at: t.Sub(origin), lat: lat, err: err != nil}
			if err == nil && ttl > 0 {
				r.leaseEnd = r.at + lat + ttl
			}
			j := idx.Add(1) - 1
			if int(j) < len(out) {
				out[j] = r
			}
		}()
	}
	wg.Wait()
	m := int(idx.Load())
	if m > len(out) {
		m = len(out)
	}
	fe, _ := firstErr.Load().(string)
	return out[:m], fe
}

// parallel runs f(0..n-1) with at most par at once and returns how many
// failed and the first error.
func parallel(ctx context.Context, n, par int, f func(ctx context.Context, i int) error) (int, error) {
	var (
		failed atomic.Int64
		next   atomic.Int64
		mu     sync.Mutex
		first  error
		wg     sync.WaitGroup
	)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					failed.Add(1)
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return int(failed.Load()), first
}
