# Vault Agent as a caching API proxy for a host whose applications ask Vault
# for the "analytics" account's token themselves: they call the Agent's
# listener without a Vault token, and every read is answered from one
# renewed lease until renewing stops extending it.
#
#   curl http://127.0.0.1:8100/v1/zoho/creds/analytics
#
# Files this configuration expects (adjust the paths to your layout):
#   /etc/vault-agent/role-id, /etc/vault-agent/secret-id   AppRole credentials
#   /etc/vault-agent/vault-ca.pem                           CA of Vault's TLS

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

cache {}

api_proxy {
  use_auto_auth_token = true
}

listener "tcp" {
  address     = "127.0.0.1:8100"
  tls_disable = true
}
