#!/bin/sh
# http-parse-bench.sh -- ns per request head and per response head (http-parse-bench),
# RUNS times per build, builds interleaved run by run so that load on a shared
# machine hits them alike; prints every run and the median per build.
# Usage: contrib/bench/http-parse-bench.sh [BUILD_DIR ...]   (default: build)
# Environment: RUNS (default 3), ITERS per round (default 200000), ROUNDS (default 9).
# To compare with an older tree, build its libmcpgate.a and the bench in a second
# build dir and name both: contrib/bench/http-parse-bench.sh build-before build
set -eu
runs=${RUNS:-3}
iters=${ITERS:-200000}
rounds=${ROUNDS:-9}
[ $# -gt 0 ] || set -- build
for b in "$@"; do
    [ -x "$b/contrib/bench/http-parse-bench" ] ||
        { echo "http-parse-bench.sh: $b/contrib/bench/http-parse-bench not built (run make)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

i=1
while [ "$i" -le "$runs" ]; do
    n=0
    for b in "$@"; do
        n=$((n + 1))
        "$b/contrib/bench/http-parse-bench" "$iters" "$rounds" >"$tmp/out"
        awk -v b="$b" -v r="$i" '$1 == "request" || $1 == "response" {
            printf "run %d  %-24s %-8s %8.1f ns/head\n", r, b, $1, $4 }' "$tmp/out" |
            tee -a "$tmp/all.$n"
    done
    i=$((i + 1))
done
echo
echo "== median of $runs runs (each the median of $rounds rounds of $iters heads)"
n=0
for b in "$@"; do
    n=$((n + 1))
    for kind in request response; do
        awk -v k="$kind" '$4 == k { print $5 }' "$tmp/all.$n" | sort -n |
            awk -v b="$b" -v k="$kind" '{ v[NR] = $1 } END {
                printf "%-24s %-8s %8.1f ns/head\n", b, k, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    done
done
