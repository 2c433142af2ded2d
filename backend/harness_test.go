package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// fakeClock is the injected clock shared by the engine and the simulator.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingStorage counts storage calls so tests can prove the hot path
// touches no storage.
// Tests may install hooks: a Put hook runs before the Put reaches the storage
// (its error fails the Put, nothing stored), a Get hook after the Get read it,
// a Get error hook before the Get (its error fails the Get, nothing read) and
// a Delete hook before the Delete (its error fails it, nothing deleted).
type countingStorage struct {
	logical.Storage
	gets, puts, lists, deletes atomic.Int64

	hookMu     sync.Mutex
	putHook    func(*logical.StorageEntry) error
	getHook    func(key string)
	getErr     func(key string) error
	deleteHook func(key string) error
}

func (s *countingStorage) setPutHook(h func(*logical.StorageEntry) error) {
	s.hookMu.Lock()
	s.putHook = h
	s.hookMu.Unlock()
}

func (s *countingStorage) setGetHook(h func(key string)) {
	s.hookMu.Lock()
	s.getHook = h
	s.hookMu.Unlock()
}

func (s *countingStorage) setGetErr(h func(key string) error) {
	s.hookMu.Lock()
	s.getErr = h
	s.hookMu.Unlock()
}

func (s *countingStorage) setDeleteHook(h func(key string) error) {
	s.hookMu.Lock()
	s.deleteHook = h
	s.hookMu.Unlock()
}

// errInjected is the failure the fail*Under helpers inject.
var errInjected = errors.New("injected storage failure")

// failPutsUnder makes every Put of a key under prefix fail, nothing stored.
func (s *countingStorage) failPutsUnder(prefix string) {
	s.setPutHook(func(en *logical.StorageEntry) error {
		if strings.HasPrefix(en.Key, prefix) {
			return errInjected
		}
		return nil
	})
}

// failDeletesUnder makes every Delete of a key under prefix fail, nothing
// deleted.
func (s *countingStorage) failDeletesUnder(prefix string) {
	s.setDeleteHook(func(key string) error {
		if strings.HasPrefix(key, prefix) {
			return errInjected
		}
		return nil
	})
}

func (s *countingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	s.gets.Add(1)
	s.hookMu.Lock()
	h, fail := s.getHook, s.getErr
	s.hookMu.Unlock()
	if fail != nil {
		if err := fail(k); err != nil {
			return nil, err
		}
	}
	entry, err := s.Storage.Get(ctx, k)
	if h != nil {
		h(k)
	}
	return entry, err
}

func (s *countingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	s.puts.Add(1)
	s.hookMu.Lock()
	h := s.putHook
	s.hookMu.Unlock()
	if h != nil {
		if err := h(e); err != nil {
			return err
		}
	}
	return s.Storage.Put(ctx, e)
}

func (s *countingStorage) List(ctx context.Context, p string) ([]string, error) {
	s.lists.Add(1)
	return s.Storage.List(ctx, p)
}

func (s *countingStorage) Delete(ctx context.Context, k string) error {
	s.deletes.Add(1)
	s.hookMu.Lock()
	h := s.deleteHook
	s.hookMu.Unlock()
	if h != nil {
		if err := h(k); err != nil {
			return err
		}
	}
	return s.Storage.Delete(ctx, k)
}

// lockedBuffer collects the engine's log output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	t       *testing.T
	clock   *fakeClock
	sim     *zohosim.Server
	simURL  string
	b       *Backend
	storage *countingStorage
	logs    *lockedBuffer
	opts    Options
	timers  *fakeTimers  // the engine's scheduled refreshes, fired only by the test
	stuck   *atomic.Bool // a request went unanswered (see request)
}

type envOpt func(*zohosim.Config, *Options)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	simCfg := zohosim.Config{Now: clock.Now}
	timers := &fakeTimers{}
	bopts := Options{Now: clock.Now, Timeout: 2 * time.Second, AfterFunc: timers.afterFunc(clock)}
	for _, o := range opts {
		o(&simCfg, &bopts)
	}
	sim := zohosim.New(simCfg)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })

	logs := &lockedBuffer{}
	conf := logical.TestBackendConfig()
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	storage := &countingStorage{Storage: &logical.InmemStorage{}}
	conf.StorageView = storage
	lb, err := FactoryWithOptions(bopts)(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	b := lb.(*Backend)
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	return &env{t: t, clock: clock, sim: sim, simURL: url, b: b, storage: storage, logs: logs, opts: bopts, timers: timers, stuck: &atomic.Bool{}}
}

// request sends one request to the backend and returns its response and error.
// A request still unanswered after waitLimit (the engine waits on a lock
// nobody releases, say) is given up: the test fails naming it, instead of
// hanging until go test's own timeout. Safe from any goroutine.
// Once one request went unanswered, later ones fail at once (the engine is
// stuck: waiting waitLimit for each would make a long test hang for minutes).
func (e *env) request(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	e.t.Helper()
	if e.stuck.Load() {
		return nil, fmt.Errorf("%s %s not sent: an earlier request never got an answer", op, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage}
	resp, err := e.b.HandleRequest(ctx, req)
	if ctx.Err() != nil {
		e.stuck.Store(true)
		e.t.Errorf("%s %s did not answer within %s", op, path, waitLimit)
	}
	return resp, err
}

// must sends a request that has to succeed.
func (e *env) must(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, msg, status := e.attempt(op, path, data)
	if status != http.StatusOK {
		e.t.Fatalf("%s %s: %d %s", op, path, status, msg)
	}
	return resp
}

// fails sends a request that has to fail and returns the error text and the
// HTTP status Vault would answer.
func (e *env) fails(op logical.Operation, path string, data map[string]interface{}) (string, int) {
	e.t.Helper()
	_, msg, status := e.attempt(op, path, data)
	if status == http.StatusOK {
		e.t.Fatalf("%s %s: expected failure, got success", op, path)
	}
	return msg, status
}

// attempt sends a request and returns the response, the error text and the
// HTTP status Vault would answer (200 for success).
func (e *env) attempt(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, string, int) {
	e.t.Helper()
	resp, err := e.request(op, path, data)
	msg, status := e.classify(resp, err)
	return resp, msg, status
}

func (e *env) classify(resp *logical.Response, err error) (string, int) {
	e.t.Helper()
	switch {
	case err != nil:
		if coded, ok := err.(logical.HTTPCodedError); ok {
			return err.Error(), coded.Code()
		}
		return err.Error(), 500
	case resp != nil && resp.IsError():
		return respErr(resp), 400
	case resp != nil && resp.Data[logical.HTTPStatusCode] != nil && resp.Data[logical.HTTPStatusCode].(int) >= 400:
		var body struct{ Errors []string }
		raw, _ := resp.Data[logical.HTTPRawBody].([]byte)
		if err := json.Unmarshal(raw, &body); err != nil || len(body.Errors) != 1 {
			e.t.Fatalf("raw error body %q: %v", raw, err)
		}
		return body.Errors[0], resp.Data[logical.HTTPStatusCode].(int)
	}
	return "", http.StatusOK
}

func respErr(resp *logical.Response) string {
	if resp == nil || resp.Data == nil {
		return ""
	}
	s, _ := resp.Data["error"].(string)
	return s
}

// newClient registers a client at the simulator for data center dc.
func (e *env) newClient(dc string) zohosim.Client {
	return e.sim.RegisterClient(zohosim.Client{DC: dc})
}

func (e *env) code(c zohosim.Client) string {
	e.t.Helper()
	code, err := e.sim.SelfClientCode(c.ID, "", []string{"ZohoCRM.modules.ALL"}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

// account creates account name with a fresh simulator client and grant code.
func (e *env) account(name string, extra map[string]interface{}) zohosim.Client {
	e.t.Helper()
	c := e.newClient("us")
	data := map[string]interface{}{
		"client_id":     c.ID,
		"client_secret": c.Secret,
		"accounts_url":  e.sim.AccountsURL("us"),
		"scopes":        "ZohoCRM.modules.ALL",
		"grant_code":    e.code(c),
	}
	for k, v := range extra {
		data[k] = v
	}
	e.must(logical.CreateOperation, "config/"+name, data)
	return c
}

// concurrentCreds starts n creds/ reads of name at once and returns each
// reader's access token, or its error text.
func (e *env) concurrentCreds(name string, n int) (tokens, fails []string) {
	e.t.Helper()
	tokens, fails = make([]string, n), make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			resp, msg, status := e.attempt(logical.ReadOperation, "creds/"+name, nil)
			if status != http.StatusOK {
				fails[i] = msg
				return
			}
			tokens[i] = accessToken(resp)
		}(i)
	}
	close(start)
	waitDone(e.t, wg.Wait, fmt.Sprintf("%d concurrent creds/%s reads finishing", n, name))
	return tokens, fails
}

func (e *env) creds(name string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	return e.must(logical.ReadOperation, "creds/"+name, data)
}

func accessToken(resp *logical.Response) string {
	s, _ := resp.Data["access_token"].(string)
	return s
}

// roundTrip passes a lease's secret through JSON, as Vault's storage does.
func roundTrip(t *testing.T, s *logical.Secret) *logical.Secret {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out logical.Secret
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// revokeLease revokes the lease of a creds response, after a JSON round trip,
// as Vault's expiration manager does (Vault may send it more than once).
func (e *env) revokeLease(resp *logical.Response) error {
	e.t.Helper()
	return e.revokeLeaseCtx(context.Background(), resp)
}

func (e *env) revokeLeaseCtx(ctx context.Context, resp *logical.Response) error {
	e.t.Helper()
	secret := roundTrip(e.t, resp.Secret)
	if secret.LeaseID == "" {
		secret.LeaseID = leaseIDOf(resp)
	}
	req := &logical.Request{Operation: logical.RevokeOperation, Storage: e.storage, Secret: secret}
	r, err := e.b.HandleRequest(ctx, req)
	if err == nil && r != nil && r.IsError() {
		return errString(respErr(r))
	}
	return err
}

// leaseIDs gives every creds response a stable lease ID, as Vault would.
var leaseIDs sync.Map // *logical.Response → string
var leaseSeq atomic.Int64

func leaseIDOf(resp *logical.Response) string {
	id, _ := leaseIDs.LoadOrStore(resp, fmt.Sprintf("zoho/creds/x/lease%d", leaseSeq.Add(1)))
	return id.(string)
}

// restart replaces the backend by a new one on the same storage, as after a
// plugin restart, a reload or a failover. The old one is cleaned up.
func (e *env) restart() {
	e.t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Trace})
	lb, err := FactoryWithOptions(e.opts)(context.Background(), conf)
	if err != nil {
		e.t.Fatal(err)
	}
	e.b.Cleanup(context.Background())
	e.b = lb.(*Backend)
	nb := e.b
	e.t.Cleanup(func() { nb.Cleanup(context.Background()) })
}

// restartInitialized restarts the engine on the same storage and runs
// Vault's initialization of the new one, as a plugin (re)start does.
func (e *env) restartInitialized() {
	e.t.Helper()
	e.restart()
	if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		e.t.Fatal(err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// assertNoSecrets fails if any of secrets appears in s.
func assertNoSecrets(t *testing.T, where, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Fatalf("%s contains a secret (%d chars)", where, len(sec))
		}
	}
}

func mustJSON(t *testing.T, v interface{}) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// authorize plays the browser in Zoho's consent redirect flow (the default
// user accepts) and returns the grant code from the redirect.
func authorize(t *testing.T, e *env, c zohosim.Client, accessType string) string {
	t.Helper()
	q := url.Values{
		"client_id": {c.ID}, "response_type": {"code"}, "redirect_uri": {c.RedirectURIs[0]},
		"scope": {"ZohoCRM.modules.ALL"}, "access_type": {accessType}, "prompt": {"consent"}, "state": {"s1"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loc, err := zohosim.Consent(ctx, nil, e.sim.AccountsURL("us")+"/oauth/v2/auth?"+q.Encode(), "", zohosim.Accept)
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("consent redirect: %v %v", loc, err)
	}
	return loc.Query().Get("code")
}

func t0ctx() context.Context { return context.Background() }

// refusedURL is an accounts server URL on a loopback port nothing listens on:
// every connection to it is refused, so no request is ever sent.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	_ = l.Close()
	return u
}

// waitLimit bounds every wait of a test on another goroutine: a wait that
// would block forever (the engine lost a wake-up, a hook was never reached)
// fails within seconds instead, naming what did not happen. It is long
// beside what any awaited step needs, even on a loaded machine.
const waitLimit = 10 * time.Second

// receive waits at most waitLimit for a value from ch; otherwise it fails
// the test: "<what> did not happen within 10s".
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s did not happen within %s", what, waitLimit)
		var zero T
		return zero
	}
}

// waitDone waits at most waitLimit for wait (a WaitGroup's Wait, say) to
// return; otherwise it fails the test naming what did not finish. The
// goroutine left waiting ends with the test binary.
func waitDone(t testing.TB, wait func(), what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait()
	}()
	receive(t, done, what)
}

// waitBackground waits, within waitLimit, for the engine's background work
// (refreshes a read or a timer started) to finish.
func (e *env) waitBackground() {
	e.t.Helper()
	waitDone(e.t, e.b.bgWG.Wait, "the engine's background refreshes finishing")
}

// blockUntil, for hooks that run on the engine's goroutines, waits for ch to
// close at most waitLimit: a test that fails before releasing the hook must
// not leave the engine blocked forever. It reports whether ch closed.
func blockUntil(ch <-chan struct{}) bool {
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}
