/* fuzz_chunked.c -- libFuzzer target: the chunked decoder must give the same
 * result and payload whether fed at once, a byte at a time, or in pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct run {
    mg_chunked_result_t result;
    size_t end;         /* input offset where decoding stopped */
    size_t payload_len;
    uint8_t payload[65536];
} run_t;

static run_t runs[3];

/* step 0: all at once; otherwise pieces of <step> bytes (step 1 = byte-wise). */
static void
decode(const char *in, size_t size, size_t step, uint64_t max, run_t *r)
{
    mg_chunked_t dec;
    size_t off = 0;

    mg_chunked_init(&dec, max);
    r->payload_len = 0;
    r->result = MG_CHUNKED_NEED_MORE;
    while (off < size) {
        size_t avail = size - off;
        size_t piece = step && step < avail ? step : avail;
        size_t used = 0, dlen = 0;
        const char *d = NULL, *why = NULL;
        mg_chunked_result_t res = mg_chunked_feed(&dec, in + off, piece, &used, &d, &dlen, &why);
        if (used > piece)
            abort();
        off += used;
        if (res == MG_CHUNKED_DATA) {
            if (dlen == 0 || d < in || d + dlen > in + off)
                abort();
            if (r->payload_len + dlen <= sizeof(r->payload))
                memcpy(r->payload + r->payload_len, d, dlen);
            r->payload_len += dlen;
            continue;
        }
        if (res == MG_CHUNKED_NEED_MORE) {
            if (used != piece)
                abort();
            continue;
        }
        if ((res == MG_CHUNKED_ERROR || res == MG_CHUNKED_TOO_LARGE) && why == NULL)
            abort();
        r->result = res;
        break;
    }
    r->end = off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    uint64_t max = 0;
    size_t step = 7;

    /* The first byte picks the limit and the piece size. */
    if (size > 0) {
        max = (data[0] & 1) ? (uint64_t)(data[0] >> 1) * 16 : 0;
        step = (size_t)(data[0] % 13) + 2;
        in++;
        size--;
    }
    decode(in, size, 0, max, &runs[0]);
    decode(in, size, 1, max, &runs[1]);
    decode(in, size, step, max, &runs[2]);
    for (int k = 1; k < 3; k++) {
        if (runs[k].result != runs[0].result || runs[k].payload_len != runs[0].payload_len)
            abort();
        if (runs[0].result == MG_CHUNKED_DONE && runs[k].end != runs[0].end)
            abort();
        if (memcmp(runs[k].payload, runs[0].payload,
                   runs[0].payload_len < sizeof(runs[0].payload) ? runs[0].payload_len
                                                                 : sizeof(runs[0].payload)) != 0)
            abort();
    }
    if (max && runs[0].payload_len > max)
        abort();
    return 0;
}
