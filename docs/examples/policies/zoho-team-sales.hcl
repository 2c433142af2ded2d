# zoho-team-sales: the sales team owns every account whose name starts
# with "sales-" (for instance sales-eu and sales-us, one per data center).
# Its applications read the tokens; its people may check the accounts'
# health, which never shows a secret.
path "zoho/creds/sales-*" {
  capabilities = ["read"]
}

path "zoho/status/sales-*" {
  capabilities = ["read"]
}
