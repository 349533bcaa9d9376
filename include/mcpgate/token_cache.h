/* token_cache.h -- the verified-token cache: bounded LRU keyed by SHA-256 of the token, one per worker thread. */
#ifndef MCPGATE_TOKEN_CACHE_H
#define MCPGATE_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mcpgate/jwt.h"

/* NOT THREAD-SAFE, by design: each worker thread owns its own cache and no
 * other thread ever touches it (docs/hacking.md: no shared mutable state).
 * Entries hold the verified claims, never the token: the key is SHA-256 of
 * the token (SPEC T-18). Only successful verifications are stored. */
typedef struct mg_token_cache mg_token_cache_t;

/* <capacity> entries at most (0 = caching off: every call verifies);
 * <ttl> seconds at most per entry (an entry also ends at the token's exp). */
mg_token_cache_t *mg_token_cache_new(size_t capacity, int64_t ttl);
void mg_token_cache_free(mg_token_cache_t *cache); /* NULL-safe */

/* Same contract as mg_jwt_verify, through the cache. A hit is used only when
 * the entry is younger than min(exp, ttl), its issuer is one of <issuers>,
 * that issuer's key-set generation is unchanged and an audience matches;
 * exp/nbf/iat are rechecked against <now> on every hit. A stale entry is
 * dropped and the token verified again.
 * On MG_JWT_OK, *claims_out (when not NULL) points to claims owned by the
 * cache: valid until the next call on this cache or its free. Take a
 * reference (mg_jwt_claims_ref) or a copy (mg_jwt_claims_dup) to keep them
 * longer; a reference also keeps the memo a consumer attached. */
mg_jwt_reason_t mg_token_cache_verify(mg_token_cache_t *cache, const char *token, size_t len,
                                      mg_jwt_issuer_t *const *issuers, size_t n_issuers,
                                      const char *const *audiences, size_t n_audiences,
                                      int64_t now, const mg_jwt_claims_t **claims_out);

typedef struct mg_token_cache_stats {
    uint64_t hits, misses, evictions, invalidations;
    size_t entries;
} mg_token_cache_stats_t;

void mg_token_cache_stats(const mg_token_cache_t *cache, mg_token_cache_stats_t *out);

#endif /* MCPGATE_TOKEN_CACHE_H */
