/* test_reply.c -- unit tests of src/core/reply.c: JSON-RPC error bodies and codes. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mcpgate/reply.h"
#include "mgtest.h"

static void
check_body(int status, const char *msg, const char *req, const char *expect)
{
    size_t len = 0;
    char *b = mg_reply_error_body(status, msg, req, req ? strlen(req) : 0, NULL, &len);

    MG_CHECK_STR(b, expect);
    if (b)
        MG_CHECK_INT(len, strlen(b));
    free(b);
}

static void
test_codes(void)
{
    MG_CHECK_INT(mg_reply_rpc_code(401), -32001);
    MG_CHECK_INT(mg_reply_rpc_code(403), -32005);
    MG_CHECK_INT(mg_reply_rpc_code(429), -32006);
    MG_CHECK_INT(mg_reply_rpc_code(400), -32600);
    MG_CHECK_INT(mg_reply_rpc_code(405), -32600);
    MG_CHECK_INT(mg_reply_rpc_code(413), -32600);
    MG_CHECK_INT(mg_reply_rpc_code(431), -32600);
    MG_CHECK_INT(mg_reply_rpc_code(505), -32600);
    MG_CHECK_INT(mg_reply_rpc_code(404), -32601);
    MG_CHECK_INT(mg_reply_rpc_code(408), -32000);
    MG_CHECK_INT(mg_reply_rpc_code(500), -32603);
    MG_CHECK_INT(mg_reply_rpc_code(502), -32002);
    MG_CHECK_INT(mg_reply_rpc_code(503), -32003);
    MG_CHECK_INT(mg_reply_rpc_code(504), -32004);
    MG_CHECK_STR(mg_reply_reason(504), "Gateway Timeout");
    MG_CHECK_STR(mg_reply_reason(599), "");
}

static void
test_body_null_id(void)
{
    check_body(404, "no route for this path", NULL,
               "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32601,"
               "\"message\":\"no route for this path\"}}");
    check_body(502, "upstream connection refused", "not json",
               "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32002,"
               "\"message\":\"upstream connection refused\"}}");
    /* an array (batch) is not an object */
    check_body(504, "upstream timed out", "[{\"jsonrpc\":\"2.0\",\"id\":1}]",
               "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32004,"
               "\"message\":\"upstream timed out\"}}");
}

static void
test_body_ids(void)
{
    check_body(504, "upstream timed out", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"x\"}",
               "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32004,"
               "\"message\":\"upstream timed out\"}}");
    check_body(502, "m", "{\"id\":\"a\\\"b\"}",
               "{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"error\":{\"code\":-32002,"
               "\"message\":\"m\"}}");
}

static void
test_body_bad_ids(void)
{
    const char *null_body = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32002,"
                            "\"message\":\"m\"}}";
    char deep[1000];
    size_t n = 0;

    check_body(502, "m", "{\"id\":{\"x\":1}}", null_body);
    check_body(502, "m", "{\"id\":true}", null_body);
    check_body(502, "m", "{\"id\":[1]}", null_body);
    check_body(502, "m", "{\"id\":1,\"id\":2}", null_body); /* duplicate keys */
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"id\":1,\"a\":");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    check_body(502, "m", deep, null_body);
}

static void
test_message_escaped(void)
{
    check_body(400, "a \"quoted\"\nline", NULL,
               "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,"
               "\"message\":\"a \\\"quoted\\\"\\nline\"}}");
}

/* The request id goes into error.data so a user can quote it to an operator. */
static void
test_body_request_id(void)
{
    size_t len = 0;
    char *b = mg_reply_error_body(504, "upstream timed out", "{\"id\":3}", 8, "abc-123", &len);

    MG_CHECK_STR(b, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32004,\"message\":"
                    "\"upstream timed out\",\"data\":{\"request_id\":\"abc-123\"}}}");
    MG_CHECK(b != NULL && len == strlen(b));
    free(b);
}

static void
test_response(void)
{
    size_t len = 0;
    char *r = mg_reply_error_response(405, "method not allowed", NULL, 0, NULL, false,
                                      "Allow: GET, POST, DELETE\r\n", &len);

    MG_CHECK(r != NULL);
    if (r == NULL)
        return;
    MG_CHECK_INT(len, strlen(r));
    MG_CHECK(strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    MG_CHECK(strstr(r, "\r\nContent-Type: application/json\r\n") != NULL);
    MG_CHECK(strstr(r, "\r\nConnection: keep-alive\r\n") != NULL);
    MG_CHECK(strstr(r, "\r\nAllow: GET, POST, DELETE\r\n") != NULL);
    const char *body = strstr(r, "\r\n\r\n");
    MG_CHECK(body != NULL);
    if (body) {
        char cl[64];
        snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(body + 4));
        MG_CHECK(strstr(r, cl) != NULL);
    }
    free(r);
    r = mg_reply_error_response(413, "request body exceeds max_body_size", NULL, 0, NULL, true, NULL,
                                &len);
    MG_CHECK(r != NULL && strstr(r, "\r\nConnection: close\r\n") != NULL);
    free(r);
}

int
main(void)
{
    MG_RUN(test_codes);
    MG_RUN(test_body_null_id);
    MG_RUN(test_body_ids);
    MG_RUN(test_body_bad_ids);
    MG_RUN(test_message_escaped);
    MG_RUN(test_body_request_id);
    MG_RUN(test_response);
    return mg_test_done();
}
