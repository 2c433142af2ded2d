// Package e2e holds the end-to-end tests of the Zoho secrets engine: a real
// Vault server (dev and file-storage modes), the real vault CLI and Vault
// Agent, the plugin binary built from this module, and the Zoho simulator
// running inside the test process. All traffic stays on 127.0.0.1.
//
// Run with `go test ./scripts/e2e/ -count=1 -v`; VAULT_BIN names the Vault
// binary (otherwise scripts/vault.sh finds or builds one).
package e2e
