package paths

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRevokeAccount(t *testing.T) {
	te := newTestEnv(t)
	resp := te.ok(logical.UpdateOperation, "revoke/a-1", nil)
	if resp != nil || te.e.name != "a-1" {
		t.Errorf("revoke answered %+v for %q", resp, te.e.name)
	}
	te.wantCalls("RevokeAccount")

	te.e.result = &WriteResult{Warnings: []string{"Zoho did not confirm the revocation"}}
	resp = te.ok(logical.UpdateOperation, "revoke/a-1", nil)
	if resp == nil || !reflect.DeepEqual(resp.Warnings, te.e.result.Warnings) || len(resp.Data) != 0 {
		t.Errorf("warnings response %+v", resp)
	}
}

func TestRevokeRejectsBadInput(t *testing.T) {
	te := newTestEnv(t)
	te.wantBadRequest(logical.UpdateOperation, "revoke/a-", nil, FieldName)
	te.wantBadRequest(logical.UpdateOperation, "revoke/a", map[string]interface{}{"force": true}, "force")
}

// Only a write revokes: a read must not.
func TestRevokeIsWriteOnly(t *testing.T) {
	te := newTestEnv(t)
	if _, err := te.do(logical.ReadOperation, "revoke/a", nil); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Errorf("read: %v", err)
	}
	te.wantCalls()
}

func TestRevokeEngineErrors(t *testing.T) {
	checkCodedErrors(t, newTestEnv(t), "RevokeAccount", logical.UpdateOperation, "revoke/a", nil)
}
