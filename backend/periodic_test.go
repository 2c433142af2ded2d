package backend

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	dto "github.com/prometheus/client_model/go"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func TestBackgroundRefreshAhead(t *testing.T) {
	e := newEnv(t)
	c := e.account("ahead", nil)
	old := accessToken(e.creds("ahead", nil))
	// Not due yet: nothing happens.
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("%d accounts due right after minting", n)
	}
	e.clock.Advance(55*time.Minute + 30*time.Second) // past the latest refresh point
	// Read exactly a token's lifetime (an hour) ago: still in use. A creds
	// read here would start its own background refresh and race the periodic
	// check; mark the read instead.
	e.b.cachedAccount("ahead").lastRead.Store(e.clock.Now().Add(-time.Hour).UnixNano())
	if n := e.b.refreshDue(context.Background(), e.storage); n != 1 {
		t.Fatalf("want 1 account due (read an hour ago), got %d", n)
	}
	e.waitBackground()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("want 1 background refresh, got %d", got)
	}
	if strings.Contains(e.logs.String(), "background refresh did not run") {
		t.Fatalf("a background refresh that ran is logged as not run:\n%s", e.logs.String())
	}
	if tok := accessToken(e.creds("ahead", nil)); tok == old {
		t.Fatal("readers still get the old token after the background refresh")
	}
	// An idle account is left alone.
	e.clock.Advance(2 * time.Hour)
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("idle account refreshed in the background (%d)", n)
	}
}

func TestExpiredConsentsAreSwept(t *testing.T) {
	e := newEnv(t)
	newConsentAccount(e, "sweep")
	e.must(logical.ReadOperation, "auth-url/sweep", nil)
	e.must(logical.ReadOperation, "auth-url/sweep", nil)
	if keys, _ := e.storage.List(context.Background(), pendingPrefix); len(keys) != 2 {
		t.Fatalf("pending: %v", keys)
	}
	req := &logical.Request{Operation: logical.RollbackOperation, Storage: e.storage}
	e.clock.Advance(pendingTTL - time.Second)
	if _, err := e.b.HandleRequest(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if keys, _ := e.storage.List(context.Background(), pendingPrefix); len(keys) != 2 {
		t.Fatal("live consents swept")
	}
	e.clock.Advance(time.Second)
	if _, err := e.b.HandleRequest(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if keys, _ := e.storage.List(context.Background(), pendingPrefix); len(keys) != 0 {
		t.Fatalf("expired consents kept: %v", keys)
	}
	if strings.Contains(e.logs.String(), "could not remove expired consent requests") {
		t.Fatalf("a sweep that worked is logged as failed:\n%s", e.logs.String())
	}
}

// A live consent listed before expired ones does not stop the sweep, and a
// sweep that cannot delete says so in the log.
func TestSweepPassesLiveConsentsAndReportsFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := e.clock.Now()
	entries := map[string]time.Time{"a-live": now.Add(time.Minute), "m-expired": now.Add(-time.Second), "z-expired": now}
	for k, exp := range entries {
		if err := putJSON(ctx, e.storage, pendingPrefix+k, &pendingAuth{Account: "x", State: k, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil {
		t.Fatal(err)
	}
	if keys, _ := e.storage.List(ctx, pendingPrefix); !slices.Equal(keys, []string{"a-live"}) {
		t.Fatalf("after the sweep: %v, want only the live consent", keys)
	}
	e.clock.Advance(time.Minute)
	e.storage.setDeleteHook(func(string) error { return fmt.Errorf("storage unavailable") })
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "could not remove expired consent requests") {
		t.Fatalf("a failed sweep is not logged:\n%s", e.logs.String())
	}
}

// The periodic function's work grows with the accounts in use, not with all
// accounts: idle accounts are neither loaded nor looked at, and a status
// listing does not keep every account in memory.
func TestPeriodicLooksOnlyAtAccountsInUse(t *testing.T) {
	e := newEnv(t)
	const accounts, used = 60, 3
	for i := 0; i < accounts; i++ {
		e.account(fmt.Sprintf("acct%02d", i), nil)
	}
	e.restart() // nothing loaded
	gets := e.storage.gets.Load()
	if _, err := e.request(logical.RollbackOperation, "", nil); err != nil { // a periodic tick
		t.Fatal(err)
	}
	e.b.refreshDue(context.Background(), e.storage)
	if got := e.storage.gets.Load() - gets; got != 0 {
		t.Fatalf("a periodic tick with %d idle accounts read storage %d times", accounts, got)
	}
	// Listing every account's status loads none of them for good.
	e.must(logical.ListOperation, "status/", nil)
	if n := loadedAccounts(e.b); n != 0 {
		t.Fatalf("listing statuses left %d accounts in memory", n)
	}
	for i := 0; i < used; i++ {
		e.creds(fmt.Sprintf("acct%02d", i), nil)
	}
	if n := e.b.inUseCount(); n != used {
		t.Fatalf("%d accounts in use, want %d", n, used)
	}
	// Past their refresh point the accounts in use are refreshed; nothing else
	// is looked at. Once idle they leave the set.
	e.clock.Advance(55*time.Minute + 30*time.Second)
	for i := 0; i < used; i++ {
		e.b.cachedAccount(fmt.Sprintf("acct%02d", i)).lastRead.Store(e.clock.Now().UnixNano())
	}
	gets = e.storage.gets.Load()
	if due := e.b.refreshDue(context.Background(), e.storage); due != used {
		t.Fatalf("%d accounts due, want the %d in use", due, used)
	}
	e.waitBackground()
	if got := e.storage.gets.Load() - gets; got != 0 {
		t.Fatalf("refreshing the accounts in use read storage %d times", got)
	}
	var examined dto.Metric
	if err := e.b.metrics.periodicExamined.Write(&examined); err != nil || examined.GetGauge().GetValue() != used {
		t.Fatalf("zoho_periodic_accounts_examined %v (%v), want %d of %d accounts", examined.GetGauge().GetValue(), err, used, accounts)
	}
	e.clock.Advance(3 * time.Hour)
	e.b.refreshDue(context.Background(), e.storage)
	if n := e.b.inUseCount(); n != 0 {
		t.Fatalf("%d idle accounts still in use", n)
	}
}

func loadedAccounts(b *Backend) int {
	return b.accounts.Len()
}

// fakeTimers records the refreshes the periodic function schedules instead of
// running them on the wall clock.
type fakeTimers struct {
	mu      sync.Mutex
	pending []fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped *atomic.Bool
}

func (ft *fakeTimers) afterFunc(clock *fakeClock) func(time.Duration, func()) func() bool {
	return func(d time.Duration, f func()) func() bool {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		stopped := &atomic.Bool{}
		ft.pending = append(ft.pending, fakeTimer{at: clock.Now().Add(d), f: f, stopped: stopped})
		return func() bool { return !stopped.Swap(true) }
	}
}

// fireDue runs, earliest first, the timers not stopped that are due at the
// clock's time, and waits for the refreshes they start.
func (e *env) fireDueTimers() {
	var later []fakeTimer
	for _, tm := range e.timers.take() {
		if tm.at.After(e.clock.Now()) {
			later = append(later, tm)
			continue
		}
		tm.f()
	}
	e.timers.mu.Lock()
	e.timers.pending = append(e.timers.pending, later...)
	e.timers.mu.Unlock()
	e.waitBackground()
}

// unscheduled drops the refresh timers set so far (a read sets one) and the
// named account's record of its timer, and returns the cached account.
func (e *env) unscheduled(name string) *account {
	e.timers.take()
	a := e.b.cachedAccount(name)
	a.scheduledFor.Store(0)
	return a
}

// take removes and returns the timers not stopped, earliest first.
func (ft *fakeTimers) take() []fakeTimer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var out []fakeTimer
	for _, t := range ft.pending {
		if !t.stopped.Load() {
			out = append(out, t)
		}
	}
	ft.pending = nil
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// A cohort of accounts minted together refreshes at each token's own refresh
// point, not in a burst at the next periodic tick: the tick schedules the
// refreshes that fall before the next tick.
func TestRefreshesRunAtTheirOwnPointsNotAtTheTick(t *testing.T) {
	timers := &fakeTimers{}
	var clock *fakeClock
	e := newEnv(t, func(_ *zohosim.Config, o *Options) {
		o.AfterFunc = func(d time.Duration, f func()) func() bool { return timers.afterFunc(clock)(d, f) }
	})
	clock = e.clock
	const n = 40
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("cohort%02d", i)
		e.account(names[i], nil)
		e.creds(names[i], nil)
	}
	points := map[string]time.Time{}
	for _, name := range names {
		points[name] = e.b.cachedAccount(name).view.Load().refreshAt
	}
	refreshes := func() int64 { return e.sim.Counters().Refreshes }
	tick := func() {
		for _, name := range names { // every account is read often
			e.b.cachedAccount(name).lastRead.Store(e.clock.Now().UnixNano())
		}
		e.b.refreshDue(context.Background(), e.storage)
		e.waitBackground()
	}
	// Tick every minute until every account has refreshed; run each scheduled
	// refresh at its time.
	refreshed := func() bool {
		for _, name := range names {
			if e.b.cachedAccount(name).view.Load().expiresAt.Add(-time.Hour).Before(points[name]) {
				return false
			}
		}
		return true
	}
	start := e.clock.Now()
	ran := 0
	for !refreshed() {
		if e.clock.Now().Sub(start) > time.Hour {
			t.Fatal("not every account refreshed within a lifetime")
		}
		tick()
		next := e.clock.Now().Add(time.Minute)
		for _, tm := range timers.take() {
			if tm.at.After(next) {
				t.Fatalf("a refresh scheduled %s ahead, beyond the next tick", tm.at.Sub(e.clock.Now()))
			}
			e.clock.Advance(tm.at.Sub(e.clock.Now()))
			before := refreshes()
			tm.f()
			e.waitBackground()
			if refreshes() != before+1 {
				t.Fatalf("the refresh scheduled for %s did not run", tm.at.Format(time.TimeOnly))
			}
			ran++
		}
		e.clock.Advance(next.Sub(e.clock.Now()))
	}
	// Every account refreshed once, by its own timer, at its own point.
	if ran != n || refreshes() != n {
		t.Fatalf("%d scheduled refreshes ran, %d refreshes at Zoho; want %d each", ran, refreshes(), n)
	}
	for _, name := range names {
		v := e.b.cachedAccount(name).view.Load()
		if got := v.expiresAt.Add(-time.Hour); !got.Equal(points[name]) {
			t.Fatalf("%s refreshed at %s, its point was %s", name, got.Format(time.TimeOnly), points[name].Format(time.TimeOnly))
		}
	}
}

// Accounts whose refresh point passed before a periodic run saw them (a
// cohort minted while nobody ran the function, or a process started after
// their points) are not all refreshed at that run: the points of those whose
// tokens have time left move into it, spread, and each is refreshed by its
// latest point (a lead before expiry).
func TestOverdueRefreshesAreSpreadOverTheTimeLeft(t *testing.T) {
	e := newEnv(t)
	const n = 60
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("late%02d", i)
		e.account(names[i], nil)
		e.creds(names[i], nil)
	}
	// Half an hour on, about half the points have passed; nobody ran the
	// periodic function meanwhile and the timers set by the first reads
	// (points within a minute) are dropped.
	e.timers.take()
	e.clock.Advance(30 * time.Minute)
	overdue := map[string]time.Time{} // name → latest point
	for _, name := range names {
		a := e.b.cachedAccount(name)
		a.scheduledFor.Store(0)
		if v := a.view.Load(); !e.clock.Now().Before(v.refreshAt) {
			overdue[name] = v.expiresAt.Add(-refreshLead(v.lifetime))
		}
	}
	if len(overdue) < 10 {
		t.Fatalf("only %d accounts overdue: the test needs a cohort", len(overdue))
	}
	start := e.clock.Now()
	perMinute := map[int]int{}
	refreshed := map[string]bool{}
	for minute := 0; len(refreshed) < len(overdue); minute++ {
		if minute > 30 {
			t.Fatalf("%d of %d overdue accounts refreshed in half an hour", len(refreshed), len(overdue))
		}
		for _, name := range names { // every account is read often
			e.b.cachedAccount(name).lastRead.Store(e.clock.Now().UnixNano())
		}
		before := e.sim.Counters().Refreshes
		e.b.refreshDue(context.Background(), e.storage)
		e.waitBackground()
		if got := e.sim.Counters().Refreshes - before; got != 0 {
			t.Fatalf("%d accounts refreshed by the periodic run itself at minute %d", got, minute)
		}
		for _, tm := range e.timers.take() {
			e.clock.Advance(tm.at.Sub(e.clock.Now()))
			tm.f()
			e.waitBackground()
		}
		for name, latest := range overdue {
			if refreshed[name] {
				continue
			}
			v := e.b.cachedAccount(name).view.Load()
			if !v.expiresAt.Add(-time.Hour).After(start) { // still the old token
				continue
			}
			at := v.expiresAt.Add(-time.Hour)
			if at.After(latest) {
				t.Fatalf("%s refreshed %s after its latest point", name, at.Sub(latest))
			}
			refreshed[name] = true
			perMinute[int(at.Sub(start)/time.Minute)]++
		}
		e.clock.Advance(start.Add(time.Duration(minute+1) * time.Minute).Sub(e.clock.Now()))
	}
	// Spread over the twenty-odd minutes the tokens had left, not gathered.
	for m, c := range perMinute {
		if c > len(overdue)/10+2 {
			t.Fatalf("%d of %d overdue refreshes in minute %d: not spread (%v)", c, len(overdue), m, perMinute)
		}
	}
	if len(perMinute) < 10 {
		t.Fatalf("the overdue refreshes fell in %d minutes: not spread (%v)", len(perMinute), perMinute)
	}
}

// An account that comes into use gets a timer at once if its refresh point
// comes before the next periodic run could set one: a cohort minted between
// two runs refreshes at its points, not when readers or the run catch up.
func TestAccountsComingIntoUseScheduleSoonRefreshes(t *testing.T) {
	timers := &fakeTimers{}
	var clock *fakeClock
	e := newEnv(t, func(_ *zohosim.Config, o *Options) {
		o.AfterFunc = func(d time.Duration, f func()) func() bool { return timers.afterFunc(clock)(d, f) }
	})
	clock = e.clock
	const n = 200
	soon := 0
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("fresh%03d", i)
		e.account(name, nil)
		e.creds(name, nil)
		if e.b.cachedAccount(name).view.Load().refreshAt.Before(e.clock.Now().Add(time.Minute)) {
			soon++
		}
	}
	if soon == 0 {
		t.Fatal("no refresh point within the first minute: the test needs one")
	}
	scheduled := timers.take()
	if len(scheduled) != soon {
		t.Fatalf("%d timers set by the first reads, want one for each of the %d points within a minute", len(scheduled), soon)
	}
	for _, tm := range scheduled {
		e.clock.Advance(tm.at.Sub(e.clock.Now()))
		tm.f()
		e.waitBackground()
	}
	if got := e.sim.Counters().Refreshes; got != int64(soon) {
		t.Fatalf("%d refreshes, want %d", got, soon)
	}
}

// Accounts whose readers come only when their token has run out (a job that
// reads again when the token it was given expires) spend one token request
// per lifetime, with the periodic function running every minute in between.
// A token minted because its predecessor ran out is refreshed at the
// in-rhythm point, a lead before its expiry, so the next read finds its
// successor fresh. (Spreading such a token's point over its life, as for a
// bulk import, made the successor due before that read whenever the point
// fell early: two requests in that lifetime.)
func TestReadersAtExpirySpendOneRequestPerLifetime(t *testing.T) {
	e := newEnv(t)
	const n = 40
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("hourly%02d", i)
		e.account(names[i], nil)
	}
	requests := func(name string) int64 {
		return e.sim.ClientCounters(e.b.cachedAccount(name).cfg.ClientID).TokenRequests
	}
	// Each job's next read: just after the token it was given expires.
	next := make(map[string]time.Time, n)
	before := make(map[string]int64, n)
	read := func(name string) {
		resp := e.creds(name, nil)
		next[name] = e.clock.Now().Add(time.Duration(resp.Secret.TTL)).Add(leaseMargin(time.Hour) + 2*time.Second)
	}
	// The first reads come after the exchanged tokens ran out.
	e.clock.Advance(time.Hour + time.Second)
	for _, name := range names {
		read(name)
		before[name] = requests(name)
	}
	e.waitBackground()
	reads := map[string]int{}
	for step := 0; step < 4*65; step++ { // every minute, about four lifetimes
		e.clock.Advance(time.Minute)
		for _, name := range names {
			if e.clock.Now().Before(next[name]) {
				continue
			}
			read(name)
			e.waitBackground()
			reads[name]++
			if got := requests(name) - before[name]; got != 1 {
				t.Fatalf("%s: %d token requests before read %d, want 1 per lifetime", name, got, reads[name])
			}
			before[name] = requests(name)
		}
		e.b.refreshDue(context.Background(), e.storage)
		e.waitBackground()
		e.fireDueTimers()
	}
	for _, name := range names {
		if reads[name] < 3 {
			t.Fatalf("%s read %d times in four lifetimes", name, reads[name])
		}
	}
}

// A cohort minted together (a bulk import) whose readers then come in a pass
// (an application that starts using every account, each read every ten
// minutes) refreshes evenly over a lifetime: the first tokens whose spread
// points passed before their account's first read are not all refreshed at
// those reads, which would pile them up as the pass goes on.
func TestCohortReadInAPassRefreshesEvenly(t *testing.T) {
	e := newEnv(t)
	const (
		n        = 1000
		every    = 10 * time.Minute
		lifetime = time.Hour
		buckets  = 18
	)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bulk%04d", i)
		e.account(names[i], nil)
	}
	start := e.clock.Now()
	nextRead := make([]time.Time, n)
	for i := range nextRead {
		nextRead[i] = start.Add(time.Duration(i) * every / n)
	}
	var refreshAt []time.Duration // since start
	last := e.sim.Counters().Refreshes
	for step := time.Duration(0); step < 2*lifetime; step += time.Second {
		e.clock.Advance(time.Second)
		now := e.clock.Now()
		for i, name := range names {
			if !now.Before(nextRead[i]) {
				e.creds(name, nil)
				nextRead[i] = nextRead[i].Add(every)
			}
		}
		e.waitBackground()
		if step%time.Minute == 0 {
			e.b.refreshDue(context.Background(), e.storage)
			e.waitBackground()
		}
		e.fireDueTimers()
		cur := e.sim.Counters().Refreshes
		for ; last < cur; last++ {
			refreshAt = append(refreshAt, now.Sub(start))
		}
	}
	if len(refreshAt) == 0 {
		t.Fatal("no refresh in two lifetimes")
	}
	first := refreshAt[0]
	counts := make([]int, buckets)
	total := 0
	for _, at := range refreshAt {
		if k := int((at - first) * buckets / lifetime); k < buckets {
			counts[k]++
			total++
		}
	}
	busiest := slices.Max(counts)
	mean := float64(total) / buckets
	t.Logf("refreshes per %s from the first (at %s): %v; busiest ÷ mean %.2f", lifetime/buckets, first, counts, float64(busiest)/mean)
	if float64(busiest) > 1.4*mean {
		t.Fatalf("busiest %s held %d refreshes, %.2f× the mean %.1f: not spread (%v)", lifetime/buckets, busiest, float64(busiest)/mean, mean, counts)
	}
	// Steady use still spends about one token request per lifetime.
	if perAccount := float64(len(refreshAt)) / n; perAccount > 2*1.2 {
		t.Fatalf("%.2f refreshes per account in two lifetimes", perAccount)
	}
}

// A periodic run that comes at the very time a timer is set for leaves the
// refresh to the timer: the run does not refresh the account itself nor move
// its point, and the timer refreshes it at its point.
func TestRunAtATimersPointLeavesItToTheTimer(t *testing.T) {
	e := newEnv(t)
	c := e.account("attick", nil)
	e.creds("attick", nil)
	a := e.unscheduled("attick")
	point := a.view.Load().refreshAt
	if d := point.Add(-30 * time.Second).Sub(e.clock.Now()); d > 0 {
		e.clock.Advance(d)
	}
	a.lastRead.Store(e.clock.Now().UnixNano())
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("%d due before the point", n)
	}
	e.clock.Advance(point.Sub(e.clock.Now()))
	a.lastRead.Store(e.clock.Now().UnixNano())
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("the run at the timer's point refreshed %d accounts itself", n)
	}
	e.waitBackground()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 0 {
		t.Fatalf("%d refreshes before the timer fired", got)
	}
	e.fireDueTimers()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 1 {
		t.Fatalf("%d refreshes by the timer at its point, want 1", got)
	}
	if v := e.b.cachedAccount("attick").view.Load(); !v.expiresAt.Add(-time.Hour).Equal(point) {
		t.Fatalf("refreshed at %s, its point was %s", v.expiresAt.Add(-time.Hour), point)
	}
}

// An overdue account whose token has one second left before its latest point
// is not refreshed by the run: its point moves into that second.
func TestOverdueWithOneSecondLeftIsMovedNotRefreshed(t *testing.T) {
	e := newEnv(t)
	c := e.account("second", nil)
	e.creds("second", nil)
	a := e.unscheduled("second")
	v := a.view.Load()
	latest := v.expiresAt.Add(-refreshLead(v.lifetime))
	e.clock.Advance(latest.Add(-time.Second).Sub(e.clock.Now()))
	if e.clock.Now().Before(v.refreshAt) {
		t.Fatalf("the point %s is not before a second ahead of the latest %s: the test needs it overdue", v.refreshAt, latest)
	}
	a.lastRead.Store(e.clock.Now().UnixNano())
	if n := e.b.refreshDue(context.Background(), e.storage); n != 0 {
		t.Fatalf("%d accounts refreshed by the run with a second left", n)
	}
	e.waitBackground()
	if got := e.sim.ClientCounters(c.ID).Refreshes; got != 0 {
		t.Fatalf("%d refreshes", got)
	}
	if p := a.view.Load().refreshAt; p.Before(e.clock.Now()) || p.After(latest) {
		t.Fatalf("point moved to %s, want within [%s, %s]", p, e.clock.Now(), latest)
	}
}

// An account whose refresh is already running does not hold back the other
// due accounts of the run.
func TestAccountAlreadyRefreshingDoesNotHoldBackOthers(t *testing.T) {
	e := newEnv(t)
	shard := func(name string) uint64 { return maphash.String(e.b.inUse.seed, name) % accountShards }
	// Accounts are listed shard by shard: busy's shard comes before free's.
	busy, free := "acct0", ""
	for i := 1; free == ""; i++ {
		if n := fmt.Sprintf("acct%d", i); shard(n) != shard(busy) {
			free = n
		}
	}
	if shard(free) < shard(busy) {
		busy, free = free, busy
	}
	cb, cf := e.account(busy, nil), e.account(free, nil)
	e.creds(busy, nil)
	e.creds(free, nil)
	e.timers.take()
	e.clock.Advance(55*time.Minute + 30*time.Second) // past the latest points
	for _, n := range []string{busy, free} {
		a := e.b.cachedAccount(n)
		a.scheduledFor.Store(0)
		a.lastRead.Store(e.clock.Now().UnixNano())
	}
	e.b.cachedAccount(busy).refreshing.Store(true)
	e.b.refreshDue(context.Background(), e.storage)
	e.waitBackground()
	e.b.cachedAccount(busy).refreshing.Store(false)
	if got := e.sim.ClientCounters(cf.ID).Refreshes; got != 1 {
		t.Fatalf("%d refreshes of %s after %s (already refreshing), want 1", got, free, busy)
	}
	if got := e.sim.ClientCounters(cb.ID).Refreshes; got != 0 {
		t.Fatalf("%d refreshes of %s, whose refresh was already running", got, busy)
	}
}

// An earlier refresh point replaces a later timer.
func TestEarlierRefreshPointReplacesLaterTimer(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	e.creds("a", nil)
	a := e.b.cachedAccount("a")
	e.timers.take()
	now := e.clock.Now()
	e.b.scheduleRefresh(e.storage, a, 50*time.Second, now.Add(50*time.Second))
	e.b.scheduleRefresh(e.storage, a, 20*time.Second, now.Add(20*time.Second))
	got := e.timers.take()
	if len(got) != 1 || !got[0].at.Equal(now.Add(20*time.Second)) {
		t.Fatalf("timers after an earlier point: %+v (want one at +20s)", got)
	}
}

// An account read exactly one token lifetime ago is still in use.
func TestAccountReadWithinTheLifetimeStaysInUse(t *testing.T) {
	e := newEnv(t)
	e.account("a", nil)
	e.creds("a", nil)
	a := e.b.cachedAccount("a")
	read := e.clock.Now()
	a.lastRead.Store(read.UnixNano())
	e.b.leaveInUse(a, read.Add(time.Hour), time.Hour)
	if n := e.b.inUseCount(); n != 1 {
		t.Fatalf("in use after leaveInUse at one lifetime since the read: %d (want 1)", n)
	}
	e.b.leaveInUse(a, read.Add(time.Hour+time.Second), time.Hour)
	if n := e.b.inUseCount(); n != 0 {
		t.Fatalf("in use after leaveInUse past the lifetime: %d (want 0)", n)
	}
}
