/* test_jose_cache.c -- unit tests of the verified-token cache: hits, expiry, key-set change, LRU eviction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/token_cache.h"
#include "mgtest.h"
#include "jose_testutil.h"

static tkey_t ec, ec2;
static mg_jwt_issuer_t *issuer;
static const char *aud = T_AUD;

static char *
token(const char *sub, int64_t exp)
{
    char p[512];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" T_ISS "\",\"sub\":\"%s\",\"aud\":\"" T_AUD "\",\"iat\":%lld,\"exp\":%lld}",
             sub, (long long)T_NOW, (long long)exp);
    return mint(&ec, MG_JWS_ES256, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"ec-1\"}", p);
}

static mg_jwt_reason_t
cv(mg_token_cache_t *c, const char *t, int64_t now, const mg_jwt_claims_t **out)
{
    const mg_jwt_claims_t *dummy;
    return mg_token_cache_verify(c, t, strlen(t), &issuer, 1, &aud, 1, now, out ? out : &dummy);
}

static void
test_cache_hit(void)
{
    mg_token_cache_t *c = mg_token_cache_new(8, 300);
    mg_token_cache_stats_t st;
    const mg_jwt_claims_t *a = NULL, *b = NULL;
    char *t = token("alice", T_NOW + 600);

    MG_CHECK_INT(cv(c, t, T_NOW, &a), MG_JWT_OK);
    MG_CHECK_INT(cv(c, t, T_NOW + 1, &b), MG_JWT_OK);
    MG_CHECK(a != NULL && a == b);
    MG_CHECK_STR(b->sub, "alice");
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.hits, 1);
    MG_CHECK_INT(st.misses, 1);
    MG_CHECK_INT(st.entries, 1);
    /* A bad token is never cached, and a tampered one never hits. */
    t[strlen(t) - 2] ^= 1;
    MG_CHECK(cv(c, t, T_NOW, NULL) != MG_JWT_OK);
    MG_CHECK(cv(c, t, T_NOW, NULL) != MG_JWT_OK);
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.hits, 1);
    MG_CHECK_INT(st.entries, 1);
    free(t);
    mg_token_cache_free(c);
}

static void
test_cache_expiry(void)
{
    mg_token_cache_t *c = mg_token_cache_new(8, 30);
    mg_token_cache_stats_t st;
    char *t = token("alice", T_NOW + 100);

    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);      /* miss, stored until now + 30 */
    MG_CHECK_INT(cv(c, t, T_NOW + 29, NULL), MG_JWT_OK); /* hit */
    MG_CHECK_INT(cv(c, t, T_NOW + 31, NULL), MG_JWT_OK); /* ttl over: verified again */
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.hits, 1);
    MG_CHECK_INT(st.misses, 2);
    /* Entry now ends at exp (T_NOW + 100 < T_NOW + 31 + 30? no: min is now+30). */
    MG_CHECK_INT(cv(c, t, T_NOW + 60, NULL), MG_JWT_OK); /* hit */
    MG_CHECK_INT(cv(c, t, T_NOW + 95, NULL), MG_JWT_OK); /* miss: stored until exp */
    MG_CHECK_INT(cv(c, t, T_NOW + 99, NULL), MG_JWT_OK); /* hit */
    MG_CHECK_INT(cv(c, t, T_NOW + 130, NULL), MG_JWT_OK); /* past exp, within leeway */
    MG_CHECK_INT(cv(c, t, T_NOW + 161, NULL), MG_JWT_EXPIRED);
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.hits, 3);
    MG_CHECK_INT(st.entries, 0);
    free(t);

    /* Time checks run on every hit: a clock stepping back makes iat future. */
    t = token("bob", T_NOW + 600);
    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);
    MG_CHECK_INT(cv(c, t, T_NOW - 1000, NULL), MG_JWT_IAT_IN_FUTURE);
    free(t);
    mg_token_cache_free(c);
}

static void
test_cache_keyset_change(void)
{
    mg_token_cache_t *c = mg_token_cache_new(8, 300);
    mg_token_cache_stats_t st;
    const char *same[] = {ec.jwk, NULL}, *other[] = {ec2.jwk, NULL};
    mg_jwks_t *ks_same = jwks_of(same, NULL, 0), *ks_other = jwks_of(other, NULL, 0);
    char *t = token("alice", T_NOW + 600);

    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);
    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);
    /* Same key material, new generation: re-verified (and still good). */
    mg_jwt_issuer_set_keys(issuer, ks_same);
    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.invalidations, 1);
    MG_CHECK_INT(st.hits, 1);
    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.hits, 2);
    /* The key is rotated out: the cached entry must not keep the token alive. */
    mg_jwt_issuer_set_keys(issuer, ks_other);
    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_KEY_NOT_FOUND);
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.invalidations, 2);
    MG_CHECK_INT(st.entries, 0);
    mg_jwt_issuer_set_keys(issuer, ks_same);
    mg_jwks_unref(ks_same);
    mg_jwks_unref(ks_other);
    free(t);
    mg_token_cache_free(c);
}

static void
test_cache_lru_eviction(void)
{
    mg_token_cache_t *c = mg_token_cache_new(2, 300);
    mg_token_cache_stats_t st;
    char *a = token("a", T_NOW + 600), *b = token("b", T_NOW + 600), *d = token("d", T_NOW + 600);

    MG_CHECK_INT(cv(c, a, T_NOW, NULL), MG_JWT_OK); /* miss */
    MG_CHECK_INT(cv(c, b, T_NOW, NULL), MG_JWT_OK); /* miss */
    MG_CHECK_INT(cv(c, a, T_NOW, NULL), MG_JWT_OK); /* hit: a most recent */
    MG_CHECK_INT(cv(c, d, T_NOW, NULL), MG_JWT_OK); /* miss: evicts b */
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.evictions, 1);
    MG_CHECK_INT(st.entries, 2);
    MG_CHECK_INT(cv(c, a, T_NOW, NULL), MG_JWT_OK); /* hit */
    MG_CHECK_INT(cv(c, d, T_NOW, NULL), MG_JWT_OK); /* hit */
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.hits, 3);
    MG_CHECK_INT(cv(c, b, T_NOW, NULL), MG_JWT_OK); /* miss: b was evicted */
    mg_token_cache_stats(c, &st);
    MG_CHECK_INT(st.misses, 4);
    MG_CHECK_INT(st.evictions, 2);
    free(a);
    free(b);
    free(d);
    mg_token_cache_free(c);
}

static void
test_cache_route_checks(void)
{
    mg_token_cache_t *c = mg_token_cache_new(8, 300);
    mg_jwt_issuer_t *other = mg_jwt_issuer_new("https://other.example");
    const char *aud2 = "https://other.example/mcp";
    const mg_jwt_claims_t *cl;
    char *t = token("alice", T_NOW + 600);

    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);
    /* Same worker, another route: its audience and issuers apply to a hit. */
    MG_CHECK_INT(mg_token_cache_verify(c, t, strlen(t), &issuer, 1, &aud2, 1, T_NOW, &cl),
                 MG_JWT_AUD_MISMATCH);
    MG_CHECK(cl == NULL);
    MG_CHECK_INT(cv(c, t, T_NOW, NULL), MG_JWT_OK);
    MG_CHECK_INT(mg_token_cache_verify(c, t, strlen(t), &other, 1, &aud, 1, T_NOW, &cl),
                 MG_JWT_ISS_MISMATCH);
    /* Capacity 0: no caching, results still returned. */
    mg_token_cache_t *off = mg_token_cache_new(0, 300);
    MG_CHECK_INT(mg_token_cache_verify(off, t, strlen(t), &issuer, 1, &aud, 1, T_NOW, &cl), MG_JWT_OK);
    MG_CHECK(cl && strcmp(cl->sub, "alice") == 0);
    MG_CHECK_INT(mg_token_cache_verify(off, t, strlen(t), &issuer, 1, &aud, 1, T_NOW, &cl), MG_JWT_OK);
    mg_token_cache_free(off);
    mg_token_cache_free(NULL);
    mg_jwt_issuer_free(other);
    free(t);
    mg_token_cache_free(c);
}

/* mg_jwt_peek_header: the unverified kid and iss that choose a refetch. */
static void
test_peek_header(void)
{
    char *t = token("bob", T_NOW + 600), *kid = NULL, *iss = NULL;
    char *nokid = mint(&ec, MG_JWS_ES256, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}",
                       "{\"iss\":\"" T_ISS "\",\"sub\":\"x\"}");
    char *noiss = mint(&ec, MG_JWS_ES256, "{\"alg\":\"ES256\",\"kid\":\"k\"}", "{\"sub\":\"x\"}");
    char *badkid = mint(&ec, MG_JWS_ES256, "{\"alg\":\"ES256\",\"kid\":7}", "{\"iss\":\"a\"}");

    MG_CHECK_INT(mg_jwt_peek_header(t, strlen(t), &kid, &iss), MG_JWT_OK);
    MG_CHECK_STR(kid, "ec-1");
    MG_CHECK_STR(iss, T_ISS);
    free(kid);
    free(iss);
    MG_CHECK_INT(mg_jwt_peek_header(nokid, strlen(nokid), &kid, &iss), MG_JWT_OK);
    MG_CHECK(kid == NULL);
    MG_CHECK_STR(iss, T_ISS);
    free(iss);
    MG_CHECK_INT(mg_jwt_peek_header(noiss, strlen(noiss), &kid, &iss), MG_JWT_ISS_MISMATCH);
    MG_CHECK(kid == NULL && iss == NULL);
    MG_CHECK_INT(mg_jwt_peek_header(badkid, strlen(badkid), &kid, &iss), MG_JWT_MALFORMED);
    MG_CHECK(kid == NULL && iss == NULL);
    MG_CHECK_INT(mg_jwt_peek_header("a.b", 3, &kid, &iss), MG_JWT_MALFORMED);
    MG_CHECK_INT(mg_jwt_peek_header("e30.e30.!", 9, &kid, &iss), MG_JWT_BAD_ENCODING);
    MG_CHECK(kid == NULL && iss == NULL);
    free(t);
    free(nokid);
    free(noiss);
    free(badkid);
}

static int memo_frees;

static void
count_memo_free(void *p)
{
    memo_frees++;
    free(p);
}

/* A hit shares the entry (mg_jwt_claims_ref), so what a consumer derives from it (the memo)
 * is kept for the token's next request, belongs to that token only, and is freed once, by
 * whoever drops the last reference. */
static void
test_cache_claims_shared(void)
{
    mg_token_cache_t *c = mg_token_cache_new(1, 300);
    const mg_jwt_claims_t *a = NULL, *a2 = NULL, *b = NULL;
    mg_jwt_claims_t *held, *copy;
    char *ta = token("alice", T_NOW + 600), *tb = token("bob", T_NOW + 600);

    memo_frees = 0;
    MG_CHECK_INT(cv(c, ta, T_NOW, &a), MG_JWT_OK);
    held = mg_jwt_claims_ref(a);
    MG_CHECK(held == a && held->refs == 1 && held->memo == NULL);
    held->memo = strdup("alice's derived values");
    held->memo_free = count_memo_free;
    /* The next request with the same token finds the memo. */
    MG_CHECK_INT(cv(c, ta, T_NOW + 1, &a2), MG_JWT_OK);
    MG_CHECK(a2 == held);
    MG_CHECK_STR((const char *)a2->memo, "alice's derived values");
    /* A copy is the claims alone. */
    copy = mg_jwt_claims_dup(a2);
    MG_CHECK(copy != NULL && copy->memo == NULL && copy->memo_free == NULL && copy->refs == 0);
    MG_CHECK_STR(copy->sub, "alice");
    mg_jwt_claims_free(copy);
    MG_CHECK_INT(memo_frees, 0);
    /* Another token never sees it; it evicts alice's entry (capacity 1), whose claims and
     * memo stay alive for the holder. */
    MG_CHECK_INT(cv(c, tb, T_NOW + 2, &b), MG_JWT_OK);
    MG_CHECK(b != held && b->memo == NULL);
    MG_CHECK_STR(b->sub, "bob");
    MG_CHECK_INT(memo_frees, 0);
    MG_CHECK_STR(held->sub, "alice");
    MG_CHECK_STR((const char *)held->memo, "alice's derived values");
    /* Alice again: verified anew, a fresh entry without the old memo. */
    MG_CHECK_INT(cv(c, ta, T_NOW + 3, &a2), MG_JWT_OK);
    MG_CHECK(a2 != held && a2->memo == NULL);
    mg_jwt_claims_free(held);
    MG_CHECK_INT(memo_frees, 1);
    /* The cache's own reference: freeing the cache frees a memo set on an entry. */
    mg_jwt_claims_ref(a2)->memo = strdup("x");
    ((mg_jwt_claims_t *)a2)->memo_free = count_memo_free;
    mg_jwt_claims_free((mg_jwt_claims_t *)a2); /* the holder's reference */
    MG_CHECK_INT(memo_frees, 1);
    mg_token_cache_free(c);
    MG_CHECK_INT(memo_frees, 2);
    free(ta);
    free(tb);
}

int
main(void)
{
    const char *list[] = {NULL, NULL};
    mg_jwks_t *ks;

    tkey_make(&ec, "EC", "P-256", 0, "ec-1", MG_JWS_ES256);
    tkey_make(&ec2, "EC", "P-256", 0, "ec-2", MG_JWS_ES256);
    list[0] = ec.jwk;
    ks = jwks_of(list, NULL, 0);
    issuer = mg_jwt_issuer_new(T_ISS);
    mg_jwt_issuer_set_keys(issuer, ks);
    mg_jwks_unref(ks);

    MG_RUN(test_cache_hit);
    MG_RUN(test_cache_expiry);
    MG_RUN(test_cache_keyset_change);
    MG_RUN(test_cache_lru_eviction);
    MG_RUN(test_cache_route_checks);
    MG_RUN(test_peek_header);
    MG_RUN(test_cache_claims_shared);

    mg_jwt_issuer_free(issuer);
    tkey_free(&ec);
    tkey_free(&ec2);
    return mg_test_done();
}
