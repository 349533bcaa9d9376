/* metrics.c -- the metric registry: lock-free series lookup, relaxed atomic updates, 0.0.4 text
 * output. */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpgate/metrics.h"
#include "obs_int.h"

/* The absolute ceiling on a family's max_series, so that the table size
 * computation cannot overflow and a typo cannot reserve gigabytes. */
#define MAX_SERIES_CEILING (1u << 20)

struct mg_metric {
    mg_metric_family_t *fam;
    uint32_t hash;
    const char *values[MG_METRIC_MAX_LABELS]; /* point into the same allocation */
    size_t lens[MG_METRIC_MAX_LABELS];
    /* Counter (uint64), gauge (int64 two's complement), age (unix ms). */
    _Atomic uint64_t v;
    _Atomic uint64_t sum_ns;
    /* Histogram: per-bucket (not cumulative) counts, [nbuckets] is +Inf. */
    _Atomic uint64_t buckets[];
};

struct mg_metric_family {
    mg_metric_family_t *next;
    mg_metric_type_t type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[MG_METRIC_MAX_LABELS];
    size_t nbuckets;
    double bounds[MG_METRIC_MAX_BUCKETS];
    size_t max_series;
    size_t mask;                   /* table size - 1; the size is a power of 2 >= 2 * max_series */
    _Atomic(mg_metric_t *) *slots; /* written once each (release), under <lock> */
    atomic_size_t nseries;
    mg_metric_t *overflow; /* every label "other"; NULL without labels */
    atomic_bool overflow_used;
    pthread_mutex_t lock; /* inserts only */
};

struct mg_metric_reg {
    mg_metric_family_t *families;
    size_t nfamilies;
};

/* ---- registry and families ---- */

mg_metric_reg_t *
mg_metric_reg_new(void)
{
    return calloc(1, sizeof(mg_metric_reg_t));
}

static void
family_free(mg_metric_family_t *f)
{
    if (f == NULL)
        return;
    if (f->slots != NULL) {
        for (size_t i = 0; i <= f->mask; i++)
            free(atomic_load_explicit(&f->slots[i], memory_order_relaxed));
        free((void *)f->slots);
    }
    free(f->overflow);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void
mg_metric_reg_free(mg_metric_reg_t *reg)
{
    mg_metric_family_t *f, *next;

    if (reg == NULL)
        return;
    for (f = reg->families; f != NULL; f = next) {
        next = f->next;
        family_free(f);
    }
    free(reg);
}

static bool
valid_name(const char *s, bool colon)
{
    if (s == NULL || *s == '\0')
        return false;
    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static uint32_t
hash_values(const char *const *vals, const size_t *lens, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < lens[i]; j++) {
            h ^= (unsigned char)vals[i][j];
            h *= 16777619u;
        }
        h ^= 0xffu; /* separator: ("ab","") differs from ("a","b") */
        h *= 16777619u;
    }
    return h;
}

/* Allocate a series with copies of the values; NULL on failure. */
static mg_metric_t *
series_new(mg_metric_family_t *f, const char *const *vals, const size_t *lens, uint32_t hash)
{
    size_t nb = f->type == MG_METRIC_HISTOGRAM ? f->nbuckets + 1 : 0;
    size_t size = sizeof(mg_metric_t) + nb * sizeof(_Atomic uint64_t);
    mg_metric_t *s;
    char *p;

    for (size_t i = 0; i < f->nlabels; i++)
        size += lens[i] + 1;
    s = calloc(1, size);
    if (s == NULL)
        return NULL;
    s->fam = f;
    s->hash = hash;
    p = (char *)&s->buckets[nb];
    for (size_t i = 0; i < f->nlabels; i++) {
        memcpy(p, vals[i], lens[i]);
        p[lens[i]] = '\0';
        s->values[i] = p;
        s->lens[i] = lens[i];
        p += lens[i] + 1;
    }
    return s;
}

mg_metric_family_t *
mg_metric_family_new(mg_metric_reg_t *reg, mg_metric_type_t type, const char *name,
                     const char *help, const char *const *labels, size_t max_series,
                     const double *buckets, size_t nbuckets)
{
    mg_metric_family_t *f = NULL, *it;
    const char *other[MG_METRIC_MAX_LABELS];
    size_t other_lens[MG_METRIC_MAX_LABELS];
    size_t size;

    if (reg == NULL || !valid_name(name, true) || (unsigned)type > MG_METRIC_GAUGE_AGE)
        goto fail;
    for (it = reg->families; it != NULL; it = it->next)
        if (strcmp(it->name, name) == 0)
            goto fail;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        goto fail;
    pthread_mutex_init(&f->lock, NULL);
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto fail;
    for (size_t i = 0; labels != NULL && labels[i] != NULL; i++) {
        if (i == MG_METRIC_MAX_LABELS || !valid_name(labels[i], false) ||
            strcmp(labels[i], "le") == 0 || strncmp(labels[i], "__", 2) == 0)
            goto fail;
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                goto fail;
        f->labels[i] = strdup(labels[i]);
        if (f->labels[i] == NULL)
            goto fail;
        f->nlabels = i + 1;
    }
    if (type == MG_METRIC_HISTOGRAM) {
        if (nbuckets > MG_METRIC_MAX_BUCKETS || (nbuckets > 0 && buckets == NULL))
            goto fail;
        for (size_t i = 0; i < nbuckets; i++) {
            if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
                goto fail;
            f->bounds[i] = buckets[i];
        }
        f->nbuckets = nbuckets;
    }
    if (f->nlabels == 0)
        max_series = 1;
    if (max_series == 0 || max_series > MAX_SERIES_CEILING)
        goto fail;
    f->max_series = max_series;
    size = 4;
    while (size < 2 * max_series)
        size *= 2;
    f->mask = size - 1;
    f->slots = calloc(size, sizeof(*f->slots));
    if (f->slots == NULL)
        goto fail;
    if (f->nlabels == 0) {
        /* The only series exists from the start, so it is always rendered. */
        mg_metric_t *s = series_new(f, NULL, NULL, hash_values(NULL, NULL, 0));
        if (s == NULL)
            goto fail;
        atomic_store_explicit(&f->slots[s->hash & f->mask], s, memory_order_release);
        atomic_store_explicit(&f->nseries, 1, memory_order_relaxed);
    } else {
        for (size_t i = 0; i < f->nlabels; i++) {
            other[i] = MG_METRIC_OTHER;
            other_lens[i] = strlen(MG_METRIC_OTHER);
        }
        f->overflow = series_new(f, other, other_lens, 0);
        if (f->overflow == NULL)
            goto fail;
    }
    f->next = reg->families;
    reg->families = f;
    reg->nfamilies++;
    return f;
fail:
    family_free(f);
    return NULL;
}

size_t
mg_metric_family_size(const mg_metric_family_t *fam)
{
    if (fam == NULL)
        return 0;
    return atomic_load_explicit(&fam->nseries, memory_order_relaxed) +
           (atomic_load_explicit(&fam->overflow_used, memory_order_relaxed) ? 1 : 0);
}

/* ---- lookup ---- */

static bool
series_equal(const mg_metric_t *s, const char *const *vals, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s->lens[i] != lens[i] || memcmp(s->values[i], vals[i], lens[i]) != 0)
            return false;
    return true;
}

/* The series with these values, or NULL; *empty gets the first free slot. */
static mg_metric_t *
probe(mg_metric_family_t *f, const char *const *vals, const size_t *lens, uint32_t h, size_t *empty)
{
    for (size_t i = h & f->mask;; i = (i + 1) & f->mask) {
        mg_metric_t *s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
        if (s == NULL) {
            *empty = i;
            return NULL;
        }
        if (s->hash == h && series_equal(s, vals, lens, f->nlabels))
            return s;
    }
}

static mg_metric_t *
overflow(mg_metric_family_t *f)
{
    if (!atomic_load_explicit(&f->overflow_used, memory_order_relaxed))
        atomic_store_explicit(&f->overflow_used, true, memory_order_relaxed);
    return f->overflow;
}

mg_metric_t *
mg_metric_get(mg_metric_family_t *f, const char *const *values)
{
    const char *vals[MG_METRIC_MAX_LABELS];
    size_t lens[MG_METRIC_MAX_LABELS];
    mg_metric_t *s;
    size_t empty;
    uint32_t h;

    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++) {
        vals[i] = values != NULL && values[i] != NULL ? values[i] : "";
        lens[i] = mg_obs_utf8_cut(vals[i], strlen(vals[i]), MG_METRIC_MAX_VALUE_LEN);
    }
    h = hash_values(vals, lens, f->nlabels);
    s = probe(f, vals, lens, h, &empty);
    if (s != NULL)
        return s;
    /* New label set: past the cap without taking the lock. */
    if (atomic_load_explicit(&f->nseries, memory_order_relaxed) >= f->max_series)
        return overflow(f);
    pthread_mutex_lock(&f->lock);
    s = probe(f, vals, lens, h, &empty); /* another thread may have inserted it */
    if (s == NULL && atomic_load_explicit(&f->nseries, memory_order_relaxed) < f->max_series) {
        s = series_new(f, vals, lens, h);
        if (s != NULL) {
            atomic_store_explicit(&f->slots[empty], s, memory_order_release);
            atomic_fetch_add_explicit(&f->nseries, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return s != NULL ? s : overflow(f);
}

/* ---- updates ---- */

void
mg_metric_add(mg_metric_t *m, int64_t delta)
{
    if (m == NULL)
        return;
    if (m->fam->type == MG_METRIC_COUNTER) {
        if (delta > 0) /* counters never go down */
            atomic_fetch_add_explicit(&m->v, (uint64_t)delta, memory_order_relaxed);
    } else if (m->fam->type == MG_METRIC_GAUGE) {
        atomic_fetch_add_explicit(&m->v, (uint64_t)delta, memory_order_relaxed);
    }
}

void
mg_metric_inc(mg_metric_t *m)
{
    mg_metric_add(m, 1);
}

void
mg_metric_set(mg_metric_t *m, int64_t value)
{
    if (m != NULL && m->fam->type == MG_METRIC_GAUGE)
        atomic_store_explicit(&m->v, (uint64_t)value, memory_order_relaxed);
}

void
mg_metric_observe_ns(mg_metric_t *m, uint64_t ns)
{
    const mg_metric_family_t *f;
    size_t i;

    if (m == NULL || m->fam->type != MG_METRIC_HISTOGRAM)
        return;
    f = m->fam;
    /* Bounds are in seconds; compare in seconds (the division is exact
     * enough: bucket edges are user-facing decimals, not ns). */
    double sec = (double)ns / 1e9;
    for (i = 0; i < f->nbuckets; i++)
        if (sec <= f->bounds[i])
            break;
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_ns, ns, memory_order_relaxed);
}

void
mg_metric_observe(mg_metric_t *m, double seconds)
{
    uint64_t ns;

    if (!(seconds > 0)) /* negative or NaN */
        ns = 0;
    else if (seconds >= 1.8e10) /* ~570 years: clamp before the conversion overflows */
        ns = UINT64_C(18000000000000000000);
    else
        ns = (uint64_t)(seconds * 1e9 + 0.5);
    mg_metric_observe_ns(m, ns);
}

void
mg_metric_set_time_ms(mg_metric_t *m, int64_t unix_ms)
{
    if (m != NULL && m->fam->type == MG_METRIC_GAUGE_AGE)
        atomic_store_explicit(&m->v, (uint64_t)unix_ms, memory_order_relaxed);
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
mg_metric_touch(mg_metric_t *m)
{
    mg_metric_set_time_ms(m, now_ms());
}

int64_t
mg_metric_value(const mg_metric_t *m)
{
    int64_t total = 0;

    if (m == NULL)
        return 0;
    if (m->fam->type != MG_METRIC_HISTOGRAM)
        return (int64_t)atomic_load_explicit(&m->v, memory_order_relaxed);
    for (size_t i = 0; i <= m->fam->nbuckets; i++)
        total += (int64_t)atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
    return total;
}

/* ---- rendering ---- */

/* HELP text: \ and newline escaped (format 0.0.4). */
static void
put_help(mg_obs_buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            mg_obs_buf_add(b, "\\\\", 2);
        else if (*s == '\n')
            mg_obs_buf_add(b, "\\n", 2);
        else
            mg_obs_buf_add(b, s, 1);
    }
}

/* A label value: \, " and newline escaped; bytes that are not valid UTF-8
 * become U+FFFD, since the format is UTF-8. */
static void
put_label_value(mg_obs_buf_t *b, const char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        char c = s[i];
        if (c == '\\') {
            mg_obs_buf_add(b, "\\\\", 2);
            k = 1;
        } else if (c == '"') {
            mg_obs_buf_add(b, "\\\"", 2);
            k = 1;
        } else if (c == '\n') {
            mg_obs_buf_add(b, "\\n", 2);
            k = 1;
        } else {
            k = mg_obs_utf8_seq((const unsigned char *)s + i, n - i);
            if (k == 0) {
                mg_obs_buf_add(b, "\xef\xbf\xbd", 3);
                k = 1;
            } else {
                mg_obs_buf_add(b, s + i, k);
            }
        }
        i += k;
    }
}

/* name{l1="v1",...<extra>} -- <extra> is an already formatted le="..." or NULL. */
static void
put_series_name(mg_obs_buf_t *b, const mg_metric_family_t *f, const mg_metric_t *s,
                const char *suffix, const char *extra)
{
    mg_obs_buf_puts(b, f->name);
    mg_obs_buf_puts(b, suffix);
    if (f->nlabels == 0 && extra == NULL)
        return;
    mg_obs_buf_add(b, "{", 1);
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            mg_obs_buf_add(b, ",", 1);
        mg_obs_buf_puts(b, f->labels[i]);
        mg_obs_buf_add(b, "=\"", 2);
        put_label_value(b, s->values[i], s->lens[i]);
        mg_obs_buf_add(b, "\"", 1);
    }
    if (extra != NULL) {
        if (f->nlabels > 0)
            mg_obs_buf_add(b, ",", 1);
        mg_obs_buf_puts(b, extra);
    }
    mg_obs_buf_add(b, "}", 1);
}

/* The shortest %g form that reads back as the same double: 0.005, not
 * 0.0050000000000000001. */
static void
format_double(char *out, size_t size, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* An integer number of units (10^-<digits>) as a decimal, trailing zeros
 * trimmed: (1500000000, 9) -> "1.5". */
static void
put_fixed(mg_obs_buf_t *b, uint64_t v, int digits, bool negative)
{
    uint64_t scale = 1;
    char frac[24];
    int n;

    for (int i = 0; i < digits; i++)
        scale *= 10;
    mg_obs_buf_printf(b, "%s%llu", negative ? "-" : "", (unsigned long long)(v / scale));
    if (v % scale == 0)
        return;
    n = snprintf(frac, sizeof(frac), ".%0*llu", digits, (unsigned long long)(v % scale));
    while (n > 1 && frac[n - 1] == '0')
        n--;
    mg_obs_buf_add(b, frac, (size_t)n);
}

static const char *
type_name(mg_metric_type_t t)
{
    switch (t) {
    case MG_METRIC_COUNTER:
        return "counter";
    case MG_METRIC_HISTOGRAM:
        return "histogram";
    default:
        return "gauge";
    }
}

static int
cmp_family(const void *a, const void *b)
{
    const mg_metric_family_t *fa = *(mg_metric_family_t *const *)a;
    const mg_metric_family_t *fb = *(mg_metric_family_t *const *)b;
    return strcmp(fa->name, fb->name);
}

static int
cmp_series(const void *a, const void *b)
{
    const mg_metric_t *sa = *(mg_metric_t *const *)a;
    const mg_metric_t *sb = *(mg_metric_t *const *)b;

    for (size_t i = 0; i < sa->fam->nlabels; i++) {
        size_t n = sa->lens[i] < sb->lens[i] ? sa->lens[i] : sb->lens[i];
        int c = memcmp(sa->values[i], sb->values[i], n);
        if (c != 0)
            return c;
        if (sa->lens[i] != sb->lens[i])
            return sa->lens[i] < sb->lens[i] ? -1 : 1;
    }
    return 0;
}

static void
render_series(mg_obs_buf_t *b, const mg_metric_family_t *f, const mg_metric_t *s, int64_t now)
{
    uint64_t v = atomic_load_explicit(&s->v, memory_order_relaxed);
    char le[48], num[32];

    switch (f->type) {
    case MG_METRIC_COUNTER:
        put_series_name(b, f, s, "", NULL);
        mg_obs_buf_printf(b, " %llu\n", (unsigned long long)v);
        break;
    case MG_METRIC_GAUGE:
        put_series_name(b, f, s, "", NULL);
        mg_obs_buf_printf(b, " %lld\n", (long long)(int64_t)v);
        break;
    case MG_METRIC_GAUGE_AGE: {
        int64_t age = now - (int64_t)v;
        if (v == 0)
            return; /* never set: no value to report */
        put_series_name(b, f, s, "", NULL);
        mg_obs_buf_add(b, " ", 1);
        put_fixed(b, (uint64_t)(age > 0 ? age : 0), 3, false);
        mg_obs_buf_add(b, "\n", 1);
        break;
    }
    case MG_METRIC_HISTOGRAM: {
        uint64_t cum = 0;
        for (size_t i = 0; i <= f->nbuckets; i++) {
            cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
            if (i < f->nbuckets)
                format_double(num, sizeof(num), f->bounds[i]);
            else
                strcpy(num, "+Inf");
            snprintf(le, sizeof(le), "le=\"%s\"", num);
            put_series_name(b, f, s, "_bucket", le);
            mg_obs_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
        put_series_name(b, f, s, "_sum", NULL);
        mg_obs_buf_add(b, " ", 1);
        put_fixed(b, atomic_load_explicit(&s->sum_ns, memory_order_relaxed), 9, false);
        mg_obs_buf_add(b, "\n", 1);
        put_series_name(b, f, s, "_count", NULL);
        mg_obs_buf_printf(b, " %llu\n", (unsigned long long)cum);
        break;
    }
    }
}

char *
mg_metric_reg_render(mg_metric_reg_t *reg, int64_t now, size_t *len)
{
    mg_obs_buf_t b = {0};
    mg_metric_family_t **fams = NULL, *f;
    mg_metric_t **series = NULL;
    size_t nf = 0;

    if (reg == NULL)
        goto fail;
    if (now == 0)
        now = now_ms();
    fams = calloc(reg->nfamilies + 1, sizeof(*fams));
    if (fams == NULL)
        goto fail;
    for (f = reg->families; f != NULL; f = f->next)
        fams[nf++] = f;
    qsort(fams, nf, sizeof(*fams), cmp_family);
    mg_obs_buf_add(&b, "", 0); /* an empty registry still yields "" */
    for (size_t i = 0; i < nf; i++) {
        size_t ns = 0;
        f = fams[i];
        series = calloc(f->mask + 2, sizeof(*series));
        if (series == NULL)
            goto fail;
        for (size_t j = 0; j <= f->mask; j++) {
            mg_metric_t *s = atomic_load_explicit(&f->slots[j], memory_order_acquire);
            if (s != NULL)
                series[ns++] = s;
        }
        if (atomic_load_explicit(&f->overflow_used, memory_order_relaxed))
            series[ns++] = f->overflow;
        qsort(series, ns, sizeof(*series), cmp_series);
        mg_obs_buf_printf(&b, "# HELP %s ", f->name);
        put_help(&b, f->help);
        mg_obs_buf_printf(&b, "\n# TYPE %s %s\n", f->name, type_name(f->type));
        for (size_t j = 0; j < ns; j++)
            render_series(&b, f, series[j], now);
        free(series);
        series = NULL;
    }
    if (b.oom)
        goto fail;
    free(fams);
    if (len != NULL)
        *len = b.len;
    return b.p;
fail:
    free(series);
    free(fams);
    free(b.p);
    return NULL;
}
