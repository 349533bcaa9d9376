/* fuzz_path.c -- libFuzzer target: path normalisation; what it accepts is
 * canonical (idempotent) and free of dot segments, '//', '\' and %2F. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
has_seg(const char *p, const char *seg)
{
    size_t n = strlen(seg);
    for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/'))
        if (strncmp(s + 1, seg, n) == 0 && (s[1 + n] == '/' || s[1 + n] == '\0'))
            return 1;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[512], again[512];
    size_t olen = 0, alen = 0, qlen = 0, qlen2 = 0;
    const char *q = NULL, *q2 = NULL, *why = NULL;
    const char *t = (const char *)data;

    if (mg_http_normalize_path(t, size, out, sizeof(out), &olen, &q, &qlen, &why) != 0) {
        if (why == NULL)
            abort();
        return 0;
    }
    if (olen != strlen(out) || out[0] != '/' || strstr(out, "//") || strchr(out, '\\') ||
        has_seg(out, ".") || has_seg(out, "..") || strstr(out, "%2F") || strstr(out, "%2f") ||
        strstr(out, "%5C") || strstr(out, "%00") || strchr(out, '?') || strchr(out, '#'))
        abort();
    if (q && (q < t || q + qlen != t + size))
        abort();
    for (size_t i = 0; i < olen; i++)
        if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7F)
            abort();
    /* Idempotent: the normal form normalises to itself. */
    if (mg_http_normalize_path(out, olen, again, sizeof(again), &alen, &q2, &qlen2, &why) != 0 ||
        alen != olen || memcmp(out, again, olen) != 0 || q2 != NULL)
        abort();
    return 0;
}
