package paths

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// issueLease reads creds/a and returns the lease's internal data as Vault
// hands it back after storing it: through JSON, numbers as float64 or, with
// useNumber, as json.Number.
func issueLease(t *testing.T, te *testEnv, useNumber bool) map[string]interface{} {
	t.Helper()
	resp := te.ok(logical.ReadOperation, "creds/a", nil)
	raw, err := json.Marshal(resp.Secret.InternalData)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if useNumber {
		dec.UseNumber()
	}
	var back map[string]interface{}
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	return back
}

func (te *testEnv) revoke(internal map[string]interface{}) (*logical.Response, error) {
	req := te.request(logical.RevokeOperation, "", nil)
	req.Secret = &logical.Secret{InternalData: internal}
	return te.b.HandleRequest(context.Background(), req)
}

func TestLeaseRevocationRoundTrip(t *testing.T) {
	for _, useNumber := range []bool{false, true} {
		te := newTestEnv(t)
		c := testCreds()
		c.Lease.Seq = 1<<40 + 3 // large sequence numbers survive float64
		c.Lease.Generation = 1<<33 + 1
		te.e.creds = c
		internal := issueLease(t, te, useNumber)
		te.e.reset()
		resp, err := te.revoke(internal)
		if err != nil || resp != nil {
			t.Fatalf("revoke: %v %v", resp, err)
		}
		te.wantCalls("RevokeLease")
		if !sameLease(te.e.lease, c.Lease) {
			t.Errorf("useNumber %v: engine revoked\n %+v\nwant %+v", useNumber, te.e.lease, c.Lease)
		}
	}
}

// The lease's internal data holds exactly what revocation needs.
func TestLeaseInternalKeys(t *testing.T) {
	got := leaseInternal(testCreds().Lease)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{leaseAccessToken, leaseAccount, leaseEndsAt, leaseExpiresAt, leaseGeneration, leaseSeq, leaseTokenID}
	sort.Strings(want)
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if got[leaseSeq] != int64(9) || got[leaseExpiresAt] != testCreds().ExpiresAt.Unix() || got[leaseEndsAt] != testCreds().Lease.EndsAt.Unix() {
		t.Errorf("internal data %v", got)
	}
}

func TestParseLeaseInternal(t *testing.T) {
	good := func() map[string]interface{} {
		return map[string]interface{}{
			leaseAccount: "a", leaseAccessToken: "at", leaseTokenID: "t1",
			leaseGeneration: float64(2), leaseExpiresAt: float64(1767225600), leaseSeq: float64(4),
		}
	}
	want := LeaseData{Account: "a", AccessToken: "at", TokenID: "t1", Generation: 2, ExpiresAt: time.Unix(1767225600, 0), Seq: 4}
	got, err := parseLeaseInternal(&logical.Secret{InternalData: good()})
	if err != nil || !sameLease(got, want) {
		t.Fatalf("parse: %+v %v", got, err)
	}

	// Straight from leaseInternal (int64), before any storage.
	if got, err := parseLeaseInternal(&logical.Secret{InternalData: leaseInternal(want)}); err != nil || !sameLease(got, want) {
		t.Errorf("unstored internal data: %+v %v", got, err)
	}

	// Numbers as strings, ints and json.Number; leases made before lease_seq
	// existed read as sequence 0.
	alt := good()
	alt[leaseGeneration] = "2"
	alt[leaseExpiresAt] = json.Number("1767225600")
	alt[leaseSeq] = 4
	if got, err := parseLeaseInternal(&logical.Secret{InternalData: alt}); err != nil || !sameLease(got, want) {
		t.Errorf("alternative number types: %+v %v", got, err)
	}
	old := good()
	delete(old, leaseSeq)
	if got, err := parseLeaseInternal(&logical.Secret{InternalData: old}); err != nil || got.Seq != 0 || got.Generation != 2 {
		t.Errorf("lease without lease_seq: %+v %v", got, err)
	}

	bad := map[string]func(m map[string]interface{}){
		"no account":          func(m map[string]interface{}) { delete(m, leaseAccount) },
		"empty account":       func(m map[string]interface{}) { m[leaseAccount] = "" },
		"account not string":  func(m map[string]interface{}) { m[leaseAccount] = 1.0 },
		"no access token":     func(m map[string]interface{}) { delete(m, leaseAccessToken) },
		"no generation":       func(m map[string]interface{}) { delete(m, leaseGeneration) },
		"generation a bool":   func(m map[string]interface{}) { m[leaseGeneration] = true },
		"no expiry":           func(m map[string]interface{}) { delete(m, leaseExpiresAt) },
		"expiry not a number": func(m map[string]interface{}) { m[leaseExpiresAt] = "tomorrow" },
		"lease_seq garbled":   func(m map[string]interface{}) { m[leaseSeq] = "x" },
	}
	for name, mutate := range bad {
		m := good()
		mutate(m)
		if _, err := parseLeaseInternal(&logical.Secret{InternalData: m}); err == nil {
			t.Errorf("%s: parsed", name)
		}

		// Revocation fails (Vault retries) without asking the engine.
		te := newTestEnv(t)
		m["secret_type"] = SecretTypeAccessToken
		if _, err := te.revoke(m); err == nil {
			t.Errorf("%s: revoked", name)
		}
		te.wantCalls()
	}
	for _, s := range []*logical.Secret{nil, {}} {
		if _, err := parseLeaseInternal(s); err == nil {
			t.Errorf("parsed %#v", s)
		}
	}
}

// An engine failure fails the revocation so that Vault retries it.
func TestLeaseRevocationEngineError(t *testing.T) {
	te := newTestEnv(t)
	te.e.creds = testCreds()
	internal := issueLease(t, te, false)
	te.e.setErr("RevokeLease", logical.CodedError(502, "Zoho did not answer"))
	if _, err := te.revoke(internal); err == nil || err.Error() != "Zoho did not answer" {
		t.Errorf("revoke: %v", err)
	}
	te.e.setErr("RevokeLease", errors.New("storage down"))
	if _, err := te.revoke(internal); err == nil {
		t.Error("revoke succeeded")
	}
}

// Leases are renewable: a renewal answers the engine's TTL and caps Vault's
// increment at the end the lease was given (Vault measures the maximum from
// the lease's issue); the engine's refusal reaches Vault with its status.
func TestLeaseRenewal(t *testing.T) {
	te := newTestEnv(t)
	te.e.creds = testCreds()
	internal := issueLease(t, te, false)
	te.e.reset()
	te.e.renewTTL = 7 * time.Minute
	issued := te.e.creds.Lease.EndsAt.Add(-40 * time.Minute)
	req := te.request(logical.RenewOperation, "", nil)
	req.Secret = &logical.Secret{InternalData: internal, LeaseOptions: logical.LeaseOptions{IssueTime: issued, TTL: time.Hour}}
	resp, err := te.b.HandleRequest(context.Background(), req)
	if err != nil || resp == nil || resp.Secret == nil {
		t.Fatalf("renew: %v %v", resp, err)
	}
	te.wantCalls("RenewLease")
	if !sameLease(te.e.lease, te.e.creds.Lease) {
		t.Errorf("engine renewed\n %+v\nwant %+v", te.e.lease, te.e.creds.Lease)
	}
	if resp.Secret.TTL != 7*time.Minute || resp.Secret.MaxTTL != 40*time.Minute {
		t.Errorf("renewal TTL %s max %s, want 7m and 40m (the lease's end, from its issue)", resp.Secret.TTL, resp.Secret.MaxTTL)
	}

	te.e.reset()
	te.e.setErr("RenewLease", logical.CodedError(400, "read creds/a again"))
	req = te.request(logical.RenewOperation, "", nil)
	req.Secret = &logical.Secret{InternalData: internal, LeaseOptions: logical.LeaseOptions{IssueTime: issued}}
	resp, err = te.b.HandleRequest(context.Background(), req)
	if status, msg := statusOf(t, req, resp, err); status != 400 || !strings.Contains(msg, "read creds/a again") {
		t.Errorf("refused renewal answered %d %q", status, msg)
	}

	s := Secret(te.e)
	if s.Type != SecretTypeAccessToken || !s.Renewable() {
		t.Errorf("secret type %q renewable %v", s.Type, s.Renewable())
	}
	if !reflect.DeepEqual(keysOfFields(s.Fields), keysOfFields(tokenFields())) {
		t.Errorf("lease fields %v", keysOfFields(s.Fields))
	}
}
