package paths

import (
	"net/http"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestMetrics(t *testing.T) {
	te := newTestEnv(t)
	te.e.metrics = []byte("zoho_refreshes_total 3\n")
	for _, c := range []struct {
		given interface{}
		want  bool
	}{
		{nil, false},
		{"true", true},
		{true, true},
		{"false", false},
	} {
		data := map[string]interface{}{}
		if c.given != nil {
			data["per_account"] = c.given
		}
		resp := te.ok(logical.ReadOperation, "metrics", data)
		if te.e.perAccount != c.want {
			t.Errorf("per_account=%v reached the engine as %v", c.given, te.e.perAccount)
		}
		if resp.Data[logical.HTTPStatusCode] != http.StatusOK ||
			resp.Data[logical.HTTPContentType] != "text/plain; version=0.0.4" ||
			string(resp.Data[logical.HTTPRawBody].([]byte)) != "zoho_refreshes_total 3\n" {
			t.Errorf("response %#v", resp.Data)
		}
	}
}

func TestMetricsRejectsBadInput(t *testing.T) {
	te := newTestEnv(t)
	te.wantBadRequest(logical.ReadOperation, "metrics", map[string]interface{}{"per_account": "maybe"}, "per_account")
	te.wantBadRequest(logical.ReadOperation, "metrics", map[string]interface{}{"format": "json"}, "format")
}

func TestMetricsEngineErrors(t *testing.T) {
	checkCodedErrors(t, newTestEnv(t), "Metrics", logical.ReadOperation, "metrics", nil)
}
