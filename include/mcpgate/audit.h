/* audit.h -- the audit log: one JSON object per request and line, written with one write(2).
 *
 * What is logged is exactly the fields of mg_audit_record_t below, nothing
 * else: never a token, an Authorization header, a cookie or a body. Each line
 * is one JSON object, fields in this order (string fields are null when the
 * pointer is NULL):
 *
 *   time         "2024-05-01T12:00:00.123Z" (RFC 3339, UTC, milliseconds)
 *   request_id   string   the X-Request-Id in effect (see request_id.h)
 *   client       string   the peer address, e.g. "192.0.2.7:51234"
 *   route        string   the matched route's path; null when none matched
 *   method       string   the HTTP method
 *   rpc_method   string   the JSON-RPC method (e.g. "tools/call"), null if none
 *   target       string   the tool, prompt or resource named by the call, or null
 *   iss, sub, client_id   strings from the verified token, null without one
 *   decision     "allow" | "deny" | "error"
 *   reason       string   a short code ("ok", "missing_token", "expired", ...)
 *   status       number   the HTTP status sent to the client (0: none sent)
 *   bytes_in     number   request bytes received from the client (head + body)
 *   bytes_out    number   response bytes sent to the client (head + body)
 *   duration_ms  number   first request byte -> last response byte, 3 decimals
 *   upstream_ms  number   request sent upstream -> response head, or null
 *
 * (A summary of suppressed refused-credential lines, mg_audit_write_refused(), has one
 * more field at the end: "suppressed", a number.)
 *
 * Strings are JSON-escaped (RFC 8259 section 7): ", \ and control characters
 * escaped, U+2028/U+2029 as \u escapes, bytes that are not valid UTF-8 replaced
 * by \ufffd. Each string is cut (on a character boundary) to at most
 * MG_AUDIT_FIELD_MAX bytes of escaped output, so a whole line always fits in
 * MG_AUDIT_LINE_MAX (= PIPE_BUF): a line reaches a regular file (O_APPEND) or
 * a pipe (container stdout) in one write(2), so lines from several worker
 * threads never interleave, without a lock and without buffering.
 *
 * Sinks: "stdout", "stderr", "off", or a file path (opened
 * O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640 before the umask; an existing
 * file keeps its mode). Writes are synchronous on the calling worker: a slow
 * disk or a stalled pipe reader slows that worker down (like the error log).
 * A failed or short write is counted (mg_audit_dropped()), never retried.
 *
 * Reopening. The audit object writes to one private file descriptor number
 * for its whole life; a reopen (or a change of sink) opens the new target and
 * dup3()s it onto that number, which atomically replaces what the number
 * refers to. A worker writing at that moment writes to either the old or the
 * new file, never to a closed or reused descriptor. "off" only flips an atomic
 * flag. The number is closed by mg_audit_free().
 *
 * Threads: mg_audit_write() and mg_audit_enabled() from any thread at any
 * time; mg_audit_new(), mg_audit_reopen(), mg_audit_set_sink() from the main
 * thread (they are serialised by a mutex anyway); mg_audit_free() after
 * every writer has stopped.
 */
#ifndef MCPGATE_AUDIT_H
#define MCPGATE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MG_AUDIT_LINE_MAX 4096
#define MG_AUDIT_FIELD_MAX 256

typedef enum mg_audit_decision {
    MG_AUDIT_ALLOW = 0,
    MG_AUDIT_DENY = 1,
    MG_AUDIT_ERROR = 2,
} mg_audit_decision_t;

/* Plain data, filled by the caller; every pointer is borrowed for the call. */
typedef struct mg_audit_record {
    struct timespec time; /* CLOCK_REALTIME when the request arrived; {0, 0}: now */
    const char *request_id;
    const char *client;
    const char *route;
    const char *method;
    const char *rpc_method;
    const char *target;
    const char *iss;
    const char *sub;
    const char *client_id;
    mg_audit_decision_t decision;
    const char *reason;
    int status;
    uint64_t bytes_in;
    uint64_t bytes_out;
    double duration_ms;
    double upstream_ms; /* < 0 (or NaN): no upstream exchange, written as null */
} mg_audit_record_t;

typedef struct mg_audit mg_audit_t;

/* Open a sink ("stdout", "stderr", "off" or a path; NULL means "off").
 * Returns NULL on failure with a message in <err> (may be NULL). */
mg_audit_t *mg_audit_new(const char *sink, char *err, size_t errlen);

/* NULL-safe; only after every writer has stopped. */
void mg_audit_free(mg_audit_t *a);

/* Reopen the current file path (SIGUSR1 after logrotate moved the file);
 * a no-op returning 0 for stdout, stderr and off. On failure (-1, message in
 * <err>) the old file stays in use. */
int mg_audit_reopen(mg_audit_t *a, char *err, size_t errlen);

/* Switch to another sink (a reload changed it). Same failure rule. */
int mg_audit_set_sink(mg_audit_t *a, const char *sink, char *err, size_t errlen);

/* Is anything written? Lets the caller skip gathering fields. NULL-safe. */
bool mg_audit_enabled(const mg_audit_t *a);

/* Format and write one line. NULL-safe on <a> (audit off). */
void mg_audit_write(mg_audit_t *a, const mg_audit_record_t *r);

/* Write the line of a refused credential (a bad or unknown token or API key, a wrong
 * audience, a malformed Authorization header) for the client <addr> (the key of the
 * limit; NULL: r->client), at most MG_AUDIT_REFUSED_PER_SEC lines per address and
 * second of CLOCK_MONOTONIC, so that a flood of bad credentials cannot fill the disk.
 * The lines over the limit are counted, not written; when that address's second is
 * over, one summary line stands for them: the usual fields with client ADDR, decision
 * "deny", reason "refused_credentials_suppressed", status 0, and a last field
 * "suppressed": N (and "N refused-credential lines from ADDR suppressed" in the error
 * log at info). Summaries are written by the next line for that address, by the next
 * mg_audit_write() of any request, or by mg_audit_free(). The table of addresses is
 * process-wide (MG_AUDIT_REFUSED_SLOTS entries, under a mutex; an address evicted by
 * another gets its summary first). Only refused credentials are limited:
 * mg_audit_write() never drops a line. Returns true when the line was written. */
#define MG_AUDIT_REFUSED_PER_SEC 10
#define MG_AUDIT_REFUSED_SLOTS 256
bool mg_audit_write_refused(mg_audit_t *a, const mg_audit_record_t *r, const char *addr);

/* Refused-credential lines counted but not written since mg_audit_new(). */
uint64_t mg_audit_suppressed(const mg_audit_t *a);

/* Lines that could not be written in full since mg_audit_new(). */
uint64_t mg_audit_dropped(const mg_audit_t *a);

/* Format one line, with its trailing newline, into <buf> (at least
 * MG_AUDIT_LINE_MAX bytes; NUL-terminated). Returns the length without the
 * NUL. Pure; for tests and other sinks. */
size_t mg_audit_format(const mg_audit_record_t *r, char *buf, size_t size);

#endif /* MCPGATE_AUDIT_H */
