package zoho

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseTokenResponse(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		body     string
		wantTok  bool
		wantLife time.Duration
		kind     Kind
		code     string
	}{
		{"seconds", 200, `{"access_token":"1000.a.b","api_domain":"https://www.zohoapis.eu","token_type":"Bearer","expires_in":3600}`, true, time.Hour, 0, ""},
		{"legacy millis with expires_in_sec", 200, `{"access_token":"x","expires_in":3600000,"expires_in_sec":3600}`, true, time.Hour, 0, ""},
		{"legacy millis alone", 200, `{"access_token":"x","expires_in":3600000}`, true, time.Hour, 0, ""},
		{"lifetime as string", 200, `{"access_token":"x","expires_in":"1800"}`, true, 30 * time.Minute, 0, ""},
		{"missing lifetime", 200, `{"access_token":"x"}`, true, DefaultTokenLifetime, 0, ""},
		// Zoho's advice: never trust a lifetime over a day (written out, not taken from MaxTokenLifetime).
		{"absurd lifetime capped", 200, `{"access_token":"x","expires_in_sec":999999999}`, true, 24 * time.Hour, 0, ""},
		{"lifetime of a day is seconds", 200, `{"access_token":"x","expires_in":86400}`, true, 24 * time.Hour, 0, ""},
		// No usable lifetime: Zoho's documented hour.
		{"zero lifetime", 200, `{"access_token":"x","expires_in":0}`, true, time.Hour, 0, ""},
		{"negative lifetime", 200, `{"access_token":"x","expires_in":-60}`, true, time.Hour, 0, ""},
		{"unusable expires_in_sec", 200, `{"access_token":"x","expires_in":3600000,"expires_in_sec":0}`, true, time.Hour, 0, ""},
		{"success despite status", 400, `{"access_token":"x","expires_in":60}`, true, time.Minute, 0, ""},
		{"error with 200", 200, `{"error":"invalid_code"}`, false, 0, KindRejected, "invalid_code"},
		{"throttle 200", 200, `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`, false, 0, KindThrottled, "Access Denied"},
		{"throttle 400", 400, `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`, false, 0, KindThrottled, "Access Denied"},
		{"throttle without description", 200, `{"error":"Access Denied"}`, false, 0, KindThrottled, "Access Denied"},
		{"numeric error code", 200, `{"error":1001}`, false, 0, KindRejected, "1001"},
		{"server error html", 502, `<html>bad gateway</html>`, false, 0, KindServer, ""},
		{"HTTP 500 html", 500, `<html>internal error</html>`, false, 0, KindServer, ""},
		{"HTTP 500 json", 500, `{}`, false, 0, KindServer, ""},
		{"garbage", 200, `not json at all`, false, 0, KindMalformed, ""},
		{"truncated", 200, `{"access_token":"1000.ab`, false, 0, KindMalformed, ""},
		{"empty object", 200, `{}`, false, 0, KindMalformed, ""},
		{"error not a string", 200, `{"error":{"x":1}}`, false, 0, KindMalformed, ""},
		{"empty access token", 200, `{"access_token":"","error":"invalid_client"}`, false, 0, KindRejected, "invalid_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ParseTokenResponse(OpRefresh, tc.status, []byte(tc.body))
			if tc.wantTok {
				if err != nil || tok == nil {
					t.Fatalf("want token, got %v", err)
				}
				if tok.ExpiresIn != tc.wantLife {
					t.Fatalf("lifetime = %s, want %s", tok.ExpiresIn, tc.wantLife)
				}
				return
			}
			ze, ok := AsError(err)
			if !ok {
				t.Fatalf("want *Error, got %v (token %v)", err, tok)
			}
			if ze.Kind != tc.kind || ze.Code != tc.code {
				t.Fatalf("kind/code = %s/%q, want %s/%q", ze.Kind, ze.Code, tc.kind, tc.code)
			}
		})
	}
}

func TestParseTokenKeepsFields(t *testing.T) {
	tok, err := ParseTokenResponse(OpExchange, 200, []byte(`{"access_token":"A","refresh_token":"R","api_domain":"https://www.zohoapis.eu/","token_type":"Bearer","expires_in":3600,"scope":"ZohoCRM.modules.ALL ZohoCRM.users.READ"}`))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "A" || tok.RefreshToken != "R" || tok.APIDomain != "https://www.zohoapis.eu" || tok.TokenType != "Bearer" || tok.Scope != "ZohoCRM.modules.ALL ZohoCRM.users.READ" {
		t.Fatalf("unexpected token %+v", tok)
	}
}

func TestParseRevokeResponse(t *testing.T) {
	const (
		revoked = iota // success
		invalid        // Zoho's explicit invalid-token answer: already revoked
		failed         // anything else: not proof, try again
	)
	cases := []struct {
		name   string
		status int
		body   string
		want   int
		kind   Kind // for failed
	}{
		{"success", 200, `{"status":"success"}`, revoked, 0},
		{"success any case", 200, `{"status":"Success"}`, revoked, 0},
		{"success with spaces", 200, " {\"status\" : \"SUCCESS\"}\n", revoked, 0},

		{"invalid_token 400", 400, `{"status":"failure","error":"invalid_token"}`, invalid, 0},
		{"invalid_token 401", 401, `{"error":"invalid_token"}`, invalid, 0},
		{"invalid_token with 200", 200, `{"status":"failure","error":"invalid_token"}`, invalid, 0},
		{"Invalid token", 400, `{"error":"Invalid token"}`, invalid, 0},
		{"INVALID_TOKEN", 400, `{"error":"INVALID_TOKEN"}`, invalid, 0},
		{"invalid_refresh_token", 400, `{"error":"invalid_refresh_token"}`, invalid, 0},
		{"invalid access token", 400, `{"error":"invalid-access-token"}`, invalid, 0},
		{"INVALID_OAUTHTOKEN", 400, `{"error":"INVALID_OAUTHTOKEN"}`, invalid, 0},
		{"description only", 400, `{"status":"failure","error_description":"The token is invalid."}`, invalid, 0},
		{"message only", 400, `{"status":"failure","message":"Refresh token is invalid"}`, invalid, 0},
		{"documented wording", 400, `{"message":"The token passed in the request is invalid"}`, invalid, 0},

		{"empty object", 200, `{}`, failed, KindMalformed},
		{"null", 200, `null`, failed, KindMalformed},
		{"array", 200, `[]`, failed, KindMalformed},
		{"empty 200", 200, ``, failed, KindMalformed},
		{"unknown status", 200, `{"status":"weird"}`, failed, KindMalformed},
		{"failure without error", 200, `{"status":"failure"}`, failed, KindMalformed},
		{"success with 400", 400, `{"status":"success"}`, failed, KindMalformed},
		{"success with 201", 201, `{"status":"success"}`, failed, KindMalformed},
		{"success with error", 200, `{"status":"success","error":"invalid_client"}`, failed, KindRejected},
		{"error with 200", 200, `{"error":"invalid_client"}`, failed, KindRejected},
		{"400 empty", 400, ``, failed, KindMalformed},
		{"401 empty", 401, ``, failed, KindMalformed},
		{"400 html", 400, `<html><body>Bad Request</body></html>`, failed, KindMalformed},
		{"400 empty object", 400, `{}`, failed, KindMalformed},
		{"400 failure without error", 400, `{"status":"failure"}`, failed, KindMalformed},
		{"invalid_request", 400, `{"error":"invalid_request"}`, failed, KindRejected},
		{"unknown code", 400, `{"status":"failure","error":"general_error"}`, failed, KindRejected},
		{"invalid_client", 401, `{"error":"invalid_client"}`, failed, KindRejected},
		{"code decides over description", 400, `{"error":"invalid_request","error_description":"token is invalid"}`, failed, KindRejected},
		{"not about a token", 400, `{"message":"The request is invalid"}`, failed, KindMalformed},
		{"token invalidated elsewhere", 400, `{"message":"invalid token endpoint"}`, failed, KindMalformed},
		{"error not a string", 400, `{"error":{"code":"invalid_token"}}`, failed, KindMalformed},
		{"throttle", 400, `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`, failed, KindThrottled},
		{"redirect", 302, `{"status":"success"}`, failed, KindMalformed},
		{"redirect invalid token", 302, `{"error":"invalid_token"}`, failed, KindMalformed},
		{"forbidden invalid token", 403, `{"error":"invalid_token"}`, failed, KindMalformed},
		{"not found", 404, `<html>not found</html>`, failed, KindMalformed},
		{"server error", 503, `oops`, failed, KindServer},
		{"server error invalid token", 500, `{"error":"invalid_token"}`, failed, KindServer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ParseRevokeResponse(tc.status, []byte(tc.body))
			switch tc.want {
			case revoked:
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			case invalid:
				if !IsTokenInvalid(err) {
					t.Fatalf("want the invalid-token answer, got %v", err)
				}
				ze, _ := AsError(err)
				if ze.Kind != KindRejected || ze.Code != CodeInvalidToken || ze.Temporary() {
					t.Fatalf("invalid token: %+v", ze)
				}
				// Zoho's own words (error_description, else message) are kept.
				if strings.Contains(tc.body, `"error_description"`) || strings.Contains(tc.body, `"message"`) {
					if ze.Description == "" || !strings.Contains(tc.body, ze.Description) {
						t.Fatalf("description %q is not the answer's wording: %s", ze.Description, tc.body)
					}
				}
				return
			}
			ze, ok := AsError(err)
			if !ok {
				t.Fatalf("want *Error, got %v", err)
			}
			if IsTokenInvalid(err) || ze.Code == CodeInvalidToken {
				t.Fatalf("not proof of a dead token, yet %v", err)
			}
			if ze.Kind != tc.kind || ze.Op != OpRevoke || ze.HTTPStatus != tc.status {
				t.Fatalf("kind %s op %q status %d, want %s %q %d: %v", ze.Kind, ze.Op, ze.HTTPStatus, tc.kind, OpRevoke, tc.status, err)
			}
		})
	}
	// A status other than success is named in the error.
	if err := ParseRevokeResponse(200, []byte(`{"status":"weird"}`)); err == nil || !strings.Contains(err.Error(), `"weird"`) {
		t.Errorf("unknown status not named: %v", err)
	}
}

func TestIsTokenInvalidOnlyForRevoke(t *testing.T) {
	for _, e := range []*Error{
		{Op: OpRefresh, Kind: KindRejected, Code: CodeInvalidToken},
		{Op: OpRevoke, Kind: KindMalformed, Code: CodeInvalidToken},
		{Op: OpRevoke, Kind: KindRejected, Code: "invalid_request"},
	} {
		if IsTokenInvalid(e) {
			t.Errorf("IsTokenInvalid(%+v) = true", e)
		}
	}
}

// The predicates see this package's *Error through wrapping; any other
// error, nil included, is none of them.
func TestErrorPredicates(t *testing.T) {
	_, throttled := ParseTokenResponse(OpRefresh, 200, []byte(`{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`))
	for _, tc := range []struct {
		name                                          string
		err                                           error
		neverSent, throttled, invalidGrant, temporary bool
	}{
		{"nil", nil, false, false, false, false},
		{"foreign", errors.New("invalid_code: Access Denied"), false, false, false, false},
		{"not sent", &Error{Op: OpExchange, Kind: KindTransport, NotSent: true}, true, false, false, true},
		{"maybe sent", &Error{Op: OpExchange, Kind: KindTransport}, false, false, false, true},
		{"throttled", throttled, false, true, false, true},
		{"invalid_code", &Error{Op: OpRefresh, Kind: KindRejected, Code: CodeInvalidCode}, false, false, true, false},
		{"invalid_client", &Error{Op: OpRefresh, Kind: KindRejected, Code: CodeInvalidClient}, false, false, false, false},
		{"invalid_code in a malformed answer", &Error{Op: OpRefresh, Kind: KindMalformed, Code: CodeInvalidCode}, false, false, false, true},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("wrapped: %w", tc.err)} {
			if NeverSent(err) != tc.neverSent || IsThrottled(err) != tc.throttled || IsInvalidGrant(err) != tc.invalidGrant || IsTemporary(err) != tc.temporary {
				t.Errorf("%s: NeverSent %v IsThrottled %v IsInvalidGrant %v IsTemporary %v, want %v %v %v %v", tc.name,
					NeverSent(err), IsThrottled(err), IsInvalidGrant(err), IsTemporary(err), tc.neverSent, tc.throttled, tc.invalidGrant, tc.temporary)
			}
		}
	}
}

func TestErrorMessagesAndHints(t *testing.T) {
	for _, tc := range []struct {
		e          *Error
		text, hint string
	}{
		{&Error{Op: OpRefresh, Kind: KindRejected, Code: CodeInvalidCode, Description: "code expired", HTTPStatus: 200},
			`zoho refresh failed: Zoho answered "invalid_code" (code expired) [HTTP 200]`, "re-authorize"},
		{&Error{Op: OpRefresh, Kind: KindRejected, Code: CodeInvalidCode},
			`zoho refresh failed: Zoho answered "invalid_code"`, "re-authorize"},
		{&Error{Op: OpRevoke, Kind: KindMalformed, Description: "unexpected HTTP status", HTTPStatus: 302},
			`zoho revoke failed: malformed answer: unexpected HTTP status [HTTP 302]`, "retries"},
		{&Error{Op: OpRevoke, Kind: KindServer, HTTPStatus: 503},
			`zoho revoke failed: server error [HTTP 503]`, "retries"},
		{&Error{Op: OpExchange, Kind: KindTransport, Err: errors.New("timed out")},
			`zoho code exchange failed: unreachable: timed out`, "retries"},
		{&Error{Op: OpRefresh, Kind: KindThrottled, Code: CodeThrottled},
			`zoho refresh failed: Zoho answered "Access Denied"`, "per refresh token"},
		{&Error{Op: OpClientCredentials, Kind: KindThrottled, Code: CodeThrottled},
			`zoho client credentials failed: Zoho answered "Access Denied"`, "client-credentials tokens"},
	} {
		if got := tc.e.Error(); got != tc.text {
			t.Errorf("%+v: text %q, want %q", *tc.e, got, tc.text)
		}
		if got := tc.e.Hint(); !strings.Contains(got, tc.hint) {
			t.Errorf("%+v: hint %q lacks %q", *tc.e, got, tc.hint)
		}
	}
}

func TestErrorTextHasNoSecrets(t *testing.T) {
	e := &Error{Op: OpRefresh, Kind: KindRejected, Code: CodeInvalidCode, HTTPStatus: 200}
	msg := e.Error()
	if !strings.Contains(msg, "invalid_code") || !strings.Contains(msg, "HTTP 200") {
		t.Fatalf("message should name Zoho's code and status: %q", msg)
	}
	if !strings.Contains(e.Hint(), "grant_code") {
		t.Fatalf("hint for a dead refresh token should say what to write: %q", e.Hint())
	}
	wrapped := errors.Join(errors.New("ctx"), e)
	if !IsInvalidGrant(wrapped) {
		t.Fatal("IsInvalidGrant must see through wrapping")
	}
}

func TestDescriptionTruncated(t *testing.T) {
	long := strings.Repeat("é", 500)
	_, err := ParseTokenResponse(OpRefresh, 200, []byte(`{"error":"x","error_description":"`+long+`"}`))
	ze, _ := AsError(err)
	if len(ze.Description) > maxDescriptionLen+len("…") {
		t.Fatalf("description not truncated: %d bytes", len(ze.Description))
	}
	if !strings.HasSuffix(ze.Description, "…") {
		t.Fatal("truncated description should end with an ellipsis")
	}

	for _, tc := range []struct {
		name, in string
		keep     bool // returned unchanged
	}{
		{"at the limit", strings.Repeat("a", maxDescriptionLen), true},
		{"one byte over", strings.Repeat("a", maxDescriptionLen+1), false},
		// The limit falls inside a two-byte character.
		{"misaligned characters", "a" + strings.Repeat("é", maxDescriptionLen), false},
		// Not UTF-8 at all: no character starts anywhere.
		{"continuation bytes only", strings.Repeat("\x80", 2*maxDescriptionLen), false},
	} {
		got := Truncate(tc.in)
		if tc.keep {
			if got != tc.in {
				t.Errorf("%s: %q changed to %q", tc.name, tc.in, got)
			}
			continue
		}
		head, ok := strings.CutSuffix(got, "…")
		if !ok || len(head) > maxDescriptionLen || !strings.HasPrefix(tc.in, head) {
			t.Errorf("%s: %q is not a prefix of at most %d bytes and an ellipsis", tc.name, got, maxDescriptionLen)
		}
		// Only a character cut in half is dropped.
		if utf8.ValidString(tc.in) && (!utf8.ValidString(head) || len(head) <= maxDescriptionLen-utf8.UTFMax) {
			t.Errorf("%s: kept %d bytes %q", tc.name, len(head), head)
		}
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	seeds := []string{
		`{"access_token":"1000.a.b","expires_in":3600}`,
		`{"access_token":"x","expires_in":3600000,"expires_in_sec":3600}`,
		`{"error":"invalid_code"}`,
		`{"error":"Access Denied","error_description":"You have made too many requests continuously.","status":"failure"}`,
		`{"access_token":"x","expires_in":"NaN"}`,
		`{"access_token":"x","expires_in":1e400}`,
		`{"access_token":`, `<html>`, ``, `null`, `[]`, `{"error":null}`,
	}
	for _, s := range seeds {
		f.Add(200, []byte(s))
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, err := ParseTokenResponse(OpRefresh, status, body)
		if (tok == nil) == (err == nil) {
			t.Fatalf("exactly one of token and error must be set: %v %v", tok, err)
		}
		if tok != nil {
			if tok.AccessToken == "" {
				t.Fatal("a token without access_token")
			}
			if tok.ExpiresIn < time.Second || tok.ExpiresIn > MaxTokenLifetime {
				t.Fatalf("lifetime out of range: %s", tok.ExpiresIn)
			}
			return
		}
		ze, ok := AsError(err)
		if !ok {
			t.Fatalf("error is not a *zoho.Error: %v", err)
		}
		if len(ze.Code) > maxDescriptionLen+4 || len(ze.Description) > maxDescriptionLen+4 {
			t.Fatal("error fields not bounded")
		}
		_ = ze.Error()
	})
}

func FuzzParseRevokeResponse(f *testing.F) {
	for _, s := range []string{
		`{"status":"success"}`, `{"status":"SUCCESS"}`, `{"status":"failure","error":"invalid_token"}`,
		`{"error":"Invalid token"}`, `{"error":"invalid_refresh_token"}`, `{"message":"The token is invalid."}`,
		`{"error_description":"The token passed in the request is invalid"}`, `{"error":"invalid_request","error_description":"token is invalid"}`,
		`{}`, `null`, `[]`, ``, `x`, `<html>Bad Request</html>`, `{"status":"failure"}`, `{"error":"invalid_client"}`,
		`{"error":{"code":"invalid_token"}}`, `{"status":"success","error":"invalid_client"}`,
		`{"ERROR":"\u0069nvalid_token"}`, `{"Status":"\u0053uccess"}`,
		`{"error":"Access Denied","error_description":"You have made too many requests continuously.","status":"failure"}`,
	} {
		for _, status := range []int{200, 201, 302, 400, 401, 403, 500, 503} {
			f.Add(status, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := ParseRevokeResponse(status, body)
		lower := answerText(body)
		if err == nil {
			// Success needs HTTP 200 and a body saying so.
			if status != 200 || !strings.Contains(lower, "success") {
				t.Fatalf("success without a success answer: %d %q", status, body)
			}
			return
		}
		ze, ok := AsError(err)
		if !ok {
			t.Fatalf("error is not a *zoho.Error: %v", err)
		}
		if ze.Op != OpRevoke || ze.HTTPStatus != status {
			t.Fatalf("op %q status %d for HTTP %d", ze.Op, ze.HTTPStatus, status)
		}
		if status >= 500 && (ze.Kind != KindServer || !ze.Temporary()) {
			t.Fatalf("HTTP %d: kind %s", status, ze.Kind)
		}
		if IsTokenInvalid(err) {
			// Only an explicit answer naming the token as invalid, with a status Zoho uses.
			if status != 200 && status != 400 && status != 401 {
				t.Fatalf("invalid token with HTTP %d", status)
			}
			if !strings.Contains(lower, "token") || !(strings.Contains(lower, "invalid") || strings.Contains(lower, "not valid")) {
				t.Fatalf("invalid token without saying so: %q", body)
			}
			if ze.Temporary() {
				t.Fatal("the invalid-token answer is not temporary")
			}
		} else if ze.Code == CodeInvalidToken {
			t.Fatalf("Code %q outside the invalid-token answer: %+v", ze.Code, ze)
		}
		if len(ze.Code) > maxDescriptionLen+4 || len(ze.Description) > maxDescriptionLen+4 {
			t.Fatal("error fields not bounded")
		}
		_ = ze.Error()
	})
}

// answerText is the lower-cased text of the fields a revoke answer is judged
// by, JSON escapes decoded; the raw body when it is not a JSON object.
func answerText(body []byte) string {
	var ans struct{ Status, Error, ErrorDescription, Message any }
	if json.Unmarshal(body, &ans) != nil {
		return strings.ToLower(string(body))
	}
	var m struct {
		ErrorDescription any `json:"error_description"`
	}
	_ = json.Unmarshal(body, &m)
	return strings.ToLower(fmt.Sprint(ans.Status, ans.Error, m.ErrorDescription, ans.Message))
}
