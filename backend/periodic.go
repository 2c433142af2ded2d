// Vault's periodic function: background refreshes of accounts in use and the
// sweep of expired consents.

package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/errgroup"
)

// periodic runs on Vault's rollback schedule (every minute). It refreshes
// ahead of expiry the tokens of accounts read within their token's lifetime,
// so readers do not wait on Zoho; idle accounts are refreshed lazily on their
// next read.
func (b *Backend) periodic(ctx context.Context, req *logical.Request) error {
	if b.isReplicaOrStandby() {
		return nil
	}
	b.refreshDue(ctx, req.Storage)
	b.resumeDeviceAuthorizations(ctx, req.Storage) // once, if initialize did not
	if err := b.sweepPending(ctx, req.Storage); err != nil {
		b.logger.Warn("could not remove expired consent requests", "error", err)
	}
	return nil
}

// sweepPending removes consents started with auth-url/ that expired unused.
func (b *Backend) sweepPending(ctx context.Context, s logical.Storage) error {
	keys, err := s.List(ctx, pendingPrefix)
	if err != nil {
		return err
	}
	now := b.now()
	for _, k := range keys {
		var p pendingAuth
		found, err := getJSON(ctx, s, pendingPrefix+k, &p)
		if err != nil {
			return err
		}
		if found && now.Before(p.ExpiresAt) {
			continue
		}
		if err := s.Delete(ctx, pendingPrefix+k); err != nil {
			return err
		}
	}
	return nil
}

// refreshDue refreshes every account in use whose token has reached its
// refresh point, a bounded number at a time, and schedules the refresh of
// those whose point comes before the next tick at that point. It looks only
// at accounts read within their token's life (Backend.inUse), so its work
// grows with the accounts in use, not with all accounts; idle ones leave the
// set and are refreshed lazily on their next read.
//
// Refreshing at the tick everything whose point passed since the last one
// would gather a minute's worth of refreshes into one burst; a timer per
// refresh keeps the spread the refresh points were chosen for (timing.go).
func (b *Backend) refreshDue(ctx context.Context, s logical.Storage) int {
	now := b.now()
	started := time.Now()
	horizon := now.Add(b.opts.PeriodicInterval)
	var due []*account
	examined := 0
	b.inUse.Range(func(a *account) bool {
		examined++
		view := a.view.Load()
		lifetime := time.Hour
		if view != nil {
			lifetime = view.lifetime
		}
		if b.cachedAccount(a.name) != a || now.Sub(time.Unix(0, a.lastRead.Load())) > lifetime {
			b.leaveInUse(a, now, lifetime)
			return true
		}
		if at := a.scheduledFor.Load(); at != 0 && at <= now.UnixNano() {
			return true // its timer is firing
		}
		if view != nil && !now.Before(view.refreshAt) {
			// Overdue: its point passed before a run or a timer saw it. If
			// the token has time left, the point moves into it rather than
			// the run refreshing every such account at once.
			if view = b.deferPassedPoint(a, view, now); view == nil {
				due = append(due, a)
				return true
			}
		}
		if view != nil && view.refreshAt.Before(horizon) {
			b.scheduleRefresh(s, a, view.refreshAt.Sub(now), view.refreshAt)
		}
		return true
	})
	var g errgroup.Group
	g.SetLimit(b.opts.BackgroundConcurrency)
	for _, a := range due {
		if ctx.Err() != nil {
			break
		}
		if !a.refreshing.CompareAndSwap(false, true) {
			continue
		}
		g.Go(func() error {
			defer a.refreshing.Store(false)
			if err := b.refreshAhead(s, a); err != nil {
				b.logger.Debug("background refresh did not run", "account", a.name, "error", err)
			}
			return nil
		})
	}
	_ = g.Wait()
	b.metrics.periodicTicks.Inc()
	b.metrics.periodicExamined.Set(float64(examined))
	b.metrics.periodicSeconds.Set(time.Since(started).Seconds())
	return len(due)
}

// deferPassedPoint moves the refresh point of v, which has passed at now
// unseen (the account was idle, or the process that would have seen it was
// not running), to a point between now and the token's latest point (a lead
// before its expiry), and returns the view with the new point; nil if the
// token has no time to spare and must be refreshed now. Refreshing every such
// account when it is next seen would gather them: a bulk import's spread
// points pile up behind the readers' first pass, a restart's behind the first
// reads. The new points follow one golden-ratio sequence for the whole
// backend, so those moved together fan out over the time their tokens have
// left; the refresh that ends it mints a token in rhythm.
func (b *Backend) deferPassedPoint(a *account, v *tokenView, now time.Time) *tokenView {
	latest := v.expiresAt.Add(-refreshLead(v.lifetime))
	window := latest.Sub(now)
	if window < time.Second {
		return nil
	}
	moved := *v
	moved.refreshAt = now.Add(time.Duration(goldenShare(b.deferred.Add(1)) * float64(window)))
	if !a.view.CompareAndSwap(v, &moved) {
		return nil // replaced meanwhile: the caller looks at it as it is now
	}
	return &moved
}

// scheduleRefresh starts a's background refresh after d, at at, unless a
// timer set earlier fires by then. The timer does nothing
// if the account was replaced or refreshed meanwhile, or the backend stopped.
func (b *Backend) scheduleRefresh(s logical.Storage, a *account, d time.Duration, at time.Time) {
	if prev := a.scheduledFor.Load(); prev != 0 && prev <= at.UnixNano() {
		return // a timer set earlier fires by then
	}
	a.scheduledFor.Store(at.UnixNano())
	b.timersMu.Lock()
	defer b.timersMu.Unlock()
	if b.bgCtx.Err() != nil {
		return
	}
	if stop := b.timers[a]; stop != nil {
		stop()
	}
	b.timers[a] = b.opts.AfterFunc(d, func() {
		b.timersMu.Lock()
		delete(b.timers, a)
		b.timersMu.Unlock()
		a.scheduledFor.Store(0)
		view := a.view.Load()
		if b.cachedAccount(a.name) != a || view == nil || b.now().Before(view.refreshAt) {
			return
		}
		b.refreshInBackground(s, a)
	})
}

// scheduleIfSoon sets a timer at the refresh point of an account in use if
// the point comes within one periodic interval of now (later ones are left to
// the periodic runs).
func (b *Backend) scheduleIfSoon(s logical.Storage, a *account, now time.Time) {
	if b.isReplicaOrStandby() {
		return
	}
	v := a.view.Load()
	if v == nil || !now.Before(v.refreshAt) || !v.refreshAt.Before(now.Add(b.opts.PeriodicInterval)) {
		return
	}
	b.scheduleRefresh(s, a, v.refreshAt.Sub(now), v.refreshAt)
}

// stopTimers cancels every scheduled refresh (the backend is shutting down).
func (b *Backend) stopTimers() {
	b.timersMu.Lock()
	defer b.timersMu.Unlock()
	for a, stop := range b.timers {
		stop()
		delete(b.timers, a)
	}
}

// leaveInUse takes an idle (or replaced) account out of the in-use set. A
// reader that marks it read meanwhile either sees the flag still set (and the
// check after the removal sees its read) or sets it again itself.
func (b *Backend) leaveInUse(a *account, now time.Time, lifetime time.Duration) {
	a.inUse.Store(false)
	b.inUse.CompareAndDelete(a.name, a)
	if b.cachedAccount(a.name) == a && now.Sub(time.Unix(0, a.lastRead.Load())) <= lifetime && a.inUse.CompareAndSwap(false, true) {
		b.inUse.Store(a.name, a)
	}
}

// inUseCount is the size of the in-use set (for tests and metrics).
func (b *Backend) inUseCount() int {
	return b.inUse.Len()
}
