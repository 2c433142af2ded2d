package e2e

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// The consent flow in a real browser: headless Chromium driven over the
// DevTools protocol opens the account's auth-url, reads the simulator's
// consent page, clicks Accept (or Deny) and lands on Vault's callback page.
// Screenshots of the pages go to $E2E_ARTIFACTS (default .e2e-artifacts/ in
// the repository root); docs/images/ holds copies of two of them.

// Screenshots are taken at this viewport size.
const shotWidth, shotHeight = 900, 700

// chromiumPath finds Chromium: $CHROMIUM_BIN, /usr/bin/chromium or chromium
// on PATH. Without it the test fails (it never skips) saying how to install it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	const install = "install it with `apt-get install -y chromium` (Debian; as root), or point CHROMIUM_BIN at a Chromium or Chrome binary"
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the browser end-to-end test needs Chromium: CHROMIUM_BIN=%s: %v; %s", p, err, install)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("the browser end-to-end test needs Chromium and found none (not at /usr/bin/chromium, not on PATH, CHROMIUM_BIN unset): " + install)
	return ""
}

// artifactsDir is where screenshots go: $E2E_ARTIFACTS or .e2e-artifacts/.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot, ".e2e-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startChromium starts a headless Chromium with a fresh profile and returns
// a context to drive its tab. Cleanup closes it, and fails the test if any
// Chromium process (they all carry the profile directory in their command
// line) is still running afterwards.
func startChromium(t *testing.T, bin string) context.Context {
	t.Helper()
	base := t.TempDir()
	profile := filepath.Join(base, "profile")
	out := &syncBuffer{}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium reaches for Google's services, and on a
		// closed network its own connections are refused.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Loopback only: no proxy from the environment, no name lookups.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(shotWidth, shotHeight),
		chromedp.CombinedOutput(out),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		closeCtx, closeCancel := context.WithTimeout(ctx, 20*time.Second)
		_ = chromedp.Cancel(closeCtx) // closes the browser and waits for it
		closeCancel()
		cancel()
		allocCancel()
		deadline := time.Now().Add(30 * time.Second)
		left := startedIn(base)
		for len(left) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			left = startedIn(base)
		}
		for pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(left) > 0 {
			t.Errorf("Chromium processes left running after the browser was closed (killed now): %v", left)
		}
		if t.Failed() {
			t.Logf("--- Chromium output ---\n%s", lastLines(out.String(), 40))
		}
	})
	// The first run starts the browser; it lives as long as ctx (no timeout).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v\n%s", bin, err, lastLines(out.String(), 40))
	}
	return ctx
}

// consentAccount registers a client whose redirect URI is Vault's callback
// and writes the account without a grant code.
func consentAccount(t *testing.T, c *api.Client, name, callback string) *account {
	t.Helper()
	client := sim.RegisterClient(zohosim.Client{DC: "us", RedirectURIs: []string{callback}})
	a := &account{name: name, sim: sim, client: client, scopes: []string{"ZohoCRM.modules.ALL", "ZohoCRM.users.READ"}}
	_, err := c.Logical().Write(mountPath+"/config/"+a.name, map[string]interface{}{
		"client_id": client.ID, "client_secret": client.Secret, "accounts_url": sim.AccountsURL("us"),
		"redirect_uri": callback, "scopes": strings.Join(a.scopes, ","),
	})
	if err != nil {
		t.Fatalf("writing config/%s: %v", name, err)
	}
	return a
}

func authURLOf(t *testing.T, c *api.Client, a *account) string {
	t.Helper()
	s, err := c.Logical().Read(mountPath + "/auth-url/" + a.name)
	if err != nil || s == nil {
		t.Fatalf("auth-url/%s: %v", a.name, err)
	}
	u := toString(s.Data["auth_url"])
	if !strings.HasPrefix(u, sim.AccountsURL("us")+"/oauth/v2/auth?") {
		t.Fatalf("auth_url %q", u)
	}
	return u
}

// step runs fn against the browser with a deadline.
func step[T any](t *testing.T, ctx context.Context, what string, fn func(context.Context) (T, error)) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := fn(sctx)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return step(t, ctx, what, func(c context.Context) (T, error) { return chromedp.Run(c, a) })
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(run(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// click clicks the element and waits for the page it leads to; it returns
// that page's URL and HTTP status (after redirects).
func click(t *testing.T, ctx context.Context, sel string) (string, int64) {
	t.Helper()
	r := step(t, ctx, "click "+sel, func(c context.Context) (*network.Response, error) {
		return chromedp.RunResponse(c, chromedp.Click(chromedp.CSS(sel)))
	})
	return r.URL, r.Status
}

// openConsentPage opens the auth URL and checks what the consent page shows.
func openConsentPage(t *testing.T, ctx context.Context, a *account, authURL string) {
	t.Helper()
	step(t, ctx, "open the auth URL", func(c context.Context) (chromedp.Void, error) {
		return chromedp.Void{}, chromedp.Do(c, chromedp.EmulateViewport(shotWidth, shotHeight), chromedp.Navigate(authURL))
	})
	if got := text(t, ctx, "header"); got != "Zoho Accounts (simulator)" {
		t.Fatalf("consent page header %q", got)
	}
	if got := text(t, ctx, "#client"); got != a.client.ID {
		t.Fatalf("the consent page names the application %q; want %q", got, a.client.ID)
	}
	if got := strings.Fields(text(t, ctx, "#scopes")); strings.Join(got, ",") != strings.Join(a.scopes, ",") {
		t.Fatalf("the consent page lists the scopes %q; want %q", got, a.scopes)
	}
	if got := text(t, ctx, "#access"); !strings.Contains(got, "Offline access") || !strings.Contains(got, "refresh token") {
		t.Fatalf("the consent page does not say that offline access is asked: %q", got)
	}
	if got := run(t, ctx, "the user field", chromedp.Value(chromedp.ID("user"))); got != zohosim.DefaultUser {
		t.Fatalf("user field %q; want %q", got, zohosim.DefaultUser)
	}
}

// screenshot saves the viewport as a PNG in dir and checks the file.
func screenshot(t *testing.T, ctx context.Context, dir, name string) string {
	t.Helper()
	data := run(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path)
	return path
}

// checkPNG fails unless path is a PNG of the viewport's size with a real
// picture in it (many colours, not a blank page).
func checkPNG(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if len(raw) < 5000 {
		t.Fatalf("screenshot %s has only %d bytes", path, len(raw))
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("screenshot %s is no PNG: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != shotWidth || b.Dy() != shotHeight {
		t.Fatalf("screenshot %s is %dx%d; want %dx%d", path, b.Dx(), b.Dy(), shotWidth, shotHeight)
	}
	if n := colours(img, 64); n < 64 {
		t.Fatalf("screenshot %s has only %d colours: a blank page?", path, n)
	}
}

// colours counts the distinct colours of img, up to limit.
func colours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// TestBrowserConsent: in a real browser, Accept on the consent page ends on
// Vault's callback page and leaves the account with a refresh token (one
// exchange at Zoho); Deny ends on the callback's error page with nothing
// stored and nothing exchanged.
func TestBrowserConsent(t *testing.T) {
	t.Parallel()
	bin := chromiumPath(t)
	shots := artifactsDir(t)
	v := devVault(t)
	c := v.root()
	callback := v.Addr + "/v1/" + mountPath + "/callback"
	ctx := startChromium(t, bin)

	t.Run("accept", func(t *testing.T) {
		a := consentAccount(t, c, "browser-accept", callback)
		openConsentPage(t, ctx, a, authURLOf(t, c, a))
		screenshot(t, ctx, shots, "consent-page.png")
		// The user signs in as someone else than the prefilled user.
		const user = "ada@example.com"
		step(t, ctx, "sign in as "+user, func(c context.Context) (chromedp.Void, error) {
			return chromedp.Void{}, chromedp.Do(c, chromedp.SetValue(chromedp.ID("user"), user))
		})
		at, status := click(t, ctx, "button.accept")
		if !strings.HasPrefix(at, callback+"?") || status != 200 {
			t.Fatalf("after Accept the browser is at %s (HTTP %d); want Vault's callback with HTTP 200", at, status)
		}
		if h := text(t, ctx, "h1"); h != "Authorized" {
			t.Fatalf("callback page heading %q", h)
		}
		if p := text(t, ctx, "p"); !strings.Contains(p, `"browser-accept"`) || !strings.Contains(p, "refresh token") {
			t.Fatalf("callback page text %q", p)
		}
		screenshot(t, ctx, shots, "callback-authorized.png")

		if got := a.counters(); got.ConsentsAccepted != 1 || got.Exchanges != 1 || got.TokenRequests != 1 {
			t.Fatalf("at the simulator: %+v; want one accepted consent and exactly one exchange", got)
		}
		cr := readCreds(t, c, a)
		code, body := whoami(t, sim, cr.accessToken)
		if code != 200 || body["Email"] != user || body["client_id"] != a.client.ID {
			t.Fatalf("whoami with the token from the browser's consent: HTTP %d %v; want %s", code, body, user)
		}
	})

	t.Run("deny", func(t *testing.T) {
		a := consentAccount(t, c, "browser-deny", callback)
		openConsentPage(t, ctx, a, authURLOf(t, c, a))
		at, status := click(t, ctx, "button.deny")
		if !strings.HasPrefix(at, callback+"?") || !strings.Contains(at, "error=access_denied") || status != 400 {
			t.Fatalf("after Deny the browser is at %s (HTTP %d); want Vault's callback with error=access_denied, HTTP 400", at, status)
		}
		if h := text(t, ctx, "h1"); h != "Authorization failed" {
			t.Fatalf("callback page heading %q", h)
		}
		if p := text(t, ctx, "p"); !strings.Contains(p, "access_denied") || !strings.Contains(p, `"browser-deny"`) || !strings.Contains(p, "nothing was stored") {
			t.Fatalf("callback page text %q", p)
		}
		screenshot(t, ctx, shots, "callback-denied.png")

		if got := a.counters(); got.ConsentsDenied != 1 || got.Exchanges != 0 || got.TokenRequests != 0 {
			t.Fatalf("at the simulator: %+v; want one denied consent and no token request", got)
		}
		_, err := c.Logical().Read(mountPath + "/creds/" + a.name)
		expectStatus(t, "creds/"+a.name+" after Deny", err, 400, "holds no refresh token", "config/"+a.name)
	})
	if t.Failed() {
		return
	}
	for _, name := range []string{"consent-page.png", "callback-authorized.png", "callback-denied.png"} {
		checkPNG(t, filepath.Join(shots, name))
	}
}
