-- bench.lua -- wrk script for contrib/bench/run: POST a JSON-RPC tools/call with a bearer token.
--
-- BENCH_TOKENS  file with one access token per line (required). With one
--               line every request carries the same token (the cached-token
--               path); with many, each request takes the next one, so that a
--               gateway with an LRU cache smaller than the file never hits.
-- BENCH_PATH    request path (default /mcp).
-- BENCH_OUT     file the done() summary line is appended to (default stdout).
--
-- Every request is built once in init() and replayed, so the generator costs
-- the same for one token and for 20000, and is not the bottleneck.

local reqs = {}
local n = 0
local i = 0

local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":'
    .. '{"name":"echo","arguments":{"message":"hello from wrk"}}}'

function init(args)
    local path = os.getenv("BENCH_PATH") or "/mcp"
    local file = os.getenv("BENCH_TOKENS")
    assert(file, "BENCH_TOKENS is not set")
    for tok in io.lines(file) do
        if #tok > 0 then
            n = n + 1
            reqs[n] = wrk.format("POST", path, {
                ["Content-Type"] = "application/json",
                ["Accept"] = "application/json, text/event-stream",
                ["MCP-Protocol-Version"] = "2025-06-18",
                ["Authorization"] = "Bearer " .. tok,
            }, body)
        end
    end
    assert(n > 0, "no token in " .. file)
    -- Each wrk thread starts at its own offset in the list.
    math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
    i = math.random(n) - 1
end

function request()
    i = i % n + 1
    return reqs[i]
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    local line = string.format(
        "BENCH requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
            .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout)
    local out = os.getenv("BENCH_OUT")
    if out then
        local f = assert(io.open(out, "a"))
        f:write(line)
        f:close()
    else
        io.write(line)
    end
end
