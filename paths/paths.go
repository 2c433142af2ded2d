package paths

import "github.com/hashicorp/vault/sdk/framework"

// Paths returns every path of the engine, served by e.
func Paths(e Engine, secret *framework.Secret) []*framework.Path {
	out := pathConfig(e)
	out = append(out, pathCreds(e, secret), pathStaticCreds(e), pathRevoke(e), pathAuthURL(e), pathCallback(e), pathMetrics(e))
	out = append(out, pathStatus(e)...)
	out = append(out, pathAttention(e))
	out = append(out, pathDevice(e))
	return out
}

// Unauthenticated lists the paths Vault serves without a token: Zoho's
// consent redirect arrives from a browser.
var Unauthenticated = []string{CallbackPath}

// SealWrapStorage lists the storage prefixes holding secrets (client secrets,
// refresh and access tokens, pending revocations, device codes); Vault
// seal-wraps them where the seal supports it.
var SealWrapStorage = []string{"config/", "token/", "wal/", "pending/", "attention/", "device/"}

// Help is the engine's root help text.
const Help = `
The Zoho secrets engine keeps Zoho OAuth client credentials and refresh tokens
for many Zoho accounts and hands out shared, cached access tokens under Vault
leases.

  config/<name>   write client_id, client_secret, data_center and a grant_code
                  (or refresh_token) once per account; read shows its health
  creds/<name>    read an access token (one shared token per account) under a lease
  static-creds/<name>
                  the same token without a lease, held until it expires
  revoke/<name>   revoke the account's refresh token at Zoho
  auth-url/<name> Zoho's consent URL; the redirect comes back to callback
  device/<name>   Zoho's device authorization: the user approves anywhere,
                  the engine polls Zoho and stores the refresh token
  status/         health of every account
  attention/      the accounts that need an operator, and why
  metrics         Prometheus metrics

Zoho allows 10 new access tokens per refresh token per 10 minutes and keeps only
a few live ones; the engine shares one token per account, refreshes it ahead of
expiry and enforces those limits locally.
`
