/* fuzz_sse.c -- libFuzzer target: the SSE rewriter reproduces any stream byte for byte when nothing is rewritten, and rewrites exactly the chosen events (or a tools/list response) the same way however the stream is split. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/conf.h"
#include "mcpgate/jsonrpc.h"
#include "mcpgate/mcp_policy.h"
#include "mcpgate/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 4096 /* events remembered by the checks; more are not compared */

typedef struct {
    char *p;
    size_t len, cap;
} out_t;

static void
emit(void *arg, const char *b, size_t n)
{
    out_t *o = arg;

    if (n == 0)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        char *np;
        while (cap < o->len + n)
            cap *= 2;
        if ((np = realloc(o->p, cap)) == NULL)
            abort();
        o->p = np;
        o->cap = cap;
    }
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

/* The data of every event a rewriter hands to its callback, in order. */
typedef struct {
    char *data[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    size_t n;
} seen_t;

static void
seen_add(seen_t *s, const char *data, size_t len)
{
    if (s->n >= MAX_EVENTS)
        return;
    if ((s->data[s->n] = malloc(len + 1)) == NULL)
        abort();
    memcpy(s->data[s->n], data, len);
    s->len[s->n++] = len;
}

static void
seen_clear(seen_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    s->n = 0;
}

static int
collect(void *arg, const char *data, size_t len, char **out, size_t *out_len, bool *done)
{
    seen_add(arg, data, len);
    *done = false;
    return 0;
}

/* A rewriter that replaces the data of the events whose index has its bit set in <mask> with
 * "R<index>" (sometimes an empty replacement), and reports done after <stop_after> events
 * (0: never). Every event it is shown is recorded in <seen>. */
typedef struct {
    uint32_t mask;
    size_t stop_after;
    size_t calls;
    seen_t seen;
    bool replaced[MAX_EVENTS];
} swap_t;

static int
swap(void *arg, const char *data, size_t len, char **out, size_t *out_len, bool *done)
{
    swap_t *s = arg;
    size_t i = s->calls++;
    int rc = 0;

    seen_add(&s->seen, data, len);
    if (s->mask & (1u << (i % 32))) {
        char buf[32];
        int n = (i % 5 == 4) ? 0 : snprintf(buf, sizeof(buf), "R%zu", i);
        if ((*out = malloc((size_t)n + 1)) == NULL)
            return -1;
        memcpy(*out, buf, (size_t)n);
        *out_len = (size_t)n;
        if (i < MAX_EVENTS)
            s->replaced[i] = true;
        rc = 1;
    }
    *done = s->stop_after != 0 && s->calls >= s->stop_after;
    return rc;
}

/* Run <in> through a rewriter fed <step> bytes at a time (0: all at once). Returns the output
 * (o->p malloc'd), or rc -1 when the rewriter failed. */
static int
run(const uint8_t *in, size_t size, size_t step, mg_sse_rewrite_fn fn, void *arg, out_t *o)
{
    mg_sse_rewriter_t *rw = mg_sse_rewriter_new(size + 16, fn, arg, emit, o);
    int rc = 0;

    if (rw == NULL)
        abort(); /* no OOM expected at these sizes */
    if (step == 0)
        step = size ? size : 1;
    for (size_t i = 0; i < size && rc == 0; i += step)
        rc = mg_sse_rewriter_feed(rw, (const char *)in + i, i + step > size ? size - i : step);
    if (rc == 0)
        rc = mg_sse_rewriter_finish(rw);
    mg_sse_rewriter_free(rw);
    return rc;
}

static void
same_output(const out_t *a, const out_t *b)
{
    if (a->len != b->len || (a->len && memcmp(a->p, b->p, a->len) != 0))
        abort();
}

/* 1. Pass-through: with a callback that never rewrites the output is the input. */
static void
check_passthrough(const uint8_t *data, size_t size, size_t step)
{
    out_t o = {0};

    if (run(data, size, step, look, NULL, &o) != 0 || o.len != size ||
        (size && memcmp(o.p, data, size) != 0))
        abort();
    free(o.p);
}

/* 2. Rewriting: the same output whether fed whole or in pieces; and reading the output back,
 * its events are the input's events with exactly the rewritten ones replaced (until done). */
static void
check_swap(const uint8_t *data, size_t size, size_t step, uint32_t mask, size_t stop_after)
{
    swap_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    seen_t *back = calloc(1, sizeof(*back));
    out_t oa = {0}, ob = {0}, oc = {0};
    int ra, rb;

    if (a == NULL || b == NULL || back == NULL)
        abort();
    a->mask = b->mask = mask;
    a->stop_after = b->stop_after = stop_after;
    ra = run(data, size, 0, swap, a, &oa);
    rb = run(data, size, step, swap, b, &ob);
    if (ra != 0 || rb != 0) /* replacements never hold CR/LF: no reason to fail */
        abort();
    same_output(&oa, &ob);
    if (a->calls != b->calls)
        abort();
    /* Read the output back: every event the rewriter looked at is there, in order, with its
     * data replaced when it was rewritten. (Events after done are passed through unseen; an
     * output event count beyond the calls is theirs.) */
    if (run((const uint8_t *)oa.p, oa.len, 0, collect, back, &oc) != 0)
        abort();
    same_output(&oa, &oc);
    if (back->n < a->seen.n)
        abort();
    for (size_t i = 0; i < a->seen.n; i++) {
        char buf[32];
        const char *want = a->seen.data[i];
        size_t wlen = a->seen.len[i];
        if (a->replaced[i]) {
            int n = (i % 5 == 4) ? 0 : snprintf(buf, sizeof(buf), "R%zu", i);
            want = buf;
            wlen = (size_t)n;
        }
        if (back->len[i] != wlen || (wlen && memcmp(back->data[i], want, wlen) != 0))
            abort();
    }
    seen_clear(&a->seen);
    seen_clear(&b->seen);
    seen_clear(back);
    free(a);
    free(b);
    free(back);
    free(oa.p);
    free(ob.p);
    free(oc.p);
}

/* 3. The gateway's own callback: a list filter for a fake tools/list request with id 1 (no tool
 * rules, so every tool is kept but the matching response is still re-serialised). It refuses
 * (-1) event data it cannot read as JSON, failing closed; either way splitting the stream must
 * change neither the outcome nor the bytes emitted. */
static void
check_list_filter(const uint8_t *data, size_t size, size_t step)
{
    static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
    static mg_conf_route_t route; /* zeroed: no scope rules */
    mg_rpc_body_t *body = NULL;
    mg_list_filter_t *fa = NULL, *fb = NULL;
    out_t oa = {0}, ob = {0};
    bool oom = false;

    if (mg_rpc_parse(req, sizeof(req) - 1, &body) != 0)
        abort();
    fa = mg_list_filter_new(&route, body, NULL, 0, &oom);
    fb = mg_list_filter_new(&route, body, NULL, 0, &oom);
    if (fa == NULL || fb == NULL)
        abort();
    if (run(data, size, 0, mg_sse_list_filter_rewrite, fa, &oa) !=
        run(data, size, step, mg_sse_list_filter_rewrite, fb, &ob))
        abort();
    same_output(&oa, &ob);
    mg_list_filter_free(fa);
    mg_list_filter_free(fb);
    mg_rpc_body_free(body);
    free(oa.p);
    free(ob.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_sse_event_t ev;
    size_t step = size ? (size_t)data[0] % 7 + 1 : 1;
    uint32_t mask = 0xffffffffu;
    size_t stop_after = 0;

    if (mg_sse_parse_event((const char *)data, size, &ev) == 0)
        mg_sse_event_clear(&ev);
    check_passthrough(data, size, step);
    /* Bytes 1..4 choose the events to rewrite and when to stop; they stay part of the stream. */
    if (size >= 5) {
        mask = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
               (uint32_t)data[4] << 24;
        stop_after = data[1] % 4 == 0 ? 0 : (size_t)(data[2] % 8) + 1;
    }
    check_swap(data, size, step, mask, stop_after);
    check_list_filter(data, size, step);
    return 0;
}
