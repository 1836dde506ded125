#!/bin/bash
# ab.sh: benchmarks of several revisions in one run, interleaved, so that
# a refactor's cost is measured against the code before it on the same
# machine in the same minutes (a shared machine's load moves between runs
# far more than a refactor should).
#
#   scripts/ab.sh [-r ROUNDS] [-b BENCH] [-t BENCHTIME] [-p PKG] REV...
#
# For each REV it builds PKG's test binary from a git worktree of that
# revision, then runs BENCH with every binary in turn, ROUNDS times, and
# prints the median [min..max] of every reported metric per revision.
# Lab benchmarks need root (they make network namespaces); CI=true makes
# them fail instead of skip.
#
# Example (the architecture refactor, issue 10):
#   sudo scripts/ab.sh -b '^BenchmarkEchoBatch$' 95af6fe a635ed0 main
#   sudo scripts/ab.sh -b '^BenchmarkLabEcho$/^(inline|port)$/^(v2|v3)$' -t 2s 95af6fe a635ed0 main
set -euo pipefail

rounds=5 bench='^BenchmarkEchoBatch$' benchtime=2s pkg=./engine
while getopts r:b:t:p: o; do
	case $o in
	r) rounds=$OPTARG ;;
	b) bench=$OPTARG ;;
	t) benchtime=$OPTARG ;;
	p) pkg=$OPTARG ;;
	*) sed -n '2,16p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then
	sed -n '2,16p' "$0" >&2
	exit 2
fi

top=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/pktengine-ab.XXXXXX)
cleanup() {
	for d in "$work"/tree-*; do
		[ -d "$d" ] && git -C "$top" worktree remove --force "$d" >/dev/null 2>&1 || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

revs=()
for rev in "$@"; do
	short=$(git -C "$top" rev-parse --short "$rev")
	git -C "$top" worktree add --detach "$work/tree-$short" "$rev" >/dev/null 2>&1
	(cd "$work/tree-$short" && go test -c -o "$work/$short.test" "$pkg")
	revs+=("$short")
	echo "built $rev ($short)" >&2
done

# The benchmarks run in the package's directory, as go test runs them.
dir=$top/${pkg#./}
for r in $(seq "$rounds"); do
	for short in "${revs[@]}"; do
		echo "== round $r $short" >&2
		(cd "$dir" && "$work/$short.test" -test.run '^$' -test.bench "$bench" \
			-test.benchtime "$benchtime" -test.count 1) |
			grep -E '^Benchmark' | sed "s/^/$short /" | tee -a "$work/all.txt" >&2
	done
done

# Median [min..max] of every "value unit" pair a benchmark line reports.
python3 - "$work/all.txt" "${revs[@]}" <<'EOF'
import collections, statistics, sys
path, revs = sys.argv[1], sys.argv[2:]
vals = collections.defaultdict(list)
for line in open(path):
    f = line.split()
    rev, name = f[0], f[1]
    for v, unit in zip(f[3::2], f[4::2]):
        try:
            vals[(name, unit, rev)].append(float(v))
        except ValueError:
            pass
keys = sorted({(n, u) for n, u, _ in vals})
for name, unit in keys:
    cells = []
    for rev in revs:
        xs = vals.get((name, unit, rev))
        if xs:
            cells.append(f"{rev} {statistics.median(xs):.4g} [{min(xs):.4g}..{max(xs):.4g}]")
    print(f"{name} {unit}: " + " | ".join(cells))
EOF
