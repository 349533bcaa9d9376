/* metrics.h -- Prometheus metrics: a lock-free registry of labelled series and the gateway's
 * families.
 *
 * Two layers:
 *
 *  1. A generic registry (mg_metric_reg_t): families of counters, gauges and
 *     histograms with up to MG_METRIC_MAX_LABELS label names, rendered in the
 *     Prometheus text exposition format 0.0.4.
 *  2. The gateway's own families (mg_metrics_t, declared below in one place),
 *     with helpers that normalise label values so that their set stays bounded.
 *
 * Threads. Families are created single-threaded, before any worker starts
 * (mg_metrics_new() does all of it). After that, every function below may be
 * called from any thread at the same time:
 *  - looking up a label set that already exists is lock-free (an open-addressing
 *    table whose slots are published once with a release store and never change);
 *  - the first use of a new label set takes the family's mutex once to insert it
 *    (at most max_series times in the registry's life);
 *  - increments, sets and observations are relaxed atomic operations on the series;
 *  - rendering reads the same atomics. A scrape is not a snapshot: a histogram's
 *    _count is computed from its buckets so the two always agree, its _sum may
 *    lag by an observation in flight.
 *
 * Cardinality. Each family has a cap on its number of series (max_series).
 * Once a family holds that many, any new label set is counted in one overflow
 * series whose every label is "other" (created with the family, so it does not
 * count against the cap). Hostile input therefore cannot grow memory: labels
 * are meant to come from the configuration (routes, issuers), from numbers
 * (status) or from fixed code lists (methods, reasons), and the gateway helpers
 * below map anything else to "other" before the cap is even reached. Series
 * are never removed (counters must stay monotonic): a route removed by a
 * reload keeps its series until restart, which the cap also bounds.
 *
 * Ownership: the registry owns its families and series. Handles returned by
 * mg_metric_family_new() and mg_metric_get() stay valid until
 * mg_metric_reg_free(), which must be called only after every thread that
 * uses them has stopped. Strings passed in are copied.
 */
#ifndef MCPGATE_METRICS_H
#define MCPGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* ---- generic registry ---- */

typedef enum mg_metric_type {
    MG_METRIC_COUNTER = 0,   /* monotonic uint64 */
    MG_METRIC_GAUGE = 1,     /* int64, set or added to */
    MG_METRIC_HISTOGRAM = 2, /* observations in seconds, fixed upper bounds */
    MG_METRIC_GAUGE_AGE = 3, /* exposed as a gauge: seconds since the stored
                                CLOCK_REALTIME timestamp, computed at scrape time
                                (set with mg_metric_touch()) */
} mg_metric_type_t;

#define MG_METRIC_MAX_LABELS 4
#define MG_METRIC_MAX_BUCKETS 32
/* Label values longer than this are cut (on a UTF-8 boundary) before lookup. */
#define MG_METRIC_MAX_VALUE_LEN 256
/* The value of every label in a family's overflow series. */
#define MG_METRIC_OTHER "other"

typedef struct mg_metric_reg mg_metric_reg_t;
typedef struct mg_metric_family mg_metric_family_t;
typedef struct mg_metric mg_metric_t; /* one series: a family + one set of label values */

/* NULL on allocation failure. mg_metric_reg_free() is NULL-safe. */
mg_metric_reg_t *mg_metric_reg_new(void);
void mg_metric_reg_free(mg_metric_reg_t *reg);

/* Declare a family. <name> must match [a-zA-Z_:][a-zA-Z0-9_:]* and be unique
 * in the registry; <labels> is a NULL-terminated list of label names
 * ([a-zA-Z_][a-zA-Z0-9_]*, not "le", not starting with "__"), or NULL for none;
 * <help> is any text (escaped on output). For histograms, <buckets> lists
 * <nbuckets> strictly increasing finite upper bounds in seconds (+Inf is
 * implicit); they are ignored for other types. <max_series> caps the number
 * of distinct label sets (ignored, and 1, for a family without labels).
 * Returns NULL on a bad argument or allocation failure. Not thread-safe: call
 * before the workers start. */
mg_metric_family_t *mg_metric_family_new(mg_metric_reg_t *reg, mg_metric_type_t type,
                                         const char *name, const char *help,
                                         const char *const *labels, size_t max_series,
                                         const double *buckets, size_t nbuckets);

/* The series for <values> (one per label name, in order; NULL counts as "").
 * Never NULL: past the cap, or if memory runs out, the overflow series is
 * returned. For a family without labels pass NULL. The handle may be cached
 * by the caller for the registry's lifetime (e.g. per route, per generation). */
mg_metric_t *mg_metric_get(mg_metric_family_t *fam, const char *const *values);

/* Hot-path operations; NULL-safe (a NULL series is ignored), relaxed atomics.
 * add/inc apply to counters and gauges, set to gauges, observe to histograms,
 * touch to GAUGE_AGE (stores "now"). Using the wrong one for the type is a
 * no-op. A negative or NaN observation counts as 0. */
void mg_metric_inc(mg_metric_t *m);
void mg_metric_add(mg_metric_t *m, int64_t delta);
void mg_metric_set(mg_metric_t *m, int64_t value);
void mg_metric_observe(mg_metric_t *m, double seconds);
void mg_metric_observe_ns(mg_metric_t *m, uint64_t ns);
void mg_metric_touch(mg_metric_t *m);
/* For tests and the age gauge: store an explicit CLOCK_REALTIME time in ms. */
void mg_metric_set_time_ms(mg_metric_t *m, int64_t unix_ms);

/* Read back (tests): a counter's or gauge's value, a histogram's count. */
int64_t mg_metric_value(const mg_metric_t *m);

/* Render every family in the text exposition format 0.0.4
 * (Content-Type: text/plain; version=0.0.4; charset=utf-8): families sorted by
 * name, series sorted by label values (byte order), # HELP and # TYPE before
 * each family, label values escaped (\\, \", \n), histograms as _bucket{le=...}
 * (cumulative, ending with le="+Inf"), _sum and _count. A family with no
 * series yet still gets its HELP/TYPE lines. Returns a malloc'd NUL-terminated
 * string (the caller frees it) and its length in *len; NULL on allocation
 * failure. <now_ms> is the CLOCK_REALTIME time used for GAUGE_AGE families;
 * 0 means "read the clock". */
char *mg_metric_reg_render(mg_metric_reg_t *reg, int64_t now_ms, size_t *len);

/* The number of series a family holds, including its overflow series once used. */
size_t mg_metric_family_size(const mg_metric_family_t *fam);

/* ---- the gateway's families ----
 *
 * name                                  type       labels
 * mcpgate_requests_total                counter    route, method, status
 * mcpgate_auth_decisions_total          counter    route, decision, reason
 * mcpgate_rate_limited_total            counter    route, key_kind
 * mcpgate_upstream_duration_seconds     histogram  route
 * mcpgate_upstream_errors_total         counter    route, kind
 * mcpgate_jwks_fetches_total            counter    issuer, result
 * mcpgate_jwks_keys                     gauge      issuer
 * mcpgate_jwks_age_seconds              gauge      issuer   (age of the key set in use)
 * mcpgate_jwks_unknown_kid_total        counter    issuer   (well-formed tokens naming a kid
 *                                                            the key set lacked)
 * mcpgate_jwks_kid_refetches_total      counter    issuer   (fetches an unknown kid started)
 * mcpgate_introspection_requests_total  counter    issuer, result
 * mcpgate_introspection_cache_hits_total   counter store    (memory, redis)
 * mcpgate_introspection_cache_misses_total counter store
 * mcpgate_revocation_checks_total       counter    result
 * mcpgate_redis_errors_total            counter    kind
 * mcpgate_ratelimit_fallbacks_total     counter    mode
 * mcpgate_connections_open              gauge      -
 * mcpgate_sse_streams_open              gauge      -
 * mcpgate_connections_refused_total     counter    reason
 * mcpgate_token_cache_hits_total        counter    -
 * mcpgate_token_cache_misses_total      counter    -
 * mcpgate_config_reloads_total          counter    result
 * mcpgate_config_last_reload_timestamp_seconds gauge - (last successful load)
 * mcpgate_build_info                    gauge      version   (always 1)
 *
 * docs/operations.md describes each one. Label value conventions:
 *  route   the route's path from the configuration; "none" when no route matched
 *  method  GET POST DELETE PUT PATCH HEAD OPTIONS, anything else "other"
 *  status  the 3-digit status sent to the client (100..599), else "other"
 *  issuer  the issuer URL from the configuration
 *  others  short fixed codes ([a-z_]) listed in docs/operations.md
 */

/* Upper bounds of mcpgate_upstream_duration_seconds (seconds). */
#define MG_METRICS_UPSTREAM_BUCKETS 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60

typedef enum mg_metrics_decision {
    MG_METRICS_ALLOW = 0, /* "allow" */
    MG_METRICS_DENY = 1,  /* "deny" */
    MG_METRICS_ERROR = 2, /* "error": the gateway could not decide (e.g. internal failure) */
} mg_metrics_decision_t;

typedef struct mg_metrics {
    mg_metric_reg_t *reg;
    mg_metric_family_t *requests;
    mg_metric_family_t *auth_decisions;
    mg_metric_family_t *rate_limited;
    mg_metric_family_t *upstream_duration;
    mg_metric_family_t *upstream_errors;
    mg_metric_family_t *jwks_fetches;
    mg_metric_family_t *jwks_keys;
    mg_metric_family_t *jwks_age;
    mg_metric_family_t *redis_errors;
    mg_metric_family_t *ratelimit_fallbacks;
    mg_metric_family_t *config_reloads;
    mg_metric_family_t *connections_refused;
    mg_metric_family_t *kid_unknown;
    mg_metric_family_t *kid_refetches;
    mg_metric_family_t *introspections;
    mg_metric_family_t *introspection_hits;
    mg_metric_family_t *introspection_misses;
    mg_metric_family_t *revocation_checks;
    /* Families without labels: their only series, resolved up front. */
    mg_metric_t *connections_open;
    mg_metric_t *sse_streams_open;
    mg_metric_t *token_cache_hits;
    mg_metric_t *token_cache_misses;
    mg_metric_t *config_last_reload;
} mg_metrics_t;

/* Create the registry with every family above; mcpgate_build_info{version}
 * is set to 1 (<version> NULL means PACKAGE_VERSION). Call once at startup,
 * before workers start; the object lives until mg_metrics_free(), called after
 * the workers have been joined. NULL on failure; free is NULL-safe. */
mg_metrics_t *mg_metrics_new(const char *version);
void mg_metrics_free(mg_metrics_t *m);

/* The admin /metrics body (see mg_metric_reg_render()); the caller frees it. */
char *mg_metrics_render(mg_metrics_t *m, size_t *len);
#define MG_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Per-request helpers. Every one is NULL-safe on <m> (metrics off) and on its
 * strings (NULL route = "none"). Strings are borrowed for the call only. */
const char *mg_metrics_method_label(const char *method, size_t len); /* static string */
void mg_metrics_request(mg_metrics_t *m, const char *route, const char *method, size_t method_len,
                        int status);
void mg_metrics_auth(mg_metrics_t *m, const char *route, mg_metrics_decision_t decision,
                     const char *reason);
void mg_metrics_rate_limited(mg_metrics_t *m, const char *route, const char *key_kind);
/* Request fully sent upstream -> response head received (not the whole stream). */
void mg_metrics_upstream_latency(mg_metrics_t *m, const char *route, uint64_t ns);
/* kind: connect, dns, tls, timeout, reset, bad_response, ... */
void mg_metrics_upstream_error(mg_metrics_t *m, const char *route, const char *kind);
/* result: ok, http_error, network_error, parse_error, unchanged, ... */
void mg_metrics_jwks_fetch(mg_metrics_t *m, const char *issuer, const char *result);
/* A key set was (re)loaded for <issuer>: sets the key count and restarts the age. */
void mg_metrics_jwks_loaded(mg_metrics_t *m, const char *issuer, int64_t nkeys);
/* kind: not_ready, timeout, disconnected, reply, nomem (mg_redis_err_t without MG_REDIS_E_) */
void mg_metrics_redis_error(mg_metrics_t *m, const char *kind);
/* mode: local, allow, deny (the on_failure policy that was applied) */
void mg_metrics_ratelimit_fallback(mg_metrics_t *m, const char *mode);
/* A client connection closed at accept by a limit; reason: max_connections,
 * listen_max_connections, max_connections_per_client. */
void mg_metrics_connection_refused(mg_metrics_t *m, const char *reason);
/* An unknown kid for a well-formed token of <issuer> (mg_keys_kid_unknown), and a key-set
 * fetch started because of one. */
void mg_metrics_kid_unknown(mg_metrics_t *m, const char *issuer);
void mg_metrics_kid_refetch(mg_metrics_t *m, const char *issuer);
/* A call to <issuer>'s introspection endpoint; result: active, inactive (active false),
 * refused (active, but its claims were refused), error (network, status, bad response). */
void mg_metrics_introspection(mg_metrics_t *m, const char *issuer, const char *result);
/* An introspection cache lookup; store: memory (the worker's), redis (shared). */
void mg_metrics_introspection_cache(mg_metrics_t *m, const char *store, int hit);
/* A revocation check (docs/redis.md); result: not_revoked, revoked, no_jti,
 * unavailable_denied, unavailable_allowed. */
void mg_metrics_revocation(mg_metrics_t *m, const char *result);
/* ok: the new generation is in service (also sets the last-reload timestamp). */
void mg_metrics_config_reload(mg_metrics_t *m, int ok);

#endif /* MCPGATE_METRICS_H */
