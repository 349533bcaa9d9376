/* store_int.h -- layouts and helpers shared inside src/store only. */
#ifndef MCPGATE_STORE_INT_H
#define MCPGATE_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "mcpgate/ratelimit.h"
#include "mcpgate/redis.h"

/* ---- redis_script.c ---- */
struct mg_redis_script {
    struct mg_redis_script *next;
    char *source;
    char sha[41];
};

/* SHA-1 of <source> as 40 lowercase hex digits (what SCRIPT LOAD returns). */
void mg_store_sha1_hex(const char *source, char out[41]);
/* The client's registered scripts, for the connect handshake. */
const mg_redis_script_t *mg_redis_scripts(const mg_redis_t *c);
/* Append <s> (owned by the client from now on). Registered while READY, it is
 * loaded by the NOSCRIPT path on first use and on every later connect. */
void mg_redis_script_add(mg_redis_t *c, mg_redis_script_t *s);

/* ---- ratelimit_lua.c ---- */
extern const char mg_rl_gcra_lua[];

/* ---- ratelimit.c / ratelimit_local.c ---- */
#define MG_RL_DIGEST_LEN MG_RL_ID_DIGEST_LEN

/* A bucket, resolved: what both the Redis and the in-process limiter use. */
typedef struct mg_rl_bucket {
    uint8_t digest[MG_RL_DIGEST_LEN]; /* identity: SHA-256(scope, kind, id, T, B), truncated */
    uint64_t interval_us;
    uint32_t burst;
} mg_rl_bucket_t;

/* Validate and resolve keys; false if invalid (result is then filled as INVALID).
 * A key's valid ->resolved is used as is. */
bool mg_rl_resolve(const char *scope, const mg_rl_key_t *keys, size_t n, mg_rl_bucket_t *out,
                   mg_rl_result_t *result);
/* The Redis Cluster hash tag of <scope> (NULL = ""): SHA-256("mg-rl-scope-v1", scope)
 * truncated to 8 bytes, shared by every key of a check. False on a digest failure. */
bool mg_rl_scope_tag(const char *scope, uint8_t tag[8]);
/* The Redis key of a resolved bucket (mg_rl_redis_key's form) into <buf>; its length. */
size_t mg_rl_format_redis_key(const uint8_t tag[8], const char *kind,
                              const uint8_t digest[MG_RL_DIGEST_LEN],
                              char buf[MG_RL_REDIS_KEY_SIZE]);
/* A resolution usable for <key>: key->resolved when it was made for the same interval and
 * burst, else NULL. */
const mg_rl_resolved_t *mg_rl_key_resolved(const mg_rl_key_t *key);
mg_rl_decision_t mg_rl_local_check_buckets(mg_rl_local_t *l, const mg_rl_bucket_t *b, size_t n,
                                           uint64_t now_us, mg_rl_result_t *result);
uint64_t mg_rl_now_us(void); /* CLOCK_MONOTONIC */

#endif /* MCPGATE_STORE_INT_H */
