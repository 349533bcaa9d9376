/* worker.c -- one worker thread: its event base, listening sockets, generation pointer, upstream
 * pool and mailbox. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/thread.h>

#include "core_int.h"
#include "introspect.h"
#include "mcpgate/log.h"
#include "mcpgate/ratelimit.h"
#include "mcpgate/redis.h"
#include "mcpgate/session.h"

#define MG_LISTEN_BACKLOG 511

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    mg_listener_t *l = arg;

    mg_conn_accept(l->w, l, fd, sa, salen);
}

static void
accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_listener_t *l = arg;

    if (l->lev != NULL)
        evconnlistener_enable(l->lev);
}

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
    mg_listener_t *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, 100 * 1000};

    /* EMFILE and friends: the pending connection stays in the backlog, so
     * retrying at once would spin. Pause this listener briefly. */
    mg_log_warn("worker %d: accept on %s: %s", l->w->id, l->text,
                evutil_socket_error_to_string(err));
    evconnlistener_disable(lev);
    event_add(l->retry_ev, &tv);
}

static void
listeners_free(mg_worker_t *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].lev)
            evconnlistener_free(w->listeners[i].lev);
        if (w->listeners[i].retry_ev)
            event_free(w->listeners[i].retry_ev);
        SSL_CTX_free(w->listeners[i].own_ctx);
        free(w->listeners[i].text);
    }
    free(w->listeners);
    w->listeners = NULL;
    w->nlisteners = 0;
}

static void
check_done(mg_worker_t *w)
{
    if (w->draining && w->nconns == 0)
        event_base_loopbreak(w->base);
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_worker_t *w = arg;

    if (w->nconns > 0)
        mg_log_warn("worker %d: drain_timeout reached, closing %zu connections", w->id, w->nconns);
    mg_conn_close_all(w);
    check_done(w);
}

static void
start_drain(mg_worker_t *w)
{
    uint32_t ms = w->gen->conf->drain_timeout;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    w->draining = true;
    listeners_free(w); /* stop accepting: the sockets close now */
    mg_upstream_pool_clear(w);
    mg_conn_drain_all(w);
    event_add(w->drain_ev, &tv);
    check_done(w);
}

/*
 * The main thread reaches a worker only through its mailbox: the fields behind
 * mb_lock plus one byte written to a pipe the worker's loop watches. Nothing
 * else ever touches a worker's event base from another thread, so the bases
 * are created without libevent's internal locks (EVENT_BASE_FLAG_NOLOCK): with
 * evthread_use_pthreads() on, every event_add/del and every bufferevent call
 * would otherwise lock and unlock a mutex.
 */
static void
mailbox_wake(mg_worker_t *w)
{
    const char b = 1;

    /* A full pipe means a wake-up is pending already, which is all we need. */
    if (write(w->mb_fd[1], &b, 1) < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        mg_log_warn("worker %d: cannot wake: %s", w->id, strerror(errno));
}

static void
mailbox_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_worker_t *w = arg;
    mg_gen_t *gen;
    bool drain;
    char b[64];

    while (read(fd, b, sizeof(b)) > 0)
        ;
    pthread_mutex_lock(&w->mb_lock);
    gen = w->mb_gen;
    w->mb_gen = NULL;
    drain = w->mb_drain;
    pthread_mutex_unlock(&w->mb_lock);
    if (gen != NULL) {
        /* In-flight requests keep their own reference to the old one. */
        mg_gen_unref(w->gen);
        w->gen = gen;
        mg_log_debug("worker %d: now on configuration generation %lu", w->id, gen->serial);
    }
    if (drain && !w->draining)
        start_drain(w);
}

void
mg_worker_conn_gone(mg_worker_t *w)
{
    check_done(w);
}

mg_worker_t *
mg_worker_new(struct mg_server *srv, int id, mg_gen_t *gen)
{
    mg_worker_t *w = NULL;
    struct event_config *cfg = NULL;
    const mg_conf_t *conf = gen->conf;
    const unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT;

    w = calloc(1, sizeof(*w));
    if (w == NULL)
        goto fail;
    w->id = id;
    w->srv = srv;
    w->gen = mg_gen_ref(gen);
    w->mb_fd[0] = w->mb_fd[1] = -1;
    pthread_mutex_init(&w->mb_lock, NULL);
    if (pipe2(w->mb_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        mg_log_error("worker %d: pipe: %s", id, strerror(errno));
        goto fail;
    }
    cfg = event_config_new();
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK) != 0)
        goto fail;
    w->base = event_base_new_with_config(cfg);
    if (w->base == NULL)
        goto fail;
    /* Inactive lookups must not keep the loop alive; the nameservers come
     * from /etc/resolv.conf, names in /etc/hosts resolve without a query. */
    w->dns = evdns_base_new(w->base,
                            EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (w->dns == NULL) {
        w->dns = evdns_base_new(w->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (w->dns != NULL)
            evdns_base_load_hosts(w->dns, NULL);
    }
    w->mb_ev = event_new(w->base, w->mb_fd[0], EV_READ | EV_PERSIST, mailbox_cb, w);
    w->drain_ev = evtimer_new(w->base, drain_timeout_cb, w);
    w->listeners = calloc(conf->nlistens ? conf->nlistens : 1, sizeof(*w->listeners));
    if (w->dns == NULL || w->mb_ev == NULL || w->drain_ev == NULL || w->listeners == NULL ||
        event_add(w->mb_ev, NULL) != 0)
        goto fail;
    for (size_t i = 0; i < conf->nlistens; i++) {
        const mg_conf_listen_t *cl = &conf->listens[i];
        mg_listener_t *l = &w->listeners[i];
        w->nlisteners++;
        l->w = w;
        l->text = strdup(cl->text);
        l->tls = cl->tls_certificate != NULL;
        if (gen->listen_ctx[i] != NULL) {
            SSL_CTX_up_ref(gen->listen_ctx[i]);
            l->own_ctx = gen->listen_ctx[i];
        }
        l->retry_ev = evtimer_new(w->base, accept_retry_cb, l);
        if (l->text == NULL || l->retry_ev == NULL)
            goto fail;
        /* Every worker binds its own socket (SO_REUSEPORT): the kernel
         * spreads connections, no accept lock is shared. */
        l->lev = evconnlistener_new_bind(w->base, accept_cb, l, flags, MG_LISTEN_BACKLOG,
                                         (const struct sockaddr *)&cl->addr, (int)cl->addrlen);
        if (l->lev == NULL) {
            mg_log_error("%s:%d: listen %s: %s", cl->where.file ? cl->where.file : conf->source,
                         cl->where.line, cl->text, strerror(errno));
            goto fail;
        }
        evconnlistener_set_error_cb(l->lev, accept_error_cb);
    }
    event_config_free(cfg);
    return w;
fail:
    if (cfg != NULL)
        event_config_free(cfg);
    mg_worker_free(w);
    return NULL;
}

int
mg_worker_use_redis(mg_worker_t *w, const struct mg_conf_redis *rc, struct mg_rl_local *local)
{
    /* The client starts connecting now; the worker's loop runs it once started. */
    w->redis = mg_redis_new(w->base, &rc->rc);
    if (w->redis == NULL)
        return -1;
    w->rl = mg_ratelimit_new(w->redis, local);
    w->own_sessions = mg_session_store_redis_new(w->redis);
    if (w->rl == NULL || w->own_sessions == NULL)
        return -1;
    w->sessions = w->own_sessions;
    return 0;
}

static void *
worker_main(void *arg)
{
    mg_worker_t *w = arg;
    mg_gen_t *pending;

    mg_log_debug("worker %d: started", w->id);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);

    pthread_mutex_lock(&w->mb_lock);
    w->mb_closed = true;
    pending = w->mb_gen;
    w->mb_gen = NULL;
    pthread_mutex_unlock(&w->mb_lock);
    mg_gen_unref(pending);
    listeners_free(w);
    mg_upstream_pool_clear(w);
    /* Let closed connections' deferred frees run. */
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    mg_log_debug("worker %d: finished", w->id);
    mg_server_worker_done(w->srv);
    return NULL;
}

int
mg_worker_start(mg_worker_t *w)
{
    int err = pthread_create(&w->thread, NULL, worker_main, w);

    if (err != 0) {
        mg_log_error("cannot start worker thread %d: %s", w->id, strerror(err));
        return -1;
    }
    w->started = true;
    return 0;
}

void
mg_worker_post_gen(mg_worker_t *w, mg_gen_t *gen)
{
    pthread_mutex_lock(&w->mb_lock);
    if (!w->mb_closed) {
        mg_gen_unref(w->mb_gen); /* superseded before the worker picked it up */
        w->mb_gen = mg_gen_ref(gen);
        mailbox_wake(w);
    }
    pthread_mutex_unlock(&w->mb_lock);
}

void
mg_worker_post_drain(mg_worker_t *w)
{
    pthread_mutex_lock(&w->mb_lock);
    if (!w->mb_closed) {
        w->mb_drain = true;
        mailbox_wake(w);
    }
    pthread_mutex_unlock(&w->mb_lock);
}

void
mg_worker_free(mg_worker_t *w)
{
    if (w == NULL)
        return;
    listeners_free(w);
    mg_upstream_pool_clear(w);
    if (w->mb_ev)
        event_free(w->mb_ev);
    if (w->drain_ev)
        event_free(w->drain_ev);
    /* Every connection is gone: the callbacks of checks still in flight find their
     * connection detached. The limiter answers its checks first, then the client
     * answers the session store's commands. */
    mg_ratelimit_free(w->rl);
    mg_redis_free(w->redis);
    mg_session_store_free(w->own_sessions);
    mg_introspect_free(w->introspect); /* its requests use the base and the resolver */
    if (w->dns)
        evdns_base_free(w->dns, 1);
    if (w->base)
        event_base_free(w->base);
    mg_token_cache_free(w->tcache);
    mg_gen_unref(w->mb_gen);
    mg_gen_unref(w->gen);
    if (w->mb_fd[0] >= 0)
        close(w->mb_fd[0]);
    if (w->mb_fd[1] >= 0)
        close(w->mb_fd[1]);
    pthread_mutex_destroy(&w->mb_lock);
    free(w);
}
