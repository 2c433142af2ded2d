# zoho-team-analytics: the analytics team's applications.
# They may fetch the shared access token of the "analytics" account and
# nothing else: no client configuration, no other account, no revocation.
path "zoho/creds/analytics" {
  capabilities = ["read"]
}
