/* audit.c -- the audit log: JSON lines, one write(2) each, sink swapped with dup3() on reopen. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcpgate/audit.h"
#include "mcpgate/log.h"
#include "obs_int.h"

struct mg_audit {
    /* What writers use: own_fd while a sink is on, -1 when off. */
    atomic_int fd;
    atomic_uint_fast64_t dropped;
    /* Main thread only (under <lock>). */
    pthread_mutex_t lock;
    int own_fd; /* the private number; -1 until a sink was on once */
    char *path; /* the current file sink, NULL for stdout/stderr/off */
    /* The limit on refused-credential lines (mg_audit_write_refused), any thread. */
    pthread_mutex_t rl_lock;
    atomic_uint pending; /* slots whose summary is still owed: mg_audit_write looks */
    atomic_uint_fast64_t suppressed;
    struct refused_slot {
        char addr[64];  /* "" when free */
        int64_t second; /* CLOCK_MONOTONIC second of the current window */
        unsigned lines; /* written in that second */
        uint64_t held;  /* counted, not written, since the last summary */
    } slots[MG_AUDIT_REFUSED_SLOTS];
};

/* ---- formatting ---- */

typedef struct line {
    char *p;
    size_t len, size; /* size - 1 is the usable length (NUL kept) */
} line_t;

static void
put(line_t *l, const char *s, size_t n)
{
    if (l->len + n >= l->size)
        n = l->size - 1 - l->len; /* cannot happen with the budgets below */
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static void
puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A JSON string (or null), at most MG_AUDIT_FIELD_MAX bytes of output
 * including the quotes; an escape or character that would not fit is left
 * out with everything after it. */
static void
put_string(line_t *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t n, i = 0, used = 2, k;
    char esc[8];
    size_t elen;

    if (s == NULL) {
        put(l, "null", 4);
        return;
    }
    n = strlen(s);
    put(l, "\"", 1);
    while (i < n) {
        unsigned c = u[i];
        const char *out = esc;
        k = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            esc[0] = '\\';
            elen = 2;
            switch (c) {
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
        } else if (c < 0x80) {
            out = s + i;
            elen = 1;
        } else {
            k = mg_obs_utf8_seq(u + i, n - i);
            if (k == 0) {
                out = "\\ufffd";
                elen = 6;
                k = 1;
            } else if (k == 3 && c == 0xe2 && u[i + 1] == 0x80 &&
                       (u[i + 2] == 0xa8 || u[i + 2] == 0xa9)) {
                /* U+2028/U+2029 end lines in JavaScript and some viewers. */
                out = u[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
                elen = 6;
            } else {
                out = s + i;
                elen = k;
            }
        }
        if (used + elen > MG_AUDIT_FIELD_MAX)
            break;
        put(l, out, elen);
        used += elen;
        i += k;
    }
    put(l, "\"", 1);
}

static void
put_key(line_t *l, const char *key, bool first)
{
    if (!first)
        put(l, ",", 1);
    put(l, "\"", 1);
    puts_(l, key);
    put(l, "\":", 2);
}

static void
put_ms(line_t *l, double ms)
{
    char tmp[48];
    int n;

    if (!isfinite(ms) || ms < 0)
        ms = 0;
    if (ms > 1e12) /* ~31 years: keeps the number short */
        ms = 1e12;
    n = snprintf(tmp, sizeof(tmp), "%.3f", ms);
    if (n > 0)
        put(l, tmp, (size_t)n);
}

size_t
mg_audit_format(const mg_audit_record_t *r, char *buf, size_t size)
{
    static const char *const decisions[] = {"allow", "deny", "error"};
    line_t l = {buf, 0, size};
    struct timespec ts = r->time;
    struct tm tm;
    char tmp[64];
    int n;

    if (size < MG_AUDIT_LINE_MAX) {
        if (size > 0)
            buf[0] = '\0';
        return 0;
    }
    buf[0] = '\0';
    if (ts.tv_sec == 0 && ts.tv_nsec == 0)
        clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (long)(ts.tv_nsec / 1000000) % 1000);
    put(&l, "{", 1);
    put_key(&l, "time", true);
    put_string(&l, n > 0 ? tmp : NULL);
    put_key(&l, "request_id", false);
    put_string(&l, r->request_id);
    put_key(&l, "client", false);
    put_string(&l, r->client);
    put_key(&l, "route", false);
    put_string(&l, r->route);
    put_key(&l, "method", false);
    put_string(&l, r->method);
    put_key(&l, "rpc_method", false);
    put_string(&l, r->rpc_method);
    put_key(&l, "target", false);
    put_string(&l, r->target);
    put_key(&l, "iss", false);
    put_string(&l, r->iss);
    put_key(&l, "sub", false);
    put_string(&l, r->sub);
    put_key(&l, "client_id", false);
    put_string(&l, r->client_id);
    put_key(&l, "decision", false);
    put_string(&l, (unsigned)r->decision < 3 ? decisions[r->decision] : "error");
    put_key(&l, "reason", false);
    put_string(&l, r->reason);
    n = snprintf(tmp, sizeof(tmp), "%d", r->status);
    put_key(&l, "status", false);
    put(&l, tmp, (size_t)n);
    n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)r->bytes_in);
    put_key(&l, "bytes_in", false);
    put(&l, tmp, (size_t)n);
    n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)r->bytes_out);
    put_key(&l, "bytes_out", false);
    put(&l, tmp, (size_t)n);
    put_key(&l, "duration_ms", false);
    put_ms(&l, r->duration_ms);
    put_key(&l, "upstream_ms", false);
    if (isnan(r->upstream_ms) || r->upstream_ms < 0)
        put(&l, "null", 4);
    else
        put_ms(&l, r->upstream_ms);
    put(&l, "}\n", 2);
    return l.len;
}

/* ---- sinks ---- */

static void
set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, a, b);
}

/* Point own_fd at <sink> (called with the lock held). */
static int
install(mg_audit_t *a, const char *sink, char *err, size_t errlen)
{
    int target = -1, opened = -1, rc = -1;
    char *path = NULL;

    if (sink == NULL || strcmp(sink, "off") == 0) {
        atomic_store(&a->fd, -1);
        free(a->path);
        a->path = NULL;
        return 0;
    }
    if (*sink == '\0') {
        set_err(err, errlen, "audit log: empty sink%s%s", "", "");
        goto fail;
    }
    if (strcmp(sink, "stdout") == 0) {
        target = STDOUT_FILENO;
    } else if (strcmp(sink, "stderr") == 0) {
        target = STDERR_FILENO;
    } else {
        path = strdup(sink);
        if (path == NULL) {
            set_err(err, errlen, "audit log: %s%s", "out of memory", "");
            goto fail;
        }
        opened = open(sink, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (opened < 0) {
            set_err(err, errlen, "audit log: cannot open %s: %s", sink, strerror(errno));
            goto fail;
        }
        target = opened;
    }
    if (a->own_fd < 0) {
        /* Above 2 so that it can never be confused with stdio. */
        a->own_fd = fcntl(target, F_DUPFD_CLOEXEC, 3);
        if (a->own_fd < 0) {
            set_err(err, errlen, "audit log: dup: %s%s", strerror(errno), "");
            goto fail;
        }
    } else if (dup3(target, a->own_fd, O_CLOEXEC) < 0) {
        set_err(err, errlen, "audit log: dup3: %s%s", strerror(errno), "");
        goto fail;
    }
    atomic_store(&a->fd, a->own_fd);
    free(a->path);
    a->path = path;
    path = NULL;
    rc = 0;
fail:
    if (opened >= 0)
        close(opened);
    free(path);
    return rc;
}

static void flush_summaries(mg_audit_t *a, int64_t now);

mg_audit_t *
mg_audit_new(const char *sink, char *err, size_t errlen)
{
    mg_audit_t *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        set_err(err, errlen, "audit log: %s%s", "out of memory", "");
        return NULL;
    }
    atomic_init(&a->fd, -1);
    atomic_init(&a->dropped, 0);
    atomic_init(&a->pending, 0);
    atomic_init(&a->suppressed, 0);
    a->own_fd = -1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->rl_lock, NULL);
    if (install(a, sink, err, errlen) < 0) {
        mg_audit_free(a);
        return NULL;
    }
    return a;
}

void
mg_audit_free(mg_audit_t *a)
{
    if (a == NULL)
        return;
    flush_summaries(a, INT64_MAX); /* what was held back is still said once */
    if (a->own_fd >= 0)
        close(a->own_fd);
    free(a->path);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->rl_lock);
    free(a);
}

int
mg_audit_reopen(mg_audit_t *a, char *err, size_t errlen)
{
    int rc = 0;
    char *path;

    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->lock);
    if (a->path != NULL) {
        path = strdup(a->path); /* install() replaces a->path */
        rc = path != NULL ? install(a, path, err, errlen) : -1;
        free(path);
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int
mg_audit_set_sink(mg_audit_t *a, const char *sink, char *err, size_t errlen)
{
    int rc;

    if (a == NULL)
        return -1;
    pthread_mutex_lock(&a->lock);
    rc = install(a, sink, err, errlen);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

bool
mg_audit_enabled(const mg_audit_t *a)
{
    return a != NULL && atomic_load_explicit(&a->fd, memory_order_relaxed) >= 0;
}

uint64_t
mg_audit_dropped(const mg_audit_t *a)
{
    return a != NULL ? atomic_load(&a->dropped) : 0;
}

static void
write_line(mg_audit_t *a, const char *line, size_t n)
{
    ssize_t w;
    int fd = atomic_load_explicit(&a->fd, memory_order_relaxed);

    if (fd < 0)
        return;
    do
        w = write(fd, line, n);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)n)
        atomic_fetch_add_explicit(&a->dropped, 1, memory_order_relaxed);
}

static void
write_record(mg_audit_t *a, const mg_audit_record_t *r)
{
    char line[MG_AUDIT_LINE_MAX];
    size_t n = mg_audit_format(r, line, sizeof(line));

    write_line(a, line, n);
}

/* The summary for <addr>: a usual line plus "suppressed": N. */
static void
write_summary(mg_audit_t *a, const char *addr, uint64_t held)
{
    char line[MG_AUDIT_LINE_MAX];
    mg_audit_record_t r = {0};
    size_t n;
    int k;

    r.client = addr;
    r.decision = MG_AUDIT_DENY;
    r.reason = "refused_credentials_suppressed";
    r.upstream_ms = -1;
    n = mg_audit_format(&r, line, sizeof(line));
    /* n >= 2 ends with "}\n"; the field fits: a line is far from MG_AUDIT_LINE_MAX */
    k = snprintf(line + n - 2, sizeof(line) - (n - 2), ",\"suppressed\":%llu}\n",
                 (unsigned long long)held);
    if (k > 0 && (size_t)k < sizeof(line) - (n - 2))
        write_line(a, line, n - 2 + (size_t)k);
    mg_log_info("audit: %llu refused-credential lines from %s suppressed", (unsigned long long)held,
                addr);
}

static int64_t
now_second(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Write the summaries owed for windows before <now> (INT64_MAX: all of them). */
static void
flush_summaries(mg_audit_t *a, int64_t now)
{
    struct {
        char addr[64];
        uint64_t held;
    } owed[16];
    size_t nowed;

    do {
        nowed = 0;
        pthread_mutex_lock(&a->rl_lock);
        for (size_t i = 0; i < MG_AUDIT_REFUSED_SLOTS && nowed < 16; i++) {
            struct refused_slot *s = &a->slots[i];
            if (s->held == 0 || s->second >= now)
                continue;
            memcpy(owed[nowed].addr, s->addr, sizeof(s->addr));
            owed[nowed++].held = s->held;
            s->held = 0;
            atomic_fetch_sub(&a->pending, 1);
        }
        pthread_mutex_unlock(&a->rl_lock);
        for (size_t i = 0; i < nowed; i++)
            write_summary(a, owed[i].addr, owed[i].held);
    } while (nowed == 16);
}

void
mg_audit_write(mg_audit_t *a, const mg_audit_record_t *r)
{
    if (a == NULL || r == NULL)
        return;
    if (atomic_load_explicit(&a->fd, memory_order_relaxed) < 0)
        return;
    if (atomic_load_explicit(&a->pending, memory_order_relaxed) > 0)
        flush_summaries(a, now_second());
    write_record(a, r);
}

static uint32_t
addr_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

bool
mg_audit_write_refused(mg_audit_t *a, const mg_audit_record_t *r, const char *addr)
{
    struct refused_slot *s;
    char key[sizeof(s->addr)];
    char evicted[64] = "";
    uint64_t evicted_held = 0, own_held = 0;
    int64_t now;
    bool keep;

    if (a == NULL || r == NULL || atomic_load_explicit(&a->fd, memory_order_relaxed) < 0)
        return false;
    if (addr == NULL)
        addr = r->client != NULL ? r->client : "";
    snprintf(key, sizeof(key), "%s", addr); /* an address always fits; cut anything else */
    addr = key;
    now = now_second();
    pthread_mutex_lock(&a->rl_lock);
    s = &a->slots[addr_hash(addr) % MG_AUDIT_REFUSED_SLOTS];
    if (strncmp(s->addr, addr, sizeof(s->addr)) != 0) {
        if (s->held > 0) {
            memcpy(evicted, s->addr, sizeof(evicted));
            evicted_held = s->held;
            atomic_fetch_sub(&a->pending, 1);
        }
        memset(s, 0, sizeof(*s));
        snprintf(s->addr, sizeof(s->addr), "%s", addr);
        s->second = now;
    }
    if (s->second != now) {
        if (s->held > 0) {
            own_held = s->held;
            atomic_fetch_sub(&a->pending, 1);
        }
        s->second = now;
        s->lines = 0;
        s->held = 0;
    }
    keep = s->lines < MG_AUDIT_REFUSED_PER_SEC;
    if (keep) {
        s->lines++;
    } else {
        if (s->held++ == 0)
            atomic_fetch_add(&a->pending, 1);
        atomic_fetch_add_explicit(&a->suppressed, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&a->rl_lock);
    if (evicted_held > 0)
        write_summary(a, evicted, evicted_held);
    if (own_held > 0)
        write_summary(a, addr, own_held);
    if (keep)
        write_record(a, r);
    return keep;
}

uint64_t
mg_audit_suppressed(const mg_audit_t *a)
{
    return a != NULL ? atomic_load(&a->suppressed) : 0;
}
