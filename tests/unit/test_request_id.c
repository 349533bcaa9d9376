/* test_request_id.c -- request ids: keep/replace table, generated format, uniqueness across
 * threads. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/request_id.h"
#include "mgtest.h"

static int
is_generated(const char *s)
{
    if (strlen(s) != MG_REQUEST_ID_GEN_LEN)
        return 0;
    for (size_t i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void
test_keep_replace(void)
{
    static const struct {
        const char *in;
        int keep;
    } cases[] = {
        {"abc", 1},
        {"A", 1},
        {"0123456789abcdef0123456789abcdef", 1},
        {"req-1.2_3:4", 1},
        {"550e8400-e29b-41d4-a716-446655440000", 1},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1},  /* 64 */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0}, /* 65 */
        {"", 0},
        {"has space", 0},
        {"tab\t", 0},
        {"new\nline", 0},
        {"cr\r", 0},
        {"quote\"", 0},
        {"slash/", 0},
        {"comma,", 0},
        {"semi;", 0},
        {"pct%41", 0},
        {"caf\xc3\xa9", 0},
        {"\xff", 0},
        {"plus+", 0},
        {"eq=", 0},
        {"{json}", 0},
    };
    char out[MG_REQUEST_ID_SIZE];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool kept = mg_request_id_assign(cases[i].in, strlen(cases[i].in), out);
        MG_CHECK_INT(kept, cases[i].keep);
        if (cases[i].keep)
            MG_CHECK_STR(out, cases[i].in);
        else
            MG_CHECK(is_generated(out));
        MG_CHECK_INT(mg_request_id_valid(cases[i].in, strlen(cases[i].in)), cases[i].keep);
    }
    /* No header at all. */
    MG_CHECK(!mg_request_id_assign(NULL, 0, out));
    MG_CHECK(is_generated(out));
    /* An embedded NUL counts (length is explicit). */
    MG_CHECK(!mg_request_id_assign("ab\0cd", 5, out));
}

#define NT 4
#define PER 20000

static char ids[NT * PER][MG_REQUEST_ID_GEN_LEN + 1];

static void *
gen(void *p)
{
    size_t base = (size_t)(uintptr_t)p * PER;
    for (size_t i = 0; i < PER; i++)
        mg_request_id_generate(ids[base + i]);
    return NULL;
}

static int
cmp(const void *a, const void *b)
{
    return memcmp(a, b, MG_REQUEST_ID_GEN_LEN);
}

static void
test_unique(void)
{
    pthread_t t[NT];
    size_t dups = 0, bad = 0;
    int seen_nibble[16] = {0};

    for (uintptr_t i = 0; i < NT; i++)
        pthread_create(&t[i], NULL, gen, (void *)i);
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    for (size_t i = 0; i < NT * PER; i++) {
        if (!is_generated(ids[i]))
            bad++;
        for (int k = 0; k < MG_REQUEST_ID_GEN_LEN; k++) {
            char c = ids[i][k];
            seen_nibble[c <= '9' ? c - '0' : c - 'a' + 10]++;
        }
    }
    qsort(ids, NT * PER, sizeof(ids[0]), cmp);
    for (size_t i = 1; i < NT * PER; i++)
        if (memcmp(ids[i - 1], ids[i], MG_REQUEST_ID_GEN_LEN) == 0)
            dups++;
    MG_CHECK_INT(bad, 0);
    MG_CHECK_INT(dups, 0);
    /* Every hex digit turns up roughly 1/16 of the time (not a constant pattern). */
    for (int k = 0; k < 16; k++)
        MG_CHECK(seen_nibble[k] > NT * PER * MG_REQUEST_ID_GEN_LEN / 16 * 9 / 10);
}

int
main(void)
{
    MG_RUN(test_keep_replace);
    MG_RUN(test_unique);
    return mg_test_done();
}
