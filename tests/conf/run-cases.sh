#!/bin/sh
# run-cases.sh -- make check: config files that must load and files that must fail.
#
# Runs from the top build directory (as make check does). It cds to
# $srcdir/tests/conf and loads each case by its path relative to that
# directory, so error messages read "fail/NAME.conf:LINE: ...", and each
# fail/NAME.expect holds one line written that way; the case passes when the
# loader exits 1 and prints a line exactly equal to it. Files under
# ok/inc/ and fail/inc/ are only reached through include.
# Environment for the ${VAR} cases: MCPGATE_TEST_PORT is set, MCPGATE_TEST_EMPTY
# is set and empty, MCPGATE_TEST_UNSET is unset.
set -u
top=$(pwd)
load="$top/tests/conf/conf_load"
src="${srcdir:-.}"
n=0
nfail=0

pass() { n=$((n + 1)); echo "ok $n - $1"; }
fail() {
    n=$((n + 1)); nfail=$((nfail + 1)); echo "not ok $n - $1"
    [ -n "$2" ] && printf '%s\n' "$2" | sed 's/^/# /'
}

export MCPGATE_TEST_PORT=18080 MCPGATE_TEST_EMPTY=
unset MCPGATE_TEST_UNSET

# The shipped example must load as it is.
if out=$("$load" "$src/etc/mcpgate.conf" 2>&1); then pass "etc/mcpgate.conf"; else
    fail "etc/mcpgate.conf" "$out"; fi

cd "$src/tests/conf" || exit 99
# git keeps no modes but the executable bit: the secret-file cases need exactly 0644
chmod 0644 fail/inc/secret-loose.inc fail/secret-top-mode.conf 2>/dev/null
for f in ok/*.conf; do
    if out=$("$load" "$f" 2>&1) && [ -z "$out" ]; then pass "$f"; else fail "$f" "$out"; fi
done
for f in fail/*.conf; do
    exp="${f%.conf}.expect"
    if [ ! -f "$exp" ]; then fail "$f" "missing $exp"; continue; fi
    out=$("$load" "$f" 2>&1)
    rc=$?
    if [ "$rc" -eq 1 ] && [ -s "$exp" ] && printf '%s\n' "$out" | grep -Fxq -f "$exp"; then
        pass "$f"
    else
        fail "$f" "exit $rc, expected a line: $(cat "$exp")
got:
$out"
    fi
done
echo "1..$n"
[ "$nfail" -eq 0 ]
