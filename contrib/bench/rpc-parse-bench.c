/* rpc-parse-bench.c -- nanoseconds per mg_rpc_parse() of three typical MCP POST bodies, beside the jansson reference (mg_rpc_parse_jansson) in the same process.
 *
 * Usage: rpc-parse-bench [N [BODY [ref]]]
 *   N parses per round (default 200000, at most 100000000); each body is timed
 *   in 3 rounds of N parses and the median round is printed. BODY (tools/call,
 *   tools/list, initialize) times that body only, and "ref" the reference only:
 *   what rpc-parse-bench.sh runs under callgrind to count instructions.
 * Built with -DMG_BENCH_NO_REFERENCE it times mg_rpc_parse alone, so that the
 * same file builds against a tree from before the scanner (issue 8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpgate/jsonrpc.h"

#define ROUNDS 3

typedef int (*parse_fn)(const char *, size_t, mg_rpc_body_t **);

static const struct {
    const char *name;
    const char *body;
} bodies[] = {
    {"tools/call", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                   "\"echo\",\"arguments\":{\"message\":\"hello from wrk\"}}}"},
    {"tools/list", "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{}}"},
    {"initialize",
     "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
     "\"2025-06-18\",\"capabilities\":{\"roots\":{\"listChanged\":true},\"sampling\":{}},"
     "\"clientInfo\":{\"name\":\"wrk\",\"version\":\"1.0.0\"}}}"},
};

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over ROUNDS of the mean ns per parse; -1 when a parse fails. */
static double
time_parse(parse_fn fn, const char *body, long n)
{
    size_t len = strlen(body);
    double r[ROUNDS];

    for (int k = 0; k < ROUNDS; k++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            mg_rpc_body_t *b = NULL;
            if (fn(body, len, &b) != 0)
                return -1;
            mg_rpc_body_free(b);
        }
        r[k] = (now_ns() - t0) / (double)n;
    }
    qsort(r, ROUNDS, sizeof(r[0]), cmp_double);
    return r[ROUNDS / 2];
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    const char *only = argc > 2 ? argv[2] : NULL;

    if (n < 1 || n > 100000000) {
        fprintf(stderr, "usage: rpc-parse-bench [N [BODY [ref]]]  (1 <= N <= 100000000)\n");
        return 2;
    }
    if (only != NULL) {
        parse_fn fn = mg_rpc_parse;
#ifndef MG_BENCH_NO_REFERENCE
        if (argc > 3 && strcmp(argv[3], "ref") == 0)
            fn = mg_rpc_parse_jansson;
#endif
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
            if (strcmp(bodies[i].name, only) == 0) {
                double t = time_parse(fn, bodies[i].body, n);
                printf("%s %.1f ns\n", only, t);
                return t < 0;
            }
        fprintf(stderr, "rpc-parse-bench: no body %s\n", only);
        return 2;
    }
    printf("%-12s %6s %14s %14s %8s\n", "body", "bytes", "mg_rpc_parse", "jansson_ref", "speedup");
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        double fast = time_parse(mg_rpc_parse, bodies[i].body, n), ref = -1;
#ifndef MG_BENCH_NO_REFERENCE
        ref = time_parse(mg_rpc_parse_jansson, bodies[i].body, n);
#endif
        if (fast < 0) {
            fprintf(stderr, "rpc-parse-bench: %s does not parse\n", bodies[i].name);
            return 1;
        }
        if (ref > 0)
            printf("%-12s %6zu %11.1f ns %11.1f ns %7.2fx\n", bodies[i].name,
                   strlen(bodies[i].body), fast, ref, ref / fast);
        else
            printf("%-12s %6zu %11.1f ns %14s %8s\n", bodies[i].name, strlen(bodies[i].body), fast,
                   "-", "-");
    }
    return 0;
}
