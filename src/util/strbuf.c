/* strbuf.c -- a growable NUL-terminated string that records allocation failure. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mcpgate/strbuf.h"

void
mg_strbuf_add(mg_strbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        char *np;
        while (cap < b->len + n + 1)
            cap *= 2;
        np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
mg_strbuf_str(mg_strbuf_t *b, const char *s)
{
    mg_strbuf_add(b, s, strlen(s));
}

char *
mg_strbuf_take(mg_strbuf_t *b)
{
    char *out = NULL;

    if (!b->oom)
        out = b->p != NULL ? b->p : strdup("");
    else
        free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
    return out;
}

void
mg_strbuf_clear(mg_strbuf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}
