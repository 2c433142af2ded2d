package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// The lease bookkeeping model: random interleavings, against the simulator,
// of
//   - reads (some forcing a refresh), unleased reads (static-creds/), lease renewals, lease revocations (some
//     sent twice, as Vault does), lease expiry, background refreshes, storage
//     write failures, answers Zoho sends that are lost, a slow Zoho, Zoho
//     outages (503) on the token and revoke endpoints and their end,
//     restarts, concurrent batches;
//   - every operation that changes the account's credentials: config
//     rewrites (a new grant code, a refresh-token import, a client_secret
//     rotation, a wrong client_secret, an accounts server change with or
//     without a new grant, a live_token_cap change), the device flow (start,
//     approve, deny, expiry, an approval that arrives after a later
//     credential write), the consent redirect (auth-url, consent, callback;
//     also a callback that arrives after a later credential write),
//     revoke/<name>, deleting and re-creating the account, Vault's WAL
//     rollback (with the clock past walMinAge, and past revokeRetryFor so
//     that revocations are given up), and a WAL settlement racing readers.
//
// After every step (the failure message names the invariant):
//
//	(a) every lease a read or renewal produced ends, as Vault registers it
//	    (framework.CalculateTTL with the mount's defaults and the response's
//	    TTL and MaxTTL), no later than its token's expiry;
//	(b) a revocation the engine reported done is done at Zoho: after revoke/
//	    or a delete succeeded (or a write replaced the refresh token without
//	    warning), the old refresh token and every access token minted from it
//	    are dead; a lease revocation that succeeded for a lease whose refresh
//	    token the account has given up leaves its access token dead;
//	(c) every request that carried the client secret went to the accounts
//	    server the account named when it was sent (a write that moves the
//	    account sends its verification to the new one);
//	(d) the account's status shows an interrupted exchange only if the model
//	    lost an answer (or failed storage writes) while a grant could mint;
//	(e) every unexpired lease's token is alive at Zoho, unless the operator
//	    gave up the refresh token it came from (revoke/, delete, a new grant,
//	    an import, an approval or callback of a flow started after the last
//	    credential write); the refresh token changes only in steps that may
//	    change it: an approval or callback of a flow started before a later
//	    credential write must not replace it;
//	(f) the engine's stored token state counts every lease it handed out on
//	    the current refresh token (the token is listed, its reservation
//	    covers the lease's number), so a restart does not forget them;
//	(h) every token an unleased read (static-creds/) handed out is a holder
//	    until its expiry: alive at Zoho until then unless the operator gave
//	    up its refresh token or a reader reported it rejected, stored as held
//	    (so a restart keeps it), and the answer's ttl ends before the token;
//
// and, as before, a read never hands out a token that is dead at Zoho.
//
// make test runs TestLeaseModel with fixed seeds; make fuzz sweeps more seeds
// (MODEL_SEEDS=N, from MODEL_BASE if set, else from the clock: make test
// sweeps a fixed range, make fuzz alone a fresh one); MODEL_SEED=n replays one, MODEL_STEPS=n sets the steps per
// seed (default 1000), MODEL_DEBUG=1 logs the engine's view after each step,
// MODEL_TOLERATE=a,b logs the first failure of those invariants and goes on
// (to look past a known defect).
//
// A slow Zoho is simulated with zohosim's latency fault (a few real
// milliseconds: the engine's timeout is not reached, so the outcome does not
// depend on timing).

const modelAccount = "model"

var modelDCs = []string{"us", "eu", "in"}

type modelLease struct {
	resp     *logical.Response
	token    string
	tokenID  string
	gen      int64
	seq      int64
	rt       string    // the refresh token the account held when the lease was read
	issued   time.Time // when it was read
	expires  time.Time // the lease's end, as Vault registered it
	tokExp   time.Time // the token's expiry the read returned
	revoked  bool      // the engine confirmed the revocation
	ending   bool      // its revocation was sent (and failed): Vault retries it, nobody may rely on it
	released bool      // the operator gave up the refresh token its token came from
	rejected bool      // a reader reported its token as rejected by Zoho: its holders said it is dead
}

// modelFlow is a device authorization or a consent the model started.
type modelFlow struct {
	userCode string // device flow
	authURL  string // consent
	epoch    int    // the credential writes before it started
	approved bool
}

// modelHeld is a token an unleased read (static-creds/) handed out: held
// until it expires.
type modelHeld struct {
	token    string
	tokenID  string
	rt       string
	tokExp   time.Time
	released bool // the operator gave up the refresh token it came from
	rejected bool // a reader reported it rejected by Zoho
}

type leaseModel struct {
	t      *testing.T
	e      *env
	rng    *rand.Rand
	leases []*modelLease
	held   []*modelHeld  // tokens unleased reads handed out, until they expire
	ended  []*modelLease // revoked leases, for duplicate revocations
	failN  atomic.Int64  // storage writes still to fail
	log    []string

	client  zohosim.Client // the client as the simulator knows it now
	dc      string         // the data center whose accounts server the account names
	exists  bool
	rt      string // the account's refresh token, as stored
	epoch   int    // credential writes (new refresh tokens, revocations, deletes) so far
	dev     *modelFlow
	consent *modelFlow

	tolerate  map[string]bool // invariants (a, b, …) MODEL_TOLERATE lets pass
	tolerated map[string]bool

	stepName     string
	stepDC       string // the accounts server this step's secret-carrying requests may go to
	mayReplace   bool   // this step may change the account's refresh token
	mayInterrupt bool   // a lost answer or a storage failure could have hidden a minted refresh token
	hookRace     atomic.Pointer[func()]
	credPending  bool            // the next config write is a credential write (credentialWrite)
	reported     map[string]bool // token ids readers reported as rejected (never served again)
}

func (m *leaseModel) step(format string, args ...interface{}) {
	m.log = append(m.log, fmt.Sprintf(format, args...))
}

func (m *leaseModel) fail(format string, args ...interface{}) {
	m.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inv, ok := invariantOf(msg); ok && m.tolerate[inv] {
		// MODEL_TOLERATE: note it once and go on, to look past a known defect.
		if !m.tolerated[inv] {
			m.tolerated[inv] = true
			m.t.Logf("tolerated (MODEL_TOLERATE): %s", msg)
		}
		return
	}
	tail := m.log
	if len(tail) > 80 && os.Getenv("MODEL_FULL") == "" { // MODEL_FULL=1: the whole log
		tail = tail[len(tail)-80:]
	}
	c := m.e.sim.Counters()
	m.t.Fatalf("%s (Zoho: %d refreshes, %d access tokens revoked, %d evicted)\nlast steps:\n  %s",
		msg, c.Refreshes, c.RevokedAccess, c.Evictions, strings.Join(tail, "\n  "))
}

// invariantOf returns the letter of a failure message "(x) …".
func invariantOf(msg string) (string, bool) {
	if len(msg) >= 3 && msg[0] == '(' && msg[2] == ')' {
		return msg[1:2], true
	}
	return "", false
}

func short(tok string) string {
	if tok == "" {
		return "-"
	}
	return tokenID(tok)[:6]
}

// registeredEnd is the end Vault gives a lease: framework.CalculateTTL with
// the mount's defaults (logical.TestSystemView: 24h default, 48h maximum), the
// client's increment, the response's TTL and MaxTTL, from issued. CalculateTTL
// reads the real clock, so issued is mapped onto it; that costs up to a second
// either way (whole seconds), which the checks allow.
func (m *leaseModel) registeredEnd(secret *logical.Secret, increment time.Duration, issued time.Time) (time.Time, error) {
	now := m.e.clock.Now()
	start := time.Time{}
	if !issued.IsZero() {
		start = time.Now().Add(-now.Sub(issued))
	}
	ttl, _, err := framework.CalculateTTL(m.e.b.System(), increment, secret.TTL, 0, secret.MaxTTL, 0, start)
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(ttl), nil
}

// checkTTL is invariant (a) for a lease that ends at end.
func (m *leaseModel) checkTTL(what string, l *modelLease, end time.Time, ttl time.Duration) {
	m.t.Helper()
	if end.After(l.tokExp.Add(2 * time.Second)) {
		m.fail("(a) %s on %s: the engine answered TTL %s, so Vault registers the lease until %s from now, %s after the token expires (expires_at %s)",
			what, short(l.token), ttl, end.Sub(m.e.clock.Now()), end.Sub(l.tokExp), l.tokExp.Format(time.RFC3339))
	}
}

// newLease records a creds response as Vault would, checking (a).
func (m *leaseModel) newLease(resp *logical.Response, rt string, issued time.Time) *modelLease {
	m.t.Helper()
	l := &modelLease{resp: resp, token: accessToken(resp), rt: rt, issued: issued}
	l.tokenID, _ = resp.Secret.InternalData["token_id"].(string)
	if m.reported[l.tokenID] {
		m.fail("(g) a read handed out %s, which a reader reported as rejected by Zoho", short(l.token))
	}
	l.gen, _ = resp.Secret.InternalData["generation"].(int64)
	l.seq, _ = resp.Secret.InternalData["lease_seq"].(int64)
	exp, err := time.Parse(time.RFC3339, fmt.Sprint(resp.Data["expires_at"]))
	if err != nil {
		m.fail("a read answered expires_at %v: %v", resp.Data["expires_at"], err)
	}
	l.tokExp = exp
	end, err := m.registeredEnd(resp.Secret, 0, time.Time{})
	if err != nil {
		m.fail("(a) Vault would refuse the lease of a read (TTL %s, max %s): %v", resp.Secret.TTL, resp.Secret.MaxTTL, err)
	}
	l.expires = end
	return l
}

// reportRejected reports the token of a random lease as rejected by Zoho
// (creds/ rejected=<token_id>), as an app whose API call got
// INVALID_OAUTHTOKEN does. On success the token is never served again (g)
// and its leases are exempt from (e): their holders declared it dead, and the
// refresh that replaces it may make Zoho evict it.
func (m *leaseModel) reportRejected() {
	if len(m.leases) == 0 {
		return
	}
	l := m.leases[m.rng.IntN(len(m.leases))]
	// Its holders declared it dead whatever the answer: the engine retires
	// it before it refreshes, and that refresh may make Zoho evict it.
	for _, o := range m.leases {
		if o.tokenID == l.tokenID {
			o.rejected = true
		}
	}
	for _, h := range m.held {
		if h.tokenID == l.tokenID {
			h.rejected = true
		}
	}
	resp, err := m.e.request(logical.ReadOperation, "creds/"+modelAccount, map[string]interface{}{"rejected": l.tokenID})
	if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
		m.step("report %s rejected: failed: %v %v", short(l.token), err, firstLine(respErrText(resp)))
		return
	}
	if m.reported == nil {
		m.reported = map[string]bool{}
	}
	m.reported[l.tokenID] = true
	nl := m.newLease(resp, m.rt, m.e.clock.Now())
	m.leases = append(m.leases, nl)
	m.step("report %s rejected: lease %d on %s, TTL %s", short(l.token), len(m.leases)-1, short(nl.token), resp.Secret.TTL)
	m.checkTTL("a report", nl, nl.expires, resp.Secret.TTL)
}

// read takes one lease; forced asks for a fresh token.
func (m *leaseModel) read(forced bool) {
	var data map[string]interface{}
	if forced {
		data = map[string]interface{}{"min_ttl": "59m"}
	}
	resp, err := m.e.request(logical.ReadOperation, "creds/"+modelAccount, data)
	if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
		m.step("read(forced=%v): failed: %v %v", forced, err, firstLine(respErrText(resp)))
		return
	}
	tok := accessToken(resp)
	if !m.e.sim.AccessTokenValid(tok) {
		m.fail("a read handed out a token that is dead at Zoho")
	}
	l := m.newLease(resp, m.rt, m.e.clock.Now())
	m.leases = append(m.leases, l)
	m.step("read(forced=%v): lease %d on %s, TTL %s", forced, len(m.leases)-1, short(tok), resp.Secret.TTL)
	m.checkTTL("a read", l, l.expires, resp.Secret.TTL)
}

// unleasedRead reads static-creds/, checking (h) for the answer: no lease,
// a live token, a ttl that ends before it.
func (m *leaseModel) unleasedRead(forced bool) {
	var data map[string]interface{}
	if forced {
		data = map[string]interface{}{"min_ttl": "59m"}
	}
	resp, err := m.e.request(logical.ReadOperation, "static-creds/"+modelAccount, data)
	if msg, status := m.e.classify(resp, err); status != http.StatusOK {
		m.step("unleased read(forced=%v): failed: %d %s", forced, status, firstLine(msg))
		return
	}
	if resp.Secret != nil {
		m.fail("(h) static-creds/ created a lease")
	}
	tok := accessToken(resp)
	if !m.e.sim.AccessTokenValid(tok) {
		m.fail("a read handed out a token that is dead at Zoho")
	}
	h := &modelHeld{token: tok, rt: m.rt}
	h.tokenID, _ = resp.Data["token_id"].(string)
	if m.reported[h.tokenID] {
		m.fail("(g) an unleased read handed out %s, which a reader reported as rejected by Zoho", short(tok))
	}
	exp, err := time.Parse(time.RFC3339, fmt.Sprint(resp.Data["expires_at"]))
	if err != nil {
		m.fail("an unleased read answered expires_at %v: %v", resp.Data["expires_at"], err)
	}
	h.tokExp = exp
	ttl, _ := resp.Data["ttl"].(int64)
	if end := m.e.clock.Now().Add(time.Duration(ttl) * time.Second); ttl < 1 || end.After(exp) {
		m.fail("(h) an unleased read answered ttl %ds: it ends %s after the token expires (expires_at %s)", ttl, end.Sub(exp), exp.Format(time.RFC3339))
	}
	m.held = append(m.held, h)
	m.step("unleased read(forced=%v): %s, ttl %ds", forced, short(tok), ttl)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// renew renews lease i as Vault's expiration manager does and registers
// its new end, checking (a).
func (m *leaseModel) renew(i int) {
	l := m.leases[i]
	increment := []time.Duration{0, 0, time.Minute, time.Hour}[m.rng.IntN(4)]
	secret := roundTrip(m.t, l.resp.Secret)
	secret.LeaseID = leaseIDOf(l.resp)
	secret.IssueTime = l.issued
	secret.Increment = increment
	r, err := m.e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Storage: m.e.storage, Secret: secret})
	if err != nil || r == nil || r.IsError() || r.Secret == nil {
		m.step("renew lease %d on %s (+%s): refused: %v %v", i, short(l.token), increment, err, firstLine(respErrText(r)))
		return
	}
	end, err := m.registeredEnd(r.Secret, increment, l.issued)
	if err != nil {
		m.step("renew lease %d on %s (+%s): Vault refuses: %v", i, short(l.token), increment, err)
		return
	}
	m.step("renew lease %d on %s (+%s): TTL %s max %s", i, short(l.token), increment, r.Secret.TTL, r.Secret.MaxTTL)
	m.checkTTL("a renewal", l, end, r.Secret.TTL)
	l.expires = end
}

// checkRevokedLease is (b) for a lease revocation the engine reported done.
func (m *leaseModel) checkRevokedLease(l *modelLease) {
	m.t.Helper()
	if l.rt != m.rt && m.e.sim.AccessTokenValid(l.token) && m.e.clock.Now().Before(l.tokExp) {
		m.fail("(b) the revocation of a lease on %s succeeded, the account has given up the refresh token %s it came from, but the access token is alive at Zoho (its refresh token alive: %v)",
			short(l.token), short(l.rt), m.e.sim.RefreshTokenValid(l.rt))
	}
}

// revoke sends the revocation of lease i (as Vault does at its end or on
// request); a failure leaves it for Vault's retry.
func (m *leaseModel) revoke(i int) {
	l := m.leases[i]
	err := m.e.revokeLease(l.resp)
	m.step("revoke lease %d on %s: %v", i, short(l.token), err)
	if err != nil {
		l.ending = true
		return
	}
	m.checkRevokedLease(l)
	l.revoked = true
	m.ended = append(m.ended, l)
	m.leases = append(m.leases[:i], m.leases[i+1:]...)
}

func (m *leaseModel) expireLeases() {
	now := m.e.clock.Now()
	kept := m.held[:0]
	for _, h := range m.held {
		if now.Before(h.tokExp) {
			kept = append(kept, h)
		}
	}
	clear(m.held[len(kept):])
	m.held = kept
	for i := len(m.leases) - 1; i >= 0; i-- {
		if !now.Before(m.leases[i].expires) {
			m.revoke(i)
		}
	}
}

func (m *leaseModel) advance(d time.Duration) {
	m.e.clock.Advance(d)
	m.step("advance %s", d)
	m.expireLeases()
}

// batch runs reads and revocations at once.
func (m *leaseModel) batch() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []*logical.Response
	reads := 1 + m.rng.IntN(6)
	now := m.e.clock.Now()
	for k := 0; k < reads; k++ {
		forced := m.rng.IntN(4) == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			var data map[string]interface{}
			if forced {
				data = map[string]interface{}{"min_ttl": "59m"}
			}
			resp, err := m.e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "creds/" + modelAccount, Data: data, Storage: m.e.storage})
			if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
				return
			}
			mu.Lock()
			got = append(got, resp)
			mu.Unlock()
		}()
	}
	var revoked []int
	for k := 0; k < len(m.leases) && k < 3; k++ {
		i := m.rng.IntN(len(m.leases))
		if containsInt(revoked, i) {
			continue
		}
		revoked = append(revoked, i)
		l := m.leases[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			secret := roundTrip(m.t, l.resp.Secret)
			secret.LeaseID = leaseIDOf(l.resp)
			_, err := m.e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RevokeOperation, Storage: m.e.storage, Secret: secret})
			mu.Lock()
			l.revoked, l.ending = err == nil, err != nil
			mu.Unlock()
		}()
	}
	waitDone(m.t, wg.Wait, "a batch of concurrent lease revocations finishing")
	kept := m.leases[:0]
	for _, l := range m.leases {
		if l.revoked {
			m.checkRevokedLease(l)
			m.ended = append(m.ended, l)
		} else {
			kept = append(kept, l)
		}
	}
	m.leases = kept
	m.step("batch: %d reads served, %d revocations sent", len(got), len(revoked))
	for _, resp := range got {
		l := m.newLease(resp, m.rt, now)
		m.leases = append(m.leases, l)
		m.checkTTL("a read in a batch", l, l.expires, resp.Secret.TTL)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ---- credentials ----

func (m *leaseModel) grantCode() string {
	code, err := m.e.sim.SelfClientCode(m.client.ID, "", []string{"ZohoCRM.modules.ALL"}, 0)
	if err != nil {
		m.t.Fatal(err)
	}
	return code
}

// write sends a config write; it reports the error text ("" on success)
// and the warnings.
func (m *leaseModel) write(op logical.Operation, data map[string]interface{}) (string, []string) {
	resp, err := m.e.request(op, "config/"+modelAccount, data)
	msg, status := m.e.classify(resp, err)
	if m.credPending && status == http.StatusOK {
		// Flows started before a credential write that landed are stale (a
		// refused write changed nothing; a replaced refresh token moves the
		// epoch too, see observe).
		m.epoch++
	}
	m.credPending = false
	if status != http.StatusOK {
		return fmt.Sprintf("%d %s", status, firstLine(msg)), nil
	}
	if resp != nil {
		return "", resp.Warnings
	}
	return "", nil
}

// credentialWrite marks a step that gives the account a new refresh token
// (or none): the flows started before it are stale from now on.
func (m *leaseModel) credentialWrite() {
	m.mayReplace = true
	m.credPending = true
}

// create (re)creates the account with a new grant.
func (m *leaseModel) create() {
	m.credentialWrite()
	msg, _ := m.write(logical.CreateOperation, map[string]interface{}{
		"client_id": m.client.ID, "client_secret": m.client.Secret, "accounts_url": m.e.sim.AccountsURL(m.dc),
		"scopes": "ZohoCRM.modules.ALL", "grant_code": m.grantCode(), "live_token_cap": 3, "redirect_uri": callbackURI,
	})
	m.step("create the account at %s: %s", m.dc, orOK(msg))
}

func orOK(msg string) string {
	if msg == "" {
		return "ok"
	}
	return msg
}

// writeGrant writes a new grant code.
func (m *leaseModel) writeGrant() {
	old := m.rt
	m.credentialWrite()
	msg, warnings := m.write(logical.UpdateOperation, map[string]interface{}{"grant_code": m.grantCode()})
	m.step("write a new grant code: %s %v", orOK(msg), warnings)
	if msg == "" && len(warnings) == 0 {
		m.checkRefreshTokenDead(old, "a write replaced the refresh token without warning")
	}
}

// importToken writes a refresh token the operator got elsewhere (the model
// exchanges a grant code at the simulator itself; that request is not the
// engine's and is left out of (c)).
func (m *leaseModel) importToken() {
	if len(m.e.sim.Faults()) > 0 {
		return // the model's own exchange would take a fault meant for the engine
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {m.client.ID}, "client_secret": {m.client.Secret}, "code": {m.grantCode()}}
	resp, err := http.PostForm(m.e.sim.AccountsURL(m.dc)+"/oauth/v2/token", form)
	if err != nil {
		m.t.Fatalf("import: the model's own exchange: %v", err)
	}
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	err = decodeJSONBody(resp, &body)
	m.e.sim.TakeSecretRequests() // the model's own exchange
	if err != nil || body.RefreshToken == "" {
		m.step("import: the model's own exchange failed: %v", err)
		return
	}
	old := m.rt
	m.credentialWrite()
	msg, warnings := m.write(logical.UpdateOperation, map[string]interface{}{"refresh_token": body.RefreshToken})
	m.step("import refresh token %s: %s %v", short(body.RefreshToken), orOK(msg), warnings)
	if msg == "" && len(warnings) == 0 {
		m.checkRefreshTokenDead(old, "an import replaced the refresh token without warning")
	}
}

// rotateSecret regenerates the client's secret at Zoho and writes it (with
// the current accounts server); on failure the old secret is restored at
// Zoho, as an operator would.
func (m *leaseModel) rotateSecret(moveTo string) {
	old := m.client
	next := old
	next.Secret = fmt.Sprintf("rotated%04d-%s", m.rng.IntN(10000), old.Secret[len(old.Secret)-8:])
	m.client = m.e.sim.RegisterClient(next)
	data := map[string]interface{}{"client_secret": m.client.Secret}
	if moveTo != "" {
		data["accounts_url"] = m.e.sim.AccountsURL(moveTo)
		m.stepDC = moveTo
	}
	msg, warnings := m.write(logical.UpdateOperation, data)
	m.step("rotate the client secret (move to %q): %s %v", moveTo, orOK(msg), warnings)
	if msg != "" {
		m.client = m.e.sim.RegisterClient(old)
		m.step("  the old secret is restored at Zoho")
		return
	}
	if moveTo != "" {
		m.dc = moveTo
	}
}

// badSecret writes a wrong client secret: the engine must refuse it (unless
// it says it could not verify it).
func (m *leaseModel) badSecret() {
	if m.rt == "" {
		return // nothing to verify it with
	}
	msg, warnings := m.write(logical.UpdateOperation, map[string]interface{}{"client_secret": "wrong-" + m.client.Secret[:8]})
	m.step("write a wrong client secret: %s %v", orOK(msg), warnings)
	if msg == "" {
		if len(warnings) == 0 || !strings.Contains(strings.Join(warnings, " "), "without verification") {
			m.fail("a wrong client_secret was accepted")
		}
		msg, _ = m.write(logical.UpdateOperation, map[string]interface{}{"client_secret": m.client.Secret})
		m.step("  the right one written back: %s", orOK(msg))
	}
}

// moveDC points the account at another data center's accounts server, with
// a new grant there or without.
func (m *leaseModel) moveDC(withGrant bool) {
	var to string
	for to = m.dc; to == m.dc; {
		to = modelDCs[m.rng.IntN(len(modelDCs))]
	}
	data := map[string]interface{}{"accounts_url": m.e.sim.AccountsURL(to)}
	old := m.rt
	if withGrant {
		data["grant_code"] = m.grantCode()
		m.credentialWrite()
	}
	m.stepDC = to
	msg, warnings := m.write(logical.UpdateOperation, data)
	m.step("move %s → %s (grant %v): %s %v", m.dc, to, withGrant, orOK(msg), warnings)
	if msg == "" {
		m.dc = to
		if withGrant && len(warnings) == 0 {
			m.checkRefreshTokenDead(old, "a move with a new grant replaced the refresh token without warning")
		}
	}
}

func (m *leaseModel) liveCap() {
	n := 1 + m.rng.IntN(3) // Zoho keeps 3 here: more would let Zoho evict held tokens
	msg, _ := m.write(logical.UpdateOperation, map[string]interface{}{"live_token_cap": n})
	m.step("live_token_cap=%d: %s", n, orOK(msg))
}

// checkRefreshTokenDead is (b) for a refresh token the engine reported
// revoked.
func (m *leaseModel) checkRefreshTokenDead(rt, what string) {
	m.t.Helper()
	if rt == "" {
		return
	}
	if m.e.sim.RefreshTokenValid(rt) {
		m.fail("(b) %s, but Zoho still accepts the refresh token %s", what, short(rt))
	}
	for _, l := range m.leases {
		if l.rt == rt && m.e.sim.AccessTokenValid(l.token) {
			m.fail("(b) %s, but the access token %s minted from %s is alive at Zoho", what, short(l.token), short(rt))
		}
	}
	for _, h := range m.held {
		if h.rt == rt && m.e.sim.AccessTokenValid(h.token) {
			m.fail("(b) %s, but the access token %s an unleased read got from %s is alive at Zoho", what, short(h.token), short(rt))
		}
	}
}

// ---- revoke/, delete ----

func (m *leaseModel) revokeAccount() {
	old := m.rt
	m.credentialWrite()
	resp, err := m.e.request(logical.UpdateOperation, "revoke/"+modelAccount, nil)
	msg, status := m.e.classify(resp, err)
	m.step("revoke/ (refresh token %s): %d %s", short(old), status, firstLine(msg))
	if status == http.StatusOK {
		m.checkRefreshTokenDead(old, "revoke/ succeeded")
	}
}

func (m *leaseModel) deleteAccount() {
	old := m.rt
	m.credentialWrite()
	resp, err := m.e.request(logical.DeleteOperation, "config/"+modelAccount, nil)
	msg, status := m.e.classify(resp, err)
	m.step("delete (refresh token %s): %d %s", short(old), status, firstLine(msg))
	if status == http.StatusOK {
		m.checkRefreshTokenDead(old, "the delete succeeded")
	}
	if _, exists := m.storedRT(); !exists {
		// Gone with the account. (A delete that failed before removing it
		// leaves its flows running, and an approval may still land.)
		m.dev, m.consent = nil, nil
	}
}

// ---- device flow ----

func (m *leaseModel) deviceStart() {
	resp, err := m.e.request(logical.UpdateOperation, "device/"+modelAccount, nil)
	msg, status := m.e.classify(resp, err)
	if status != http.StatusOK {
		m.step("device start: %d %s", status, firstLine(msg))
		return
	}
	code, _ := resp.Data["user_code"].(string)
	m.dev = &modelFlow{userCode: code, epoch: m.epoch}
	m.step("device start: user code %s", code)
}

// devicePoll lets the next poll run: the clock moves a poll interval on and
// the due timers fire.
func (m *leaseModel) devicePoll() {
	m.advance(30 * time.Second)
	m.e.fireDueTimers()
	m.step("timers fired")
	if m.dev != nil && m.dev.approved {
		m.mayReplace = m.dev.epoch == m.epoch
	}
}

func (m *leaseModel) deviceDecide(approve bool) {
	if m.dev == nil {
		return
	}
	var err error
	if approve {
		err = m.e.sim.ApproveDevice(m.dev.userCode, "", "")
		// A second decision on a code already approved fails at Zoho: the
		// approval stands (the engine may still be about to poll it).
		m.dev.approved = m.dev.approved || err == nil
	} else {
		err = m.e.sim.DenyDevice(m.dev.userCode)
	}
	m.step("device %s at Zoho (started %d credential writes ago): %v", map[bool]string{true: "approved", false: "denied"}[approve], m.epoch-m.dev.epoch, err)
	m.devicePoll()
}

func (m *leaseModel) deviceExpire() {
	m.advance(5*time.Minute + time.Second)
	m.e.fireDueTimers()
	m.step("device code expired; timers fired")
	m.dev = nil
}

// staleDevice: a device flow started, then a grant written, then the old
// user code approved.
func (m *leaseModel) staleDevice() {
	m.deviceStart()
	if m.dev == nil {
		return
	}
	m.writeGrant()
	m.checkpoint()
	m.read(false)
	m.deviceDecide(true)
}

// ---- consent ----

func (m *leaseModel) authURL() {
	resp, err := m.e.request(logical.ReadOperation, "auth-url/"+modelAccount, nil)
	msg, status := m.e.classify(resp, err)
	if status != http.StatusOK {
		m.step("auth-url: %d %s", status, firstLine(msg))
		m.consent = nil
		return
	}
	m.consent = &modelFlow{authURL: resp.Data["auth_url"].(string), epoch: m.epoch}
	m.step("auth-url")
}

func (m *leaseModel) callback() {
	c := m.consent
	if c == nil {
		return
	}
	m.consent = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loc, err := zohosim.Consent(ctx, nil, c.authURL, "", zohosim.Accept)
	if err != nil {
		m.step("consent at Zoho: %v", err)
		return
	}
	data := map[string]interface{}{}
	for k, v := range loc.Query() {
		data[k] = v[0]
	}
	stale := c.epoch != m.epoch
	if !stale {
		m.credentialWrite()
	}
	resp, err := m.e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "callback", Data: data, Storage: m.e.storage, Unauthenticated: true})
	status := 0
	if err == nil && resp != nil {
		status, _ = resp.Data[logical.HTTPStatusCode].(int)
	}
	m.step("callback (started %d credential writes ago): %d %v", m.epoch-c.epoch, status, err)
}

func (m *leaseModel) staleConsent() {
	m.authURL()
	if m.consent == nil {
		return
	}
	m.writeGrant()
	m.checkpoint()
	m.read(false)
	m.callback()
}

// ---- Zoho's troubles, the WAL ----

func (m *leaseModel) rollback(past time.Duration) {
	m.e.clock.Advance(past)
	_, err := m.e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true})
	m.step("WAL rollback %s later: %v", past, err)
	m.expireLeases()
}

// nearExpiry moves the clock to just over a minute before the current
// token's expiry, while Zoho's token endpoint answers 503, and reads.
func (m *leaseModel) nearExpiry() {
	a := m.e.b.cachedAccount(modelAccount)
	if a == nil {
		return
	}
	v := a.view.Load()
	if v == nil {
		return
	}
	d := v.expiresAt.Add(-61*time.Second - time.Duration(m.rng.IntN(1000))*time.Millisecond).Sub(m.e.clock.Now())
	if d <= 0 {
		return
	}
	m.advance(d)
	m.e.sim.AddFault(zohosim.Fault{Endpoint: "token", Kind: zohosim.FaultStatus, Status: 503, Times: 2})
	m.step("token %s expires in %s; the token endpoint answers 503 twice", short(v.accessToken), v.expiresAt.Sub(m.e.clock.Now()))
	m.read(false)
}

// settleRace (defect hunt): a reader that loaded the account reserves
// leases while the WAL rollback settles an entry of the account (an
// interrupted exchange, or a revocation given up) and another reader,
// finding the account gone from memory, loads it again and refreshes. The
// storage Put hook runs the settlement and the second reader inside the first
// reader's reservation write, so the interleaving is deterministic.
func (m *leaseModel) settleRace() {
	if m.rt == "" {
		return
	}
	m.failN.Store(0)
	if m.rng.IntN(2) == 0 {
		// An exchange whose answer is lost leaves its WAL entry.
		m.e.sim.AddFault(zohosim.Fault{Endpoint: "token", GrantType: "authorization_code", Kind: zohosim.FaultLostAnswer, Times: 1})
		m.mayInterrupt = true
		m.credentialWrite()
		msg, _ := m.write(logical.UpdateOperation, map[string]interface{}{"grant_code": m.grantCode()})
		m.step("race: a grant whose answer is lost: %s", orOK(msg))
		m.checkpoint()
	} else {
		// A replaced refresh token Zoho will not revoke for revokeRetryFor.
		m.e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503})
		m.writeGrant()
		m.checkpoint()
		m.advance(revokeRetryFor + time.Minute)
	}
	m.read(true)
	var inner []*logical.Response
	held := m.e.b.cachedAccount(modelAccount)
	var waiting chan error
	race := func() {
		// The rollback runs beside this reader, which holds the account's
		// mutex inside its reservation write. An engine that changes the
		// live account object in place waits for the mutex (and then
		// nothing was dropped); one that drops the object from the map
		// finishes at once. The bound only decides whether the defect is
		// looked for: a slow machine makes this step weaker, never wrong.
		done := make(chan error, 1)
		go func() {
			_, err := m.e.request(logical.RollbackOperation, "", map[string]interface{}{"immediate": true})
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(250 * time.Millisecond):
			waiting = done
			m.step("race: inside a reservation: the settlement waits for the reader's mutex")
			return
		}
		if held == nil || m.e.b.cachedAccount(modelAccount) == held {
			// Nothing settled: the reader holding the account's mutex would
			// block the second reader.
			m.step("race: inside a reservation: rollback %v, nothing dropped the account", err)
			return
		}
		m.e.clock.Advance(2 * time.Minute)
		resp, rerr := m.e.request(logical.ReadOperation, "creds/"+modelAccount, map[string]interface{}{"min_ttl": "59m"})
		m.step("race: inside a reservation: rollback %v, then a forced read: %v %v", err, rerr, firstLine(respErrText(resp)))
		if rerr == nil && resp != nil && resp.Secret != nil {
			inner = append(inner, resp)
		}
	}
	m.hookRace.Store(&race)
	for k := 0; k < 2*initialReservation+2 && m.hookRace.Load() != nil; k++ {
		m.read(false)
	}
	m.hookRace.Store(nil)
	if waiting != nil {
		err := receive(m.t, waiting, "the WAL settlement that waited for the reader's reservation write")
		m.step("race: the settlement ran after the reservation: %v", err)
	}
	for _, resp := range inner {
		l := m.newLease(resp, m.rt, m.e.clock.Now())
		m.leases = append(m.leases, l)
		m.step("race: lease %d on %s from the inner read", len(m.leases)-1, short(l.token))
		m.checkTTL("a read", l, l.expires, resp.Secret.TTL)
	}
	m.e.sim.ClearFaults()
	m.restartEngine()
}

func (m *leaseModel) restartEngine() {
	m.e.waitBackground()
	m.e.restartInitialized()
	m.step("restart")
	if m.dev != nil && m.dev.approved && m.dev.epoch == m.epoch {
		m.mayReplace = true // the resumed poll may collect the approval
	}
}

// ---- the checks ----

// checkpoint checks the invariants in the middle of a composite step and
// starts its next part afresh.
func (m *leaseModel) checkpoint() {
	m.t.Helper()
	m.e.waitBackground()
	m.check()
	m.stepDC, m.mayReplace = m.dc, false
}

func (m *leaseModel) storedRT() (string, bool) {
	cfg, err := loadConfig(context.Background(), m.e.storage, modelAccount)
	if err != nil {
		m.t.Fatal(err)
	}
	if cfg == nil {
		return "", false
	}
	return cfg.RefreshToken, true
}

func (m *leaseModel) check() {
	m.t.Helper()
	now := m.e.clock.Now()

	// (e): the refresh token changes only where it may; the leases of one the
	// operator gave up may die.
	rt, exists := m.storedRT()
	if rt != m.rt {
		if !m.mayReplace {
			m.fail("(e) the refresh token changed from %s to %s in a step that may not change it (%s): an approval or callback of a flow started before a later credential write replaced it",
				short(m.rt), short(rt), m.stepName)
		}
		for _, l := range m.leases {
			if l.rt != rt {
				l.released = true
			}
		}
		for _, h := range m.held {
			if h.rt != rt {
				h.released = true
			}
		}
		m.step("  refresh token %s → %s", short(m.rt), short(rt))
		m.rt = rt
		m.epoch++ // every flow started before is stale now
		if m.dev != nil && m.dev.approved {
			m.dev = nil
		}
	}
	m.exists = exists
	for i, l := range m.leases {
		if now.Before(l.expires) && !l.ending && !l.released && !l.rejected && !m.e.sim.AccessTokenValid(l.token) {
			m.fail("(e) lease %d holds %s until %s, but Zoho no longer knows the token (its refresh token %s: alive %v)",
				i, short(l.token), l.expires.Sub(now), short(l.rt), m.e.sim.RefreshTokenValid(l.rt))
		}
	}

	// (h): unleased tokens live until they expire.
	for _, h := range m.held {
		if now.Before(h.tokExp) && !h.released && !h.rejected && !m.e.sim.AccessTokenValid(h.token) {
			m.fail("(h) an unleased read handed out %s, which expires in %s, but Zoho no longer knows it (its refresh token %s: alive %v)",
				short(h.token), h.tokExp.Sub(now), short(h.rt), m.e.sim.RefreshTokenValid(h.rt))
		}
	}

	// (c): where the client secret went.
	reqs, dropped := m.e.sim.TakeSecretRequests()
	if dropped > 0 {
		m.fail("(c) the simulator's secret log overflowed (%d dropped)", dropped)
	}
	for _, r := range reqs {
		if r.DC != m.stepDC {
			m.fail("(c) a %s request carried the client secret to the accounts server of %s; the account names %s's", r.Endpoint, r.DC, m.stepDC)
		}
	}

	if !exists {
		return
	}
	// (d): no alarm without a lost answer.
	if !m.mayInterrupt {
		st := m.e.must(logical.ReadOperation, "status/"+modelAccount, nil)
		if at, _ := st.Data["interrupted_exchange_at"].(string); at != "" {
			m.fail("(d) status/%s shows an interrupted exchange at %s, but no answer was lost and no storage write failed while a grant could mint", modelAccount, at)
		}
	}

	// (f): the stored token state counts every lease on the current refresh token.
	tok, err := loadTokenState(context.Background(), m.e.storage, modelAccount)
	if err != nil {
		m.t.Fatal(err)
	}
	for _, h := range m.held {
		if h.released || h.rejected || h.rt != rt || !now.Before(h.tokExp) || tok == nil {
			continue
		}
		for _, mt := range tok.Minted {
			if mt.ID == h.tokenID && !mt.HeldUntilExpiry {
				m.fail("(h) %s was handed out unleased, but the stored token state does not hold it until it expires: after a restart a lease revocation or a refresh may end it", short(h.token))
			}
		}
	}
	for i, l := range m.leases {
		if l.released || l.rt != rt || !now.Before(l.expires) || tok == nil || tok.Generation != l.gen {
			continue
		}
		var found *mintedToken
		for _, mt := range tok.Minted {
			if mt.ID == l.tokenID {
				found = mt
			}
		}
		if found == nil || found.Reserved < l.seq {
			reserved := int64(-1)
			if found != nil {
				reserved = found.Reserved
			}
			m.fail("(f) lease %d (number %d on %s) is not counted in the stored token state (listed %v, reserved %d): after a restart the engine may revoke or let Zoho evict its token",
				i, l.seq, short(l.token), found != nil, reserved)
		}
	}
}

// lostArmed reports whether an answer Zoho sends may be lost (or a storage
// write fail) in the coming step. ambiguous reports whether a grant may be
// answered in a way that leaves the engine unsure whether Zoho minted (a
// 5xx, a reset, an unreadable answer): the engine counts those as possibly
// minted, so they may raise the alarm when they hit a grant.
func (m *leaseModel) lostArmed() (lost, ambiguous bool) {
	if m.failN.Load() > 0 {
		lost = true
	}
	for _, f := range m.e.sim.Faults() {
		if f.Endpoint != "token" && f.Endpoint != "device_token" && f.Endpoint != "*" && f.Endpoint != "" {
			continue
		}
		switch f.Kind {
		case zohosim.FaultLostAnswer:
			lost = true
		case zohosim.FaultStatus, zohosim.FaultReset, zohosim.FaultGarbage, zohosim.FaultTruncated:
			ambiguous = true
		}
	}
	return lost, ambiguous
}

func runLeaseModel(t *testing.T, seed uint64, steps int) (revocations int64) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 3 })
	m := &leaseModel{t: t, e: e, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), dc: "us",
		tolerate: map[string]bool{}, tolerated: map[string]bool{}}
	for _, inv := range strings.Split(os.Getenv("MODEL_TOLERATE"), ",") {
		m.tolerate[strings.Trim(strings.TrimSpace(inv), "()")] = true
	}
	m.client = e.sim.RegisterClient(zohosim.Client{DC: "us", MultiDC: []string{"eu", "in"}, RedirectURIs: []string{callbackURI}})
	m.stepDC, m.stepName = m.dc, "create"
	m.create()
	m.check()
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
		if en.Key == tokenPrefix+modelAccount {
			if race := m.hookRace.Load(); race != nil && m.hookRace.CompareAndSwap(race, nil) {
				(*race)()
			}
		}
		for {
			n := m.failN.Load()
			if n <= 0 {
				return nil
			}
			if m.failN.CompareAndSwap(n, n-1) {
				return errors.New("injected storage failure")
			}
		}
	})
	for s := 0; s < steps; s++ {
		m.stepDC, m.mayReplace, m.credPending = m.dc, false, false
		before := e.sim.Counters()
		armed, ambiguous := m.lostArmed()
		r := m.rng.IntN(1000)
		if !m.exists {
			m.stepName = "re-create"
			m.create()
		} else if m.rt == "" && r%3 == 0 {
			m.stepName = "grant after revoke/"
			m.writeGrant()
		} else {
			m.runStep(r)
		}
		e.waitBackground()
		after := e.sim.Counters()
		if armed && after.Exchanges+after.DeviceGrants > before.Exchanges+before.DeviceGrants {
			m.mayInterrupt = true
		}
		if ambiguous && after.FaultsInjected > before.FaultsInjected {
			m.mayInterrupt = true
		}
		if os.Getenv("MODEL_DEBUG") != "" {
			m.debugState()
		}
		m.check()
	}
	// The run must have exercised what it claims to.
	served, refreshes, revoked := 0, e.sim.Counters().Refreshes, e.sim.Counters().RevokedAccess
	for _, line := range m.log {
		if strings.Contains(line, ": lease ") {
			served++
		}
	}
	t.Logf("seed %d: %d reads served, %d refreshes and %d access-token revocations at Zoho, %d leases outstanding, %d credential writes",
		seed, served, refreshes, revoked, len(m.leases), m.epoch)
	if served < steps/10 || refreshes == 0 {
		t.Fatalf("the model exercised too little: %d reads served, %d refreshes", served, refreshes)
	}
	return revoked
}

// runStep runs one random step; r is in [0, 1000).
// modelOps are the model's steps: a step draws r in [0, 1000) and runs the
// first op whose upTo is above it (the differences are the weights, in
// thousandths).
var modelOps = []struct {
	upTo int
	name string
	run  func(m *leaseModel)
}{
	{205, "read", func(m *leaseModel) {
		m.read(false)
	}},
	{235, "unleased read", func(m *leaseModel) {
		m.unleasedRead(false)
	}},
	{240, "forced unleased read", func(m *leaseModel) {
		m.unleasedRead(true)
	}},
	{300, "forced read", func(m *leaseModel) {
		m.read(true)
	}},
	{420, "revoke lease", func(m *leaseModel) {
		if len(m.leases) > 0 {
			m.revoke(m.rng.IntN(len(m.leases)))
		}
	}},
	{470, "revoke again", func(m *leaseModel) {
		e := m.e
		if len(m.ended) > 0 { // Vault sends a revocation again
			l := m.ended[m.rng.IntN(len(m.ended))]
			err := e.revokeLease(l.resp)
			m.step("revoke again on %s: %v", short(l.token), err)
		}
	}},
	{550, "advance", func(m *leaseModel) {
		m.advance(time.Duration(m.rng.IntN(15*60)) * time.Second)
	}},
	{590, "periodic refresh", func(m *leaseModel) {
		e := m.e
		e.b.refreshDue(context.Background(), e.storage)
		e.waitBackground()
		m.devicePoll()
	}},
	{630, "storage failures", func(m *leaseModel) {
		n := int64(1 + m.rng.IntN(3))
		m.failN.Store(n)
		m.step("next %d storage writes fail", n)
	}},
	{645, "restart", func(m *leaseModel) {
		m.restartEngine()
	}},
	{665, "lost answer", func(m *leaseModel) { // Zoho does what is asked, its answer is lost
		e := m.e
		ep := []string{"token", "revoke", "device_token"}[m.rng.IntN(3)]
		e.sim.AddFault(zohosim.Fault{Endpoint: ep, Kind: zohosim.FaultLostAnswer, Times: 1})
		m.step("next %s answer is lost", ep)
	}},
	{712, "batch", func(m *leaseModel) {
		m.batch()
	}},
	{730, "report rejected", func(m *leaseModel) {
		m.reportRejected()
	}},
	{731, "batch", func(m *leaseModel) {
		m.batch()
	}},
	{760, "renew", func(m *leaseModel) {
		if len(m.leases) > 0 {
			m.renew(m.rng.IntN(len(m.leases)))
		}
	}},
	{775, "new grant", func(m *leaseModel) {
		m.writeGrant()
	}},
	{782, "import", func(m *leaseModel) {
		m.importToken()
	}},
	{790, "rotate secret", func(m *leaseModel) {
		m.rotateSecret("")
	}},
	{796, "wrong secret", func(m *leaseModel) {
		m.badSecret()
	}},
	{806, "move", func(m *leaseModel) {
		m.moveDC(m.rng.IntN(2) == 0)
	}},
	{811, "move and rotate secret", func(m *leaseModel) {
		to := m.dc
		for to == m.dc {
			to = modelDCs[m.rng.IntN(len(modelDCs))]
		}
		m.rotateSecret(to)
	}},
	{816, "live_token_cap", func(m *leaseModel) {
		m.liveCap()
	}},
	{831, "device start", func(m *leaseModel) {
		m.deviceStart()
	}},
	{843, "device approve", func(m *leaseModel) {
		m.deviceDecide(true)
	}},
	{848, "device deny", func(m *leaseModel) {
		m.deviceDecide(false)
	}},
	{853, "device expire", func(m *leaseModel) {
		m.deviceExpire()
	}},
	{861, "stale device approval", func(m *leaseModel) {
		m.staleDevice()
	}},
	{871, "auth-url", func(m *leaseModel) {
		m.authURL()
	}},
	{880, "callback", func(m *leaseModel) {
		m.callback()
	}},
	{886, "stale callback", func(m *leaseModel) {
		m.staleConsent()
	}},
	{896, "revoke/", func(m *leaseModel) {
		m.revokeAccount()
	}},
	{902, "delete", func(m *leaseModel) {
		m.deleteAccount()
	}},
	{917, "revoke outage", func(m *leaseModel) {
		e := m.e
		e.sim.AddFault(zohosim.Fault{Endpoint: "revoke", Kind: zohosim.FaultStatus, Status: 503})
		m.step("Zoho's revoke endpoint answers 503 until it recovers")
	}},
	{932, "Zoho recovers", func(m *leaseModel) {
		e := m.e
		e.sim.ClearFaults()
		m.step("Zoho recovers (every fault cleared)")
	}},
	{947, "WAL rollback", func(m *leaseModel) {
		past := walMinAge
		if m.rng.IntN(6) == 0 {
			past = revokeRetryFor + time.Minute
		}
		m.rollback(past)
	}},
	{957, "slow Zoho", func(m *leaseModel) {
		e := m.e
		d := time.Duration(5+m.rng.IntN(20)) * time.Millisecond
		e.sim.AddFault(zohosim.Fault{Kind: zohosim.FaultLatency, Latency: d, Times: 1 + m.rng.IntN(3)})
		m.step("Zoho answers the next requests %s late", d)
		m.read(m.rng.IntN(2) == 0)
	}},
	{977, "near expiry while Zoho is down", func(m *leaseModel) {
		m.nearExpiry()
	}},
	{985, "settlement racing a reservation", func(m *leaseModel) {
		m.settleRace()
	}},
	{1000, "restart", func(m *leaseModel) {
		m.restartEngine()
	}},
}

func (m *leaseModel) runStep(r int) {
	for _, op := range modelOps {
		if r < op.upTo {
			m.stepName = op.name
			op.run(m)
			return
		}
	}
}

func TestLeaseModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	steps := 1000
	if v := os.Getenv("MODEL_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("MODEL_STEPS=%q: %v", v, err)
		}
		steps = n
	}
	if v := os.Getenv("MODEL_SEED"); v != "" { // replay one seed a sweep reported
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MODEL_SEED=%q: %v", v, err)
		}
		seeds = []uint64{seed}
	}
	if v := os.Getenv("MODEL_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("MODEL_SEEDS=%q: %v", v, err)
		}
		seeds = seeds[:0]
		base := uint64(time.Now().UnixNano())
		if v := os.Getenv("MODEL_BASE"); v != "" { // a fixed sweep: seeds MODEL_BASE, MODEL_BASE+1, …
			if base, err = strconv.ParseUint(v, 10, 64); err != nil {
				t.Fatalf("MODEL_BASE=%q: %v", v, err)
			}
		}
		for i := 0; i < n; i++ {
			seeds = append(seeds, base+uint64(i))
		}
	}
	var revocations int64
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { revocations += runLeaseModel(t, seed, steps) })
	}
	if revocations == 0 && !t.Failed() {
		t.Fatal("no run revoked a token at Zoho: the model does not exercise revocation")
	}
}

func decodeJSONBody(resp *http.Response, v interface{}) error {
	defer resp.Body.Close()
	return jsonDecode(resp.Body, v)
}

func jsonDecode(r io.Reader, v interface{}) error { return json.NewDecoder(r).Decode(v) }

func respErrText(resp *logical.Response) string {
	if resp == nil {
		return ""
	}
	if raw, ok := resp.Data[logical.HTTPRawBody].([]byte); ok {
		return string(raw)
	}
	return respErr(resp)
}

// debugState appends the engine's and Zoho's view of the live tokens to the
// step log (MODEL_DEBUG=1).
func (m *leaseModel) debugState() {
	a := m.e.b.cachedAccount(modelAccount)
	if a == nil {
		return
	}
	now := m.e.clock.Now()
	a.mu.Lock()
	var parts []string
	for _, mt := range a.tok.Minted {
		r := a.recordLocked(mt.ID)
		parts = append(parts, fmt.Sprintf("%s[r%v R%v u%v o%d e%s]", mt.ID[:6], mt.Retired, mt.Revoked, mt.Unknown, r.outstanding(), mt.ExpiresAt.Sub(now).Round(time.Minute)))
	}
	rt := a.cfg.RefreshToken
	a.mu.Unlock()
	c := m.e.sim.Counters()
	m.step("    engine %s; Zoho live %d, evicted %d", strings.Join(parts, " "), m.e.sim.LiveAccessTokens(rt), c.Evictions)
}
