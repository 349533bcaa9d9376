/* jwk.h -- JSON Web Keys: JOSE algorithm names, immutable reference-counted key sets, raw signature checks. */
#ifndef MCPGATE_JWK_H
#define MCPGATE_JWK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* The JWS algorithms the gateway can verify (RFC 7518 section 3, RFC 8037 section 3.1).
 * "none" and every HS* have no value here on purpose: they can never be
 * enabled (RFC 8725 sections 3.1 and 3.2). EdDSA means Ed25519 only. */
typedef enum mg_jws_alg {
    MG_JWS_ALG_UNKNOWN = 0,
    MG_JWS_RS256,
    MG_JWS_RS384,
    MG_JWS_RS512,
    MG_JWS_PS256,
    MG_JWS_PS384,
    MG_JWS_PS512,
    MG_JWS_ES256,
    MG_JWS_ES384,
    MG_JWS_ES512,
    MG_JWS_EDDSA,
    MG_JWS_ALG_COUNT
} mg_jws_alg_t;

#define MG_JWS_ALG_BIT(a) (1u << (unsigned)(a))
/* Every algorithm above: the default allow-list of an issuer. */
#define MG_JWS_ALGS_ALL (((1u << MG_JWS_ALG_COUNT) - 1u) & ~1u)

/* Exact, case-sensitive name ("RS256", "EdDSA") to value; MG_JWS_ALG_UNKNOWN
 * for anything else, including "none" and "HS256". */
mg_jws_alg_t mg_jws_alg_from_name(const char *name);
/* Static name of <alg>, or "unknown". */
const char *mg_jws_alg_name(mg_jws_alg_t alg);

typedef struct mg_jwk mg_jwk_t;
typedef struct mg_jwks mg_jwks_t;

/* Build a key set from JWKS JSON text ({"keys":[...]}, RFC 7517 section 5).
 * Each usable public key is imported into an EVP_PKEY:
 *   RSA  n, e; modulus 2048..8192 bits, e odd and > 1;
 *   EC   P-256/P-384/P-521, x and y of exactly the field size, point on the curve;
 *   OKP  Ed25519, x of 32 bytes.
 * Keys are *ignored* (left out of the set, counted by mg_jwks_ignored) when
 * they carry private members (d, p, q, dp, dq, qi, oth, k), have `use` other
 * than "sig", `key_ops` without "verify", an unsupported kty/crv, or fail the
 * checks above. <err> (may be NULL) receives the first reason a key was
 * ignored, or why the whole text was refused. Returns NULL only when the text
 * is not a JWKS at all (bad JSON, duplicate members, no "keys" array) or on
 * allocation failure. The returned set has one reference owned by the caller.
 * The set is immutable: any number of threads may read it while they hold a
 * reference. */
mg_jwks_t *mg_jwks_parse(const char *json, size_t len, char *err, size_t errlen);
/* Same, reading the file at <path> (at most 1 MiB). */
mg_jwks_t *mg_jwks_load_file(const char *path, char *err, size_t errlen);

/* Take another reference (atomic, any thread). Returns <ks>. */
mg_jwks_t *mg_jwks_ref(mg_jwks_t *ks);
/* Drop a reference (atomic, any thread); the last one frees the set and its
 * keys. NULL-safe. */
void mg_jwks_unref(mg_jwks_t *ks);

size_t mg_jwks_count(const mg_jwks_t *ks);   /* usable keys in the set */
size_t mg_jwks_ignored(const mg_jwks_t *ks); /* keys left out at import */
/* A process-wide unique number given to each set when it is built: the
 * verified-token cache drops entries verified under an older generation. */
uint64_t mg_jwks_generation(const mg_jwks_t *ks);
/* The i-th usable key, borrowed: valid while the caller holds a reference to <ks>. */
const mg_jwk_t *mg_jwks_get(const mg_jwks_t *ks, size_t i);

/* The key's kid, or NULL when it has none. Borrowed like the key. */
const char *mg_jwk_kid(const mg_jwk_t *key);
/* True when <key> may verify a token with header alg <alg> (RFC 8725 section 3.1):
 * kty and curve fit the algorithm, and the JWK's own `alg`, when present,
 * is exactly <alg>. */
bool mg_jwk_usable_for(const mg_jwk_t *key, mg_jws_alg_t alg);

/* Verify raw JWS signature bytes <sig> over <msg> (RFC 7518 section 3):
 *   RS*  PKCS#1 v1.5, signature exactly as long as the modulus;
 *   PS*  PSS with MGF1 of the same hash and salt length = hash length;
 *   ES*  R||S, each exactly the field size; r, s in [1, n-1]; converted to DER here;
 *   EdDSA  64 bytes, Ed25519.
 * This is the one signature check the token path uses. Returns 0 when the
 * signature is valid, -1 otherwise (including a key not usable for <alg>). */
int mg_jwk_verify(const mg_jwk_t *key, mg_jws_alg_t alg, const uint8_t *msg, size_t msglen,
                  const uint8_t *sig, size_t siglen);

/* mg_jwk_verify keeps, per thread, a few prepared OpenSSL verification
 * contexts (at most 16, least recently used replaced) and a digest context.
 * Each prepared context holds its own reference to its key, so key sets may
 * be released at any time. They are freed automatically when the thread
 * exits; this frees the calling thread's at once (e.g. the main thread
 * before exit, for leak checkers). Safe to call at any time. */
void mg_jwk_thread_cleanup(void);

/* --- Producing keys and tokens (mcpgate-token, tests, benchmarks) --- */

/* The public JWK of <pkey> (RSA, EC P-256/384/521 or Ed25519) as JSON text with
 * "use":"sig", and "kid"/"alg" when non-NULL / not UNKNOWN. Caller frees with
 * free(). NULL on failure. */
char *mg_jwk_public_json(EVP_PKEY *pkey, const char *kid, mg_jws_alg_t alg);

/* Sign: returns the compact JWS BASE64URL(header).BASE64URL(payload).BASE64URL(sig)
 * with <header> and <payload> taken as given (they are not re-serialised).
 * ECDSA signatures are emitted as R||S. <pss_salt> is used for PS* only:
 * -1 means the hash length (the JOSE rule); tests pass other values. Caller
 * frees with free(). NULL on failure. */
char *mg_jws_sign(EVP_PKEY *pkey, mg_jws_alg_t alg, const char *header, size_t hlen,
                  const char *payload, size_t plen, int pss_salt);

#endif /* MCPGATE_JWK_H */
