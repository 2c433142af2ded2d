# zoho-static-analytics: busy readers of the "analytics" account (many
# processes, Vault Agent templates, the Vault Secrets Operator) that take the
# shared access token without a Vault lease. static-creds/ is a grant of its
# own: this policy does not let its holder read creds/analytics, and
# zoho-team-analytics (creds/) does not let its holder read static-creds/.
path "zoho/static-creds/analytics" {
  capabilities = ["read"]
}
