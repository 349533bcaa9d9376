/* session.c -- the in-memory Mcp-Session-Id binding store (hash table under one mutex, bounded, with expiry). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/session.h"

bool
mg_session_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > MG_SESSION_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
            return false;
    return true;
}

typedef struct entry {
    struct entry *next;
    char *id;
    size_t id_len;
    char *iss, *sub, *version;
    uint64_t expires;
} entry_t;

typedef struct mem_store {
    mg_session_store_t base;
    pthread_mutex_t lock;
    entry_t **buckets;
    size_t nbuckets, count, max;
} mem_store_t;

static uint64_t
hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void
entry_free(entry_t *e)
{
    if (e == NULL)
        return;
    free(e->id);
    free(e->iss);
    free(e->sub);
    free(e->version);
    free(e);
}

static entry_t **
find_slot(mem_store_t *m, const char *id, size_t len)
{
    entry_t **pp = &m->buckets[hash(id, len) % m->nbuckets];

    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->id_len == len && memcmp((*pp)->id, id, len) == 0)
            return pp;
    return pp;
}

static bool
same_owner(const entry_t *e, const char *iss, const char *sub)
{
    return strcmp(e->iss, iss ? iss : "") == 0 && strcmp(e->sub, sub ? sub : "") == 0;
}

/* Drop expired entries; when still full, the one closest to expiry. */
static void
make_room(mem_store_t *m, uint64_t now)
{
    entry_t **victim = NULL;

    for (size_t b = 0; b < m->nbuckets; b++) {
        for (entry_t **pp = &m->buckets[b]; *pp != NULL;) {
            if ((*pp)->expires <= now) {
                entry_t *e = *pp;
                *pp = e->next;
                entry_free(e);
                m->count--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    if (m->count < m->max)
        return;
    for (size_t b = 0; b < m->nbuckets; b++)
        for (entry_t **pp = &m->buckets[b]; *pp != NULL; pp = &(*pp)->next)
            if (victim == NULL || (*pp)->expires < (*victim)->expires)
                victim = pp;
    if (victim != NULL) {
        entry_t *e = *victim;
        *victim = e->next;
        entry_free(e);
        m->count--;
    }
}

static void
mem_bind(mg_session_store_t *s, const char *id, size_t id_len, const char *iss, const char *sub,
         const char *version, uint64_t ttl_ms, uint64_t now_ms, mg_session_cb cb, void *arg)
{
    mem_store_t *m = (mem_store_t *)s;
    mg_session_result_t res = MG_SESSION_ERROR;
    entry_t **pp, *e = NULL;

    if (!mg_session_id_valid(id, id_len)) {
        cb(arg, MG_SESSION_ERROR, NULL);
        return;
    }
    pthread_mutex_lock(&m->lock);
    pp = find_slot(m, id, id_len);
    if (*pp != NULL && (*pp)->expires > now_ms) {
        if (same_owner(*pp, iss, sub)) {
            (*pp)->expires = now_ms + ttl_ms;
            res = MG_SESSION_OWNED;
        } else {
            res = MG_SESSION_FOREIGN;
        }
        goto done;
    }
    if (*pp != NULL) { /* expired: reuse the slot */
        e = *pp;
        *pp = e->next;
        entry_free(e);
        m->count--;
        e = NULL;
    }
    if (m->count >= m->max)
        make_room(m, now_ms);
    if ((e = calloc(1, sizeof(*e))) == NULL || (e->id = malloc(id_len)) == NULL ||
        (e->iss = strdup(iss ? iss : "")) == NULL || (e->sub = strdup(sub ? sub : "")) == NULL ||
        (version != NULL && (e->version = strdup(version)) == NULL)) {
        entry_free(e);
        goto done;
    }
    memcpy(e->id, id, id_len);
    e->id_len = id_len;
    e->expires = now_ms + ttl_ms;
    pp = find_slot(m, id, id_len); /* make_room may have changed the chain */
    e->next = NULL;
    *pp = e;
    m->count++;
    res = MG_SESSION_OWNED;
done:
    pthread_mutex_unlock(&m->lock);
    cb(arg, res, NULL);
}

static void
mem_check(mg_session_store_t *s, const char *id, size_t id_len, const char *iss, const char *sub,
          uint64_t ttl_ms, uint64_t now_ms, mg_session_cb cb, void *arg)
{
    mem_store_t *m = (mem_store_t *)s;
    mg_session_result_t res = MG_SESSION_UNKNOWN;
    char *version = NULL;
    entry_t **pp;

    pthread_mutex_lock(&m->lock);
    pp = find_slot(m, id, id_len);
    if (*pp != NULL && (*pp)->expires > now_ms) {
        if (same_owner(*pp, iss, sub)) {
            res = MG_SESSION_OWNED;
            (*pp)->expires = now_ms + ttl_ms;
            if ((*pp)->version != NULL && (version = strdup((*pp)->version)) == NULL)
                res = MG_SESSION_ERROR;
        } else {
            res = MG_SESSION_FOREIGN;
        }
    }
    pthread_mutex_unlock(&m->lock);
    cb(arg, res, res == MG_SESSION_OWNED ? version : NULL);
    free(version);
}

static void
mem_remove(mg_session_store_t *s, const char *id, size_t id_len, const char *iss, const char *sub,
           mg_session_cb cb, void *arg)
{
    mem_store_t *m = (mem_store_t *)s;
    mg_session_result_t res = MG_SESSION_UNKNOWN;
    entry_t **pp, *e = NULL;

    pthread_mutex_lock(&m->lock);
    pp = find_slot(m, id, id_len);
    if (*pp != NULL) {
        if (same_owner(*pp, iss, sub)) {
            e = *pp;
            *pp = e->next;
            m->count--;
            res = MG_SESSION_OWNED;
        } else {
            res = MG_SESSION_FOREIGN;
        }
    }
    pthread_mutex_unlock(&m->lock);
    entry_free(e);
    if (cb != NULL)
        cb(arg, res, NULL);
}

static void
mem_free(mg_session_store_t *s)
{
    mem_store_t *m = (mem_store_t *)s;

    for (size_t b = 0; b < m->nbuckets; b++) {
        for (entry_t *e = m->buckets[b], *next; e != NULL; e = next) {
            next = e->next;
            entry_free(e);
        }
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const mg_session_store_ops_t mem_ops = {mem_bind, mem_check, mem_remove, mem_free};

mg_session_store_t *
mg_session_store_memory_new(size_t max_entries)
{
    mem_store_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->max = max_entries ? max_entries : 100000;
    m->nbuckets = 1024;
    while (m->nbuckets < m->max && m->nbuckets < (1u << 20))
        m->nbuckets *= 2;
    if ((m->buckets = calloc(m->nbuckets, sizeof(*m->buckets))) == NULL) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->base.ops = &mem_ops;
    return &m->base;
}

size_t
mg_session_store_memory_count(mg_session_store_t *s)
{
    mem_store_t *m = (mem_store_t *)s;
    size_t n;

    pthread_mutex_lock(&m->lock);
    n = m->count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void
mg_session_bind(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                const char *sub, const char *version, uint64_t ttl_ms, uint64_t now_ms,
                mg_session_cb cb, void *arg)
{
    s->ops->bind(s, id, id_len, iss, sub, version, ttl_ms, now_ms, cb, arg);
}

void
mg_session_check(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                 const char *sub, uint64_t ttl_ms, uint64_t now_ms, mg_session_cb cb, void *arg)
{
    s->ops->check(s, id, id_len, iss, sub, ttl_ms, now_ms, cb, arg);
}

void
mg_session_remove(mg_session_store_t *s, const char *id, size_t id_len, const char *iss,
                  const char *sub, mg_session_cb cb, void *arg)
{
    s->ops->remove(s, id, id_len, iss, sub, cb, arg);
}

void
mg_session_store_free(mg_session_store_t *s)
{
    if (s != NULL)
        s->ops->free(s);
}
