/* token_cache.c -- per-thread LRU of verified token claims keyed by SHA-256 of the token (SPEC T-02, T-18). */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "jose_int.h"
#include "mcpgate/jwt.h"
#include "mcpgate/token_cache.h"

typedef struct entry {
    uint8_t key[32];             /* SHA-256 of the token; the token itself is never kept */
    mg_jwt_claims_t *claims;
    int64_t expires;             /* min(exp, inserted + ttl) */
    struct entry *prev, *next;   /* LRU list, most recent first */
    struct entry *hnext;         /* hash chain */
} entry_t;

struct mg_token_cache {
    size_t capacity, n, nbuckets;
    int64_t ttl;
    entry_t **buckets;
    entry_t *head, *tail;
    mg_jwt_claims_t *scratch;    /* result not stored in the cache; freed on the next call */
    mg_token_cache_stats_t stats;
};

mg_token_cache_t *
mg_token_cache_new(size_t capacity, int64_t ttl)
{
    mg_token_cache_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->capacity = ttl > 0 ? capacity : 0;
    c->ttl = ttl;
    if (c->capacity > 0) {
        /* Load factor at most 1/2, power of two for masking. */
        c->nbuckets = 16;
        while (c->nbuckets < 2 * c->capacity)
            c->nbuckets *= 2;
        if ((c->buckets = calloc(c->nbuckets, sizeof(entry_t *))) == NULL) {
            free(c);
            return NULL;
        }
    }
    return c;
}

static size_t
bucket_of(const mg_token_cache_t *c, const uint8_t *key)
{
    uint64_t h;

    memcpy(&h, key, sizeof(h)); /* SHA-256 output is already uniform */
    return (size_t)(h & (c->nbuckets - 1));
}

static void
lru_unlink(mg_token_cache_t *c, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void
lru_push_front(mg_token_cache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void
entry_remove(mg_token_cache_t *c, entry_t *e)
{
    entry_t **pp = &c->buckets[bucket_of(c, e->key)];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(c, e);
    mg_jwt_claims_free(e->claims);
    free(e);
    c->n--;
}

static entry_t *
entry_find(mg_token_cache_t *c, const uint8_t *key)
{
    for (entry_t *e = c->buckets[bucket_of(c, key)]; e; e = e->hnext)
        if (memcmp(e->key, key, sizeof(e->key)) == 0)
            return e;
    return NULL;
}

void
mg_token_cache_free(mg_token_cache_t *c)
{
    if (c == NULL)
        return;
    while (c->head)
        entry_remove(c, c->head);
    mg_jwt_claims_free(c->scratch);
    free(c->buckets);
    free(c);
}

void
mg_token_cache_stats(const mg_token_cache_t *c, mg_token_cache_stats_t *out)
{
    *out = c->stats;
    out->entries = c->n;
}

static bool
issuer_listed(mg_jwt_issuer_t *is, mg_jwt_issuer_t *const *issuers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (issuers[i] == is)
            return true;
    return false;
}

mg_jwt_reason_t
mg_token_cache_verify(mg_token_cache_t *c, const char *token, size_t len,
                      mg_jwt_issuer_t *const *issuers, size_t n_issuers,
                      const char *const *audiences, size_t n_audiences, int64_t now,
                      const mg_jwt_claims_t **claims_out)
{
    uint8_t key[32];
    bool have_key = false;
    entry_t *e = NULL;
    mg_jwt_claims_t *claims = NULL;
    mg_jwt_reason_t r;

    if (claims_out)
        *claims_out = NULL;
    mg_jwt_claims_free(c->scratch);
    c->scratch = NULL;
    if (c->capacity == 0 || jose_sha256(token, len, key) != 0)
        goto verify;
    have_key = true;
    if ((e = entry_find(c, key)) != NULL) {
        mg_jwt_claims_t *ec = e->claims;
        if (now >= e->expires || !issuer_listed(ec->issuer, issuers, n_issuers) ||
            !mg_jwt_claims_aud_matches(ec, audiences, n_audiences)) {
            entry_remove(c, e);
            goto verify;
        }
        /* The issuer's key set was replaced: what it vouched for is re-proven. */
        if (mg_jwt_issuer_keys_generation(ec->issuer) != ec->keys_generation) {
            c->stats.invalidations++;
            entry_remove(c, e);
            goto verify;
        }
        /* Time moves: exp/nbf/iat are checked again on every hit. */
        if ((r = mg_jwt_check_time(ec, mg_jwt_issuer_leeway(ec->issuer), now)) != MG_JWT_OK) {
            entry_remove(c, e);
            return r;
        }
        c->stats.hits++;
        lru_unlink(c, e);
        lru_push_front(c, e);
        if (claims_out)
            *claims_out = ec;
        return MG_JWT_OK;
    }
verify:
    if (c->capacity > 0)
        c->stats.misses++;
    r = mg_jwt_verify(token, len, issuers, n_issuers, audiences, n_audiences, now, &claims);
    if (r != MG_JWT_OK)
        return r;
    int64_t expires = claims->exp;
    if (c->capacity > 0 && now + c->ttl < expires)
        expires = now + c->ttl;
    if (c->capacity > 0 && have_key && expires > now &&
        (e = calloc(1, sizeof(*e))) != NULL) {
        if (c->n >= c->capacity) {
            c->stats.evictions++;
            entry_remove(c, c->tail);
        }
        memcpy(e->key, key, sizeof(key));
        e->claims = claims;
        e->expires = expires;
        size_t b = bucket_of(c, key);
        e->hnext = c->buckets[b];
        c->buckets[b] = e;
        lru_push_front(c, e);
        c->n++;
    } else {
        c->scratch = claims;
    }
    if (claims_out)
        *claims_out = claims;
    return MG_JWT_OK;
}
