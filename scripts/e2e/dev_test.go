package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

// TestDevStopsEverything runs `make dev`'s script, scripts/dev.sh, in a
// process group of its own with a private DEV_DIR, and stops it each way it
// can be stopped. Every time, the Vault server, its plugin and the Zoho
// simulator it started must be gone, their ports closed and dev.pid removed,
// and the script must exit 0: a stop once everything runs is its normal end
// (make would otherwise report "Error 143"). Two runs put a `vault` on PATH:
// the very binary dev.sh uses, through a symlink (no alias hint may be
// printed), and another one (the hint names the binary dev.sh uses).
func TestDevStopsEverything(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// stop stops the running script (its process group is its pid);
		// nil: the script stops by itself (DEV_NONINTERACTIVE=1).
		stop func(pgid int, done <-chan struct{})
		// pathVault puts a vault first on PATH: "same" (a symlink to
		// VAULT_BIN) or "other" (another file); "" leaves PATH alone.
		pathVault string
	}{
		// What `timeout`, process supervisors and `kill -- -PGID` send.
		{"SIGTERM to the group", signalGroup(syscall.SIGTERM), ""},
		// Make passes a TERM on to its recipe too, and timeout and
		// supervisors may send more than one: the later ones reach the
		// script while it is stopping.
		{"SIGTERM to the group, repeated while stopping", func(pgid int, done <-chan struct{}) {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				_ = syscall.Kill(-pgid, syscall.SIGTERM)
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}, ""},
		{"SIGTERM to the script", func(pgid int, _ <-chan struct{}) { _ = syscall.Kill(pgid, syscall.SIGTERM) }, ""},
		// Ctrl-C in a terminal.
		{"SIGINT to the group", signalGroup(syscall.SIGINT), "other"},
		// The terminal closed.
		{"SIGHUP to the group", signalGroup(syscall.SIGHUP), ""},
		{"DEV_NONINTERACTIVE=1", nil, "same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDev(t, tc.stop, tc.pathVault)
		})
	}
}

func signalGroup(sig syscall.Signal) func(int, <-chan struct{}) {
	return func(pgid int, _ <-chan struct{}) { _ = syscall.Kill(-pgid, sig) }
}

var (
	vaultAddrRe = regexp.MustCompile(`export VAULT_ADDR=(http://127\.0\.0\.1:[0-9]+)`)
	simURLRe    = regexp.MustCompile(`Zoho simulator at (http://127\.0\.0\.1:[0-9]+)`)
)

func runDev(t *testing.T, stop func(int, <-chan struct{}), pathVault string) {
	state := t.TempDir()
	path := os.Getenv("PATH")
	if pathVault != "" {
		bin := t.TempDir()
		var err error
		if pathVault == "same" {
			err = os.Symlink(vaultBin, filepath.Join(bin, "vault"))
		} else {
			err = os.WriteFile(filepath.Join(bin, "vault"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		path = bin + string(os.PathListSeparator) + path
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VAULT_") || strings.HasPrefix(k, "DEV_") || k == "PATH" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+path)
	// HOME stays: make dev builds the plugin with the developer's Go cache.
	env = append(env, "VAULT_BIN="+vaultBin, "DEV_DIR="+state)
	if stop == nil {
		env = append(env, "DEV_NONINTERACTIVE=1")
	}

	out := &syncBuffer{}
	cmd := exec.Command("bash", filepath.Join(repoRoot, "scripts", "dev.sh"))
	cmd.Dir = repoRoot
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		// Whatever the script left behind is this test's to end.
		select {
		case <-done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		for pid := range startedIn(state) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("--- dev.sh output ---\n%s", out.String())
			for _, name := range []string{"vault.log", "zoho-sim.log"} {
				data, _ := os.ReadFile(filepath.Join(state, name))
				t.Logf("--- %s ---\n%s", name, lastLines(string(data), 40))
			}
		}
	})

	// Ready: everything is up and a token was read through Vault. Until the
	// script stops, the processes it started name DEV_DIR in their command
	// lines.
	var running map[int]string
	eventually(t, 3*time.Minute, func() error {
		select {
		case <-done:
			if stop != nil {
				t.Fatalf("dev.sh exited before it was ready: %v", waitErr)
			}
			return nil
		default:
		}
		if stop == nil {
			return errors.New("dev.sh is running") // it stops by itself
		}
		if !strings.Contains(out.String(), "press Ctrl-C to stop") {
			return errors.New("dev.sh is not ready")
		}
		running = startedIn(state)
		return nil
	})
	var vaultAddr, simURL string
	if m := vaultAddrRe.FindStringSubmatch(out.String()); m != nil {
		vaultAddr = m[1]
	}
	if m := simURLRe.FindStringSubmatch(out.String()); m != nil {
		simURL = m[1]
	}
	if vaultAddr == "" || simURL == "" {
		t.Fatalf("dev.sh printed no Vault address (%q) or simulator URL (%q)", vaultAddr, simURL)
	}
	// The account to authorize in a browser: its consent URL, which comes
	// back to Vault's callback, and what to read afterwards.
	consentLine := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(simURL+"/us/oauth/v2/auth?") +
		`\S*redirect_uri=` + regexp.QuoteMeta(url.QueryEscape(vaultAddr+"/v1/zoho/callback")) + `&`)
	if printed := out.String(); !consentLine.MatchString(printed) || !strings.Contains(printed, "vault read zoho/creds/browser") {
		t.Fatal("dev.sh printed no consent URL for the browser account, or not what to read after it")
	}
	aliasLine := regexp.MustCompile(`(?m)^  alias vault=(.*)$`).FindStringSubmatch(out.String())
	switch {
	case pathVault == "same" && aliasLine != nil:
		t.Errorf("vault on PATH is the binary dev.sh uses (a symlink to it), yet it printed %q", aliasLine[0])
	case pathVault == "other" && (aliasLine == nil || aliasLine[1] != vaultBin):
		t.Errorf("vault on PATH is another binary: dev.sh should print \"  alias vault=%s\"; printed %q", vaultBin, aliasLine)
	}
	if stop == nil {
		if waitErr != nil {
			t.Fatalf("DEV_NONINTERACTIVE=1 dev.sh: %v", waitErr)
		}
		if !strings.Contains(out.String(), "the browser account was authorized through the consent page") {
			t.Fatal("DEV_NONINTERACTIVE=1 dev.sh did not authorize the browser account")
		}
	} else {
		kinds := map[string]bool{}
		for _, cmdline := range running {
			switch {
			case strings.Contains(cmdline, " server -dev "):
				kinds["vault"] = true
			case strings.Contains(cmdline, "/plugins/vault-plugin-secrets-zoho"):
				kinds["plugin"] = true
			case strings.Contains(cmdline, "zoho-sim "):
				kinds["simulator"] = true
			}
		}
		if !kinds["vault"] || !kinds["plugin"] || !kinds["simulator"] {
			t.Fatalf("dev.sh is ready, but not everything runs: %v", running)
		}
		stop(cmd.Process.Pid, done)
	}

	eventually(t, time.Minute, func() error {
		select {
		case <-done:
		default:
			return errors.New("dev.sh has not exited")
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		if left := startedIn(state); len(left) > 0 {
			return fmt.Errorf("left running after dev.sh exited (%v): %v", waitErr, left)
		}
		for _, addr := range []string{vaultAddr, simURL} {
			if err := vaultproc.PortClosed(addr); err != nil {
				return err
			}
		}
		return nil
	})
	// A stop once everything runs is dev.sh's normal end: exit status 0,
	// or make reports "Error 143" (or 130, 129).
	if waitErr != nil {
		t.Errorf("dev.sh stopped by %s: %v; want exit status 0", t.Name(), waitErr)
	}
	if _, err := os.Stat(filepath.Join(state, "dev.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dev.pid left behind (dev.sh: %v)", waitErr)
	}
}

// startedIn lists the live processes whose command line names dir: those a
// dev.sh run with DEV_DIR=dir started (Vault's config, the plugin directory,
// the simulator's ready file are all in it).
func startedIn(dir string) map[int]string {
	found := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			s := string(stat)
			if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
				continue // exited; waiting for its parent
			}
		}
		found[pid] = string(bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '}))
	}
	return found
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
