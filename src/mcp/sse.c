/* sse.c -- SSE event parsing and the streaming rewriter that replaces one event's data (list filtering). */
#include <stdlib.h>
#include <string.h>

#include "mcpgate/mcp_policy.h"
#include "mcpgate/sse.h"

#define DEFAULT_MAX_EVENT (1u << 20)

/* The end of the line starting at <p> within [p, end): sets *eol_len (1 or
 * 2) and returns the terminator's position, or NULL when no terminator is
 * there yet (a final CR counts only when <at_eof>, since an LF may follow). */
static const char *
line_end(const char *p, const char *end, bool at_eof, size_t *eol_len)
{
    for (; p < end; p++) {
        if (*p == '\n') {
            *eol_len = 1;
            return p;
        }
        if (*p == '\r') {
            if (p + 1 < end) {
                *eol_len = p[1] == '\n' ? 2 : 1;
                return p;
            }
            if (at_eof) {
                *eol_len = 1;
                return p;
            }
            return NULL;
        }
    }
    return NULL;
}

/* Split a line into field name and value (one leading space dropped). */
static void
split_field(const char *line, size_t len, size_t *name_len, const char **value, size_t *value_len)
{
    const char *colon = memchr(line, ':', len);

    if (colon == NULL) {
        *name_len = len;
        *value = line + len;
        *value_len = 0;
        return;
    }
    *name_len = (size_t)(colon - line);
    *value = colon + 1;
    *value_len = len - *name_len - 1;
    if (*value_len > 0 && **value == ' ') {
        (*value)++;
        (*value_len)--;
    }
}

static bool
is_field(const char *line, size_t name_len, const char *name)
{
    return name_len == strlen(name) && memcmp(line, name, name_len) == 0;
}

void
mg_sse_event_clear(mg_sse_event_t *ev)
{
    free(ev->data);
    free(ev->id);
    free(ev->event);
    memset(ev, 0, sizeof(*ev));
    ev->retry = -1;
}

int
mg_sse_parse_event(const char *raw, size_t len, mg_sse_event_t *ev)
{
    const char *p = raw, *end = raw + len;
    size_t cap = 0;

    memset(ev, 0, sizeof(*ev));
    ev->retry = -1;
    while (p < end) {
        size_t eol = 0, nlen, vlen;
        const char *e = line_end(p, end, true, &eol), *v;
        size_t llen = e ? (size_t)(e - p) : (size_t)(end - p);

        if (llen > 0 && *p != ':') {
            split_field(p, llen, &nlen, &v, &vlen);
            if (is_field(p, nlen, "data")) {
                if (ev->data_len + vlen + 2 > cap) {
                    size_t ncap = (ev->data_len + vlen + 2) * 2;
                    char *nd = realloc(ev->data, ncap);
                    if (nd == NULL)
                        goto oom;
                    ev->data = nd;
                    cap = ncap;
                }
                memcpy(ev->data + ev->data_len, v, vlen);
                ev->data_len += vlen;
                ev->data[ev->data_len++] = '\n';
                ev->data[ev->data_len] = '\0';
                ev->has_data = true;
            } else if (is_field(p, nlen, "id")) {
                if (memchr(v, '\0', vlen) == NULL) {
                    free(ev->id);
                    if ((ev->id = strndup(v, vlen)) == NULL)
                        goto oom;
                }
            } else if (is_field(p, nlen, "event")) {
                free(ev->event);
                if ((ev->event = strndup(v, vlen)) == NULL)
                    goto oom;
            } else if (is_field(p, nlen, "retry")) {
                long r = 0;
                bool ok = vlen > 0 && vlen <= 9;
                for (size_t i = 0; ok && i < vlen; i++) {
                    ok = v[i] >= '0' && v[i] <= '9';
                    r = r * 10 + (v[i] - '0');
                }
                if (ok)
                    ev->retry = r;
            }
        }
        p = e ? e + eol : end;
    }
    if (ev->has_data) {
        ev->data[--ev->data_len] = '\0'; /* the last "\n" */
    } else if (ev->data == NULL && (ev->data = calloc(1, 1)) == NULL) {
        goto oom;
    }
    return 0;
oom:
    mg_sse_event_clear(ev);
    return -1;
}

/* --- the rewriter -------------------------------------------------------------- */

struct mg_sse_rewriter {
    size_t max_event;
    mg_sse_rewrite_fn rewrite;
    void *rewrite_arg;
    mg_sse_emit_fn emit;
    void *emit_arg;
    char *buf; /* bytes of the current, incomplete event */
    size_t len, cap;
    size_t line_start, scan; /* offsets into buf */
    bool first;              /* no event emitted yet: a BOM may lead */
    bool passthrough, failed;
};

mg_sse_rewriter_t *
mg_sse_rewriter_new(size_t max_event, mg_sse_rewrite_fn rewrite, void *rewrite_arg,
                    mg_sse_emit_fn emit, void *emit_arg)
{
    mg_sse_rewriter_t *rw = calloc(1, sizeof(*rw));

    if (rw == NULL)
        return NULL;
    rw->max_event = max_event ? max_event : DEFAULT_MAX_EVENT;
    rw->rewrite = rewrite;
    rw->rewrite_arg = rewrite_arg;
    rw->emit = emit;
    rw->emit_arg = emit_arg;
    rw->first = true;
    rw->passthrough = rewrite == NULL;
    return rw;
}

void
mg_sse_rewriter_free(mg_sse_rewriter_t *rw)
{
    if (rw == NULL)
        return;
    free(rw->buf);
    free(rw);
}

bool
mg_sse_rewriter_passthrough(const mg_sse_rewriter_t *rw)
{
    return rw->passthrough;
}

/* Emit the event block <raw> with its data lines replaced by one
 * "data: <rep>" line at the place of the first, keeping every other line
 * (id, event, retry, comments) and every line terminator as they were --
 * except one case: dropping data lines can put a line ended by a lone CR
 * right before the blank line's LF, and "\r\n" would then read as one
 * terminator, swallowing the blank line (the event would run into the next
 * one). That blank line is written "\r\n" instead. */
static void
emit_replaced(mg_sse_rewriter_t *rw, const char *raw, size_t len, size_t skip, const char *rep,
              size_t rep_len)
{
    const char *p = raw + skip, *end = raw + len;
    bool written = false, after_cr = false;

    if (skip)
        rw->emit(rw->emit_arg, raw, skip);
    while (p < end) {
        size_t eol = 0, nlen, vlen;
        const char *e = line_end(p, end, true, &eol), *v;
        size_t llen = e ? (size_t)(e - p) : (size_t)(end - p);
        const char *next = e ? e + eol : end;

        split_field(p, llen, &nlen, &v, &vlen);
        if (llen > 0 && *p != ':' && is_field(p, nlen, "data")) {
            if (!written) {
                rw->emit(rw->emit_arg, "data: ", 6);
                rw->emit(rw->emit_arg, rep, rep_len);
                rw->emit(rw->emit_arg, e ? e : "\n", e ? eol : 1);
                written = true;
                after_cr = e != NULL && eol == 1 && *e == '\r';
            }
        } else if (after_cr && llen == 0 && e != NULL && *e == '\n') {
            rw->emit(rw->emit_arg, "\r\n", 2);
            after_cr = false;
        } else {
            rw->emit(rw->emit_arg, p, (size_t)(next - p));
            after_cr = next > p && next[-1] == '\r';
        }
        p = next;
    }
}

/* A complete event block buf[0, len): check it and emit it. */
static int
process_block(mg_sse_rewriter_t *rw, size_t len)
{
    mg_sse_event_t ev;
    size_t skip = 0;
    char *rep = NULL;
    size_t rep_len = 0;
    bool done = false;
    int rc = 0;

    if (rw->first && len >= 3 && memcmp(rw->buf, "\xEF\xBB\xBF", 3) == 0)
        skip = 3; /* a leading BOM is not part of the first field name */
    rw->first = false;
    if (rw->passthrough) {
        rw->emit(rw->emit_arg, rw->buf, len);
        return 0;
    }
    if (mg_sse_parse_event(rw->buf + skip, len - skip, &ev) != 0)
        return -1;
    if (ev.has_data)
        rc = rw->rewrite(rw->rewrite_arg, ev.data, ev.data_len, &rep, &rep_len, &done);
    mg_sse_event_clear(&ev);
    if (rc < 0) {
        free(rep);
        return -1;
    }
    if (rc == 1 && rep != NULL && memchr(rep, '\n', rep_len) == NULL &&
        memchr(rep, '\r', rep_len) == NULL)
        emit_replaced(rw, rw->buf, len, skip, rep, rep_len);
    else if (rc == 1)
        rc = -1; /* a replacement that would break the framing */
    else
        rw->emit(rw->emit_arg, rw->buf, len);
    free(rep);
    if (done)
        rw->passthrough = true;
    return rc < 0 ? -1 : 0;
}

static int
drain(mg_sse_rewriter_t *rw, bool at_eof)
{
    /* len > 0: buf is still NULL before the first byte (NULL + 0 is undefined). */
    while (!rw->passthrough && rw->len > 0) {
        size_t eol = 0;
        const char *e = line_end(rw->buf + rw->scan, rw->buf + rw->len, at_eof, &eol);
        size_t pos, block;

        if (e == NULL) {
            /* resume at a final CR (it may be a CRLF's first half) */
            rw->scan = rw->len;
            if (rw->len > rw->line_start && rw->buf[rw->len - 1] == '\r')
                rw->scan = rw->len - 1;
            break;
        }
        pos = (size_t)(e - rw->buf);
        if (pos != rw->line_start) {
            rw->line_start = rw->scan = pos + eol;
            continue;
        }
        block = pos + eol; /* the blank line ends the event */
        if (process_block(rw, block) != 0)
            return -1;
        memmove(rw->buf, rw->buf + block, rw->len - block);
        rw->len -= block;
        rw->line_start = rw->scan = 0;
    }
    if (rw->passthrough && rw->len > 0) {
        rw->emit(rw->emit_arg, rw->buf, rw->len);
        rw->len = rw->line_start = rw->scan = 0;
    }
    return 0;
}

int
mg_sse_rewriter_feed(mg_sse_rewriter_t *rw, const char *in, size_t len)
{
    if (rw->failed)
        return -1;
    if (rw->passthrough) {
        if (len)
            rw->emit(rw->emit_arg, in, len);
        return 0;
    }
    if (rw->len + len > rw->max_event) {
        /* only complete events are held, so check after taking what fits */
        size_t take = 0;
        while (take < len) {
            size_t chunk = rw->max_event - rw->len;
            if (chunk == 0) {
                rw->failed = true;
                return -1;
            }
            if (chunk > len - take)
                chunk = len - take;
            if (mg_sse_rewriter_feed(rw, in + take, chunk) != 0)
                return -1;
            take += chunk;
            if (rw->passthrough && take < len) {
                rw->emit(rw->emit_arg, in + take, len - take);
                return 0;
            }
        }
        return 0;
    }
    if (rw->len + len + 1 > rw->cap) {
        size_t cap = rw->cap ? rw->cap : 4096;
        char *nb;
        while (cap < rw->len + len + 1)
            cap *= 2;
        if ((nb = realloc(rw->buf, cap)) == NULL) {
            rw->failed = true;
            return -1;
        }
        rw->buf = nb;
        rw->cap = cap;
    }
    memcpy(rw->buf + rw->len, in, len);
    rw->len += len;
    if (drain(rw, false) != 0) {
        rw->failed = true;
        return -1;
    }
    return 0;
}

int
mg_sse_rewriter_finish(mg_sse_rewriter_t *rw)
{
    if (rw->failed)
        return -1;
    if (!rw->passthrough && drain(rw, true) != 0) {
        rw->failed = true;
        return -1;
    }
    if (rw->len > 0) {
        /* an unterminated event: clients never dispatch it, so pass it on as is */
        rw->emit(rw->emit_arg, rw->buf, rw->len);
        rw->len = rw->line_start = rw->scan = 0;
    }
    return 0;
}

int
mg_sse_list_filter_rewrite(void *arg, const char *data, size_t len, char **out, size_t *out_len,
                           bool *done)
{
    mg_list_filter_t *f = arg;
    int rc = mg_list_filter_json(f, data, len, out, out_len, NULL);

    *done = mg_list_filter_done(f);
    return rc;
}
