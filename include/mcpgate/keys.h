/* keys.h -- the key manager: one per process, fetches and refreshes the issuers' key sets
 * (jwks_uri or discovery) on the main thread and installs them into every live generation.
 *
 * State is kept per key source (issuer URL + jwks_uri + ca_file + allow_http), not per
 * generation: a reload that keeps an issuer keeps its keys and its refresh schedule, and
 * never refetches (docs/keys.md). Issuers with jwks_file are not managed here: each
 * generation reads its file (src/core/gen.c).
 *
 * Threads: mg_keys_new, mg_keys_register, mg_keys_set_grace and mg_keys_free run on the main
 * thread, whose event base drives every fetch. mg_keys_unregister, mg_keys_kid_unknown,
 * mg_keys_ready and mg_keys_stats may be called from any thread (one internal mutex).
 */
#ifndef MCPGATE_KEYS_H
#define MCPGATE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpgate/conf.h"
#include "mcpgate/jwt.h"

struct event_base;

typedef struct mg_keys mg_keys_t;

/* A manager driven by <base> (the main thread's). NULL on allocation failure. */
mg_keys_t *mg_keys_new(struct event_base *base);
/* Cancel every fetch and free everything. Main thread, before <base> is freed; every
 * registration should be gone by then (leftovers are dropped). NULL-safe. */
void mg_keys_free(mg_keys_t *km);

/* How long /readyz may wait for first key sets (the newest configuration's startup_grace),
 * counted from mg_keys_new. */
void mg_keys_set_grace(mg_keys_t *km, uint32_t ms);

/* Main thread: <is> (built from <ci>, owned by the generation <owner>) gets its keys from
 * the manager from now on: at once when the source already has keys, else after the first
 * fetch, which this starts. The state's timing knobs follow the newest <ci>. Returns 0, or
 * -1 when out of memory. */
int mg_keys_register(mg_keys_t *km, const mg_conf_issuer_t *ci, mg_jwt_issuer_t *is,
                     const void *owner);
/* Any thread: forget every issuer object of <owner>. After it returns the manager never
 * touches them again (call it before freeing them). NULL-safe on <km>. */
void mg_keys_unregister(mg_keys_t *km, const void *owner);

typedef enum mg_keys_kid {
    MG_KEYS_KID_ABSENT = 0, /* known to be absent (or <is> is not managed): 401 */
    MG_KEYS_KID_PENDING,    /* a refetch is scheduled or running: 503 + Retry-After */
    MG_KEYS_KID_PRESENT,    /* the current set has it (it changed meanwhile): verify again */
} mg_keys_kid_t;

/* Any thread: a well-formed token for issuer object <is> named key <kid> (NULL: the header
 * had none) that its key set lacks. Asks for a refetch, single-flight and at most one per
 * kid_refetch_cooldown; kids still missing after a refetch are answered ABSENT for one
 * cooldown without asking again. For PENDING, *retry_after gets the seconds a client should
 * wait (>= 1). */
mg_keys_kid_t mg_keys_kid_unknown(mg_keys_t *km, mg_jwt_issuer_t *is, const char *kid,
                                  int *retry_after);

/* Any thread: a malloc'd copy of the introspection_endpoint the metadata of <is>'s source
 * advertised (RFC 8414 section 2), or NULL (not discovered yet, none advertised, or <is> not
 * managed). The caller frees it. */
char *mg_keys_introspection_endpoint(mg_keys_t *km, mg_jwt_issuer_t *is);

/* Any thread: true when every managed issuer in use has keys, or startup_grace has passed.
 * When false and <why> is not NULL, a short reason is written there. */
bool mg_keys_ready(mg_keys_t *km, char *why, size_t whylen);

/* Any thread: a copy of the authorization-server metadata document discovered for
 * <issuer_url> (for legacy_as_metadata), or NULL when there is none (a jwks_file or
 * jwks_uri issuer, or discovery has not succeeded yet). Malloc'd; *len its length. */
char *mg_keys_metadata(mg_keys_t *km, const char *issuer_url, size_t *len);

struct mg_metrics;
/* Main thread, before the first fetch: count fetches (mcpgate_jwks_fetches_total)
 * and keys (mcpgate_jwks_keys, mcpgate_jwks_age_seconds) in <m> (borrowed). */
void mg_keys_set_metrics(mg_keys_t *km, struct mg_metrics *m);

/* Per key source, for metrics and logs. */
typedef struct mg_keys_stats {
    char issuer[512];               /* the issuer URL (truncated if longer) */
    uint64_t fetch_ok;              /* key sets fetched and installed */
    uint64_t fetch_net_error;       /* DNS, connect, TLS, timeout, oversized or broken response */
    uint64_t fetch_http_error;      /* a status other than 200 */
    uint64_t fetch_bad_jwks;        /* not a JWKS, or no usable key in it */
    uint64_t fetch_discovery_error; /* metadata discovery failed */
    uint64_t kid_misses;            /* unknown-kid lookups (mg_keys_kid_unknown calls) */
    uint64_t kid_refetches;         /* fetches started because of an unknown kid */
    size_t nkeys;                   /* usable keys in the current set, 0 when none */
    int64_t age_ms;                 /* since the current set was fetched; -1 when none */
    bool stale;                     /* past its freshness lifetime (refresh failing) */
    size_t registrations;           /* issuer objects (of live generations) using it */
} mg_keys_stats_t;

/* Any thread: copy up to <max> entries into <out>; returns how many sources exist (may be
 * more than <max>). */
size_t mg_keys_stats(mg_keys_t *km, mg_keys_stats_t *out, size_t max);

#endif /* MCPGATE_KEYS_H */
