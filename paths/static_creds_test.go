package paths

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
)

// static-creds/ answers the token with no lease: the engine is asked to hold
// it until it expires, and the answer carries what Vault Agent and the
// Vault Secrets Operator read to know when to come back, in the types they
// parse (whole seconds as JSON integers, the rotation time in RFC 3339).
func TestStaticCredsResponse(t *testing.T) {
	te := newTestEnv(t)
	c := testCreds()
	c.TTL = 2501 * time.Second
	te.e.creds = c
	resp := te.ok(logical.ReadOperation, "static-creds/acc-1", map[string]interface{}{FieldMinTTL: "20m"})
	if te.e.hold != HoldUntilExpiry || te.e.name != "acc-1" || te.e.minTTL != 20*time.Minute {
		t.Fatalf("engine asked for %q min_ttl %s hold %v, want acc-1, 20m, HoldUntilExpiry", te.e.name, te.e.minTTL, te.e.hold)
	}
	if resp.Secret != nil {
		t.Fatalf("static-creds/ created a lease: %+v", resp.Secret)
	}
	want := map[string]interface{}{
		FieldAccessToken:       "1000.access-token",
		FieldAPIDomain:         "https://www.zohoapis.in",
		FieldTokenType:         "Bearer",
		FieldExpiresAt:         "2026-03-01T07:30:00Z",
		FieldScopes:            []string{"ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"},
		FieldTokenID:           "0123456789abcdef01234567",
		FieldTTL:               int64(2501),
		FieldRotationPeriod:    int64(3600),
		FieldLastVaultRotation: "2026-03-01T06:30:00Z",
	}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Errorf("data:\n got %#v\nwant %#v", resp.Data, want)
	}
	schema.ValidateResponse(t, schema.GetResponseSchema(t, te.b.Route("static-creds/a"), logical.ReadOperation), resp, true)

	raw, err := json.Marshal(resp.Data)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]json.RawMessage
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if string(back[FieldTTL]) != "2501" || string(back[FieldRotationPeriod]) != "3600" {
		t.Errorf("ttl %s rotation_period %s on the wire, want the integers 2501 and 3600", back[FieldTTL], back[FieldRotationPeriod])
	}
	if _, err := time.Parse(time.RFC3339Nano, resp.Data[FieldLastVaultRotation].(string)); err != nil {
		t.Errorf("last_vault_rotation: %v", err)
	}

	// creds/ still asks for a lease.
	te.ok(logical.ReadOperation, "creds/acc-1", nil)
	if te.e.hold != HoldByLease {
		t.Errorf("creds/ asked the engine for hold %v, want HoldByLease", te.e.hold)
	}
}

// Bad input is refused as on creds/, before the engine is asked.
func TestStaticCredsBadInput(t *testing.T) {
	te := newTestEnv(t)
	te.wantBadRequest(logical.ReadOperation, "static-creds/acc-1", map[string]interface{}{FieldRejected: "1000.abc"}, FieldRejected)
	te.wantBadRequest(logical.ReadOperation, "static-creds/acc-1", map[string]interface{}{FieldMinTTL: "-1s"}, FieldMinTTL)
	te.wantBadRequest(logical.ReadOperation, "static-creds/a..b", nil, FieldName)
	te.wantBadRequest(logical.ReadOperation, "static-creds/acc-1", map[string]interface{}{"min_tll": "1m"}, "min_tll")
	checkCodedErrors(t, newTestEnv(t), "IssueCreds", logical.ReadOperation, "static-creds/a", nil)
}
