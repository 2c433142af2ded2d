package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func TestGrantCodeExchangeTokenIsUsed(t *testing.T) {
	e := newEnv(t)
	c := e.account("analytics", nil)
	if got := e.sim.ClientCounters(c.ID); got.Exchanges != 1 || got.TokenRequests != 1 {
		t.Fatalf("want exactly one exchange, got %+v", got)
	}
	resp := e.creds("analytics", nil)
	tok := accessToken(resp)
	if !e.sim.AccessTokenValid(tok) {
		t.Fatal("the token handed out is not valid at Zoho")
	}
	for k, want := range map[string]string{"api_domain": e.sim.APIDomain("us"), "token_type": "Bearer"} {
		if resp.Data[k] != want {
			t.Fatalf("%s = %v, want %v", k, resp.Data[k], want)
		}
	}
	exp, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
	if err != nil || !exp.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("expires_at = %v (%v)", resp.Data["expires_at"], err)
	}
	// The exchange's access token was served: no refresh at all.
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 0 || got.TokenRequests != 1 {
		t.Fatalf("reading creds after the exchange must not refresh: %+v", got)
	}
	if resp.Secret == nil || !resp.Secret.Renewable || resp.Secret.MaxTTL != resp.Secret.TTL {
		t.Fatalf("want a renewable lease whose maximum is its TTL, got %+v", resp.Secret)
	}
}

func TestCachedReadTouchesNeitherStorageNorZoho(t *testing.T) {
	e := newEnv(t)
	c := e.account("crm", nil)
	first := accessToken(e.creds("crm", nil))
	gets, puts := e.storage.gets.Load(), e.storage.puts.Load()
	before := e.sim.ClientCounters(c.ID).TokenRequests
	const reads = 2000
	for i := 0; i < reads; i++ {
		if tok := accessToken(e.creds("crm", nil)); tok != first {
			t.Fatalf("read %d got another token", i)
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests; got != before {
		t.Fatalf("cached reads called Zoho %d times", got-before)
	}
	if g := e.storage.gets.Load() - gets; g != 0 {
		t.Fatalf("cached reads did %d storage reads", g)
	}
	// Lease reservations double: 2000 leases cost at most log2(2000)+1 writes.
	if p := e.storage.puts.Load() - puts; p > 8 {
		t.Fatalf("cached reads did %d storage writes, want ≤ 8", p)
	}
}

func TestConcurrentReadersCoalesceIntoOneRefresh(t *testing.T) {
	e := newEnv(t)
	c := e.account("books", nil)
	e.clock.Advance(time.Hour) // the exchanged token has expired
	const readers = 100
	tokens, fails := e.concurrentCreds("books", readers)
	for i := range tokens {
		if fails[i] != "" {
			t.Fatalf("reader %d: %s", i, fails[i])
		}
		if tokens[i] != tokens[0] || tokens[i] == "" {
			t.Fatalf("reader %d got a different token", i)
		}
	}
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("%d readers caused %d refreshes, want 1", readers, got)
	}
}

func TestLeaseNeverOutlivesToken(t *testing.T) {
	e := newEnv(t)
	e.account("desk", nil)
	for _, step := range []time.Duration{0, 10 * time.Minute, 20 * time.Minute} {
		e.clock.Advance(step)
		resp := e.creds("desk", nil)
		exp, _ := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
		left := exp.Sub(e.clock.Now())
		if resp.Secret.TTL <= 0 || resp.Secret.TTL > left-time.Minute {
			t.Fatalf("lease TTL %s with %s left on the token", resp.Secret.TTL, left)
		}
	}
}

func TestManyConcurrentReadersAcrossAccounts(t *testing.T) {
	e := newEnv(t)
	const accounts, readers = 50, 1000
	clients := make([]zohosim.Client, accounts)
	for i := range clients {
		clients[i] = e.account(fmt.Sprintf("acct-%d", i), nil)
	}
	e.clock.Advance(time.Hour) // every token expired: refreshes in flight under load
	var wg sync.WaitGroup
	var failed sync.Map
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			_, msg, status := e.attempt(logical.ReadOperation, fmt.Sprintf("creds/acct-%d", r%accounts), nil)
			if status != http.StatusOK {
				failed.Store(r, msg)
			}
		}(r)
	}
	waitDone(t, wg.Wait, "1000 concurrent readers finishing")
	failed.Range(func(k, v interface{}) bool {
		t.Fatalf("reader %v failed: %v", k, v)
		return false
	})
	for _, c := range clients {
		if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
			t.Fatalf("client %s refreshed %d times", c.ID, got)
		}
	}
}

func TestFirstLeasesCostNoStorageWrite(t *testing.T) {
	e := newEnv(t)
	e.account("quiet", nil)
	puts := e.storage.puts.Load()
	for i := 0; i < initialReservation; i++ {
		e.creds("quiet", nil)
	}
	if p := e.storage.puts.Load() - puts; p != 0 {
		t.Fatalf("the first %d leases of a token wrote storage %d times", initialReservation, p)
	}
	e.creds("quiet", nil)
	if p := e.storage.puts.Load() - puts; p != 1 {
		t.Fatalf("crossing the reservation should write once, wrote %d", p)
	}
}

// A lease is handed out only once the reservation covering it is stored.
func TestNoLeaseBeyondTheStoredReservation(t *testing.T) {
	e := newEnv(t)
	e.account("reserve", nil)
	for i := 0; i < initialReservation; i++ {
		e.creds("reserve", nil)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if en.Key != tokenPrefix+"reserve" {
			return nil
		}
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil
		}
		close(entered)
		blockUntil(release)
		return errors.New("injected storage failure")
	})
	firstErr := make(chan error, 1)
	go func() {
		_, err := e.request(logical.ReadOperation, "creds/reserve", nil)
		firstErr <- err
	}()
	defer func() { // a failure below must not leave the hook blocking the engine
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	receive(t, entered, fmt.Sprintf("the reservation write of lease %d (the first past the initial reservation of %d)", initialReservation+1, initialReservation))
	second := make(chan *logical.Response, 1)
	go func() {
		resp, err := e.request(logical.ReadOperation, "creds/reserve", nil)
		if err != nil || resp == nil || resp.IsError() {
			resp = nil
		}
		second <- resp
	}()
	var got *logical.Response
	select {
	case got = <-second:
	case <-time.After(300 * time.Millisecond):
	}
	close(release) // the first write fails
	if err := receive(t, firstErr, "the answer to the reader whose reservation write failed"); err == nil {
		t.Fatal("a lease was handed out although its reservation was not stored")
	}
	if got == nil {
		got = receive(t, second, "the answer to the reader that waited for the reservation write")
	}
	if got == nil {
		t.Fatal("the second reader got no lease once storage worked again")
	}
	// Whatever was handed out is covered by what storage says.
	st, err := loadTokenState(context.Background(), e.storage, "reserve")
	if err != nil {
		t.Fatal(err)
	}
	handed := int64(initialReservation + 1)
	for _, m := range st.Minted {
		if m.ID == st.TokenID && m.Reserved < handed {
			t.Fatalf("%d leases handed out, %d reserved in storage", handed, m.Reserved)
		}
	}
}

// A reader whose context ends while another reader's refresh of the same
// account is slow returns at once.
func TestReaderContextEndsWhileRefreshIsSlow(t *testing.T) {
	e := newEnv(t)
	c := e.account("patient", nil)
	e.clock.Advance(2 * time.Hour) // the token expired: reads wait for a refresh
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultLatency, Latency: 1500 * time.Millisecond, Times: 1})
	first := make(chan error, 1)
	go func() {
		_, err := e.request(logical.ReadOperation, "creds/patient", nil)
		first <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.sim.ClientCounters(c.ID).TokenRequests < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never reached Zoho")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "creds/patient", Storage: e.storage})
	if took := time.Since(began); took > 700*time.Millisecond {
		t.Fatalf("a reader with a 100 ms context waited %s", took)
	}
	if err == nil {
		t.Fatal("a reader whose context ended got an answer")
	}
	if err := receive(t, first, "the answer to the reader whose refresh was slow"); err != nil {
		t.Fatal(err)
	}
}

// A min_ttl close to a fresh token's life (a one-hour token leases at most
// 59 m, its expiry less the 60 s margin) still gets a lease at least that
// long, whichever lease number spreads the end: the spread never cuts below
// min_ttl.
func TestMinTTLCloseToTheTokensLifeIsHonoured(t *testing.T) {
	e := newEnv(t)
	e.account("close", nil)
	atLatest := 0
	for _, minTTL := range []time.Duration{58 * time.Minute, 58*time.Minute + 30*time.Second} {
		for i := 0; i < 20; i++ {
			resp := e.creds("close", map[string]interface{}{"min_ttl": minTTL.String()})
			exp, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if ttl := resp.Secret.TTL; ttl < minTTL || e.clock.Now().Add(ttl).After(exp.Add(-60*time.Second)) {
				t.Fatalf("read %d with min_ttl=%s got a lease of %s on a token expiring in %s", i+1, minTTL, ttl, exp.Sub(e.clock.Now()))
			}
			if resp.Secret.TTL == 59*time.Minute {
				atLatest++
			}
		}
	}
	// The ends are still spread, as far as min_ttl lets them: a lease whose
	// share of the window would end before min_ttl ends at min_ttl, not at
	// the latest end with the leases that were not brought forward.
	if atLatest > 2 {
		t.Fatalf("%d of 40 leases end at the latest end (59m); the spread was dropped instead of stopped at min_ttl", atLatest)
	}
}

// A token with less than the floor (3 minutes for Zoho's hour) before its
// margin is not handed out while a refresh is possible: the read refreshes
// and gets a lease on the new token.
func TestTokenShorterThanTheFloorIsNotHandedOut(t *testing.T) {
	e := newEnv(t)
	e.account("short", nil)
	old := accessToken(e.creds("short", nil))
	e.clock.Advance(57*time.Minute + 30*time.Second) // 90 s before the margin
	resp := e.creds("short", nil)
	if accessToken(resp) == old {
		t.Fatalf("a token 90 s before its margin was handed out (lease %s) although a refresh was possible", resp.Secret.TTL)
	}
	if resp.Secret.TTL < 3*time.Minute {
		t.Fatalf("the refreshed token's lease is %s, shorter than the floor", resp.Secret.TTL)
	}
}

// min_ttl=59m (a one-hour token's longest lease) means "as fresh as
// possible": a token minted a second ago will do (Vault counts whole
// seconds); one 3 s old is refreshed.
func TestLongestMinTTLAcceptsATokenJustMinted(t *testing.T) {
	e := newEnv(t)
	c := e.account("fresh", nil)
	tok := accessToken(e.creds("fresh", nil))
	sent := e.sim.ClientCounters(c.ID).TokenRequests
	e.clock.Advance(time.Second)
	if got := accessToken(e.creds("fresh", map[string]interface{}{"min_ttl": "59m"})); got != tok || e.sim.ClientCounters(c.ID).TokenRequests != sent {
		t.Fatalf("min_ttl=59m a second after the token was minted sent %d token requests, want none", e.sim.ClientCounters(c.ID).TokenRequests-sent)
	}
	e.clock.Advance(2 * time.Second)
	if got := accessToken(e.creds("fresh", map[string]interface{}{"min_ttl": "59m"})); got == tok || e.sim.ClientCounters(c.ID).TokenRequests != sent+1 {
		t.Fatalf("min_ttl=59m 3 s after the token was minted sent %d token requests, want 1", e.sim.ClientCounters(c.ID).TokenRequests-sent)
	}
}

// A min_ttl no Zoho token can satisfy is refused before anything is spent.
func TestUnsatisfiableMinTTLIsRefused(t *testing.T) {
	e := newEnv(t)
	c := e.account("greedy", nil)
	before := e.sim.ClientCounters(c.ID).TokenRequests
	// Leases end a margin (1m for Zoho's hour) before the token: no lease
	// lasts more than 59m.
	for _, minTTL := range []string{"2h", "1h", "59m59s", "59m1s"} {
		msg, status := e.fails(logical.ReadOperation, "creds/greedy", map[string]interface{}{"min_ttl": minTTL})
		if status != http.StatusBadRequest || !strings.HasPrefix(msg, "min_ttl: ") || !strings.Contains(msg, "this account's tokens live 1h0m0s") ||
			!strings.Contains(msg, "at most 59m0s") {
			t.Fatalf("min_ttl=%s: got %d %q", minTTL, status, msg)
		}
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests - before; got != 0 {
		t.Fatalf("refused reads spent %d token requests", got)
	}
	// Up to a lease's longest is fine (at most: as fresh as possible).
	e.creds("greedy", map[string]interface{}{"min_ttl": "30m"})
	e.creds("greedy", map[string]interface{}{"min_ttl": "59m"})
}
