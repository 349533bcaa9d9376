/* test_metrics.c -- the metric registry: exact exposition text, concurrent increments, label caps.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/metrics.h"
#include "mgtest.h"

static const char *const lab_route_code[] = {"route", "code", NULL};
static const char *const lab_route[] = {"route", NULL};

static void
test_exposition_exact(void)
{
    mg_metric_reg_t *reg = mg_metric_reg_new();
    static const double b[] = {0.005, 0.1, 1};
    mg_metric_family_t *c, *g, *h, *age;
    char *text;
    size_t len = 0;

    /* Registered out of order: output is sorted by name. */
    h = mg_metric_family_new(reg, MG_METRIC_HISTOGRAM, "t_latency_seconds", "Latency.", lab_route,
                             10, b, 3);
    c = mg_metric_family_new(reg, MG_METRIC_COUNTER, "t_requests_total",
                             "Requests with \\ and\nnewline.", lab_route_code, 10, NULL, 0);
    g = mg_metric_family_new(reg, MG_METRIC_GAUGE, "t_open", "Open things.", NULL, 0, NULL, 0);
    age = mg_metric_family_new(reg, MG_METRIC_GAUGE_AGE, "t_age_seconds", "Age.", lab_route, 10,
                               NULL, 0);
    mg_metric_family_new(reg, MG_METRIC_COUNTER, "t_empty_total", "Nothing yet.", lab_route, 10,
                         NULL, 0);
    MG_CHECK(c != NULL && g != NULL && h != NULL && age != NULL);

    const char *v1[] = {"/b", "200"};
    const char *v2[] = {"/a\\x", "q\"uote"};
    const char *v3[] = {"/a", "line\nbreak"};
    mg_metric_add(mg_metric_get(c, v1), 5);
    mg_metric_inc(mg_metric_get(c, v2));
    mg_metric_inc(mg_metric_get(c, v3));
    mg_metric_inc(mg_metric_get(c, v1));
    mg_metric_add(mg_metric_get(c, v1), -3); /* counters never go down */

    mg_metric_set(mg_metric_get(g, NULL), 7);
    mg_metric_add(mg_metric_get(g, NULL), -9);

    const char *r[] = {"/mcp"};
    mg_metric_t *hs = mg_metric_get(h, r);
    mg_metric_observe(hs, 0.005); /* on the bound: counts in le=0.005 */
    mg_metric_observe(hs, 0.05);
    mg_metric_observe(hs, 0.5);
    mg_metric_observe(hs, 2.25); /* +Inf only */
    mg_metric_observe(hs, -1);   /* counts as 0 */
    MG_CHECK_INT(mg_metric_value(hs), 5);

    mg_metric_set_time_ms(mg_metric_get(age, r), 1000000);
    const char *never[] = {"/never"};
    (void)mg_metric_get(age, never); /* never set: not rendered */

    text = mg_metric_reg_render(reg, 1012345, &len);
    MG_CHECK_STR(text, "# HELP t_age_seconds Age.\n"
                       "# TYPE t_age_seconds gauge\n"
                       "t_age_seconds{route=\"/mcp\"} 12.345\n"
                       "# HELP t_empty_total Nothing yet.\n"
                       "# TYPE t_empty_total counter\n"
                       "# HELP t_latency_seconds Latency.\n"
                       "# TYPE t_latency_seconds histogram\n"
                       "t_latency_seconds_bucket{route=\"/mcp\",le=\"0.005\"} 2\n"
                       "t_latency_seconds_bucket{route=\"/mcp\",le=\"0.1\"} 3\n"
                       "t_latency_seconds_bucket{route=\"/mcp\",le=\"1\"} 4\n"
                       "t_latency_seconds_bucket{route=\"/mcp\",le=\"+Inf\"} 5\n"
                       "t_latency_seconds_sum{route=\"/mcp\"} 2.805\n"
                       "t_latency_seconds_count{route=\"/mcp\"} 5\n"
                       "# HELP t_open Open things.\n"
                       "# TYPE t_open gauge\n"
                       "t_open -2\n"
                       "# HELP t_requests_total Requests with \\\\ and\\nnewline.\n"
                       "# TYPE t_requests_total counter\n"
                       "t_requests_total{route=\"/a\",code=\"line\\nbreak\"} 1\n"
                       "t_requests_total{route=\"/a\\\\x\",code=\"q\\\"uote\"} 1\n"
                       "t_requests_total{route=\"/b\",code=\"200\"} 6\n");
    MG_CHECK(text != NULL && len == strlen(text));
    free(text);
    mg_metric_reg_free(reg);
}

static void
test_bad_declarations(void)
{
    mg_metric_reg_t *reg = mg_metric_reg_new();
    static const char *const le[] = {"le", NULL};
    static const char *const dup[] = {"a", "a", NULL};
    static const char *const under[] = {"__x", NULL};
    static const char *const five[] = {"a", "b", "c", "d", "e", NULL};
    static const double down[] = {1, 0.5};

    MG_CHECK(mg_metric_family_new(reg, MG_METRIC_COUNTER, "ok_total", "", NULL, 0, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "ok_total", "", NULL, 0, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "1bad", "", NULL, 0, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "bad-name", "", NULL, 0, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "a_total", "", le, 5, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "b_total", "", dup, 5, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "c_total", "", under, 5, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "d_total", "", five, 5, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_COUNTER, "e_total", "", lab_route, 0, NULL, 0));
    MG_CHECK(!mg_metric_family_new(reg, MG_METRIC_HISTOGRAM, "h", "", NULL, 0, down, 2));
    mg_metric_reg_free(reg);
}

static void
test_label_cap(void)
{
    mg_metric_reg_t *reg = mg_metric_reg_new();
    mg_metric_family_t *f =
        mg_metric_family_new(reg, MG_METRIC_COUNTER, "cap_total", "Capped.", lab_route, 3, NULL, 0);
    char name[32];
    char *text;

    for (int i = 0; i < 10; i++) {
        const char *v[] = {name};
        snprintf(name, sizeof(name), "/r%d", i);
        mg_metric_inc(mg_metric_get(f, v));
    }
    /* An existing label set still resolves to itself once the cap is reached. */
    const char *r0[] = {"/r0"};
    mg_metric_inc(mg_metric_get(f, r0));
    MG_CHECK_INT(mg_metric_family_size(f), 4);
    text = mg_metric_reg_render(reg, 1, NULL);
    MG_CHECK_STR(text, "# HELP cap_total Capped.\n"
                       "# TYPE cap_total counter\n"
                       "cap_total{route=\"/r0\"} 2\n"
                       "cap_total{route=\"/r1\"} 1\n"
                       "cap_total{route=\"/r2\"} 1\n"
                       "cap_total{route=\"other\"} 7\n");
    free(text);

    /* Very long values are cut, so they cannot make large series either. */
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mg_metric_family_t *g =
        mg_metric_family_new(reg, MG_METRIC_COUNTER, "long_total", "", lab_route, 3, NULL, 0);
    const char *vb[] = {big};
    mg_metric_t *s1 = mg_metric_get(g, vb);
    big[600] = 'y'; /* beyond the cut: the same series */
    MG_CHECK(mg_metric_get(g, vb) == s1);
    mg_metric_reg_free(reg);
}

/* ---- concurrency ---- */

#define NTHREADS 4
#define NITER 200000

typedef struct {
    mg_metric_family_t *c, *h;
    mg_metric_t *gauge;
    int id;
} worker_arg_t;

static void *
worker(void *p)
{
    worker_arg_t *a = p;
    static const char *const routes[] = {"/a", "/b", "/c", "/d", "/e"};
    for (int i = 0; i < NITER; i++) {
        const char *v[] = {routes[i % 5], (i & 1) ? "odd" : "even"};
        mg_metric_inc(mg_metric_get(a->c, v));
        const char *hv[] = {routes[(i + a->id) % 5]};
        mg_metric_observe_ns(mg_metric_get(a->h, hv), (uint64_t)(i % 3) * 1000000u);
        mg_metric_add(a->gauge, 1);
        mg_metric_add(a->gauge, -1);
    }
    return NULL;
}

static void
test_concurrency(void)
{
    mg_metric_reg_t *reg = mg_metric_reg_new();
    static const double b[] = {0.001};
    pthread_t t[NTHREADS];
    worker_arg_t args[NTHREADS];
    mg_metric_family_t *c =
        mg_metric_family_new(reg, MG_METRIC_COUNTER, "cc_total", "", lab_route_code, 100, NULL, 0);
    mg_metric_family_t *h =
        mg_metric_family_new(reg, MG_METRIC_HISTOGRAM, "hh_seconds", "", lab_route, 100, b, 1);
    mg_metric_family_t *g = mg_metric_family_new(reg, MG_METRIC_GAUGE, "gg", "", NULL, 0, NULL, 0);
    mg_metric_t *gs = mg_metric_get(g, NULL);

    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (worker_arg_t){c, h, gs, i};
        pthread_create(&t[i], NULL, worker, &args[i]);
    }
    /* Scrape while they run: must not crash or race (TSan/ASan). */
    for (int i = 0; i < 20; i++)
        free(mg_metric_reg_render(reg, 0, NULL));
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);

    int64_t total = 0;
    static const char *const routes[] = {"/a", "/b", "/c", "/d", "/e"};
    for (int r = 0; r < 5; r++)
        for (int o = 0; o < 2; o++) {
            const char *v[] = {routes[r], o ? "odd" : "even"};
            total += mg_metric_value(mg_metric_get(c, v));
        }
    MG_CHECK_INT(total, (int64_t)NTHREADS * NITER);
    /* i % 5 and i & 1 over 200000: every pair gets exactly 20000 per thread. */
    const char *va[] = {"/a", "even"};
    MG_CHECK_INT(mg_metric_value(mg_metric_get(c, va)), NTHREADS * NITER / 10);
    MG_CHECK_INT(mg_metric_family_size(c), 10);
    int64_t hcount = 0;
    for (int r = 0; r < 5; r++) {
        const char *v[] = {routes[r]};
        hcount += mg_metric_value(mg_metric_get(h, v));
    }
    MG_CHECK_INT(hcount, (int64_t)NTHREADS * NITER);
    MG_CHECK_INT(mg_metric_value(gs), 0);
    mg_metric_reg_free(reg);
}

/* Many threads racing to create the same new label sets: one series each. */
static void *
racer(void *p)
{
    mg_metric_family_t *f = p;
    char name[16];
    for (int i = 0; i < 500; i++) {
        const char *v[] = {name};
        snprintf(name, sizeof(name), "/r%d", i);
        mg_metric_inc(mg_metric_get(f, v));
    }
    return NULL;
}

static void
test_concurrent_insert(void)
{
    mg_metric_reg_t *reg = mg_metric_reg_new();
    mg_metric_family_t *f =
        mg_metric_family_new(reg, MG_METRIC_COUNTER, "ins_total", "", lab_route, 300, NULL, 0);
    pthread_t t[NTHREADS];
    int64_t total = 0;

    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, racer, f);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    MG_CHECK_INT(mg_metric_family_size(f), 301); /* 300 + overflow */
    for (int i = 0; i < 300; i++) {
        char name[16];
        const char *v[] = {name};
        snprintf(name, sizeof(name), "/r%d", i);
        MG_CHECK_INT(mg_metric_value(mg_metric_get(f, v)), NTHREADS);
        total += NTHREADS;
    }
    const char *o[] = {"other"};
    MG_CHECK_INT(mg_metric_value(mg_metric_get(f, o)), NTHREADS * 200);
    mg_metric_reg_free(reg);
}

static void
test_gateway_families(void)
{
    mg_metrics_t *m = mg_metrics_new("1.2.3");
    char *text;

    MG_CHECK(m != NULL);
    mg_metrics_request(m, "/mcp", "POST", 4, 200);
    mg_metrics_request(m, "/mcp", "POST", 4, 200);
    mg_metrics_request(m, "/mcp", "BREW", 4, 999);
    mg_metrics_request(m, NULL, "GET", 3, 404);
    mg_metrics_auth(m, "/mcp", MG_METRICS_DENY, "expired");
    mg_metrics_auth(m, "/mcp", MG_METRICS_DENY, "Evil\"reason\n");
    mg_metrics_rate_limited(m, "/mcp", "subject");
    mg_metrics_upstream_latency(m, "/mcp", 30000000); /* 30 ms */
    mg_metrics_upstream_error(m, "/mcp", "timeout");
    mg_metrics_jwks_fetch(m, "https://as.example", "ok");
    mg_metrics_jwks_loaded(m, "https://as.example", 3);
    mg_metrics_redis_error(m, "timeout");
    mg_metrics_ratelimit_fallback(m, "local");
    mg_metrics_config_reload(m, 1);
    mg_metrics_config_reload(m, 0);
    mg_metrics_connection_refused(m, "max_connections_per_client");
    mg_metrics_connection_refused(m, "max_connections_per_client");
    mg_metric_inc(m->connections_open);
    mg_metric_inc(m->sse_streams_open);
    mg_metric_inc(m->token_cache_hits);
    mg_metric_add(m->token_cache_misses, 2);
    MG_CHECK_STR(mg_metrics_method_label("OPTIONS", 7), "OPTIONS");
    MG_CHECK_STR(mg_metrics_method_label("GETX", 4), "other");
    MG_CHECK_STR(mg_metrics_method_label("GET", 2), "other");

    text = mg_metrics_render(m, NULL);
    MG_CHECK(text != NULL);
    if (text != NULL) {
        MG_CHECK(strstr(text, "\nmcpgate_build_info{version=\"1.2.3\"} 1\n"));
        MG_CHECK(strstr(
            text, "\nmcpgate_requests_total{route=\"/mcp\",method=\"POST\",status=\"200\"} 2\n"));
        MG_CHECK(strstr(
            text,
            "\nmcpgate_requests_total{route=\"/mcp\",method=\"other\",status=\"other\"} 1\n"));
        MG_CHECK(strstr(
            text, "\nmcpgate_requests_total{route=\"none\",method=\"GET\",status=\"404\"} 1\n"));
        MG_CHECK(strstr(text, "{route=\"/mcp\",decision=\"deny\",reason=\"expired\"} 1\n"));
        MG_CHECK(strstr(text, "{route=\"/mcp\",decision=\"deny\",reason=\"other\"} 1\n"));
        MG_CHECK(
            strstr(text, "\nmcpgate_rate_limited_total{route=\"/mcp\",key_kind=\"subject\"} 1\n"));
        MG_CHECK(strstr(
            text, "\nmcpgate_upstream_duration_seconds_bucket{route=\"/mcp\",le=\"0.025\"} 0\n"));
        MG_CHECK(strstr(
            text, "\nmcpgate_upstream_duration_seconds_bucket{route=\"/mcp\",le=\"0.05\"} 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_upstream_duration_seconds_sum{route=\"/mcp\"} 0.03\n"));
        MG_CHECK(
            strstr(text, "\nmcpgate_upstream_errors_total{route=\"/mcp\",kind=\"timeout\"} 1\n"));
        MG_CHECK(strstr(
            text, "\nmcpgate_jwks_fetches_total{issuer=\"https://as.example\",result=\"ok\"} 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_jwks_keys{issuer=\"https://as.example\"} 3\n"));
        MG_CHECK(strstr(text, "\nmcpgate_jwks_age_seconds{issuer=\"https://as.example\"} "));
        MG_CHECK(strstr(text, "\nmcpgate_redis_errors_total{kind=\"timeout\"} 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_ratelimit_fallbacks_total{mode=\"local\"} 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_config_reloads_total{result=\"failure\"} 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_config_reloads_total{result=\"success\"} 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_connections_open 1\n"));
        MG_CHECK(strstr(
            text,
            "\nmcpgate_connections_refused_total{reason=\"max_connections_per_client\"} 2\n"));
        MG_CHECK(strstr(text, "\nmcpgate_sse_streams_open 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_token_cache_hits_total 1\n"));
        MG_CHECK(strstr(text, "\nmcpgate_token_cache_misses_total 2\n"));
        MG_CHECK(strstr(text, "\n# TYPE mcpgate_config_last_reload_timestamp_seconds gauge\n"));
    }
    free(text);
    mg_metrics_free(m);
    /* Metrics off: every helper is a no-op. */
    mg_metrics_request(NULL, "/", "GET", 3, 200);
    mg_metrics_connection_refused(NULL, "max_connections");
    mg_metrics_free(NULL);
}

int
main(void)
{
    MG_RUN(test_exposition_exact);
    MG_RUN(test_bad_declarations);
    MG_RUN(test_label_cap);
    MG_RUN(test_concurrency);
    MG_RUN(test_concurrent_insert);
    MG_RUN(test_gateway_families);
    return mg_test_done();
}
