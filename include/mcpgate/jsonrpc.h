/* jsonrpc.h -- MCP POST bodies: JSON-RPC inspection, protocol versions and eras, Mcp-Method/Mcp-Name checks, JSON-RPC error bodies.
 *
 * Pure functions, no I/O. See docs/mcp.md for the rules (SPEC 3.2).
 */
#ifndef MCPGATE_JSONRPC_H
#define MCPGATE_JSONRPC_H

#include <stdbool.h>
#include <stddef.h>

#include "mcpgate/http_parse.h"

/* --- protocol versions ------------------------------------------------------- */

typedef enum mg_mcp_version {
    MG_MCP_VERSION_UNKNOWN = -1,
    MG_MCP_2024_11_05 = 0,
    MG_MCP_2025_03_26,
    MG_MCP_2025_06_18,
    MG_MCP_2025_11_25,
    MG_MCP_2026_07_28,
    MG_MCP_VERSION_COUNT
} mg_mcp_version_t;

/* Exact match against the known dated revisions; MG_MCP_VERSION_UNKNOWN otherwise. */
mg_mcp_version_t mg_mcp_version_parse(const char *s, size_t len);
/* "2025-03-26"...; "" for UNKNOWN. Static. */
const char *mg_mcp_version_name(mg_mcp_version_t v);
/* Versions from 2026-07-28 on: Mcp-Method/Mcp-Name, no batches, no sessions. */
bool mg_mcp_version_is_modern(mg_mcp_version_t v);
/* JSON-RPC batches (arrays) are allowed: 2024-11-05 and 2025-03-26 only. */
bool mg_mcp_version_allows_batch(mg_mcp_version_t v);

/* --- JSON-RPC errors ----------------------------------------------------------- */

#define MG_RPC_PARSE_ERROR (-32700)
#define MG_RPC_INVALID_REQUEST (-32600)
#define MG_RPC_METHOD_NOT_FOUND (-32601)
#define MG_RPC_INVALID_PARAMS (-32602)
#define MG_RPC_HEADER_MISMATCH (-32020)          /* 2026-07-28 HeaderMismatch */
#define MG_RPC_UNSUPPORTED_VERSION (-32022)      /* 2026-07-28 UnsupportedProtocolVersion */

/* {"jsonrpc":"2.0","id":<id_json or null>,"error":{"code":C,"message":"M"[,"data":D]}}
 * <id_json> is already-serialised JSON (NULL: null); <message> is static text
 * (escaped here); <data_json> is serialised JSON or NULL. Malloc'd; NULL on OOM. */
char *mg_rpc_error_body(const char *id_json, int code, const char *message,
                        const char *data_json, size_t *len_out);

/* --- parsed bodies ------------------------------------------------------------- */

#define MG_RPC_MAX_DEPTH 64 /* nesting of arrays/objects beyond this: parse error */
#define MG_RPC_MAX_BATCH 100 /* messages in one batch (array) beyond this: 400 -32600 */

typedef enum mg_rpc_kind {
    MG_RPC_REQUEST = 0, /* method + id */
    MG_RPC_NOTIFICATION, /* method, no id */
    MG_RPC_RESPONSE,     /* result or error + id (a client answering a server request) */
} mg_rpc_kind_t;

/* One message of a body. Strings are owned by the body (mg_rpc_body_free). */
typedef struct mg_rpc_msg {
    mg_rpc_kind_t kind;
    char *method;       /* NULL for responses */
    char *id;           /* the id as compact JSON ("7", "\"a\""); NULL when absent */
    char *target;       /* params.name of tools/call and prompts/get, params.uri of
                           resources/read; NULL otherwise or when not a string */
    bool has_target_field; /* params.name / params.uri present (any type) */
    char *meta_version; /* params._meta["io.modelcontextprotocol/protocolVersion"] when a
                           string; NULL otherwise */
    char *requested_version; /* initialize: params.protocolVersion when a string */
} mg_rpc_msg_t;

typedef struct mg_rpc_body {
    bool batch;         /* the body was an array */
    mg_rpc_msg_t *msgs; /* n >= 1 */
    size_t n;
} mg_rpc_body_t;

/* Parse a POST body: exactly the bodies jansson 2.14 json_loadb() takes with
 * JSON_REJECT_DUPLICATES | JSON_DECODE_ANY (no NUL in strings, integers within
 * int64, no real overflow; see src/mcp/jsonrpc_scan.c), at most
 * MG_RPC_MAX_DEPTH levels. Does not cap batches (MG_RPC_MAX_BATCH is the
 * caller's). Returns 0 and a new body (free with
 * mg_rpc_body_free), or a JSON-RPC error code with *out NULL:
 *   MG_RPC_PARSE_ERROR      not JSON (also duplicate keys, too deep, invalid UTF-8)
 *   MG_RPC_INVALID_REQUEST  not an object or a non-empty array of objects; jsonrpc
 *                           is not "2.0"; method not a string; id not a string,
 *                           number or null; neither method nor result/error.
 * -1 means out of memory. */
int mg_rpc_parse(const char *body, size_t len, mg_rpc_body_t **out);
/* The same contract computed from a full jansson tree (many allocations per
 * body). mg_rpc_parse() is a single-pass scanner that must agree with it on
 * every input (tests/fuzz/fuzz_jsonrpc_diff.c) and falls back to it for
 * objects with more keys than its duplicate check handles. */
int mg_rpc_parse_jansson(const char *body, size_t len, mg_rpc_body_t **out);
void mg_rpc_body_free(mg_rpc_body_t *body); /* NULL-safe */

/* --- body encoding ------------------------------------------------------------ */

/* The gateway reads a POST body as UTF-8 JSON bytes; the upstream must read the
 * same characters. Some upstream stacks decode the body in the charset the
 * Content-Type names (UTF-7 turns "+ACI-" into a quote, so one body holds a
 * different params.name for each side) or inflate a Content-Encoding the
 * gateway never saw. Returns NULL when <headers> leave no such doubt: at most
 * one Content-Type, whose charset parameters (if any; quoted or not, any case)
 * all say UTF-8 ("utf-8" or "utf8"), and every Content-Encoding element is
 * "identity". Otherwise a static reason, for a 415 refusal. */
const char *mg_mcp_body_encoding_refusal(const mg_http_header_t *headers, size_t nheaders);

/* --- era and header checks (SPEC 3.2 step 5, H-03 .. H-07) --------------------- */

/* The outcome of mg_mcp_check_post. On refusal: HTTP <status> (400) with the
 * JSON-RPC error body built from <rpc_code>/<message>/<data_json> (static) and
 * the id of the (first) message, see mg_mcp_check_error_body(). */
typedef struct mg_mcp_check {
    mg_mcp_version_t version; /* the version the message is handled under */
    bool modern;              /* 2026-07-28 era: no sessions, headers checked */
    int status;               /* 0 accepted, else 400 */
    int rpc_code;
    const char *message;
    const char *data_json;    /* NULL or static JSON (data.supported) */
} mg_mcp_check_t;

/* Decide the era and check a parsed POST against its request headers:
 *  - modern when a message carries _meta protocolVersion or the
 *    MCP-Protocol-Version header is >= 2026-07-28. Then: MCP-Protocol-Version
 *    must be present and equal _meta's (-32020), known (-32022); no array, no
 *    responses (-32600); Mcp-Method must equal method, and Mcp-Name must equal
 *    params.name/params.uri for tools/call, prompts/get, resources/read and be
 *    absent otherwise (-32020), after decoding "=?base64?...?=" values.
 *  - otherwise legacy: version = the header, else <session_version> (the
 *    version recorded for the request's Mcp-Session-Id, may be NULL), else
 *    2025-03-26; an initialize needs no header. An unknown header version is
 *    400 (-32022). An array is allowed only for 2024-11-05 and 2025-03-26
 *    (else -32600).
 * <headers> are the request's headers (http_parse.h). */
void mg_mcp_check_post(const mg_rpc_body_t *body, const mg_http_header_t *headers,
                       size_t nheaders, const char *session_version, mg_mcp_check_t *out);

/* The version of a GET/DELETE/other non-POST request: the header, else
 * <session_version>, else 2025-03-26; MG_MCP_VERSION_UNKNOWN (answer 400) when
 * the header names an unknown version. */
mg_mcp_version_t mg_mcp_request_version(const mg_http_header_t *headers, size_t nheaders,
                                        const char *session_version);

/* The error body for a refused check (id of the first message, null for a batch). */
char *mg_mcp_check_error_body(const mg_mcp_check_t *check, const mg_rpc_body_t *body,
                              size_t *len_out);

/* Decode an Mcp-Method/Mcp-Name header value: "=?base64?<RFC 4648 base64>?=" is
 * decoded (padding optional), any other value is taken as is. Returns a
 * malloc'd NUL-terminated string (*out_len bytes), or NULL on a bad sentinel
 * or OOM. */
char *mg_mcp_header_decode(const char *value, size_t len, size_t *out_len);

#endif /* MCPGATE_JSONRPC_H */
