# zoho-operator: the people who add, re-authorize and retire Zoho accounts.
# Deliberately no access to zoho/creds/*: running the engine does not
# require holding the tokens it hands out.

# Create, update, read (health, never secrets), delete and list accounts.
path "zoho/config/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Revoke an account's refresh token at Zoho, keeping its client settings.
path "zoho/revoke/*" {
  capabilities = ["update"]
}

# Start Zoho's consent flow for any account.
path "zoho/auth-url/*" {
  capabilities = ["read"]
}

# Start, follow and cancel Zoho's device authorization for any account.
path "zoho/device/*" {
  capabilities = ["read", "update", "delete"]
}

# Health of every account, the accounts that need an operator
# (vault list zoho/attention), and the Prometheus metrics.
path "zoho/status/*" {
  capabilities = ["read", "list"]
}

path "zoho/attention/" {
  capabilities = ["list"]
}

path "zoho/metrics" {
  capabilities = ["read"]
}
