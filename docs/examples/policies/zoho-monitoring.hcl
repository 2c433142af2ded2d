# zoho-monitoring: the token Prometheus scrapes with, and dashboards.
path "zoho/metrics" {
  capabilities = ["read"]
}

path "zoho/status/*" {
  capabilities = ["read", "list"]
}

# vault list zoho/attention: the accounts that need an operator.
path "zoho/attention/" {
  capabilities = ["list"]
}
