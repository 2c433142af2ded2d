# Vault Agent rendering the shared access token of the "analytics" account
# from static-creds/, which answers without a Vault lease: nothing for Vault
# to store or revoke per read, which suits many Agents reading one account.
# The same vault and auto_auth blocks as agent.hcl; its policy needs "read"
# on zoho/static-creds/analytics (zoho-static-analytics.hcl).

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
  exit_on_retry_failure = true
}

# The answer carries ttl and rotation_period, so the Agent reads the path
# again ttl + 1 seconds later: about a minute before the token expires, by
# which time the engine holds the next token, and the file changes.
template {
  contents             = "{{ with secret \"zoho/static-creds/analytics\" }}{{ .Data.access_token }}{{ end }}"
  destination          = "/run/zoho/token"
  perms                = "0640"
  error_on_missing_key = true
}
