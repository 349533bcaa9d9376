/* conn.c -- one client connection: the request/response state machine, forwarding and streaming
 * relay.
 *
 * States and who owns the timeout in each (set_state() is the only place
 * that changes c->state and arms c->tmo):
 *
 *   READ_HEAD         client_timeout (keep-alive idle, then the whole request from its first byte)
 *   READ_BODY         the same deadline, not re-armed
 *   CONNECT_UPSTREAM  upstream_connect_timeout -> 504
 *   SEND_UPSTREAM     upstream_timeout -> 504 (request queued -> response head)
 *   WAIT_RESPONSE     the same deadline, not re-armed
 *   RELAY_BODY        stream_idle_timeout, re-armed on every byte either way
 *   CLOSING           MG_CLOSING_MS: flush our output, half-close, wait for the peer's EOF
 *   DEAD              none: c->reap is active and frees the connection when the loop
 *                     comes back to it, never from inside a callback of c
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/err.h>

#include "core_int.h"
#include "mcpgate/log.h"
#include "mcpgate/reply.h"

#define MG_RELAY_HIGH_WATER (256 * 1024) /* stop reading upstream above this client backlog */
#define MG_RESP_HEAD_MAX (64 * 1024)
#define MG_CLOSING_MS 5000

typedef enum mg_conn_state {
    MG_CONN_READ_HEAD,
    MG_CONN_READ_BODY,
    MG_CONN_CONNECT_UPSTREAM,
    MG_CONN_SEND_UPSTREAM,
    MG_CONN_WAIT_RESPONSE,
    MG_CONN_RELAY_BODY,
    MG_CONN_CLOSING,
    MG_CONN_DEAD,
} mg_conn_state_t;

#ifdef MG_TRACE_STATES
static const char *const state_names[] = {
    "READ_HEAD",     "READ_BODY",  "CONNECT_UPSTREAM", "SEND_UPSTREAM",
    "WAIT_RESPONSE", "RELAY_BODY", "CLOSING",          "DEAD",
};
#endif

typedef enum mg_up_body {
    MG_UP_BODY_NONE,
    MG_UP_BODY_LENGTH,
    MG_UP_BODY_CHUNKED,
    MG_UP_BODY_CLOSE, /* delimited by the upstream closing */
} mg_up_body_t;

struct mg_conn {
    struct mg_conn *prev, *next; /* in w->conns */
    mg_worker_t *w;
    struct bufferevent *bev;
    bool tls;
    char client_ip[INET6_ADDRSTRLEN];
    mg_conn_state_t state;
    struct event *tmo;  /* the state's timeout (see the table above) */
    struct event *ka;   /* SSE keepalive comments */
    struct event *kick; /* process buffered pipelined input from the loop, not recursively */
    struct event *reap; /* deferred free */
    mg_gen_t *gen;      /* the generation the current request started under */
    bool closing_shut;  /* CLOSING: our side has been half-closed */

    /* The request. */
    bool req_started;
    struct timespec t_start;
    char *head; /* copy of the request head; c->req points into it */
    mg_http_request_head_t req;
    char *path; /* normalised */
    size_t path_len;
    const char *query; /* into c->head */
    size_t query_len;
    const mg_conf_route_t *route;
    size_t route_idx;
    mg_jwt_claims_t *claims; /* the caller's verified token on a protected route */
    struct evbuffer *body;
    bool body_chunked;
    bool body_done;
    uint64_t body_left;
    mg_chunked_t req_dec;
    bool keep_alive;

    /* Upstream side. */
    mg_upconn_t *up;
    struct evbuffer *upreq; /* the request as sent, kept for one retry */
    bool retried;
    bool got_resp_byte;

    /* The response. */
    int status;
    char *resp_buf; /* copy of the response head; c->resp points into it */
    mg_http_response_head_t resp;
    mg_up_body_t up_body;
    uint64_t up_left;
    mg_chunked_t up_dec;
    bool up_reusable;
    bool out_chunked; /* we re-encode the body as chunked to the client */
    bool sse;
    bool paused; /* upstream reads stopped for backpressure */
    uint64_t bytes_out;
};

static void conn_mark_dead(mg_conn_t *c);
static void on_client_input(mg_conn_t *c);
static void start_upstream(mg_conn_t *c);
static void send_upstream(mg_conn_t *c);
static void on_resp_head(mg_conn_t *c);
static void relay(mg_conn_t *c);
static void closing_step(mg_conn_t *c);
static void up_read_cb(struct bufferevent *bev, void *arg);
static void up_write_cb(struct bufferevent *bev, void *arg);
static void up_event_cb(struct bufferevent *bev, short what, void *arg);

static const mg_conf_t *
conf_of(mg_conn_t *c)
{
    return c->gen->conf;
}

static void
arm(struct event *ev, uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (ms == 0) {
        event_del(ev);
        return;
    }
    event_add(ev, &tv);
}

/* The only place c->state changes. */
static void
set_state(mg_conn_t *c, mg_conn_state_t s)
{
    const mg_conf_t *conf = conf_of(c);

    if (c->state == MG_CONN_DEAD)
        return;
    mg_conn_state_t old = c->state;
    c->state = s;
#ifdef MG_TRACE_STATES
    mg_log_debug("%s: %s -> %s", c->client_ip, state_names[old], state_names[s]);
#endif
    switch (s) {
    case MG_CONN_READ_HEAD:
        arm(c->tmo, conf->client_timeout);
        break;
    case MG_CONN_READ_BODY:
        break; /* the request deadline continues */
    case MG_CONN_CONNECT_UPSTREAM:
        arm(c->tmo, conf->upstream_connect_timeout);
        break;
    case MG_CONN_SEND_UPSTREAM:
        arm(c->tmo, conf->upstream_timeout);
        break;
    case MG_CONN_WAIT_RESPONSE:
        if (old != MG_CONN_SEND_UPSTREAM)
            arm(c->tmo, conf->upstream_timeout);
        break;
    case MG_CONN_RELAY_BODY:
        arm(c->tmo, conf->stream_idle_timeout);
        if (c->sse && c->out_chunked && conf->sse_keepalive > 0)
            arm(c->ka, conf->sse_keepalive);
        break;
    case MG_CONN_CLOSING:
        arm(c->tmo, MG_CLOSING_MS);
        event_del(c->ka);
        break;
    case MG_CONN_DEAD:
        event_del(c->tmo);
        event_del(c->ka);
        break;
    }
}

static double
elapsed_ms(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
log_request(mg_conn_t *c)
{
    if (c->head == NULL)
        return;
    mg_log_debug("%s %.*s %s -> %d, %llu bytes, %.1f ms", c->client_ip, (int)c->req.method_len,
                 c->req.method_str, c->path ? c->path : "-", c->status,
                 (unsigned long long)c->bytes_out, elapsed_ms(&c->t_start));
}

/* Forget the finished request, keep the connection. */
static void
reset_request(mg_conn_t *c)
{
    free(c->head);
    c->head = NULL;
    free(c->path);
    c->path = NULL;
    free(c->resp_buf);
    c->resp_buf = NULL;
    evbuffer_drain(c->body, evbuffer_get_length(c->body));
    evbuffer_drain(c->upreq, evbuffer_get_length(c->upreq));
    c->req_started = false;
    c->query = NULL;
    c->route = NULL;
    mg_jwt_claims_free(c->claims);
    c->claims = NULL;
    c->body_chunked = c->body_done = false;
    c->body_left = 0;
    c->retried = c->got_resp_byte = false;
    c->status = 0;
    c->up_body = MG_UP_BODY_NONE;
    c->up_reusable = c->out_chunked = c->sse = c->paused = false;
    c->bytes_out = 0;
}

static void
up_detach(mg_conn_t *c, bool reuse)
{
    if (c->up == NULL)
        return;
    if (reuse) {
        bufferevent_setcb(c->up->bev, NULL, NULL, NULL, NULL);
        mg_upstream_release(c->up);
    } else {
        mg_upstream_close(c->up);
    }
    c->up = NULL;
}

/* The response (ours or relayed) is complete: next request or close. */
static void
request_done(mg_conn_t *c)
{
    log_request(c);
    event_del(c->ka);
    if (c->paused) {
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        c->paused = false;
    }
    if (!c->keep_alive || c->w->draining) {
        set_state(c, MG_CONN_CLOSING);
        closing_step(c);
        return;
    }
    reset_request(c);
    set_state(c, MG_CONN_READ_HEAD);
    bufferevent_enable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        event_active(c->kick, EV_READ, 0); /* pipelined: from the loop, not recursively */
}

/* A reply the gateway writes itself (see reply.c for the body). */
static void
send_error(mg_conn_t *c, int status, const char *msg, const char *extra)
{
    bool close;
    char *out;
    size_t len = 0;
    const char *b = NULL;
    size_t blen = 0;

    if (c->state == MG_CONN_RELAY_BODY || c->state >= MG_CONN_CLOSING) {
        /* Headers already went out: all we can do is cut the connection. */
        up_detach(c, false);
        c->keep_alive = false;
        set_state(c, MG_CONN_CLOSING);
        closing_step(c);
        return;
    }
    up_detach(c, false);
    c->status = status;
    /* After these the stream position is unknown or the client misbehaves;
     * also close when a request body was not read, or it would be taken
     * for the next request. */
    close = status == 400 || status == 408 || status == 413 || status == 431 || status == 505 ||
            !c->keep_alive || c->w->draining ||
            (c->head && !c->body_done && (c->req.chunked || c->req.content_length > 0));
    if (close)
        c->keep_alive = false;
    if (c->body_done && evbuffer_get_length(c->body) > 0) {
        blen = evbuffer_get_length(c->body);
        b = (const char *)evbuffer_pullup(c->body, -1);
    }
    mg_log_debug("%s: %d %s", c->client_ip, status, msg);
    out = mg_reply_error_response(status, msg, b, blen, close, extra, &len);
    if (out != NULL) {
        evbuffer_add(bufferevent_get_output(c->bev), out, len);
        c->bytes_out += len;
        free(out);
    } else {
        c->keep_alive = false;
    }
    request_done(c);
}

/* ---- client side ---- */

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
    mg_conn_t *c = arg;

    on_client_input(c);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;

    on_client_input(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
    mg_conn_t *c = arg;

    if (c->state == MG_CONN_CLOSING) {
        closing_step(c);
    } else if (c->paused && c->up != NULL) {
        /* Drained below the low watermark: the le-proxy resume. */
        c->paused = false;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->up->bev, EV_READ);
        if (c->state == MG_CONN_RELAY_BODY &&
            evbuffer_get_length(bufferevent_get_input(c->up->bev)) > 0)
            relay(c);
    }
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    mg_conn_t *c = arg;

    if (c->state == MG_CONN_DEAD || (what & BEV_EVENT_CONNECTED))
        return; /* CONNECTED: the TLS handshake is done */
    if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e != 0) {
            char buf[160];
            ERR_error_string_n(e, buf, sizeof(buf));
            mg_log_debug("%s: TLS error: %s", c->client_ip, buf);
        }
    }
    /* EOF or error: the client is gone. A pending upstream exchange is
     * cancelled by closing its connection (never pooled: its state is unknown). */
    if (c->state != MG_CONN_CLOSING && c->state != MG_CONN_READ_HEAD && c->head != NULL) {
        if (c->status == 0)
            c->status = 499;
        log_request(c);
    }
    up_detach(c, false);
    conn_mark_dead(c);
}

/* True when the query string carries a parameter named <name>. */
static bool
query_has(const char *q, size_t len, const char *name)
{
    size_t n = strlen(name);
    const char *end = q + len;

    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) >= n && memcmp(q, name, n) == 0 &&
            (q + n == stop || q[n] == '='))
            return true;
        q = amp ? amp + 1 : end;
    }
    return false;
}

/* A protected route: every request (POST, GET and DELETE alike) carries a
 * valid access token, checked before the body is read or anything is sent
 * upstream (SPEC T-02, T-03). False when a refusal was sent. */
static bool
authenticate(mg_conn_t *c)
{
    mg_auth_result_t r;
    const char *challenge;
    char *to_free = NULL;
    int status;

    /* RFC 6750 section 2.3 is not supported on purpose: a token in the URL
     * ends up in logs and Referer headers (SPEC T-01). */
    if (c->query != NULL && query_has(c->query, c->query_len, "access_token")) {
        send_error(c, 400, "access tokens are not accepted in the query string",
                   "WWW-Authenticate: Bearer error=\"invalid_request\"\r\n");
        return false;
    }
    mg_auth_check(c->w, c->gen, c->route_idx, &c->req, (int64_t)time(NULL), &r);
    if (r.outcome == MG_AUTH_OK) {
        c->claims = r.claims;
        return true;
    }
    switch (r.outcome) {
    case MG_AUTH_BAD_REQUEST:
        status = 400;
        break;
    case MG_AUTH_UNAVAILABLE:
        status = 503;
        break;
    default:
        status = 401;
        break;
    }
    if (r.outcome == MG_AUTH_INVALID)
        mg_log_info("%s: access token refused on %s: %s", c->client_ip, c->route->path,
                    mg_jwt_reason_code(r.reason));
    challenge = mg_auth_challenge(&r, &to_free);
    send_error(c, status, r.description, challenge);
    free(to_free);
    return false;
}

static void
on_head(mg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const mg_conf_t *conf;
    size_t len = evbuffer_get_length(in);
    size_t cap, n;
    const char *why = "invalid request";
    char *p;
    int r;

    if (len == 0)
        return;
    if (!c->req_started) {
        /* The whole request must arrive within client_timeout of its first byte;
         * it runs under the generation that is current now. */
        c->req_started = true;
        clock_gettime(CLOCK_MONOTONIC, &c->t_start);
        if (c->gen != c->w->gen) {
            mg_gen_unref(c->gen);
            c->gen = mg_gen_ref(c->w->gen);
        }
        arm(c->tmo, conf_of(c)->client_timeout);
    }
    conf = conf_of(c);
    cap = conf->max_header_size;
    n = len < cap ? len : cap;
    p = (char *)evbuffer_pullup(in, (ev_ssize_t)n);
    r = mg_http_parse_request_head(p, n, &c->req, &why);
    if (r == 0) {
        if (len >= cap)
            send_error(c, 431, "request head exceeds max_header_size", NULL);
        return;
    }
    if (r < 0) {
        send_error(c, -r, why ? why : "invalid request", NULL);
        return;
    }
    /* Keep a private copy so the parsed pointers survive draining the input. */
    c->head = malloc((size_t)r);
    if (c->head == NULL) {
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    memcpy(c->head, p, (size_t)r);
    evbuffer_drain(in, (size_t)r);
    r = mg_http_parse_request_head(c->head, (size_t)r, &c->req, &why);
    if (r <= 0) { /* cannot happen: the same bytes parsed a moment ago */
        send_error(c, 500, "internal error", NULL);
        return;
    }
    c->keep_alive = c->req.keep_alive && !c->w->draining;

    c->path = malloc(c->req.target_len + 1);
    if (c->path == NULL) {
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    r = mg_http_normalize_path(c->req.target, c->req.target_len, c->path, c->req.target_len + 1,
                               &c->path_len, &c->query, &c->query_len, &why);
    if (r != 0) {
        free(c->path);
        c->path = NULL;
        send_error(c, 400, why ? why : "invalid request target", NULL);
        return;
    }
    c->route = mg_conf_route_match(conf, c->path, c->path_len);
    if (c->route == NULL) {
        send_error(c, 404, "no route for this path", NULL);
        return;
    }
    c->route_idx = (size_t)(c->route - conf->routes);
    if (c->req.method != MG_HTTP_POST && c->req.method != MG_HTTP_GET &&
        c->req.method != MG_HTTP_DELETE) {
        send_error(c, 405, "method not allowed", "Allow: GET, POST, DELETE\r\n");
        return;
    }
    if (c->route->nissuers > 0 && !authenticate(c))
        return;
    if (c->req.chunked) {
        c->body_chunked = true;
        mg_chunked_init(&c->req_dec, conf->max_body_size);
    } else if (c->req.content_length > 0) {
        if ((uint64_t)c->req.content_length > conf->max_body_size) {
            send_error(c, 413, "request body exceeds max_body_size", NULL);
            return;
        }
        c->body_left = (uint64_t)c->req.content_length;
    } else {
        c->body_done = true;
        start_upstream(c);
        return;
    }
    /* RFC 9110 10.1.1: the checks passed, ask for the body. */
    if (c->req.expect_continue && c->req.version_minor == 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        evbuffer_add(bufferevent_get_output(c->bev), cont, sizeof(cont) - 1);
    }
    set_state(c, MG_CONN_READ_BODY);
    on_client_input(c);
}

static void
on_body(mg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (!c->body_chunked) {
        size_t len = evbuffer_get_length(in);
        size_t n = len < c->body_left ? len : (size_t)c->body_left;
        evbuffer_remove_buffer(in, c->body, n);
        c->body_left -= n;
        if (c->body_left == 0) {
            c->body_done = true;
            start_upstream(c);
        }
        return;
    }
    /* Chunked: decode segment by segment, never pulling the whole input up. */
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        size_t consumed = 0, dlen = 0;
        const char *data = NULL, *why = NULL;
        mg_chunked_result_t r;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        r = mg_chunked_feed(&c->req_dec, v.iov_base, v.iov_len, &consumed, &data, &dlen, &why);
        if (r == MG_CHUNKED_DATA && dlen > 0)
            evbuffer_add(c->body, data, dlen);
        evbuffer_drain(in, consumed);
        if (r == MG_CHUNKED_DONE) {
            c->body_done = true;
            start_upstream(c);
            return;
        }
        if (r == MG_CHUNKED_TOO_LARGE) {
            send_error(c, 413, "request body exceeds max_body_size", NULL);
            return;
        }
        if (r == MG_CHUNKED_ERROR) {
            send_error(c, 400, why ? why : "invalid chunked encoding", NULL);
            return;
        }
        if (r == MG_CHUNKED_NEED_MORE && consumed == 0)
            break; /* defensive: no progress */
    }
}

static void
on_client_input(mg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    switch (c->state) {
    case MG_CONN_READ_HEAD:
        on_head(c);
        break;
    case MG_CONN_READ_BODY:
        on_body(c);
        break;
    case MG_CONN_CLOSING:
        evbuffer_drain(in, evbuffer_get_length(in)); /* lingering close: discard */
        break;
    case MG_CONN_DEAD:
        break;
    default:
        /* Busy with the upstream: keep pipelined bytes for later, bounded. We
         * keep reading otherwise, so that a client disconnect is seen at once. */
        if (c->state == MG_CONN_RELAY_BODY)
            arm(c->tmo, conf_of(c)->stream_idle_timeout);
        if (evbuffer_get_length(in) > conf_of(c)->max_header_size + conf_of(c)->max_body_size)
            bufferevent_disable(c->bev, EV_READ);
        break;
    }
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;

    switch (c->state) {
    case MG_CONN_READ_HEAD:
        if (!c->req_started && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            conn_mark_dead(c); /* idle keep-alive connection */
            break;
        }
        /* fall through */
    case MG_CONN_READ_BODY:
        send_error(c, 408, "request not received within client_timeout", NULL);
        break;
    case MG_CONN_CONNECT_UPSTREAM:
        mg_log_warn("upstream %s: connect timed out", c->route->upstream_hostport);
        send_error(c, 504, "upstream connect timed out", NULL);
        break;
    case MG_CONN_SEND_UPSTREAM:
    case MG_CONN_WAIT_RESPONSE:
        mg_log_warn("upstream %s: no response within upstream_timeout",
                    c->route->upstream_hostport);
        send_error(c, 504, "upstream timed out", NULL);
        break;
    case MG_CONN_RELAY_BODY:
        mg_log_debug("%s: stream idle for stream_idle_timeout, closing", c->client_ip);
        c->status = c->status ? c->status : 504;
        log_request(c);
        up_detach(c, false);
        c->keep_alive = false;
        set_state(c, MG_CONN_CLOSING);
        closing_step(c);
        break;
    case MG_CONN_CLOSING:
    case MG_CONN_DEAD:
        conn_mark_dead(c);
        break;
    }
}

static void
keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;
    static const char ka[] = "d\r\n: keepalive\n\n\r\n"; /* one 13-byte chunk */

    if (c->state != MG_CONN_RELAY_BODY || !c->sse || !c->out_chunked)
        return;
    evbuffer_add(bufferevent_get_output(c->bev), ka, sizeof(ka) - 1);
    arm(c->ka, conf_of(c)->sse_keepalive);
}

/* CLOSING: flush, half-close, then wait (bounded) for the client's EOF so
 * that unread request bytes do not turn our last reply into a reset. */
static void
closing_step(mg_conn_t *c)
{
    if (c->state != MG_CONN_CLOSING)
        return;
    up_detach(c, false);
    bufferevent_enable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return; /* client_write_cb comes back here */
    if (!c->closing_shut) {
        c->closing_shut = true;
        if (c->tls) {
            conn_mark_dead(c);
            return;
        }
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        arm(c->tmo, 2000);
    }
}

/* ---- forwarding ---- */

static bool
header_is(const mg_http_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* True when any Connection header of <hs> lists <h>'s name (RFC 9110 7.6.1). */
static bool
connection_lists(const mg_http_header_t *hs, size_t n, const mg_http_header_t *h)
{
    for (size_t i = 0; i < n; i++)
        if (header_is(&hs[i], "Connection") &&
            mg_http_connection_lists(hs[i].value, hs[i].value_len, h->name, h->name_len))
            return true;
    return false;
}

static bool
strip_request_header(const mg_conn_t *c, const mg_http_header_t *h)
{
    /* Authorization is never passed on: the spec forbids token passthrough
     * (MCP authorization, Access Token Privilege Restriction); DPoP proofs
     * are bound to the same token. X-Forwarded-* and Forwarded are replaced. */
    static const char *const strip[] = {
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Expect",
        "Authorization",
        "Proxy-Authorization",
        "DPoP",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "Forwarded",
    };

    if (mg_http_is_hop_by_hop(h->name, h->name_len))
        return true;
    for (size_t i = 0; i < sizeof(strip) / sizeof(strip[0]); i++)
        if (header_is(h, strip[i]))
            return true;
    return connection_lists(c->req.headers, c->req.nheaders, h);
}

static int
build_upstream_request(mg_conn_t *c)
{
    struct evbuffer *o = c->upreq;
    const mg_conf_route_t *r = c->route;
    const char *rest;
    size_t rest_len;
    size_t blen = evbuffer_get_length(c->body);

    /* Route "/x" maps "/x/y" to "<upstream_path>/y"; route "/" keeps the whole path. */
    if (r->path_len == 1) {
        rest = c->path;
        rest_len = c->path_len;
    } else {
        rest = c->path + r->path_len;
        rest_len = c->path_len - r->path_len;
    }
    evbuffer_add_printf(o, "%.*s ", (int)c->req.method_len, c->req.method_str);
    if (r->upstream_path[0] == '\0' && rest_len == 0)
        evbuffer_add(o, "/", 1);
    evbuffer_add(o, r->upstream_path, strlen(r->upstream_path));
    evbuffer_add(o, rest, rest_len);
    if (c->query != NULL) {
        evbuffer_add(o, "?", 1);
        evbuffer_add(o, c->query, c->query_len);
    }
    evbuffer_add_printf(o, " HTTP/1.1\r\nHost: %s\r\n", r->upstream_hostport);
    for (size_t i = 0; i < c->req.nheaders; i++) {
        const mg_http_header_t *h = &c->req.headers[i];
        if (strip_request_header(c, h))
            continue;
        evbuffer_add(o, h->name, h->name_len);
        evbuffer_add(o, ": ", 2);
        evbuffer_add(o, h->value, h->value_len);
        evbuffer_add(o, "\r\n", 2);
    }
    evbuffer_add_printf(o, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n", c->client_ip,
                        c->tls ? "https" : "http");
    if (c->req.host != NULL)
        evbuffer_add_printf(o, "X-Forwarded-Host: %.*s\r\n", (int)c->req.host_len, c->req.host);
    if (blen > 0 || c->req.method == MG_HTTP_POST || c->body_chunked || c->req.content_length >= 0)
        evbuffer_add_printf(o, "Content-Length: %zu\r\n", blen);
    evbuffer_add(o, "Connection: keep-alive\r\n\r\n", 26);
    /* A copy: the body stays in c->body for the JSON-RPC id of an error
     * reply, and c->upreq is sent again on a retry. */
    if (blen > 0)
        evbuffer_add(o, evbuffer_pullup(c->body, -1), blen);
    return 0;
}

static bool
attach_upstream(mg_conn_t *c, bool fresh)
{
    SSL_CTX *ctx = c->gen->route_ctx[c->route_idx];

    c->up = mg_upstream_get(c->w, c->route, ctx, fresh);
    if (c->up == NULL)
        return false;
    bufferevent_setcb(c->up->bev, up_read_cb, up_write_cb, up_event_cb, c);
    bufferevent_setwatermark(c->up->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->up->bev, EV_READ | EV_WRITE);
    return true;
}

static void
start_upstream(mg_conn_t *c)
{
    if (build_upstream_request(c) != 0 || !attach_upstream(c, false)) {
        send_error(c, 502, "upstream connection failed", NULL);
        return;
    }
    if (c->up->reused) {
        send_upstream(c);
    } else {
        set_state(c, MG_CONN_CONNECT_UPSTREAM);
    }
}

static void
send_upstream(mg_conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->up->bev);
    size_t len = evbuffer_get_length(c->upreq);

    c->up->connected = true;
    if (!c->up->tls) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->up->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    evbuffer_add(out, evbuffer_pullup(c->upreq, -1), len);
    set_state(c, MG_CONN_SEND_UPSTREAM);
}

/* A pooled connection that died before answering is retried once on a
 * fresh one: the upstream may have closed it just as we reused it. */
static bool
retry_upstream(mg_conn_t *c)
{
    if (c->up == NULL || !c->up->reused || c->retried || c->got_resp_byte)
        return false;
    c->retried = true;
    up_detach(c, false);
    mg_log_debug("upstream %s: pooled connection closed, retrying on a new one",
                 c->route->upstream_hostport);
    if (!attach_upstream(c, true))
        return false;
    set_state(c, MG_CONN_CONNECT_UPSTREAM);
    return true;
}

static void
up_read_cb(struct bufferevent *bev, void *arg)
{
    mg_conn_t *c = arg;

    switch (c->state) {
    case MG_CONN_SEND_UPSTREAM:
        set_state(c, MG_CONN_WAIT_RESPONSE); /* it answered before reading all of it */
        /* fall through */
    case MG_CONN_WAIT_RESPONSE:
        on_resp_head(c);
        break;
    case MG_CONN_RELAY_BODY:
        relay(c);
        break;
    default:
        break;
    }
}

static void
up_write_cb(struct bufferevent *bev, void *arg)
{
    mg_conn_t *c = arg;

    if (c->state == MG_CONN_SEND_UPSTREAM)
        set_state(c, MG_CONN_WAIT_RESPONSE);
}

static void
up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    mg_conn_t *c = arg;
    const char *host = c->route ? c->route->upstream_hostport : "?";

    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == MG_CONN_CONNECT_UPSTREAM)
            send_upstream(c);
        return;
    }
    switch (c->state) {
    case MG_CONN_CONNECT_UPSTREAM: {
        int dns = bufferevent_socket_get_dns_error(bev);
        unsigned long ssl = bufferevent_get_openssl_error(bev);
        if (dns != 0) {
            mg_log_warn("upstream %s: cannot resolve: %s", host, evutil_gai_strerror(dns));
            send_error(c, 502, "upstream host not found", NULL);
        } else if (ssl != 0) {
            char buf[200];
            ERR_error_string_n(ssl, buf, sizeof(buf));
            mg_log_warn("upstream %s: TLS handshake failed: %s", host, buf);
            send_error(c, 502, "upstream TLS handshake failed", NULL);
        } else if ((what & BEV_EVENT_EOF) && c->up && c->up->tls) {
            mg_log_warn("upstream %s: closed during the TLS handshake", host);
            send_error(c, 502, "upstream TLS handshake failed", NULL);
        } else {
            mg_log_warn("upstream %s: connection refused or failed", host);
            send_error(c, 502, "upstream connection refused", NULL);
        }
        break;
    }
    case MG_CONN_SEND_UPSTREAM:
    case MG_CONN_WAIT_RESPONSE:
        if (retry_upstream(c))
            break;
        if (c->got_resp_byte) {
            send_error(c, 502, "upstream sent an incomplete response head", NULL);
        } else if (what & BEV_EVENT_EOF) {
            send_error(c, 502, "upstream closed the connection before responding", NULL);
        } else {
            send_error(c, 502, "upstream connection reset", NULL);
        }
        break;
    case MG_CONN_RELAY_BODY:
        if ((what & BEV_EVENT_EOF) && c->up_body == MG_UP_BODY_CLOSE) {
            relay(c); /* anything still buffered, then the end */
            if (c->state != MG_CONN_RELAY_BODY)
                break;
            c->up_reusable = false;
            if (c->out_chunked)
                evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
            else
                c->keep_alive = false;
            up_detach(c, false);
            request_done(c);
            break;
        }
        /* Truncated: close without the terminating chunk (or short of the
         * Content-Length) so the client sees that the body is incomplete. */
        mg_log_warn("upstream %s: connection lost in the middle of a response body", host);
        log_request(c);
        send_error(c, 502, "upstream connection lost", NULL);
        break;
    default:
        up_detach(c, false);
        break;
    }
}

/* ---- response ---- */

static bool
strip_response_header(const mg_conn_t *c, const mg_http_header_t *h)
{
    if (mg_http_is_hop_by_hop(h->name, h->name_len) || header_is(h, "Content-Length") ||
        header_is(h, "Transfer-Encoding"))
        return true;
    return connection_lists(c->resp.headers, c->resp.nheaders, h);
}

static void
on_resp_head(mg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->up->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *why = NULL;
    const mg_http_header_t *ct;
    size_t len, n;
    char *p;
    int r;

    for (;;) {
        len = evbuffer_get_length(in);
        if (len == 0)
            return;
        c->got_resp_byte = true;
        n = len < MG_RESP_HEAD_MAX ? len : MG_RESP_HEAD_MAX;
        p = (char *)evbuffer_pullup(in, (ev_ssize_t)n);
        r = mg_http_parse_response_head(p, n, &c->resp, &why);
        if (r == 0) {
            if (len >= MG_RESP_HEAD_MAX)
                send_error(c, 502, "upstream response head too large", NULL);
            return;
        }
        if (r < 0) {
            mg_log_warn("upstream %s: invalid response head: %s", c->route->upstream_hostport,
                        why ? why : "?");
            send_error(c, 502, "upstream sent an invalid response", NULL);
            return;
        }
        if (c->resp.status >= 200)
            break;
        if (c->resp.status == 101) {
            send_error(c, 502, "upstream switched protocols", NULL);
            return;
        }
        evbuffer_drain(in, (size_t)r); /* 1xx: interim, not forwarded */
    }
    free(c->resp_buf);
    c->resp_buf = malloc((size_t)r);
    if (c->resp_buf == NULL) {
        send_error(c, 502, "out of memory", NULL);
        return;
    }
    memcpy(c->resp_buf, p, (size_t)r);
    evbuffer_drain(in, (size_t)r);
    mg_http_parse_response_head(c->resp_buf, (size_t)r, &c->resp, &why);
    c->status = c->resp.status;

    /* Upstream framing (RFC 9112 6.3). */
    if (c->resp.status == 204 || c->resp.status == 304) {
        c->up_body = MG_UP_BODY_NONE;
    } else if (c->resp.chunked) {
        c->up_body = MG_UP_BODY_CHUNKED;
        mg_chunked_init(&c->up_dec, 0);
    } else if (c->resp.content_length >= 0) {
        c->up_body = c->resp.content_length > 0 ? MG_UP_BODY_LENGTH : MG_UP_BODY_NONE;
        c->up_left = (uint64_t)c->resp.content_length;
    } else {
        c->up_body = MG_UP_BODY_CLOSE;
    }
    c->up_reusable = c->resp.keep_alive && c->up_body != MG_UP_BODY_CLOSE;
    ct = mg_http_find_header(c->resp.headers, c->resp.nheaders, "Content-Type");
    c->sse =
        ct != NULL && ct->value_len >= 17 && strncasecmp(ct->value, "text/event-stream", 17) == 0;
    if (c->w->draining)
        c->keep_alive = false;

    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", c->resp.status, mg_reply_reason(c->resp.status));
    for (size_t i = 0; i < c->resp.nheaders; i++) {
        const mg_http_header_t *h = &c->resp.headers[i];
        if (strip_response_header(c, h))
            continue;
        evbuffer_add(out, h->name, h->name_len);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, h->value, h->value_len);
        evbuffer_add(out, "\r\n", 2);
    }
    if (c->sse) {
        if (!mg_http_find_header(c->resp.headers, c->resp.nheaders, "X-Accel-Buffering"))
            evbuffer_add_printf(out, "X-Accel-Buffering: no\r\n");
        if (!mg_http_find_header(c->resp.headers, c->resp.nheaders, "Cache-Control"))
            evbuffer_add_printf(out, "Cache-Control: no-cache\r\n");
    }
    if (c->resp.status == 204) {
        /* no framing header at all */
    } else if (c->resp.status == 304) {
        if (c->resp.content_length >= 0)
            evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)c->resp.content_length);
    } else if (c->up_body == MG_UP_BODY_LENGTH || c->up_body == MG_UP_BODY_NONE) {
        evbuffer_add_printf(out, "Content-Length: %llu\r\n", (unsigned long long)c->up_left);
    } else if (c->req.version_minor >= 1) {
        c->out_chunked = true;
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
    } else {
        c->keep_alive = false; /* HTTP/1.0: the body ends when we close */
    }
    evbuffer_add_printf(out, "Connection: %s\r\n\r\n", c->keep_alive ? "keep-alive" : "close");
    set_state(c, MG_CONN_RELAY_BODY);
    relay(c);
}

static void
write_chunk_header(struct evbuffer *out, size_t n)
{
    evbuffer_add_printf(out, "%zx\r\n", n);
}

static void
relay_done(mg_conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool reuse = c->up_reusable && c->up != NULL &&
                 evbuffer_get_length(bufferevent_get_input(c->up->bev)) == 0;

    if (c->out_chunked)
        evbuffer_add(out, "0\r\n\r\n", 5);
    up_detach(c, reuse);
    request_done(c);
}

static void
relay(mg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->up->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t before = evbuffer_get_length(out);
    size_t len;

    switch (c->up_body) {
    case MG_UP_BODY_NONE:
        relay_done(c);
        return;
    case MG_UP_BODY_LENGTH:
        len = evbuffer_get_length(in);
        if (len > c->up_left)
            len = (size_t)c->up_left;
        evbuffer_remove_buffer(in, out, len);
        c->up_left -= len;
        c->bytes_out += len;
        if (c->up_left == 0) {
            relay_done(c);
            return;
        }
        break;
    case MG_UP_BODY_CHUNKED:
        while (evbuffer_get_length(in) > 0) {
            struct evbuffer_iovec v;
            size_t consumed = 0, dlen = 0;
            const char *data = NULL, *why = NULL;
            mg_chunked_result_t r;

            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            r = mg_chunked_feed(&c->up_dec, v.iov_base, v.iov_len, &consumed, &data, &dlen, &why);
            if (r == MG_CHUNKED_DATA && dlen > 0) {
                if (c->out_chunked)
                    write_chunk_header(out, dlen);
                evbuffer_add(out, data, dlen);
                if (c->out_chunked)
                    evbuffer_add(out, "\r\n", 2);
                c->bytes_out += dlen;
            }
            evbuffer_drain(in, consumed);
            if (r == MG_CHUNKED_DONE) {
                relay_done(c);
                return;
            }
            if (r == MG_CHUNKED_ERROR || r == MG_CHUNKED_TOO_LARGE) {
                mg_log_warn("upstream %s: invalid chunked body: %s", c->route->upstream_hostport,
                            why ? why : "?");
                send_error(c, 502, "upstream sent an invalid body", NULL);
                return;
            }
            if (r == MG_CHUNKED_NEED_MORE && consumed == 0)
                break;
        }
        break;
    case MG_UP_BODY_CLOSE:
        len = evbuffer_get_length(in);
        if (len > 0) {
            if (c->out_chunked)
                write_chunk_header(out, len);
            evbuffer_remove_buffer(in, out, len);
            if (c->out_chunked)
                evbuffer_add(out, "\r\n", 2);
            c->bytes_out += len;
        }
        break;
    }
    if (evbuffer_get_length(out) != before) {
        arm(c->tmo, conf_of(c)->stream_idle_timeout);
        if (c->sse && c->out_chunked && conf_of(c)->sse_keepalive > 0)
            arm(c->ka, conf_of(c)->sse_keepalive);
    }
    /* le-proxy backpressure: the client is slower than the upstream. */
    if (evbuffer_get_length(out) >= MG_RELAY_HIGH_WATER && !c->paused) {
        c->paused = true;
        bufferevent_disable(c->up->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, MG_RELAY_HIGH_WATER / 2, 0);
    }
}

/* ---- lifecycle ---- */

static void
conn_mark_dead(mg_conn_t *c)
{
    if (c->state == MG_CONN_DEAD)
        return;
    set_state(c, MG_CONN_DEAD);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->reap, EV_READ, 0);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;
    mg_worker_t *w = c->w;

    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    up_detach(c, false);
    if (c->bev) {
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        bufferevent_free(c->bev);
    }
    event_free(c->tmo);
    event_free(c->ka);
    event_free(c->kick);
    event_free(c->reap);
    evbuffer_free(c->body);
    evbuffer_free(c->upreq);
    free(c->head);
    free(c->path);
    free(c->resp_buf);
    mg_jwt_claims_free(c->claims);
    mg_gen_unref(c->gen);
    free(c);
    mg_worker_conn_gone(w);
}

static SSL_CTX *
listener_ctx(mg_worker_t *w, mg_listener_t *l)
{
    const mg_conf_t *conf = w->gen->conf;

    for (size_t i = 0; i < conf->nlistens; i++)
        if (strcmp(conf->listens[i].text, l->text) == 0 && w->gen->listen_ctx[i] != NULL)
            return w->gen->listen_ctx[i];
    return l->own_ctx;
}

void
mg_conn_accept(mg_worker_t *w, mg_listener_t *l, evutil_socket_t fd, struct sockaddr *sa, int salen)
{
    mg_conn_t *c = NULL;
    SSL *ssl = NULL;
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    int one = 1;

    if (w->draining) {
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* SSE events go out at once */
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->w = w;
    c->tls = l->tls;
    c->gen = mg_gen_ref(w->gen);
    c->state = MG_CONN_READ_HEAD;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->client_ip,
                  sizeof(c->client_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->client_ip,
                  sizeof(c->client_ip));
    else
        strcpy(c->client_ip, "unknown");
    c->tmo = evtimer_new(w->base, timeout_cb, c);
    c->ka = evtimer_new(w->base, keepalive_cb, c);
    c->kick = event_new(w->base, -1, 0, kick_cb, c);
    c->reap = event_new(w->base, -1, 0, reap_cb, c);
    c->body = evbuffer_new();
    c->upreq = evbuffer_new();
    if (!c->tmo || !c->ka || !c->kick || !c->reap || !c->body || !c->upreq)
        goto fail;
    if (c->tls) {
        ssl = SSL_new(listener_ctx(w, l));
        if (ssl == NULL)
            goto fail;
        c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
    } else {
        c->bev = bufferevent_socket_new(w->base, fd, opts);
    }
    if (c->bev == NULL)
        goto fail;
    fd = -1;
    ssl = NULL;
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    set_state(c, MG_CONN_READ_HEAD);
    return;
fail:
    mg_log_error("cannot set up a client connection: out of memory");
    if (ssl)
        SSL_free(ssl);
    if (fd >= 0)
        evutil_closesocket(fd);
    if (c != NULL) {
        if (c->bev)
            bufferevent_free(c->bev);
        if (c->tmo)
            event_free(c->tmo);
        if (c->ka)
            event_free(c->ka);
        if (c->kick)
            event_free(c->kick);
        if (c->reap)
            event_free(c->reap);
        if (c->body)
            evbuffer_free(c->body);
        if (c->upreq)
            evbuffer_free(c->upreq);
        mg_gen_unref(c->gen);
        free(c);
    }
}

void
mg_conn_drain_all(mg_worker_t *w)
{
    for (mg_conn_t *c = w->conns; c != NULL; c = c->next) {
        if (c->state == MG_CONN_DEAD || c->state == MG_CONN_CLOSING)
            continue;
        c->keep_alive = false;
        if (c->state == MG_CONN_READ_HEAD && !c->req_started &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            conn_mark_dead(c); /* idle keep-alive */
        } else if (c->state == MG_CONN_RELAY_BODY && c->sse &&
                   (c->out_chunked || c->up_body == MG_UP_BODY_CLOSE)) {
            /* An open-ended event stream would outlive any drain: end it
             * cleanly so the client reconnects (to another instance). */
            if (c->out_chunked)
                evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
            up_detach(c, false);
            request_done(c);
        }
    }
}

void
mg_conn_close_all(mg_worker_t *w)
{
    for (mg_conn_t *c = w->conns; c != NULL; c = c->next) {
        up_detach(c, false);
        conn_mark_dead(c);
    }
}
