/* redis.c -- async Redis client: connection states, per-command timers, reconnect backoff. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "mcpgate/log.h"
#include "mcpgate/redis.h"
#include "store_int.h"

/*
 * Lifetimes (hiredis 0.14 rules, see its README):
 *  - hiredis calls every command callback exactly once: with the reply, or
 *    with NULL when the context is freed or the connection breaks. So a
 *    command object is freed by that callback when hiredis owes us one
 *    (in_hiredis), by us otherwise.
 *  - hiredis 0.14 has no async timeouts: each user command has its own timer.
 *    When it fires, the user is answered at once (done = true) and the
 *    connection is dropped (a server that does not answer one command in time
 *    will not answer the next either, as in h2o's redis client); the late
 *    NULL/reply callback then only frees the object.
 *  - The context is never freed from inside one of its own connect or
 *    disconnect callbacks: a handshake failure schedules kill_ev instead.
 *    Inside a reply callback hiredis itself defers redisAsyncFree().
 *  - mg_redis_free() from inside one of our callbacks: everything is torn down
 *    at once, the struct itself is released when the outermost frame of ours
 *    unwinds (depth).
 */

typedef struct cmd cmd_t;

enum cmd_kind { CMD_USER, CMD_SCRIPT, CMD_HANDSHAKE };

struct cmd {
    cmd_t *prev, *next; /* c->inflight while !done */
    mg_redis_t *c;      /* only dereferenced while !done */
    enum cmd_kind kind;
    mg_redis_cb *cb;
    void *arg;
    struct event *timer; /* user/script commands: deadline, or fail-fast delivery */
    uint64_t gen;        /* connection generation it was sent on */
    mg_redis_err_t fail; /* != OK: deliver this from the timer (fail fast) */
    bool done;           /* answered (or abandoned): hiredis' callback only frees */
    bool in_hiredis;     /* hiredis owes one callback with this privdata */
    /* CMD_SCRIPT: argv[0] and argv[1] are borrowed (verb, sha or source); argv is one
     * allocation that also holds argvlen and copies of the other arguments. */
    const mg_redis_script_t *script;
    bool retried;
    int argc;
    const char **argv;
    size_t *argvlen;
};

struct mg_redis {
    struct event_base *base;
    mg_redis_conf_t conf; /* string members point to the owned copies below */
    char *host, *unix_path, *user, *password;
    char addr[128]; /* for log lines */

    mg_redis_state_t state;
    redisAsyncContext *ac; /* non-NULL while CONNECTING/READY */
    uint64_t gen;          /* bumped for every new or dropped connection */
    unsigned handshake_left;
    struct event *conn_timer; /* connect+handshake deadline, or backoff delay */
    struct event *kill_ev;    /* deferred drop requested from a hiredis callback */
    uint64_t kill_gen;
    unsigned backoff_ms;
    unsigned failures; /* connect failures since the last READY */
    uint64_t rng;

    cmd_t *inflight;
    mg_redis_script_t *scripts;
    mg_redis_stats_t stats;
    int depth;
    bool freeing;
};

static void start_connect(mg_redis_t *c);
static void cmd_timer_cb(evutil_socket_t fd, short what, void *arg);
static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

const char *
mg_redis_strerror(mg_redis_err_t err)
{
    switch (err) {
    case MG_REDIS_OK:
        return "ok";
    case MG_REDIS_E_NOT_READY:
        return "redis not connected";
    case MG_REDIS_E_TIMEOUT:
        return "redis command timed out";
    case MG_REDIS_E_DISCONNECTED:
        return "redis connection lost";
    case MG_REDIS_E_REPLY:
        return "redis error reply";
    case MG_REDIS_E_CLOSED:
        return "redis client closed";
    case MG_REDIS_E_NOMEM:
        return "out of memory";
    }
    return "unknown redis error";
}

const char *
mg_redis_state_name(mg_redis_state_t state)
{
    switch (state) {
    case MG_REDIS_DISCONNECTED:
        return "disconnected";
    case MG_REDIS_CONNECTING:
        return "connecting";
    case MG_REDIS_READY:
        return "ready";
    case MG_REDIS_BACKOFF:
        return "backoff";
    }
    return "unknown";
}

static struct timeval
ms_tv(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};
    return tv;
}

/* xorshift64*: jitter only, no security use. Per client: no shared state. */
static uint64_t
rng_next(mg_redis_t *c)
{
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * UINT64_C(2685821657736338717);
}

static void
enter(mg_redis_t *c)
{
    c->depth++;
}

static void
release(mg_redis_t *c)
{
    mg_redis_script_t *s, *next;

    for (s = c->scripts; s; s = next) {
        next = s->next;
        free(s->source);
        free(s);
    }
    free(c->host);
    free(c->unix_path);
    free(c->user);
    if (c->password) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free(c);
}

/* Leave a frame entered with enter(); c must not be touched afterwards. */
static void
leave(mg_redis_t *c)
{
    if (--c->depth == 0 && c->freeing)
        release(c);
}

/* ---- commands ---- */

static void
cmd_free(cmd_t *cmd)
{
    if (cmd->timer)
        event_free(cmd->timer);
    free(cmd->argv); /* argvlen and the copied arguments live in the same block */
    free(cmd);
}

static cmd_t *
cmd_new(mg_redis_t *c, enum cmd_kind kind, mg_redis_cb *cb, void *arg)
{
    cmd_t *cmd = calloc(1, sizeof(*cmd));

    if (cmd == NULL)
        return NULL;
    cmd->c = c;
    cmd->kind = kind;
    cmd->cb = cb;
    cmd->arg = arg;
    cmd->gen = c->gen;
    if (kind != CMD_HANDSHAKE) {
        cmd->timer = evtimer_new(c->base, cmd_timer_cb, cmd);
        if (cmd->timer == NULL) {
            free(cmd);
            return NULL;
        }
    }
    cmd->next = c->inflight;
    if (c->inflight)
        c->inflight->prev = cmd;
    c->inflight = cmd;
    return cmd;
}

/* Mark answered and unlink; frees it unless hiredis still owes a callback.
 * Returns the user's callback; cmd must not be touched afterwards. */
static mg_redis_cb *
cmd_detach(cmd_t *cmd, void **arg)
{
    mg_redis_t *c = cmd->c;
    mg_redis_cb *cb = cmd->cb;

    *arg = cmd->arg;
    if (cmd->prev)
        cmd->prev->next = cmd->next;
    else
        c->inflight = cmd->next;
    if (cmd->next)
        cmd->next->prev = cmd->prev;
    cmd->prev = cmd->next = NULL;
    cmd->done = true;
    cmd->c = NULL;
    if (cmd->timer) {
        event_free(cmd->timer);
        cmd->timer = NULL;
    }
    if (!cmd->in_hiredis)
        cmd_free(cmd);
    return cb;
}

/* <v> in decimal at <p>; returns the end. */
static char *
put_dec(char *p, size_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* The command as a RESP array of bulk strings, the bytes redisFormatCommandArgv would
 * produce, but written here without its printf-style formatting: a rate-limited request
 * sends one command. */
static int
cmd_send(mg_redis_t *c, cmd_t *cmd, int argc, const char **argv, const size_t *argvlen)
{
    char stack[1024], *buf = stack, *p;
    size_t need = 1 + 20 + 2;
    int rc;

    if (c->ac == NULL || argc < 1)
        return -1;
    for (int i = 0; i < argc; i++)
        need += 1 + 20 + 2 + (argvlen ? argvlen[i] : strlen(argv[i])) + 2;
    if (need > sizeof(stack) && (buf = malloc(need)) == NULL)
        return -1;
    p = buf;
    *p++ = '*';
    p = put_dec(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p = put_dec(p, len);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    rc = redisAsyncFormattedCommand(c->ac, on_reply, cmd, buf, (size_t)(p - buf));
    if (buf != stack)
        free(buf);
    if (rc != REDIS_OK)
        return -1;
    cmd->in_hiredis = true;
    cmd->gen = c->gen;
    return 0;
}

/* ---- connection ---- */

static void
go_backoff(mg_redis_t *c)
{
    unsigned d = c->backoff_ms, delay;
    struct timeval tv;

    c->state = MG_REDIS_BACKOFF;
    /* "Equal jitter": half fixed, half random, so that N workers and N
     * replicas do not reconnect in lock step after a Redis restart. */
    delay = d / 2 + (unsigned)(rng_next(c) % (d / 2 + 1));
    c->backoff_ms = d >= c->conf.backoff_max_ms / 2 ? c->conf.backoff_max_ms : d * 2;
    tv = ms_tv(delay);
    evtimer_add(c->conn_timer, &tv);
}

static void
log_failure(mg_redis_t *c, const char *what, const char *detail)
{
    /* First failure after READY is a warning, the retries are debug noise. */
    if (c->failures++ == 0)
        mg_log_warn("redis %s: %s%s%s; reconnecting with backoff", c->addr, what,
                    detail ? ": " : "", detail ? detail : "");
    else
        mg_log_debug("redis %s: %s%s%s (attempt %u)", c->addr, what, detail ? ": " : "",
                     detail ? detail : "", c->failures);
}

/* Drop the current connection. Never from inside a connect/disconnect
 * callback of that context (use kill_ev). User commands in flight are answered
 * with MG_REDIS_E_DISCONNECTED by hiredis' NULL callbacks. */
static void
kill_conn(mg_redis_t *c)
{
    redisAsyncContext *ac = c->ac;

    c->ac = NULL;
    c->gen++;
    c->state = MG_REDIS_BACKOFF;
    evtimer_del(c->conn_timer);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    if (!c->freeing)
        go_backoff(c);
}

static void
schedule_kill(mg_redis_t *c)
{
    struct timeval zero = {0, 0};

    c->kill_gen = c->gen;
    evtimer_add(c->kill_ev, &zero);
}

static void
kill_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_redis_t *c = arg;

    enter(c);
    if (c->ac && c->kill_gen == c->gen)
        kill_conn(c);
    leave(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_redis_t *c = arg;

    enter(c);
    if (c->state == MG_REDIS_BACKOFF) {
        start_connect(c);
    } else if (c->state == MG_REDIS_CONNECTING) {
        log_failure(c, "connect timed out", NULL);
        kill_conn(c);
    }
    leave(c);
}

static void
become_ready(mg_redis_t *c)
{
    evtimer_del(c->conn_timer);
    c->state = MG_REDIS_READY;
    c->backoff_ms = c->conf.backoff_min_ms;
    c->stats.connects++;
    if (c->failures)
        mg_log_info("redis %s: connected after %u failed attempt(s)", c->addr, c->failures);
    else
        mg_log_debug("redis %s: connected", c->addr);
    c->failures = 0;
}

static void
handshake_reply(mg_redis_t *c, cmd_t *cmd, redisReply *r)
{
    void *unused;
    bool current = cmd->gen == c->gen && c->state == MG_REDIS_CONNECTING;

    cmd_detach(cmd, &unused);
    /* Only the first failure of an attempt counts (AUTH failing makes the
     * pipelined SELECT and SCRIPT LOAD fail too). */
    if (!current || (c->kill_gen == c->gen && evtimer_pending(c->kill_ev, NULL)))
        return;
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        /* Never log the command: it may be AUTH with the password. */
        log_failure(c, "handshake failed", r ? r->str : "connection lost");
        schedule_kill(c);
        return;
    }
    if (--c->handshake_left == 0)
        become_ready(c);
}

static int
send_handshake(mg_redis_t *c, int argc, const char **argv)
{
    cmd_t *cmd = cmd_new(c, CMD_HANDSHAKE, NULL, NULL);
    void *unused;

    if (cmd == NULL)
        return -1;
    if (cmd_send(c, cmd, argc, argv, NULL) != 0) {
        cmd_detach(cmd, &unused);
        return -1;
    }
    c->handshake_left++;
    return 0;
}

static void
on_connect(const redisAsyncContext *cac, int status)
{
    mg_redis_t *c = cac->data;
    char db[16];
    int rc = 0;

    if (c == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context when we return. */
        log_failure(c, "connect failed", cac->errstr);
        c->ac = NULL;
        c->gen++;
        go_backoff(c);
        return;
    }
    /* AUTH and SELECT go first, pipelined: Redis handles a connection's
     * commands in order, and no user command is sent before READY. */
    c->handshake_left = 0;
    if (c->password) {
        const char *av[3] = {"AUTH", c->user ? c->user : c->password, c->password};
        rc |= send_handshake(c, c->user ? 3 : 2, av);
    }
    if (c->conf.database) {
        const char *av[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%u", c->conf.database);
        rc |= send_handshake(c, 2, av);
    }
    for (mg_redis_script_t *s = c->scripts; s; s = s->next) {
        const char *av[3] = {"SCRIPT", "LOAD", s->source};
        rc |= send_handshake(c, 3, av);
    }
    if (rc != 0) {
        log_failure(c, "handshake failed", "cannot queue commands");
        schedule_kill(c);
    } else if (c->handshake_left == 0) {
        become_ready(c);
    }
}

static void
on_disconnect(const redisAsyncContext *cac, int status)
{
    mg_redis_t *c = cac->data;

    if (c == NULL)
        return;
    /* hiredis has answered every pending callback with NULL already and
     * frees the context when we return. */
    c->ac = NULL;
    c->gen++;
    c->stats.disconnects++;
    log_failure(c, "connection lost", cac->errstr[0] ? cac->errstr : NULL);
    go_backoff(c);
}

static void
start_connect(mg_redis_t *c)
{
    redisAsyncContext *ac;
    struct timeval tv;

    c->gen++;
    c->state = MG_REDIS_CONNECTING;
    if (c->unix_path)
        ac = redisAsyncConnectUnix(c->unix_path);
    else
        ac = redisAsyncConnect(c->host, c->conf.port);
    if (ac == NULL) {
        log_failure(c, "connect failed", "out of memory");
        go_backoff(c);
        return;
    }
    if (ac->err) {
        log_failure(c, "connect failed", ac->errstr);
        redisAsyncFree(ac);
        go_backoff(c);
        return;
    }
    if (redisLibeventAttach(ac, c->base) != REDIS_OK) {
        log_failure(c, "connect failed", "cannot attach to the event loop");
        redisAsyncFree(ac);
        go_backoff(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    tv = ms_tv(c->conf.connect_timeout_ms);
    evtimer_add(c->conn_timer, &tv);
}

/* ---- replies and deadlines ---- */

static bool
is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *cmd = privdata;
    redisReply *r = reply;
    mg_redis_t *c;
    mg_redis_err_t err;
    mg_redis_cb *cb;
    void *arg;

    cmd->in_hiredis = false;
    if (cmd->done) {
        cmd_free(cmd); /* late reply after a timeout, or abandoned */
        return;
    }
    c = cmd->c;
    enter(c);
    if (cmd->kind == CMD_HANDSHAKE) {
        handshake_reply(c, cmd, r);
        goto out;
    }
    if (cmd->kind == CMD_SCRIPT && is_noscript(r) && !cmd->retried) {
        /* The server lost its script cache (SCRIPT FLUSH, restart, failover).
         * EVAL runs it and caches it again; still under the same deadline. */
        cmd->retried = true;
        c->stats.noscript++;
        cmd->argv[0] = "EVAL";
        cmd->argv[1] = cmd->script->source;
        cmd->argvlen[1] = strlen(cmd->script->source);
        cmd->argvlen[0] = 4;
        if (c->state == MG_REDIS_READY && cmd->gen == c->gen && c->ac == ac &&
            cmd_send(c, cmd, cmd->argc, cmd->argv, cmd->argvlen) == 0)
            goto out;
        r = NULL;
    }
    err = r == NULL                      ? MG_REDIS_E_DISCONNECTED
          : r->type == REDIS_REPLY_ERROR ? MG_REDIS_E_REPLY
                                         : MG_REDIS_OK;
    cb = cmd_detach(cmd, &arg);
    cb(arg, err, r);
out:
    leave(c);
}

static void
cmd_timer_cb(evutil_socket_t fd, short what, void *p)
{
    cmd_t *cmd = p;
    mg_redis_t *c = cmd->c;
    mg_redis_err_t err = cmd->fail != MG_REDIS_OK ? cmd->fail : MG_REDIS_E_TIMEOUT;
    bool drop = err == MG_REDIS_E_TIMEOUT && cmd->in_hiredis && cmd->gen == c->gen && c->ac;
    mg_redis_cb *cb;
    void *arg;

    enter(c);
    cb = cmd_detach(cmd, &arg);
    if (err == MG_REDIS_E_TIMEOUT) {
        c->stats.timeouts++;
        if (drop) {
            log_failure(c, "command timed out", NULL);
            kill_conn(c);
        }
    }
    cb(arg, err, NULL); /* exactly once, even if mg_redis_free() ran meanwhile */
    leave(c);
}

/* ---- public ---- */

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

mg_redis_t *
mg_redis_new(struct event_base *base, const mg_redis_conf_t *conf)
{
    mg_redis_t *c = NULL;
    struct timespec ts;

    if (base == NULL || conf == NULL)
        goto fail;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->base = base;
    c->conf = *conf;
    if (c->conf.port == 0)
        c->conf.port = 6379;
    if (c->conf.timeout_ms == 0)
        c->conf.timeout_ms = MG_REDIS_DEFAULT_TIMEOUT_MS;
    if (c->conf.connect_timeout_ms == 0)
        c->conf.connect_timeout_ms = MG_REDIS_DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->conf.backoff_min_ms == 0)
        c->conf.backoff_min_ms = MG_REDIS_DEFAULT_BACKOFF_MIN_MS;
    if (c->conf.backoff_max_ms == 0)
        c->conf.backoff_max_ms = MG_REDIS_DEFAULT_BACKOFF_MAX_MS;
    if (c->conf.backoff_max_ms < c->conf.backoff_min_ms)
        c->conf.backoff_max_ms = c->conf.backoff_min_ms;
    c->host = strdup(conf->host ? conf->host : "127.0.0.1");
    c->unix_path = dup_or_null(conf->unix_path);
    c->user = dup_or_null(conf->user);
    c->password = dup_or_null(conf->password);
    if (c->host == NULL || (conf->unix_path && !c->unix_path) || (conf->user && !c->user) ||
        (conf->password && !c->password))
        goto fail;
    c->conf.host = c->host;
    c->conf.unix_path = c->unix_path;
    c->conf.user = c->user;
    c->conf.password = c->password;
    if (c->unix_path)
        snprintf(c->addr, sizeof(c->addr), "unix:%s", c->unix_path);
    else
        snprintf(c->addr, sizeof(c->addr), "%s:%u", c->host, (unsigned)c->conf.port);
    c->backoff_ms = c->conf.backoff_min_ms;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->rng = ((uint64_t)(uintptr_t)c << 17) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
    if (c->rng == 0)
        c->rng = 0x9e3779b97f4a7c15u;
    c->conn_timer = evtimer_new(base, conn_timer_cb, c);
    c->kill_ev = evtimer_new(base, kill_ev_cb, c);
    if (c->conn_timer == NULL || c->kill_ev == NULL)
        goto fail;
    start_connect(c);
    return c;
fail:
    if (c) {
        if (c->conn_timer)
            event_free(c->conn_timer);
        if (c->kill_ev)
            event_free(c->kill_ev);
        release(c);
    }
    return NULL;
}

void
mg_redis_free(mg_redis_t *c)
{
    redisAsyncContext *ac;

    if (c == NULL || c->freeing)
        return;
    c->freeing = true;
    enter(c);
    /* Answer everything first, so no callback of ours runs after we return. */
    while (c->inflight) {
        cmd_t *cmd = c->inflight;
        enum cmd_kind kind = cmd->kind;
        void *arg;
        mg_redis_cb *cb = cmd_detach(cmd, &arg);

        if (kind != CMD_HANDSHAKE)
            cb(arg, MG_REDIS_E_CLOSED, NULL);
    }
    ac = c->ac;
    c->ac = NULL;
    c->state = MG_REDIS_DISCONNECTED;
    if (ac) {
        /* Inside a reply callback of ac, hiredis defers this by itself; its
         * remaining callbacks only see commands that are done. */
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    event_free(c->conn_timer);
    event_free(c->kill_ev);
    c->conn_timer = c->kill_ev = NULL;
    leave(c);
}

mg_redis_state_t
mg_redis_state(const mg_redis_t *c)
{
    return c->state;
}

const mg_redis_conf_t *
mg_redis_conf(const mg_redis_t *c)
{
    return &c->conf;
}

struct event_base *
mg_redis_base(const mg_redis_t *c)
{
    return c->base;
}

void
mg_redis_get_stats(const mg_redis_t *c, mg_redis_stats_t *out)
{
    *out = c->stats;
}

const mg_redis_script_t *
mg_redis_scripts(const mg_redis_t *c)
{
    return c->scripts;
}

void
mg_redis_script_add(mg_redis_t *c, mg_redis_script_t *s)
{
    mg_redis_script_t **tail = &c->scripts;

    while (*tail)
        tail = &(*tail)->next;
    s->next = NULL;
    *tail = s;
}

/* Send or fail fast; the callback is always delivered from the loop. */
static void
cmd_launch(mg_redis_t *c, cmd_t *cmd, int argc, const char **argv, const size_t *argvlen)
{
    struct timeval tv = {0, 0};

    if (c->state != MG_REDIS_READY || cmd_send(c, cmd, argc, argv, argvlen) != 0)
        cmd->fail = MG_REDIS_E_NOT_READY;
    else
        tv = ms_tv(c->conf.timeout_ms);
    evtimer_add(cmd->timer, &tv);
}

int
mg_redis_command_argv(mg_redis_t *c, int argc, const char *const *argv, const size_t *argvlen,
                      mg_redis_cb *cb, void *arg)
{
    cmd_t *cmd;

    if (c->freeing || argc < 1)
        return -1;
    cmd = cmd_new(c, CMD_USER, cb, arg);
    if (cmd == NULL)
        return -1;
    /* hiredis formats (copies) the arguments at once. */
    cmd_launch(c, cmd, argc, (const char **)argv, argvlen);
    return 0;
}

int
mg_redis_evalsha(mg_redis_t *c, const mg_redis_script_t *s, int nkeys, const char *const *keys,
                 int nargs, const char *const *args, mg_redis_cb *cb, void *arg)
{
    cmd_t *cmd = NULL;
    void *unused;
    char nk[16];
    int argc = 3 + nkeys + nargs, i;
    size_t total, len;
    char *p;

    if (c->freeing || s == NULL || nkeys < 0 || nargs < 0)
        return -1;
    cmd = cmd_new(c, CMD_SCRIPT, cb, arg);
    if (cmd == NULL)
        return -1;
    cmd->script = s;
    /* Kept for the NOSCRIPT retry, in one block: the vectors, then the copies of
     * the key count, keys and arguments (one allocation per call, not one per string). */
    len = 0;
    for (int v = nkeys; len == 0 || v > 0; v /= 10)
        nk[len++] = (char)('0' + v % 10);
    for (size_t a = 0, b = len - 1; a < b; a++, b--) {
        char t = nk[a];
        nk[a] = nk[b];
        nk[b] = t;
    }
    nk[len] = '\0';
    total = (size_t)argc * (sizeof(*cmd->argv) + sizeof(*cmd->argvlen)) + len + 1;
    for (i = 0; i < nkeys + nargs; i++)
        total += strlen(i < nkeys ? keys[i] : args[i - nkeys]) + 1;
    if ((cmd->argv = malloc(total)) == NULL)
        goto fail;
    cmd->argvlen = (size_t *)(cmd->argv + argc);
    p = (char *)(cmd->argvlen + argc);
    cmd->argv[0] = "EVALSHA";
    cmd->argvlen[0] = 7;
    cmd->argv[1] = s->sha;
    cmd->argvlen[1] = strlen(s->sha);
    for (i = 2; i < argc; i++) {
        const char *src = i == 2 ? nk : i - 3 < nkeys ? keys[i - 3] : args[i - 3 - nkeys];
        len = strlen(src);
        memcpy(p, src, len + 1);
        cmd->argv[i] = p;
        cmd->argvlen[i] = len;
        p += len + 1;
    }
    cmd->argc = argc;
    cmd_launch(c, cmd, argc, cmd->argv, cmd->argvlen);
    return 0;
fail:
    cmd_detach(cmd, &unused);
    return -1;
}

long long
mg_redis_reply_integer(const struct redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || reply->integer < 0)
        return -1;
    return reply->integer;
}
