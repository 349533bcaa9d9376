/* session.h -- Mcp-Session-Id ownership: binding legacy MCP sessions to the principal (iss, sub) that opened them.
 *
 * SPEC SS-01..SS-06: a session id is not authentication. When an upstream
 * returns Mcp-Session-Id, the gateway records session -> (iss, sub); a later
 * request carrying that id from anyone else, or after the binding expired,
 * is answered 404 and not forwarded (as if the session did not exist).
 *
 * The store is an interface (a vtable with completion callbacks) so that a
 * Redis-backed store can replace the in-memory one; the in-memory store calls
 * the callback before returning. Callbacks run on the calling thread for the
 * memory store, on the store's event loop for asynchronous stores.
 */
#ifndef MCPGATE_SESSION_H
#define MCPGATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_SESSION_ID_MAX 256

/* Visible ASCII (0x21-0x7E), 1..MG_SESSION_ID_MAX bytes (SPEC SS-02); a
 * request whose Mcp-Session-Id fails this gets 400. */
bool mg_session_id_valid(const char *id, size_t len);

typedef enum mg_session_result {
    MG_SESSION_OWNED = 0, /* bound to this principal: forward (the TTL is renewed) */
    MG_SESSION_UNKNOWN,   /* never bound here, or expired: 404 */
    MG_SESSION_FOREIGN,   /* bound to another principal: 404 (same reply as UNKNOWN) */
    MG_SESSION_ERROR,     /* store failure or full: 503 for lookups; for bind, the
                             response can still go out but later requests will 404 */
} mg_session_result_t;

/* Completion: <version> is the protocol version recorded with the binding
 * (OWNED only; borrowed for the duration of the call; may be NULL). */
typedef void (*mg_session_cb)(void *arg, mg_session_result_t result, const char *version);

typedef struct mg_session_store mg_session_store_t;

/* Strings passed in are copied (or used only before the callback returns).
 * <now_ms> is a monotonic clock in milliseconds. */
typedef struct mg_session_store_ops {
    /* Record id -> (iss, sub, version) for <ttl_ms>. An id already bound to
     * another principal is left alone and reported FOREIGN; one bound to the
     * same principal is renewed (OWNED). */
    void (*bind)(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                 const char *sub, const char *version, uint64_t ttl_ms, uint64_t now_ms,
                 mg_session_cb cb, void *arg);
    /* Check that <id> belongs to (iss, sub); OWNED renews the TTL to <ttl_ms>. */
    void (*check)(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                  const char *sub, uint64_t ttl_ms, uint64_t now_ms, mg_session_cb cb,
                  void *arg);
    /* Forget <id> if it belongs to (iss, sub) (after a DELETE): OWNED when
     * removed, else UNKNOWN/FOREIGN and nothing changes. */
    void (*remove)(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                   const char *sub, mg_session_cb cb, void *arg);
    void (*free)(mg_session_store_t *s);
} mg_session_store_ops_t;

struct mg_session_store {
    const mg_session_store_ops_t *ops;
};

/* The in-memory store: thread-safe (one mutex; workers share it), at most
 * <max_entries> live bindings (0: 100000). When full, expired bindings are
 * dropped first, then the one closest to expiry. NULL on OOM. */
mg_session_store_t *mg_session_store_memory_new(size_t max_entries);

/* The Redis store (src/store/session_redis.c, docs/redis.md): bindings live in
 * Redis with the route's TTL, so that every replica sharing the Redis enforces
 * them. One per worker, on that worker's client (<redis> is borrowed and must
 * outlive the store's last callback; the store itself may be freed while
 * commands are in flight). Callbacks run from the client's event loop, never
 * inside the call (except MG_SESSION_ERROR when a command cannot be issued
 * at all). Redis failures are MG_SESSION_ERROR: sessions fail closed, whatever
 * on_failure says (there is no local copy of another replica's bindings).
 * NULL on OOM. */
struct mg_redis;
mg_session_store_t *mg_session_store_redis_new(struct mg_redis *redis);

/* Convenience wrappers over s->ops. */
void mg_session_bind(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                     const char *sub, const char *version, uint64_t ttl_ms, uint64_t now_ms,
                     mg_session_cb cb, void *arg);
void mg_session_check(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                      const char *sub, uint64_t ttl_ms, uint64_t now_ms, mg_session_cb cb,
                      void *arg);
void mg_session_remove(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                       const char *sub, mg_session_cb cb, void *arg);
void mg_session_store_free(mg_session_store_t *s); /* NULL-safe */

/* Number of live bindings in a memory store (tests). */
size_t mg_session_store_memory_count(mg_session_store_t *s);

#endif /* MCPGATE_SESSION_H */
