/* path.c -- request-target normalisation for routing: one spelling per path, or a refusal. */
#include "config.h"

#include <string.h>

#include "mcpgate/http_parse.h"
#include "http_int.h"

/* unreserved (RFC 3986 2.3): decoding these never changes what a path means
 * (RFC 3986 6.2.2.2), so "/%6Dcp" routes like "/mcp". */
static bool
is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* pchar without pct-encoded (RFC 3986 3.3): what may appear literally in a
 * path segment. '/' is handled by the caller. */
static bool
is_pchar_literal(unsigned char c)
{
    if (is_unreserved(c))
        return true;
    switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+':
    case ',': case ';': case '=': case ':': case '@':
        return true;
    default:
        return false;
    }
}

/* scheme ":" "//" at the start of the target: absolute-form (RFC 9112 3.2.2). */
static bool
looks_absolute(const char *t, size_t n)
{
    size_t i = 0;

    if (n == 0 || !((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z')))
        return false;
    while (i < n && ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
                     (t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    return i < n && t[i] == ':';
}

/* host ":" port: authority-form, meant for CONNECT (RFC 9112 3.2.3). */
static bool
looks_authority(const char *t, size_t n)
{
    const char *colon = memchr(t, ':', n);
    size_t i;

    if (colon == NULL || colon == t || (size_t)(colon - t) + 1 == n)
        return false;
    for (i = (size_t)(colon - t) + 1; i < n; i++)
        if (t[i] < '0' || t[i] > '9')
            return false;
    return true;
}

/* The segment out[start..end) is "." or "..": RFC 3986 5.2.4 would remove
 * it, and a backend might do so after we routed and authorised the raw path. */
static bool
is_dot_segment(const char *s, size_t n)
{
    return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

int
mg_http_normalize_path(const char *target, size_t target_len, char *out, size_t cap,
                       size_t *out_len, const char **query, size_t *query_len, const char **why)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *w = NULL;
    const char *q = NULL;
    size_t o = 0, seg = 1, path_end;

    if (query)
        *query = NULL;
    if (query_len)
        *query_len = 0;
    if (out_len)
        *out_len = 0;
    if (out == NULL || cap < 2) {
        w = "path too long";
        goto fail;
    }
    out[0] = '\0';
    if (target_len == 0) {
        w = "empty request-target";
        goto fail;
    }
    for (size_t i = 0; i < target_len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c < 0x21 || c > 0x7E) {
            w = "invalid character in request-target";
            goto fail;
        }
        if (c == '#') {
            /* A fragment is never sent (RFC 9110 7.1); receiving one means
             * the client and we may disagree on where the path ends. */
            w = "request-target contains a fragment";
            goto fail;
        }
    }
    if (target[0] != '/') {
        if (target_len == 1 && target[0] == '*')
            w = "asterisk-form request-target";
        else if (looks_authority(target, target_len))
            w = "authority-form request-target";
        else if (looks_absolute(target, target_len))
            w = "absolute-form request-target";
        else
            w = "request-target is not origin-form";
        goto fail;
    }

    q = memchr(target, '?', target_len);
    path_end = q ? (size_t)(q - target) : target_len;

#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 >= cap) {                                                                        \
            w = "path too long";                                                                   \
            goto fail;                                                                             \
        }                                                                                          \
        out[o++] = (char)(ch);                                                                     \
    } while (0)

    PUT('/');
    for (size_t i = 1; i < path_end; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c == '/') {
            if (o == seg) {
                w = "path contains an empty segment ('//')";
                goto fail;
            }
            if (is_dot_segment(out + seg, o - seg)) {
                w = "path contains a dot segment";
                goto fail;
            }
            PUT('/');
            seg = o;
        } else if (c == '%') {
            int hi, lo;
            unsigned char v;
            if (i + 2 >= path_end) {
                w = "malformed percent-encoding in path";
                goto fail;
            }
            hi = mg_http_hexval((unsigned char)target[i + 1]);
            lo = mg_http_hexval((unsigned char)target[i + 2]);
            if (hi < 0 || lo < 0) {
                w = "malformed percent-encoding in path";
                goto fail;
            }
            v = (unsigned char)(hi * 16 + lo);
            if (v == '/') {
                w = "path contains an encoded slash";
                goto fail;
            }
            if (v == '\\') {
                w = "path contains an encoded backslash";
                goto fail;
            }
            if (v == 0) {
                w = "path contains an encoded NUL";
                goto fail;
            }
            if (v < 0x20 || v == 0x7F) {
                w = "path contains an encoded control character";
                goto fail;
            }
            if (is_unreserved(v)) {
                PUT(v);
            } else {
                PUT('%');
                PUT(hex[v >> 4]);
                PUT(hex[v & 15]);
            }
            i += 2;
        } else if (c == '\\') {
            w = "path contains a backslash";
            goto fail;
        } else if (is_pchar_literal(c)) {
            PUT(c);
        } else {
            w = "invalid character in path";
            goto fail;
        }
    }
#undef PUT
    /* The last segment: empty is a trailing '/', fine; "." or ".." is not. */
    if (is_dot_segment(out + seg, o - seg)) {
        w = "path contains a dot segment";
        goto fail;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    if (q) {
        if (query)
            *query = q + 1;
        if (query_len)
            *query_len = target_len - path_end - 1;
    }
    return 0;

fail:
    if (out != NULL && cap > 0)
        out[0] = '\0';
    if (why)
        *why = w;
    return -400;
}
