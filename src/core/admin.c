/* admin.c -- the admin listener on the main thread: GET /healthz and GET /readyz. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "core_int.h"
#include "mcpgate/http_parse.h"
#include "mcpgate/keys.h"
#include "mcpgate/log.h"
#include "mcpgate/metrics.h"
#include "mcpgate/reply.h"

#define MG_ADMIN_HEAD_MAX 8192
#define MG_ADMIN_TIMEOUT_S 10

typedef struct mg_admin_conn {
    struct mg_admin_conn *prev, *next;
    mg_admin_t *a;
    struct bufferevent *bev;
    bool answered;
} mg_admin_conn_t;

struct mg_admin {
    struct evconnlistener *lev;
    const atomic_bool *draining;
    mg_keys_t *keys; /* NULL-able: readiness also waits for key sets (startup_grace) */
    mg_admin_conn_t *conns;
    mg_metrics_t *metrics; /* borrowed; NULL: no /metrics */
};

void
mg_admin_set_metrics(mg_admin_t *a, struct mg_metrics *m)
{
    a->metrics = m;
}

static void answer_error(mg_admin_conn_t *ac, int status, const char *msg, const char *extra);

/* The Prometheus text exposition, rendered at scrape time. */
static void
answer_metrics(mg_admin_conn_t *ac)
{
    size_t len = 0;
    char *body = mg_metrics_render(ac->a->metrics, &len);

    if (body == NULL) {
        answer_error(ac, 500, "cannot render metrics", NULL);
        return;
    }
    evbuffer_add_printf(bufferevent_get_output(ac->bev),
                        "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                        MG_METRICS_CONTENT_TYPE, len);
    evbuffer_add(bufferevent_get_output(ac->bev), body, len);
    free(body);
}

static void
admin_conn_free(mg_admin_conn_t *ac)
{
    mg_admin_t *a = ac->a;

    if (ac->prev)
        ac->prev->next = ac->next;
    else
        a->conns = ac->next;
    if (ac->next)
        ac->next->prev = ac->prev;
    bufferevent_free(ac->bev); /* safe from its own callback: libevent defers it */
    free(ac);
}

static void
answer_json(mg_admin_conn_t *ac, int status, const char *json)
{
    evbuffer_add_printf(bufferevent_get_output(ac->bev),
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                        "Connection: close\r\n\r\n%s",
                        status, mg_reply_reason(status), strlen(json), json);
}

static void
answer_error(mg_admin_conn_t *ac, int status, const char *msg, const char *extra)
{
    size_t len = 0;
    char *out = mg_reply_error_response(status, msg, NULL, 0, NULL, true, extra, &len);

    if (out != NULL)
        evbuffer_add(bufferevent_get_output(ac->bev), out, len);
    free(out);
}

static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
    mg_admin_conn_t *ac = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    mg_http_request_head_t req;
    const char *why = NULL;
    size_t len = evbuffer_get_length(in);
    size_t n = len < MG_ADMIN_HEAD_MAX ? len : MG_ADMIN_HEAD_MAX;
    char *p;
    int r;

    if (ac->answered) {
        evbuffer_drain(in, len);
        return;
    }
    p = (char *)evbuffer_pullup(in, (ev_ssize_t)n);
    r = mg_http_parse_request_head(p, n, &req, &why);
    if (r == 0 && len < MG_ADMIN_HEAD_MAX)
        return;
    ac->answered = true;
    if (r == 0) {
        answer_error(ac, 431, "request head too large", NULL);
    } else if (r < 0) {
        answer_error(ac, -r, why ? why : "invalid request", NULL);
    } else {
        size_t tl = req.target_len;
        const char *q = memchr(req.target, '?', tl);
        if (q != NULL)
            tl = (size_t)(q - req.target);
        bool healthz = tl == 8 && memcmp(req.target, "/healthz", 8) == 0;
        bool readyz = tl == 7 && memcmp(req.target, "/readyz", 7) == 0;
        bool metrics = tl == 8 && memcmp(req.target, "/metrics", 8) == 0 && ac->a->metrics;
        if (!healthz && !readyz && !metrics)
            answer_error(ac, 404, "no route for this path", NULL);
        else if (req.method != MG_HTTP_GET)
            answer_error(ac, 405, "method not allowed", "Allow: GET\r\n");
        else if (metrics)
            answer_metrics(ac);
        else if (healthz)
            answer_json(ac, 200, "{\"status\":\"ok\"}");
        else if (atomic_load(ac->a->draining))
            answer_json(ac, 503, "{\"status\":\"draining\"}");
        else if (ac->a->keys != NULL && !mg_keys_ready(ac->a->keys, NULL, 0))
            answer_json(ac, 503, "{\"status\":\"starting\",\"reason\":\"waiting for key sets\"}");
        else
            answer_json(ac, 200, "{\"status\":\"ready\"}");
    }
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
    mg_admin_conn_t *ac = arg;

    if (ac->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        admin_conn_free(ac);
}

static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
    admin_conn_free(arg);
}

static void
admin_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                void *arg)
{
    mg_admin_t *a = arg;
    mg_admin_conn_t *ac = calloc(1, sizeof(*ac));
    struct timeval tv = {MG_ADMIN_TIMEOUT_S, 0};

    if (ac == NULL) {
        evutil_closesocket(fd);
        return;
    }
    ac->a = a;
    ac->bev = bufferevent_socket_new(evconnlistener_get_base(lev), fd,
                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (ac->bev == NULL) {
        evutil_closesocket(fd);
        free(ac);
        return;
    }
    ac->next = a->conns;
    if (a->conns)
        a->conns->prev = ac;
    a->conns = ac;
    bufferevent_setcb(ac->bev, admin_read_cb, admin_write_cb, admin_event_cb, ac);
    bufferevent_set_timeouts(ac->bev, &tv, &tv);
    bufferevent_enable(ac->bev, EV_READ | EV_WRITE);
}

mg_admin_t *
mg_admin_new(struct event_base *base, const mg_conf_listen_t *l, const atomic_bool *draining,
             struct mg_keys *keys)
{
    mg_admin_t *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    a->draining = draining;
    a->keys = keys;
    a->lev = evconnlistener_new_bind(
        base, admin_accept_cb, a, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
        64, (const struct sockaddr *)&l->addr, (int)l->addrlen);
    if (a->lev == NULL) {
        mg_log_error("%s:%d: admin_listen %s: %s", l->where.file ? l->where.file : "?",
                     l->where.line, l->text, strerror(errno));
        free(a);
        return NULL;
    }
    return a;
}

void
mg_admin_free(mg_admin_t *a)
{
    if (a == NULL)
        return;
    while (a->conns != NULL)
        admin_conn_free(a->conns);
    evconnlistener_free(a->lev);
    free(a);
}
