package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

// haCluster runs scripts/ha-cluster.sh with a private directory and ports.
type haCluster struct {
	dir   string
	env   []string
	addrs [3]string
	token string
}

func (h *haCluster) script(t *testing.T, arg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "scripts", "ha-cluster.sh"), arg)
	cmd.Env = h.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ha-cluster.sh %s: %v\n%s\n%s", arg, err, out, stderr.String())
	}
	return string(out)
}

func (h *haCluster) pid(t *testing.T, node int) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(h.dir, fmt.Sprintf("node%d", node), "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

func (h *haCluster) client(node int) *api.Client {
	cfg := api.DefaultConfig()
	cfg.Address = h.addrs[node]
	cfg.MaxRetries = 0
	cfg.Timeout = 10 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	c.SetToken(h.token)
	return c
}

// active returns the index of the node that reports itself active.
func (h *haCluster) active() (int, error) {
	for i := range h.addrs {
		hr, err := h.client(i).Sys().Health()
		if err == nil && !hr.Standby && !hr.Sealed {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no active node")
}

// TestRaftFailover reads creds under steady load from every node of a 3-node
// Raft cluster while the active node is killed: reads resume on the new
// leader within a bounded window, no refresh token is lost and at most one
// extra refresh happens.
func TestRaftFailover(t *testing.T) {
	t.Parallel()
	zs := zohosim.New(zohosim.Config{})
	if _, err := zs.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zs.Close() })
	base, err := vaultproc.FreePortBlock(6)
	if err != nil {
		t.Fatal(err)
	}
	h := &haCluster{dir: t.TempDir()}
	h.env = append(vaultproc.Env(filepath.Join(h.dir, "home")), "HA_DIR="+h.dir, "HA_BASE_PORT="+strconv.Itoa(base),
		"VAULT_BIN="+vaultBin, "PLUGIN_DIR="+pluginDir, "PLUGIN_VERSION="+pluginVersion)
	t.Cleanup(func() {
		if t.Failed() {
			for n := 1; n <= 3; n++ {
				raw, _ := os.ReadFile(filepath.Join(h.dir, fmt.Sprintf("node%d", n), "vault.log"))
				t.Logf("--- node%d log ---\n%s", n, lastLines(string(raw), 40))
			}
		}
		h.script(t, "stop")
	})
	began := time.Now()
	out := h.script(t, "start")
	t.Logf("cluster up in %s", time.Since(began).Round(time.Millisecond))
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "VAULT_TOKEN":
			h.token = v
		case "VAULT_ADDR_NODE1", "VAULT_ADDR_NODE2", "VAULT_ADDR_NODE3":
			n, _ := strconv.Atoi(strings.TrimPrefix(k, "VAULT_ADDR_NODE"))
			h.addrs[n-1] = v
		}
	}
	if h.token == "" || h.addrs[2] == "" {
		t.Fatalf("ha-cluster.sh printed no environment: %q", out)
	}
	leader, err := h.active()
	if err != nil {
		t.Fatal(err)
	}
	a := newAccount(t, zs, "ha")
	a.configure(t, h.client(leader))
	rts := zs.RefreshTokens(a.client.ID)
	want := readCreds(t, h.client(leader), a).accessToken
	// Standbys forward to the active node: the same shared token everywhere.
	for i := range h.addrs {
		if got := readCreds(t, h.client(i), a).accessToken; got != want {
			t.Fatalf("node%d served another token", i+1)
		}
	}

	// Steady load from the two nodes that survive.
	var stop atomic.Bool
	var mu sync.Mutex
	var lastFail, firstOKAfterKill time.Time
	var killedAt time.Time
	var ok, failed atomic.Int64
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for i := range h.addrs {
		if i == leader {
			continue
		}
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(node int) {
				defer wg.Done()
				c := h.client(node)
				for n := 0; n < 5000 && !stop.Load(); n++ {
					s, err := c.Logical().Read(mountPath + "/creds/" + a.name)
					now := time.Now()
					mu.Lock()
					if err != nil || s == nil {
						failed.Add(1)
						lastFail = now
					} else {
						ok.Add(1)
						if toString(s.Data["access_token"]) != want {
							wrong.Add(1)
						}
						if !killedAt.IsZero() && firstOKAfterKill.IsZero() && now.After(killedAt) && lastFail.After(killedAt) {
							firstOKAfterKill = now
						}
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond) // a steady rate, not a wait for a condition
				}
			}(i)
		}
	}
	eventually(t, 30*time.Second, func() error {
		if ok.Load() < 20 {
			return fmt.Errorf("load not running yet")
		}
		return nil
	})
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	_ = syscall.Kill(-h.pid(t, leader+1), syscall.SIGKILL)

	eventually(t, 90*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if firstOKAfterKill.IsZero() {
			if lastFail.IsZero() && time.Since(killedAt) > 5*time.Second && ok.Load() > 0 {
				return nil // no read failed at all
			}
			return fmt.Errorf("reads have not resumed")
		}
		return nil
	})
	// Keep reading a little on the new leader, then stop the load.
	resumed := ok.Load()
	eventually(t, 30*time.Second, func() error {
		if ok.Load() < resumed+20 {
			return fmt.Errorf("too few reads after failover")
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	window := time.Duration(0)
	if !firstOKAfterKill.IsZero() {
		window = firstOKAfterKill.Sub(killedAt)
	}
	mu.Unlock()
	t.Logf("failover: reads resumed %s after the active node was killed; %d reads ok, %d failed during the outage", window.Round(time.Millisecond), ok.Load(), failed.Load())
	if window > 60*time.Second {
		t.Fatalf("reads took %s to resume", window)
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d reads returned another token than the shared one", wrong.Load())
	}
	if got := zs.RefreshTokens(a.client.ID); len(got) != 1 || got[0] != rts[0] {
		t.Fatalf("refresh tokens at Zoho: %d (a refresh token was lost or replaced)", len(got))
	}
	if n := a.counters(); n.Refreshes > 1 || n.Exchanges != 1 {
		t.Fatalf("failover cost %d refreshes and %d exchanges; want ≤ 1 and 1", n.Refreshes, n.Exchanges)
	}
	newLeader, err := h.active()
	if err != nil || newLeader == leader {
		t.Fatalf("no new leader: %d %v", newLeader, err)
	}
	a.expectAccepted(t, readCreds(t, h.client(newLeader), a).accessToken)
}
