package e2e

import (
	"errors"
	"fmt"
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
	// token while the first still lives. Tokens live two minutes: with
	// 40-second ones every margin is a second or two, and under CI load a
	// read just before the refresh landed got a two-second lease on the old
	// token after which the Agent did not read again for over ten seconds
	// while the token was revoked.
	const tokenTTL = 2 * time.Minute
	zs := shortTokenSim(t, tokenTTL)

	a := newAccount(t, zs, "agent")
	// The exchange mints the first token no earlier than this, so it lives
	// at least until written+tokenTTL.
	written := time.Now()
	a.configure(t, c)
	a.expectCounters(t, 1, 0)

	// First render: the token the exchange minted, accepted by Zoho.
	first, readRendered := startTokenAgent(t, v, c, a, "creds")
	a.expectAccepted(t, first)
	a.expectCounters(t, 1, 0)

	// Watch the file for a lifetime and a quarter. The Agent re-reads before
	// its lease ends, and the engine has refreshed by then, so a new token
	// appears while the first one still lives, and whatever the file holds
	// is accepted by Zoho (a token just replaced may already be revoked: its
	// lease ended; then the file must move on within seconds).
	type render struct {
		token string
		at    time.Time
	}
	renders := []render{{first, time.Now()}}
	var maxLag time.Duration // longest the file held a token Zoho no longer accepted
	until := written.Add(tokenTTL + tokenTTL/4)
	for time.Now().Before(until) {
		s, err := readRendered()
		if err != nil {
			t.Fatal(err)
		}
		if s != renders[len(renders)-1].token {
			renders = append(renders, render{s, time.Now()})
		}
		if status, _ := whoami(t, zs, s); status != 200 {
			// Its last lease ended: Vault revoked it and the engine revoked
			// the token at Zoho at once. The Agent reads again when its
			// renewer sees the lease gone, a moment later (longer on a busy
			// machine): the file must move on within seconds.
			dead := time.Now()
			eventually(t, 10*time.Second, func() error {
				again, err := readRendered()
				if err != nil {
					return err
				}
				if again == s {
					return fmt.Errorf("the Agent still renders token #%d, which Zoho no longer accepts (HTTP %d; %d refreshes so far)", len(renders), status, a.counters().Refreshes)
				}
				return nil
			})
			if lag := time.Since(dead); lag > maxLag {
				maxLag = lag
			}
			continue
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(renders) < 2 {
		t.Fatalf("the Agent still renders the first token %s after the account was written", tokenTTL+tokenTTL/4)
	}
	second := renders[1]
	if !second.at.Before(written.Add(tokenTTL)) {
		t.Fatalf("the new token was rendered %s after the first token's earliest expiry",
			second.at.Sub(written.Add(tokenTTL)).Round(time.Millisecond))
	}
	t.Logf("new token rendered %s after the account was written; the first token lived at least %s; %d tokens rendered in %s; the file held a revoked token for at most %s",
		second.at.Sub(written).Round(time.Millisecond), tokenTTL, len(renders), tokenTTL+tokenTTL/4, maxLag.Round(time.Millisecond))
	current := renders[len(renders)-1].token
	a.expectAccepted(t, current)
	// One refresh per refresh point, however many reads the Agent made: the
	// first token's point is spread over its life (refreshing it early is
	// what keeps accounts minted together apart), its successor's comes a
	// lifetime less the lead later, so a lifetime and a quarter holds at
	// most two.
	if got := a.counters(); got.Exchanges != 1 || got.Refreshes < 1 || got.Refreshes > 2 {
		t.Fatalf("simulator: %+v; want 1 exchange and 1 or 2 refreshes", got)
	}

	// The config shows the current token's expiry, ahead.
	s, err := c.Logical().Read(mountPath + "/config/" + a.name)
	if err != nil || s == nil {
		t.Fatalf("config read: %v %v", s, err)
	}
	exp, err := time.Parse(time.RFC3339, toString(s.Data["token_expires_at"]))
	if err != nil || !exp.After(time.Now()) {
		t.Fatalf("token_expires_at %v (%v); want the current token's expiry, ahead", s.Data["token_expires_at"], err)
	}

	// The first token's leases end before its expiry; Vault revokes them.
	// That must not touch the token the Agent holds now.
	eventually(t, tokenTTL, func() error { return tokenDead(t, zs, first) })
	oldLeasesEnd := written.Add(tokenTTL + tokenTTL/4)
	prefix := "sys/leases/lookup/" + mountPath + "/creds/" + a.name + "/"
	eventually(t, 30*time.Second, func() error {
		list, err := c.Logical().List(prefix)
		if err != nil {
			return err
		}
		if list == nil {
			return errors.New("no leases listed: the Agent holds one on the current token")
		}
		held := 0
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
			held++
		}
		if held == 0 {
			return errors.New("no lease on the current token")
		}
		return nil
	})
	now, err := readRendered()
	if err != nil {
		t.Fatal(err)
	}
	a.expectAccepted(t, now)
	got := a.counters()
	if got.RevokedRefresh != 0 || got.RevokeInvalid != 0 || got.RevokedAccess > got.Refreshes {
		t.Fatalf("after the first token's leases ended: %+v; want the refresh token untouched and at most one access token revoked per refresh", got)
	}
	t.Logf("simulator: %d exchange, %d refreshes, %d access tokens revoked at lease expiry", got.Exchanges, got.Refreshes, got.RevokedAccess)
}
