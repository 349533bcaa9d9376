#!/bin/sh
# tests/integration/run.sh -- make check's entry to the integration suite: the
# node:test files in tests/integration against the gateway just built, with
# real components on loopback. Skipped (exit 77) when node or the pinned npm
# packages are missing: `cd tests && npm ci` installs them (tests/run does).
#
# Environment: MCPGATE_TEST_FILTER (a --test-name-pattern), MCPGATE_TEST_CONCURRENCY (2).
src=$(cd "${srcdir:-.}/tests" 2>/dev/null && pwd)
build=$(pwd)
if ! command -v node >/dev/null 2>&1; then
    echo "1..0 # SKIP node is not installed"
    exit 77
fi
if [ -z "$src" ] || [ ! -d "$src/node_modules/@modelcontextprotocol/server-everything" ]; then
    echo "1..0 # SKIP npm packages missing: cd tests && npm ci"
    exit 77
fi
cd "$src" || exit 1
# The TAP summary ("# pass N", "# fail N") is what tests/run counts.
MCPGATE_BIN="$build/mcpgate" MCPGATE_TOKEN_BIN="$build/mcpgate-token" \
    exec node --test --test-concurrency="${MCPGATE_TEST_CONCURRENCY:-2}" --test-timeout=120000 \
    ${MCPGATE_TEST_FILTER:+--test-name-pattern="$MCPGATE_TEST_FILTER"} \
    --test-reporter=tap integration/*.test.mjs
