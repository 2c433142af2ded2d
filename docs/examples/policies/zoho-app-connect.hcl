# zoho-app-connect: the application that calls the product's API with the
# shared token of the "connect" account: read that account's creds/ and nothing
# else (no configuration, no other account, no revocation). Vault Agent
# renews the lease through sys/leases/renew, which the default policy grants.
path "zoho/creds/connect" {
  capabilities = ["read"]
}
