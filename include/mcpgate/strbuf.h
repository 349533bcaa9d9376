/* strbuf.h -- a growable NUL-terminated string for building headers and documents.
 *
 * Appends never fail loudly: on allocation failure the buffer remembers it
 * (oom) and ignores later appends, so a builder checks once at the end.
 * Ownership: p belongs to the buffer until mg_strbuf_take() hands it over;
 * mg_strbuf_clear() frees it.
 */
#ifndef MCPGATE_STRBUF_H
#define MCPGATE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mg_strbuf {
    char *p; /* NUL-terminated once anything was added; NULL before */
    size_t len, cap;
    bool oom;
} mg_strbuf_t;

/* Zero-initialise (mg_strbuf_t b = {0};) before the first append. */
void mg_strbuf_add(mg_strbuf_t *b, const char *s, size_t n);
void mg_strbuf_str(mg_strbuf_t *b, const char *s);

/* The string (malloc'd, "" when nothing was added), or NULL after an
 * allocation failure; the buffer is empty afterwards either way. */
char *mg_strbuf_take(mg_strbuf_t *b);

void mg_strbuf_clear(mg_strbuf_t *b);

#endif /* MCPGATE_STRBUF_H */
