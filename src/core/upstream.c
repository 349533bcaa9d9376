/* upstream.c -- per-worker keep-alive pool of upstream connections, keyed by (tls, host, port,
 * ctx). */
#include "config.h"

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

    if (w->draining || w->nidle >= MG_UPSTREAM_MAX_IDLE ||
        evbuffer_get_length(bufferevent_get_input(u->bev)) != 0) {
        mg_upstream_close(u);
        return;
    }
    bufferevent_setwatermark(u->bev, EV_READ, 0, 0);
    bufferevent_setwatermark(u->bev, EV_WRITE, 0, 0);
    bufferevent_setcb(u->bev, idle_read_cb, NULL, idle_event_cb, u);
    bufferevent_enable(u->bev, EV_READ);
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
