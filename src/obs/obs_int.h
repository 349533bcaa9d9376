/* obs_int.h -- helpers shared inside src/obs only: a growable text buffer and UTF-8 checks. */
#ifndef MCPGATE_OBS_INT_H
#define MCPGATE_OBS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable, always NUL-terminated buffer. After an allocation failure
 * <oom> is set and further appends are ignored, so callers check once at the
 * end. Zero-initialise; the owner frees <p>. */
typedef struct mg_obs_buf {
    char *p;
    size_t len, cap;
    bool oom;
} mg_obs_buf_t;

void mg_obs_buf_add(mg_obs_buf_t *b, const char *s, size_t n);
void mg_obs_buf_puts(mg_obs_buf_t *b, const char *s);
void mg_obs_buf_printf(mg_obs_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The length of the valid UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF) starting at s[0], or 0 if s[0] does
 * not start one. <n> is the number of bytes available (>= 1). */
size_t mg_obs_utf8_seq(const unsigned char *s, size_t n);

/* The largest length <= max that does not cut a UTF-8 sequence of <s, n>. */
size_t mg_obs_utf8_cut(const char *s, size_t n, size_t max);

#endif /* MCPGATE_OBS_INT_H */
