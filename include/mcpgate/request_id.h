/* request_id.h -- request ids: keep a safe incoming X-Request-Id, otherwise make a random one.
 *
 * The safe set: 1 to MG_REQUEST_ID_MAX (64) characters, each one of
 * A-Z a-z 0-9 . _ : -  (no spaces, quotes, commas, slashes or control
 * characters, so the id can be copied into log lines, JSON, headers and
 * metrics without escaping and cannot forge a log line or split a header).
 * An incoming value outside that set is not repaired: it is replaced.
 *
 * Generated ids are 128 random bits as 32 lowercase hex digits (not a UUID:
 * no version nibble, no dashes). The bits come from a per-thread buffer
 * filled MG_REQUEST_ID_BATCH ids at a time by OpenSSL's RAND_bytes()
 * (its per-thread DRBG, seeded from getrandom), so a request costs a memcpy
 * and a hex encoding, not a system call. getrandom() is the fallback if
 * RAND_bytes fails. The process must not fork() after generating ids (the
 * gateway does not): a child would repeat its parent's buffered ids.
 *
 * Thread-safe: all state is per thread.
 */
#ifndef MCPGATE_REQUEST_ID_H
#define MCPGATE_REQUEST_ID_H

#include <stdbool.h>
#include <stddef.h>

#define MG_REQUEST_ID_MAX 64                       /* longest id kept */
#define MG_REQUEST_ID_GEN_LEN 32                   /* length of a generated id */
#define MG_REQUEST_ID_SIZE (MG_REQUEST_ID_MAX + 1) /* buffer size with the NUL */
#define MG_REQUEST_ID_BATCH 64                     /* ids per refill of the per-thread buffer */

/* Is <s, len> within the safe set? */
bool mg_request_id_valid(const char *s, size_t len);

/* Write a new id and a NUL to <out> (at least MG_REQUEST_ID_GEN_LEN + 1 bytes). */
void mg_request_id_generate(char *out);

/* The id for a request: the incoming header value <hdr, len> if it is valid
 * (hdr may be NULL: no header), else a generated one. <out> holds
 * MG_REQUEST_ID_SIZE bytes and receives the NUL-terminated id. Returns true
 * when the incoming value was kept. The caller trims optional whitespace
 * around the header value; several X-Request-Id headers should count as
 * invalid. */
bool mg_request_id_assign(const char *hdr, size_t len, char *out);

#endif /* MCPGATE_REQUEST_ID_H */
