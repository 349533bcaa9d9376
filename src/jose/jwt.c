/* jwt.c -- compact JWS parsing and access-token (RFC 9068) validation against per-issuer policies. */
#include <errno.h>
#include <locale.h>
#include <math.h> /* isfinite, HUGE_VAL */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jose_int.h"
#include "mcpgate/b64url.h"
#include "mcpgate/jwk.h"
#include "mcpgate/jwt.h"
#include "mcpgate/utf8.h"

/* JSON nesting allowed in a header or claims set: real tokens use 2 or 3. */
#define JSON_MAX_DEPTH 16
/* 9999-12-31T23:59:59Z: NumericDate values beyond are refused as out of range. */
#define NUMERIC_DATE_MAX INT64_C(253402300799)
#define LEEWAY_MAX 3600

struct mg_jwt_issuer {
    char *iss;
    unsigned algs;
    int64_t leeway;
    int64_t max_lifetime;
    size_t max_size;
    bool require_typ;
    /* Guards only the keys pointer: held for a load + ref or a swap. */
    pthread_mutex_t lock;
    mg_jwks_t *keys;
};

/* --- reasons --------------------------------------------------------------- */

static const struct {
    const char *code, *desc;
} reasons[MG_JWT_REASON_COUNT] = {
    [MG_JWT_OK] = {"ok", "The access token is valid."},
    [MG_JWT_TOO_LARGE] = {"too_large", "The access token is too large."},
    [MG_JWT_MALFORMED] = {"malformed", "The access token is malformed."},
    [MG_JWT_JWE_UNSUPPORTED] = {"jwe_unsupported", "Encrypted access tokens are not supported."},
    [MG_JWT_BAD_ENCODING] = {"bad_encoding", "The access token is not valid base64url."},
    [MG_JWT_BAD_JSON] = {"bad_json", "The access token header or claims are not a valid JSON object."},
    [MG_JWT_ALG_NOT_ALLOWED] = {"alg_not_allowed", "The access token signing algorithm is not accepted."},
    [MG_JWT_CRIT_UNSUPPORTED] = {"crit_unsupported", "The access token uses unsupported critical header parameters."},
    [MG_JWT_B64_UNSUPPORTED] = {"b64_unsupported", "Access tokens with an unencoded payload are not supported."},
    [MG_JWT_BAD_TYP] = {"bad_typ", "The token is not an access token (typ must be at+jwt)."},
    [MG_JWT_ISS_MISMATCH] = {"iss_mismatch", "The access token issuer is not trusted for this resource."},
    [MG_JWT_KEY_NOT_FOUND] = {"key_not_found", "No trusted key matches the access token."},
    [MG_JWT_KEY_AMBIGUOUS] = {"key_ambiguous", "The access token does not identify its signing key."},
    [MG_JWT_KEY_ALG_MISMATCH] = {"key_alg_mismatch", "The access token algorithm does not match its key."},
    [MG_JWT_BAD_SIGNATURE] = {"bad_signature", "The access token signature is invalid."},
    [MG_JWT_CNF_UNSUPPORTED] = {"cnf_unsupported", "Sender-constrained access tokens are not supported."},
    [MG_JWT_MISSING_CLAIM] = {"missing_claim", "The access token lacks a required claim."},
    [MG_JWT_INVALID_CLAIM] = {"invalid_claim", "The access token has a claim of the wrong type or value."},
    [MG_JWT_EXPIRED] = {"expired", "The access token expired."},
    [MG_JWT_NOT_YET_VALID] = {"not_yet_valid", "The access token is not valid yet."},
    [MG_JWT_IAT_IN_FUTURE] = {"iat_in_future", "The access token was issued in the future."},
    [MG_JWT_LIFETIME_TOO_LONG] = {"lifetime_too_long", "The access token lifetime is too long."},
    [MG_JWT_AUD_MISMATCH] = {"aud_mismatch", "The access token was not issued for this resource."},
    [MG_JWT_INTERNAL] = {"internal", "The access token could not be checked."},
};

const char *
mg_jwt_reason_code(mg_jwt_reason_t reason)
{
    if ((unsigned)reason >= MG_JWT_REASON_COUNT)
        return "internal";
    return reasons[reason].code;
}

const char *
mg_jwt_reason_description(mg_jwt_reason_t reason)
{
    if ((unsigned)reason >= MG_JWT_REASON_COUNT)
        return reasons[MG_JWT_INTERNAL].desc;
    return reasons[reason].desc;
}

/* --- issuer policy ---------------------------------------------------------- */

mg_jwt_issuer_t *
mg_jwt_issuer_new(const char *iss)
{
    mg_jwt_issuer_t *is = NULL;

    if (iss == NULL || (is = calloc(1, sizeof(*is))) == NULL)
        goto fail;
    if ((is->iss = strdup(iss)) == NULL)
        goto fail;
    if (pthread_mutex_init(&is->lock, NULL) != 0) {
        free(is->iss);
        is->iss = NULL;
        goto fail;
    }
    is->algs = MG_JWS_ALGS_ALL;
    is->leeway = MG_JWT_DEFAULT_LEEWAY;
    is->max_size = MG_JWT_DEFAULT_MAX_TOKEN_SIZE;
    is->require_typ = true;
    return is;
fail:
    free(is);
    return NULL;
}

void
mg_jwt_issuer_free(mg_jwt_issuer_t *is)
{
    if (is == NULL)
        return;
    mg_jwks_unref(is->keys);
    pthread_mutex_destroy(&is->lock);
    free(is->iss);
    free(is);
}

const char *
mg_jwt_issuer_set_algs(mg_jwt_issuer_t *is, const char *list)
{
    unsigned mask = 0;
    const char *p = list;

    if (list == NULL)
        return "empty algorithm list";
    while (*p) {
        char name[16];
        size_t n = strcspn(p, " ,\t");
        if (n == 0) {
            p++;
            continue;
        }
        if (n >= sizeof(name))
            return "unknown algorithm";
        memcpy(name, p, n);
        name[n] = '\0';
        if (strcasecmp(name, "none") == 0)
            return "algorithm none can never be enabled";
        if (strncasecmp(name, "HS", 2) == 0)
            return "HMAC algorithms (HS*) can never be enabled";
        mg_jws_alg_t a = mg_jws_alg_from_name(name);
        if (a == MG_JWS_ALG_UNKNOWN)
            return "unknown algorithm";
        mask |= MG_JWS_ALG_BIT(a);
        p += n;
    }
    if (mask == 0)
        return "empty algorithm list";
    is->algs = mask;
    return NULL;
}

void
mg_jwt_issuer_set_alg_mask(mg_jwt_issuer_t *is, unsigned mask)
{
    is->algs = mask & MG_JWS_ALGS_ALL;
}

void
mg_jwt_issuer_set_leeway(mg_jwt_issuer_t *is, int64_t seconds)
{
    is->leeway = seconds < 0 ? 0 : seconds > LEEWAY_MAX ? LEEWAY_MAX : seconds;
}

void
mg_jwt_issuer_set_require_typ(mg_jwt_issuer_t *is, bool on)
{
    is->require_typ = on;
}

void
mg_jwt_issuer_set_max_lifetime(mg_jwt_issuer_t *is, int64_t seconds)
{
    is->max_lifetime = seconds < 0 ? 0 : seconds;
}

void
mg_jwt_issuer_set_max_token_size(mg_jwt_issuer_t *is, size_t bytes)
{
    is->max_size = bytes;
}

void
mg_jwt_issuer_set_keys(mg_jwt_issuer_t *is, mg_jwks_t *keys)
{
    mg_jwks_t *old;

    mg_jwks_ref(keys);
    pthread_mutex_lock(&is->lock);
    old = is->keys;
    is->keys = keys;
    pthread_mutex_unlock(&is->lock);
    /* Readers that took a reference before the swap keep the old set alive. */
    mg_jwks_unref(old);
}

mg_jwks_t *
mg_jwt_issuer_keys(mg_jwt_issuer_t *is)
{
    mg_jwks_t *ks;

    pthread_mutex_lock(&is->lock);
    ks = mg_jwks_ref(is->keys);
    pthread_mutex_unlock(&is->lock);
    return ks;
}

uint64_t
mg_jwt_issuer_keys_generation(mg_jwt_issuer_t *is)
{
    uint64_t g;

    pthread_mutex_lock(&is->lock);
    g = mg_jwks_generation(is->keys);
    pthread_mutex_unlock(&is->lock);
    return g;
}

const char *
mg_jwt_issuer_name(const mg_jwt_issuer_t *is)
{
    return is->iss;
}

int64_t
mg_jwt_issuer_leeway(const mg_jwt_issuer_t *is)
{
    return is->leeway;
}

/* --- claims object ------------------------------------------------------------ */

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
mg_jwt_claims_free(mg_jwt_claims_t *c)
{
    if (c == NULL)
        return;
    if (c->refs > 0) {
        c->refs--;
        return;
    }
    if (c->memo_free != NULL)
        c->memo_free(c->memo);
    free(c->iss);
    free(c->sub);
    free(c->client_id);
    free(c->jti);
    free_strv(c->scopes, c->n_scopes);
    free_strv(c->aud, c->n_aud);
    free(c);
}

mg_jwt_claims_t *
mg_jwt_claims_ref(const mg_jwt_claims_t *c)
{
    mg_jwt_claims_t *m = (mg_jwt_claims_t *)c;

    if (m != NULL)
        m->refs++;
    return m;
}

static int
dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    return (*dst = strdup(src)) ? 0 : -1;
}

static int
dup_strv(char ***dst, const char *const *src, size_t n)
{
    *dst = NULL;
    if (n == 0)
        return 0;
    if ((*dst = calloc(n, sizeof(char *))) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (((*dst)[i] = strdup(src[i])) == NULL)
            return -1;
    return 0;
}

mg_jwt_claims_t *
mg_jwt_claims_dup(const mg_jwt_claims_t *c)
{
    mg_jwt_claims_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *c;
    d->iss = d->sub = d->client_id = d->jti = NULL;
    d->scopes = d->aud = NULL;
    d->n_scopes = d->n_aud = 0;
    d->memo = NULL;
    d->memo_free = NULL;
    d->refs = 0;
    if (dup_str(&d->iss, c->iss) || dup_str(&d->sub, c->sub) ||
        dup_str(&d->client_id, c->client_id) || dup_str(&d->jti, c->jti))
        goto fail;
    d->n_scopes = c->n_scopes;
    if (dup_strv(&d->scopes, (const char *const *)c->scopes, c->n_scopes))
        goto fail;
    d->n_aud = c->n_aud;
    if (dup_strv(&d->aud, (const char *const *)c->aud, c->n_aud))
        goto fail;
    return d;
fail:
    mg_jwt_claims_free(d);
    return NULL;
}

bool
mg_jwt_claims_has_scope(const mg_jwt_claims_t *c, const char *scope)
{
    for (size_t i = 0; i < c->n_scopes; i++)
        if (strcmp(c->scopes[i], scope) == 0)
            return true;
    return false;
}

bool
mg_jwt_claims_aud_matches(const mg_jwt_claims_t *c, const char *const *audiences, size_t n)
{
    /* RFC 7519 section 4.1.3 / RFC 9068 section 4: exact string compare. */
    for (size_t i = 0; i < c->n_aud; i++)
        for (size_t j = 0; j < n; j++)
            if (audiences[j] && strcmp(c->aud[i], audiences[j]) == 0)
                return true;
    return false;
}

mg_jwt_reason_t
mg_jwt_check_time(const mg_jwt_claims_t *c, int64_t leeway, int64_t now)
{
    /* RFC 7519 section 4.1.4: now must be before exp (plus leeway). */
    if (now >= c->exp + leeway)
        return MG_JWT_EXPIRED;
    /* Section 4.1.5: not before nbf (minus leeway). */
    if (c->has_nbf && now + leeway < c->nbf)
        return MG_JWT_NOT_YET_VALID;
    if (c->has_iat && c->iat > now + leeway)
        return MG_JWT_IAT_IN_FUTURE;
    return MG_JWT_OK;
}

/* --- a strict JSON reader for headers and claims sets ---------------------------
 *
 * A token's header and claims set are read in place, in the buffer they were
 * base64url-decoded into, without building a tree: the whole text is
 * validated with the rules jansson applies (json_loadb with
 * JSON_REJECT_DUPLICATES, which this reader replaced on the token path) and
 * only the top-level members the validator needs are kept:
 *   - an object at the top, then only whitespace;
 *   - strings: no control characters, the JSON escapes only, \u0000 refused,
 *     surrogates only as valid pairs, strict UTF-8 (no overlong form, no
 *     surrogate, nothing above U+10FFFF);
 *   - numbers by the JSON grammar (no leading zero, no "1." or ".5"); an
 *     integer must fit int64_t and a real must not overflow a double;
 *   - no duplicate member names in any object (compared after unescaping);
 *   - at most JSON_MAX_DEPTH nested objects and arrays, and no NUL byte.
 * Strings are unescaped in place and NUL-terminated there, so the values
 * handed out are plain C strings that live as long as the buffer. */

typedef enum jtype {
    JT_ABSENT = 0,
    JT_STRING,
    JT_INT,
    JT_REAL,
    JT_TRUE,
    JT_FALSE,
    JT_NULL,
    JT_OBJECT,
    JT_ARRAY,
} jtype_t;

typedef struct jval {
    jtype_t type;
    const char *s;          /* JT_STRING */
    int64_t i;              /* JT_INT */
    double d;               /* JT_REAL */
    size_t first, n;        /* JT_ARRAY of a wanted member: its items in jdoc.items */
    bool all_strings;       /* JT_ARRAY: every item is a string */
} jval_t;

typedef struct jkey {
    const char *s;
    size_t len;
    uint32_t hash;
} jkey_t;

#define JKEYS_INLINE 64
#define JITEMS_INLINE 16

typedef struct jdoc {
    const char *const *want; /* top-level member names to keep */
    size_t nwant;
    jval_t *vals;            /* nwant entries, JT_ABSENT when not present */
    uint8_t *p, *end;
    int depth;
    jkey_t *keys;            /* member names of the open objects, for duplicates */
    size_t nkeys, capkeys;
    const char **items;      /* string items of wanted top-level arrays */
    size_t nitems, capitems;
    jkey_t keys_inline[JKEYS_INLINE];
    const char *items_inline[JITEMS_INLINE];
} jdoc_t;

static void
jdoc_init(jdoc_t *d, const char *const *want, size_t nwant, jval_t *vals)
{
    d->want = want;
    d->nwant = nwant;
    d->vals = vals;
    memset(vals, 0, nwant * sizeof(*vals));
    d->depth = 0;
    d->keys = d->keys_inline;
    d->nkeys = 0;
    d->capkeys = JKEYS_INLINE;
    d->items = d->items_inline;
    d->nitems = 0;
    d->capitems = JITEMS_INLINE;
}

static void
jdoc_free(jdoc_t *d)
{
    if (d->keys != d->keys_inline)
        free(d->keys);
    if (d->items != d->items_inline)
        free(d->items);
    d->keys = d->keys_inline;
    d->items = d->items_inline;
}

/* An inline-first array <arr> of *cap elements, full, doubled: the new
 * array, or NULL (then <arr> is unchanged and still valid). */
static void *
jgrow(void *arr, const void *inline_arr, size_t *cap, size_t elem)
{
    void *nv;

    if (arr == inline_arr) {
        if ((nv = malloc(2 * *cap * elem)) != NULL)
            memcpy(nv, arr, *cap * elem);
    } else {
        nv = realloc(arr, 2 * *cap * elem);
    }
    if (nv != NULL)
        *cap *= 2;
    return nv;
}

static void
jskip_ws(jdoc_t *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
        d->p++;
}

static int
hex4(const uint8_t *p, const uint8_t *end, uint32_t *out)
{
    uint32_t v = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* The string at d->p (on its opening quote), unescaped in place and
 * NUL-terminated. */
static int
jstring(jdoc_t *d, const char **out, size_t *outlen)
{
    uint8_t *r = d->p + 1, *w = r, *start = r, *end = d->end;

    for (;;) {
        if (r >= end)
            return -1;
        uint8_t c = *r;
        if (c == '"') {
            d->p = r + 1;
            *w = '\0'; /* w <= r: only bytes already read are overwritten */
            *out = (const char *)start;
            *outlen = (size_t)(w - start);
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c < 0x80 && c != '\\') {
            *w++ = c, r++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = mg_utf8_seq_len(r, end);
            if (n == 0)
                return -1;
            memmove(w, r, n);
            w += n, r += n;
            continue;
        }
        /* An escape. */
        if (++r >= end)
            return -1;
        switch (c = *r++) {
        case '"': case '\\': case '/': *w++ = c; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            uint32_t v, v2;
            if (hex4(r, end, &v) != 0)
                return -1;
            r += 4;
            if (v == 0)
                return -1; /* \u0000: jansson refuses it without JSON_ALLOW_NUL */
            if (v >= 0xDC00 && v <= 0xDFFF)
                return -1; /* a lone low surrogate */
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (end - r < 2 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, end, &v2) != 0 ||
                    v2 < 0xDC00 || v2 > 0xDFFF)
                    return -1;
                r += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (v2 - 0xDC00);
            }
            if (v < 0x80) {
                *w++ = (uint8_t)v;
            } else if (v < 0x800) {
                *w++ = (uint8_t)(0xC0 | v >> 6);
                *w++ = (uint8_t)(0x80 | (v & 0x3F));
            } else if (v < 0x10000) {
                *w++ = (uint8_t)(0xE0 | v >> 12);
                *w++ = (uint8_t)(0x80 | ((v >> 6) & 0x3F));
                *w++ = (uint8_t)(0x80 | (v & 0x3F));
            } else {
                *w++ = (uint8_t)(0xF0 | v >> 18);
                *w++ = (uint8_t)(0x80 | ((v >> 12) & 0x3F));
                *w++ = (uint8_t)(0x80 | ((v >> 6) & 0x3F));
                *w++ = (uint8_t)(0x80 | (v & 0x3F));
            }
            break;
        }
        default:
            return -1;
        }
    }
}

static locale_t c_loc;

static void
c_locale_init(void)
{
    c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* The number at d->p, by the JSON grammar; integers must fit int64_t
 * (strtoll, as jansson) and reals must not overflow (strtod). */
static int
jnumber(jdoc_t *d, jval_t *v)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    uint8_t *r = d->p, *start = r, *end = d->end, save;
    bool real = false;
    char *e;

    if (r < end && *r == '-')
        r++;
    if (r >= end)
        return -1;
    if (*r == '0') {
        r++;
    } else if (*r >= '1' && *r <= '9') {
        while (r < end && *r >= '0' && *r <= '9')
            r++;
    } else {
        return -1;
    }
    if (r < end && *r == '.') {
        real = true;
        if (++r >= end || *r < '0' || *r > '9')
            return -1;
        while (r < end && *r >= '0' && *r <= '9')
            r++;
    }
    if (r < end && (*r == 'e' || *r == 'E')) {
        real = true;
        if (++r < end && (*r == '+' || *r == '-'))
            r++;
        if (r >= end || *r < '0' || *r > '9')
            return -1;
        while (r < end && *r >= '0' && *r <= '9')
            r++;
    }
    /* The buffer has a spare byte past the end: terminate the text for the
     * libc conversion, then put the byte back. */
    save = *r;
    *r = '\0';
    errno = 0;
    if (real) {
        pthread_once(&once, c_locale_init);
        v->type = JT_REAL;
        v->d = c_loc != (locale_t)0 ? strtod_l((char *)start, &e, c_loc) : strtod((char *)start, &e);
        if ((v->d == HUGE_VAL || v->d == -HUGE_VAL) && errno == ERANGE)
            v->type = JT_ABSENT;
    } else {
        v->type = JT_INT;
        v->i = strtoll((char *)start, &e, 10);
        if (errno == ERANGE)
            v->type = JT_ABSENT;
    }
    *r = save;
    if (v->type == JT_ABSENT || e != (char *)r)
        return -1;
    d->p = r;
    return 0;
}

static uint32_t
key_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int
key_cmp(const void *a, const void *b)
{
    const jkey_t *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

/* True when two of the <n> keys are equal: pairwise for small objects,
 * by sorting for large ones (no quadratic cost on a hostile token). */
static bool
keys_have_duplicate(jkey_t *k, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (k[i].hash == k[j].hash && k[i].len == k[j].len &&
                    memcmp(k[i].s, k[j].s, k[i].len) == 0)
                    return true;
        return false;
    }
    qsort(k, n, sizeof(*k), key_cmp);
    for (size_t i = 1; i < n; i++)
        if (key_cmp(&k[i - 1], &k[i]) == 0)
            return true;
    return false;
}

static int jvalue(jdoc_t *d, jval_t *v, bool collect);

static int
jobject(jdoc_t *d, bool top)
{
    size_t mark = d->nkeys;

    if (++d->depth > JSON_MAX_DEPTH)
        return -1;
    d->p++; /* '{' */
    jskip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        d->depth--;
        return 0;
    }
    for (;;) {
        const char *k;
        size_t klen;
        jval_t *slot = NULL;

        jskip_ws(d);
        if (d->p >= d->end || *d->p != '"' || jstring(d, &k, &klen) != 0)
            return -1;
        if (d->nkeys == d->capkeys) {
            jkey_t *nk = jgrow(d->keys, d->keys_inline, &d->capkeys, sizeof(*nk));
            if (nk == NULL)
                return -1;
            d->keys = nk;
        }
        d->keys[d->nkeys++] = (jkey_t){k, klen, key_hash(k, klen)};
        jskip_ws(d);
        if (d->p >= d->end || *d->p != ':')
            return -1;
        d->p++;
        jskip_ws(d);
        if (top)
            for (size_t i = 0; i < d->nwant && slot == NULL; i++)
                if (strlen(d->want[i]) == klen && memcmp(d->want[i], k, klen) == 0)
                    slot = &d->vals[i];
        if (jvalue(d, slot, slot != NULL) != 0)
            return -1;
        jskip_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == '}') {
            d->p++;
            break;
        }
        return -1;
    }
    if (keys_have_duplicate(d->keys + mark, d->nkeys - mark))
        return -1;
    d->nkeys = mark;
    d->depth--;
    return 0;
}

static int
jarray(jdoc_t *d, jval_t *v)
{
    if (++d->depth > JSON_MAX_DEPTH)
        return -1;
    d->p++; /* '[' */
    if (v) {
        v->type = JT_ARRAY;
        v->first = d->nitems;
        v->n = 0;
        v->all_strings = true;
    }
    jskip_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        d->depth--;
        return 0;
    }
    for (;;) {
        jval_t item;
        jskip_ws(d);
        if (jvalue(d, v ? &item : NULL, false) != 0)
            return -1;
        if (v && item.type == JT_STRING) {
            if (d->nitems == d->capitems) {
                const char **ni = jgrow(d->items, d->items_inline, &d->capitems, sizeof(*ni));
                if (ni == NULL)
                    return -1;
                d->items = ni;
            }
            d->items[d->nitems++] = item.s;
            v->n++;
        } else if (v) {
            v->all_strings = false;
        }
        jskip_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == ']') {
            d->p++;
            break;
        }
        return -1;
    }
    d->depth--;
    return 0;
}

/* One value at d->p. With <v>, its type and scalar value are stored; with
 * <collect> too, the string items of an array (a wanted top-level member). */
static int
jvalue(jdoc_t *d, jval_t *v, bool collect)
{
    jval_t scratch;
    size_t n;

    if (v == NULL)
        v = &scratch;
    v->type = JT_ABSENT;
    if (d->p >= d->end)
        return -1;
    switch (*d->p) {
    case '{':
        v->type = JT_OBJECT;
        return jobject(d, false);
    case '[':
        if (jarray(d, collect ? v : NULL) != 0)
            return -1;
        v->type = JT_ARRAY;
        return 0;
    case '"':
        v->type = JT_STRING;
        return jstring(d, &v->s, &n);
    case 't':
        v->type = JT_TRUE;
        n = 4;
        break;
    case 'f':
        v->type = JT_FALSE;
        n = 5;
        break;
    case 'n':
        v->type = JT_NULL;
        n = 4;
        break;
    default:
        return jnumber(d, v);
    }
    if ((size_t)(d->end - d->p) < n ||
        memcmp(d->p, v->type == JT_TRUE ? "true" : v->type == JT_FALSE ? "false" : "null", n) != 0)
        return -1;
    d->p += n;
    return 0;
}

/* Parse the JSON object in s[0..len) (modified in place; s[len] must be
 * writable) keeping the wanted members. 0, or -1 when it is not an
 * acceptable JSON object. jdoc_free() in both cases. */
static int
jdoc_parse(jdoc_t *d, uint8_t *s, size_t len)
{
    if (len == 0 || memchr(s, 0, len) != NULL)
        return -1;
    d->p = s;
    d->end = s + len;
    jskip_ws(d);
    if (d->p >= d->end || *d->p != '{' || jobject(d, true) != 0)
        return -1;
    jskip_ws(d);
    return d->p == d->end ? 0 : -1;
}

/* --- parsing ------------------------------------------------------------------ */

/* Decoded segments of a token up to this size stay on the stack (the default
 * max_token_size of 8192 characters decodes to at most 6144 bytes). */
#define JWS_INLINE_BUF 6400

enum { HDR_ALG, HDR_CRIT, HDR_B64, HDR_KID, HDR_TYP, HDR_N };
static const char *const hdr_names[HDR_N] = {"alg", "crit", "b64", "kid", "typ"};

typedef struct jws {
    const char *seg[3];
    size_t seglen[3];
    uint8_t *buf;           /* inline or malloc'd: header, payload, signature */
    uint8_t *payload, *sig; /* in buf, each followed by a spare byte */
    size_t plen, siglen;
    mg_jws_alg_t alg;
    const char *kid;        /* in buf */
    const char *typ;        /* in buf; NULL when absent or not a string */
    uint8_t inline_buf[JWS_INLINE_BUF];
} jws_t;

static void
jws_init(jws_t *j)
{
    j->buf = NULL;
    j->payload = j->sig = NULL;
    j->plen = j->siglen = 0;
    j->alg = MG_JWS_ALG_UNKNOWN;
    j->kid = j->typ = NULL;
}

static void
jws_clear(jws_t *j)
{
    if (j->buf != j->inline_buf)
        free(j->buf);
    j->buf = NULL;
}

/* Decode one segment at *at in j->buf, NUL-terminated; advances *at. */
static int
decode_seg(jws_t *j, int i, uint8_t **out, size_t *outlen, size_t *at)
{
    *out = j->buf + *at;
    if (mg_b64url_decode(j->seg[i], j->seglen[i], *out, outlen) != 0)
        return -1;
    (*out)[*outlen] = 0;
    *at += *outlen + 1;
    return 0;
}

/* Structure, encoding and the issuer-independent header rules. */
static mg_jwt_reason_t
jws_parse(const char *token, size_t len, jws_t *j)
{
    size_t dots[4], ndots = 0, hlen, need, at = 0;
    uint8_t *hdr;
    jdoc_t hd;
    jval_t hv[HDR_N];
    mg_jwt_reason_t r;

    jws_init(j);
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 4) {
                ndots++;
                break;
            }
            dots[ndots++] = i;
        }
    }
    if (ndots == 4)
        return MG_JWT_JWE_UNSUPPORTED; /* RFC 7516 section 7.1: five parts */
    if (ndots != 2)
        return MG_JWT_MALFORMED;
    j->seg[0] = token, j->seglen[0] = dots[0];
    j->seg[1] = token + dots[0] + 1, j->seglen[1] = dots[1] - dots[0] - 1;
    j->seg[2] = token + dots[1] + 1, j->seglen[2] = len - dots[1] - 1;

    need = MG_B64URL_DECODED_MAX(j->seglen[0]) + MG_B64URL_DECODED_MAX(j->seglen[1]) +
           MG_B64URL_DECODED_MAX(j->seglen[2]) + 3;
    if (need <= sizeof(j->inline_buf))
        j->buf = j->inline_buf;
    else if ((j->buf = malloc(need)) == NULL)
        return MG_JWT_INTERNAL;
    if (decode_seg(j, 0, &hdr, &hlen, &at) != 0 || decode_seg(j, 1, &j->payload, &j->plen, &at) != 0 ||
        decode_seg(j, 2, &j->sig, &j->siglen, &at) != 0)
        return MG_JWT_BAD_ENCODING;
    jdoc_init(&hd, hdr_names, HDR_N, hv);
    if (jdoc_parse(&hd, hdr, hlen) != 0) {
        r = MG_JWT_BAD_JSON;
        goto done;
    }
    /* RFC 8725 section 3.1: only algorithms we know; none and HS* have no value. */
    if (hv[HDR_ALG].type != JT_STRING ||
        (j->alg = mg_jws_alg_from_name(hv[HDR_ALG].s)) == MG_JWS_ALG_UNKNOWN) {
        r = MG_JWT_ALG_NOT_ALLOWED;
        goto done;
    }
    /* RFC 7515 section 4.1.11: we understand no extension, so any crit fails. */
    if (hv[HDR_CRIT].type != JT_ABSENT) {
        r = MG_JWT_CRIT_UNSUPPORTED;
        goto done;
    }
    if (hv[HDR_B64].type != JT_ABSENT) {
        r = MG_JWT_B64_UNSUPPORTED;
        goto done;
    }
    /* jku, x5u, jwk, x5c are deliberately never read (RFC 8725 section 3.10):
     * keys come from the issuer's configured set only. */
    if (hv[HDR_KID].type != JT_ABSENT && hv[HDR_KID].type != JT_STRING) {
        r = MG_JWT_MALFORMED;
        goto done;
    }
    j->kid = hv[HDR_KID].type == JT_STRING ? hv[HDR_KID].s : NULL;
    j->typ = hv[HDR_TYP].type == JT_STRING ? hv[HDR_TYP].s : NULL;
    r = MG_JWT_OK;
done:
    jdoc_free(&hd);
    return r;
}

static bool
typ_is_at_jwt(const char *typ)
{
    /* RFC 9068 section 4; media types compare case-insensitively (RFC 2045). */
    return typ && (strcasecmp(typ, "at+jwt") == 0 || strcasecmp(typ, "application/at+jwt") == 0);
}

static mg_jwt_reason_t
select_key(const mg_jwks_t *ks, mg_jws_alg_t alg, const char *kid, const mg_jwk_t **out)
{
    size_t n = mg_jwks_count(ks), same_kid = 0, usable = 0;

    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const mg_jwk_t *k = mg_jwks_get(ks, i);
        if (kid != NULL) {
            if (k->kid == NULL || strcmp(k->kid, kid) != 0)
                continue;
            same_kid++;
        }
        if (mg_jwk_usable_for(k, alg)) {
            usable++;
            *out = k;
        }
    }
    if (kid != NULL && same_kid == 0)
        return MG_JWT_KEY_NOT_FOUND;
    if (kid != NULL && usable == 0)
        return MG_JWT_KEY_ALG_MISMATCH;
    if (usable == 0)
        return MG_JWT_KEY_NOT_FOUND;
    /* Without a kid, or with a duplicated one, never try keys in turn. */
    if (usable > 1)
        return MG_JWT_KEY_AMBIGUOUS;
    return MG_JWT_OK;
}

/* The issuer-dependent JWS checks: size, algorithm list, typ, key, signature. */
static mg_jwt_reason_t
jws_check(const jws_t *j, size_t len, mg_jwt_issuer_t *is, uint64_t *generation)
{
    mg_jwks_t *ks = NULL;
    const mg_jwk_t *key;
    mg_jwt_reason_t r;

    if (len > is->max_size)
        return MG_JWT_TOO_LARGE;
    if (!(is->algs & MG_JWS_ALG_BIT(j->alg)))
        return MG_JWT_ALG_NOT_ALLOWED;
    if (is->require_typ && !typ_is_at_jwt(j->typ))
        return MG_JWT_BAD_TYP;
    ks = mg_jwt_issuer_keys(is);
    if ((r = select_key(ks, j->alg, j->kid, &key)) != MG_JWT_OK)
        goto done;
    /* The signing input is the two first segments as sent (RFC 7515 section 5.2 step 8). */
    if (mg_jwk_verify(key, j->alg, (const uint8_t *)j->seg[0], j->seglen[0] + 1 + j->seglen[1],
                      j->sig, j->siglen) != 0) {
        r = MG_JWT_BAD_SIGNATURE;
        goto done;
    }
    if (generation)
        *generation = mg_jwks_generation(ks);
    r = MG_JWT_OK;
done:
    mg_jwks_unref(ks);
    return r;
}

mg_jwt_reason_t
mg_jws_verify(const char *token, size_t len, mg_jwt_issuer_t *policy, uint8_t **payload,
              size_t *payload_len)
{
    jws_t j;
    mg_jwt_reason_t r;

    if (payload)
        *payload = NULL;
    if (len > policy->max_size)
        return MG_JWT_TOO_LARGE;
    if ((r = jws_parse(token, len, &j)) == MG_JWT_OK &&
        (r = jws_check(&j, len, policy, NULL)) == MG_JWT_OK && payload) {
        if ((*payload = malloc(j.plen + 1)) == NULL) {
            r = MG_JWT_INTERNAL;
        } else {
            memcpy(*payload, j.payload, j.plen + 1);
            if (payload_len)
                *payload_len = j.plen;
        }
    }
    jws_clear(&j);
    return r;
}

/* --- claims ------------------------------------------------------------------- */

/* A NumericDate (RFC 7519 section 2): a JSON number, integer or real, in
 * [0, 9999-12-31]. Reals are rounded towards the strict side by the caller's
 * choice: exp down, nbf/iat up. A string is never a date. */
static int
numeric_date(const jval_t *v, bool round_up, int64_t *out)
{
    if (v->type == JT_INT) {
        int64_t i = v->i;
        if (i < 0 || i > NUMERIC_DATE_MAX)
            return -1;
        *out = (int64_t)i;
        return 0;
    }
    if (v->type == JT_REAL) {
        double d = v->d;
        if (!isfinite(d) || d < 0 || d > (double)NUMERIC_DATE_MAX)
            return -1;
        /* d >= 0, so truncation is floor; no libm needed. */
        int64_t t = (int64_t)d;
        if (round_up && (double)t < d)
            t++;
        *out = t;
        return 0;
    }
    return -1;
}

static int
push_word(mg_jwt_claims_t *c, const char *w, size_t n)
{
    char **nv, *s;

    if (n == 0)
        return 0;
    /* Duplicates are harmless but pointless: keep each word once. */
    for (size_t i = 0; i < c->n_scopes; i++)
        if (strlen(c->scopes[i]) == n && memcmp(c->scopes[i], w, n) == 0)
            return 0;
    if ((nv = realloc(c->scopes, (c->n_scopes + 1) * sizeof(char *))) == NULL)
        return -1;
    c->scopes = nv;
    if ((s = strndup(w, n)) == NULL)
        return -1;
    c->scopes[c->n_scopes++] = s;
    return 0;
}

static int
push_words(mg_jwt_claims_t *c, const char *s)
{
    /* RFC 6749 section 3.3: scope tokens are separated by single spaces;
     * tolerate runs of them. */
    while (*s) {
        size_t n = strcspn(s, " ");
        if (push_word(c, s, n) != 0)
            return -1;
        s += n;
        while (*s == ' ')
            s++;
    }
    return 0;
}

enum {
    CL_ISS, CL_CNF, CL_EXP, CL_NBF, CL_IAT, CL_AUD, CL_SUB, CL_CLIENT_ID, CL_AZP, CL_JTI,
    CL_SCOPE, CL_SCP, CL_N
};
static const char *const claim_names[CL_N] = {"iss", "cnf", "exp", "nbf", "iat", "aud",
                                              "sub", "client_id", "azp", "jti", "scope", "scp"};

static mg_jwt_reason_t
opt_string(const jval_t *v, char **dst)
{
    if (v->type == JT_ABSENT || *dst != NULL)
        return MG_JWT_OK;
    if (v->type != JT_STRING)
        return MG_JWT_INVALID_CLAIM;
    return (*dst = strdup(v->s)) ? MG_JWT_OK : MG_JWT_INTERNAL;
}

static mg_jwt_reason_t
read_claims(const jdoc_t *d, mg_jwt_issuer_t *is, const char *const *audiences, size_t naud,
            int64_t now, mg_jwt_claims_t *c)
{
    const jval_t *p = d->vals, *v;
    mg_jwt_reason_t r;

    /* SPEC T-17: we cannot check a DPoP or mTLS binding, so never treat a
     * sender-constrained token as a bearer token. */
    if (p[CL_CNF].type != JT_ABSENT)
        return MG_JWT_CNF_UNSUPPORTED;
    if (p[CL_EXP].type == JT_ABSENT)
        return MG_JWT_MISSING_CLAIM;
    if (numeric_date(&p[CL_EXP], false, &c->exp) != 0)
        return MG_JWT_INVALID_CLAIM;
    if (p[CL_NBF].type != JT_ABSENT) {
        if (numeric_date(&p[CL_NBF], true, &c->nbf) != 0)
            return MG_JWT_INVALID_CLAIM;
        c->has_nbf = true;
    }
    if (p[CL_IAT].type != JT_ABSENT) {
        if (numeric_date(&p[CL_IAT], true, &c->iat) != 0)
            return MG_JWT_INVALID_CLAIM;
        c->has_iat = true;
    }
    if ((r = mg_jwt_check_time(c, is->leeway, now)) != MG_JWT_OK)
        return r;
    if (is->max_lifetime > 0) {
        if (!c->has_iat)
            return MG_JWT_MISSING_CLAIM;
        if (c->exp - c->iat > is->max_lifetime)
            return MG_JWT_LIFETIME_TOO_LONG;
    }
    /* aud: a string or an array of strings (RFC 7519 section 4.1.3). */
    v = &p[CL_AUD];
    if (v->type == JT_ABSENT)
        return MG_JWT_MISSING_CLAIM;
    if (v->type == JT_STRING) {
        if ((c->aud = calloc(1, sizeof(char *))) == NULL || (c->aud[0] = strdup(v->s)) == NULL)
            return MG_JWT_INTERNAL;
        c->n_aud = 1;
    } else if (v->type == JT_ARRAY) {
        if (!v->all_strings)
            return MG_JWT_INVALID_CLAIM;
        if (v->n > 0 && (c->aud = calloc(v->n, sizeof(char *))) == NULL)
            return MG_JWT_INTERNAL;
        for (size_t i = 0; i < v->n; i++) {
            if ((c->aud[c->n_aud] = strdup(d->items[v->first + i])) == NULL)
                return MG_JWT_INTERNAL;
            c->n_aud++;
        }
    } else {
        return MG_JWT_INVALID_CLAIM;
    }
    if (!mg_jwt_claims_aud_matches(c, audiences, naud))
        return MG_JWT_AUD_MISMATCH;
    /* sub: required by RFC 9068 section 2.2, a string. */
    v = &p[CL_SUB];
    if (v->type == JT_ABSENT)
        return MG_JWT_MISSING_CLAIM;
    if (v->type != JT_STRING)
        return MG_JWT_INVALID_CLAIM;
    if ((c->sub = strdup(v->s)) == NULL)
        return MG_JWT_INTERNAL;
    if ((r = opt_string(&p[CL_CLIENT_ID], &c->client_id)) != MG_JWT_OK ||
        (r = opt_string(&p[CL_AZP], &c->client_id)) != MG_JWT_OK ||
        (r = opt_string(&p[CL_JTI], &c->jti)) != MG_JWT_OK)
        return r;
    /* Scopes: `scope` (RFC 9068 section 2.2.3) or else `scp` (array, or a string). */
    if ((v = &p[CL_SCOPE])->type != JT_ABSENT) {
        if (v->type != JT_STRING)
            return MG_JWT_INVALID_CLAIM;
        if (push_words(c, v->s) != 0)
            return MG_JWT_INTERNAL;
    } else if ((v = &p[CL_SCP])->type != JT_ABSENT) {
        if (v->type == JT_STRING) {
            if (push_words(c, v->s) != 0)
                return MG_JWT_INTERNAL;
        } else if (v->type == JT_ARRAY) {
            if (!v->all_strings)
                return MG_JWT_INVALID_CLAIM;
            for (size_t i = 0; i < v->n; i++)
                if (push_words(c, d->items[v->first + i]) != 0)
                    return MG_JWT_INTERNAL;
        } else {
            return MG_JWT_INVALID_CLAIM;
        }
    }
    return MG_JWT_OK;
}

mg_jwt_reason_t
mg_jwt_verify(const char *token, size_t len, mg_jwt_issuer_t *const *issuers, size_t n_issuers,
              const char *const *audiences, size_t n_audiences, int64_t now,
              mg_jwt_claims_t **claims_out)
{
    jws_t j;
    jdoc_t pd;
    jval_t pv[CL_N];
    mg_jwt_issuer_t *is = NULL;
    mg_jwt_claims_t *c = NULL;
    size_t max_size = 0;
    uint64_t generation = 0;
    mg_jwt_reason_t r;

    jws_init(&j);
    jdoc_init(&pd, claim_names, CL_N, pv);
    if (claims_out)
        *claims_out = NULL;
    for (size_t i = 0; i < n_issuers; i++)
        if (issuers[i]->max_size > max_size)
            max_size = issuers[i]->max_size;
    if (n_issuers == 0) {
        r = MG_JWT_ISS_MISMATCH; /* a route that trusts nobody */
        goto done;
    }
    if (len > max_size) {
        r = MG_JWT_TOO_LARGE;
        goto done;
    }
    if ((r = jws_parse(token, len, &j)) != MG_JWT_OK)
        goto done;
    if (jdoc_parse(&pd, j.payload, j.plen) != 0) {
        r = MG_JWT_BAD_JSON;
        goto done;
    }
    /* Pick the issuer by the (still unverified) iss, exactly; only its keys
     * are tried (RFC 8725 section 3.8, SPEC T-08). */
    r = MG_JWT_ISS_MISMATCH;
    if (pv[CL_ISS].type != JT_STRING)
        goto done;
    for (size_t i = 0; i < n_issuers && is == NULL; i++)
        if (strcmp(issuers[i]->iss, pv[CL_ISS].s) == 0)
            is = issuers[i];
    if (is == NULL)
        goto done;
    if ((r = jws_check(&j, len, is, &generation)) != MG_JWT_OK)
        goto done;
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->iss = strdup(is->iss)) == NULL) {
        r = MG_JWT_INTERNAL;
        goto done;
    }
    c->alg = j.alg;
    c->issuer = is;
    c->keys_generation = generation;
    if ((r = read_claims(&pd, is, audiences, n_audiences, now, c)) != MG_JWT_OK)
        goto done;
    if (claims_out) {
        *claims_out = c;
        c = NULL;
    }
done:
    mg_jwt_claims_free(c);
    jdoc_free(&pd);
    jws_clear(&j);
    return r;
}

mg_jwt_reason_t
mg_jwt_peek_header(const char *token, size_t len, char **kid, char **iss)
{
    jws_t j;
    jdoc_t pd;
    jval_t pv[CL_N];
    mg_jwt_reason_t r;

    *kid = NULL;
    *iss = NULL;
    jdoc_init(&pd, claim_names, CL_N, pv);
    if ((r = jws_parse(token, len, &j)) != MG_JWT_OK)
        goto done;
    if (jdoc_parse(&pd, j.payload, j.plen) != 0) {
        r = MG_JWT_BAD_JSON;
        goto done;
    }
    if (pv[CL_ISS].type != JT_STRING) {
        r = MG_JWT_ISS_MISMATCH;
        goto done;
    }
    if ((*iss = strdup(pv[CL_ISS].s)) == NULL ||
        (j.kid != NULL && (*kid = strdup(j.kid)) == NULL)) {
        r = MG_JWT_INTERNAL;
        goto done;
    }
    r = MG_JWT_OK;
done:
    if (r != MG_JWT_OK) {
        free(*iss);
        free(*kid);
        *iss = NULL;
        *kid = NULL;
    }
    jdoc_free(&pd);
    jws_clear(&j);
    return r;
}
