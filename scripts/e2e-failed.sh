#!/usr/bin/env bash
# Prints the whole output of the tests that failed in a `go test -v` log
# (make e2e shows only the summary lines; CI needs the rest to diagnose).
set -euo pipefail
log="${1:-.e2e.log}"
[[ -f "$log" ]] || exit 0
awk '
	FNR == NR {
		if ($1 == "---" && $2 == "FAIL:") failed[$3] = 1
		next
	}
	$1 == "===" && ($2 == "RUN" || $2 == "CONT" || $2 == "NAME" || $2 == "PAUSE") { cur = $3; split(cur, parts, "/"); top = parts[1] }
	$1 == "---" { split($3, parts, "/"); top = parts[1] }
	top in failed && shown[top]++ < 2000 { print }
' "$log" "$log"
