package zoho

// The device authorization flow: Zoho's flow for "non-browser apps"
// (/oauth/v3/device/code and /oauth/v3/device/token), client side.
//
//  1. RequestDeviceCode asks the client's accounts server for a device code.
//     Show DeviceCode.UserCode and DeviceCode.VerificationURL to the user;
//     keep DeviceCode.DeviceCode secret: whoever holds it while the user
//     approves gets the tokens. Its String and GoString hide it.
//  2. PollDeviceToken, no more often than once per DeviceCode.Interval, until
//     a token comes or ClassifyDevicePoll says the flow is over:
//
//	dc, err := c.RequestDeviceCode(ctx, app, "ZohoCRM.modules.ALL", true)
//	…show dc.UserCode and dc.VerificationURL; deadline := dc.ExpiresAt(started)…
//	for {
//		wait dc.Interval (longer after DeviceSlowDown or DeviceRetry)
//		tok, err := c.PollDeviceToken(ctx, app, dc.DeviceCode)
//		switch zoho.ClassifyDevicePoll(err) {
//		case zoho.DeviceGranted:
//			// tok: AccessToken, RefreshToken (offline), APIDomain, ExpiresIn
//		case zoho.DevicePending, zoho.DeviceSlowDown, zoho.DeviceRetry:
//			continue // same device code
//		case zoho.DeviceOtherDC:
//			ze, _ := zoho.AsError(err)
//			userDC, next, err := zoho.FollowOtherDC(app.AccountsURL, ze.UserLocation)
//			// on success: app.AccountsURL = next (secret for userDC), continue
//		default: // DeviceDenied, DeviceExpired, DeviceInvalidCode, DeviceFailed
//			// over: report err (its Hint says what to do)
//		}
//	}
//
// Every error is a *Error (Op OpDeviceCode or OpDevicePoll) that never holds
// the client secret, the device code or a token; IsTemporary is true for
// authorization_pending and slow_down besides the usual transport, server,
// malformed and throttle failures. Requests carry their parameters in a form
// body, never in the query string.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Operation names of the device flow, used in errors.
const (
	OpDeviceCode = "device code request"
	OpDevicePoll = "device token poll"
)

// Zoho's answers to a device token poll (access_denied is CodeAccessDenied;
// a spent or unknown device code is CodeInvalidCode).
const (
	CodeAuthorizationPending = "authorization_pending"
	CodeSlowDown             = "slow_down"
	CodeOtherDC              = "other_dc"
	CodeExpired              = "expired"
)

func isDeviceCode(code string) bool {
	switch code {
	case CodeAuthorizationPending, CodeSlowDown, CodeOtherDC, CodeExpired:
		return true
	}
	return false
}

// Bounds on what a device code answer may say. Zoho documents user codes
// valid 5 minutes and one poll per 30 seconds.
const (
	DefaultDeviceCodeLifetime = 5 * time.Minute  // when expires_in is missing
	MaxDeviceCodeLifetime     = time.Hour        // a longer expires_in is capped
	DefaultDevicePollInterval = 30 * time.Second // when interval is missing
	MinDevicePollInterval     = time.Second      // a shorter interval is raised
	MaxDevicePollInterval     = 5 * time.Minute  // a longer interval is capped
)

// DocumentedDevicePollInterval is Zoho's documented pace of device token
// polls: two polls of a code within 30 seconds get slow_down, whatever
// interval the device code answer announced. After a slow_down, polls keep
// at least this far apart.
const DocumentedDevicePollInterval = 30 * time.Second

// DeviceCode is the answer to a device code request.
type DeviceCode struct {
	UserCode        string // show to the user, who enters it at VerificationURL
	DeviceCode      string // secret: poll with it; never show or log it
	VerificationURL string // https (or http on loopback, the simulator)
	// ExpiresIn is how long the codes live from the request: Zoho's
	// expires_in in seconds, or in milliseconds (as Zoho's older page has it)
	// when it is over a day or the interval is in milliseconds; within
	// [1s, MaxDeviceCodeLifetime]; DefaultDeviceCodeLifetime when missing.
	ExpiresIn time.Duration
	// Interval is the least wait between polls: Zoho's interval, seconds or
	// (1000 and over) milliseconds, in [MinDevicePollInterval,
	// MaxDevicePollInterval]; DefaultDevicePollInterval when missing.
	Interval time.Duration
}

// ExpiresAt is when the codes expire, given when the request was sent.
func (d *DeviceCode) ExpiresAt(requested time.Time) time.Time { return requested.Add(d.ExpiresIn) }

// String shows everything but the device code.
func (d DeviceCode) String() string {
	return fmt.Sprintf("DeviceCode{UserCode:%q VerificationURL:%q ExpiresIn:%s Interval:%s DeviceCode:[redacted]}",
		d.UserCode, d.VerificationURL, d.ExpiresIn, d.Interval)
}

// GoString is String, so that %#v hides the device code too.
func (d DeviceCode) GoString() string { return d.String() }

// RequestDeviceCode starts a device authorization for scopes (Zoho's
// comma-separated list) at app.AccountsURL (grant_type=device_request). The
// client secret is not sent: Zoho's initiation request does not take it.
//
// With offline it asks for a refresh token: access_type=offline and
// prompt=consent, since without prompt=consent Zoho hands a refresh token out
// only the first time a user authorizes the client.
func (c *Client) RequestDeviceCode(ctx context.Context, app App, scopes string, offline bool) (*DeviceCode, error) {
	scopes = strings.TrimSpace(scopes)
	if scopes == "" {
		return nil, errors.New("zoho " + OpDeviceCode + ": no scopes")
	}
	form := url.Values{
		"grant_type": {"device_request"},
		"client_id":  {app.ClientID},
		"scope":      {scopes},
	}
	if offline {
		form.Set("access_type", "offline")
		form.Set("prompt", "consent")
	}
	status, body, err := c.post(ctx, OpDeviceCode, app.AccountsURL+"/oauth/v3/device/code", form)
	if err != nil {
		return nil, redact(err, app.ClientSecret)
	}
	dc, err := ParseDeviceCodeResponse(status, body)
	if err != nil {
		return nil, redact(err, app.ClientSecret, deviceCodeIn(body))
	}
	return dc, nil
}

// PollDeviceToken asks once whether the user approved (grant_type=
// device_token, code=deviceCode). On approval it returns the token answer:
// AccessToken, RefreshToken with offline access, APIDomain (use it, it names
// the user's data center), ExpiresIn. Otherwise ClassifyDevicePoll(err) says
// what to do next.
func (c *Client) PollDeviceToken(ctx context.Context, app App, deviceCode string) (*Token, error) {
	if deviceCode == "" {
		return nil, errors.New("zoho " + OpDevicePoll + ": no device code")
	}
	form := url.Values{
		"grant_type":    {"device_token"},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"code":          {deviceCode},
	}
	status, body, err := c.post(ctx, OpDevicePoll, app.AccountsURL+"/oauth/v3/device/token", form)
	if err != nil {
		return nil, redact(err, app.ClientSecret, deviceCode)
	}
	tok, err := ParseDeviceTokenResponse(status, body)
	return tok, redact(err, app.ClientSecret, deviceCode)
}

// DevicePoll is what a device token poll means for the flow.
type DevicePoll int

const (
	// DeviceGranted: the token arrived (err == nil).
	DeviceGranted DevicePoll = iota
	// DevicePending: the user has not decided; poll again after Interval.
	DevicePending
	// DeviceSlowDown: polled too soon; wait a whole Interval more from this
	// poll, and at least DocumentedDevicePollInterval (every poll counts, the
	// slowed ones too).
	DeviceSlowDown
	// DeviceOtherDC: the user approved in another data center; poll there
	// from now on (FollowOtherDC), with the same device code.
	DeviceOtherDC
	// DeviceDenied: the user refused. Over.
	DeviceDenied
	// DeviceExpired: nothing happened within the codes' lifetime. Over.
	DeviceExpired
	// DeviceInvalidCode: Zoho does not know the device code, or it already
	// yielded a token (perhaps to a poll whose answer was lost). Over.
	DeviceInvalidCode
	// DeviceRetry: Zoho could not be used (transport, 5xx, malformed answer,
	// throttle); poll again later with the same device code.
	DeviceRetry
	// DeviceFailed: any other rejection (invalid_client,
	// invalid_client_secret, …) or a call the client refused to make. Over:
	// an operator must fix the configuration.
	DeviceFailed
)

func (p DevicePoll) String() string {
	switch p {
	case DeviceGranted:
		return "granted"
	case DevicePending:
		return "pending"
	case DeviceSlowDown:
		return "slow down"
	case DeviceOtherDC:
		return "other data center"
	case DeviceDenied:
		return "denied"
	case DeviceExpired:
		return "expired"
	case DeviceInvalidCode:
		return "invalid device code"
	case DeviceRetry:
		return "retry"
	case DeviceFailed:
		return "failed"
	}
	return "unknown"
}

// Final reports whether the flow is over: polling the same device code again
// cannot give a token.
func (p DevicePoll) Final() bool {
	switch p {
	case DevicePending, DeviceSlowDown, DeviceOtherDC, DeviceRetry:
		return false
	}
	return true
}

// ClassifyDevicePoll maps the error of PollDeviceToken to what the flow
// should do next.
func ClassifyDevicePoll(err error) DevicePoll {
	if err == nil {
		return DeviceGranted
	}
	ze, ok := AsError(err)
	if !ok {
		return DeviceFailed
	}
	if ze.Kind != KindRejected {
		return DeviceRetry
	}
	switch ze.Code {
	case CodeAuthorizationPending:
		return DevicePending
	case CodeSlowDown:
		return DeviceSlowDown
	case CodeOtherDC:
		return DeviceOtherDC
	case CodeAccessDenied:
		return DeviceDenied
	case CodeExpired:
		return DeviceExpired
	case CodeInvalidCode:
		return DeviceInvalidCode
	}
	return DeviceFailed
}

// FollowOtherDC returns the data center named by an other_dc answer's
// user_location and the accounts server to poll there. The location is
// looked up in the data-center table only; an unknown one is an error.
//
// When accountsURL is one of Zoho's accounts servers the answer is the
// table's accounts server of that data center. Otherwise accountsURL is an
// operator's override; only a loopback one laid out as the simulator serves
// data centers (<base>/<dc>) is followed, by swapping that last path segment:
// the secret then goes to the host the operator configured, never to a host
// taken from an answer. Any other override is an error.
func FollowOtherDC(accountsURL, location string) (DataCenter, string, error) {
	dc, ok := LookupDataCenter(location)
	if !ok {
		return DataCenter{}, "", fmt.Errorf("zoho: the user approved in data center %q, which is not one of %v", Truncate(location), DataCenterCodes())
	}
	if _, known := IsKnownAccountsServer(accountsURL); known {
		return dc, dc.AccountsURL, nil
	}
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(accountsURL), "/"))
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && IsLoopbackHost(u.Hostname()) &&
		u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		if i := strings.LastIndex(u.Path, "/"); i >= 0 {
			if _, isDC := LookupDataCenter(u.Path[i+1:]); isDC {
				u.Path = u.Path[:i+1] + dc.Code
				u.RawPath = ""
				return dc, u.String(), nil
			}
		}
	}
	return DataCenter{}, "", fmt.Errorf("zoho: the user approved in data center %q, but the custom accounts server cannot be mapped to it: set the account's data center to %q instead", dc.Code, dc.Code)
}

// deviceHint is Hint for the device flow's answers, "" for the rest.
func deviceHint(e *Error) string {
	if e.Op != OpDeviceCode && e.Op != OpDevicePoll {
		return ""
	}
	switch e.Code {
	case CodeAuthorizationPending:
		return "the user has not yet entered the user code at the verification URL: keep polling at the announced interval"
	case CodeSlowDown:
		return "polls came faster than Zoho allows (one per 30 seconds): wait at least the announced interval between polls"
	case CodeOtherDC:
		if dc, ok := LookupDataCenter(e.UserLocation); ok {
			return fmt.Sprintf("the user approved in data center %q: poll %s from now on", dc.Code, dc.AccountsURL)
		}
		return fmt.Sprintf("the user approved in data center %q, which is not a known data center: start over with the user's data center", e.UserLocation)
	case CodeAccessDenied:
		return "the user refused the authorization: start a new device authorization"
	case CodeExpired:
		return "nobody approved within the code's lifetime: start a new device authorization"
	case CodeInvalidCode:
		return "the device code is unknown or already used: start a new device authorization"
	case "invalid_scope":
		return "the scopes are missing or unknown: name them as Zoho does, comma-separated"
	}
	return ""
}

type deviceCodeAnswer struct {
	UserCode         json.RawMessage `json:"user_code"`
	DeviceCode       json.RawMessage `json:"device_code"`
	VerificationURL  json.RawMessage `json:"verification_url"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Interval         json.RawMessage `json:"interval"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription json.RawMessage `json:"error_description"`
}

const (
	maxUserCodeLen   = 64
	maxDeviceCodeLen = 2048
	// A verification_url longer than this is not shown to a user.
	maxVerificationURLLen = 2048
	// An interval over this is in milliseconds: 30000 for Zoho's 30 s.
	intervalMillisAbove = 999
)

// ParseDeviceCodeResponse interprets an answer of /oauth/v3/device/code.
// Success is the presence of device_code, whatever the HTTP status; the
// user code must be short and printable, the device code printable without
// spaces, and the verification URL https (plain http only on loopback).
// Lifetimes are read as DeviceCode documents.
func ParseDeviceCodeResponse(status int, body []byte) (*DeviceCode, error) {
	var ans deviceCodeAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, classifyNonJSON(OpDeviceCode, status)
	}
	malformed := func(why string) error {
		return &Error{Op: OpDeviceCode, Kind: KindMalformed, HTTPStatus: status, Description: why}
	}
	if deviceCode := rawString(ans.DeviceCode); deviceCode != "" {
		userCode := strings.TrimSpace(rawString(ans.UserCode))
		switch {
		case len(deviceCode) > maxDeviceCodeLen || strings.IndexFunc(deviceCode, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
			return nil, malformed("device_code is not a plausible code")
		case userCode == "" || len(userCode) > maxUserCodeLen || strings.IndexFunc(userCode, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			return nil, malformed("user_code is missing or not a short printable code")
		}
		// An interval in milliseconds says the answer is in milliseconds.
		lifeMillisAbove := float64(24 * 60 * 60)
		if v, ok := rawNumber(ans.Interval); ok && v > intervalMillisAbove {
			lifeMillisAbove = 0
		}
		verify, ok := verificationURL(rawString(ans.VerificationURL))
		if !ok {
			return nil, malformed("verification_url is missing or not an https URL")
		}
		return &DeviceCode{
			UserCode:        userCode,
			DeviceCode:      deviceCode,
			VerificationURL: verify,
			ExpiresIn:       deviceDuration(ans.ExpiresIn, lifeMillisAbove, DefaultDeviceCodeLifetime, time.Second, MaxDeviceCodeLifetime),
			Interval:        deviceDuration(ans.Interval, intervalMillisAbove, DefaultDevicePollInterval, MinDevicePollInterval, MaxDevicePollInterval),
		}, nil
	}
	if code := rawString(ans.Error); code != "" {
		return nil, rejection(OpDeviceCode, status, code, rawString(ans.ErrorDescription))
	}
	if status >= 500 {
		return nil, &Error{Op: OpDeviceCode, Kind: KindServer, HTTPStatus: status}
	}
	return nil, malformed("answer carries neither device_code nor error")
}

// ParseDeviceTokenResponse interprets an answer of /oauth/v3/device/token:
// a token answer as ParseTokenResponse reads it (refresh token kept), or an
// *Error with Op OpDevicePoll whose UserLocation is set for other_dc.
func ParseDeviceTokenResponse(status int, body []byte) (*Token, error) {
	tok, err := ParseTokenResponse(OpDevicePoll, status, body)
	if ze, ok := err.(*Error); ok && ze.Kind == KindRejected && ze.Code == CodeOtherDC {
		var ans struct {
			UserLocation json.RawMessage `json:"user_location"`
		}
		_ = json.Unmarshal(body, &ans)
		ze.UserLocation = Truncate(strings.ToLower(strings.TrimSpace(rawString(ans.UserLocation))))
	}
	return tok, err
}

// deviceDuration reads a duration given in seconds, or in milliseconds when
// the number is over millisAbove; missing or not positive gives def; the
// result is clamped to [lo, hi].
func deviceDuration(raw json.RawMessage, millisAbove float64, def, lo, hi time.Duration) time.Duration {
	v, ok := rawNumber(raw)
	if !ok || v <= 0 {
		return def
	}
	if v > millisAbove {
		v /= 1000
	}
	if v >= hi.Seconds() {
		return hi
	}
	return max(time.Duration(v*float64(time.Second)), lo)
}

// verificationURL accepts an absolute https URL without credentials, or an
// http one on a loopback host (the simulator).
func verificationURL(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || len(raw) > maxVerificationURLLen {
		return "", false
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	default:
		return "", false
	}
	return raw, true
}

// deviceCodeIn is the device_code of an answer, if any, for redaction.
func deviceCodeIn(body []byte) string {
	var ans struct {
		DeviceCode json.RawMessage `json:"device_code"`
	}
	if json.Unmarshal(body, &ans) != nil {
		return ""
	}
	return rawString(ans.DeviceCode)
}
