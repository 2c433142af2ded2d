package paths

import (
	"reflect"
	"testing"

	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestAuthURLResponse(t *testing.T) {
	te := newTestEnv(t)
	te.e.auth = testAuthorization()
	resp := te.ok(logical.ReadOperation, "auth-url/crm_1", nil)
	if te.e.name != "crm_1" {
		t.Errorf("engine started %q", te.e.name)
	}
	want := map[string]interface{}{
		"auth_url":       "https://accounts.zoho.eu/oauth/v2/auth?client_id=1000.CLIENT&state=st4te",
		"state":          "st4te",
		FieldRedirectURI: "https://vault.example.com/v1/zoho/callback",
		FieldExpiresAt:   "2026-03-01T20:10:00Z",
	}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Errorf("data:\n got %#v\nwant %#v", resp.Data, want)
	}
	if resp.Secret != nil {
		t.Error("auth-url created a lease")
	}
	schema.ValidateResponse(t, schema.GetResponseSchema(t, te.b.Route("auth-url/a"), logical.ReadOperation), resp, true)
}

func TestAuthURLRejectsBadInput(t *testing.T) {
	te := newTestEnv(t)
	te.wantBadRequest(logical.ReadOperation, "auth-url/_a_/", nil, FieldName)
	te.wantBadRequest(logical.ReadOperation, "auth-url/a", map[string]interface{}{"scopes": "x.y.Z"}, FieldScopes)
}

func TestAuthURLEngineErrors(t *testing.T) {
	checkCodedErrors(t, newTestEnv(t), "StartAuthorization", logical.ReadOperation, "auth-url/a", nil)
}
