package zoho

import (
	"errors"
	"strings"
	"testing"
	"time"
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
		{"absurd lifetime capped", 200, `{"access_token":"x","expires_in_sec":999999999}`, true, MaxTokenLifetime, 0, ""},
		{"success despite status", 400, `{"access_token":"x","expires_in":60}`, true, time.Minute, 0, ""},
		{"error with 200", 200, `{"error":"invalid_code"}`, false, 0, KindRejected, "invalid_code"},
		{"throttle 200", 200, `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`, false, 0, KindThrottled, "Access Denied"},
		{"throttle 400", 400, `{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}`, false, 0, KindThrottled, "Access Denied"},
		{"server error html", 502, `<html>bad gateway</html>`, false, 0, KindServer, ""},
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
	if err := ParseRevokeResponse(200, []byte(`{"status":"success"}`)); err != nil {
		t.Fatalf("success: %v", err)
	}
	err := ParseRevokeResponse(400, []byte(`{"status":"failure","error":"invalid_token"}`))
	if !IsTokenInvalid(err) {
		t.Fatalf("400 should mean the token is invalid, got %v", err)
	}
	if err := ParseRevokeResponse(503, []byte(`oops`)); !IsTemporary(err) {
		t.Fatalf("503 should be temporary, got %v", err)
	}
	if err := ParseRevokeResponse(200, []byte(`{"error":"invalid_client"}`)); err == nil || IsTokenInvalid(err) {
		t.Fatalf("an error body must not count as revoked: %v", err)
	}
	if err := ParseRevokeResponse(200, []byte(`{"status":"weird"}`)); err == nil {
		t.Fatal("unknown status must be an error")
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
	for _, s := range []string{`{"status":"success"}`, `{"status":"failure","error":"invalid_token"}`, `{}`, `x`, `{"error":"invalid_client"}`} {
		f.Add(200, []byte(s))
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := ParseRevokeResponse(status, body)
		if err == nil {
			return
		}
		if _, ok := AsError(err); !ok {
			t.Fatalf("error is not a *zoho.Error: %v", err)
		}
	})
}
