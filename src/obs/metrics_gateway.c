/* metrics_gateway.c -- the gateway's metric families (declared once here) and label-normalising
 * helpers. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpgate/metrics.h"

/* Caps on distinct label sets per family. Routes and issuers come from the
 * configuration, the other labels from fixed lists, so real deployments stay
 * far below these; they only stop a bug or a hostile value from growing memory. */
#define CAP_ROUTE_STATUS 8192 /* routes x methods x statuses */
#define CAP_ROUTE_REASON 4096 /* routes x decisions x reasons */
#define CAP_SMALL 1024

static const char *const route_method_status[] = {"route", "method", "status", NULL};
static const char *const route_decision_reason[] = {"route", "decision", "reason", NULL};
static const char *const route_key_kind[] = {"route", "key_kind", NULL};
static const char *const route_only[] = {"route", NULL};
static const char *const route_kind[] = {"route", "kind", NULL};
static const char *const issuer_result[] = {"issuer", "result", NULL};
static const char *const issuer_only[] = {"issuer", NULL};
static const char *const kind_only[] = {"kind", NULL};
static const char *const mode_only[] = {"mode", NULL};
static const char *const reason_only[] = {"reason", NULL};
static const char *const result_only[] = {"result", NULL};
static const char *const store_only[] = {"store", NULL};
static const char *const version_only[] = {"version", NULL};

static const double upstream_buckets[] = {MG_METRICS_UPSTREAM_BUCKETS};

mg_metrics_t *
mg_metrics_new(const char *version)
{
    mg_metrics_t *m = calloc(1, sizeof(*m));
    mg_metric_family_t *build = NULL, *conn = NULL, *sse = NULL, *hits = NULL, *misses = NULL,
                       *last = NULL;
    const char *bv[1];

    if (m == NULL)
        goto fail;
    m->reg = mg_metric_reg_new();
    if (m->reg == NULL)
        goto fail;
#define FAM(type, name, help, labels, cap)                                                         \
    mg_metric_family_new(m->reg, (type), (name), (help), (labels), (cap), NULL, 0)
    m->requests = FAM(MG_METRIC_COUNTER, "mcpgate_requests_total",
                      "Requests answered, by route, HTTP method and status sent to the client.",
                      route_method_status, CAP_ROUTE_STATUS);
    m->auth_decisions =
        FAM(MG_METRIC_COUNTER, "mcpgate_auth_decisions_total",
            "Authorization decisions on protected routes, by route, decision and reason code.",
            route_decision_reason, CAP_ROUTE_REASON);
    m->rate_limited = FAM(MG_METRIC_COUNTER, "mcpgate_rate_limited_total",
                          "Requests refused by a rate limit, by route and kind of limit key.",
                          route_key_kind, CAP_SMALL);
    m->upstream_duration = mg_metric_family_new(
        m->reg, MG_METRIC_HISTOGRAM, "mcpgate_upstream_duration_seconds",
        "Time from the request sent upstream to the response head received, by route.", route_only,
        CAP_SMALL, upstream_buckets, sizeof(upstream_buckets) / sizeof(upstream_buckets[0]));
    m->upstream_errors =
        FAM(MG_METRIC_COUNTER, "mcpgate_upstream_errors_total",
            "Failed upstream exchanges, by route and kind of failure.", route_kind, CAP_SMALL);
    m->jwks_fetches =
        FAM(MG_METRIC_COUNTER, "mcpgate_jwks_fetches_total",
            "Key set (JWKS) loads and fetches, by issuer and result.", issuer_result, CAP_SMALL);
    m->jwks_keys = FAM(MG_METRIC_GAUGE, "mcpgate_jwks_keys",
                       "Usable keys in the key set in service, by issuer.", issuer_only, CAP_SMALL);
    m->jwks_age =
        FAM(MG_METRIC_GAUGE_AGE, "mcpgate_jwks_age_seconds",
            "Seconds since the key set in service was loaded, by issuer.", issuer_only, CAP_SMALL);
    m->redis_errors = FAM(MG_METRIC_COUNTER, "mcpgate_redis_errors_total",
                          "Failed Redis commands, by kind of failure.", kind_only, 64);
    m->ratelimit_fallbacks = FAM(
        MG_METRIC_COUNTER, "mcpgate_ratelimit_fallbacks_total",
        "Rate-limit decisions taken without Redis, by the on_failure mode applied.", mode_only, 16);
    m->config_reloads =
        FAM(MG_METRIC_COUNTER, "mcpgate_config_reloads_total",
            "Configuration reloads, by result (success, failure).", result_only, 16);
    m->connections_refused = FAM(
        MG_METRIC_COUNTER, "mcpgate_connections_refused_total",
        "Client connections closed at accept, by the limit that refused them.", reason_only, 16);
    m->kid_unknown = FAM(MG_METRIC_COUNTER, "mcpgate_jwks_unknown_kid_total",
                         "Well-formed access tokens naming a key their issuer's key set lacked.",
                         issuer_only, CAP_SMALL);
    m->kid_refetches = FAM(MG_METRIC_COUNTER, "mcpgate_jwks_kid_refetches_total",
                           "Key set fetches started because of an unknown key id, by issuer.",
                           issuer_only, CAP_SMALL);
    m->introspections = FAM(MG_METRIC_COUNTER, "mcpgate_introspection_requests_total",
                            "Calls to introspection endpoints (RFC 7662), by issuer and result.",
                            issuer_result, CAP_SMALL);
    m->introspection_hits =
        FAM(MG_METRIC_COUNTER, "mcpgate_introspection_cache_hits_total",
            "Introspection results found in a cache, by store.", store_only, 16);
    m->introspection_misses =
        FAM(MG_METRIC_COUNTER, "mcpgate_introspection_cache_misses_total",
            "Introspection cache lookups that found nothing, by store.", store_only, 16);
    m->revocation_checks =
        FAM(MG_METRIC_COUNTER, "mcpgate_revocation_checks_total",
            "Revocation checks of access tokens against Redis, by result.", result_only, 16);
    build =
        FAM(MG_METRIC_GAUGE, "mcpgate_build_info", "The running build; always 1.", version_only, 1);
    conn = FAM(MG_METRIC_GAUGE, "mcpgate_connections_open", "Open client connections.", NULL, 1);
    sse = FAM(MG_METRIC_GAUGE, "mcpgate_sse_streams_open",
              "Responses being streamed to clients as text/event-stream.", NULL, 1);
    hits = FAM(MG_METRIC_COUNTER, "mcpgate_token_cache_hits_total",
               "Access tokens found in the verified-token cache.", NULL, 1);
    misses = FAM(MG_METRIC_COUNTER, "mcpgate_token_cache_misses_total",
                 "Access tokens not in the verified-token cache (fully verified).", NULL, 1);
    last = FAM(MG_METRIC_GAUGE, "mcpgate_config_last_reload_timestamp_seconds",
               "Unix time of the last configuration successfully put in service.", NULL, 1);
#undef FAM
    if (m->requests == NULL || m->auth_decisions == NULL || m->rate_limited == NULL ||
        m->upstream_duration == NULL || m->upstream_errors == NULL || m->jwks_fetches == NULL ||
        m->jwks_keys == NULL || m->jwks_age == NULL || m->redis_errors == NULL ||
        m->ratelimit_fallbacks == NULL || m->config_reloads == NULL ||
        m->connections_refused == NULL || m->kid_unknown == NULL || m->kid_refetches == NULL ||
        m->introspections == NULL || m->introspection_hits == NULL ||
        m->introspection_misses == NULL || m->revocation_checks == NULL || build == NULL ||
        conn == NULL || sse == NULL || hits == NULL || misses == NULL || last == NULL)
        goto fail;
    bv[0] = version != NULL ? version : PACKAGE_VERSION;
    mg_metric_set(mg_metric_get(build, bv), 1);
    m->connections_open = mg_metric_get(conn, NULL);
    m->sse_streams_open = mg_metric_get(sse, NULL);
    m->token_cache_hits = mg_metric_get(hits, NULL);
    m->token_cache_misses = mg_metric_get(misses, NULL);
    m->config_last_reload = mg_metric_get(last, NULL);
    {
        /* The startup configuration was loaded just before this call. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        mg_metric_set(m->config_last_reload, (int64_t)ts.tv_sec);
    }
    return m;
fail:
    mg_metrics_free(m);
    return NULL;
}

void
mg_metrics_free(mg_metrics_t *m)
{
    if (m == NULL)
        return;
    mg_metric_reg_free(m->reg);
    free(m);
}

char *
mg_metrics_render(mg_metrics_t *m, size_t *len)
{
    return m != NULL ? mg_metric_reg_render(m->reg, 0, len) : NULL;
}

/* ---- label normalisation ---- */

static const char *
route_label(const char *route)
{
    return route != NULL && *route != '\0' ? route : "none";
}

/* A short code ([a-z0-9_], 1..32 chars) passes; anything else is "other".
 * Callers pass constants, so this only guards against a mistake. */
static const char *
code_label(const char *code)
{
    size_t i;

    if (code == NULL || *code == '\0')
        return MG_METRIC_OTHER;
    for (i = 0; code[i] != '\0'; i++) {
        char c = code[i];
        if (i == 32 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return MG_METRIC_OTHER;
    }
    return code;
}

const char *
mg_metrics_method_label(const char *method, size_t len)
{
    static const char *const known[] = {"GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS", "PATCH"};

    if (method != NULL)
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strlen(known[i]) == len && memcmp(known[i], method, len) == 0)
                return known[i];
    return MG_METRIC_OTHER;
}

void
mg_metrics_request(mg_metrics_t *m, const char *route, const char *method, size_t method_len,
                   int status)
{
    char st[8];
    const char *v[3];

    if (m == NULL)
        return;
    if (status >= 100 && status <= 599) {
        st[0] = (char)('0' + status / 100);
        st[1] = (char)('0' + status / 10 % 10);
        st[2] = (char)('0' + status % 10);
        st[3] = '\0';
        v[2] = st;
    } else {
        v[2] = MG_METRIC_OTHER;
    }
    v[0] = route_label(route);
    v[1] = mg_metrics_method_label(method, method_len);
    mg_metric_inc(mg_metric_get(m->requests, v));
}

void
mg_metrics_auth(mg_metrics_t *m, const char *route, mg_metrics_decision_t decision,
                const char *reason)
{
    static const char *const names[] = {"allow", "deny", "error"};
    const char *v[3];

    if (m == NULL)
        return;
    v[0] = route_label(route);
    v[1] = (unsigned)decision < 3 ? names[decision] : MG_METRIC_OTHER;
    v[2] = code_label(reason);
    mg_metric_inc(mg_metric_get(m->auth_decisions, v));
}

void
mg_metrics_rate_limited(mg_metrics_t *m, const char *route, const char *key_kind)
{
    const char *v[2];

    if (m == NULL)
        return;
    v[0] = route_label(route);
    v[1] = code_label(key_kind);
    mg_metric_inc(mg_metric_get(m->rate_limited, v));
}

void
mg_metrics_upstream_latency(mg_metrics_t *m, const char *route, uint64_t ns)
{
    const char *v[1];

    if (m == NULL)
        return;
    v[0] = route_label(route);
    mg_metric_observe_ns(mg_metric_get(m->upstream_duration, v), ns);
}

void
mg_metrics_upstream_error(mg_metrics_t *m, const char *route, const char *kind)
{
    const char *v[2];

    if (m == NULL)
        return;
    v[0] = route_label(route);
    v[1] = code_label(kind);
    mg_metric_inc(mg_metric_get(m->upstream_errors, v));
}

void
mg_metrics_jwks_fetch(mg_metrics_t *m, const char *issuer, const char *result)
{
    const char *v[2];

    if (m == NULL)
        return;
    v[0] = issuer != NULL ? issuer : "";
    v[1] = code_label(result);
    mg_metric_inc(mg_metric_get(m->jwks_fetches, v));
}

void
mg_metrics_jwks_loaded(mg_metrics_t *m, const char *issuer, int64_t nkeys)
{
    const char *v[1];

    if (m == NULL)
        return;
    v[0] = issuer != NULL ? issuer : "";
    mg_metric_set(mg_metric_get(m->jwks_keys, v), nkeys);
    mg_metric_touch(mg_metric_get(m->jwks_age, v));
}

void
mg_metrics_redis_error(mg_metrics_t *m, const char *kind)
{
    const char *v[1];

    if (m == NULL)
        return;
    v[0] = code_label(kind);
    mg_metric_inc(mg_metric_get(m->redis_errors, v));
}

void
mg_metrics_ratelimit_fallback(mg_metrics_t *m, const char *mode)
{
    const char *v[1];

    if (m == NULL)
        return;
    v[0] = code_label(mode);
    mg_metric_inc(mg_metric_get(m->ratelimit_fallbacks, v));
}

void
mg_metrics_connection_refused(mg_metrics_t *m, const char *reason)
{
    const char *v[1];

    if (m == NULL)
        return;
    v[0] = code_label(reason);
    mg_metric_inc(mg_metric_get(m->connections_refused, v));
}

void
mg_metrics_config_reload(mg_metrics_t *m, int ok)
{
    const char *v[1];
    struct timespec ts;

    if (m == NULL)
        return;
    v[0] = ok ? "success" : "failure";
    mg_metric_inc(mg_metric_get(m->config_reloads, v));
    if (ok) {
        clock_gettime(CLOCK_REALTIME, &ts);
        mg_metric_set(m->config_last_reload, (int64_t)ts.tv_sec);
    }
}

static void
issuer_inc(mg_metric_family_t *fam, const char *issuer)
{
    const char *v[1];

    v[0] = issuer != NULL ? issuer : "";
    mg_metric_inc(mg_metric_get(fam, v));
}

void
mg_metrics_kid_unknown(mg_metrics_t *m, const char *issuer)
{
    if (m != NULL)
        issuer_inc(m->kid_unknown, issuer);
}

void
mg_metrics_kid_refetch(mg_metrics_t *m, const char *issuer)
{
    if (m != NULL)
        issuer_inc(m->kid_refetches, issuer);
}

void
mg_metrics_introspection(mg_metrics_t *m, const char *issuer, const char *result)
{
    const char *v[2];

    if (m == NULL)
        return;
    v[0] = issuer != NULL ? issuer : "";
    v[1] = code_label(result);
    mg_metric_inc(mg_metric_get(m->introspections, v));
}

void
mg_metrics_introspection_cache(mg_metrics_t *m, const char *store, int hit)
{
    const char *v[1];

    if (m == NULL)
        return;
    v[0] = code_label(store);
    mg_metric_inc(mg_metric_get(hit ? m->introspection_hits : m->introspection_misses, v));
}

void
mg_metrics_revocation(mg_metrics_t *m, const char *result)
{
    const char *v[1];

    if (m == NULL)
        return;
    v[0] = code_label(result);
    mg_metric_inc(mg_metric_get(m->revocation_checks, v));
}
