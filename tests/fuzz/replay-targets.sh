#!/bin/sh
# replay-targets.sh TARGET... -- replays tests/fuzz/corpus/TARGET through the standalone
# driver ./tests/fuzz/replay_TARGET for each TARGET (make check; see replay-http.sh,
# replay-mcp.sh). Run from the top build directory; $srcdir is exported by automake.
set -u
srcdir=${srcdir:-.}
status=0
for target in "$@"; do
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
