/* connlimit.c -- the process-wide connection limits checked when a worker accepts a socket:
 * max_connections (the process, and a listener's own), max_connections_per_client. */
#include "config.h"

#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core_int.h"
#include "mcpgate/log.h"
#include "mcpgate/mcp.h"
#include "mcpgate/metrics.h"

/* Buckets of the per-client table. Each holds the clients that currently have at least one
 * connection, so the table holds at most max_connections entries whatever the traffic; the
 * hash is keyed with a random seed so that a client cannot pick addresses that share a
 * bucket on purpose. */
#define MG_CLIMIT_BUCKETS 1024

typedef struct mg_climit_entry {
    struct mg_climit_entry *next;
    uint8_t addr[16];
    uint8_t len;     /* 4 (IPv4, also IPv4-mapped IPv6) or 16 */
    uint32_t bucket; /* its index in buckets[] */
    size_t count;    /* connections held; the entry goes away at 0 */
} mg_climit_entry_t;

typedef struct mg_climit_bucket {
    pthread_mutex_t lock;
    mg_climit_entry_t *head;
} mg_climit_bucket_t;

struct mg_connlimit {
    atomic_size_t total;   /* every counted client connection of the process */
    atomic_size_t *listen; /* [nlisten]: per listener, indexed like mg_worker_t.listeners */
    size_t nlisten;
    uint64_t seed[2];
    struct mg_metrics *metrics; /* borrowed; NULL: not counted */
    atomic_llong log_sec;       /* CLOCK_MONOTONIC second of the last refusal logged */
    atomic_ulong unlogged;      /* refusals since that line */
    mg_climit_bucket_t buckets[MG_CLIMIT_BUCKETS];
};

mg_connlimit_t *
mg_connlimit_new(size_t nlisten, struct mg_metrics *metrics)
{
    mg_connlimit_t *cl = calloc(1, sizeof(*cl));

    if (cl == NULL)
        return NULL;
    cl->listen = calloc(nlisten ? nlisten : 1, sizeof(*cl->listen));
    if (cl->listen == NULL) {
        free(cl);
        return NULL;
    }
    cl->nlisten = nlisten;
    atomic_init(&cl->total, 0);
    for (size_t i = 0; i < nlisten; i++)
        atomic_init(&cl->listen[i], 0);
    atomic_init(&cl->log_sec, LLONG_MIN);
    atomic_init(&cl->unlogged, 0);
    cl->metrics = metrics;
    if (RAND_bytes((unsigned char *)cl->seed, sizeof(cl->seed)) != 1) {
        /* Still a working table; only the hash is predictable. */
        cl->seed[0] = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull;
        cl->seed[1] = (uint64_t)(uintptr_t)cl;
    }
    for (size_t i = 0; i < MG_CLIMIT_BUCKETS; i++)
        pthread_mutex_init(&cl->buckets[i].lock, NULL);
    return cl;
}

void
mg_connlimit_free(mg_connlimit_t *cl)
{
    if (cl == NULL)
        return;
    for (size_t i = 0; i < MG_CLIMIT_BUCKETS; i++) {
        /* Normally empty: every connection was released before the workers were freed. */
        for (mg_climit_entry_t *e = cl->buckets[i].head, *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        pthread_mutex_destroy(&cl->buckets[i].lock);
    }
    free(cl->listen);
    free(cl);
}

/* One more on <n> unless that would pass <max>. Exact under concurrency. */
static bool
take(atomic_size_t *n, size_t max)
{
    size_t v = atomic_load_explicit(n, memory_order_relaxed);

    do {
        if (v >= max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(n, &v, v + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

static uint64_t
mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint32_t
bucket_of(const mg_connlimit_t *cl, const uint8_t *addr, size_t len)
{
    uint64_t w[2] = {0, 0};

    memcpy(w, addr, len);
    return (uint32_t)(mix(mix(w[0] ^ cl->seed[0]) ^ w[1] ^ cl->seed[1] ^ len) % MG_CLIMIT_BUCKETS);
}

/* The client's key: IPv4 (also when mapped into IPv6) as 4 bytes, IPv6 as 16. 0: none. */
static size_t
client_key(const struct sockaddr *sa, uint8_t key[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(key, a->s6_addr + 12, 4);
            return 4;
        }
        memcpy(key, a->s6_addr, 16);
        return 16;
    }
    return 0;
}

/* One more connection for the client, unless it holds <max> already. */
static bool
take_client(mg_connlimit_t *cl, const uint8_t *key, size_t len, size_t max, mg_climit_entry_t **out)
{
    uint32_t b = bucket_of(cl, key, len);
    mg_climit_bucket_t *bk = &cl->buckets[b];
    mg_climit_entry_t *e;
    bool ok = true;

    pthread_mutex_lock(&bk->lock);
    for (e = bk->head; e != NULL; e = e->next)
        if (e->len == len && memcmp(e->addr, key, len) == 0)
            break;
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e != NULL) {
            memcpy(e->addr, key, len);
            e->len = (uint8_t)len;
            e->bucket = b;
            e->next = bk->head;
            bk->head = e;
        }
    }
    if (e == NULL || e->count >= max) {
        ok = false; /* out of memory counts as over the limit: fail closed */
    } else {
        e->count++;
        *out = e;
    }
    pthread_mutex_unlock(&bk->lock);
    return ok;
}

static void
release_client(mg_connlimit_t *cl, mg_climit_entry_t *e)
{
    mg_climit_bucket_t *bk = &cl->buckets[e->bucket];

    pthread_mutex_lock(&bk->lock);
    if (--e->count == 0) {
        mg_climit_entry_t **pp = &bk->head;
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
        free(e);
    }
    pthread_mutex_unlock(&bk->lock);
}

/* Counted, and logged at most once a second for the whole process (a flood must not
 * flood the log). */
static void
refused(mg_connlimit_t *cl, const char *reason, size_t limit, const char *client, const char *where)
{
    struct timespec ts;
    long long now, last;

    mg_metrics_connection_refused(cl->metrics, reason);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (long long)ts.tv_sec;
    last = atomic_load_explicit(&cl->log_sec, memory_order_relaxed);
    if (last == now || !atomic_compare_exchange_strong_explicit(
                           &cl->log_sec, &last, now, memory_order_relaxed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&cl->unlogged, 1, memory_order_relaxed);
        return;
    }
    mg_log_warn("connection from %s on %s closed: %s %zu reached (%lu more refused since the "
                "last message)",
                client, where, reason, limit,
                atomic_exchange_explicit(&cl->unlogged, 0, memory_order_relaxed));
}

bool
mg_connlimit_acquire(mg_connlimit_t *cl, const mg_conf_t *conf, size_t listener,
                     const char *listen_text, const struct sockaddr *sa, const char *client_ip,
                     mg_climit_ticket_t *t)
{
    size_t listen_max = 0;
    uint8_t key[16];
    size_t keylen;

    t->client = NULL;
    t->listener = -1;
    t->total = false;
    if (cl == NULL)
        return true;
    if (!take(&cl->total, conf->max_connections)) {
        refused(cl, "max_connections", conf->max_connections, client_ip, listen_text);
        return false;
    }
    t->total = true;
    if (listener < cl->nlisten) {
        /* The limit of the running configuration, found by address: a reload may reorder
         * the listens (the sockets stay those of the startup configuration). */
        for (size_t i = 0; i < conf->nlistens; i++)
            if (strcmp(conf->listens[i].text, listen_text) == 0)
                listen_max = conf->listens[i].max_connections;
        if (!take(&cl->listen[listener], listen_max ? listen_max : SIZE_MAX)) {
            refused(cl, "listen_max_connections", listen_max, client_ip, listen_text);
            goto refuse;
        }
        t->listener = (int)listener;
    }
    /* A trusted proxy carries many clients on its connections: only the totals apply. */
    if (conf->max_connections_per_client > 0 && (keylen = client_key(sa, key)) != 0 &&
        !mg_mcp_trusted_proxy(conf, sa) &&
        !take_client(cl, key, keylen, conf->max_connections_per_client, &t->client)) {
        refused(cl, "max_connections_per_client", conf->max_connections_per_client, client_ip,
                listen_text);
        goto refuse;
    }
    return true;
refuse:
    mg_connlimit_release(cl, t);
    return false;
}

void
mg_connlimit_release(mg_connlimit_t *cl, mg_climit_ticket_t *t)
{
    if (cl == NULL)
        return;
    if (t->client != NULL)
        release_client(cl, t->client);
    if (t->listener >= 0)
        atomic_fetch_sub_explicit(&cl->listen[t->listener], 1, memory_order_relaxed);
    if (t->total)
        atomic_fetch_sub_explicit(&cl->total, 1, memory_order_relaxed);
    t->client = NULL;
    t->listener = -1;
    t->total = false;
}
