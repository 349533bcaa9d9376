/* ratelimit_local.c -- in-process GCRA limiter (one per process, locked) and key resolution. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "mcpgate/ratelimit.h"
#include "store_int.h"

#define DEFAULT_MAX_ENTRIES 100000u

typedef struct entry {
    struct entry *next;
    uint8_t digest[MG_RL_DIGEST_LEN];
    uint64_t tat_us; /* theoretical arrival time; <= now means "full bucket" */
} entry_t;

struct mg_rl_local {
    pthread_mutex_t lock;
    entry_t **slots;
    size_t nslots; /* power of two */
    size_t count, max_entries;
    mg_rl_counters_t counters; /* atomics: read without the lock */
};

uint64_t
mg_rl_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
mg_rl_interval_us(uint32_t count, uint64_t period_ms)
{
    if (count == 0)
        return 0;
    return (period_ms * 1000u + count - 1) / count;
}

const char *
mg_rl_decision_name(mg_rl_decision_t d)
{
    switch (d) {
    case MG_RL_ALLOWED:
        return "allowed";
    case MG_RL_LIMITED:
        return "limited";
    case MG_RL_UNAVAILABLE:
        return "unavailable";
    case MG_RL_INVALID:
        return "invalid";
    }
    return "unknown";
}

/* ---- key resolution ---- */

/* Every check hashes its buckets' identities: SHA-256 is fetched once per process
 * (EVP_sha256() would be fetched again on every init) and each thread reuses one
 * digest context, freed when the thread ends. */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha_md;
static pthread_key_t sha_key;
static bool sha_key_ok;
static _Thread_local EVP_MD_CTX *sha_ctx;

static void
sha_ctx_destructor(void *p)
{
    if (sha_ctx == p)
        sha_ctx = NULL;
    EVP_MD_CTX_free(p);
}

static void
sha_init_once(void)
{
    sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha_key_ok = pthread_key_create(&sha_key, sha_ctx_destructor) == 0;
}

/* This thread's context; NULL when it cannot be had (the caller makes its own). */
static EVP_MD_CTX *
thread_sha_ctx(void)
{
    EVP_MD_CTX *md = sha_ctx;

    if (md != NULL)
        return md;
    pthread_once(&sha_once, sha_init_once);
    if (!sha_key_ok || (md = EVP_MD_CTX_new()) == NULL)
        return NULL;
    if (pthread_setspecific(sha_key, md) != 0) {
        EVP_MD_CTX_free(md);
        return NULL;
    }
    sha_ctx = md;
    return md;
}

/* The digest input is collected here and handed to the digest in one update
 * (a few for very long ids). */
typedef struct fields {
    EVP_MD_CTX *md;
    size_t len;
    bool ok;
    uint8_t buf[512];
} fields_t;

static void
fields_put(fields_t *f, const void *p, size_t len)
{
    if (len > sizeof(f->buf) - f->len) {
        f->ok = f->ok && EVP_DigestUpdate(f->md, f->buf, f->len) == 1;
        f->len = 0;
        if (len > sizeof(f->buf)) {
            f->ok = f->ok && EVP_DigestUpdate(f->md, p, len) == 1;
            return;
        }
    }
    memcpy(f->buf + f->len, p, len);
    f->len += len;
}

static void
digest_field(fields_t *f, const void *p, size_t len)
{
    uint8_t be[8];

    /* Length-prefixed, so that ("ab","c") and ("a","bc") differ. */
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    fields_put(f, be, sizeof(be));
    fields_put(f, p, len);
}

static bool
sha256_fields(const char *tag, const char *scope, const mg_rl_key_t *k, uint8_t *out, size_t outlen)
{
    EVP_MD_CTX *own = NULL;
    fields_t f;
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    bool ok = false;

    f.md = thread_sha_ctx();
    if (f.md == NULL && (f.md = own = EVP_MD_CTX_new()) == NULL)
        return false;
    f.len = 0;
    f.ok = EVP_DigestInit_ex2(f.md, sha_md != NULL ? sha_md : EVP_sha256(), NULL) == 1;
    digest_field(&f, tag, strlen(tag));
    digest_field(&f, scope, strlen(scope));
    if (k) {
        uint8_t num[12];
        digest_field(&f, k->kind, strlen(k->kind));
        digest_field(&f, k->id, strlen(k->id));
        for (int i = 0; i < 8; i++)
            num[i] = (uint8_t)(k->emission_interval_us >> (56 - 8 * i));
        for (int i = 0; i < 4; i++)
            num[8 + i] = (uint8_t)(k->burst >> (24 - 8 * i));
        digest_field(&f, num, sizeof(num));
    }
    if (!f.ok || EVP_DigestUpdate(f.md, f.buf, f.len) != 1 ||
        EVP_DigestFinal_ex(f.md, full, &len) != 1 || len < outlen)
        goto done;
    memcpy(out, full, outlen);
    ok = true;
done:
    EVP_MD_CTX_free(own);
    return ok;
}

static void
fill_invalid(mg_rl_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->decision = MG_RL_INVALID;
    r->source = MG_RL_SRC_NONE;
    r->index = -1;
}

static bool
key_valid(const mg_rl_key_t *k)
{
    return k->kind && k->id && k->emission_interval_us >= 1 && k->burst >= 1 &&
           k->emission_interval_us <= MG_RL_MAX_WINDOW_US / k->burst;
}

const mg_rl_resolved_t *
mg_rl_key_resolved(const mg_rl_key_t *key)
{
    const mg_rl_resolved_t *r = key->resolved;

    return r != NULL && r->emission_interval_us == key->emission_interval_us &&
                   r->burst == key->burst
               ? r
               : NULL;
}

bool
mg_rl_resolve(const char *scope, const mg_rl_key_t *keys, size_t n, mg_rl_bucket_t *out,
              mg_rl_result_t *result)
{
    if (scope == NULL)
        scope = "";
    if (keys == NULL || n == 0 || n > MG_RL_MAX_KEYS)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const mg_rl_resolved_t *r;
        if (!key_valid(&keys[i]))
            goto fail;
        if ((r = mg_rl_key_resolved(&keys[i])) != NULL)
            memcpy(out[i].digest, r->digest, MG_RL_DIGEST_LEN);
        else if (!sha256_fields("mg-rl-bucket-v1", scope, &keys[i], out[i].digest,
                                MG_RL_DIGEST_LEN))
            goto fail;
        out[i].interval_us = keys[i].emission_interval_us;
        out[i].burst = keys[i].burst;
    }
    return true;
fail:
    fill_invalid(result);
    return false;
}

static char *
hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    return out + 2 * n;
}

bool
mg_rl_scope_tag(const char *scope, uint8_t tag[8])
{
    return sha256_fields("mg-rl-scope-v1", scope != NULL ? scope : "", NULL, tag, 8);
}

size_t
mg_rl_format_redis_key(const uint8_t tag[8], const char *kind,
                       const uint8_t digest[MG_RL_DIGEST_LEN], char buf[MG_RL_REDIS_KEY_SIZE])
{
    char *p = buf;
    size_t i;

    memcpy(p, "mg:rl:{", 7);
    p = hex(tag, 8, p + 7);
    *p++ = '}';
    *p++ = ':';
    /* The kind is only a readable label (the digest is the identity): keep
     * it to [a-z0-9_], so that it can never contain a brace. */
    for (i = 0; kind[i] && i < 16; i++) {
        char ch = kind[i];
        *p++ = ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) ? ch : '_';
    }
    *p++ = ':';
    p = hex(digest, MG_RL_DIGEST_LEN, p);
    *p = '\0';
    return (size_t)(p - buf);
}

int
mg_rl_redis_key(const char *scope, const mg_rl_key_t *key, char *buf, size_t size)
{
    uint8_t tag[8], dig[MG_RL_DIGEST_LEN];
    char tmp[MG_RL_REDIS_KEY_SIZE];
    size_t n;

    if (scope == NULL)
        scope = "";
    if (!key_valid(key) || !mg_rl_scope_tag(scope, tag) ||
        !sha256_fields("mg-rl-bucket-v1", scope, key, dig, sizeof(dig)))
        return -1;
    n = mg_rl_format_redis_key(tag, key->kind, dig, tmp);
    if (n >= size)
        return -1;
    memcpy(buf, tmp, n + 1);
    return (int)n;
}

int
mg_rl_key_resolve(const char *scope, const mg_rl_key_t *key, mg_rl_resolved_t *out)
{
    uint8_t tag[8];
    size_t n;

    memset(out, 0, sizeof(*out));
    if (scope == NULL)
        scope = "";
    if (!key_valid(key) || !mg_rl_scope_tag(scope, tag) ||
        !sha256_fields("mg-rl-bucket-v1", scope, key, out->digest, sizeof(out->digest)))
        return -1;
    n = mg_rl_format_redis_key(tag, key->kind, out->digest, out->redis_key);
    out->redis_key_len = (uint8_t)n;
    out->emission_interval_us = key->emission_interval_us;
    out->burst = key->burst;
    return 0;
}

/* ---- GCRA ---- */

typedef struct verdict {
    bool admit;
    uint64_t new_tat, retry_us, reset_us;
    uint32_t remaining;
} verdict_t;

static verdict_t
gcra(uint64_t stored_tat, uint64_t now, uint64_t T, uint32_t B)
{
    verdict_t v = {0};
    uint64_t tat = stored_tat > now ? stored_tat : now;
    uint64_t nt = tat + T, cap = (uint64_t)B * T;

    if (nt - now > cap) {
        v.retry_us = nt - now - cap;
        v.reset_us = tat - now;
    } else {
        v.admit = true;
        v.new_tat = nt;
        v.remaining = (uint32_t)((cap - (nt - now)) / T);
        v.reset_us = nt - now;
    }
    return v;
}

static uint64_t
ceil_ms(uint64_t us)
{
    return (us + 999u) / 1000u;
}

static size_t
slot_of(const mg_rl_local_t *l, const uint8_t *digest)
{
    uint64_t h;

    memcpy(&h, digest, sizeof(h));
    return (size_t)(h & (l->nslots - 1));
}

static entry_t *
lookup(mg_rl_local_t *l, const uint8_t *digest)
{
    for (entry_t *e = l->slots[slot_of(l, digest)]; e; e = e->next)
        if (memcmp(e->digest, digest, MG_RL_DIGEST_LEN) == 0)
            return e;
    return NULL;
}

/* Drop entries with debt <= limit_us (limit 0: the stale ones, which are
 * the same as absent). Returns how many were dropped. */
static size_t
sweep(mg_rl_local_t *l, uint64_t now, uint64_t limit_us, uint64_t *debt_sum)
{
    size_t dropped = 0;

    *debt_sum = 0;
    for (size_t s = 0; s < l->nslots; s++) {
        entry_t **pp = &l->slots[s];
        while (*pp) {
            entry_t *e = *pp;
            uint64_t debt = e->tat_us > now ? e->tat_us - now : 0;
            if (debt <= limit_us) {
                *pp = e->next;
                free(e);
                l->count--;
                dropped++;
            } else {
                *debt_sum += debt;
                pp = &e->next;
            }
        }
    }
    return dropped;
}

/* Make room for <need> new entries. Stale buckets go first (no effect on any
 * decision); if the table is still full of live buckets, those with at most
 * the average debt go (they are the closest to full anyway): forgiving a
 * little debt is the price of bounded memory. Amortised O(1) per insert. */
static void
make_room(mg_rl_local_t *l, uint64_t now, size_t need)
{
    uint64_t sum;

    if (l->count + need <= l->max_entries)
        return;
    sweep(l, now, 0, &sum);
    if (l->count + need <= l->max_entries)
        return;
    sweep(l, now, l->count ? sum / l->count : 0, &sum);
    while (l->count + need > l->max_entries && l->count > 0)
        sweep(l, now, UINT64_MAX, &sum);
}

mg_rl_decision_t
mg_rl_local_check_buckets(mg_rl_local_t *l, const mg_rl_bucket_t *b, size_t n, uint64_t now,
                          mg_rl_result_t *res)
{
    verdict_t v[MG_RL_MAX_KEYS];
    entry_t *found[MG_RL_MAX_KEYS];
    size_t missing = 0;
    int worst = -1, tight = -1;

    memset(res, 0, sizeof(*res));
    res->source = MG_RL_SRC_LOCAL;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < n; i++) {
        found[i] = lookup(l, b[i].digest);
        if (found[i] == NULL)
            missing++;
        v[i] = gcra(found[i] ? found[i]->tat_us : 0, now, b[i].interval_us, b[i].burst);
        if (!v[i].admit) {
            if (worst < 0 || v[i].retry_us > v[worst].retry_us)
                worst = (int)i;
        } else if (tight < 0 || v[i].remaining < v[tight].remaining ||
                   (v[i].remaining == v[tight].remaining && v[i].reset_us > v[tight].reset_us)) {
            tight = (int)i;
        }
    }
    if (worst < 0) {
        /* All admit: consume in every bucket. */
        if (missing) {
            make_room(l, now, missing);
            for (size_t i = 0; i < n; i++)
                found[i] = lookup(l, b[i].digest); /* make_room may have dropped some */
        }
        for (size_t i = 0; i < n; i++) {
            entry_t *e = found[i];
            if (e == NULL) {
                e = calloc(1, sizeof(*e));
                if (e == NULL)
                    continue; /* cannot track it: this request is still admitted */
                memcpy(e->digest, b[i].digest, MG_RL_DIGEST_LEN);
                size_t s = slot_of(l, e->digest);
                e->next = l->slots[s];
                l->slots[s] = e;
                l->count++;
            }
            e->tat_us = v[i].new_tat;
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (worst >= 0) {
        res->decision = MG_RL_LIMITED;
        res->index = worst;
        res->retry_after_ms = ceil_ms(v[worst].retry_us);
        res->remaining = 0;
        res->reset_ms = ceil_ms(v[worst].reset_us);
        res->limit = b[worst].burst;
    } else {
        res->decision = MG_RL_ALLOWED;
        res->index = tight;
        res->remaining = v[tight].remaining;
        res->reset_ms = ceil_ms(v[tight].reset_us);
        res->limit = b[tight].burst;
    }
    return res->decision;
}

/* ---- public ---- */

mg_rl_local_t *
mg_rl_local_new(size_t max_entries)
{
    mg_rl_local_t *l = calloc(1, sizeof(*l));

    if (l == NULL)
        goto fail;
    l->max_entries = max_entries ? max_entries : DEFAULT_MAX_ENTRIES;
    l->nslots = 16;
    while (l->nslots < l->max_entries / 2 && l->nslots < ((size_t)1 << 24))
        l->nslots <<= 1;
    l->slots = calloc(l->nslots, sizeof(*l->slots));
    if (l->slots == NULL)
        goto fail;
    if (pthread_mutex_init(&l->lock, NULL) != 0)
        goto fail;
    return l;
fail:
    if (l)
        free(l->slots);
    free(l);
    return NULL;
}

void
mg_rl_local_free(mg_rl_local_t *l)
{
    uint64_t sum;

    if (l == NULL)
        return;
    sweep(l, 0, UINT64_MAX, &sum);
    pthread_mutex_destroy(&l->lock);
    free(l->slots);
    free(l);
}

mg_rl_decision_t
mg_rl_local_check_at(mg_rl_local_t *l, const char *scope, const mg_rl_key_t *keys, size_t n,
                     uint64_t now_us, mg_rl_result_t *result)
{
    mg_rl_bucket_t b[MG_RL_MAX_KEYS];

    if (!mg_rl_resolve(scope, keys, n, b, result))
        return result->decision;
    return mg_rl_local_check_buckets(l, b, n, now_us, result);
}

mg_rl_decision_t
mg_rl_local_check(mg_rl_local_t *l, const char *scope, const mg_rl_key_t *keys, size_t n,
                  mg_rl_result_t *result)
{
    return mg_rl_local_check_at(l, scope, keys, n, mg_rl_now_us(), result);
}

size_t
mg_rl_local_size(mg_rl_local_t *l)
{
    size_t n;

    pthread_mutex_lock(&l->lock);
    n = l->count;
    pthread_mutex_unlock(&l->lock);
    return n;
}

mg_rl_counters_t *
mg_rl_local_counters(mg_rl_local_t *l)
{
    return &l->counters;
}
