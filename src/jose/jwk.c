/* jwk.c -- JWK import into EVP_PKEY (RFC 7517, RFC 7518 section 6, RFC 8037), key sets, raw JWS signature checks. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "jose_int.h"
#include "mcpgate/b64url.h"
#include "mcpgate/jwk.h"

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define JWKS_MAX_FILE (1024 * 1024)
#define JWKS_MAX_KEYS 256

static const jose_alg_info_t alg_table[MG_JWS_ALG_COUNT] = {
    [MG_JWS_RS256] = {"RS256", JOSE_KTY_RSA, 0, false, "SHA256", 32},
    [MG_JWS_RS384] = {"RS384", JOSE_KTY_RSA, 0, false, "SHA384", 48},
    [MG_JWS_RS512] = {"RS512", JOSE_KTY_RSA, 0, false, "SHA512", 64},
    [MG_JWS_PS256] = {"PS256", JOSE_KTY_RSA, 0, true, "SHA256", 32},
    [MG_JWS_PS384] = {"PS384", JOSE_KTY_RSA, 0, true, "SHA384", 48},
    [MG_JWS_PS512] = {"PS512", JOSE_KTY_RSA, 0, true, "SHA512", 64},
    [MG_JWS_ES256] = {"ES256", JOSE_KTY_EC, JOSE_CRV_P256, false, "SHA256", 32},
    [MG_JWS_ES384] = {"ES384", JOSE_KTY_EC, JOSE_CRV_P384, false, "SHA384", 48},
    [MG_JWS_ES512] = {"ES512", JOSE_KTY_EC, JOSE_CRV_P521, false, "SHA512", 64},
    [MG_JWS_EDDSA] = {"EdDSA", JOSE_KTY_OKP, JOSE_CRV_ED25519, false, NULL, 0},
};

static _Atomic uint64_t next_generation = 1;
static _Atomic uint64_t next_key_uid = 1;

const jose_alg_info_t *
jose_alg_info(mg_jws_alg_t alg)
{
    if (alg <= MG_JWS_ALG_UNKNOWN || alg >= MG_JWS_ALG_COUNT)
        return NULL;
    return &alg_table[alg];
}

/* --- per-process digests and per-thread verification contexts ---------------
 *
 * OpenSSL 3 resolves algorithm names through the provider store (a locked
 * lookup) whenever an operation starts from a legacy handle such as
 * EVP_sha256() or from EVP_DigestVerifyInit, and allocates a fresh EVP_PKEY_CTX
 * and provider context each time. The token path avoids all of it:
 *   - the three digests are fetched once per process (immutable, shared);
 *   - each thread keeps a few prepared EVP_PKEY_CTX (verify_init, digest,
 *     padding, PSS salt length and MGF1 already set), keyed by the key's
 *     never-reused uid and the algorithm, plus one reusable digest context.
 * A prepared context holds its own reference to the EVP_PKEY, so a key set
 * freed by another thread (rotation) never leaves a dangling context here;
 * the uid of a freed key is never seen again, so its slot just ages out. */

#define VSLOTS 16

typedef struct vslot {
    uint64_t uid;          /* key uid; 0 = empty */
    mg_jws_alg_t alg;
    uint64_t used;         /* LRU tick */
    EVP_PKEY_CTX *pctx;    /* RS*, PS*, ES*: ready for EVP_PKEY_verify */
    EVP_MD_CTX *mctx;      /* EdDSA: ready for EVP_DigestVerify */
} vslot_t;

typedef struct jose_tls {
    EVP_MD_CTX *dctx;      /* reusable digest context */
    uint64_t tick;
    vslot_t slot[VSLOTS];
} jose_tls_t;

static pthread_once_t jose_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static bool tls_key_ok;
static EVP_MD *md_fetched[3]; /* SHA256, SHA384, SHA512; live for the process */
static _Thread_local jose_tls_t *tls_cur;

static void
vslot_clear(vslot_t *s)
{
    EVP_PKEY_CTX_free(s->pctx);
    EVP_MD_CTX_free(s->mctx);
    memset(s, 0, sizeof(*s));
}

static void
jose_tls_free(jose_tls_t *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < VSLOTS; i++)
        vslot_clear(&t->slot[i]);
    EVP_MD_CTX_free(t->dctx);
    free(t);
}

static void
jose_tls_destructor(void *p)
{
    if (tls_cur == p)
        tls_cur = NULL;
    jose_tls_free(p);
}

static void
jose_init_once(void)
{
    static const char *const names[3] = {"SHA256", "SHA384", "SHA512"};

    for (int i = 0; i < 3; i++)
        md_fetched[i] = EVP_MD_fetch(NULL, names[i], NULL);
    tls_key_ok = pthread_key_create(&tls_key, jose_tls_destructor) == 0;
}


/* This thread's state, created on first use; NULL when that fails (callers
 * then take the slow path with temporary contexts). */
static jose_tls_t *
jose_tls(void)
{
    jose_tls_t *t = tls_cur;

    if (t != NULL)
        return t;
    pthread_once(&jose_once, jose_init_once);
    if (!tls_key_ok || (t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    if (pthread_setspecific(tls_key, t) != 0) {
        free(t);
        return NULL;
    }
    tls_cur = t;
    return t;
}

void
mg_jwk_thread_cleanup(void)
{
    jose_tls_t *t = tls_cur;

    if (t == NULL)
        return;
    tls_cur = NULL;
    pthread_setspecific(tls_key, NULL);
    jose_tls_free(t);
}

const EVP_MD *
jose_alg_md(mg_jws_alg_t alg)
{
    const jose_alg_info_t *ai = jose_alg_info(alg);
    int i;

    if (ai == NULL || ai->md == NULL)
        return NULL;
    pthread_once(&jose_once, jose_init_once);
    i = ai->hlen == 32 ? 0 : ai->hlen == 48 ? 1 : 2;
    if (md_fetched[i] != NULL)
        return md_fetched[i];
    /* Fetch failed (no default provider?): the legacy handles still work. */
    return i == 0 ? EVP_sha256() : i == 1 ? EVP_sha384() : EVP_sha512();
}

/* Digest <len> bytes with the thread's reusable context (a temporary one
 * without thread state). <out> holds EVP_MAX_MD_SIZE bytes. */
static int
jose_digest(jose_tls_t *t, const EVP_MD *md, const void *data, size_t len, uint8_t *out,
            unsigned int *outlen)
{
    EVP_MD_CTX *d = t ? t->dctx : NULL, *own = NULL;
    int ok;

    if (d == NULL) {
        if ((d = EVP_MD_CTX_new()) == NULL)
            return -1;
        if (t)
            t->dctx = d;
        else
            own = d;
    }
    ok = EVP_DigestInit_ex2(d, md, NULL) == 1 && EVP_DigestUpdate(d, data, len) == 1 &&
         EVP_DigestFinal_ex(d, out, outlen) == 1;
    EVP_MD_CTX_free(own);
    return ok ? 0 : -1;
}

int
jose_sha256(const void *data, size_t len, uint8_t out[32])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (jose_digest(jose_tls(), jose_alg_md(MG_JWS_RS256), data, len, md, &n) != 0 || n != 32)
        return -1;
    memcpy(out, md, 32);
    return 0;
}

/* Prepare <s> for verifying with <key> and <alg>. Returns 0 or -1 (s cleared). */
static int
vslot_prepare(vslot_t *s, const mg_jwk_t *key, mg_jws_alg_t alg)
{
    const jose_alg_info_t *ai = jose_alg_info(alg);
    const EVP_MD *md = jose_alg_md(alg);

    memset(s, 0, sizeof(*s));
    if (ai->kty == JOSE_KTY_OKP) {
        if ((s->mctx = EVP_MD_CTX_new()) == NULL ||
            EVP_DigestVerifyInit_ex(s->mctx, NULL, NULL, NULL, NULL, key->pkey, NULL) != 1)
            goto fail;
    } else {
        if ((s->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL)) == NULL ||
            EVP_PKEY_verify_init(s->pctx) != 1 ||
            EVP_PKEY_CTX_set_signature_md(s->pctx, md) != 1)
            goto fail;
        if (ai->kty == JOSE_KTY_RSA) {
            if (EVP_PKEY_CTX_set_rsa_padding(s->pctx, ai->pss ? RSA_PKCS1_PSS_PADDING
                                                              : RSA_PKCS1_PADDING) != 1)
                goto fail;
            /* RFC 7518 section 3.5: salt as long as the hash, MGF1 with the same hash. */
            if (ai->pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(s->pctx, ai->hlen) != 1 ||
                            EVP_PKEY_CTX_set_rsa_mgf1_md(s->pctx, md) != 1))
                goto fail;
        }
    }
    s->uid = key->uid;
    s->alg = alg;
    return 0;
fail:
    vslot_clear(s);
    return -1;
}

/* The thread's prepared context for (key, alg), made on a miss in place of
 * the least recently used one. */
static vslot_t *
vslot_get(jose_tls_t *t, const mg_jwk_t *key, mg_jws_alg_t alg)
{
    vslot_t *victim = &t->slot[0];

    for (int i = 0; i < VSLOTS; i++) {
        vslot_t *s = &t->slot[i];
        if (s->uid == key->uid && s->alg == alg) {
            s->used = ++t->tick;
            return s;
        }
        if (s->used < victim->used)
            victim = s;
    }
    vslot_clear(victim);
    if (vslot_prepare(victim, key, alg) != 0)
        return NULL;
    victim->used = ++t->tick;
    return victim;
}

mg_jws_alg_t
mg_jws_alg_from_name(const char *name)
{
    if (name == NULL)
        return MG_JWS_ALG_UNKNOWN;
    for (int a = 1; a < MG_JWS_ALG_COUNT; a++)
        if (strcmp(name, alg_table[a].name) == 0)
            return (mg_jws_alg_t)a;
    return MG_JWS_ALG_UNKNOWN;
}

const char *
mg_jws_alg_name(mg_jws_alg_t alg)
{
    const jose_alg_info_t *ai = jose_alg_info(alg);
    return ai ? ai->name : "unknown";
}

uint8_t *
jose_b64_decode_alloc(const char *in, size_t len, size_t *outlen)
{
    uint8_t *buf = malloc(MG_B64URL_DECODED_MAX(len) + 1);

    if (buf == NULL)
        return NULL;
    if (mg_b64url_decode(in, len, buf, outlen) != 0) {
        free(buf);
        return NULL;
    }
    buf[*outlen] = 0;
    return buf;
}

/* --- import --------------------------------------------------------------- */

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0 || err[0] != '\0')
        return; /* the first reason wins */
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A base64url member decoded; NULL when absent, not a string or badly encoded. */
static uint8_t *
member_b64(json_t *obj, const char *name, size_t *outlen)
{
    json_t *v = json_object_get(obj, name);

    if (!json_is_string(v))
        return NULL;
    return jose_b64_decode_alloc(json_string_value(v), json_string_length(v), outlen);
}

static void
jwk_clear(struct mg_jwk *k)
{
    free(k->kid);
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
}

static const char *
import_rsa(json_t *obj, struct mg_jwk *k)
{
    uint8_t *nb = NULL, *eb = NULL;
    size_t nlen = 0, elen = 0;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    const char *why = "cannot import RSA key";
    int bits;

    nb = member_b64(obj, "n", &nlen);
    eb = member_b64(obj, "e", &elen);
    if (nb == NULL || eb == NULL || nlen == 0 || elen == 0) {
        why = "RSA key without valid n and e";
        goto done;
    }
    n = BN_bin2bn(nb, (int)nlen, NULL);
    e = BN_bin2bn(eb, (int)elen, NULL);
    if (n == NULL || e == NULL)
        goto done;
    bits = BN_num_bits(n);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
        why = "RSA modulus outside 2048..8192 bits";
        goto done;
    }
    if (!BN_is_odd(n)) {
        why = "RSA modulus is even";
        goto done;
    }
    /* e = 1 makes "signatures" trivial; even e is not RSA. Cap its size too:
     * OpenSSL refuses e above 64 bits for large moduli anyway. */
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 64) {
        why = "RSA exponent must be odd, > 1 and at most 64 bits";
        goto done;
    }
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto done;
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto done;
    k->kty = JOSE_KTY_RSA;
    k->sig_len = (size_t)(bits + 7) / 8;
    why = NULL;
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return why;
}

static const char *
import_ec(json_t *obj, struct mg_jwk *k)
{
    const char *crv = json_string_value(json_object_get(obj, "crv"));
    const char *group = NULL;
    int nid = 0, crvbits = 0;
    size_t flen = 0, xlen = 0, ylen = 0;
    uint8_t *x = NULL, *y = NULL, *pt = NULL;
    EVP_PKEY_CTX *ctx = NULL, *cctx = NULL;
    EC_GROUP *grp = NULL;
    const char *why = "cannot import EC key";

    if (crv && strcmp(crv, "P-256") == 0) {
        group = "prime256v1", nid = NID_X9_62_prime256v1, crvbits = JOSE_CRV_P256, flen = 32;
    } else if (crv && strcmp(crv, "P-384") == 0) {
        group = "secp384r1", nid = NID_secp384r1, crvbits = JOSE_CRV_P384, flen = 48;
    } else if (crv && strcmp(crv, "P-521") == 0) {
        group = "secp521r1", nid = NID_secp521r1, crvbits = JOSE_CRV_P521, flen = 66;
    } else {
        why = "unsupported EC curve";
        goto done;
    }
    x = member_b64(obj, "x", &xlen);
    y = member_b64(obj, "y", &ylen);
    /* RFC 7518 section 6.2.1.2/6.2.1.3: full field size, leading zeros kept. */
    if (x == NULL || y == NULL || xlen != flen || ylen != flen) {
        why = "EC key without x and y of the curve's size";
        goto done;
    }
    if ((pt = malloc(1 + 2 * flen)) == NULL)
        goto done;
    pt[0] = 0x04; /* uncompressed point */
    memcpy(pt + 1, x, flen);
    memcpy(pt + 1 + flen, y, flen);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * flen),
        OSSL_PARAM_construct_end(),
    };
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        why = "EC point is not on the curve";
        goto done;
    }
    /* Invalid-curve attacks: check the point explicitly, whatever the
     * import above did (on the curve, not infinity, order n). */
    if ((cctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL)) == NULL ||
        EVP_PKEY_public_check(cctx) != 1) {
        why = "EC point is not on the curve";
        goto done;
    }
    if ((grp = EC_GROUP_new_by_curve_name(nid)) == NULL ||
        BN_bn2binpad(EC_GROUP_get0_order(grp), k->order, (int)flen) != (int)flen)
        goto done;
    k->kty = JOSE_KTY_EC;
    k->crv = crvbits;
    k->sig_len = 2 * flen;
    why = NULL;
done:
    EC_GROUP_free(grp);
    EVP_PKEY_CTX_free(cctx);
    EVP_PKEY_CTX_free(ctx);
    free(pt);
    free(x);
    free(y);
    return why;
}

static const char *
import_okp(json_t *obj, struct mg_jwk *k)
{
    const char *crv = json_string_value(json_object_get(obj, "crv"));
    uint8_t *x = NULL;
    size_t xlen = 0;
    const char *why = "unsupported OKP curve";

    if (crv == NULL || strcmp(crv, "Ed25519") != 0)
        goto done;
    x = member_b64(obj, "x", &xlen);
    if (x == NULL || xlen != 32) {
        why = "Ed25519 key without a 32-byte x";
        goto done;
    }
    if ((k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen)) == NULL) {
        why = "cannot import Ed25519 key";
        goto done;
    }
    k->kty = JOSE_KTY_OKP;
    k->crv = JOSE_CRV_ED25519;
    k->sig_len = 64;
    why = NULL;
done:
    free(x);
    return why;
}

/* Import one JWK into <k>. Returns NULL, or why it is left out. */
static const char *
import_jwk(json_t *obj, struct mg_jwk *k)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    const char *kty, *why = NULL;
    json_t *v;

    memset(k, 0, sizeof(*k));
    if (!json_is_object(obj))
        return "key is not a JSON object";
    kty = json_string_value(json_object_get(obj, "kty"));
    if (kty == NULL)
        return "key without kty";
    /* A JWKS endpoint publishing private material is misconfigured; never
     * treat such a key as a verification key. */
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
        if (json_object_get(obj, private_members[i]) != NULL)
            return "key carries private members";
    /* RFC 7517 section 4.2/4.3: a key for encryption, or not for "verify". */
    if ((v = json_object_get(obj, "use")) != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), "sig") != 0))
        return "key use is not sig";
    if ((v = json_object_get(obj, "key_ops")) != NULL) {
        bool verify = false;
        size_t i;
        json_t *op;
        if (!json_is_array(v))
            return "key_ops is not an array";
        json_array_foreach(v, i, op) {
            if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
                verify = true;
        }
        if (!verify)
            return "key_ops lacks verify";
    }
    k->alg = JOSE_JWK_ALG_ABSENT;
    if ((v = json_object_get(obj, "alg")) != NULL) {
        mg_jws_alg_t a = json_is_string(v) ? mg_jws_alg_from_name(json_string_value(v))
                                           : MG_JWS_ALG_UNKNOWN;
        /* Kept, but never usable: its alg matches no token we accept. */
        k->alg = a == MG_JWS_ALG_UNKNOWN ? JOSE_JWK_ALG_OTHER : (int)a;
    }
    if ((v = json_object_get(obj, "kid")) != NULL) {
        if (!json_is_string(v))
            return "kid is not a string";
        if ((k->kid = strdup(json_string_value(v))) == NULL)
            return "out of memory";
    }
    if (strcmp(kty, "RSA") == 0)
        why = import_rsa(obj, k);
    else if (strcmp(kty, "EC") == 0)
        why = import_ec(obj, k);
    else if (strcmp(kty, "OKP") == 0)
        why = import_okp(obj, k);
    else
        why = "unsupported kty";
    if (why != NULL) {
        jwk_clear(k);
        ERR_clear_error();
    } else {
        k->uid = atomic_fetch_add(&next_key_uid, 1);
    }
    return why;
}

mg_jwks_t *
mg_jwks_parse(const char *json, size_t len, char *err, size_t errlen)
{
    json_t *root = NULL, *keys, *item;
    json_error_t jerr;
    mg_jwks_t *ks = NULL;
    size_t i;

    if (err && errlen)
        err[0] = '\0';
    if (json == NULL || memchr(json, 0, len) != NULL) {
        seterr(err, errlen, "JWKS is not JSON text");
        goto fail;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        seterr(err, errlen, "JWKS is not a JSON object");
        goto fail;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        seterr(err, errlen, "JWKS has no \"keys\" array");
        goto fail;
    }
    if (json_array_size(keys) > JWKS_MAX_KEYS) {
        seterr(err, errlen, "JWKS has more than %d keys", JWKS_MAX_KEYS);
        goto fail;
    }
    if ((ks = calloc(1, sizeof(*ks))) == NULL)
        goto fail;
    atomic_init(&ks->refs, 1);
    ks->generation = atomic_fetch_add(&next_generation, 1);
    if (json_array_size(keys) > 0 &&
        (ks->keys = calloc(json_array_size(keys), sizeof(*ks->keys))) == NULL)
        goto fail;
    json_array_foreach(keys, i, item) {
        const char *why = import_jwk(item, &ks->keys[ks->n]);
        if (why == NULL) {
            ks->n++;
        } else {
            const char *kid = json_string_value(json_object_get(item, "kid"));
            ks->ignored++;
            /* kid is public information; cap it so the message stays short. */
            seterr(err, errlen, "key %zu%s%.64s%s ignored: %s", i, kid ? " (kid \"" : "",
                   kid ? kid : "", kid ? "\")" : "", why);
        }
    }
    json_decref(root);
    return ks;
fail:
    json_decref(root);
    mg_jwks_unref(ks);
    return NULL;
}

mg_jwks_t *
mg_jwks_load_file(const char *path, char *err, size_t errlen)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t n = 0;
    mg_jwks_t *ks = NULL;

    if (err && errlen)
        err[0] = '\0';
    if ((f = fopen(path, "rb")) == NULL) {
        seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    if ((buf = malloc(JWKS_MAX_FILE + 1)) == NULL)
        goto done;
    n = fread(buf, 1, JWKS_MAX_FILE + 1, f);
    if (ferror(f) || n > JWKS_MAX_FILE) {
        seterr(err, errlen, "cannot read %s (or larger than 1 MiB)", path);
        goto done;
    }
    ks = mg_jwks_parse(buf, n, err, errlen);
done:
    if (f)
        fclose(f);
    free(buf);
    return ks;
}

mg_jwks_t *
mg_jwks_ref(mg_jwks_t *ks)
{
    if (ks)
        atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    return ks;
}

void
mg_jwks_unref(mg_jwks_t *ks)
{
    if (ks == NULL)
        return;
    if (atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        jwk_clear(&ks->keys[i]);
    free(ks->keys);
    free(ks);
}

size_t
mg_jwks_count(const mg_jwks_t *ks)
{
    return ks ? ks->n : 0;
}

size_t
mg_jwks_ignored(const mg_jwks_t *ks)
{
    return ks ? ks->ignored : 0;
}

uint64_t
mg_jwks_generation(const mg_jwks_t *ks)
{
    return ks ? ks->generation : 0;
}

const mg_jwk_t *
mg_jwks_get(const mg_jwks_t *ks, size_t i)
{
    return ks && i < ks->n ? &ks->keys[i] : NULL;
}

const char *
mg_jwk_kid(const mg_jwk_t *key)
{
    return key->kid;
}

bool
mg_jwk_usable_for(const mg_jwk_t *key, mg_jws_alg_t alg)
{
    const jose_alg_info_t *ai = jose_alg_info(alg);

    if (ai == NULL || key == NULL || key->pkey == NULL)
        return false;
    if (key->kty != ai->kty || (ai->crv != 0 && key->crv != ai->crv))
        return false;
    /* RFC 8725 section 3.1: a key is for one algorithm when the JWK says so. */
    if (key->alg != JOSE_JWK_ALG_ABSENT && key->alg != (int)alg)
        return false;
    return true;
}

/* One DER INTEGER of the unsigned big-endian <x> (n bytes, not all zero). */
static size_t
der_uint(uint8_t *out, const uint8_t *x, size_t n)
{
    size_t o = 0;

    while (n > 1 && x[0] == 0)
        x++, n--;
    out[o++] = 0x02;
    out[o++] = (uint8_t)(n + (x[0] & 0x80 ? 1 : 0));
    if (x[0] & 0x80)
        out[o++] = 0;
    memcpy(out + o, x, n);
    return o + n;
}

static bool
ec_scalar_ok(const uint8_t *x, const uint8_t *order, size_t n)
{
    uint8_t any = 0;

    for (size_t i = 0; i < n; i++)
        any |= x[i];
    /* Equal-length big-endian: memcmp is the numeric order. */
    return any != 0 && memcmp(x, order, n) < 0;
}

#define ECDSA_DER_MAX (3 + 2 * (3 + 66))

/* R||S (RFC 7518 section 3.4) to DER in <der> (ECDSA_DER_MAX bytes), with r
 * and s in [1, n-1]. Returns the DER length, or 0 when out of range. */
static size_t
ecdsa_raw_to_der(const mg_jwk_t *key, const uint8_t *sig, size_t siglen, uint8_t *der)
{
    size_t half = siglen / 2, body, o;
    uint8_t tmp[2 * (3 + 66)];

    if (half > sizeof(key->order) || !ec_scalar_ok(sig, key->order, half) ||
        !ec_scalar_ok(sig + half, key->order, half))
        return 0;
    body = der_uint(tmp, sig, half);
    body += der_uint(tmp + body, sig + half, half);
    o = 0;
    der[o++] = 0x30;
    if (body >= 0x80)
        der[o++] = 0x81; /* at most 2 * 69 = 138 bytes */
    der[o++] = (uint8_t)body;
    memcpy(der + o, tmp, body);
    return o + body;
}

int
mg_jwk_verify(const mg_jwk_t *key, mg_jws_alg_t alg, const uint8_t *msg, size_t msglen,
              const uint8_t *sig, size_t siglen)
{
    const jose_alg_info_t *ai = jose_alg_info(alg);
    jose_tls_t *t;
    vslot_t tmp, *s;
    uint8_t dgst[EVP_MAX_MD_SIZE], der[ECDSA_DER_MAX];
    unsigned int dlen = 0;
    int rc = -1;

    memset(&tmp, 0, sizeof(tmp));
    if (!mg_jwk_usable_for(key, alg) || sig == NULL)
        return -1;
    /* Fixed lengths: RSA = modulus size (RFC 8017 section 8.2.2 step 1),
     * ECDSA = 2 x field size, Ed25519 = 64. Anything else, e.g. a DER
     * ECDSA signature, is refused before any crypto. */
    if (siglen != key->sig_len)
        return -1;
    if (ai->kty == JOSE_KTY_EC && (siglen = ecdsa_raw_to_der(key, sig, siglen, der)) == 0)
        return -1;
    t = jose_tls();
    if (t != NULL)
        s = vslot_get(t, key, alg);
    else
        s = vslot_prepare(&tmp, key, alg) == 0 ? &tmp : NULL;
    if (s == NULL)
        goto done;
    if (ai->kty == JOSE_KTY_OKP) {
        rc = EVP_DigestVerify(s->mctx, sig, siglen, msg, msglen) == 1 ? 0 : -1;
        goto done;
    }
    if (jose_digest(t, jose_alg_md(alg), msg, msglen, dgst, &dlen) != 0)
        goto done;
    rc = EVP_PKEY_verify(s->pctx, ai->kty == JOSE_KTY_EC ? der : sig, siglen, dgst, dlen) == 1
             ? 0 : -1;
done:
    if (rc != 0)
        ERR_clear_error(); /* a refused signature leaves nothing queued on this thread */
    vslot_clear(&tmp);
    return rc;
}
