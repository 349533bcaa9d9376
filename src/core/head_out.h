/* head_out.h -- assembling an HTTP head on the stack, handed to an evbuffer in one piece.
 *
 * Why: a head written field by field with evbuffer_add/evbuffer_add_printf
 * costs a call into libevent per piece (each running the buffer's callbacks,
 * see client_out_cb in conn.c) and printf parsing for each number. Building the
 * head in a stack buffer and adding it once is several times cheaper. Heads
 * larger than the buffer still come out right: the buffer is flushed to the
 * evbuffer whenever it fills.
 */
#ifndef MCPGATE_CORE_HEAD_OUT_H
#define MCPGATE_CORE_HEAD_OUT_H

#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

typedef struct mg_head_out {
    struct evbuffer *to; /* borrowed */
    size_t len;
    char buf[2048];
} mg_head_out_t;

static inline void
mg_head_out_init(mg_head_out_t *h, struct evbuffer *to)
{
    h->to = to;
    h->len = 0;
}

/* Hands what is buffered to the evbuffer; call once at the end. */
static inline void
mg_head_out_flush(mg_head_out_t *h)
{
    if (h->len > 0)
        evbuffer_add(h->to, h->buf, h->len);
    h->len = 0;
}

static inline void
mg_head_out_add(mg_head_out_t *h, const void *p, size_t n)
{
    if (n > sizeof(h->buf) - h->len) {
        mg_head_out_flush(h);
        if (n > sizeof(h->buf)) {
            evbuffer_add(h->to, p, n);
            return;
        }
    }
    memcpy(h->buf + h->len, p, n);
    h->len += n;
}

static inline void
mg_head_out_str(mg_head_out_t *h, const char *s)
{
    mg_head_out_add(h, s, strlen(s));
}

/* A string literal, its length known at compile time. */
#define MG_HEAD_OUT_LIT(h, lit) mg_head_out_add((h), (lit), sizeof(lit) - 1)

/* <v> in decimal (base 10) or lower-case hex (base 16, for chunk sizes). */
static inline void
mg_head_out_uint(mg_head_out_t *h, uint64_t v, unsigned base)
{
    char d[24];
    size_t i = sizeof(d);

    do {
        d[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    mg_head_out_add(h, d + i, sizeof(d) - i);
}

/* "Name: value\r\n" */
static inline void
mg_head_out_field(mg_head_out_t *h, const char *name, size_t name_len, const char *value,
                  size_t value_len)
{
    if (name_len + value_len + 4 <= sizeof(h->buf) - h->len) {
        char *p = h->buf + h->len;
        memcpy(p, name, name_len);
        p += name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, value, value_len);
        p += value_len;
        *p++ = '\r';
        *p++ = '\n';
        h->len = (size_t)(p - h->buf);
        return;
    }
    mg_head_out_add(h, name, name_len);
    MG_HEAD_OUT_LIT(h, ": ");
    mg_head_out_add(h, value, value_len);
    MG_HEAD_OUT_LIT(h, "\r\n");
}

#endif /* MCPGATE_CORE_HEAD_OUT_H */
