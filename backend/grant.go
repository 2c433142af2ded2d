// How an account gets its access tokens: whether it may mint one now, what
// becomes of its tokens when it stops, and the token request itself.

package backend

import (
	"context"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

// canMint reports whether the account may request access tokens: it holds a
// refresh token.
func (c *accountConfig) canMint() bool {
	return c.RefreshToken != ""
}

// tokensDiedWithGrant reports whether every access token minted under the
// current generation is dead at Zoho because the account gave up what minted
// them: revoking a refresh token kills its access tokens, so their leases
// need no call to Zoho.
func (c *accountConfig) tokensDiedWithGrant() bool {
	return c.RefreshToken == ""
}

// staleLeaseReason says why a lease of an older generation, or of an account
// that can no longer mint, cannot be renewed.
func (c *accountConfig) staleLeaseReason() string {
	return "the refresh token it was minted from was replaced or revoked"
}

// requestToken sends the account's token request (cfg's credentials) and
// returns the operation's name for metrics and errors.
func (b *Backend) requestToken(ctx context.Context, cfg *accountConfig) (string, *zoho.Token, error) {
	t, err := b.zoho.Refresh(ctx, appFor(cfg), cfg.RefreshToken)
	return zoho.OpRefresh, t, err
}
