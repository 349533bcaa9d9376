#!/bin/sh
# replay-http.sh -- make check: replays the src/http fuzz corpora through the standalone drivers.
exec sh "${srcdir:-.}/tests/fuzz/replay-targets.sh" http_request http_response chunked path
