/* test_audit.c -- the audit log: exact fields, hostile strings, concurrent writers, reopen after
 * rename. */
#include "config.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcpgate/audit.h"
#include "mgtest.h"

static const char *const fields[] = {"time",        "request_id", "client", "route",    "method",
                                     "rpc_method",  "target",     "iss",    "sub",      "client_id",
                                     "decision",    "reason",     "status", "bytes_in", "bytes_out",
                                     "duration_ms", "upstream_ms"};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static char tmpdir[256];

static mg_audit_record_t
sample(void)
{
    mg_audit_record_t r = {0};
    r.time.tv_sec = 1714564800; /* 2024-05-01T12:00:00Z */
    r.time.tv_nsec = 123456789;
    r.request_id = "0123456789abcdef0123456789abcdef";
    r.client = "192.0.2.7:51234";
    r.route = "/mcp";
    r.method = "POST";
    r.rpc_method = "tools/call";
    r.target = "echo";
    r.iss = "https://as.example";
    r.sub = "alice";
    r.client_id = "cli";
    r.decision = MG_AUDIT_ALLOW;
    r.reason = "ok";
    r.status = 200;
    r.bytes_in = 321;
    r.bytes_out = 4567;
    r.duration_ms = 12.3456;
    r.upstream_ms = 10.5;
    return r;
}

/* Parse one line (without its newline) and check it has exactly the fields, in order. */
static json_t *
parse_line(const char *line, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
    size_t i = 0;
    const char *key;
    json_t *v;

    if (j == NULL) {
        printf("# parse error: %s: %.*s\n", e.text, (int)len, line);
        return NULL;
    }
    if (!json_is_object(j) || json_object_size(j) != NFIELDS) {
        json_decref(j);
        return NULL;
    }
    json_object_foreach(j, key, v)
    {
        (void)v;
        if (i >= NFIELDS || strcmp(key, fields[i]) != 0) {
            json_decref(j);
            return NULL;
        }
        i++;
    }
    return j;
}

static void
test_format_exact(void)
{
    mg_audit_record_t r = sample();
    char buf[MG_AUDIT_LINE_MAX];
    size_t n = mg_audit_format(&r, buf, sizeof(buf));

    MG_CHECK_INT(n, strlen(buf));
    MG_CHECK_STR(buf, "{\"time\":\"2024-05-01T12:00:00.123Z\","
                      "\"request_id\":\"0123456789abcdef0123456789abcdef\","
                      "\"client\":\"192.0.2.7:51234\",\"route\":\"/mcp\",\"method\":\"POST\","
                      "\"rpc_method\":\"tools/call\",\"target\":\"echo\","
                      "\"iss\":\"https://as.example\",\"sub\":\"alice\",\"client_id\":\"cli\","
                      "\"decision\":\"allow\",\"reason\":\"ok\",\"status\":200,"
                      "\"bytes_in\":321,\"bytes_out\":4567,\"duration_ms\":12.346,"
                      "\"upstream_ms\":10.500}\n");

    /* Absent values: null strings and no upstream. */
    mg_audit_record_t e = {0};
    e.decision = MG_AUDIT_DENY;
    e.upstream_ms = -1;
    n = mg_audit_format(&e, buf, sizeof(buf));
    json_t *j = parse_line(buf, n - 1);
    MG_CHECK(j != NULL);
    if (j != NULL) {
        MG_CHECK(json_is_null(json_object_get(j, "sub")));
        MG_CHECK(json_is_null(json_object_get(j, "upstream_ms")));
        MG_CHECK_STR(json_string_value(json_object_get(j, "decision")), "deny");
        MG_CHECK(strlen(json_string_value(json_object_get(j, "time"))) == 24);
        json_decref(j);
    }
    /* Too small a buffer: nothing. */
    MG_CHECK_INT(mg_audit_format(&e, buf, 100), 0);
}

static void
test_hostile_strings(void)
{
    mg_audit_record_t r = sample();
    char buf[MG_AUDIT_LINE_MAX];
    char big[5000];
    size_t n;

    r.sub = "evil\"}\n{\"decision\":\"allow\"\\\x01\x1f\x7f\t";
    r.target = "bad\xff\xc0\x80utf8\xed\xa0\x80 caf\xc3\xa9 \xe2\x80\xa8";
    memset(big, '\n', sizeof(big) - 1); /* 2 bytes of output each */
    big[sizeof(big) - 1] = '\0';
    r.rpc_method = big;
    r.iss = big;
    r.client_id = big;
    r.client = big;
    r.route = big;
    r.reason = big;
    r.method = big;
    r.request_id = big;
    n = mg_audit_format(&r, buf, sizeof(buf));
    MG_CHECK(n < MG_AUDIT_LINE_MAX && n > 0 && buf[n - 1] == '\n');
    MG_CHECK(memchr(buf, '\n', n - 1) == NULL); /* one line */
    for (size_t i = 0; i < n - 1; i++)
        MG_CHECK((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f);
    json_t *j = parse_line(buf, n - 1);
    MG_CHECK(j != NULL);
    if (j != NULL) {
        MG_CHECK_STR(json_string_value(json_object_get(j, "sub")),
                     "evil\"}\n{\"decision\":\"allow\"\\\x01\x1f\x7f\t");
        MG_CHECK_STR(json_string_value(json_object_get(j, "target")),
                     "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdutf8\xef\xbf\xbd\xef\xbf\xbd"
                     "\xef\xbf\xbd caf\xc3\xa9 \xe2\x80\xa8");
        MG_CHECK_STR(json_string_value(json_object_get(j, "decision")), "allow");
        const char *cut = json_string_value(json_object_get(j, "iss"));
        MG_CHECK(cut != NULL && strlen(cut) == (MG_AUDIT_FIELD_MAX - 2) / 2);
        json_decref(j);
    }
    MG_CHECK(strstr(buf, "\\u2028") != NULL);
    MG_CHECK(strstr(buf, "\\u0001") != NULL);

    /* Worst case for every string field: escapes of 6 bytes; still one line under the limit. */
    memset(big, '\x01', sizeof(big) - 1);
    r.sub = r.target = big;
    n = mg_audit_format(&r, buf, sizeof(buf));
    MG_CHECK(n < MG_AUDIT_LINE_MAX);
    j = parse_line(buf, n - 1);
    MG_CHECK(j != NULL);
    json_decref(j);
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    *len = 0;
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    if (p != NULL && fread(p, 1, (size_t)n, f) == (size_t)n) {
        p[n] = '\0';
        *len = (size_t)n;
    }
    fclose(f);
    return p;
}

/* Count lines; every one must parse with exactly the fields. Returns -1 on a bad line. */
static long
check_lines(const char *text, size_t len, const char *want_sub_prefix)
{
    long count = 0;
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return -1;
        json_t *j = parse_line(p, (size_t)(nl - p));
        if (j == NULL)
            return -1;
        if (want_sub_prefix != NULL) {
            const char *sub = json_string_value(json_object_get(j, "sub"));
            if (sub == NULL || strncmp(sub, want_sub_prefix, strlen(want_sub_prefix)) != 0) {
                json_decref(j);
                return -1;
            }
        }
        json_decref(j);
        count++;
        p = nl + 1;
    }
    return count;
}

#define WRITERS 8
#define LINES 2000

typedef struct {
    mg_audit_t *a;
    int id;
} writer_arg_t;

static void *
writer(void *p)
{
    writer_arg_t *w = p;
    char sub[64], pad[2000];
    mg_audit_record_t r = sample();

    /* Long lines (about 2.8 kB) make interleaving likely if writes were split. */
    memset(pad, 'a' + w->id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    r.target = r.iss = r.client_id = r.rpc_method = r.route = r.client = r.reason = pad;
    r.time.tv_sec = 0; /* now */
    r.time.tv_nsec = 0;
    for (int i = 0; i < LINES; i++) {
        snprintf(sub, sizeof(sub), "w%d-%d", w->id, i);
        r.sub = sub;
        r.bytes_in = (uint64_t)i;
        mg_audit_write(w->a, &r);
    }
    return NULL;
}

static void
test_concurrent_writers(void)
{
    char path[512], err[256];
    pthread_t t[WRITERS];
    writer_arg_t args[WRITERS];
    mg_audit_t *a;
    size_t len;
    char *text;

    snprintf(path, sizeof(path), "%s/concurrent.log", tmpdir);
    a = mg_audit_new(path, err, sizeof(err));
    MG_CHECK(a != NULL && mg_audit_enabled(a));
    if (a == NULL)
        return;
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (writer_arg_t){a, i};
        pthread_create(&t[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    MG_CHECK_INT(mg_audit_dropped(a), 0);
    mg_audit_free(a);

    text = read_file(path, &len);
    MG_CHECK(text != NULL);
    if (text != NULL)
        MG_CHECK_INT(check_lines(text, len, "w"), WRITERS * LINES);
    free(text);

    struct stat st;
    MG_CHECK(stat(path, &st) == 0 && (st.st_mode & 0077 & ~0040) == 0); /* 0640 or tighter */
}

typedef struct {
    mg_audit_t *a;
    atomic_int stop;
} rot_arg_t;

static void *
rot_writer(void *p)
{
    rot_arg_t *ra = p;
    mg_audit_record_t r = sample();
    long n = 0;
    while (!atomic_load(&ra->stop)) {
        r.bytes_in = (uint64_t)n++;
        mg_audit_write(ra->a, &r);
    }
    return NULL;
}

static void
test_reopen_after_rename(void)
{
    char path[512], rotated[512], err[256];
    mg_audit_record_t r = sample();
    mg_audit_t *a;
    char *text;
    size_t len;

    snprintf(path, sizeof(path), "%s/audit.log", tmpdir);
    snprintf(rotated, sizeof(rotated), "%s/audit.log.1", tmpdir);
    a = mg_audit_new(path, err, sizeof(err));
    MG_CHECK(a != NULL);
    if (a == NULL)
        return;
    r.sub = "before";
    mg_audit_write(a, &r);
    mg_audit_write(a, &r);
    MG_CHECK(rename(path, rotated) == 0);
    r.sub = "after-rename"; /* still goes to the renamed file until the reopen */
    mg_audit_write(a, &r);
    MG_CHECK_INT(mg_audit_reopen(a, err, sizeof(err)), 0);
    r.sub = "after-reopen";
    mg_audit_write(a, &r);
    mg_audit_write(a, &r);
    mg_audit_write(a, &r);

    text = read_file(rotated, &len);
    MG_CHECK(text != NULL && check_lines(text, len, NULL) == 3);
    MG_CHECK(text != NULL && strstr(text, "after-reopen") == NULL);
    free(text);
    text = read_file(path, &len);
    MG_CHECK(text != NULL && check_lines(text, len, "after-reopen") == 3);
    free(text);

    /* Reopen while writers run: every line lands whole in one file or the other. */
    rot_arg_t ra = {a, 0};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, rot_writer, &ra);
    for (int i = 0; i < 50; i++) {
        rename(path, rotated);
        MG_CHECK_INT(mg_audit_reopen(a, err, sizeof(err)), 0);
        usleep(200);
    }
    atomic_store(&ra.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    text = read_file(path, &len);
    MG_CHECK(text != NULL && check_lines(text, len, NULL) >= 0);
    free(text);
    text = read_file(rotated, &len);
    MG_CHECK(text != NULL && check_lines(text, len, NULL) >= 0);
    free(text);
    MG_CHECK_INT(mg_audit_dropped(a), 0);

    /* A failed reopen keeps the old file. */
    MG_CHECK_INT(mg_audit_set_sink(a, "/nonexistent-dir/x.log", err, sizeof(err)), -1);
    MG_CHECK(strstr(err, "/nonexistent-dir/x.log") != NULL);
    MG_CHECK(mg_audit_enabled(a));
    /* Off, then back on. */
    MG_CHECK_INT(mg_audit_set_sink(a, "off", err, sizeof(err)), 0);
    MG_CHECK(!mg_audit_enabled(a));
    mg_audit_write(a, &r);
    MG_CHECK_INT(mg_audit_reopen(a, err, sizeof(err)), 0);
    MG_CHECK_INT(mg_audit_set_sink(a, path, err, sizeof(err)), 0);
    MG_CHECK(mg_audit_enabled(a));
    mg_audit_free(a);
    unlink(path);
    unlink(rotated);
}

static void
test_sinks(void)
{
    char err[256] = "";
    mg_audit_t *a = mg_audit_new("off", err, sizeof(err));
    MG_CHECK(a != NULL && !mg_audit_enabled(a));
    mg_audit_free(a);
    a = mg_audit_new(NULL, err, sizeof(err));
    MG_CHECK(a != NULL && !mg_audit_enabled(a));
    mg_audit_free(a);
    a = mg_audit_new("stderr", err, sizeof(err));
    MG_CHECK(a != NULL && mg_audit_enabled(a));
    MG_CHECK_INT(mg_audit_reopen(a, err, sizeof(err)), 0);
    mg_audit_free(a);
    MG_CHECK(mg_audit_new("", err, sizeof(err)) == NULL);
    MG_CHECK(mg_audit_new("/nonexistent-dir/a.log", err, sizeof(err)) == NULL);
    MG_CHECK(fcntl(STDERR_FILENO, F_GETFD) >= 0); /* stdio never closed */
    mg_audit_write(NULL, NULL);
    mg_audit_free(NULL);
}

/* Issue 10: refused-credential lines at most MG_AUDIT_REFUSED_PER_SEC per address and
 * second, one summary line for the rest, allowed lines never dropped. */
static void
test_refused_limit(void)
{
    char path[600], err[256] = "";
    mg_audit_t *a;
    mg_audit_record_t r = sample();
    struct timespec t0, t;
    char *text;
    size_t len;
    long written = 0, refused_a = 0, refused_b = 0, allowed = 0, summaries = 0;
    long long held = 0;

    snprintf(path, sizeof(path), "%s/refused.log", tmpdir);
    unlink(path);
    a = mg_audit_new(path, err, sizeof(err));
    MG_CHECK(a != NULL);
    if (a == NULL)
        return;
    /* start right after a second boundary: the flood fits one window */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while (t.tv_sec == t0.tv_sec);
    r.decision = MG_AUDIT_DENY;
    r.reason = "invalid_token";
    r.status = 401;
    r.client = "192.0.2.7";
    for (int i = 0; i < 100; i++)
        written += mg_audit_write_refused(a, &r, NULL);
    r.client = "198.51.100.9";
    for (int i = 0; i < 5; i++)
        written += mg_audit_write_refused(a, &r, "198.51.100.9");
    MG_CHECK_INT(written, MG_AUDIT_REFUSED_PER_SEC + 5);
    MG_CHECK_INT((long)mg_audit_suppressed(a), 100 - MG_AUDIT_REFUSED_PER_SEC);
    r.decision = MG_AUDIT_ALLOW;
    r.reason = "ok";
    r.status = 200;
    mg_audit_write(a, &r); /* same second: no summary yet */
    do
        clock_gettime(CLOCK_MONOTONIC, &t0);
    while (t0.tv_sec == t.tv_sec);
    mg_audit_write(a, &r); /* the window is over: the summary comes first */
    mg_audit_free(a);
    text = read_file(path, &len);
    MG_CHECK(text != NULL);
    for (const char *p = text; text != NULL && p < text + len;) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        json_error_t e;
        json_t *j;
        if (nl == NULL)
            break;
        j = json_loadb(p, (size_t)(nl - p), 0, &e);
        MG_CHECK(j != NULL);
        if (j != NULL) {
            const char *reason = json_string_value(json_object_get(j, "reason"));
            const char *client = json_string_value(json_object_get(j, "client"));
            if (reason != NULL && strcmp(reason, "refused_credentials_suppressed") == 0) {
                summaries++;
                held += json_integer_value(json_object_get(j, "suppressed"));
                MG_CHECK(client != NULL && strcmp(client, "192.0.2.7") == 0);
            } else if (reason != NULL && strcmp(reason, "ok") == 0) {
                allowed++;
            } else if (client != NULL && strcmp(client, "192.0.2.7") == 0) {
                refused_a++;
            } else {
                refused_b++;
            }
            json_decref(j);
        }
        p = nl + 1;
    }
    MG_CHECK_INT(refused_a, MG_AUDIT_REFUSED_PER_SEC);
    MG_CHECK_INT(refused_b, 5);
    MG_CHECK_INT(allowed, 2);
    MG_CHECK_INT(summaries, 1);
    MG_CHECK_INT((long)held, 100 - MG_AUDIT_REFUSED_PER_SEC);
    free(text);
    unlink(path);
}

int
main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/mg-audit-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    MG_RUN(test_format_exact);
    MG_RUN(test_hostile_strings);
    MG_RUN(test_concurrent_writers);
    MG_RUN(test_reopen_after_rename);
    MG_RUN(test_sinks);
    MG_RUN(test_refused_limit);
    char path[600];
    snprintf(path, sizeof(path), "%s/concurrent.log", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return mg_test_done();
}
