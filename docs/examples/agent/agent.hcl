# Vault Agent for a host whose applications call Zoho as the "analytics"
# account. It renders the shared access token to files and keeps them
# fresh; the applications read the files and never talk to Vault.
#
# Files this configuration expects (adjust the paths to your layout):
#   /etc/vault-agent/role-id, /etc/vault-agent/secret-id   AppRole credentials
#   /etc/vault-agent/vault-ca.pem                           CA of Vault's TLS
#   /etc/vault-agent/zoho-token.ctmpl, zoho.env.ctmpl       the two templates

pid_file = "/run/vault-agent/agent.pid"

vault {
  address = "https://vault.example.com:8200"
  ca_cert = "/etc/vault-agent/vault-ca.pem"
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = "/etc/vault-agent/role-id"
      secret_id_file_path                 = "/etc/vault-agent/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
}

template_config {
  # Exit (and let the service manager restart the Agent) instead of
  # leaving a stale token on disk when Vault keeps refusing.
  exit_on_retry_failure = true
}

# Both templates read the same path, so the Agent makes one read (one
# lease) per token and renders both files from it. The engine's leases are
# renewable, but a renewal never extends a lease past its end, and a Zoho
# token in steady use is refreshed in the background 8 minutes before it
# expires. The Agent renews the lease until renewing stops extending it, then
# reads creds/ again and gets the next token. Templates need no "cache"
# block; agent-cache.hcl adds one for applications that ask the Agent's
# listener for the token.

# The bare access token, for "Authorization: Zoho-oauthtoken $(cat ...)".
template {
  source               = "/etc/vault-agent/zoho-token.ctmpl"
  destination          = "/run/zoho/token"
  perms                = "0640"
  error_on_missing_key = true
}

# The token with the API domain and expiry, as KEY=value lines.
template {
  source               = "/etc/vault-agent/zoho.env.ctmpl"
  destination          = "/run/zoho/zoho.env"
  perms                = "0640"
  error_on_missing_key = true
}
