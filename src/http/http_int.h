/* http_int.h -- byte classes shared by the src/http parsers (RFC 9110 5.5, 5.6.2; RFC 3986 2). */
#ifndef MCPGATE_HTTP_INT_H
#define MCPGATE_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Byte classes of mg_http_ctype[] (defined in http_parse.c), one bit each, so
 * that the hot loops test a byte with one load and one AND instead of a chain
 * of comparisons. */
#define MG_HTTP_CT_TCHAR 0x01 /* tchar (RFC 9110 5.6.2): method, field name */
#define MG_HTTP_CT_FIELD 0x02 /* field value byte (RFC 9110 5.5): HTAB, SP, VCHAR, obs-text */
#define MG_HTTP_CT_VCHAR 0x04 /* VCHAR 0x21..0x7E: the request-target */

extern const unsigned char mg_http_ctype[256];

/* tchar (RFC 9110 5.6.2): the bytes of a token (method, field name). */
static inline bool
mg_http_is_tchar(unsigned char c)
{
    return (mg_http_ctype[c] & MG_HTTP_CT_TCHAR) != 0;
}

/* A byte allowed inside a field value (RFC 9110 5.5): HTAB, SP, VCHAR, obs-text. */
static inline bool
mg_http_is_field_byte(unsigned char c)
{
    return (mg_http_ctype[c] & MG_HTTP_CT_FIELD) != 0;
}

static inline bool
mg_http_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* The value of a hex digit, or -1. */
static inline int
mg_http_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline unsigned char
mg_http_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive (ASCII) comparison of a counted string with a C string. */
static inline bool
mg_http_ieq(const char *s, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || mg_http_lower((unsigned char)s[i]) != mg_http_lower((unsigned char)lit[i]))
            return false;
    }
    return lit[i] == '\0';
}

#endif /* MCPGATE_HTTP_INT_H */
