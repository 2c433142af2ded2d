package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

// cachingAgent is a real `vault agent` with auto-auth, a lease cache and an
// API proxy listener: the standard way to put one Agent in front of many
// processes.
type cachingAgent struct {
	addr string
	proc *vaultproc.Process
}

// startAgent runs a real `vault agent` against v. It logs in with a token
// (token_file auto-auth) allowed only to read a's creds/ path; rest returns
// the rest of its configuration, given the Agent's private directory. The
// Agent is killed, and its log shown on failure, when the test ends.
func startAgent(t *testing.T, v *vaultServer, c *api.Client, a *account, rest func(dir string) string) *vaultproc.Process {
	t.Helper()
	return startAgentOn(t, v, c, a, "creds", rest)
}

// startAgentOn is startAgent with a token that may read only a's account
// under prefix (creds or static-creds).
func startAgentOn(t *testing.T, v *vaultServer, c *api.Client, a *account, prefix string, rest func(dir string) string) *vaultproc.Process {
	t.Helper()
	policy := "zoho-agent-" + prefix + "-" + a.name
	if err := c.Sys().PutPolicy(policy, `path "`+mountPath+`/`+prefix+`/`+a.name+`" { capabilities = ["read"] }`); err != nil {
		t.Fatalf("writing policy: %v", err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, TTL: "30m", DisplayName: "agent"})
	if err != nil {
		t.Fatalf("creating the agent's token: %v", err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "vault-token")
	if err := writeFile(tokenFile, tok.Auth.ClientToken+"\n", 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`vault {
  address = %q
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = %q
    }
  }
}
`, v.Addr, tokenFile) + rest(dir)
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := writeFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "agent.log")
	proc, err := vaultproc.StartProcess(vaultBin, []string{"agent", "-config=" + cfgPath, "-log-level=debug"}, vaultproc.Env(home), logPath)
	if err != nil {
		t.Fatalf("starting vault agent: %v", err)
	}
	t.Cleanup(func() {
		proc.Kill()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("--- vault agent log ---\n%s", lastLines(string(data), 300))
		}
	})
	return proc
}

// startTokenAgent runs an Agent whose template renders a's access token, read
// from prefix (creds or static-creds), to a file; it waits for the first
// render and returns it with a reader of the file (renderedToken).
func startTokenAgent(t *testing.T, v *vaultServer, c *api.Client, a *account, prefix string) (first string, read func() (string, error)) {
	t.Helper()
	var rendered string
	agent := startAgentOn(t, v, c, a, prefix, func(dir string) string {
		rendered = filepath.Join(dir, "zoho-token")
		return fmt.Sprintf(`template_config {
  exit_on_retry_failure = true
}
template {
  contents    = "{{ with secret \"%s/%s/%s\" }}{{ .Data.access_token }}{{ end }}"
  destination = %q
  perms       = "0600"
}
`, mountPath, prefix, a.name, rendered)
	})
	read = func() (string, error) { return renderedToken(agent, rendered) }
	eventually(t, 30*time.Second, func() error {
		var err error
		first, err = read()
		return err
	})
	return first, read
}

// renderedToken reads the token an Agent template rendered to path: an error
// while the file is missing or holds anything but one Zoho token, or once the
// Agent has exited.
func renderedToken(agent *vaultproc.Process, path string) (string, error) {
	if gone, _ := agent.Exited(); gone {
		return "", errors.New("vault agent exited")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if !zohoTokenRe.MatchString(s) || len(s) != len(zohoTokenRe.FindString(s)) {
		return "", fmt.Errorf("rendered file holds %q", s)
	}
	return s, nil
}

// startCachingAgent runs an Agent with a lease cache and an API proxy
// listener in front of a's creds/ path.
func startCachingAgent(t *testing.T, v *vaultServer, c *api.Client, a *account) *cachingAgent {
	t.Helper()
	port, err := vaultproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	proc := startAgent(t, v, c, a, func(string) string {
		return fmt.Sprintf(`cache {}
api_proxy {
  use_auto_auth_token = true
}
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, addr)
	})
	ag := &cachingAgent{addr: "http://" + addr, proc: proc}
	eventually(t, 30*time.Second, func() error {
		_, err := ag.read(a)
		return err
	})
	return ag
}

// read is one application read of the account's token through the Agent,
// without a Vault token of its own.
func (ag *cachingAgent) read(a *account) (string, error) {
	if gone, _ := ag.proc.Exited(); gone {
		return "", errors.New("vault agent exited")
	}
	cfg := api.DefaultConfig()
	cfg.Address = ag.addr
	cfg.MaxRetries = 0
	cfg.Timeout = 10 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		return "", err
	}
	c.ClearToken()
	s, err := c.Logical().Read(mountPath + "/creds/" + a.name)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", errors.New("no secret")
	}
	tok, _ := s.Data["access_token"].(string)
	if !zohoTokenRe.MatchString(tok) {
		return "", fmt.Errorf("access_token %q", tok)
	}
	return tok, nil
}

// describeLeases logs when each of the account's leases was issued and when
// it ends, for a failure message.
func describeLeases(t *testing.T, c *api.Client, a *account) {
	t.Helper()
	for _, id := range leaseIDs(t, c, a) {
		full := mountPath + "/creds/" + a.name + "/" + id
		s, err := c.Sys().Lookup(full)
		if err != nil {
			t.Logf("lease %s: lookup failed: %v", id, err)
			continue
		}
		t.Logf("lease %s: issued %v, last renewed %v, expires %v, ttl %v", id, s.Data["issue_time"], s.Data["last_renewal"], s.Data["expire_time"], s.Data["ttl"])
	}
	t.Logf("now %s", time.Now().UTC().Format(time.RFC3339Nano))
}

func leaseIDs(t *testing.T, c *api.Client, a *account) []string {
	t.Helper()
	list, err := c.Logical().List("sys/leases/lookup/" + mountPath + "/creds/" + a.name + "/")
	if err != nil {
		t.Fatalf("listing leases: %v", err)
	}
	if list == nil {
		return nil
	}
	return stringList(list.Data["keys"])
}

// TestAgentCacheSharesOneLease: 20 applications reading 200 times each
// through one caching Agent cost one Vault lease and one Zoho token.
func TestAgentCacheSharesOneLease(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	a := newAccount(t, sim, "agentcache")
	a.configure(t, c)
	ag := startCachingAgent(t, v, c, a)

	const clients, reads = 20, 200
	var mu sync.Mutex
	tokens := map[string]int{}
	var errs []error
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < reads; j++ {
				tok, err := ag.read(a)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					tokens[tok]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d reads through the Agent failed, first: %v", len(errs), clients*reads, errs[0])
	}
	if len(tokens) != 1 {
		t.Fatalf("the applications got %d different tokens, want 1", len(tokens))
	}
	for tok := range tokens {
		a.expectAccepted(t, tok)
	}
	if ids := leaseIDs(t, c, a); len(ids) != 1 {
		t.Fatalf("%d Vault leases under %s/creds/%s/ after %d reads through the Agent, want 1", len(ids), mountPath, a.name, clients*reads+1)
	}
	if got := a.counters(); got.TokenRequests != 1 {
		t.Fatalf("Zoho minted tokens beyond the exchange: %+v", got)
	}
	t.Logf("%d reads through one caching Agent: 1 lease, 1 token", clients*reads)
}

// TestAgentCacheMovesToTheNewToken: with short Zoho tokens, applications
// behind a caching Agent get the refreshed token before the old one expires,
// and never an expired one.
func TestAgentCacheMovesToTheNewToken(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	const tokenTTL = 40 * time.Second
	zs := shortTokenSim(t, tokenTTL)
	a := newAccount(t, zs, "agentmove")
	a.configure(t, c)
	ag := startCachingAgent(t, v, c, a)

	// Read every 200 ms for two token lifetimes; every answer must be alive
	// at Zoho when it is handed out.
	seen := map[string]time.Time{}
	var order []string
	deadline := time.Now().Add(2*tokenTTL + 10*time.Second)
	for time.Now().Before(deadline) {
		tok, err := ag.read(a)
		if err != nil {
			t.Fatalf("read through the Agent: %v", err)
		}
		if status, _ := whoami(t, zs, tok); status != 200 {
			t.Fatalf("the Agent handed out a token Zoho no longer accepts (token #%d)", len(order))
		}
		if _, ok := seen[tok]; !ok {
			seen[tok] = time.Now()
			order = append(order, tok)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, tok := range order {
		t.Logf("token #%d first handed out %s after the first", i+1, seen[tok].Sub(seen[order[0]]).Round(time.Millisecond))
	}
	if len(order) < 2 {
		t.Fatalf("the applications never got a second token in %s", 2*tokenTTL)
	}
	got := a.counters()
	// The Agent's cache drops a lease a little before it ends (when renewing
	// stops extending it) and the next read takes a new one, so for a few
	// seconds around a change Vault may list the old leases beside the new
	// one. Once those end, Vault revokes them: the Agent does not pile up
	// leases.
	t.Cleanup(func() {
		if t.Failed() {
			describeLeases(t, c, a)
		}
	})
	eventually(t, tokenTTL/2, func() error {
		if n := len(leaseIDs(t, c, a)); n > 2 {
			return fmt.Errorf("%d leases listed, want at most one per token the Agent may hold (2)", n)
		}
		return nil
	})
	t.Logf("%d tokens over %s through the Agent; Zoho: %d token requests; %d leases now", len(order), 2*tokenTTL+10*time.Second, got.TokenRequests, len(leaseIDs(t, c, a)))
	// One token request per refresh point at most: the first token's point is
	// spread over its life, every later one comes a lifetime less the lead
	// (7 s for 40-second tokens) after the previous.
	if max := int64(2*tokenTTL+10*time.Second)/int64(tokenTTL-7*time.Second) + 2; got.TokenRequests > max {
		t.Fatalf("Zoho minted %d tokens in %s, want at most %d", got.TokenRequests, 2*tokenTTL+10*time.Second, max)
	}
}

// TestLeaseRenewCLI: `vault lease renew` answers what is left of a lease and
// never extends it, even when asked to; a lease whose token is gone cannot be
// renewed, and the error says to read creds/ again.
func TestLeaseRenewCLI(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	a := newAccount(t, sim, "renewcli")
	a.configure(t, c)

	var read struct {
		LeaseID       string `json:"lease_id"`
		LeaseDuration int    `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	}
	v.cliJSON(t, &read, "read", "-format=json", mountPath+"/creds/"+a.name)
	if !read.Renewable || read.LeaseDuration <= 0 {
		t.Fatalf("lease %+v: want renewable with a TTL", read)
	}
	end := time.Now().Add(time.Duration(read.LeaseDuration) * time.Second)
	for _, args := range [][]string{
		{"lease", "renew", "-format=json", read.LeaseID},
		{"lease", "renew", "-format=json", "-increment=24h", read.LeaseID},
	} {
		var renewed struct {
			LeaseDuration int `json:"lease_duration"`
		}
		v.cliJSON(t, &renewed, args...)
		if got := time.Now().Add(time.Duration(renewed.LeaseDuration) * time.Second); got.After(end.Add(2*time.Second)) || renewed.LeaseDuration <= 0 {
			t.Fatalf("%s: the lease now ends %s, past its end %s", strings.Join(args, " "), got.Format(time.RFC3339), end.Format(time.RFC3339))
		}
	}

	// The operator revokes the refresh token: the lease cannot go on.
	if _, err := c.Logical().Write(mountPath+"/revoke/"+a.name, nil); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	r := v.cli(t, v.Token, "lease", "renew", read.LeaseID)
	if r.code == 0 || !strings.Contains(r.stderr, "read creds/"+a.name+" again") {
		t.Fatalf("renewing a lease of a revoked refresh token: %s", r)
	}
}

// shortTokenSim starts a simulator of the test's own whose access tokens live
// ttl, so that the short token life touches no other test.
func shortTokenSim(t *testing.T, ttl time.Duration) *zohosim.Server {
	t.Helper()
	zs := zohosim.New(zohosim.Config{AccessTokenTTL: ttl})
	if _, err := zs.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("starting a second simulator: %v", err)
	}
	t.Cleanup(func() { zs.Close() })
	return zs
}
