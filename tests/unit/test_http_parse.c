/* test_http_parse.c -- unit tests of src/http: request/response heads, chunked decoding, paths. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/http_parse.h"
#include "mgtest.h"

#define OK 1 /* expected: the whole input is the head */

typedef struct row {
    const char *raw;
    size_t len;
    int expect; /* OK, 0, or a negated status */
    const char *why;
} row_t;

/* R(): a row whose input may contain NUL bytes. */
#define R(s, e, w) {s, sizeof(s) - 1, e, w}

#define RL "GET /mcp HTTP/1.1\r\n"
#define PL "POST /mcp HTTP/1.1\r\n"
#define HOST "Host: gw.example\r\n"
#define END "\r\n"

static mg_http_request_head_t req;
static mg_http_response_head_t resp;

static const row_t request_rows[] = {
    /* Accepted. */
    R(RL HOST END, OK, NULL),
    R("GET / HTTP/1.0\r\n\r\n", OK, NULL),
    R("\r\n\r\n" RL HOST END, OK, NULL),
    R("\r\n\r\n\r\n\r\n" RL HOST END, OK, NULL),
    R(PL HOST "Transfer-Encoding: chunked\r\n" END, OK, NULL),
    R(PL HOST "Transfer-Encoding:\tchunked\r\n" END, OK, NULL),
    R(PL HOST "Transfer-Encoding: CHUNKED \t\r\n" END, OK, NULL),
    R(PL HOST "transfer-encoding:chunked\r\n" END, OK, NULL),
    R(PL HOST "Content-Length: 0\r\n" END, OK, NULL),
    R(PL HOST "Content-Length: 9223372036854775807\r\n" END, OK, NULL),
    R(RL HOST "X-Bin: caf\xc3\xa9 \x80\xff\r\n" END, OK, NULL),
    R(RL HOST "X-Tab: a\tb\r\n" END, OK, NULL),
    R(RL HOST "X-Empty:\r\n" END, OK, NULL),
    R(RL "Host: [::1]:8080\r\n" END, OK, NULL),
    R(RL "Host: localhost\r\n" END, OK, NULL),
    R(RL "Host: a_b-c.example~:65535\r\n" END, OK, NULL),
    R(RL HOST "Authorization: Bearer x\r\n" END, OK, NULL),
    R(RL HOST "Expect: 100-continue\r\n" END, OK, NULL),
    R("M-SEARCH * HTTP/1.1\r\n" HOST END, OK, NULL),
    R("GET http://gw.example/mcp HTTP/1.1\r\n" HOST END, OK, NULL),

    /* Incomplete. */
    R("", 0, NULL),
    R(RL HOST, 0, NULL),
    R(RL HOST "\r", 0, NULL),

    /* Request line. */
    R("GET /\r\n\r\n", -400, "HTTP/0.9 request (no HTTP version)"),
    R("GET /mcp\r\n" HOST END, -400, "HTTP/0.9 request (no HTTP version)"),
    R("GET\r\n\r\n", -400, "request line without request-target and version"),
    R("GET / HTTP/2.0\r\n" HOST END, -505, "unsupported HTTP version"),
    R("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -505, "unsupported HTTP version"),
    R("GET / HTTP/1.2\r\n" HOST END, -505, "unsupported HTTP version"),
    R("GET / HTTP/0.9\r\n" HOST END, -505, "unsupported HTTP version"),
    R("GET / HTTP/3.0\r\n" HOST END, -505, "unsupported HTTP version"),
    R("GET / HTTP/1.1 \r\n" HOST END, -400, "malformed HTTP version"),
    R("GET / http/1.1\r\n" HOST END, -400, "malformed HTTP version"),
    R("GET / HTTP/1.10\r\n" HOST END, -400, "malformed HTTP version"),
    R("GET / HTTP/11\r\n" HOST END, -400, "malformed HTTP version"),
    R("GET / HTTP/1.x\r\n" HOST END, -400, "malformed HTTP version"),
    R("GET / / HTTP/1.1\r\n" HOST END, -400, "malformed HTTP version"),
    R("GET  / HTTP/1.1\r\n" HOST END, -400, "empty request-target or extra space in request line"),
    R("GET /  HTTP/1.1\r\n" HOST END, -400, "malformed HTTP version"),
    R("GET\t/ HTTP/1.1\r\n" HOST END, -400, "invalid character in request method"),
    R(" GET / HTTP/1.1\r\n" HOST END, -400, "invalid request method"),
    R("G(T / HTTP/1.1\r\n" HOST END, -400, "invalid character in request method"),
    R("GET /a\tb HTTP/1.1\r\n" HOST END, -400, "invalid character in request-target"),
    R("GET /a\x7f HTTP/1.1\r\n" HOST END, -400, "invalid character in request-target"),
    R("GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST END, -400, "invalid character in request-target"),
    R("GET /a\0b HTTP/1.1\r\n" HOST END, -400, "invalid character in request-target"),
    R("\x16\x03\x01\x02\x00", -400, "invalid request method"),
    R("\r\n\r\n\r\n\r\n\r\n" RL HOST END, -400, "too many empty lines before request line"),
    R("\n" RL HOST END, -400, "bare LF before request line"),
    R("\rX" RL HOST END, -400, "bare CR before request line"),

    /* Line ends. */
    R("GET / HTTP/1.1\n" HOST END, -400, "bare CR or LF in request line"),
    R("GET / HTTP/1.1\r" HOST END, -400, "bare CR or LF in request line"),
    R(RL "Host: gw.example\n\r\n", -400, "bare CR or LF in header section"),
    R(RL HOST "\n", -400, "bare CR or LF in header section"),
    R(RL HOST "X: a\rb\r\n" END, -400, "bare CR or LF in header section"),
    R(RL HOST "X: a\nb\r\n" END, -400, "bare CR or LF in header section"),
    R(RL HOST "\r\r\n", -400, "bare CR or LF in header section"),

    /* Field syntax. */
    R(RL HOST "X-A: b\r\n c\r\n" END, -400, "obs-fold (line folding) in header section"),
    R(RL HOST "X-A: b\r\n\tc\r\n" END, -400, "obs-fold (line folding) in header section"),
    R(RL " Host: gw.example\r\n" END, -400, "obs-fold (line folding) in header section"),
    R(RL HOST "X-A: b\r\n ", -400, "obs-fold (line folding) in header section"),
    R(RL HOST "Transfer-Encoding : chunked\r\n" END, -400, "whitespace before ':' in header field"),
    R(RL HOST "Content-Length\t: 5\r\n" END, -400, "whitespace before ':' in header field"),
    R(RL HOST ": x\r\n" END, -400, "empty header field name"),
    R(RL HOST "X(a): b\r\n" END, -400, "invalid character in header field name"),
    R(RL HOST "X\0a: b\r\n" END, -400, "invalid character in header field name"),
    R(RL HOST "Xa\xc3\xa9: b\r\n" END, -400, "invalid character in header field name"),
    R(RL HOST "NoColon\r\n" END, -400, "header line without ':'"),
    R(RL HOST "X-A: a\0b\r\n" END, -400, "NUL in header field value"),
    R(RL HOST "X-A: \0\r\n" END, -400, "NUL in header field value"),
    R(RL HOST "X-A: a\x01" "b\r\n" END, -400, "control character in header field value"),
    R(RL HOST "X-A: a\x7f\r\n" END, -400, "control character in header field value"),
    R(RL HOST "X-A: a\x1b[0m\r\n" END, -400, "control character in header field value"),

    /* Framing (RFC 9112 6). */
    R(PL HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n" END, -400,
      "both Content-Length and Transfer-Encoding"),
    R(PL HOST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n" END, -400,
      "both Content-Length and Transfer-Encoding"),
    R(PL HOST "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n" END, -400,
      "both Content-Length and Transfer-Encoding"),
    R(PL HOST "Content-Length: 5\r\nContent-Length: 5\r\n" END, -400, "duplicate Content-Length"),
    R(PL HOST "Content-Length: 5\r\ncontent-length: 6\r\n" END, -400, "duplicate Content-Length"),
    R(PL HOST "Content-Length: +5\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: -5\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 5, 5\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 5,5\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 5 5\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 0x5\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 5a\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 1e3\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length:\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length:  \r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 9223372036854775808\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 99999999999999999999\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Content-Length: 00000000000000000001\r\n" END, -400, "invalid Content-Length"),
    R(PL HOST "Transfer-Encoding: xchunked\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding: chunked, identity\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding: chunked, chunked\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding: gzip, chunked\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding: chunked;x\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding: identity\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding: \"chunked\"\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding:\r\n" END, -400,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R(PL HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n" END, -400,
      "duplicate Transfer-Encoding"),
    R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n" END, -400,
      "Transfer-Encoding in an HTTP/1.0 request"),

    /* Host, Authorization, Expect. */
    R(RL END, -400, "missing Host"),
    R(RL "X-Host: gw.example\r\n" END, -400, "missing Host"),
    R(RL HOST HOST END, -400, "duplicate Host"),
    R(RL HOST "host: other.example\r\n" END, -400, "duplicate Host"),
    R("GET / HTTP/1.0\r\n" HOST "HOST: x\r\n" END, -400, "duplicate Host"),
    R(RL "Host:\r\n" END, -400, "invalid Host"),
    R(RL "Host: a b\r\n" END, -400, "invalid Host"),
    R(RL "Host: a/b\r\n" END, -400, "invalid Host"),
    R(RL "Host: user@a\r\n" END, -400, "invalid Host"),
    R(RL "Host: a\\b\r\n" END, -400, "invalid Host"),
    R(RL "Host: a\tb\r\n" END, -400, "invalid Host"),
    R(RL "Host: a:\r\n" END, -400, "invalid Host"),
    R(RL "Host: a:x\r\n" END, -400, "invalid Host"),
    R(RL "Host: a:65536\r\n" END, -400, "invalid Host"),
    R(RL "Host: a:123456\r\n" END, -400, "invalid Host"),
    R(RL "Host: a:1:2\r\n" END, -400, "invalid Host"),
    R(RL "Host: :80\r\n" END, -400, "invalid Host"),
    R(RL "Host: [::1\r\n" END, -400, "invalid Host"),
    R(RL "Host: []\r\n" END, -400, "invalid Host"),
    R(RL "Host: [::1]x\r\n" END, -400, "invalid Host"),
    R(RL "Host: [::g]\r\n" END, -400, "invalid Host"),
    R(RL "Host: caf\xc3\xa9\r\n" END, -400, "invalid Host"),
    R(RL "Host: a%2fb\r\n" END, -400, "invalid Host"),
    R("GET / HTTP/1.0\r\nHost: a b\r\n" END, -400, "invalid Host"),
    R(RL HOST "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n" END, -400,
      "duplicate Authorization"),
    R(RL HOST "Authorization: Bearer a\r\nauthorization: Bearer a\r\n" END, -400,
      "duplicate Authorization"),
    R(RL HOST "Expect: 100-continue, foo\r\n" END, -400, "unsupported Expect"),
    R(RL HOST "Expect: 200-ok\r\n" END, -400, "unsupported Expect"),
    R(RL HOST "Expect:\r\n" END, -400, "unsupported Expect"),
};

static void
test_request_table(void)
{
    for (size_t i = 0; i < sizeof(request_rows) / sizeof(request_rows[0]); i++) {
        const row_t *r = &request_rows[i];
        const char *why = NULL;
        int expect = r->expect == OK ? (int)r->len : r->expect;
        int got = mg_http_parse_request_head(r->raw, r->len, &req, &why);
        if (got != expect)
            printf("# row %zu: %.*s\n", i, (int)r->len, r->raw);
        MG_CHECK_INT(got, expect);
        if (r->why != NULL) {
            if (why == NULL || strcmp(why, r->why) != 0)
                printf("# row %zu\n", i);
            MG_CHECK_STR(why, r->why);
        }
    }
}

/* An accepted head is incomplete (0) at every shorter length, never an error,
 * and an error stays the same error when more bytes follow. */
static void
test_request_prefixes(void)
{
    for (size_t i = 0; i < sizeof(request_rows) / sizeof(request_rows[0]); i++) {
        const row_t *r = &request_rows[i];
        if (r->expect == OK) {
            for (size_t k = 0; k < r->len; k++) {
                int got = mg_http_parse_request_head(r->raw, k, &req, NULL);
                if (got != 0)
                    printf("# row %zu prefix %zu\n", i, k);
                MG_CHECK_INT(got, 0);
            }
        } else if (r->expect < 0) {
            char buf[512];
            const char *why = NULL;
            if (r->len + 8 > sizeof(buf))
                continue;
            memcpy(buf, r->raw, r->len);
            memcpy(buf + r->len, "X: y\r\n\r\n", 8);
            MG_CHECK_INT(mg_http_parse_request_head(buf, r->len + 8, &req, &why), r->expect);
        }
    }
}

static void
test_request_fields(void)
{
    static const char raw[] = "POST /mcp?x=1 HTTP/1.1\r\n"
                              "Host:  gw.example:8443 \t\r\n"
                              "Content-Type:application/json\r\n"
                              "Content-Length: 0042\r\n"
                              "X-Trim: \t a b \t \r\n"
                              "\r\n"
                              "body";
    const char *why = NULL;
    int n = mg_http_parse_request_head(raw, sizeof(raw) - 1, &req, &why);
    const mg_http_header_t *h;

    MG_CHECK_INT(n, sizeof(raw) - 1 - 4);
    MG_CHECK_INT(req.method, MG_HTTP_POST);
    MG_CHECK(req.method_len == 4 && memcmp(req.method_str, "POST", 4) == 0);
    MG_CHECK(req.target_len == 8 && memcmp(req.target, "/mcp?x=1", 8) == 0);
    MG_CHECK_INT(req.version_minor, 1);
    MG_CHECK_INT(req.nheaders, 4);
    MG_CHECK_INT(req.content_length, 42);
    MG_CHECK(!req.chunked);
    MG_CHECK(req.keep_alive);
    MG_CHECK(!req.expect_continue);
    MG_CHECK(req.host_len == 15 && memcmp(req.host, "gw.example:8443", 15) == 0);
    h = &req.headers[1];
    MG_CHECK(h->name_len == 12 && memcmp(h->name, "Content-Type", 12) == 0);
    MG_CHECK(h->value_len == 16 && memcmp(h->value, "application/json", 16) == 0);
    h = mg_http_find_header(req.headers, req.nheaders, "x-trim");
    MG_CHECK(h != NULL && h->value_len == 3 && memcmp(h->value, "a b", 3) == 0);
    MG_CHECK(h != NULL && h->name_len == 6 && memcmp(h->name, "X-Trim", 6) == 0);
    MG_CHECK(mg_http_find_header(req.headers, req.nheaders, "X-Tri") == NULL);
    MG_CHECK(mg_http_find_header(req.headers, req.nheaders, "X-Trims") == NULL);
    MG_CHECK(mg_http_find_header(req.headers, req.nheaders, "CONTENT-LENGTH") == &req.headers[2]);
}

static void
test_request_host_len(void)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost:  gw.example:8443 \t\r\n\r\n";
    MG_CHECK_INT(mg_http_parse_request_head(raw, sizeof(raw) - 1, &req, NULL), sizeof(raw) - 1);
    MG_CHECK(req.host_len == 15 && memcmp(req.host, "gw.example:8443", 15) == 0);
}

static void
test_request_methods(void)
{
    static const struct {
        const char *m;
        mg_http_method_t e;
    } t[] = {
        {"GET", MG_HTTP_GET},         {"HEAD", MG_HTTP_HEAD},       {"POST", MG_HTTP_POST},
        {"PUT", MG_HTTP_PUT},         {"DELETE", MG_HTTP_DELETE},   {"OPTIONS", MG_HTTP_OPTIONS},
        {"PATCH", MG_HTTP_PATCH},     {"CONNECT", MG_HTTP_CONNECT}, {"TRACE", MG_HTTP_TRACE},
        {"get", MG_HTTP_OTHER},       {"GETX", MG_HTTP_OTHER},      {"GE", MG_HTTP_OTHER},
        {"PROPFIND", MG_HTTP_OTHER},  {"M-SEARCH", MG_HTTP_OTHER},  {"!#$%&'*+-.^_`|~", MG_HTTP_OTHER},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf), "%s /x HTTP/1.1\r\nHost: a\r\n\r\n", t[i].m);
        MG_CHECK_INT(mg_http_parse_request_head(buf, (size_t)n, &req, NULL), n);
        MG_CHECK_INT(req.method, t[i].e);
        MG_CHECK(req.method_len == strlen(t[i].m) && memcmp(req.method_str, t[i].m, req.method_len) == 0);
    }
}

static void
test_request_framing_fields(void)
{
    static const char te[] = PL HOST "Transfer-Encoding:\tChunked\r\n" END;
    static const char none[] = RL HOST END;
    static const char big[] = PL HOST "Content-Length: 9223372036854775807\r\n" END;
    static const char zero[] = PL HOST "Content-Length: 0\r\n" END;

    MG_CHECK_INT(mg_http_parse_request_head(te, sizeof(te) - 1, &req, NULL), sizeof(te) - 1);
    MG_CHECK(req.chunked);
    MG_CHECK_INT(req.content_length, -1);
    MG_CHECK_INT(mg_http_parse_request_head(none, sizeof(none) - 1, &req, NULL), sizeof(none) - 1);
    MG_CHECK(!req.chunked);
    MG_CHECK_INT(req.content_length, -1);
    MG_CHECK_INT(mg_http_parse_request_head(big, sizeof(big) - 1, &req, NULL), sizeof(big) - 1);
    MG_CHECK(req.content_length == INT64_MAX);
    MG_CHECK_INT(mg_http_parse_request_head(zero, sizeof(zero) - 1, &req, NULL), sizeof(zero) - 1);
    MG_CHECK_INT(req.content_length, 0);
    MG_CHECK(!req.chunked);
}

static void
test_request_keep_alive_expect(void)
{
    static const struct {
        const char *raw;
        bool keep_alive;
        bool expect;
    } t[] = {
        {RL HOST END, true, false},
        {RL HOST "Connection: close\r\n" END, false, false},
        {RL HOST "Connection: CLOSE\r\n" END, false, false},
        {RL HOST "Connection: keep-alive, Close\r\n" END, false, false},
        {RL HOST "Connection: upgrade,\tclose ,\r\n" END, false, false},
        {RL HOST "Connection: te\r\nConnection: close\r\n" END, false, false},
        {RL HOST "Connection: closed\r\n" END, true, false},
        {RL HOST "Connection: x-close\r\n" END, true, false},
        {RL HOST "Connection: keep-alive\r\n" END, true, false},
        {"GET / HTTP/1.0\r\n\r\n", false, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, false},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", false, false},
        {RL HOST "Expect: 100-continue\r\n" END, true, true},
        {RL HOST "Expect: 100-Continue \r\n" END, true, true},
        /* RFC 9110 10.1.1: ignored in HTTP/1.0. */
        {"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", false, false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].raw);
        MG_CHECK_INT(mg_http_parse_request_head(t[i].raw, n, &req, NULL), n);
        if (req.keep_alive != t[i].keep_alive || req.expect_continue != t[i].expect)
            printf("# case %zu\n", i);
        MG_CHECK(req.keep_alive == t[i].keep_alive);
        MG_CHECK(req.expect_continue == t[i].expect);
    }
    MG_CHECK_INT(mg_http_parse_request_head("GET / HTTP/1.0\r\n\r\n", 18, &req, NULL), 18);
    MG_CHECK(req.host == NULL);
    MG_CHECK_INT(req.version_minor, 0);
}

/* Builds a head with <n> header fields (Host included). */
static size_t
many_headers(char *buf, size_t cap, int n, bool response)
{
    size_t o = (size_t)snprintf(buf, cap, "%s", response ? "HTTP/1.1 200 OK\r\n" : "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = response ? 0 : 1; i < n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "X-%d: v\r\n", i);
    o += (size_t)snprintf(buf + o, cap - o, "\r\n");
    return o;
}

static void
test_request_too_many_headers(void)
{
    static char buf[8192];
    const char *why = NULL;
    size_t n = many_headers(buf, sizeof(buf), MG_HTTP_MAX_HEADERS, false);

    MG_CHECK_INT(mg_http_parse_request_head(buf, n, &req, &why), n);
    MG_CHECK_INT(req.nheaders, MG_HTTP_MAX_HEADERS);
    n = many_headers(buf, sizeof(buf), MG_HTTP_MAX_HEADERS + 1, false);
    MG_CHECK_INT(mg_http_parse_request_head(buf, n, &req, &why), -431);
    MG_CHECK_STR(why, "too many header fields");
    /* Also refused before the head is complete. */
    MG_CHECK_INT(mg_http_parse_request_head(buf, n - 2, &req, &why), -431);
    n = many_headers(buf, sizeof(buf), MG_HTTP_MAX_HEADERS + 1, true);
    MG_CHECK_INT(mg_http_parse_response_head(buf, n, &resp, &why), -502);
    MG_CHECK_STR(why, "too many header fields");
    n = many_headers(buf, sizeof(buf), MG_HTTP_MAX_HEADERS, true);
    MG_CHECK_INT(mg_http_parse_response_head(buf, n, &resp, &why), n);
}

/* An absolute-form target passes the head parser (it is syntactically a
 * request-target) and is refused by the path normaliser used for routing. */
static void
test_request_absolute_form(void)
{
    static const char raw[] = "GET http://gw.example/mcp HTTP/1.1\r\n" HOST END;
    char path[256];
    size_t plen = 0, qlen = 0;
    const char *q = NULL, *why = NULL;

    MG_CHECK_INT(mg_http_parse_request_head(raw, sizeof(raw) - 1, &req, NULL), sizeof(raw) - 1);
    MG_CHECK_INT(mg_http_normalize_path(req.target, req.target_len, path, sizeof(path), &plen, &q,
                                        &qlen, &why),
                 -400);
    MG_CHECK_STR(why, "absolute-form request-target");
}

/* ---- response heads ---- */

static const row_t response_rows[] = {
    R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", OK, NULL),
    R("HTTP/1.1 200\r\n\r\n", OK, NULL),
    R("HTTP/1.1 204 \r\n\r\n", OK, NULL),
    R("HTTP/1.0 200 OK\r\n\r\n", OK, NULL),
    R("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", OK, NULL),
    R("HTTP/1.1 100 Continue\r\n\r\n", OK, NULL),
    R("HTTP/1.1 599 X\r\n\r\n", OK, NULL),
    R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", OK, NULL),
    R("HTTP/1.1 200 caf\xc3\xa9\tok\r\n\r\n", OK, NULL),
    R("", 0, NULL),
    R("HTTP/1.", 0, NULL),
    R("HTTP/1.1 200 OK\r\n", 0, NULL),
    R("HTTP/2.0 200 OK\r\n\r\n", -502, "unsupported HTTP version in response"),
    R("HTTP/1.2 200 OK\r\n\r\n", -502, "unsupported HTTP version in response"),
    R("HTTP/2 200 OK\r\n\r\n", -502, "malformed status line"),
    R("http/1.1 200 OK\r\n\r\n", -502, "malformed status line"),
    R("ICY 200 OK\r\n\r\n", -502, "malformed status line"),
    R("ICY", -502, "malformed status line"),
    R("\r\nHTTP/1.1 200 OK\r\n\r\n", -502, "malformed status line"),
    R("HTTP/1.1  200 OK\r\n\r\n", -502, "malformed status code"),
    R("HTTP/1.1 20 OK\r\n\r\n", -502, "malformed status code"),
    R("HTTP/1.1 2000 OK\r\n\r\n", -502, "malformed status code"),
    R("HTTP/1.1 2x0 OK\r\n\r\n", -502, "malformed status code"),
    R("HTTP/1.1 099 OK\r\n\r\n", -502, "status code out of range"),
    R("HTTP/1.1 600 OK\r\n\r\n", -502, "status code out of range"),
    R("HTTP/1.1 200 O\x01K\r\n\r\n", -502, "control character in reason phrase"),
    R("HTTP/1.1 200 O\0K\r\n\r\n", -502, "control character in reason phrase"),
    R("HTTP/1.1 200 OK\n\r\n", -502, "bare CR or LF in status line"),
    R("HTTP/1.1 200 OK\r\nA: b\n\r\n", -502, "bare CR or LF in header section"),
    R("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", -502, "obs-fold (line folding) in header section"),
    R("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", -502, "whitespace before ':' in header field"),
    R("HTTP/1.1 200 OK\r\nA: \0\r\n\r\n", -502, "NUL in header field value"),
    R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -502,
      "both Content-Length and Transfer-Encoding"),
    R("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", -502,
      "both Content-Length and Transfer-Encoding"),
    R("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", -502,
      "duplicate Content-Length"),
    R("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", -502, "invalid Content-Length"),
    R("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", -502, "invalid Content-Length"),
    R("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -502,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", -502,
      "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
    R("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", -502,
      "Transfer-Encoding in an HTTP/1.0 response"),
};

static void
test_response_table(void)
{
    for (size_t i = 0; i < sizeof(response_rows) / sizeof(response_rows[0]); i++) {
        const row_t *r = &response_rows[i];
        const char *why = NULL;
        int expect = r->expect == OK ? (int)r->len : r->expect;
        int got = mg_http_parse_response_head(r->raw, r->len, &resp, &why);
        if (got != expect)
            printf("# row %zu: %.*s\n", i, (int)r->len, r->raw);
        MG_CHECK_INT(got, expect);
        if (r->why != NULL)
            MG_CHECK_STR(why, r->why);
        if (r->expect == OK) {
            for (size_t k = 0; k < r->len; k++)
                MG_CHECK_INT(mg_http_parse_response_head(r->raw, k, &resp, NULL), 0);
        }
    }
}

static void
test_response_fields(void)
{
    static const struct {
        const char *raw;
        int status;
        int minor;
        bool chunked;
        long long cl;
        bool keep_alive;
    } t[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, 1, false, 5, true},
        {"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n", 404, 1, false, -1, false},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, 1, true, -1, true},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, 0, false, 0, false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", 200, 0, false, -1, true},
        {"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n", 101, 1, false, -1, true},
        {"HTTP/1.1 503\r\nConnection: Upgrade, Close\r\n\r\n", 503, 1, false, -1, false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].raw);
        MG_CHECK_INT(mg_http_parse_response_head(t[i].raw, n, &resp, NULL), n);
        MG_CHECK_INT(resp.status, t[i].status);
        MG_CHECK_INT(resp.version_minor, t[i].minor);
        MG_CHECK(resp.chunked == t[i].chunked);
        MG_CHECK_INT(resp.content_length, t[i].cl);
        MG_CHECK(resp.keep_alive == t[i].keep_alive);
    }
}

/* ---- helpers: find_header, hop-by-hop, Connection lists ---- */

static void
test_hop_by_hop(void)
{
    static const char *const hop[] = {"Connection", "keep-alive", "Proxy-Connection", "TE",
                                      "trailer", "Transfer-Encoding", "UPGRADE",
                                      "Proxy-Authorization", "Proxy-Authenticate"};
    static const char *const e2e[] = {"Content-Length", "Authorization", "Host", "T",
                                      "TEE", "Trailers", "Upgrade-Insecure-Requests",
                                      "Connections", "", "Keep-Alive2"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        MG_CHECK(mg_http_is_hop_by_hop(hop[i], strlen(hop[i])));
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++)
        MG_CHECK(!mg_http_is_hop_by_hop(e2e[i], strlen(e2e[i])));
    /* Length is honoured: "TE" inside "TEXT". */
    MG_CHECK(mg_http_is_hop_by_hop("TEXT", 2));
    MG_CHECK(!mg_http_is_hop_by_hop("TE", 1));
}

static void
test_connection_lists(void)
{
    static const char v[] = "keep-alive, X-Secret ,,\tUpgrade\t,close";
    size_t n = sizeof(v) - 1;

    MG_CHECK(mg_http_connection_lists(v, n, "x-secret", 8));
    MG_CHECK(mg_http_connection_lists(v, n, "UPGRADE", 7));
    MG_CHECK(mg_http_connection_lists(v, n, "close", 5));
    MG_CHECK(mg_http_connection_lists(v, n, "Keep-Alive", 10));
    MG_CHECK(!mg_http_connection_lists(v, n, "x-secre", 7));
    MG_CHECK(!mg_http_connection_lists(v, n, "x", 1));
    MG_CHECK(!mg_http_connection_lists(v, n, "secret", 6));
    MG_CHECK(!mg_http_connection_lists("", 0, "close", 5));
    MG_CHECK(!mg_http_connection_lists(" , ,", 4, "", 0));
    MG_CHECK(mg_http_connection_lists("close", 3, "clo", 3));
}

static void
test_find_header(void)
{
    static const char raw[] = RL HOST "X-A: 1\r\nx-a: 2\r\n" END;
    const mg_http_header_t *h;

    MG_CHECK_INT(mg_http_parse_request_head(raw, sizeof(raw) - 1, &req, NULL), sizeof(raw) - 1);
    h = mg_http_find_header(req.headers, req.nheaders, "X-a");
    MG_CHECK(h == &req.headers[1]);
    MG_CHECK(h != NULL && h->value_len == 1 && h->value[0] == '1');
    MG_CHECK(mg_http_find_header(req.headers, req.nheaders, "Nope") == NULL);
    MG_CHECK(mg_http_find_header(req.headers, 0, "host") == NULL);
    MG_CHECK(mg_http_find_header(req.headers, req.nheaders, "HOST") == &req.headers[0]);
}

/* ---- byte classes, word boundaries, long values ----
 *
 * The head parsers check field values eight bytes at a time and names and
 * targets through a byte-class table; these tests pin the classes byte by
 * byte (against the RFC 9110 definitions written out again here), at every
 * offset of a value, and on exact-size heap copies so that a sanitizer build
 * sees any read past the end. */

static bool
ref_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
ref_field_byte(int c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7F);
}

/* Parses <s>[0..n) as a request from an exact-size copy; *copy is the copy
 * (the parsed pointers point into it), freed by the caller. */
static int
parse_req_copy(const char *s, size_t n, char **copy, const char **why)
{
    *copy = malloc(n ? n : 1);
    if (*copy == NULL)
        return 1; /* never a parser result for these inputs */
    memcpy(*copy, s, n);
    *why = NULL;
    return mg_http_parse_request_head(*copy, n, &req, why);
}

static int
parse_resp_copy(const char *s, size_t n, char **copy, const char **why)
{
    *copy = malloc(n ? n : 1);
    if (*copy == NULL)
        return 1;
    memcpy(*copy, s, n);
    *why = NULL;
    return mg_http_parse_response_head(*copy, n, &resp, why);
}

static void
test_field_name_bytes(void)
{
    for (int c = 0; c < 256; c++) {
        char buf[128], *copy = NULL;
        const char *why = NULL, *ewhy = NULL;
        size_t n = (size_t)snprintf(buf, sizeof(buf), "%s%sX?Y: v\r\n\r\n", RL, HOST);
        int got, expect = -400;

        buf[sizeof(RL HOST "X") - 1] = (char)c; /* the '?' */
        if (ref_tchar(c) || c == ':')
            expect = (int)n;
        else if (c == ' ' || c == '\t')
            ewhy = "whitespace before ':' in header field";
        else if (c == '\r' || c == '\n')
            ewhy = "bare CR or LF in header section";
        else
            ewhy = "invalid character in header field name";
        got = parse_req_copy(buf, n, &copy, &why);
        if (got != expect)
            printf("# byte 0x%02x\n", c);
        MG_CHECK_INT(got, expect);
        if (ewhy != NULL)
            MG_CHECK_STR(why, ewhy);
        else if (got == expect)
            MG_CHECK_INT(req.headers[1].name_len, c == ':' ? 1 : 3);
        free(copy);
    }
}

/* Every byte value at every offset of a 41-byte value: the offsets cover
 * both word loops, the byte loop after a flagged word and the tail. */
static void
test_field_value_bytes(void)
{
    enum { VLEN = 41 };
    for (int c = 0; c < 256; c++) {
        for (size_t pos = 0; pos < VLEN; pos++) {
            char buf[256], *copy = NULL;
            const char *why = NULL, *ewhy = NULL;
            size_t o = (size_t)snprintf(buf, sizeof(buf), "%s%sX-V: ", RL, HOST), v = o, n;
            int got, expect = -400;

            memset(buf + o, 'a', VLEN);
            buf[o + pos] = (char)c;
            o += VLEN;
            memcpy(buf + o, "\r\n\r\n", 4);
            n = o + 4;
            if (ref_field_byte(c))
                expect = (int)n;
            else if (c == '\r' || c == '\n')
                ewhy = "bare CR or LF in header section";
            else if (c == 0)
                ewhy = "NUL in header field value";
            else
                ewhy = "control character in header field value";
            got = parse_req_copy(buf, n, &copy, &why);
            if (got != expect)
                printf("# byte 0x%02x at %zu\n", c, pos);
            MG_CHECK_INT(got, expect);
            if (ewhy != NULL) {
                MG_CHECK_STR(why, ewhy);
            } else if (got == expect) {
                /* OWS at either end is not part of the value. */
                bool trim = (c == ' ' || c == '\t') && (pos == 0 || pos == VLEN - 1);
                const mg_http_header_t *h = &req.headers[1];
                MG_CHECK_INT(h->value_len, trim ? VLEN - 1 : VLEN);
                MG_CHECK(h->value == copy + v + (trim && pos == 0 ? 1 : 0));
            }
            free(copy);
        }
    }
}

static void
test_request_line_bytes(void)
{
    for (int c = 0; c < 256; c++) {
        char m[64], t[64], *copy = NULL;
        const char *why = NULL, *ewhy = NULL;
        int nm = snprintf(m, sizeof(m), "G?T / HTTP/1.1\r\n" HOST END);
        int nt = snprintf(t, sizeof(t), "GET /? HTTP/1.1\r\n" HOST END);
        int got, expect = -400;

        m[1] = (char)c;
        t[5] = (char)c;
        /* The method. */
        if (ref_tchar(c))
            expect = nm;
        else if (c == ' ')
            ewhy = "malformed HTTP version"; /* "G" "T" "/ HTTP/1.1" */
        else if (c == '\r' || c == '\n')
            ewhy = "bare CR or LF in request line";
        else
            ewhy = "invalid character in request method";
        got = parse_req_copy(m, (size_t)nm, &copy, &why);
        if (got != expect)
            printf("# method byte 0x%02x\n", c);
        MG_CHECK_INT(got, expect);
        if (ewhy != NULL)
            MG_CHECK_STR(why, ewhy);
        else if (got == expect)
            MG_CHECK(req.method == (c == 'E' ? MG_HTTP_GET : MG_HTTP_OTHER) && req.method_len == 3);
        free(copy);
        /* The request-target: VCHAR only. */
        expect = -400;
        ewhy = NULL;
        if (c >= 0x21 && c <= 0x7E)
            expect = nt;
        else if (c == ' ')
            ewhy = "malformed HTTP version";
        else if (c == '\r' || c == '\n')
            ewhy = "bare CR or LF in request line";
        else
            ewhy = "invalid character in request-target";
        got = parse_req_copy(t, (size_t)nt, &copy, &why);
        if (got != expect)
            printf("# target byte 0x%02x\n", c);
        MG_CHECK_INT(got, expect);
        if (ewhy != NULL)
            MG_CHECK_STR(why, ewhy);
        else if (got == expect)
            MG_CHECK(req.target_len == 2 && req.target == copy + 4);
        free(copy);
    }
}

static void
test_reason_phrase_bytes(void)
{
    for (int c = 0; c < 256; c++) {
        char buf[64], *copy = NULL;
        const char *why = NULL, *ewhy = NULL;
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 O?K\r\nX: y\r\n\r\n");
        int got, expect = -502;

        buf[14] = (char)c;
        if (ref_field_byte(c))
            expect = n;
        else if (c == '\r' || c == '\n')
            ewhy = "bare CR or LF in status line";
        else
            ewhy = "control character in reason phrase";
        got = parse_resp_copy(buf, (size_t)n, &copy, &why);
        if (got != expect)
            printf("# byte 0x%02x\n", c);
        MG_CHECK_INT(got, expect);
        if (ewhy != NULL)
            MG_CHECK_STR(why, ewhy);
        else if (got == expect)
            MG_CHECK(resp.status == 200 && resp.nheaders == 1);
        free(copy);
    }
}

/* Which error wins is unchanged: a line's end is judged before its bytes, an
 * earlier line before a later one, and an unfinished line is not judged. */
static void
test_field_error_order(void)
{
    static const row_t t[] = {
        R(RL HOST "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0b\nc\r\n" END, -400,
          "bare CR or LF in header section"),
        R(RL HOST "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0b\r\nY: \n\r\n" END, -400,
          "NUL in header field value"),
        R(RL HOST "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x7f\rb\r\n" END, -400,
          "bare CR or LF in header section"),
        R(RL HOST "X(: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nb\r\n" END, -400,
          "bare CR or LF in header section"),
        R(RL HOST "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0b", 0, NULL),
        R(RL HOST "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x01", 0, NULL),
        R(RL HOST "X(: a", 0, NULL),
        R(RL HOST "X: a\r", 0, NULL),
        R(RL HOST "X: a\r\n", 0, NULL),
        R(RL HOST "X: a\r\n\r", 0, NULL),
        R(RL HOST "X:", 0, NULL),
        R(RL HOST "X", 0, NULL),
        R(RL "Host: gw.example\r\nX: a\0\r\n", -400, "NUL in header field value"),
        R("GET / HTTP/1.1", 0, NULL),
        R("GET / HTTP/1.1\r", 0, NULL),
        R("GET / HTTP/1.1\rX", -400, "bare CR or LF in request line"),
        R("GET / HTTP/1.1\r\r\n", -400, "bare CR or LF in request line"),
        R("GET / HTTP/1.1\x01\r\n", -400, "malformed HTTP version"),
        R("GET / HTTP/1.1X\r\n", -400, "malformed HTTP version"),
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *copy = NULL;
        const char *why = NULL;
        int got = parse_req_copy(t[i].raw, t[i].len, &copy, &why);
        if (got != t[i].expect)
            printf("# row %zu\n", i);
        MG_CHECK_INT(got, t[i].expect);
        if (t[i].why != NULL)
            MG_CHECK_STR(why, t[i].why);
        free(copy);
    }
}

static void
test_status_line_ends(void)
{
    static const row_t t[] = {
        R("HTTP/1.1 200 OK", 0, NULL),
        R("HTTP/1.1 200 OK\r", 0, NULL),
        R("HTTP/1.1 200 OK\rX", -502, "bare CR or LF in status line"),
        R("HTTP/1.1 200 OK\n", -502, "bare CR or LF in status line"),
        R("HTTP/1.1 200 OK\x01\rX", -502, "bare CR or LF in status line"),
        R("HTTP/1.1 200 OK\x01\r\n\r\n", -502, "control character in reason phrase"),
        R("HTTP/1.1 200 OK, a long reason phrase of several words\x7f\r\n\r\n", -502,
          "control character in reason phrase"),
        R("HTTP/1.1 200 \xc3\xa9t\xc3\xa9 \t\r\n\r\n", OK, NULL),
        R("HTTP/1.1 2000\r\n\r\n", -502, "malformed status code"),
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *copy = NULL;
        const char *why = NULL;
        int expect = t[i].expect == OK ? (int)t[i].len : t[i].expect;
        int got = parse_resp_copy(t[i].raw, t[i].len, &copy, &why);
        if (got != expect)
            printf("# row %zu\n", i);
        MG_CHECK_INT(got, expect);
        if (t[i].why != NULL)
            MG_CHECK_STR(why, t[i].why);
        free(copy);
    }
}

/* A bearer token of the usual size and an 8 KiB value of VCHAR, obs-text,
 * HTAB and SP: parsed whole, and incomplete at every shorter length. */
static void
test_long_values(void)
{
    static char buf[16384];
    static const char chars[] = "aZ09-._~+/=\t \x80\xc3\xa9\xff";
    size_t o = (size_t)snprintf(buf, sizeof(buf),
                                "POST /mcp HTTP/1.1\r\nHost: a\r\n"
                                "Authorization: Bearer ");
    size_t tok = o, big, n;
    char *copy = NULL;
    const char *why = NULL;
    int got;

    for (size_t i = 0; i < 640; i++)
        buf[o++] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."[i * 7 % 65];
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, " \t\r\nX-Big:\t ");
    big = o;
    for (size_t i = 0; i < 8192; i++)
        buf[o++] = chars[i * 5 % (sizeof(chars) - 1)];
    buf[big] = 'v'; /* neither end of the value is OWS */
    buf[o - 1] = 'w';
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\r\nContent-Length: 3\r\n\r\n");
    n = o;

    got = parse_req_copy(buf, n, &copy, &why);
    MG_CHECK_INT(got, n);
    MG_CHECK_INT(req.nheaders, 4);
    MG_CHECK(req.headers[1].value == copy + tok - 7 && req.headers[1].value_len == 647);
    MG_CHECK(req.headers[2].value == copy + big && req.headers[2].value_len == 8192);
    MG_CHECK_INT(req.content_length, 3);
    free(copy);
    for (size_t k = 0; k < n; k += (k < 800 ? 1 : 37)) {
        got = parse_req_copy(buf, k, &copy, &why);
        if (got != 0)
            printf("# prefix %zu\n", k);
        MG_CHECK_INT(got, 0);
        free(copy);
    }
    /* One control byte deep inside the big value. */
    buf[big + 5000] = '\x1f';
    MG_CHECK_INT(parse_req_copy(buf, n, &copy, &why), -400);
    MG_CHECK_STR(why, "control character in header field value");
    free(copy);
}

/* The fields the parser acts on are recognised by length and name, in any
 * case; a name of the same length that differs is an ordinary field. */
static void
test_field_kinds(void)
{
    static const row_t t[] = {
        R(RL "Hosx: a\r\n" END, -400, "missing Host"),
        R(RL "hOsT: a\r\n" END, OK, NULL),
        R(PL HOST "Content-Lengtx: x\r\n" END, OK, NULL),
        R(PL HOST "Content_Length: x\r\n" END, OK, NULL),
        R(PL HOST "Transfer-Encodinx: gzip\r\n" END, OK, NULL),
        R(PL HOST "tRANSFER-eNCODING: gzip\r\n" END, -400,
          "unsupported Transfer-Encoding (only \"chunked\" is accepted)"),
        R(RL HOST "Authorizatiox: a\r\nAuthorization: b\r\n" END, OK, NULL),
        R(RL HOST "AUTHORIZATION: a\r\nAuthorization: b\r\n" END, -400, "duplicate Authorization"),
        R(RL HOST "Expecx: nope\r\n" END, OK, NULL),
        R(RL HOST "EXPECT: nope\r\n" END, -400, "unsupported Expect"),
        R(PL HOST "CONTENT-LENGTH: x\r\n" END, -400, "invalid Content-Length"),
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *copy = NULL;
        const char *why = NULL;
        int expect = t[i].expect == OK ? (int)t[i].len : t[i].expect;
        int got = parse_req_copy(t[i].raw, t[i].len, &copy, &why);
        if (got != expect)
            printf("# row %zu\n", i);
        MG_CHECK_INT(got, expect);
        if (t[i].why != NULL)
            MG_CHECK_STR(why, t[i].why);
        if (got > 0)
            MG_CHECK(!req.chunked && req.content_length == -1 && req.keep_alive);
        free(copy);
    }
    MG_CHECK_INT(mg_http_parse_request_head(RL HOST "CONNECTION: Close\r\n" END,
                                            sizeof(RL HOST "CONNECTION: Close\r\n" END) - 1, &req,
                                            NULL),
                 sizeof(RL HOST "CONNECTION: Close\r\n" END) - 1);
    MG_CHECK(!req.keep_alive);
    MG_CHECK_INT(mg_http_parse_request_head(RL HOST "Connectiox: close\r\n" END,
                                            sizeof(RL HOST "Connectiox: close\r\n" END) - 1, &req,
                                            NULL),
                 sizeof(RL HOST "Connectiox: close\r\n" END) - 1);
    MG_CHECK(req.keep_alive);
}

/* ---- chunked decoder ---- */

typedef struct decoded {
    mg_chunked_result_t result;
    size_t end; /* input offset after the last consumed byte */
    char payload[4096];
    size_t payload_len;
    const char *why;
} decoded_t;

static uint32_t rng_state = 12345;

static uint32_t
rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) & 0x7fff;
}

/* Feeds <in> in pieces: sizes from <pieces> (cycled) or, when pieces is NULL,
 * random 1..<rnd_max>. Stops at the first result other than DATA/NEED_MORE. */
static void
chunked_decode(const char *in, size_t len, uint64_t max, const size_t *pieces, size_t npieces,
               size_t rnd_max, decoded_t *out)
{
    mg_chunked_t dec;
    size_t off = 0, k = 0;
    size_t piece_end = 0;

    mg_chunked_init(&dec, max);
    memset(out, 0, sizeof(*out));
    out->result = MG_CHUNKED_NEED_MORE;
    while (off < len) {
        size_t used = 0, dlen = 0;
        const char *d = NULL, *why = NULL;
        mg_chunked_result_t r;
        if (piece_end <= off) {
            size_t p = pieces ? pieces[k++ % npieces] : 1 + rng() % rnd_max;
            piece_end = off + p > len ? len : off + p;
        }
        r = mg_chunked_feed(&dec, in + off, piece_end - off, &used, &d, &dlen, &why);
        MG_CHECK(used <= piece_end - off);
        off += used;
        if (r == MG_CHUNKED_DATA) {
            MG_CHECK(dlen > 0 && d >= in && d + dlen <= in + off);
            if (out->payload_len + dlen < sizeof(out->payload))
                memcpy(out->payload + out->payload_len, d, dlen);
            out->payload_len += dlen;
            continue;
        }
        if (r == MG_CHUNKED_NEED_MORE) {
            MG_CHECK_INT(used, piece_end - (off - used));
            continue;
        }
        out->result = r;
        out->why = why;
        break;
    }
    out->end = off;
}

static const char chunked_body[] = "5\r\nhello\r\n"
                                   "6;name=value;q=\"a b\"\r\n world\r\n"
                                   "A\r\n0123456789\r\n"
                                   "a\r\nabcdefghij\r\n"
                                   "001\r\n!\r\n"
                                   "0\r\n"
                                   "X-Trailer: yes\r\n"
                                   "Another:\r\n"
                                   "\r\n";
static const char chunked_payload[] = "hello world0123456789abcdefghij!";

static void
check_payload(const decoded_t *d, size_t len)
{
    MG_CHECK_INT(d->result, MG_CHUNKED_DONE);
    MG_CHECK_INT(d->end, len);
    MG_CHECK_INT(d->payload_len, sizeof(chunked_payload) - 1);
    MG_CHECK(memcmp(d->payload, chunked_payload, sizeof(chunked_payload) - 1) == 0);
}

static void
test_chunked_all_at_once(void)
{
    static const size_t all[] = {100000};
    decoded_t d;
    chunked_decode(chunked_body, sizeof(chunked_body) - 1, 0, all, 1, 0, &d);
    check_payload(&d, sizeof(chunked_body) - 1);
    /* The exact limit is fine. */
    chunked_decode(chunked_body, sizeof(chunked_body) - 1, sizeof(chunked_payload) - 1, all, 1, 0,
                   &d);
    check_payload(&d, sizeof(chunked_body) - 1);
}

static void
test_chunked_byte_at_a_time(void)
{
    static const size_t one[] = {1};
    decoded_t d;
    chunked_decode(chunked_body, sizeof(chunked_body) - 1, 0, one, 1, 0, &d);
    check_payload(&d, sizeof(chunked_body) - 1);
}

static void
test_chunked_every_split_point(void)
{
    size_t len = sizeof(chunked_body) - 1;
    for (size_t k = 1; k < len; k++) {
        size_t two[2] = {k, len};
        decoded_t d;
        chunked_decode(chunked_body, len, 0, two, 2, 0, &d);
        if (d.result != MG_CHUNKED_DONE || d.payload_len != sizeof(chunked_payload) - 1)
            printf("# split at %zu\n", k);
        check_payload(&d, len);
    }
    for (size_t step = 2; step < len; step++) {
        decoded_t d;
        chunked_decode(chunked_body, len, 0, &step, 1, 0, &d);
        check_payload(&d, len);
    }
}

static void
test_chunked_random_pieces(void)
{
    size_t len = sizeof(chunked_body) - 1;
    for (int round = 0; round < 500; round++) {
        decoded_t d;
        chunked_decode(chunked_body, len, 0, NULL, 0, 1 + (size_t)round % 23, &d);
        check_payload(&d, len);
    }
}

/* After DONE, the rest belongs to the next message. */
static void
test_chunked_pipelined(void)
{
    static const char in[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    mg_chunked_t dec;
    size_t used = 0, dlen = 0;
    const char *d = NULL, *why = NULL;

    mg_chunked_init(&dec, 0);
    MG_CHECK_INT(mg_chunked_feed(&dec, in, sizeof(in) - 1, &used, &d, &dlen, &why), MG_CHUNKED_DATA);
    MG_CHECK_INT(used, 6);
    MG_CHECK(dlen == 3 && d == in + 3);
    MG_CHECK_INT(mg_chunked_feed(&dec, in + 6, sizeof(in) - 7, &used, &d, &dlen, &why),
                 MG_CHUNKED_DONE);
    MG_CHECK_INT(used, 7);
    MG_CHECK(d == NULL && dlen == 0);
    MG_CHECK_INT(dec.total, 3);
    /* Sticky. */
    MG_CHECK_INT(mg_chunked_feed(&dec, in + 13, 3, &used, &d, &dlen, &why), MG_CHUNKED_DONE);
    MG_CHECK_INT(used, 0);
    /* NEED_MORE consumes everything given. */
    mg_chunked_init(&dec, 0);
    MG_CHECK_INT(mg_chunked_feed(&dec, "", 0, &used, &d, &dlen, &why), MG_CHUNKED_NEED_MORE);
    MG_CHECK_INT(used, 0);
    MG_CHECK_INT(mg_chunked_feed(&dec, "3\r", 2, &used, &d, &dlen, &why), MG_CHUNKED_NEED_MORE);
    MG_CHECK_INT(used, 2);
    MG_CHECK_INT(mg_chunked_feed(&dec, "\n", 1, &used, &d, &dlen, &why), MG_CHUNKED_NEED_MORE);
    MG_CHECK_INT(mg_chunked_feed(&dec, "ab", 2, &used, &d, &dlen, &why), MG_CHUNKED_DATA);
    MG_CHECK(used == 2 && dlen == 2);
    MG_CHECK_INT(mg_chunked_feed(&dec, "c\r\n0\r\n", 6, &used, &d, &dlen, &why), MG_CHUNKED_DATA);
    MG_CHECK(used == 1 && dlen == 1 && d[0] == 'c');
    MG_CHECK_INT(mg_chunked_feed(&dec, "\r\n0\r\n", 5, &used, &d, &dlen, &why), MG_CHUNKED_NEED_MORE);
    MG_CHECK_INT(used, 5);
    MG_CHECK_INT(mg_chunked_feed(&dec, "\r\n", 2, &used, &d, &dlen, &why), MG_CHUNKED_DONE);
    MG_CHECK_INT(used, 2);
}

typedef struct chunk_row {
    const char *in;
    size_t len;
    uint64_t max;
    mg_chunked_result_t expect;
    const char *why;
} chunk_row_t;

#define C(s, m, e, w) {s, sizeof(s) - 1, m, e, w}

static const chunk_row_t chunk_rows[] = {
    C("0x10\r\n", 0, MG_CHUNKED_ERROR, "invalid character after chunk size"),
    C("0X10\r\n", 0, MG_CHUNKED_ERROR, "invalid character after chunk size"),
    C("+10\r\n", 0, MG_CHUNKED_ERROR, "chunk size is not hex digits"),
    C("-1\r\n", 0, MG_CHUNKED_ERROR, "chunk size is not hex digits"),
    C(" 10\r\n", 0, MG_CHUNKED_ERROR, "chunk size is not hex digits"),
    C("\t10\r\n", 0, MG_CHUNKED_ERROR, "chunk size is not hex digits"),
    C("10 \r\n", 0, MG_CHUNKED_ERROR, "invalid character after chunk size"),
    C("10\t\r\n", 0, MG_CHUNKED_ERROR, "invalid character after chunk size"),
    C("10 ;x\r\n", 0, MG_CHUNKED_ERROR, "invalid character after chunk size"),
    C("1 0\r\n", 0, MG_CHUNKED_ERROR, "invalid character after chunk size"),
    C("g\r\n", 0, MG_CHUNKED_ERROR, "chunk size is not hex digits"),
    C("\r\n", 0, MG_CHUNKED_ERROR, "chunk size is not hex digits"),
    C(";x\r\n", 0, MG_CHUNKED_ERROR, "chunk size is not hex digits"),
    C("5\nhello\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "invalid character after chunk size"),
    C("5\rhello\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "bare CR in chunk size line"),
    C("5;a\nhello\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "invalid character in chunk extension"),
    C("5;a\0\r\nhello\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "invalid character in chunk extension"),
    C("5;a\x7f\r\nhello\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "invalid character in chunk extension"),
    C("5\r\nhelloX\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "chunk data not followed by CRLF"),
    C("5\r\nhello\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "chunk data not followed by CRLF"),
    C("5\r\nhelloX\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "chunk data not followed by CRLF"),
    C("5\r\nhello\r\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "chunk data not followed by CRLF"),
    C("5\r\nhello\rX0\r\n\r\n", 0, MG_CHUNKED_ERROR, "chunk data not followed by CRLF"),
    C("5\r\nhell\r\n0\r\n\r\n", 0, MG_CHUNKED_ERROR, "chunk data not followed by CRLF"),
    /* 17+ hex digits: overflow. */
    C("10000000000000000\r\n", 0, MG_CHUNKED_ERROR, "chunk size has more than 16 hex digits"),
    C("00000000000000001\r\n", 0, MG_CHUNKED_ERROR, "chunk size has more than 16 hex digits"),
    C("00000000000000001\r\n", 1000, MG_CHUNKED_ERROR, "chunk size has more than 16 hex digits"),
    /* a 17-digit size with a small value under a limit: malformed, not too large */
    C("00000000000000010\r\n", 1000, MG_CHUNKED_ERROR, "chunk size has more than 16 hex digits"),
    C("FFFFFFFFFFFFFFFFF\r\n", 0, MG_CHUNKED_ERROR, "chunk size has more than 16 hex digits"),
    C("10000000000000000\r\n", 1000, MG_CHUNKED_TOO_LARGE, "chunked body too large"),
    C("FFFFFFFFFFFFFFFF\r\n", UINT64_MAX, MG_CHUNKED_NEED_MORE, NULL),
    C("1\r\na\r\nFFFFFFFFFFFFFFFF\r\n", 0, MG_CHUNKED_ERROR, "chunked body size overflows"),
    C("5\r\nhello\r\n", 4, MG_CHUNKED_TOO_LARGE, "chunked body too large"),
    C("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 5, MG_CHUNKED_TOO_LARGE, "chunked body too large"),
    C("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 5, MG_CHUNKED_DONE, NULL),
    C("0\r\n\r\n", 1, MG_CHUNKED_DONE, NULL),
    C("0000\r\n\r\n", 0, MG_CHUNKED_DONE, NULL),
    C("0;last\r\n\r\n", 0, MG_CHUNKED_DONE, NULL),
    C("0\r\nA: b\r\nC:d e\t\xff\r\n\r\n", 0, MG_CHUNKED_DONE, NULL),
    C("0\r\n", 0, MG_CHUNKED_NEED_MORE, NULL),
    C("0\r\nA: b\r\n", 0, MG_CHUNKED_NEED_MORE, NULL),
    C("FFFFFFFFFFFFFFFF\r\n", 0, MG_CHUNKED_NEED_MORE, NULL),
    /* Trailers. */
    C("0\r\nA: b\r\n c\r\n\r\n", 0, MG_CHUNKED_ERROR, "obs-fold in chunked trailer"),
    C("0\r\n A: b\r\n\r\n", 0, MG_CHUNKED_ERROR, "obs-fold in chunked trailer"),
    C("0\r\nA : b\r\n\r\n", 0, MG_CHUNKED_ERROR, "invalid chunked trailer field name"),
    C("0\r\nA\r\n\r\n", 0, MG_CHUNKED_ERROR, "invalid chunked trailer field name"),
    C("0\r\n: b\r\n\r\n", 0, MG_CHUNKED_ERROR, "invalid chunked trailer field"),
    C("0\r\nA: b\0\r\n\r\n", 0, MG_CHUNKED_ERROR, "control character in chunked trailer value"),
    C("0\r\nA: b\n\r\n", 0, MG_CHUNKED_ERROR, "control character in chunked trailer value"),
    C("0\r\nA: b\rX\r\n", 0, MG_CHUNKED_ERROR, "bare CR in chunked trailer"),
    C("0\r\n\rX", 0, MG_CHUNKED_ERROR, "bare CR at end of chunked body"),
    C("0\r\n\n", 0, MG_CHUNKED_ERROR, "invalid chunked trailer field"),
};

static void
test_chunked_table(void)
{
    static const size_t all[] = {1 << 20}, one[] = {1}, three[] = {3};
    const size_t *modes[] = {all, one, three};

    for (size_t i = 0; i < sizeof(chunk_rows) / sizeof(chunk_rows[0]); i++) {
        const chunk_row_t *r = &chunk_rows[i];
        for (size_t m = 0; m < 3; m++) {
            decoded_t d;
            chunked_decode(r->in, r->len, r->max, modes[m], 1, 0, &d);
            if (d.result != r->expect)
                printf("# chunk row %zu mode %zu: %s\n", i, m, d.why ? d.why : "-");
            MG_CHECK_INT(d.result, r->expect);
            if (r->why)
                MG_CHECK_STR(d.why, r->why);
        }
    }
}

static void
test_chunked_sticky_error(void)
{
    mg_chunked_t dec;
    size_t used = 99, dlen = 0;
    const char *d = NULL, *why = NULL;

    mg_chunked_init(&dec, 0);
    MG_CHECK_INT(mg_chunked_feed(&dec, "0x1\r\n", 5, &used, &d, &dlen, &why), MG_CHUNKED_ERROR);
    MG_CHECK_INT(used, 1); /* stopped at the 'x' */
    MG_CHECK_INT(mg_chunked_feed(&dec, "1\r\na\r\n", 6, &used, &d, &dlen, &why), MG_CHUNKED_ERROR);
    MG_CHECK_INT(used, 0);
}

static void
test_chunked_limits(void)
{
    static char buf[16384];
    decoded_t d;
    static const size_t all[] = {1 << 20}, one[] = {1};
    size_t n;

    /* A size line of exactly MG_CHUNKED_MAX_LINE bytes (CRLF included). */
    n = 0;
    buf[n++] = '1';
    buf[n++] = ';';
    while (n < MG_CHUNKED_MAX_LINE - 2)
        buf[n++] = 'a';
    memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
    chunked_decode(buf, n + 10, 0, all, 1, 0, &d);
    MG_CHECK_INT(d.result, MG_CHUNKED_DONE);
    MG_CHECK(d.payload_len == 1 && d.payload[0] == 'x');
    /* One more byte is too many. */
    n = 0;
    buf[n++] = '1';
    buf[n++] = ';';
    while (n < MG_CHUNKED_MAX_LINE - 1)
        buf[n++] = 'a';
    memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
    chunked_decode(buf, n + 10, 0, one, 1, 0, &d);
    MG_CHECK_INT(d.result, MG_CHUNKED_ERROR);
    MG_CHECK_STR(d.why, "chunk size line too long");
    /* Unterminated extension never grows unbounded. */
    memset(buf, 'a', sizeof(buf));
    buf[0] = '1';
    buf[1] = ';';
    chunked_decode(buf, sizeof(buf), 0, all, 1, 0, &d);
    MG_CHECK_INT(d.result, MG_CHUNKED_ERROR);
    MG_CHECK_STR(d.why, "chunk size line too long");
    MG_CHECK_INT(d.end, MG_CHUNKED_MAX_LINE);

    /* MG_CHUNKED_MAX_TRAILERS fields are fine, one more is not. */
    for (int extra = 0; extra < 2; extra++) {
        n = (size_t)snprintf(buf, sizeof(buf), "0\r\n");
        for (int i = 0; i < MG_CHUNKED_MAX_TRAILERS + extra; i++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "T%d: v\r\n", i);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
        chunked_decode(buf, n, 0, all, 1, 0, &d);
        MG_CHECK_INT(d.result, extra ? MG_CHUNKED_ERROR : MG_CHUNKED_DONE);
        if (extra)
            MG_CHECK_STR(d.why, "too many chunked trailer fields");
    }
    /* A trailer section over MG_CHUNKED_MAX_TRAILER_BYTES. */
    n = (size_t)snprintf(buf, sizeof(buf), "0\r\nBig: ");
    while (n < MG_CHUNKED_MAX_TRAILER_BYTES + 10)
        buf[n++] = 'v';
    memcpy(buf + n, "\r\n\r\n", 4);
    chunked_decode(buf, n + 4, 0, all, 1, 0, &d);
    MG_CHECK_INT(d.result, MG_CHUNKED_ERROR);
    MG_CHECK_STR(d.why, "chunked trailer section too large");
}

/* A large chunk is returned as DATA spans without copying, across feeds. */
static void
test_chunked_large_chunk(void)
{
    static char buf[70000];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "10000\r\n");
    decoded_t d;
    static const size_t pieces[] = {4093, 1, 17};
    size_t total = 0, off = 0;
    mg_chunked_t dec;

    for (size_t i = 0; i < 0x10000; i++)
        buf[n++] = (char)('a' + i % 26);
    memcpy(buf + n, "\r\n0\r\n\r\n", 7);
    n += 7;
    chunked_decode(buf, n, 0, pieces, 3, 0, &d);
    MG_CHECK_INT(d.result, MG_CHUNKED_DONE);
    MG_CHECK_INT(d.payload_len, 0x10000);
    MG_CHECK_INT(d.end, n);
    mg_chunked_init(&dec, 0);
    for (;;) {
        size_t used, dlen;
        const char *p, *why = NULL;
        mg_chunked_result_t r = mg_chunked_feed(&dec, buf + off, n - off, &used, &p, &dlen, &why);
        off += used;
        if (r == MG_CHUNKED_DATA) {
            for (size_t i = 0; i < dlen; i++)
                if (p[i] != (char)('a' + (total + i) % 26))
                    MG_CHECK(0);
            total += dlen;
            continue;
        }
        MG_CHECK_INT(r, MG_CHUNKED_DONE);
        break;
    }
    MG_CHECK_INT(total, 0x10000);
    MG_CHECK_INT(dec.total, 0x10000);
}

/* ---- path normalisation ---- */

typedef struct path_row {
    const char *target;
    size_t len;
    int expect;
    const char *out_or_why; /* the path on success, the reason on failure */
    const char *query;      /* on success: expected query, NULL for none */
} path_row_t;

#define P(s, e, o, q) {s, sizeof(s) - 1, e, o, q}

static const path_row_t path_rows[] = {
    P("/", 0, "/", NULL),
    P("/mcp", 0, "/mcp", NULL),
    P("/mcp/", 0, "/mcp/", NULL),
    P("/mcp/sse/x", 0, "/mcp/sse/x", NULL),
    P("/mcp?x=1&y=%2F/../#", -400, "request-target contains a fragment", NULL),
    P("/mcp?x=1&y=%2F/..//a", 0, "/mcp", "x=1&y=%2F/..//a"),
    P("/mcp?", 0, "/mcp", ""),
    P("/?a?b", 0, "/", "a?b"),
    P("/%6Dcp", 0, "/mcp", NULL),
    P("/%6d%63%70", 0, "/mcp", NULL),
    P("/%7e%7E", 0, "/~~", NULL),
    P("/a%2db%2E%5f", 0, "/a-b._", NULL),
    P("/a%3ab", 0, "/a%3Ab", NULL),
    P("/a%20b", 0, "/a%20b", NULL),
    P("/a%c3%a9", 0, "/a%C3%A9", NULL),
    P("/a%25", 0, "/a%25", NULL),
    P("/a%252F", 0, "/a%252F", NULL),
    P("/a%3F?q", 0, "/a%3F", "q"),
    P("/a:b@c!$&'()*+,;=", 0, "/a:b@c!$&'()*+,;=", NULL),
    P("/.hidden/...", 0, "/.hidden/...", NULL),
    P("/a./.b/..c", 0, "/a./.b/..c", NULL),
    P("/%2e%2e%2e", 0, "/...", NULL),
    /* Encoded slash, backslash, NUL, controls. */
    P("/a%2Fb", -400, "path contains an encoded slash", NULL),
    P("/a%2fb", -400, "path contains an encoded slash", NULL),
    P("/..%2f", -400, "path contains an encoded slash", NULL),
    P("/a%5Cb", -400, "path contains an encoded backslash", NULL),
    P("/a%5cb", -400, "path contains an encoded backslash", NULL),
    P("/a%00", -400, "path contains an encoded NUL", NULL),
    P("/a%0A", -400, "path contains an encoded control character", NULL),
    P("/a%0d", -400, "path contains an encoded control character", NULL),
    P("/a%1f", -400, "path contains an encoded control character", NULL),
    P("/a%7F", -400, "path contains an encoded control character", NULL),
    P("/a\\b", -400, "path contains a backslash", NULL),
    /* Dot segments, plain and encoded. */
    P("/mcp/../x", -400, "path contains a dot segment", NULL),
    P("/mcp/./x", -400, "path contains a dot segment", NULL),
    P("/mcp/.", -400, "path contains a dot segment", NULL),
    P("/mcp/..", -400, "path contains a dot segment", NULL),
    P("/mcp/..?x", -400, "path contains a dot segment", NULL),
    P("/.", -400, "path contains a dot segment", NULL),
    P("/..", -400, "path contains a dot segment", NULL),
    P("/../mcp", -400, "path contains a dot segment", NULL),
    P("/mcp/%2e%2e/x", -400, "path contains a dot segment", NULL),
    P("/mcp/%2E%2E", -400, "path contains a dot segment", NULL),
    P("/mcp/%2e./x", -400, "path contains a dot segment", NULL),
    P("/mcp/.%2E/x", -400, "path contains a dot segment", NULL),
    P("/mcp/%2e", -400, "path contains a dot segment", NULL),
    P("/mcp/%2e/", -400, "path contains a dot segment", NULL),
    /* Empty segments. */
    P("//mcp", -400, "path contains an empty segment ('//')", NULL),
    P("/mcp//x", -400, "path contains an empty segment ('//')", NULL),
    P("/mcp//", -400, "path contains an empty segment ('//')", NULL),
    P("//", -400, "path contains an empty segment ('//')", NULL),
    /* Malformed escapes. */
    P("/a%", -400, "malformed percent-encoding in path", NULL),
    P("/a%2", -400, "malformed percent-encoding in path", NULL),
    P("/a%2?x", -400, "malformed percent-encoding in path", NULL),
    P("/a%zz", -400, "malformed percent-encoding in path", NULL),
    P("/a%g0", -400, "malformed percent-encoding in path", NULL),
    P("/a%%41", -400, "malformed percent-encoding in path", NULL),
    P("/a%-1", -400, "malformed percent-encoding in path", NULL),
    /* Forms and characters. */
    P("/a#b", -400, "request-target contains a fragment", NULL),
    P("/a?b#c", -400, "request-target contains a fragment", NULL),
    P("*", -400, "asterisk-form request-target", NULL),
    P("http://evil.example/mcp", -400, "absolute-form request-target", NULL),
    P("HTTPS://gw.example/mcp", -400, "absolute-form request-target", NULL),
    P("gw.example:443", -400, "authority-form request-target", NULL),
    P("mcp", -400, "request-target is not origin-form", NULL),
    P("?x", -400, "request-target is not origin-form", NULL),
    P("", -400, "empty request-target", NULL),
    P("/a b", -400, "invalid character in request-target", NULL),
    P("/a\tb", -400, "invalid character in request-target", NULL),
    P("/a\0b", -400, "invalid character in request-target", NULL),
    P("/caf\xc3\xa9", -400, "invalid character in request-target", NULL),
    P("/?q\x7f", -400, "invalid character in request-target", NULL),
    P("/a\"b", -400, "invalid character in path", NULL),
    P("/a<b>", -400, "invalid character in path", NULL),
    P("/a{b}", -400, "invalid character in path", NULL),
    P("/a|b", -400, "invalid character in path", NULL),
    P("/a^b", -400, "invalid character in path", NULL),
    P("/a`b", -400, "invalid character in path", NULL),
    P("/a[b]", -400, "invalid character in path", NULL),
};

static void
test_path_table(void)
{
    for (size_t i = 0; i < sizeof(path_rows) / sizeof(path_rows[0]); i++) {
        const path_row_t *r = &path_rows[i];
        char out[256];
        size_t olen = 999, qlen = 999;
        const char *q = (const char *)1, *why = NULL;
        int got = mg_http_normalize_path(r->target, r->len, out, sizeof(out), &olen, &q, &qlen, &why);
        if (got != r->expect)
            printf("# path row %zu: %.*s (%s)\n", i, (int)r->len, r->target, why ? why : "-");
        MG_CHECK_INT(got, r->expect);
        if (r->expect == 0) {
            MG_CHECK_STR(out, r->out_or_why);
            MG_CHECK_INT(olen, strlen(r->out_or_why));
            if (r->query == NULL) {
                MG_CHECK(q == NULL);
                MG_CHECK_INT(qlen, 0);
            } else {
                MG_CHECK(q != NULL && q > r->target && q <= r->target + r->len);
                MG_CHECK_INT(qlen, strlen(r->query));
                MG_CHECK(q != NULL && memcmp(q, r->query, qlen) == 0);
            }
        } else {
            MG_CHECK_STR(why, r->out_or_why);
            MG_CHECK(q == NULL);
        }
    }
}

static void
test_path_cap(void)
{
    char out[8];
    size_t olen = 0;
    const char *why = NULL;

    MG_CHECK_INT(mg_http_normalize_path("/abcdef", 7, out, sizeof(out), &olen, NULL, NULL, &why), 0);
    MG_CHECK_STR(out, "/abcdef");
    MG_CHECK_INT(mg_http_normalize_path("/abcdefg", 8, out, sizeof(out), &olen, NULL, NULL, &why),
                 -400);
    MG_CHECK_STR(why, "path too long");
    /* Decoding shrinks: measured after decoding. */
    MG_CHECK_INT(mg_http_normalize_path("/%61bcdef?q", 11, out, sizeof(out), &olen, NULL, NULL, &why),
                 0);
    MG_CHECK_STR(out, "/abcdef");
    /* A kept escape grows nothing but must fit whole. */
    MG_CHECK_INT(mg_http_normalize_path("/abcd%3a", 8, out, sizeof(out), &olen, NULL, NULL, &why),
                 -400);
    MG_CHECK_STR(why, "path too long");
    MG_CHECK_INT(mg_http_normalize_path("/", 1, out, 1, &olen, NULL, NULL, &why), -400);
    MG_CHECK_INT(mg_http_normalize_path("/", 1, out, 2, &olen, NULL, NULL, &why), 0);
    MG_CHECK_STR(out, "/");
}

/* Targets are counted, not NUL-terminated: nothing is read past the end
 * (the sanitizer build checks these exact-size heap copies). */
static void
test_path_exact_buffers(void)
{
    static const char *const t[] = {"/a%", "/a%2", "/a%4", "/mcp/..", "/mcp/%2e", "/m?", "/"};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i]);
        char *copy = malloc(n);
        char out[64];
        const char *why = NULL;
        int expect = (i >= 5) ? 0 : -400;
        MG_CHECK(copy != NULL);
        if (copy == NULL)
            continue;
        memcpy(copy, t[i], n);
        MG_CHECK_INT(mg_http_normalize_path(copy, n, out, sizeof(out), NULL, NULL, NULL, &why),
                     expect);
        free(copy);
    }
}

/* Heads too are parsed from exact-size buffers at every length. */
static void
test_request_exact_buffers(void)
{
    for (size_t i = 0; i < sizeof(request_rows) / sizeof(request_rows[0]); i++) {
        const row_t *r = &request_rows[i];
        for (size_t k = 0; k <= r->len; k++) {
            char *copy = malloc(k ? k : 1);
            MG_CHECK(copy != NULL);
            if (copy == NULL)
                continue;
            memcpy(copy, r->raw, k);
            (void)mg_http_parse_request_head(copy, k, &req, NULL);
            (void)mg_http_parse_response_head(copy, k, &resp, NULL);
            free(copy);
        }
    }
}

/* Normalised output is a fixed point. */
static void
test_path_idempotent(void)
{
    for (size_t i = 0; i < sizeof(path_rows) / sizeof(path_rows[0]); i++) {
        char out[256], again[256];
        size_t olen = 0, alen = 0;
        if (path_rows[i].expect != 0)
            continue;
        MG_CHECK_INT(mg_http_normalize_path(path_rows[i].target, path_rows[i].len, out, sizeof(out),
                                            &olen, NULL, NULL, NULL),
                     0);
        MG_CHECK_INT(mg_http_normalize_path(out, olen, again, sizeof(again), &alen, NULL, NULL, NULL),
                     0);
        MG_CHECK_STR(again, out);
    }
}

int
main(void)
{
    MG_RUN(test_request_table);
    MG_RUN(test_request_prefixes);
    MG_RUN(test_request_fields);
    MG_RUN(test_request_host_len);
    MG_RUN(test_request_methods);
    MG_RUN(test_request_framing_fields);
    MG_RUN(test_request_keep_alive_expect);
    MG_RUN(test_request_too_many_headers);
    MG_RUN(test_request_absolute_form);
    MG_RUN(test_response_table);
    MG_RUN(test_response_fields);
    MG_RUN(test_hop_by_hop);
    MG_RUN(test_connection_lists);
    MG_RUN(test_find_header);
    MG_RUN(test_field_name_bytes);
    MG_RUN(test_field_value_bytes);
    MG_RUN(test_request_line_bytes);
    MG_RUN(test_reason_phrase_bytes);
    MG_RUN(test_field_error_order);
    MG_RUN(test_status_line_ends);
    MG_RUN(test_long_values);
    MG_RUN(test_field_kinds);
    MG_RUN(test_chunked_all_at_once);
    MG_RUN(test_chunked_byte_at_a_time);
    MG_RUN(test_chunked_every_split_point);
    MG_RUN(test_chunked_random_pieces);
    MG_RUN(test_chunked_pipelined);
    MG_RUN(test_chunked_table);
    MG_RUN(test_chunked_sticky_error);
    MG_RUN(test_chunked_limits);
    MG_RUN(test_chunked_large_chunk);
    MG_RUN(test_path_table);
    MG_RUN(test_path_cap);
    MG_RUN(test_path_idempotent);
    MG_RUN(test_path_exact_buffers);
    MG_RUN(test_request_exact_buffers);
    return mg_test_done();
}
