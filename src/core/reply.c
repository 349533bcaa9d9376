/* reply.c -- status reason phrases and the JSON-RPC error bodies of gateway-generated replies. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mcpgate/reply.h"

#define MG_RPC_ID_MAX_DEPTH 64

const char *
mg_reply_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

int
mg_reply_rpc_code(int status)
{
    switch (status) {
    case 400:
    case 405:
    case 413:
    case 431:
    case 505:
        return -32600; /* Invalid Request */
    case 404:
        return -32601; /* Method not found: no MCP endpoint here */
    case 408:
        return -32000;
    case 401:
        return -32001; /* no valid access token */
    case 403:
        return -32005; /* forbidden: scope, origin, session owner */
    case 429:
        return -32006; /* rate limited */
    case 502:
        return -32002;
    case 503:
        return -32003;
    case 504:
        return -32004;
    default:
        return -32603; /* Internal error */
    }
}

/* jansson's own nesting limit is a compile-time 2048; an error reply must
 * not spend a deep parse on hostile input, so look at the nesting first. */
static int
json_too_deep(const char *s, size_t len)
{
    int depth = 0;
    int in_str = 0;

    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            if (++depth > MG_RPC_ID_MAX_DEPTH)
                return 1;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return 0;
}

char *
mg_reply_rpc_id(const char *body, size_t len)
{
    json_t *root = NULL;
    json_t *id;
    char *out = NULL;

    if (body == NULL || len == 0 || json_too_deep(body, len))
        goto null;
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL || !json_is_object(root))
        goto null;
    id = json_object_get(root, "id");
    if (id == NULL || !(json_is_string(id) || json_is_number(id)))
        goto null;
    out = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
    if (out == NULL)
        goto null;
    json_decref(root);
    return out;
null:
    json_decref(root);
    return strdup("null");
}

char *
mg_reply_error_body(int status, const char *message, const char *body, size_t len,
                    const char *request_id, size_t *out_len)
{
    char *id = NULL;
    char *msg = NULL;
    char *out = NULL;
    json_t *jmsg = NULL;
    int n;

    id = mg_reply_rpc_id(body, len);
    jmsg = json_string(message ? message : "");
    if (id == NULL || jmsg == NULL)
        goto done;
    msg = json_dumps(jmsg, JSON_ENCODE_ANY | JSON_COMPACT);
    if (msg == NULL)
        goto done;
    /* The request id is [A-Za-z0-9._:-] only (request_id.h): no escaping needed. */
    if (request_id != NULL && request_id[0] != '\0')
        n = asprintf(&out,
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":%s,"
                     "\"data\":{\"request_id\":\"%s\"}}}",
                     id, mg_reply_rpc_code(status), msg, request_id);
    else
        n = asprintf(&out, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":%s}}",
                     id, mg_reply_rpc_code(status), msg);
    if (n < 0) {
        out = NULL;
        goto done;
    }
    if (out_len)
        *out_len = (size_t)n;
done:
    free(id);
    free(msg);
    json_decref(jmsg);
    return out;
}

char *
mg_reply_error_response(int status, const char *message, const char *body, size_t len,
                        const char *request_id, bool close, const char *extra_headers,
                        size_t *out_len)
{
    char *jbody = NULL;
    char *out = NULL;
    size_t blen = 0;
    int n;

    jbody = mg_reply_error_body(status, message, body, len, request_id, &blen);
    if (jbody == NULL)
        goto done;
    n = asprintf(&out,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n"
                 "Cache-Control: no-store\r\n"
                 "Connection: %s\r\n"
                 "%s"
                 "\r\n"
                 "%s",
                 status, mg_reply_reason(status), blen, close ? "close" : "keep-alive",
                 extra_headers ? extra_headers : "", jbody);
    if (n < 0) {
        out = NULL;
        goto done;
    }
    *out_len = (size_t)n;
done:
    free(jbody);
    return out;
}
