// The metrics path: Prometheus counters and gauges of the engine.

package backend

import (
	"bytes"
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

// metrics are the engine's Prometheus series. Labels are bounded: Zoho's
// documented error codes (anything else is "other"), operations and kinds;
// account names only on request.
type metrics struct {
	reg                  *prometheus.Registry
	cacheHits            prometheus.Counter
	cacheMisses          prometheus.Counter
	unleasedReads        prometheus.Counter
	refreshes            prometheus.Counter
	clientCredentials    prometheus.Counter
	exchanges            prometheus.Counter
	failures             *prometheus.CounterVec // op, code
	throttle             prometheus.Counter
	upstream             *prometheus.HistogramVec // op
	revocations          *prometheus.CounterVec   // kind
	revocationsAbandoned prometheus.Counter
	rejectedReports      *prometheus.CounterVec // token: current, replaced
	reauthNeeded         prometheus.Counter
	accountsReauth       prometheus.GaugeFunc
	liveLeases           prometheus.GaugeFunc
	accountsCached       prometheus.GaugeFunc
	accountsBacking      prometheus.GaugeFunc
	accountsInUse        prometheus.GaugeFunc
	periodicTicks        prometheus.Counter
	periodicExamined     prometheus.Gauge
	periodicSeconds      prometheus.Gauge
}

func newMetrics(b *Backend) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_creds_cache_hits_total", Help: "creds/ reads served from the cached token."})
	m.cacheMisses = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_creds_cache_misses_total", Help: "creds/ reads that had to wait for a refresh."})
	m.unleasedReads = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_static_creds_reads_total", Help: "static-creds/ reads answered: no Vault lease, the token is held until it expires."})
	m.refreshes = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_token_refreshes_total", Help: "Successful refresh_token grants."})
	m.clientCredentials = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_client_credentials_tokens_total", Help: "Successful client_credentials grants (client_credentials accounts' tokens, verifications included)."})
	m.exchanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_code_exchanges_total", Help: "Successful grant-code exchanges and refresh-token imports."})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zoho_upstream_failures_total", Help: "Failed calls to Zoho by operation and Zoho error code (or failure kind)."}, []string{"op", "code"})
	m.throttle = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_throttle_backoffs_total", Help: "Times Zoho answered Access Denied and the engine stopped for a whole window."})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zoho_upstream_request_duration_seconds", Help: "Latency of calls to Zoho's accounts server.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"op"})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zoho_revocations_total", Help: "Tokens revoked at Zoho by kind (access, refresh)."}, []string{"kind"})
	m.revocationsAbandoned = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_revocations_abandoned_total", Help: "Refresh tokens Vault gave up whose revocation Zoho did not confirm within the retry period (revoke them in Zoho)."})
	m.rejectedReports = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zoho_rejected_token_reports_total", Help: "creds/ reads with rejected=: the reported token was the current one (token=current: retired and replaced by a refresh) or had been replaced already (token=replaced: no token request)."}, []string{"token"})
	for _, token := range []string{"current", "replaced"} {
		m.rejectedReports.WithLabelValues(token) // shown at 0 before the first report
	}
	m.reauthNeeded = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_reauthorization_needed_total", Help: "Token requests Zoho refused with invalid_code: the account's refresh token is dead and it needs re-authorization."})
	m.accountsReauth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zoho_accounts_needing_reauthorization", Help: "Loaded accounts whose refresh token Zoho refused: write a new grant_code (or refresh_token) to config/<name>."},
		func() float64 { return float64(b.needingReauth()) })
	m.liveLeases = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zoho_live_leases", Help: "Leases the engine counts on live access tokens (an upper bound after a restart)."},
		func() float64 { return float64(b.liveLeases()) })
	m.accountsCached = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zoho_accounts_loaded", Help: "Accounts held in memory."},
		func() float64 {
			return float64(b.accounts.Len())
		})
	m.accountsBacking = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zoho_accounts_backing_off", Help: "Loaded accounts waiting before their next token request or needing re-authorization."},
		func() float64 { return float64(b.backingOff()) })
	m.accountsInUse = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zoho_accounts_in_use", Help: "Accounts read within their token's lifetime: the ones the periodic function looks at."},
		func() float64 { return float64(b.inUse.Len()) })
	m.periodicTicks = prometheus.NewCounter(prometheus.CounterOpts{Name: "zoho_periodic_runs_total", Help: "Runs of the periodic function that looked for due refreshes (active node only)."})
	m.periodicExamined = prometheus.NewGauge(prometheus.GaugeOpts{Name: "zoho_periodic_accounts_examined", Help: "Accounts the last periodic run looked at."})
	m.periodicSeconds = prometheus.NewGauge(prometheus.GaugeOpts{Name: "zoho_periodic_duration_seconds", Help: "How long the last periodic run took, the refreshes it ran included."})
	m.reg.MustRegister(m.cacheHits, m.cacheMisses, m.unleasedReads, m.refreshes, m.clientCredentials, m.exchanges, m.failures, m.throttle, m.upstream, m.revocations,
		m.revocationsAbandoned, m.rejectedReports, m.reauthNeeded, m.accountsReauth, m.liveLeases, m.accountsCached, m.accountsBacking, m.accountsInUse, m.periodicTicks, m.periodicExamined, m.periodicSeconds)
	return m
}

// knownCodes bounds the code label.
var knownCodes = map[string]bool{
	zoho.CodeInvalidCode: true, zoho.CodeInvalidClient: true, zoho.CodeInvalidClientSecret: true,
	zoho.CodeInvalidRedirectURI: true, zoho.CodeAccessDenied: true, zoho.CodeThrottled: true,
	zoho.CodeInvalidToken: true, zoho.CodeMissingOrgInfo: true, zoho.CodeInvalidScope: true,
}

// observe records one upstream call.
func (m *metrics) observe(op string, began time.Time, err error) {
	m.upstream.WithLabelValues(op).Observe(time.Since(began).Seconds())
	if err == nil {
		return
	}
	code := "other"
	if ze, ok := zoho.AsError(err); ok {
		switch {
		case ze.Code == "":
			code = ze.Kind.String()
		case knownCodes[ze.Code]:
			code = ze.Code
		}
	}
	m.failures.WithLabelValues(op, code).Inc()
	if zoho.IsThrottled(err) {
		m.throttle.Inc()
	}
}

func (b *Backend) liveLeases() int64 {
	now := b.now()
	var n int64
	b.accounts.Range(func(a *account) bool {
		a.mu.Lock()
		for _, r := range a.liveRecordsLocked(now) {
			n += r.outstanding()
		}
		a.mu.Unlock()
		return true
	})
	return n
}

func (b *Backend) backingOff() int {
	now := b.now()
	return b.countAccounts(func(f tokenFailure) bool { return f.NeedsReauth || now.Before(f.NextAttemptAt) })
}

func (b *Backend) needingReauth() int {
	return b.countAccounts(func(f tokenFailure) bool { return f.NeedsReauth })
}

// countAccounts counts the loaded accounts whose failure state matches.
func (b *Backend) countAccounts(match func(tokenFailure) bool) int {
	n := 0
	b.accounts.Range(func(a *account) bool {
		a.mu.Lock()
		if match(a.tok.Failure()) {
			n++
		}
		a.mu.Unlock()
		return true
	})
	return n
}

// Metrics implements paths.Engine.
func (b *Backend) Metrics(ctx context.Context, s logical.Storage, perAccount bool) ([]byte, string, error) {
	families, err := b.metrics.reg.Gather()
	if err != nil {
		return nil, "", err
	}
	if perAccount {
		families = append(families, b.accountFamilies()...)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, "", err
		}
	}
	return buf.Bytes(), string(format), nil
}

// accountFamilies are the opt-in per-account series.
func (b *Backend) accountFamilies() []*dto.MetricFamily {
	reg := prometheus.NewRegistry()
	expiry := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "zoho_account_token_expiry_timestamp_seconds", Help: "Expiry of the account's current access token (0: none)."}, []string{"account"})
	leases := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "zoho_account_live_leases", Help: "Leases on the account's live access tokens."}, []string{"account"})
	failures := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "zoho_account_consecutive_failures", Help: "Consecutive failed token requests."}, []string{"account"})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "zoho_account_info", Help: "1 per account, labelled with its grant type (refresh_token or client_credentials)."}, []string{"account", "grant_type"})
	reg.MustRegister(expiry, leases, failures, info)
	now := b.now()
	b.accounts.Range(func(a *account) bool {
		name := a.name
		var exp float64
		if view := a.view.Load(); view != nil {
			exp = float64(view.expiresAt.Unix())
		}
		expiry.WithLabelValues(name).Set(exp)
		a.mu.Lock()
		var n int64
		for _, r := range a.liveRecordsLocked(now) {
			n += r.outstanding()
		}
		fails := a.tok.Failure().ConsecutiveFailures
		grant := a.cfg.grantType()
		a.mu.Unlock()
		info.WithLabelValues(name, grant).Set(1)
		leases.WithLabelValues(name).Set(float64(n))
		failures.WithLabelValues(name).Set(float64(fails))
		return true
	})
	out, _ := reg.Gather()
	return out
}
