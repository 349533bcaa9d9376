#!/bin/sh
# replay-url.sh -- make check: replays the URL fuzz corpus through the standalone driver.
# Run from the top build directory by the automake test harness, which exports $srcdir.
set -u
srcdir=${srcdir:-.}
prog=./tests/fuzz/replay_url
corpus=$srcdir/tests/fuzz/corpus/url
[ -x "$prog" ] || { echo "not ok - $prog not built"; exit 1; }
[ -d "$corpus" ] || { echo "not ok - $corpus missing"; exit 1; }
if "$prog" "$corpus"; then
    echo "ok - url"
else
    echo "not ok - url"
    exit 1
fi
