package vaultproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
)

const (
	pluginName    = "zoho"
	pluginCommand = "vault-plugin-secrets-zoho"
	pluginVersion = "v0.1.0"
)

// Set by TestMain: the vault binary (these tests need a real one, found by
// Find: the Makefile passes the one scripts/vault.sh found or built) and the
// plugin built from this module.
var (
	vaultBin  string
	findErr   error
	pluginDir string
	pluginSHA string
	buildErr  error
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vaultproc tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	root, err := RepoRoot()
	if err != nil {
		return 0, err
	}
	vaultBin, findErr = Find(root)
	dir, err := os.MkdirTemp("", "vaultproc-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	pluginDir = dir
	if findErr == nil {
		// Only the tests that run Vault need the plugin; build it once.
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, pluginCommand),
			"-ldflags", "-X main.version="+pluginVersion, "./cmd/"+pluginCommand)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the plugin: %v\n%s", err, out)
		} else {
			pluginSHA, buildErr = filesum.SHA256(filepath.Join(dir, pluginCommand))
		}
	}
	return m.Run(), nil
}

// needVault fails the test unless a vault binary and the plugin are at hand.
func needVault(t *testing.T) {
	t.Helper()
	if findErr != nil {
		t.Fatalf("this test runs a real Vault server: %v", findErr)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// eventually polls f until it returns nil, failing with its last error after timeout.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// group lists the live (not zombie) processes of process group pgid with
// their command lines.
func group(pgid int) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// After the command: state(0) ppid(1) pgrp(2).
		if len(f) < 3 || f[0] == "Z" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[pid] = string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	return out
}

func environ(t *testing.T, pid int) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// TestDevServer starts a dev server in an environment that points elsewhere,
// mounts the plugin by sha256 and version with the CLI, and stops the
// server's process group.
func TestDevServer(t *testing.T) {
	needVault(t)
	// A developer's environment must not reach the server or the CLI.
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_TOKEN", "not-this-one")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")

	s, err := StartDev(Config{Bin: vaultBin, Dir: t.TempDir(), PluginDir: pluginDir, LogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	if !strings.HasPrefix(s.Addr, "http://127.0.0.1:") || s.Token != "root" {
		t.Fatalf("dev server at %s with token %q", s.Addr, s.Token)
	}
	env := environ(t, s.PID())
	if env["HOME"] != s.Home || env["TMPDIR"] != s.tmp || s.tmp == "" {
		t.Fatalf("server HOME=%q TMPDIR=%q; want %s and a private one", env["HOME"], env["TMPDIR"], s.Home)
	}
	for k := range env {
		if strings.HasPrefix(k, "VAULT_") || strings.ToUpper(k) == "HTTP_PROXY" {
			t.Fatalf("server environment has %s", k)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := Plugin{Name: pluginName, Command: pluginCommand, Version: pluginVersion, SHA256: pluginSHA}
	if err := s.EnablePlugin(ctx, p, "zoho"); err != nil {
		t.Fatal(err)
	}
	mo, err := s.Client(s.Token).Sys().GetMount("zoho")
	if err != nil || mo.RunningVersion != pluginVersion || mo.RunningSha256 != pluginSHA {
		t.Fatalf("mount zoho/: %+v %v; want version %s, sha256 %s", mo, err, pluginVersion, pluginSHA)
	}
	out, err := s.Command(ctx, s.Token, "secrets", "list", "-format=json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"zoho/"`) {
		t.Fatalf("vault secrets list: %v\n%s", err, out)
	}

	// The plugin runs in the server's process group; Stop ends both.
	pgid := s.PID()
	eventually(t, 30*time.Second, func() error {
		for pid, cmd := range group(pgid) {
			if pid != pgid && strings.Contains(cmd, pluginCommand) {
				return nil
			}
		}
		return fmt.Errorf("no plugin process in group %d: %v", pgid, group(pgid))
	})
	s.Stop()
	eventually(t, 30*time.Second, func() error {
		if g := group(pgid); len(g) > 0 {
			return fmt.Errorf("left in group %d: %v", pgid, g)
		}
		return PortClosed(s.Addr)
	})
	if gone, _ := s.Exited(); !gone {
		t.Fatal("Stop returned before the server exited")
	}
	if _, err := os.Stat(s.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("TMPDIR %s left behind: %v", s.tmp, err)
	}
}

// TestPersistent initializes file and Raft storage, kills the server as a
// crash would, starts it again sealed on the same data, unseals it, finds
// what was written, and stops it cleanly.
func TestPersistent(t *testing.T) {
	needVault(t)
	for _, st := range []Storage{StorageFile, StorageRaft} {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			p, s, err := InitPersistent(Config{Bin: vaultBin, Dir: t.TempDir(), PluginDir: pluginDir, Storage: st, LogLevel: "info"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Kill)
			if s.Token == "" || s.Token != p.RootToken || p.UnsealKey == "" {
				t.Fatalf("token %q, root token %q, unseal key %q", s.Token, p.RootToken, p.UnsealKey)
			}
			const rules = `path "secret/*" { capabilities = ["read"] }`
			if err := s.Client(s.Token).Sys().PutPolicy("survivor", rules); err != nil {
				t.Fatal(err)
			}

			pgid := s.PID()
			s.Kill()
			if g := group(pgid); len(g) > 0 {
				t.Fatalf("Kill returned with processes left in group %d: %v", pgid, g)
			}

			s2, err := p.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s2.Kill)
			if ss, err := s2.Client("").Sys().SealStatus(); err != nil || !ss.Sealed || !ss.Initialized {
				t.Fatalf("restarted: seal status %+v %v; want initialized and sealed", ss, err)
			}
			if err := p.Unseal(s2); err != nil {
				t.Fatal(err)
			}
			got, err := s2.Client(s2.Token).Sys().GetPolicy("survivor")
			if err != nil || got != rules {
				t.Fatalf("policy after the restart: %q %v", got, err)
			}
			if err := s2.Terminate(time.Minute); err != nil {
				t.Fatalf("Terminate: %v\n%s", err, s2.LogTail(40))
			}
			if err := PortClosed(s2.Addr); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPluginEnv mounts the plugin with an environment, registers it again
// with another and with none, and after each reload finds the new plugin
// process with the catalog entry's environment.
func TestPluginEnv(t *testing.T) {
	needVault(t)
	s, err := StartDev(Config{Bin: vaultBin, Dir: t.TempDir(), PluginDir: pluginDir, LogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := s.Client(s.Token)

	// pluginPID is the plugin process other than not, started by a request
	// to the mount if none runs.
	pluginPID := func(not int) int {
		t.Helper()
		pid := 0
		eventually(t, 30*time.Second, func() error {
			if _, err := c.Logical().ListWithContext(ctx, "zoho/config"); err != nil {
				return err
			}
			for p, cmd := range group(s.PID()) {
				if p != s.PID() && p != not && strings.Contains(cmd, pluginCommand) {
					pid = p
					return nil
				}
			}
			return fmt.Errorf("no new plugin process in group %d: %v", s.PID(), group(s.PID()))
		})
		return pid
	}

	p := Plugin{Name: pluginName, Command: pluginCommand, Version: pluginVersion, SHA256: pluginSHA, Env: []string{"ZV_PROBE=first", "GOGC=25"}}
	if err := s.EnablePlugin(ctx, p, "zoho"); err != nil {
		t.Fatal(err)
	}
	first := pluginPID(0)
	if env := environ(t, first); env["ZV_PROBE"] != "first" || env["GOGC"] != "25" {
		t.Fatalf("plugin environment ZV_PROBE=%q GOGC=%q; want first and 25", env["ZV_PROBE"], env["GOGC"])
	}

	p.Env = []string{"ZV_PROBE=second"}
	if err := s.RegisterPlugin(ctx, p); err != nil {
		t.Fatal(err)
	}
	if env := environ(t, first); env["ZV_PROBE"] != "first" {
		t.Fatalf("the running plugin's ZV_PROBE=%q after registering again; want it unchanged until a reload", env["ZV_PROBE"])
	}
	reload := func() {
		t.Helper()
		if _, err := c.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Plugin: pluginName}); err != nil {
			t.Fatal(err)
		}
	}
	reload()
	second := pluginPID(first)
	if env := environ(t, second); env["ZV_PROBE"] != "second" || env["GOGC"] != "" {
		t.Fatalf("plugin environment after the reload: ZV_PROBE=%q GOGC=%q; want second and none", env["ZV_PROBE"], env["GOGC"])
	}

	p.Env = nil
	if err := s.RegisterPlugin(ctx, p); err != nil {
		t.Fatal(err)
	}
	reload()
	third := pluginPID(second)
	if _, ok := environ(t, third)["ZV_PROBE"]; ok {
		t.Fatal("plugin registered without an environment still has ZV_PROBE")
	}
	mo, err := c.Sys().GetMountWithContext(ctx, "zoho")
	if err != nil || mo.RunningVersion != pluginVersion || mo.RunningSha256 != pluginSHA {
		t.Fatalf("mount zoho/ after registering again: %+v %v; want version %s, sha256 %s", mo, err, pluginVersion, pluginSHA)
	}
}

// TestRegisterPluginBadEnv: an environment entry that is not KEY=VALUE is
// refused before the CLI runs.
func TestRegisterPluginBadEnv(t *testing.T) {
	s := &Server{}
	for _, kv := range []string{"GOGC", "=25"} {
		err := s.RegisterPlugin(context.Background(), Plugin{Name: "zoho", Env: []string{kv}})
		if err == nil || !strings.Contains(err.Error(), "KEY=VALUE") {
			t.Fatalf("Env %q: %v; want an error naming KEY=VALUE", kv, err)
		}
	}
}
