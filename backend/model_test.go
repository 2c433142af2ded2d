package backend

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// The lease bookkeeping model: random interleavings of reads (some forcing a
// refresh), lease revocations (some sent twice, as Vault does), lease expiry,
// background refreshes, storage write failures, answers Zoho sends that are
// lost, and restarts, against the simulator. After every step:
//   - every unexpired lease's token is alive at Zoho (never revoked or
//     evicted while a lease holds it);
//   - every token a read handed out was alive at Zoho when handed out (a
//     token the engine revoked is never served again).
//
// make test runs TestLeaseModel with fixed seeds; make fuzz sweeps more seeds
// (MODEL_SEEDS=N).

type modelLease struct {
	resp    *logical.Response
	token   string
	expires time.Time // the lease's end
	revoked bool      // the engine confirmed the revocation
	ending  bool      // its revocation was sent (and failed): Vault retries it, nobody may rely on it
}

type leaseModel struct {
	t      *testing.T
	e      *env
	rng    *rand.Rand
	leases []*modelLease
	ended  []*modelLease // revoked leases, for duplicate revocations
	failN  atomic.Int64  // storage writes still to fail
	log    []string
}

func (m *leaseModel) step(format string, args ...interface{}) {
	m.log = append(m.log, fmt.Sprintf(format, args...))
}

func (m *leaseModel) fail(format string, args ...interface{}) {
	m.t.Helper()
	tail := m.log
	if len(tail) > 80 {
		tail = tail[len(tail)-80:]
	}
	c := m.e.sim.Counters()
	m.t.Fatalf("%s (Zoho: %d refreshes, %d access tokens revoked, %d evicted)\nlast steps:\n  %s",
		fmt.Sprintf(format, args...), c.Refreshes, c.RevokedAccess, c.Evictions, strings.Join(tail, "\n  "))
}

// read takes one lease; forced asks for a fresh token.
func (m *leaseModel) read(forced bool) {
	var data map[string]interface{}
	if forced {
		data = map[string]interface{}{"min_ttl": "59m59s"}
	}
	resp, err := m.e.request(logical.ReadOperation, "creds/model", data)
	if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
		m.step("read(forced=%v): failed: %v %v", forced, err, respErrText(resp))
		return
	}
	tok := accessToken(resp)
	if !m.e.sim.AccessTokenValid(tok) {
		m.fail("a read handed out a token that is dead at Zoho")
	}
	m.leases = append(m.leases, &modelLease{resp: resp, token: tok, expires: m.e.clock.Now().Add(resp.Secret.TTL)})
	m.step("read(forced=%v): lease %d on %s", forced, len(m.leases)-1, tokenID(tok)[:6])
}

// revoke sends the revocation of lease i (as Vault does at its end or on
// request); a failure leaves it for Vault's retry.
func (m *leaseModel) revoke(i int) {
	l := m.leases[i]
	err := m.e.revokeLease(l.resp)
	m.step("revoke lease %d on %s: %v", i, tokenID(l.token)[:6], err)
	if err != nil {
		l.ending = true
		return
	}
	l.revoked = true
	m.ended = append(m.ended, l)
	m.leases = append(m.leases[:i], m.leases[i+1:]...)
}

func (m *leaseModel) expireLeases() {
	now := m.e.clock.Now()
	for i := len(m.leases) - 1; i >= 0; i-- {
		if !now.Before(m.leases[i].expires) {
			m.revoke(i)
		}
	}
}

func (m *leaseModel) check() {
	now := m.e.clock.Now()
	for i, l := range m.leases {
		if now.Before(l.expires) && !l.ending && !m.e.sim.AccessTokenValid(l.token) {
			m.fail("lease %d holds %s until %s, but Zoho no longer knows the token", i, tokenID(l.token)[:6], l.expires.Sub(now))
		}
	}
}

// batch runs reads and revocations at once.
func (m *leaseModel) batch() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []*modelLease
	reads := 1 + m.rng.IntN(6)
	for k := 0; k < reads; k++ {
		forced := m.rng.IntN(4) == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			var data map[string]interface{}
			if forced {
				data = map[string]interface{}{"min_ttl": "59m59s"}
			}
			resp, err := m.e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "creds/model", Data: data, Storage: m.e.storage})
			if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
				return
			}
			mu.Lock()
			got = append(got, &modelLease{resp: resp, token: accessToken(resp), expires: m.e.clock.Now().Add(resp.Secret.TTL)})
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
	wg.Wait()
	kept := m.leases[:0]
	for _, l := range m.leases {
		if l.revoked {
			m.ended = append(m.ended, l)
		} else {
			kept = append(kept, l)
		}
	}
	m.leases = append(kept, got...)
	m.step("batch: %d reads served, %d revocations sent", len(got), len(revoked))
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func runLeaseModel(t *testing.T, seed uint64, steps int) (revocations int64) {
	e := newEnv(t, func(c *zohosim.Config, _ *Options) { c.LiveTokenCap = 3 })
	m := &leaseModel{t: t, e: e, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	e.account("model", map[string]interface{}{"live_token_cap": 3})
	e.storage.setPutHook(func(en *logical.StorageEntry) error {
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
		switch r := m.rng.IntN(100); {
		case r < 30:
			m.read(false)
		case r < 38:
			m.read(true)
		case r < 55:
			if len(m.leases) > 0 {
				m.revoke(m.rng.IntN(len(m.leases)))
			}
		case r < 63:
			if len(m.ended) > 0 { // Vault sends a revocation again
				l := m.ended[m.rng.IntN(len(m.ended))]
				err := e.revokeLease(l.resp)
				m.step("revoke again on %s: %v", tokenID(l.token)[:6], err)
			}
		case r < 75:
			d := time.Duration(m.rng.IntN(15*60)) * time.Second
			e.clock.Advance(d)
			m.step("advance %s", d)
			m.expireLeases()
		case r < 80:
			e.b.refreshDue(context.Background(), e.storage)
			e.b.bgWG.Wait()
			e.fireDueTimers()
			m.step("periodic refresh")
		case r < 86:
			n := int64(1 + m.rng.IntN(3))
			m.failN.Store(n)
			m.step("next %d storage writes fail", n)
		case r < 88:
			e.b.bgWG.Wait()
			e.restart()
			m.step("restart")
		case r < 90: // Zoho does what is asked, its answer is lost
			ep := []string{"token", "revoke"}[m.rng.IntN(2)]
			e.sim.AddFault(zohosim.Fault{Endpoint: ep, Kind: zohosim.FaultLostAnswer, Times: 1})
			m.step("next %s answer is lost", ep)
		default:
			m.batch()
		}
		e.b.bgWG.Wait()
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
	t.Logf("seed %d: %d reads served, %d refreshes and %d access-token revocations at Zoho, %d leases outstanding", seed, served, refreshes, revoked, len(m.leases))
	if served < steps/10 || refreshes == 0 {
		t.Fatalf("the model exercised too little: %d reads served, %d refreshes", served, refreshes)
	}
	return revoked
}

func TestLeaseModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
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
		for i := 0; i < n; i++ {
			seeds = append(seeds, base+uint64(i))
		}
	}
	var revocations int64
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { revocations += runLeaseModel(t, seed, 1000) })
	}
	if revocations == 0 {
		t.Fatal("no run revoked a token at Zoho: the model does not exercise revocation")
	}
}

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
	a := m.e.b.cachedAccount("model")
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
