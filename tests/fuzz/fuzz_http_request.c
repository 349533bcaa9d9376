/* fuzz_http_request.c -- libFuzzer target: request heads, then their path and chunked body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mg_http_request_head_t head;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const char *why = NULL;
    int n = mg_http_parse_request_head(buf, size, &head, &why);

    if (n < 0) {
        if ((n != -400 && n != -431 && n != -505) || why == NULL)
            abort();
        return 0;
    }
    if (n == 0)
        return 0;
    /* Invariants of an accepted head. */
    if ((size_t)n > size || n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0)
        abort();
    if (head.chunked && head.content_length >= 0)
        abort();
    if (head.version_minor == 1 && head.host == NULL)
        abort();
    if (head.target < buf || head.target + head.target_len > buf + n)
        abort();
    for (size_t i = 0; i < head.nheaders; i++) {
        const mg_http_header_t *h = &head.headers[i];
        if (h->name_len == 0 || h->name < buf || h->value + h->value_len > buf + n)
            abort();
    }
    /* Every prefix of an accepted head is incomplete, never an error. */
    if (mg_http_parse_request_head(buf, (size_t)n - 1, &head, &why) != 0)
        abort();
    mg_http_parse_request_head(buf, (size_t)n, &head, &why);
    {
        char path[2048];
        size_t plen = 0, qlen = 0;
        const char *q = NULL;
        if (mg_http_normalize_path(head.target, head.target_len, path, sizeof(path), &plen, &q,
                                   &qlen, &why) == 0 &&
            (path[0] != '/' || strlen(path) != plen))
            abort();
    }
    if (head.chunked) {
        mg_chunked_t dec;
        const char *p = buf + n, *d;
        size_t left = size - (size_t)n, used, dlen;
        mg_chunked_init(&dec, 1 << 20);
        for (;;) {
            mg_chunked_result_t r = mg_chunked_feed(&dec, p, left, &used, &d, &dlen, &why);
            if (used > left)
                abort();
            p += used;
            left -= used;
            if (r != MG_CHUNKED_DATA && (r != MG_CHUNKED_NEED_MORE || left == 0))
                break;
        }
    }
    return 0;
}
