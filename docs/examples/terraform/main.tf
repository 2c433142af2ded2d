# Terraform for the Zoho secrets engine: the plugin in Vault's catalog, its
# mount, one account ("analytics") and one policy per team.
#
# Provider settings come from the environment (VAULT_ADDR, VAULT_TOKEN, ...).
# The plugin binary must already sit in every Vault node's plugin_directory.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    vault = {
      source  = "hashicorp/vault"
      version = ">= 4.0.0"
    }
  }
}

provider "vault" {}

variable "plugin_version" {
  description = "Version the plugin binary was built with (make build VERSION=...)."
  type        = string
  default     = "v0.1.0"
}

variable "plugin_sha256" {
  description = "sha256sum of the plugin binary in the plugin directory."
  type        = string
}

variable "analytics_client_id" {
  description = "Client ID of the analytics account's Zoho client."
  type        = string
}

variable "analytics_client_secret" {
  description = "Client secret of that client (write-only in Vault)."
  type        = string
  sensitive   = true
}

variable "analytics_refresh_token" {
  description = "Refresh token to import (write-only in Vault). Leave empty to authorize later through auth-url."
  type        = string
  sensitive   = true
  default     = ""
}

variable "analytics_data_center" {
  description = "Zoho data center of the account: us, eu, in, au, jp, cn, ca, sa or uk."
  type        = string
  default     = "eu"
}

variable "vault_external_url" {
  description = "Vault's address as browsers reach it; the consent redirect comes back there."
  type        = string
  default     = "https://vault.example.com"
}

# Accounts each team may read tokens of.
variable "team_accounts" {
  type = map(list(string))
  default = {
    analytics = ["analytics"]
    sales     = ["sales-eu", "sales-us"]
  }
}

resource "vault_plugin" "zoho" {
  type    = "secret"
  name    = "zoho"
  command = "vault-plugin-secrets-zoho"
  version = var.plugin_version
  sha256  = var.plugin_sha256
}

resource "vault_mount" "zoho" {
  path           = "zoho"
  type           = vault_plugin.zoho.name
  plugin_version = vault_plugin.zoho.version
  description    = "Zoho OAuth access tokens, one shared token per account"
}

# One Zoho account. Grant codes live for minutes and are single-use, so they
# do not belong in Terraform: either import a refresh token here, or leave it
# out and let an operator authorize once with zoho/auth-url/analytics.
resource "vault_generic_endpoint" "zoho_analytics" {
  path = "${vault_mount.zoho.path}/config/analytics"

  # client_secret and refresh_token are never returned by a read, so reading
  # back would only show drift that is not there.
  disable_read = true
  # If you turn reads on for drift detection, keep this: the read returns
  # health fields that were never written and omits the write-only ones.
  ignore_absent_fields = true

  data_json = jsonencode(merge(
    {
      client_id     = var.analytics_client_id
      client_secret = var.analytics_client_secret
      data_center   = var.analytics_data_center
      redirect_uri  = "${var.vault_external_url}/v1/${vault_mount.zoho.path}/callback"
      scopes        = ["ZohoAnalytics.data.all"]
    },
    var.analytics_refresh_token == "" ? {} : { refresh_token = var.analytics_refresh_token },
  ))

  lifecycle {
    # Deleting config/analytics revokes its refresh token at Zoho, and a
    # replacement (destroy, then create) would try to import the token it
    # has just revoked. Remove this guard only on purpose.
    prevent_destroy = true
  }
}

resource "vault_policy" "zoho_team" {
  for_each = var.team_accounts

  name = "zoho-team-${each.key}"
  policy = join("\n", [
    for account in each.value : <<-EOT
      path "${vault_mount.zoho.path}/creds/${account}" {
        capabilities = ["read"]
      }
    EOT
  ])
}

resource "vault_policy" "zoho_operator" {
  name   = "zoho-operator"
  policy = file("${path.module}/../policies/zoho-operator.hcl")
}
