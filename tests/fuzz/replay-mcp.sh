#!/bin/sh
# replay-mcp.sh -- make check: replays the src/mcp fuzz corpora through the standalone drivers.
# Run from the top build directory by the automake test harness, which exports $srcdir.
set -u
srcdir=${srcdir:-.}
status=0
for target in jsonrpc sse bearer; do
    prog=./tests/fuzz/replay_$target
    corpus=$srcdir/tests/fuzz/corpus/$target
    if [ ! -x "$prog" ]; then
        echo "not ok - $prog not built"
        status=1
        continue
    fi
    if [ ! -d "$corpus" ]; then
        echo "not ok - $corpus missing"
        status=1
        continue
    fi
    if "$prog" "$corpus"; then
        echo "ok - $target"
    else
        echo "not ok - $target"
        status=1
    fi
done
exit $status
