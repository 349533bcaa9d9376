/* introspect.h -- private to src/core: RFC 7662 token introspection, one client and one result
 * cache per worker thread (docs/keys.md, "Opaque tokens").
 *
 * NOT THREAD-SAFE, by design: each worker owns its object, on its own event base; no other
 * thread touches it. The cache is keyed by SHA-256 of issuer URL and token (the token itself is
 * never stored) and bounded (with a redis block it is also shared in Redis); positive results live until min(exp, introspection_cache_ttl),
 * refusals for MG_INTROSPECT_NEGATIVE_TTL seconds; failures of the endpoint are not cached.
 */
#ifndef MCPGATE_CORE_INTROSPECT_H
#define MCPGATE_CORE_INTROSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core_int.h"

#define MG_INTROSPECT_MAX_ENTRIES 10000
#define MG_INTROSPECT_NEGATIVE_TTL 10 /* s: inactive or refused tokens */
#define MG_INTROSPECT_RETRY_AFTER 5   /* s: Retry-After when the endpoint failed */

typedef struct mg_introspect mg_introspect_t;
typedef struct mg_introspect_wait mg_introspect_wait_t;

struct mg_redis;
struct mg_metrics;
/* A client on <base> resolving with <dns> (borrowed; both must outlive it). With <redis>
 * (borrowed, NULL-able, on the same base) results are also shared there under
 * mg:introspect:<hex SHA-256(issuer, token)>, and looked up before the endpoint is asked
 * (docs/keys.md). <metrics> (borrowed, NULL-able) counts calls and cache lookups. NULL when
 * out of memory. */
mg_introspect_t *mg_introspect_new(struct event_base *base, struct evdns_base *dns,
                                   struct mg_redis *redis, struct mg_metrics *metrics);
/* Cancel every request in flight (their callbacks are never called) and free the cache.
 * NULL-safe. Call before <base> is freed. */
void mg_introspect_free(mg_introspect_t *in);

/* The result of a check that had to wait: <res> belongs to the callee, which takes
 * res->claims (mg_jwt_claims_free) when it wants them. */
typedef void (*mg_introspect_cb)(void *arg, mg_auth_result_t *res);

/* What one check needs to know; everything is borrowed for the duration of the call, except
 * <is> and <resource>, which must stay valid until the callback or mg_introspect_cancel
 * (the caller's generation reference keeps them). */
typedef struct mg_introspect_req {
    unsigned long serial;       /* the generation's: a newer one flushes the cache */
    const mg_conf_issuer_t *ci; /* credentials, ca_file, allow_http, ttl */
    mg_jwt_issuer_t *is;        /* the policy object the claims will name (and its leeway) */
    const char *endpoint;       /* the introspection URL (configured or discovered) */
    const char *resource;       /* the route's resource: must be in the token's aud */
    const char *token;
    size_t token_len;
    int64_t now; /* Unix time */
} mg_introspect_req_t;

/* Judge the token. Returns true with *out filled when the answer is known now (a cached
 * result); false when a request to the endpoint is running or was joined (identical tokens
 * share one request): then *wait is set and <cb>(<arg>, result) is called once, later, from
 * the event loop, unless mg_introspect_cancel(*wait) comes first. */
bool mg_introspect_check(mg_introspect_t *in, const mg_introspect_req_t *r, mg_auth_result_t *out,
                         mg_introspect_cb cb, void *arg, mg_introspect_wait_t **wait);

/* The caller is no longer interested (its connection is gone): the callback will not be
 * called. Must not be called from that wait's own callback. NULL-safe. */
void mg_introspect_cancel(mg_introspect_wait_t *wait);

typedef struct mg_introspect_stats {
    uint64_t calls;    /* requests sent to introspection endpoints */
    uint64_t failures; /* of which failed (network, status, bad response) */
    uint64_t hits;     /* answered from the cache */
    uint64_t joined;   /* waited for a request already running for the same token */
    uint64_t store_hits;   /* found in the shared (Redis) cache */
    uint64_t store_misses; /* not there (or Redis failed): the endpoint was asked */
    size_t entries;
} mg_introspect_stats_t;

void mg_introspect_stats(const mg_introspect_t *in, mg_introspect_stats_t *out);

#endif /* MCPGATE_CORE_INTROSPECT_H */
