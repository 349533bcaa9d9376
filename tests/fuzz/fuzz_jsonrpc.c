/* fuzz_jsonrpc.c -- libFuzzer target: JSON-RPC body parsing, era/header checks, policy and list filtering on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/conf.h"
#include "mcpgate/jsonrpc.h"
#include "mcpgate/mcp_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *req_scopes[] = {"read"};
    static char *rule_scopes[] = {"admin"};
    static mg_conf_scope_rule_t rules[] = {
        {MG_RULE_TOOL, "admin_*", rule_scopes, 1, {NULL, 0}},
        {MG_RULE_METHOD, "resources/*", req_scopes, 1, {NULL, 0}},
    };
    mg_conf_route_t route;
    const char *granted[] = {"read"};
    mg_http_header_t hdrs[3] = {
        {"MCP-Protocol-Version", 20, "2026-07-28", 10},
        {"Mcp-Method", 10, "tools/call", 10},
        {"Mcp-Name", 8, "=?base64?YWJj?=", 15},
    };
    mg_rpc_body_t *body = NULL;
    mg_mcp_check_t check;
    mg_scope_set_t ch = {0};
    mg_list_filter_t *f;
    char *out = NULL, *eb;
    size_t out_len, dlen;

    memset(&route, 0, sizeof(route));
    route.require_scopes = req_scopes;
    route.nrequire_scopes = 1;
    route.scope_rules = rules;
    route.nscope_rules = 2;
    free(mg_mcp_header_decode((const char *)data, size, &dlen));
    if (mg_rpc_parse((const char *)data, size, &body) != 0)
        return 0;
    mg_mcp_check_post(body, hdrs, size % 4, NULL, &check);
    if (check.status != 0) {
        eb = mg_mcp_check_error_body(&check, body, NULL);
        free(eb);
    }
    mg_policy_authorize(&route, body, granted, 1, &ch);
    mg_scope_set_clear(&ch);
    f = mg_list_filter_new(&route, body, granted, 1, NULL);
    if (f != NULL) {
        /* the same bytes as a response */
        if (mg_list_filter_json(f, (const char *)data, size, &out, &out_len, NULL) == 1)
            free(out);
        mg_list_filter_free(f);
    }
    mg_rpc_body_free(body);
    return 0;
}
