#!/usr/bin/env bash
# make dev: a Vault dev server with the Zoho plugin, the Zoho simulator, a
# demo account and an account to authorize in a browser (the consent redirect
# through Vault's callback), all on loopback and offline (Go, bash, curl and
# coreutils are all it needs). Ctrl-C, or a TERM or HUP to it or its process
# group, stops everything it started. Such a stop once everything runs (after
# "press Ctrl-C to stop") is the normal end: exit status 0. A signal during
# startup, or in DEV_NONINTERACTIVE mode, exits with 128 + the signal number.
# DEV_NONINTERACTIVE=1 stops right after printing what to try (for CI): exit
# status 0 only if a token was read through Vault and accepted by the
# simulator, and the browser account was authorized by answering the consent
# page with curl.
# DEV_DIR (default .cache/dev) holds the run's logs, plugin directory and
# Vault's HOME.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${DEV_DIR:-$root/.cache/dev}"
mkdir -p "$state"
state="$(cd "$state" && pwd)"
cd "$root"
plugin=vault-plugin-secrets-zoho

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() {
	printf 'dev: %s\n' "$*" >&2
	local log
	for log in "$state/zoho-sim.log" "$state/vault.log"; do
		[[ -s "$log" ]] || continue
		printf '\n--- last lines of %s ---\n' "$log" >&2
		tail -n 25 "$log" >&2
	done
	exit 1
}

# One make dev at a time: a second one would wipe this one's state.
if [[ -f "$state/dev.pid" ]] && kill -0 "$(cat "$state/dev.pid")" 2>/dev/null; then
	echo "dev: make dev is already running (pid $(cat "$state/dev.pid")); stop it first" >&2
	exit 1
fi
# What a previous run left (only its own files: DEV_DIR may name any directory).
rm -rf "$state/plugins" "$state/home"
rm -f "$state/vault.hcl" "$state/vault.log" "$state/zoho-sim.log" "$state/sim.url"
mkdir -p "$state/plugins" "$state/home"
echo $$ >"$state/dev.pid"

# Everything started here runs in its own session (setsid), so a signal meant
# for this script (the terminal's Ctrl-C or hangup, a TERM to it or to its
# process group) reaches only it, and it stops the rest in order: a TERM to
# each main process (Vault stops its plugin processes itself), then, after a
# grace period, a KILL to whatever is left in its process group. Once stopping
# has begun, INT, TERM and HUP are ignored, by this script and by the commands
# it runs meanwhile: make passes a TERM on to this script, timeout and
# supervisors may send more than one, and such a second signal used to kill the
# script halfway, leaving Vault and the simulator running.
pids=()
names=()
ready=0
cleanup() {
	local code=$? i n pid
	trap '' INT TERM HUP
	trap - EXIT
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for ((n = 0; n < 100; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	done
	for pid in "${pids[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	rm -f "$state/dev.pid"
	if ((${#pids[@]} > 0)); then say "stopped everything"; fi
	exit "$code"
}
on_signal() { # on_signal CODE: a requested stop once ready, else an interrupted start
	if ((ready)); then exit 0; fi
	exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

start() { # start NAME LOG CMD...: runs CMD in the background in its own session
	local name=$1 log=$2
	shift 2
	setsid "$@" >"$log" 2>&1 </dev/null &
	pids+=($!)
	names+=("$name")
}

wait_until() { # wait_until SECONDS WHAT PID CMD...: polls CMD until it succeeds
	local deadline=$((SECONDS + $1)) what=$2 pid=$3
	shift 3
	until "$@" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || die "$what exited during startup"
		((SECONDS < deadline)) || die "timed out after $1 s waiting for $what"
		sleep 0.1
	done
}

# A free loopback port P with P+1 free too (a Vault dev server puts its cluster
# listener on the next port). Picked below the kernel's ephemeral range.
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# Loopback only: never through a proxy from the environment.
http() { curl -sS --fail-with-body --noproxy '*' --max-time 10 "$@"; }

# json_field NAME: a string field of a flat JSON object on stdin.
json_field() {
	local v
	v=$(sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | head -n1)
	[[ -n "$v" ]] || return 1
	echo "$v"
}

# What to run: the plugin and simulator from `make build` (quick when up to date),
# and a Vault binary. The plugin is registered under the version it was built
# with: Vault refuses a mount whose plugin reports another version.
version=$(make -s --no-print-directory version)
say "building the plugin ($version) and the simulator"
make -s --no-print-directory build VERSION="$version" >/dev/null
vault="$(bash scripts/vault.sh)" || die "no Vault binary (scripts/vault.sh failed)"
say "using $("$vault" version)"
cp "bin/$plugin" "$state/plugins/"

say "starting the Zoho simulator"
start zoho-sim "$state/zoho-sim.log" bin/zoho-sim -addr 127.0.0.1:0 -ready-file "$state/sim.url" -device-poll-interval 2s
wait_until 20 "the Zoho simulator" "${pids[-1]}" test -s "$state/sim.url"
sim="$(head -n1 "$state/sim.url")"
wait_until 10 "the Zoho simulator" "${pids[-1]}" http -o /dev/null "$sim/sim/health"
say "Zoho simulator at $sim"

vault_port=$(free_port)
export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN=root HOME="$state/home"
cat >"$state/vault.hcl" <<HCL
plugin_directory = "$state/plugins"
disable_mlock    = true
HCL
say "starting a Vault dev server on $VAULT_ADDR"
start vault "$state/vault.log" "$vault" server -dev -dev-root-token-id=root \
	-dev-listen-address="127.0.0.1:$vault_port" -dev-no-store-token -config="$state/vault.hcl"
wait_until 60 "the Vault server" "${pids[-1]}" "$vault" status

say "registering the plugin by sha256 as version $version and mounting it at zoho/"
sha=$(sha256sum "$state/plugins/$plugin" | cut -d' ' -f1)
"$vault" plugin register -sha256="$sha" -version="$version" -command="$plugin" secret zoho >/dev/null ||
	die "vault plugin register failed"
"$vault" secrets enable -path=zoho -plugin-version="$version" zoho >/dev/null ||
	die "vault secrets enable failed"

say "creating the demo account through the simulator's Self Client"
scopes=ZohoCRM.modules.ALL,ZohoCRM.users.READ
client=$(http -X POST "$sim/sim/clients" -d '{"dc":"us"}') || die "POST /sim/clients failed: $client"
client_id=$(json_field client_id <<<"$client") || die "no client_id in $client"
client_secret=$(json_field client_secret <<<"$client") || die "no client_secret in $client"
grant=$(http -X POST "$sim/sim/self-client" -d "{\"client_id\":\"$client_id\",\"scopes\":\"$scopes\"}") ||
	die "POST /sim/self-client failed: $grant"
code=$(json_field code <<<"$grant") || die "no code in $grant"
"$vault" write zoho/config/demo client_id="$client_id" client_secret="$client_secret" \
	data_center=us accounts_url="$sim/us" scopes="$scopes" grant_code="$code" >/dev/null ||
	die "vault write zoho/config/demo failed"

# A second demo account, authorized through Zoho's device flow: Vault polls
# the simulator (every 2 s here, Zoho's 30 s in real life) while the user
# approves on the verification page, here with curl as a browser would.
say "creating the account device-demo through the device authorization flow"
dclient=$(http -X POST "$sim/sim/clients" -d '{"dc":"us"}') || die "POST /sim/clients failed: $dclient"
dclient_id=$(json_field client_id <<<"$dclient") || die "no client_id in $dclient"
dclient_secret=$(json_field client_secret <<<"$dclient") || die "no client_secret in $dclient"
"$vault" write zoho/config/device-demo client_id="$dclient_id" client_secret="$dclient_secret" \
	data_center=us accounts_url="$sim/us" scopes="$scopes" >/dev/null ||
	die "vault write zoho/config/device-demo failed"
device=$("$vault" write -format=json -f zoho/device/device-demo) || die "vault write -f zoho/device/device-demo failed"
user_code=$(json_field user_code <<<"$device") || die "no user_code in $device"
verification_url=$(json_field verification_url <<<"$device") || die "no verification_url in $device"
say "device-demo: the user enters $user_code at $verification_url and accepts"
http -o /dev/null --data-urlencode "user_code=$user_code" --data-urlencode decision=accept "$verification_url" ||
	die "accepting the device authorization on the verification page failed"
device_approved() { [[ "$("$vault" read -field=device_authorization zoho/status/device-demo)" == approved ]]; }
wait_until 30 "the device authorization of device-demo" "${pids[-1]}" device_approved
dcreds=$("$vault" read -format=json zoho/creds/device-demo) || die "vault read zoho/creds/device-demo failed"
dtoken=$(json_field access_token <<<"$dcreds") || die "no access_token in the creds of device-demo"
dapi=$(json_field api_domain <<<"$dcreds") || die "no api_domain in the creds of device-demo"
http -o /dev/null -H "Authorization: Zoho-oauthtoken $dtoken" "$dapi/whoami" ||
	die "the simulator rejected the token of device-demo"
say "device-demo was authorized through the device flow"

say "vault read zoho/creds/demo"
creds=$("$vault" read zoho/creds/demo) || die "vault read zoho/creds/demo failed"
printf '%s\n' "$creds"
token=$(awk '$1 == "access_token" { print $2 }' <<<"$creds")
api_domain=$(awk '$1 == "api_domain" { print $2 }' <<<"$creds")
[[ -n "$token" && -n "$api_domain" ]] || die "no access_token or api_domain in the creds"
answer=$(http -H "Authorization: Zoho-oauthtoken $token" "$api_domain/whoami") ||
	die "the simulator rejected the token: $answer"
say "the simulator's protected endpoint accepted the token: $answer"

say "creating the account browser, to authorize in a browser through Vault's callback"
callback="$VAULT_ADDR/v1/zoho/callback"
bclient=$(http -X POST "$sim/sim/clients" -d "{\"dc\":\"us\",\"redirect_uris\":[\"$callback\"]}") ||
	die "POST /sim/clients failed: $bclient"
bclient_id=$(json_field client_id <<<"$bclient") || die "no client_id in $bclient"
bclient_secret=$(json_field client_secret <<<"$bclient") || die "no client_secret in $bclient"
"$vault" write zoho/config/browser client_id="$bclient_id" client_secret="$bclient_secret" \
	data_center=us accounts_url="$sim/us" scopes="$scopes" redirect_uri="$callback" >/dev/null ||
	die "vault write zoho/config/browser failed"
auth_url=$("$vault" read -field=auth_url zoho/auth-url/browser) || die "vault read zoho/auth-url/browser failed"

# The alias only when `vault` on PATH is not the binary used here (-ef: the
# same file, whatever the path's spelling or symlinks).
alias_hint=""
if ! [[ "$(command -v vault 2>/dev/null)" -ef "$vault" ]]; then
	alias_hint="  alias vault=$vault"$'\n'
fi
cat <<EOT

The Zoho secrets engine is running; logs in $state/.
Try, in another shell:

${alias_hint}  export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root
  vault read zoho/creds/demo
  curl -H "Authorization: Zoho-oauthtoken \$(vault read -field=access_token zoho/creds/demo)" $api_domain/whoami
  vault read zoho/config/demo
  vault read zoho/status/device-demo
  vault write -f zoho/device/device-demo   # then open verification_url, enter user_code, Accept
  vault list zoho/status
  vault lease revoke -prefix zoho/creds/demo
  curl $sim/sim/counters

Consent in a browser: open this URL (valid 10 minutes; a fresh one comes from
\`vault read -field=auth_url zoho/auth-url/browser\`), click Accept on the
simulator's consent page, and Vault's callback stores the refresh token:

  $auth_url

  vault read zoho/creds/browser

EOT
if [[ -n "${DEV_NONINTERACTIVE:-}" ]]; then
	# What the newcomer does in a browser, with curl: answer the consent page,
	# follow the redirect to Vault's callback, read a token.
	page=$(http "$auth_url") || die "the consent page did not open: $page"
	consent_id=$(sed -n 's/.*name="consent_id" value="\([0-9a-f]*\)".*/\1/p' <<<"$page" | head -n1)
	[[ -n "$consent_id" ]] || die "no consent form at the auth URL"
	landed=$(http -L --data-urlencode "consent_id=$consent_id" --data-urlencode "user=demo@example.com" \
		--data-urlencode decision=accept "$sim/us/oauth/v2/auth/consent") || die "the consent did not reach Vault's callback: $landed"
	grep -q '<title>Authorized</title>' <<<"$landed" || die "Vault's callback did not authorize the account: $landed"
	btoken=$("$vault" read -field=access_token zoho/creds/browser) || die "vault read zoho/creds/browser failed"
	http -o /dev/null -H "Authorization: Zoho-oauthtoken $btoken" "$api_domain/whoami" ||
		die "the simulator rejected the token of the browser account"
	say "the browser account was authorized through the consent page and Vault's callback"
	say "DEV_NONINTERACTIVE is set: stopping"
	exit 0
fi
ready=1
say "press Ctrl-C to stop"
# Returns when either process exits (or on Ctrl-C, through the traps).
set +e
wait -n "${pids[@]}"
status=$?
set -e
for i in "${!pids[@]}"; do
	kill -0 "${pids[i]}" 2>/dev/null || die "${names[i]} exited unexpectedly (status $status)"
done
