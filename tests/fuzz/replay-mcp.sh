#!/bin/sh
# replay-mcp.sh -- make check: replays the src/mcp fuzz corpora through the standalone drivers.
exec sh "${srcdir:-.}/tests/fuzz/replay-targets.sh" jsonrpc jsonrpc_diff sse bearer
