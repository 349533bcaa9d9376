/* jose_testutil.h -- helpers shared by the src/jose unit tests: test keys, token minting, issuer setup. */
#ifndef MCPGATE_JOSE_TESTUTIL_H
#define MCPGATE_JOSE_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mcpgate/b64url.h"
#include "mcpgate/jwk.h"
#include "mcpgate/jwt.h"

#define T_ISS "https://as.example.com"
#define T_AUD "https://mcp.example.com/mcp"
#define T_NOW INT64_C(1700000000)

/* A keypair made at test time; jwk is its public JWK text (malloc'd). */
typedef struct tkey {
    EVP_PKEY *pkey;
    char *jwk;
} tkey_t;

static inline void
tkey_make(tkey_t *k, const char *type, const char *param, size_t bits, const char *kid,
          mg_jws_alg_t jwk_alg)
{
    if (strcmp(type, "RSA") == 0)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    else if (strcmp(type, "EC") == 0)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    else
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k->pkey == NULL) {
        fprintf(stderr, "key generation failed\n");
        exit(99);
    }
    k->jwk = mg_jwk_public_json(k->pkey, kid, jwk_alg);
    if (k->jwk == NULL) {
        fprintf(stderr, "JWK export failed\n");
        exit(99);
    }
}

static inline void
tkey_free(tkey_t *k)
{
    EVP_PKEY_free(k->pkey);
    free(k->jwk);
}

/* {"keys":[a,b,...]} from JWK texts; NULL-terminated list. Caller frees. */
static inline mg_jwks_t *
jwks_of(const char *const *jwks, char *err, size_t errlen)
{
    size_t len = 16;
    char *buf;
    mg_jwks_t *ks;

    for (size_t i = 0; jwks[i]; i++)
        len += strlen(jwks[i]) + 1;
    buf = malloc(len);
    strcpy(buf, "{\"keys\":[");
    for (size_t i = 0; jwks[i]; i++) {
        if (i)
            strcat(buf, ",");
        strcat(buf, jwks[i]);
    }
    strcat(buf, "]}");
    ks = mg_jwks_parse(buf, strlen(buf), err, errlen);
    free(buf);
    return ks;
}

/* Token over <header> and <payload> (NUL-terminated text). */
static inline char *
mint(const tkey_t *k, mg_jws_alg_t alg, const char *header, const char *payload)
{
    char *t = mg_jws_sign(k->pkey, alg, header, strlen(header), payload, strlen(payload), -1);
    if (t == NULL) {
        fprintf(stderr, "signing failed\n");
        exit(99);
    }
    return t;
}

#endif /* MCPGATE_JOSE_TESTUTIL_H */
