#!/bin/bash
# run-fuzzers.sh -- CI fuzzing: builds every libFuzzer target (make fuzz, clang, its own build
# dir) and runs each for a bounded time on a temp copy of its seed corpus, two at a time.
# Prints one TAP line per target; a target fails on a non-zero exit, a crash/leak/timeout/OOM
# artifact or any sanitizer report in its log. Exit status 0 when all passed or skipped.
#
# Environment:
#   MCPGATE_FUZZ_SECONDS    seconds per target (default 45; 0 skips the whole run)
#   MCPGATE_FUZZ_JOBS       targets run at once (default 2)
#   MCPGATE_FUZZ_BUILD_DIR  build dir under the top dir (default build-fuzz)
#   MCPGATE_FUZZ_TARGETS    space-separated subset of target names (e.g. "fuzz_conf fuzz_url")
#   MCPGATE_FUZZ_RSS_MB     -rss_limit_mb (default 2048); MCPGATE_FUZZ_TIMEOUT: -timeout (default 10)
#   MCPGATE_FUZZ_CC         the compiler (default clang)
# Findings are copied to <build dir>/fuzz-findings/ and small ones printed as base64.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${MCPGATE_FUZZ_SECONDS:-45}
jobs=${MCPGATE_FUZZ_JOBS:-2}
build="$top/${MCPGATE_FUZZ_BUILD_DIR:-build-fuzz}"
rss=${MCPGATE_FUZZ_RSS_MB:-2048}
per_input=${MCPGATE_FUZZ_TIMEOUT:-10}
cc=${MCPGATE_FUZZ_CC:-clang}

case $secs in '' | *[!0-9]*) echo "1..1"; echo "not ok 1 - MCPGATE_FUZZ_SECONDS=$secs is not a number"; exit 1 ;; esac
if [ "$secs" -eq 0 ]; then
    echo "1..0 # SKIP fuzzing disabled (MCPGATE_FUZZ_SECONDS=0)"
    exit 0
fi

# clang with the libFuzzer runtime (Debian: clang and libclang-rt-14-dev).
probe=$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-fuzz-probe.XXXXXX") || exit 1
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! command -v "$cc" >/dev/null 2>&1 ||
    ! "$cc" -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >/dev/null 2>&1; then
    rm -rf "$probe"
    echo "1..0 # SKIP $cc with libFuzzer not available (apt-get install clang libclang-rt-14-dev)"
    exit 0
fi
rm -rf "$probe"

# Build (configure once per build dir; make fuzz is incremental).
if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
    (cd "$top" && autoreconf -fi >/dev/null 2>&1) || { echo "1..1"; echo "not ok 1 - autoreconf failed"; exit 1; }
fi
mkdir -p "$build" && cd "$build" || exit 1
if [ ! -f Makefile ] || ! grep -q -- '--enable-fuzzing' config.status 2>/dev/null; then
    CC=$cc "$top/configure" -q --enable-fuzzing >configure.out 2>&1 || {
        echo "1..1"; echo "not ok 1 - configure --enable-fuzzing failed"
        tail -20 configure.out | sed 's/^/# /'; exit 1
    }
fi
if ! make -j"$jobs" fuzz >make-fuzz.out 2>&1; then
    echo "1..1"; echo "not ok 1 - make fuzz failed"
    tail -40 make-fuzz.out | sed 's/^/# /'
    exit 1
fi
targets=$(printf 'mg-print-fuzz-targets:\n\t@echo $(FUZZ_TARGETS)\n' |
    make -s --no-print-directory -f Makefile -f - mg-print-fuzz-targets 2>/dev/null)

# Every tests/fuzz/fuzz_*.c must be a target of make fuzz.
missing=""
for src in "$top"/tests/fuzz/fuzz_*.c; do
    n=$(basename "$src" .c)
    case " $(for t in $targets; do printf '%s ' "$(basename "$t")"; done)" in
    *" $n "*) ;;
    *) missing="$missing $n" ;;
    esac
done

selected=""
for t in $targets; do
    n=$(basename "$t")
    if [ -n "${MCPGATE_FUZZ_TARGETS:-}" ]; then
        case " $MCPGATE_FUZZ_TARGETS " in *" $n "*) ;; *) continue ;; esac
    fi
    selected="$selected $t"
done
count=0
for _ in $selected $missing; do count=$((count + 1)); done
echo "1..$count"

work=$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-fuzz.XXXXXX") || exit 1
# shellcheck disable=SC2317
cleanup() {
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The conf dictionary is made from the directive table, so it never drifts from it.
{
    echo '# generated from src/conf/conf_keys.c by tests/fuzz/run-fuzzers.sh'
    sed -n 's/^    {"\([a-z_0-9]*\)", .*/kw_\1="\1 "/p' "$top/src/conf/conf_keys.c"
    printf '%s\n' 'lb="{"' 'rb="}"' 'semi=";"' 'q="\""' 'var="${"' 'def=":-"' 'hash="#"' \
        'include="include "' 'nl="\x0a"' 'route="route /mcp {"' 'on="on"' 'off="off"' 'k="16k"' \
        'm="1m"' 's="30s"' 'ms="500ms"' 'url="http://127.0.0.1:1/mcp"' 'listen="127.0.0.1:8080"'
} >"$work/conf.dict"

dict_for() {
    local c=$1
    if [ -f "$top/tests/fuzz/dict/$c.dict" ]; then echo "$top/tests/fuzz/dict/$c.dict"; return; fi
    case $c in
    conf) echo "$work/conf.dict" ;;
    http_request | http_response | chunked | path) echo "$top/tests/fuzz/dict/http.dict" ;;
    jsonrpc | jwks | jws) echo "$top/tests/fuzz/dict/json.dict" ;;
    *) echo "" ;;
    esac
}

export ASAN_OPTIONS="detect_leaks=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS=""

# run_one NAME BIN: the fuzzer's output goes to $work/NAME/log, its status to $work/NAME/rc.
run_one() {
    local n=$1 bin=$2 c=${1#fuzz_} d rc
    d="$work/$n"
    mkdir -p "$d/corpus" "$d/artifacts"
    [ -d "$top/tests/fuzz/corpus/$c" ] && cp -R "$top/tests/fuzz/corpus/$c/." "$d/corpus/"
    local dict
    dict=$(dict_for "$c")
    # -max_total_time bounds fuzzing; timeout(1) bounds everything else (start-up, a stuck
    # symbolizer) so that a run can never hold CI.
    timeout -k 10 $((secs + 120)) "$bin" -max_total_time="$secs" -rss_limit_mb="$rss" \
        -timeout="$per_input" -print_final_stats=1 -artifact_prefix="$d/artifacts/" \
        ${dict:+-dict="$dict"} "$d/corpus" >"$d/log" 2>&1
    rc=$?
    echo "$rc" >"$d/rc"
}

num=0
failed=0
report() {
    local n=$1 c=${1#fuzz_} d="$work/$1" rc why="" execs cov corp peak
    num=$((num + 1))
    rc=$(cat "$d/rc" 2>/dev/null || echo 99)
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$d/log" | tail -1)
    peak=$(sed -n 's/^stat::peak_rss_mb: *\([0-9]*\).*/\1/p' "$d/log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$d/log" | tail -1)
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' "$d/log" | tail -1)
    [ "$rc" -ne 0 ] && why="exit $rc"
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && why="did not finish within $((secs + 120)) s"
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error:|^SUMMARY: |==[0-9]+== ?ERROR' "$d/log"; then
        why="${why:+$why, }sanitizer/libFuzzer report"
    fi
    if [ -n "$(ls -A "$d/artifacts" 2>/dev/null)" ]; then
        why="${why:+$why, }artifact $(ls "$d/artifacts" | head -3 | tr '\n' ' ')"
    fi
    [ -d "$top/tests/fuzz/corpus/$c" ] || corp="${corp:-0} (no seed corpus)"
    local summary="${secs}s, ${execs:-?} execs, cov ${cov:-?}, corpus ${corp:-?}, peak ${peak:-?} MB"
    if [ -z "$why" ]; then
        echo "ok $num - $n: $summary"
    else
        failed=$((failed + 1))
        echo "not ok $num - $n: $why ($summary)"
        # The first report (30 lines), then libFuzzer's last words.
        awk '/ERROR: |runtime error:|==[0-9]+== *ERROR/ { on = 1 } on && n < 30 { print; n++ }' \
            "$d/log" | sed 's/^/# /'
        grep -E '^(artifact_prefix|Test unit written|SUMMARY: )' "$d/log" | head -5 | sed 's/^/# /'
        mkdir -p "$build/fuzz-findings/$n"
        cp -R "$d/log" "$d/artifacts/." "$build/fuzz-findings/$n/" 2>/dev/null
        for a in "$d"/artifacts/*; do
            [ -f "$a" ] || continue
            echo "# finding $(basename "$a") (kept in $build/fuzz-findings/$n/):"
            if [ "$(wc -c <"$a")" -le 4096 ]; then
                echo "#   base64: $(base64 -w0 "$a")"
            fi
        done
        echo "#   reproduce: $2 <file>"
    fi
}

# Two at a time: start one per free slot, report each as it finishes.
declare -A pid_of=()
declare -A bin_of=()
collect() {
    local k
    wait -n 2>/dev/null
    for k in "${!pid_of[@]}"; do
        if ! kill -0 "${pid_of[$k]}" 2>/dev/null; then
            wait "${pid_of[$k]}" 2>/dev/null
            unset "pid_of[$k]"
            report "$k" "${bin_of[$k]}"
        fi
    done
}
for t in $selected; do
    n=$(basename "$t")
    bin_of[$n]="$build/$t"
    while [ "${#pid_of[@]}" -ge "$jobs" ]; do collect; done
    run_one "$n" "$build/$t" &
    pid_of[$n]=$!
done
while [ "${#pid_of[@]}" -gt 0 ]; do collect; done
for n in $missing; do
    num=$((num + 1))
    failed=$((failed + 1))
    echo "not ok $num - $n: tests/fuzz/$n.c is not a target of make fuzz (add it to FUZZ_TARGETS)"
done
[ "$failed" -eq 0 ]
