package docscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/recipes"
)

// productRecipes are the recipes of docs/products.md; every product the
// simulator serves has one.
func productRecipes(t *testing.T) []recipes.Recipe {
	t.Helper()
	rs, err := recipes.Parse(ownedDoc(t, "products.md"))
	if err != nil {
		t.Fatalf("docs/products.md: %v", err)
	}
	have := map[string]bool{}
	for _, r := range rs {
		have[r.Product] = true
	}
	for _, p := range zohosim.Products {
		if !have[p] {
			t.Errorf("docs/products.md has no recipe for %s", p)
		}
	}
	return rs
}

// mintToken gets an access token from the simulator the way the engine
// would: a Self Client code with scopes, exchanged at the token endpoint.
func mintToken(t *testing.T, sim *zohosim.Server, dc string, scopes []string) string {
	t.Helper()
	c := sim.RegisterClient(zohosim.Client{DC: dc})
	code, err := sim.SelfClientCode(c.ID, "", scopes, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "code": {code}}
	resp, err := http.PostForm(sim.AccountsURL(dc)+"/oauth/v2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token exchange for scopes %v: %v %q", scopes, err, body.Error)
	}
	return body.AccessToken
}

// vaultShim writes a stand-in for the vault CLI that answers only
// `vault read -field=access_token|api_domain zoho/creds/<account>`, and
// fails on anything else, so a recipe's call step can run without Vault.
func vaultShim(t *testing.T, account, token, apiDomain string) string {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
if [ "$#" -eq 3 ] && [ "$1" = read ] && [ "$3" = zoho/creds/%s ]; then
	case "$2" in
	-field=access_token) echo '%s'; exit 0 ;;
	-field=api_domain) echo '%s'; exit 0 ;;
	esac
fi
echo "vault stand-in: unexpected: vault $*" >&2
exit 2
`, account, token, apiDomain)
	if err := os.WriteFile(filepath.Join(dir, "vault"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runBash(t *testing.T, script, pathDir string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+pathDir+string(os.PathListSeparator)+os.Getenv("PATH"), "NO_PROXY=*", "no_proxy=*")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestProductRecipesCallTheSimulator runs each recipe's settings and call
// steps from docs/products.md with bash and curl against the Zoho
// simulator, its hosts swapped for the simulator's (the paths stay the
// document's), with a token minted for the scopes the recipe's config step
// asks for. Every call must be accepted, which the simulator does only for
// the product's path, headers and scopes. The same call with another
// product's token must fail, so a recipe that ignored errors would be caught.
// (The config steps are checked against the engine by TestDocVaultCommands,
// and run against a real Vault by the end-to-end suite.)
func TestProductRecipesCallTheSimulator(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the recipes need curl: install it")
	}
	sim := zohosim.New(zohosim.Config{})
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	rs := productRecipes(t)
	tokens := map[string]string{}
	for _, r := range rs {
		tokens[r.Product] = mintToken(t, sim, r.DataCenter(), r.Scopes())
	}
	for i, r := range rs {
		t.Run(r.Product, func(t *testing.T) {
			dc := r.DataCenter()
			script := r.Script(sim.ProductURL(dc, r.Product), "", false)
			out, err := runBash(t, script, vaultShim(t, r.Account(), tokens[r.Product], sim.APIDomain(dc)))
			if err != nil {
				t.Fatalf("docs/products.md:%d: the %s recipe failed against the simulator: %v\n--- script ---\n%s--- output ---\n%s", r.Line, r.Product, err, script, out)
			}
			if n := strings.Count(out, `"product":"`+r.Product+`"`); n != strings.Count(r.Call, "curl ") {
				t.Fatalf("docs/products.md:%d: %d answers of %s for %d curl calls:\n%s", r.Line, n, r.Product, strings.Count(r.Call, "curl "), out)
			}
			other := rs[(i+1)%len(rs)].Product
			out, err = runBash(t, script, vaultShim(t, r.Account(), tokens[other], sim.APIDomain(dc)))
			if err == nil || !strings.Contains(out, "OAUTH_SCOPE_MISMATCH") {
				t.Fatalf("docs/products.md:%d: the %s recipe with a %s token: %v\n%s", r.Line, r.Product, other, err, out)
			}
		})
	}
}
