#!/usr/bin/env bash
# make dev: a Vault dev server with the Zoho plugin, the Zoho simulator and a
# demo account, all on loopback and offline. Ctrl-C stops everything.
# DEV_NONINTERACTIVE=1 stops right after printing what to try (for CI).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
version="${VERSION:-v0.1.0}"
state="$root/.cache/dev"
rm -rf "$state"
mkdir -p "$state/plugins" "$state/home"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'dev: %s\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
	local code=$?
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	[[ ${#pids[@]} -gt 0 ]] && say "stopped everything"
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_until() { # wait_until SECONDS DESCRIPTION CMD...
	local deadline=$((SECONDS + $1)) what=$2; shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out waiting for $what"
		sleep 0.2
	done
}
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

say "building the plugin and the simulator"
[[ -x bin/vault-plugin-secrets-zoho && -x bin/zoho-sim ]] || make -s build
vault="$(bash scripts/vault.sh)"
say "using $("$vault" version)"
cp bin/vault-plugin-secrets-zoho "$state/plugins/"

sim_port=$(free_port)
say "starting the Zoho simulator on 127.0.0.1:$sim_port"
setsid bin/zoho-sim -addr "127.0.0.1:$sim_port" -ready-file "$state/sim.url" >"$state/zoho-sim.log" 2>&1 &
pids+=($!)
wait_until 20 "the simulator" test -s "$state/sim.url"
sim="$(cat "$state/sim.url")"

vault_port=$(free_port)
export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN=root HOME="$state/home"
cat >"$state/vault.hcl" <<HCL
plugin_directory = "$state/plugins"
disable_mlock    = true
HCL
say "starting a Vault dev server on $VAULT_ADDR"
setsid "$vault" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$vault_port" \
	-dev-no-store-token -config="$state/vault.hcl" >"$state/vault.log" 2>&1 &
pids+=($!)
wait_until 60 "Vault" "$vault" status

say "registering the plugin by sha256 as version $version and mounting it at zoho/"
sha=$(sha256sum "$state/plugins/vault-plugin-secrets-zoho" | cut -d' ' -f1)
"$vault" plugin register -sha256="$sha" -version="$version" -command=vault-plugin-secrets-zoho secret zoho >/dev/null
"$vault" secrets enable -path=zoho -plugin-version="$version" zoho >/dev/null

say "creating the demo account through the simulator's Self Client"
client=$(curl -sf -X POST "$sim/sim/clients" -d '{"dc":"us"}')
client_id=$(json_field client_id <<<"$client")
client_secret=$(json_field client_secret <<<"$client")
code=$(curl -sf -X POST "$sim/sim/self-client" -d "{\"client_id\":\"$client_id\",\"scopes\":\"ZohoCRM.modules.ALL,ZohoCRM.users.READ\"}" | json_field code)
"$vault" write zoho/config/demo client_id="$client_id" client_secret="$client_secret" \
	accounts_url="$sim/us" scopes=ZohoCRM.modules.ALL,ZohoCRM.users.READ grant_code="$code" >/dev/null

say "reading zoho/creds/demo"
"$vault" read zoho/creds/demo
token=$("$vault" read -field=access_token zoho/creds/demo)
api_domain=$("$vault" read -field=api_domain zoho/config/demo)
answer=$(curl -sf -H "Authorization: Zoho-oauthtoken $token" "$api_domain/whoami") || die "the simulator rejected the token"
say "the simulator's protected endpoint accepted the token: $answer"

path_hint=""
if ! command -v vault >/dev/null 2>&1 || [[ "$(command -v vault)" != "$vault" ]]; then
	path_hint="  alias vault=$vault"$'\n'
fi
cat <<EOT

The Zoho secrets engine is running (Vault log: $state/vault.log).
Try, in another shell:

${path_hint}  export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root
  vault read zoho/creds/demo
  curl -H "Authorization: Zoho-oauthtoken \$(vault read -field=access_token zoho/creds/demo)" $api_domain/whoami
  vault read zoho/config/demo
  vault list zoho/status
  vault lease revoke -prefix zoho/creds/demo
  curl $sim/sim/counters

EOT
if [[ -n "${DEV_NONINTERACTIVE:-}" ]]; then
	say "DEV_NONINTERACTIVE is set: stopping"
	exit 0
fi
say "press Ctrl-C to stop"
wait "${pids[@]}"
