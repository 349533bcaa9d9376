/* fuzz_jsonrpc_diff.c -- libFuzzer target: mg_rpc_parse() (the scanner) against mg_rpc_parse_jansson() (the jansson tree); any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Both readings of a body must agree: a gateway that accepts or reads a body
 * differently from before is a request-smuggling hole. */
static void
differ(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_jsonrpc_diff: %s differs for a %zu-byte body\n", what, size);
    (void)data;
    abort();
}

static void
same_str(const char *what, const char *a, const char *b, const uint8_t *data, size_t size)
{
    if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0)) {
        fprintf(stderr, "%s: scanner %s%s%s, jansson %s%s%s\n", what, a ? "\"" : "", a ? a : "NULL",
                a ? "\"" : "", b ? "\"" : "", b ? b : "NULL", b ? "\"" : "");
        differ(what, data, size);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_rpc_body_t *fast = NULL, *ref = NULL;
    int rc_fast, rc_ref;

    rc_fast = mg_rpc_parse((const char *)data, size, &fast);
    rc_ref = mg_rpc_parse_jansson((const char *)data, size, &ref);
    if (rc_fast != rc_ref) {
        fprintf(stderr, "result: scanner %d, jansson %d\n", rc_fast, rc_ref);
        differ("result", data, size);
    }
    if ((fast == NULL) != (rc_fast != 0) || (ref == NULL) != (rc_ref != 0))
        differ("body pointer", data, size);
    if (rc_fast == 0) {
        if (fast->batch != ref->batch || fast->n != ref->n)
            differ("batch/n", data, size);
        for (size_t i = 0; i < fast->n; i++) {
            const mg_rpc_msg_t *a = &fast->msgs[i], *b = &ref->msgs[i];
            if (a->kind != b->kind)
                differ("kind", data, size);
            if (a->has_target_field != b->has_target_field)
                differ("has_target_field", data, size);
            same_str("method", a->method, b->method, data, size);
            same_str("id", a->id, b->id, data, size);
            same_str("target", a->target, b->target, data, size);
            same_str("meta_version", a->meta_version, b->meta_version, data, size);
            same_str("requested_version", a->requested_version, b->requested_version, data, size);
        }
    }
    mg_rpc_body_free(fast);
    mg_rpc_body_free(ref);
    return 0;
}
