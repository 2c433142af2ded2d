package paths

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// SecretTypeAccessToken is the lease type of creds/ reads.
const SecretTypeAccessToken = "zoho_access_token"

// Keys of a lease's internal data. Internal data is stored with the lease,
// never shown in responses.
const (
	leaseAccount     = "account"
	leaseAccessToken = "access_token"
	leaseTokenID     = "token_id"
	leaseGeneration  = "generation"
	leaseExpiresAt   = "expires_at"
	leaseSeq         = "lease_seq"
	leaseEndsAt      = "lease_ends_at"
)

// Secret is the lease type for access tokens. Leases are renewable, but a
// renewal never extends a lease past the end it was given, which never
// outlives its access token: renewing answers what is left (so that Vault
// Agent's cache can share one lease), and a client moves on to a fresh read
// as the end nears.
func Secret(e Engine) *framework.Secret {
	return &framework.Secret{
		Type:   SecretTypeAccessToken,
		Fields: tokenFields(),
		Renew: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			lease, err := parseLeaseInternal(req.Secret)
			if err != nil {
				return nil, err
			}
			ttl, err := e.RenewLease(ctx, req.Storage, lease)
			if err != nil {
				return respondError(err)
			}
			resp := &logical.Response{Secret: req.Secret}
			resp.Secret.TTL = ttl
			// Vault measures the maximum from the lease's issue time and lets a
			// client's increment grow the TTL up to it: make it the lease's end.
			resp.Secret.MaxTTL = ttl
			if !lease.EndsAt.IsZero() && !req.Secret.IssueTime.IsZero() {
				resp.Secret.MaxTTL = lease.EndsAt.Sub(req.Secret.IssueTime)
			}
			return resp, nil
		},
		Revoke: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
			lease, err := parseLeaseInternal(req.Secret)
			if err != nil {
				return nil, err
			}
			if err := e.RevokeLease(ctx, req.Storage, lease); err != nil {
				return nil, err
			}
			return nil, nil
		},
	}
}

func leaseInternal(l LeaseData) map[string]interface{} {
	return map[string]interface{}{
		leaseAccount:     l.Account,
		leaseAccessToken: l.AccessToken,
		leaseTokenID:     l.TokenID,
		leaseGeneration:  l.Generation,
		leaseExpiresAt:   l.ExpiresAt.Unix(),
		leaseSeq:         l.Seq,
		leaseEndsAt:      l.EndsAt.Unix(),
	}
}

// parseLeaseInternal reads internal data back. Leases come back from storage
// through JSON, so numbers may arrive as float64, json.Number or strings.
func parseLeaseInternal(s *logical.Secret) (LeaseData, error) {
	if s == nil || s.InternalData == nil {
		return LeaseData{}, fmt.Errorf("lease has no internal data")
	}
	var l LeaseData
	var ok bool
	if l.Account, ok = s.InternalData[leaseAccount].(string); !ok || l.Account == "" {
		return LeaseData{}, fmt.Errorf("lease internal data has no account")
	}
	if l.AccessToken, ok = s.InternalData[leaseAccessToken].(string); !ok || l.AccessToken == "" {
		return LeaseData{}, fmt.Errorf("lease internal data of account %q has no access token", l.Account)
	}
	l.TokenID, _ = s.InternalData[leaseTokenID].(string)
	gen, err := toInt64(s.InternalData[leaseGeneration])
	if err != nil {
		return LeaseData{}, fmt.Errorf("lease internal data of account %q: generation: %w", l.Account, err)
	}
	l.Generation = gen
	exp, err := toInt64(s.InternalData[leaseExpiresAt])
	if err != nil {
		return LeaseData{}, fmt.Errorf("lease internal data of account %q: expires_at: %w", l.Account, err)
	}
	l.ExpiresAt = time.Unix(exp, 0)
	if v, ok := s.InternalData[leaseSeq]; ok {
		if l.Seq, err = toInt64(v); err != nil {
			return LeaseData{}, fmt.Errorf("lease internal data of account %q: lease_seq: %w", l.Account, err)
		}
	}
	if v, ok := s.InternalData[leaseEndsAt]; ok {
		end, err := toInt64(v)
		if err != nil {
			return LeaseData{}, fmt.Errorf("lease internal data of account %q: lease_ends_at: %w", l.Account, err)
		}
		l.EndsAt = time.Unix(end, 0)
	}
	return l, nil
}

func toInt64(v interface{}) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	case float64:
		return int64(n), nil
	case json.Number:
		return n.Int64()
	case string:
		return strconv.ParseInt(n, 10, 64)
	case nil:
		return 0, fmt.Errorf("missing")
	}
	return 0, fmt.Errorf("unexpected type %T", v)
}
