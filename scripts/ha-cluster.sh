#!/usr/bin/env bash
# A 3-node Vault Raft HA cluster on loopback with the Zoho plugin registered
# once and mounted at zoho/. For operators trying failover, and for the e2e
# failover test.
#
#   scripts/ha-cluster.sh start    # builds what is missing, starts, prints env
#   scripts/ha-cluster.sh status
#   scripts/ha-cluster.sh stop
#
# Environment: HA_DIR (default .cache/ha), HA_BASE_PORT (default 18300: API
# ports BASE, BASE+2, BASE+4; cluster ports one above each), VAULT_BIN,
# PLUGIN_DIR (a directory holding vault-plugin-secrets-zoho; default bin/),
# PLUGIN_VERSION (default v0.1.0).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${HA_DIR:-$root/.cache/ha}"
base="${HA_BASE_PORT:-18300}"
version="${PLUGIN_VERSION:-v0.1.0}"
plugin_dir="${PLUGIN_DIR:-$root/bin}"

log() { printf 'ha-cluster: %s\n' "$*" >&2; }

api_port() { echo $((base + 2 * ($1 - 1))); }
addr() { echo "http://127.0.0.1:$(api_port "$1")"; }

wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then return 1; fi
		sleep 0.2
	done
}

node_up() { curl -s -o /dev/null "$(addr "$1")/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200"; }
node_unsealed() { curl -sf "$(addr "$1")/v1/sys/health?standbyok=true&perfstandbyok=true" >/dev/null; }

write_config() {
	local n=$1 api cluster join=""
	api=$(api_port "$n"); cluster=$((api + 1))
	mkdir -p "$dir/node$n/data"
	for m in 1 2 3; do
		[[ $m == "$n" ]] && continue
		join+="  retry_join { leader_api_addr = \"$(addr "$m")\" }"$'\n'
	done
	cat >"$dir/node$n/vault.hcl" <<HCL
storage "raft" {
  path    = "$dir/node$n/data"
  node_id = "node$n"
$join}
listener "tcp" {
  address         = "127.0.0.1:$api"
  cluster_address = "127.0.0.1:$cluster"
  tls_disable     = true
}
api_addr         = "http://127.0.0.1:$api"
cluster_addr     = "https://127.0.0.1:$cluster"
disable_mlock    = true
plugin_directory = "$plugin_dir"
log_level        = "${HA_LOG_LEVEL:-info}"
HCL
}

start_node() {
	local n=$1
	mkdir -p "$dir/node$n/home"
	HOME="$dir/node$n/home" setsid "$vault" server -config="$dir/node$n/vault.hcl" >>"$dir/node$n/vault.log" 2>&1 &
	echo $! >"$dir/node$n/pid"
	wait_for 30 node_up "$n" || { log "node$n did not start; see $dir/node$n/vault.log"; exit 1; }
}

three_voters() {
	[[ $("$vault" operator raft list-peers -format=json | grep -c '"voter": true') == 3 ]]
}

unseal() { VAULT_ADDR="$(addr "$1")" "$vault" operator unseal "$(cat "$dir/unseal-key")" >/dev/null; }

cmd_start() {
	vault="$(bash "$root/scripts/vault.sh")" # honours VAULT_BIN
	if [[ ! -x "$plugin_dir/vault-plugin-secrets-zoho" ]]; then
		make -C "$root" build >&2
	fi
	mkdir -p "$dir"
	for n in 1 2 3; do write_config "$n"; done
	start_node 1
	if [[ ! -f "$dir/init.json" ]]; then
		VAULT_ADDR="$(addr 1)" "$vault" operator init -key-shares=1 -key-threshold=1 -format=json >"$dir/init.json"
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"w").write(d["unseal_keys_b64"][0]); open(sys.argv[3],"w").write(d["root_token"])' \
			"$dir/init.json" "$dir/unseal-key" "$dir/root-token"
		chmod 600 "$dir/unseal-key" "$dir/root-token" "$dir/init.json"
	fi
	unseal 1
	wait_for 60 node_unsealed 1 || { log "node1 not active"; exit 1; }
	for n in 2 3; do
		start_node "$n"
		# retry_join needs the unseal key once the node has joined.
		wait_for 60 unseal "$n" || { log "node$n could not be unsealed"; exit 1; }
	done
	for n in 2 3; do wait_for 60 node_unsealed "$n" || { log "node$n did not join"; exit 1; }; done
	export VAULT_ADDR="$(addr 1)" VAULT_TOKEN="$(cat "$dir/root-token")"
	wait_for 60 "$vault" status
	# Autopilot promotes joined nodes to voters once they are stable; until
	# then losing the leader loses the quorum.
	wait_for 90 three_voters || { log "nodes were not promoted to voters"; exit 1; }
	if ! "$vault" secrets list -format=json | grep -q '"zoho/"'; then
		local sha; sha=$(sha256sum "$plugin_dir/vault-plugin-secrets-zoho" | cut -d' ' -f1)
		"$vault" plugin register -sha256="$sha" -version="$version" -command=vault-plugin-secrets-zoho secret zoho >&2
		"$vault" secrets enable -path=zoho -plugin-version="$version" zoho >&2
	fi
	cmd_env
}

cmd_env() {
	echo "export VAULT_TOKEN=$(cat "$dir/root-token")"
	for n in 1 2 3; do echo "export VAULT_ADDR_NODE$n=$(addr "$n")"; done
	echo "export VAULT_ADDR=$(addr 1)"
}

cmd_status() {
	for n in 1 2 3; do
		local pid="-" health
		[[ -f "$dir/node$n/pid" ]] && pid=$(cat "$dir/node$n/pid")
		health=$(curl -s -o /dev/null -w '%{http_code}' "$(addr "$n")/v1/sys/health" || true)
		# 200 active, 429 standby, 503 sealed, 000 down
		printf 'node%s pid=%s addr=%s health=%s\n' "$n" "$pid" "$(addr "$n")" "$health"
	done
}

cmd_stop() {
	for n in 1 2 3; do
		[[ -f "$dir/node$n/pid" ]] || continue
		local pid; pid=$(cat "$dir/node$n/pid")
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		rm -f "$dir/node$n/pid"
	done
	log "stopped (data kept in $dir; remove it for a fresh cluster)"
}

case "${1:-}" in
start) cmd_start ;;
status) cmd_status ;;
stop) cmd_stop ;;
env) cmd_env ;;
*) echo "usage: $0 start|status|env|stop" >&2; exit 2 ;;
esac
