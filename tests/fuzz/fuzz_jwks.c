/* fuzz_jwks.c -- fuzz target: JWK set import (JSON, base64url members, RSA/EC/OKP key construction). */
#include <stdint.h>
#include <string.h>

#include "mcpgate/jwk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t sig[64];
    char err[256];
    mg_jwks_t *ks = mg_jwks_parse((const char *)data, size, err, sizeof(err));

    /* Every imported key must be safe to use with every algorithm. */
    for (size_t i = 0; i < mg_jwks_count(ks); i++) {
        const mg_jwk_t *k = mg_jwks_get(ks, i);
        (void)mg_jwk_kid(k);
        for (int a = 1; a < MG_JWS_ALG_COUNT; a++)
            mg_jwk_verify(k, (mg_jws_alg_t)a, data, size, sig, sizeof(sig));
    }
    mg_jwks_unref(ks);
    return 0;
}
