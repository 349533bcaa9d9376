/* request_id.c -- request ids: the safe-set check and 128-bit ids from a per-thread random buffer.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/rand.h>

#include "mcpgate/request_id.h"

#define ID_BYTES 16

/* Per thread: MG_REQUEST_ID_BATCH ids' worth of random bytes and how many
 * are used. Starts empty, so the first call fills it. */
static _Thread_local unsigned char pool[MG_REQUEST_ID_BATCH * ID_BYTES];
static _Thread_local size_t pool_used = sizeof(pool);
static _Thread_local uint64_t fallback_counter;

bool
mg_request_id_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > MG_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void
refill(void)
{
    size_t got = 0;

    if (RAND_bytes(pool, (int)sizeof(pool)) == 1) {
        pool_used = 0;
        return;
    }
    while (got < sizeof(pool)) {
        ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof(pool)) {
        /* No entropy source at all: still unique per thread and time, not
         * unpredictable. Should never happen on Linux >= 3.17. */
        struct timespec ts;
        uint64_t x;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)(uintptr_t)&fallback_counter ^ (++fallback_counter << 32);
        for (size_t i = 0; i < sizeof(pool); i += 8) {
            uint64_t r = splitmix64(&x);
            memcpy(pool + i, &r, 8);
        }
    }
    pool_used = 0;
}

void
mg_request_id_generate(char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b;

    if (pool_used + ID_BYTES > sizeof(pool))
        refill();
    b = pool + pool_used;
    for (size_t i = 0; i < ID_BYTES; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * ID_BYTES] = '\0';
    /* Used bytes are wiped: a later memory disclosure cannot replay them. */
    memset(pool + pool_used, 0, ID_BYTES);
    pool_used += ID_BYTES;
}

bool
mg_request_id_assign(const char *hdr, size_t len, char *out)
{
    if (hdr != NULL && mg_request_id_valid(hdr, len)) {
        memcpy(out, hdr, len);
        out[len] = '\0';
        return true;
    }
    mg_request_id_generate(out);
    return false;
}
