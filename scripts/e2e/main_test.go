package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
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
	root, err := findRepoRoot()
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
	sum, err := fileSHA256(filepath.Join(pluginDir, pluginCommand))
	if err != nil {
		return 0, err
	}
	pluginSHA = sum

	if vaultBin, err = resolveVault(); err != nil {
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
			sharedVault.stop()
		}
	}()

	return m.Run(), nil
}

// findRepoRoot walks up from the package directory to the module's go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/zoho-vault/vault-plugin-secrets-zoho\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the module root (go.mod of github.com/zoho-vault/vault-plugin-secrets-zoho)")
		}
		dir = parent
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
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

// resolveVault finds the Vault binary: $VAULT_BIN, else what scripts/vault.sh
// prints, else the binary the project builds into .cache/.
func resolveVault() (string, error) {
	if p := os.Getenv("VAULT_BIN"); p != "" {
		return checkVault(p)
	}
	var reasons []string
	script := filepath.Join(repoRoot, "scripts", "vault.sh")
	if _, err := os.Stat(script); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script)
		cmd.Dir = repoRoot
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err == nil {
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if p := strings.TrimSpace(lines[len(lines)-1]); p != "" {
				if abs, err := checkVault(p); err == nil {
					return abs, nil
				} else {
					reasons = append(reasons, err.Error())
				}
			}
		} else {
			reasons = append(reasons, fmt.Sprintf("scripts/vault.sh failed: %v: %s", err, lastLines(stderr.String(), 20)))
		}
	}
	cached := filepath.Join(repoRoot, ".cache", "vault-1.21.0")
	if abs, err := checkVault(cached); err == nil {
		return abs, nil
	} else {
		reasons = append(reasons, err.Error())
	}
	return "", fmt.Errorf("no Vault binary: set VAULT_BIN (%s)", strings.Join(reasons, "; "))
}

func checkVault(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("vault binary %s: %w", abs, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("vault binary %s is not an executable file", abs)
	}
	return abs, nil
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
			sharedErr = fmt.Errorf("%w\n--- vault log ---\n%s", err, v.logTail(200))
			v.stop()
			return
		}
		sharedVault = v
	})
	if sharedErr != nil {
		t.Fatalf("shared dev Vault: %v", sharedErr)
	}
	v := sharedVault
	from := v.logSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- shared Vault log during %s ---\n%s", t.Name(), v.logSince(from))
		}
	})
	return v
}
