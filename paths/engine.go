// Package paths declares the HTTP surface of the Zoho secrets engine: one file
// per path, with field schemas, help text and OpenAPI metadata. It validates
// input and shapes responses; the work itself is done by an Engine, which the
// backend package implements. This package never imports the backend.
package paths

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Engine is the narrow interface the paths need from the backend.
type Engine interface {
	// ValidateAccountsURL checks and normalises an accounts_url override.
	ValidateAccountsURL(raw string) (string, error)
	// AccountExists reports whether config/<name> is stored.
	AccountExists(ctx context.Context, s logical.Storage, name string) (bool, error)
	// ListAccounts returns the account names in sorted order.
	ListAccounts(ctx context.Context, s logical.Storage) ([]string, error)
	// ReadAccount returns an account's non-secret status, or nil if it does not exist.
	ReadAccount(ctx context.Context, s logical.Storage, name string) (*AccountStatus, error)
	// WriteAccount creates or updates an account. Errors that carry an HTTP status
	// (logical.HTTPCodedError) are returned to the caller as is.
	WriteAccount(ctx context.Context, s logical.Storage, name string, in AccountInput) (*WriteResult, error)
	// DeleteAccount revokes the account's refresh token at Zoho and removes it.
	DeleteAccount(ctx context.Context, s logical.Storage, name string) error
	// IssueCreds returns the account's shared access token, refreshing first when
	// it would expire within minTTL, and records how the reader holds it: the
	// lease about to be created (HoldByLease), or no lease and the token held
	// until it expires (HoldUntilExpiry).
	IssueCreds(ctx context.Context, s logical.Storage, name string, minTTL time.Duration, hold Holding) (*Creds, error)
	// ReplaceRejectedCreds is IssueCreds for a reader whose call Zoho rejected
	// the token named by rejected (a token_id). If that token is still the
	// account's current one it is never served again and one refresh, shared
	// by every concurrent report of it, mints its successor within Zoho's
	// budget; a report of a token that is no longer current is answered with
	// the current token without calling Zoho.
	ReplaceRejectedCreds(ctx context.Context, s logical.Storage, name, rejected string, minTTL time.Duration, hold Holding) (*Creds, error)
	// RenewLease answers how long the lease may still live (never past the end
	// it was given, which never outlives its token), or an error that says to
	// read creds/ again when its token is gone.
	RenewLease(ctx context.Context, s logical.Storage, lease LeaseData) (time.Duration, error)
	// RevokeLease ends one lease; the access token is revoked at Zoho once no
	// other unexpired lease holds it.
	RevokeLease(ctx context.Context, s logical.Storage, lease LeaseData) error
	// RevokeAccount revokes the account's refresh token at Zoho and forgets its
	// tokens, keeping the client configuration.
	RevokeAccount(ctx context.Context, s logical.Storage, name string) (*WriteResult, error)
	// StartAuthorization builds Zoho's consent URL for the account and records
	// the pending authorization (single-use, short-lived).
	// callbackSuffix, when not empty, is how the path of this mount's callback
	// URL ends (e.g. "/zoho/callback"); an account whose redirect_uri does not
	// end so gets an InputError naming redirect_uri before anything is stored.
	StartAuthorization(ctx context.Context, s logical.Storage, name, callbackSuffix string) (*Authorization, error)
	// CompleteAuthorization handles Zoho's redirect to the callback path.
	CompleteAuthorization(ctx context.Context, s logical.Storage, cb Callback) (*CallbackResult, error)
	// AccountsNeedingAttention returns the statuses of the accounts that need
	// an operator (see AccountStatus.NeedsAttention), without reading the
	// healthy ones.
	AccountsNeedingAttention(ctx context.Context, s logical.Storage) ([]*AccountStatus, error)
	// StartDeviceAuthorization starts Zoho's device flow for the account and
	// polls Zoho in the background until the user decides or the code
	// expires; a pending one is replaced. An unknown account, or one without
	// scopes, is an InputError.
	StartDeviceAuthorization(ctx context.Context, s logical.Storage, name string) (*DeviceAuthorization, error)
	// ReadDeviceAuthorization returns the account's latest device
	// authorization, nil if none was started.
	ReadDeviceAuthorization(ctx context.Context, s logical.Storage, name string) (*DeviceAuthorization, error)
	// CancelDeviceAuthorization stops polling and forgets the account's
	// device authorization; nothing to cancel is no error.
	CancelDeviceAuthorization(ctx context.Context, s logical.Storage, name string) error
	// AccountStatuses summarises every account.
	AccountStatuses(ctx context.Context, s logical.Storage) ([]*AccountStatus, error)
	// Metrics renders the engine's metrics in Prometheus' text format.
	Metrics(ctx context.Context, s logical.Storage, perAccount bool) (body []byte, contentType string, err error)
}

// Authorization is a pending consent: the URL to open and its state.
type Authorization struct {
	URL         string
	State       string
	RedirectURI string
	ExpiresAt   time.Time
}

// Callback is what Zoho's consent redirect carries.
type Callback struct {
	Code         string
	State        string
	Location     string
	AccountsURL  string // the accounts-server parameter
	Error        string
	ErrorDetails string
}

// CallbackResult says which account was authorized.
type CallbackResult struct {
	Account  string
	Warnings []string
}

// AccountInput is a validated write to config/<name>. Nil pointers mean "not
// given": on update the stored value is kept.
type AccountInput struct {
	Create       bool
	ClientID     *string
	ClientSecret *string
	DataCenter   *string
	AccountsURL  *string
	RedirectURI  *string
	Scopes       *[]string
	LiveTokenCap *int
	GrantType    *string // GrantRefreshToken or GrantClientCredentials; fixed once the account exists
	SOID         *string // "" clears it
	GrantCode    string
	RefreshToken string
}

// WriteResult reports side effects of a write that the caller should see.
type WriteResult struct {
	Warnings []string
}

// AccountStatus is everything about an account that may be shown: never the
// client secret, the refresh token or an access token.
type AccountStatus struct {
	Name                 string
	GrantType            string // GrantRefreshToken or GrantClientCredentials
	ClientID             string
	DataCenter           string
	AccountsURL          string
	APIDomain            string
	RedirectURI          string
	Scopes               []string
	SOID                 string // client_credentials accounts: the organisation tokens are minted for
	LiveTokenCap         int
	HasRefreshToken      bool
	NeedsReauthorization bool
	TokenExpiresAt       time.Time // zero when no access token is cached
	LastRefresh          time.Time
	LastError            string
	LastErrorAt          time.Time
	ConsecutiveFailures  int
	NextAttemptAt        time.Time // zero when not backing off
	RateBudgetRemaining  int       // token requests left in Zoho's rolling window
	LiveTokens           int       // access tokens minted from the refresh token that are still alive
	// Device is the account's latest device authorization (device/<name>);
	// nil if none was started.
	Device *DeviceAuthorization
	// InterruptedExchangeAt is when a grant-code exchange was cut off after it
	// was sent (a crash, a timeout): Zoho may hold a refresh token Vault never
	// stored. Zero otherwise; cleared when the account gets a new refresh token.
	InterruptedExchangeAt time.Time
	// RevocationAbandonedAt is when the engine gave up revoking a refresh token
	// the account no longer uses (Zoho did not confirm it for days): revoke it
	// in Zoho. Zero otherwise.
	RevocationAbandonedAt time.Time
	// RevokedAt is when revoke/<name> stopped the account: it mints no token
	// until a new grant_code or refresh_token is written (client_credentials
	// accounts: until config/<name> is written again). Zero otherwise.
	RevokedAt time.Time
}

// Holding says how a reader holds the token it is handed.
type Holding int

const (
	// HoldByLease is creds/<name>: the reader holds a Vault lease, and the
	// token is revoked at Zoho when its last lease is revoked.
	HoldByLease Holding = iota
	// HoldUntilExpiry is static-creds/<name>: no lease. The token is held
	// until it expires: never revoked because leases end, and never the one
	// a refresh lets Zoho's live-token cap invalidate. Only giving up the
	// account's refresh token (revoke/, delete, a new grant) ends it early.
	HoldUntilExpiry
)

// Creds is what one creds/<name> or static-creds/<name> read hands out.
type Creds struct {
	AccessToken string
	APIDomain   string
	TokenType   string
	ExpiresAt   time.Time
	Scopes      []string
	TokenID     string        // the token's non-secret fingerprint
	TTL         time.Duration // the lease's TTL (or, unleased, how long to use the token): never beyond the token's life
	IssuedAt    time.Time     // when Zoho minted the token
	Lifetime    time.Duration // the token's whole life as Zoho announced it
	Lease       LeaseData     // zero for HoldUntilExpiry
}

// LeaseData is kept in a lease's internal data: what revocation needs.
type LeaseData struct {
	Account     string
	AccessToken string
	TokenID     string
	Generation  int64
	ExpiresAt   time.Time
	// Seq numbers the lease among the token's leases, so that a revocation
	// Vault sends twice counts once. Vault's lease ID is not known when the
	// lease is created; 0 in leases created before it was introduced.
	Seq int64
	// EndsAt is the end the lease was given (renewals never go past it); zero
	// in leases created before it was introduced.
	EndsAt time.Time
}

// Reasons an account needs an operator, as the attention list reports them.
const (
	ReasonNeedsReauthorization = "needs_reauthorization"
	ReasonFailing              = "failing"
	ReasonBackingOff           = "backing_off"
	ReasonInterruptedExchange  = "interrupted_exchange"
	ReasonRevocationAbandoned  = "revocation_abandoned"
)

// AttentionReasons says why the account needs an operator; empty when it
// does not.
func (st *AccountStatus) AttentionReasons() []string {
	var out []string
	if st.NeedsReauthorization {
		out = append(out, ReasonNeedsReauthorization)
	}
	if st.ConsecutiveFailures > 0 {
		out = append(out, ReasonFailing)
	}
	if !st.NextAttemptAt.IsZero() {
		out = append(out, ReasonBackingOff)
	}
	if !st.InterruptedExchangeAt.IsZero() {
		out = append(out, ReasonInterruptedExchange)
	}
	if !st.RevocationAbandonedAt.IsZero() {
		out = append(out, ReasonRevocationAbandoned)
	}
	out = append(out, st.deviceAttentionReasons()...)
	return out
}

// NeedsAttention reports whether the account needs an operator.
func (st *AccountStatus) NeedsAttention() bool { return len(st.AttentionReasons()) > 0 }
