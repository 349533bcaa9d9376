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
#include <fnmatch.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/err.h>

#include "core_int.h"
#include "head_out.h"
#include "mcpgate/audit.h"
#include "mcpgate/identity.h"
#include "mcpgate/keys.h"
#include "mcpgate/log.h"
#include "mcpgate/mcp.h"
#include "mcpgate/ratelimit.h"
#include "mcpgate/redis.h"
#include "mcpgate/session.h"
#include "mcpgate/sse.h"
#include "mcpgate/metrics.h"
#include "mcpgate/reply.h"
#include "mcpgate/request_id.h"

#define MG_RELAY_HIGH_WATER (256 * 1024) /* stop reading upstream above this client backlog */
#define MG_RESP_HEAD_MAX (64 * 1024)
#define MG_CLOSING_MS 5000
/* The code the Python SDK and docs/mcp.md use for an unknown or foreign session. */
#define MG_RPC_SESSION_NOT_FOUND (-32001)
#define MG_FILTER_JSON_MAX (16 * 1024 * 1024) /* a list response held for filtering */

typedef enum mg_conn_state {
    MG_CONN_READ_HEAD,
    MG_CONN_READ_BODY,
    MG_CONN_CONNECT_UPSTREAM,
    MG_CONN_SEND_UPSTREAM,
    MG_CONN_WAIT_RESPONSE,
    MG_CONN_RELAY_BODY,
    MG_CONN_WAIT_STORE, /* a session store or rate-limit answer is awaited (c->pending) */
    MG_CONN_CLOSING,    /* reply_begin() relies on CLOSING and DEAD being last */
    MG_CONN_DEAD,
} mg_conn_state_t;

#ifdef MG_TRACE_STATES
static const char *const state_names[] = {
    "READ_HEAD",     "READ_BODY",  "CONNECT_UPSTREAM", "SEND_UPSTREAM",
    "WAIT_RESPONSE", "RELAY_BODY", "WAIT_STORE",       "CLOSING", "DEAD",
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
    /* The client address of logs, the audit log, X-Forwarded-For and address-keyed rate
     * limits: the TCP peer, or for a request from a trusted_proxy the address its
     * X-Forwarded-For/Forwarded names (resolve_client()). */
    char client_ip[INET6_ADDRSTRLEN];
    char peer_ip[INET6_ADDRSTRLEN]; /* the TCP peer, text */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    mg_climit_ticket_t climit; /* its place under max_connections (given back in reap_cb) */
    mg_conn_state_t state;
    struct event *tmo;  /* the state's timeout (see the table above) */
    struct event *ka;   /* SSE keepalive comments */
    struct event *kick; /* process buffered pipelined input from the loop, not recursively */
    struct event *reap; /* deferred free */
    /* Plain sockets do their own I/O around the bufferevent's buffers
     * (client_sock_read_cb, client_out_cb); TLS ones leave it to the bufferevent. */
    struct event *rd;    /* the socket is readable */
    bool reading;        /* rd is added */
    struct event *flush; /* writes the output buffer once per loop pass */
    bool flush_armed;
    struct event *upsend; /* writes the request to a plain upstream (upsend_cb) */
    mg_gen_t *gen;      /* the generation the current request started under */
    bool closing_shut;  /* CLOSING: our side has been half-closed */

    /* The request. */
    bool req_started;
    size_t head_seen; /* bytes of an incomplete head already parsed (on_head) */
    struct timespec t_start;
    struct timespec t_wall; /* CLOCK_REALTIME at the first byte, for the audit log */
    char request_id[MG_REQUEST_ID_SIZE];
    uint64_t bytes_in;
    mg_audit_decision_t decision; /* for the audit log: allow unless refused */
    const char *reason;           /* static reason code of a refusal, or NULL */
    bool refused_credential;      /* a presented credential was refused: the audit line is
                                     rate-limited per client address (mg_audit_write_refused) */
    struct timespec t_up;         /* when the request went upstream */
    double upstream_ms;           /* < 0: no upstream exchange */
    bool sse_counted;             /* counted in the open-SSE-streams gauge */
    char *head; /* copy of the request head; c->req points into it */
    mg_http_request_head_t req;
    char *path; /* normalised */
    size_t path_len;
    const char *query; /* into c->head */
    size_t query_len;
    const mg_conf_route_t *route;
    size_t route_idx;
    mg_jwt_claims_t *claims; /* the caller's verified token on a protected route */
    mg_auth_wait_t *auth_wait;    /* the token is being introspected: nothing else happens */
    mg_auth_result_t *auth_given; /* inside auth_done_cb only: the finished check */

    /* The MCP front door on a protected route (docs/mcp.md). */
    mg_rpc_body_t *rpc;         /* the parsed POST body */
    mg_list_filter_t *lfilter;  /* tools/prompts/resources list filter for the response */
    mg_sse_rewriter_t *sse_rw;  /* the SSE response through lfilter */
    struct evbuffer *json_buf;  /* the JSON response while it is filtered */
    char *cors;                 /* CORS header lines for every response on the route */
    char *session_id;           /* the request's Mcp-Session-Id (legacy era), or NULL */
    const char *version;        /* the protocol version the request is handled under */
    bool is_initialize;         /* legacy initialize: bind the session the upstream returns */
    struct mg_pending *pending; /* WAIT_STORE: the store/limiter call in flight (admit, session
                                   check, session bind) */
    uint8_t rl_line[MG_RL_MAX_KEYS]; /* key i is route->rate_limits[rl_line[i]] */
    uint8_t rl_n;
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
    /* The parsed response head: ~3 KiB of header slots, so allocated at the first
     * upstream response and kept for the connection (an idle one has none). */
    mg_http_response_head_t *resp;
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
static void client_reading(mg_conn_t *c, bool on);
static void pending_cancel(mg_conn_t *c);
static void on_client_input(mg_conn_t *c);
static void after_auth(mg_conn_t *c);
static void start_upstream(mg_conn_t *c);
static void send_upstream(mg_conn_t *c);
static void upsend_cb(evutil_socket_t fd, short what, void *arg);
static bool header_is(const mg_http_header_t *h, const char *name);
static void write_chunk_header(struct evbuffer *out, size_t n);
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

/* A parsed head points into the buffer it was parsed from; once those bytes are
 * copied to <to>, the pointers move with them (cheaper than parsing again). */
static const char *
rebase(const char *ptr, const char *from, char *to)
{
    return ptr == NULL ? NULL : to + (ptr - from);
}

static void
headers_rebase(mg_http_header_t *h, size_t n, const char *from, char *to)
{
    for (size_t i = 0; i < n; i++) {
        h[i].name = rebase(h[i].name, from, to);
        h[i].value = rebase(h[i].value, from, to);
    }
}

static void
request_head_rebase(mg_http_request_head_t *req, const char *from, char *to)
{
    req->method_str = rebase(req->method_str, from, to);
    req->target = rebase(req->target, from, to);
    req->host = rebase(req->host, from, to);
    headers_rebase(req->headers, req->nheaders, from, to);
}

/* The only place c->state changes. */
static void
set_state(mg_conn_t *c, mg_conn_state_t s)
{
    const mg_conf_t *conf = conf_of(c);

    if (c->state == MG_CONN_DEAD)
        return;
    mg_conn_state_t old = c->state;
    if (old == MG_CONN_WAIT_STORE && s != MG_CONN_WAIT_STORE)
        pending_cancel(c); /* left without the answer (timeout, close): it will find nobody */
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
    case MG_CONN_WAIT_STORE:
        break; /* the running deadline continues; Redis answers within its own timeout */
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

/* One audit line and the request counter for a finished exchange. */
static void
account_request(mg_conn_t *c)
{
    const char *route = c->route ? c->route->path : NULL;
    mg_audit_record_t rec;

    mg_metrics_request(c->w->metrics, route, c->req.method_str, c->req.method_len, c->status);
    if (c->sse_counted) {
        mg_metric_add(c->w->metrics ? c->w->metrics->sse_streams_open : NULL, -1);
        c->sse_counted = false;
    }
    if (!mg_audit_enabled(c->w->audit))
        return;
    memset(&rec, 0, sizeof(rec));
    rec.time = c->t_wall;
    rec.request_id = c->request_id;
    rec.client = c->client_ip;
    rec.route = route;
    rec.method = mg_metrics_method_label(c->req.method_str, c->req.method_len);
    if (c->rpc != NULL && c->rpc->n > 0) {
        /* The first message of a batch stands for it: its method and target. */
        rec.rpc_method = c->rpc->msgs[0].method;
        rec.target = c->rpc->msgs[0].target;
    }
    if (c->claims != NULL) {
        rec.iss = c->claims->iss;
        rec.sub = c->claims->sub;
        rec.client_id = c->claims->client_id;
    }
    rec.decision = c->status >= 500 && c->decision == MG_AUDIT_ALLOW && c->upstream_ms < 0
                       ? MG_AUDIT_ERROR
                       : c->decision;
    rec.reason = c->reason;
    rec.status = c->status;
    rec.bytes_in = c->bytes_in;
    rec.bytes_out = c->bytes_out;
    rec.duration_ms = elapsed_ms(&c->t_start);
    rec.upstream_ms = c->upstream_ms;
    if (c->refused_credential && c->decision != MG_AUDIT_ALLOW)
        mg_audit_write_refused(c->w->audit, &rec, c->client_ip); /* a flood cannot fill the disk */
    else
        mg_audit_write(c->w->audit, &rec);
}

static void
log_request(mg_conn_t *c)
{
    if (c->head == NULL)
        return;
    account_request(c);
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
    c->head_seen = 0;
    c->refused_credential = false;
    c->request_id[0] = '\0';
    memcpy(c->client_ip, c->peer_ip, sizeof(c->peer_ip));
    c->bytes_in = 0;
    c->decision = MG_AUDIT_ALLOW;
    c->reason = NULL;
    c->upstream_ms = -1;
    c->query = NULL;
    c->route = NULL;
    mg_jwt_claims_free(c->claims);
    c->claims = NULL;
    mg_rpc_body_free(c->rpc);
    c->rpc = NULL;
    mg_sse_rewriter_free(c->sse_rw);
    c->sse_rw = NULL;
    mg_list_filter_free(c->lfilter);
    c->lfilter = NULL;
    if (c->json_buf != NULL)
        evbuffer_free(c->json_buf);
    c->json_buf = NULL;
    free(c->cors);
    c->cors = NULL;
    free(c->session_id);
    c->session_id = NULL;
    c->version = NULL;
    c->is_initialize = false;
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
    client_reading(c, true);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        event_active(c->kick, EV_READ, 0); /* pipelined: from the loop, not recursively */
}

/* The first half of every reply the gateway writes itself: false when the
 * response head already went out (then the connection is cut instead). */
static bool
reply_begin(mg_conn_t *c, int status)
{
    if (c->state == MG_CONN_RELAY_BODY || c->state >= MG_CONN_CLOSING) {
        /* Headers already went out: all we can do is cut the connection. */
        up_detach(c, false);
        c->keep_alive = false;
        set_state(c, MG_CONN_CLOSING);
        closing_step(c);
        return false;
    }
    up_detach(c, false);
    c->status = status;
    /* After these the stream position is unknown or the client misbehaves;
     * also close when a request body was not read, or it would be taken
     * for the next request. */
    if (status == 400 || status == 408 || status == 413 || status == 431 || status == 505 ||
        c->w->draining ||
        (c->head && !c->body_done && (c->req.chunked || c->req.content_length > 0)))
        c->keep_alive = false;
    if (c->decision == MG_AUDIT_ALLOW && status < 500 && status >= 300) {
        /* The gateway refused the request itself (framing, path, route, ...). */
        c->decision = MG_AUDIT_DENY;
        if (c->reason == NULL)
            c->reason = status == 404 ? "no_route" : status == 405 ? "method" : "bad_request";
    }
    return true;
}

static void
reply_end(mg_conn_t *c, char *out, size_t len)
{
    if (out != NULL) {
        evbuffer_add(bufferevent_get_output(c->bev), out, len);
        c->bytes_out += len;
        free(out);
    } else {
        c->keep_alive = false;
    }
    request_done(c);
}

/* Strict-Transport-Security on every response of a TLS listener (RFC 6797 section 7.2:
 * never over plain HTTP, where a client must ignore it anyway); "" otherwise. */
static const char *
hsts_line(const mg_conn_t *c, char *buf, size_t len)
{
    uint32_t age = c->gen ? c->gen->conf->hsts_max_age : 0;

    if (!c->tls || age == 0)
        return "";
    snprintf(buf, len, "Strict-Transport-Security: max-age=%u\r\n", (unsigned)age);
    return buf;
}

/* A reply the gateway writes itself (see reply.c for the body). */
static void
send_error(mg_conn_t *c, int status, const char *msg, const char *extra)
{
    char hsts[64];
    char *out, *hdrs = NULL;
    size_t len = 0;
    const char *b = NULL;
    size_t blen = 0;

    if (!reply_begin(c, status))
        return;
    if (c->body_done && evbuffer_get_length(c->body) > 0) {
        blen = evbuffer_get_length(c->body);
        b = (const char *)evbuffer_pullup(c->body, -1);
    }
    mg_log_debug("%s: %d %s", c->client_ip, status, msg);
    if ((status == 502 || status == 504) && c->route != NULL)
        mg_metrics_upstream_error(c->w->metrics, c->route->path,
                                  status == 504 ? "timeout" : "bad_gateway");
    /* Every reply carries the request id, also those the gateway writes, and
     * the CORS headers a browser client needs to read it (SPEC C-15). */
    if (asprintf(&hdrs, "X-Request-Id: %s\r\n%s%s%s", c->request_id, c->cors ? c->cors : "",
                 hsts_line(c, hsts, sizeof(hsts)), extra ? extra : "") < 0)
        hdrs = NULL;
    out = mg_reply_error_response(status, msg, b, blen, c->request_id[0] ? c->request_id : NULL,
                                  !c->keep_alive, hdrs ? hdrs : extra, &len);
    free(hdrs);
    reply_end(c, out, len);
}

/* A reply built by the front door (src/mcp): challenges, metadata, JSON-RPC
 * errors. <r> is cleared. */
static void
send_mcp_reply(mg_conn_t *c, mg_mcp_reply_t *r)
{
    char hsts[64];
    char *hdrs = NULL, *out = NULL;
    size_t len = 0;

    if (!reply_begin(c, r->status)) {
        mg_mcp_reply_clear(r);
        return;
    }
    if (asprintf(&hdrs, "%sX-Request-Id: %s\r\n%s%s", r->headers ? r->headers : "",
                 c->request_id, c->cors ? c->cors : "", hsts_line(c, hsts, sizeof(hsts))) >= 0) {
        free(r->headers);
        r->headers = hdrs;
    }
    out = mg_mcp_reply_serialize(r, c->keep_alive, c->req.method == MG_HTTP_HEAD, &len);
    mg_mcp_reply_clear(r);
    reply_end(c, out, len);
}

/* ---- client side ---- */

static void client_event_cb(struct bufferevent *bev, short what, void *arg);

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

    /* Drained: further output goes out through flush_cb again. Disabling a write
     * event that is not pending costs no system call. */
    if (!c->tls && c->flush && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE);
    if (c->state == MG_CONN_CLOSING) {
        closing_step(c);
    } else if (c->paused && c->up != NULL) {
        /* Drained below the low watermark: the le-proxy resume. */
        c->paused = false;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        mg_upstream_reading(c->up, true);
        if (c->state == MG_CONN_RELAY_BODY &&
            evbuffer_get_length(bufferevent_get_input(c->up->bev)) > 0)
            relay(c);
    }
}

/* Reading from the client on or off (back-pressure, lingering close, death). */
static void
client_reading(mg_conn_t *c, bool on)
{
    mg_sock_reading(c->bev, c->rd, &c->reading, on);
}

/*
 * A plain client socket is read by the gateway itself into the bufferevent's
 * input buffer: libevent's evbuffer_read() asks the kernel how much is waiting
 * (ioctl FIONREAD) before every read, a system call per request that tells us
 * nothing we need. Here it is one readv() into room reserved in the buffer;
 * EOF and errors reach client_event_cb() as they would from the bufferevent.
 */
static void
client_sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;
    int err = 0;
    ssize_t n = mg_sock_read(fd, bufferevent_get_input(c->bev), &err);

    if (n > 0) {
        client_read_cb(c->bev, c);
        return;
    }
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
        return;
    client_reading(c, false); /* EOF stays readable: stop before it spins */
    errno = err;
    client_event_cb(c->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
}

/*
 * Output on a plain socket is written by the gateway itself rather than by the
 * bufferevent: libevent would add the write event when data is queued and
 * delete it once the buffer drains, two epoll_ctl calls (and a loop pass) for
 * every response although the socket almost always takes it at once. So the
 * bufferevent's EV_WRITE stays disabled; whatever is added to the output buffer
 * arms <flush>, which writes it at the end of this loop pass (one writev for a
 * head and body added separately). Only when the socket would block is EV_WRITE
 * enabled, and the bufferevent finishes the job (and reports errors) as usual;
 * client_write_cb disables it again once the buffer is empty.
 */
static void
client_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    mg_conn_t *c = arg;

    if (info->n_added == 0 || c->flush_armed || c->state == MG_CONN_DEAD ||
        (bufferevent_get_enabled(c->bev) & EV_WRITE))
        return;
    c->flush_armed = true;
    event_active(c->flush, EV_WRITE, 0);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int n, err;

    c->flush_armed = false;
    if (c->state == MG_CONN_DEAD || evbuffer_get_length(out) == 0 ||
        (bufferevent_get_enabled(c->bev) & EV_WRITE))
        return;
    /* The bufferevent keeps its output's front frozen except while it writes. */
    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, bufferevent_getfd(c->bev));
    err = errno;
    evbuffer_freeze(out, 1);
    if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        /* Let the bufferevent meet the error and report it (client_event_cb). */
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    if (evbuffer_get_length(out) > 0) {
        bufferevent_enable(c->bev, EV_WRITE); /* the socket is full: wait until it drains */
        return;
    }
    client_write_cb(c->bev, c); /* what the bufferevent would have said */
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


static void auth_done_cb(void *arg, mg_auth_result_t *res);

/* A protected route: every request (POST, GET and DELETE alike) carries a
 * valid access token, checked before the body is read or anything is sent
 * upstream (SPEC T-02, T-03). False when a refusal was sent, or while an
 * opaque token is introspected (c->auth_wait set; auth_done_cb goes on). */
static bool
authenticate(mg_conn_t *c)
{
    const mg_mcp_t *mcp = c->gen->mcp;
    mg_mcp_reply_t rep = {0};
    mg_auth_result_t r;

    /* RFC 6750 section 2.3 is not supported on purpose: a token in the URL
     * ends up in logs and Referer headers (SPEC T-01). */
    if (c->query != NULL && mg_bearer_query_has_token(c->query, c->query_len)) {
        c->reason = "token_in_query";
        c->refused_credential = true;
        mg_metrics_auth(c->w->metrics, c->route->path, MG_METRICS_DENY, c->reason);
        mg_mcp_challenge(mcp, c->route, MG_CHALLENGE_INVALID_REQUEST,
                         "Access tokens are not accepted in the query string.", NULL, NULL, &rep);
        c->decision = MG_AUDIT_DENY;
        send_mcp_reply(c, &rep);
        return false;
    }
    if (c->auth_given != NULL) {
        /* The introspection finished (auth_done_cb): take its result. */
        r = *c->auth_given;
        c->auth_given->claims = NULL;
        c->auth_given = NULL;
    } else {
        mg_auth_check_async(c->w, c->gen, c->route_idx, &c->req, (int64_t)time(NULL), &r,
                            auth_done_cb, c, &c->auth_wait);
        if (r.outcome == MG_AUTH_PENDING)
            return false; /* auth_done_cb continues; the input stays buffered meanwhile */
    }
    if (r.outcome == MG_AUTH_OK) {
        c->claims = r.claims;
        mg_metrics_auth(c->w->metrics, c->route->path, MG_METRICS_ALLOW, "ok");
        return true;
    }
    c->decision = r.outcome == MG_AUTH_UNAVAILABLE ? MG_AUDIT_ERROR : MG_AUDIT_DENY;
    /* bad, unknown or foreign tokens and API keys, malformed Authorization: limited lines */
    c->refused_credential = r.outcome == MG_AUTH_INVALID || r.outcome == MG_AUTH_BAD_REQUEST;
    c->reason = r.code != NULL                     ? r.code
                : r.outcome == MG_AUTH_INVALID     ? mg_jwt_reason_code(r.reason)
                : r.outcome == MG_AUTH_NO_TOKEN    ? "no_token"
                : r.outcome == MG_AUTH_BAD_REQUEST ? "bad_authorization"
                                                   : "no_keys";
    mg_metrics_auth(c->w->metrics, c->route->path,
                    r.outcome == MG_AUTH_UNAVAILABLE ? MG_METRICS_ERROR : MG_METRICS_DENY,
                    c->reason);
    if (r.outcome == MG_AUTH_INVALID)
        mg_log_info("%s: %s refused on %s: %s", c->client_ip,
                    r.code != NULL && strncmp(r.code, "api_key", 7) == 0 ? "API key"
                                                                         : "access token",
                    c->route->path,
                    c->reason);
    switch (r.outcome) {
    case MG_AUTH_NO_TOKEN:
        mg_mcp_challenge(mcp, c->route, MG_CHALLENGE_NO_TOKEN, NULL, NULL, NULL, &rep);
        break;
    case MG_AUTH_BAD_REQUEST:
        mg_mcp_challenge(mcp, c->route, MG_CHALLENGE_INVALID_REQUEST, r.description, NULL, NULL,
                         &rep);
        break;
    case MG_AUTH_INVALID:
        mg_mcp_challenge(mcp, c->route, MG_CHALLENGE_INVALID_TOKEN, r.description, NULL, NULL,
                         &rep);
        break;
    default: {
        /* No keys, or the verifier failed: 503, never 401, so that clients keep
         * their token (SPEC C-14). */
        char *to_free = NULL;
        const char *retry = mg_auth_challenge(&r, &to_free);
        send_error(c, 503, r.description, retry);
        free(to_free);
        return false;
    }
    }
    send_mcp_reply(c, &rep);
    return false;
}

/* ---- rate limits (docs/redis.md): checked last, right before the request goes upstream ---- */

/* A store or limiter call in flight for a connection in WAIT_STORE. The callback
 * owns (and frees) the handle; the connection drops its pointer when it leaves
 * WAIT_STORE any other way (closed, timed out), so a late answer finds c NULL
 * and touches nothing. Answers given inside the call (memory store) work too. */
typedef struct mg_pending {
    mg_conn_t *c;
} mg_pending_t;

static mg_pending_t *
pending_begin(mg_conn_t *c)
{
    mg_pending_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    set_state(c, MG_CONN_WAIT_STORE);
    p->c = c;
    c->pending = p;
    return p;
}

/* In the callback: the connection, or NULL when it went away meanwhile. */
static mg_conn_t *
pending_end(mg_pending_t *p)
{
    mg_conn_t *c = p->c;

    free(p);
    if (c != NULL)
        c->pending = NULL;
    return c;
}

static void
pending_cancel(mg_conn_t *c)
{
    if (c->pending != NULL) {
        c->pending->c = NULL;
        c->pending = NULL;
    }
}

static const char *const rl_kind_names[] = {"subject", "client", "route", "tool"};

/* The keys of the route's limits that apply to this request, in c->rl_line[] the
 * rate_limit line of each; ids[] are malloc'd (the caller frees them). Returns
 * the number of keys, or -1 on OOM, -2 when a batch needs more than
 * MG_RL_MAX_KEYS buckets. */
static int
rl_keys(mg_conn_t *c, mg_rl_key_t *keys, char **ids)
{
    const mg_conf_route_t *r = c->route;
    const mg_jwt_claims_t *cl = c->claims;
    const char *iss = cl && cl->iss ? cl->iss : "", *sub = cl && cl->sub ? cl->sub : "";
    mg_rl_memo_t *memo = c->claims ? mg_auth_rl_memo(c->claims, c->gen, c->route_idx) : NULL;
    const mg_rl_key_t *mk;
    int n = 0;

    for (size_t i = 0; i < r->nrate_limits; i++) {
        const mg_conf_rate_limit_t *l = &r->rate_limits[i];
        char *id = NULL;
        int rc = 0;

        if (l->kind == MG_CONF_RL_TOOL) {
            /* Tool names are known where the front door parsed the body. One bucket per
             * distinct tool of the request (a legacy batch may call several). */
            for (size_t m = 0; c->rpc != NULL && cl != NULL && m < c->rpc->n; m++) {
                const mg_rpc_msg_t *msg = &c->rpc->msgs[m];
                bool seen = false;
                if (msg->method == NULL || strcmp(msg->method, "tools/call") != 0 ||
                    msg->target == NULL || fnmatch(l->glob, msg->target, 0) != 0)
                    continue;
                for (size_t k = 0; k < m && !seen; k++)
                    seen = c->rpc->msgs[k].method && c->rpc->msgs[k].target &&
                           strcmp(c->rpc->msgs[k].method, "tools/call") == 0 &&
                           strcmp(c->rpc->msgs[k].target, msg->target) == 0;
                if (seen)
                    continue;
                if (n >= MG_RL_MAX_KEYS)
                    return -2;
                if (asprintf(&ids[n], "%s\n%s\n%s\n%s", l->glob, msg->target, iss, sub) < 0) {
                    ids[n] = NULL;
                    return -1;
                }
                keys[n] =
                    (mg_rl_key_t){rl_kind_names[l->kind], ids[n], l->interval_us, l->burst, NULL};
                c->rl_line[n++] = (uint8_t)i;
            }
            continue;
        }
        if (n >= MG_RL_MAX_KEYS)
            return -2;
        /* The token's earlier requests on this route worked this key out already. */
        if (memo != NULL && (mk = mg_rl_memo_get(memo, i)) != NULL) {
            keys[n] = *mk;
            c->rl_line[n++] = (uint8_t)i;
            continue;
        }
        switch (l->kind) {
        case MG_CONF_RL_SUBJECT:
            /* Unprotected route: nobody is authenticated, the client address stands in. */
            rc = cl ? asprintf(&id, "%s\n%s", iss, sub) : asprintf(&id, "addr\n%s", c->client_ip);
            break;
        case MG_CONF_RL_CLIENT:
            /* A token without client_id/azp shares one bucket per issuer: a limit that
             * cannot be keyed is never skipped. */
            rc = cl ? asprintf(&id, "%s\n%s", iss, cl->client_id ? cl->client_id : "")
                    : asprintf(&id, "addr\n%s", c->client_ip);
            break;
        default:
            id = strdup("");
            break;
        }
        if (rc < 0 || id == NULL)
            return -1;
        ids[n] = id;
        keys[n] = (mg_rl_key_t){rl_kind_names[l->kind], ids[n], l->interval_us, l->burst, NULL};
        if (memo != NULL && (mk = mg_rl_memo_put(memo, i, r->path, &keys[n])) != NULL)
            keys[n] = *mk;
        c->rl_line[n++] = (uint8_t)i;
    }
    return n;
}

/* A policy name: the rate_limit line as written, as a structured-field string. */
static void
rl_policy_name(struct evbuffer *b, const mg_conf_rate_limit_t *l)
{
    static const char *const per[] = {"second", "minute", "hour"};
    const char *p = l->period_s == 1 ? per[0] : l->period_s == 60 ? per[1] : per[2];

    evbuffer_add(b, "\"", 1);
    if (l->kind == MG_CONF_RL_TOOL && strcmp(l->glob, "*") != 0) {
        evbuffer_add_printf(b, "tool:");
        for (const unsigned char *s = (const unsigned char *)l->glob; *s; s++) {
            if (*s == '"' || *s == '\\')
                evbuffer_add(b, "\\", 1);
            evbuffer_add_printf(b, "%c", *s >= 0x20 && *s < 0x7f ? *s : '?');
        }
    } else {
        evbuffer_add_printf(b, "%s", rl_kind_names[l->kind]);
    }
    evbuffer_add_printf(b, " %u/%s", l->count, p);
    if (l->burst != l->count)
        evbuffer_add_printf(b, " burst %u", l->burst);
    evbuffer_add(b, "\"", 1);
}

/* Retry-After, RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers,
 * structured fields) for a refusal. Malloc'd header lines, or NULL. */
static char *
rl_headers(mg_conn_t *c, size_t n, const mg_rl_result_t *res)
{
    struct evbuffer *b = evbuffer_new();
    uint64_t retry_s = (res->retry_after_ms + 999) / 1000;
    bool listed[MG_CONF_MAX_RATE_LIMITS] = {false};
    bool first = true;
    char *out = NULL;
    size_t len;

    if (b == NULL)
        return NULL;
    if (retry_s == 0)
        retry_s = 1;
    evbuffer_add_printf(b, "Retry-After: %llu\r\n", (unsigned long long)retry_s);
    if (res->decision == MG_RL_LIMITED && res->index >= 0 && (size_t)res->index < n) {
        const mg_conf_rate_limit_t *worst = &c->route->rate_limits[c->rl_line[res->index]];
        evbuffer_add_printf(b, "RateLimit-Policy: ");
        for (size_t i = 0; i < n; i++) {
            const mg_conf_rate_limit_t *l = &c->route->rate_limits[c->rl_line[i]];
            if (listed[c->rl_line[i]])
                continue;
            listed[c->rl_line[i]] = true;
            if (!first)
                evbuffer_add(b, ", ", 2);
            first = false;
            rl_policy_name(b, l);
            evbuffer_add_printf(b, ";q=%u;w=%u", l->count, l->period_s);
        }
        evbuffer_add_printf(b, "\r\nRateLimit: ");
        rl_policy_name(b, worst);
        evbuffer_add_printf(b, ";r=%u;t=%llu\r\n", res->remaining, (unsigned long long)retry_s);
    }
    len = evbuffer_get_length(b);
    out = malloc(len + 1);
    if (out != NULL) {
        evbuffer_remove(b, out, len);
        out[len] = '\0';
    }
    evbuffer_free(b);
    return out;
}

static const char *
rl_policy_label(mg_redis_on_failure_t p)
{
    return p == MG_REDIS_FAIL_DENY ? "deny" : p == MG_REDIS_FAIL_ALLOW ? "allow" : "local";
}

static const char *
rl_redis_err_label(mg_redis_err_t e)
{
    switch (e) {
    case MG_REDIS_E_NOT_READY:
        return "not_ready";
    case MG_REDIS_E_TIMEOUT:
        return "timeout";
    case MG_REDIS_E_DISCONNECTED:
        return "disconnected";
    case MG_REDIS_E_NOMEM:
        return "nomem";
    default:
        return "reply";
    }
}

/* The limiter's answer: forward, 429, or 503. */
static void
rl_decided(mg_conn_t *c, size_t n, const mg_rl_result_t *res)
{
    char *hdrs;
    const char *kind = "unknown";

    if (res->index >= 0 && (size_t)res->index < n)
        kind = rl_kind_names[c->route->rate_limits[c->rl_line[res->index]].kind];
    if (c->w->rl != NULL && res->source != MG_RL_SRC_REDIS && res->redis_err != MG_REDIS_OK &&
        res->redis_err != MG_REDIS_E_CLOSED) {
        mg_metrics_redis_error(c->w->metrics, rl_redis_err_label(res->redis_err));
        mg_metrics_ratelimit_fallback(c->w->metrics,
                                      rl_policy_label(mg_redis_conf(c->w->redis)->on_failure));
    }
    switch (res->decision) {
    case MG_RL_ALLOWED:
        start_upstream(c);
        return;
    case MG_RL_LIMITED:
        c->decision = MG_AUDIT_DENY;
        c->reason = "rate_limited";
        mg_metrics_rate_limited(c->w->metrics, c->route->path, kind);
        hdrs = rl_headers(c, n, res);
        send_error(c, 429, "rate limit exceeded", hdrs ? hdrs : "Retry-After: 1\r\n");
        free(hdrs);
        return;
    case MG_RL_UNAVAILABLE:
        /* on_failure deny: Redis could not decide. */
        c->decision = MG_AUDIT_ERROR;
        c->reason = "rate_limit_unavailable";
        hdrs = rl_headers(c, n, res);
        send_error(c, 503, "rate limit store unavailable", hdrs ? hdrs : "Retry-After: 1\r\n");
        free(hdrs);
        return;
    default:
        send_error(c, 500, "invalid rate limit", NULL);
        return;
    }
}

static void
rl_checked_cb(void *arg, const mg_rl_result_t *res)
{
    mg_conn_t *c = pending_end(arg);

    if (c == NULL)
        return; /* the connection went away while Redis was deciding */
    rl_decided(c, c->rl_n, res);
}

/* Every check passed: apply the route's rate limits, then go upstream. All the
 * limits of a request are checked in one call, all or nothing. */
static void
admit(mg_conn_t *c)
{
    mg_rl_key_t keys[MG_RL_MAX_KEYS];
    char *ids[MG_RL_MAX_KEYS] = {NULL};
    mg_rl_result_t res;
    mg_pending_t *p;
    int n;

    if (c->route->nrate_limits == 0) {
        start_upstream(c);
        return;
    }
    n = rl_keys(c, keys, ids);
    if (n <= 0) {
        for (int i = 0; i < MG_RL_MAX_KEYS; i++)
            free(ids[i]);
        if (n == 0)
            start_upstream(c);
        else if (n == -2)
            send_error(c, 400, "too many rate-limited tool calls in one batch", NULL);
        else
            send_error(c, 500, "out of memory", NULL);
        return;
    }
    c->rl_n = (uint8_t)n;
    if (c->w->rl == NULL) {
        /* No redis block: the process-wide in-process limiter, synchronously. */
        mg_rl_local_check(c->w->rl_local, c->route->path, keys, (size_t)n, &res);
        for (int i = 0; i < n; i++)
            free(ids[i]);
        rl_decided(c, (size_t)n, &res);
        return;
    }
    p = pending_begin(c);
    if (p == NULL || mg_ratelimit_check(c->w->rl, c->route->path, keys, (size_t)n,
                                        rl_checked_cb, p) != 0) {
        if (p != NULL)
            pending_end(p);
        for (int i = 0; i < n; i++)
            free(ids[i]);
        send_error(c, 500, "rate limit check failed", NULL);
        return;
    }
    for (int i = 0; i < n; i++)
        free(ids[i]); /* the limiter copied the keys */
}

/* ---- the MCP front door on a protected route (src/mcp, docs/mcp.md) ---- */

static const char *const *
granted_scopes(const mg_conn_t *c, size_t *n)
{
    *n = c->claims ? c->claims->n_scopes : 0;
    return c->claims ? (const char *const *)c->claims->scopes : NULL;
}

/* 403 insufficient_scope naming every scope the call needs (SPEC S-02). */
static void
refuse_scope(mg_conn_t *c, const mg_scope_set_t *need, const char *id_json)
{
    mg_mcp_reply_t rep = {0};

    c->decision = MG_AUDIT_DENY;
    c->reason = "insufficient_scope";
    mg_metrics_auth(c->w->metrics, c->route->path, MG_METRICS_DENY, c->reason);
    mg_mcp_challenge(c->gen->mcp, c->route, MG_CHALLENGE_INSUFFICIENT_SCOPE, NULL, need, id_json,
                     &rep);
    send_mcp_reply(c, &rep);
}

static void
refuse_rpc(mg_conn_t *c, int status, const char *id_json, int code, const char *message,
           const char *data_json, const char *reason)
{
    mg_mcp_reply_t rep = {0};

    c->decision = MG_AUDIT_DENY;
    c->reason = reason;
    mg_mcp_error(status, id_json, code, message, data_json, &rep);
    send_mcp_reply(c, &rep);
}

/* The session id the request carries, validated (SPEC SS-02). False when a
 * refusal was sent. */
static bool
take_session_id(mg_conn_t *c)
{
    const mg_http_header_t *h = mg_http_find_header(c->req.headers, c->req.nheaders,
                                                    "Mcp-Session-Id");

    if (h == NULL)
        return true;
    if (!mg_session_id_valid(h->value, h->value_len)) {
        refuse_rpc(c, 400, NULL, MG_RPC_INVALID_REQUEST, "invalid Mcp-Session-Id", NULL,
                   "bad_session_id");
        return false;
    }
    c->session_id = strndup(h->value, h->value_len);
    if (c->session_id == NULL) {
        send_error(c, 500, "out of memory", NULL);
        return false;
    }
    return true;
}

static void front_after_session(mg_conn_t *c, mg_session_result_t res, const char *version);

static void
session_checked_cb(void *arg, mg_session_result_t res, const char *version)
{
    mg_conn_t *c = pending_end(arg);

    if (c != NULL)
        front_after_session(c, res, version);
}

/* After the token: what the request asks for must be allowed to this caller.
 * GET and DELETE carry no body: their scope is the route's; a POST is judged
 * message by message once its body is in (front_post). */
static void
front_request(mg_conn_t *c)
{
    if (!take_session_id(c))
        return;
    if (c->session_id != NULL) {
        /* Sessions are bound to the caller (SPEC SS-03): someone else's id is
         * answered like an unknown one, and nothing is forwarded. A Redis store
         * answers later: the connection waits in WAIT_STORE. */
        mg_pending_t *p = pending_begin(c);
        if (p == NULL) {
            send_error(c, 500, "out of memory", NULL);
            return;
        }
        mg_session_check(c->w->sessions, c->session_id, strlen(c->session_id), c->claims->iss,
                         c->claims->sub, c->route->session_ttl,
                         (uint64_t)time(NULL) * 1000, session_checked_cb, p);
        return;
    }
    front_after_session(c, MG_SESSION_OWNED, NULL);
}

static void
front_after_session(mg_conn_t *c, mg_session_result_t res, const char *version)
{
    size_t ng;
    const char *const *granted = granted_scopes(c, &ng);
    char *id_json = NULL;

    if (res == MG_SESSION_ERROR) {
        send_error(c, 503, "session store unavailable", "Retry-After: 1\r\n");
        return;
    }
    if (c->req.method != MG_HTTP_POST) {
        mg_mcp_version_t v = mg_mcp_request_version(c->req.headers, c->req.nheaders, version);
        if (res != MG_SESSION_OWNED) {
            refuse_rpc(c, 404, NULL, MG_RPC_SESSION_NOT_FOUND, "Session not found", NULL,
                       "session_not_owned");
            return;
        }
        if (v == MG_MCP_VERSION_UNKNOWN) {
            refuse_rpc(c, 400, NULL, MG_RPC_UNSUPPORTED_VERSION,
                       "Unsupported MCP-Protocol-Version", NULL, "bad_version");
            return;
        }
        c->version = mg_mcp_version_name(v);
        if (!mg_policy_allows(c->route, NULL, NULL, granted, ng)) {
            mg_scope_set_t need = {0};
            mg_policy_required(c->route, NULL, NULL, &need);
            for (size_t i = 0; i < ng; i++)
                mg_scope_set_add(&need, granted[i]);
            refuse_scope(c, &need, NULL);
            mg_scope_set_clear(&need);
            return;
        }
        admit(c);
        return;
    }

    /* POST: the JSON-RPC message(s). */
    {
        mg_mcp_check_t chk;
        mg_scope_set_t need = {0};
        bool oom = false;
        const mg_rpc_msg_t *first = &c->rpc->msgs[0];

        mg_mcp_check_post(c->rpc, c->req.headers, c->req.nheaders, version, &chk);
        id_json = first->id;
        if (chk.status != 0) {
            mg_mcp_reply_t rep = {0};
            size_t blen = 0;
            c->decision = MG_AUDIT_DENY;
            c->reason = "bad_mcp_request";
            rep.status = chk.status;
            rep.body = mg_mcp_check_error_body(&chk, c->rpc, &blen);
            rep.body_len = blen;
            rep.content_type = "application/json";
            send_mcp_reply(c, &rep);
            return;
        }
        /* The 2026-07-28 revision has no sessions (SPEC SS-05); before it, a
         * session id must be the caller's own. */
        if (!chk.modern && res != MG_SESSION_OWNED) {
            refuse_rpc(c, 404, id_json, MG_RPC_SESSION_NOT_FOUND, "Session not found", NULL,
                       "session_not_owned");
            return;
        }
        c->version = mg_mcp_version_name(chk.version);
        if (!mg_policy_authorize(c->route, c->rpc, granted, ng, &need)) {
            refuse_scope(c, &need, id_json);
            mg_scope_set_clear(&need);
            return;
        }
        mg_scope_set_clear(&need);
        c->is_initialize = !chk.modern && !c->rpc->batch && first->method != NULL &&
                           strcmp(first->method, "initialize") == 0;
        c->lfilter = mg_list_filter_new(c->route, c->rpc, granted, ng, &oom);
        if (oom) {
            send_error(c, 500, "out of memory", NULL);
            return;
        }
    }
    admit(c);
}

/* A POST body is in: parse it before anything else is decided. */
static void
front_post(mg_conn_t *c)
{
    const mg_http_header_t *ct =
        mg_http_find_header(c->req.headers, c->req.nheaders, "Content-Type");
    size_t blen = evbuffer_get_length(c->body);
    const char *b = blen ? (const char *)evbuffer_pullup(c->body, -1) : "";
    char ctype[128] = "";
    const char *bad_encoding;
    int rc;

    /* Before anything reads the body: the upstream must see the same characters. */
    bad_encoding = mg_mcp_body_encoding_refusal(c->req.headers, c->req.nheaders);
    if (bad_encoding != NULL) {
        refuse_rpc(c, 415, NULL, MG_RPC_INVALID_REQUEST, bad_encoding, NULL,
                   "unsupported_media_type");
        return;
    }
    if (ct != NULL && ct->value_len < sizeof(ctype))
        memcpy(ctype, ct->value, ct->value_len), ctype[ct->value_len] = '\0';
    if (mg_bearer_form_has_token(ctype, b, blen)) {
        mg_mcp_reply_t rep = {0};
        c->decision = MG_AUDIT_DENY;
        c->reason = "token_in_body";
        mg_mcp_challenge(c->gen->mcp, c->route, MG_CHALLENGE_INVALID_REQUEST,
                         "Access tokens are not accepted in the request body.", NULL, NULL, &rep);
        send_mcp_reply(c, &rep);
        return;
    }
    rc = mg_rpc_parse(b, blen, &c->rpc);
    if (rc == -1) {
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    if (rc != 0) {
        refuse_rpc(c, 400, NULL, rc, rc == MG_RPC_PARSE_ERROR ? "Parse error" : "Invalid Request",
                   NULL, rc == MG_RPC_PARSE_ERROR ? "parse_error" : "invalid_request");
        return;
    }
    /* Every element of a batch is authorized (and its tool calls rate-limited)
     * one by one: a body of thousands of tiny messages must not buy thousands
     * of checks, nor be forwarded for the upstream to fan out. */
    if (c->rpc->batch && c->rpc->n > MG_RPC_MAX_BATCH) {
        refuse_rpc(c, 400, NULL, MG_RPC_INVALID_REQUEST, "Batch too large", NULL,
                   "batch_too_large");
        return;
    }
    front_request(c);
}

/* ---- revocation (docs/redis.md, "Revocation"): the token's jti in mg:revoked:<issuer> ---- */

static void front_begin(mg_conn_t *c);

/* The configuration of the token's issuer when it says `revocation on;`, else NULL. */
static const mg_conf_issuer_t *
revocation_issuer(const mg_conn_t *c)
{
    const mg_conf_t *conf = c->gen->conf;

    if (c->claims == NULL || c->claims->iss == NULL)
        return NULL;
    for (size_t k = 0; k < c->route->nissuers; k++) {
        const mg_conf_issuer_t *ci = &conf->issuers[c->route->issuers[k]];
        if (ci->revocation && strcmp(ci->url, c->claims->iss) == 0)
            return ci;
    }
    return NULL;
}

/* Redis could not say: the redis block's on_failure decides (deny: 503; local and allow: the
 * token passes, since no replica has a local copy of the set). */
static void
revocation_unavailable(mg_conn_t *c, mg_redis_err_t err)
{
    static _Thread_local time_t last_log;
    const mg_conf_t *conf = conf_of(c);
    mg_redis_on_failure_t policy = c->w->redis != NULL   ? mg_redis_conf(c->w->redis)->on_failure
                                   : conf->redis != NULL ? conf->redis->rc.on_failure
                                                         : MG_REDIS_FAIL_DENY;
    time_t now = time(NULL);

    if (err != MG_REDIS_OK)
        mg_metrics_redis_error(c->w->metrics, rl_redis_err_label(err));
    if (now != last_log) {
        last_log = now;
        mg_log_warn("revocation check failed (%s): %s",
                    err != MG_REDIS_OK ? mg_redis_strerror(err)
                                       : "no redis connection (the redis block needs a "
                                         "restart)",
                    policy == MG_REDIS_FAIL_DENY ? "refusing (on_failure deny)"
                                                 : "letting the token through");
    }
    if (policy == MG_REDIS_FAIL_DENY) {
        mg_metrics_revocation(c->w->metrics, "unavailable_denied");
        c->decision = MG_AUDIT_ERROR;
        c->reason = "revocation_unavailable";
        send_error(c, 503, "revocation store unavailable", "Retry-After: 1\r\n");
        return;
    }
    mg_metrics_revocation(c->w->metrics, "unavailable_allowed");
    front_begin(c);
}

static void
revocation_checked_cb(void *arg, mg_redis_err_t err, const struct redisReply *reply)
{
    mg_conn_t *c = pending_end(arg);
    mg_mcp_reply_t rep = {0};

    if (c == NULL)
        return; /* the connection went away meanwhile */
    /* SISMEMBER answers an integer (RESP :0 / :1); anything else is a failure. */
    if (err != MG_REDIS_OK || reply == NULL || mg_redis_reply_integer(reply) < 0) {
        revocation_unavailable(c, err != MG_REDIS_OK ? err : MG_REDIS_E_REPLY);
        return;
    }
    if (mg_redis_reply_integer(reply) == 0) {
        mg_metrics_revocation(c->w->metrics, "not_revoked");
        front_begin(c);
        return;
    }
    mg_metrics_revocation(c->w->metrics, "revoked");
    mg_metrics_auth(c->w->metrics, c->route->path, MG_METRICS_DENY, "revoked");
    mg_log_info("%s: access token refused on %s: revoked", c->client_ip, c->route->path);
    c->decision = MG_AUDIT_DENY;
    c->reason = "revoked";
    c->refused_credential = true;
    mg_mcp_challenge(c->gen->mcp, c->route, MG_CHALLENGE_INVALID_TOKEN,
                     "The access token has been revoked.", NULL, NULL, &rep);
    send_mcp_reply(c, &rep);
}

/* True when the check runs (revocation_checked_cb goes on) or answered; false when the
 * token's issuer does not ask for it. */
static bool
revocation_check(mg_conn_t *c)
{
    const mg_conf_issuer_t *ci = revocation_issuer(c);
    const char *argv[3];
    char *key = NULL;
    mg_pending_t *p;

    if (ci == NULL)
        return false;
    if (c->claims->jti == NULL) {
        /* Nothing to look up: such a token cannot be revoked by jti (documented). */
        mg_metrics_revocation(c->w->metrics, "no_jti");
        return false;
    }
    if (c->w->redis == NULL) {
        revocation_unavailable(c, MG_REDIS_OK);
        return true;
    }
    if (asprintf(&key, "mg:revoked:%s", ci->url) < 0 || (p = pending_begin(c)) == NULL) {
        if (key != NULL)
            free(key);
        send_error(c, 500, "out of memory", NULL);
        return true;
    }
    argv[0] = "SISMEMBER";
    argv[1] = key;
    argv[2] = c->claims->jti;
    if (mg_redis_command_argv(c->w->redis, 3, argv, NULL, revocation_checked_cb, p) != 0) {
        pending_end(p);
        free(key);
        send_error(c, 500, "out of memory", NULL);
        return true;
    }
    free(key);
    return true;
}

/* The request is complete (head, and body if any): on a protected route the
 * front door decides, otherwise it goes straight upstream. */
static void
request_ready(mg_conn_t *c)
{
    if (c->claims == NULL) {
        admit(c); /* unprotected: route limits, and subject/client ones per client address */
        return;
    }
    if (revocation_check(c))
        return;
    front_begin(c);
}

/* A protected route's request whose token is not revoked: the front door. */
static void
front_begin(mg_conn_t *c)
{
    if (c->req.method == MG_HTTP_POST)
        front_post(c);
    else
        front_request(c);
}

/* The request's client address: the peer, unless the peer is a trusted_proxy of the
 * request's configuration and its X-Forwarded-For/Forwarded names one
 * (mg_mcp_forwarded_client(); docs/mcpgate.conf.5). Headers from any other peer are
 * ignored. Used for logs, the audit log, the X-Forwarded-For sent upstream and the
 * address-keyed rate limits; never to build a URL. */
static void
resolve_client(mg_conn_t *c)
{
    const mg_conf_t *conf = conf_of(c);
    char ip[INET6_ADDRSTRLEN];

    memcpy(c->client_ip, c->peer_ip, sizeof(c->peer_ip));
    if (conf->ntrusted_proxies == 0 || !mg_mcp_trusted_proxy(conf, &c->peer.sa))
        return;
    if (mg_mcp_forwarded_client(conf, c->req.headers, c->req.nheaders, ip, sizeof(ip)))
        memcpy(c->client_ip, ip, sizeof(ip));
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
        clock_gettime(CLOCK_REALTIME, &c->t_wall);
        c->upstream_ms = -1;
        mg_request_id_generate(c->request_id); /* replaced by a client's valid one below */
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
    /* A head still incomplete is parsed again from its start when more arrives.
     * Only a new line can change the verdict before the cap is reached, so bytes
     * without an LF wait: a client trickling a head byte by byte then costs a
     * parse per line (at most MG_HTTP_MAX_HEADERS + 2 of them), not per byte. */
    if (c->head_seen > 0 && n < cap && n > c->head_seen &&
        memchr(p + c->head_seen, '\n', n - c->head_seen) == NULL) {
        c->head_seen = n;
        return;
    }
    r = mg_http_parse_request_head(p, n, &c->req, &why);
    if (r == 0) {
        if (len >= cap)
            send_error(c, 431, "request head exceeds max_header_size", NULL);
        else
            c->head_seen = n;
        return;
    }
    c->head_seen = 0;
    if (r < 0) {
        /* A doubled credential is malformed (RFC 6750 section 3.1): say so in
         * the challenge too, although the route (and so its metadata URL) is
         * not known yet. */
        bool dup_auth = why != NULL && strcmp(why, "duplicate Authorization") == 0;
        send_error(c, -r, why ? why : "invalid request",
                   dup_auth ? "WWW-Authenticate: Bearer error=\"invalid_request\", "
                              "error_description=\"Send one Authorization header.\"\r\n"
                            : NULL);
        return;
    }
    /* Keep a private copy so the parsed pointers survive draining the input. */
    c->head = malloc((size_t)r);
    if (c->head == NULL) {
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    memcpy(c->head, p, (size_t)r);
    request_head_rebase(&c->req, p, c->head);
    evbuffer_drain(in, (size_t)r);
    c->keep_alive = c->req.keep_alive && !c->w->draining;
    c->bytes_in = (uint64_t)r;
    resolve_client(c);
    {
        /* Keep the client's X-Request-Id when it is short and safe (and only
         * one was sent), so that a trace crosses the gateway. */
        const mg_http_header_t *rid = NULL;
        size_t nrid = 0;
        for (size_t i = 0; i < c->req.nheaders; i++) {
            if (header_is(&c->req.headers[i], "X-Request-Id")) {
                rid = &c->req.headers[i];
                nrid++;
            }
        }
        if (nrid == 1)
            mg_request_id_assign(rid->value, rid->value_len, c->request_id);
    }

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
    {
        /* Protected-resource metadata and the other well-known documents are
         * answered by the gateway itself, before routing and without auth
         * (RFC 9728; SPEC D-05, D-17, D-20, D-22). */
        mg_mcp_reply_t rep = {0};
        const mg_conf_route_t *as_route = NULL;
        switch (mg_mcp_wellknown(c->gen->mcp, c->req.method, c->path, c->path_len, &rep,
                                 &as_route)) {
        case MG_MCP_WK_REPLY:
            send_mcp_reply(c, &rep);
            return;
        case MG_MCP_WK_AS_METADATA: {
            /* legacy_as_metadata: 2025-03-26 clients look for the AS metadata at
             * the server's origin (SPEC D-22): mirror what discovery fetched for
             * the route's first issuer, byte for byte. */
            const mg_conf_t *cf = c->gen->conf;
            size_t dlen = 0;
            char *doc = NULL;
            mg_mcp_reply_clear(&rep);
            if (as_route != NULL && as_route->nissuers > 0)
                doc = mg_keys_metadata(c->gen->keys, cf->issuers[as_route->issuers[0]].url, &dlen);
            if (doc == NULL) {
                send_error(c, 404, "no authorization server metadata here", NULL);
                return;
            }
            rep.status = 200;
            rep.body = doc;
            rep.body_len = dlen;
            rep.content_type = "application/json";
            rep.headers = strdup("Cache-Control: public, max-age=3600\r\n"
                                 "Access-Control-Allow-Origin: *\r\n");
            send_mcp_reply(c, &rep);
            return;
        }
        default:
            break;
        }
    }
    c->route = mg_conf_route_match(conf, c->path, c->path_len);
    if (c->route == NULL) {
        send_error(c, 404, "no route for this path", NULL);
        return;
    }
    c->route_idx = (size_t)(c->route - conf->routes);
    c->cors = mg_mcp_cors_headers(c->route, &c->req);
    if (c->req.method == MG_HTTP_OPTIONS) {
        /* The CORS preflight needs no token (SPEC H-16); without an Origin it
         * is a plain OPTIONS, answered with the methods (RFC 9110 9.3.7). */
        mg_mcp_reply_t rep = {0};
        if (mg_http_find_header(c->req.headers, c->req.nheaders, "Origin") != NULL) {
            mg_mcp_preflight(c->route, &c->req, &rep);
            /* the preflight has its own Access-Control-Allow-Origin: one only */
            free(c->cors);
            c->cors = NULL;
        } else {
            rep.status = 204;
            rep.headers = strdup("Allow: GET, POST, DELETE, OPTIONS\r\n");
        }
        send_mcp_reply(c, &rep);
        return;
    }
    if (c->req.method != MG_HTTP_POST && c->req.method != MG_HTTP_GET &&
        c->req.method != MG_HTTP_DELETE) {
        send_error(c, 405, "method not allowed", "Allow: GET, POST, DELETE, OPTIONS\r\n");
        return;
    }
    {
        /* A browser on another site must not drive the server (DNS rebinding,
         * SPEC H-09): checked before the token. */
        mg_mcp_reply_t rep = {0};
        if (!mg_mcp_check_origin_host(c->route, &c->req, &rep)) {
            c->decision = MG_AUDIT_DENY;
            c->reason = "origin";
            send_mcp_reply(c, &rep);
            return;
        }
    }
    if ((c->route->nissuers > 0 || c->route->napi_keys > 0) && !authenticate(c))
        return;
    after_auth(c);
}

/* The credentials passed (or the route needs none): read the body, then decide. */
static void
after_auth(mg_conn_t *c)
{
    const mg_conf_t *conf = conf_of(c);

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
        request_ready(c);
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

/* An introspection finished (from the worker's loop; the connection is alive: a dying one
 * cancels its check first): go on where authenticate() returning true goes on. */
static void
auth_done_cb(void *arg, mg_auth_result_t *res)
{
    mg_conn_t *c = arg;

    c->auth_wait = NULL;
    c->auth_given = res;
    client_reading(c, true); /* on_client_input may have paused it */
    if (authenticate(c))
        after_auth(c);
}

static void
on_body(mg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (!c->body_chunked) {
        size_t len = evbuffer_get_length(in);
        size_t n = len < c->body_left ? len : (size_t)c->body_left;
        evbuffer_remove_buffer(in, c->body, n);
        c->bytes_in += n;
        c->body_left -= n;
        if (c->body_left == 0) {
            c->body_done = true;
            request_ready(c);
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
        c->bytes_in += consumed;
        evbuffer_drain(in, consumed);
        if (r == MG_CHUNKED_DONE) {
            c->body_done = true;
            request_ready(c);
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

    if (c->auth_wait != NULL) {
        /* The token is being introspected: the body (or a pipelined request) waits in
         * the buffer, bounded; reading goes on otherwise so that a hang-up is seen. */
        if (evbuffer_get_length(in) > conf_of(c)->max_header_size + conf_of(c)->max_body_size)
            client_reading(c, false);
        return;
    }

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
            client_reading(c, false);
        break;
    }
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;

    if (c->auth_wait != NULL) {
        /* client_timeout ran out while the authorization server was being asked: its
         * problem, not the client's (SPEC C-14). */
        mg_auth_cancel(c->auth_wait);
        c->auth_wait = NULL;
        c->decision = MG_AUDIT_ERROR;
        c->reason = "introspection_timeout";
        mg_metrics_auth(c->w->metrics, c->route->path, MG_METRICS_ERROR, c->reason);
        send_error(c, 503, "the authorization server did not answer in time",
                   "Retry-After: 5\r\n");
        return;
    }

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
    case MG_CONN_WAIT_STORE:
        /* Cannot happen with Redis (its timeout is far shorter): be safe anyway. */
        send_error(c, 503, "shared state store did not answer", "Retry-After: 1\r\n");
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
    client_reading(c, true);
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
        "X-Request-Id", /* the client's one, when kept, is sent back below */
    };

    if (mg_http_is_hop_by_hop(h->name, h->name_len))
        return true;
    for (size_t i = 0; i < sizeof(strip) / sizeof(strip[0]); i++)
        if (header_is(h, strip[i]))
            return true;
    /* Identity headers are the gateway's word about the caller: a client's
     * own copies are never passed on (SPEC F-02). */
    if (mg_identity_is_client_header(c->route, h->name, h->name_len))
        return true;
    /* An API key is never passed on, in any route's api_key_header (Authorization is
     * stripped above). */
    for (size_t i = 0; i < c->gen->conf->nroutes; i++)
        if (c->gen->conf->routes[i].api_key_header != NULL &&
            header_is(h, c->gen->conf->routes[i].api_key_header))
            return true;
    return connection_lists(c->req.headers, c->req.nheaders, h);
}

static int
build_upstream_request(mg_conn_t *c)
{
    struct evbuffer *o = c->upreq;
    mg_head_out_t ho;
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
    mg_head_out_init(&ho, o);
    mg_head_out_add(&ho, c->req.method_str, c->req.method_len);
    MG_HEAD_OUT_LIT(&ho, " ");
    if (r->upstream_path[0] == '\0' && rest_len == 0)
        MG_HEAD_OUT_LIT(&ho, "/");
    mg_head_out_str(&ho, r->upstream_path);
    mg_head_out_add(&ho, rest, rest_len);
    if (c->query != NULL) {
        MG_HEAD_OUT_LIT(&ho, "?");
        mg_head_out_add(&ho, c->query, c->query_len);
    }
    MG_HEAD_OUT_LIT(&ho, " HTTP/1.1\r\nHost: ");
    mg_head_out_str(&ho, r->upstream_hostport);
    MG_HEAD_OUT_LIT(&ho, "\r\n");
    for (size_t i = 0; i < c->req.nheaders; i++) {
        const mg_http_header_t *h = &c->req.headers[i];
        if (strip_request_header(c, h))
            continue;
        mg_head_out_field(&ho, h->name, h->name_len, h->value, h->value_len);
    }
    MG_HEAD_OUT_LIT(&ho, "X-Request-Id: ");
    mg_head_out_str(&ho, c->request_id);
    MG_HEAD_OUT_LIT(&ho, "\r\n");
    {
        /* The vetted identity instead of the token (SPEC F-01, F-02), and the
         * route's own upstream credential when it has one. */
        mg_identity_signer_t *signer = c->gen->signers[c->route_idx];
        char *jwt = signer && c->claims
                        ? mg_identity_sign(signer, r, c->claims, (int64_t)time(NULL))
                        : NULL;
        char *ids = mg_identity_headers(r, c->claims, jwt);
        if (ids == NULL) {
            free(jwt);
            return -1;
        }
        mg_head_out_str(&ho, ids);
        free(ids);
        free(jwt);
    }
    /* One address, the client's (resolve_client()): a client's own X-Forwarded-For and the
     * proxy chain are not passed on, so the upstream never sees an address the gateway
     * did not vouch for. */
    MG_HEAD_OUT_LIT(&ho, "X-Forwarded-For: ");
    mg_head_out_str(&ho, c->client_ip);
    if (c->tls)
        MG_HEAD_OUT_LIT(&ho, "\r\nX-Forwarded-Proto: https\r\n");
    else
        MG_HEAD_OUT_LIT(&ho, "\r\nX-Forwarded-Proto: http\r\n");
    if (c->req.host != NULL)
        mg_head_out_field(&ho, "X-Forwarded-Host", 16, c->req.host, c->req.host_len);
    if (blen > 0 || c->req.method == MG_HTTP_POST || c->body_chunked ||
        c->req.content_length >= 0) {
        MG_HEAD_OUT_LIT(&ho, "Content-Length: ");
        mg_head_out_uint(&ho, blen, 10);
        MG_HEAD_OUT_LIT(&ho, "\r\n");
    }
    MG_HEAD_OUT_LIT(&ho, "Connection: keep-alive\r\n\r\n");
    mg_head_out_flush(&ho);
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
    /* A plain upstream gets the request written straight to its socket
     * (send_upstream): EV_WRITE only when that would block. */
    if (c->up->tls) {
        bufferevent_enable(c->up->bev, EV_READ | EV_WRITE);
    } else {
        /* Only once connected: while connecting, the bufferevent's write event is
         * what tells it the connection is up, and disabling EV_WRITE deletes it. */
        if (c->up->reused)
            bufferevent_disable(c->up->bev, EV_WRITE);
        mg_upstream_reading(c->up, true);
    }
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
    c->up->connected = true;
    clock_gettime(CLOCK_MONOTONIC, &c->t_up);
    set_state(c, MG_CONN_SEND_UPSTREAM);
    if (c->up->tls) {
        evbuffer_add(bufferevent_get_output(c->up->bev), evbuffer_pullup(c->upreq, -1),
                     evbuffer_get_length(c->upreq));
        return;
    }
    /* Once per upstream connection: a pooled one already has it. */
    if (!c->up->reused) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->up->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        mg_upstream_own_reads(c->up);
    }
    /* At the end of this loop pass (upsend_cb): the requests of every client that
     * was readable in this pass go out together, so an upstream on the same host
     * wakes once for all of them rather than once per request. */
    event_active(c->upsend, EV_WRITE, 0);
}

/* A plain upstream: the request goes straight to the socket, which nearly always
 * takes all of it, so there is no write event to add and delete again. <upreq>
 * stays whole for a retry. On EAGAIN or an error the rest goes through the
 * bufferevent, which then waits or reports the error (up_event_cb) as usual. */
static void
upsend_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;
    size_t len;
    const char *req;
    ssize_t sent;

    if (c->state != MG_CONN_SEND_UPSTREAM || c->up == NULL || c->up->tls)
        return; /* the exchange ended (client gone, timeout) before its turn */
    len = evbuffer_get_length(c->upreq);
    req = (const char *)evbuffer_pullup(c->upreq, -1);
    /* Bytes already queued on the connection go first (never the case for a
     * pooled connection, whose output is empty when released: belt and braces). */
    if (evbuffer_get_length(bufferevent_get_output(c->up->bev)) > 0)
        sent = 0;
    else
        sent = send(bufferevent_getfd(c->up->bev), req, len, MSG_NOSIGNAL);
    if (sent < 0)
        sent = 0;
    if ((size_t)sent == len) {
        set_state(c, MG_CONN_WAIT_RESPONSE);
        return;
    }
    evbuffer_add(bufferevent_get_output(c->up->bev), req + sent, len - (size_t)sent);
    bufferevent_enable(c->up->bev, EV_WRITE);
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
    case MG_CONN_WAIT_STORE:
        /* The head is held for the session bind and the upstream failed meanwhile. */
        send_error(c, 502, "upstream connection lost", NULL);
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
        header_is(h, "Transfer-Encoding") || header_is(h, "X-Request-Id"))
        return true;
    /* The gateway answers CORS itself: an upstream's own Access-Control-* next to ours
     * would give a browser two values and fail the request. Likewise its own HSTS. */
    if (c->cors != NULL && c->cors[0] != '\0' && h->name_len > 15 &&
        strncasecmp(h->name, "Access-Control-", 15) == 0)
        return true;
    if (c->tls && c->gen->conf->hsts_max_age > 0 && header_is(h, "Strict-Transport-Security"))
        return true;
    return connection_lists(c->resp->headers, c->resp->nheaders, h);
}

/* Upstream payload bytes to the client, framed as the response goes out. */
static void
emit_raw(mg_conn_t *c, const char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (len == 0)
        return;
    if (c->out_chunked)
        write_chunk_header(out, len);
    evbuffer_add(out, data, len);
    if (c->out_chunked)
        evbuffer_add(out, "\r\n", 2);
    c->bytes_out += len;
}

static void
sse_emit_cb(void *arg, const char *bytes, size_t len)
{
    emit_raw(arg, bytes, len);
}

/* Payload bytes through the list filter when one is set: SSE events are
 * passed on as each one completes, a JSON body is held until its end. */
static int
deliver(mg_conn_t *c, const char *data, size_t len)
{
    if (c->sse_rw != NULL)
        return mg_sse_rewriter_feed(c->sse_rw, data, len);
    if (c->json_buf != NULL) {
        if (evbuffer_get_length(c->json_buf) + len > MG_FILTER_JSON_MAX)
            return -1;
        return evbuffer_add(c->json_buf, data, len);
    }
    emit_raw(c, data, len);
    return 0;
}

static int
deliver_finish(mg_conn_t *c)
{
    if (c->sse_rw != NULL)
        return mg_sse_rewriter_finish(c->sse_rw);
    if (c->json_buf != NULL) {
        size_t len = evbuffer_get_length(c->json_buf);
        const char *in = len ? (const char *)evbuffer_pullup(c->json_buf, -1) : "";
        char *out = NULL;
        size_t olen = 0;
        int r = mg_list_filter_json(c->lfilter, in, len, &out, &olen, NULL);
        if (r < 0)
            return -1;
        if (r == 1)
            emit_raw(c, out, olen);
        else
            emit_raw(c, in, len);
        free(out);
    }
    return 0;
}

static void
session_ignore_cb(void *arg, mg_session_result_t res, const char *version)
{
    /* DELETE: forgetting the binding is best effort (it also expires). */
}

static bool front_response_filter(mg_conn_t *c);
static void emit_resp_head(mg_conn_t *c);

/* The session bind answered: the held response head goes out (or 502). */
static void
session_bound_cb(void *arg, mg_session_result_t res, const char *version)
{
    mg_conn_t *c = pending_end(arg);

    if (c == NULL)
        return; /* the client went away while the store was binding */
    if (res == MG_SESSION_FOREIGN) {
        mg_log_warn("upstream %s returned a session id already bound to another caller",
                    c->route->upstream_hostport);
        send_error(c, 502, "upstream returned another caller's session", NULL);
        return;
    }
    if (res != MG_SESSION_OWNED)
        mg_log_warn("session binding failed: later requests of this session will get 404");
    if (c->up != NULL)
        mg_upstream_reading(c->up, true);
    if (front_response_filter(c))
        emit_resp_head(c);
}

/* The upstream answered a request on a protected route: bind a new session to
 * the caller, forget an ended one, and set up list filtering. Returns 1 when
 * the response head may go out now, 0 when a refusal was sent, 2 when the
 * head is held until the session store has bound the new session (the store
 * may be Redis: every replica must know the binding before the client can use
 * it; session_bound_cb then sends the head). */
static int
front_response(mg_conn_t *c)
{
    bool ok = c->resp->status >= 200 && c->resp->status < 300;

    if (c->req.method == MG_HTTP_DELETE && ok && c->session_id != NULL)
        mg_session_remove(c->w->sessions, c->session_id, strlen(c->session_id), c->claims->iss,
                          c->claims->sub, session_ignore_cb, NULL);
    if (c->is_initialize && ok) {
        const mg_http_header_t *sid =
            mg_http_find_header(c->resp->headers, c->resp->nheaders, "Mcp-Session-Id");
        if (sid != NULL && mg_session_id_valid(sid->value, sid->value_len)) {
            const char *ver = c->rpc->msgs[0].requested_version;
            mg_pending_t *p = pending_begin(c);
            if (p == NULL) {
                send_error(c, 502, "out of memory", NULL);
                return 0;
            }
            /* Nothing more is read from the upstream until the head goes out. */
            mg_upstream_reading(c->up, false);
            mg_session_bind(c->w->sessions, sid->value, sid->value_len, c->claims->iss,
                            c->claims->sub, ver ? ver : c->version, c->route->session_ttl,
                            (uint64_t)time(NULL) * 1000, session_bound_cb, p);
            return 2;
        }
    }
    return front_response_filter(c) ? 1 : 0;
}

/* List filtering for the response. False when a refusal was sent. */
static bool
front_response_filter(mg_conn_t *c)
{
    if (c->lfilter == NULL || c->resp->status != 200 || c->up_body == MG_UP_BODY_NONE)
        return true;
    if (c->sse) {
        c->sse_rw = mg_sse_rewriter_new(0, mg_sse_list_filter_rewrite, c->lfilter, sse_emit_cb, c);
    } else {
        /* Whatever the Content-Type says, a list answer is read as JSON: a body
         * labelled otherwise (or not at all) could still be the list a client
         * reads, so it is filtered, and cut if it is not JSON (fails closed). */
        c->json_buf = evbuffer_new();
    }
    if (c->sse_rw == NULL && c->json_buf == NULL) {
        send_error(c, 500, "out of memory", NULL);
        return false;
    }
    return true;
}

static void
on_resp_head(mg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->up->bev);
    const char *why = NULL;
    const mg_http_header_t *ct;
    size_t len, n;
    char *p;
    int r;

    if (c->resp == NULL) {
        c->resp = malloc(sizeof(*c->resp));
        if (c->resp == NULL) {
            send_error(c, 502, "out of memory", NULL);
            return;
        }
    }
    for (;;) {
        len = evbuffer_get_length(in);
        if (len == 0)
            return;
        c->got_resp_byte = true;
        n = len < MG_RESP_HEAD_MAX ? len : MG_RESP_HEAD_MAX;
        p = (char *)evbuffer_pullup(in, (ev_ssize_t)n);
        r = mg_http_parse_response_head(p, n, c->resp, &why);
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
        if (c->resp->status >= 200)
            break;
        if (c->resp->status == 101) {
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
    headers_rebase(c->resp->headers, c->resp->nheaders, p, c->resp_buf);
    evbuffer_drain(in, (size_t)r);
    c->status = c->resp->status;

    /* Upstream framing (RFC 9112 6.3). */
    if (c->resp->status == 204 || c->resp->status == 304) {
        c->up_body = MG_UP_BODY_NONE;
    } else if (c->resp->chunked) {
        c->up_body = MG_UP_BODY_CHUNKED;
        mg_chunked_init(&c->up_dec, 0);
    } else if (c->resp->content_length >= 0) {
        c->up_body = c->resp->content_length > 0 ? MG_UP_BODY_LENGTH : MG_UP_BODY_NONE;
        c->up_left = (uint64_t)c->resp->content_length;
    } else {
        c->up_body = MG_UP_BODY_CLOSE;
    }
    c->up_reusable = c->resp->keep_alive && c->up_body != MG_UP_BODY_CLOSE;
    ct = mg_http_find_header(c->resp->headers, c->resp->nheaders, "Content-Type");
    c->sse =
        ct != NULL && ct->value_len >= 17 && strncasecmp(ct->value, "text/event-stream", 17) == 0;
    c->upstream_ms = elapsed_ms(&c->t_up);
    mg_metrics_upstream_latency(c->w->metrics, c->route->path,
                                (uint64_t)(c->upstream_ms * 1e6 > 0 ? c->upstream_ms * 1e6 : 0));
    if (c->sse && c->w->metrics != NULL) {
        mg_metric_add(c->w->metrics->sse_streams_open, 1);
        c->sse_counted = true;
    }
    if (c->claims != NULL) {
        int fr = front_response(c);
        if (fr != 1)
            return; /* refused, or held (session_bound_cb sends the head) */
    }
    emit_resp_head(c);
}

/* The response head to the client, then the body relay. */
static void
emit_resp_head(mg_conn_t *c)
{
    mg_head_out_t ho;

    if (c->w->draining)
        c->keep_alive = false;

    mg_head_out_init(&ho, bufferevent_get_output(c->bev));
    MG_HEAD_OUT_LIT(&ho, "HTTP/1.1 ");
    mg_head_out_uint(&ho, (uint64_t)c->resp->status, 10);
    MG_HEAD_OUT_LIT(&ho, " ");
    mg_head_out_str(&ho, mg_reply_reason(c->resp->status));
    MG_HEAD_OUT_LIT(&ho, "\r\n");
    for (size_t i = 0; i < c->resp->nheaders; i++) {
        const mg_http_header_t *h = &c->resp->headers[i];
        if (strip_response_header(c, h))
            continue;
        mg_head_out_field(&ho, h->name, h->name_len, h->value, h->value_len);
    }
    if (c->sse) {
        if (!mg_http_find_header(c->resp->headers, c->resp->nheaders, "X-Accel-Buffering"))
            MG_HEAD_OUT_LIT(&ho, "X-Accel-Buffering: no\r\n");
        if (!mg_http_find_header(c->resp->headers, c->resp->nheaders, "Cache-Control"))
            MG_HEAD_OUT_LIT(&ho, "Cache-Control: no-cache\r\n");
    }
    if (c->resp->status == 204) {
        /* no framing header at all */
    } else if (c->resp->status == 304) {
        if (c->resp->content_length >= 0) {
            MG_HEAD_OUT_LIT(&ho, "Content-Length: ");
            mg_head_out_uint(&ho, (uint64_t)c->resp->content_length, 10);
            MG_HEAD_OUT_LIT(&ho, "\r\n");
        }
    } else if ((c->up_body == MG_UP_BODY_LENGTH && c->sse_rw == NULL && c->json_buf == NULL) ||
               c->up_body == MG_UP_BODY_NONE) {
        /* A filtered body has a length of its own: it goes out chunked. */
        MG_HEAD_OUT_LIT(&ho, "Content-Length: ");
        mg_head_out_uint(&ho, c->up_left, 10);
        MG_HEAD_OUT_LIT(&ho, "\r\n");
    } else if (c->req.version_minor >= 1) {
        c->out_chunked = true;
        MG_HEAD_OUT_LIT(&ho, "Transfer-Encoding: chunked\r\n");
    } else {
        c->keep_alive = false; /* HTTP/1.0: the body ends when we close */
    }
    MG_HEAD_OUT_LIT(&ho, "X-Request-Id: ");
    mg_head_out_str(&ho, c->request_id);
    MG_HEAD_OUT_LIT(&ho, "\r\n");
    if (c->cors != NULL)
        mg_head_out_str(&ho, c->cors);
    {
        char hsts[64];
        mg_head_out_str(&ho, hsts_line(c, hsts, sizeof(hsts)));
    }
    if (c->keep_alive)
        MG_HEAD_OUT_LIT(&ho, "Connection: keep-alive\r\n\r\n");
    else
        MG_HEAD_OUT_LIT(&ho, "Connection: close\r\n\r\n");
    mg_head_out_flush(&ho);
    set_state(c, MG_CONN_RELAY_BODY);
    relay(c);
}

static void
write_chunk_header(struct evbuffer *out, size_t n)
{
    mg_head_out_t ho;

    mg_head_out_init(&ho, out);
    mg_head_out_uint(&ho, n, 16);
    MG_HEAD_OUT_LIT(&ho, "\r\n");
    mg_head_out_flush(&ho);
}

static void
relay_done(mg_conn_t *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    /* Whether the connection is at a request boundary (nothing unread, nothing
     * unsent) is mg_upstream_release()'s to check: it closes it otherwise. */
    bool reuse = c->up_reusable && c->up != NULL;

    if (deliver_finish(c) != 0) {
        send_error(c, 502, "cannot filter the upstream response", NULL); /* cuts the stream */
        return;
    }
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
        if (c->sse_rw != NULL || c->json_buf != NULL) {
            if (len > 0 && deliver(c, (const char *)evbuffer_pullup(in, (ev_ssize_t)len), len) != 0) {
                send_error(c, 502, "cannot filter the upstream response", NULL);
                return;
            }
            evbuffer_drain(in, len);
        } else {
            evbuffer_remove_buffer(in, out, len);
            c->bytes_out += len;
        }
        c->up_left -= len;
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
            if (r == MG_CHUNKED_DATA && dlen > 0 && deliver(c, data, dlen) != 0) {
                send_error(c, 502, "cannot filter the upstream response", NULL);
                return;
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
            if (deliver(c, (const char *)evbuffer_pullup(in, (ev_ssize_t)len), len) != 0) {
                send_error(c, 502, "cannot filter the upstream response", NULL);
                return;
            }
            evbuffer_drain(in, len);
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
        mg_upstream_reading(c->up, false);
        bufferevent_setwatermark(c->bev, EV_WRITE, MG_RELAY_HIGH_WATER / 2, 0);
    }
}

/* ---- lifecycle ---- */

static void
conn_mark_dead(mg_conn_t *c)
{
    if (c->state == MG_CONN_DEAD)
        return;
    /* A pending introspection must not call back into a connection being freed. */
    mg_auth_cancel(c->auth_wait);
    c->auth_wait = NULL;
    set_state(c, MG_CONN_DEAD);
    client_reading(c, false);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->reap, EV_READ, 0);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_conn_t *c = arg;
    mg_worker_t *w = c->w;

    pending_cancel(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    mg_connlimit_release(w->climit, &c->climit);
    mg_auth_cancel(c->auth_wait); /* normally done by conn_mark_dead already */
    c->auth_wait = NULL;
    if (c->sse_counted && w->metrics != NULL)
        mg_metric_add(w->metrics->sse_streams_open, -1);
    if (w->metrics != NULL)
        mg_metric_add(w->metrics->connections_open, -1);
    up_detach(c, false);
    if (c->rd)
        event_free(c->rd); /* before the bufferevent closes the socket it watches */
    if (c->bev) {
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        bufferevent_free(c->bev);
    }
    event_free(c->tmo);
    event_free(c->ka);
    event_free(c->kick);
    event_free(c->reap);
    if (c->flush)
        event_free(c->flush);
    event_free(c->upsend);
    evbuffer_free(c->body);
    evbuffer_free(c->upreq);
    free(c->head);
    free(c->path);
    free(c->resp_buf);
    free(c->resp);
    mg_jwt_claims_free(c->claims);
    mg_rpc_body_free(c->rpc);
    mg_sse_rewriter_free(c->sse_rw);
    mg_list_filter_free(c->lfilter);
    if (c->json_buf != NULL)
        evbuffer_free(c->json_buf);
    free(c->cors);
    free(c->session_id);
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
    char ip[INET6_ADDRSTRLEN] = "unknown";
    mg_climit_ticket_t ticket;

    if (w->draining) {
        evutil_closesocket(fd);
        return;
    }
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    /* Over a limit: closed before anything is read or allocated, the cheapest answer to a
     * flood (and the only one a TLS listener could give before a handshake). */
    if (!mg_connlimit_acquire(w->climit, w->gen->conf, (size_t)(l - w->listeners), l->text, sa, ip,
                              &ticket)) {
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* SSE events go out at once */
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->w = w;
    c->tls = l->tls;
    c->climit = ticket;
    c->gen = mg_gen_ref(w->gen);
    c->state = MG_CONN_READ_HEAD;
    memcpy(c->client_ip, ip, sizeof(ip));
    memcpy(c->peer_ip, ip, sizeof(ip));
    if (sa->sa_family == AF_INET)
        c->peer.in = *(struct sockaddr_in *)(void *)sa;
    else if (sa->sa_family == AF_INET6)
        c->peer.in6 = *(struct sockaddr_in6 *)(void *)sa;
    c->tmo = evtimer_new(w->base, timeout_cb, c);
    c->ka = evtimer_new(w->base, keepalive_cb, c);
    c->kick = event_new(w->base, -1, 0, kick_cb, c);
    c->reap = event_new(w->base, -1, 0, reap_cb, c);
    c->upsend = event_new(w->base, -1, 0, upsend_cb, c);
    c->body = evbuffer_new();
    c->upreq = evbuffer_new();
    if (!c->tmo || !c->ka || !c->kick || !c->reap || !c->upsend || !c->body || !c->upreq)
        goto fail;
    if (c->tls) {
        ssl = SSL_new(listener_ctx(w, l));
        if (ssl == NULL)
            goto fail;
        c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
        if (c->bev != NULL && !mg_tls_conn_tune(c->bev)) {
            fd = -1; /* the bufferevent owns the socket and the SSL now */
            ssl = NULL;
            goto fail;
        }
    } else {
        c->bev = bufferevent_socket_new(w->base, fd, opts);
    }
    if (c->bev == NULL)
        goto fail;
    fd = -1;
    ssl = NULL;
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    if (c->tls) {
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    } else {
        c->flush = event_new(w->base, -1, 0, flush_cb, c);
        c->rd = event_new(w->base, bufferevent_getfd(c->bev), EV_READ | EV_PERSIST,
                          client_sock_read_cb, c);
        if (c->flush == NULL || c->rd == NULL ||
            evbuffer_add_cb(bufferevent_get_output(c->bev), client_out_cb, c) == NULL)
            goto fail;
        bufferevent_disable(c->bev, EV_WRITE); /* a new bufferevent starts with EV_WRITE on */
        client_reading(c, true);
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    if (w->metrics != NULL)
        mg_metric_add(w->metrics->connections_open, 1);
    set_state(c, MG_CONN_READ_HEAD);
    return;
fail:
    mg_log_error("cannot set up a client connection: out of memory");
    mg_connlimit_release(w->climit, &ticket);
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
        if (c->flush)
            event_free(c->flush);
        if (c->upsend)
            event_free(c->upsend);
        if (c->rd)
            event_free(c->rd);
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
