/* test_jsonrpc.c -- mg_rpc_parse() (the single-pass scanner): its answers on tricky bodies, and that they equal mg_rpc_parse_jansson()'s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/jsonrpc.h"
#include "mgtest.h"

#define PARSE MG_RPC_PARSE_ERROR
#define INVALID MG_RPC_INVALID_REQUEST
#define MSG(rest) "{\"jsonrpc\":\"2.0\"," rest "}"
#define ID(v) MSG("\"method\":\"ping\",\"id\":" v)

/* A body given with its length (some hold NUL bytes), the expected result and,
 * when it parses, the first message's id, or NULL to skip that check. */
typedef struct rpc_case {
    const char *body;
    size_t len; /* 0: strlen(body) */
    int rc;
    const char *id;
} rpc_case_t;

#define B(s) s, sizeof(s) - 1

static bool
same_str(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* mg_rpc_parse and the jansson reference agree on <body> in every output. */
static bool
agrees(const char *body, size_t len)
{
    mg_rpc_body_t *a = NULL, *b = NULL;
    int ra = mg_rpc_parse(body, len, &a), rb = mg_rpc_parse_jansson(body, len, &b);
    bool ok = ra == rb && (a == NULL) == (b == NULL);

    if (ok && a != NULL) {
        ok = a->batch == b->batch && a->n == b->n;
        for (size_t i = 0; ok && i < a->n; i++) {
            const mg_rpc_msg_t *x = &a->msgs[i], *y = &b->msgs[i];
            ok = x->kind == y->kind && x->has_target_field == y->has_target_field &&
                 same_str(x->method, y->method) && same_str(x->id, y->id) &&
                 same_str(x->target, y->target) && same_str(x->meta_version, y->meta_version) &&
                 same_str(x->requested_version, y->requested_version);
        }
    }
    if (!ok)
        printf("# scanner %d, jansson %d for %.*s\n", ra, rb, (int)len, body);
    mg_rpc_body_free(a);
    mg_rpc_body_free(b);
    return ok;
}

static void
run_cases(const rpc_case_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = t[i].len ? t[i].len : strlen(t[i].body);
        mg_rpc_body_t *b = NULL;
        int rc = mg_rpc_parse(t[i].body, len, &b);

        if (rc != t[i].rc)
            printf("# case %zu: %.*s -> %d\n", i, (int)len, t[i].body, rc);
        MG_CHECK_INT(rc, t[i].rc);
        MG_CHECK((rc == 0) == (b != NULL));
        if (b != NULL && t[i].id != NULL)
            MG_CHECK_STR(b->msgs[0].id, t[i].id);
        mg_rpc_body_free(b);
        MG_CHECK(agrees(t[i].body, len));
    }
}

static void
test_hot_path(void)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
        "{\"name\":\"echo\",\"arguments\":{\"message\":\"hello from wrk\"}}}";
    mg_rpc_body_t *b = NULL;

    MG_CHECK_INT(mg_rpc_parse(body, sizeof(body) - 1, &b), 0);
    if (b != NULL) {
        MG_CHECK(!b->batch);
        MG_CHECK_INT(b->n, 1);
        MG_CHECK_INT(b->msgs[0].kind, MG_RPC_REQUEST);
        MG_CHECK_STR(b->msgs[0].method, "tools/call");
        MG_CHECK_STR(b->msgs[0].id, "1");
        MG_CHECK_STR(b->msgs[0].target, "echo");
        MG_CHECK(b->msgs[0].has_target_field);
        MG_CHECK(b->msgs[0].meta_version == NULL);
        MG_CHECK(b->msgs[0].requested_version == NULL);
    }
    mg_rpc_body_free(b);
    MG_CHECK(agrees(body, sizeof(body) - 1));
    MG_CHECK_INT(mg_rpc_parse(NULL, 0, &b), PARSE);
    MG_CHECK(b == NULL);
}

/* Strings: escapes, surrogates, UTF-8, NUL, control characters. */
static void
test_strings(void)
{
    static const rpc_case_t t[] = {
        {B(ID("\"a\\\"b\\\\c\"")), 0, "\"a\\\"b\\\\c\""},
        {B(ID("\"\\u00e9\\/x\"")), 0, "\"\xc3\xa9/x\""},
        {B(ID("\"\\u001f\\b\\f\\n\\r\\t\"")), 0, NULL},
        {B(ID("\"\\ud83d\\ude00\"")), 0, "\"\xf0\x9f\x98\x80\""},
        {B(ID("\"\\uD83D\\uDE00\"")), 0, "\"\xf0\x9f\x98\x80\""},
        {B(ID("\"\\ud800\"")), PARSE, NULL}, /* lone high surrogate */
        {B(ID("\"\\ud800x\"")), PARSE, NULL},
        {B(ID("\"\\ud800\\u0041\"")), PARSE, NULL}, /* high + non-low */
        {B(ID("\"\\ud800\\n\"")), PARSE, NULL},
        {B(ID("\"\\ud800\\ud800\"")), PARSE, NULL},
        {B(ID("\"\\udc00\"")), PARSE, NULL}, /* lone low surrogate */
        {B(ID("\"\\udc00\\ud800\"")), PARSE, NULL},
        {B(ID("\"\\u0000\"")), PARSE, NULL}, /* no JSON_ALLOW_NUL */
        {B(MSG("\"method\":\"a\\u0000\",\"id\":1")), PARSE, NULL},
        {B(MSG("\"method\":\"ping\",\"id\":1,\"k\\u0000\":1")), PARSE, NULL},
        {B(ID("\"\\u12\"")), PARSE, NULL},
        {B(ID("\"\\u12g4\"")), PARSE, NULL},
        {B(ID("\"\\x41\"")), PARSE, NULL},
        {B(ID("\"\\'\"")), PARSE, NULL},
        {B(ID("\"a\tb\"")), PARSE, NULL},       /* raw control character */
        {B(ID("\"a\177b\"")), 0, "\"a\177b\""}, /* DEL is not a control character here */
        {B(ID("\"\xc3\xa9\"")), 0, "\"\xc3\xa9\""},
        {B(ID("\"\xc0\xaf\"")), PARSE, NULL}, /* overlong '/' */
        {B(ID("\"\xc1\xbf\"")), PARSE, NULL},
        {B(ID("\"\xe0\x80\xaf\"")), PARSE, NULL},     /* overlong, 3 bytes */
        {B(ID("\"\xf0\x80\x80\xaf\"")), PARSE, NULL}, /* overlong, 4 bytes */
        {B(ID("\"\xed\xa0\x80\"")), PARSE, NULL},     /* UTF-8 surrogate */
        {B(ID("\"\xf4\x90\x80\x80\"")), PARSE, NULL}, /* above U+10FFFF */
        {B(ID("\"\xf5\x80\x80\x80\"")), PARSE, NULL},
        {B(ID("\"\x80\"")), PARSE, NULL}, /* lone continuation */
        {B(ID("\"\xc3\"")), PARSE, NULL}, /* truncated */
        {B(ID("\"\xe2\x82\"")), PARSE, NULL},
        {B(ID("\"\xf4\x8f\xbf\xbf\"")), 0, "\"\xf4\x8f\xbf\xbf\""},
        {B("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":\"\xc3"), PARSE, NULL},
        {B(ID("\"abc")), PARSE, NULL},
        {B(MSG("\"method\":\"ping\",\"id\":1,\"x\":\"\xff\"")), PARSE, NULL},
        /* escaped fields are read by their value */
        {B("{\"jsonrpc\":\"2\\u002e0\",\"id\":1,\"method\":\"ping\"}"), 0, "1"},
        {B("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"ping\"}"), INVALID, NULL},
        {B("{\"\\u006asonrpc\":\"2.0\",\"\\u0069d\":7,\"method\":\"ping\"}"), 0, "7"},
        {B("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools\\/call\",\"params\":{\"n\\u0061me\":"
           "\"a\\\"b\"}}"),
         0, "1"},
        {B("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"_meta\":{\"io."
           "modelcontextprotocol\\/protocolVersion\":\"2026-07-28\"}}}"),
         0, "1"},
    };
    mg_rpc_body_t *b = NULL;
    const char *s;

    run_cases(t, sizeof(t) / sizeof(t[0]));
    s = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools\\/call\",\"params\":{\"n\\u0061me\":"
        "\"a\\\"b\\u00e9\"}}";
    MG_CHECK_INT(mg_rpc_parse(s, strlen(s), &b), 0);
    if (b != NULL) {
        MG_CHECK_STR(b->msgs[0].method, "tools/call");
        MG_CHECK_STR(b->msgs[0].target, "a\"b\xc3\xa9");
    }
    mg_rpc_body_free(b);
}

/* Duplicate keys at any depth, also when spelled differently. */
static void
test_duplicates(void)
{
    static const rpc_case_t t[] = {
        {B(MSG("\"id\":1,\"id\":2,\"method\":\"ping\"")), PARSE, NULL},
        {B(MSG("\"id\":1,\"method\":\"ping\",\"jsonrpc\":\"2.0\"")), PARSE, NULL},
        {B(MSG("\"id\":1,\"method\":\"x\",\"params\":{\"a\":{\"b\":[{\"c\":1,\"c\":2}]}}")), PARSE,
         NULL},
        {B(MSG("\"id\":1,\"method\":\"x\",\"params\":{\"a\":{\"b\":[{\"c\":1},{\"c\":2}]}}")), 0,
         "1"},
        {B(MSG("\"id\":1,\"method\":\"x\",\"params\":{\"a\":1,\"b\":{\"a\":2},\"c\":3}")), 0, "1"},
        {B(MSG("\"id\":1,\"method\":\"ping\",\"\\u0069d\":2")), PARSE, NULL},
        {B(MSG("\"id\":1,\"method\":\"ping\",\"x\\/\":1,\"x/\":2")), PARSE, NULL},
        {B(MSG("\"id\":1,\"method\":\"ping\",\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2")), PARSE,
         NULL},
        {B(MSG("\"id\":1,\"method\":\"ping\",\"\":1,\"\":2")), PARSE, NULL},
        {B(MSG("\"id\":1,\"method\":\"ping\",\"ab\":1,\"a\":2,\"abc\":3")), 0, "1"},
        {B("[{\"a\":1},{\"a\":1,\"a\":1}]"), PARSE, NULL}, /* parse errors beat -32600 */
    };
    char big[4096];
    size_t n;

    run_cases(t, sizeof(t) / sizeof(t[0]));
    /* objects past the scanner's pairwise bound (32 keys) go to jansson; the
     * answers stay the same, duplicate or not */
    for (int keys = 30; keys <= 40; keys++) {
        for (int dup = 0; dup < 2; dup++) {
            n = (size_t)snprintf(big, sizeof(big),
                                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"x\"", keys);
            for (int k = 3; k < keys; k++)
                n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"k%d\":%d", dup ? k / 2 : k, k);
            n += (size_t)snprintf(big + n, sizeof(big) - n, "}");
            MG_CHECK(agrees(big, n));
        }
    }
}

/* Numbers as jansson takes them, and ids serialised as jansson writes them. */
static void
test_numbers(void)
{
    static const rpc_case_t t[] = {
        {B(ID("1")), 0, "1"},
        {B(ID("-0")), 0, "0"},
        {B(ID("0")), 0, "0"},
        {B(ID("1.0")), 0, "1.0"},
        {B(ID("1e3")), 0, "1000.0"},
        {B(ID("1E+2")), 0, "100.0"},
        {B(ID("-0.0")), 0, "-0.0"},
        {B(ID("0.1")), 0, NULL},
        {B(ID("1e-400")), 0, NULL}, /* underflow is accepted */
        {B(ID("1e400")), PARSE, NULL},
        {B(ID("-1e400")), PARSE, NULL},
        {B(ID("1e308")), 0, NULL},
        {B(ID("1.7976931348623157e308")), 0, NULL},
        {B(ID("1.7976931348623159e308")), PARSE, NULL},
        {B(ID("17976931348623157e292")), 0, NULL},
        {B(ID("0.0000000000000000000000000000001e339")), 0, NULL},
        {B(ID("1e000000000000000000000000000000000000000000000000308")), 0, NULL},
        {B(ID("1e000000000000000000000000000000000000000000000000309")), PARSE, NULL},
        {B(ID("9223372036854775807")), 0, "9223372036854775807"},
        {B(ID("-9223372036854775808")), 0, "-9223372036854775808"},
        {B(ID("9223372036854775808")), PARSE, NULL},
        {B(ID("-9223372036854775809")), PARSE, NULL},
        {B(ID("12345678901234567890")), PARSE, NULL},
        {B(ID("9223372036854775808.0")), 0, NULL}, /* a real: no integer range */
        {B(ID("00")), PARSE, NULL},
        {B(ID("01")), PARSE, NULL},
        {B(ID("-01")), PARSE, NULL},
        {B(ID("1.")), PARSE, NULL},
        {B(ID(".5")), PARSE, NULL},
        {B(ID("1.e3")), PARSE, NULL},
        {B(ID("1e")), PARSE, NULL},
        {B(ID("1e+")), PARSE, NULL},
        {B(ID("+1")), PARSE, NULL},
        {B(ID("-")), PARSE, NULL},
        {B(ID("- 1")), PARSE, NULL},
        {B(ID("0x10")), PARSE, NULL},
        {B(ID("1.5e3.2")), PARSE, NULL},
        {B(ID("Infinity")), PARSE, NULL},
        {B(ID("NaN")), PARSE, NULL},
        {B(MSG("\"method\":\"x\",\"params\":[1e999]")), PARSE, NULL},
        {B(MSG("\"method\":\"x\",\"params\":[99999999999999999999]")), PARSE, NULL},
        {B("1e400"), PARSE, NULL},
        {B("1e300"), INVALID, NULL},
    };
    run_cases(t, sizeof(t) / sizeof(t[0]));
}

/* Depth, batches, literals, whitespace, BOM, trailing data, the JSON-RPC shape. */
static void
test_structure(void)
{
    static const rpc_case_t t[] = {
        {B(""), PARSE, NULL},
        {B(" \t\r\n"), PARSE, NULL},
        {B(" \t\r\n" ID("1") " \t\r\n"), 0, "1"},
        {B("\f" ID("1")), PARSE, NULL},
        {B(ID("1") "\f"), PARSE, NULL},
        {B("\xc2\xa0" ID("1")), PARSE, NULL},     /* NBSP */
        {B("\xef\xbb\xbf" ID("1")), PARSE, NULL}, /* BOM */
        {B(ID("1") "x"), PARSE, NULL},
        {B(ID("1") "{}"), PARSE, NULL},
        {B(ID("1") ","), PARSE, NULL},
        {B(ID("1") "\0"), PARSE, NULL},
        {B("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1,}"), PARSE, NULL},
        {B("[{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1},]"), PARSE, NULL},
        {B("{\"jsonrpc\" \"2.0\"}"), PARSE, NULL},
        {B("{\"jsonrpc\":\"2.0\" \"id\":1}"), PARSE, NULL},
        {B("{'jsonrpc':'2.0'}"), PARSE, NULL},
        {B("{jsonrpc:\"2.0\"}"), PARSE, NULL},
        {B("{\"a\":1"), PARSE, NULL},
        {B("[1"), PARSE, NULL},
        {B("]"), PARSE, NULL},
        /* literals: a run of letters */
        {B(ID("null")), 0, "null"},
        {B(ID("true")), INVALID, NULL},
        {B(ID("nul")), PARSE, NULL},
        {B(ID("nulll")), PARSE, NULL},
        {B(ID("True")), PARSE, NULL},
        {B(ID("nullx")), PARSE, NULL},
        {B("[true1]"), PARSE, NULL},
        {B("null"), INVALID, NULL},
        {B("\"x\""), INVALID, NULL},
        {B("3"), INVALID, NULL},
        {B("[]"), INVALID, NULL},
        {B(" [ ] "), INVALID, NULL},
        {B("[1]"), INVALID, NULL},
        {B("[[]]"), INVALID, NULL},
        {B("{}"), INVALID, NULL},
        /* a raw NUL anywhere is refused (jansson alone would skip one right after
         * a number or a literal, where an upstream's JSON.parse refuses the body) */
        {B("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1\0}"), PARSE, NULL},
        {B("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1\0\0}"), PARSE, NULL},
        {B("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":null\0 }"), PARSE, NULL},
        {B("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1 \0}"), PARSE, NULL},
        {B("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":\"1\"\0}"), PARSE, NULL},
        {B("{\"jsonrpc\":\"2.0\"\0,\"method\":\"ping\"}"), PARSE, NULL},
        {B("true\0"), PARSE, NULL},
        {B("1.5\0"), PARSE, NULL},
        {B("1\0\0"), PARSE, NULL},
        {B("[\0]"), PARSE, NULL},
        /* the JSON-RPC shape */
        {B(MSG("\"id\":1,\"result\":{}")), 0, "1"},
        {B(MSG("\"id\":1,\"error\":null")), 0, "1"},
        {B(MSG("\"result\":{}")), INVALID, NULL},
        {B(MSG("\"id\":1,\"method\":\"x\",\"result\":1")), INVALID, NULL},
        {B(MSG("\"id\":[],\"method\":\"x\"")), INVALID, NULL},
        {B(MSG("\"id\":true,\"method\":\"x\"")), INVALID, NULL},
        {B(MSG("\"method\":\"x\",\"params\":\"p\"")), INVALID, NULL},
        {B(MSG("\"method\":\"x\",\"params\":null")), INVALID, NULL},
        {B(MSG("\"method\":\"x\",\"params\":[]")), 0, NULL},
        {B("{\"jsonrpc\":2.0,\"method\":\"x\"}"), INVALID, NULL},
        {B("{\"jsonrpc\":\"2.0\",\"method\":null}"), INVALID, NULL},
    };
    char buf[400];
    size_t n;
    mg_rpc_body_t *b = NULL;

    run_cases(t, sizeof(t) / sizeof(t[0]));

    /* depth: the message object is level 1, so 63 more arrays is the limit */
    for (int extra = 62; extra <= 66; extra++) {
        n = (size_t)snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":");
        memset(buf + n, '[', (size_t)extra);
        memset(buf + n + extra, ']', (size_t)extra);
        n += 2 * (size_t)extra;
        buf[n++] = '}';
        MG_CHECK_INT(mg_rpc_parse(buf, n, &b), extra <= 63 ? 0 : PARSE);
        mg_rpc_body_free(b);
        MG_CHECK(agrees(buf, n));
        /* and as plain arrays */
        MG_CHECK_INT(mg_rpc_parse(buf + n - 1 - 2 * extra, 2 * (size_t)extra, &b),
                     extra <= 64 ? INVALID : PARSE);
        MG_CHECK(agrees(buf + n - 1 - 2 * extra, 2 * (size_t)extra));
    }
    /* objects count too */
    n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"a\":");
    buf[n++] = '1';
    memset(buf + n, '}', 65);
    n += 65;
    MG_CHECK_INT(mg_rpc_parse(buf, n, &b), PARSE);
    MG_CHECK(agrees(buf, n));
    MG_CHECK(agrees(buf + 5, n - 6)); /* 64: parses, not a message */
    MG_CHECK_INT(mg_rpc_parse(buf + 5, n - 6, &b), INVALID);
}

/* Batches: the parser returns every message; the 100 cap is the caller's (conn.c). */
static void
test_batches(void)
{
    static const char one[] = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":"
                              "{\"name\":\"t\"}}";
    size_t cap = 102 * (sizeof(one) + 1) + 16, n;
    char *buf = malloc(cap);
    mg_rpc_body_t *b = NULL;

    if (buf == NULL) {
        MG_CHECK(buf != NULL);
        return;
    }
    for (size_t count = 1; count <= 101; count += count == 1 ? 98 : 1) {
        n = 0;
        buf[n++] = '[';
        for (size_t i = 0; i < count; i++) {
            if (i > 0)
                buf[n++] = ',';
            memcpy(buf + n, one, sizeof(one) - 1);
            n += sizeof(one) - 1;
        }
        buf[n++] = ']';
        MG_CHECK_INT(mg_rpc_parse(buf, n, &b), 0);
        if (b != NULL) {
            MG_CHECK(b->batch);
            MG_CHECK_INT(b->n, count);
            MG_CHECK_STR(b->msgs[count - 1].target, "t");
            MG_CHECK_STR(b->msgs[count - 1].id, "7");
        }
        mg_rpc_body_free(b);
        MG_CHECK(agrees(buf, n));
        /* one bad message makes the batch -32600; one bad byte after it, -32700 */
        buf[n - 1] = ',';
        memcpy(buf + n, "{}]", 3);
        MG_CHECK_INT(mg_rpc_parse(buf, n + 3, &b), INVALID);
        MG_CHECK(agrees(buf, n + 3));
        memcpy(buf + n, "{}}", 3);
        MG_CHECK_INT(mg_rpc_parse(buf, n + 3, &b), PARSE);
        MG_CHECK(agrees(buf, n + 3));
    }
    free(buf);
}

/* One header set per case: {name, value} pairs, NULL-terminated. */
static const char *
refusal_of(const char *const *kv)
{
    mg_http_header_t h[8];
    size_t n = 0;

    for (; kv[0] != NULL && n < 8; kv += 2, n++) {
        h[n].name = kv[0];
        h[n].name_len = strlen(kv[0]);
        h[n].value = kv[1];
        h[n].value_len = strlen(kv[1]);
    }
    return mg_mcp_body_encoding_refusal(h, n);
}

static void
test_body_encoding(void)
{
    static const char *const ok[][7] = {
        {NULL},
        {"Content-Type", "application/json", NULL},
        {"content-type", "application/json; charset=utf-8", NULL},
        {"Content-Type", "application/json;charset=UTF-8", NULL},
        {"Content-Type", "application/json; charset=\"utf-8\"", NULL},
        {"Content-Type", "application/json ; charset = utf8 ; q=1", NULL},
        {"Content-Type", "application/json; foo; charsetx=utf-7", NULL},
        {"Content-Type", "application/json", "Content-Encoding", "identity", NULL},
        {"Content-Encoding", " Identity , identity", NULL},
        {"Content-Type", "application/json; charset=\"ut\\f-8\"", NULL}, /* quoted-pair */
    };
    static const char *const refused[][7] = {
        /* UTF-7 turns "+ACI-" into a quote for an upstream that honours the charset */
        {"Content-Type", "application/json; charset=utf-7", NULL},
        {"Content-Type", "application/json; charset=\"UTF-7\"", NULL},
        {"Content-Type", "application/json; charset=utf-16le", NULL},
        {"Content-Type", "application/json; charset=iso-8859-1", NULL},
        {"Content-Type", "application/json; charset=utf-8; charset=utf-7", NULL},
        {"Content-Type", "application/json; CHARSET=\"utf\\-7\"", NULL},
        {"Content-Type", "application/json; charset=utf-8xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL},
        {"Content-Type", "application/json", "Content-Type", "application/json", NULL},
        {"Content-Encoding", "gzip", NULL},
        {"Content-Encoding", "identity, deflate", NULL},
        {"Content-Type", "application/json", "content-encoding", "br", NULL},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *why = refusal_of(ok[i]);
        if (why != NULL)
            printf("# ok case %zu refused: %s\n", i, why);
        MG_CHECK(why == NULL);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (refusal_of(refused[i]) == NULL)
            printf("# refused case %zu accepted\n", i);
        MG_CHECK(refusal_of(refused[i]) != NULL);
    }
}


int
main(void)
{
    MG_RUN(test_hot_path);
    MG_RUN(test_strings);
    MG_RUN(test_duplicates);
    MG_RUN(test_numbers);
    MG_RUN(test_structure);
    MG_RUN(test_batches);
    MG_RUN(test_body_encoding);
    return mg_test_done();
}
