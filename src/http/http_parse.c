/* http_parse.c -- strict HTTP/1.1 request and response head parsing (RFC 9110, RFC 9112). */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "mcpgate/http_parse.h"
#include "http_int.h"

/* RFC 9112 2.2 lets a server skip empty lines before the request line (left
 * over from a previous body's stray CRLF); we skip a few, never an unbounded
 * number. */
#define MG_HTTP_MAX_LEADING_CRLF 4

/* Finds the CRLF ending the line that starts at <start>. Returns 1 and sets
 * *eol to the index of the CR, 0 when the line is not complete yet, -1 for a
 * bare LF or a CR not followed by LF (RFC 9112 2.2: we do not accept either
 * as a line terminator, since other parsers on the path might). */
static int
find_eol(const char *buf, size_t len, size_t start, size_t *eol)
{
    for (size_t i = start; i < len; i++) {
        if (buf[i] == '\n')
            return -1;
        if (buf[i] == '\r') {
            if (i + 1 == len)
                return 0;
            if (buf[i + 1] != '\n')
                return -1;
            *eol = i;
            return 1;
        }
    }
    return 0;
}

/* One field line (without its CRLF): field-name ":" OWS field-value OWS
 * (RFC 9112 5). Returns 0 or -1 with *why. */
static int
parse_field_line(const char *line, size_t n, mg_http_header_t *h, const char **why)
{
    size_t i = 0, v, end;

    /* obs-fold (RFC 9112 5.2): a line starting with whitespace continues the
     * previous one for some parsers and starts a new one for others. */
    if (n > 0 && mg_http_is_ows((unsigned char)line[0])) {
        *why = "obs-fold (line folding) in header section";
        return -1;
    }
    while (i < n && mg_http_is_tchar((unsigned char)line[i]))
        i++;
    if (i == n || line[i] != ':') {
        if (memchr(line + i, ':', n - i) == NULL)
            *why = "header line without ':'";
        else if (mg_http_is_ows((unsigned char)line[i]))
            /* RFC 9112 5.1: MUST reject; libevent would ignore the field. */
            *why = "whitespace before ':' in header field";
        else
            *why = "invalid character in header field name";
        return -1;
    }
    if (i == 0) {
        *why = "empty header field name";
        return -1;
    }
    for (size_t k = i + 1; k < n; k++) {
        unsigned char c = (unsigned char)line[k];
        if (!mg_http_is_field_byte(c)) {
            *why = c == '\0' ? "NUL in header field value" : "control character in header field value";
            return -1;
        }
    }
    v = i + 1;
    end = n;
    while (v < end && mg_http_is_ows((unsigned char)line[v]))
        v++;
    while (end > v && mg_http_is_ows((unsigned char)line[end - 1]))
        end--;
    h->name = line;
    h->name_len = i;
    h->value = line + v;
    h->value_len = end - v;
    return 0;
}

/* Parses field lines from *pos through the empty line. Returns 1 when the
 * section is complete (*pos just past the final CRLF), 0 when more bytes are
 * needed, -1 on a syntax error, -2 when there are too many fields. */
static int
parse_fields(const char *buf, size_t len, size_t *pos, mg_http_header_t *hdrs, size_t *n,
             const char **why)
{
    size_t p = *pos, eol = 0;
    int r;

    for (;;) {
        r = find_eol(buf, len, p, &eol);
        if (r < 0) {
            *why = "bare CR or LF in header section";
            return -1;
        }
        if (r == 0) {
            /* Refuse a fold early: it can never become valid. */
            if (p < len && mg_http_is_ows((unsigned char)buf[p])) {
                *why = "obs-fold (line folding) in header section";
                return -1;
            }
            return 0;
        }
        if (eol == p) {
            *pos = p + 2;
            return 1;
        }
        if (*n == MG_HTTP_MAX_HEADERS) {
            *why = "too many header fields";
            return -2;
        }
        if (parse_field_line(buf + p, eol - p, &hdrs[*n], why) < 0)
            return -1;
        (*n)++;
        p = eol + 2;
    }
}

/* Content-Length = 1*DIGIT (RFC 9110 8.6), at most 19 digits and within
 * int64. No sign, no inner whitespace, no list: "5, 5" is refused although
 * RFC 9110 lets a recipient accept it, because we never guess at framing. */
static int
parse_content_length(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* What the framing and connection fields of a message say. */
typedef struct framing {
    int64_t content_length;
    bool have_cl;
    bool have_te;
    bool conn_close;
    bool conn_keep_alive;
} framing_t;

static void
scan_connection(const char *v, size_t n, framing_t *f)
{
    if (mg_http_connection_lists(v, n, "close", 5))
        f->conn_close = true;
    if (mg_http_connection_lists(v, n, "keep-alive", 10))
        f->conn_keep_alive = true;
}

/* Content-Length, Transfer-Encoding and Connection (RFC 9112 6). Returns 0
 * or -1 with *why. */
static int
scan_framing(const mg_http_header_t *h, size_t n, framing_t *f, const char **why)
{
    memset(f, 0, sizeof(*f));
    f->content_length = -1;
    for (size_t i = 0; i < n; i++) {
        if (mg_http_ieq(h[i].name, h[i].name_len, "content-length")) {
            if (f->have_cl) {
                *why = "duplicate Content-Length";
                return -1;
            }
            if (parse_content_length(h[i].value, h[i].value_len, &f->content_length) < 0) {
                *why = "invalid Content-Length";
                return -1;
            }
            f->have_cl = true;
        } else if (mg_http_ieq(h[i].name, h[i].name_len, "transfer-encoding")) {
            /* Two fields are one list ("chunked, chunked"): refused as such. */
            if (f->have_te) {
                *why = "duplicate Transfer-Encoding";
                return -1;
            }
            if (!mg_http_ieq(h[i].value, h[i].value_len, "chunked")) {
                *why = "unsupported Transfer-Encoding (only \"chunked\" is accepted)";
                return -1;
            }
            f->have_te = true;
        } else if (mg_http_ieq(h[i].name, h[i].name_len, "connection")) {
            scan_connection(h[i].value, h[i].value_len, f);
        }
    }
    /* RFC 9112 6.3 (3): the classic CL.TE / TE.CL smuggling vector. */
    if (f->have_cl && f->have_te) {
        *why = "both Content-Length and Transfer-Encoding";
        return -1;
    }
    return 0;
}

/* A plausible Host value (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name of
 * letters, digits, '-', '.', '_', '~', or an IP-literal in brackets, then an
 * optional ':' and 1..5 digit port up to 65535. */
static bool
host_ok(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0)
        return false;
    if (s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (mg_http_hexval(c) < 0 && c != ':' && c != '.')
                return false;
        }
        if (i == n || i == 1)
            return false;
        i++;
    } else {
        for (; i < n && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~'))
                return false;
        }
        if (i == 0)
            return false;
    }
    if (i < n) {
        unsigned long port = 0;
        size_t digits = n - i - 1;
        if (s[i] != ':' || digits == 0 || digits > 5)
            return false;
        for (i++; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            port = port * 10 + (unsigned long)(s[i] - '0');
        }
        if (port > 65535)
            return false;
    }
    return true;
}

static mg_http_method_t
method_from(const char *m, size_t n)
{
    static const struct {
        const char *name;
        mg_http_method_t method;
    } methods[] = {
        {"GET", MG_HTTP_GET},         {"HEAD", MG_HTTP_HEAD},       {"POST", MG_HTTP_POST},
        {"PUT", MG_HTTP_PUT},         {"DELETE", MG_HTTP_DELETE},   {"OPTIONS", MG_HTTP_OPTIONS},
        {"PATCH", MG_HTTP_PATCH},     {"CONNECT", MG_HTTP_CONNECT}, {"TRACE", MG_HTTP_TRACE},
    };
    /* Methods are case-sensitive (RFC 9110 9.1): "get" is some other method. */
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0)
            return methods[i].method;
    return MG_HTTP_OTHER;
}

/* "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3). Returns the minor version for 1.0
 * and 1.1, -505 for another well-formed version, -400 for anything else. */
static int
parse_version(const char *s, size_t n)
{
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
        s[7] < '0' || s[7] > '9')
        return -400;
    if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
        return -505;
    return s[7] - '0';
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3),
 * exactly one SP each. */
static int
parse_request_line(const char *line, size_t n, mg_http_request_head_t *out, const char **why)
{
    size_t i = 0, t, j;
    int v;

    while (i < n && mg_http_is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0) {
        *why = "invalid request method";
        return -400;
    }
    if (i == n) {
        *why = "request line without request-target and version";
        return -400;
    }
    if (line[i] != ' ') {
        *why = "invalid character in request method";
        return -400;
    }
    t = i + 1;
    j = t;
    while (j < n && (unsigned char)line[j] >= 0x21 && (unsigned char)line[j] <= 0x7E)
        j++;
    if (j == t) {
        *why = "empty request-target or extra space in request line";
        return -400;
    }
    if (j == n) {
        /* RFC 9112 2.3 / 1945: "GET /path" is HTTP/0.9, which has no headers
         * and no framing. libevent answers it; we do not. */
        *why = "HTTP/0.9 request (no HTTP version)";
        return -400;
    }
    if (line[j] != ' ') {
        *why = "invalid character in request-target";
        return -400;
    }
    v = parse_version(line + j + 1, n - j - 1);
    if (v == -505) {
        *why = "unsupported HTTP version";
        return -505;
    }
    if (v < 0) {
        *why = "malformed HTTP version";
        return -400;
    }
    out->method_str = line;
    out->method_len = i;
    out->method = method_from(line, i);
    out->target = line + t;
    out->target_len = j - t;
    out->version_minor = v;
    return 0;
}

int
mg_http_parse_request_head(const char *buf, size_t len, mg_http_request_head_t *out,
                           const char **why)
{
    const char *w = NULL;
    size_t pos = 0, eol = 0;
    int rc = -400, r, skipped = 0;
    framing_t f;
    bool have_host = false, have_auth = false;

    memset(out, 0, sizeof(*out));
    out->content_length = -1;

    for (;;) {
        if (pos < len && buf[pos] == '\n') {
            w = "bare LF before request line";
            goto fail;
        }
        if (pos >= len || buf[pos] != '\r')
            break;
        if (pos + 1 == len)
            goto incomplete;
        if (buf[pos + 1] != '\n') {
            w = "bare CR before request line";
            goto fail;
        }
        if (++skipped > MG_HTTP_MAX_LEADING_CRLF) {
            w = "too many empty lines before request line";
            goto fail;
        }
        pos += 2;
    }

    r = find_eol(buf, len, pos, &eol);
    if (r < 0) {
        w = "bare CR or LF in request line";
        goto fail;
    }
    if (r == 0) {
        /* Refuse early what can never become a request line (a TLS
         * ClientHello on the plain port, binary junk): the method so far must
         * be a token. */
        for (size_t i = pos; i < len; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (c == ' ' && i > pos)
                break;
            if (!mg_http_is_tchar(c)) {
                w = "invalid request method";
                goto fail;
            }
        }
        goto incomplete;
    }
    rc = parse_request_line(buf + pos, eol - pos, out, &w);
    if (rc < 0)
        goto fail;
    rc = -400;
    pos = eol + 2;

    r = parse_fields(buf, len, &pos, out->headers, &out->nheaders, &w);
    if (r == -2)
        rc = -431;
    if (r < 0)
        goto fail;
    if (r == 0)
        goto incomplete;

    if (scan_framing(out->headers, out->nheaders, &f, &w) < 0)
        goto fail;
    if (f.have_te && out->version_minor == 0) {
        /* RFC 9112 6.1: an HTTP/1.0 recipient cannot know chunked. */
        w = "Transfer-Encoding in an HTTP/1.0 request";
        goto fail;
    }
    for (size_t i = 0; i < out->nheaders; i++) {
        const mg_http_header_t *h = &out->headers[i];
        if (mg_http_ieq(h->name, h->name_len, "host")) {
            /* RFC 9112 3.2: MUST respond 400 to more than one Host. */
            if (have_host) {
                w = "duplicate Host";
                goto fail;
            }
            if (!host_ok(h->value, h->value_len)) {
                w = "invalid Host";
                goto fail;
            }
            have_host = true;
            out->host = h->value;
            out->host_len = h->value_len;
        } else if (mg_http_ieq(h->name, h->name_len, "authorization")) {
            /* Which credential would we check, and which would upstream see? */
            if (have_auth) {
                w = "duplicate Authorization";
                goto fail;
            }
            have_auth = true;
        } else if (mg_http_ieq(h->name, h->name_len, "expect")) {
            if (!mg_http_ieq(h->value, h->value_len, "100-continue")) {
                w = "unsupported Expect";
                goto fail;
            }
            /* RFC 9110 10.1.1: ignored in an HTTP/1.0 request. */
            if (out->version_minor == 1)
                out->expect_continue = true;
        }
    }
    if (!have_host && out->version_minor == 1) {
        w = "missing Host";
        goto fail;
    }
    out->chunked = f.have_te;
    out->content_length = f.content_length;
    if (out->version_minor == 1)
        out->keep_alive = !f.conn_close;
    else
        out->keep_alive = f.conn_keep_alive && !f.conn_close;
    return (int)pos;

incomplete:
    return 0;
fail:
    if (why)
        *why = w;
    return rc;
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4);
 * "HTTP/1.1 200" without the second SP is accepted too. */
static int
parse_status_line(const char *line, size_t n, mg_http_response_head_t *out, const char **why)
{
    int v;

    if (n < 12 || line[8] != ' ') {
        *why = "malformed status line";
        return -1;
    }
    v = parse_version(line, 8);
    if (v < 0) {
        *why = v == -505 ? "unsupported HTTP version in response" : "malformed status line";
        return -1;
    }
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9') {
            *why = "malformed status code";
            return -1;
        }
    }
    out->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (out->status < 100 || out->status > 599) {
        *why = "status code out of range";
        return -1;
    }
    if (n > 12) {
        if (line[12] != ' ') {
            *why = "malformed status code";
            return -1;
        }
        for (size_t i = 13; i < n; i++) {
            if (!mg_http_is_field_byte((unsigned char)line[i])) {
                *why = "control character in reason phrase";
                return -1;
            }
        }
    }
    out->version_minor = v;
    return 0;
}

int
mg_http_parse_response_head(const char *buf, size_t len, mg_http_response_head_t *out,
                            const char **why)
{
    const char *w = NULL;
    size_t pos = 0, eol = 0;
    int r;
    framing_t f;

    memset(out, 0, sizeof(*out));
    out->content_length = -1;

    r = find_eol(buf, len, 0, &eol);
    if (r < 0) {
        w = "bare CR or LF in status line";
        goto fail;
    }
    if (r == 0) {
        /* Refuse early what can never become "HTTP/1.x". */
        static const char prefix[] = "HTTP/1.";
        for (size_t i = 0; i < len && i < sizeof(prefix) - 1; i++) {
            if (buf[i] != prefix[i]) {
                w = "malformed status line";
                goto fail;
            }
        }
        goto incomplete;
    }
    if (parse_status_line(buf, eol, out, &w) < 0)
        goto fail;
    pos = eol + 2;

    r = parse_fields(buf, len, &pos, out->headers, &out->nheaders, &w);
    if (r < 0)
        goto fail;
    if (r == 0)
        goto incomplete;
    if (scan_framing(out->headers, out->nheaders, &f, &w) < 0)
        goto fail;
    if (f.have_te && out->version_minor == 0) {
        /* RFC 9112 6.1: treat the framing as faulty. */
        w = "Transfer-Encoding in an HTTP/1.0 response";
        goto fail;
    }
    out->chunked = f.have_te;
    out->content_length = f.content_length;
    if (out->version_minor == 1)
        out->keep_alive = !f.conn_close;
    else
        out->keep_alive = f.conn_keep_alive && !f.conn_close;
    return (int)pos;

incomplete:
    return 0;
fail:
    if (why)
        *why = w;
    return -502;
}

const mg_http_header_t *
mg_http_find_header(const mg_http_header_t *headers, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (mg_http_ieq(headers[i].name, headers[i].name_len, name))
            return &headers[i];
    return NULL;
}

bool
mg_http_is_hop_by_hop(const char *name, size_t name_len)
{
    static const char *const hop[] = {
        "connection", "keep-alive",          "proxy-connection",   "te",      "trailer",
        "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate",
    };
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (mg_http_ieq(name, name_len, hop[i]))
            return true;
    return false;
}

bool
mg_http_connection_lists(const char *conn_value, size_t conn_len, const char *name,
                         size_t name_len)
{
    size_t i = 0;

    /* #token (RFC 9110 5.6.1): elements separated by commas with OWS; empty
     * elements are allowed and skipped. */
    while (i < conn_len) {
        size_t start, end;
        while (i < conn_len && (mg_http_is_ows((unsigned char)conn_value[i]) || conn_value[i] == ','))
            i++;
        start = i;
        while (i < conn_len && conn_value[i] != ',')
            i++;
        end = i;
        while (end > start && mg_http_is_ows((unsigned char)conn_value[end - 1]))
            end--;
        if (end > start && end - start == name_len) {
            size_t k;
            for (k = 0; k < name_len; k++)
                if (mg_http_lower((unsigned char)conn_value[start + k]) !=
                    mg_http_lower((unsigned char)name[k]))
                    break;
            if (k == name_len)
                return true;
        }
    }
    return false;
}
