package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

const (
	engineName    = "zoho"
	engineCommand = "vault-plugin-secrets-zoho"
	floorName     = "floor"
	floorCommand  = "vault-plugin-secrets-floor"
	pluginVersion = "v0.1.0"
	modulePath    = "github.com/zoho-vault/vault-plugin-secrets-zoho"
)

// findRepoRoot walks up from the working directory to this module's go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the module (no go.mod of " + modulePath + " above the working directory)")
		}
		dir = parent
	}
}

// resolveVault finds the Vault binary: $VAULT_BIN, else what scripts/vault.sh
// prints, else the project's cached build.
func resolveVault(root, fromEnv string) (string, error) {
	if fromEnv != "" {
		return checkExecutable(fromEnv)
	}
	var reasons []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "vault.sh"))
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if p, err := checkExecutable(strings.TrimSpace(lines[len(lines)-1])); err == nil {
			return p, nil
		} else {
			reasons = append(reasons, err.Error())
		}
	} else {
		reasons = append(reasons, fmt.Sprintf("scripts/vault.sh: %v: %s", err, strings.TrimSpace(stderr.String())))
	}
	matches, _ := filepath.Glob(filepath.Join(root, ".cache", "vault-*"))
	for _, m := range matches {
		if strings.Contains(filepath.Base(m), "build") {
			continue
		}
		if p, err := checkExecutable(m); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Vault binary: set VAULT_BIN (%s)", strings.Join(reasons, "; "))
}

func checkExecutable(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

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

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// vaultProc is the dev-mode Vault server under test.
type vaultProc struct {
	bin     string
	addr    string // http://127.0.0.1:port
	dir     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// childEnv is this process's environment without anything that would point
// Vault elsewhere or through a proxy, with a private HOME and TMPDIR.
func childEnv(home, tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k := strings.ToUpper(strings.SplitN(kv, "=", 2)[0])
		if strings.HasPrefix(k, "VAULT_") || strings.HasSuffix(k, "_PROXY") || k == "HOME" || k == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "TMPDIR="+tmp, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
}

// startVault starts `vault server -dev` on a free loopback port with the
// plugin directory and waits until it is unsealed and active.
func startVault(bin, dir, pluginDir string) (*vaultProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		v, err := startVaultOnce(bin, dir, pluginDir)
		if err == nil {
			return v, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func startVaultOnce(bin, dir, pluginDir string) (*vaultProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	home, tmp := filepath.Join(dir, "home"), filepath.Join(dir, "tmp")
	for _, d := range []string{home, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	cfg := filepath.Join(dir, "dev.hcl")
	hcl := fmt.Sprintf("plugin_directory = %q\ndisable_mlock = true\nraw_storage_endpoint = true\n", pluginDir)
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		return nil, err
	}
	v := &vaultProc{bin: bin, addr: "http://" + addr, dir: dir, logPath: filepath.Join(dir, "vault.log"), done: make(chan struct{})}
	logf, err := os.OpenFile(v.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	v.cmd = exec.Command(bin, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address="+addr,
		"-dev-no-store-token", "-config="+cfg, "-log-level=warn")
	v.cmd.Env = childEnv(home, tmp)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	// Own process group, so that stopping Vault also ends its plugins; and
	// Pdeathsig, so that a harness killed by a signal takes Vault with it.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		_ = v.cmd.Wait()
		logf.Close()
		close(v.done)
	}()
	deadline := time.Now().Add(90 * time.Second)
	c := newAdminClient(v.addr, nil, 5*time.Second)
	for {
		select {
		case <-v.done:
			return nil, fmt.Errorf("vault exited during start-up:\n%s", v.logTail(40))
		default:
		}
		h, err := c.Sys().Health()
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			return v, nil
		}
		if time.Now().After(deadline) {
			v.stop()
			return nil, fmt.Errorf("vault not ready after 90 s (last error %v):\n%s", err, v.logTail(40))
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (v *vaultProc) pid() int { return v.cmd.Process.Pid }

// stop ends Vault and its process group (its plugins): SIGTERM, then SIGKILL.
func (v *vaultProc) stop() {
	if v == nil || v.cmd == nil || v.cmd.Process == nil {
		return
	}
	pgid := v.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-v.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-v.done
	}
}

func (v *vaultProc) logTail(n int) string {
	data, _ := os.ReadFile(v.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

// registerAndMount registers a plugin by its sha256 and mounts it at path.
func registerAndMount(ctx context.Context, c *api.Client, name, command, sum, path string) error {
	if err := c.Sys().RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name: name, Type: api.PluginTypeSecrets, Command: command, SHA256: sum, Version: pluginVersion,
	}); err != nil {
		return fmt.Errorf("registering plugin %s: %w", name, err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "sys/mounts/"+path, map[string]interface{}{
		"type": name, "plugin_version": pluginVersion,
	}); err != nil {
		return fmt.Errorf("mounting %s at %s/: %w", name, path, err)
	}
	return nil
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
