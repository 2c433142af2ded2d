# zoho-consent-analytics: for the person whose Zoho login backs the
# "analytics" account. Reading auth-url/analytics starts Zoho's consent
# flow; whoever completes it in the browser decides which Zoho user the
# account acts as, so grant this for one account at a time.
path "zoho/auth-url/analytics" {
  capabilities = ["read"]
}

path "zoho/status/analytics" {
  capabilities = ["read"]
}
