/* ratelimit_lua.c -- the GCRA Lua script run by Redis: all limits of one request, atomically. */
#include "config.h"

#include "store_int.h"

/*
 * KEYS[i]   bucket i; its value is the theoretical arrival time (TAT) in
 *           microseconds of the server clock, as a decimal integer string.
 * ARGV[2i-1] emission interval T in microseconds; ARGV[2i] burst B.
 *
 * An arrival at `now` is admitted by bucket i when
 *     max(TAT, now) + T - now <= B * T
 * All buckets are checked first; only if every one admits are they written
 * (all-or-nothing), each with PX set to the time until it is full again,
 * after which a missing key means exactly the same as the stored one.
 *
 * Returns {allowed, retry_after_us, index, remaining, reset_us}: index
 * (1-based) is the most restrictive bucket: when allowed, the one with the
 * fewest remaining (ties: the longest reset); when refused, the one needing
 * the longest wait, and retry_after_us is that wait (every bucket admits after it).
 *
 * TIME makes the script non-deterministic: Redis >= 5 replicates effects,
 * and replicate_commands() switches that on for older servers (a no-op
 * since Redis 7). Numbers stay below 2^53, exact in Lua doubles.
 */
const char mg_rl_gcra_lua[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local n = #KEYS\n"
    "local newtat = {}\n"
    "local retry, retry_i, retry_reset = -1, 0, 0\n"
    "local rem, rem_i, rem_reset = -1, 0, 0\n"
    "for i = 1, n do\n"
    "  local T = tonumber(ARGV[2 * i - 1])\n"
    "  local B = tonumber(ARGV[2 * i])\n"
    "  local v = redis.call('GET', KEYS[i])\n"
    "  local tat = now\n"
    "  if v then tat = tonumber(v) or now end\n"
    "  if tat < now then tat = now end\n"
    "  local nt = tat + T\n"
    "  local cap = B * T\n"
    "  if nt - now > cap then\n"
    "    local w = nt - now - cap\n"
    "    if w > retry then retry, retry_i, retry_reset = w, i, tat - now end\n"
    "  else\n"
    "    newtat[i] = nt\n"
    "    local r = math.floor((cap - (nt - now)) / T)\n"
    "    if rem < 0 or r < rem or (r == rem and nt - now > rem_reset) then\n"
    "      rem, rem_i, rem_reset = r, i, nt - now\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if retry >= 0 then return {0, retry, retry_i, 0, retry_reset} end\n"
    "for i = 1, n do\n"
    "  local ttl = math.ceil((newtat[i] - now) / 1000)\n"
    "  if ttl < 1 then ttl = 1 end\n"
    "  redis.call('SET', KEYS[i], string.format('%.0f', newtat[i]), 'PX', ttl)\n"
    "end\n"
    "return {1, 0, rem_i, rem, rem_reset}\n";
