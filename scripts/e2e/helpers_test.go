package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// eventually polls f every 100 ms until it returns nil, failing the test with
// f's last error once timeout has passed.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zohoTokenRe matches the shape of the simulator's tokens (access and
// refresh alike): 1000.<32 hex>.<32 hex>.
var zohoTokenRe = regexp.MustCompile(`1000\.[0-9a-f]{32}\.[0-9a-f]{32}`)

// account is one Zoho account for one test: its own simulator client, so its
// counters and Zoho's per-refresh-token limits are its own.
type account struct {
	name   string
	sim    *zohosim.Server
	client zohosim.Client
	scopes []string
}

func newAccount(t *testing.T, s *zohosim.Server, name string, scopes ...string) *account {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"ZohoCRM.modules.ALL", "ZohoCRM.users.READ"}
	}
	return &account{name: name, sim: s, client: s.RegisterClient(zohosim.Client{DC: "us"}), scopes: scopes}
}

// grantCode mints a Self Client grant code, as Zoho's API console does.
func (a *account) grantCode(t *testing.T) string {
	t.Helper()
	code, err := a.sim.SelfClientCode(a.client.ID, a.name+"@example.com", a.scopes, 3*time.Minute)
	if err != nil {
		t.Fatalf("self-client code for %s: %v", a.name, err)
	}
	return code
}

// configData is a complete config/<name> write with a fresh grant code.
func (a *account) configData(t *testing.T) map[string]interface{} {
	t.Helper()
	return map[string]interface{}{
		"client_id":     a.client.ID,
		"client_secret": a.client.Secret,
		"data_center":   "us",
		"accounts_url":  a.sim.AccountsURL("us"),
		"scopes":        strings.Join(a.scopes, ","),
		"grant_code":    a.grantCode(t),
	}
}

// configure writes the account through the HTTP API.
func (a *account) configure(t *testing.T, c *api.Client) {
	t.Helper()
	if _, err := c.Logical().Write(mountPath+"/config/"+a.name, a.configData(t)); err != nil {
		t.Fatalf("writing config/%s: %v", a.name, err)
	}
}

func (a *account) counters() zohosim.Counters { return a.sim.ClientCounters(a.client.ID) }

// expectCounters compares the counters that matter for token spending.
func (a *account) expectCounters(t *testing.T, exchanges, refreshes int64) {
	t.Helper()
	c := a.counters()
	if c.Exchanges != exchanges || c.Refreshes != refreshes {
		t.Fatalf("account %s at the simulator: %d exchanges, %d refreshes (token requests %d); want %d exchanges, %d refreshes",
			a.name, c.Exchanges, c.Refreshes, c.TokenRequests, exchanges, refreshes)
	}
}

// whoami calls the simulator's protected resource with token and returns
// the status and decoded body.
func whoami(t *testing.T, s *zohosim.Server, token string) (int, map[string]interface{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIDomain("us")+"/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Zoho-oauthtoken "+token)
	resp, err := loopbackHTTP.Do(req)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body map[string]interface{}
	_ = json.Unmarshal(data, &body)
	return resp.StatusCode, body
}

// expectAccepted fails unless the simulator's API accepts token for a's client.
func (a *account) expectAccepted(t *testing.T, token string) {
	t.Helper()
	status, body := whoami(t, a.sim, token)
	if status != http.StatusOK {
		t.Fatalf("whoami with the token of %s: HTTP %d %v; want 200", a.name, status, body)
	}
	if body["client_id"] != a.client.ID {
		t.Fatalf("whoami with the token of %s: client_id %v; want %s", a.name, body["client_id"], a.client.ID)
	}
}

// tokenDead reports nil once the simulator rejects token.
func tokenDead(t *testing.T, s *zohosim.Server, token string) error {
	t.Helper()
	if status, _ := whoami(t, s, token); status != http.StatusUnauthorized {
		return fmt.Errorf("whoami still answers HTTP %d for the token", status)
	}
	if s.AccessTokenValid(token) {
		return errors.New("the simulator still holds the token as valid")
	}
	return nil
}

// creds is a decoded creds/<name> read.
type creds struct {
	leaseID       string
	leaseDuration int
	renewable     bool
	accessToken   string
	apiDomain     string
	tokenType     string
	expiresAt     time.Time
	scopes        []string
}

func parseCreds(t *testing.T, s *api.Secret) creds {
	t.Helper()
	if s == nil || s.Data == nil {
		t.Fatalf("creds read returned no data: %#v", s)
	}
	c := creds{leaseID: s.LeaseID, leaseDuration: s.LeaseDuration, renewable: s.Renewable}
	c.accessToken, _ = s.Data["access_token"].(string)
	c.apiDomain, _ = s.Data["api_domain"].(string)
	c.tokenType, _ = s.Data["token_type"].(string)
	exp, _ := s.Data["expires_at"].(string)
	var err error
	if c.expiresAt, err = time.Parse(time.RFC3339, exp); err != nil {
		t.Fatalf("creds expires_at %q: %v", exp, err)
	}
	c.scopes = stringList(s.Data["scopes"])
	return c
}

// stringList reads a JSON list (or comma-separated string) of strings.
func stringList(v interface{}) []string {
	switch x := v.(type) {
	case []interface{}:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case []string:
		return x
	case string:
		if x == "" {
			return nil
		}
		return strings.Split(x, ",")
	}
	return nil
}

// readCreds reads creds/<name> with c and checks the response's shape.
func readCreds(t *testing.T, c *api.Client, a *account) creds {
	t.Helper()
	s, err := c.Logical().Read(mountPath + "/creds/" + a.name)
	if err != nil {
		t.Fatalf("reading creds/%s: %v", a.name, err)
	}
	cr := parseCreds(t, s)
	checkCreds(t, a, cr)
	return cr
}

// checkCreds asserts what every creds/ answer must satisfy.
func checkCreds(t *testing.T, a *account, cr creds) {
	t.Helper()
	if !zohoTokenRe.MatchString(cr.accessToken) {
		t.Fatalf("access_token %q does not look like a Zoho token", cr.accessToken)
	}
	if cr.apiDomain != a.sim.APIDomain("us") {
		t.Fatalf("api_domain %q; want %q", cr.apiDomain, a.sim.APIDomain("us"))
	}
	if cr.tokenType == "" {
		t.Fatalf("token_type is empty")
	}
	if !strings.HasPrefix(cr.leaseID, mountPath+"/creds/"+a.name+"/") {
		t.Fatalf("lease_id %q is not under %s/creds/%s/", cr.leaseID, mountPath, a.name)
	}
	if !cr.renewable {
		t.Fatalf("lease %s is not renewable: Vault Agent's cache could not share it", cr.leaseID)
	}
	if cr.leaseDuration <= 0 {
		t.Fatalf("lease %s has TTL %d", cr.leaseID, cr.leaseDuration)
	}
	// The lease never outlives the token (whole seconds; expires_at is
	// truncated to the second, so allow that one second).
	if until := time.Until(cr.expiresAt) + time.Second; time.Duration(cr.leaseDuration)*time.Second > until {
		t.Fatalf("lease TTL %ds outlives the token (expires_at %s, %s away)", cr.leaseDuration, cr.expiresAt.Format(time.RFC3339), time.Until(cr.expiresAt).Round(time.Second))
	}
	if strings.Join(cr.scopes, ",") != strings.Join(a.scopes, ",") {
		t.Fatalf("scopes %v; want %v", cr.scopes, a.scopes)
	}
}

// statusOf returns the HTTP status of an API error (0 if err is not one).
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// expectStatus fails unless err is an API error with status whose message
// contains every one of words.
func expectStatus(t *testing.T, what string, err error, status int, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded; want HTTP %d", what, status)
	}
	if got := statusOf(err); got != status {
		t.Fatalf("%s: %v (HTTP %d); want HTTP %d", what, err, got, status)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: error %q does not mention %q", what, err, w)
		}
	}
}

// leaseGone reports nil once Vault no longer knows the lease.
func leaseGone(c *api.Client, leaseID string) error {
	s, err := c.Sys().Lookup(leaseID)
	if err == nil {
		return fmt.Errorf("lease %s still exists (ttl %v)", leaseID, s.Data["ttl"])
	}
	if statusOf(err) == http.StatusBadRequest || statusOf(err) == http.StatusNotFound {
		return nil
	}
	return fmt.Errorf("looking up lease %s: %v", leaseID, err)
}

func contains(list []string, v string) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}
