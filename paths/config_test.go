package paths

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

func TestConfigWriteRejectsBadInput(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	manyScopes := make([]string, maxScopes+1)
	for i := range manyScopes {
		manyScopes[i] = "ZohoCRM.modules" + strings.Repeat("x", i%7) + "." + string(rune('A'+i%26)) + long(i/26)
	}
	cases := []struct {
		name  string
		op    logical.Operation
		path  string
		data  map[string]interface{}
		field string
		calls []string // engine calls a bad request may make
	}{
		{"name starts with dash", logical.CreateOperation, "config/-a", validCreate(), FieldName, nil},
		{"name ends with dot", logical.CreateOperation, "config/a.", validCreate(), FieldName, nil},
		{"name with slash", logical.CreateOperation, "config/a/b", validCreate(), FieldName, nil},
		{"name with space", logical.CreateOperation, "config/a b", validCreate(), FieldName, nil},
		{"name not ASCII", logical.UpdateOperation, "config/café", nil, FieldName, nil},
		{"name too long", logical.CreateOperation, "config/" + long(maxNameLen+1), validCreate(), FieldName, nil},
		{"unknown field", logical.UpdateOperation, "config/a", map[string]interface{}{"client_secrt": "x"}, "client_secrt", nil},

		{"create without client_id", logical.CreateOperation, "config/a", without(validCreate(), FieldClientID), FieldClientID, nil},
		{"create without client_secret", logical.CreateOperation, "config/a", without(validCreate(), FieldClientSecret), FieldClientSecret, nil},
		{"empty client_id", logical.UpdateOperation, "config/a", map[string]interface{}{FieldClientID: " \n"}, FieldClientID, nil},
		{"long client_id", logical.UpdateOperation, "config/a", map[string]interface{}{FieldClientID: long(maxIDLen + 1)}, FieldClientID, nil},
		{"client_id with newline", logical.UpdateOperation, "config/a", map[string]interface{}{FieldClientID: "a\nb"}, FieldClientID, nil},
		{"empty client_secret", logical.CreateOperation, "config/a", with(validCreate(), FieldClientSecret, ""), FieldClientSecret, nil},
		{"long client_secret", logical.UpdateOperation, "config/a", map[string]interface{}{FieldClientSecret: long(maxSecretLen + 1)}, FieldClientSecret, nil},
		{"client_secret with NUL", logical.UpdateOperation, "config/a", map[string]interface{}{FieldClientSecret: "a\x00b"}, FieldClientSecret, nil},

		{"unknown data_center", logical.UpdateOperation, "config/a", map[string]interface{}{FieldDataCenter: "mars"}, FieldDataCenter, nil},
		{"empty data_center", logical.UpdateOperation, "config/a", map[string]interface{}{FieldDataCenter: ""}, FieldDataCenter, nil},
		{"long data_center", logical.UpdateOperation, "config/a", map[string]interface{}{FieldDataCenter: "us-east-1a"}, FieldDataCenter, nil},
		{"data_center is a host", logical.UpdateOperation, "config/a", map[string]interface{}{FieldDataCenter: "com.au"}, FieldDataCenter, nil},

		{"accounts_url refused by the engine", logical.UpdateOperation, "config/a", map[string]interface{}{FieldAccountsURL: "http://accounts.zoho.eu"}, FieldAccountsURL, []string{"ValidateAccountsURL"}},
		{"long accounts_url", logical.UpdateOperation, "config/a", map[string]interface{}{FieldAccountsURL: "https://" + long(maxURLLen)}, FieldAccountsURL, nil},
		{"accounts_url with newline", logical.UpdateOperation, "config/a", map[string]interface{}{FieldAccountsURL: "https://a\nb"}, FieldAccountsURL, nil},

		{"relative redirect_uri", logical.UpdateOperation, "config/a", map[string]interface{}{FieldRedirectURI: "/v1/zoho/callback"}, FieldRedirectURI, nil},
		{"ftp redirect_uri", logical.UpdateOperation, "config/a", map[string]interface{}{FieldRedirectURI: "ftp://vault.example.com/cb"}, FieldRedirectURI, nil},
		{"redirect_uri not a URL", logical.UpdateOperation, "config/a", map[string]interface{}{FieldRedirectURI: "https://%zz"}, FieldRedirectURI, nil},
		{"long redirect_uri", logical.UpdateOperation, "config/a", map[string]interface{}{FieldRedirectURI: "https://v.example.com/" + long(maxURLLen)}, FieldRedirectURI, nil},

		{"space separated scopes", logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: "ZohoCRM.modules.ALL ZohoCRM.settings.READ"}, FieldScopes, nil},
		{"only commas", logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: " , ,"}, FieldScopes, nil},
		{"scope with a comma in a list", logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: []interface{}{"a,b"}}, FieldScopes, nil},
		{"long scope", logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: long(maxScopeLen + 1)}, FieldScopes, nil},
		{"too many scopes", logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: strings.Join(manyScopes, ",")}, FieldScopes, nil},
		{"scopes not a list", logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: map[string]interface{}{"a": 1}}, FieldScopes, nil},

		{"live_token_cap zero", logical.UpdateOperation, "config/a", map[string]interface{}{FieldLiveTokenCap: 0}, FieldLiveTokenCap, nil},
		{"live_token_cap negative", logical.UpdateOperation, "config/a", map[string]interface{}{FieldLiveTokenCap: -1}, FieldLiveTokenCap, nil},
		{"live_token_cap too large", logical.UpdateOperation, "config/a", map[string]interface{}{FieldLiveTokenCap: maxLiveTokenCap + 1}, FieldLiveTokenCap, nil},
		{"live_token_cap not a number", logical.UpdateOperation, "config/a", map[string]interface{}{FieldLiveTokenCap: "ten"}, FieldLiveTokenCap, nil},

		{"empty grant_code", logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantCode: "\n"}, FieldGrantCode, nil},
		{"long grant_code", logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantCode: long(maxSecretLen + 1)}, FieldGrantCode, nil},
		{"grant_code with CR", logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantCode: "1000.a\rb"}, FieldGrantCode, nil},
		{"empty refresh_token", logical.UpdateOperation, "config/a", map[string]interface{}{FieldRefreshToken: ""}, FieldRefreshToken, nil},
		{"long refresh_token", logical.UpdateOperation, "config/a", map[string]interface{}{FieldRefreshToken: long(maxSecretLen + 1)}, FieldRefreshToken, nil},
		{"grant_code and refresh_token", logical.CreateOperation, "config/a", with(validCreate(), FieldRefreshToken, "1000.rt"), FieldGrantCode, nil},

		{"grant_type authorization_code", logical.CreateOperation, "config/a", with(validCreate(), FieldGrantType, "authorization_code"), FieldGrantType, nil},
		{"empty grant_type", logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantType: " "}, FieldGrantType, nil},
		{"grant_type not a string", logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantType: []interface{}{"a", "b"}}, FieldGrantType, nil},
		{"soid without org id", logical.UpdateOperation, "config/a", map[string]interface{}{FieldSOID: "ZohoCRM"}, FieldSOID, nil},
		{"soid org id not a number", logical.UpdateOperation, "config/a", map[string]interface{}{FieldSOID: "ZohoCRM.abc"}, FieldSOID, nil},
		{"soid without service", logical.UpdateOperation, "config/a", map[string]interface{}{FieldSOID: ".600000000434"}, FieldSOID, nil},
		{"soid service starts with a digit", logical.UpdateOperation, "config/a", map[string]interface{}{FieldSOID: "1CRM.600"}, FieldSOID, nil},
		{"soid with two dots", logical.UpdateOperation, "config/a", map[string]interface{}{FieldSOID: "ZohoCRM.600.1"}, FieldSOID, nil},
		{"long soid", logical.UpdateOperation, "config/a", map[string]interface{}{FieldSOID: "ZohoCRM." + strings.Repeat("1", maxSOIDLen)}, FieldSOID, nil},
		{"soid on a new refresh_token account", logical.CreateOperation, "config/a", with(validCreate(), FieldSOID, "ZohoCRM.600"), FieldSOID, nil},
		{"soid with grant_type=refresh_token", logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantType: GrantRefreshToken, FieldSOID: "ZohoCRM.600"}, FieldSOID, nil},
		{"client_credentials with grant_code", logical.CreateOperation, "config/a", with(validCC(), FieldGrantCode, "1000.code"), FieldGrantCode, nil},
		{"client_credentials with refresh_token", logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantType: GrantClientCredentials, FieldRefreshToken: "1000.rt"}, FieldRefreshToken, nil},
		{"client_credentials with redirect_uri", logical.CreateOperation, "config/a", with(validCC(), FieldRedirectURI, "https://vault.example.com/v1/zoho/callback"), FieldRedirectURI, nil},
		{"client_credentials without scopes", logical.CreateOperation, "config/a", without(validCC(), FieldScopes), FieldScopes, nil},
	}
	te := newTestEnv(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			te.t = t
			te.wantBadRequest(c.op, c.path, c.data, c.field, c.calls...)
		})
	}
}

func TestConfigWriteDataCenterMessage(t *testing.T) {
	te := newTestEnv(t)
	msg := te.wantBadRequest(logical.UpdateOperation, "config/a", map[string]interface{}{FieldDataCenter: "<mars>"}, FieldDataCenter)
	want := `data_center: "<mars>" is not a Zoho data center (one of ` + strings.Join(zoho.DataCenterCodes(), ", ") + ")"
	if msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
}

// Every code of backend/zoho's table is accepted, in any case, and reaches
// the engine as the table spells it.
func TestConfigWriteAcceptsEveryDataCenter(t *testing.T) {
	te := newTestEnv(t)
	codes := zoho.DataCenterCodes()
	if len(codes) == 0 {
		t.Fatal("no data centers")
	}
	for _, code := range codes {
		for _, given := range []string{code, strings.ToUpper(code), " " + code + "\n"} {
			te.ok(logical.UpdateOperation, "config/a", map[string]interface{}{FieldDataCenter: given})
			if got := te.e.input.DataCenter; got == nil || *got != code {
				t.Errorf("data_center=%q reached the engine as %v, want %q", given, got, code)
			}
		}
	}
}

// The schema's allowed values, default and description come from the table.
func TestConfigDataCenterSchemaFromTable(t *testing.T) {
	f := configFields()[FieldDataCenter]
	codes := zoho.DataCenterCodes()
	var allowed []string
	for _, v := range f.AllowedValues {
		allowed = append(allowed, v.(string))
	}
	if !reflect.DeepEqual(allowed, codes) {
		t.Errorf("allowed values %v, table %v", allowed, codes)
	}
	if f.Default != zoho.DefaultDataCenter {
		t.Errorf("default %v, want %q", f.Default, zoho.DefaultDataCenter)
	}
	if !strings.Contains(f.Description, strings.Join(codes, ", ")) {
		t.Errorf("description does not list the codes: %q", f.Description)
	}

	te := newTestEnv(t)
	doc := openAPIOf(t, te, "config/a")
	schema := doc.Components.Schemas["ZohoWriteAccountRequest"]
	if schema == nil || schema.Properties[FieldDataCenter] == nil {
		t.Fatalf("no request schema for data_center in %v", doc.Components.Schemas)
	}
	var enum []string
	for _, v := range schema.Properties[FieldDataCenter].Enum {
		enum = append(enum, v.(string))
	}
	if !reflect.DeepEqual(enum, codes) {
		t.Errorf("OpenAPI enum %v, table %v", enum, codes)
	}
}

func TestConfigCreateParsesInput(t *testing.T) {
	te := newTestEnv(t)
	te.ok(logical.CreateOperation, "config/analytics.eu-1", map[string]interface{}{
		FieldClientID:     " 1000.CLIENT\n",
		FieldClientSecret: "secret\n",
		FieldDataCenter:   "EU",
		FieldAccountsURL:  "https://accounts.zoho.eu/",
		FieldRedirectURI:  "https://vault.example.com/v1/zoho/callback",
		FieldScopes:       "ZohoCRM.modules.ALL, ZohoCRM.settings.READ,ZohoCRM.modules.ALL",
		FieldLiveTokenCap: "15",
		FieldGrantCode:    "1000.code\n",
	})
	te.wantCalls("ValidateAccountsURL", "WriteAccount")
	in := te.e.input
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	if te.e.name != "analytics.eu-1" || !in.Create {
		t.Errorf("name %q create %v", te.e.name, in.Create)
	}
	for _, c := range []struct{ field, got, want string }{
		{FieldClientID, str(in.ClientID), "1000.CLIENT"},
		{FieldClientSecret, str(in.ClientSecret), "secret"},
		{FieldDataCenter, str(in.DataCenter), "eu"},
		{FieldAccountsURL, str(in.AccountsURL), "https://accounts.zoho.eu"},
		{FieldRedirectURI, str(in.RedirectURI), "https://vault.example.com/v1/zoho/callback"},
		{FieldGrantCode, in.GrantCode, "1000.code"},
		{FieldRefreshToken, in.RefreshToken, ""},
	} {
		if c.got != c.want {
			t.Errorf("%s: engine got %q, want %q", c.field, c.got, c.want)
		}
	}
	if in.Scopes == nil || !reflect.DeepEqual(*in.Scopes, []string{"ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"}) {
		t.Errorf("scopes %v", in.Scopes)
	}
	if in.LiveTokenCap == nil || *in.LiveTokenCap != 15 {
		t.Errorf("live_token_cap %v", in.LiveTokenCap)
	}
}

// A client_credentials account reaches the engine with its grant type,
// scopes and soid; grant_type is matched case-insensitively.
func TestConfigCreateClientCredentials(t *testing.T) {
	te := newTestEnv(t)
	te.ok(logical.CreateOperation, "config/org", with(validCC(), FieldGrantType, "Client_Credentials", FieldSOID, " ZohoCRM.600000000434\n"))
	te.wantCalls("WriteAccount")
	in := te.e.input
	if in.GrantType == nil || *in.GrantType != GrantClientCredentials || in.SOID == nil || *in.SOID != "ZohoCRM.600000000434" {
		t.Fatalf("grant_type %v soid %v", in.GrantType, in.SOID)
	}
	if in.Scopes == nil || !reflect.DeepEqual(*in.Scopes, []string{"ZohoCRM.org.READ"}) || in.GrantCode != "" || in.RedirectURI != nil {
		t.Fatalf("input %+v", in)
	}
	// Without soid (a product with one organisation) too.
	te.e.reset()
	te.ok(logical.CreateOperation, "config/org", validCC())
	if te.e.input.SOID != nil {
		t.Fatalf("soid %v", *te.e.input.SOID)
	}
	// An update without grant_type leaves the check of soid to the engine,
	// which knows the stored grant type; an empty soid removes it.
	for _, v := range []string{"ZohoCRM.1", ""} {
		te.e.reset()
		te.ok(logical.UpdateOperation, "config/org", map[string]interface{}{FieldSOID: v})
		if got := te.e.input.SOID; got == nil || *got != v || te.e.input.GrantType != nil {
			t.Fatalf("soid=%q reached the engine as %v", v, got)
		}
	}
}

// Fields not given reach the engine as nil, so an update keeps them.
func TestConfigUpdateLeavesOmittedFieldsNil(t *testing.T) {
	te := newTestEnv(t)
	te.ok(logical.UpdateOperation, "config/a", map[string]interface{}{FieldRefreshToken: " 1000.rt "})
	in := te.e.input
	if in.Create || in.ClientID != nil || in.ClientSecret != nil || in.DataCenter != nil || in.AccountsURL != nil ||
		in.RedirectURI != nil || in.Scopes != nil || in.LiveTokenCap != nil || in.GrantCode != "" || in.GrantType != nil || in.SOID != nil {
		t.Errorf("omitted fields reached the engine: %+v", in)
	}
	if in.RefreshToken != "1000.rt" {
		t.Errorf("refresh_token %q", in.RefreshToken)
	}
	te.wantCalls("WriteAccount")

	// Scopes as a list, the cap as a JSON number.
	te.e.reset()
	te.ok(logical.UpdateOperation, "config/a", map[string]interface{}{
		FieldScopes:       []interface{}{"ZohoBooks.fullaccess.all"},
		FieldLiveTokenCap: json.Number("30"),
	})
	in = te.e.input
	if in.Scopes == nil || !reflect.DeepEqual(*in.Scopes, []string{"ZohoBooks.fullaccess.all"}) || in.LiveTokenCap == nil || *in.LiveTokenCap != 30 {
		t.Errorf("scopes %v cap %v", in.Scopes, in.LiveTokenCap)
	}
	if in.ClientID != nil || in.GrantCode != "" || in.RefreshToken != "" {
		t.Errorf("omitted fields reached the engine: %+v", in)
	}
}

// An empty accounts_url clears the override without asking the engine to
// validate it.
func TestConfigEmptyAccountsURLClears(t *testing.T) {
	for _, v := range []string{"", "  ", "\n"} {
		te := newTestEnv(t)
		te.ok(logical.UpdateOperation, "config/a", map[string]interface{}{FieldAccountsURL: v})
		if got := te.e.input.AccountsURL; got == nil || *got != "" {
			t.Errorf("accounts_url=%q reached the engine as %v, want a pointer to \"\"", v, got)
		}
		te.wantCalls("WriteAccount")
	}
}

func TestConfigWriteEngineErrors(t *testing.T) {
	te := newTestEnv(t)
	checkCodedErrors(t, te, "WriteAccount", logical.CreateOperation, "config/a", validCreate())
	checkCodedErrors(t, te, "WriteAccount", logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: "a.b.C"})

	// Zoho's rejection of a value names the field the engine names.
	te.e.setErr("WriteAccount", &InputError{Field: FieldGrantCode, Msg: `Zoho answered "invalid_code"; nothing was stored`})
	te.wantBadRequest(logical.CreateOperation, "config/a", validCreate(), FieldGrantCode, "WriteAccount")
}

func TestConfigWriteWarnings(t *testing.T) {
	te := newTestEnv(t)
	resp := te.ok(logical.CreateOperation, "config/a", validCreate())
	if resp != nil {
		t.Errorf("a write without warnings answered %+v, want no body", resp)
	}
	te.e.result = &WriteResult{Warnings: []string{"data_center is shadowed by accounts_url", "revoked the replaced refresh token"}}
	resp = te.ok(logical.UpdateOperation, "config/a", map[string]interface{}{FieldGrantCode: "1000.c"})
	if resp == nil || !reflect.DeepEqual(resp.Warnings, te.e.result.Warnings) || len(resp.Data) != 0 {
		t.Errorf("warnings response %+v", resp)
	}
}

// Nothing written to config/ is ever echoed back.
func TestConfigResponsesHoldNoSecret(t *testing.T) {
	te := newTestEnv(t)
	secrets := []string{"cs-SEKRIT", "gc-SEKRIT", "rt-SEKRIT", "at-SEKRIT"}
	te.e.result = &WriteResult{Warnings: []string{"a warning"}}
	te.e.status = fullStatus()
	te.e.creds = &Creds{AccessToken: "at-SEKRIT", Lease: LeaseData{Account: "a", AccessToken: "at-SEKRIT"}}
	var out []string
	for _, r := range []struct {
		op   logical.Operation
		path string
		data map[string]interface{}
	}{
		{logical.CreateOperation, "config/a", map[string]interface{}{FieldClientID: "id", FieldClientSecret: "cs-SEKRIT", FieldGrantCode: "gc-SEKRIT"}},
		{logical.UpdateOperation, "config/a", map[string]interface{}{FieldRefreshToken: "rt-SEKRIT"}},
		{logical.ReadOperation, "config/a", nil},
		{logical.ListOperation, "config/", nil},
		{logical.ReadOperation, "status/a", nil},
	} {
		resp := te.ok(r.op, r.path, r.data)
		out = append(out, jsonOf(t, resp))
	}
	for _, o := range out {
		for _, s := range secrets {
			if strings.Contains(o, s) {
				t.Errorf("secret %q in response %s", s, o)
			}
		}
	}
}

func TestConfigReadShape(t *testing.T) {
	te := newTestEnv(t)
	te.e.status = fullStatus()
	resp := te.ok(logical.ReadOperation, "config/a", nil)
	if te.e.name != "a" {
		t.Errorf("engine read %q", te.e.name)
	}
	want := map[string]interface{}{
		FieldGrantType:            GrantRefreshToken,
		FieldSOID:                 "ZohoCRM.600000000434",
		FieldClientID:             "1000.CLIENT",
		FieldDataCenter:           "eu",
		FieldAccountsURL:          "https://accounts.zoho.eu",
		FieldAPIDomain:            "https://www.zohoapis.eu",
		FieldRedirectURI:          "https://vault.example.com/v1/zoho/callback",
		FieldScopes:               []string{"ZohoCRM.modules.ALL"},
		FieldLiveTokenCap:         15,
		"has_refresh_token":       true,
		"needs_reauthorization":   true,
		"token_expires_at":        "2026-03-01T11:01:00Z",
		"last_refresh":            "2026-03-01T11:02:00Z",
		"last_error":              "invalid_code",
		"last_error_at":           "2026-03-01T11:03:00Z",
		"consecutive_failures":    4,
		"next_attempt_at":         "2026-03-01T11:05:00Z",
		"rate_budget_remaining":   6,
		"live_tokens":             7,
		"interrupted_exchange_at": "2026-03-01T11:08:00Z",
		"revocation_abandoned_at": "2026-03-01T11:09:00Z",
		"revoked_at":              "2026-03-01T11:10:00Z",
	}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Errorf("config read:\n got %#v\nwant %#v", resp.Data, want)
	}

	// Zero times are empty strings; no scopes are an empty list, not null.
	te.e.status = &AccountStatus{Name: "a", ClientID: "id", DataCenter: "us"}
	resp = te.ok(logical.ReadOperation, "config/a", nil)
	for _, k := range []string{"token_expires_at", "last_refresh", "last_error_at", "next_attempt_at", "interrupted_exchange_at", "revoked_at"} {
		if resp.Data[k] != "" {
			t.Errorf("%s = %v for a zero time", k, resp.Data[k])
		}
	}
	if b, _ := json.Marshal(resp.Data[FieldScopes]); string(b) != "[]" {
		t.Errorf("scopes render as %s", b)
	}
}

func TestConfigReadMissingIs404(t *testing.T) {
	te := newTestEnv(t)
	req := te.request(logical.ReadOperation, "config/nope", nil)
	resp, err := te.b.HandleRequest(context.Background(), req)
	if status, _ := statusOf(t, req, resp, err); status != http.StatusNotFound {
		t.Fatalf("status %d, want 404", status)
	}
	te.wantCalls("ReadAccount")
}

func TestConfigReadEngineErrors(t *testing.T) {
	checkCodedErrors(t, newTestEnv(t), "ReadAccount", logical.ReadOperation, "config/a", nil)
}

func TestConfigList(t *testing.T) {
	te := newTestEnv(t)
	te.e.names = []string{"a", "b.c"}
	for _, path := range []string{"config", "config/"} {
		resp := te.ok(logical.ListOperation, path, nil)
		if !reflect.DeepEqual(resp.Data["keys"], []string{"a", "b.c"}) {
			t.Errorf("LIST %s: %v", path, resp.Data)
		}
	}
}

func TestConfigListEngineErrors(t *testing.T) {
	checkCodedErrors(t, newTestEnv(t), "ListAccounts", logical.ListOperation, "config/", nil)
}

func TestConfigDelete(t *testing.T) {
	te := newTestEnv(t)
	resp := te.ok(logical.DeleteOperation, "config/a", nil)
	if resp != nil || te.e.name != "a" {
		t.Errorf("delete answered %+v for %q", resp, te.e.name)
	}
	te.wantCalls("DeleteAccount")
	te.wantBadRequest(logical.DeleteOperation, "config/-a", nil, FieldName)
	checkCodedErrors(t, te, "DeleteAccount", logical.DeleteOperation, "config/a", nil)
}

// The existence check decides between create and update; a bad name is
// "absent" without asking the engine, so the create handler answers 400.
func TestConfigExistenceCheck(t *testing.T) {
	te := newTestEnv(t)
	check := func(path string) (bool, bool) {
		t.Helper()
		found, exists, err := te.b.HandleExistenceCheck(context.Background(), te.request(logical.UpdateOperation, path, nil))
		if err != nil {
			t.Fatal(err)
		}
		return found, exists
	}
	for _, exists := range []bool{false, true} {
		te.e.reset()
		te.e.exists = exists
		if found, got := check("config/a"); !found || got != exists {
			t.Errorf("existence check: found %v exists %v, want %v", found, got, exists)
		}
		te.wantCalls("AccountExists")
	}
	te.e.reset()
	te.e.exists = true
	if _, got := check("config/-a"); got {
		t.Error("a bad name exists")
	}
	te.wantCalls()
}

func TestNormalizeScopes(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
		ok   bool
	}{
		{nil, nil, false},
		{[]string{"ZohoCRM.modules.leads.READ", "AaaServer.profile.READ"}, []string{"ZohoCRM.modules.leads.READ", "AaaServer.profile.READ"}, true},
		{[]string{"x"}, nil, false},
		{[]string{`Zoho"x.y.z`}, nil, false},
		{[]string{"ZohoCRM.modules.ALL;ZohoCRM.users.READ"}, nil, false},
		{[]string{"a.b"}, nil, false},
		{[]string{"a..b.C"}, nil, false},
		{[]string{" b.c.D ", "a.b.C", "b.c.D"}, []string{"b.c.D", "a.b.C"}, true},
		{[]string{"", "x.y.Z", ""}, []string{"x.y.Z"}, true},
		{[]string{"", " "}, nil, false},
		{[]string{"a\tb"}, nil, false},
		{[]string{"a\x00"}, nil, false},
	}
	for _, c := range cases {
		got, ie := normalizeScopes(c.in)
		if (ie == nil) != c.ok || (c.ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("normalizeScopes(%q) = %q, %v", c.in, got, ie)
		}
		if ie != nil && ie.Field != FieldScopes {
			t.Errorf("error names %q", ie.Field)
		}
	}
}

// Every config field is documented and the write-only ones are marked
// sensitive.
func TestConfigFieldsDocumented(t *testing.T) {
	fields := configFields()
	var names []string
	for k, f := range fields {
		names = append(names, k)
		if strings.TrimSpace(f.Description) == "" {
			t.Errorf("%s has no description", k)
		}
	}
	sort.Strings(names)
	want := []string{FieldAccountsURL, FieldClientID, FieldClientSecret, FieldDataCenter, FieldGrantCode, FieldGrantType, FieldLiveTokenCap, FieldName, FieldRedirectURI, FieldRefreshToken, FieldScopes, FieldSOID}
	sort.Strings(want)
	if !reflect.DeepEqual(names, want) {
		t.Errorf("fields %v, want %v", names, want)
	}
	for _, k := range []string{FieldClientSecret, FieldGrantCode, FieldRefreshToken} {
		if d := fields[k].DisplayAttrs; d == nil || !d.Sensitive {
			t.Errorf("%s is not marked sensitive", k)
		}
	}
	if fields[FieldLiveTokenCap].Type != framework.TypeInt || fields[FieldScopes].Type != framework.TypeCommaStringSlice {
		t.Error("field types changed")
	}
}
