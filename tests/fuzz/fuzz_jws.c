/* fuzz_jws.c -- fuzz target: base64url decoding, compact JWS parsing and token verification against a fixed JWKS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/b64url.h"
#include "mcpgate/jwk.h"
#include "mcpgate/jwt.h"
#include "mcpgate/token_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The RFC 7515 A.2 (RSA), A.3 (P-256) and RFC 8037 A.4 (Ed25519) public keys:
 * the seed corpus holds their RFC tokens, so mutations reach the signature
 * checks of every key type. */
static const char fixed_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb"
    "_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5Z"
    "wKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"kid\":\"ec\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\",\"kid\":\"ed\"}"
    "]}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mg_jwt_issuer_t *joe, *other;
    const char *aud[] = {"https://mcp.example.com/mcp", "joe"};
    mg_jwt_issuer_t *both[2];
    mg_jwt_claims_t *c = NULL;
    uint8_t *buf, *payload = NULL;
    size_t n = 0, plen = 0;

    if (joe == NULL) {
        mg_jwks_t *ks = mg_jwks_parse(fixed_jwks, strlen(fixed_jwks), NULL, 0);
        joe = mg_jwt_issuer_new("joe");
        other = mg_jwt_issuer_new("https://as.example.com");
        mg_jwt_issuer_set_keys(joe, ks);
        mg_jwt_issuer_set_keys(other, ks);
        mg_jwt_issuer_set_require_typ(joe, false);
        mg_jwks_unref(ks);
    }
    both[0] = other, both[1] = joe;

    /* base64url on the raw input. */
    if ((buf = malloc(MG_B64URL_DECODED_MAX(size) + 1)) != NULL) {
        if (mg_b64url_decode((const char *)data, size, buf, &n) == 0) {
            char *enc = malloc(MG_B64URL_ENCODED_LEN(n) + 1);
            /* Strict decoding means one encoding per byte string. */
            if (enc && (mg_b64url_encode(buf, n, enc) != size || memcmp(enc, data, size) != 0))
                abort();
            free(enc);
        }
        free(buf);
    }
    /* JWS layer, then the whole token path at a time before and after the
     * RFC example's exp, then through a cache. */
    mg_jws_verify((const char *)data, size, joe, &payload, &plen);
    free(payload);
    mg_jwt_verify((const char *)data, size, both, 2, aud, 2, 1300819000, &c);
    mg_jwt_claims_free(c);
    c = NULL;
    mg_jwt_verify((const char *)data, size, both, 2, aud, 2, 1700000000, &c);
    mg_jwt_claims_free(c);
    {
        mg_token_cache_t *cache = mg_token_cache_new(4, 60);
        const mg_jwt_claims_t *cc;
        mg_token_cache_verify(cache, (const char *)data, size, both, 2, aud, 2, 1300819000, &cc);
        mg_token_cache_verify(cache, (const char *)data, size, both, 2, aud, 2, 1300819001, &cc);
        mg_token_cache_free(cache);
    }
    return 0;
}
