/* http-parse-bench.c -- nanoseconds per HTTP/1.1 head for mg_http_parse_request_head and
 * mg_http_parse_response_head, on the heads the proxy benchmark exchanges. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpgate/http_parse.h"

/* Bounds on the command line, so that a typo cannot run for hours. */
#define MAX_ITERS 100000000L
#define MAX_ROUNDS 101

/* The payload size of a 3-part RS256 token with a few claims: the gateway
 * sees one of these on every request of contrib/bench/run. */
#define JWT_LEN 640

static char req_head[2048];
static size_t req_len;
static char resp_head[1024];
static size_t resp_len;

/* The parsed heads are large (100 header slots): static, as in a connection. */
static mg_http_request_head_t req;
static mg_http_response_head_t resp;

/* Sums the results so that the compiler cannot drop the calls. */
static volatile uint64_t sink;

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* What contrib/bench/bench.lua sends through wrk (wrk adds Host and
 * Content-Length), with the User-Agent, Accept-Encoding and session id of a
 * typical MCP client; the token is base64url of the usual size. */
static void
build_heads(void)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char jwt[JWT_LEN + 1];
    uint32_t x = 12345;
    int n;

    for (size_t i = 0; i < JWT_LEN; i++) {
        x = x * 1103515245u + 12345u;
        jwt[i] = b64[(x >> 16) & 63];
    }
    jwt[36] = '.'; /* header.payload.signature */
    jwt[JWT_LEN - 343] = '.';
    jwt[JWT_LEN] = '\0';

    n = snprintf(req_head, sizeof(req_head),
                 "POST /mcp HTTP/1.1\r\n"
                 "Host: 127.0.0.1:8080\r\n"
                 "User-Agent: mcp-client/1.13.0 (node v22.11.0; linux x64)\r\n"
                 "Content-Type: application/json\r\n"
                 "Accept: application/json, text/event-stream\r\n"
                 "Accept-Encoding: gzip, deflate\r\n"
                 "MCP-Protocol-Version: 2025-06-18\r\n"
                 "Mcp-Session-Id: 7c9e6679-7425-40de-944b-e07fc1f90ae7\r\n"
                 "Authorization: Bearer %s\r\n"
                 "Connection: keep-alive\r\n"
                 "Content-Length: 103\r\n"
                 "\r\n",
                 jwt);
    req_len = (size_t)n;
    n = snprintf(resp_head, sizeof(resp_head),
                 "HTTP/1.1 200 OK\r\n"
                 "X-Powered-By: Express\r\n"
                 "Content-Type: application/json\r\n"
                 "mcp-session-id: 7c9e6679-7425-40de-944b-e07fc1f90ae7\r\n"
                 "Content-Length: 137\r\n"
                 "ETag: W/\"89-Qm5vdyB0aGF0IHlvdSBrbm93\"\r\n"
                 "Date: Tue, 01 Jul 2025 12:00:00 GMT\r\n"
                 "Connection: keep-alive\r\n"
                 "Keep-Alive: timeout=5\r\n"
                 "\r\n");
    resp_len = (size_t)n;
}

static double
time_request(long iters)
{
    const char *why = NULL;
    uint64_t acc = 0;
    double t0 = now_ns();

    for (long i = 0; i < iters; i++)
        acc += (uint64_t)mg_http_parse_request_head(req_head, req_len, &req, &why) + req.nheaders;
    sink += acc;
    return (now_ns() - t0) / (double)iters;
}

static double
time_response(long iters)
{
    const char *why = NULL;
    uint64_t acc = 0;
    double t0 = now_ns();

    for (long i = 0; i < iters; i++)
        acc +=
            (uint64_t)mg_http_parse_response_head(resp_head, resp_len, &resp, &why) + resp.nheaders;
    sink += acc;
    return (now_ns() - t0) / (double)iters;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 9;
    double rq[MAX_ROUNDS], rs[MAX_ROUNDS];
    const char *why = NULL;

    if (iters < 1 || iters > MAX_ITERS || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: http-parse-bench [ITERATIONS 1..%ld [ROUNDS 1..%d]]\n", MAX_ITERS,
                MAX_ROUNDS);
        return 2;
    }
    build_heads();
    /* A benchmark of a parser that refuses its input would measure the wrong path. */
    if (mg_http_parse_request_head(req_head, req_len, &req, &why) != (int)req_len ||
        req.nheaders != 10 || req.content_length != 103 || !req.keep_alive) {
        fprintf(stderr, "http-parse-bench: request head refused: %s\n", why ? why : "?");
        return 1;
    }
    if (mg_http_parse_response_head(resp_head, resp_len, &resp, &why) != (int)resp_len ||
        resp.nheaders != 8 || resp.status != 200 || resp.content_length != 137) {
        fprintf(stderr, "http-parse-bench: response head refused: %s\n", why ? why : "?");
        return 1;
    }
    /* Warm up caches and the branch predictor, then interleave the two heads
     * so that a load spike on a shared machine hits both alike; the median
     * round is reported. */
    time_request(iters / 10 + 1);
    time_response(iters / 10 + 1);
    for (long r = 0; r < rounds; r++) {
        rq[r] = time_request(iters);
        rs[r] = time_response(iters);
    }
    qsort(rq, (size_t)rounds, sizeof(double), cmp_double);
    qsort(rs, (size_t)rounds, sizeof(double), cmp_double);
    printf("head      bytes  headers  ns/head(median of %ld x %ld)  min\n", rounds, iters);
    printf("request   %5zu  %7zu  %8.1f  %8.1f\n", req_len, req.nheaders, rq[rounds / 2], rq[0]);
    printf("response  %5zu  %7zu  %8.1f  %8.1f\n", resp_len, resp.nheaders, rs[rounds / 2], rs[0]);
    return sink == 0; /* never 0: every parse above returned > 0 */
}
