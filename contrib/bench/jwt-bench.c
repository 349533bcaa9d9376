/* jwt-bench.c -- access-token validations per second per algorithm, uncached (mg_jwt_verify) and cached (mg_token_cache_verify),
 * beside the raw verify rate of a prepared OpenSSL context measured in the same process, interleaved with the uncached runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "mcpgate/b64url.h"

#include "mcpgate/jwk.h"
#include "mcpgate/jwt.h"
#include "mcpgate/token_cache.h"

#define ISS "https://as.example.com"
#define AUD "https://mcp.example.com/mcp"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What `openssl speed` times: one signature check with a context prepared
 * once (EVP_PKEY_verify of a digest for RSA and ECDSA, EVP_DigestVerify of the
 * message for Ed25519), here for the token's own key and signature. */
typedef struct raw {
    EVP_PKEY_CTX *pctx;
    EVP_MD_CTX *mctx;
    const uint8_t *tbs;
    size_t tbslen;
    uint8_t sig[1024], dgst[32];
    size_t siglen;
} raw_t;

static int
raw_setup(raw_t *r, EVP_PKEY *pkey, mg_jws_alg_t alg, const char *tok)
{
    const char *dot = strrchr(tok, '.');
    uint8_t rs[64];
    unsigned int dlen = 0;

    memset(r, 0, sizeof(*r));
    if (dot == NULL || strlen(dot + 1) > MG_B64URL_ENCODED_LEN(sizeof(r->sig)) ||
        mg_b64url_decode(dot + 1, strlen(dot + 1), r->sig, &r->siglen) != 0)
        return -1;
    if (alg == MG_JWS_EDDSA) {
        r->tbs = (const uint8_t *)tok;
        r->tbslen = (size_t)(dot - tok);
        return (r->mctx = EVP_MD_CTX_new()) != NULL &&
                       EVP_DigestVerifyInit_ex(r->mctx, NULL, NULL, NULL, NULL, pkey, NULL) == 1
                   ? 0 : -1;
    }
    if (EVP_Digest(tok, (size_t)(dot - tok), r->dgst, &dlen, EVP_sha256(), NULL) != 1)
        return -1;
    r->tbs = r->dgst;
    r->tbslen = dlen;
    if ((r->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
        EVP_PKEY_verify_init(r->pctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(r->pctx, EVP_sha256()) != 1)
        return -1;
    if (alg == MG_JWS_PS256 &&
        (EVP_PKEY_CTX_set_rsa_padding(r->pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(r->pctx, 32) != 1))
        return -1;
    if (alg == MG_JWS_ES256) {
        /* R||S to DER for OpenSSL: two 32-byte INTEGERs. */
        uint8_t der[80], *p = der + 2;
        memcpy(rs, r->sig, 64);
        for (int i = 0; i < 2; i++) {
            const uint8_t *x = rs + 32 * i;
            size_t len = 32;
            while (len > 1 && x[0] == 0)
                x++, len--;
            *p++ = 0x02;
            *p++ = (uint8_t)(len + (x[0] & 0x80 ? 1 : 0));
            if (x[0] & 0x80)
                *p++ = 0;
            memcpy(p, x, len);
            p += len;
        }
        der[0] = 0x30;
        der[1] = (uint8_t)(p - der - 2);
        r->siglen = (size_t)(p - der);
        memcpy(r->sig, der, r->siglen);
    }
    return 0;
}

static void
raw_free(raw_t *r)
{
    EVP_PKEY_CTX_free(r->pctx);
    EVP_MD_CTX_free(r->mctx);
}

static int
raw_verify(raw_t *r)
{
    if (r->mctx)
        return EVP_DigestVerify(r->mctx, r->sig, r->siglen, r->tbs, r->tbslen) == 1 ? 0 : -1;
    return EVP_PKEY_verify(r->pctx, r->sig, r->siglen, r->tbs, r->tbslen) == 1 ? 0 : -1;
}

/* Runs for about <secs> seconds; returns operations per second, or -1 if a
 * verification failed. With <raw>, the raw check instead of a token. */
static double
run(double secs, mg_token_cache_t *cache, mg_jwt_issuer_t *is, const char *tok, raw_t *raw)
{
    const char *aud = AUD;
    size_t len = strlen(tok);
    long n = 0;
    double t0 = now_s(), t;
    int64_t wall = (int64_t)time(NULL);

    do {
        for (int i = 0; i < 64; i++) {
            mg_jwt_reason_t r;
            if (raw) {
                r = raw_verify(raw) == 0 ? MG_JWT_OK : MG_JWT_BAD_SIGNATURE;
            } else if (cache) {
                const mg_jwt_claims_t *c;
                r = mg_token_cache_verify(cache, tok, len, &is, 1, &aud, 1, wall, &c);
            } else {
                mg_jwt_claims_t *c = NULL;
                r = mg_jwt_verify(tok, len, &is, 1, &aud, 1, wall, &c);
                mg_jwt_claims_free(c);
            }
            if (r != MG_JWT_OK) {
                fprintf(stderr, "jwt-bench: verification failed: %s\n", mg_jwt_reason_code(r));
                return -1;
            }
        }
        n += 64;
        t = now_s();
    } while (t - t0 < secs);
    return (double)n / (t - t0);
}

int
main(int argc, char **argv)
{
    static const struct {
        mg_jws_alg_t alg;
        const char *type, *param;
    } algs[] = {
        {MG_JWS_RS256, "RSA", NULL},
        {MG_JWS_PS256, "RSA", NULL},
        {MG_JWS_ES256, "EC", "P-256"},
        {MG_JWS_EDDSA, "ED25519", NULL},
    };
    double secs = argc > 1 ? atof(argv[1]) : 3.0;
    int rc = 0;

    /* Columns 1-3 are the historical ones (jwt-bench.sh reads them). raw/s is
     * the prepared-context verify rate measured in slices interleaved with
     * the uncached runs, so both see the same machine load. */
    printf("%-6s %14s %14s %14s %9s\n", "alg", "uncached/s", "cached/s", "raw/s", "unc/raw");
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        EVP_PKEY *pkey = NULL;
        char *jwk = NULL, *jwks = NULL, *tok = NULL, hdr[128], payload[512];
        mg_jwks_t *ks = NULL;
        mg_jwt_issuer_t *is = NULL;
        mg_token_cache_t *cache = NULL;
        raw_t raw;
        time_t t = time(NULL);

        memset(&raw, 0, sizeof(raw));

        if (algs[i].param)
            pkey = EVP_PKEY_Q_keygen(NULL, NULL, algs[i].type, algs[i].param);
        else if (strcmp(algs[i].type, "RSA") == 0)
            pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        else
            pkey = EVP_PKEY_Q_keygen(NULL, NULL, algs[i].type);
        jwk = mg_jwk_public_json(pkey, "k1", algs[i].alg);
        if (pkey == NULL || jwk == NULL || (jwks = malloc(strlen(jwk) + 16)) == NULL) {
            rc = 1;
            goto next;
        }
        sprintf(jwks, "{\"keys\":[%s]}", jwk);
        ks = mg_jwks_parse(jwks, strlen(jwks), NULL, 0);
        is = mg_jwt_issuer_new(ISS);
        mg_jwt_issuer_set_keys(is, ks);
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
                 mg_jws_alg_name(algs[i].alg));
        /* A typical RFC 9068 token. */
        snprintf(payload, sizeof(payload),
                 "{\"iss\":\"" ISS "\",\"sub\":\"248289761001\",\"aud\":\"" AUD "\","
                 "\"client_id\":\"s6BhdRkqt3\",\"iat\":%lld,\"exp\":%lld,"
                 "\"jti\":\"dbe39bf3a3ba4238a513f51d6e1691c4\",\"scope\":\"tools:read tools:call\"}",
                 (long long)t, (long long)t + 3600);
        tok = mg_jws_sign(pkey, algs[i].alg, hdr, strlen(hdr), payload, strlen(payload), -1);
        cache = mg_token_cache_new(1024, 300);
        if (tok == NULL || cache == NULL || raw_setup(&raw, pkey, algs[i].alg, tok) != 0) {
            rc = 1;
            goto next;
        }
        /* Ten interleaved slices of each, of equal length: the rate is their mean. */
        double u = 0, rw = 0, c;
        for (int s = 0; s < 10; s++) {
            double a = run(secs / 10, NULL, is, tok, NULL), b = run(secs / 10, NULL, is, tok, &raw);
            if (a < 0 || b < 0) {
                rc = 1;
                break;
            }
            u += a / 10, rw += b / 10;
        }
        c = run(secs, cache, is, tok, NULL);
        if (rc || c < 0) {
            rc = 1;
            goto next;
        }
        printf("%-6s %14.0f %14.0f %14.0f %8.1f%%\n", mg_jws_alg_name(algs[i].alg), u, c, rw,
               100 * u / rw);
        fflush(stdout);
    next:
        raw_free(&raw);
        mg_token_cache_free(cache);
        mg_jwt_issuer_free(is);
        mg_jwks_unref(ks);
        EVP_PKEY_free(pkey);
        free(jwk);
        free(jwks);
        free(tok);
    }
    return rc;
}
