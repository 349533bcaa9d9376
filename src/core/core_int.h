/* core_int.h -- layouts shared inside src/core only: generation, worker, client and upstream
 * connections.
 *
 * Threading: a mg_worker_t and everything reachable from it (listeners,
 * connections, upstream pool) belong to that worker's thread; only the
 * mailbox fields (under mb_lock) are touched by the main thread. A
 * mg_gen_t is immutable once built and shared by reference count.
 */
#ifndef MCPGATE_CORE_INT_H
#define MCPGATE_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "mcpgate/conf.h"
#include "mcpgate/http_parse.h"
#include "mcpgate/jwt.h"
#include "mcpgate/token_cache.h"

/* ---- gen.c: one configuration generation at runtime ---- */

typedef struct mg_gen {
    atomic_int refs;
    unsigned long serial; /* 1 for the startup configuration, +1 per reload */
    mg_conf_t *conf;      /* owned */
    SSL_CTX **listen_ctx; /* [conf->nlistens]: server context, NULL for plain HTTP */
    SSL_CTX **route_ctx;  /* [conf->nroutes]: client context, NULL for http:// upstreams */
    mg_jwt_issuer_t **issuers;        /* [conf->nissuers]: policy + key set, owned */
    mg_jwt_issuer_t ***route_issuers; /* [conf->nroutes]: the route's issuers in its order
                                         (borrowed from <issuers>); NULL when unprotected */
    struct mg_mcp *mcp;               /* front door: PRM documents, challenges (owned) */
    struct mg_identity_signer **signers; /* [conf->nroutes]: identity_signing_key, or NULL */
    struct mg_keys *keys; /* the key manager its jwks_uri/discovery issuers are registered
                             with (mg_gen_attach_keys); NULL: none (mcpgate -t) */
} mg_gen_t;

/* Build the runtime generation for <conf>: TLS contexts and issuer key sets
 * from the files it names. On success the generation owns <conf> and holds one reference; on
 * failure returns NULL, logs why, and <conf> still belongs to the caller. */
mg_gen_t *mg_gen_new(mg_conf_t *conf, unsigned long serial);
/* Main thread: register the generation's jwks_uri/discovery issuers with <km>, which
 * installs their key sets (at once when known, else after the first fetch). The generation
 * unregisters itself when freed. Returns 0 or -1 (out of memory). */
int mg_gen_attach_keys(mg_gen_t *gen, struct mg_keys *km);
mg_gen_t *mg_gen_ref(mg_gen_t *gen);
/* Drop one reference; the last one frees the generation. NULL-safe. Any thread. */
void mg_gen_unref(mg_gen_t *gen);

/* ---- tls.c: SSL_CTX construction ---- */

/* Server context for a TLS listener: TLS 1.2+, server cipher preference,
 * ALPN http/1.1 only, chain + key checked to match. NULL + logged on error. */
SSL_CTX *mg_tls_server_ctx(const char *cert_file, const char *key_file, const char *where);
/* Set up a TLS listener's client bufferevent (bufferevent_openssl_socket_new on a socket and
 * an SSL of mg_tls_server_ctx, before any data flows) for fewer records and system calls per
 * request: read-ahead once the handshake is done, never leaving whole records unread; output
 * of up to one record kept in one piece, so one record and one write(); output written from
 * the loop at once rather than after a wait for writability (no epoll_ctl pair). The
 * callbacks installed live as long as <bev>. False when out of memory. */
bool mg_tls_conn_tune(struct bufferevent *bev);
/* Client context for an https upstream: peer verification against the
 * system store or <ca_file>, TLS 1.2+, ALPN http/1.1. NULL + logged on error. */
SSL_CTX *mg_tls_client_ctx(const char *ca_file, const char *where);
/* A client SSL for <host>: SNI (names only) and name or IP check. NULL on error. */
SSL *mg_tls_client_ssl(SSL_CTX *ctx, const char *host);

/* ---- connlimit.c: max_connections, max_connections_per_client (process-wide) ---- */

/* Shared by every worker (atomics and per-bucket mutexes inside); owned by the server,
 * freed after the workers. */
typedef struct mg_connlimit mg_connlimit_t;
struct mg_metrics;

/* What one accepted connection holds; given back with mg_connlimit_release(). */
typedef struct mg_climit_ticket {
    struct mg_climit_entry *client; /* its client's entry, or NULL (not counted per client) */
    int listener;                   /* the listener index counted, or -1 */
    bool total;                     /* counted in the process total */
} mg_climit_ticket_t;

/* <nlisten>: the listeners of the startup configuration (the sockets). <metrics> borrowed,
 * may be NULL. NULL on out of memory. */
mg_connlimit_t *mg_connlimit_new(size_t nlisten, struct mg_metrics *metrics);
/* After every connection was released (every worker freed). NULL-safe. */
void mg_connlimit_free(mg_connlimit_t *cl);
/* Any worker, at accept: take a place for a connection from <sa> (its text <client_ip>) on
 * listener <listener> (index in mg_worker_t.listeners, address <listen_text>) under the
 * limits of <conf>. True: *t holds it. False: over a limit (counted in the metrics, logged at
 * most once a second), *t holds nothing and the caller closes the socket. <cl> NULL: no
 * limits. */
bool mg_connlimit_acquire(mg_connlimit_t *cl, const mg_conf_t *conf, size_t listener,
                          const char *listen_text, const struct sockaddr *sa, const char *client_ip,
                          mg_climit_ticket_t *t);
/* Give back what <t> holds (idempotent). NULL-safe on <cl>. Any thread. */
void mg_connlimit_release(mg_connlimit_t *cl, mg_climit_ticket_t *t);

/* ---- worker.c ---- */

struct mg_server;
struct mg_conn;
struct mg_upconn;

typedef struct mg_listener {
    struct evconnlistener *lev;
    struct event *retry_ev; /* re-enables accepting after EMFILE and the like */
    struct mg_worker *w;
    char *text; /* "addr:port" as configured when the socket was opened */
    bool tls;
    SSL_CTX *own_ctx; /* the context at startup (own reference): used when a reload
                         no longer has this address */
} mg_listener_t;

typedef struct mg_worker {
    int id;
    struct mg_server *srv;
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct evdns_base *dns;
    mg_listener_t *listeners;
    size_t nlisteners;
    mg_gen_t *gen; /* current generation for new requests (own reference) */
    struct mg_metrics *metrics; /* the process's metrics (borrowed from the server) */
    struct mg_audit *audit;     /* the audit log (borrowed from the server) */
    mg_connlimit_t *climit;     /* the connection limits (borrowed from the server) */
    struct mg_session_store *sessions; /* Mcp-Session-Id bindings: the server's shared memory
                                          store (borrowed), or own_sessions */
    /* Shared state (docs/redis.md). The in-process limiter is the server's (borrowed, locked
     * inside); with a redis block at startup the worker owns a client on its base, a limiter
     * and a session store on that client (all freed in mg_worker_free, before the base). */
    struct mg_rl_local *rl_local;
    struct mg_redis *redis;
    struct mg_ratelimit *rl;
    struct mg_session_store *own_sessions;

    /* Mailbox from the main thread: fields under mb_lock, then a byte on mb_fd. */
    pthread_mutex_t mb_lock;
    mg_gen_t *mb_gen; /* a new generation to adopt (reference owned by the mailbox) */
    bool mb_drain;
    bool mb_closed; /* the worker has exited: no more wake-ups */
    int mb_fd[2];   /* pipe: the main thread writes a byte to wake the worker (mailbox_wake) */
    struct event *mb_ev; /* reads mb_fd[0] */

    bool draining;
    struct event *drain_ev; /* drain_timeout expiry */
    struct mg_conn *conns;  /* doubly linked, every live client connection */
    size_t nconns;
    struct mg_upconn *idle; /* keep-alive pool: idle upstream connections */
    size_t nidle;

    /* Verified-token cache of the current generation: its entries point at
     * that generation's issuer objects, so a new generation gets a new cache
     * and requests still running under an older one verify uncached. */
    mg_token_cache_t *tcache;
    unsigned long tcache_serial; /* the generation it belongs to (serials are never reused,
                                    unlike addresses); 0: none */
    struct mg_introspect *introspect; /* RFC 7662 client and result cache (introspect.h);
                                         created on first use, freed before the base */
} mg_worker_t;

mg_worker_t *mg_worker_new(struct mg_server *srv, int id, mg_gen_t *gen);
/* Main thread, before mg_worker_start(): connect this worker to Redis (the startup
 * configuration's redis block; a change needs a restart) and use the Redis limiter and
 * session store. <local> is the process-wide in-process limiter. Returns 0 or -1. */
int mg_worker_use_redis(mg_worker_t *w, const struct mg_conf_redis *rc, struct mg_rl_local *local);
int mg_worker_start(mg_worker_t *w);
/* Main thread: hand over a new generation / start draining. */
void mg_worker_post_gen(mg_worker_t *w, mg_gen_t *gen);
void mg_worker_post_drain(mg_worker_t *w);
/* Main thread, after the thread has been joined (or never started). */
void mg_worker_free(mg_worker_t *w);
/* Worker thread: a connection was freed; finishes the drain when it was the last. */
void mg_worker_conn_gone(mg_worker_t *w);

/* server.c: called from a worker thread when it has finished. */
void mg_server_worker_done(struct mg_server *srv);

/* ---- upstream.c: per-worker keep-alive pool ---- */

typedef struct mg_upconn {
    struct mg_upconn *next, *prev; /* in w->idle while pooled */
    mg_worker_t *w;
    struct bufferevent *bev;
    bool tls;
    char *host;
    uint16_t port;
    SSL_CTX *ctx; /* identity of the verification settings (not a reference) */
    bool connected;
    bool reused; /* came out of the pool */
    struct event *idle_ev;
    struct event *rd; /* a plain, connected socket: read by sock_read_cb, not the bufferevent */
    bool reading;     /* rd is added */
} mg_upconn_t;

/* An upstream connection for <route>: a pooled idle one when available
 * (unless <fresh>), else a new one that is connecting (wait for
 * BEV_EVENT_CONNECTED). The caller owns it and must set its callbacks.
 * NULL on error (logged). */
mg_upconn_t *mg_upstream_get(mg_worker_t *w, const mg_conf_route_t *route, SSL_CTX *ctx,
                             bool fresh);
/* Give a connection whose exchange completed cleanly back to the pool. */
void mg_upstream_release(mg_upconn_t *u);
/* Reading from the upstream on or off (its bufferevent callbacks get the data). */
void mg_upstream_reading(mg_upconn_t *u, bool on);
/* Once a plain connection is connected: the gateway reads its socket itself from
 * now on (mg_sock_read), saving the FIONREAD ioctl libevent makes before every
 * read. Callbacks and buffers stay the bufferevent's. */
void mg_upstream_own_reads(mg_upconn_t *u);

/* ---- io.c ---- */

/* One readv() of up to 16 KiB from <fd> into room reserved at the end of <in>
 * (a bufferevent's input buffer: its frozen end is thawed for the call). Returns
 * what readv returned; on -1 *err holds errno. */
ssize_t mg_sock_read(evutil_socket_t fd, struct evbuffer *in, int *err);
/* Reading on or off for a socket read either by the gateway (<rd>, its state in
 * *reading) or, when <rd> is NULL (TLS; an upstream still connecting), by <bev>. */
void mg_sock_reading(struct bufferevent *bev, struct event *rd, bool *reading, bool on);
/* Close and free. NULL-safe. */
void mg_upstream_close(mg_upconn_t *u);
/* Close every pooled connection of <w>. */
void mg_upstream_pool_clear(mg_worker_t *w);

/* ---- conn.c: client connections ---- */

typedef struct mg_conn mg_conn_t;

/* Worker thread: take over an accepted socket. */
void mg_conn_accept(mg_worker_t *w, mg_listener_t *l, evutil_socket_t fd, struct sockaddr *sa,
                    int salen);
/* Worker thread: drain started: close idle ones, end SSE streams, no more keep-alive. */
void mg_conn_drain_all(mg_worker_t *w);
/* Worker thread: drain_timeout passed, close everything now. */
void mg_conn_close_all(mg_worker_t *w);

/* ---- auth.c: access tokens on protected routes ---- */

typedef enum mg_auth_outcome {
    MG_AUTH_OK,           /* *claims_out set */
    MG_AUTH_NO_TOKEN,     /* 401, no error code (RFC 6750 section 3.1) */
    MG_AUTH_BAD_REQUEST,  /* 400 invalid_request: malformed Authorization */
    MG_AUTH_INVALID,      /* 401 invalid_token */
    MG_AUTH_UNAVAILABLE,  /* 503: no usable keys at all; never 401 (SPEC C-14) */
    MG_AUTH_PENDING,      /* mg_auth_check_async only: the token is being introspected */
} mg_auth_outcome_t;

typedef struct mg_auth_result {
    mg_auth_outcome_t outcome;
    mg_jwt_reason_t reason;   /* for MG_AUTH_INVALID: the code for logs and metrics */
    const char *code;         /* static reason code that overrides mg_jwt_reason_code(reason)
                                 (API keys: "api_key_unknown"), or NULL */
    bool api_key;             /* MG_AUTH_OK: the caller used an API key, not a token */
    const char *description;  /* static, client-safe */
    int retry_after;          /* MG_AUTH_UNAVAILABLE: seconds for Retry-After; 0: default 5 */
    mg_jwt_claims_t *claims;  /* MG_AUTH_OK: owned by the caller (mg_jwt_claims_free) */
} mg_auth_result_t;

/* Check the request's credentials for route <route_idx> of <gen> at Unix
 * time <now>, through <w>'s token cache when <gen> is current. */
void mg_auth_check(mg_worker_t *w, mg_gen_t *gen, size_t route_idx,
                   const mg_http_request_head_t *req, int64_t now, mg_auth_result_t *out);

/* The same, but an opaque token (or every token of a `validation introspection;` issuer) is
 * introspected (RFC 7662, src/core/introspect.c) instead of being refused: then out->outcome
 * is MG_AUTH_PENDING, *wait is set, and <cb>(<arg>, result) is called once, later, from the
 * worker's loop (the callee takes result->claims), unless mg_auth_cancel(*wait) comes first.
 * Every other outcome is final at once (*wait NULL, <cb> never called). The generation, and
 * so <req>'s route, must stay alive while the check is pending (the connection holds it). */
typedef struct mg_introspect_wait mg_auth_wait_t;
typedef void (*mg_auth_cb)(void *arg, mg_auth_result_t *res);
void mg_auth_check_async(mg_worker_t *w, mg_gen_t *gen, size_t route_idx,
                         const mg_http_request_head_t *req, int64_t now, mg_auth_result_t *out,
                         mg_auth_cb cb, void *arg, mg_auth_wait_t **wait);
/* Forget a pending check (the connection is going away): its callback is not called.
 * NULL-safe; never from that check's own callback. */
void mg_auth_cancel(mg_auth_wait_t *wait);

/* The WWW-Authenticate header line (with CRLF) for an outcome; static or
 * malloc'd into *to_free. NULL when the outcome has none. */
const char *mg_auth_challenge(const mg_auth_result_t *r, char **to_free);

/* Rate-limit keys that depend only on the token and the route (the subject, client and route
 * lines; never tool lines, which depend on the request), remembered in the memo of claims that
 * a token cache shares, so that the token's next requests neither format nor hash them. */
typedef struct mg_rl_memo mg_rl_memo_t;
struct mg_rl_key;
/* The memo of <claims> for route <route_idx> of <gen>; one made for another route or generation
 * is replaced by an empty one. NULL when there is nothing to remember it for (claims held by
 * the caller alone, or a route without limits) or on OOM: work without. Owned by the claims:
 * valid while the caller holds them and asks for no other route. Worker thread only. */
mg_rl_memo_t *mg_auth_rl_memo(mg_jwt_claims_t *claims, const mg_gen_t *gen, size_t route_idx);
/* The key remembered for rate_limit line <line> (id and resolution included, valid as long as
 * the memo), or NULL. */
const struct mg_rl_key *mg_rl_memo_get(const mg_rl_memo_t *m, size_t line);
/* Remember <key>, line <line>'s key for these claims (id copied, resolved under <scope>, the
 * scope of the checks). Returns the remembered key, or NULL (the caller keeps using <key>). */
const struct mg_rl_key *mg_rl_memo_put(mg_rl_memo_t *m, size_t line, const char *scope,
                                       const struct mg_rl_key *key);

/* ---- admin.c: the admin listener on the main thread ---- */

typedef struct mg_admin mg_admin_t;
struct mg_metrics;
/* Serve GET /metrics from <m> (borrowed; NULL: 404). */
void mg_admin_set_metrics(mg_admin_t *a, struct mg_metrics *m);
/* <keys> (may be NULL) decides readiness together with <draining>. */
mg_admin_t *mg_admin_new(struct event_base *base, const mg_conf_listen_t *l,
                         const atomic_bool *draining, struct mg_keys *keys);
void mg_admin_free(mg_admin_t *a);

#endif /* MCPGATE_CORE_INT_H */
