// The plugins the harness builds and mounts, the Vault binary's version,
// and the API clients the parts share.

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
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
