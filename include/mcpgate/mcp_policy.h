/* mcp_policy.h -- per-route scope policy: the one decision that authorizes calls and filters lists.
 *
 * A JSON-RPC message (method, target) needs the union of the route's
 * require_scope list and the scopes of every rule that matches it:
 *   method GLOB ...;        the method matches GLOB
 *   tool GLOB ...;          method tools/call and params.name matches
 *   prompt GLOB ...;        method prompts/get and params.name matches
 *   resource_uri GLOB ...;  method resources/read and params.uri matches
 * (fnmatch(3) without FNM_PATHNAME: '*' also crosses '/'). A missing target
 * is matched as "". List filtering asks the same question for each entry as
 * if it were called (tools/list entry X == tools/call X), so a list can never
 * show what a call would refuse, nor hide what it would allow.
 *
 * Scope strings returned here are borrowed from the configuration
 * generation and live as long as it does.
 */
#ifndef MCPGATE_MCP_POLICY_H
#define MCPGATE_MCP_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "mcpgate/conf.h"
#include "mcpgate/jsonrpc.h"

/* A small ordered set of borrowed scope strings. Zero-initialise; free with
 * mg_scope_set_clear. */
typedef struct mg_scope_set {
    const char **v;
    size_t n, cap;
} mg_scope_set_t;

int mg_scope_set_add(mg_scope_set_t *set, const char *scope); /* 0, or -1 on OOM; no dups */
bool mg_scope_set_has(const mg_scope_set_t *set, const char *scope);
void mg_scope_set_clear(mg_scope_set_t *set);

/* Add to <out> every scope (method, target) needs on <route>: require_scope
 * first, then the matching rules in config order. 0 or -1 (OOM). */
int mg_policy_required(const mg_conf_route_t *route, const char *method, const char *target,
                       mg_scope_set_t *out);

/* THE decision: may a caller holding <granted> send (method, target)? True
 * when every required scope is granted. Used for calls, batches and lists. */
bool mg_policy_allows(const mg_conf_route_t *route, const char *method, const char *target,
                      const char *const *granted, size_t ngranted);

/* Authorize a whole POST body (every message of a batch; responses and
 * messages without a method need only require_scope). Returns true when all
 * are allowed. Otherwise false and <challenge> receives the 403 scope list
 * (SPEC S-02/S-03): every scope the body needs plus the granted scopes this
 * route knows (scopes_supported, require_scope, rules), in the route's config
 * order, so the same situation always gives the same text. */
bool mg_policy_authorize(const mg_conf_route_t *route, const mg_rpc_body_t *body,
                         const char *const *granted, size_t ngranted,
                         mg_scope_set_t *challenge);

/* --- list filtering ---------------------------------------------------------- */

/* What one response rewrite needs: the list requests of a body and the
 * caller's scopes. Owns copies of everything; the route is borrowed. */
typedef struct mg_list_filter mg_list_filter_t;

/* A filter for the tools/list, prompts/list and resources/list requests of
 * <body>, or NULL when it has none (then the response is forwarded as is)
 * or on OOM (*oom set when not NULL). */
mg_list_filter_t *mg_list_filter_new(const mg_conf_route_t *route, const mg_rpc_body_t *body,
                                     const char *const *granted, size_t ngranted, bool *oom);
void mg_list_filter_free(mg_list_filter_t *f); /* NULL-safe */

/* Rewrite one JSON text (an application/json body, or the data of one SSE
 * event): when it is the response (or a batch of responses) to one of the
 * filter's list requests (same id), drop the entries the caller may not use
 * (tools/prompts by name, resources by uri), and turn cacheScope "public"
 * into "private" when anything was dropped (SPEC S-07).
 * Returns 1 with *out (malloc'd, compact JSON, *out_len bytes) when the text
 * was a matching response (rewritten even if nothing was removed), 0 when it
 * is not one of ours (forward the original bytes), -1 on OOM.
 * *removed (may be NULL) receives the number of entries dropped. */
int mg_list_filter_json(mg_list_filter_t *f, const char *json, size_t len, char **out,
                        size_t *out_len, size_t *removed);

/* True once every list request of the filter has had its response rewritten. */
bool mg_list_filter_done(const mg_list_filter_t *f);

#endif /* MCPGATE_MCP_POLICY_H */
