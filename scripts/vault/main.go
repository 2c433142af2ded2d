// Command vault builds HashiCorp Vault's own CLI entry point from the Go module
// proxy, so that the project's dev environment and end-to-end tests run a real
// Vault server, CLI and Agent without a download site.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
