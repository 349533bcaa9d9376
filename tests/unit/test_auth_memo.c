/* test_auth_memo.c -- unit tests of the rate-limit keys remembered with a cached token
 * (src/core/auth.c). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/core_int.h"
#include "jose_testutil.h"
#include "mcpgate/ratelimit.h"
#include "mcpgate/token_cache.h"
#include "mgtest.h"

#define SEC UINT64_C(1000000)

static tkey_t ec;
static mg_jwt_issuer_t *issuer;
static const char *aud = T_AUD;
static mg_conf_rate_limit_t lines[2];
static mg_conf_route_t routes[2];
static mg_conf_t conf;
static mg_gen_t gen;

static char *
token(const char *sub, const char *client_id)
{
    char p[512];

    snprintf(p, sizeof(p),
             "{\"iss\":\"" T_ISS "\",\"sub\":\"%s\",\"client_id\":\"%s\",\"aud\":\"" T_AUD
             "\",\"iat\":%lld,\"exp\":%lld}",
             sub, client_id, (long long)T_NOW, (long long)T_NOW + 600);
    return mint(&ec, MG_JWS_ES256, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"ec-1\"}", p);
}

/* What auth_check does on a hit: verify through the cache, keep a reference. */
static mg_jwt_claims_t *
auth(mg_token_cache_t *c, const char *t, int64_t now)
{
    const mg_jwt_claims_t *cl = NULL;

    if (mg_token_cache_verify(c, t, strlen(t), &issuer, 1, &aud, 1, now, &cl) != MG_JWT_OK)
        return NULL;
    return mg_jwt_claims_ref(cl);
}

/* The subject key rl_keys() builds for these claims. */
static mg_rl_key_t
subject_key(const mg_jwt_claims_t *cl, char *buf, size_t size)
{
    snprintf(buf, size, "%s\n%s", cl->iss, cl->sub);
    return (mg_rl_key_t){"subject", buf, lines[0].interval_us, lines[0].burst, NULL};
}

static mg_rl_key_t
client_key(const mg_jwt_claims_t *cl, char *buf, size_t size)
{
    snprintf(buf, size, "%s\n%s", cl->iss, cl->client_id ? cl->client_id : "");
    return (mg_rl_key_t){"client", buf, lines[1].interval_us, lines[1].burst, NULL};
}

static void
test_memo_per_token(void)
{
    mg_token_cache_t *c = mg_token_cache_new(8, 300);
    char *ta = token("alice", "app1"), *tb = token("bob", "app1"), *ta2 = token("alice", "app2");
    mg_jwt_claims_t *a = auth(c, ta, T_NOW), *b = auth(c, tb, T_NOW), *a2 = auth(c, ta2, T_NOW);
    mg_rl_memo_t *ma, *mb, *ma2;
    const mg_rl_key_t *k;
    mg_rl_resolved_t want;
    char buf[256], rk[MG_RL_REDIS_KEY_SIZE];
    mg_rl_key_t key;

    MG_CHECK(a != NULL && b != NULL && a2 != NULL);
    ma = mg_auth_rl_memo(a, &gen, 0);
    MG_CHECK(ma != NULL);
    MG_CHECK(mg_rl_memo_get(ma, 0) == NULL && mg_rl_memo_get(ma, 1) == NULL);
    /* First request: worked out, remembered, resolved exactly as the limiters would. */
    key = subject_key(a, buf, sizeof(buf));
    k = mg_rl_memo_put(ma, 0, routes[0].path, &key);
    MG_CHECK(k != NULL && k->id != buf && k->resolved != NULL);
    MG_CHECK_STR(k->id, T_ISS "\nalice");
    MG_CHECK_STR(k->kind, "subject");
    MG_CHECK_INT(mg_rl_key_resolve(routes[0].path, &key, &want), 0);
    MG_CHECK(memcmp(k->resolved->digest, want.digest, sizeof(want.digest)) == 0);
    MG_CHECK_INT(mg_rl_redis_key(routes[0].path, &key, rk, sizeof(rk)),
                 strlen(k->resolved->redis_key));
    MG_CHECK_STR(k->resolved->redis_key, rk);
    key = client_key(a, buf, sizeof(buf));
    MG_CHECK(mg_rl_memo_put(ma, 1, routes[0].path, &key) != NULL);
    MG_CHECK(mg_rl_memo_put(ma, 1, routes[0].path, &key) == NULL); /* once per line */
    mg_jwt_claims_free(a);

    /* The token's next request (a cache hit) finds both keys. */
    a = auth(c, ta, T_NOW + 1);
    MG_CHECK(mg_auth_rl_memo(a, &gen, 0) == ma);
    MG_CHECK((k = mg_rl_memo_get(ma, 0)) != NULL && strcmp(k->id, T_ISS "\nalice") == 0);
    MG_CHECK((k = mg_rl_memo_get(ma, 1)) != NULL && strcmp(k->id, T_ISS "\napp1") == 0);

    /* Other tokens (another subject; the same subject with another client) have their own
     * memo: nothing of alice's is reused. */
    mb = mg_auth_rl_memo(b, &gen, 0);
    ma2 = mg_auth_rl_memo(a2, &gen, 0);
    MG_CHECK(mb != NULL && ma2 != NULL && mb != ma && ma2 != ma && mb != ma2);
    MG_CHECK(mg_rl_memo_get(mb, 0) == NULL && mg_rl_memo_get(ma2, 1) == NULL);
    key = client_key(a2, buf, sizeof(buf));
    MG_CHECK((k = mg_rl_memo_put(ma2, 1, routes[0].path, &key)) != NULL);
    MG_CHECK_STR(k->id, T_ISS "\napp2");
    MG_CHECK(memcmp(k->resolved->digest, mg_rl_memo_get(ma, 1)->resolved->digest,
                    MG_RL_ID_DIGEST_LEN) != 0);

    mg_jwt_claims_free(a);
    mg_jwt_claims_free(b);
    mg_jwt_claims_free(a2);
    mg_token_cache_free(c);
    free(ta);
    free(tb);
    free(ta2);
}

/* Another route or another generation (other lines, other limits): start again. */
static void
test_memo_route_and_generation(void)
{
    mg_token_cache_t *c = mg_token_cache_new(8, 300);
    char *t = token("carol", "app1"), buf[256];
    mg_jwt_claims_t *cl = auth(c, t, T_NOW), *own;
    mg_rl_memo_t *m;
    mg_rl_key_t key;

    MG_CHECK(cl != NULL);
    m = mg_auth_rl_memo(cl, &gen, 0);
    key = subject_key(cl, buf, sizeof(buf));
    MG_CHECK(m != NULL && mg_rl_memo_put(m, 0, routes[0].path, &key) != NULL);
    m = mg_auth_rl_memo(cl, &gen, 1);
    MG_CHECK(m != NULL && mg_rl_memo_get(m, 0) == NULL);
    MG_CHECK(mg_rl_memo_put(m, 1, routes[1].path, &key) == NULL); /* route 1 has one line */
    MG_CHECK(mg_rl_memo_put(m, 0, routes[1].path, &key) != NULL);
    gen.serial++;
    m = mg_auth_rl_memo(cl, &gen, 1);
    MG_CHECK(m != NULL && mg_rl_memo_get(m, 0) == NULL);
    gen.serial--;
    /* Claims held by the caller alone (no cache) end with the request: no memo. */
    own = mg_jwt_claims_dup(cl);
    MG_CHECK(own != NULL && mg_auth_rl_memo(own, &gen, 0) == NULL);
    mg_jwt_claims_free(own);
    /* Nor for a route without limits. */
    routes[1].nrate_limits = 0;
    MG_CHECK(mg_auth_rl_memo(cl, &gen, 1) == NULL);
    routes[1].nrate_limits = 1;
    mg_jwt_claims_free(cl);
    mg_token_cache_free(c);
    free(t);
}

/* A resolved key is the same bucket as the key itself, in the in-process limiter; a
 * resolution made for other limits is not used. */
static void
test_resolved_same_bucket(void)
{
    mg_rl_local_t *l = mg_rl_local_new(0);
    mg_rl_key_t plain = {"subject", "iss\nalice", 60 * SEC, 1, NULL}, res = plain, other;
    mg_rl_resolved_t r;
    mg_rl_result_t out;

    MG_CHECK_INT(mg_rl_key_resolve("/mcp", &plain, &r), 0);
    res.resolved = &r;
    MG_CHECK_INT(mg_rl_local_check_at(l, "/mcp", &res, 1, 1000 * SEC, &out), MG_RL_ALLOWED);
    MG_CHECK_INT(mg_rl_local_check_at(l, "/mcp", &plain, 1, 1000 * SEC, &out), MG_RL_LIMITED);
    MG_CHECK_INT(mg_rl_local_check_at(l, "/mcp", &res, 1, 1000 * SEC, &out), MG_RL_LIMITED);
    /* Burst 2 is another bucket: the burst-1 resolution must not stand in for it. */
    other = res;
    other.burst = 2;
    MG_CHECK_INT(mg_rl_local_check_at(l, "/mcp", &other, 1, 1000 * SEC, &out), MG_RL_ALLOWED);
    MG_CHECK_INT(mg_rl_local_size(l), 2);
    /* Invalid keys stay invalid, resolved or not. */
    other.burst = 0;
    MG_CHECK_INT(mg_rl_key_resolve("/mcp", &other, &r), -1);
    MG_CHECK_INT(mg_rl_local_check_at(l, "/mcp", &other, 1, 1000 * SEC, &out), MG_RL_INVALID);
    mg_rl_local_free(l);
}

int
main(void)
{
    const char *list[] = {NULL, NULL};
    mg_jwks_t *ks;

    tkey_make(&ec, "EC", "P-256", 0, "ec-1", MG_JWS_ES256);
    list[0] = ec.jwk;
    ks = jwks_of(list, NULL, 0);
    issuer = mg_jwt_issuer_new(T_ISS);
    mg_jwt_issuer_set_keys(issuer, ks);
    mg_jwks_unref(ks);
    lines[0] = (mg_conf_rate_limit_t){
        .kind = MG_CONF_RL_SUBJECT, .count = 10, .period_s = 1, .burst = 10, .interval_us = 100000};
    lines[1] = (mg_conf_rate_limit_t){
        .kind = MG_CONF_RL_CLIENT, .count = 5, .period_s = 1, .burst = 5, .interval_us = 200000};
    routes[0].path = (char *)"/mcp";
    routes[0].rate_limits = lines;
    routes[0].nrate_limits = 2;
    routes[1].path = (char *)"/other";
    routes[1].rate_limits = lines;
    routes[1].nrate_limits = 1;
    conf.routes = routes;
    conf.nroutes = 2;
    gen.serial = 7;
    gen.conf = &conf;

    MG_RUN(test_memo_per_token);
    MG_RUN(test_memo_route_and_generation);
    MG_RUN(test_resolved_same_bucket);

    mg_jwt_issuer_free(issuer);
    tkey_free(&ec);
    return mg_test_done();
}
