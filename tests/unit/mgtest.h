/* mgtest.h -- a minimal TAP-style test harness for the C unit tests.
 *
 * Usage: write `static void test_x(void) { MG_CHECK(expr); MG_CHECK_STR(a, b); }`
 * and run them from main() with MG_RUN(test_x); return mg_test_done().
 * Each test prints "ok N - name" or "not ok N - name" with the failed checks
 * above it; the program exits 1 if any check failed.
 */
#ifndef MCPGATE_MGTEST_H
#define MCPGATE_MGTEST_H

#include <stdio.h>
#include <string.h>

static int mg_test_failed_checks;   /* in the current test */
static int mg_test_n, mg_test_nfail;

#define MG_CHECK(expr)                                                                 \
    do {                                                                               \
        if (!(expr)) {                                                                 \
            mg_test_failed_checks++;                                                   \
            printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);          \
        }                                                                              \
    } while (0)

#define MG_CHECK_INT(a, b)                                                             \
    do {                                                                               \
        long long mg_a_ = (long long)(a), mg_b_ = (long long)(b);                      \
        if (mg_a_ != mg_b_) {                                                          \
            mg_test_failed_checks++;                                                   \
            printf("# %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, \
                   mg_a_, #b, mg_b_);                                                  \
        }                                                                              \
    } while (0)

#define MG_CHECK_STR(a, b)                                                             \
    do {                                                                               \
        const char *mg_a_ = (a), *mg_b_ = (b);                                         \
        if (mg_a_ == NULL || mg_b_ == NULL || strcmp(mg_a_, mg_b_) != 0) {             \
            mg_test_failed_checks++;                                                   \
            printf("# %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
                   mg_a_ ? mg_a_ : "(null)", mg_b_ ? mg_b_ : "(null)");                \
        }                                                                              \
    } while (0)

#define MG_RUN(fn)                                                                     \
    do {                                                                               \
        mg_test_failed_checks = 0;                                                     \
        fn();                                                                          \
        mg_test_n++;                                                                   \
        if (mg_test_failed_checks) {                                                   \
            mg_test_nfail++;                                                           \
            printf("not ok %d - %s\n", mg_test_n, #fn);                                \
        } else {                                                                       \
            printf("ok %d - %s\n", mg_test_n, #fn);                                    \
        }                                                                              \
    } while (0)

static inline int
mg_test_done(void)
{
    printf("1..%d\n# %d passed, %d failed\n", mg_test_n, mg_test_n - mg_test_nfail,
           mg_test_nfail);
    return mg_test_nfail ? 1 : 0;
}

#endif /* MCPGATE_MGTEST_H */
