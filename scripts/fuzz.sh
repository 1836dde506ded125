#!/usr/bin/env bash
# Runs every Fuzz target in the module for the given time each (default 3s).
# go test -fuzz takes one target in one package at a time, so this walks them.
# bpf's FuzzTcpdump compares random filter expressions with tcpdump (one
# tcpdump run per input, so it runs some 200 inputs a second); without
# tcpdump it skips, except under CI=true.
#
# Go 1.26's fuzzing coordinator can report a bare "context deadline
# exceeded" failure as -fuzztime runs out, with no failing input: its stop
# races the deadline (go.dev/issue/75804, fixed in Go 1.27). A target that
# fails that way and writes no input to testdata/fuzz/ is reported as that
# race, not as a failure; a failing input always fails the run.
set -euo pipefail
shopt -s nullglob
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for dir in $(go list -f '{{.Dir}}' ./...); do
	pkg=$(go list "$dir")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "== fuzz $pkg $target ($fuzztime)"
		inputs=("$dir/testdata/fuzz/$target"/*)
		before=${#inputs[@]}
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; then
			continue
		fi
		inputs=("$dir/testdata/fuzz/$target"/*)
		after=${#inputs[@]}
		if [ "$after" -eq "$before" ] && grep -qx '    context deadline exceeded' "$log" &&
			[ "$(grep -c -- '--- FAIL' "$log")" -eq 1 ]; then
			echo "== fuzz $pkg $target: no failing input; the coordinator's deadline race (go.dev/issue/75804), not a failure"
			continue
		fi
		status=1
	done
done
exit $status
