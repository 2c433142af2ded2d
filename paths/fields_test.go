package paths

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "A9", "crm_eu-1.prod", "_", "a.b", strings.Repeat("n", maxNameLen)} {
		if ie := validateName(ok); ie != nil {
			t.Errorf("%q refused: %v", ok, ie)
		}
	}
	for _, bad := range []string{"", "-a", "a-", ".a", "a.", "a/b", "a b", "a\nb", "é", "a:b", "a%2fb", strings.Repeat("n", maxNameLen+1)} {
		ie := validateName(bad)
		if ie == nil || ie.Field != FieldName {
			t.Errorf("%q accepted (%v)", bad, ie)
		}
	}
}

// Every path of one account checks the name and its fields before the
// engine hears of the request.
func TestNamedPathsRejectBadNamesAndUnknownFields(t *testing.T) {
	te := newTestEnv(t)
	for _, r := range routes() {
		if !strings.HasSuffix(r.openAPI, "{name}") {
			continue
		}
		prefix := strings.TrimSuffix(r.path, "a")
		for _, name := range []string{"-x", "x.", "x/y", "x y", "<script>"} {
			te.wantBadRequest(r.op, prefix+name, r.data, FieldName)
		}
		te.wantBadRequest(r.op, r.path, with(r.data, "zzz", 1, "aaa", 2), "aaa")
	}
}

func TestUnknownFieldsMessage(t *testing.T) {
	te := newTestEnv(t)
	long := strings.Repeat("k", 200)
	msg := te.wantBadRequest(logical.ReadOperation, "creds/a", map[string]interface{}{"b": 1, "a": 1, long: 1}, "a")
	want := "a: unknown field (this path does not accept: a, b, " + strings.Repeat("k", 64) + "…)"
	if msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
}

// Hostile names are quoted and cut short in messages.
func TestNameInMessageIsQuotedAndTruncated(t *testing.T) {
	ie := validateName("x\"y" + strings.Repeat("z", 100) + "<!>")
	if ie == nil || strings.Contains(ie.Msg, "<!>") || !strings.Contains(ie.Msg, `"x\"y`+strings.Repeat("z", 61)+`…"`) {
		t.Errorf("message %v", ie)
	}
}

func TestRespondError(t *testing.T) {
	cases := []struct {
		err      error
		status   int
		contains string
	}{
		{&InputError{Field: "f", Msg: "bad"}, http.StatusBadRequest, "f: bad"},
		{fmt.Errorf("ctx: %w", &InputError{Field: "f", Msg: "bad"}), http.StatusBadRequest, "f: bad"},
		{logical.CodedError(http.StatusBadRequest, "reauthorize"), http.StatusBadRequest, "reauthorize"},
		{logical.CodedError(http.StatusTooManyRequests, "budget"), http.StatusTooManyRequests, "budget"},
		{fmt.Errorf("wrapped: %w", logical.CodedError(http.StatusServiceUnavailable, "backoff")), http.StatusServiceUnavailable, "wrapped: backoff"},
	}
	for _, c := range cases {
		resp, err := respondError(c.err)
		req := &logical.Request{Operation: logical.ReadOperation}
		status, msg := statusOf(t, req, resp, err)
		if status != c.status || msg != c.contains {
			t.Errorf("respondError(%v): %d %q, want %d %q", c.err, status, msg, c.status, c.contains)
		}
		if raw, ok := resp.Data[logical.HTTPRawBody].([]byte); ok && !json.Valid(raw) {
			t.Errorf("body %s", raw)
		}
	}
	plain := errors.New("plain")
	if resp, err := respondError(plain); resp != nil || err != plain {
		t.Errorf("plain error: %v %v", resp, err)
	}
}

func TestTokenFieldsDocumented(t *testing.T) {
	want := []string{FieldAccessToken, FieldAPIDomain, FieldExpiresAt, FieldScopes, FieldTokenType, FieldTokenID}
	sort.Strings(want)
	fields := tokenFields()
	if got := keysOfFields(fields); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("token fields %v", got)
	}
	for k, f := range fields {
		if strings.TrimSpace(f.Description) == "" {
			t.Errorf("%s undocumented", k)
		}
	}
}

// The account-name rule the docs and the error state is the one enforced:
// '_' may start or end a name, '-' and '.' may not.
func TestAccountNameRuleAsDocumented(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "_u": true, "bad_": true, "a.b-c_d": true, "9": true,
		"-x": false, "x-": false, ".x": false, "x.": false, "a b": false, "a/b": false, "é": false,
		"a.b.c": true, "a..b": false, "a...b": false, "a_.._b": false, "a.-.b": true,
	} {
		if got := validateName(name) == nil; got != ok {
			t.Errorf("%q accepted=%v, want %v", name, got, ok)
		}
	}
	for _, text := range []string{nameField().Description, validateName("-x").Error()} {
		if !strings.Contains(text, "not starting or ending with '-' or '.'") || !strings.Contains(text, "no two '.' in a row") {
			t.Errorf("%q does not state the rule", text)
		}
	}
}

// A value the framework cannot convert is answered in the engine's words:
// the field, what was given, what is expected.
func TestConversionErrorsNameFieldValueAndExpectation(t *testing.T) {
	te := newTestEnv(t)
	for _, tc := range []struct {
		op          logical.Operation
		path, field string
		value       interface{}
		want        string
	}{
		{logical.UpdateOperation, "config/a", FieldLiveTokenCap, "abc", `live_token_cap: "abc" is not a whole number`},
		{logical.ReadOperation, "metrics", "per_account", "yes", `per_account: "yes" is not true or false`},
		{logical.ReadOperation, "creds/a", FieldMinTTL, "soon", `min_ttl: "soon" is not a duration`},
	} {
		req := te.request(tc.op, tc.path, map[string]interface{}{tc.field: tc.value})
		resp, err := te.b.HandleRequest(context.Background(), req)
		if err != nil || resp == nil || !resp.IsError() {
			t.Fatalf("%s %s: %v %v", tc.op, tc.path, resp, err)
		}
		route := te.b.Route(tc.path)
		got := ExplainConversionError(route, req, resp).Data["error"].(string)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s=%v: %q, want it to start with %q", tc.field, tc.value, got, tc.want)
		}
	}
}

// CheckInputTypes refuses what the framework's weak conversion would take
// (JSON true as 1, 1.5 as 1, 123 as "123") and what it would refuse in its
// own words, naming the field and the expected form; fitting values pass.
func TestCheckInputTypes(t *testing.T) {
	te := newTestEnv(t)
	for _, tc := range []struct {
		op    logical.Operation
		path  string
		field string
		value interface{}
		want  string // "" when the value fits
	}{
		{logical.UpdateOperation, "config/a", FieldLiveTokenCap, true, `live_token_cap: JSON true is not a whole number`},
		{logical.UpdateOperation, "config/a", FieldLiveTokenCap, 1.5, `live_token_cap: the number 1.5 is not a whole number`},
		{logical.UpdateOperation, "config/a", FieldLiveTokenCap, " 5", `live_token_cap: " 5" is not a whole number`},
		{logical.UpdateOperation, "config/a", FieldClientID, map[string]interface{}{"x": 1}, `client_id: a JSON object is not a string`},
		{logical.UpdateOperation, "config/a", FieldClientID, 123, `client_id: the number 123 is not a string`},
		{logical.UpdateOperation, "config/a", FieldScopes, json.Number("123"), `scopes: the number 123 is not a comma-separated list`},
		{logical.ReadOperation, "creds/a", FieldMinTTL, false, `min_ttl: JSON false is not a duration`},
		{logical.ReadOperation, "metrics", "per_account", 1, `per_account: the number 1 is not true or false`},
		{logical.UpdateOperation, "config/a", FieldLiveTokenCap, json.Number("5"), ""},
		{logical.UpdateOperation, "config/a", FieldLiveTokenCap, "5", ""},
		{logical.UpdateOperation, "config/a", FieldLiveTokenCap, 5.0, ""},
		{logical.UpdateOperation, "config/a", FieldScopes, []interface{}{"ZohoCRM.modules.ALL"}, ""},
		{logical.ReadOperation, "creds/a", FieldMinTTL, "30m", ""},
		{logical.ReadOperation, "creds/a", FieldMinTTL, json.Number("60"), ""},
		{logical.ReadOperation, "metrics", "per_account", "true", ""},
		{logical.ReadOperation, "callback", "code", []string{"a", "b"}, ""}, // the callback answers its own page
		{logical.UpdateOperation, "config/a", "unknown", true, ""},          // the handler's to refuse
	} {
		req := te.request(tc.op, tc.path, map[string]interface{}{tc.field: tc.value})
		ie := CheckInputTypes(te.b.Route(tc.path), req)
		got := ""
		if ie != nil {
			got = ie.Error()
		}
		if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s %s=%#v: %q, want %q", tc.path, tc.field, tc.value, got, tc.want)
		}
	}
}
