/* utf8.h -- validating one UTF-8 sequence (RFC 3629), for the JSON readers. */
#ifndef MCPGATE_UTF8_H
#define MCPGATE_UTF8_H

#include <stddef.h>

/* The length (2-4) of the well-formed UTF-8 sequence starting at <p> (a byte
 * >= 0x80) and ending before <end>, or 0 when it is not one: a continuation
 * byte first, an overlong form, a surrogate (U+D800..U+DFFF), a code point
 * above U+10FFFF, or a sequence cut short. The same checks as jansson's. */
size_t mg_utf8_seq_len(const unsigned char *p, const unsigned char *end);

#endif /* MCPGATE_UTF8_H */
