#!/usr/bin/env bash
# Prints the path of a usable `vault` binary (server, CLI and Agent in one):
#   1. $VAULT_BIN, if set;
#   2. `vault` on PATH;
#   3. the project's cached build, .cache/vault-<version>, built from the Go
#      module proxy by scripts/vault/ when missing (the version pinned there).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${VAULT_BIN:-}" ]]; then
	if [[ -x "$VAULT_BIN" ]]; then
		echo "$VAULT_BIN"
		exit 0
	fi
	echo "vault.sh: VAULT_BIN=$VAULT_BIN is not an executable file" >&2
	exit 1
fi
if command -v vault >/dev/null 2>&1; then
	command -v vault
	exit 0
fi

version=$(awk '$1 == "require" && $2 == "github.com/hashicorp/vault" { print $3 } $1 == "github.com/hashicorp/vault" && $2 ~ /^v/ { print $2 }' "$root/scripts/vault/go.mod" | head -n1)
if [[ -z "$version" ]]; then
	echo "vault.sh: no pinned github.com/hashicorp/vault version in scripts/vault/go.mod" >&2
	exit 1
fi
out="$root/.cache/vault-${version#v}"
if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$root/.cache"
echo "vault.sh: building Vault $version from the Go module proxy into $out" >&2
echo "vault.sh: about 4 minutes with a warm module cache; 15+ minutes and ~4 GB of modules when cold" >&2
tmp="$(mktemp "$root/.cache/vault-build.XXXXXX")"
start=$SECONDS
# A heartbeat on stderr while go build is silent.
(
	trap 'kill "$nap" 2>/dev/null; exit 0' TERM
	while :; do
		sleep 30 </dev/null >/dev/null 2>&1 &
		nap=$!
		wait "$nap"
		echo "vault.sh: still building ($((SECONDS - start)) s)" >&2
	done
) >/dev/null &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true; rm -f "$tmp"' EXIT
(cd "$root/scripts/vault" && go build -trimpath -o "$tmp" .) >&2
"$tmp" version >/dev/null # a binary that runs, before it takes the cached name
mv "$tmp" "$out"
kill "$ticker" 2>/dev/null || true
trap - EXIT
echo "vault.sh: built in $((SECONDS - start)) s" >&2
echo "$out"
