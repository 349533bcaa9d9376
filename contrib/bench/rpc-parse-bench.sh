#!/bin/sh
# rpc-parse-bench.sh -- ns per mg_rpc_parse() of a tools/call, a tools/list and an initialize
# body (median of 3 rounds) beside the jansson reference; then, when valgrind is installed,
# callgrind instructions per parse (parse + free), which a loaded machine does not disturb.
# Usage: contrib/bench/rpc-parse-bench.sh [BUILD_DIR] [N]   (default: build, 200000)
set -eu
build=${1:-build}
n=${2:-200000}
bench="$build/contrib/bench/rpc-parse-bench"
[ -x "$bench" ] || { echo "rpc-parse-bench.sh: $bench not built (run make)" >&2; exit 1; }

echo "== rpc-parse-bench $n (ns per parse + free, median of 3 rounds, one thread)"
"$bench" "$n"

command -v valgrind >/dev/null 2>&1 || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
# Instructions of a run with 3 x 2000 parses minus one with 3 x 1000, over 3000:
# start-up and the first-call costs cancel out.
instr() {
    for k in 1000 2000; do
        valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$k" "$bench" "$k" "$@" \
            >/dev/null 2>&1 || { echo "?"; return; }
    done
    echo $((($(sed -n 's/^summary: *//p' "$tmp/cg.2000") - $(sed -n 's/^summary: *//p' "$tmp/cg.1000")) / 3000))
}
echo
echo "== callgrind: instructions per parse + free"
printf '%-12s %14s %14s\n' body mg_rpc_parse jansson_ref
for body in tools/call tools/list initialize; do
    printf '%-12s %14s %14s\n' "$body" "$(instr "$body")" "$(instr "$body" ref)"
done
