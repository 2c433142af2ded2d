# Vault Agent in process-supervisor mode: it starts a program with the
# Zoho access token and API domain of the "analytics" account in its
# environment, and restarts it whenever the engine hands out a new token
# (about once per token lifetime, i.e. hourly).
#
# Vault refuses "template" and "api_proxy" blocks next to "env_template";
# run a second Agent with agent.hcl if you also need files or a proxy.

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

# Both variables come from the same read of zoho/creds/analytics: the
# Agent fetches one secret (one lease) and renders it twice.
env_template "ZOHO_ACCESS_TOKEN" {
  contents             = "{{ with secret \"zoho/creds/analytics\" }}{{ .Data.access_token }}{{ end }}"
  error_on_missing_key = true
}

env_template "ZOHO_API_DOMAIN" {
  contents             = "{{ with secret \"zoho/creds/analytics\" }}{{ .Data.api_domain }}{{ end }}"
  error_on_missing_key = true
}

exec {
  command                   = ["/usr/local/bin/zoho-report", "--account", "analytics"]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM"
}
