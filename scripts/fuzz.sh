#!/usr/bin/env bash
# Runs every Fuzz target in the module for the given time each (default 3s).
# go test -fuzz takes one target in one package at a time, so this walks them.
# bpf's FuzzTcpdump compares random filter expressions with tcpdump (one
# tcpdump run per input, so it runs some 200 inputs a second); without
# tcpdump it skips, except under CI=true.
set -euo pipefail
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."
status=0
for dir in $(go list -f '{{.Dir}}' ./...); do
	pkg=$(go list "$dir")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "== fuzz $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
			status=1
		fi
	done
done
exit $status
