/* ratelimit.c -- the Redis-backed limiter: one EVALSHA per request, and the on_failure policy. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "mcpgate/log.h"
#include "mcpgate/ratelimit.h"
#include "store_int.h"

/* Suggested Retry-After when Redis is unavailable and the policy is deny. */
#define UNAVAILABLE_RETRY_MS 1000u

typedef struct op op_t;

struct op {
    op_t *prev, *next;  /* rl->ops while !done */
    mg_ratelimit_t *rl; /* NULL once done */
    mg_rl_cb *cb;
    void *arg;
    bool done; /* answered by mg_ratelimit_free(): the Redis callback only frees */
    size_t n;
    mg_rl_bucket_t b[MG_RL_MAX_KEYS];
};

struct mg_ratelimit {
    mg_redis_t *redis;
    mg_rl_local_t *local;
    const mg_redis_script_t *script;
    op_t *ops;
};

static const char *
policy_name(mg_redis_on_failure_t p)
{
    switch (p) {
    case MG_REDIS_FAIL_LOCAL:
        return "local";
    case MG_REDIS_FAIL_DENY:
        return "deny";
    case MG_REDIS_FAIL_ALLOW:
        return "allow";
    }
    return "?";
}

static void
op_unlink(mg_ratelimit_t *rl, op_t *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        rl->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    op->rl = NULL;
}

/* Redis could not decide: the configured policy does. */
static void
apply_policy(mg_ratelimit_t *rl, const op_t *op, mg_redis_err_t err, const char *why,
             mg_rl_result_t *res)
{
    mg_rl_counters_t *k = mg_rl_local_counters(rl->local);
    mg_redis_on_failure_t policy = mg_redis_conf(rl->redis)->on_failure;
    struct timespec ts;
    int64_t last;

    memset(res, 0, sizeof(*res));
    res->index = -1;
    switch (policy) {
    case MG_REDIS_FAIL_DENY:
        res->decision = MG_RL_UNAVAILABLE;
        res->source = MG_RL_SRC_NONE;
        res->retry_after_ms = UNAVAILABLE_RETRY_MS;
        atomic_fetch_add(&k->denied_unavailable, 1);
        break;
    case MG_REDIS_FAIL_ALLOW:
        res->decision = MG_RL_ALLOWED;
        res->source = MG_RL_SRC_NONE;
        atomic_fetch_add(&k->allowed_unchecked, 1);
        break;
    case MG_REDIS_FAIL_LOCAL:
    default:
        mg_rl_local_check_buckets(rl->local, op->b, op->n, mg_rl_now_us(), res);
        atomic_fetch_add(&k->fallbacks, 1);
        break;
    }
    /* A reply the limiter does not understand counts as an error reply. */
    res->redis_err = err == MG_REDIS_OK ? MG_REDIS_E_REPLY : err;
    if (err == MG_REDIS_E_CLOSED)
        return; /* shutting down: not a Redis failure */
    atomic_fetch_add(&k->errors, 1);
    if (err == MG_REDIS_E_TIMEOUT)
        atomic_fetch_add(&k->timeouts, 1);
    /* One line per second per process at most, whatever the request rate. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    last = atomic_load(&k->last_log_s);
    if (last != (int64_t)ts.tv_sec &&
        atomic_compare_exchange_strong(&k->last_log_s, &last, (int64_t)ts.tv_sec))
        mg_log_warn("rate limit: redis could not decide (%s); on_failure %s "
                    "(totals: %" PRIu64 " errors, %" PRIu64 " timeouts, %" PRIu64 " fallbacks)",
                    why, policy_name(policy), atomic_load(&k->errors), atomic_load(&k->timeouts),
                    atomic_load(&k->fallbacks));
}

static bool
parse_reply(const redisReply *r, const op_t *op, mg_rl_result_t *res)
{
    long long v[5];
    size_t idx;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5)
        return false;
    for (int i = 0; i < 5; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer < 0)
            return false;
        v[i] = r->element[i]->integer;
    }
    if (v[2] < 1 || (size_t)v[2] > op->n)
        return false;
    idx = (size_t)v[2] - 1;
    memset(res, 0, sizeof(*res));
    res->source = MG_RL_SRC_REDIS;
    res->decision = v[0] ? MG_RL_ALLOWED : MG_RL_LIMITED;
    res->index = (int)idx;
    res->limit = op->b[idx].burst;
    res->retry_after_ms = v[0] ? 0 : ((uint64_t)v[1] + 999u) / 1000u;
    res->remaining = v[3] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[3];
    res->reset_ms = ((uint64_t)v[4] + 999u) / 1000u;
    return true;
}

static void
on_eval(void *arg, mg_redis_err_t err, const redisReply *reply)
{
    op_t *op = arg;
    mg_ratelimit_t *rl = op->rl;
    mg_rl_result_t res;

    if (op->done) {
        free(op);
        return;
    }
    if (err == MG_REDIS_OK && parse_reply(reply, op, &res))
        ;
    else if (err == MG_REDIS_OK)
        apply_policy(rl, op, err, "unexpected script reply", &res);
    else if (err == MG_REDIS_E_REPLY)
        apply_policy(rl, op, err, reply && reply->str ? reply->str : "error reply", &res);
    else
        apply_policy(rl, op, err, mg_redis_strerror(err), &res);
    op_unlink(rl, op);
    op->cb(op->arg, &res);
    free(op);
}

mg_ratelimit_t *
mg_ratelimit_new(mg_redis_t *redis, mg_rl_local_t *local)
{
    mg_ratelimit_t *rl = NULL;

    if (redis == NULL || local == NULL)
        goto fail;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        goto fail;
    rl->redis = redis;
    rl->local = local;
    rl->script = mg_redis_script_register(redis, mg_rl_gcra_lua);
    if (rl->script == NULL)
        goto fail;
    return rl;
fail:
    free(rl);
    return NULL;
}

void
mg_ratelimit_free(mg_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    while (rl->ops) {
        op_t *op = rl->ops;
        mg_rl_result_t res;

        apply_policy(rl, op, MG_REDIS_E_CLOSED, "limiter closed", &res);
        op_unlink(rl, op);
        op->done = true; /* the Redis client still owes on_eval(), which frees it */
        op->cb(op->arg, &res);
    }
    free(rl);
}

/* Decimal digits of <v> into <out> (21 bytes at least), NUL-terminated; the length. */
static size_t
u64_dec(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

int
mg_ratelimit_check(mg_ratelimit_t *rl, const char *scope, const mg_rl_key_t *keys, size_t n,
                   mg_rl_cb *cb, void *arg)
{
    char keybuf[MG_RL_MAX_KEYS][MG_RL_REDIS_KEY_SIZE], argbuf[2 * MG_RL_MAX_KEYS][24];
    const char *kv[MG_RL_MAX_KEYS], *av[2 * MG_RL_MAX_KEYS];
    mg_rl_result_t res;
    uint8_t tag[8];
    bool have_tag = false;
    op_t *op = NULL;

    atomic_fetch_add(&mg_rl_local_counters(rl->local)->checks, 1);
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        goto fail;
    if (!mg_rl_resolve(scope, keys, n, op->b, &res))
        goto fail;
    op->n = n;
    op->cb = cb;
    op->arg = arg;
    for (size_t i = 0; i < n; i++) {
        const mg_rl_resolved_t *r = mg_rl_key_resolved(&keys[i]);
        if (r != NULL) {
            kv[i] = r->redis_key;
        } else {
            /* The bucket's digest is op->b[i]'s, just computed; the scope's tag is the
             * same for every key of the call. */
            if (!have_tag && !(have_tag = mg_rl_scope_tag(scope, tag)))
                goto fail;
            mg_rl_format_redis_key(tag, keys[i].kind, op->b[i].digest, keybuf[i]);
            kv[i] = keybuf[i];
        }
        u64_dec(keys[i].emission_interval_us, argbuf[2 * i]);
        u64_dec(keys[i].burst, argbuf[2 * i + 1]);
        av[2 * i] = argbuf[2 * i];
        av[2 * i + 1] = argbuf[2 * i + 1];
    }
    if (mg_redis_evalsha(rl->redis, rl->script, (int)n, kv, (int)(2 * n), av, on_eval, op) != 0)
        goto fail;
    op->rl = rl;
    op->next = rl->ops;
    if (rl->ops)
        rl->ops->prev = op;
    rl->ops = op;
    return 0;
fail:
    free(op);
    return -1;
}
