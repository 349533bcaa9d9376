/* b64url.c -- strict unpadded base64url decoding and encoding (RFC 4648 section 5, RFC 7515 section 2). */
#include "mcpgate/b64url.h"

static const char enc_table[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for the alphabet, 0xff for everything else (including '=', '+', '/',
 * whitespace and NUL). */
static const uint8_t dec_table[256] = {
#define X 0xff
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x00 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x10 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,  /* 0x20 '-' */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,  /* 0x30 digits */
    X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, /* 0x40 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63, /* 0x50 '_' */
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 0x60 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,  /* 0x70 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
#undef X
};

int
mg_b64url_decode(const char *in, size_t len, uint8_t *out, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t full = len / 4, rest = len % 4, o = 0;

    /* One leftover character carries only 6 bits: never a valid encoding. */
    if (rest == 1)
        return -1;
    for (size_t i = 0; i < full; i++, p += 4) {
        uint8_t a = dec_table[p[0]], b = dec_table[p[1]], c = dec_table[p[2]], d = dec_table[p[3]];
        if ((a | b | c | d) & 0x80)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rest == 2) {
        uint8_t a = dec_table[p[0]], b = dec_table[p[1]];
        /* The low 4 bits of the second character are padding and must be
         * zero (RFC 4648 section 3.5), or two strings decode alike. */
        if ((a | b) & 0x80 || (b & 0x0f))
            return -1;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
    } else if (rest == 3) {
        uint8_t a = dec_table[p[0]], b = dec_table[p[1]], c = dec_table[p[2]];
        if ((a | b | c) & 0x80 || (c & 0x03))
            return -1;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)(b << 4 | c >> 2);
    }
    *outlen = o;
    return 0;
}

size_t
mg_b64url_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = enc_table[v >> 18];
        out[o++] = enc_table[(v >> 12) & 63];
        out[o++] = enc_table[(v >> 6) & 63];
        out[o++] = enc_table[v & 63];
    }
    if (len - i == 1) {
        out[o++] = enc_table[in[i] >> 2];
        out[o++] = enc_table[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = enc_table[v >> 10];
        out[o++] = enc_table[(v >> 4) & 63];
        out[o++] = enc_table[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}
