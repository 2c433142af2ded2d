package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgentRendersFreshToken runs a real Vault Agent whose template renders
// an account's access token to a file. With short-lived Zoho tokens the
// Agent must re-render a new, valid token before the old one expires.
func TestAgentRendersFreshToken(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()

	// The Agent renews the lease until renewing stops extending it, then
	// reads again; the engine refreshes the token before the first lease on it
	// ends (and when a renewal leaves little), so the re-read brings the next
	// token while the first still lives.
	const tokenTTL = 40 * time.Second
	zs := shortTokenSim(t, tokenTTL)

	a := newAccount(t, zs, "agent")
	// The exchange mints the first token no earlier than this, so it lives
	// at least until written+tokenTTL.
	written := time.Now()
	a.configure(t, c)
	a.expectCounters(t, 1, 0)

	var rendered string
	agent := startAgent(t, v, c, a, func(dir string) string {
		rendered = filepath.Join(dir, "zoho-token")
		return fmt.Sprintf(`template_config {
  exit_on_retry_failure = true
}
template {
  contents    = "{{ with secret \"%s/creds/%s\" }}{{ .Data.access_token }}{{ end }}"
  destination = %q
  perms       = "0600"
}
`, mountPath, a.name, rendered)
	})

	readRendered := func() (string, error) {
		if gone, _ := agent.Exited(); gone {
			return "", errors.New("vault agent exited")
		}
		data, err := os.ReadFile(rendered)
		if err != nil {
			return "", err
		}
		s := strings.TrimSpace(string(data))
		if !zohoTokenRe.MatchString(s) || len(s) != len(zohoTokenRe.FindString(s)) {
			return "", fmt.Errorf("rendered file holds %q", s)
		}
		return s, nil
	}

	// First render: the token the exchange minted, accepted by Zoho.
	var first string
	eventually(t, 30*time.Second, func() error {
		var err error
		first, err = readRendered()
		return err
	})
	a.expectAccepted(t, first)
	a.expectCounters(t, 1, 0)

	// The Agent re-reads before the lease ends; the engine has refreshed by
	// then, so a new token appears while the first one still lives.
	var second string
	var seenAt time.Time
	eventually(t, tokenTTL+20*time.Second, func() error {
		s, err := readRendered()
		if err != nil {
			return err
		}
		if s == first {
			return errors.New("the Agent still renders the first token")
		}
		second, seenAt = s, time.Now()
		return nil
	})
	if !seenAt.Before(written.Add(tokenTTL)) {
		t.Fatalf("the new token was rendered %s after the first token's earliest expiry",
			seenAt.Sub(written.Add(tokenTTL)).Round(time.Millisecond))
	}
	t.Logf("new token rendered %s after the account was written; the first token lived at least %s",
		seenAt.Sub(written).Round(time.Millisecond), tokenTTL)
	a.expectAccepted(t, second)
	// One refresh for one new token, however many reads the Agent made.
	a.expectCounters(t, 1, 1)

	// The config shows the new token's expiry, about a token life ahead.
	s, err := c.Logical().Read(mountPath + "/config/" + a.name)
	if err != nil || s == nil {
		t.Fatalf("config read: %v %v", s, err)
	}
	exp, err := time.Parse(time.RFC3339, toString(s.Data["token_expires_at"]))
	if err != nil || exp.Before(seenAt.Add(tokenTTL/2)) {
		t.Fatalf("token_expires_at %v (%v) after the refresh; want about %s ahead", s.Data["token_expires_at"], err, tokenTTL)
	}

	// The first token's leases end at expiry; Vault revokes them. That
	// must not touch the new token.
	eventually(t, tokenTTL, func() error { return tokenDead(t, zs, first) })
	oldLeasesEnd := written.Add(tokenTTL + tokenTTL/4)
	prefix := "sys/leases/lookup/" + mountPath + "/creds/" + a.name + "/"
	eventually(t, 30*time.Second, func() error {
		list, err := c.Logical().List(prefix)
		if err != nil {
			return err
		}
		if list == nil {
			return errors.New("no leases listed: the Agent holds one on the new token")
		}
		current := 0
		for _, id := range stringList(list.Data["keys"]) {
			lk, err := c.Sys().Lookup(mountPath + "/creds/" + a.name + "/" + id)
			if err != nil {
				continue // revoked meanwhile
			}
			end, err := time.Parse(time.RFC3339Nano, toString(lk.Data["expire_time"]))
			if err != nil {
				return fmt.Errorf("lease %s expire_time %v: %v", id, lk.Data["expire_time"], err)
			}
			if end.Before(oldLeasesEnd) {
				return fmt.Errorf("lease %s of the first token (ending %s) is still there", id, end.Format(time.RFC3339))
			}
			current++
		}
		if current == 0 {
			return errors.New("no lease on the new token")
		}
		return nil
	})
	a.expectAccepted(t, second)
	if got, err := readRendered(); err != nil || got != second {
		t.Fatalf("the Agent no longer renders the new token: %q %v", got, err)
	}
	got := a.counters()
	if got.RevokedRefresh != 0 || got.RevokedAccess > 1 || got.RevokeInvalid != 0 || got.Refreshes != 1 {
		t.Fatalf("after the first token's leases ended: %+v; want the refresh token untouched, at most the first access token revoked, one refresh", got)
	}
	t.Logf("simulator: %d exchange, %d refresh, %d access token revoked at lease expiry", got.Exchanges, got.Refreshes, got.RevokedAccess)
}
