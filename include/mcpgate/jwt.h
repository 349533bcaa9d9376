/* jwt.h -- access-token (JWT, RFC 9068) validation: per-issuer policy, verify, verified claims, reason codes. */
#ifndef MCPGATE_JWT_H
#define MCPGATE_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpgate/jwk.h"

/* Why a token was refused. Every value has a short code for logs and
 * metrics (mg_jwt_reason_code) and a static, client-safe description
 * (mg_jwt_reason_description) that never contains token or key material. */
typedef enum mg_jwt_reason {
    MG_JWT_OK = 0,
    MG_JWT_TOO_LARGE,          /* "too_large": longer than max_token_size */
    MG_JWT_MALFORMED,          /* "malformed": not three dot-separated segments, bad header member type */
    MG_JWT_JWE_UNSUPPORTED,    /* "jwe_unsupported": five segments, an encrypted token */
    MG_JWT_BAD_ENCODING,       /* "bad_encoding": not strict base64url */
    MG_JWT_BAD_JSON,           /* "bad_json": header/payload not a JSON object, duplicate members, NUL, too deep */
    MG_JWT_ALG_NOT_ALLOWED,    /* "alg_not_allowed": missing, none, HS*, unknown or not in the issuer's list */
    MG_JWT_CRIT_UNSUPPORTED,   /* "crit_unsupported": a crit header (RFC 7515 section 4.1.11) */
    MG_JWT_B64_UNSUPPORTED,    /* "b64_unsupported": a b64 header (RFC 7797) */
    MG_JWT_BAD_TYP,            /* "bad_typ": typ is not at+jwt while require_typ is on (RFC 9068 section 4) */
    MG_JWT_ISS_MISMATCH,       /* "iss_mismatch": iss missing, not a string, or no configured issuer matches exactly */
    MG_JWT_KEY_NOT_FOUND,      /* "key_not_found": no key with this kid, or no candidate at all */
    MG_JWT_KEY_AMBIGUOUS,      /* "key_ambiguous": several candidate keys and no kid to choose */
    MG_JWT_KEY_ALG_MISMATCH,   /* "key_alg_mismatch": the kid's key has another type, curve or alg */
    MG_JWT_BAD_SIGNATURE,      /* "bad_signature" */
    MG_JWT_CNF_UNSUPPORTED,    /* "cnf_unsupported": sender-constrained token (RFC 9449/8705) */
    MG_JWT_MISSING_CLAIM,      /* "missing_claim": exp, aud or sub absent (iat when max lifetime is on) */
    MG_JWT_INVALID_CLAIM,      /* "invalid_claim": a claim of the wrong JSON type or out of range */
    MG_JWT_EXPIRED,            /* "expired" */
    MG_JWT_NOT_YET_VALID,      /* "not_yet_valid": nbf in the future beyond leeway */
    MG_JWT_IAT_IN_FUTURE,      /* "iat_in_future" */
    MG_JWT_LIFETIME_TOO_LONG,  /* "lifetime_too_long": exp - iat above max_token_lifetime */
    MG_JWT_AUD_MISMATCH,       /* "aud_mismatch": aud does not name this resource */
    MG_JWT_INTERNAL,           /* "internal": allocation or library failure */
    MG_JWT_REASON_COUNT
} mg_jwt_reason_t;

/* Static strings; never NULL. */
const char *mg_jwt_reason_code(mg_jwt_reason_t reason);
const char *mg_jwt_reason_description(mg_jwt_reason_t reason);

/* --- Per-issuer policy ------------------------------------------------------
 * Filled from configuration by the main thread, then read by worker threads.
 * Everything but the key set is fixed once workers use the object; the key
 * set may be swapped at any time by mg_jwt_issuer_set_keys (a fetcher):
 * readers take their own reference under a short internal lock, so a swap
 * never frees a set that a verification is still using. */
typedef struct mg_jwt_issuer mg_jwt_issuer_t;

#define MG_JWT_DEFAULT_LEEWAY 60
#define MG_JWT_DEFAULT_MAX_TOKEN_SIZE 8192

/* New policy for issuer <iss> (copied; compared exactly, RFC 9068 section 4)
 * with the defaults: every algorithm of mg_jws_alg_t, leeway 60 s,
 * require_typ on, no lifetime limit, max_token_size 8192, no keys.
 * Caller owns it; free with mg_jwt_issuer_free once no thread uses it. */
mg_jwt_issuer_t *mg_jwt_issuer_new(const char *iss);
void mg_jwt_issuer_free(mg_jwt_issuer_t *issuer); /* NULL-safe; drops its key-set reference */

/* Set the allow-list from a space- or comma-separated list of names
 * ("RS256 ES256"). Returns NULL on success or a static error text: "none",
 * HS* and unknown names are refused and leave the list unchanged. */
const char *mg_jwt_issuer_set_algs(mg_jwt_issuer_t *issuer, const char *list);
/* Same from a bit mask of MG_JWS_ALG_BIT(); bits outside MG_JWS_ALGS_ALL are dropped. */
void mg_jwt_issuer_set_alg_mask(mg_jwt_issuer_t *issuer, unsigned mask);
void mg_jwt_issuer_set_leeway(mg_jwt_issuer_t *issuer, int64_t seconds);
/* Keycloak sends typ "JWT": turn this off per issuer for it. */
void mg_jwt_issuer_set_require_typ(mg_jwt_issuer_t *issuer, bool on);
void mg_jwt_issuer_set_max_lifetime(mg_jwt_issuer_t *issuer, int64_t seconds); /* 0 = off */
void mg_jwt_issuer_set_max_token_size(mg_jwt_issuer_t *issuer, size_t bytes);
/* Install <keys> (the issuer takes its own reference; the caller keeps
 * theirs). The previous set is released. <keys> may be NULL (no keys). */
void mg_jwt_issuer_set_keys(mg_jwt_issuer_t *issuer, mg_jwks_t *keys);
/* A new reference to the current key set (NULL if none); release with mg_jwks_unref. */
mg_jwks_t *mg_jwt_issuer_keys(mg_jwt_issuer_t *issuer);
/* Generation of the current key set, 0 when there is none. */
uint64_t mg_jwt_issuer_keys_generation(mg_jwt_issuer_t *issuer);
const char *mg_jwt_issuer_name(const mg_jwt_issuer_t *issuer); /* borrowed */
int64_t mg_jwt_issuer_leeway(const mg_jwt_issuer_t *issuer);

/* --- Verified claims ----------------------------------------------------- */

/* Plain data, meant to be read. Strings are NUL-terminated copies owned by
 * the object (NULL when the claim was absent). */
typedef struct mg_jwt_claims {
    char *iss;
    char *sub;
    char *client_id;   /* client_id (RFC 9068 section 2.2), else azp */
    char *jti;
    int64_t exp;
    int64_t iat;       /* valid when has_iat */
    int64_t nbf;       /* valid when has_nbf */
    bool has_iat, has_nbf;
    char **scopes;     /* whole words from `scope` (string) or `scp` (array or string) */
    size_t n_scopes;
    char **aud;        /* every audience value of the token */
    size_t n_aud;
    mg_jws_alg_t alg;
    /* Which policy accepted the token (borrowed: valid while that policy
     * lives) and the generation of the key set that verified it. */
    mg_jwt_issuer_t *issuer;
    uint64_t keys_generation;
    /* Values a consumer derives from the claims alone and keeps for the next
     * request with the same token (the gateway: rate-limit bucket keys), so
     * that a cache hit does not derive them again. Owned by the claims:
     * memo_free(memo) runs when the claims are freed. Not copied by dup. */
    void *memo;
    void (*memo_free)(void *memo);
    /* References beyond the first (mg_jwt_claims_ref): 0 = one owner. Not
     * atomic: claims, like the cache that hands them out, stay on one thread. */
    unsigned refs;
} mg_jwt_claims_t;

/* Drop one reference: the last one frees the claims (and the memo). NULL-safe. */
void mg_jwt_claims_free(mg_jwt_claims_t *claims);
/* Another reference to the same claims, released with mg_jwt_claims_free: a
 * cache hit shares its entry instead of copying it. Same thread only. Takes a
 * const pointer, as the caches hand out: the count is bookkeeping, not a
 * claim. Returns <claims>. */
mg_jwt_claims_t *mg_jwt_claims_ref(const mg_jwt_claims_t *claims);
mg_jwt_claims_t *mg_jwt_claims_dup(const mg_jwt_claims_t *claims); /* no memo, one owner */
bool mg_jwt_claims_has_scope(const mg_jwt_claims_t *claims, const char *scope);

/* --- Verification --------------------------------------------------------- */

/* Verify access token <token> (<len> bytes, no NUL needed) for a route that
 * trusts <issuers> (n_issuers >= 1) and whose resource is named by any of
 * <audiences> (exact string compare, RFC 8707 / RFC 9068 section 4).
 * The unverified `iss` claim selects exactly one issuer; only that issuer's
 * algorithms and keys are then used (RFC 8725 section 3.8). <now> is Unix time.
 * On MG_JWT_OK and when <claims_out> is not NULL, *claims_out receives a new
 * object the caller frees with mg_jwt_claims_free; otherwise *claims_out is
 * set to NULL. The token is never copied anywhere that outlives the call. */
mg_jwt_reason_t mg_jwt_verify(const char *token, size_t len, mg_jwt_issuer_t *const *issuers,
                              size_t n_issuers, const char *const *audiences, size_t n_audiences,
                              int64_t now, mg_jwt_claims_t **claims_out);

/* The time-dependent checks alone (exp, nbf, iat with <leeway>), as rerun on
 * every cache hit. */
mg_jwt_reason_t mg_jwt_check_time(const mg_jwt_claims_t *claims, int64_t leeway, int64_t now);
/* True when one of claims->aud equals one of <audiences>. */
bool mg_jwt_claims_aud_matches(const mg_jwt_claims_t *claims, const char *const *audiences,
                               size_t n_audiences);

/* JWS layer only (RFC 7515 compact form): structure, encoding, header rules
 * (alg allow-list, crit, b64, typ when required), key selection and the
 * signature, with <policy>'s algorithms and keys; no claim is looked at and
 * the payload need not be JSON. On MG_JWT_OK and non-NULL <payload>, a
 * malloc'd copy of the payload (NUL-terminated) is stored for the caller to
 * free. Used by the token path and by the JOSE test vectors. */
mg_jwt_reason_t mg_jws_verify(const char *token, size_t len, mg_jwt_issuer_t *policy,
                              uint8_t **payload, size_t *payload_len);

/* The unverified kid and iss of a compact JWS, for choosing which issuer's key
 * set to refetch after MG_JWT_KEY_NOT_FOUND (nothing here is trusted: the
 * caller only uses them to look up configured issuers and cached keys, RFC 8725
 * section 3.10). Runs the same structure and header checks as mg_jwt_verify.
 * On MG_JWT_OK *iss is a malloc'd copy and *kid a malloc'd copy or NULL when
 * the header has none; the caller frees both. Otherwise both are NULL. */
mg_jwt_reason_t mg_jwt_peek_header(const char *token, size_t len, char **kid, char **iss);

#endif /* MCPGATE_JWT_H */
