package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

// vaultServer is a Vault server of the suite (scripts/internal/vaultproc
// starts and stops it) with the helpers the tests use: CLI runs, raw HTTP,
// its log on failure.
type vaultServer struct {
	*vaultproc.Server
}

// serverConfig is the launcher's configuration for a server of the suite.
func serverConfig(dir, level string) vaultproc.Config {
	return vaultproc.Config{Bin: vaultBin, Dir: dir, PluginDir: pluginDir, LogLevel: level}
}

// startDevVault starts `vault server -dev` with the plugin directory.
func startDevVault(dir string) (*vaultServer, error) {
	return startDevVaultLevel(dir, "debug")
}

// startDevVaultLevel starts a dev Vault logging at level.
func startDevVaultLevel(dir, level string) (*vaultServer, error) {
	s, err := vaultproc.StartDev(serverConfig(dir, level))
	if err != nil {
		return nil, err
	}
	return &vaultServer{s}, nil
}

// persistentVault is a Vault with file storage that survives restarts.
type persistentVault struct {
	*vaultproc.Persistent
}

// newPersistentVault initializes a file-storage Vault in dir and leaves it
// running and unsealed.
func newPersistentVault(dir string) (*persistentVault, *vaultServer, error) {
	p, s, err := vaultproc.InitPersistent(serverConfig(dir, "debug"))
	if err != nil {
		return nil, nil, err
	}
	return &persistentVault{p}, &vaultServer{s}, nil
}

// start starts a server process on the storage of p (sealed).
func (p *persistentVault) start() (*vaultServer, error) {
	s, err := p.Start()
	if err != nil {
		return nil, err
	}
	return &vaultServer{s}, nil
}

func (p *persistentVault) unseal(v *vaultServer) error { return p.Unseal(v.Server) }

func writeFile(path, content string, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), perm)
}

// dumpLogOnFailure prints the server's log if t fails.
func (v *vaultServer) dumpLogOnFailure(t *testing.T, what string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s log (%s) ---\n%s", what, v.LogPath, v.LogTail(400))
		}
	})
}

// root is a root-token API client.
func (v *vaultServer) root() *api.Client { return v.Client(v.Token) }

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
	cmd := v.Command(ctx, token, args...)
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
	r := v.cli(t, v.Token, args...)
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return v.EnablePlugin(ctx, vaultproc.Plugin{Name: pluginName, Command: pluginCommand, Version: pluginVersion, SHA256: pluginSHA}, mountPath)
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
	req, err := http.NewRequestWithContext(ctx, method, v.Addr+"/v1/"+strings.TrimPrefix(path, "/"), rd)
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
