/* http_client.c -- outbound HTTP/1.1 over TLS on a libevent base: resolve, connect, verify, frame.
 */
#include "config.h"

#include "mcpgate/http_client.h"
#include "mcpgate/http_parse.h"
#include "mcpgate/url.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Where the request is. Each state names what we wait for. */
enum req_state {
    ST_RESOLVING = 0,
    ST_CONNECTING, /* TCP connect, then the TLS handshake for https */
    ST_HEAD,       /* the response head */
    ST_BODY,
};

enum body_mode {
    BODY_NONE = 0, /* HEAD, 1xx, 204, 304 */
    BODY_LENGTH,
    BODY_CHUNKED,
    BODY_CLOSE, /* delimited by the server closing (RFC 9112 6.3, rule 8) */
};

/* The resolver may call back after we are gone (evdns_getaddrinfo_cancel()
 * reports EVUTIL_EAI_CANCEL later, from the loop), so it gets this small
 * ticket instead of the request: the request detaches itself by clearing
 * t->req, and hands over the resolver it created, to be freed once the
 * resolver has let go of the ticket. */
typedef struct dns_ticket {
    mg_http_client_req_t *req;
    struct evdns_base *own_dns;
    struct event_base *base;
} dns_ticket_t;

struct mg_http_client_req {
    struct event_base *base;
    mg_http_client_opts_t opts;
    mg_http_client_cb cb;
    void *arg;

    SSL_CTX *ssl_ctx; /* one reference, NULL for http */
    struct evdns_base *own_dns;
    dns_ticket_t *ticket;
    struct evdns_getaddrinfo_request *dns_req;
    struct evutil_addrinfo *ai; /* the resolved addresses of the current hop */
    struct evutil_addrinfo *ai_next;
    int attempts;             /* connects started for this hop */
    bool skipped_nonloopback; /* allow_http: an address was refused */
    mg_http_client_error_t last_err;
    char last_msg[512];

    struct bufferevent *bev;
    struct event *connect_timer;
    struct event *total_timer;
    struct event *done_ev;

    /* The request, kept for redirects. */
    char *method;
    char *headers; /* "Name: value\r\n"..., validated */
    char *body;
    size_t body_len;
    mg_url_t url;
    int redirects;

    /* The response. */
    enum req_state state;
    enum body_mode mode;
    uint64_t remaining;
    mg_chunked_t chunked;
    mg_http_response_head_t head;
    struct evbuffer *resp;
    int status;
    int interim; /* 1xx heads skipped */
    char *content_type, *cache_control, *expires, *date, *location;

    bool finished; /* the result is set and done_ev is active */
    mg_http_client_error_t err;
    char msg[512];
};

static void start_hop(mg_http_client_req_t *req);
static void try_next_address(mg_http_client_req_t *req);

const char *
mg_http_client_strerror(mg_http_client_error_t err)
{
    switch (err) {
    case MG_HTTPC_OK:
        return "ok";
    case MG_HTTPC_ERR_REQUEST:
        return "bad request";
    case MG_HTTPC_ERR_SCHEME:
        return "refused scheme";
    case MG_HTTPC_ERR_DNS:
        return "name resolution failed";
    case MG_HTTPC_ERR_CONNECT:
        return "connect failed";
    case MG_HTTPC_ERR_TLS:
        return "TLS failure";
    case MG_HTTPC_ERR_TIMEOUT:
        return "timeout";
    case MG_HTTPC_ERR_TOO_LARGE:
        return "response too large";
    case MG_HTTPC_ERR_BAD_RESPONSE:
        return "bad response";
    case MG_HTTPC_ERR_REDIRECT:
        return "redirect refused";
    case MG_HTTPC_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown error";
}

void
mg_http_client_opts_init(mg_http_client_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = MG_HTTP_CLIENT_DEFAULT_CONNECT_MS;
    o->total_timeout_ms = MG_HTTP_CLIENT_DEFAULT_TOTAL_MS;
    o->max_response = MG_HTTP_CLIENT_DEFAULT_MAX_RESPONSE;
    o->max_redirects = MG_HTTP_CLIENT_DEFAULT_MAX_REDIRECTS;
}

SSL_CTX *
mg_http_client_ssl_ctx_new(const char *ca_file, const char **why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    if (ctx == NULL) {
        *why = "SSL_CTX_new failed";
        goto fail;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        *why = "cannot require TLS 1.2";
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL) {
        /* The issuer's ca_file replaces the system store: these anchors only. */
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            *why = "cannot load ca_file";
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        *why = "cannot load the system trust store";
        goto fail;
    }
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- teardown ---------------------------------------------------------- */

static void
free_dns_later(evutil_socket_t fd, short what, void *arg)
{
    evdns_base_free(arg, 0);
}

static void
ticket_release(dns_ticket_t *t)
{
    /* Called from the resolver's callback: its evdns_base cannot be freed
     * while it is on the stack, so that waits for the next loop turn. */
    if (t->own_dns != NULL) {
        struct timeval zero = {0, 0};
        if (event_base_once(t->base, -1, EV_TIMEOUT, free_dns_later, t->own_dns, &zero) != 0)
            evdns_base_free(t->own_dns, 0); /* cannot defer: better now than a leak */
    }
    free(t);
}

/* Stop a pending name lookup; its callback will find the ticket detached. */
static void
detach_dns(mg_http_client_req_t *req)
{
    if (req->ticket != NULL) {
        dns_ticket_t *t = req->ticket;
        struct evdns_getaddrinfo_request *r = req->dns_req;
        t->req = NULL;
        t->own_dns = req->own_dns; /* the ticket frees it once the resolver let go */
        req->own_dns = NULL;
        req->ticket = NULL;
        req->dns_req = NULL;
        if (r != NULL)
            evdns_getaddrinfo_cancel(r);
    }
}

static void
close_conn(mg_http_client_req_t *req)
{
    if (req->bev != NULL) {
        /* Safe inside the bufferevent's own callbacks: libevent holds a
         * reference while it runs them and frees on the way out. */
        bufferevent_free(req->bev);
        req->bev = NULL;
    }
    if (req->connect_timer != NULL)
        evtimer_del(req->connect_timer);
    ERR_clear_error();
}

static void
reset_response(mg_http_client_req_t *req)
{
    req->state = ST_RESOLVING;
    req->mode = BODY_NONE;
    req->remaining = 0;
    req->status = 0;
    req->interim = 0;
    if (req->resp != NULL)
        evbuffer_drain(req->resp, evbuffer_get_length(req->resp));
    free(req->content_type);
    free(req->cache_control);
    free(req->expires);
    free(req->date);
    free(req->location);
    req->content_type = req->cache_control = req->expires = req->date = req->location = NULL;
}

static void
req_free(mg_http_client_req_t *req)
{
    if (req == NULL)
        return;
    close_conn(req);
    detach_dns(req);
    if (req->own_dns != NULL)
        evdns_base_free(req->own_dns, 0);
    if (req->ai != NULL)
        evutil_freeaddrinfo(req->ai);
    if (req->connect_timer != NULL)
        event_free(req->connect_timer);
    if (req->total_timer != NULL)
        event_free(req->total_timer);
    if (req->done_ev != NULL)
        event_free(req->done_ev);
    SSL_CTX_free(req->ssl_ctx);
    reset_response(req);
    if (req->resp != NULL)
        evbuffer_free(req->resp);
    mg_url_clear(&req->url);
    free(req->method);
    free(req->headers);
    free(req->body);
    free(req);
}

/* Record the outcome and hand it to the loop: the callback runs from
 * done_cb, never from inside libevent or OpenSSL callbacks of this request,
 * so that it may free anything it likes. Only the first call counts. */
static void finish(mg_http_client_req_t *req, mg_http_client_error_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
finish(mg_http_client_req_t *req, mg_http_client_error_t err, const char *fmt, ...)
{
    va_list ap;

    if (req->finished)
        return;
    req->finished = true;
    req->err = err;
    va_start(ap, fmt);
    vsnprintf(req->msg, sizeof(req->msg), fmt, ap);
    va_end(ap);
    close_conn(req);
    detach_dns(req);
    evtimer_del(req->total_timer);
    event_active(req->done_ev, EV_TIMEOUT, 0);
}

static char *
dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_http_client_req_t *req = arg;
    mg_http_client_result_t res;
    char origin[MG_URL_MAX_HOST + 32];
    char *final_url = NULL;
    int n;

    memset(&res, 0, sizeof(res));
    res.error = req->err;
    res.message = req->msg;
    res.status = req->status;
    res.redirects = req->redirects;
    if (req->err == MG_HTTPC_OK) {
        size_t len = evbuffer_get_length(req->resp);
        res.body = malloc(len + 1);
        if (res.body == NULL) {
            res.error = MG_HTTPC_ERR_INTERNAL;
            res.message = "out of memory";
        } else {
            evbuffer_remove(req->resp, res.body, len);
            res.body[len] = '\0';
            res.body_len = len;
        }
    }
    res.content_type = req->content_type;
    res.cache_control = req->cache_control;
    res.expires = req->expires;
    res.date = req->date;
    res.location = req->location;
    n = mg_url_format_origin(&req->url, origin, sizeof(origin));
    if (n >= 0 && req->url.path != NULL &&
        (final_url = malloc((size_t)n + strlen(req->url.path) + 1)) != NULL)
        sprintf(final_url, "%s%s", origin, req->url.path);
    res.final_url = final_url ? final_url : "";
    req->cb(&res, req->arg);
    free(res.body);
    free(final_url);
    req_free(req);
}

static void
total_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_http_client_req_t *req = arg;
    finish(req, MG_HTTPC_ERR_TIMEOUT, "request timed out after %d ms", req->opts.total_timeout_ms);
}

/* ---- the response ------------------------------------------------------ */

static int
keep_headers(mg_http_client_req_t *req)
{
    const mg_http_header_t *h = req->head.headers;
    size_t n = req->head.nheaders;
    const mg_http_header_t *f;
    struct {
        const char *name;
        char **dst;
    } one[] = {
        {"Content-Type", &req->content_type},
        {"Expires", &req->expires},
        {"Date", &req->date},
        {"Location", &req->location},
    };
    size_t cc_len = 0;

    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
        if ((f = mg_http_find_header(h, n, one[i].name)) != NULL &&
            (*one[i].dst = dup_n(f->value, f->value_len)) == NULL)
            return -1;
    }
    /* Cache-Control is a list: field lines combine with ", " (RFC 9110 5.3). */
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 13 && strncasecmp(h[i].name, "Cache-Control", 13) == 0)
            cc_len += h[i].value_len + 2;
    if (cc_len > 0) {
        char *p = malloc(cc_len + 1);
        size_t off = 0;
        if (p == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (h[i].name_len == 13 && strncasecmp(h[i].name, "Cache-Control", 13) == 0) {
                if (off > 0) {
                    memcpy(p + off, ", ", 2);
                    off += 2;
                }
                memcpy(p + off, h[i].value, h[i].value_len);
                off += h[i].value_len;
            }
        }
        p[off] = '\0';
        req->cache_control = p;
    }
    return 0;
}

static bool
is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Follow a same-origin redirect (RFC 9110 15.4), or end the request. */
static void
follow_redirect(mg_http_client_req_t *req)
{
    mg_url_t next;
    const char *why = NULL;
    char origin[MG_URL_MAX_HOST + 32];

    if (req->redirects >= req->opts.max_redirects) {
        finish(req, MG_HTTPC_ERR_REDIRECT, "too many redirects (limit %d)",
               req->opts.max_redirects);
        return;
    }
    if (mg_url_resolve(&req->url, req->location, strlen(req->location), &next, &why) != 0) {
        finish(req, MG_HTTPC_ERR_REDIRECT, "redirect with a bad Location: %s", why);
        return;
    }
    if (!mg_url_same_origin(&req->url, &next)) {
        if (mg_url_format_origin(&next, origin, sizeof(origin)) < 0)
            snprintf(origin, sizeof(origin), "?");
        mg_url_clear(&next);
        finish(req, MG_HTTPC_ERR_REDIRECT, "redirect to another origin refused (%s)", origin);
        return;
    }
    /* 303, and 301/302 after a POST, are retried as GET without the body
     * (RFC 9110 15.4.2-4); 307 and 308 keep method and body. */
    if ((req->status == 303 && strcmp(req->method, "HEAD") != 0) ||
        ((req->status == 301 || req->status == 302) && strcmp(req->method, "POST") == 0)) {
        char *get = strdup("GET");
        if (get == NULL) {
            mg_url_clear(&next);
            finish(req, MG_HTTPC_ERR_INTERNAL, "out of memory");
            return;
        }
        free(req->method);
        req->method = get;
        free(req->body);
        req->body = NULL;
        req->body_len = 0;
    }
    close_conn(req);
    mg_url_clear(&req->url);
    req->url = next;
    req->redirects++;
    reset_response(req);
    start_hop(req);
}

static void
succeed(mg_http_client_req_t *req)
{
    finish(req, MG_HTTPC_OK, "%s", "");
}

/* Parse the head once it is complete; returns true when the caller should
 * go on with the body. */
static bool
on_head(mg_http_client_req_t *req, struct evbuffer *in, bool eof)
{
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        size_t look = avail < MG_HTTP_CLIENT_MAX_HEAD ? avail : MG_HTTP_CLIENT_MAX_HEAD;
        const char *why = NULL;
        const char *p;
        int r;

        if (look == 0) {
            if (eof)
                finish(req, MG_HTTPC_ERR_BAD_RESPONSE, "connection closed before a response");
            return false;
        }
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        if (p == NULL) {
            finish(req, MG_HTTPC_ERR_INTERNAL, "out of memory");
            return false;
        }
        r = mg_http_parse_response_head(p, look, &req->head, &why);
        if (r == 0) {
            if (avail >= MG_HTTP_CLIENT_MAX_HEAD)
                finish(req, MG_HTTPC_ERR_TOO_LARGE, "response head larger than %d bytes",
                       MG_HTTP_CLIENT_MAX_HEAD);
            else if (eof)
                finish(req, MG_HTTPC_ERR_BAD_RESPONSE,
                       "connection closed in the middle of the response head");
            return false;
        }
        if (r < 0) {
            finish(req, MG_HTTPC_ERR_BAD_RESPONSE, "bad response head: %s", why ? why : "syntax");
            return false;
        }
        if (req->head.status >= 100 && req->head.status < 200) {
            /* Interim responses carry no body; 101 would switch protocols,
             * which we never asked for. Bounded: a server could send many. */
            if (req->head.status == 101 || ++req->interim > 8) {
                finish(req, MG_HTTPC_ERR_BAD_RESPONSE, "unexpected %d response", req->head.status);
                return false;
            }
            evbuffer_drain(in, (size_t)r);
            continue;
        }
        req->status = req->head.status;
        if (keep_headers(req) != 0) {
            finish(req, MG_HTTPC_ERR_INTERNAL, "out of memory");
            return false;
        }
        evbuffer_drain(in, (size_t)r);
        break;
    }
    if (is_redirect(req->status) && req->location != NULL) {
        follow_redirect(req);
        return false;
    }
    /* RFC 9112 6.3: the body length, in that order. */
    if (strcmp(req->method, "HEAD") == 0 || req->status == 204 || req->status == 304) {
        req->mode = BODY_NONE;
    } else if (req->head.chunked) {
        req->mode = BODY_CHUNKED;
        mg_chunked_init(&req->chunked, req->opts.max_response);
    } else if (req->head.content_length >= 0) {
        if ((uint64_t)req->head.content_length > req->opts.max_response) {
            finish(req, MG_HTTPC_ERR_TOO_LARGE,
                   "response body of %" PRId64 " bytes exceeds the limit of %zu",
                   req->head.content_length, req->opts.max_response);
            return false;
        }
        req->mode = BODY_LENGTH;
        req->remaining = (uint64_t)req->head.content_length;
    } else {
        req->mode = BODY_CLOSE;
    }
    req->state = ST_BODY;
    return true;
}

/* Move what arrived into the body; <eof> when the server closed, <clean>
 * when that close is trustworthy (for TLS: close_notify was received). */
static void
process(mg_http_client_req_t *req, bool eof, bool clean)
{
    struct evbuffer *in = bufferevent_get_input(req->bev);

    if (req->state == ST_HEAD && !on_head(req, in, eof))
        return;
    switch (req->mode) {
    case BODY_NONE:
        succeed(req);
        return;
    case BODY_LENGTH: {
        size_t avail = evbuffer_get_length(in);
        size_t take = avail < req->remaining ? avail : (size_t)req->remaining;
        if (take > 0 && evbuffer_remove_buffer(in, req->resp, take) != (int)take) {
            finish(req, MG_HTTPC_ERR_INTERNAL, "out of memory");
            return;
        }
        req->remaining -= take;
        if (req->remaining == 0)
            succeed(req);
        else if (eof)
            finish(req, MG_HTTPC_ERR_BAD_RESPONSE,
                   "connection closed %" PRIu64 " bytes before the end of the body",
                   req->remaining);
        return;
    }
    case BODY_CHUNKED:
        /* Each turn consumes at least one byte or ends: bounded by the input. */
        while (evbuffer_get_length(in) > 0) {
            struct evbuffer_iovec v;
            size_t consumed = 0, dlen = 0;
            const char *data = NULL, *why = NULL;
            mg_chunked_result_t r;

            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            r = mg_chunked_feed(&req->chunked, v.iov_base, v.iov_len, &consumed, &data, &dlen,
                                &why);
            if (r == MG_CHUNKED_DATA && dlen > 0 && evbuffer_add(req->resp, data, dlen) != 0) {
                finish(req, MG_HTTPC_ERR_INTERNAL, "out of memory");
                return;
            }
            if (r == MG_CHUNKED_ERROR) {
                finish(req, MG_HTTPC_ERR_BAD_RESPONSE, "bad chunked body: %s",
                       why ? why : "syntax");
                return;
            }
            if (r == MG_CHUNKED_TOO_LARGE) {
                finish(req, MG_HTTPC_ERR_TOO_LARGE, "response body exceeds the limit of %zu",
                       req->opts.max_response);
                return;
            }
            evbuffer_drain(in, consumed);
            if (r == MG_CHUNKED_DONE) {
                succeed(req);
                return;
            }
            if (consumed == 0 && r != MG_CHUNKED_DATA)
                break; /* the decoder wants more than this extent: wait */
        }
        if (eof)
            finish(req, MG_HTTPC_ERR_BAD_RESPONSE, "connection closed inside the chunked body");
        return;
    case BODY_CLOSE: {
        size_t have = evbuffer_get_length(req->resp), avail = evbuffer_get_length(in);
        if (have + avail > req->opts.max_response) {
            finish(req, MG_HTTPC_ERR_TOO_LARGE, "response body exceeds the limit of %zu",
                   req->opts.max_response);
            return;
        }
        if (avail > 0 && evbuffer_remove_buffer(in, req->resp, avail) != (int)avail) {
            finish(req, MG_HTTPC_ERR_INTERNAL, "out of memory");
            return;
        }
        if (eof && clean)
            succeed(req);
        else if (eof)
            finish(req, MG_HTTPC_ERR_BAD_RESPONSE,
                   "connection closed without TLS close_notify: body may be truncated");
        return;
    }
    }
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
    mg_http_client_req_t *req = arg;
    if (req->state == ST_CONNECTING) /* data before BEV_EVENT_CONNECTED cannot happen */
        return;
    process(req, false, false);
}

/* ---- connecting -------------------------------------------------------- */

static void
describe_addr(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        snprintf(buf, cap, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(buf, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(buf, cap, "?");
    }
}

/* A connect attempt failed before the connection was usable: TCP-level
 * failures move on to the next address, TLS failures end the request (a
 * bad certificate is not fixed by another address of the same name). */
static void
attempt_failed(mg_http_client_req_t *req, mg_http_client_error_t err, const char *msg)
{
    close_conn(req);
    if (err == MG_HTTPC_ERR_TLS) {
        finish(req, err, "%s", msg);
        return;
    }
    req->last_err = err;
    snprintf(req->last_msg, sizeof(req->last_msg), "%s", msg);
    try_next_address(req);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
    mg_http_client_req_t *req = arg;
    int sock_err = EVUTIL_SOCKET_ERROR();
    char msg[512];

    if (sock_err == EAGAIN || sock_err == EWOULDBLOCK || sock_err == EINTR)
        sock_err = 0; /* left over from a non-blocking read or write, not the cause */

    if (what & BEV_EVENT_CONNECTED) {
        evtimer_del(req->connect_timer);
        req->state = ST_HEAD;
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (req->state == ST_CONNECTING) {
        SSL *ssl = req->url.https ? bufferevent_openssl_get_ssl(bev) : NULL;
        unsigned long e = req->url.https ? bufferevent_get_openssl_error(bev) : 0;
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (vr != X509_V_OK) {
            snprintf(msg, sizeof(msg), "certificate verification failed for %s: %s", req->url.host,
                     X509_verify_cert_error_string(vr));
            attempt_failed(req, MG_HTTPC_ERR_TLS, msg);
        } else if (e != 0 && ERR_reason_error_string(e) != NULL) {
            snprintf(msg, sizeof(msg), "TLS handshake with %s failed: %s", req->url.host,
                     ERR_reason_error_string(e));
            attempt_failed(req, MG_HTTPC_ERR_TLS, msg);
        } else if (req->url.https && sock_err == 0) {
            /* No OpenSSL reason (libevent reports SSL_ERROR_SYSCALL as a
             * bare code) and no socket error: the peer closed. */
            snprintf(msg, sizeof(msg), "connection closed during the TLS handshake with %s",
                     req->url.host);
            attempt_failed(req, MG_HTTPC_ERR_TLS, msg);
        } else {
            snprintf(msg, sizeof(msg), "connect to %s failed: %s", req->url.host,
                     sock_err ? evutil_socket_error_to_string(sock_err) : "connection closed");
            attempt_failed(req, MG_HTTPC_ERR_CONNECT, msg);
        }
        return;
    }
    /* Connected: a close ends framing for close-delimited bodies. For TLS a
     * close without close_notify is reported by libevent as an error. */
    if (what & BEV_EVENT_ERROR) {
        ERR_clear_error();
        if (req->state == ST_HEAD && evbuffer_get_length(bufferevent_get_input(bev)) == 0) {
            finish(req, MG_HTTPC_ERR_BAD_RESPONSE, "connection error before a response: %s",
                   sock_err ? evutil_socket_error_to_string(sock_err) : "reset");
            return;
        }
        process(req, true, false);
        return;
    }
    process(req, true, true);
}

static void
connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_http_client_req_t *req = arg;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s to %s timed out after %d ms",
             req->url.https ? "connect or TLS handshake" : "connect", req->url.host,
             req->opts.connect_timeout_ms);
    attempt_failed(req, MG_HTTPC_ERR_TIMEOUT, msg);
}

static struct evbuffer *
build_request(mg_http_client_req_t *req)
{
    struct evbuffer *out = evbuffer_new();
    char host[MG_URL_MAX_HOST + 16];

    if (out == NULL)
        return NULL;
    if (mg_url_format_host(&req->url, host, sizeof(host)) < 0)
        goto fail;
    if (evbuffer_add_printf(out,
                            "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s/%s\r\n"
                            "Connection: close\r\n",
                            req->method, req->url.path, host, PACKAGE_NAME, PACKAGE_VERSION) < 0)
        goto fail;
    if (req->body != NULL && evbuffer_add_printf(out, "Content-Length: %zu\r\n", req->body_len) < 0)
        goto fail;
    if (req->headers != NULL && evbuffer_add(out, req->headers, strlen(req->headers)) != 0)
        goto fail;
    if (evbuffer_add(out, "\r\n", 2) != 0)
        goto fail;
    if (req->body != NULL && req->body_len > 0 && evbuffer_add(out, req->body, req->body_len) != 0)
        goto fail;
    return out;
fail:
    evbuffer_free(out);
    return NULL;
}

/* Connect to the next usable address of the current hop, or give up. */
static void
try_next_address(mg_http_client_req_t *req)
{
    /* Bounded by the address list, which the resolver caps. */
    while (req->ai_next != NULL) {
        struct evutil_addrinfo *ai = req->ai_next;
        struct evbuffer *msg = NULL;
        SSL *ssl = NULL;
        struct timeval tv;

        req->ai_next = ai->ai_next;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (!req->url.https && !mg_sockaddr_is_loopback(ai->ai_addr)) {
            /* allow_http is for loopback test servers and sidecars: decided
             * on the address we would connect to, before connecting. */
            char where[INET6_ADDRSTRLEN + 16];
            describe_addr(ai->ai_addr, where, sizeof(where));
            snprintf(req->last_msg, sizeof(req->last_msg),
                     "plain http to non-loopback address %s refused", where);
            req->skipped_nonloopback = true;
            continue;
        }
        if (req->url.https) {
            ssl = SSL_new(req->ssl_ctx);
            if (ssl == NULL)
                goto internal;
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (req->url.host_kind == MG_URL_HOST_NAME) {
                /* SNI (RFC 6066 3) is for names only, and the name is what
                 * the certificate must match (RFC 6125). */
                if (SSL_set_tlsext_host_name(ssl, req->url.host) != 1 ||
                    SSL_set1_host(ssl, req->url.host) != 1)
                    goto internal;
            } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), req->url.host) != 1) {
                goto internal;
            }
            req->bev = bufferevent_openssl_socket_new(
                req->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
            if (req->bev == NULL)
                goto internal;
            ssl = NULL; /* owned by the bufferevent now */
        } else {
            req->bev = bufferevent_socket_new(req->base, -1, BEV_OPT_CLOSE_ON_FREE);
            if (req->bev == NULL)
                goto internal;
        }
        bufferevent_setcb(req->bev, read_cb, NULL, event_cb, req);
        bufferevent_setwatermark(req->bev, EV_READ, 0, 0);
        if ((msg = build_request(req)) == NULL)
            goto internal;
        /* Written once connected (after the handshake for TLS). */
        if (bufferevent_write_buffer(req->bev, msg) != 0) {
            evbuffer_free(msg);
            goto internal;
        }
        evbuffer_free(msg);
        if (bufferevent_enable(req->bev, EV_READ | EV_WRITE) != 0)
            goto internal;
        req->state = ST_CONNECTING;
        req->attempts++;
        tv.tv_sec = req->opts.connect_timeout_ms / 1000;
        tv.tv_usec = (req->opts.connect_timeout_ms % 1000) * 1000;
        evtimer_add(req->connect_timer, &tv);
        if (bufferevent_socket_connect(req->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
            char where[INET6_ADDRSTRLEN + 16], m[128];
            int e = EVUTIL_SOCKET_ERROR();
            describe_addr(ai->ai_addr, where, sizeof(where));
            snprintf(m, sizeof(m), "connect to %s failed: %s", where,
                     evutil_socket_error_to_string(e));
            close_conn(req);
            req->last_err = MG_HTTPC_ERR_CONNECT;
            snprintf(req->last_msg, sizeof(req->last_msg), "%s", m);
            continue;
        }
        return;
    internal:
        SSL_free(ssl);
        close_conn(req);
        finish(req, MG_HTTPC_ERR_INTERNAL, "cannot set up the connection");
        return;
    }
    if (req->attempts == 0 && req->skipped_nonloopback)
        finish(req, MG_HTTPC_ERR_SCHEME, "%s", req->last_msg);
    else if (req->attempts == 0)
        finish(req, MG_HTTPC_ERR_CONNECT, "no usable address for %s", req->url.host);
    else
        finish(req, req->last_err, "%s", req->last_msg);
}

static void
addresses_ready(mg_http_client_req_t *req, struct evutil_addrinfo *ai)
{
    if (req->ai != NULL)
        evutil_freeaddrinfo(req->ai);
    req->ai = ai;
    req->ai_next = ai;
    req->attempts = 0;
    req->skipped_nonloopback = false;
    req->last_err = MG_HTTPC_ERR_CONNECT;
    req->last_msg[0] = '\0';
    try_next_address(req);
}

static void
dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    dns_ticket_t *t = arg;
    mg_http_client_req_t *req = t->req;

    if (req == NULL) { /* the request is gone (finished or cancelled) */
        if (res != NULL)
            evutil_freeaddrinfo(res);
        ticket_release(t);
        return;
    }
    req->ticket = NULL;
    req->dns_req = NULL;
    free(t);
    if (result != 0 || res == NULL) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        finish(req, MG_HTTPC_ERR_DNS, "cannot resolve %s: %s", req->url.host,
               result ? evutil_gai_strerror(result) : "no address");
        return;
    }
    addresses_ready(req, res);
}

/* Resolve the current URL's host and connect. */
static void
start_hop(mg_http_client_req_t *req)
{
    struct evutil_addrinfo hints, *res = NULL;
    char port[8];
    int rc;

    if (!req->url.https && !req->opts.allow_http) {
        finish(req, MG_HTTPC_ERR_SCHEME, "plain http refused (https only; allow_http is off)");
        return;
    }
    if (req->url.https && req->ssl_ctx == NULL) {
        const char *why = NULL;
        if (req->opts.ssl_ctx != NULL) {
            SSL_CTX_up_ref(req->opts.ssl_ctx);
            req->ssl_ctx = req->opts.ssl_ctx;
        } else if ((req->ssl_ctx = mg_http_client_ssl_ctx_new(req->opts.ca_file, &why)) == NULL) {
            finish(req, MG_HTTPC_ERR_TLS, "%s%s%s", why, req->opts.ca_file ? ": " : "",
                   req->opts.ca_file ? req->opts.ca_file : "");
            return;
        }
    }
    req->state = ST_RESOLVING;
    snprintf(port, sizeof(port), "%u", (unsigned)req->url.port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_NUMERICSERV;
    if (req->url.host_kind != MG_URL_HOST_NAME) {
        /* IP literal: no resolver involved, no lookup leaves the host. */
        hints.ai_flags |= EVUTIL_AI_NUMERICHOST;
        rc = evutil_getaddrinfo(req->url.host, port, &hints, &res);
        if (rc != 0 || res == NULL) {
            finish(req, MG_HTTPC_ERR_DNS, "bad address %s: %s", req->url.host,
                   rc ? evutil_gai_strerror(rc) : "no address");
            return;
        }
        addresses_ready(req, res);
        return;
    }
    {
        struct evdns_base *dns = req->opts.dns;
        dns_ticket_t *t;
        struct evdns_getaddrinfo_request *r;

        if (dns == NULL) {
            if (req->own_dns == NULL)
                req->own_dns = evdns_base_new(req->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
            if (req->own_dns == NULL) {
                finish(req, MG_HTTPC_ERR_DNS, "cannot set up the resolver");
                return;
            }
            dns = req->own_dns;
        }
        if ((t = calloc(1, sizeof(*t))) == NULL) {
            finish(req, MG_HTTPC_ERR_INTERNAL, "out of memory");
            return;
        }
        t->req = req;
        t->base = req->base;
        req->ticket = t;
        /* May call dns_cb before returning (hosts file, errors): then it
         * returns NULL and the ticket is already freed. */
        r = evdns_getaddrinfo(dns, req->url.host, port, &hints, dns_cb, t);
        if (r != NULL)
            req->dns_req = r;
    }
}

/* ---- the public entry points ------------------------------------------- */

static bool
is_token(const char *s, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != 0 && strchr(extra, c) != NULL)))
            return false;
    }
    return true;
}

/* Join the caller's field lines, refusing what would break framing. */
static int
join_headers(const char *const *headers, char **out, const char **why)
{
    static const char *const reserved[] = {"Host", "Content-Length", "Connection",
                                           "Transfer-Encoding", NULL};
    size_t total = 1, off = 0;
    char *buf = NULL;

    *out = NULL;
    if (headers == NULL)
        return 0;
    for (size_t i = 0; headers[i] != NULL; i++) {
        const char *h = headers[i], *colon = strchr(h, ':');
        size_t nl;
        if (i >= 64) {
            *why = "too many request headers";
            return -1;
        }
        if (colon == NULL || !is_token(h, (size_t)(colon - h))) {
            *why = "request header is not \"Name: value\"";
            return -1;
        }
        nl = (size_t)(colon - h);
        for (const char *v = colon + 1; *v; v++) {
            unsigned char c = (unsigned char)*v;
            if ((c < 0x20 && c != '\t') || c == 0x7F) {
                *why = "control byte in a request header value";
                return -1;
            }
        }
        for (size_t k = 0; reserved[k] != NULL; k++) {
            if (strlen(reserved[k]) == nl && strncasecmp(h, reserved[k], nl) == 0) {
                *why = "request header set by the client itself";
                return -1;
            }
        }
        total += strlen(h) + 2;
    }
    if ((buf = malloc(total)) == NULL) {
        *why = "out of memory";
        return -1;
    }
    for (size_t i = 0; headers[i] != NULL; i++) {
        size_t l = strlen(headers[i]);
        memcpy(buf + off, headers[i], l);
        memcpy(buf + off + l, "\r\n", 2);
        off += l + 2;
    }
    buf[off] = '\0';
    *out = buf;
    return 0;
}

mg_http_client_req_t *
mg_http_client_request(struct event_base *base, const mg_http_client_opts_t *opts,
                       const char *method, const char *url, const char *const *headers,
                       const char *body, size_t body_len, mg_http_client_cb cb, void *arg)
{
    mg_http_client_req_t *req = calloc(1, sizeof(*req));
    const char *why = NULL;
    struct timeval tv;

    if (req == NULL)
        return NULL;
    req->base = base;
    req->cb = cb;
    req->arg = arg;
    if (opts != NULL)
        req->opts = *opts;
    else
        mg_http_client_opts_init(&req->opts);
    if (req->opts.max_response == 0)
        req->opts.max_response = MG_HTTP_CLIENT_DEFAULT_MAX_RESPONSE;
    if (req->opts.connect_timeout_ms <= 0)
        req->opts.connect_timeout_ms = MG_HTTP_CLIENT_DEFAULT_CONNECT_MS;
    if (req->opts.total_timeout_ms <= 0)
        req->opts.total_timeout_ms = MG_HTTP_CLIENT_DEFAULT_TOTAL_MS;
    if (req->opts.max_redirects < 0)
        req->opts.max_redirects = 0;
    if ((req->done_ev = event_new(base, -1, 0, done_cb, req)) == NULL ||
        (req->total_timer = evtimer_new(base, total_timeout_cb, req)) == NULL ||
        (req->connect_timer = evtimer_new(base, connect_timeout_cb, req)) == NULL ||
        (req->resp = evbuffer_new()) == NULL)
        goto fail;
    tv.tv_sec = req->opts.total_timeout_ms / 1000;
    tv.tv_usec = (req->opts.total_timeout_ms % 1000) * 1000;
    if (evtimer_add(req->total_timer, &tv) != 0)
        goto fail;
    /* From here on every failure goes through the callback. */
    if (method == NULL || !is_token(method, strlen(method)) || strlen(method) > 32) {
        finish(req, MG_HTTPC_ERR_REQUEST, "bad request method");
        return req;
    }
    if ((req->method = strdup(method)) == NULL)
        goto fail;
    if (join_headers(headers, &req->headers, &why) != 0) {
        finish(req, MG_HTTPC_ERR_REQUEST, "%s", why);
        return req;
    }
    if (body != NULL) {
        if ((req->body = malloc(body_len ? body_len : 1)) == NULL)
            goto fail;
        memcpy(req->body, body, body_len);
        req->body_len = body_len;
    }
    if (url == NULL || mg_url_parse(url, strlen(url), &req->url, &why) != 0) {
        finish(req, MG_HTTPC_ERR_REQUEST, "bad URL: %s", url ? why : "none");
        return req;
    }
    start_hop(req);
    return req;
fail:
    req_free(req);
    return NULL;
}

void
mg_http_client_cancel(mg_http_client_req_t *req)
{
    req_free(req);
}
