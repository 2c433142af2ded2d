package paths

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// fakeEngine is an Engine that records every call and its arguments and
// answers from its fields. An error set in errs[method] is returned by that
// method instead.
type fakeEngine struct {
	mu    sync.Mutex
	calls []string

	// Arguments of the last call of each kind.
	name       string
	input      AccountInput
	minTTL     time.Duration
	rejected   string
	hold       Holding
	lease      LeaseData
	callback   Callback
	perAccount bool

	// Answers.
	exists   bool
	names    []string
	status   *AccountStatus
	statuses []*AccountStatus
	result   *WriteResult
	creds    *Creds
	auth     *Authorization
	cbResult *CallbackResult
	metrics  []byte
	renewTTL time.Duration
	device   *DeviceAuthorization // device_test.go
	errs     map[string]error
}

var _ Engine = (*fakeEngine)(nil)

func newFakeEngine() *fakeEngine { return &fakeEngine{errs: map[string]error{}} }

// record notes a call, runs args (which saves its arguments) under the lock
// and returns the error set for the method.
func (f *fakeEngine) record(method string, args func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	if args != nil {
		args()
	}
	return f.errs[method]
}

func (f *fakeEngine) setErr(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = err
}

// called lists the methods called so far, in order.
func (f *fakeEngine) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeEngine) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// ValidateAccountsURL accepts https URLs and drops a trailing slash.
func (f *fakeEngine) ValidateAccountsURL(raw string) (string, error) {
	if err := f.record("ValidateAccountsURL", nil); err != nil {
		return "", err
	}
	if !strings.HasPrefix(raw, "https://") {
		return "", errors.New("must use https")
	}
	return strings.TrimRight(raw, "/"), nil
}

func (f *fakeEngine) AccountExists(ctx context.Context, s logical.Storage, name string) (bool, error) {
	err := f.record("AccountExists", func() { f.name = name })
	return f.exists, err
}

func (f *fakeEngine) ListAccounts(ctx context.Context, s logical.Storage) ([]string, error) {
	err := f.record("ListAccounts", nil)
	return f.names, err
}

func (f *fakeEngine) ReadAccount(ctx context.Context, s logical.Storage, name string) (*AccountStatus, error) {
	err := f.record("ReadAccount", func() { f.name = name })
	if err != nil {
		return nil, err
	}
	return f.status, nil
}

// WriteAccount stores a marker, so that tests can tell a write reached
// storage from one that was refused before.
func (f *fakeEngine) WriteAccount(ctx context.Context, s logical.Storage, name string, in AccountInput) (*WriteResult, error) {
	err := f.record("WriteAccount", func() { f.name, f.input = name, in })
	if err != nil {
		return nil, err
	}
	if err := s.Put(ctx, &logical.StorageEntry{Key: "config/" + name, Value: []byte("{}")}); err != nil {
		return nil, err
	}
	return f.result, nil
}

func (f *fakeEngine) DeleteAccount(ctx context.Context, s logical.Storage, name string) error {
	err := f.record("DeleteAccount", func() { f.name = name })
	return err
}

func (f *fakeEngine) IssueCreds(ctx context.Context, s logical.Storage, name string, minTTL time.Duration, hold Holding) (*Creds, error) {
	err := f.record("IssueCreds", func() { f.name, f.minTTL, f.hold = name, minTTL, hold })
	if err != nil {
		return nil, err
	}
	return f.creds, nil
}

func (f *fakeEngine) ReplaceRejectedCreds(ctx context.Context, s logical.Storage, name, rejected string, minTTL time.Duration, hold Holding) (*Creds, error) {
	err := f.record("ReplaceRejectedCreds", func() { f.name, f.rejected, f.minTTL, f.hold = name, rejected, minTTL, hold })
	if err != nil {
		return nil, err
	}
	return f.creds, nil
}

func (f *fakeEngine) RevokeLease(ctx context.Context, s logical.Storage, lease LeaseData) error {
	err := f.record("RevokeLease", func() { f.lease = lease })
	return err
}

func (f *fakeEngine) AccountsNeedingAttention(ctx context.Context, s logical.Storage) ([]*AccountStatus, error) {
	err := f.record("AccountsNeedingAttention", func() {})
	return f.statuses, err
}

func (f *fakeEngine) RenewLease(ctx context.Context, s logical.Storage, lease LeaseData) (time.Duration, error) {
	err := f.record("RenewLease", func() { f.lease = lease })
	return f.renewTTL, err
}

func (f *fakeEngine) RevokeAccount(ctx context.Context, s logical.Storage, name string) (*WriteResult, error) {
	err := f.record("RevokeAccount", func() { f.name = name })
	if err != nil {
		return nil, err
	}
	return f.result, nil
}

func (f *fakeEngine) StartAuthorization(ctx context.Context, s logical.Storage, name, callbackSuffix string) (*Authorization, error) {
	err := f.record("StartAuthorization", func() { f.name = name })
	if err != nil {
		return nil, err
	}
	return f.auth, nil
}

func (f *fakeEngine) CompleteAuthorization(ctx context.Context, s logical.Storage, cb Callback) (*CallbackResult, error) {
	err := f.record("CompleteAuthorization", func() { f.callback = cb })
	if err != nil {
		return nil, err
	}
	return f.cbResult, nil
}

func (f *fakeEngine) AccountStatuses(ctx context.Context, s logical.Storage) ([]*AccountStatus, error) {
	err := f.record("AccountStatuses", nil)
	return f.statuses, err
}

func (f *fakeEngine) Metrics(ctx context.Context, s logical.Storage, perAccount bool) ([]byte, string, error) {
	err := f.record("Metrics", func() { f.perAccount = perAccount })
	if err != nil {
		return nil, "", err
	}
	return f.metrics, "text/plain; version=0.0.4", nil
}

// testEnv serves the paths from a plain framework.Backend, as the backend
// package does, over in-memory storage.
type testEnv struct {
	t       *testing.T
	e       *fakeEngine
	b       *framework.Backend
	storage logical.Storage
	logs    *bytes.Buffer
}

func newTestEnv(t *testing.T) *testEnv {
	return newTestEnvWithSystem(t, testSystemView())
}

func testSystemView() *logical.StaticSystemView {
	sys := logical.TestSystemView()
	sys.PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "v1.21.0"}
	return sys
}

func newTestEnvWithSystem(t *testing.T, sys logical.SystemView) *testEnv {
	t.Helper()
	e := newFakeEngine()
	secret := Secret(e)
	b := &framework.Backend{
		Help:        strings.TrimSpace(Help),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: SealWrapStorage,
			Unauthenticated: Unauthenticated,
		},
		Paths:   Paths(e, secret),
		Secrets: []*framework.Secret{secret},
	}
	logs := &bytes.Buffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})
	if err := b.Setup(context.Background(), &logical.BackendConfig{System: sys, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, e: e, b: b, storage: &logical.InmemStorage{}, logs: logs}
}

func (te *testEnv) request(op logical.Operation, path string, data map[string]interface{}) *logical.Request {
	return &logical.Request{Operation: op, Path: path, Data: data, Storage: te.storage}
}

// do sends one request to the backend.
func (te *testEnv) do(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	te.t.Helper()
	return te.b.HandleRequest(context.Background(), te.request(op, path, data))
}

// ok sends a request that must succeed.
func (te *testEnv) ok(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	te.t.Helper()
	resp, err := te.do(op, path, data)
	if err != nil || resp.IsError() {
		te.t.Fatalf("%s %s: %v %v", op, path, err, resp.Error())
	}
	return resp
}

// wantBadRequest checks that a request is answered 400 with an error naming
// field, that the engine did nothing but the calls in allowed, and that
// nothing was stored.
func (te *testEnv) wantBadRequest(op logical.Operation, path string, data map[string]interface{}, field string, allowed ...string) string {
	te.t.Helper()
	te.e.reset()
	req := te.request(op, path, data)
	resp, err := te.b.HandleRequest(context.Background(), req)
	status, rerr := logical.RespondErrorCommon(req, resp, err)
	if status != http.StatusBadRequest || rerr == nil {
		te.t.Fatalf("%s %s %v: status %d (%v), want 400", op, path, data, status, rerr)
	}
	msg := rerr.Error()
	if !strings.HasPrefix(msg, field+": ") && !strings.Contains(msg, `"`+field+`"`) {
		te.t.Errorf("%s %s %v: error %q does not name %s", op, path, data, msg, field)
	}
	for _, c := range te.e.called() {
		if !contains(allowed, c) {
			te.t.Errorf("%s %s %v: engine called (%s) for a bad request", op, path, data, c)
		}
	}
	te.wantNothingStored()
	return msg
}

func (te *testEnv) wantNothingStored() {
	te.t.Helper()
	keys, err := logical.CollectKeys(context.Background(), te.storage)
	if err != nil {
		te.t.Fatal(err)
	}
	if len(keys) != 0 {
		te.t.Errorf("stored %v", keys)
	}
}

// wantCalls checks the engine calls made since the last reset.
func (te *testEnv) wantCalls(want ...string) {
	te.t.Helper()
	got := te.e.called()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		te.t.Errorf("engine calls %v, want %v", got, want)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// statusOf is the HTTP status Vault would answer, and the error message.
func statusOf(t *testing.T, req *logical.Request, resp *logical.Response, err error) (int, string) {
	t.Helper()
	if resp != nil {
		if code, ok := resp.Data[logical.HTTPStatusCode].(int); ok {
			var body struct{ Errors []string }
			if raw, ok := resp.Data[logical.HTTPRawBody].([]byte); ok {
				_ = json.Unmarshal(raw, &body)
			}
			return code, strings.Join(body.Errors, "; ")
		}
	}
	status, rerr := logical.RespondErrorCommon(req, resp, err)
	if rerr != nil {
		return status, rerr.Error()
	}
	if status == 0 {
		if resp == nil {
			return http.StatusNoContent, ""
		}
		return http.StatusOK, ""
	}
	return status, ""
}

// jsonOf renders a response the way a client sees it, to look for secrets.
func jsonOf(t *testing.T, resp *logical.Response) string {
	t.Helper()
	if resp == nil {
		return ""
	}
	out := map[string]interface{}{"data": resp.Data, "warnings": resp.Warnings}
	if raw, ok := resp.Data[logical.HTTPRawBody].([]byte); ok {
		out["raw"] = string(raw)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codedErrors are engine errors that carry an HTTP status.
var codedErrors = []struct {
	err    error
	status int
}{
	{logical.CodedError(http.StatusBadRequest, "account \"a\" needs re-authorization"), http.StatusBadRequest},
	{logical.CodedError(http.StatusTooManyRequests, "account \"a\": Zoho's budget is spent"), http.StatusTooManyRequests},
	{logical.CodedError(http.StatusBadGateway, "account \"a\": Zoho did not answer"), http.StatusBadGateway},
	{logical.CodedError(http.StatusServiceUnavailable, "account \"a\": backing off"), http.StatusServiceUnavailable},
	{&InputError{Field: FieldName, Msg: "no account named \"a\""}, http.StatusBadRequest},
}

// checkCodedErrors makes method fail with each coded error and checks the
// request is answered with that status and message.
func checkCodedErrors(t *testing.T, te *testEnv, method string, op logical.Operation, path string, data map[string]interface{}) {
	t.Helper()
	for _, c := range codedErrors {
		te.e.setErr(method, c.err)
		req := te.request(op, path, data)
		resp, err := te.b.HandleRequest(context.Background(), req)
		status, msg := statusOf(t, req, resp, err)
		if status != c.status || !strings.Contains(msg, c.err.Error()) {
			t.Errorf("%s %s with %s failing %q: status %d %q, want %d", op, path, method, c.err, status, msg, c.status)
		}
		if strings.Contains(msg, "error occurred") {
			t.Errorf("%s %s: message wrapped: %q", op, path, msg)
		}
	}
	te.e.setErr(method, errors.New("storage is on fire"))
	req := te.request(op, path, data)
	resp, err := te.b.HandleRequest(context.Background(), req)
	if status, msg := statusOf(t, req, resp, err); status != http.StatusInternalServerError || !strings.Contains(msg, "storage is on fire") {
		t.Errorf("%s %s with %s failing plainly: status %d %q, want 500", op, path, method, status, msg)
	}
	te.e.setErr(method, nil)
}

// Fixtures shared by the tests.

// validCreate is a complete, valid create of an account.
func validCreate() map[string]interface{} {
	return map[string]interface{}{
		FieldClientID:     "1000.CLIENT",
		FieldClientSecret: "client-secret-value",
		FieldGrantCode:    "1000.grant-code-value",
	}
}

// validCC is a complete client_credentials account.
func validCC() map[string]interface{} {
	return map[string]interface{}{
		FieldGrantType:    GrantClientCredentials,
		FieldClientID:     "1000.CLIENT",
		FieldClientSecret: "client-secret-value",
		FieldScopes:       "ZohoCRM.org.READ",
	}
}

func with(base map[string]interface{}, kv ...interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func without(base map[string]interface{}, keys ...string) map[string]interface{} {
	out := with(base)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// fullStatus has every field set.
func fullStatus() *AccountStatus {
	at := func(min int) time.Time {
		return time.Date(2026, 3, 1, 12, min, 0, 0, time.FixedZone("CET", 3600))
	}
	return &AccountStatus{
		Name:                  "a",
		GrantType:             GrantRefreshToken,
		ClientID:              "1000.CLIENT",
		DataCenter:            "eu",
		AccountsURL:           "https://accounts.zoho.eu",
		APIDomain:             "https://www.zohoapis.eu",
		RedirectURI:           "https://vault.example.com/v1/zoho/callback",
		Scopes:                []string{"ZohoCRM.modules.ALL"},
		SOID:                  "ZohoCRM.600000000434",
		LiveTokenCap:          15,
		HasRefreshToken:       true,
		NeedsReauthorization:  true,
		TokenExpiresAt:        at(1),
		LastRefresh:           at(2),
		LastError:             "invalid_code",
		LastErrorAt:           at(3),
		ConsecutiveFailures:   4,
		NextAttemptAt:         at(5),
		RateBudgetRemaining:   6,
		LiveTokens:            7,
		InterruptedExchangeAt: at(8),
		RevocationAbandonedAt: at(9),
		RevokedAt:             at(10),
	}
}

func testCreds() *Creds {
	exp := time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("IST", 5*3600+1800))
	return &Creds{
		AccessToken: "1000.access-token",
		APIDomain:   "https://www.zohoapis.in",
		TokenType:   "Bearer",
		ExpiresAt:   exp,
		Scopes:      []string{"ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"},
		TokenID:     "0123456789abcdef01234567",
		TTL:         42 * time.Minute,
		IssuedAt:    exp.Add(-time.Hour),
		Lifetime:    time.Hour,
		Lease: LeaseData{
			Account:     "a",
			AccessToken: "1000.access-token",
			TokenID:     "0123456789abcdef01234567",
			Generation:  5,
			ExpiresAt:   exp,
			Seq:         9,
			EndsAt:      exp.Add(-3 * time.Minute),
		},
	}
}

func testAuthorization() *Authorization {
	return &Authorization{
		URL:         "https://accounts.zoho.eu/oauth/v2/auth?client_id=1000.CLIENT&state=st4te",
		State:       "st4te",
		RedirectURI: "https://vault.example.com/v1/zoho/callback",
		ExpiresAt:   time.Date(2026, 3, 1, 12, 10, 0, 0, time.FixedZone("PST", -8*3600)),
	}
}

func keysOfFields(m map[string]*framework.FieldSchema) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
