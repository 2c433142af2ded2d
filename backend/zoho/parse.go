package zoho

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
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

type revokeAnswer struct {
	Status           json.RawMessage `json:"status"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription json.RawMessage `json:"error_description"`
	Message          json.RawMessage `json:"message"`
}

// ParseRevokeResponse interprets an answer of /oauth/v2/token/revoke. Only two
// answers prove the token dead: HTTP 200 with "status":"success" (nil), and
// Zoho's explicit invalid-token answer (an *Error for which IsTokenInvalid is
// true). Anything else is a failure: an empty object, a 400 or 401 without a
// recognisable answer, another error code, a redirect, HTML.
func ParseRevokeResponse(status int, body []byte) error {
	switch {
	case status >= 500:
		return &Error{Op: OpRevoke, Kind: KindServer, HTTPStatus: status}
	case status != http.StatusOK && status != http.StatusBadRequest && status != http.StatusUnauthorized:
		// Zoho answers 200 or 400; a redirect or a proxy's 403 or 404 proves nothing.
		return &Error{Op: OpRevoke, Kind: KindMalformed, HTTPStatus: status, Description: "unexpected HTTP status"}
	}
	var ans revokeAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return classifyNonJSON(OpRevoke, status)
	}
	code, desc, msg := rawString(ans.Error), rawString(ans.ErrorDescription), rawString(ans.Message)
	if isInvalidTokenAnswer(code, desc, msg) {
		if desc == "" {
			desc = msg
		}
		return &Error{Op: OpRevoke, Kind: KindRejected, Code: CodeInvalidToken, HTTPStatus: status, Description: Truncate(desc)}
	}
	if code != "" {
		return rejection(OpRevoke, status, code, desc)
	}
	st := rawString(ans.Status)
	switch {
	case status == http.StatusOK && strings.EqualFold(strings.TrimSpace(st), "success"):
		return nil
	case st == "":
		return &Error{Op: OpRevoke, Kind: KindMalformed, HTTPStatus: status, Description: "answer carries neither a success status nor an error"}
	}
	return &Error{Op: OpRevoke, Kind: KindMalformed, HTTPStatus: status, Description: Truncate("unexpected status " + strconv.Quote(st))}
}

// invalidTokenWording matches, after normalisation by wording, the ways of
// saying that the token itself is invalid: "invalid_token", "Invalid token",
// "invalid_refresh_token", "The token is invalid", "The token passed in the
// request is invalid", … Anchored at both ends, so that a longer sentence
// merely mentioning a token does not count.
var invalidTokenWording = regexp.MustCompile(`^(?:` +
	`invalid (?:refresh |access |oauth ?)?token` +
	`|(?:the )?(?:refresh |access |oauth ?)?token(?: passed in the request| provided| given)? is (?:invalid|not valid)` +
	`)$`)

// isInvalidTokenAnswer reports whether an answer names the token as invalid.
// The error code decides when there is one; error_description and message
// are read only without it.
func isInvalidTokenAnswer(code, desc, msg string) bool {
	if code != "" {
		return invalidTokenWording.MatchString(wording(code))
	}
	return invalidTokenWording.MatchString(wording(desc)) || invalidTokenWording.MatchString(wording(msg))
}

// wording lower-cases s, turns '_' and '-' into spaces, collapses white space
// and drops trailing punctuation.
func wording(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return ' '
		}
		return unicode.ToLower(r)
	}, s)
	return strings.TrimRight(strings.Join(strings.Fields(s), " "), ".!")
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
	return &Error{Op: op, Kind: kind, Code: Truncate(code), Description: Truncate(desc), HTTPStatus: status}
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

// Truncate shortens s for an error message to at most maxDescriptionLen
// bytes, never cutting a UTF-8 character in half.
func Truncate(s string) string {
	if len(s) <= maxDescriptionLen {
		return s
	}
	cut := maxDescriptionLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
