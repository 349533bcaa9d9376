/* sse.h -- Server-Sent Events (WHATWG HTML, "Server-sent events"): event parsing and a streaming rewriter for one event.
 *
 * Pure code, no I/O. The rewriter lets the proxy stream text/event-stream
 * responses: bytes go in as they arrive from upstream, complete events come
 * out byte for byte, except the one event whose data the rewrite callback
 * replaces (the filtered list response). Only the current, incomplete event
 * is ever held; once the callback reports it is done, bytes pass straight
 * through without any buffering.
 */
#ifndef MCPGATE_SSE_H
#define MCPGATE_SSE_H

#include <stdbool.h>
#include <stddef.h>

/* One parsed event. Pointers are malloc'd copies owned by the struct; free
 * with mg_sse_event_clear. */
typedef struct mg_sse_event {
    char *data;      /* data lines joined with "\n" (the final "\n" removed) */
    size_t data_len;
    bool has_data;   /* at least one data field: the event would be dispatched */
    char *id;        /* last id field, NULL when none (an id containing NUL is ignored) */
    char *event;     /* last event field, NULL when none */
    long retry;      /* last valid retry field (digits only), -1 when none */
} mg_sse_event_t;

/* Parse one complete event block <raw> (its lines, each ended by CRLF, LF or
 * CR; the blank line may be included or not). Comments (":") and unknown
 * fields are ignored; "field: value" loses one leading space. 0 or -1 (OOM). */
int mg_sse_parse_event(const char *raw, size_t len, mg_sse_event_t *ev);
void mg_sse_event_clear(mg_sse_event_t *ev);

/* The rewrite callback: given the data of a complete event, return 1 and a
 * malloc'd replacement in *out and *out_len (the rewriter frees it; it must not
 * contain CR or LF), 0 to leave the event untouched, -1 on a fatal error.
 * *done = true says no further event needs looking at (the rewriter then
 * becomes a pass-through). */
typedef int (*mg_sse_rewrite_fn)(void *arg, const char *data, size_t len, char **out,
                                 size_t *out_len, bool *done);
/* Output sink: called with bytes to send downstream, in order. */
typedef void (*mg_sse_emit_fn)(void *arg, const char *bytes, size_t len);

typedef struct mg_sse_rewriter mg_sse_rewriter_t;

/* <max_event>: the longest event held while it is incomplete (0: 1 MiB); a
 * longer event is an error (the list response could not be checked).
 * Borrowed callbacks and args must outlive the rewriter. NULL on OOM. */
mg_sse_rewriter_t *mg_sse_rewriter_new(size_t max_event, mg_sse_rewrite_fn rewrite,
                                       void *rewrite_arg, mg_sse_emit_fn emit, void *emit_arg);
void mg_sse_rewriter_free(mg_sse_rewriter_t *rw); /* NULL-safe */

/* Feed upstream bytes; every event completed by them is emitted at once.
 * Returns 0, or -1 after an error (event too long, callback error, OOM):
 * the response must then be aborted (nothing more is emitted). */
int mg_sse_rewriter_feed(mg_sse_rewriter_t *rw, const char *in, size_t len);

/* End of the upstream stream: an unterminated last event is emitted as it
 * is (it would not be dispatched by a client). 0 or -1 as above. */
int mg_sse_rewriter_finish(mg_sse_rewriter_t *rw);

/* True once the rewrite callback reported done (or never will need to). */
bool mg_sse_rewriter_passthrough(const mg_sse_rewriter_t *rw);

/* A ready callback for mg_sse_rewriter_new: <arg> is an mg_list_filter_t
 * (mcp_policy.h); done is reported once every list request was answered. */
int mg_sse_list_filter_rewrite(void *arg, const char *data, size_t len, char **out,
                               size_t *out_len, bool *done);

#endif /* MCPGATE_SSE_H */
