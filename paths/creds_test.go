package paths

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestCredsRejectsBadInput(t *testing.T) {
	cases := []struct {
		name  string
		path  string
		data  map[string]interface{}
		field string
	}{
		{"bad name", "creds/a..", nil, FieldName},
		{"name with slash", "creds/a/b", nil, FieldName},
		{"negative min_ttl", "creds/a", map[string]interface{}{FieldMinTTL: "-1s"}, FieldMinTTL},
		{"min_ttl beyond a day", "creds/a", map[string]interface{}{FieldMinTTL: "24h1s"}, FieldMinTTL},
		{"min_ttl not a duration", "creds/a", map[string]interface{}{FieldMinTTL: "soon"}, FieldMinTTL},
		{"negative min_ttl in seconds", "creds/a", map[string]interface{}{FieldMinTTL: -60}, FieldMinTTL},
		{"min_ttl overflowing", "creds/a", map[string]interface{}{FieldMinTTL: 100000000000}, FieldMinTTL},
		{"unknown field", "creds/a", map[string]interface{}{"ttl": "1h"}, "ttl"},
		{"rejected empty", "creds/a", map[string]interface{}{FieldRejected: ""}, FieldRejected},
		{"rejected too short", "creds/a", map[string]interface{}{FieldRejected: "0123456789abcdef"}, FieldRejected},
		{"rejected too long", "creds/a", map[string]interface{}{FieldRejected: "0123456789abcdef012345678"}, FieldRejected},
		{"rejected upper case", "creds/a", map[string]interface{}{FieldRejected: "0123456789ABCDEF01234567"}, FieldRejected},
		{"rejected not hex", "creds/a", map[string]interface{}{FieldRejected: "0123456789abcdef0123456z"}, FieldRejected},
		{"rejected is the access token", "creds/a", map[string]interface{}{FieldRejected: "1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef"}, FieldRejected},
	}
	te := newTestEnv(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			te.t = t
			te.wantBadRequest(logical.ReadOperation, c.path, c.data, c.field)
		})
	}
}

func TestCredsMinTTL(t *testing.T) {
	te := newTestEnv(t)
	te.e.creds = testCreds()
	for _, c := range []struct {
		given interface{}
		want  time.Duration
	}{
		{nil, 0},
		{"30m", 30 * time.Minute},
		{600, 10 * time.Minute},
		{"3600", time.Hour},
		{json.Number("90"), 90 * time.Second},
		{"24h", 24 * time.Hour},
	} {
		data := map[string]interface{}{}
		if c.given != nil {
			data[FieldMinTTL] = c.given
		}
		te.ok(logical.ReadOperation, "creds/acc-1", data)
		if te.e.name != "acc-1" || te.e.minTTL != c.want {
			t.Errorf("min_ttl=%v: engine got %q %s, want %s", c.given, te.e.name, te.e.minTTL, c.want)
		}
	}
}

func TestCredsResponse(t *testing.T) {
	te := newTestEnv(t)
	c := testCreds()
	te.e.creds = c
	resp := te.ok(logical.ReadOperation, "creds/a", nil)

	want := map[string]interface{}{
		FieldAccessToken: "1000.access-token",
		FieldAPIDomain:   "https://www.zohoapis.in",
		FieldTokenType:   "Bearer",
		FieldExpiresAt:   "2026-03-01T07:30:00Z",
		FieldScopes:      []string{"ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"},
		FieldTokenID:     c.TokenID,
	}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Errorf("data:\n got %#v\nwant %#v", resp.Data, want)
	}
	schema.ValidateResponse(t, schema.GetResponseSchema(t, te.b.Route("creds/a"), logical.ReadOperation), resp, true)

	s := resp.Secret
	if s == nil {
		t.Fatal("no lease")
	}
	if s.TTL != c.TTL || s.MaxTTL != c.TTL || !s.Renewable {
		t.Errorf("lease TTL %s max %s renewable %v, want %s, %s, renewable", s.TTL, s.MaxTTL, s.Renewable, c.TTL, c.TTL)
	}
	if s.InternalData["secret_type"] != SecretTypeAccessToken {
		t.Errorf("secret type %v", s.InternalData["secret_type"])
	}

	// Vault stores the lease as JSON; revocation must read back what the
	// engine recorded.
	raw, err := json.Marshal(s.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]interface{}
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got, err := parseLeaseInternal(&logical.Secret{InternalData: back})
	if err != nil {
		t.Fatal(err)
	}
	if !sameLease(got, c.Lease) {
		t.Errorf("lease round trip:\n got %+v\nwant %+v", got, c.Lease)
	}

	// Lease bookkeeping is internal: none of it is in the data (token_id is,
	// on purpose: readers report a rejected token by it).
	for _, k := range []string{leaseGeneration, leaseSeq, leaseAccount, "secret_type"} {
		if _, ok := resp.Data[k]; ok {
			t.Errorf("internal %s in the response data", k)
		}
	}
}

func sameLease(a, b LeaseData) bool {
	return a.Account == b.Account && a.AccessToken == b.AccessToken && a.TokenID == b.TokenID &&
		a.Generation == b.Generation && a.Seq == b.Seq && a.ExpiresAt.Equal(b.ExpiresAt) && a.EndsAt.Equal(b.EndsAt)
}

// The lease TTL is the engine's, whatever it is: never the mount's default.
func TestCredsLeaseTTLIsTheEngines(t *testing.T) {
	te := newTestEnv(t)
	for _, ttl := range []time.Duration{time.Second, 59 * time.Minute} {
		c := testCreds()
		c.TTL = ttl
		te.e.creds = c
		resp := te.ok(logical.ReadOperation, "creds/a", nil)
		if resp.Secret.TTL != ttl || resp.Secret.MaxTTL != ttl {
			t.Errorf("lease TTL %s max %s, want %s", resp.Secret.TTL, resp.Secret.MaxTTL, ttl)
		}
	}
}

func TestCredsEngineErrors(t *testing.T) {
	checkCodedErrors(t, newTestEnv(t), "IssueCreds", logical.ReadOperation, "creds/a", nil)
	checkCodedErrors(t, newTestEnv(t), "ReplaceRejectedCreds", logical.ReadOperation, "creds/a",
		map[string]interface{}{FieldRejected: "0123456789abcdef01234567"})
}

// rejected= goes to ReplaceRejectedCreds with min_ttl; without it the read is
// an ordinary IssueCreds. A malformed one reaches no engine method.
func TestCredsRejected(t *testing.T) {
	te := newTestEnv(t)
	te.e.creds = testCreds()
	id := "89abcdef0123456789abcdef"
	resp := te.ok(logical.ReadOperation, "creds/acc-1", map[string]interface{}{FieldRejected: id, FieldMinTTL: "10m"})
	if got := te.e.calls[len(te.e.calls)-1]; got != "ReplaceRejectedCreds" || te.e.name != "acc-1" || te.e.rejected != id || te.e.minTTL != 10*time.Minute {
		t.Fatalf("engine got %s(%q, %q, %s)", got, te.e.name, te.e.rejected, te.e.minTTL)
	}
	if resp.Data[FieldTokenID] != te.e.creds.TokenID || resp.Secret == nil {
		t.Fatalf("answer %#v", resp.Data)
	}
	te.ok(logical.ReadOperation, "creds/acc-1", nil)
	if got := te.e.calls[len(te.e.calls)-1]; got != "IssueCreds" {
		t.Fatalf("a read without rejected= called %s", got)
	}
	// wantBadRequest fails if any engine method is called.
	te.wantBadRequest(logical.ReadOperation, "creds/acc-1", map[string]interface{}{FieldRejected: "1000.abc"}, FieldRejected)
}
