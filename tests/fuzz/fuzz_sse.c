/* fuzz_sse.c -- libFuzzer target: the SSE rewriter must reproduce any stream byte for byte when nothing is rewritten, however it is split. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    char *p;
    size_t len;
} out_t;

static void
emit(void *arg, const char *b, size_t n)
{
    out_t *o = arg;
    memcpy(o->p + o->len, b, n);
    o->len += n;
}

/* Never rewrites; looks at every event's data. */
static int
look(void *arg, const char *data, size_t len, char **out, size_t *out_len, bool *done)
{
    *done = false;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    out_t o = {malloc(size + 1), 0};
    mg_sse_rewriter_t *rw;
    mg_sse_event_t ev;
    size_t step = size ? (size_t)data[0] % 7 + 1 : 1;

    if (mg_sse_parse_event((const char *)data, size, &ev) == 0)
        mg_sse_event_clear(&ev);
    rw = mg_sse_rewriter_new(size + 16, look, NULL, emit, &o);
    if (rw == NULL || o.p == NULL)
        goto done;
    for (size_t i = 0; i < size; i += step)
        if (mg_sse_rewriter_feed(rw, (const char *)data + i, i + step > size ? size - i : step))
            abort();
    if (mg_sse_rewriter_finish(rw) != 0 || o.len != size || memcmp(o.p, data, size) != 0)
        abort();
done:
    mg_sse_rewriter_free(rw);
    free(o.p);
    return 0;
}
