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

/* Byte classes (MG_HTTP_CT_* in http_int.h), written out from the RFC 9110
 * definitions; tests/unit/test_http_parse.c checks every byte of every class
 * through the parsers. */
/* clang-format off */
const unsigned char mg_http_ctype[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
    0x02, 0x07, 0x06, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x06, 0x07, 0x07, 0x06, 0x07, 0x07, 0x06, /* 0x20 */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0x30 */
    0x06, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 0x40 */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x06, 0x06, 0x07, 0x07, /* 0x50 */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 0x60 */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x07, 0x06, 0x07, 0x00, /* 0x70 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x80 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x90 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xA0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xB0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xC0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xD0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xE0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xF0 */
};
/* clang-format on */

#define MG_SWAR_ONES UINT64_C(0x0101010101010101)
#define MG_SWAR_HIGHS UINT64_C(0x8080808080808080)

/* True when one of the eight bytes of <w> is below 0x20 or is 0x7F, i.e. may
 * not be a field byte (HTAB may, and is rechecked by the caller), or is the
 * CR ending the line. The "has a byte less than n" and "has a zero byte"
 * word tricks (Bit Twiddling Hacks): exact for the word as a whole whatever
 * the byte order, and bytes >= 0x80 (obs-text) never set them. This lets a
 * 600-byte bearer token be checked eight bytes per step in portable C. */
static inline bool
word_has_ctl(uint64_t w)
{
    uint64_t del = w ^ (MG_SWAR_ONES * 0x7F);
    uint64_t below_sp = (w - MG_SWAR_ONES * 0x20) & ~w;
    uint64_t is_del = (del - MG_SWAR_ONES) & ~del;

    return ((below_sp | is_del) & MG_SWAR_HIGHS) != 0;
}

/* The index of the first byte at or after <i> that is not a field byte (CR,
 * LF, NUL, another control byte or DEL), or <len> if there is none. */
static size_t
skip_field_bytes(const char *buf, size_t i, size_t len)
{
    /* Two words per step while both are clean: the long values (tokens). */
    while (len - i >= 16) {
        uint64_t w[2];

        memcpy(w, buf + i, sizeof(w)); /* unaligned loads, without UB */
        if (word_has_ctl(w[0]) || word_has_ctl(w[1]))
            break;
        i += 16;
    }
    while (len - i >= 8) {
        uint64_t w;
        size_t stop;

        memcpy(&w, buf + i, sizeof(w));
        if (!word_has_ctl(w)) {
            i += 8;
            continue;
        }
        for (stop = i + 8; i < stop; i++)
            if (!mg_http_is_field_byte((unsigned char)buf[i]))
                return i;
        /* Only HTABs set the test off: go on a word at a time. */
    }
    for (; i < len; i++)
        if (!mg_http_is_field_byte((unsigned char)buf[i]))
            return i;
    return len;
}

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

/* The usual field line in one pass: a token, ':', field bytes, CRLF.
 * Returns 1 with *h set and *next just past the CRLF. Returns 0 when the
 * section is not complete yet, and only when the careful path (find_eol, the
 * fold check, parse_field_line) would say so too: the line has no CR or LF
 * before <len> (at most a CR as the very last byte) and does not start with
 * OWS. Returns -1 for anything else (the empty line, a fold, a bare CR or LF,
 * a control byte, a bad name): the careful path decides those and words the
 * error, so both paths accept, refuse and report exactly alike. */
static int
fast_field_line(const char *buf, size_t len, size_t p, mg_http_header_t *h, size_t *next)
{
    size_t i = p, colon, v, end;

    /* Four independent lookups per step, then byte by byte to the end. */
    while (len - i >= 4 &&
           (mg_http_ctype[(unsigned char)buf[i]] & mg_http_ctype[(unsigned char)buf[i + 1]] &
            mg_http_ctype[(unsigned char)buf[i + 2]] & mg_http_ctype[(unsigned char)buf[i + 3]] &
            MG_HTTP_CT_TCHAR))
        i += 4;
    while (i < len && mg_http_is_tchar((unsigned char)buf[i]))
        i++;
    if (i == len)
        return 0;
    if (i == p || buf[i] != ':')
        return -1;
    colon = i;
    i = skip_field_bytes(buf, colon + 1, len);
    if (i == len || (buf[i] == '\r' && i + 1 == len))
        return 0;
    if (buf[i] != '\r' || buf[i + 1] != '\n')
        return -1;
    v = colon + 1;
    end = i;
    while (v < end && mg_http_is_ows((unsigned char)buf[v]))
        v++;
    while (end > v && mg_http_is_ows((unsigned char)buf[end - 1]))
        end--;
    h->name = buf + p;
    h->name_len = colon - p;
    h->value = buf + v;
    h->value_len = end - v;
    *next = i + 2;
    return 1;
}

/* Parses field lines from *pos through the empty line. Returns 1 when the
 * section is complete (*pos just past the final CRLF), 0 when more bytes are
 * needed, -1 on a syntax error, -2 when there are too many fields. */
static int
parse_fields(const char *buf, size_t len, size_t *pos, mg_http_header_t *hdrs, size_t *n,
             const char **why)
{
    size_t p = *pos, eol = 0, next = 0;
    int r;

    for (;;) {
        if (*n < MG_HTTP_MAX_HEADERS) {
            r = fast_field_line(buf, len, p, &hdrs[*n], &next);
            if (r > 0) {
                (*n)++;
                p = next;
                continue;
            }
            if (r == 0)
                return 0;
        }
        /* The careful path: the empty line, the field limit, every error. */
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

/* The fields the parsers act on. */
typedef enum field_kind {
    FK_OTHER = 0,
    FK_HOST,
    FK_EXPECT,
    FK_CONNECTION,
    FK_AUTHORIZATION,
    FK_CONTENT_LENGTH,
    FK_TRANSFER_ENCODING,
} field_kind_t;

/* Which of them <name> is. The six names differ in length, so most fields
 * are told apart by a table lookup on their length, and at most one
 * case-insensitive compare runs per field. */
static field_kind_t
field_kind(const char *name, size_t n)
{
    static const struct {
        const char *name; /* lower case */
        field_kind_t kind;
    } by_len[18] = {
        [4] = {"host", FK_HOST},
        [6] = {"expect", FK_EXPECT},
        [10] = {"connection", FK_CONNECTION},
        [13] = {"authorization", FK_AUTHORIZATION},
        [14] = {"content-length", FK_CONTENT_LENGTH},
        [17] = {"transfer-encoding", FK_TRANSFER_ENCODING},
    };

    if (n >= sizeof(by_len) / sizeof(by_len[0]) || by_len[n].name == NULL)
        return FK_OTHER;
    for (size_t i = 0; i < n; i++)
        if (mg_http_lower((unsigned char)name[i]) != (unsigned char)by_len[n].name[i])
            return FK_OTHER;
    return by_len[n].kind;
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
 * or -1 with *why. On success kinds[i] is the field_kind_t of h[i], for the
 * request checks that follow. */
static int
scan_framing(const mg_http_header_t *h, size_t n, unsigned char *kinds, framing_t *f,
             const char **why)
{
    memset(f, 0, sizeof(*f));
    f->content_length = -1;
    for (size_t i = 0; i < n; i++) {
        field_kind_t k = field_kind(h[i].name, h[i].name_len);
        kinds[i] = (unsigned char)k;
        if (k == FK_CONTENT_LENGTH) {
            if (f->have_cl) {
                *why = "duplicate Content-Length";
                return -1;
            }
            if (parse_content_length(h[i].value, h[i].value_len, &f->content_length) < 0) {
                *why = "invalid Content-Length";
                return -1;
            }
            f->have_cl = true;
        } else if (k == FK_TRANSFER_ENCODING) {
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
        } else if (k == FK_CONNECTION) {
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
        size_t len;
        mg_http_method_t method;
    } methods[] = {
        {"GET", 3, MG_HTTP_GET},       {"HEAD", 4, MG_HTTP_HEAD},
        {"POST", 4, MG_HTTP_POST},     {"PUT", 3, MG_HTTP_PUT},
        {"DELETE", 6, MG_HTTP_DELETE}, {"OPTIONS", 7, MG_HTTP_OPTIONS},
        {"PATCH", 5, MG_HTTP_PATCH},   {"CONNECT", 7, MG_HTTP_CONNECT},
        {"TRACE", 5, MG_HTTP_TRACE},
    };
    /* Methods are case-sensitive (RFC 9110 9.1): "get" is some other method. */
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].len == n && memcmp(methods[i].name, m, n) == 0)
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

/* The usual request line in one pass: token SP VCHARs SP "HTTP/1.x" CRLF.
 * Returns 1 with <out> filled and *eol set as find_eol and
 * parse_request_line would set them (none of the bytes before the CR can be a
 * CR or LF), or 0 for anything else, left to those two. */
static int
fast_request_line(const char *buf, size_t len, size_t pos, mg_http_request_head_t *out, size_t *eol)
{
    size_t i = pos, t, j;
    int v;

    while (i < len && mg_http_is_tchar((unsigned char)buf[i]))
        i++;
    if (i == pos || i == len || buf[i] != ' ')
        return 0;
    t = j = i + 1;
    while (j < len && (mg_http_ctype[(unsigned char)buf[j]] & MG_HTTP_CT_VCHAR))
        j++;
    /* j + 11 <= len: SP, the 8 version bytes, CR, LF. */
    if (j == t || len - j < 11 || buf[j] != ' ' || buf[j + 9] != '\r' || buf[j + 10] != '\n')
        return 0;
    v = parse_version(buf + j + 1, 8);
    if (v < 0)
        return 0;
    out->method_str = buf + pos;
    out->method_len = i - pos;
    out->method = method_from(buf + pos, i - pos);
    out->target = buf + t;
    out->target_len = j - t;
    out->version_minor = v;
    *eol = j + 9;
    return 1;
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
    unsigned char kinds[MG_HTTP_MAX_HEADERS];

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

    if (fast_request_line(buf, len, pos, out, &eol))
        goto fields;
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
fields:
    pos = eol + 2;

    r = parse_fields(buf, len, &pos, out->headers, &out->nheaders, &w);
    if (r == -2)
        rc = -431;
    if (r < 0)
        goto fail;
    if (r == 0)
        goto incomplete;

    if (scan_framing(out->headers, out->nheaders, kinds, &f, &w) < 0)
        goto fail;
    if (f.have_te && out->version_minor == 0) {
        /* RFC 9112 6.1: an HTTP/1.0 recipient cannot know chunked. */
        w = "Transfer-Encoding in an HTTP/1.0 request";
        goto fail;
    }
    for (size_t i = 0; i < out->nheaders; i++) {
        const mg_http_header_t *h = &out->headers[i];
        field_kind_t k = (field_kind_t)kinds[i];
        if (k == FK_HOST) {
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
        } else if (k == FK_AUTHORIZATION) {
            /* Which credential would we check, and which would upstream see? */
            if (have_auth) {
                w = "duplicate Authorization";
                goto fail;
            }
            have_auth = true;
        } else if (k == FK_EXPECT) {
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
    unsigned char kinds[MG_HTTP_MAX_HEADERS];

    memset(out, 0, sizeof(*out));
    out->content_length = -1;

    /* A status line is field bytes up to its CR: when it is, that CR is
     * where find_eol would stop too, found a word at a time. */
    eol = skip_field_bytes(buf, 0, len);
    if (eol + 1 < len && buf[eol] == '\r' && buf[eol + 1] == '\n')
        r = 1;
    else
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
    if (scan_framing(out->headers, out->nheaders, kinds, &f, &w) < 0)
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
    size_t name_len = strlen(name);

    /* The length rejects most fields before any case folding. */
    for (size_t i = 0; i < n; i++)
        if (headers[i].name_len == name_len &&
            mg_http_ieq(headers[i].name, headers[i].name_len, name))
            return &headers[i];
    return NULL;
}

bool
mg_http_is_hop_by_hop(const char *name, size_t name_len)
{
    static const struct {
        const char *name;
        size_t len;
    } hop[] = {
        {"connection", 10},
        {"keep-alive", 10},
        {"proxy-connection", 16},
        {"te", 2},
        {"trailer", 7},
        {"transfer-encoding", 17},
        {"upgrade", 7},
        {"proxy-authorization", 19},
        {"proxy-authenticate", 18},
    };
    /* Called for every forwarded field: compare lengths before bytes. */
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (hop[i].len == name_len && mg_http_ieq(name, name_len, hop[i].name))
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
