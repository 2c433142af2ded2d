// attention/: the accounts that need an operator (re-authorization, failing
// or backing off, a grant lost mid-exchange, a revocation given up), kept as
// an index in storage so that finding them costs a list of the few, not a
// read of every account.

package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

const attentionPrefix = "attention/"

// attentionEntry marks an account in the index; it holds no secret.
type attentionEntry struct {
	Since time.Time `json:"since"`
}

// flagAttention adds the account to the index (on the transition into a
// state that needs an operator; a failed write is logged: the account's own
// status still shows the problem).
func (b *Backend) flagAttention(ctx context.Context, s logical.Storage, name string, now time.Time) {
	if err := putJSON(ctx, s, attentionPrefix+name, &attentionEntry{Since: now.UTC()}); err != nil {
		b.logger.Warn("could not add the account to the attention index", "account", name, "error", err)
	}
}

// clearAttention takes the account out of the index once it is healthy.
func (b *Backend) clearAttention(ctx context.Context, s logical.Storage, name string) {
	if err := s.Delete(ctx, attentionPrefix+name); err != nil {
		b.logger.Warn("could not remove the account from the attention index", "account", name, "error", err)
	}
}

// AccountsNeedingAttention implements paths.Engine: the statuses of the
// accounts in the index that still need an operator.
func (b *Backend) AccountsNeedingAttention(ctx context.Context, s logical.Storage) ([]*paths.AccountStatus, error) {
	names, err := s.List(ctx, attentionPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*paths.AccountStatus, 0, len(names))
	for _, name := range names {
		st, err := b.ReadAccount(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if st != nil && st.NeedsAttention() {
			out = append(out, st)
		}
	}
	return out, nil
}
