package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// TestConsentThroughVaultCallback: the operator reads auth-url, the browser
// (played by an HTTP client) accepts on the simulator's consent page, Zoho
// redirects it to Vault's unauthenticated callback, and the account holds a
// refresh token without anyone copying a grant code. TestBrowserConsent runs
// the same flow in a real browser.
func TestConsentThroughVaultCallback(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	callback := v.Addr + "/v1/" + mountPath + "/callback"
	client := sim.RegisterClient(zohosim.Client{DC: "us", RedirectURIs: []string{callback}})
	a := &account{name: "consent", sim: sim, client: client, scopes: []string{"ZohoCRM.modules.ALL"}}
	_, err := c.Logical().Write(mountPath+"/config/"+a.name, map[string]interface{}{
		"client_id": client.ID, "client_secret": client.Secret, "accounts_url": sim.AccountsURL("us"),
		"redirect_uri": callback, "scopes": "ZohoCRM.modules.ALL",
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Read(mountPath + "/auth-url/" + a.name)
	if err != nil || s == nil {
		t.Fatalf("auth-url: %v", err)
	}
	authURL := toString(s.Data["auth_url"])
	if !strings.HasPrefix(authURL, sim.AccountsURL("us")+"/oauth/v2/auth?") || !strings.Contains(authURL, "access_type=offline") {
		t.Fatalf("auth_url %q", authURL)
	}
	// The browser: no Vault token, follows Zoho's redirect to Vault.
	browse := func(u string) (int, string) {
		resp, err := loopbackHTTP.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	back, err := zohosim.Consent(ctx, loopbackHTTP, authURL, "", zohosim.Accept)
	if err != nil || !strings.HasPrefix(back.String(), callback+"?") {
		t.Fatalf("consent page: %v %v", back, err)
	}
	status, page := browse(back.String())
	if status != http.StatusOK || !strings.Contains(page, "Authorized") {
		t.Fatalf("callback page: %d %s", status, page)
	}
	if got := a.counters(); got.Exchanges != 1 {
		t.Fatalf("exchanges %d", got.Exchanges)
	}
	cr := readCreds(t, c, a)
	a.expectAccepted(t, cr.accessToken)
	// Replaying the redirect exchanges nothing.
	status, page = browse(back.String())
	if status != http.StatusBadRequest || !strings.Contains(page, "already used") {
		t.Fatalf("replayed consent: %d %s", status, page)
	}
	if got := a.counters(); got.TokenRequests != 1 {
		t.Fatalf("a replay reached Zoho: %+v", got)
	}
	// A forged callback with a foreign accounts server sends no secret anywhere.
	status, _ = browse(callback + "?state=forged&code=1000.x&accounts-server=https%3A%2F%2Fevil.example")
	if status != http.StatusBadRequest {
		t.Fatalf("forged callback: %d", status)
	}
}

// TestMetricsScrape scrapes the metrics path as Prometheus would, with a
// token allowed to read it.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	a := newAccount(t, sim, "scraped")
	a.configure(t, c)
	for i := 0; i < 3; i++ {
		readCreds(t, c, a)
	}
	if err := c.Sys().PutPolicy("metrics-reader", fmt.Sprintf(`path "%s/metrics" { capabilities = ["read"] }`, mountPath)); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"metrics-reader"}})
	if err != nil {
		t.Fatal(err)
	}
	r := v.raw(t, tok.Auth.ClientToken, "GET", mountPath+"/metrics", nil)
	body := string(r.body)
	if r.status != 200 || !strings.Contains(body, "# TYPE zoho_creds_cache_hits_total counter") || !strings.Contains(body, "zoho_code_exchanges_total") {
		t.Fatalf("scrape: %s", r)
	}
	if strings.Contains(body, a.name) {
		t.Fatal("account names appear as labels without per_account")
	}
	if r := v.raw(t, tok.Auth.ClientToken, "GET", mountPath+"/config/"+a.name, nil); r.status != 403 {
		t.Fatalf("metrics token reads config: %s", r)
	}
	if r := v.raw(t, "", "GET", mountPath+"/metrics", nil); r.status != 403 && r.status != 400 {
		t.Fatalf("metrics without a token: %s", r)
	}
}
