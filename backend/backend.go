// Package backend implements the Zoho OAuth secrets engine: accounts and their
// refresh tokens in seal-wrapped storage, one shared access token per account
// cached in memory, refreshes coalesced and kept within Zoho's limits, and
// leases whose revocation revokes the token at Zoho once no lease holds it.
package backend

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// Version is the plugin's running version; cmd sets it from the build.
var Version = "v0.0.0-dev"

// Zoho's documented limits, enforced locally.
const (
	DefaultRateLimit  = 10               // token requests per refresh token ...
	DefaultRateWindow = 10 * time.Minute // ... per rolling window
	DefaultLiveCap    = 10               // live access tokens per refresh token
)

// ZohoAPI is the accounts-server client the engine needs; tests may inject
// another implementation, production uses *zoho.Client.
type ZohoAPI interface {
	ExchangeCode(ctx context.Context, app zoho.App, code, redirectURI, scopes string) (*zoho.Token, error)
	Refresh(ctx context.Context, app zoho.App, refreshToken string) (*zoho.Token, error)
	ClientCredentials(ctx context.Context, app zoho.App, scopes, soid string) (*zoho.Token, error)
	Revoke(ctx context.Context, accountsURL, token string) error
}

// Options tune a Backend. The zero value gives production behaviour.
type Options struct {
	Zoho       ZohoAPI          // default: zoho.NewClient with HTTPClient and Timeout
	HTTPClient *http.Client     // used by the default client
	Timeout    time.Duration    // per upstream call; default zoho.DefaultTimeout
	Now        func() time.Time // clock; default time.Now
	RateLimit  int              // default DefaultRateLimit
	RateWindow time.Duration    // default DefaultRateWindow
	// BackgroundConcurrency bounds refreshes run by the periodic function at once.
	BackgroundConcurrency int
	// AfterFunc runs f after d and returns a function that cancels it (the
	// scheduled background refreshes); default time.AfterFunc.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// PeriodicInterval is how often Vault runs the periodic function (its
	// rollback period); default one minute.
	PeriodicInterval time.Duration
}

// Backend is the secrets engine.
type Backend struct {
	*framework.Backend

	zoho   ZohoAPI
	now    func() time.Time
	logger hclog.Logger
	opts   Options

	accounts *accountMap // loaded accounts
	inUse    *accountMap // accounts read within their token's life (background refreshes look only here)
	locks    keyedLocks
	flights  singleflight.Group
	metrics  *metrics

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	timersMu sync.Mutex
	timers   map[*account]func() bool // scheduled background refreshes (periodic.go)
	deferred atomic.Uint64            // refresh points moved so far (deferPassedPoint)
	spreads  atomic.Uint64            // new rhythms started so far (nextSpread)

	devices devicePollers // device authorizations being polled (device.go)
}

var _ paths.Engine = (*Backend)(nil)

// HandleRequest serves a request. A value its field cannot take is refused
// before the framework converts it (which would take JSON true as 1), and the
// framework's answer to a value it cannot convert is restated in the engine's
// words (the field, what was given, what is expected).
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	// A request without data (the hot path: a plain creds/ read) has nothing
	// to check and does not pay for the route lookup.
	if len(req.Data) > 0 {
		if ie := paths.CheckInputTypes(b.Backend.Route(req.Path), req); ie != nil {
			return logical.ErrorResponse(ie.Error()), nil
		}
	}
	resp, err := b.Backend.HandleRequest(ctx, req)
	if err == nil && resp != nil && resp.IsError() {
		resp = paths.ExplainConversionError(b.Backend.Route(req.Path), req, resp)
	}
	return resp, err
}

// HandleExistenceCheck runs the path's existence check, which Vault calls
// before a create or update: the framework converts every field first and
// would answer a bad value in its own words, so values are checked here as in
// HandleRequest. The refusal is a user error (400).
func (b *Backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	route := b.Backend.Route(req.Path)
	if ie := paths.CheckInputTypes(route, req); ie != nil {
		return false, false, errutil.UserError{Err: ie.Error()}
	}
	found, exists, err := b.Backend.HandleExistenceCheck(ctx, req)
	if err != nil {
		if resp := paths.ExplainConversionError(route, req, logical.ErrorResponse(err.Error())); resp != nil && respError(resp) != err.Error() {
			return false, false, errutil.UserError{Err: respError(resp)}
		}
	}
	return found, exists, err
}

func respError(resp *logical.Response) string {
	s, _ := resp.Data["error"].(string)
	return s
}

// Factory is the logical.Factory Vault calls.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	return FactoryWithOptions(Options{})(ctx, conf)
}

// FactoryWithOptions returns a Factory whose backends use opts.
func FactoryWithOptions(opts Options) logical.Factory {
	return func(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		b := New(opts)
		if conf.System != nil {
			c := *conf
			c.System = newReplicationCache(conf.System)
			conf = &c
		}
		if err := b.Setup(ctx, conf); err != nil {
			return nil, err
		}
		b.logger = b.Backend.Logger()
		return b, nil
	}
}

// New builds an unconfigured Backend.
func New(opts Options) *Backend {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = DefaultRateWindow
	}
	if opts.BackgroundConcurrency <= 0 {
		opts.BackgroundConcurrency = 4
	}
	if opts.AfterFunc == nil {
		opts.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	if opts.PeriodicInterval <= 0 {
		opts.PeriodicInterval = time.Minute
	}
	if opts.Zoho == nil {
		opts.Zoho = zoho.NewClient(zoho.Options{HTTPClient: opts.HTTPClient, Timeout: opts.Timeout})
	}
	b := &Backend{
		zoho:   opts.Zoho,
		now:    opts.Now,
		opts:   opts,
		logger: hclog.NewNullLogger(),
		timers: map[*account]func() bool{},

		accounts: newAccountMap(),
		inUse:    newAccountMap(),
	}
	b.bgCtx, b.bgCancel = context.WithCancel(context.Background())
	b.metrics = newMetrics(b)
	secret := paths.Secret(b)
	b.Backend = &framework.Backend{
		Help:           strings.TrimSpace(paths.Help),
		BackendType:    logical.TypeLogical,
		RunningVersion: Version,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: paths.SealWrapStorage,
			Unauthenticated: paths.Unauthenticated,
		},
		Paths:             paths.Paths(b, secret),
		Secrets:           []*framework.Secret{secret},
		InitializeFunc:    b.initialize,
		PeriodicFunc:      b.periodic,
		Invalidate:        b.invalidate,
		Clean:             b.cleanup,
		WALRollback:       b.walRollback,
		WALRollbackMinAge: walMinAge,
	}
	return b
}

func (b *Backend) cleanup(ctx context.Context) {
	b.timersMu.Lock()
	b.bgCancel()
	b.timersMu.Unlock()
	b.stopTimers()
	b.stopDevicePolls()
	b.bgWG.Wait()
}

// initialize runs once the mount is set up (and after a restart or reload):
// it resumes polling the device authorizations still pending.
func (b *Backend) initialize(ctx context.Context, req *logical.InitializationRequest) error {
	b.resumeDeviceAuthorizations(ctx, req.Storage)
	return nil
}

// invalidate drops cached state when another node changed an account's
// storage (performance standbys and secondaries).
func (b *Backend) invalidate(ctx context.Context, key string) {
	for _, prefix := range []string{configPrefix, tokenPrefix} {
		if name, ok := strings.CutPrefix(key, prefix); ok {
			if a := b.accounts.Load(name); a != nil {
				b.evictAccount(a)
			}
		}
	}
}

// isReplicaOrStandby reports whether this node must not write storage or
// refresh on its own.
func (b *Backend) isReplicaOrStandby() bool {
	sys := b.System()
	if sys == nil {
		return false
	}
	st := sys.ReplicationState()
	return (!sys.LocalMount() && st.HasState(consts.ReplicationPerformanceSecondary)) ||
		st.HasState(consts.ReplicationPerformanceStandby)
}

// upstreamTimeout bounds one call to Zoho (the client's own timeout plus a
// second to read the answer).
func (b *Backend) upstreamTimeout() time.Duration {
	timeout := b.opts.Timeout
	if timeout <= 0 {
		timeout = zoho.DefaultTimeout
	}
	return timeout + time.Second
}

// upstreamCtx bounds an upstream call by the backend's life rather than by one
// request's: a coalesced refresh must not fail for every waiter because the
// first caller went away, and an exchange once sent must be stored.
func (b *Backend) upstreamCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.bgCtx, b.upstreamTimeout())
}

// requestUpstreamCtx bounds an upstream call by the request's context too:
// revocations answer within Vault's deadline (Vault retries them).
func (b *Backend) requestUpstreamCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.upstreamTimeout())
}

// ValidateAccountsURL implements paths.Engine.
func (b *Backend) ValidateAccountsURL(raw string) (string, error) {
	return zoho.ValidateAccountsURL(raw)
}
