package paths

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Fields of device/<name> answers.
const (
	FieldDeviceState     = "state"
	FieldUserCode        = "user_code"
	FieldVerificationURL = "verification_url"
	FieldExpiresIn       = "expires_in"
	FieldInterval        = "interval"
	FieldStartedAt       = "started_at"
	FieldPolls           = "polls"
	FieldLastPoll        = "last_poll"
	FieldLastPollAnswer  = "last_poll_answer"
	FieldEndedAt         = "ended_at"
)

// States of a device authorization.
const (
	DeviceStatePending    = "pending"    // the engine polls Zoho until the user decides
	DeviceStateApproved   = "approved"   // the refresh token is stored
	DeviceStateDenied     = "denied"     // the user refused
	DeviceStateExpired    = "expired"    // nobody approved within the code's lifetime
	DeviceStateFailed     = "failed"     // Zoho rejected the client or the code; see the last answer
	DeviceStateSuperseded = "superseded" // a later change of the account's credentials ended it before the user decided
)

// Reasons a device authorization needs an operator (see AttentionReasons):
// it ended without a refresh token and the account holds none.
const (
	ReasonDeviceDenied  = "device_authorization_denied"
	ReasonDeviceExpired = "device_authorization_expired"
	ReasonDeviceFailed  = "device_authorization_failed"
)

// DeviceAuthorization is an account's latest device authorization, as it may
// be shown: never the device code.
type DeviceAuthorization struct {
	State           string // one of the DeviceState constants
	UserCode        string // the code the user enters at VerificationURL
	VerificationURL string
	AccountsURL     string // the accounts server polled (the user's after other_dc)
	StartedAt       time.Time
	ExpiresAt       time.Time     // when the user code expires
	Interval        time.Duration // the least wait between two polls (longer after slow_down)
	Polls           int
	LastPollAt      time.Time
	LastPollAnswer  string    // what Zoho answered the last poll (authorization_pending, slow_down, …)
	EndedAt         time.Time // when it was approved, denied, expired, failed or superseded; zero while pending
	// Warnings are set by StartDeviceAuthorization only.
	Warnings []string
}

// deviceAttentionReasons says why a device authorization needs an operator:
// it ended without a refresh token and the account holds none.
func (st *AccountStatus) deviceAttentionReasons() []string {
	if st.Device == nil || st.HasRefreshToken {
		return nil
	}
	switch st.Device.State {
	case DeviceStateDenied:
		return []string{ReasonDeviceDenied}
	case DeviceStateExpired:
		return []string{ReasonDeviceExpired}
	case DeviceStateFailed:
		return []string{ReasonDeviceFailed}
	}
	return nil
}

// deviceStatusFields are the status fields of an account whose device
// authorization was started (absent otherwise).
var deviceStatusFields = []string{
	"device_authorization", "device_user_code", "device_verification_url", "device_expires_at",
	"device_last_poll", "device_last_poll_answer", "device_ended_at",
}

// addDeviceStatus adds the device authorization's fields to an account's
// health, if one was started.
func addDeviceStatus(out map[string]interface{}, st *AccountStatus) {
	d := st.Device
	if d == nil {
		return
	}
	out["device_authorization"] = d.State
	out["device_user_code"] = d.UserCode
	out["device_verification_url"] = d.VerificationURL
	out["device_expires_at"] = formatTime(d.ExpiresAt)
	out["device_last_poll"] = formatTime(d.LastPollAt)
	out["device_last_poll_answer"] = d.LastPollAnswer
	out["device_ended_at"] = formatTime(d.EndedAt)
}

func pathDevice(e Engine) *framework.Path {
	str := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeString, Description: desc}
	}
	num := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeInt, Description: desc}
	}
	started := map[string]*framework.FieldSchema{
		FieldUserCode:        str("The code the user enters at verification_url, signed in to Zoho as the account's user."),
		FieldVerificationURL: str("Zoho's page where the user enters the code and approves."),
		FieldExpiresAt:       str("When the user code expires (RFC 3339); Zoho's codes live 5 minutes."),
		FieldExpiresIn:       num("Seconds until the user code expires."),
		FieldInterval:        num("Seconds between two polls of Zoho (Zoho's interval)."),
	}
	state := map[string]*framework.FieldSchema{
		FieldDeviceState:     str("pending (the engine polls Zoho), approved (the refresh token is stored), denied, expired, failed, or superseded (a later change of the account's credentials ended it)."),
		FieldUserCode:        str("The code the user enters at verification_url."),
		FieldVerificationURL: str("Zoho's page where the user enters the code."),
		FieldAccountsURL:     str("The accounts server polled: the user's after Zoho answered other_dc."),
		FieldStartedAt:       str("When the authorization was started (RFC 3339)."),
		FieldExpiresAt:       str("When the user code expires (RFC 3339)."),
		FieldInterval:        num("Seconds between two polls (longer after Zoho answered slow_down)."),
		FieldPolls:           num("Polls sent so far."),
		FieldLastPoll:        str("When Zoho last answered a poll (RFC 3339); empty before the first."),
		FieldLastPollAnswer:  str("What Zoho answered the last poll: authorization_pending, slow_down, other_dc, access_denied, expired, an error, or granted."),
		FieldEndedAt:         str("When it was approved, denied, expired, failed or superseded (RFC 3339); empty while pending."),
	}
	return &framework.Path{
		Pattern: "device/" + accountNameRegex,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "device-authorization",
		},
		Fields: map[string]*framework.FieldSchema{
			FieldName: nameField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback: namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
					da, err := e.StartDeviceAuthorization(ctx, req.Storage, name)
					if err != nil {
						return respondError(err)
					}
					in := da.ExpiresAt.Sub(da.StartedAt) // the lifetime Zoho announced
					resp := &logical.Response{Data: map[string]interface{}{
						FieldUserCode:        da.UserCode,
						FieldVerificationURL: da.VerificationURL,
						FieldExpiresAt:       formatTime(da.ExpiresAt),
						FieldExpiresIn:       int(in.Round(time.Second) / time.Second),
						FieldInterval:        int((da.Interval + time.Second - 1) / time.Second),
					}}
					for _, w := range da.Warnings {
						resp.AddWarning(w)
					}
					return resp, nil
				}),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "start"},
				Summary:      "Start Zoho's device authorization for the account; the engine polls Zoho until the user approves.",
				// It calls Zoho, stores the pending authorization and polls in
				// the background: only the active node does.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Responses: map[int][]framework.Response{
					200: {{Description: "OK", Fields: started}},
				},
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback: namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
					da, err := e.ReadDeviceAuthorization(ctx, req.Storage, name)
					if err != nil {
						return respondError(err)
					}
					if da == nil {
						return nil, nil
					}
					return &logical.Response{Data: deviceData(da)}, nil
				}),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
				Summary:      "Where the account's latest device authorization stands.",
				Responses: map[int][]framework.Response{
					200: {{Description: "OK", Fields: state}},
				},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback: namedHandler(func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string) (*logical.Response, error) {
					if err := e.CancelDeviceAuthorization(ctx, req.Storage, name); err != nil {
						return respondError(err)
					}
					return nil, nil
				}),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "cancel"},
				Summary:      "Stop polling a pending device authorization and forget the account's latest one.",
				// It changes storage and the active node's pollers.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis:    "Authorize the account with Zoho's device flow: no redirect URI, no grant code to copy.",
		HelpDescription: deviceHelp,
	}
}

// deviceData renders a device authorization for device/<name> reads.
func deviceData(d *DeviceAuthorization) map[string]interface{} {
	return map[string]interface{}{
		FieldDeviceState:     d.State,
		FieldUserCode:        d.UserCode,
		FieldVerificationURL: d.VerificationURL,
		FieldAccountsURL:     d.AccountsURL,
		FieldStartedAt:       formatTime(d.StartedAt),
		FieldExpiresAt:       formatTime(d.ExpiresAt),
		FieldInterval:        int((d.Interval + time.Second - 1) / time.Second),
		FieldPolls:           d.Polls,
		FieldLastPoll:        formatTime(d.LastPollAt),
		FieldLastPollAnswer:  d.LastPollAnswer,
		FieldEndedAt:         formatTime(d.EndedAt),
	}
}

const deviceHelp = `
Zoho's device authorization flow: the account's user approves in a browser
anywhere, and Vault receives the refresh token itself. No redirect URI is
needed and no grant code is copied.

Configure the account first (client_id, client_secret, data_center or
accounts_url, scopes), then start the flow:

    vault write -f zoho/device/crm

The answer carries user_code and verification_url: the account's user opens
the URL, signs in to Zoho, enters the code and accepts. The code lives about
5 minutes. Meanwhile the engine polls Zoho in the background, at Zoho's
interval (slower after slow_down), follows the user to their data center
when Zoho answers other_dc, and on approval stores the refresh token exactly
as a grant_code write does: a refresh token the account held before is
replaced and revoked at Zoho. The device code itself is never shown.

Reading device/<name> (or status/<name>) says where it stands: pending,
approved, denied, expired, failed or superseded, with Zoho's last answer. An
account whose authorization was denied, expired or failed and that holds no
refresh token is listed by attention/. Writing device/<name> again starts a
new authorization and stops polling the previous one; deleting it stops
polling and forgets it. Deleting the account stops polling too, and any
later change of the account's credentials (a grant_code or refresh_token
written to config/<name>, a new client_secret, client_id, accounts_url or
data_center, revoke/<name>) ends it as superseded: a flow never replaces
credentials newer than itself, and never sends the account's secret to an
accounts server the account no longer names.
`
