/* utf8.c -- validating one UTF-8 sequence (RFC 3629). */
#include "config.h"

#include <stdint.h>

#include "mcpgate/utf8.h"

size_t
mg_utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    uint32_t v;
    size_t n;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong ASCII) or F5..FF */
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}
