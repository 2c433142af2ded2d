// The heap probe of part 4 runs the engine in a child process of the
// harness (no Vault, no gRPC; storage in memory) with N accounts created and
// read once, then a second engine on the same storage, as a restarted plugin,
// reading each once: the live heap per account that second engine holds,
// with a heap profile: where the plugin's memory goes.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

type heapProbeResult struct {
	Accounts        int     `json:"accounts"`
	HeapPerAccount  float64 `json:"heap_per_account"`  // live heap bytes per account after GC
	HeapAllocBytes  uint64  `json:"heap_alloc_bytes"`  // the second engine's live heap growth with every account loaded
	HeapSysBytes    uint64  `json:"heap_sys_bytes"`    // heap memory obtained from the OS (storage included)
	AllocsPerCreate float64 `json:"allocs_per_create"` // allocated bytes per config write + first read (garbage included)
	Top             string  `json:"-"`                 // `go tool pprof -top` of the second engine's in-use heap growth
	Err             string  `json:"-"`
}

// fakeZoho answers at once with tokens shaped like the simulator's.
type fakeZoho struct{ n atomic.Int64 }

func hexToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return "1000." + h[:32] + "." + h[32:]
}

func (z *fakeZoho) token(withRefresh bool) *zoho.Token {
	z.n.Add(1)
	t := &zoho.Token{AccessToken: hexToken(), APIDomain: "http://127.0.0.1:40000/us/api", TokenType: "Bearer",
		Scope: strings.Join(benchScopes, ","), ExpiresIn: time.Hour}
	if withRefresh {
		t.RefreshToken = hexToken()
	}
	return t
}

func (z *fakeZoho) ExchangeCode(context.Context, zoho.App, string, string, string) (*zoho.Token, error) {
	return z.token(true), nil
}
func (z *fakeZoho) Refresh(context.Context, zoho.App, string) (*zoho.Token, error) {
	return z.token(false), nil
}
func (z *fakeZoho) ClientCredentials(context.Context, zoho.App, string, string) (*zoho.Token, error) {
	return z.token(false), nil
}
func (z *fakeZoho) Revoke(context.Context, string, string) error { return nil }

// runHeapProbe is the child's side: it creates n accounts (each read once)
// in one engine, then starts a second engine on the same storage, as a
// restarted plugin would be, and reads each account once more: the live heap
// that second engine holds per account is what a plugin process holding
// exactly those accounts costs. It prints one JSON line.
func runHeapProbe(n int, profile string) error {
	if profile != "" {
		runtime.MemProfileRate = 64
	}
	ctx := context.Background()
	storage := &logical.InmemStorage{}
	start := func() (logical.Backend, error) {
		conf := logical.TestBackendConfig()
		conf.Logger = hclog.NewNullLogger()
		conf.StorageView = storage
		return backend.FactoryWithOptions(backend.Options{Zoho: &fakeZoho{}})(ctx, conf)
	}
	read := func(lb logical.Backend, name string) error {
		resp, err := lb.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/" + name, Storage: storage})
		if err != nil || resp == nil || resp.Secret == nil {
			return fmt.Errorf("creds/%s: %v", name, err)
		}
		return nil
	}
	first, err := start()
	if err != nil {
		return err
	}
	var m0, m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	rnd := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	name := func(i int) string { return fmt.Sprintf("many-%05d", i) }
	for i := 0; i < n; i++ {
		if _, err := first.HandleRequest(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "config/" + name(i), Storage: storage,
			Data: map[string]interface{}{
				"client_id": "1000." + strings.ToUpper(rnd(15)), "client_secret": rnd(21),
				"accounts_url": "http://127.0.0.1:40000/us", "scopes": strings.Join(benchScopes, ","), "grant_code": hexToken(),
			}}); err != nil {
			return fmt.Errorf("config/%s: %w", name(i), err)
		}
		if err := read(first, name(i)); err != nil {
			return err
		}
	}
	runtime.ReadMemStats(&m1)
	allocated := m1.TotalAlloc - m0.TotalAlloc
	first.Cleanup(ctx)
	first = nil
	second, err := start()
	if err != nil {
		return err
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	// The profile before the second engine's reads is the base of the
	// one after: their difference is what it loaded.
	if profile != "" {
		if err := writeHeapProfile(profile + ".base"); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		if err := read(second, name(i)); err != nil {
			return err
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m2)
	if profile != "" {
		if err := writeHeapProfile(profile); err != nil {
			return err
		}
	}
	res := heapProbeResult{
		Accounts:        n,
		HeapPerAccount:  (float64(m2.HeapAlloc) - float64(m1.HeapAlloc)) / float64(n),
		HeapAllocBytes:  m2.HeapAlloc - m1.HeapAlloc,
		HeapSysBytes:    m2.HeapSys,
		AllocsPerCreate: float64(allocated) / float64(n),
	}
	runtime.KeepAlive(second)
	runtime.KeepAlive(storage)
	return json.NewEncoder(os.Stdout).Encode(res)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// heapProbe runs the probe in a child process and, with a profile,
// summarises it (profiling every 64 bytes slows the probe down: the run
// profiles its first size only).
func heapProbe(ctx context.Context, dir string, n int, withProfile bool) heapProbeResult {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute+time.Duration(n)*2*time.Millisecond)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return heapProbeResult{Err: err.Error()}
	}
	profile := ""
	if withProfile {
		profile = filepath.Join(dir, "heap.pprof")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, self, "-heap-probe", fmt.Sprint(n), "-heap-profile", profile)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return heapProbeResult{Err: fmt.Sprintf("%v: %s", err, strings.TrimSpace(stderr.String()))}
	}
	var res heapProbeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return heapProbeResult{Err: fmt.Sprintf("probe output: %v", err)}
	}
	if !withProfile {
		return res
	}
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	out, err := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-nodecount=12", "-sample_index=inuse_space", "-diff_base="+profile+".base", profile).CombinedOutput()
	if err != nil {
		res.Err = fmt.Sprintf("go tool pprof: %v", err)
		return res
	}
	// Keep the table: from the column header on.
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if strings.Contains(l, "flat%") {
			res.Top = strings.TrimRight(strings.Join(lines[i:], "\n"), "\n")
			break
		}
	}
	return res
}
