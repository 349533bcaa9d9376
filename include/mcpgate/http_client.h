/* http_client.h -- the gateway's own outbound HTTPS requests (metadata, JWKS, introspection).
 *
 * One request = one connection (Connection: close) on the caller's event
 * base, so it runs on whichever thread owns that base. What it enforces
 * (SPEC T-16, O-03):
 *   - https with certificate and host-name verification (RFC 9110 4.3.4,
 *     RFC 6125) against the system store or opts->ca_file; TLS 1.2 or later;
 *   - plain http only with opts->allow_http, and then only to loopback
 *     addresses (127.0.0.0/8, ::1): the resolved address is checked before
 *     any connect(2), never the name;
 *   - connect (TCP + TLS handshake, per address tried) and total timeouts;
 *   - a body size cap (default 256 KiB) and a head size cap (64 KiB);
 *   - redirects (301, 302, 303, 307, 308) followed only within the same
 *     origin (scheme, host and port), at most opts->max_redirects times; a
 *     redirect to another origin, https -> http included, is an error.
 * Responses are framed with the strict parser of http_parse.h (Content-
 * Length, chunked, or delimited by a clean close).
 *
 * The callback is called exactly once per request that was started, always
 * from the event loop, never from inside mg_http_client_request() itself,
 * unless the request is cancelled first (then never).
 */
#ifndef MCPGATE_HTTP_CLIENT_H
#define MCPGATE_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct evdns_base;
struct ssl_ctx_st;

#define MG_HTTP_CLIENT_DEFAULT_MAX_RESPONSE (256 * 1024)
#define MG_HTTP_CLIENT_DEFAULT_CONNECT_MS 5000
#define MG_HTTP_CLIENT_DEFAULT_TOTAL_MS 15000
#define MG_HTTP_CLIENT_DEFAULT_MAX_REDIRECTS 3
#define MG_HTTP_CLIENT_MAX_HEAD (64 * 1024)

typedef enum mg_http_client_error {
    MG_HTTPC_OK = 0,
    MG_HTTPC_ERR_REQUEST,      /* bad URL, header or option given by the caller */
    MG_HTTPC_ERR_SCHEME,       /* http without allow_http, or http to a non-loopback address */
    MG_HTTPC_ERR_DNS,          /* name resolution failed */
    MG_HTTPC_ERR_CONNECT,      /* every address refused or failed */
    MG_HTTPC_ERR_TLS,          /* handshake failed: certificate, host name, protocol */
    MG_HTTPC_ERR_TIMEOUT,      /* connect or total timeout */
    MG_HTTPC_ERR_TOO_LARGE,    /* body over max_response, or head over MG_HTTP_CLIENT_MAX_HEAD */
    MG_HTTPC_ERR_BAD_RESPONSE, /* unparsable or truncated response */
    MG_HTTPC_ERR_REDIRECT,     /* cross-origin redirect, too many, or a bad Location */
    MG_HTTPC_ERR_INTERNAL,     /* out of memory, libevent or OpenSSL setup failure */
} mg_http_client_error_t;

/* Short static name of an error ("timeout"). */
const char *mg_http_client_strerror(mg_http_client_error_t err);

typedef struct mg_http_client_opts {
    const char *ca_file;        /* PEM trust anchors; NULL = system store. Read during the
                                 * request call only. Ignored when ssl_ctx is set. */
    struct ssl_ctx_st *ssl_ctx; /* optional, borrowed (up-ref'd while in use): a client
                                 * context from mg_http_client_ssl_ctx_new(), to avoid
                                 * reloading the trust store for every request */
    struct evdns_base *dns;     /* optional, borrowed, must outlive the request; NULL = one
                                 * is created per request from /etc/resolv.conf + hosts */
    int connect_timeout_ms;     /* per address, TCP connect + TLS handshake */
    int total_timeout_ms;       /* everything, redirects included */
    size_t max_response;        /* body bytes */
    bool allow_http;            /* issuer's "allow_http on;": loopback-only plain http */
    int max_redirects;          /* 0 = a redirect is an error */
} mg_http_client_opts_t;

/* Fill *o with the defaults above (ca_file, ssl_ctx, dns NULL; allow_http false). */
void mg_http_client_opts_init(mg_http_client_opts_t *o);

/* A client SSL_CTX: TLS 1.2+, SSL_VERIFY_PEER, trust anchors from <ca_file>
 * or, when NULL, the system store. Returns NULL with *why (static) set on
 * failure. The caller frees it with SSL_CTX_free(). */
struct ssl_ctx_st *mg_http_client_ssl_ctx_new(const char *ca_file, const char **why);

/* What the callback sees. Everything is owned by the request and valid only
 * during the callback, except that the callback may take <body> by setting
 * res->body to NULL (then it frees it with free()). */
typedef struct mg_http_client_result {
    mg_http_client_error_t error;
    const char *message; /* human-readable detail, "" on success; never contains the body */
    int status;          /* final HTTP status, 0 when no response head was read */
    char *body;          /* NUL-terminated (the NUL is not counted), NULL on error */
    size_t body_len;
    /* Response headers kept for callers (NULL when absent; Cache-Control
     * field lines are joined with ", ", RFC 9110 5.3; the others are the
     * first field line). */
    const char *content_type;
    const char *cache_control;
    const char *expires;
    const char *date;
    const char *location;
    const char *final_url; /* the URL that answered, after redirects */
    int redirects;         /* how many were followed */
} mg_http_client_result_t;

typedef void (*mg_http_client_cb)(mg_http_client_result_t *res, void *arg);

typedef struct mg_http_client_req mg_http_client_req_t;

/* Start a request. <method> is e.g. "GET" or "POST". <headers> is NULL or a
 * NULL-terminated array of "Name: value" field lines (no CR or LF; Host,
 * Content-Length, Connection and Transfer-Encoding are set here and
 * refused from the caller). <body>/<body_len> is sent with Content-Length
 * when body is not NULL; all of url, headers and body are copied. <opts>
 * may be NULL for the defaults; it is copied.
 * Returns a handle, valid until the callback returns or until
 * mg_http_client_cancel(); NULL only when out of memory (then the callback
 * is never called). Every other failure, a bad URL included, is reported
 * through the callback. */
mg_http_client_req_t *mg_http_client_request(struct event_base *base,
                                             const mg_http_client_opts_t *opts, const char *method,
                                             const char *url, const char *const *headers,
                                             const char *body, size_t body_len,
                                             mg_http_client_cb cb, void *arg);

/* Abort a request whose callback has not been called yet: the callback will
 * not be called and everything is freed now. Must not be called from that
 * request's own callback. NULL-safe. */
void mg_http_client_cancel(mg_http_client_req_t *req);

#endif /* MCPGATE_HTTP_CLIENT_H */
