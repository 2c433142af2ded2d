package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultServer is one Vault server process on loopback.
type vaultServer struct {
	addr    string // http://127.0.0.1:<port>
	dir     string // private directory: config, home, log
	home    string // HOME of the server and of CLI runs against it
	logPath string
	token   string // root token

	cmd  *exec.Cmd
	logf *os.File
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	err  error // the process's exit status, once done

	tmp     string // TMPDIR of the process
	stopped bool
}

// freeAddr returns a free 127.0.0.1 port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// childEnv is the environment of the processes the tests start: the test's
// own, minus anything that would point Vault elsewhere or through a proxy,
// with a private HOME.
func childEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k := strings.ToUpper(strings.SplitN(kv, "=", 2)[0])
		if strings.HasPrefix(k, "VAULT_") || strings.HasSuffix(k, "_PROXY") || k == "HOME" || k == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	return append(env, extra...)
}

// startProcess runs bin args with output to logPath in its own process
// group, so that stopping it also ends the plugin processes it started.
func startProcess(bin string, args []string, env []string, logPath string) (*exec.Cmd, *os.File, chan struct{}, *error, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies (e.g. on -timeout) takes Vault with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, nil, nil, err
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	return cmd, logf, done, &waitErr, nil
}

func writeFile(path, content string, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), perm)
}

// startDevVault starts `vault server -dev` with the plugin directory. A port
// taken by someone else between picking and binding it is picked again.
func startDevVault(dir string) (*vaultServer, error) {
	return startDevVaultLevel(dir, "debug")
}

// startDevVaultLevel starts a dev Vault logging at level.
func startDevVaultLevel(dir, level string) (*vaultServer, error) {
	return retryPort(func() (*vaultServer, error) { return startDevVaultOnce(dir, level) })
}

// retryPort retries start up to three times when Vault could not bind its
// port.
func retryPort(start func() (*vaultServer, error)) (*vaultServer, error) {
	var err error
	for i := 0; i < 3; i++ {
		var v *vaultServer
		if v, err = start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return v, err
		}
	}
	return nil, err
}

func startDevVaultOnce(dir, level string) (*vaultServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	v := &vaultServer{addr: "http://" + addr, dir: dir, home: filepath.Join(dir, "home"), logPath: filepath.Join(dir, "vault.log"), token: "root"}
	if err := os.MkdirAll(v.home, 0o700); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "dev.hcl")
	if err := writeFile(cfg, fmt.Sprintf("plugin_directory = %q\ndisable_mlock = true\n", pluginDir), 0o600); err != nil {
		return nil, err
	}
	args := []string{"server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=" + addr,
		"-dev-no-store-token", "-config=" + cfg, "-log-level=" + level}
	if err := v.start(args); err != nil {
		return nil, err
	}
	if err := v.waitReady(60*time.Second, func(h *api.HealthResponse) bool {
		return h.Initialized && !h.Sealed && !h.Standby
	}); err != nil {
		v.stop()
		return nil, err
	}
	return v, nil
}

// persistentVault is a Vault with file storage that survives restarts.
type persistentVault struct {
	dir       string
	unsealKey string
	rootToken string
}

// newPersistentVault initializes a file-storage Vault in dir and leaves it
// running and unsealed.
func newPersistentVault(dir string) (*persistentVault, *vaultServer, error) {
	p := &persistentVault{dir: dir}
	v, err := p.start()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	init, err := v.client("").Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		v.stop()
		return nil, nil, fmt.Errorf("init: %w", err)
	}
	p.unsealKey, p.rootToken = init.Keys[0], init.RootToken
	v.token = p.rootToken
	if err := p.unseal(v); err != nil {
		v.stop()
		return nil, nil, err
	}
	return p, v, nil
}

// start starts a server process on the storage of p (sealed).
func (p *persistentVault) start() (*vaultServer, error) {
	return retryPort(p.startOnce)
}

func (p *persistentVault) startOnce() (*vaultServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	v := &vaultServer{addr: "http://" + addr, dir: p.dir, home: filepath.Join(p.dir, "home"), logPath: filepath.Join(p.dir, "vault.log"), token: p.rootToken}
	if err := os.MkdirAll(v.home, 0o700); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`storage "file" {
  path = %q
}
listener "tcp" {
  address     = %q
  tls_disable = true
}
api_addr         = %q
disable_mlock    = true
plugin_directory = %q
log_level        = "debug"
`, filepath.Join(p.dir, "data"), addr, v.addr, pluginDir)
	cfgPath := filepath.Join(p.dir, "vault.hcl")
	if err := writeFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	appendLog(v.logPath, fmt.Sprintf("\n===== starting Vault on %s at %s =====\n", addr, time.Now().Format(time.RFC3339Nano)))
	if err := v.start([]string{"server", "-config=" + cfgPath}); err != nil {
		return nil, err
	}
	if err := v.waitReady(60*time.Second, func(*api.HealthResponse) bool { return true }); err != nil {
		v.stop()
		return nil, err
	}
	return v, nil
}

func (p *persistentVault) unseal(v *vaultServer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := v.client("").Sys().UnsealWithContext(ctx, p.unsealKey)
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if st.Sealed {
		return errors.New("still sealed after the unseal key")
	}
	return v.waitReady(60*time.Second, func(h *api.HealthResponse) bool {
		return h.Initialized && !h.Sealed && !h.Standby
	})
}

// appendLog adds a marker line to a log file.
func appendLog(path, msg string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(msg)
	_ = f.Close()
}

func (v *vaultServer) start(args []string) error {
	// Plugin processes keep their sockets under TMPDIR; a short private one
	// keeps socket paths short and leaves nothing behind in /tmp.
	tmp, err := os.MkdirTemp("", "zv-")
	if err != nil {
		return err
	}
	v.tmp = tmp
	cmd, logf, done, waitErr, err := startProcess(vaultBin, args, childEnv(v.home, "TMPDIR="+tmp), v.logPath)
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("starting vault: %w", err)
	}
	v.cmd, v.logf, v.done = cmd, logf, done
	go func() {
		<-done
		v.mu.Lock()
		v.err = *waitErr
		v.mu.Unlock()
	}()
	return nil
}

// exited reports whether the process has exited, and how.
func (v *vaultServer) exited() (bool, error) {
	select {
	case <-v.done:
		v.mu.Lock()
		defer v.mu.Unlock()
		return true, v.err
	default:
		return false, nil
	}
}

// waitReady polls sys/health until ok accepts it, failing early if the
// process exits.
func (v *vaultServer) waitReady(timeout time.Duration, ok func(*api.HealthResponse) bool) error {
	c := v.client("")
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if gone, err := v.exited(); gone {
			return fmt.Errorf("vault exited while starting (%v)\n--- vault log ---\n%s", err, v.logTail(80))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err := c.Sys().HealthWithContext(ctx)
		cancel()
		if err == nil && ok(h) {
			return nil
		}
		if err == nil {
			last = fmt.Errorf("health: %+v", *h)
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vault at %s not ready after %s: %v\n--- vault log ---\n%s", v.addr, timeout, last, v.logTail(80))
}

// terminate sends SIGTERM and waits for a clean exit.
func (v *vaultServer) terminate(timeout time.Duration) error {
	if gone, _ := v.exited(); gone {
		return errors.New("vault had already exited")
	}
	if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-v.done:
	case <-time.After(timeout):
		v.stop()
		return fmt.Errorf("vault did not exit within %s of SIGTERM", timeout)
	}
	// Plugin processes left behind by the shutdown end with the group.
	v.stop()
	_, err := v.exited()
	return err
}

// stop kills the process group and waits for the process.
func (v *vaultServer) stop() {
	if v.cmd == nil || v.cmd.Process == nil {
		return
	}
	v.mu.Lock()
	stopped := v.stopped
	v.stopped = true
	v.mu.Unlock()
	if stopped {
		return
	}
	_ = syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
	}
	v.logf.Close()
	if v.tmp != "" {
		os.RemoveAll(v.tmp)
	}
}

func (v *vaultServer) logSize() int64 {
	st, err := os.Stat(v.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

func (v *vaultServer) logSince(off int64) string {
	data, err := os.ReadFile(v.logPath)
	if err != nil {
		return err.Error()
	}
	if off > int64(len(data)) {
		off = 0
	}
	return lastLines(string(data[off:]), 400)
}

func (v *vaultServer) logTail(n int) string {
	data, err := os.ReadFile(v.logPath)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(data), n)
}

// dumpLogOnFailure prints the server's log if t fails.
func (v *vaultServer) dumpLogOnFailure(t *testing.T, what string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s log (%s) ---\n%s", what, v.logPath, v.logTail(400))
		}
	})
}

// client is an API client for the server with token (the root token when
// empty is not wanted: pass v.token). Retries are off so failures show as
// they are.
func (v *vaultServer) client(token string) *api.Client {
	cfg := api.DefaultConfig()
	cfg.Address = v.addr
	cfg.MaxRetries = 0
	cfg.Timeout = 60 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	c.ClearToken()
	if token != "" {
		c.SetToken(token)
	}
	return c
}

// root is a root-token API client.
func (v *vaultServer) root() *api.Client { return v.client(v.token) }

// cliResult is the outcome of one CLI run.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("vault %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cli runs the real vault CLI against the server with token.
func (v *vaultServer) cli(t *testing.T, token string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vaultBin, args...)
	cmd.Env = childEnv(v.home, "VAULT_ADDR="+v.addr, "VAULT_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("running vault %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func (v *vaultServer) mustCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := v.cli(t, v.token, args...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	return r
}

// cliJSON runs the CLI (with -format=json among args) and decodes stdout.
func (v *vaultServer) cliJSON(t *testing.T, out interface{}, args ...string) cliResult {
	t.Helper()
	r := v.mustCLI(t, args...)
	if err := json.Unmarshal([]byte(r.stdout), out); err != nil {
		t.Fatalf("decoding the JSON output of %s: %v", r, err)
	}
	return r
}

// enablePlugin registers the plugin by sha256 and version with the real CLI
// and mounts it at zoho/.
func (v *vaultServer) enablePlugin() error {
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, vaultBin, args...)
		cmd.Env = childEnv(v.home, "VAULT_ADDR="+v.addr, "VAULT_TOKEN="+v.token)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("plugin", "register", "-sha256="+pluginSHA, "-version="+pluginVersion,
		"-command="+pluginCommand, "secret", pluginName); err != nil {
		return err
	}
	return run("secrets", "enable", "-path="+mountPath, "-plugin-version="+pluginVersion, pluginName)
}

// rawResult is a plain HTTP exchange with Vault's API.
type rawResult struct {
	status int
	body   []byte
}

func (r rawResult) String() string { return fmt.Sprintf("HTTP %d: %s", r.status, r.body) }

// raw sends one HTTP request to Vault's API with token; body may be nil.
func (v *vaultServer) raw(t *testing.T, token, method, path string, body interface{}) rawResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, v.addr+"/v1/"+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := loopbackHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return rawResult{status: resp.StatusCode, body: data}
}

// loopbackHTTP is a client that never uses a proxy.
var loopbackHTTP = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: false, MaxIdleConnsPerHost: 4},
	Timeout:   time.Minute,
}
