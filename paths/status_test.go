package paths

import (
	"context"
	"net/http"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func wantHealth(st *AccountStatus) map[string]interface{} {
	full := statusData(st)
	out := map[string]interface{}{}
	for _, k := range []string{
		FieldGrantType, FieldDataCenter, "has_refresh_token", "needs_reauthorization", "token_expires_at", "last_refresh",
		"consecutive_failures", "last_error", "last_error_at", "next_attempt_at", "rate_budget_remaining",
		"live_tokens", "interrupted_exchange_at", "revocation_abandoned_at", "revoked_at",
	} {
		out[k] = full[k]
	}
	return out
}

func TestStatusList(t *testing.T) {
	te := newTestEnv(t)
	b := fullStatus()
	b.Name, b.HasRefreshToken, b.LastError = "b", false, ""
	te.e.statuses = []*AccountStatus{fullStatus(), b}
	resp := te.ok(logical.ListOperation, "status/", nil)
	if !reflect.DeepEqual(resp.Data["keys"], []string{"a", "b"}) {
		t.Errorf("keys %v", resp.Data["keys"])
	}
	info, _ := resp.Data["key_info"].(map[string]interface{})
	if len(info) != 2 {
		t.Fatalf("key_info %v", resp.Data["key_info"])
	}
	for _, st := range te.e.statuses {
		if got := info[st.Name]; !reflect.DeepEqual(got, wantHealth(st)) {
			t.Errorf("key_info[%s]:\n got %#v\nwant %#v", st.Name, got, wantHealth(st))
		}
	}
	// Health only: not the client configuration.
	for _, k := range []string{FieldClientID, FieldRedirectURI, FieldScopes, FieldAccountsURL, FieldSOID} {
		if _, ok := info["a"].(map[string]interface{})[k]; ok {
			t.Errorf("status shows %s", k)
		}
	}
}

func TestStatusListEmptyIs404(t *testing.T) {
	te := newTestEnv(t)
	req := te.request(logical.ListOperation, "status", nil)
	resp, err := te.b.HandleRequest(context.Background(), req)
	if status, _ := statusOf(t, req, resp, err); status != http.StatusNotFound {
		t.Errorf("status %d, want 404 like any empty list", status)
	}
	te.wantCalls("AccountStatuses")
}

func TestStatusRead(t *testing.T) {
	te := newTestEnv(t)
	te.e.status = fullStatus()
	resp := te.ok(logical.ReadOperation, "status/a", nil)
	if te.e.name != "a" || !reflect.DeepEqual(resp.Data, wantHealth(te.e.status)) {
		t.Errorf("status/%s: %#v", te.e.name, resp.Data)
	}
	var keys []string
	for k := range resp.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := append([]string(nil), healthFields...)
	sort.Strings(want)
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v", keys)
	}

	te.e.status = nil
	req := te.request(logical.ReadOperation, "status/b", nil)
	resp, err := te.b.HandleRequest(context.Background(), req)
	if status, _ := statusOf(t, req, resp, err); status != http.StatusNotFound {
		t.Errorf("missing account: status %d, want 404", status)
	}
}

func TestStatusRejectsBadInput(t *testing.T) {
	te := newTestEnv(t)
	te.wantBadRequest(logical.ReadOperation, "status/.a", nil, FieldName)
	te.wantBadRequest(logical.ReadOperation, "status/a", map[string]interface{}{"verbose": true}, "verbose")
}

func TestStatusEngineErrors(t *testing.T) {
	te := newTestEnv(t)
	checkCodedErrors(t, te, "ReadAccount", logical.ReadOperation, "status/a", nil)
	checkCodedErrors(t, te, "AccountStatuses", logical.ListOperation, "status/", nil)
}

// attention/ lists the accounts the engine says need an operator, with their
// health and the reasons.
func TestAttentionList(t *testing.T) {
	te := newTestEnv(t)
	failing := fullStatus()
	failing.Name, failing.NeedsReauthorization, failing.InterruptedExchangeAt, failing.RevocationAbandonedAt = "f", false, time.Time{}, time.Time{}
	te.e.statuses = []*AccountStatus{fullStatus(), failing}
	resp := te.ok(logical.ListOperation, "attention/", nil)
	if !reflect.DeepEqual(resp.Data["keys"], []string{"a", "f"}) {
		t.Fatalf("keys %v", resp.Data["keys"])
	}
	info := resp.Data["key_info"].(map[string]interface{})
	want := map[string][]string{
		"a": {ReasonNeedsReauthorization, ReasonFailing, ReasonBackingOff, ReasonInterruptedExchange, ReasonRevocationAbandoned},
		"f": {ReasonFailing, ReasonBackingOff},
	}
	for name, reasons := range want {
		got := info[name].(map[string]interface{})
		if !reflect.DeepEqual(got["reasons"], reasons) {
			t.Errorf("%s: reasons %v, want %v", name, got["reasons"], reasons)
		}
		if got["last_error"] == nil || got["client_id"] != nil {
			t.Errorf("%s: key_info %v: want the health, not the client", name, got)
		}
	}
	healthy := &AccountStatus{Name: "h", HasRefreshToken: true}
	if healthy.NeedsAttention() {
		t.Fatal("a healthy account needs attention")
	}
}
