/* http_parse.h -- strict HTTP/1.1 message-head and chunked-body parsing, no I/O.
 *
 * mcpgate parses HTTP itself (docs/http.md says why): these functions see
 * bytes, never sockets, so they are unit-tested and fuzzed on their own.
 * Everything returned points into the caller's buffer (borrowed): it stays
 * valid while that buffer is unchanged.
 *
 * Strictness is the point. What a lenient parser would guess at is refused:
 * bare CR or LF line ends, obs-fold, whitespace before ':', a header name
 * that is not a token, control bytes in values, Content-Length that is not
 * plain digits, Content-Length together with Transfer-Encoding, any
 * Transfer-Encoding other than exactly "chunked", two Content-Length or two
 * Host or two Authorization headers, a missing Host in HTTP/1.1, HTTP/0.9,
 * HTTP/2 preface, versions other than 1.0 and 1.1.
 */
#ifndef MCPGATE_HTTP_PARSE_H
#define MCPGATE_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_HTTP_MAX_HEADERS 100

typedef enum mg_http_method {
    MG_HTTP_OTHER = 0, /* a valid token we do not serve: answered 405 */
    MG_HTTP_GET,
    MG_HTTP_HEAD,
    MG_HTTP_POST,
    MG_HTTP_PUT,
    MG_HTTP_DELETE,
    MG_HTTP_OPTIONS,
    MG_HTTP_PATCH,
    MG_HTTP_CONNECT,
    MG_HTTP_TRACE,
} mg_http_method_t;

typedef struct mg_http_header {
    const char *name;  /* as sent (case preserved), not NUL-terminated */
    size_t name_len;
    const char *value; /* leading and trailing SP/HTAB removed */
    size_t value_len;
} mg_http_header_t;

typedef struct mg_http_request_head {
    mg_http_method_t method;
    const char *method_str;
    size_t method_len;
    const char *target; /* request-target exactly as sent */
    size_t target_len;
    int version_minor; /* 0 or 1 (HTTP/1.x) */
    mg_http_header_t headers[MG_HTTP_MAX_HEADERS];
    size_t nheaders;
    /* Framing, already validated: */
    bool chunked;           /* Transfer-Encoding: chunked */
    int64_t content_length; /* -1 when absent (and no body unless chunked) */
    bool keep_alive;        /* after Connection: close/keep-alive and the version */
    bool expect_continue;   /* Expect: 100-continue (any other Expect: 417 -> refused as 400) */
    const char *host;       /* the single Host value; NULL only for HTTP/1.0 without one */
    size_t host_len;
} mg_http_request_head_t;

typedef struct mg_http_response_head {
    int status; /* 100..599 */
    int version_minor;
    mg_http_header_t headers[MG_HTTP_MAX_HEADERS];
    size_t nheaders;
    bool chunked;
    int64_t content_length; /* -1 when absent */
    bool keep_alive;        /* the upstream connection may be reused afterwards */
} mg_http_response_head_t;

/* Parse a request head (request line + headers + the empty line) from
 * <buf>[0..len). Returns:
 *   > 0  the length of the head, including the final CRLF CRLF;
 *     0  the head is not complete yet (read more, subject to max_header_size);
 *   < 0  the negated HTTP status to answer: -400 (syntax, framing, Host,
 *        duplicate headers, any Transfer-Encoding but "chunked": we never
 *        guess at framing), -431 (more than MG_HTTP_MAX_HEADERS headers),
 *        -505 (an HTTP version other than 1.0 and 1.1).
 * On error, *why (if not NULL) is set to a short static, client-safe reason
 * such as "duplicate Content-Length". */
int mg_http_parse_request_head(const char *buf, size_t len, mg_http_request_head_t *out,
                               const char **why);

/* Parse an upstream response head. Returns as above; errors are -502.
 * A 1xx response is returned as such: the caller skips it (mcpgate never
 * forwards 101 upgrades). Whether a body follows (204, 304, 1xx carry none)
 * is the caller's business. */
int mg_http_parse_response_head(const char *buf, size_t len, mg_http_response_head_t *out,
                                const char **why);

/* Case-insensitive lookup of the first header named <name>; NULL if none. */
const mg_http_header_t *mg_http_find_header(const mg_http_header_t *headers, size_t n,
                                            const char *name);

/* True for the hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1:
 * Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
 * Upgrade, Proxy-Authorization, Proxy-Authenticate). Headers named in a
 * Connection header's value are checked by the caller with
 * mg_http_connection_lists(). */
bool mg_http_is_hop_by_hop(const char *name, size_t name_len);

/* True when a Connection header value (comma-separated tokens) lists <name>. */
bool mg_http_connection_lists(const char *conn_value, size_t conn_len, const char *name,
                              size_t name_len);

/* Bounds of the chunked decoder: a size line (digits, extensions and CRLF),
 * the whole trailer section in bytes, and the number of trailer fields. */
#define MG_CHUNKED_MAX_LINE 1024
#define MG_CHUNKED_MAX_TRAILER_BYTES 8192
#define MG_CHUNKED_MAX_TRAILERS 64

/* Incremental chunked transfer-coding decoder (RFC 9112 7.1). Strict: the
 * size is 1..16 hex digits (no "0x", sign or spaces), chunk extensions are
 * skipped but bounded, every line ends in CRLF, trailers are parsed as
 * header fields and discarded. */
typedef struct mg_chunked {
    int state;
    uint64_t remaining;  /* bytes left in the current chunk */
    uint64_t total;      /* payload bytes so far */
    uint64_t max_total;  /* over it: MG_CHUNKED_TOO_LARGE (0 = no limit) */
    size_t line_len;     /* bytes of the current size/trailer line seen so far */
    int digits;
} mg_chunked_t;

typedef enum mg_chunked_result {
    MG_CHUNKED_NEED_MORE = 0, /* everything given was consumed; feed more */
    MG_CHUNKED_DATA,          /* a payload span is in *data, *data_len */
    MG_CHUNKED_DONE,          /* the last chunk and trailers are complete */
    MG_CHUNKED_ERROR,         /* malformed: answer 400 (request) or 502 (response) */
    MG_CHUNKED_TOO_LARGE,     /* payload exceeds max_total: 413 */
} mg_chunked_result_t;

void mg_chunked_init(mg_chunked_t *dec, uint64_t max_total);

/* Feed <len> bytes at <in>. *consumed is set to the bytes used from <in>
 * (the caller drains that many and calls again with the rest). On
 * MG_CHUNKED_DATA, *data and *data_len are a span inside <in> of payload bytes.
 * After DONE, bytes past *consumed belong to the next message. */
mg_chunked_result_t mg_chunked_feed(mg_chunked_t *dec, const char *in, size_t len,
                                    size_t *consumed, const char **data, size_t *data_len,
                                    const char **why);

/* Normalise a request-target for routing (origin-form only). Percent-
 * escapes of unreserved characters are decoded; an encoded '/', '\', NUL
 * or any control byte, a literal '\' or control byte, a '.' or '..'
 * segment (also when percent-encoded), an empty segment ("//"), a target
 * not starting with '/', an absolute-form or '*' target, or a path longer
 * than <cap>-1 are all refused (returns -400, *why set). On success returns
 * 0 and writes the NUL-terminated path to <out> (*out_len its length); the
 * query (without '?', borrowed from <target>) goes to *query, or NULL. */
int mg_http_normalize_path(const char *target, size_t target_len, char *out, size_t cap,
                           size_t *out_len, const char **query, size_t *query_len,
                           const char **why);

#endif /* MCPGATE_HTTP_PARSE_H */
