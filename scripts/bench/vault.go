package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

const (
	engineName    = "zoho"
	engineCommand = "vault-plugin-secrets-zoho"
	floorName     = "floor"
	floorCommand  = "vault-plugin-secrets-floor"
	pluginVersion = "v0.1.0"
)

// goBuild builds pkg (relative to root) into out.
func goBuild(root, pkg, out string, ldflags string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := []string{"build", "-trimpath", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	args = append(args, pkg)
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, buf.String())
	}
	return nil
}

// version asks the binary for its version line.
func vaultVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// newTransport is the HTTP transport every API client of the run shares:
// enough idle connections for 1000 concurrent readers.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// newAdminClient is an API client with the root token, no retries and the
// given timeout; tr nil gets a private transport.
func newAdminClient(addr string, tr *http.Transport, timeout time.Duration) *api.Client {
	if tr == nil {
		tr = newTransport()
	}
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.HttpClient = &http.Client{Transport: tr, Timeout: timeout}
	cfg.MaxRetries = 0
	cfg.Timeout = timeout
	cfg.Limiter = nil
	c, err := api.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	c.SetToken("root")
	return c
}

// --- /proc ---

// procCPU is the user+system CPU time a process has used.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After the command: state(0) ppid(1) ... utime(11) stime(12), in USER_HZ (100 on Linux).
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procStatusKB reads a "Key:  N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func procPPid(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// findPlugin returns the pid of the child of Vault (ppid) whose command line
// runs command, or 0.
func findPlugin(ppid int, command string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv0 := string(bytes.SplitN(cmdline, []byte{0}, 2)[0])
		if filepath.Base(argv0) != command {
			continue
		}
		if ppid > 0 && procPPid(pid) != ppid {
			continue
		}
		return pid
	}
	return 0
}

// waitPlugin polls for the plugin process for up to d.
func waitPlugin(ppid int, command string, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		if pid := findPlugin(ppid, command); pid > 0 || time.Now().After(deadline) {
			return pid
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// machine describes the host for the report.
type machine struct {
	CPUs     int
	Model    string
	MemTotal string
	Kernel   string
}

func describeMachine(ncpu int) machine {
	m := machine{CPUs: ncpu, Model: "unknown", MemTotal: "unknown", Kernel: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.IndexByte(line, ':'); i >= 0 {
					m.Model = strings.TrimSpace(line[i+1:])
					break
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					m.MemTotal = fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

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
	cmd := exec.CommandContext(ctx, goBin, "test", "-run", "^$", "-bench", "^(BenchmarkIssueCredsCached|BenchmarkCredsReadHandleRequest)$",
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

// gitCommit names the engine's source: the commit, and whether the engine's
// directories differ from it.
func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", "backend", "paths", "cmd", "go.mod", "go.sum").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " with uncommitted changes in backend/, paths/, cmd/ or go.mod"
	}
	return c
}
