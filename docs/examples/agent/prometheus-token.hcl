# Vault Agent that keeps Prometheus' Vault token fresh: it logs in with
# AppRole (a role with the zoho-monitoring policy) and writes the token to the
# file Prometheus reads at every scrape (credentials_file in prometheus.yml).
#
# Files this configuration expects (adjust the paths to your layout):
#   /etc/prometheus/vault/role-id, /etc/prometheus/vault/secret-id   AppRole credentials
#   /etc/prometheus/vault/vault-ca.pem                               CA of Vault's TLS

vault {
  address = "https://vault.example.com:8200"
  ca_cert = "/etc/prometheus/vault/vault-ca.pem"
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = "/etc/prometheus/vault/role-id"
      secret_id_file_path                 = "/etc/prometheus/vault/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" {
    config = {
      path = "/etc/prometheus/secrets/vault-zoho-token"
      mode = 0640
    }
  }
}
