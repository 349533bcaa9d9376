/* b64url.h -- strict base64url (RFC 4648 section 5, unpadded) as JOSE requires (RFC 7515 section 2). */
#ifndef MCPGATE_B64URL_H
#define MCPGATE_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode <len> characters (an upper bound, never less). */
#define MG_B64URL_DECODED_MAX(len) (((len) / 4) * 3 + 2)
/* Characters written by mg_b64url_encode for <len> bytes, without the NUL. */
#define MG_B64URL_ENCODED_LEN(len) (((len) / 3) * 4 + ((len) % 3 ? (len) % 3 + 1 : 0))

/* Decode <len> characters of <in> into <out> (room for MG_B64URL_DECODED_MAX(len)
 * bytes). Strict: only A-Z a-z 0-9 '-' '_'; no '=' padding, no whitespace, no
 * '+' or '/'; a length of 1 mod 4 and non-zero unused trailing bits are
 * rejected, so every byte string has exactly one accepted encoding.
 * Returns 0 and sets *outlen, or -1 (out's content is then unspecified). */
int mg_b64url_decode(const char *in, size_t len, uint8_t *out, size_t *outlen);

/* Encode <len> bytes into <out>, which must hold MG_B64URL_ENCODED_LEN(len) + 1
 * characters; writes a terminating NUL. Returns the number of characters. */
size_t mg_b64url_encode(const uint8_t *in, size_t len, char *out);

#endif /* MCPGATE_B64URL_H */
