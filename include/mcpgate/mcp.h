/* mcp.h -- the MCP front door: protected-resource metadata, well-known paths, Origin/Host checks, CORS, challenge and error replies.
 *
 * Pure code, no I/O: each step returns what to answer; src/core sends it.
 * The order of the steps for one request is in docs/mcp.md ("Request
 * pipeline"); the lower-level pieces are bearer.h, jsonrpc.h, mcp_policy.h,
 * sse.h, session.h and identity.h.
 */
#ifndef MCPGATE_MCP_H
#define MCPGATE_MCP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "mcpgate/bearer.h"
#include "mcpgate/conf.h"
#include "mcpgate/http_parse.h"
#include "mcpgate/jsonrpc.h"
#include "mcpgate/jwt.h"
#include "mcpgate/mcp_policy.h"

/* A reply the gateway writes itself. Zero-initialise; clear with
 * mg_mcp_reply_clear. <headers> are complete lines ("Name: value\r\n"),
 * without Content-Type/Content-Length. <body> is NULL for none; for HEAD
 * the caller sends the headers of the GET reply without the body. */
typedef struct mg_mcp_reply {
    int status;
    char *headers;            /* malloc'd, may be NULL */
    char *body;               /* malloc'd, may be NULL */
    size_t body_len;
    const char *content_type; /* static; NULL when there is no body */
} mg_mcp_reply_t;

void mg_mcp_reply_clear(mg_mcp_reply_t *r);

/* The whole HTTP/1.1 response (status line, Content-Type, Content-Length,
 * Connection, the reply's headers, the body unless <head_only>). Malloc'd. */
char *mg_mcp_reply_serialize(const mg_mcp_reply_t *r, bool keep_alive, bool head_only,
                             size_t *len_out);

/* Per-generation front-door state: the PRM documents and resource_metadata
 * URLs of every route, built once. <conf> is borrowed and must outlive it. */
typedef struct mg_mcp mg_mcp_t;

/* NULL on OOM. Routes without a resource have no PRM document. */
mg_mcp_t *mg_mcp_new(const mg_conf_t *conf);
void mg_mcp_free(mg_mcp_t *mcp); /* NULL-safe */

/* The PRM document of <route> (compact JSON, member order: resource,
 * authorization_servers, scopes_supported, bearer_methods_supported,
 * resource_name, resource_documentation), or NULL. Borrowed. */
const char *mg_mcp_prm_json(const mg_mcp_t *mcp, const mg_conf_route_t *route);

/* The resource_metadata URL of <route> (RFC 9728 section 3.1: the
 * well-known path inserted between the resource's origin and path, a final
 * "/" dropped), or NULL without a resource. Borrowed. */
const char *mg_mcp_prm_url(const mg_mcp_t *mcp, const mg_conf_route_t *route);

typedef enum mg_mcp_wk {
    MG_MCP_WK_NONE = 0,    /* not a well-known path of ours: carry on with routing */
    MG_MCP_WK_REPLY,       /* *out holds the answer (200 PRM, 204 preflight, 404, 405) */
    MG_MCP_WK_AS_METADATA, /* legacy_as_metadata on and /.well-known/oauth-authorization-server
                              was asked for: answer with a mirror of the AS metadata of
                              *as_route's first issuer (SPEC D-22) */
} mg_mcp_wk_t;

/* Step 2 of the pipeline, before route matching and without auth: answer
 * /.well-known/oauth-protected-resource[/<route path or resource path>],
 * /.well-known/oauth-authorization-server[/...] and
 * /.well-known/openid-configuration[/...]. <path> is the normalised path
 * without the query (D-19). GET/HEAD get the document with
 * Cache-Control: public, max-age=3600 and Access-Control-Allow-Origin: *;
 * OPTIONS gets 204 with the CORS preflight headers; other methods 405 with
 * Allow. The bare path serves the route marked `default;` (404 without one).
 * Never uses Host or X-Forwarded-*: every URL comes from the configuration. */
mg_mcp_wk_t mg_mcp_wellknown(const mg_mcp_t *mcp, mg_http_method_t method, const char *path,
                             size_t path_len, mg_mcp_reply_t *out,
                             const mg_conf_route_t **as_route);

/* --- Origin, Host, CORS (step 3) --------------------------------------------- */

/* No Origin header: true (non-browser clients). Otherwise the value must equal
 * (ASCII case-insensitively) one of allowed_origins or the origin of the
 * route's resource. Absent or not allowed: 403 (SPEC H-09). */
bool mg_mcp_origin_allowed(const mg_conf_route_t *route, const char *origin, size_t len);

/* With server_name configured, the Host name (the port is ignored, a final
 * "." dropped, compared case-insensitively) must be one of them; otherwise
 * any Host is accepted. Refused: 403 (DNS-rebinding protection). */
bool mg_mcp_host_allowed(const mg_conf_route_t *route, const char *host, size_t len);

/* Both checks on a request head; false with a 403 JSON-RPC error in *out. */
bool mg_mcp_check_origin_host(const mg_conf_route_t *route, const mg_http_request_head_t *head,
                              mg_mcp_reply_t *out);

/* OPTIONS on an MCP route: 204 with Access-Control-Allow-Origin (the request's
 * Origin), -Methods (GET, POST, DELETE, OPTIONS), -Headers (the requested ones
 * that are allowed: Authorization, Content-Type, Accept, Mcp-Session-Id,
 * MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Param-*, and the
 * route's api_key_header), -Max-Age and Vary: Origin; never -Allow-Credentials
 * (bearer credentials need no cookies); 403 when the Origin is not allowed. No auth.
 * The core must not add mg_mcp_cors_headers() to this reply (one -Allow-Origin only). */
void mg_mcp_preflight(const mg_conf_route_t *route, const mg_http_request_head_t *head,
                      mg_mcp_reply_t *out);

/* Header lines to add to every response on an MCP route when the request had
 * an allowed Origin (Access-Control-Allow-Origin, Vary, Access-Control-
 * Expose-Headers: WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version;
 * SPEC C-15); "" otherwise. Malloc'd; NULL on OOM. */
char *mg_mcp_cors_headers(const mg_conf_route_t *route, const mg_http_request_head_t *head);

/* True when <peer> is within a trusted_proxy range (only then may the core
 * believe X-Forwarded-For/Forwarded for logging and rate limiting; URLs are
 * never built from them). */
bool mg_mcp_trusted_proxy(const mg_conf_t *conf, const struct sockaddr *peer);

/* The client address a trusted proxy reports, written to <out> (<outlen> bytes,
 * INET6_ADDRSTRLEN is enough) as an IP literal; false when the headers name none (then the
 * peer is the client). Call only when the peer itself is a trusted proxy. Reads every
 * X-Forwarded-For line in order as one list, or, without any, the for= of every Forwarded
 * element (RFC 7239). Walks the list from the right: trusted_proxy addresses are skipped,
 * the first other address is the client; when all are trusted, the leftmost one. A node
 * that is not an IP literal (with an optional port: "unknown", "_hidden", a host name,
 * garbage) ends the walk: the client is then the last address walked, the hop that
 * reported the bad node. Only the last 32 nodes are walked. */
bool mg_mcp_forwarded_client(const mg_conf_t *conf, const mg_http_header_t *headers,
                             size_t nheaders, char *out, size_t outlen);

/* --- API keys (step 4) ---------------------------------------------------------- */

/* CRYPTO_memcmp over two MG_API_KEY_DIGEST_LEN-byte digests: the time does not depend
 * on where they differ. */
bool mg_mcp_digest_equal(const uint8_t *a, const uint8_t *b);

/* The api_key of <route> whose digest is the SHA-256 of <key> (<len> bytes), or NULL.
 * Every key of the route is compared (no early exit), in constant time each; a key of
 * another route is never found. Borrowed from the route. */
const mg_conf_api_key_t *mg_mcp_api_key_find(const mg_conf_route_t *route, const char *key,
                                             size_t len);

/* The principal of an API key caller, shaped like a verified token so that scope rules,
 * list filtering, sessions, rate limits, identity headers and the audit log treat both
 * alike: iss MG_API_KEY_ISSUER, sub the key's subject, client_id its name, its scopes;
 * no jti, aud or exp. Caller frees with mg_jwt_claims_free; NULL on OOM. */
mg_jwt_claims_t *mg_mcp_api_key_claims(const mg_conf_api_key_t *key);

/* --- authorization replies (step 4, 7) ---------------------------------------- */

/* A challenge reply: status from the kind, WWW-Authenticate built by
 * mg_challenge_build with the route's resource_metadata URL and:
 *   NO_TOKEN, INVALID_TOKEN: the route's scopes_supported (SPEC C-08);
 *   INVALID_REQUEST: no scope;
 *   INSUFFICIENT_SCOPE: <scopes> (from mg_policy_authorize).
 * <description> NULL means the default text; for INVALID_TOKEN pass
 * mg_jwt_reason_description(reason). The body is a JSON-RPC error with
 * <id_json> (NULL: null). */
int mg_mcp_challenge(const mg_mcp_t *mcp, const mg_conf_route_t *route, mg_challenge_kind_t kind,
                     const char *description, const mg_scope_set_t *scopes,
                     const char *id_json, mg_mcp_reply_t *out);

/* 503 with Retry-After and no challenge: no usable keys or verifier outage
 * (SPEC C-14; a 401 would make clients throw away good tokens). */
int mg_mcp_unavailable(unsigned retry_after, mg_mcp_reply_t *out);

/* A plain JSON-RPC error reply (400 for jsonrpc.h refusals, 404 for a
 * session that is not the caller's, 403 Origin/Host, ...). */
int mg_mcp_error(int status, const char *id_json, int rpc_code, const char *message,
                 const char *data_json, mg_mcp_reply_t *out);

#endif /* MCPGATE_MCP_H */
