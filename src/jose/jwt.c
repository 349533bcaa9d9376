/* jwt.c -- compact JWS parsing and access-token (RFC 9068) validation against per-issuer policies. */
#include <math.h> /* isfinite */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "jose_int.h"
#include "mcpgate/b64url.h"
#include "mcpgate/jwk.h"
#include "mcpgate/jwt.h"

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
    free(c->iss);
    free(c->sub);
    free(c->client_id);
    free(c->jti);
    free_strv(c->scopes, c->n_scopes);
    free_strv(c->aud, c->n_aud);
    free(c);
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

/* --- parsing ------------------------------------------------------------------ */

typedef struct jws {
    const char *seg[3];
    size_t seglen[3];
    json_t *header;
    uint8_t *payload, *sig;
    size_t plen, siglen;
    mg_jws_alg_t alg;
    const char *kid; /* borrowed from header */
} jws_t;

static void
jws_clear(jws_t *j)
{
    json_decref(j->header);
    free(j->payload);
    free(j->sig);
    memset(j, 0, sizeof(*j));
}

/* Nesting depth of JSON text, counted outside strings; -1 past the cap. */
static int
json_depth_ok(const uint8_t *s, size_t len)
{
    int depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        uint8_t ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return 0;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return 1;
}

/* A JSON object from decoded bytes: no NUL anywhere, bounded depth, no
 * duplicate member names (RFC 7515 section 5.2 step 4, RFC 8725 section 3.7). */
static json_t *
parse_object(const uint8_t *s, size_t len)
{
    json_t *v;
    json_error_t jerr;

    if (len == 0 || memchr(s, 0, len) != NULL || !json_depth_ok(s, len))
        return NULL;
    v = json_loadb((const char *)s, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* Structure, encoding and the issuer-independent header rules. */
static mg_jwt_reason_t
jws_parse(const char *token, size_t len, jws_t *j)
{
    size_t dots[4], ndots = 0, hlen;
    uint8_t *hdr = NULL;
    json_t *v;
    mg_jwt_reason_t r = MG_JWT_MALFORMED;

    memset(j, 0, sizeof(*j));
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

    if ((hdr = jose_b64_decode_alloc(j->seg[0], j->seglen[0], &hlen)) == NULL ||
        (j->payload = jose_b64_decode_alloc(j->seg[1], j->seglen[1], &j->plen)) == NULL ||
        (j->sig = jose_b64_decode_alloc(j->seg[2], j->seglen[2], &j->siglen)) == NULL) {
        r = MG_JWT_BAD_ENCODING;
        goto done;
    }
    if ((j->header = parse_object(hdr, hlen)) == NULL) {
        r = MG_JWT_BAD_JSON;
        goto done;
    }
    /* RFC 8725 section 3.1: only algorithms we know; none and HS* have no value. */
    v = json_object_get(j->header, "alg");
    if (!json_is_string(v) || (j->alg = mg_jws_alg_from_name(json_string_value(v))) ==
                                  MG_JWS_ALG_UNKNOWN) {
        r = MG_JWT_ALG_NOT_ALLOWED;
        goto done;
    }
    /* RFC 7515 section 4.1.11: we understand no extension, so any crit fails. */
    if (json_object_get(j->header, "crit") != NULL) {
        r = MG_JWT_CRIT_UNSUPPORTED;
        goto done;
    }
    if (json_object_get(j->header, "b64") != NULL) {
        r = MG_JWT_B64_UNSUPPORTED;
        goto done;
    }
    /* jku, x5u, jwk, x5c are deliberately never read (RFC 8725 section 3.10):
     * keys come from the issuer's configured set only. */
    v = json_object_get(j->header, "kid");
    if (v != NULL && !json_is_string(v)) {
        r = MG_JWT_MALFORMED;
        goto done;
    }
    j->kid = json_string_value(v);
    r = MG_JWT_OK;
done:
    free(hdr);
    return r;
}

static bool
typ_is_at_jwt(json_t *header)
{
    const char *typ = json_string_value(json_object_get(header, "typ"));

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
    if (is->require_typ && !typ_is_at_jwt(j->header))
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
        *payload = j.payload;
        if (payload_len)
            *payload_len = j.plen;
        j.payload = NULL;
    }
    jws_clear(&j);
    return r;
}

/* --- claims ------------------------------------------------------------------- */

/* A NumericDate (RFC 7519 section 2): a JSON number, integer or real, in
 * [0, 9999-12-31]. Reals are rounded towards the strict side by the caller's
 * choice: exp down, nbf/iat up. A string is never a date. */
static int
numeric_date(json_t *v, bool round_up, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > NUMERIC_DATE_MAX)
            return -1;
        *out = (int64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
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

static mg_jwt_reason_t
opt_string(json_t *payload, const char *name, char **dst)
{
    json_t *v = json_object_get(payload, name);

    if (v == NULL || *dst != NULL)
        return MG_JWT_OK;
    if (!json_is_string(v))
        return MG_JWT_INVALID_CLAIM;
    return (*dst = strdup(json_string_value(v))) ? MG_JWT_OK : MG_JWT_INTERNAL;
}

static mg_jwt_reason_t
read_claims(json_t *p, mg_jwt_issuer_t *is, const char *const *audiences, size_t naud,
            int64_t now, mg_jwt_claims_t *c)
{
    json_t *v, *item;
    size_t i;
    mg_jwt_reason_t r;

    /* SPEC T-17: we cannot check a DPoP or mTLS binding, so never treat a
     * sender-constrained token as a bearer token. */
    if (json_object_get(p, "cnf") != NULL)
        return MG_JWT_CNF_UNSUPPORTED;
    if ((v = json_object_get(p, "exp")) == NULL)
        return MG_JWT_MISSING_CLAIM;
    if (numeric_date(v, false, &c->exp) != 0)
        return MG_JWT_INVALID_CLAIM;
    if ((v = json_object_get(p, "nbf")) != NULL) {
        if (numeric_date(v, true, &c->nbf) != 0)
            return MG_JWT_INVALID_CLAIM;
        c->has_nbf = true;
    }
    if ((v = json_object_get(p, "iat")) != NULL) {
        if (numeric_date(v, true, &c->iat) != 0)
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
    if ((v = json_object_get(p, "aud")) == NULL)
        return MG_JWT_MISSING_CLAIM;
    if (json_is_string(v)) {
        if ((c->aud = calloc(1, sizeof(char *))) == NULL ||
            (c->aud[0] = strdup(json_string_value(v))) == NULL)
            return MG_JWT_INTERNAL;
        c->n_aud = 1;
    } else if (json_is_array(v)) {
        if (json_array_size(v) > 0 && (c->aud = calloc(json_array_size(v), sizeof(char *))) == NULL)
            return MG_JWT_INTERNAL;
        json_array_foreach(v, i, item) {
            if (!json_is_string(item))
                return MG_JWT_INVALID_CLAIM;
            if ((c->aud[c->n_aud] = strdup(json_string_value(item))) == NULL)
                return MG_JWT_INTERNAL;
            c->n_aud++;
        }
    } else {
        return MG_JWT_INVALID_CLAIM;
    }
    if (!mg_jwt_claims_aud_matches(c, audiences, naud))
        return MG_JWT_AUD_MISMATCH;
    /* sub: required by RFC 9068 section 2.2, a string. */
    if ((v = json_object_get(p, "sub")) == NULL)
        return MG_JWT_MISSING_CLAIM;
    if (!json_is_string(v))
        return MG_JWT_INVALID_CLAIM;
    if ((c->sub = strdup(json_string_value(v))) == NULL)
        return MG_JWT_INTERNAL;
    if ((r = opt_string(p, "client_id", &c->client_id)) != MG_JWT_OK ||
        (r = opt_string(p, "azp", &c->client_id)) != MG_JWT_OK ||
        (r = opt_string(p, "jti", &c->jti)) != MG_JWT_OK)
        return r;
    /* Scopes: `scope` (RFC 9068 section 2.2.3) or else `scp` (array, or a string). */
    if ((v = json_object_get(p, "scope")) != NULL) {
        if (!json_is_string(v))
            return MG_JWT_INVALID_CLAIM;
        if (push_words(c, json_string_value(v)) != 0)
            return MG_JWT_INTERNAL;
    } else if ((v = json_object_get(p, "scp")) != NULL) {
        if (json_is_string(v)) {
            if (push_words(c, json_string_value(v)) != 0)
                return MG_JWT_INTERNAL;
        } else if (json_is_array(v)) {
            json_array_foreach(v, i, item) {
                if (!json_is_string(item))
                    return MG_JWT_INVALID_CLAIM;
                if (push_words(c, json_string_value(item)) != 0)
                    return MG_JWT_INTERNAL;
            }
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
    json_t *payload = NULL, *v;
    mg_jwt_issuer_t *is = NULL;
    mg_jwt_claims_t *c = NULL;
    size_t max_size = 0;
    uint64_t generation = 0;
    mg_jwt_reason_t r;

    memset(&j, 0, sizeof(j));
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
    if ((payload = parse_object(j.payload, j.plen)) == NULL) {
        r = MG_JWT_BAD_JSON;
        goto done;
    }
    /* Pick the issuer by the (still unverified) iss, exactly; only its keys
     * are tried (RFC 8725 section 3.8, SPEC T-08). */
    v = json_object_get(payload, "iss");
    r = MG_JWT_ISS_MISMATCH;
    if (!json_is_string(v))
        goto done;
    for (size_t i = 0; i < n_issuers && is == NULL; i++)
        if (strcmp(issuers[i]->iss, json_string_value(v)) == 0)
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
    if ((r = read_claims(payload, is, audiences, n_audiences, now, c)) != MG_JWT_OK)
        goto done;
    if (claims_out) {
        *claims_out = c;
        c = NULL;
    }
done:
    mg_jwt_claims_free(c);
    json_decref(payload);
    jws_clear(&j);
    return r;
}

mg_jwt_reason_t
mg_jwt_peek_header(const char *token, size_t len, char **kid, char **iss)
{
    jws_t j;
    json_t *payload = NULL, *v;
    mg_jwt_reason_t r;

    *kid = NULL;
    *iss = NULL;
    if ((r = jws_parse(token, len, &j)) != MG_JWT_OK)
        goto done;
    if ((payload = parse_object(j.payload, j.plen)) == NULL) {
        r = MG_JWT_BAD_JSON;
        goto done;
    }
    v = json_object_get(payload, "iss");
    if (!json_is_string(v)) {
        r = MG_JWT_ISS_MISMATCH;
        goto done;
    }
    if ((*iss = strdup(json_string_value(v))) == NULL ||
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
    json_decref(payload);
    jws_clear(&j);
    return r;
}
