# zoho-monitoring: the token Prometheus scrapes with, and dashboards.
path "zoho/metrics" {
  capabilities = ["read"]
}

path "zoho/status/*" {
  capabilities = ["read", "list"]
}
