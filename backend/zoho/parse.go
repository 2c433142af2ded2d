package zoho

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultTokenLifetime is assumed when an answer carries no usable lifetime.
const DefaultTokenLifetime = time.Hour

// MaxTokenLifetime caps any lifetime Zoho reports: a longer one is not trusted.
const MaxTokenLifetime = 24 * time.Hour

const maxDescriptionLen = 200

// Token is a successful answer of Zoho's token endpoint.
type Token struct {
	AccessToken  string
	RefreshToken string // only on a code exchange with offline access
	APIDomain    string
	TokenType    string
	Scope        string // as Zoho returned it (comma- or space-separated), may be empty
	ExpiresIn    time.Duration
}

type tokenAnswer struct {
	AccessToken      string          `json:"access_token"`
	RefreshToken     string          `json:"refresh_token"`
	APIDomain        string          `json:"api_domain"`
	TokenType        string          `json:"token_type"`
	Scope            json.RawMessage `json:"scope"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	ExpiresInSec     json.RawMessage `json:"expires_in_sec"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription json.RawMessage `json:"error_description"`
	Status           json.RawMessage `json:"status"`
}

// ParseTokenResponse interprets an answer of /oauth/v2/token. Success is the
// presence of access_token in the body, whatever the HTTP status; Zoho reports
// errors with HTTP 200 and an "error" field.
func ParseTokenResponse(op string, status int, body []byte) (*Token, error) {
	var ans tokenAnswer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&ans); err != nil {
		return nil, classifyNonJSON(op, status)
	}
	if ans.AccessToken != "" {
		return &Token{
			AccessToken:  ans.AccessToken,
			RefreshToken: ans.RefreshToken,
			APIDomain:    strings.TrimRight(ans.APIDomain, "/"),
			TokenType:    ans.TokenType,
			Scope:        rawString(ans.Scope),
			ExpiresIn:    parseLifetime(ans.ExpiresIn, ans.ExpiresInSec),
		}, nil
	}
	if code := rawString(ans.Error); code != "" {
		return nil, rejection(op, status, code, rawString(ans.ErrorDescription))
	}
	if status >= 500 {
		return nil, &Error{Op: op, Kind: KindServer, HTTPStatus: status}
	}
	return nil, &Error{Op: op, Kind: KindMalformed, HTTPStatus: status, Description: "answer carries neither access_token nor error"}
}

// ParseRevokeResponse interprets an answer of /oauth/v2/token/revoke: HTTP 200
// with status "success" revokes; HTTP 400 means the token was not valid.
func ParseRevokeResponse(status int, body []byte) error {
	var ans tokenAnswer
	jsonErr := json.Unmarshal(body, &ans)
	switch {
	case status >= 500:
		return &Error{Op: OpRevoke, Kind: KindServer, HTTPStatus: status}
	case status == 400 || status == 401:
		return &Error{Op: OpRevoke, Kind: KindRejected, Code: CodeInvalidToken, HTTPStatus: status, Description: rawString(ans.ErrorDescription)}
	case jsonErr != nil:
		return classifyNonJSON(OpRevoke, status)
	}
	if code := rawString(ans.Error); code != "" {
		return rejection(OpRevoke, status, code, rawString(ans.ErrorDescription))
	}
	if strings.EqualFold(rawString(ans.Status), "success") {
		return nil
	}
	if status == 200 && rawString(ans.Status) == "" {
		// Some deployments answer an empty object; HTTP 200 without an error is success.
		return nil
	}
	return &Error{Op: OpRevoke, Kind: KindMalformed, HTTPStatus: status, Description: "unexpected status " + strconv.Quote(truncate(rawString(ans.Status)))}
}

func classifyNonJSON(op string, status int) error {
	if status >= 500 {
		return &Error{Op: op, Kind: KindServer, HTTPStatus: status}
	}
	return &Error{Op: op, Kind: KindMalformed, HTTPStatus: status, Description: "answer is not JSON"}
}

func rejection(op string, status int, code, desc string) error {
	kind := KindRejected
	if code == CodeThrottled || strings.Contains(strings.ToLower(desc), "too many requests") {
		kind = KindThrottled
	}
	return &Error{Op: op, Kind: kind, Code: truncate(code), Description: truncate(desc), HTTPStatus: status}
}

// parseLifetime applies Zoho's SDK rule: when expires_in_sec is present,
// expires_in is in milliseconds and expires_in_sec is authoritative; otherwise
// expires_in is seconds. A value over a day is taken as milliseconds (older
// answers carried milliseconds alone); the result is capped at a day.
func parseLifetime(expiresIn, expiresInSec json.RawMessage) time.Duration {
	if secs, ok := rawNumber(expiresInSec); ok && secs > 0 {
		return clampLifetime(secs)
	}
	v, ok := rawNumber(expiresIn)
	if !ok || v <= 0 {
		return DefaultTokenLifetime
	}
	if v > MaxTokenLifetime.Seconds() {
		v /= 1000
	}
	return clampLifetime(v)
}

func clampLifetime(secs float64) time.Duration {
	if secs > MaxTokenLifetime.Seconds() {
		return MaxTokenLifetime
	}
	if secs < 1 {
		return time.Second
	}
	return time.Duration(secs * float64(time.Second))
}

// rawNumber accepts a JSON number or a string holding one.
func rawNumber(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	s := strings.TrimSpace(string(raw))
	if unq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(unq)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// rawString returns a JSON string's value, a scalar's text, or "" for
// anything else (objects, arrays, null).
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" || strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		return ""
	}
	return t
}

func truncate(s string) string {
	if len(s) <= maxDescriptionLen {
		return s
	}
	cut := maxDescriptionLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
