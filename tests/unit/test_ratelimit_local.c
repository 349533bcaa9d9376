/* test_ratelimit_local.c -- in-process GCRA: burst, all-or-nothing, threads, eviction. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "mcpgate/ratelimit.h"
#include "mgtest.h"

#define SEC UINT64_C(1000000)
#define T0 (UINT64_C(1000) * SEC) /* any monotonic origin */

/* "rate_limit subject 10/minute burst 5": 5 at once, then one per 6 s. */
static void
test_ten_per_minute_burst_five(void)
{
    mg_rl_local_t *l = mg_rl_local_new(0);
    mg_rl_key_t k = {"subject", "iss\nalice", mg_rl_interval_us(10, 60000), 5, NULL};
    mg_rl_result_t r;
    int allowed = 0;

    MG_CHECK_INT(k.emission_interval_us, 6 * SEC);
    for (int i = 0; i < 8; i++) {
        mg_rl_local_check_at(l, "r1", &k, 1, T0, &r);
        if (r.decision == MG_RL_ALLOWED) {
            allowed++;
            MG_CHECK_INT(r.remaining, 5 - allowed);
            MG_CHECK_INT(r.reset_ms, 6000 * allowed);
        } else {
            MG_CHECK_INT(r.decision, MG_RL_LIMITED);
            MG_CHECK_INT(r.retry_after_ms, 6000);
            MG_CHECK_INT(r.remaining, 0);
            MG_CHECK_INT(r.reset_ms, 30000);
        }
        MG_CHECK_INT(r.limit, 5);
        MG_CHECK_INT(r.index, 0);
        MG_CHECK_INT(r.source, MG_RL_SRC_LOCAL);
    }
    MG_CHECK_INT(allowed, 5);
    /* 5.999 s later: still refused, 1 ms to go. */
    MG_CHECK_INT(mg_rl_local_check_at(l, "r1", &k, 1, T0 + 6 * SEC - 1000, &r), MG_RL_LIMITED);
    MG_CHECK_INT(r.retry_after_ms, 1);
    /* 6 s later: exactly one more. */
    MG_CHECK_INT(mg_rl_local_check_at(l, "r1", &k, 1, T0 + 6 * SEC, &r), MG_RL_ALLOWED);
    MG_CHECK_INT(r.remaining, 0);
    MG_CHECK_INT(mg_rl_local_check_at(l, "r1", &k, 1, T0 + 6 * SEC, &r), MG_RL_LIMITED);
    /* After a full 30 s idle the whole burst is back. */
    allowed = 0;
    for (int i = 0; i < 7; i++)
        allowed += mg_rl_local_check_at(l, "r1", &k, 1, T0 + 66 * SEC, &r) == MG_RL_ALLOWED;
    MG_CHECK_INT(allowed, 5);
    mg_rl_local_free(l);
}

/* N of N+k for "N/minute" with the default burst N. */
static void
test_n_of_n_plus_k(void)
{
    mg_rl_local_t *l = mg_rl_local_new(0);
    mg_rl_key_t k = {"client", "app", mg_rl_interval_us(10, 60000), 10, NULL};
    mg_rl_result_t r;
    int allowed = 0;

    for (int i = 0; i < 13; i++)
        allowed +=
            mg_rl_local_check_at(l, NULL, &k, 1, T0 + (uint64_t)i * 1000, &r) == MG_RL_ALLOWED;
    MG_CHECK_INT(allowed, 10);
    mg_rl_local_free(l);
}

/* A refusal by one bucket consumes nothing in the others. */
static void
test_all_or_nothing(void)
{
    mg_rl_local_t *l = mg_rl_local_new(0);
    mg_rl_key_t ks[2] = {{"subject", "alice", 60 * SEC, 5, NULL},
                         {"tool", "alice\nsearch", 60 * SEC, 2, NULL}};
    mg_rl_result_t r;
    int allowed = 0;

    for (int i = 0; i < 4; i++)
        allowed += mg_rl_local_check_at(l, "r", ks, 2, T0, &r) == MG_RL_ALLOWED;
    MG_CHECK_INT(allowed, 2);
    MG_CHECK_INT(r.decision, MG_RL_LIMITED);
    MG_CHECK_INT(r.index, 1);
    MG_CHECK_INT(r.limit, 2);
    /* The subject bucket was charged for the 2 admitted requests only. */
    allowed = 0;
    for (int i = 0; i < 6; i++)
        allowed += mg_rl_local_check_at(l, "r", ks, 1, T0, &r) == MG_RL_ALLOWED;
    MG_CHECK_INT(allowed, 3);
    /* Most restrictive when allowed: the one with the fewest remaining. */
    mg_rl_key_t two[2] = {{"subject", "bob", 60 * SEC, 10, NULL},
                          {"client", "x", 60 * SEC, 3, NULL}};
    MG_CHECK_INT(mg_rl_local_check_at(l, "r", two, 2, T0, &r), MG_RL_ALLOWED);
    MG_CHECK_INT(r.index, 1);
    MG_CHECK_INT(r.remaining, 2);
    MG_CHECK_INT(r.limit, 3);
    mg_rl_local_free(l);
}

static void
test_scopes_and_params_are_separate_buckets(void)
{
    mg_rl_local_t *l = mg_rl_local_new(0);
    mg_rl_key_t a = {"subject", "alice", 60 * SEC, 1, NULL};
    mg_rl_key_t b = {"subject", "alice", 30 * SEC, 1, NULL};
    mg_rl_result_t r;

    MG_CHECK_INT(mg_rl_local_check_at(l, "r1", &a, 1, T0, &r), MG_RL_ALLOWED);
    MG_CHECK_INT(mg_rl_local_check_at(l, "r1", &a, 1, T0, &r), MG_RL_LIMITED);
    MG_CHECK_INT(mg_rl_local_check_at(l, "r2", &a, 1, T0, &r), MG_RL_ALLOWED);
    MG_CHECK_INT(mg_rl_local_check_at(l, "r1", &b, 1, T0, &r), MG_RL_ALLOWED);
    MG_CHECK_INT(mg_rl_local_size(l), 3);
    mg_rl_local_free(l);
}

static void
test_invalid(void)
{
    mg_rl_local_t *l = mg_rl_local_new(0);
    mg_rl_key_t ks[MG_RL_MAX_KEYS + 1];
    mg_rl_result_t r;

    for (size_t i = 0; i < MG_RL_MAX_KEYS + 1; i++)
        ks[i] = (mg_rl_key_t){"subject", "a", SEC, 1, NULL};
    MG_CHECK_INT(mg_rl_local_check_at(l, "", ks, 0, T0, &r), MG_RL_INVALID);
    MG_CHECK_INT(mg_rl_local_check_at(l, "", ks, MG_RL_MAX_KEYS + 1, T0, &r), MG_RL_INVALID);
    ks[0].burst = 0;
    MG_CHECK_INT(mg_rl_local_check_at(l, "", ks, 1, T0, &r), MG_RL_INVALID);
    ks[0].burst = 1;
    ks[0].emission_interval_us = 0;
    MG_CHECK_INT(mg_rl_local_check_at(l, "", ks, 1, T0, &r), MG_RL_INVALID);
    ks[0].emission_interval_us = MG_RL_MAX_WINDOW_US;
    ks[0].burst = 2;
    MG_CHECK_INT(mg_rl_local_check_at(l, "", ks, 1, T0, &r), MG_RL_INVALID);
    ks[0].id = NULL;
    ks[0].burst = 1;
    MG_CHECK_INT(mg_rl_local_check_at(l, "", ks, 1, T0, &r), MG_RL_INVALID);
    MG_CHECK_INT(r.index, -1);
    MG_CHECK_INT(mg_rl_local_size(l), 0);
    mg_rl_local_free(l);
}

static void
test_eviction_bounded(void)
{
    mg_rl_local_t *l = mg_rl_local_new(8);
    mg_rl_result_t r;
    char id[32];

    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "id%d", i);
        mg_rl_key_t k = {"subject", id, SEC, 3, NULL};
        MG_CHECK_INT(mg_rl_local_check_at(l, "", &k, 1, T0, &r), MG_RL_ALLOWED);
        MG_CHECK(mg_rl_local_size(l) <= 8);
    }
    /* A bucket in debt survives while stale ones are dropped first. */
    mg_rl_key_t hot = {"subject", "hot", 100 * SEC, 2, NULL};
    MG_CHECK_INT(mg_rl_local_check_at(l, "", &hot, 1, T0, &r), MG_RL_ALLOWED);
    MG_CHECK_INT(mg_rl_local_check_at(l, "", &hot, 1, T0, &r), MG_RL_ALLOWED);
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "later%d", i);
        mg_rl_key_t k = {"subject", id, SEC, 3, NULL};
        mg_rl_local_check_at(l, "", &k, 1, T0 + 10 * SEC, &r);
    }
    MG_CHECK_INT(mg_rl_local_check_at(l, "", &hot, 1, T0 + 10 * SEC, &r), MG_RL_LIMITED);
    MG_CHECK(mg_rl_local_size(l) <= 8);
    mg_rl_local_free(l);
}

struct thread_arg {
    mg_rl_local_t *l;
    int allowed;
};

static void *
hammer(void *p)
{
    struct thread_arg *a = p;
    mg_rl_key_t ks[2] = {{"subject", "shared", 3600 * SEC, 100, NULL},
                         {"route", "r", 3600 * SEC, 1000, NULL}};
    mg_rl_result_t r;

    for (int i = 0; i < 2000; i++)
        a->allowed += mg_rl_local_check(a->l, "r", ks, 2, &r) == MG_RL_ALLOWED;
    return NULL;
}

/* Shared by workers: exact for one process. */
static void
test_threads_exact(void)
{
    mg_rl_local_t *l = mg_rl_local_new(0);
    pthread_t th[4];
    struct thread_arg a[4];
    int total = 0;

    for (int i = 0; i < 4; i++) {
        a[i] = (struct thread_arg){l, 0};
        pthread_create(&th[i], NULL, hammer, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += a[i].allowed;
    }
    MG_CHECK_INT(total, 100);
    mg_rl_local_free(l);
}

static void
test_redis_key_layout(void)
{
    mg_rl_key_t a = {"subject", "alice", SEC, 1, NULL}, b = {"tool", "alice\nsearch", SEC, 1, NULL};
    mg_rl_key_t evil = {"x}{y", "a", SEC, 1, NULL};
    char ka[96], kb[96], kc[96], ke[96];

    MG_CHECK(mg_rl_redis_key("route1", &a, ka, sizeof(ka)) > 0);
    MG_CHECK(mg_rl_redis_key("route1", &b, kb, sizeof(kb)) > 0);
    MG_CHECK(mg_rl_redis_key("route2", &a, kc, sizeof(kc)) > 0);
    MG_CHECK(mg_rl_redis_key("route1", &evil, ke, sizeof(ke)) > 0);
    MG_CHECK(strncmp(ka, "mg:rl:{", 7) == 0);
    /* Same route: same hash tag (one cluster slot); other route: other tag. */
    MG_CHECK(strncmp(ka, kb, 7 + 16 + 1) == 0);
    MG_CHECK(strncmp(ka, kc, 7 + 16) != 0);
    MG_CHECK(strstr(ka, "}:subject:") != NULL);
    MG_CHECK(strstr(ke, "}:x__y:") != NULL);
    MG_CHECK(strstr(ka, "alice") == NULL); /* identities are not readable in Redis */
    MG_CHECK_INT(mg_rl_redis_key("route1", &a, ka, 10), -1);
}

int
main(void)
{
    MG_RUN(test_ten_per_minute_burst_five);
    MG_RUN(test_n_of_n_plus_k);
    MG_RUN(test_all_or_nothing);
    MG_RUN(test_scopes_and_params_are_separate_buckets);
    MG_RUN(test_invalid);
    MG_RUN(test_eviction_bounded);
    MG_RUN(test_threads_exact);
    MG_RUN(test_redis_key_layout);
    return mg_test_done();
}
