/* fuzz_http_response.c -- libFuzzer target: upstream response heads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mg_http_response_head_t head;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const char *why = NULL;
    int n = mg_http_parse_response_head(buf, size, &head, &why);

    if (n < 0) {
        if (n != -502 || why == NULL)
            abort();
        return 0;
    }
    if (n == 0)
        return 0;
    if ((size_t)n > size || n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0)
        abort();
    if (head.status < 100 || head.status > 599)
        abort();
    if (head.chunked && head.content_length >= 0)
        abort();
    for (size_t i = 0; i < head.nheaders; i++) {
        const mg_http_header_t *h = &head.headers[i];
        if (h->name_len == 0 || h->name < buf || h->value + h->value_len > buf + n)
            abort();
        (void)mg_http_is_hop_by_hop(h->name, h->name_len);
    }
    {
        const mg_http_header_t *c = mg_http_find_header(head.headers, head.nheaders, "connection");
        if (c)
            (void)mg_http_connection_lists(c->value, c->value_len, "upgrade", 7);
    }
    if (mg_http_parse_response_head(buf, (size_t)n - 1, &head, &why) != 0)
        abort();
    return 0;
}
