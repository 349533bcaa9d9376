#!/bin/sh
# replay-conf.sh -- make check: run every seed in tests/fuzz/corpus/conf through fuzz_conf.
exec ./fuzz_conf_replay "${srcdir:-.}/tests/fuzz/corpus/conf"
