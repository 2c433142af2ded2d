package backend

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

func TestConfigReadNeverShowsSecrets(t *testing.T) {
	e := newEnv(t)
	c := e.account("analytics", map[string]interface{}{"redirect_uri": "https://app.example.com/cb", "scopes": []string{"ZohoAnalytics.data.all", "ZohoAnalytics.modeling.create"}})
	tok := accessToken(e.creds("analytics", nil))
	cfg, _ := loadConfig(context.Background(), e.storage, "analytics")
	resp := e.must(logical.ReadOperation, "config/analytics", nil)
	d := resp.Data
	if d["client_id"] != c.ID || d["has_refresh_token"] != true || d["data_center"] != "us" ||
		d["accounts_url"] != e.sim.AccountsURL("us") || d["api_domain"] != e.sim.APIDomain("us") ||
		d["redirect_uri"] != "https://app.example.com/cb" || d["token_expires_at"] == "" || d["last_refresh"] == "" {
		t.Fatalf("unexpected status: %v", d)
	}
	if got := d["scopes"].([]string); len(got) != 2 || got[1] != "ZohoAnalytics.modeling.create" {
		t.Fatalf("scopes: %v", got)
	}
	for _, k := range []string{"client_secret", "refresh_token", "access_token", "grant_code"} {
		if _, ok := d[k]; ok {
			t.Fatalf("config read returns %s", k)
		}
	}
	assertNoSecrets(t, "config read", mustJSON(t, d), c.Secret, cfg.RefreshToken, tok)
	list := e.must(logical.ListOperation, "config/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 1 || keys[0] != "analytics" {
		t.Fatalf("list: %v", list.Data)
	}
	assertNoSecrets(t, "engine log", e.logs.String(), c.Secret, cfg.RefreshToken, tok)
}

func TestAccountWithoutTokenSaysWhatToWrite(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	e.must(logical.CreateOperation, "config/later", map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us")})
	msg, status := e.fails(logical.ReadOperation, "creds/later", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "grant_code") || !strings.Contains(msg, `"later"`) {
		t.Fatalf("got %d %q", status, msg)
	}
	if e.sim.ClientCounters(c.ID).TokenRequests != 0 {
		t.Fatal("Zoho was called for an account without a token")
	}
	msg, status = e.fails(logical.ReadOperation, "creds/nobody", nil)
	if status != http.StatusBadRequest || !strings.Contains(msg, "config/nobody") {
		t.Fatalf("missing account: %d %q", status, msg)
	}
}

func TestFailedExchangeStoresNothing(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	code := e.code(c)
	base := map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us")}
	with := func(k, v string) map[string]interface{} {
		m := map[string]interface{}{}
		for kk, vv := range base {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	msg, status := e.fails(logical.CreateOperation, "config/x", with("grant_code", "1000.bogus"))
	if status != http.StatusBadRequest || !strings.Contains(msg, "grant_code") || !strings.Contains(msg, "invalid_code") {
		t.Fatalf("got %d %q", status, msg)
	}
	bad := with("grant_code", code)
	bad["client_secret"] = "wrong"
	msg, _ = e.fails(logical.CreateOperation, "config/x", bad)
	if !strings.Contains(msg, "invalid_client_secret") {
		t.Fatalf("got %q", msg)
	}
	wrongDC := with("grant_code", code)
	wrongDC["accounts_url"] = e.sim.AccountsURL("eu")
	msg, _ = e.fails(logical.CreateOperation, "config/x", wrongDC)
	if !strings.Contains(msg, "invalid_client") || !strings.Contains(msg, "data_center") {
		t.Fatalf("wrong data center: %q", msg)
	}
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultReset, Times: 1})
	msg, status = e.fails(logical.CreateOperation, "config/x", with("grant_code", code))
	if status != http.StatusBadGateway || !strings.Contains(msg, "nothing will retry") || !strings.Contains(msg, "new grant_code") || strings.Contains(msg, "retries with back-off") {
		t.Fatalf("a reset connection should be a 502 that says what to do (no retry comes), got %d %q", status, msg)
	}
	// Rejections store nothing; a lost answer leaves only the record of the
	// exchange (Zoho may have issued a refresh token), settled by the rollback.
	if keys, _ := e.storage.List(context.Background(), ""); len(keys) != 1 || keys[0] != "wal/" {
		t.Fatalf("failed writes stored %v", keys)
	}
	if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := logical.CollectKeys(context.Background(), e.storage); len(keys) != 0 {
		t.Fatalf("the settled exchange left %v", keys)
	}
	if !strings.Contains(e.logs.String(), "interrupted") {
		t.Fatal("the lost exchange was not reported")
	}
	// Update: a failure leaves the account exactly as it was.
	e.account("y", nil)
	before, _ := loadConfig(context.Background(), e.storage, "y")
	tok := accessToken(e.creds("y", nil))
	_, status = e.fails(logical.UpdateOperation, "config/y", map[string]interface{}{"grant_code": "1000.used", "client_secret": "other"})
	if status != http.StatusBadRequest {
		t.Fatalf("update with a bad code: %d", status)
	}
	after, _ := loadConfig(context.Background(), e.storage, "y")
	if mustJSON(t, before) != mustJSON(t, after) || accessToken(e.creds("y", nil)) != tok {
		t.Fatal("a failed update changed the account")
	}
}

func TestOnlineGrantWithoutRefreshTokenIsRejected(t *testing.T) {
	e := newEnv(t)
	c := e.sim.RegisterClient(zohosim.Client{DC: "us", RedirectURIs: []string{"https://app.example.com/cb"}})
	code := authorize(t, e, c, "online")
	msg, status := e.fails(logical.CreateOperation, "config/online", map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"),
		"redirect_uri": "https://app.example.com/cb", "grant_code": code,
	})
	if status != http.StatusBadRequest || !strings.Contains(msg, "access_type=offline") {
		t.Fatalf("got %d %q", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("the orphan access token should be given back, revokes=%d", got)
	}
	// Zoho answered and no refresh token exists: no exchange is left to report.
	if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
		t.Fatalf("the exchange's record outlived the write: %v", keys)
	}
	// A redirect-flow code with offline access works, redirect_uri included.
	e.must(logical.CreateOperation, "config/online", map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"),
		"redirect_uri": "https://app.example.com/cb", "grant_code": authorize(t, e, c, "offline"),
	})
	e.creds("online", nil)
}

func TestNewGrantRevokesReplacedRefreshToken(t *testing.T) {
	e := newEnv(t)
	c := e.account("rotate", nil)
	old, _ := loadConfig(context.Background(), e.storage, "rotate")
	oldLease := e.creds("rotate", nil)
	e.must(logical.UpdateOperation, "config/rotate", map[string]interface{}{"grant_code": e.code(c)})
	cur, _ := loadConfig(context.Background(), e.storage, "rotate")
	if cur.RefreshToken == old.RefreshToken || cur.Generation != old.Generation+1 {
		t.Fatal("refresh token not replaced")
	}
	if e.sim.RefreshTokenValid(old.RefreshToken) || !e.sim.RefreshTokenValid(cur.RefreshToken) {
		t.Fatal("the replaced refresh token must be revoked, the new one kept")
	}
	if got := e.sim.ClientCounters(c.ID).RevokedRefresh; got != 1 {
		t.Fatalf("want one refresh-token revoke, got %d", got)
	}
	// The old lease's token died with its refresh token: revoking it is silent.
	if err := e.revokeLease(oldLease); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.ClientCounters(c.ID).Revokes + e.sim.ClientCounters(c.ID).RevokeInvalid; got != 1 {
		t.Fatalf("revoking a lease of the old generation called Zoho (%d calls in all)", got)
	}
	if accessToken(e.creds("rotate", nil)) == accessToken(oldLease) {
		t.Fatal("still serving the old generation's token")
	}
}

func TestImportRefreshToken(t *testing.T) {
	e := newEnv(t)
	c := e.account("src", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "src")
	e.must(logical.CreateOperation, "config/imported", map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"), "refresh_token": cfg.RefreshToken,
	})
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 1 {
		t.Fatalf("import must verify with exactly one refresh: %+v", got)
	}
	e.creds("imported", nil)
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatal("the verifying refresh's token was thrown away")
	}
	msg, status := e.fails(logical.CreateOperation, "config/bad", map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"), "refresh_token": "1000.dead.token",
	})
	if status != http.StatusBadRequest || !strings.Contains(msg, "refresh_token") || !strings.Contains(msg, "invalid_code") {
		t.Fatalf("got %d %q", status, msg)
	}
}

func TestDeleteRevokesFirst(t *testing.T) {
	e := newEnv(t)
	c := e.account("bye", nil)
	cfg, _ := loadConfig(context.Background(), e.storage, "bye")
	tok := accessToken(e.creds("bye", nil))
	// Zoho unreachable: the account is gone from Vault, the caller is told the
	// revocation is not confirmed, and the engine retries until it is.
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultReset, Times: 1})
	msg, status := e.fails(logical.DeleteOperation, "config/bye", nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, "not confirmed") || !strings.Contains(msg, "retries") {
		t.Fatalf("got %d %q", status, msg)
	}
	if ok, _ := e.b.AccountExists(context.Background(), e.storage, "bye"); ok {
		t.Fatal("the account is still served after its delete")
	}
	if !e.sim.RefreshTokenValid(cfg.RefreshToken) {
		t.Fatal("the fault should have kept the refresh token alive")
	}
	if _, err := e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true}); err != nil {
		t.Fatal(err)
	}
	if e.sim.RefreshTokenValid(cfg.RefreshToken) || e.sim.AccessTokenValid(tok) {
		t.Fatal("tokens alive after delete")
	}
	if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
		t.Fatalf("the confirmed revocation left its record: %v", keys)
	}
	if keys, _ := e.storage.List(context.Background(), "config/"); len(keys) != 0 {
		t.Fatal("config left behind")
	}
	if keys, _ := e.storage.List(context.Background(), "token/"); len(keys) != 0 {
		t.Fatal("token state left behind")
	}
	// An already-invalid refresh token counts as revoked.
	c2 := e.account("gone", nil)
	cfg2, _ := loadConfig(context.Background(), e.storage, "gone")
	e.sim.RevokeRefreshToken(cfg2.RefreshToken)
	e.must(logical.DeleteOperation, "config/gone", nil)
	if e.sim.ClientCounters(c2.ID).RevokeInvalid != 1 {
		t.Fatal("expected Zoho to answer invalid for the dead token")
	}
	_ = c
}

func TestWriteTrimsAndClearsOverride(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	// Values read from files end in a newline.
	e.must(logical.CreateOperation, "config/trim", map[string]interface{}{
		"client_id": c.ID + "\n", "client_secret": c.Secret + "\n", "accounts_url": e.sim.AccountsURL("us"), "grant_code": e.code(c) + "\n",
	})
	cfg, _ := loadConfig(context.Background(), e.storage, "trim")
	if cfg.ClientID != c.ID || cfg.ClientSecret != c.Secret {
		t.Fatal("values not trimmed")
	}
	resp := e.must(logical.UpdateOperation, "config/trim", map[string]interface{}{"data_center": "eu"})
	if resp == nil || len(resp.Warnings) == 0 || !strings.Contains(strings.Join(resp.Warnings, " "), "accounts_url") {
		t.Fatal("want a warning that accounts_url overrides data_center")
	}
	e.must(logical.UpdateOperation, "config/trim", map[string]interface{}{"accounts_url": ""})
	st := e.must(logical.ReadOperation, "config/trim", nil)
	if st.Data["accounts_url"] != "https://accounts.zoho.eu" {
		t.Fatalf("override not cleared: %v", st.Data["accounts_url"])
	}
}

func TestFixingTheSecretEndsTheBackoff(t *testing.T) {
	e := newEnv(t)
	c := e.account("fix", nil)
	// The secret is regenerated in Zoho's console: the stored one stops working.
	c = e.sim.RegisterClient(zohosim.Client{ID: c.ID, Secret: "regenerated-" + c.Secret, DC: "us"})
	e.clock.Advance(time.Hour)
	if msg, _ := e.fails(logical.ReadOperation, "creds/fix", nil); !strings.Contains(msg, "invalid_client_secret") {
		t.Fatalf("got %q", msg)
	}
	if _, status := e.fails(logical.ReadOperation, "creds/fix", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("want the back-off, got %d", status)
	}
	// Writing the new secret is not held up by the back-off: it is verified
	// at once, and its refresh serves the next read.
	e.must(logical.UpdateOperation, "config/fix", map[string]interface{}{"client_secret": c.Secret})
	e.creds("fix", nil)
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want the fixed account to refresh at once, got %d refreshes", got)
	}
	st := e.must(logical.ReadOperation, "status/fix", nil)
	if st.Data["consecutive_failures"] != 0 || st.Data["next_attempt_at"] != "" {
		t.Fatalf("status after the fix: %v", st.Data)
	}
}

// redirect_uri= removes the redirect URI, as accounts_url= and soid= remove
// theirs; auth-url/ then asks for one.
func TestEmptyRedirectURIRemovesIt(t *testing.T) {
	e := newEnv(t)
	e.account("a", map[string]interface{}{"redirect_uri": "https://vault.example.com/v1/zoho/callback"})
	for _, v := range []string{"", "  "} {
		e.must(logical.UpdateOperation, "config/a", map[string]interface{}{"redirect_uri": "https://vault.example.com/v1/zoho/callback"})
		e.must(logical.UpdateOperation, "config/a", map[string]interface{}{"redirect_uri": v})
		if got := e.must(logical.ReadOperation, "config/a", nil).Data["redirect_uri"]; got != "" {
			t.Fatalf("redirect_uri=%q: redirect_uri is %q, want it removed", v, got)
		}
	}
	msg, status := e.fails(logical.ReadOperation, "auth-url/a", nil)
	if status != http.StatusBadRequest || !strings.HasPrefix(msg, "redirect_uri: ") {
		t.Fatalf("auth-url/ without a redirect_uri: %d %q", status, msg)
	}
	// A client_credentials account has none to remove: an empty one is taken.
	e.ccAccount("cc", nil)
	e.must(logical.UpdateOperation, "config/cc", map[string]interface{}{"redirect_uri": ""})
}

// A grant-code exchange or a refresh-token import that Zoho rejects answers
// 400 naming the field that is wrong: the secret, the client, the redirect
// URI, or the code or token itself.
func TestRejectedExchangeNamesTheWrongField(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	src := e.account("src", nil)
	srcCfg, _ := loadConfig(context.Background(), e.storage, "src")
	base := func(extra map[string]interface{}) map[string]interface{} {
		m := map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us")}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		data  map[string]interface{}
		field string
	}{
		{"exchange, wrong secret", base(map[string]interface{}{"client_secret": "wrong", "grant_code": e.code(c)}), "client_secret"},
		{"exchange, unknown client", base(map[string]interface{}{"client_id": "1000.UNKNOWN", "grant_code": e.code(c)}), "client_id"},
		{"exchange, used code", base(map[string]interface{}{"grant_code": "1000.used.code"}), "grant_code"},
		{"import, wrong secret", map[string]interface{}{"client_id": src.ID, "client_secret": "wrong", "accounts_url": e.sim.AccountsURL("us"), "refresh_token": srcCfg.RefreshToken}, "client_secret"},
		{"import, unknown client", map[string]interface{}{"client_id": "1000.UNKNOWN", "client_secret": src.Secret, "accounts_url": e.sim.AccountsURL("us"), "refresh_token": srcCfg.RefreshToken}, "client_id"},
		{"import, dead token", map[string]interface{}{"client_id": src.ID, "client_secret": src.Secret, "accounts_url": e.sim.AccountsURL("us"), "refresh_token": "1000.dead.token"}, "refresh_token"},
	} {
		msg, status := e.fails(logical.CreateOperation, "config/new", tc.data)
		if status != http.StatusBadRequest || !strings.HasPrefix(msg, tc.field+": ") {
			t.Errorf("%s: %d %q, want 400 naming %s", tc.name, status, msg, tc.field)
		}
	}
	if ok, _ := e.b.AccountExists(context.Background(), e.storage, "new"); ok {
		t.Fatal("a rejected exchange stored the account")
	}
}

// The engine itself refuses to create an account without both halves of the
// client, naming the one missing (the paths layer checks first; this is the
// engine's own contract).
func TestCreatingAnAccountNeedsTheWholeClient(t *testing.T) {
	e := newEnv(t)
	id, secret := "1000.CLIENTID", "client-secret"
	for _, tc := range []struct {
		in    paths.AccountInput
		field string
	}{
		{paths.AccountInput{Create: true, ClientID: &id}, paths.FieldClientSecret},
		{paths.AccountInput{Create: true, ClientSecret: &secret}, paths.FieldClientID},
		{paths.AccountInput{Create: true}, paths.FieldClientID},
	} {
		_, err := e.b.WriteAccount(context.Background(), e.storage, "half", tc.in)
		var ie *paths.InputError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Fatalf("client_id %v, client_secret %v: %v, want an input error naming %s", tc.in.ClientID != nil, tc.in.ClientSecret != nil, err, tc.field)
		}
	}
	if keys, _ := e.storage.List(context.Background(), configPrefix); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}
}

// A write that changes nothing a token request sends (live_token_cap,
// redirect_uri) sends Zoho nothing and warns about nothing; one that moves the
// account to another client with a new grant code warns about nothing either;
// and an account without a refresh token has none to lose to a client change.
func TestClientChangeWarningOnlyWhenTheRefreshTokenIsKept(t *testing.T) {
	e := newEnv(t)
	c := e.account("w", nil)
	n := e.sim.ClientCounters(c.ID).TokenRequests
	resp := e.must(logical.UpdateOperation, "config/w", map[string]interface{}{"live_token_cap": 5, "redirect_uri": "https://app.example.com/cb"})
	if resp != nil && len(resp.Warnings) != 0 {
		t.Fatalf("warnings for a live_token_cap change: %v", resp.Warnings)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != n {
		t.Fatalf("a live_token_cap change sent %d token requests", got-n)
	}
	c2 := e.newClient("us")
	resp = e.must(logical.UpdateOperation, "config/w", map[string]interface{}{"client_id": c2.ID, "client_secret": c2.Secret, "grant_code": e.code(c2)})
	if resp != nil && len(resp.Warnings) != 0 {
		t.Fatalf("warnings for a client change with a new grant code: %v", resp.Warnings)
	}
	// Without a new grant the kept refresh token belongs to the old client.
	resp = e.must(logical.UpdateOperation, "config/w", map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret})
	if resp == nil || !strings.Contains(strings.Join(resp.Warnings, "\n"), "the client or data center changed") {
		t.Fatalf("no warning that the refresh token belongs to the previous client: %v", resp)
	}
	// An account without a refresh token has nothing to keep.
	e.must(logical.CreateOperation, "config/empty", map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us")})
	resp = e.must(logical.UpdateOperation, "config/empty", map[string]interface{}{"client_id": c2.ID, "client_secret": c2.Secret})
	if resp != nil && len(resp.Warnings) != 0 {
		t.Fatalf("warnings for a client change of an account without a refresh token: %v", resp.Warnings)
	}
}

// The access token of an online-only grant is given back to Zoho; only when
// Zoho does not confirm it does the log say it could not be revoked.
func TestOnlineGrantsTokenRevocationIsLoggedOnlyWhenUnconfirmed(t *testing.T) {
	e := newEnv(t)
	c := e.sim.RegisterClient(zohosim.Client{DC: "us", RedirectURIs: []string{"https://app.example.com/cb"}})
	write := func() {
		t.Helper()
		_, status := e.fails(logical.CreateOperation, "config/online", map[string]interface{}{
			"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"),
			"redirect_uri": "https://app.example.com/cb", "grant_code": authorize(t, e, c, "online"),
		})
		if status != http.StatusBadRequest {
			t.Fatalf("online grant: %d", status)
		}
	}
	const warning = "could not revoke the access token of an online-only grant"
	write()
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("revoked %d access tokens, want 1", got)
	}
	if strings.Contains(e.logs.String(), warning) {
		t.Fatal("a confirmed revocation was logged as failed")
	}
	e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 502, Times: 1})
	write()
	if got := e.sim.ClientCounters(c.ID).RevokedAccess; got != 1 {
		t.Fatalf("revoked %d access tokens, want still 1", got)
	}
	if !strings.Contains(e.logs.String(), warning) {
		t.Fatal("an unconfirmed revocation was not logged")
	}
}

// A failed exchange's record is deleted with the write; if that delete
// fails, the log says so, and only then.
func TestFailedExchangeRecordDeletionFailureIsLogged(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	data := map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"), "grant_code": "1000.bogus"}
	const warning = "could not delete the record of a failed exchange"
	e.fails(logical.CreateOperation, "config/x", data)
	if keys, _ := e.storage.List(context.Background(), "wal/"); len(keys) != 0 {
		t.Fatalf("records left: %v", keys)
	}
	if strings.Contains(e.logs.String(), warning) {
		t.Fatal("a deleted record was logged as not deleted")
	}
	e.storage.failDeletesUnder("wal/")
	e.fails(logical.CreateOperation, "config/x", data)
	e.storage.setDeleteHook(nil)
	if !strings.Contains(e.logs.String(), warning) {
		t.Fatal("a record that could not be deleted was not logged")
	}
}

// A deleted account's confirmed revocation deletes its record; if that delete
// fails, the log says so, and only then.
func TestDeletedAccountsRevocationRecordFailureIsLogged(t *testing.T) {
	e := newEnv(t)
	const warning = "could not delete revocation record"
	e.account("a", nil)
	e.must(logical.DeleteOperation, "config/a", nil)
	if strings.Contains(e.logs.String(), warning) {
		t.Fatal("a deleted record was logged as not deleted")
	}
	e.account("b", nil)
	e.storage.failDeletesUnder("wal/")
	e.must(logical.DeleteOperation, "config/b", nil)
	e.storage.setDeleteHook(nil)
	if !strings.Contains(e.logs.String(), warning) {
		t.Fatal("a record that could not be deleted was not logged")
	}
}

// The api_domain of a grant is known from the grant itself, even when the
// access token that came with it could not be stored.
func TestGrantsAPIDomainIsKeptWithoutItsAccessToken(t *testing.T) {
	e := newEnv(t)
	c := e.newClient("us")
	e.storage.failPutsUnder(tokenPrefix)
	e.fails(logical.CreateOperation, "config/dom", map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"), "scopes": "ZohoCRM.modules.ALL", "grant_code": e.code(c),
	})
	e.storage.setPutHook(nil)
	if got := e.must(logical.ReadOperation, "config/dom", nil).Data["api_domain"]; got != e.sim.APIDomain("us") {
		t.Fatalf("api_domain %v, want the grant's %s", got, e.sim.APIDomain("us"))
	}
}
