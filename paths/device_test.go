package paths

import (
	"context"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
)

// The fake engine's device methods (engine_test.go holds the rest).

func (f *fakeEngine) StartDeviceAuthorization(ctx context.Context, s logical.Storage, name string) (*DeviceAuthorization, error) {
	err := f.record("StartDeviceAuthorization", func() { f.name = name })
	if err != nil {
		return nil, err
	}
	return f.device, nil
}

func (f *fakeEngine) ReadDeviceAuthorization(ctx context.Context, s logical.Storage, name string) (*DeviceAuthorization, error) {
	err := f.record("ReadDeviceAuthorization", func() { f.name = name })
	if err != nil {
		return nil, err
	}
	return f.device, nil
}

func (f *fakeEngine) CancelDeviceAuthorization(ctx context.Context, s logical.Storage, name string) error {
	return f.record("CancelDeviceAuthorization", func() { f.name = name })
}

// testDevice is a pending device authorization with every field set.
func testDevice() *DeviceAuthorization {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	return &DeviceAuthorization{
		State:           DeviceStatePending,
		UserCode:        "BCDF-GHJK",
		VerificationURL: "https://accounts.zoho.eu/oauth/v3/device",
		AccountsURL:     "https://accounts.zoho.eu",
		StartedAt:       started,
		ExpiresAt:       started.Add(5 * time.Minute),
		Interval:        30 * time.Second,
		Polls:           3,
		LastPollAt:      started.Add(90 * time.Second),
		LastPollAnswer:  "authorization_pending",
	}
}

func TestDeviceStartResponse(t *testing.T) {
	te := newTestEnv(t)
	te.e.device = testDevice()
	te.e.device.Interval = 1500 * time.Millisecond // shown rounded up: never poll sooner than Zoho asked
	te.e.device.Warnings = []string{"the account holds a refresh token"}
	resp := te.ok(logical.UpdateOperation, "device/crm_1", nil)
	te.wantCalls("StartDeviceAuthorization")
	if te.e.name != "crm_1" {
		t.Errorf("engine started %q", te.e.name)
	}
	want := map[string]interface{}{
		FieldUserCode:        "BCDF-GHJK",
		FieldVerificationURL: "https://accounts.zoho.eu/oauth/v3/device",
		FieldExpiresAt:       "2026-03-01T11:05:00Z",
		FieldExpiresIn:       300,
		FieldInterval:        2,
	}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Errorf("data:\n got %#v\nwant %#v", resp.Data, want)
	}
	if !reflect.DeepEqual(resp.Warnings, te.e.device.Warnings) {
		t.Errorf("warnings %v", resp.Warnings)
	}
	if resp.Secret != nil {
		t.Error("device/ created a lease")
	}
	schema.ValidateResponse(t, schema.GetResponseSchema(t, te.b.Route("device/a"), logical.UpdateOperation), resp, true)
}

func TestDeviceRead(t *testing.T) {
	te := newTestEnv(t)
	te.e.device = testDevice()
	resp := te.ok(logical.ReadOperation, "device/crm", nil)
	want := map[string]interface{}{
		FieldDeviceState:     DeviceStatePending,
		FieldUserCode:        "BCDF-GHJK",
		FieldVerificationURL: "https://accounts.zoho.eu/oauth/v3/device",
		FieldAccountsURL:     "https://accounts.zoho.eu",
		FieldStartedAt:       "2026-03-01T11:00:00Z",
		FieldExpiresAt:       "2026-03-01T11:05:00Z",
		FieldInterval:        30,
		FieldPolls:           3,
		FieldLastPoll:        "2026-03-01T11:01:30Z",
		FieldLastPollAnswer:  "authorization_pending",
		FieldEndedAt:         "",
	}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Errorf("data:\n got %#v\nwant %#v", resp.Data, want)
	}
	schema.ValidateResponse(t, schema.GetResponseSchema(t, te.b.Route("device/a"), logical.ReadOperation), resp, true)

	// None started: 404, as any absent object.
	te.e.device = nil
	req := te.request(logical.ReadOperation, "device/crm", nil)
	r, err := te.b.HandleRequest(context.Background(), req)
	if status, _ := statusOf(t, req, r, err); status != http.StatusNotFound || r != nil {
		t.Errorf("no authorization: status %d %v, want 404", status, r)
	}
}

func TestDeviceCancel(t *testing.T) {
	te := newTestEnv(t)
	resp := te.ok(logical.DeleteOperation, "device/crm", nil)
	if resp != nil || te.e.name != "crm" {
		t.Errorf("cancel answered %+v for %q", resp, te.e.name)
	}
	te.wantCalls("CancelDeviceAuthorization")
}

func TestDeviceRejectsBadInput(t *testing.T) {
	te := newTestEnv(t)
	te.e.device = testDevice()
	for _, op := range []logical.Operation{logical.UpdateOperation, logical.ReadOperation, logical.DeleteOperation} {
		te.wantBadRequest(op, "device/-a", nil, FieldName)
		te.wantBadRequest(op, "device/a", map[string]interface{}{"scopes": "ZohoCRM.modules.ALL"}, FieldScopes)
	}
	te.wantBadRequest(logical.UpdateOperation, "device/a", map[string]interface{}{"device_code": "x"}, "device_code")
}

func TestDeviceEngineErrors(t *testing.T) {
	te := newTestEnv(t)
	te.e.device = testDevice()
	checkCodedErrors(t, te, "StartDeviceAuthorization", logical.UpdateOperation, "device/a", nil)
	checkCodedErrors(t, te, "ReadDeviceAuthorization", logical.ReadOperation, "device/a", nil)
	checkCodedErrors(t, te, "CancelDeviceAuthorization", logical.DeleteOperation, "device/a", nil)
}

// status/<name> carries the device authorization's fields once one was
// started, and not before.
func TestStatusShowsDeviceAuthorization(t *testing.T) {
	te := newTestEnv(t)
	st := fullStatus()
	te.e.status = st
	resp := te.ok(logical.ReadOperation, "status/a", nil)
	for _, k := range deviceStatusFields {
		if _, ok := resp.Data[k]; ok {
			t.Errorf("status without a device authorization shows %s", k)
		}
	}
	st.Device = testDevice()
	st.Device.State, st.Device.EndedAt = DeviceStateApproved, st.Device.StartedAt.Add(2*time.Minute)
	resp = te.ok(logical.ReadOperation, "status/a", nil)
	want := map[string]interface{}{
		"device_authorization":    DeviceStateApproved,
		"device_user_code":        "BCDF-GHJK",
		"device_verification_url": "https://accounts.zoho.eu/oauth/v3/device",
		"device_expires_at":       "2026-03-01T11:05:00Z",
		"device_last_poll":        "2026-03-01T11:01:30Z",
		"device_last_poll_answer": "authorization_pending",
		"device_ended_at":         "2026-03-01T11:02:00Z",
	}
	if len(want) != len(deviceStatusFields) {
		t.Fatalf("the test names %d fields, deviceStatusFields %d", len(want), len(deviceStatusFields))
	}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("status %s = %#v, want %#v", k, resp.Data[k], v)
		}
	}
	// The list shows them too, per account.
	te.e.statuses = []*AccountStatus{st}
	list := te.ok(logical.ListOperation, "status/", nil)
	if got := list.Data["key_info"].(map[string]interface{})["a"].(map[string]interface{})["device_authorization"]; got != DeviceStateApproved {
		t.Errorf("status list: device_authorization %v", got)
	}
}

// An authorization that ended badly needs an operator while the account has
// no refresh token; a pending or approved one does not.
func TestDeviceAttentionReasons(t *testing.T) {
	for _, c := range []struct {
		state      string
		hasRefresh bool
		want       string
	}{
		{DeviceStatePending, false, ""},
		{DeviceStateApproved, true, ""},
		{DeviceStateDenied, false, ReasonDeviceDenied},
		{DeviceStateExpired, false, ReasonDeviceExpired},
		{DeviceStateFailed, false, ReasonDeviceFailed},
		{DeviceStateDenied, true, ""},
		{DeviceStateExpired, true, ""},
	} {
		st := &AccountStatus{Name: "a", HasRefreshToken: c.hasRefresh, Device: testDevice()}
		st.Device.State = c.state
		got := strings.Join(st.AttentionReasons(), ",")
		if got != c.want || st.NeedsAttention() != (c.want != "") {
			t.Errorf("%s, refresh token %v: reasons %q, want %q", c.state, c.hasRefresh, got, c.want)
		}
	}
	// Through attention/: the reason is listed.
	te := newTestEnv(t)
	st := &AccountStatus{Name: "dev", Device: testDevice()}
	st.Device.State = DeviceStateDenied
	te.e.statuses = []*AccountStatus{st}
	resp := te.ok(logical.ListOperation, "attention/", nil)
	reasons := resp.Data["key_info"].(map[string]interface{})["dev"].(map[string]interface{})["reasons"]
	if !reflect.DeepEqual(reasons, []string{ReasonDeviceDenied}) {
		t.Errorf("attention reasons %v", reasons)
	}
}

// The pending authorization holds the device code: its prefix is seal-wrapped.
func TestDeviceStorageIsSealWrapped(t *testing.T) {
	if !slices.Contains(SealWrapStorage, "device/") {
		t.Errorf("device/ is not seal-wrapped: %v", SealWrapStorage)
	}
}

// README's path reference describes device/<name> and the status fields it
// adds.
func TestReadmeDocumentsDevicePath(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := func(path, op string) string {
		re := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(path) + "` \\| " + op + " \\|(.*)$")
		m := re.FindStringSubmatch(string(raw))
		if m == nil {
			t.Fatalf("README has no %s row for %s", op, path)
		}
		return m[1]
	}
	p := pathDevice(newFakeEngine())
	for op, doc := range map[logical.Operation]string{logical.UpdateOperation: row("device/<name>", "update"), logical.ReadOperation: row("device/<name>", "read")} {
		for k := range p.Operations[op].(*framework.PathOperation).Responses[200][0].Fields {
			if !strings.Contains(doc, "`"+k+"`") {
				t.Errorf("README's %s row for device/<name> does not name the field %s", op, k)
			}
		}
	}
	row("device/<name>", "delete")
	status := row("status/<name>", "read")
	for _, k := range deviceStatusFields {
		if !strings.Contains(status, "`"+k+"`") {
			t.Errorf("README's read row for status/<name> does not name the field %s", k)
		}
	}
	attention := row("attention/", "list")
	for _, r := range []string{ReasonDeviceDenied, ReasonDeviceExpired, ReasonDeviceFailed} {
		if !strings.Contains(attention, "`"+r+"`") {
			t.Errorf("README's attention/ row does not name the reason %s", r)
		}
	}
}
