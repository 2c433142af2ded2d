package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// deviceTimers is Options.AfterFunc for the device tests: a timer waits on
// the injected clock until the test fires it, so no test sleeps.
type deviceTimers struct {
	mu     sync.Mutex
	now    func() time.Time
	timers []*deviceTimer
}

type deviceTimer struct {
	at   time.Time
	f    func()
	done atomic.Bool // stopped or fired
}

func (dt *deviceTimers) afterFunc(d time.Duration, f func()) func() bool {
	t := &deviceTimer{at: dt.now().Add(d), f: f}
	dt.mu.Lock()
	dt.timers = append(dt.timers, t)
	dt.mu.Unlock()
	return func() bool { return !t.done.Swap(true) }
}

// live returns the timers neither stopped nor fired, earliest first.
func (dt *deviceTimers) live() []*deviceTimer {
	dt.mu.Lock()
	defer dt.mu.Unlock()
	var out []*deviceTimer
	for _, t := range dt.timers {
		if !t.done.Load() {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// fire moves the clock to the earliest live timer and runs it: a poll runs
// to its end, having set the next timer. It returns the timer's time.
func (dt *deviceTimers) fire(e *env) time.Time {
	e.t.Helper()
	live := dt.live()
	if len(live) == 0 {
		e.t.Fatal("no device poll is scheduled")
	}
	t := live[0]
	if d := t.at.Sub(e.clock.Now()); d > 0 {
		e.clock.Advance(d)
	}
	if t.done.Swap(true) {
		e.t.Fatal("the timer was stopped meanwhile")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.f()
	}()
	receive(e.t, done, fmt.Sprintf("the device poll due at %s finishing", t.at.Format(time.TimeOnly)))
	return t.at
}

// newDeviceEnv is an env whose background waits are deviceTimers.
func newDeviceEnv(t *testing.T, tweak func(*zohosim.Config)) (*env, *deviceTimers) {
	t.Helper()
	dt := &deviceTimers{}
	e := newEnv(t, func(c *zohosim.Config, o *Options) {
		if tweak != nil {
			tweak(c)
		}
		dt.now = o.Now
		o.AfterFunc = dt.afterFunc
	})
	return e, dt
}

// deviceAccount configures an account of client c with no refresh token.
func (e *env) deviceAccount(name string, c zohosim.Client) {
	e.t.Helper()
	e.must(logical.CreateOperation, "config/"+name, map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL(c.DC),
		"scopes": "ZohoCRM.modules.ALL,ZohoCRM.users.READ",
	})
}

// startDevice starts the device flow of account name and returns the answer.
func (e *env) startDevice(name string) *logical.Response {
	e.t.Helper()
	return e.must(logical.UpdateOperation, "device/"+name, nil)
}

func (e *env) storedDevice(name string) *deviceRecord {
	e.t.Helper()
	var rec deviceRecord
	found, err := getJSON(context.Background(), e.storage, devicePrefix+name, &rec)
	if err != nil {
		e.t.Fatal(err)
	}
	if !found {
		return nil
	}
	return &rec
}

func (e *env) deviceState(name string) map[string]interface{} {
	e.t.Helper()
	resp := e.must(logical.ReadOperation, "device/"+name, nil)
	if resp == nil {
		e.t.Fatalf("device/%s: no authorization", name)
	}
	return resp.Data
}

func (e *env) attention() map[string][]string {
	e.t.Helper()
	resp := e.must(logical.ListOperation, "attention/", nil)
	out := map[string][]string{}
	if resp == nil || resp.Data["keys"] == nil {
		return out
	}
	for name, info := range resp.Data["key_info"].(map[string]interface{}) {
		out[name] = info.(map[string]interface{})["reasons"].([]string)
	}
	return out
}

// Pending, then approved: the engine polls at Zoho's interval, stores the
// refresh token on the poll after the approval (exactly one grant), and
// creds/ serves the access token that came with it.
func TestDeviceAuthorizationApproved(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	sealed := map[string]bool{}
	var sealedMu sync.Mutex
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if strings.HasPrefix(entry.Key, devicePrefix) {
			sealedMu.Lock()
			sealed[entry.Key] = entry.SealWrap
			sealedMu.Unlock()
		}
		return nil
	})
	c := e.newClient("us")
	e.deviceAccount("tv", c)
	start := e.clock.Now()
	resp := e.startDevice("tv")
	userCode, _ := resp.Data["user_code"].(string)
	if len(resp.Data) != 5 || userCode == "" || resp.Data["expires_in"] != 300 || resp.Data["interval"] != 30 ||
		resp.Data["expires_at"] != start.Add(5*time.Minute).UTC().Format(time.RFC3339) ||
		resp.Data["verification_url"] != e.sim.AccountsURL("us")+"/oauth/v3/device" {
		t.Fatalf("device/tv answered %v", resp.Data)
	}
	if len(resp.Warnings) != 0 {
		t.Fatalf("warnings for a fresh account: %v", resp.Warnings)
	}
	rec := e.storedDevice("tv")
	if rec == nil || rec.DeviceCode == "" || rec.State != paths.DeviceStatePending {
		t.Fatalf("stored authorization %+v", rec)
	}
	deviceCode := rec.DeviceCode
	assertNoSecrets(t, "device/ write", mustJSON(t, resp.Data), deviceCode, c.Secret)
	if got := e.sim.ClientCounters(c.ID); got.DeviceCodesIssued != 1 || got.DevicePolls != 0 {
		t.Fatalf("after the start: %+v", got)
	}

	// Pending twice, a whole interval apart.
	for i, want := range []time.Duration{30 * time.Second, 60 * time.Second} {
		if at := dt.fire(e); at.Sub(start) != want {
			t.Fatalf("poll %d at %s, want %s after the start", i+1, at.Sub(start), want)
		}
		if got := e.sim.ClientCounters(c.ID).DevicePolls; got != int64(i+1) {
			t.Fatalf("after poll %d Zoho saw %d polls", i+1, got)
		}
	}
	st := e.deviceState("tv")
	if st["state"] != paths.DeviceStatePending || st["polls"] != 2 || st["last_poll_answer"] != zoho.CodeAuthorizationPending ||
		st["last_poll"] != start.Add(time.Minute).UTC().Format(time.RFC3339) {
		t.Fatalf("device/tv while pending: %v", st)
	}
	status := e.must(logical.ReadOperation, "status/tv", nil).Data
	if status["device_authorization"] != paths.DeviceStatePending || status["device_user_code"] != userCode || status["has_refresh_token"] != false {
		t.Fatalf("status/tv while pending: %v", status)
	}

	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	if at := dt.fire(e); at.Sub(start) != 90*time.Second {
		t.Fatalf("the approving poll at %s", at.Sub(start))
	}
	got := e.sim.ClientCounters(c.ID)
	if got.DeviceGrants != 1 || got.DevicePolls != 3 || got.DeviceSlowDowns != 0 || got.TokenRequests != 0 {
		t.Fatalf("at Zoho: %+v, want 3 polls, one grant, no slow_down, no other token request", got)
	}
	if live := dt.live(); len(live) != 0 {
		t.Fatalf("%d polls still scheduled after the approval", len(live))
	}
	st = e.deviceState("tv")
	if st["state"] != paths.DeviceStateApproved || st["last_poll_answer"] != "granted" || st["ended_at"] != start.Add(90*time.Second).UTC().Format(time.RFC3339) {
		t.Fatalf("device/tv after approval: %v", st)
	}
	if rec := e.storedDevice("tv"); rec.DeviceCode != "" {
		t.Fatal("the device code is kept after the authorization ended")
	}
	a := e.b.cachedAccount("tv")
	a.mu.Lock()
	cfg := *a.cfg
	a.mu.Unlock()
	if cfg.RefreshToken == "" || cfg.Generation != 1 || cfg.RefreshTokenIssuer != e.sim.AccountsURL("us") || !cfg.GrantedAt.Equal(start.Add(90*time.Second)) {
		t.Fatalf("account after approval: generation %d, issuer %q, granted %s, refresh token held %v", cfg.Generation, cfg.RefreshTokenIssuer, cfg.GrantedAt, cfg.RefreshToken != "")
	}
	status = e.must(logical.ReadOperation, "status/tv", nil).Data
	if status["has_refresh_token"] != true || status["device_authorization"] != paths.DeviceStateApproved || status["live_tokens"] != 1 {
		t.Fatalf("status/tv after approval: %v", status)
	}
	// The access token that came with the grant is served: no refresh.
	cr := e.creds("tv", nil)
	if tok := accessToken(cr); !e.sim.AccessTokenValid(tok) || e.sim.ClientCounters(c.ID).Refreshes != 0 {
		t.Fatalf("creds/tv: token valid %v, refreshes %d", e.sim.AccessTokenValid(tok), e.sim.ClientCounters(c.ID).Refreshes)
	}
	if len(e.attention()) != 0 {
		t.Fatalf("attention/ lists %v", e.attention())
	}
	// Nothing failed, so the log reports no failure.
	for _, failure := range []string{
		"could not store a device poll's answer", "could not store the end of a device authorization",
		"the refresh token is stored but not its access token", "could not store the refresh token",
	} {
		if strings.Contains(e.logs.String(), failure) {
			t.Errorf("the log reports a failure that did not happen: %q", failure)
		}
	}
	sealedMu.Lock()
	if len(sealed) == 0 || !sealed[devicePrefix+"tv"] {
		t.Errorf("device records written without seal wrapping: %v", sealed)
	}
	sealedMu.Unlock()
	for where, text := range map[string]string{
		"logs": e.logs.String(), "status": mustJSON(t, status), "device/ read": mustJSON(t, st),
	} {
		assertNoSecrets(t, where, text, deviceCode, cfg.RefreshToken, accessToken(cr), c.Secret)
	}
}

// slow_down: the engine waits a whole interval more and keeps to the longer
// pace. Here a second poller of the same device code makes Zoho count the
// engine's poll as too soon.
func TestDeviceAuthorizationSlowDown(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("slow", c)
	start := e.clock.Now()
	userCode := e.startDevice("slow").Data["user_code"].(string)
	deviceCode := e.storedDevice("slow").DeviceCode
	dt.fire(e) // 30 s: pending

	// Another poller of the same code, 10 s later: Zoho counts every poll.
	e.clock.Advance(10 * time.Second)
	other := zoho.NewClient(zoho.Options{Timeout: 2 * time.Second})
	_, err := other.PollDeviceToken(context.Background(), zoho.App{AccountsURL: e.sim.AccountsURL("us"), ClientID: c.ID, ClientSecret: c.Secret}, deviceCode)
	if zoho.ClassifyDevicePoll(err) != zoho.DeviceSlowDown {
		t.Fatalf("the other poller: %v", err)
	}
	if at := dt.fire(e); at.Sub(start) != time.Minute {
		t.Fatalf("second poll at %s", at.Sub(start))
	}
	if got := e.sim.ClientCounters(c.ID).DeviceSlowDowns; got != 2 {
		t.Fatalf("slow_downs %d, want the other poller's and the engine's", got)
	}
	if st := e.deviceState("slow"); st["last_poll_answer"] != zoho.CodeSlowDown || st["interval"] != 60 {
		t.Fatalf("after slow_down: %v", st)
	}
	// From now on a poll every 60 s, and Zoho has nothing to complain about.
	for _, want := range []time.Duration{2 * time.Minute, 3 * time.Minute} {
		if at := dt.fire(e); at.Sub(start) != want {
			t.Fatalf("poll at %s, want %s", at.Sub(start), want)
		}
	}
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	if at := dt.fire(e); at.Sub(start) != 4*time.Minute {
		t.Fatalf("approving poll at %s", at.Sub(start))
	}
	got := e.sim.ClientCounters(c.ID)
	if got.DeviceSlowDowns != 2 || got.DeviceGrants != 1 || got.DevicePolls != 6 {
		t.Fatalf("at Zoho: %+v (5 engine polls, 1 other)", got)
	}
	if st := e.deviceState("slow"); st["state"] != paths.DeviceStateApproved {
		t.Fatalf("final state %v", st)
	}
}

// Zoho announces a short interval but enforces its documented one poll per
// 30 s: after the first slow_down the engine keeps to 30 s at least, so no
// poll is slowed down again.
func TestDeviceSlowDownKeepsToZohosDocumentedPace(t *testing.T) {
	e, dt := newDeviceEnv(t, func(c *zohosim.Config) {
		c.DevicePollInterval = 30 * time.Second // enforced
		c.DeviceAnnouncedPollInterval = 5 * time.Second
	})
	c := e.newClient("us")
	e.deviceAccount("pace", c)
	if got := e.startDevice("pace").Data["interval"]; got != 5 {
		t.Fatalf("announced interval %v, want 5", got)
	}
	var polls []time.Time
	slowedAt := -1
	for i := 0; i < 7; i++ {
		polls = append(polls, dt.fire(e))
		if slowedAt < 0 && e.sim.ClientCounters(c.ID).DeviceSlowDowns > 0 {
			slowedAt = i
		}
	}
	if slowedAt < 0 {
		t.Fatal("polling at the announced 5 s never met slow_down: the simulator does not enforce 30 s")
	}
	var gaps []time.Duration
	for i := 1; i < len(polls); i++ {
		gaps = append(gaps, polls[i].Sub(polls[i-1]))
	}
	got := e.sim.ClientCounters(c.ID)
	if got.DeviceSlowDowns != 1 || got.DevicePolls != int64(len(polls)) {
		t.Fatalf("%d of %d polls got slow_down (gaps %v), want only the first one too soon", got.DeviceSlowDowns, got.DevicePolls, gaps)
	}
	for i := slowedAt + 1; i < len(polls); i++ {
		if gap := polls[i].Sub(polls[i-1]); gap < 30*time.Second {
			t.Fatalf("poll %d came %s after the one before, after a slow_down (gaps %v)", i+1, gap, gaps)
		}
	}
	if st := e.deviceState("pace"); st["state"] != paths.DeviceStatePending || st["interval"] != 30 {
		t.Fatalf("device/pace: %v", st)
	}
}

// access_denied ends the authorization; the account, without a refresh
// token, is listed by attention/ until a new authorization starts, which a
// delete of device/<name> cancels.
func TestDeviceAuthorizationDenied(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("no", c)
	userCode := e.startDevice("no").Data["user_code"].(string)
	dt.fire(e)
	if err := e.sim.DenyDevice(userCode); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if live := dt.live(); len(live) != 0 {
		t.Fatalf("still polling after access_denied (%d timers)", len(live))
	}
	if st := e.deviceState("no"); st["state"] != paths.DeviceStateDenied || st["last_poll_answer"] != zoho.CodeAccessDenied || st["ended_at"] == "" {
		t.Fatalf("after denial: %v", st)
	}
	if got := e.attention(); strings.Join(got["no"], ",") != paths.ReasonDeviceDenied || len(got) != 1 {
		t.Fatalf("attention/ = %v, want the account with %s", got, paths.ReasonDeviceDenied)
	}
	polls := e.sim.ClientCounters(c.ID).DevicePolls
	e.clock.Advance(10 * time.Minute)
	if got := e.sim.ClientCounters(c.ID).DevicePolls; got != polls || got != 2 {
		t.Fatalf("polls %d after the denial (had %d)", got, polls)
	}

	// A new authorization: pending, the account no longer needs an operator.
	// The denied one was not pending, so nothing was replaced.
	if resp := e.startDevice("no"); len(resp.Warnings) != 0 {
		t.Fatalf("a start after a denied authorization warns %v", resp.Warnings)
	}
	if got := e.attention(); len(got) != 0 {
		t.Fatalf("attention/ after a new start: %v", got)
	}
	if keys, _ := e.storage.List(context.Background(), attentionPrefix); len(keys) != 0 {
		t.Fatalf("the attention index keeps %v", keys)
	}
	// Cancelled: no poll, no record.
	e.must(logical.DeleteOperation, "device/no", nil)
	if live := dt.live(); len(live) != 0 || e.storedDevice("no") != nil {
		t.Fatalf("after cancel: %d timers, record %+v", len(live), e.storedDevice("no"))
	}
	if resp, err := e.request(logical.ReadOperation, "device/no", nil); err != nil || resp != nil {
		t.Fatalf("device/no after cancel: %v %v", resp, err)
	}
	if _, ok := e.must(logical.ReadOperation, "status/no", nil).Data["device_authorization"]; ok {
		t.Fatal("status shows a cancelled device authorization")
	}
}

// Nobody approves: Zoho answers expired at the end of the code's life and
// the engine stops.
func TestDeviceAuthorizationExpired(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("late", c)
	start := e.clock.Now()
	e.startDevice("late")
	var last time.Time
	for i := 0; len(dt.live()) > 0; i++ {
		if i > 20 {
			t.Fatal("still polling after 20 polls")
		}
		last = dt.fire(e)
	}
	if last.Sub(start) != 5*time.Minute {
		t.Fatalf("last poll at %s, want at the code's expiry", last.Sub(start))
	}
	got := e.sim.ClientCounters(c.ID)
	if got.DevicePolls != 10 || got.DeviceSlowDowns != 0 || got.DeviceGrants != 0 {
		t.Fatalf("at Zoho: %+v, want 10 polls 30 s apart", got)
	}
	if st := e.deviceState("late"); st["state"] != paths.DeviceStateExpired || st["last_poll_answer"] != zoho.CodeExpired {
		t.Fatalf("after expiry: %v", st)
	}
	if got := e.attention(); strings.Join(got["late"], ",") != paths.ReasonDeviceExpired {
		t.Fatalf("attention/ = %v", got)
	}
	if e.storedDevice("late").DeviceCode != "" {
		t.Fatal("the expired device code is kept")
	}
}

// other_dc: the user approved in another data center (the client has Multi
// DC support there). Polling moves there, the refresh token is issued there,
// and the account uses that data center from then on.
func TestDeviceAuthorizationOtherDC(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.sim.RegisterClient(zohosim.Client{DC: "us", MultiDC: []string{"eu"}})
	e.deviceAccount("far", c)
	userCode := e.startDevice("far").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", "eu"); err != nil {
		t.Fatal(err)
	}
	dt.fire(e) // at us: other_dc
	st := e.deviceState("far")
	if st["state"] != paths.DeviceStatePending || st["last_poll_answer"] != "other_dc (eu)" || st["accounts_url"] != e.sim.AccountsURL("eu") {
		t.Fatalf("after other_dc: %v", st)
	}
	dt.fire(e) // at eu: the token
	if got := e.sim.ClientCounters(c.ID); got.DeviceGrants != 1 || got.DevicePolls != 2 {
		t.Fatalf("at Zoho: %+v", got)
	}
	a := e.b.cachedAccount("far")
	a.mu.Lock()
	cfg := *a.cfg
	a.mu.Unlock()
	if cfg.DataCenter != "eu" || accountsURL(&cfg) != e.sim.AccountsURL("eu") || cfg.RefreshTokenIssuer != e.sim.AccountsURL("eu") || cfg.RefreshToken == "" {
		t.Fatalf("account after other_dc: data center %q, accounts server %q, issuer %q", cfg.DataCenter, accountsURL(&cfg), cfg.RefreshTokenIssuer)
	}
	if cr := e.creds("far", nil); cr.Data["api_domain"] != e.sim.APIDomain("eu") {
		t.Fatalf("api_domain %v", cr.Data["api_domain"])
	}
	// A refresh goes to eu, where the refresh token lives (us would answer invalid_code).
	e.clock.Advance(time.Hour)
	cr := e.creds("far", nil)
	if got := e.sim.ClientCounters(c.ID); got.Refreshes != 1 || got.RefreshFailures != 0 || !e.sim.AccessTokenValid(accessToken(cr)) {
		t.Fatalf("refresh after other_dc: %+v", got)
	}
}

// A restart between polls: the new backend resumes polling on its
// initialization (or, failing that, at the periodic tick), at the pace
// stored, and completes the authorization; the old one polls no more.
func TestDeviceAuthorizationResumesAfterRestart(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("back", c)
	start := e.clock.Now()
	userCode := e.startDevice("back").Data["user_code"].(string)
	dt.fire(e) // 30 s: pending

	e.restart() // the old backend's timer is stopped
	if live := dt.live(); len(live) != 0 {
		t.Fatalf("%d polls scheduled before the new backend resumed", len(live))
	}
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil { // a periodic tick
		t.Fatal(err)
	}
	if live := dt.live(); len(live) != 1 || live[0].at.Sub(start) != time.Minute {
		t.Fatalf("after the periodic tick: %d polls scheduled", len(live))
	}
	dt.fire(e) // 60 s: pending

	e.restartInitialized()
	live := dt.live()
	if len(live) != 1 || live[0].at.Sub(start) != 90*time.Second {
		t.Fatalf("after initialization: %d polls scheduled", len(live))
	}
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if got := e.sim.ClientCounters(c.ID); got.DevicePolls != 3 || got.DeviceGrants != 1 || got.DeviceSlowDowns != 0 {
		t.Fatalf("at Zoho: %+v", got)
	}
	if st := e.deviceState("back"); st["state"] != paths.DeviceStateApproved {
		t.Fatalf("after the restarts: %v", st)
	}
	e.creds("back", nil)
	// A later tick resumes nothing more.
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil {
		t.Fatal(err)
	}
	if live := dt.live(); len(live) != 0 {
		t.Fatalf("%d polls scheduled after the approval", len(live))
	}
}

// A poll whose answer was lost after Zoho handed out the tokens: the code is
// spent, so the next poll answers invalid_code; the account's status says a
// refresh token may have been lost.
func TestDeviceLostAnswer(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("lost", c)
	userCode := e.startDevice("lost").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	e.sim.AddFault(zohosim.Fault{Endpoint: "device_token", Kind: zohosim.FaultLostAnswer, Times: 1})
	dt.fire(e)
	if got := e.sim.ClientCounters(c.ID).DeviceGrants; got != 1 {
		t.Fatalf("grants %d", got)
	}
	if st := e.deviceState("lost"); st["state"] != paths.DeviceStatePending {
		t.Fatalf("after the lost answer: %v", st)
	}
	dt.fire(e)
	st := e.deviceState("lost")
	if st["state"] != paths.DeviceStateFailed || !strings.Contains(st["last_poll_answer"].(string), zoho.CodeInvalidCode) {
		t.Fatalf("after the spent code: %v", st)
	}
	reasons := strings.Join(e.attention()["lost"], ",")
	if !strings.Contains(reasons, paths.ReasonInterruptedExchange) || !strings.Contains(reasons, paths.ReasonDeviceFailed) {
		t.Fatalf("attention reasons %q", reasons)
	}
	if s := e.must(logical.ReadOperation, "status/lost", nil).Data; s["interrupted_exchange_at"] == "" {
		t.Fatalf("status/lost: %v", s)
	}
	if len(dt.live()) != 0 {
		t.Fatal("still polling")
	}
	if strings.Contains(e.logs.String(), "could not record the lost device grant") {
		t.Fatal("the log says the lost grant was not recorded, but it was")
	}
	// Cancelling the failed authorization leaves what still needs an
	// operator: the refresh token Zoho may hold.
	e.must(logical.DeleteOperation, "device/lost", nil)
	if got := e.attention()["lost"]; strings.Join(got, ",") != paths.ReasonInterruptedExchange {
		t.Fatalf("attention reasons after the cancel %v, want only %s", got, paths.ReasonInterruptedExchange)
	}
}

// Zoho's accounts server failing: polls go on at the interval, then less
// often, with the same device code.
func TestDeviceAuthorizationRetriesWithBackoff(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("flaky", c)
	start := e.clock.Now()
	userCode := e.startDevice("flaky").Data["user_code"].(string)
	e.sim.AddFault(zohosim.Fault{Endpoint: "device_token", Kind: zohosim.FaultStatus, Status: 503, Times: 2})
	var at []time.Duration
	for i := 0; i < 3; i++ {
		at = append(at, dt.fire(e).Sub(start))
	}
	// 503 at 30 s, again after one interval, then after two.
	if fmt.Sprint(at) != fmt.Sprint([]time.Duration{30 * time.Second, time.Minute, 2 * time.Minute}) {
		t.Fatalf("polls at %v", at)
	}
	if st := e.deviceState("flaky"); st["state"] != paths.DeviceStatePending || st["last_poll_answer"] != zoho.CodeAuthorizationPending {
		t.Fatalf("after recovery: %v", st)
	}
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	if next := dt.fire(e).Sub(start); next != 150*time.Second {
		t.Fatalf("after recovery the pace is the interval again: next poll at %s", next)
	}
	if got := e.sim.ClientCounters(c.ID); got.DeviceGrants != 1 || got.DevicePolls != 4 {
		t.Fatalf("at Zoho: %+v", got)
	}
}

// Deleting the account stops polling at once: no poll after the delete,
// even from a timer that fired meanwhile.
func TestDeviceDeleteStopsPolling(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("gone", c)
	e.startDevice("gone")
	dt.fire(e)
	next := dt.live()
	if len(next) != 1 {
		t.Fatalf("%d polls scheduled", len(next))
	}
	e.must(logical.DeleteOperation, "config/gone", nil)
	if len(dt.live()) != 0 || e.storedDevice("gone") != nil {
		t.Fatal("the deleted account's authorization is still polled or stored")
	}
	if strings.Contains(e.logs.String(), "could not remove the deleted account's device authorization") {
		t.Fatal("the log reports a failed removal, but the authorization was removed")
	}
	next[0].f() // a timer that fired just before the delete
	e.clock.Advance(10 * time.Minute)
	if got := e.sim.ClientCounters(c.ID).DevicePolls; got != 1 {
		t.Fatalf("polls %d after the delete, want only the one before", got)
	}
	// A restart finds nothing to resume.
	e.restartInitialized()
	if len(dt.live()) != 0 {
		t.Fatal("a restart resumed the deleted account's authorization")
	}
}

// The backend's cleanup stops polling for good.
func TestDeviceCleanupStopsPolling(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("down", c)
	e.startDevice("down")
	next := dt.live()
	e.b.Cleanup(context.Background())
	if len(next) != 1 || len(dt.live()) != 0 {
		t.Fatalf("timers before cleanup %d, after %d", len(next), len(dt.live()))
	}
	next[0].f()
	if got := e.sim.ClientCounters(c.ID).DevicePolls; got != 0 {
		t.Fatalf("polls %d after cleanup", got)
	}
}

// Writing device/<name> while one is pending replaces it: the old code is
// no longer polled, so approving it gives the engine nothing.
func TestDeviceAuthorizationReplacesPending(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("again", c)
	first := e.startDevice("again").Data["user_code"].(string)
	dt.fire(e)
	resp := e.startDevice("again")
	second := resp.Data["user_code"].(string)
	if second == first || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], first) {
		t.Fatalf("second start: %v, warnings %v", resp.Data, resp.Warnings)
	}
	if live := dt.live(); len(live) != 1 {
		t.Fatalf("%d polls scheduled after the replacement", len(live))
	}
	if err := e.sim.ApproveDevice(first, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if got := e.sim.ClientCounters(c.ID); got.DeviceGrants != 0 {
		t.Fatalf("the replaced code was polled: %+v", got)
	}
	if err := e.sim.ApproveDevice(second, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if got := e.sim.ClientCounters(c.ID); got.DeviceCodesIssued != 2 || got.DeviceGrants != 1 || got.DevicePolls != 3 {
		t.Fatalf("at Zoho: %+v", got)
	}
	if st := e.deviceState("again"); st["state"] != paths.DeviceStateApproved || st["user_code"] != second {
		t.Fatalf("final: %v", st)
	}
}

// An account that holds a refresh token is re-authorized through the device
// flow: the new refresh token replaces the old one, which is revoked at Zoho,
// exactly as with a new grant code.
func TestDeviceAuthorizationReplacesRefreshToken(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.account("held", nil)
	old := e.b.cachedAccount("held").cfg.RefreshToken
	resp := e.startDevice("held")
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "revoked") {
		t.Fatalf("warnings %v", resp.Warnings)
	}
	if err := e.sim.ApproveDevice(resp.Data["user_code"].(string), "", ""); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	a := e.b.cachedAccount("held")
	a.mu.Lock()
	rt, gen := a.cfg.RefreshToken, a.cfg.Generation
	a.mu.Unlock()
	if rt == old || rt == "" || gen != 2 {
		t.Fatalf("generation %d, refresh token replaced %v", gen, rt != old)
	}
	if got := e.sim.ClientCounters(c.ID); got.RevokedRefresh != 1 || got.DeviceGrants != 1 {
		t.Fatalf("at Zoho: %+v", got)
	}
	if cr := e.creds("held", nil); !e.sim.AccessTokenValid(accessToken(cr)) {
		t.Fatal("creds after re-authorization")
	}
}

// Bad starts: an unknown account, an account without scopes, a client Zoho
// does not know. Each answers 400 naming what to fix, and nothing is stored
// or polled.
func TestDeviceStartRejected(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	msg, status := e.fails(logical.UpdateOperation, "device/nobody", nil)
	if status != 400 || !strings.Contains(msg, `no account named "nobody"`) {
		t.Fatalf("unknown account: %d %s", status, msg)
	}
	c := e.newClient("us")
	e.must(logical.CreateOperation, "config/bare", map[string]interface{}{
		"client_id": c.ID, "client_secret": c.Secret, "accounts_url": e.sim.AccountsURL("us"),
	})
	msg, status = e.fails(logical.UpdateOperation, "device/bare", nil)
	if status != 400 || !strings.HasPrefix(msg, "scopes: ") {
		t.Fatalf("no scopes: %d %s", status, msg)
	}
	if got := e.sim.ClientCounters(c.ID).DeviceCodeRequests; got != 0 {
		t.Fatalf("device code requests %d", got)
	}
	e.must(logical.CreateOperation, "config/stranger", map[string]interface{}{
		"client_id": "1000.UNKNOWNCLIENTUNKNOWNCLIENT12", "client_secret": "x", "accounts_url": e.sim.AccountsURL("us"), "scopes": "ZohoCRM.modules.ALL",
	})
	msg, status = e.fails(logical.UpdateOperation, "device/stranger", nil)
	if status != 400 || !strings.Contains(msg, zoho.CodeInvalidClient) || !strings.Contains(msg, "no device authorization was started") ||
		!strings.Contains(msg, "; the client_id is unknown in this data center") {
		t.Fatalf("unknown client: %d %s (want the error, what to fix, and that nothing started)", status, msg)
	}
	// A client_credentials account has no user to authorize.
	cc := e.ccAccount("org", nil)
	msg, status = e.fails(logical.UpdateOperation, "device/org", nil)
	if status != 400 || !strings.HasPrefix(msg, "grant_type: ") {
		t.Fatalf("client_credentials account: %d %s", status, msg)
	}
	if got := e.sim.ClientCounters(cc.ID).DeviceCodeRequests; got != 0 {
		t.Fatalf("device code requests for the client_credentials account: %d", got)
	}
	if keys, _ := e.storage.List(context.Background(), devicePrefix); len(keys) != 0 || len(dt.live()) != 0 {
		t.Fatalf("stored %v, %d polls scheduled", keys, len(dt.live()))
	}
}

// A crash after a poll was sent and before its answer was stored: the
// restarted engine knows the answer was lost (the poll is stored in flight),
// so when the code then turns out spent, the account's status says a refresh
// token may have been lost.
func TestDeviceCrashMidPoll(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("crash", c)
	userCode := e.startDevice("crash").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	// The poll is sent (and Zoho hands out the tokens), then nothing more
	// reaches storage: the process is gone.
	e.sim.AddFault(zohosim.Fault{Endpoint: "device_token", Kind: zohosim.FaultLostAnswer, Times: 1})
	dieAfterPollRecorded(e, "crash")
	dt.fire(e)
	if rec := e.storedDevice("crash"); rec.InFlight.IsZero() || rec.AnswerLost {
		t.Fatalf("stored before the crash: %+v", rec)
	}
	e.storage.setPutHook(nil)
	e.restartInitialized()
	dt.fire(e)
	if got := e.sim.ClientCounters(c.ID); got.DeviceGrants != 1 || got.DevicePolls != 2 {
		t.Fatalf("at Zoho: %+v", got)
	}
	reasons := strings.Join(e.attention()["crash"], ",")
	if !strings.Contains(reasons, paths.ReasonInterruptedExchange) || !strings.Contains(reasons, paths.ReasonDeviceFailed) {
		t.Fatalf("attention reasons %q", reasons)
	}
}

// A device code answer without interval is polled at Zoho's documented pace,
// one poll per 30 s: no slow_down, and the authorization shows 30 s.
func TestDeviceAnswerWithoutIntervalIsPolledEvery30s(t *testing.T) {
	e, dt := newDeviceEnv(t, func(c *zohosim.Config) { c.DeviceOmitsInterval = true })
	c := e.newClient("us")
	e.deviceAccount("quiet", c)
	start := e.clock.Now()
	if got := e.startDevice("quiet").Data["interval"]; got != 30 {
		t.Fatalf("device/quiet announced interval %v, want 30 (seconds)", got)
	}
	for i, want := range []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second} {
		if at := dt.fire(e); at.Sub(start) != want {
			t.Fatalf("poll %d at %s after the start, want %s", i+1, at.Sub(start), want)
		}
	}
	if got := e.sim.ClientCounters(c.ID); got.DevicePolls != 3 || got.DeviceSlowDowns != 0 {
		t.Fatalf("at Zoho: %d polls, %d slow_down; want 3 and none", got.DevicePolls, got.DeviceSlowDowns)
	}
}

// A restart while a poll is in flight (sent, its answer never stored): the
// resumed poll goes out no sooner than a whole interval, Zoho's 30 s, after
// the lost one, which Zoho counted; sooner would be answered slow_down.
func TestDeviceResumesAnIntervalAfterThePollInFlight(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("mid", c)
	start := e.clock.Now()
	e.startDevice("mid")
	if at := dt.fire(e); at.Sub(start) != 30*time.Second { // pending
		t.Fatalf("first poll %s after the start, want 30s", at.Sub(start))
	}
	dieAfterPollRecorded(e, "mid")
	lost := dt.fire(e)
	if lost.Sub(start) != 60*time.Second || e.sim.ClientCounters(c.ID).DevicePolls != 2 {
		t.Fatalf("second poll %s after the start, %d polls at Zoho", lost.Sub(start), e.sim.ClientCounters(c.ID).DevicePolls)
	}
	if rec := e.storedDevice("mid"); !rec.InFlight.Equal(lost) {
		t.Fatalf("stored before the crash: in flight %v, want %v", rec.InFlight, lost)
	}
	e.storage.setPutHook(nil)
	e.restartInitialized()
	live := dt.live()
	if len(live) != 1 {
		t.Fatalf("after initialization %d polls scheduled, want 1", len(live))
	}
	if gap := live[0].at.Sub(lost); gap < 30*time.Second {
		t.Fatalf("the resumed poll is scheduled %s after the poll in flight, want at least 30s", gap)
	}
	polls := e.sim.ClientCounters(c.ID).DevicePolls
	at := dt.fire(e)
	got := e.sim.ClientCounters(c.ID)
	if got.DevicePolls != polls+1 || at.Sub(lost) < 30*time.Second || got.DeviceSlowDowns != 0 {
		t.Fatalf("the resumed poll reached Zoho %d times at %s after the lost one (%d slow_down); want once, at least 30s after, none",
			got.DevicePolls-polls, at.Sub(lost), got.DeviceSlowDowns)
	}
	if st := e.deviceState("mid"); st["state"] != paths.DeviceStatePending || st["last_poll_answer"] != zoho.CodeAuthorizationPending {
		t.Fatalf("after the resumed poll: %v", st)
	}
}

// revoke/ stops a pending device authorization too: an approval that comes
// later must not hand the account a new refresh token behind the revocation.
func TestRevokeCancelsDeviceAuthorization(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("halt", c)
	started := e.startDevice("halt")
	dt.fire(e)
	if len(dt.live()) != 1 {
		t.Fatalf("%d polls scheduled", len(dt.live()))
	}
	e.must(logical.UpdateOperation, "revoke/halt", nil)
	if len(dt.live()) != 0 || e.storedDevice("halt") != nil {
		t.Fatal("revoke/ left the device authorization polled or stored")
	}
	if err := e.sim.ApproveDevice(started.Data["user_code"].(string), "", ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	if got := e.sim.ClientCounters(c.ID); got.DevicePolls != 1 || got.DeviceGrants != 0 {
		t.Fatalf("after revoke/: %d polls, %d grants; want the one poll before it and no grant", got.DevicePolls, got.DeviceGrants)
	}
	if _, status := e.fails(logical.ReadOperation, "creds/halt", nil); status != 400 {
		t.Fatalf("creds after revoke/: %d", status)
	}
}

// dieAfterPollRecorded makes storage refuse every write after the one that
// records account's device poll as sent (in flight), as if the process died
// right after it.
func dieAfterPollRecorded(e *env, account string) {
	var dead atomic.Bool
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if dead.Load() {
			return fmt.Errorf("the process died")
		}
		if entry.Key == devicePrefix+account && strings.Contains(string(entry.Value), `"in_flight":"2026`) {
			dead.Store(true)
		}
		return nil
	})
}

// The wait after polls Zoho could not answer: the interval, doubled for each
// further failure, never more than 2 minutes (nor less than the interval),
// however many failures came in a row.
func TestDeviceRetryWaitDoublesUpToTwoMinutes(t *testing.T) {
	for _, c := range []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{30 * time.Second, 1, 30 * time.Second},
		{30 * time.Second, 2, time.Minute},
		{30 * time.Second, 3, 2 * time.Minute},
		{30 * time.Second, 4, 2 * time.Minute},
		{30 * time.Second, 30, 2 * time.Minute},
		{30 * time.Second, 40, 2 * time.Minute},
		{30 * time.Second, 100, 2 * time.Minute},
		{45 * time.Second, 3, 2 * time.Minute},
		{5 * time.Minute, 3, 5 * time.Minute},
	} {
		if got := deviceRetryWait(c.interval, c.failures); got != c.want {
			t.Errorf("after %d failures at an interval of %s: wait %s, want %s", c.failures, c.interval, got, c.want)
		}
	}
}

// Cancelling an authorization that ended badly takes the account out of
// attention/ (nothing is pending or failed any more).
func TestDeviceCancelSettlesAttention(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("no", c)
	userCode := e.startDevice("no").Data["user_code"].(string)
	if err := e.sim.DenyDevice(userCode); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if got := e.attention(); strings.Join(got["no"], ",") != paths.ReasonDeviceDenied {
		t.Fatalf("attention/ after the denial: %v", got)
	}
	e.must(logical.DeleteOperation, "device/no", nil)
	if got := e.attention(); len(got) != 0 {
		t.Fatalf("attention/ after the cancel: %v", got)
	}
}

// A cancel whose delete fails reports the failure, and polling stops all the
// same: a poll whose timer fired just before the cancel sends nothing.
func TestDeviceCancelStopsPollingEvenIfTheDeleteFails(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("halt", c)
	e.startDevice("halt")
	due := dt.live()
	if len(due) != 1 {
		t.Fatalf("%d polls scheduled", len(due))
	}
	e.clock.Advance(due[0].at.Sub(e.clock.Now())) // the poll is due: its timer fires
	e.storage.setDeleteHook(func(key string) error {
		if key == devicePrefix+"halt" {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	if msg, _ := e.fails(logical.DeleteOperation, "device/halt", nil); !strings.Contains(msg, "storage unavailable") {
		t.Fatalf("the failed cancel answered %q", msg)
	}
	if len(dt.live()) != 0 {
		t.Fatal("still polling after the cancel")
	}
	due[0].f() // the timer's function runs after the cancel
	if got := e.sim.ClientCounters(c.ID).DevicePolls; got != 0 {
		t.Fatalf("%d poll(s) after the cancel", got)
	}
}

// A deleted account's authorization that could not be removed is logged as
// such; a restart finds it and removes it, without polling Zoho.
func TestDeviceOfADeletedAccountIsRemovedAfterAFailedDelete(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("gone", c)
	e.startDevice("gone")
	var failing atomic.Bool
	failing.Store(true)
	e.storage.setDeleteHook(func(key string) error {
		if failing.Load() && key == devicePrefix+"gone" {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	e.must(logical.DeleteOperation, "config/gone", nil)
	if !strings.Contains(e.logs.String(), "could not remove the deleted account's device authorization") {
		t.Fatal("the failed removal is not logged")
	}
	if len(dt.live()) != 0 || e.storedDevice("gone") == nil {
		t.Fatalf("after the delete: %d polls scheduled, record kept %v", len(dt.live()), e.storedDevice("gone") != nil)
	}
	failing.Store(false)
	e.restartInitialized()
	if len(dt.live()) == 1 {
		dt.fire(e)
	}
	if e.storedDevice("gone") != nil || len(dt.live()) != 0 || e.sim.ClientCounters(c.ID).DevicePolls != 0 {
		t.Fatalf("after the restart: record kept %v, %d polls scheduled, %d polls at Zoho",
			e.storedDevice("gone") != nil, len(dt.live()), e.sim.ClientCounters(c.ID).DevicePolls)
	}
}

// At most 100 device authorizations are polled at once per mount: the 101st
// start is refused (429) and nothing is asked of Zoho; replacing a pending
// one is allowed; one that ends or is cancelled frees its place.
func TestPendingDeviceAuthorizationsAreBounded(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	clients := map[string]zohosim.Client{}
	name := func(i int) string { return fmt.Sprintf("d%03d", i) }
	for i := 0; i <= 100; i++ {
		c := e.newClient("us")
		clients[name(i)] = c
		e.deviceAccount(name(i), c)
	}
	for i := 0; i < 100; i++ {
		e.startDevice(name(i))
	}
	last := clients[name(100)]
	if msg, status := e.fails(logical.UpdateOperation, "device/"+name(100), nil); status != 429 || !strings.Contains(msg, "100 device authorizations are pending") {
		t.Fatalf("the 101st start: %d %s", status, msg)
	}
	if got := e.sim.ClientCounters(last.ID).DeviceCodeRequests; got != 0 || e.storedDevice(name(100)) != nil {
		t.Fatalf("the refused start asked Zoho %d time(s) or stored an authorization", got)
	}
	// Replacing a pending one does not add to them.
	if resp := e.startDevice(name(1)); len(resp.Warnings) != 1 {
		t.Fatalf("the replacing start: warnings %v", resp.Warnings)
	}
	// A change of d000's credentials ends its authorization: a place is free.
	c0 := clients[name(0)]
	e.must(logical.UpdateOperation, "config/"+name(0), map[string]interface{}{"grant_code": e.code(c0)})
	if st := e.deviceState(name(0)); st["state"] != paths.DeviceStateSuperseded {
		t.Fatalf("d000's authorization after the new grant code: %v", st)
	}
	if n := len(dt.live()); n != 99 {
		t.Fatalf("%d polls scheduled, want 99", n)
	}
	e.startDevice(name(100))
	if _, status := e.fails(logical.UpdateOperation, "device/"+name(0), nil); status != 429 {
		t.Fatalf("a start beyond 100 pending: %d", status)
	}
	// A cancel frees one too.
	e.must(logical.DeleteOperation, "device/"+name(2), nil)
	e.startDevice(name(0))
}

// A restart resumes every pending authorization, and only those.
func TestDeviceResumeSchedulesEveryPendingAuthorization(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	ended := e.newClient("us")
	e.deviceAccount("a-ended", ended)
	userCode := e.startDevice("a-ended").Data["user_code"].(string)
	if err := e.sim.DenyDevice(userCode); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if st := e.deviceState("a-ended"); st["state"] != paths.DeviceStateDenied {
		t.Fatalf("a-ended: %v", st)
	}
	for _, name := range []string{"b-pending", "c-pending"} {
		e.deviceAccount(name, e.newClient("us"))
		e.startDevice(name)
	}
	e.restartInitialized()
	if n := len(dt.live()); n != 2 {
		t.Fatalf("%d polls scheduled after the restart, want the 2 pending authorizations'", n)
	}
	if strings.Contains(e.logs.String(), "could not resume a device authorization") {
		t.Fatal("the log reports a failed resume")
	}
	dt.fire(e)
	dt.fire(e)
	if got := e.sim.ClientCounters(ended.ID).DevicePolls; got != 1 {
		t.Fatalf("the ended authorization was polled %d times, want once (before it ended)", got)
	}
}

// The end of an authorization that could not be stored is logged; the
// authorization, still stored as pending, is polled once more only after a
// restart (resuming is once per backend), and Zoho's answer ends it then.
func TestDeviceEndNotStoredIsPolledAgainAfterARestart(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil { // the first periodic tick resumes
		t.Fatal(err)
	}
	c := e.newClient("us")
	e.deviceAccount("x", c)
	userCode := e.startDevice("x").Data["user_code"].(string)
	if err := e.sim.DenyDevice(userCode); err != nil {
		t.Fatal(err)
	}
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if entry.Key == devicePrefix+"x" && strings.Contains(string(entry.Value), `"state":"denied"`) {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	dt.fire(e)
	if !strings.Contains(e.logs.String(), "could not store the end of a device authorization") {
		t.Fatal("the failed store of the end is not logged")
	}
	if rec := e.storedDevice("x"); rec.State != paths.DeviceStatePending || len(dt.live()) != 0 {
		t.Fatalf("after the denial: stored %s, %d polls scheduled", rec.State, len(dt.live()))
	}
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil {
		t.Fatal(err)
	}
	if n := len(dt.live()); n != 0 {
		t.Fatalf("a later periodic tick scheduled %d poll(s)", n)
	}
	e.storage.setPutHook(nil)
	e.restartInitialized()
	dt.fire(e)
	if got := e.sim.ClientCounters(c.ID).DevicePolls; got != 2 {
		t.Fatalf("%d polls at Zoho, want the denied one and one after the restart", got)
	}
	if st := e.deviceState("x"); st["state"] != paths.DeviceStateDenied || len(dt.live()) != 0 {
		t.Fatalf("after the restart: %v, %d polls scheduled", st, len(dt.live()))
	}
}

// failOnce makes the first storage call on key that match fail.
func failOnce(key string, match func(key string) bool) func(string) error {
	var done atomic.Bool
	return func(k string) error {
		if k == key && (match == nil || match(k)) && !done.Swap(true) {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	}
}

// A poll that storage fails (loading the account, reading the authorization,
// recording the poll before sending it) sends nothing, is logged, and is
// tried again: the authorization still completes.
func TestDevicePollRetriesAfterStorageFailures(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("x", c)
	userCode := e.startDevice("x").Data["user_code"].(string)
	polls := func() int64 { return e.sim.ClientCounters(c.ID).DevicePolls }

	// Recording the poll as sent fails.
	var putFailed atomic.Bool
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if entry.Key == devicePrefix+"x" && strings.Contains(string(entry.Value), `"in_flight":"2026`) && !putFailed.Swap(true) {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	dt.fire(e)
	if polls() != 0 || len(dt.live()) != 1 || !strings.Contains(e.logs.String(), "could not record a device poll before sending it") {
		t.Fatalf("recording the poll failed: %d polls sent, %d scheduled", polls(), len(dt.live()))
	}
	dt.fire(e)
	if polls() != 1 {
		t.Fatalf("%d polls after the storage recovered, want 1", polls())
	}

	// Reading the authorization fails.
	e.storage.setGetErr(failOnce(devicePrefix+"x", nil))
	dt.fire(e)
	if polls() != 1 || len(dt.live()) != 1 || !strings.Contains(e.logs.String(), "could not read a device authorization to poll it") {
		t.Fatalf("reading the authorization failed: %d polls sent, %d scheduled", polls(), len(dt.live()))
	}
	dt.fire(e)
	if polls() != 2 {
		t.Fatalf("%d polls after the storage recovered, want 2", polls())
	}

	// Loading the account fails (a restarted engine has not loaded it yet).
	e.restartInitialized()
	e.storage.setGetErr(failOnce(configPrefix+"x", nil))
	dt.fire(e)
	if polls() != 2 || len(dt.live()) != 1 || !strings.Contains(e.logs.String(), "could not load the account to poll its device authorization") {
		t.Fatalf("loading the account failed: %d polls sent, %d scheduled", polls(), len(dt.live()))
	}
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if polls() != 3 || e.sim.ClientCounters(c.ID).DeviceGrants != 1 {
		t.Fatalf("after the storage recovered: %+v", e.sim.ClientCounters(c.ID))
	}
	if st := e.deviceState("x"); st["state"] != paths.DeviceStateApproved {
		t.Fatalf("final: %v", st)
	}
}

// A poll's answer that could not be stored is logged; polling goes on.
func TestDevicePollAnswerNotStoredIsLogged(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("x", c)
	e.startDevice("x")
	var failed atomic.Bool
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if entry.Key == devicePrefix+"x" && strings.Contains(string(entry.Value), `"last_answer":"authorization_pending"`) && !failed.Swap(true) {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	dt.fire(e)
	if !strings.Contains(e.logs.String(), "could not store a device poll's answer") {
		t.Fatal("the failed store of the answer is not logged")
	}
	if len(dt.live()) != 1 {
		t.Fatalf("%d polls scheduled", len(dt.live()))
	}
}

// A poll Zoho answers invalid_code when no poll's answer was lost ends the
// authorization as failed, saying what to do; no refresh token is said to be
// lost (Zoho handed none out that Vault did not hear of).
func TestDeviceFailedPollIsNotALostGrant(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("bad", c)
	e.startDevice("bad")
	e.sim.AddFault(zohosim.Fault{Endpoint: "device_token", Kind: zohosim.FaultError, ErrorCode: zoho.CodeInvalidCode, Times: 1})
	dt.fire(e)
	st := e.deviceState("bad")
	answer, _ := st["last_poll_answer"].(string)
	if st["state"] != paths.DeviceStateFailed || !strings.Contains(answer, zoho.CodeInvalidCode) ||
		!strings.Contains(answer, "; the device code is unknown or already used") {
		t.Fatalf("after invalid_code: %v (want the error and what to do)", st)
	}
	if s := e.must(logical.ReadOperation, "status/bad", nil).Data; s["interrupted_exchange_at"] != nil && s["interrupted_exchange_at"] != "" {
		t.Fatalf("status/bad says a grant was lost: %v", s["interrupted_exchange_at"])
	}
	if got := e.attention()["bad"]; strings.Join(got, ",") != paths.ReasonDeviceFailed {
		t.Fatalf("attention reasons %v, want only %s", got, paths.ReasonDeviceFailed)
	}
}

// The upstream failure metric counts the device polls Zoho answered with a
// failure (invalid_code), not those it answered as the flow expects
// (authorization_pending).
func TestDevicePollMetricsCountOnlyFailures(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("m", c)
	e.startDevice("m")
	dt.fire(e) // authorization_pending
	body := scrapeMetrics(t, e, false)
	if !strings.Contains(body, `zoho_upstream_request_duration_seconds_count{op="device token poll"} 1`+"\n") {
		t.Fatalf("the poll is not observed:\n%s", body)
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "zoho_upstream_failures_total{") && strings.Contains(line, `op="device token poll"`) {
			t.Fatalf("authorization_pending counted as a failure: %s", line)
		}
	}
	e.sim.AddFault(zohosim.Fault{Endpoint: "device_token", Kind: zohosim.FaultError, ErrorCode: zoho.CodeInvalidCode, Times: 1})
	dt.fire(e)
	if body := scrapeMetrics(t, e, false); !strings.Contains(body, `zoho_upstream_failures_total{code="invalid_code",op="device token poll"} 1`+"\n") {
		t.Fatalf("invalid_code not counted as a failure:\n%s", body)
	}
}

// An account that holds a refresh token keeps working when a device
// authorization for it is refused: it needs no operator.
func TestDeviceDenialOfAnAccountWithARefreshTokenNeedsNoAttention(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	e.account("held", nil)
	userCode := e.startDevice("held").Data["user_code"].(string)
	if err := e.sim.DenyDevice(userCode); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	if st := e.deviceState("held"); st["state"] != paths.DeviceStateDenied {
		t.Fatalf("after the denial: %v", st)
	}
	if got := e.attention(); len(got) != 0 {
		t.Fatalf("attention/ = %v", got)
	}
	// Nor is it put in the attention index, which holds only the few
	// accounts that need an operator.
	if keys, _ := e.storage.List(context.Background(), attentionPrefix); len(keys) != 0 {
		t.Fatalf("the attention index holds %v", keys)
	}
	e.creds("held", nil)
}

// A change of the account's credentials (a new grant code, same client)
// whose end of the pending authorization could not be stored: the poll after
// a restart ends it as superseded without asking Zoho, so the user's later
// approval cannot replace the newer refresh token.
func TestDeviceSupersededByNewCredentialsIsNotPolled(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.account("ep", nil)
	userCode := e.startDevice("ep").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if entry.Key == devicePrefix+"ep" && strings.Contains(string(entry.Value), `"state":"superseded"`) {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	e.must(logical.UpdateOperation, "config/ep", map[string]interface{}{"grant_code": e.code(c)})
	held := e.b.cachedAccount("ep")
	held.mu.Lock()
	rt := held.cfg.RefreshToken
	held.mu.Unlock()
	if rec := e.storedDevice("ep"); rec.State != paths.DeviceStatePending {
		t.Fatalf("stored %s, want the end not stored", rec.State)
	}
	e.storage.setPutHook(nil)
	e.restartInitialized()
	dt.fire(e)
	if got := e.sim.ClientCounters(c.ID); got.DevicePolls != 0 || got.DeviceGrants != 0 {
		t.Fatalf("the superseded authorization was polled: %+v", got)
	}
	if st := e.deviceState("ep"); st["state"] != paths.DeviceStateSuperseded {
		t.Fatalf("after the poll: %v", st)
	}
	a, unlock, err := e.b.lockAccount(context.Background(), e.storage, "ep")
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	got := a.cfg.RefreshToken
	a.mu.Unlock()
	unlock()
	if got != rt {
		t.Fatal("the refresh token of the new grant code was replaced")
	}
}

// An approval whose refresh token could not be stored: the refresh token is
// revoked at Zoho and the authorization fails, saying so. One whose refresh
// token was stored but not its access token is approved, and the log says
// what was not stored.
func TestDeviceApprovalNotStored(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	c := e.newClient("us")
	e.deviceAccount("x", c)
	userCode := e.startDevice("x").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	var failed atomic.Bool
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if entry.Key == configPrefix+"x" && !failed.Swap(true) {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	dt.fire(e)
	st := e.deviceState("x")
	if answer, _ := st["last_poll_answer"].(string); st["state"] != paths.DeviceStateFailed || !strings.Contains(answer, "could not be stored") {
		t.Fatalf("after the approval: %v", st)
	}
	if got := e.sim.ClientCounters(c.ID); got.DeviceGrants != 1 || got.RevokedRefresh != 1 {
		t.Fatalf("at Zoho: %+v, want the granted refresh token revoked", got)
	}
	held := e.b.cachedAccount("x")
	held.mu.Lock()
	rt := held.cfg.RefreshToken
	held.mu.Unlock()
	if rt != "" {
		t.Fatal("the account holds a refresh token")
	}
	if logs := e.logs.String(); !strings.Contains(logs, "could not store the refresh token of an approved device authorization") ||
		strings.Contains(logs, "could not revoke the unstored refresh token") {
		t.Fatal("the log does not say what failed, or says the revocation failed")
	}

	// The refresh token stored, its access token not.
	userCode = e.startDevice("x").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	failed.Store(false)
	e.storage.setPutHook(func(entry *logical.StorageEntry) error {
		if entry.Key == tokenPrefix+"x" && !failed.Swap(true) {
			return fmt.Errorf("storage unavailable")
		}
		return nil
	})
	dt.fire(e)
	if st := e.deviceState("x"); st["state"] != paths.DeviceStateApproved {
		t.Fatalf("after the second approval: %v", st)
	}
	if got := e.sim.ClientCounters(c.ID); got.DeviceGrants != 2 || got.RevokedRefresh != 1 {
		t.Fatalf("at Zoho: %+v, want the stored refresh token kept", got)
	}
	if !strings.Contains(e.logs.String(), "the refresh token is stored but not its access token") {
		t.Fatal("the log does not say the access token was not stored")
	}
	if cr := e.creds("x", nil); !e.sim.AccessTokenValid(accessToken(cr)) {
		t.Fatal("creds after the approval")
	}
}

// noRefreshTokenZoho is a Zoho whose device grants carry no refresh token.
type noRefreshTokenZoho struct {
	ZohoAPI
	mu     sync.Mutex
	access []string
}

func (z *noRefreshTokenZoho) RequestDeviceCode(ctx context.Context, app zoho.App, scopes string, offline bool) (*zoho.DeviceCode, error) {
	return z.ZohoAPI.(deviceAPI).RequestDeviceCode(ctx, app, scopes, offline)
}

func (z *noRefreshTokenZoho) PollDeviceToken(ctx context.Context, app zoho.App, deviceCode string) (*zoho.Token, error) {
	t, err := z.ZohoAPI.(deviceAPI).PollDeviceToken(ctx, app, deviceCode)
	if t != nil {
		c := *t
		c.RefreshToken = ""
		z.mu.Lock()
		z.access = append(z.access, c.AccessToken)
		z.mu.Unlock()
		t = &c
	}
	return t, err
}

// A grant without a refresh token: its access token is given back (revoked)
// and the authorization fails, saying why.
func TestDeviceGrantWithoutRefreshToken(t *testing.T) {
	e, dt := newDeviceEnv(t, nil)
	z := &noRefreshTokenZoho{ZohoAPI: e.b.zoho}
	e.b.zoho = z
	c := e.newClient("us")
	e.deviceAccount("x", c)
	userCode := e.startDevice("x").Data["user_code"].(string)
	if err := e.sim.ApproveDevice(userCode, "", ""); err != nil {
		t.Fatal(err)
	}
	dt.fire(e)
	st := e.deviceState("x")
	if answer, _ := st["last_poll_answer"].(string); st["state"] != paths.DeviceStateFailed || !strings.Contains(answer, "without a refresh token") {
		t.Fatalf("after the grant: %v", st)
	}
	z.mu.Lock()
	access := z.access
	z.mu.Unlock()
	if len(access) != 1 || e.sim.AccessTokenValid(access[0]) || e.sim.ClientCounters(c.ID).RevokedAccess != 1 {
		t.Fatalf("the access token is not revoked: %d granted, %+v", len(access), e.sim.ClientCounters(c.ID))
	}
	if strings.Contains(e.logs.String(), "could not revoke the access token") {
		t.Fatal("the log says the revocation failed, but it worked")
	}
}
