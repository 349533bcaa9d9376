/* reply.h -- the responses mcpgate writes itself: status texts and JSON-RPC error bodies.
 *
 * Pure functions (no I/O), unit-tested in tests/unit/test_reply.c. Every
 * error the gateway generates is `application/json` with a JSON-RPC error
 * object, so MCP clients can read it like an error from the server.
 */
#ifndef MCPGATE_REPLY_H
#define MCPGATE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* The reason phrase for <status> ("Bad Gateway"); "" for unknown codes. Static. */
const char *mg_reply_reason(int status);

/* The JSON-RPC error code used for a gateway-generated HTTP <status>:
 * 400/405/413/431/505 -> -32600, 404 -> -32601, 408 -> -32000, 401 -> -32001,
 * 403 -> -32005, 429 -> -32006, 500 -> -32603, 502 -> -32002, 503 -> -32003,
 * 504 -> -32004; anything else -32603. */
int mg_reply_rpc_code(int status);

/* The JSON-RPC id of a request body, serialised as JSON ("7", "\"abc\""), or
 * "null" when <body> is NULL, not a JSON object, nests deeper than 64 levels,
 * has duplicate keys, or its "id" is not a string or a number.
 * Returns a malloc'd string the caller frees; NULL only when out of memory. */
char *mg_reply_rpc_id(const char *body, size_t len);

/* The whole error body
 *   {"jsonrpc":"2.0","id":<id|null>,"error":{"code":<code>,"message":"<message>",
 *    "data":{"request_id":"<request_id>"}}}
 * with the id taken from <body> (may be NULL) as above; "data" only when
 * <request_id> (a safe id, see request_id.h) is given. <message> must not
 * contain request data. Returns a malloc'd NUL-terminated string (length in
 * *out_len if not NULL); NULL when out of memory. */
char *mg_reply_error_body(int status, const char *message, const char *body, size_t len,
                          const char *request_id, size_t *out_len);

/* A complete HTTP/1.1 error response: status line, Content-Type,
 * Content-Length, `Connection: close` or `keep-alive`, then <extra_headers>
 * (each line ending in CRLF, may be NULL) and the body above. Returns a
 * malloc'd buffer of *out_len bytes; NULL when out of memory. */
char *mg_reply_error_response(int status, const char *message, const char *body, size_t len,
                              const char *request_id, bool close, const char *extra_headers,
                              size_t *out_len);

#endif /* MCPGATE_REPLY_H */
