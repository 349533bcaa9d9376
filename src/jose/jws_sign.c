/* jws_sign.c -- producing public JWKs and compact JWS tokens (for mcpgate-token, tests and benchmarks). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "jose_int.h"
#include "mcpgate/b64url.h"
#include "mcpgate/jwk.h"

static char *
b64_bn(const BIGNUM *bn, int padlen)
{
    int len = padlen > 0 ? padlen : BN_num_bytes(bn);
    uint8_t *bin = malloc((size_t)len + 1);
    char *out = NULL;

    if (bin == NULL || BN_bn2binpad(bn, bin, len) != len)
        goto done;
    if ((out = malloc(MG_B64URL_ENCODED_LEN((size_t)len) + 1)) == NULL)
        goto done;
    mg_b64url_encode(bin, (size_t)len, out);
done:
    free(bin);
    return out;
}

static int
set_b64_bn(json_t *obj, const char *name, const BIGNUM *bn, int padlen)
{
    char *s = b64_bn(bn, padlen);
    int rc = s ? json_object_set_new(obj, name, json_string(s)) : -1;

    free(s);
    return rc;
}

char *
mg_jwk_public_json(EVP_PKEY *pkey, const char *kid, mg_jws_alg_t alg)
{
    json_t *obj = json_object();
    BIGNUM *a = NULL, *b = NULL;
    char *out = NULL, group[64];
    uint8_t raw[32];
    size_t rawlen = sizeof(raw);
    int ok = 0;

    if (obj == NULL || pkey == NULL)
        goto done;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &a) != 1 ||
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &b) != 1)
            goto done;
        ok = json_object_set_new(obj, "kty", json_string("RSA")) == 0 &&
             set_b64_bn(obj, "n", a, 0) == 0 && set_b64_bn(obj, "e", b, 0) == 0;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        const char *crv = NULL;
        int flen = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), NULL) != 1)
            goto done;
        if (strcmp(group, "prime256v1") == 0)
            crv = "P-256", flen = 32;
        else if (strcmp(group, "secp384r1") == 0)
            crv = "P-384", flen = 48;
        else if (strcmp(group, "secp521r1") == 0)
            crv = "P-521", flen = 66;
        else
            goto done;
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a) != 1 ||
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b) != 1)
            goto done;
        ok = json_object_set_new(obj, "kty", json_string("EC")) == 0 &&
             json_object_set_new(obj, "crv", json_string(crv)) == 0 &&
             set_b64_bn(obj, "x", a, flen) == 0 && set_b64_bn(obj, "y", b, flen) == 0;
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        char x[MG_B64URL_ENCODED_LEN(32) + 1];
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 || rawlen != 32)
            goto done;
        mg_b64url_encode(raw, rawlen, x);
        ok = json_object_set_new(obj, "kty", json_string("OKP")) == 0 &&
             json_object_set_new(obj, "crv", json_string("Ed25519")) == 0 &&
             json_object_set_new(obj, "x", json_string(x)) == 0;
    }
    if (!ok || json_object_set_new(obj, "use", json_string("sig")) != 0)
        goto done;
    if (alg != MG_JWS_ALG_UNKNOWN &&
        json_object_set_new(obj, "alg", json_string(mg_jws_alg_name(alg))) != 0)
        goto done;
    if (kid != NULL && json_object_set_new(obj, "kid", json_string(kid)) != 0)
        goto done;
    out = json_dumps(obj, JSON_COMPACT);
done:
    BN_free(a);
    BN_free(b);
    json_decref(obj);
    return out;
}

/* DER ECDSA-Sig-Value to R||S of 2 x flen bytes (RFC 7518 section 3.4). */
static int
ecdsa_der_to_raw(const uint8_t *der, size_t derlen, uint8_t *out, int flen)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    const BIGNUM *r, *s;
    int rc = -1;

    if (es == NULL)
        return -1;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, out, flen) == flen && BN_bn2binpad(s, out + flen, flen) == flen)
        rc = 0;
    ECDSA_SIG_free(es);
    return rc;
}

char *
mg_jws_sign(EVP_PKEY *pkey, mg_jws_alg_t alg, const char *header, size_t hlen,
            const char *payload, size_t plen, int pss_salt)
{
    const jose_alg_info_t *ai = jose_alg_info(alg);
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    char *tok = NULL, *out = NULL;
    uint8_t *sig = NULL, *raw = NULL;
    size_t siglen = 0, inlen, outlen;

    if (ai == NULL || pkey == NULL)
        goto done;
    inlen = MG_B64URL_ENCODED_LEN(hlen) + 1 + MG_B64URL_ENCODED_LEN(plen);
    /* header.payload.signature; signatures are at most 1024 bytes (RSA 8192). */
    if ((tok = malloc(inlen + 1 + MG_B64URL_ENCODED_LEN(1024) + 1)) == NULL)
        goto done;
    outlen = mg_b64url_encode((const uint8_t *)header, hlen, tok);
    tok[outlen++] = '.';
    outlen += mg_b64url_encode((const uint8_t *)payload, plen, tok + outlen);
    if ((mctx = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(mctx, &pctx, jose_alg_md(alg), NULL, pkey) != 1)
        goto done;
    if (ai->kty == JOSE_KTY_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, ai->pss ? RSA_PKCS1_PSS_PADDING
                                                       : RSA_PKCS1_PADDING) != 1)
            goto done;
        if (ai->pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt < 0 ? ai->hlen
                                                                            : pss_salt) != 1 ||
                        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, jose_alg_md(alg)) != 1))
            goto done;
    }
    if (EVP_DigestSign(mctx, NULL, &siglen, (const uint8_t *)tok, outlen) != 1 ||
        (sig = malloc(siglen)) == NULL ||
        EVP_DigestSign(mctx, sig, &siglen, (const uint8_t *)tok, outlen) != 1)
        goto done;
    if (ai->kty == JOSE_KTY_EC) {
        int flen = (EVP_PKEY_get_bits(pkey) + 7) / 8;
        if ((raw = malloc(2 * (size_t)flen)) == NULL || ecdsa_der_to_raw(sig, siglen, raw, flen) != 0)
            goto done;
        free(sig);
        sig = raw;
        raw = NULL;
        siglen = 2 * (size_t)flen;
    }
    if (siglen > 1024)
        goto done;
    tok[outlen++] = '.';
    mg_b64url_encode(sig, siglen, tok + outlen);
    out = tok;
    tok = NULL;
done:
    if (out == NULL)
        ERR_clear_error();
    EVP_MD_CTX_free(mctx);
    free(sig);
    free(raw);
    free(tok);
    return out;
}
