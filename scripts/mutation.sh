#!/usr/bin/env bash
# Mutation testing of backend/ (the simulator, backend/zoho/zohosim, left
# out) with gremlins, pinned below and run from the Go module proxy.
#
#   scripts/mutation.sh                 every mutant of backend/ (hours: see docs/testing.md)
#   BASE=<commit> scripts/mutation.sh   only mutants on lines changed since BASE's merge
#                                       base with HEAD, uncommitted changes included
#   DRY=1 ...                           count the mutants, run none
#   FILES='<regexp>' ...                only files (paths under backend/) matching it
#   WORKERS=<n>                         mutants tested at once (default 1; 2 on a 2-CPU machine took 1 h 26 min for all)
#   OUT=<file>                          also write gremlins' JSON report there
#   FLAGS='<flags>'                     more gremlins unleash flags (word-split)
#   STATUSES=<letters>                  mutants listed: l lived, c not covered, t timed out,
#                                       k killed, v not viable, s skipped, r runnable
#                                       (default lctkvr: all but the skipped)
#
# gremlins copies the whole module into a work folder per worker, .cache/
# (a Vault build) and bin/ included; it runs here on a copy of the files git
# tracks or would track, so it copies only those and never touches the work
# tree. For BASE, git runs on this repository's history against that copy,
# relative to backend/ (gremlins names files relative to the folder it
# mutates, git diff relative to the repository: diff.relative makes them
# agree).
#
# Each mutant is tested with `go test -failfast` of its own package, with
# a timeout of three times the first (coverage) run of go test ./backend/...;
# the model test keeps its four fixed seeds (MODEL_SEEDS and MODEL_BASE are
# cleared).
set -euo pipefail

GREMLINS=${GREMLINS:-github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0}
GO=${GO:-go}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

stage="$(mktemp -d "${TMPDIR:-/tmp}/zoho-mutation-XXXXXX")"
trap 'rm -rf "$stage"' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
	[[ -e "$f" ]] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$stage"

# Everything but backend/ minus the simulator (paths relative to backend/).
exclude='^zoho/zohosim/'
# The mutators: gremlins' defaults (arithmetic, comparison boundaries and
# negations, ++/--, sign) and the inversions of && and ||, of break and
# continue, of += and -= (and the bitwise ones), and the removal of x op= y:
# every one a plausible one-token mistake. Left out: INVERT_BITWISE, which
# also turns & of &x into | (not a program).
args=(unleash --exclude-files "$exclude" --workers "${WORKERS:-1}"
	--invert-logical --invert-loopctrl --invert-assignments --invert-bwassign --remove-self-assignments
	--output-statuses "${STATUSES:-lctkvr}")
if [[ -n "${FILES:-}" ]]; then
	# gremlins can only exclude: leave out every Go file of backend/ that
	# does not match FILES.
	while IFS= read -r f; do
		rel="${f#backend/}"
		if [[ ! "$rel" =~ $FILES ]]; then
			args+=(--exclude-files "^${rel//./\\.}\$")
		fi
	done < <(git ls-files -co --exclude-standard 'backend/*.go' | grep -v -e '_test\.go$' -e '^backend/zoho/zohosim/')
fi
if [[ -n "${BASE:-}" ]]; then
	git rev-parse --verify --quiet "$BASE^{commit}" >/dev/null || { echo "mutation.sh: BASE=$BASE is not a commit" >&2; exit 2; }
	args+=(--diff "$BASE")
	GIT_DIR="$(git rev-parse --absolute-git-dir)"
	export GIT_DIR GIT_WORK_TREE="$stage" GIT_OPTIONAL_LOCKS=0
	export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=diff.relative GIT_CONFIG_VALUE_0=true
fi
[[ -n "${DRY:-}" ]] && args+=(--dry-run)
# shellcheck disable=SC2206 # FLAGS is a list of flags
[[ -n "${FLAGS:-}" ]] && args+=(${FLAGS})
[[ -n "${OUT:-}" ]] && args+=(--output "$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")")

cd "$stage/backend"
start=$(date +%s)
env -u MODEL_SEEDS -u MODEL_BASE "$GO" run "$GREMLINS" "${args[@]}"
echo "mutation.sh: $(($(date +%s) - start)) s in all"
