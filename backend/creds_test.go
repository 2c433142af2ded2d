package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
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

// Tokens that no lease can be taken on (Zoho answering with tokens that live
// a second: the lease margin is a second) end the read with a clear error
// after a bounded number of token requests (four), not a loop that spends
// Zoho's whole budget of 10 per 10 minutes.
func TestUnusableTokensEndTheReadAfterFourRequests(t *testing.T) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.AccessTokenTTL = time.Second })
	c := e.account("brief", nil)
	before := e.sim.ClientCounters(c.ID)
	msg, status := e.fails(logical.ReadOperation, "creds/brief", nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, "no usable access token after refreshing") {
		t.Fatalf("read of an account whose tokens cannot be leased: %d %q, want 502 saying no usable access token", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).TokenRequests - before.TokenRequests; got != 4 {
		t.Fatalf("the read sent %d token requests, want 4", got)
	}
}

// When a refresh failed and the token still valid (if only for less than the
// floor) is handed out instead, a failure to store its lease reservation is
// what the reader is told: the refresh's failure is not the reason.
func TestFallbackLeaseWhoseReservationFailsReportsTheStorageError(t *testing.T) {
	e := newEnv(t)
	e.account("fallback", nil)
	for i := 0; i < initialReservation; i++ { // the next lease needs a reservation write
		e.creds("fallback", nil)
	}
	e.clock.Advance(57*time.Minute + 30*time.Second) // 90 s before the margin: under the floor
	e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: http.StatusServiceUnavailable})
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if en.Key != tokenPrefix+"fallback" {
			return nil
		}
		var st tokenState
		if err := json.Unmarshal(en.Value, &st); err != nil {
			return err
		}
		for _, m := range st.Minted {
			if m.Reserved > initialReservation {
				return errors.New("injected reservation failure")
			}
		}
		return nil
	})
	msg, _ := e.fails(logical.ReadOperation, "creds/fallback", nil)
	if !strings.Contains(msg, "injected reservation failure") {
		t.Fatalf("the read whose lease could not be stored said %q, not the storage failure", msg)
	}
}

// A token stored without a lease reservation (by a version before
// reservations) reserves ahead at its first lease like a new token does: the
// first write covers the next initialReservation leases, not a doubling from 1.
func TestTokenStoredWithoutAReservationReservesAhead(t *testing.T) {
	e := newEnv(t)
	e.account("legacy", nil)
	var raw map[string]interface{}
	if found, err := getJSON(context.Background(), e.storage, tokenPrefix+"legacy", &raw); err != nil || !found {
		t.Fatalf("stored token state: %v %v", found, err)
	}
	for _, m := range raw["minted"].([]interface{}) {
		delete(m.(map[string]interface{}), "reserved")
	}
	if err := putJSON(context.Background(), e.storage, tokenPrefix+"legacy", raw); err != nil {
		t.Fatal(err)
	}
	e.restart()
	var writes atomic.Int64
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if en.Key == tokenPrefix+"legacy" {
			writes.Add(1)
		}
		return nil
	})
	for i := 0; i < initialReservation+1; i++ {
		e.creds("legacy", nil)
	}
	if got := writes.Load(); got != 1 {
		t.Fatalf("%d leases on a token stored without a reservation wrote its state %d times, want 1", initialReservation+1, got)
	}
}

// A reader that waited for the account's mutex while another reader's
// reservation write covered its lease number writes nothing more.
func TestReservationAlreadyCoveringTheLeaseWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.account("covered", nil)
	e.creds("covered", nil)
	a := e.b.cachedAccount("covered")
	rec := a.view.Load().rec
	n := rec.reserved.Load()
	puts := e.storage.puts.Load()
	if err := e.b.reserve(context.Background(), e.storage, a, rec, n); err != nil {
		t.Fatal(err)
	}
	if p := e.storage.puts.Load() - puts; p != 0 || rec.reserved.Load() != n {
		t.Fatalf("reserving lease %d with %d reserved wrote %d times and reserved %d", n, n, p, rec.reserved.Load())
	}
	st, err := loadTokenState(context.Background(), e.storage, "covered")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Minted {
		if m.ID == rec.ID && m.Reserved != n {
			t.Fatalf("stored reservation %d, want %d", m.Reserved, n)
		}
	}
}

// hookedSystemView calls hook (once) when the engine next asks Vault for the
// node's replication state, which a read does when it starts a background
// refresh of a due token: a point between loading the token's view and
// recording the read's hold on it.
type hookedSystemView struct {
	logical.SystemView
	once sync.Once
	hook func()
}

func (h *hookedSystemView) ReplicationState() consts.ReplicationState {
	h.once.Do(h.hook)
	return h.SystemView.ReplicationState()
}

// evictWhileReading makes account name due for a background refresh and
// arranges that the next read, once it holds the token's view, sees the
// account's token state invalidated by another node's write (Vault's
// Invalidate): the account object it holds is gone.
func (e *env) evictWhileReading(name string) {
	e.t.Helper()
	a := e.b.cachedAccount(name)
	e.clock.Advance(a.view.Load().refreshAt.Sub(e.clock.Now())) // due, well above the floor
	sys, ok := e.b.System().(*replicationCache)
	if !ok {
		e.t.Fatalf("system view %T", e.b.System())
	}
	sys.SystemView = &hookedSystemView{SystemView: sys.SystemView, hook: func() {
		e.b.invalidate(context.Background(), tokenPrefix+name)
	}}
	sys.last.Store(nil) // the next question reaches the hook
}

// A read whose account object is replaced (another node wrote its token
// state) between loading the token and storing its lease reservation goes on
// with the live account and gets its lease.
func TestReadWhoseAccountIsReloadedMeanwhileGetsALease(t *testing.T) {
	e := newEnv(t)
	e.account("moving", nil)
	var tok string
	for i := 0; i < initialReservation; i++ { // the next lease needs a reservation write
		tok = accessToken(e.creds("moving", nil))
	}
	e.evictWhileReading("moving")
	c, err := e.b.IssueCreds(context.Background(), e.storage, "moving", 0, paths.HoldByLease)
	e.waitBackground()
	if err != nil || c == nil {
		t.Fatalf("read while the account was reloaded: creds %v, error %v", c, err)
	}
	if c.AccessToken != tok || c.Lease.Seq != initialReservation+1 {
		t.Fatalf("got lease %d on another token, want lease %d on the token read before", c.Lease.Seq, initialReservation+1)
	}
	if a := e.b.cachedAccount("moving"); a == nil || a.gone.Load() {
		t.Fatal("the live account is not in memory after the read")
	}
}

// The same for an unleased read (static-creds/): the token is pinned on the
// live account and handed out.
func TestUnleasedReadWhoseAccountIsReloadedMeanwhileIsAnswered(t *testing.T) {
	e := newEnv(t)
	e.account("moving", nil)
	tok := accessToken(e.creds("moving", nil))
	e.evictWhileReading("moving")
	c, err := e.b.IssueCreds(context.Background(), e.storage, "moving", 0, paths.HoldUntilExpiry)
	e.waitBackground()
	if err != nil || c == nil {
		t.Fatalf("unleased read while the account was reloaded: creds %v, error %v", c, err)
	}
	if c.AccessToken != tok {
		t.Fatal("the unleased read got another token than the one read before")
	}
	st, err := loadTokenState(context.Background(), e.storage, "moving")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Minted {
		if m.ID == c.TokenID && !m.HeldUntilExpiry {
			t.Fatal("the token handed out unleased is not stored as held until it expires")
		}
	}
}
