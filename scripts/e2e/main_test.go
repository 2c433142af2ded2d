package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

const (
	pluginName    = "zoho"
	pluginCommand = "vault-plugin-secrets-zoho"
	pluginVersion = "v0.1.0"
	mountPath     = "zoho"
)

// Shared state set up once by TestMain.
var (
	repoRoot  string // module root (holds go.mod)
	vaultBin  string // real Vault binary: server, CLI and Agent
	pluginDir string // plugin_directory holding the freshly built plugin
	pluginSHA string // hex sha256 of the plugin binary
	sim       *zohosim.Server

	sharedOnce  sync.Once
	sharedVault *vaultServer
	sharedErr   error
	sharedDir   string
)

func TestMain(m *testing.M) {
	code, err := setupAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup failed:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setupAndRun(m *testing.M) (int, error) {
	root, err := vaultproc.RepoRoot()
	if err != nil {
		return 0, err
	}
	repoRoot = root

	work, err := os.MkdirTemp("", "zoho-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	if work, err = filepath.EvalSymlinks(work); err != nil {
		return 0, err
	}

	pluginDir = filepath.Join(work, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		return 0, err
	}
	if err := buildPlugin(pluginDir); err != nil {
		return 0, err
	}
	sum, err := filesum.SHA256(filepath.Join(pluginDir, pluginCommand))
	if err != nil {
		return 0, err
	}
	pluginSHA = sum

	// $VAULT_BIN, vault on PATH or the cached build; otherwise
	// scripts/vault.sh builds it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	vaultBin, err = vaultproc.FindOrBuild(ctx, repoRoot, os.Stderr)
	cancel()
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "e2e: vault binary %s, plugin sha256 %s\n", vaultBin, pluginSHA)

	sim = zohosim.New(zohosim.Config{})
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		return 0, fmt.Errorf("starting the Zoho simulator: %w", err)
	}
	defer sim.Close()

	sharedDir = filepath.Join(work, "shared-vault")
	defer func() {
		if sharedVault != nil {
			sharedVault.Kill()
		}
	}()

	return m.Run(), nil
}

// goTool is the go command: on PATH, else in GOROOT as `go env` would say
// (the test binary runs from a temporary directory).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

func buildPlugin(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "build",
		"-o", filepath.Join(dir, pluginCommand),
		"-ldflags", "-X main.version="+pluginVersion,
		"./cmd/vault-plugin-secrets-zoho")
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the plugin: %v\n%s", err, out.String())
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// devVault returns the dev-mode Vault shared by the tests, with the plugin
// registered and mounted at zoho/. On failure of the calling test the part
// of its log written during the test is printed.
func devVault(t *testing.T) *vaultServer {
	t.Helper()
	sharedOnce.Do(func() {
		v, err := startDevVault(sharedDir)
		if err != nil {
			sharedErr = err
			return
		}
		if err := v.enablePlugin(); err != nil {
			sharedErr = fmt.Errorf("%w\n--- vault log ---\n%s", err, v.LogTail(200))
			v.Kill()
			return
		}
		sharedVault = v
	})
	if sharedErr != nil {
		t.Fatalf("shared dev Vault: %v", sharedErr)
	}
	v := sharedVault
	from := v.LogSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- shared Vault log during %s ---\n%s", t.Name(), v.LogSince(from))
		}
	})
	return v
}
