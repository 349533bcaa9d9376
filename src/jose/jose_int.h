/* jose_int.h -- layouts shared inside src/jose only (key and key-set internals). */
#ifndef MCPGATE_JOSE_INT_H
#define MCPGATE_JOSE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "mcpgate/jwk.h"

typedef enum jose_kty { JOSE_KTY_RSA = 1, JOSE_KTY_EC, JOSE_KTY_OKP } jose_kty_t;

/* Curves, by field size in bits; OKP Ed25519 uses 25519. */
enum { JOSE_CRV_P256 = 256, JOSE_CRV_P384 = 384, JOSE_CRV_P521 = 521, JOSE_CRV_ED25519 = 25519 };

/* JWK `alg` member state. */
enum { JOSE_JWK_ALG_ABSENT = -1, JOSE_JWK_ALG_OTHER = -2 };

struct mg_jwk {
    char *kid;          /* NULL when absent */
    jose_kty_t kty;
    int crv;            /* JOSE_CRV_*, 0 for RSA */
    int alg;            /* an mg_jws_alg_t, or JOSE_JWK_ALG_ABSENT / _OTHER */
    EVP_PKEY *pkey;
    uint64_t uid;       /* process-wide unique, never reused: names the key in per-thread caches */
    uint8_t order[66];  /* EC only: the group order n, big-endian, field size (sig_len / 2) bytes */
    size_t sig_len;     /* RSA: modulus bytes; EC: 2 * field bytes; OKP: 64 */
};

struct mg_jwks {
    atomic_uint refs;
    uint64_t generation;
    size_t n, ignored;
    struct mg_jwk *keys;
};

/* Per-algorithm facts. */
typedef struct jose_alg_info {
    const char *name;
    jose_kty_t kty;
    int crv;            /* EC/OKP: required curve; RSA: 0 */
    bool pss;
    const char *md;     /* digest name, NULL for EdDSA */
    int hlen;           /* digest length */
} jose_alg_info_t;

const jose_alg_info_t *jose_alg_info(mg_jws_alg_t alg);
/* The digest of <alg>, fetched once per process (EVP_MD_fetch) so that no
 * call pays an implicit fetch; NULL for EdDSA. Immutable, shared by all threads. */
const EVP_MD *jose_alg_md(mg_jws_alg_t alg);

/* SHA-256 of <len> bytes into <out> (32 bytes) with this thread's reusable
 * digest context: no fetch, no allocation after the thread's first call.
 * Returns 0, or -1 on failure. */
int jose_sha256(const void *data, size_t len, uint8_t out[32]);

/* Strict base64url decode of a whole string into a fresh buffer (malloc'd,
 * one spare NUL byte). Returns NULL on bad input or allocation failure. */
uint8_t *jose_b64_decode_alloc(const char *in, size_t len, size_t *outlen);

#endif /* MCPGATE_JOSE_INT_H */
