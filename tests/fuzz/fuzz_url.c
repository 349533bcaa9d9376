/* fuzz_url.c -- libFuzzer target for mg_url_parse() and mg_url_resolve(). */
#include "mcpgate/url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_url_t u, base, r;
    const char *why = NULL;
    char buf[512];

    if (mg_url_parse((const char *)data, size, &u, &why) == 0) {
        /* Invariants of a parsed URL. */
        if (u.path == NULL || u.path[0] != '/' || u.host[0] == '\0' || u.port == 0)
            abort();
        if (mg_url_format_origin(&u, buf, sizeof(buf)) < 0)
            abort();
        mg_url_clear(&u);
    } else if (why == NULL) {
        abort();
    }
    /* The same bytes as a redirect Location against a fixed base. */
    if (mg_url_parse("https://as.example:8443/a/b?q=1", 31, &base, &why) != 0)
        abort();
    if (mg_url_resolve(&base, (const char *)data, size, &r, &why) == 0) {
        if (r.path == NULL || r.path[0] != '/')
            abort();
        (void)mg_url_same_origin(&base, &r);
        mg_url_clear(&r);
    }
    mg_url_clear(&base);
    return 0;
}
