/* redis.h -- async Redis client on a worker's event_base: timeouts, reconnect, AUTH/SELECT. */
#ifndef MCPGATE_REDIS_H
#define MCPGATE_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct redisReply;

/* What the rate limiter does when Redis cannot answer in time (docs/redis.md). */
typedef enum mg_redis_on_failure {
    MG_REDIS_FAIL_LOCAL = 0, /* default: decide with the in-process limiter */
    MG_REDIS_FAIL_DENY = 1,  /* answer "unavailable" (the gateway sends 503 + Retry-After) */
    MG_REDIS_FAIL_ALLOW = 2, /* let the request through: UNSAFE, no limit while Redis is down */
} mg_redis_on_failure_t;

/* Plain configuration data, filled by the config module. Strings are borrowed
 * by mg_redis_new(), which copies them; the struct may be freed afterwards.
 * Zero-initialise and set what is needed; 0 means "the default". */
typedef struct mg_redis_conf {
    const char *host;            /* IP literal preferred: hiredis 0.14 resolves names blocking */
    uint16_t port;               /* default 6379 */
    const char *unix_path;       /* if set, host/port are ignored */
    const char *user;            /* ACL user (AUTH user password); NULL: AUTH password */
    const char *password;        /* NULL: no AUTH */
    unsigned database;           /* SELECT n when != 0 */
    unsigned timeout_ms;         /* per command; default MG_REDIS_DEFAULT_TIMEOUT_MS */
    unsigned connect_timeout_ms; /* connect + AUTH/SELECT/SCRIPT LOAD; default 1000 */
    unsigned backoff_min_ms;     /* first reconnect delay; default 100 */
    unsigned backoff_max_ms;     /* cap of the doubling delay; default 5000 */
    mg_redis_on_failure_t on_failure; /* read by the rate limiter, not by the client */
} mg_redis_conf_t;

#define MG_REDIS_DEFAULT_TIMEOUT_MS 50u
#define MG_REDIS_DEFAULT_CONNECT_TIMEOUT_MS 1000u
#define MG_REDIS_DEFAULT_BACKOFF_MIN_MS 100u
#define MG_REDIS_DEFAULT_BACKOFF_MAX_MS 5000u

typedef enum mg_redis_state {
    MG_REDIS_DISCONNECTED = 0, /* freeing, or no attempt possible */
    MG_REDIS_CONNECTING = 1,   /* TCP/unix connect, then AUTH, SELECT, SCRIPT LOAD */
    MG_REDIS_READY = 2,        /* commands are sent */
    MG_REDIS_BACKOFF = 3,      /* waiting (jittered, exponential) before the next attempt */
} mg_redis_state_t;

typedef enum mg_redis_err {
    MG_REDIS_OK = 0,
    MG_REDIS_E_NOT_READY,    /* not READY when the command was issued: failed fast */
    MG_REDIS_E_TIMEOUT,      /* no reply within timeout_ms (the connection is then dropped) */
    MG_REDIS_E_DISCONNECTED, /* the connection broke while the command was in flight */
    MG_REDIS_E_REPLY,        /* Redis answered with an error reply (reply is passed) */
    MG_REDIS_E_CLOSED,       /* mg_redis_free() was called with the command in flight */
    MG_REDIS_E_NOMEM,
} mg_redis_err_t;

/* A constant string for the error; never NULL. */
const char *mg_redis_strerror(mg_redis_err_t err);
const char *mg_redis_state_name(mg_redis_state_t state);

typedef struct mg_redis mg_redis_t;
typedef struct mg_redis_script mg_redis_script_t;

/* The callback of a command: called exactly once per accepted command, always
 * from the event loop (never from inside the call that issued the command).
 * <reply> is borrowed and valid only during the callback (copy what you need);
 * it is non-NULL for MG_REDIS_OK and MG_REDIS_E_REPLY, NULL otherwise. A late
 * reply after a timeout is swallowed by the client. The callback may issue new
 * commands and may call mg_redis_free() on the client. */
typedef void mg_redis_cb(void *arg, mg_redis_err_t err, const struct redisReply *reply);

/* Create a client on <base> and start connecting at once. One client per
 * worker thread: a client is NOT thread-safe and must only be used from the
 * thread running <base>. The process must ignore SIGPIPE (hiredis writes with
 * write(2)). Returns NULL on bad configuration or memory exhaustion. */
mg_redis_t *mg_redis_new(struct event_base *base, const mg_redis_conf_t *conf);

/* Close the connection and free the client. Every command still in flight gets
 * its callback with MG_REDIS_E_CLOSED before this returns; no callback of this
 * client is called afterwards. Safe from inside one of the client's callbacks
 * (the memory is released when the callback unwinds). NULL-safe. Call it
 * before event_base_free(). */
void mg_redis_free(mg_redis_t *c);

mg_redis_state_t mg_redis_state(const mg_redis_t *c);
const mg_redis_conf_t *mg_redis_conf(const mg_redis_t *c); /* the client's copy */
struct event_base *mg_redis_base(const mg_redis_t *c);

/* Send one command (argv form, binary-safe; argvlen NULL means strlen each).
 * Arguments are copied before return. If the client is not READY, the callback
 * gets MG_REDIS_E_NOT_READY on the next loop iteration: nothing is queued.
 * Returns 0 when the callback will be called, -1 (callback never called) when
 * memory is exhausted, argc < 1, or mg_redis_free() is running on <c>. */
int mg_redis_command_argv(mg_redis_t *c, int argc, const char *const *argv, const size_t *argvlen,
                          mg_redis_cb *cb, void *arg);

/* Register a Lua script with the client; SCRIPT LOAD runs on every (re)connect
 * before the client becomes READY. The handle stays valid until mg_redis_free();
 * registering the same text twice returns the same handle. NULL on ENOMEM. */
const mg_redis_script_t *mg_redis_script_register(mg_redis_t *c, const char *source);
const char *mg_redis_script_sha(const mg_redis_script_t *s); /* 40 hex digits */

/* EVALSHA <sha> nkeys keys... args...; on NOSCRIPT (e.g. after SCRIPT FLUSH or
 * a failover) it retries once with EVAL <source>, which also puts the script
 * back into the server's cache. Both attempts together are bounded by one
 * timeout_ms. Same callback contract as mg_redis_command_argv(). */
int mg_redis_evalsha(mg_redis_t *c, const mg_redis_script_t *s, int nkeys, const char *const *keys,
                     int nargs, const char *const *args, mg_redis_cb *cb, void *arg);

/* The value of an integer reply (SISMEMBER, EXISTS, ...), or -1 when <reply> is NULL or not
 * an integer (callers that need negative integers read the reply themselves). */
long long mg_redis_reply_integer(const struct redisReply *reply);

/* Counters of this client (its own thread reads them; approximate elsewhere). */
typedef struct mg_redis_stats {
    uint64_t connects; /* times READY was reached */
    uint64_t disconnects;
    uint64_t timeouts; /* command timeouts */
    uint64_t noscript; /* NOSCRIPT retries */
} mg_redis_stats_t;
void mg_redis_get_stats(const mg_redis_t *c, mg_redis_stats_t *out);

#endif /* MCPGATE_REDIS_H */
