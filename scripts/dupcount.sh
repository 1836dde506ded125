#!/bin/bash
# dupcount.sh: the duplicate finder's whole-tree pair count for revisions
# of this repository, as it is (the figure issue 10 set a goal for) and
# with every Go import block folded onto one line. The finder (the
# `duplicates` command of the development machines' tool library) says it
# passes import lines over, but it reads each line of a parenthesised Go
# import block as code, and matches them by shape (every line a quoted
# string), so any two files importing six or more packages can pair. The
# second figure is the duplication in the code itself.
#
#   scripts/dupcount.sh REV...      e.g. scripts/dupcount.sh 95af6fe HEAD
set -euo pipefail
command -v duplicates >/dev/null || { echo "dupcount.sh: needs the duplicates command on PATH" >&2; exit 2; }
[ $# -ge 1 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
top=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/pktengine-dups.XXXXXX)
trap 'rm -rf "$work"' EXIT
count() { duplicates --repo "$1" --seconds 120 | head -1 | cut -d' ' -f1; }
printf '%-10s %8s %14s %6s\n' rev pairs "imports folded" "Go lines"
for rev in "$@"; do
	d="$work/$rev"
	mkdir -p "$d/as-is" "$d/folded"
	git -C "$top" archive "$rev" | tar -x -C "$d/as-is"
	git -C "$top" archive "$rev" | tar -x -C "$d/folded"
	find "$d/folded" -name '*.go' -exec perl -0pi -e 's{\nimport \((.*?)\n\)}{my $b = $1; $b =~ s/\s*\n\s*/; /g; $b =~ s/^; //; "\nimport ($b)"}gse' {} +
	lines=$(find "$d/as-is" -name '*.go' -exec cat {} + | wc -l)
	printf '%-10s %8s %14s %6s\n' "$rev" "$(count "$d/as-is")" "$(count "$d/folded")" "$lines"
done
