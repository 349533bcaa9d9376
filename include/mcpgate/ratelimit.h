/* ratelimit.h -- GCRA rate limits: exact across replicas via one Redis script, or in-process. */
#ifndef MCPGATE_RATELIMIT_H
#define MCPGATE_RATELIMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpgate/redis.h"

#define MG_RL_ID_DIGEST_LEN 16
#define MG_RL_REDIS_KEY_SIZE 80 /* "mg:rl:{<16 hex>}:<kind, 16 at most>:<32 hex>" and a NUL */

/* A bucket's identity worked out once (mg_rl_key_resolve) for a key that comes
 * back request after request (the subject of a cached token): the limiters
 * then neither hash nor format it again. Plain data, no pointers. */
typedef struct mg_rl_resolved {
    uint8_t digest[MG_RL_ID_DIGEST_LEN]; /* SHA-256(scope, kind, id, interval, burst), truncated */
    uint64_t emission_interval_us;       /* what it was resolved for: checked against the key */
    uint32_t burst;
    uint8_t redis_key_len;
    char redis_key[MG_RL_REDIS_KEY_SIZE]; /* mg_rl_redis_key(), NUL-terminated */
} mg_rl_resolved_t;

/* One limit that applies to a request. "COUNT/PERIOD burst B" is
 * emission_interval_us = PERIOD / COUNT and burst = B: an idle bucket admits
 * B requests back to back, then one per emission interval (GCRA; see
 * docs/redis.md). Without an explicit burst the config module should use
 * burst = COUNT. Strings are borrowed for the duration of the call only. */
typedef struct mg_rl_key {
    const char *kind;              /* "subject", "client", "route", "tool", ... ([a-z_]) */
    const char *id;                /* already combined, e.g. iss + "\n" + sub; any bytes but NUL */
    uint64_t emission_interval_us; /* >= 1 */
    uint32_t burst;                /* >= 1 */
    /* Optional (NULL: worked out per call): mg_rl_key_resolve() of this very key
     * with the scope of the check. The caller vouches for scope, kind and id;
     * a resolution made for another interval or burst is ignored. */
    const mg_rl_resolved_t *resolved;
} mg_rl_key_t;

#define MG_RL_MAX_KEYS 16
/* burst * emission_interval_us must not exceed this (about 35 years). */
#define MG_RL_MAX_WINDOW_US (UINT64_C(1) << 50)

/* Convenience: "count per period_ms" as an emission interval (rounded up). */
uint64_t mg_rl_interval_us(uint32_t count, uint64_t period_ms);

typedef enum mg_rl_decision {
    MG_RL_ALLOWED = 0,
    MG_RL_LIMITED = 1,     /* 429: retry_after_ms says when */
    MG_RL_UNAVAILABLE = 2, /* on_failure deny and Redis failed: 503 + Retry-After */
    MG_RL_INVALID = 3,     /* bad keys (n == 0, n > MG_RL_MAX_KEYS, interval/burst out of range) */
} mg_rl_decision_t;

typedef enum mg_rl_source {
    MG_RL_SRC_REDIS = 0,
    MG_RL_SRC_LOCAL = 1, /* the in-process limiter (embedded mode, or on_failure local) */
    MG_RL_SRC_NONE = 2,  /* nothing decided: on_failure allow/deny, or invalid input */
} mg_rl_source_t;

typedef struct mg_rl_result {
    mg_rl_decision_t decision;
    mg_rl_source_t source;
    uint64_t retry_after_ms; /* LIMITED: wait at least this; UNAVAILABLE: suggested Retry-After */
    /* For RateLimit headers, about the most restrictive limit: when allowed,
     * the one with the fewest remaining requests; when limited, the one that
     * needs the longest wait. Zero when source is NONE. */
    int index;          /* index into the keys array, -1 if none */
    uint32_t limit;     /* its burst */
    uint32_t remaining; /* requests it would still admit right now */
    uint64_t reset_ms;  /* until it is back to full burst */
    /* Why Redis could not decide (the policy then did): MG_REDIS_OK when it
     * decided, or for the in-process limiter. For the metrics. */
    mg_redis_err_t redis_err;
} mg_rl_result_t;

/* ---- in-process limiter (embedded default; fallback for on_failure local) ----
 * One per process, shared by all workers: every call locks one mutex. Exact
 * for one process. Holds at most max_entries buckets: when full, buckets that
 * are already full again (stale) are dropped first, then those with the least
 * debt. Also holds the process-wide failure counters below. */
typedef struct mg_rl_local mg_rl_local_t;

mg_rl_local_t *mg_rl_local_new(size_t max_entries); /* 0: default 100000 */
void mg_rl_local_free(mg_rl_local_t *l);            /* NULL-safe; no check may be running */

/* Check and (if all admit) consume: all-or-nothing over the n keys. <scope>
 * names the key space (the route; NULL = ""), see mg_ratelimit_check().
 * Synchronous; any thread. Returns result->decision. */
mg_rl_decision_t mg_rl_local_check(mg_rl_local_t *l, const char *scope, const mg_rl_key_t *keys,
                                   size_t n, mg_rl_result_t *result);
/* Same at an explicit time (microseconds on any monotonic scale): for tests. */
mg_rl_decision_t mg_rl_local_check_at(mg_rl_local_t *l, const char *scope, const mg_rl_key_t *keys,
                                      size_t n, uint64_t now_us, mg_rl_result_t *result);
size_t mg_rl_local_size(mg_rl_local_t *l);

/* Process-wide counters, atomics readable from any thread (the metrics module). */
typedef struct mg_rl_counters {
    _Atomic uint64_t checks;    /* mg_ratelimit_check() calls */
    _Atomic uint64_t errors;    /* Redis could not decide (any reason, timeouts included) */
    _Atomic uint64_t timeouts;  /* ... of which timeouts */
    _Atomic uint64_t fallbacks; /* decided by the in-process limiter instead of Redis */
    _Atomic uint64_t denied_unavailable; /* on_failure deny */
    _Atomic uint64_t allowed_unchecked;  /* on_failure allow */
    _Atomic int64_t last_log_s;          /* internal: rate-limits the failure log line */
} mg_rl_counters_t;
mg_rl_counters_t *mg_rl_local_counters(mg_rl_local_t *l);

/* ---- Redis limiter: one per worker thread, on that worker's Redis client ---- */
typedef struct mg_ratelimit mg_ratelimit_t;

/* <redis> and <local> are borrowed and must outlive the limiter. The failure
 * policy is redis's conf->on_failure. Registers the GCRA script with <redis>. */
mg_ratelimit_t *mg_ratelimit_new(mg_redis_t *redis, mg_rl_local_t *local);
/* In-flight checks are completed (by the failure policy) before this returns. NULL-safe. */
void mg_ratelimit_free(mg_ratelimit_t *rl);

/* Called exactly once per check, from the event loop, never from inside
 * mg_ratelimit_check(). <res> is valid during the callback only. */
typedef void mg_rl_cb(void *arg, const mg_rl_result_t *res);

/* Check all n limits of one request in one Redis round trip, atomically and
 * all-or-nothing: if any bucket refuses, none is updated. On Redis error,
 * timeout or not-ready the policy decides (local/deny/allow); no check waits
 * longer than the client's timeout_ms. All keys of one call share the Redis
 * Cluster hash tag derived from <scope> (the route name; NULL = ""), so they
 * live in one slot; a bucket is identified by (scope, kind, id, interval,
 * burst). Keys and strings are copied before return. Returns 0, or -1 (the
 * callback is then never called) when the keys are invalid (see
 * MG_RL_INVALID: validate limits when loading the configuration), memory is
 * exhausted or the Redis client is being freed. Pass each bucket once per call. */
int mg_ratelimit_check(mg_ratelimit_t *rl, const char *scope, const mg_rl_key_t *keys, size_t n,
                       mg_rl_cb *cb, void *arg);

const char *mg_rl_decision_name(mg_rl_decision_t d);

/* The Redis key a bucket is stored under (for tests and operators):
 * "mg:rl:{<16 hex>}:<kind>:<32 hex>". Returns the length, or -1 if too small. */
int mg_rl_redis_key(const char *scope, const mg_rl_key_t *key, char *buf, size_t size);

/* Resolve <key> for checks under <scope> (NULL = "") into <out>: its digest
 * and Redis key, as the limiters would compute them. 0, or -1 when the key is
 * invalid (see MG_RL_INVALID). key->resolved is not looked at. */
int mg_rl_key_resolve(const char *scope, const mg_rl_key_t *key, mg_rl_resolved_t *out);

#endif /* MCPGATE_RATELIMIT_H */
