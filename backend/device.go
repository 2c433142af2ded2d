// device/<name>: Zoho's device authorization flow for an account. Starting it
// (the device code request), polling Zoho in the background at its pace until
// the user approves, refuses or lets the code expire, following the user to
// their data center (other_dc), storing the refresh token as a grant-code
// exchange does, resuming after a restart, and what status shows of it.

package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// devicePrefix holds one deviceRecord per account that started a device
// authorization (seal-wrapped: a pending one holds the device code).
const devicePrefix = "device/"

const (
	// maxPendingDevices bounds the device authorizations polled at once per
	// mount (each is a timer, and a goroutine while a poll runs).
	maxPendingDevices = 100
	// maxDeviceRetryWait caps the back-off between polls Zoho could not answer.
	maxDeviceRetryWait = 2 * time.Minute
)

// deviceAPI is the part of Zoho's accounts server the device flow uses;
// *zoho.Client implements it.
type deviceAPI interface {
	RequestDeviceCode(ctx context.Context, app zoho.App, scopes string, offline bool) (*zoho.DeviceCode, error)
	PollDeviceToken(ctx context.Context, app zoho.App, deviceCode string) (*zoho.Token, error)
}

// deviceRecord is an account's latest device authorization. Every read and
// write of it happens under the account's lock.
type deviceRecord struct {
	ID              string `json:"id"` // tells this authorization from the one that replaces it
	State           string `json:"state"`
	DeviceCode      string `json:"device_code,omitempty"` // secret; dropped once the authorization ends
	UserCode        string `json:"user_code"`
	VerificationURL string `json:"verification_url"`
	ClientID        string `json:"client_id"` // the client it was started for
	// Epoch is the account's credentials epoch it was started under: once
	// the account's credentials change, it is neither polled nor approved.
	Epoch int64 `json:"epoch,omitempty"`
	// AccountsURL is where it is polled: the account's accounts server, then
	// the user's after other_dc (DataCenter names that data center).
	AccountsURL  string        `json:"accounts_url"`
	DataCenter   string        `json:"data_center,omitempty"`
	BaseInterval time.Duration `json:"base_interval"` // Zoho's announced interval
	Interval     time.Duration `json:"interval"`      // the least wait between polls: longer after slow_down
	StartedAt    time.Time     `json:"started_at"`
	ExpiresAt    time.Time     `json:"expires_at"`
	Polls        int           `json:"polls,omitempty"`
	LastPollAt   time.Time     `json:"last_poll_at,omitempty"` // when Zoho's last answer came
	LastAnswer   string        `json:"last_answer,omitempty"`  // what it said (never a secret)
	// InFlight is when a poll was sent whose answer is not stored yet; found
	// set before the next poll, the answer was lost (a crash).
	InFlight time.Time `json:"in_flight,omitempty"`
	// AnswerLost: a poll's answer was lost, so Zoho may have handed its
	// tokens to nobody; if the code then turns out spent, the account's status
	// says a refresh token may have been lost.
	AnswerLost bool      `json:"answer_lost,omitempty"`
	Failures   int       `json:"failures,omitempty"` // consecutive polls Zoho could not answer
	EndedAt    time.Time `json:"ended_at,omitempty"`
}

func (r *deviceRecord) view() *paths.DeviceAuthorization {
	return &paths.DeviceAuthorization{
		State:           r.State,
		UserCode:        r.UserCode,
		VerificationURL: r.VerificationURL,
		AccountsURL:     r.AccountsURL,
		StartedAt:       r.StartedAt,
		ExpiresAt:       r.ExpiresAt,
		Interval:        r.Interval,
		Polls:           r.Polls,
		LastPollAt:      r.LastPollAt,
		LastPollAnswer:  r.LastAnswer,
		EndedAt:         r.EndedAt,
	}
}

// nextPollAt is the earliest time the next poll may be sent: a whole interval
// after the last answer (or the last poll sent, or the start).
func (r *deviceRecord) nextPollAt() time.Time {
	last := r.StartedAt
	for _, t := range []time.Time{r.LastPollAt, r.InFlight} {
		if t.After(last) {
			last = t
		}
	}
	return last.Add(r.Interval)
}

// untilNextPoll is how long to wait after an answer at now before the next
// poll, wait being what the answer asks for: no later than the code's expiry
// if that still leaves a whole interval (one last poll hears Zoho's verdict).
func (r *deviceRecord) untilNextPoll(now time.Time, wait time.Duration) time.Duration {
	at := now.Add(wait)
	if now.Before(r.ExpiresAt) && at.After(r.ExpiresAt) {
		at = r.ExpiresAt
		if least := now.Add(r.Interval); at.Before(least) {
			at = least
		}
	}
	return at.Sub(now)
}

// deviceRetryWait is the wait after failures polls in a row that Zoho could
// not answer: the interval, doubled for each further failure, capped.
func deviceRetryWait(interval time.Duration, failures int) time.Duration {
	d := interval
	for i := 1; i < failures && d < maxDeviceRetryWait; i++ {
		d *= 2
	}
	return max(min(d, maxDeviceRetryWait), interval)
}

// devicePollers are the device authorizations this node polls, one per
// account at most, each as a timer (Options.AfterFunc) for its next poll.
type devicePollers struct {
	mu      sync.Mutex
	closed  bool // the backend is shutting down
	resumed bool // the stored pending authorizations are being polled
	polls   map[string]*devicePoll
	sem     chan struct{} // bounds the polls running at once
}

type devicePoll struct {
	id   string // the deviceRecord's ID
	stop func() bool
}

// StartDeviceAuthorization implements paths.Engine.
func (b *Backend) StartDeviceAuthorization(ctx context.Context, s logical.Storage, name string) (*paths.DeviceAuthorization, error) {
	api, ok := b.zoho.(deviceAPI)
	if !ok {
		return nil, errors.New("this engine's Zoho client does not support the device authorization flow")
	}
	a, unlock, err := b.lockAccount(ctx, s, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if a == nil {
		return nil, noAccountError(name)
	}
	a.mu.Lock()
	cfg := *a.cfg
	a.mu.Unlock()
	if cfg.clientCredentials() {
		return nil, &paths.InputError{Field: paths.FieldGrantType, Msg: fmt.Sprintf(
			"account %q mints with client credentials and holds no refresh token: the device authorization is for refresh_token accounts (delete the account and write it with grant_type=refresh_token to authorize a user)", name)}
	}
	if len(cfg.Scopes) == 0 {
		return nil, &paths.InputError{Field: paths.FieldScopes, Msg: fmt.Sprintf(
			"account %q has no scopes: Zoho's device authorization needs at least one; write scopes to config/%s first", name, name)}
	}
	var prev deviceRecord
	found, err := getJSON(ctx, s, devicePrefix+name, &prev)
	if err != nil {
		return nil, err
	}
	replacing := found && prev.State == paths.DeviceStatePending
	if !replacing && b.devicePollCount() >= maxPendingDevices {
		return nil, logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf(
			"account %q: %d device authorizations are pending on this mount already; wait for them to end or cancel some (delete device/<name>)", name, maxPendingDevices))
	}

	app := appFor(&cfg)
	uctx, cancel := b.requestUpstreamCtx(ctx)
	defer cancel()
	started := b.now()
	began := time.Now()
	dc, err := api.RequestDeviceCode(uctx, app, strings.Join(cfg.Scopes, ","), true)
	b.metrics.observe(zoho.OpDeviceCode, began, err)
	if err != nil {
		b.logger.Warn("device code request failed", "account", name, "error", err)
		return nil, deviceStartError(name, err)
	}
	rec := &deviceRecord{
		ID:              newDeviceID(),
		State:           paths.DeviceStatePending,
		DeviceCode:      dc.DeviceCode,
		UserCode:        dc.UserCode,
		VerificationURL: dc.VerificationURL,
		ClientID:        cfg.ClientID,
		Epoch:           cfg.Epoch,
		AccountsURL:     app.AccountsURL,
		BaseInterval:    dc.Interval,
		Interval:        dc.Interval,
		StartedAt:       started,
		ExpiresAt:       dc.ExpiresAt(started),
	}
	if err := putJSON(ctx, s, devicePrefix+name, rec); err != nil {
		return nil, err
	}
	b.scheduleDevicePoll(s, name, rec.ID, rec.Interval)
	b.settleAttention(ctx, s, name)
	b.logger.Info("device authorization started", "account", name, "user_code", rec.UserCode,
		"verification_url", rec.VerificationURL, "expires_at", rec.ExpiresAt, "interval", rec.Interval, "replaced_pending", replacing)

	out := rec.view()
	if replacing {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the pending device authorization (user code %s) was replaced: it is no longer polled", prev.UserCode))
	}
	if cfg.RefreshToken != "" {
		out.Warnings = append(out.Warnings, "the account holds a refresh token: once the user approves, the new one replaces it and the old one is revoked at Zoho")
	}
	return out, nil
}

// deviceStartError reports a failed device code request: 400 when Zoho
// rejected what an operator must fix, 429 when throttled, 502 otherwise.
func deviceStartError(name string, err error) error {
	ze, ok := zoho.AsError(err)
	if !ok {
		return fmt.Errorf("account %q: no device authorization was started: %w", name, err)
	}
	status := upstreamStatus(ze)
	msg := fmt.Sprintf("account %q: %s", name, ze.Error())
	if ze.Kind == zoho.KindRejected {
		if hint := ze.Hint(); hint != "" {
			msg += "; " + hint
		}
	}
	return logical.CodedError(status, msg+"; no device authorization was started")
}

func newDeviceID() string {
	raw := make([]byte, 16)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(raw)
}

// ReadDeviceAuthorization implements paths.Engine.
func (b *Backend) ReadDeviceAuthorization(ctx context.Context, s logical.Storage, name string) (*paths.DeviceAuthorization, error) {
	return b.deviceStatus(ctx, s, name)
}

// deviceStatus is the account's latest device authorization for status, nil
// if none was started.
func (b *Backend) deviceStatus(ctx context.Context, s logical.Storage, name string) (*paths.DeviceAuthorization, error) {
	var rec deviceRecord
	found, err := getJSON(ctx, s, devicePrefix+name, &rec)
	if err != nil || !found {
		return nil, err
	}
	return rec.view(), nil
}

// CancelDeviceAuthorization implements paths.Engine.
func (b *Backend) CancelDeviceAuthorization(ctx context.Context, s logical.Storage, name string) error {
	unlock, err := b.locks.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	b.dropDevicePoll(name, "")
	if err := s.Delete(ctx, devicePrefix+name); err != nil {
		return err
	}
	b.settleAttention(ctx, s, name)
	b.logger.Info("device authorization cancelled", "account", name)
	return nil
}

// forgetDeviceLocked stops polling the account's device authorization and
// removes it (the account is being deleted or revoked). The caller holds the account's
// lock.
func (b *Backend) forgetDeviceLocked(ctx context.Context, s logical.Storage, name string) {
	b.dropDevicePoll(name, "")
	if err := s.Delete(ctx, devicePrefix+name); err != nil {
		// Not polled any more; a restart finds it and, the account gone, removes it.
		b.logger.Warn("could not remove the deleted account's device authorization", "account", name, "error", err)
	}
}

// settleAttention takes the account out of the attention index when nothing
// in its status needs an operator any more (a device authorization that
// ended badly was replaced or cancelled).
func (b *Backend) settleAttention(ctx context.Context, s logical.Storage, name string) {
	if st, err := b.ReadAccount(ctx, s, name); err == nil && st != nil && !st.NeedsAttention() {
		b.clearAttention(ctx, s, name)
	}
}

// scheduleDevicePoll sets the account's next poll after d, replacing the one
// set before (of this or a replaced authorization).
func (b *Backend) scheduleDevicePoll(s logical.Storage, name, id string, d time.Duration) {
	p := &devicePoll{id: id}
	b.devices.mu.Lock()
	defer b.devices.mu.Unlock()
	if b.devices.closed || b.bgCtx.Err() != nil {
		return
	}
	if b.devices.polls == nil {
		b.devices.polls = map[string]*devicePoll{}
	}
	if old := b.devices.polls[name]; old != nil {
		old.stop()
	}
	b.devices.polls[name] = p
	p.stop = b.opts.AfterFunc(max(d, 0), func() { b.runDevicePoll(s, name, p) })
}

// runDevicePoll is a poll's timer firing: it polls unless the poll was
// replaced or stopped meanwhile, within the bound of polls running at once.
func (b *Backend) runDevicePoll(s logical.Storage, name string, p *devicePoll) {
	b.devices.mu.Lock()
	if b.devices.closed || b.devices.polls[name] != p {
		b.devices.mu.Unlock()
		return
	}
	b.bgWG.Add(1) // before cleanup's Wait: cleanup closes the pollers first
	if b.devices.sem == nil {
		b.devices.sem = make(chan struct{}, b.opts.BackgroundConcurrency)
	}
	sem := b.devices.sem
	b.devices.mu.Unlock()
	defer b.bgWG.Done()
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	case <-b.bgCtx.Done():
		return
	}
	b.pollDevice(s, name, p.id)
}

// dropDevicePoll stops the account's poller if it polls authorization id
// (any with an empty id).
func (b *Backend) dropDevicePoll(name, id string) {
	b.devices.mu.Lock()
	defer b.devices.mu.Unlock()
	if p := b.devices.polls[name]; p != nil && (id == "" || p.id == id) {
		p.stop()
		delete(b.devices.polls, name)
	}
}

// devicePollCount is how many device authorizations this node polls.
func (b *Backend) devicePollCount() int {
	b.devices.mu.Lock()
	defer b.devices.mu.Unlock()
	return len(b.devices.polls)
}

// stopDevicePolls stops every poller for good (the backend is shutting down).
func (b *Backend) stopDevicePolls() {
	b.devices.mu.Lock()
	defer b.devices.mu.Unlock()
	b.devices.closed = true
	for name, p := range b.devices.polls {
		p.stop()
		delete(b.devices.polls, name)
	}
}

// resumeDeviceAuthorizations polls again the stored authorizations still
// pending, once per backend (after a restart, a reload or a failover), on the
// active node only; a failure is retried at the next periodic tick.
func (b *Backend) resumeDeviceAuthorizations(ctx context.Context, s logical.Storage) {
	if b.isReplicaOrStandby() {
		return
	}
	b.devices.mu.Lock()
	done := b.devices.resumed || b.devices.closed
	b.devices.mu.Unlock()
	if done {
		return
	}
	names, err := s.List(ctx, devicePrefix)
	if err != nil {
		b.logger.Warn("could not list device authorizations to resume; will retry", "error", err)
		return
	}
	resumed := 0
	for _, name := range names {
		ok, err := b.resumeDevice(ctx, s, name)
		if err != nil {
			b.logger.Warn("could not resume a device authorization; will retry", "account", name, "error", err)
			return
		}
		if ok {
			resumed++
		}
	}
	b.devices.mu.Lock()
	b.devices.resumed = true
	b.devices.mu.Unlock()
	if resumed > 0 {
		b.logger.Info("resumed polling device authorizations", "pending", resumed)
	}
}

// resumeDevice schedules the next poll of the account's authorization if it
// is pending and not polled yet.
func (b *Backend) resumeDevice(ctx context.Context, s logical.Storage, name string) (bool, error) {
	unlock, err := b.locks.lock(ctx, name)
	if err != nil {
		return false, err
	}
	defer unlock()
	var rec deviceRecord
	found, err := getJSON(ctx, s, devicePrefix+name, &rec)
	if err != nil || !found || rec.State != paths.DeviceStatePending {
		return false, err
	}
	b.devices.mu.Lock()
	_, polled := b.devices.polls[name]
	b.devices.mu.Unlock()
	if polled {
		return false, nil
	}
	b.scheduleDevicePoll(s, name, rec.ID, rec.nextPollAt().Sub(b.now()))
	return true, nil
}

// pollDevice polls Zoho once for the account's authorization id and acts on
// the answer: schedules the next poll, or ends the authorization (storing the
// refresh token on approval). It holds the account's lock throughout, as a
// grant-code exchange does; no other account waits on it.
func (b *Backend) pollDevice(s logical.Storage, name, id string) {
	ctx := b.bgCtx
	api, ok := b.zoho.(deviceAPI)
	if !ok {
		b.dropDevicePoll(name, id)
		return
	}
	a, unlock, err := b.lockAccount(ctx, s, name)
	if err != nil {
		if ctx.Err() == nil {
			b.logger.Warn("could not load the account to poll its device authorization; will retry", "account", name, "error", err)
			b.scheduleDevicePoll(s, name, id, zoho.DefaultDevicePollInterval)
		}
		return
	}
	defer unlock()
	key := devicePrefix + name
	var rec deviceRecord
	found, err := getJSON(ctx, s, key, &rec)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			b.logger.Warn("could not read a device authorization to poll it; will retry", "account", name, "error", err)
			b.scheduleDevicePoll(s, name, id, zoho.DefaultDevicePollInterval)
		}
		return
	case !found || rec.ID != id || rec.State != paths.DeviceStatePending:
		b.dropDevicePoll(name, id) // replaced, cancelled or over
		return
	case a == nil:
		// The account is gone, so is its authorization.
		b.forgetDeviceLocked(ctx, s, name)
		return
	}
	a.mu.Lock()
	cfg := *a.cfg
	a.mu.Unlock()
	now := b.now()
	if cfg.ClientID != rec.ClientID || cfg.Epoch != rec.Epoch {
		// Never send the account's current secret where the flow started,
		// nor let the flow replace credentials newer than itself.
		rec.LastAnswer = supersededDeviceAnswer
		b.endDeviceLocked(ctx, s, name, &rec, &cfg, paths.DeviceStateSuperseded, now)
		return
	}
	if next := rec.nextPollAt(); now.Before(next) {
		b.scheduleDevicePoll(s, name, id, next.Sub(now)) // never faster than the interval
		return
	}
	if !rec.InFlight.IsZero() {
		rec.AnswerLost = true // the previous poll's answer was never stored
	}
	rec.InFlight = now
	rec.Polls++
	if err := putJSON(ctx, s, key, &rec); err != nil {
		if ctx.Err() == nil {
			b.logger.Warn("could not record a device poll before sending it; will retry", "account", name, "error", err)
			b.scheduleDevicePoll(s, name, id, rec.Interval)
		}
		return
	}

	app := zoho.App{AccountsURL: rec.AccountsURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret}
	uctx, cancel := b.upstreamCtx()
	began := time.Now()
	t, perr := api.PollDeviceToken(uctx, app, rec.DeviceCode)
	cancel()
	outcome := zoho.ClassifyDevicePoll(perr)
	if outcome == zoho.DeviceRetry || outcome == zoho.DeviceFailed || outcome == zoho.DeviceInvalidCode {
		b.metrics.observe(zoho.OpDevicePoll, began, perr)
	} else {
		b.metrics.observe(zoho.OpDevicePoll, began, nil) // Zoho answered as the flow expects
	}
	// What follows is stored even if the backend is shutting down: the
	// answer may carry a refresh token.
	sctx := context.WithoutCancel(ctx)
	now = b.now()
	rec.InFlight = time.Time{}
	rec.LastPollAt = now
	rec.LastAnswer = devicePollAnswer(outcome, perr)
	wait := rec.Interval
	switch outcome {
	case zoho.DeviceGranted:
		b.deviceGrantedLocked(sctx, s, a, name, &rec, &cfg, t, now)
		return
	case zoho.DevicePending:
		rec.Failures = 0
	case zoho.DeviceSlowDown:
		// Wait a whole interval more, and keep to the longer pace. Zoho
		// enforces one poll per 30 s whatever interval it announced: adding a
		// short announced interval each time would be slowed down again and
		// again (every poll counts, the slowed ones too).
		rec.Failures = 0
		rec.Interval = min(max(rec.Interval+rec.BaseInterval, zoho.DocumentedDevicePollInterval), zoho.MaxDevicePollInterval)
		wait = rec.Interval
		b.logger.Info("Zoho asked to poll the device authorization more slowly", "account", name, "interval", rec.Interval)
	case zoho.DeviceOtherDC:
		rec.Failures = 0
		ze, _ := zoho.AsError(perr)
		dc, next, err := zoho.FollowOtherDC(rec.AccountsURL, ze.UserLocation)
		if err != nil {
			rec.LastAnswer = zoho.Truncate(err.Error())
			b.endDeviceLocked(sctx, s, name, &rec, &cfg, paths.DeviceStateFailed, now)
			return
		}
		rec.AccountsURL, rec.DataCenter = next, dc.Code
		b.logger.Info("the user approved the device authorization in another data center: polling there", "account", name, "data_center", dc.Code, "accounts_server", next)
	case zoho.DeviceRetry:
		rec.Failures++
		if mayHaveMinted(perr) {
			rec.AnswerLost = true
		}
		wait = deviceRetryWait(rec.Interval, rec.Failures)
		b.logger.Warn("device poll failed; will retry", "account", name, "error", perr, "failures", rec.Failures, "next_in", wait)
	case zoho.DeviceDenied:
		b.endDeviceLocked(sctx, s, name, &rec, &cfg, paths.DeviceStateDenied, now)
		return
	case zoho.DeviceExpired:
		b.endDeviceLocked(sctx, s, name, &rec, &cfg, paths.DeviceStateExpired, now)
		return
	default: // DeviceInvalidCode, DeviceFailed
		b.logger.Warn("device authorization failed", "account", name, "error", perr)
		if outcome == zoho.DeviceInvalidCode && rec.AnswerLost {
			b.markLostGrantLocked(sctx, s, a, name, now)
		}
		b.endDeviceLocked(sctx, s, name, &rec, &cfg, paths.DeviceStateFailed, now)
		return
	}
	if !now.Before(rec.ExpiresAt) {
		// Zoho has not said "expired" (clocks differ), but the code's lifetime is over.
		b.endDeviceLocked(sctx, s, name, &rec, &cfg, paths.DeviceStateExpired, now)
		return
	}
	if err := putJSON(sctx, s, key, &rec); err != nil {
		b.logger.Warn("could not store a device poll's answer", "account", name, "error", err)
	}
	b.scheduleDevicePoll(s, name, id, rec.untilNextPoll(now, wait))
}

// devicePollAnswer describes a poll's answer for status, never a secret:
// Zoho's code for the flow's answers, the error and what to do otherwise.
func devicePollAnswer(outcome zoho.DevicePoll, err error) string {
	if outcome == zoho.DeviceGranted {
		return "granted"
	}
	ze, ok := zoho.AsError(err)
	if !ok {
		return "internal error"
	}
	switch outcome {
	case zoho.DevicePending, zoho.DeviceSlowDown, zoho.DeviceDenied, zoho.DeviceExpired:
		return ze.Code
	case zoho.DeviceOtherDC:
		return fmt.Sprintf("%s (%s)", ze.Code, ze.UserLocation)
	}
	if hint := ze.Hint(); hint != "" {
		return ze.Error() + "; " + hint
	}
	return ze.Error()
}

// deviceGrantedLocked stores the refresh token of an approved authorization
// through the grant-code exchange's path (writeAccountLocked): generation
// bump, issuer, the access token installed, a replaced refresh token revoked.
// The account follows the accounts server that issued it. The caller holds
// the account's lock.
func (b *Backend) deviceGrantedLocked(ctx context.Context, s logical.Storage, a *account, name string, rec *deviceRecord, cfg *accountConfig, t *zoho.Token, now time.Time) {
	if t.RefreshToken == "" {
		// Without a refresh token the engine cannot keep the account alive:
		// give the access token back.
		if err := b.revokeAt(ctx, rec.AccountsURL, t.AccessToken); err != nil {
			b.logger.Warn("could not revoke the access token of a device authorization without a refresh token", "account", name, "error", err)
		}
		rec.LastAnswer = "granted without a refresh token (Zoho grants one only with offline access): start a new device authorization"
		b.endDeviceLocked(ctx, s, name, rec, cfg, paths.DeviceStateFailed, now)
		return
	}
	var in paths.AccountInput
	if rec.AccountsURL != accountsURL(cfg) {
		if dc, ok := zoho.IsKnownAccountsServer(rec.AccountsURL); ok {
			code, empty := dc.Code, ""
			in.DataCenter, in.AccountsURL = &code, &empty
		} else {
			u := rec.AccountsURL
			in.AccountsURL = &u
			if rec.DataCenter != "" {
				code := rec.DataCenter
				in.DataCenter = &code
			}
		}
	}
	flow := &flowOrigin{epoch: rec.Epoch, device: rec.ID, granted: t, what: fmt.Sprintf("the device authorization (user code %s)", rec.UserCode)}
	res, err := b.writeAccountLocked(ctx, s, a, name, in, flow)
	if err != nil {
		a.mu.Lock()
		stored := a.cfg.RefreshToken == t.RefreshToken
		a.mu.Unlock()
		if !stored {
			b.logger.Error("could not store the refresh token of an approved device authorization; revoking it", "account", name, "error", err)
			if rerr := b.revokeRefreshToken(ctx, rec.AccountsURL, t.RefreshToken); rerr != nil {
				b.logger.Warn("could not revoke the unstored refresh token", "account", name, "error", rerr)
			}
			rec.LastAnswer = "granted, but the refresh token could not be stored (see the server log): start a new device authorization"
			b.endDeviceLocked(ctx, s, name, rec, cfg, paths.DeviceStateFailed, now)
			return
		}
		b.logger.Warn("device authorization approved; the refresh token is stored but not its access token", "account", name, "error", err)
	} else {
		for _, w := range res.Warnings {
			b.logger.Warn("device authorization approved: "+w, "account", name)
		}
	}
	b.endDeviceLocked(ctx, s, name, rec, cfg, paths.DeviceStateApproved, now)
}

// endDeviceLocked ends the authorization in state: the device code is
// dropped, polling stops, and an account left without a refresh token joins
// the attention index (not when a change of credentials superseded it: the
// operator made that change). The caller holds the account's lock.
func (b *Backend) endDeviceLocked(ctx context.Context, s logical.Storage, name string, rec *deviceRecord, cfg *accountConfig, state string, now time.Time) {
	rec.State = state
	rec.DeviceCode = ""
	rec.InFlight = time.Time{}
	rec.EndedAt = now
	if err := putJSON(ctx, s, devicePrefix+name, rec); err != nil {
		// Still stored as pending: a restart polls it once more and Zoho
		// answers as it did.
		b.logger.Error("could not store the end of a device authorization", "account", name, "state", state, "error", err)
	}
	b.dropDevicePoll(name, rec.ID)
	if state != paths.DeviceStateApproved && state != paths.DeviceStateSuperseded && cfg != nil && cfg.RefreshToken == "" {
		b.flagAttention(ctx, s, name, now)
	}
	b.logger.Info("device authorization ended", "account", name, "state", state, "polls", rec.Polls, "last_answer", rec.LastAnswer)
}

// markLostGrantLocked records on the account that Zoho may have issued a
// refresh token Vault never received: a poll's answer was lost and the code
// is spent now. As for an interrupted grant-code exchange, the status says so
// until the account gets a new refresh token. The caller holds the account's
// lock.
func (b *Backend) markLostGrantLocked(ctx context.Context, s logical.Storage, a *account, name string, now time.Time) {
	b.logger.Warn("a device poll's answer was lost and the device code is spent now: Zoho may hold a refresh token Vault never stored, which counts against Zoho's 20 refresh tokens per user and client until it is removed under the user's Connected Apps",
		"account", name)
	if _, err := b.setMarksLocked(ctx, s, name, func(m *accountMarks) { m.InterruptedExchangeAt = now.UTC() }); err != nil {
		b.logger.Error("could not record the lost device grant on the account", "account", name, "error", err)
		return
	}
	b.flagAttention(ctx, s, name, now)
}
