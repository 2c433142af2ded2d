package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestStatusList(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	e.account("b", nil)
	c := e.newClient("us")
	e.must(logical.CreateOperation, "config/c", map[string]interface{}{"client_id": c.ID, "client_secret": c.Secret})
	resp := e.must(logical.ListOperation, "status/", nil)
	keys := resp.Data["keys"].([]string)
	info := resp.Data["key_info"].(map[string]interface{})
	if len(keys) != 3 || len(info) != 3 {
		t.Fatalf("status list: %v", resp.Data)
	}
	a := info["a"].(map[string]interface{})
	if a["has_refresh_token"] != true || a["rate_budget_remaining"] != 9 || a["token_expires_at"] == "" {
		t.Fatalf("status of a: %v", a)
	}
	if info["c"].(map[string]interface{})["has_refresh_token"] != false {
		t.Fatal("c has no token")
	}
	one := e.must(logical.ReadOperation, "status/b", nil)
	if one.Data["live_tokens"] != 1 {
		t.Fatalf("status/b: %v", one.Data)
	}
	if _, ok := one.Data["client_id"]; ok {
		t.Fatal("status shows only health")
	}
}
