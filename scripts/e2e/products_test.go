package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/recipes"
)

// TestProductRecipes runs every recipe of docs/products.md whole, as an
// operator would paste it: the settings, the `vault write zoho/config/...`
// with a fresh Self Client code (the simulator's accounts server added as
// accounts_url), then the calls, with the real vault CLI against a real
// Vault and the simulator in place of the product's host. The simulator
// takes a call only in the product's documented form (path, headers, a
// token of the right data center holding one of the product's scopes).
func TestProductRecipes(t *testing.T) {
	t.Parallel()
	_, rs := productRecipes(t)
	if len(rs) != len(zohosim.Products) {
		t.Fatalf("docs/products.md has %d recipes; the simulator serves %d products", len(rs), len(zohosim.Products))
	}
	v, bin := recipeVault(t, "recipes Vault")
	home := t.TempDir()
	for _, r := range rs {
		dc := r.DataCenter()
		client := sim.RegisterClient(zohosim.Client{DC: dc})
		code, err := sim.SelfClientCode(client.ID, "", r.Scopes(), 3*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		script := r.Script(sim.ProductURL(dc, r.Product), sim.AccountsURL(dc), true)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Env = append(os.Environ(),
			"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"HOME="+home, "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token,
			"CLIENT_ID="+client.ID, "CLIENT_SECRET="+client.Secret, "GRANT_CODE="+code,
			"NO_PROXY=*", "no_proxy=*")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err = cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("docs/products.md:%d: the %s recipe failed: %v\n--- script ---\n%s--- output ---\n%s", r.Line, r.Product, err, script, out.String())
		}
		calls := strings.Count(r.Call, "curl ")
		if n := strings.Count(out.String(), `"product":"`+r.Product+`"`); n != calls || calls == 0 {
			t.Fatalf("docs/products.md:%d: %d answers of %s for %d calls:\n%s", r.Line, n, r.Product, calls, out.String())
		}
		c := sim.ClientCounters(client.ID)
		if c.Exchanges != 1 || c.ResourceOK != int64(calls) || c.ResourceDenied != 0 {
			t.Fatalf("%s: the simulator counted %d exchanges, %d accepted and %d refused calls; want 1, %d, 0", r.Product, c.Exchanges, c.ResourceOK, c.ResourceDenied, calls)
		}
	}
}

// TestProductRecipeByHandAgainstDev runs the by-hand block of
// docs/products.md (register a client at the simulator's control API, get a
// Self Client code, write the account with accounts_url, point the settings
// at the simulator) followed by the Analytics recipe's call block, against
// a Vault of its own: what a reader does against `make dev`.
func TestProductRecipeByHandAgainstDev(t *testing.T) {
	t.Parallel()
	md, rs := productRecipes(t)
	var call string
	for _, r := range rs {
		if r.Product == "analytics" {
			call = r.Call
		}
	}
	const simLine = "SIM=http://127.0.0.1:PORT"
	var hand string
	for _, block := range strings.Split(md, "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, simLine) {
			hand = block
		}
	}
	if hand == "" || call == "" {
		t.Fatalf("docs/products.md: no by-hand block starting with %s, or no analytics recipe", simLine)
	}
	base := strings.TrimSuffix(sim.AccountsURL("us"), "/us")
	hand = strings.Replace(hand, "http://127.0.0.1:PORT", base, 1)

	v, bin := recipeVault(t, "by-hand Vault")
	script := "set -euo pipefail\n" + hand + call
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+t.TempDir(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token, "NO_PROXY=*", "no_proxy=*")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the by-hand block failed: %v\n--- script ---\n%s--- output ---\n%s", err, script, out.String())
	}
	if n := strings.Count(out.String(), `"product":"analytics"`); n != strings.Count(call, "curl ") {
		t.Fatalf("%d Analytics answers:\n%s", n, out.String())
	}
}

// recipeVault starts a dev Vault of its own with the plugin enabled, and a
// directory holding a vault command (the real CLI) for recipes to find on
// PATH.
func recipeVault(t *testing.T, what string) (*vaultServer, string) {
	t.Helper()
	v, err := startDevVault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	v.dumpLogOnFailure(t, what)
	if err := v.enablePlugin(); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(vaultBin, filepath.Join(bin, "vault")); err != nil {
		t.Fatal(err)
	}
	return v, bin
}

// productRecipes reads docs/products.md and its recipes.
func productRecipes(t *testing.T) (string, []recipes.Recipe) {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(repoRoot, "docs", "products.md"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := recipes.Parse(string(md))
	if err != nil {
		t.Fatalf("docs/products.md: %v", err)
	}
	return string(md), rs
}
