// The storage layout (every prefix seal-wrapped) and the JSON records stored
// under it.

package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unique"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storage layout. Every prefix is seal-wrapped (see paths.SealWrapStorage).
const (
	configPrefix = "config/" // accountConfig: client credentials and the refresh token
	tokenPrefix  = "token/"  // tokenState: access token, rate log, minted tokens
)

// accountConfig is one account's durable configuration. The refresh token
// lives here, beside the client it belongs to, so that one storage write
// stores both atomically.
type accountConfig struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	DataCenter   string   `json:"data_center"`
	AccountsURL  string   `json:"accounts_url,omitempty"` // operator override; empty: the data center's
	RedirectURI  string   `json:"redirect_uri,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	LiveTokenCap int      `json:"live_token_cap"`
	RefreshToken string   `json:"refresh_token,omitempty"`
	// RefreshTokenIssuer is the accounts server that issued the refresh token:
	// it is revoked there even if the operator later points the account at
	// another data center.
	RefreshTokenIssuer string `json:"refresh_token_issuer,omitempty"`
	// GrantedAt is when the refresh token was obtained (exchanged or imported).
	GrantedAt  time.Time `json:"granted_at,omitempty"`
	Generation int64     `json:"generation"` // bumped whenever the refresh token changes or is revoked
	// Epoch is bumped by every change of the account's credentials (see
	// commitCredentialsLocked): a device authorization or consent started
	// under another epoch may not change them. 0 in accounts stored before it.
	Epoch     int64     `json:"epoch,omitempty"`
	APIDomain string    `json:"api_domain,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// GrantType is how the account gets access tokens (paths.GrantRefreshToken
	// or paths.GrantClientCredentials); empty in accounts stored before it
	// existed, which hold refresh tokens. See grant.go.
	GrantType string `json:"grant_type,omitempty"`
	// SOID is the organisation a client_credentials account mints tokens for
	// (<Service>.<org id>); empty when the product has one.
	SOID string `json:"soid,omitempty"`

	// marks are set on few accounts; nil when none is. Stored flat with the
	// fields above (see MarshalJSON), held apart so that an account without
	// them does not carry them in memory. Replaced, never changed in place:
	// copies of the config share it.
	marks *accountMarks
}

// accountMarks are the rarely set marks of an account.
type accountMarks struct {
	// InterruptedExchangeAt is when a grant-code exchange was interrupted
	// after it was sent: Zoho may hold a refresh token that Vault never stored.
	InterruptedExchangeAt time.Time `json:"interrupted_exchange_at,omitempty"`
	// RevocationAbandonedAt is when the engine gave up revoking a refresh
	// token of this account that it no longer uses (see wal.go).
	RevocationAbandonedAt time.Time `json:"revocation_abandoned_at,omitempty"`
	// RevokedAt is when revoke/<name> stopped the account: a refresh_token
	// account until it gets a new refresh token, a client_credentials account
	// until config/<name> is written again.
	RevokedAt time.Time `json:"revoked_at,omitempty"`
}

// Marks returns the account's marks (zero when none is set).
func (c *accountConfig) Marks() accountMarks {
	if c.marks == nil {
		return accountMarks{}
	}
	return *c.marks
}

// SetMarks replaces the account's marks.
func (c *accountConfig) SetMarks(m accountMarks) {
	if m.isZero() {
		c.marks = nil
		return
	}
	c.marks = &m
}

func (m accountMarks) isZero() bool {
	return m.InterruptedExchangeAt.IsZero() && m.RevocationAbandonedAt.IsZero() && m.RevokedAt.IsZero()
}

// MarshalJSON stores the marks flat with the other fields.
func (c accountConfig) MarshalJSON() ([]byte, error) {
	type plain accountConfig
	return json.Marshal(struct {
		plain
		accountMarks
	}{plain(c), c.Marks()})
}

// UnmarshalJSON reads what MarshalJSON stores.
func (c *accountConfig) UnmarshalJSON(data []byte) error {
	type plain accountConfig
	var w struct {
		plain
		accountMarks
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*c = accountConfig(w.plain)
	c.SetMarks(w.accountMarks)
	return nil
}

// tokenState is what the engine knows about the tokens minted from the
// current refresh token (client_credentials accounts: with the client's own
// credentials). It is written on every token request (before the
// request is sent, so that Zoho's rate limit survives restarts), after every
// answer, and when a token's lease reservation grows.
type tokenState struct {
	Generation  int64     `json:"generation"`
	AccessToken string    `json:"access_token,omitempty"`
	TokenID     string    `json:"token_id,omitempty"`
	TokenType   string    `json:"token_type,omitempty"`
	APIDomain   string    `json:"api_domain,omitempty"`
	Scope       string    `json:"scope,omitempty"`
	IssuedAt    time.Time `json:"issued_at,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitempty"`
	// InRhythm: the current token was minted while its predecessor was still
	// in use (see refreshPoint).
	InRhythm bool `json:"in_rhythm,omitempty"`
	// Spread places the refresh point of a token that starts a new rhythm
	// within its life (refreshPoint), in units of 2⁻³²; 0 for tokens stored
	// before it was kept, whose point derives from their ID.
	Spread uint32 `json:"spread,omitempty"`

	// Requests are the times of token requests sent for this refresh token
	// within Zoho's rolling window (successful or not).
	Requests []time.Time `json:"requests,omitempty"`
	// InFlight is when a token request was sent whose answer is not stored
	// yet; after a crash it is settled as an unknown live token.
	InFlight time.Time `json:"in_flight,omitempty"`
	// Minted are the access tokens minted from this refresh token that may
	// still be alive, oldest first.
	Minted []*mintedToken `json:"minted,omitempty"`

	LastRefresh time.Time `json:"last_refresh,omitempty"`

	// failure is what the failed token requests since the last success left;
	// nil while they succeed (most accounts, most of the time). Stored flat
	// with the fields above (see MarshalJSON).
	failure *tokenFailure
}

// tokenFailure is what failed token requests left.
type tokenFailure struct {
	LastError           string    `json:"last_error,omitempty"`
	LastErrorAt         time.Time `json:"last_error_at,omitempty"`
	LastErrorCode       string    `json:"last_error_code,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures,omitempty"`
	NextAttemptAt       time.Time `json:"next_attempt_at,omitempty"`
	NeedsReauth         bool      `json:"needs_reauth,omitempty"`
}

// Failure returns what failed requests left (zero after a success).
func (t *tokenState) Failure() tokenFailure {
	if t.failure == nil {
		return tokenFailure{}
	}
	return *t.failure
}

// SetFailure replaces it.
func (t *tokenState) SetFailure(f tokenFailure) {
	if f.isZero() {
		t.failure = nil
		return
	}
	t.failure = &f
}

func (f tokenFailure) isZero() bool {
	return f.LastError == "" && f.LastErrorAt.IsZero() && f.LastErrorCode == "" && f.ConsecutiveFailures == 0 &&
		f.NextAttemptAt.IsZero() && !f.NeedsReauth
}

// MarshalJSON stores the failure flat with the other fields.
func (t tokenState) MarshalJSON() ([]byte, error) {
	type plain tokenState
	return json.Marshal(struct {
		plain
		tokenFailure
	}{plain(t), t.Failure()})
}

// UnmarshalJSON reads what MarshalJSON stores.
func (t *tokenState) UnmarshalJSON(data []byte) error {
	type plain tokenState
	var w struct {
		plain
		tokenFailure
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*t = tokenState(w.plain)
	t.SetFailure(w.tokenFailure)
	return nil
}

// mintedToken is one access token minted from the refresh token. Its lease
// count lives in memory; Reserved is a persisted upper bound of it, raised in
// blocks so that handing out a lease rarely costs a storage write.
type mintedToken struct {
	ID        string    `json:"id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Reserved  int64     `json:"reserved"`
	Issuer    string    `json:"issuer,omitempty"`   // the accounts server that minted it
	Retired   bool      `json:"retired,omitempty"`  // no new leases: its revocation was started
	Revoked   bool      `json:"revoked,omitempty"`  // revoked (confirmed by Zoho) or evicted by Zoho's live cap
	Unknown   bool      `json:"unknown,omitempty"`  // minted by a request whose answer was lost
	Rejected  bool      `json:"rejected,omitempty"` // a reader reported that Zoho rejected it (also Retired)
	// HeldUntilExpiry: an unleased read (static-creds/) handed it out, so it is
	// held until it expires, whatever becomes of its leases.
	HeldUntilExpiry bool `json:"held_until_expiry,omitempty"`
	// AccessToken is the token itself, kept for client_credentials accounts
	// only (until it is revoked or expires): with no refresh token whose
	// revocation kills it, revoke/<name> must revoke each one.
	AccessToken string `json:"access_token,omitempty"`
}

// tokenID is a short, non-reversible identifier of an access token: the
// first 96 bits of its SHA-256, in hex (paths.TokenIDLen characters). creds/
// answers show it as token_id and readers report a rejected token by it. A
// Zoho access token carries 256 random bits, so the hash cannot be searched
// back to the token; 96 bits keep the few tokens an account holds apart.
func tokenID(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return hex.EncodeToString(sum[:12])
}

func getJSON(ctx context.Context, s logical.Storage, key string, out interface{}) (bool, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	if entry == nil {
		return false, nil
	}
	if err := entry.DecodeJSON(out); err != nil {
		return false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v interface{}) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	entry.SealWrap = true
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

func loadConfig(ctx context.Context, s logical.Storage, name string) (*accountConfig, error) {
	var cfg accountConfig
	ok, err := getJSON(ctx, s, configPrefix+name, &cfg)
	if err != nil || !ok {
		return nil, err
	}
	cfg.compact()
	return &cfg, nil
}

func loadTokenState(ctx context.Context, s logical.Storage, name string) (*tokenState, error) {
	var st tokenState
	ok, err := getJSON(ctx, s, tokenPrefix+name, &st)
	if err != nil || !ok {
		return nil, err
	}
	st.compact()
	return &st, nil
}

// intern returns the one shared copy of s. Many accounts hold the same data
// center, accounts server, API domain, token type and scopes; each decoded
// from storage would otherwise be a copy of its own.
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// compact shares the values accounts hold alike (see intern).
func (c *accountConfig) compact() {
	c.DataCenter = intern(c.DataCenter)
	c.AccountsURL = intern(c.AccountsURL)
	c.RedirectURI = intern(c.RedirectURI)
	c.RefreshTokenIssuer = intern(c.RefreshTokenIssuer)
	c.APIDomain = intern(c.APIDomain)
	c.GrantType = intern(c.GrantType)
	c.SOID = intern(c.SOID)
	for i := range c.Scopes {
		c.Scopes[i] = intern(c.Scopes[i])
	}
}

// compact shares the values accounts hold alike (see intern), and the
// current token's id with its entry among the minted tokens.
func (t *tokenState) compact() {
	t.TokenType = intern(t.TokenType)
	t.APIDomain = intern(t.APIDomain)
	t.Scope = intern(t.Scope)
	for _, m := range t.Minted {
		m.Issuer = intern(m.Issuer)
		if m.ID == t.TokenID {
			m.ID = t.TokenID
		}
	}
}
