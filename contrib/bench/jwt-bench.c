/* jwt-bench.c -- access-token validations per second per algorithm, uncached (mg_jwt_verify) and cached (mg_token_cache_verify). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

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

/* Runs for about <secs> seconds; returns operations per second, or -1 if a
 * verification failed. */
static double
run(double secs, mg_token_cache_t *cache, mg_jwt_issuer_t *is, const char *tok)
{
    const char *aud = AUD;
    size_t len = strlen(tok);
    long n = 0;
    double t0 = now_s(), t;
    int64_t wall = (int64_t)time(NULL);

    do {
        for (int i = 0; i < 64; i++) {
            mg_jwt_reason_t r;
            if (cache) {
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

    printf("%-6s %14s %14s\n", "alg", "uncached/s", "cached/s");
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        EVP_PKEY *pkey = NULL;
        char *jwk = NULL, *jwks = NULL, *tok = NULL, hdr[128], payload[512];
        mg_jwks_t *ks = NULL;
        mg_jwt_issuer_t *is = NULL;
        mg_token_cache_t *cache = NULL;
        time_t t = time(NULL);

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
        if (tok == NULL || cache == NULL) {
            rc = 1;
            goto next;
        }
        double u = run(secs, NULL, is, tok), c = run(secs, cache, is, tok);
        if (u < 0 || c < 0)
            rc = 1;
        printf("%-6s %14.0f %14.0f\n", mg_jws_alg_name(algs[i].alg), u, c);
        fflush(stdout);
    next:
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
