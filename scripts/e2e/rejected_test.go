package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// TestRejectedTokenAfterConnectedAppsRemoval: the user removes the app under
// Zoho's Connected Apps (the simulator's /sim/connected-apps/remove), which
// kills the refresh token and the token Vault caches. A reader reports the
// token by its token_id through the real CLI: the answer says the account
// needs re-authorization and what to write, later reads fail the same way
// without calling Zoho, the lease on the dead token is not renewed, and
// attention/ lists the account. A new grant code serves again.
func TestRejectedTokenAfterConnectedAppsRemoval(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	from := v.LogSize()
	v.dumpLogOnFailure(t, "vault")

	// A simulator of its own: its base URL is needed for the /sim call.
	own := zohosim.New(zohosim.Config{})
	base, err := own.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Close() })
	a := newAccount(t, own, "connected-apps")
	a.configure(t, v.root())
	credsPath := mountPath + "/creds/" + a.name

	var first cliSecret
	v.cliJSON(t, &first, "read", "-format=json", credsPath)
	tok, id := toString(first.Data["access_token"]), toString(first.Data["token_id"])
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(id) || strings.Contains(tok, id) {
		t.Fatalf("token_id %q of the creds answer is not a fingerprint", id)
	}
	a.expectAccepted(t, tok)

	// The user removes the app under Connected Apps.
	body, _ := json.Marshal(map[string]string{"client_id": a.client.ID, "user": a.name + "@example.com"})
	resp, err := loopbackHTTP.Post(base+"/sim/connected-apps/remove", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(msg), `"refresh_tokens":1`) {
		t.Fatalf("POST /sim/connected-apps/remove: %d %s", resp.StatusCode, msg)
	}
	if err := tokenDead(t, own, tok); err != nil {
		t.Fatal(err)
	}

	// The reader reports the rejected token.
	r := v.cli(t, v.Token, "read", credsPath, "rejected="+id)
	if r.code != 2 || !strings.Contains(r.stderr, "Code: 400") || !strings.Contains(r.stderr, "needs re-authorization") ||
		!strings.Contains(r.stderr, "grant_code") || !strings.Contains(r.stderr, "config/"+a.name) {
		t.Fatalf("report of the rejected token: %s\nwant exit 2, Code: 400, saying to write a grant_code to config/%s", r, a.name)
	}
	if zohoTokenRe.MatchString(r.stdout + r.stderr) {
		t.Fatalf("the report's answer shows a token: %s", r)
	}

	// Later reads fail at once, without calling Zoho.
	n := a.counters().TokenRequests
	r = v.cli(t, v.Token, "read", credsPath)
	if r.code != 2 || !strings.Contains(r.stderr, "write a new grant_code") {
		t.Fatalf("read after the report: %s", r)
	}
	if got := a.counters().TokenRequests; got != n {
		t.Fatalf("%d token requests after Zoho refused the refresh token", got-n)
	}
	// The lease on the dead token is not renewed (Vault Agent reads anew).
	if r := v.cli(t, v.Token, "lease", "renew", first.LeaseID); r.code == 0 || !strings.Contains(r.stderr, "Zoho rejected its access token") {
		t.Fatalf("renewal of the lease on the rejected token: %s", r)
	}

	// attention/ lists the account, for re-authorization.
	var keys []string
	v.cliJSON(t, &keys, "list", "-format=json", mountPath+"/attention")
	if !contains(keys, a.name) {
		t.Fatalf("vault list %s/attention: %v, want %s", mountPath, keys, a.name)
	}
	list, err := v.root().Logical().List(mountPath + "/attention")
	if err != nil || list == nil {
		t.Fatalf("attention/: %v", err)
	}
	info, _ := list.Data["key_info"].(map[string]interface{})[a.name].(map[string]interface{})
	if !contains(stringList(info["reasons"]), "needs_reauthorization") {
		t.Fatalf("attention/ reasons for %s: %v", a.name, info)
	}

	// A new grant code serves again.
	a.configure(t, v.root())
	var again cliSecret
	v.cliJSON(t, &again, "read", "-format=json", credsPath)
	if toString(again.Data["access_token"]) == tok || toString(again.Data["token_id"]) == id {
		t.Fatal("the dead token was served after re-authorization")
	}
	a.expectAccepted(t, toString(again.Data["access_token"]))
	if log := v.LogSince(from); strings.Contains(log, tok) {
		t.Fatal("the Vault log shows the access token")
	}
}
