/* upstream.c -- per-worker keep-alive pool of upstream connections, keyed by (tls, host, port,
 * ctx). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>

#include "core_int.h"
#include "mcpgate/log.h"

#define MG_UPSTREAM_IDLE_MS 60000
#define MG_UPSTREAM_MAX_IDLE 256 /* per worker; beyond it released connections are closed */

static void
pool_unlink(mg_upconn_t *u)
{
    mg_worker_t *w = u->w;

    if (u->prev)
        u->prev->next = u->next;
    else
        w->idle = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
    w->nidle--;
}

void
mg_upstream_close(mg_upconn_t *u)
{
    if (u == NULL)
        return;
    if (u->idle_ev)
        event_free(u->idle_ev);
    if (u->rd)
        event_free(u->rd); /* before the bufferevent closes the socket it watches */
    if (u->bev) {
        bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
        bufferevent_free(u->bev); /* libevent defers the actual free if it is mid-callback */
    }
    free(u->host);
    free(u);
}

/* An idle pooled connection must not send anything: data, EOF or an error
 * all mean the upstream gave up on it. */
static void
idle_read_cb(struct bufferevent *bev, void *arg)
{
    mg_upconn_t *u = arg;

    mg_log_debug("upstream %s:%u: unexpected data on an idle connection", u->host, u->port);
    pool_unlink(u);
    mg_upstream_close(u);
}

static void
idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    mg_upconn_t *u = arg;

    pool_unlink(u);
    mg_upstream_close(u);
}

static void
idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_upconn_t *u = arg;

    pool_unlink(u);
    mg_upstream_close(u);
}

void
mg_upstream_reading(mg_upconn_t *u, bool on)
{
    mg_sock_reading(u->bev, u->rd, &u->reading, on);
}

/* The socket is readable: one readv() into the bufferevent's input buffer, then
 * whatever callbacks the bufferevent has now (the exchange's, or the pool's).
 * See mg_upstream_own_reads() for why. */
static void
sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_upconn_t *u = arg;
    struct bufferevent *bev = u->bev;
    bufferevent_data_cb readcb = NULL;
    bufferevent_event_cb eventcb = NULL;
    void *cbarg = NULL;
    int err = 0;
    ssize_t n = mg_sock_read(fd, bufferevent_get_input(bev), &err);

    bufferevent_getcb(bev, &readcb, NULL, &eventcb, &cbarg);
    /* The callbacks may close <u>: nothing touches it after them. */
    if (n > 0) {
        if (readcb != NULL)
            readcb(bev, cbarg);
        return;
    }
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
        return;
    mg_upstream_reading(u, false); /* EOF stays readable: stop before it spins */
    errno = err;
    if (eventcb != NULL)
        eventcb(bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), cbarg);
}

void
mg_upstream_own_reads(mg_upconn_t *u)
{
    bool was_reading;

    if (u->tls || u->rd != NULL || bufferevent_getfd(u->bev) < 0)
        return;
    was_reading = (bufferevent_get_enabled(u->bev) & EV_READ) != 0;
    u->rd = event_new(u->w->base, bufferevent_getfd(u->bev), EV_READ | EV_PERSIST, sock_read_cb,
                      u);
    if (u->rd == NULL)
        return; /* the bufferevent goes on reading: slower, not wrong */
    bufferevent_disable(u->bev, EV_READ);
    u->reading = false;
    if (was_reading)
        mg_upstream_reading(u, true);
}

mg_upconn_t *
mg_upstream_get(mg_worker_t *w, const mg_conf_route_t *route, SSL_CTX *ctx, bool fresh)
{
    mg_upconn_t *u = NULL;
    SSL *ssl = NULL;
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

    if (!fresh) {
        for (u = w->idle; u != NULL; u = u->next) {
            if (u->tls == route->upstream_tls && u->port == route->upstream_port && u->ctx == ctx &&
                strcmp(u->host, route->upstream_host) == 0)
                break;
        }
        if (u != NULL) {
            pool_unlink(u);
            event_del(u->idle_ev);
            bufferevent_setcb(u->bev, NULL, NULL, NULL, NULL);
            u->reused = true;
            return u;
        }
    }

    u = calloc(1, sizeof(*u));
    if (u == NULL)
        goto fail;
    u->w = w;
    u->tls = route->upstream_tls;
    u->port = route->upstream_port;
    u->ctx = ctx;
    u->host = strdup(route->upstream_host);
    u->idle_ev = evtimer_new(w->base, idle_timeout_cb, u);
    if (u->host == NULL || u->idle_ev == NULL)
        goto fail;
    if (u->tls) {
        ssl = mg_tls_client_ssl(ctx, u->host);
        if (ssl == NULL)
            goto fail;
        u->bev = bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
        if (u->bev == NULL)
            goto fail;
        ssl = NULL; /* owned by the bufferevent */
        /* Close-delimited bodies end at TCP EOF; many servers skip close_notify. */
        bufferevent_openssl_set_allow_dirty_shutdown(u->bev, 1);
    } else {
        u->bev = bufferevent_socket_new(w->base, -1, opts);
        if (u->bev == NULL)
            goto fail;
    }
    /* Numeric hosts resolve at once without a query; names go through evdns. */
    /* Later failures (refused, DNS, TLS) arrive as deferred BEV_EVENT_ERROR
     * once the caller has set its callbacks; -1 here means it never started. */
    if (bufferevent_socket_connect_hostname(u->bev, w->dns, AF_UNSPEC, u->host, u->port) != 0)
        goto fail;
    return u;
fail:
    mg_log_warn("upstream %s:%u: cannot start a connection", route->upstream_host,
                route->upstream_port);
    SSL_free(ssl);
    mg_upstream_close(u);
    return NULL;
}

void
mg_upstream_release(mg_upconn_t *u)
{
    mg_worker_t *w = u->w;
    struct timeval tv = {MG_UPSTREAM_IDLE_MS / 1000, (MG_UPSTREAM_IDLE_MS % 1000) * 1000};

    /* Unread input, or output not yet written (an upstream that answered before
     * reading the whole request): the connection's byte stream is not at a
     * request boundary, so it cannot carry another request. */
    if (w->draining || w->nidle >= MG_UPSTREAM_MAX_IDLE ||
        evbuffer_get_length(bufferevent_get_input(u->bev)) != 0 ||
        evbuffer_get_length(bufferevent_get_output(u->bev)) != 0) {
        mg_upstream_close(u);
        return;
    }
    bufferevent_setwatermark(u->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    bufferevent_setcb(u->bev, idle_read_cb, NULL, idle_event_cb, u);
    mg_upstream_reading(u, true);
    event_add(u->idle_ev, &tv);
    u->next = w->idle;
    u->prev = NULL;
    if (w->idle)
        w->idle->prev = u;
    w->idle = u;
    w->nidle++;
}

void
mg_upstream_pool_clear(mg_worker_t *w)
{
    while (w->idle != NULL) {
        mg_upconn_t *u = w->idle;
        pool_unlink(u);
        mg_upstream_close(u);
    }
}
