/* keys.c -- the key manager: per key source, the current key set, its refresh schedule,
 * unknown-kid refetches and counters; fetches run on the main thread (docs/keys.md). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "mcpgate/discovery.h"
#include "mcpgate/http_client.h"
#include "mcpgate/jwk.h"
#include "mcpgate/keys.h"
#include "mcpgate/log.h"
#include "mcpgate/metrics.h"

#define MG_KEYS_DEFAULT_LIFETIME_MS (300 * 1000) /* no Cache-Control, no Expires */
#define MG_KEYS_MAX_BACKOFF_MS (300 * 1000)
#define MG_KEYS_MAX_PENDING 64 /* kids waiting for the next refetch */
#define MG_KEYS_MAX_ABSENT 256 /* kids known absent (negative cache) */
#define MG_KEYS_MAX_KID                                                                            \
    256 /* longer kids are cut for the lists (still compared in full                               \
           against the key set) */

typedef struct kid_entry {
    char *kid;     /* "" for a token without kid */
    int64_t until; /* absent list: monotonic ms */
} kid_entry_t;

typedef struct reg {
    mg_jwt_issuer_t *is;
    const void *owner;
} reg_t;

typedef struct source {
    struct source *next;
    struct mg_keys *km;
    char *ident; /* url \n jwks_uri \n ca_file \n allow_http: the identity across reloads */
    char *url;
    char *jwks_uri;               /* configured, or NULL: discovery */
    char *disc_uri;               /* discovered jwks_uri (NULL until discovery succeeded) */
    char *introspection_endpoint; /* discovered, for later use */
    char *metadata_doc;           /* the discovered metadata document (legacy_as_metadata) */
    size_t metadata_len;
    char *ca_file;
    bool allow_http;
    /* knobs, ms: from the newest registration */
    int64_t min_refresh, max_refresh, cooldown, max_stale;

    /* Under km->lock: */
    reg_t *regs;
    size_t nregs, capregs;
    mg_jwks_t *keys;    /* own reference; NULL: none yet, or dropped as too stale */
    int64_t fetched_at; /* monotonic ms of the current set */
    int64_t expires_at; /* end of its freshness lifetime */
    bool fetching;
    int64_t last_kid_fetch; /* start of the last fetch an unknown kid caused (or any fetch) */
    bool kid_wanted;        /* a refetch for unknown kids is wanted */
    kid_entry_t pending[MG_KEYS_MAX_PENDING];
    size_t npending;
    kid_entry_t absent[MG_KEYS_MAX_ABSENT];
    size_t nabsent, absent_next;
    mg_keys_stats_t st;

    /* Main thread only: */
    struct event *timer;
    int64_t next_refresh; /* monotonic ms; 0: as soon as possible */
    int64_t backoff;      /* ms, 0 after a success */
    mg_discovery_t *disc;
    mg_http_client_req_t *req;
    bool fetch_for_kid;  /* the running fetch was started for unknown kids */
    bool logged_failure; /* one warning per failure streak, then debug */
} source_t;

struct mg_keys {
    struct event_base *base;
    struct mg_metrics *metrics; /* NULL-able, borrowed: fetch results and key counts */
    pthread_mutex_t lock;
    source_t *sources;
    struct event *kick; /* activated by workers: a refetch is wanted */
    int64_t started;    /* monotonic ms */
    int64_t grace;      /* ms */
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_fetch(source_t *s);

/* ---- kid lists (under km->lock) ---- */

static bool
set_has_kid(const mg_jwks_t *ks, const char *kid)
{
    if (ks == NULL || kid == NULL)
        return false;
    for (size_t i = 0; i < mg_jwks_count(ks); i++) {
        const char *k = mg_jwk_kid(mg_jwks_get(ks, i));
        if (k != NULL && strcmp(k, kid) == 0)
            return true;
    }
    return false;
}

static bool
list_has(const kid_entry_t *v, size_t n, const char *kid, int64_t now)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].kid != NULL && (v[i].until == 0 || v[i].until > now) &&
            strncmp(v[i].kid, kid, MG_KEYS_MAX_KID) == 0)
            return true;
    return false;
}

static char *
kid_copy(const char *kid)
{
    return strndup(kid, MG_KEYS_MAX_KID);
}

static void
absent_add(source_t *s, char *kid, int64_t until)
{
    kid_entry_t *e;

    if (s->nabsent < MG_KEYS_MAX_ABSENT) {
        e = &s->absent[s->nabsent++];
    } else {
        /* Full: overwrite the oldest (round robin); a forgotten kid costs at most
         * one more refetch, still bounded by the cooldown. */
        e = &s->absent[s->absent_next];
        s->absent_next = (s->absent_next + 1) % MG_KEYS_MAX_ABSENT;
        free(e->kid);
    }
    e->kid = kid;
    e->until = until;
}

static void
lists_clear(source_t *s)
{
    for (size_t i = 0; i < s->npending; i++)
        free(s->pending[i].kid);
    for (size_t i = 0; i < s->nabsent; i++)
        free(s->absent[i].kid);
    s->npending = s->nabsent = s->absent_next = 0;
}

/* ---- sources ---- */

static void
install_keys(source_t *s, mg_jwks_t *ks)
{
    mg_jwks_unref(s->keys);
    s->keys = ks != NULL ? mg_jwks_ref(ks) : NULL;
    for (size_t i = 0; i < s->nregs; i++)
        mg_jwt_issuer_set_keys(s->regs[i].is, s->keys);
    s->st.nkeys = ks != NULL ? mg_jwks_count(ks) : 0;
}

static void
arm_timer(source_t *s, int64_t at)
{
    int64_t d = at - now_ms();
    struct timeval tv;

    if (d < 0)
        d = 0;
    tv.tv_sec = (time_t)(d / 1000);
    tv.tv_usec = (suseconds_t)((d % 1000) * 1000);
    event_add(s->timer, &tv);
}

/* When the timer should fire next: the background refresh, or earlier for unknown kids. */
static void
reschedule(source_t *s)
{
    int64_t at = s->next_refresh;

    if (s->fetching)
        return; /* rescheduled when the fetch ends */
    pthread_mutex_lock(&s->km->lock);
    if (s->kid_wanted) {
        int64_t kid_at = s->last_kid_fetch + s->cooldown;
        if (s->last_kid_fetch == 0 || kid_at < at)
            at = s->last_kid_fetch == 0 ? 0 : kid_at;
    }
    pthread_mutex_unlock(&s->km->lock);
    arm_timer(s, at);
}

static void
source_free(source_t *s)
{
    if (s == NULL)
        return;
    mg_discovery_cancel(s->disc);
    mg_http_client_cancel(s->req);
    if (s->timer)
        event_free(s->timer);
    lists_clear(s);
    mg_jwks_unref(s->keys);
    free(s->regs);
    free(s->ident);
    free(s->url);
    free(s->jwks_uri);
    free(s->disc_uri);
    free(s->metadata_doc);
    free(s->introspection_endpoint);
    free(s->ca_file);
    free(s);
}

/* Main thread: drop sources no live generation uses any more. */
static void
gc(mg_keys_t *km)
{
    source_t **pp = &km->sources, *dead = NULL;

    pthread_mutex_lock(&km->lock);
    while (*pp != NULL) {
        source_t *s = *pp;
        if (s->nregs == 0) {
            *pp = s->next;
            s->next = dead;
            dead = s;
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&km->lock);
    while (dead != NULL) {
        source_t *s = dead;
        dead = s->next;
        mg_log_debug("issuer %s: no longer configured, its key set is dropped", s->url);
        source_free(s);
    }
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    source_t *s = arg;
    bool unused;

    pthread_mutex_lock(&s->km->lock);
    unused = s->nregs == 0;
    pthread_mutex_unlock(&s->km->lock);
    if (unused) {
        gc(s->km); /* frees s */
        return;
    }
    start_fetch(s);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_keys_t *km = arg;

    for (source_t *s = km->sources; s != NULL; s = s->next)
        reschedule(s);
}

/* ---- fetching (main thread) ---- */

static void
fetch_done(source_t *s)
{
    pthread_mutex_lock(&s->km->lock);
    s->fetching = false;
    pthread_mutex_unlock(&s->km->lock);
    reschedule(s);
}

typedef enum { FAIL_NET, FAIL_HTTP, FAIL_JWKS, FAIL_DISCOVERY } fail_kind_t;

static void
fetch_failed(source_t *s, fail_kind_t kind, const char *what)
{
    int64_t now = now_ms(), cap = s->min_refresh;
    bool dropped = false;

    if (cap > MG_KEYS_MAX_BACKOFF_MS)
        cap = MG_KEYS_MAX_BACKOFF_MS;
    if (cap < 1000)
        cap = 1000;
    s->backoff = s->backoff == 0 ? 1000 : s->backoff * 2;
    if (s->backoff > cap)
        s->backoff = cap;
    s->next_refresh = now + s->backoff;
    if (s->jwks_uri == NULL) {
        /* Discovered URIs are re-discovered after a failure: the AS may have moved them. */
        free(s->disc_uri);
        s->disc_uri = NULL;
    }
    pthread_mutex_lock(&s->km->lock);
    mg_metrics_jwks_fetch(s->km->metrics, s->url,
                          kind == FAIL_NET    ? "network"
                          : kind == FAIL_HTTP ? "http_status"
                          : kind == FAIL_JWKS ? "bad_jwks"
                                              : "discovery");
    switch (kind) {
    case FAIL_NET:
        s->st.fetch_net_error++;
        break;
    case FAIL_HTTP:
        s->st.fetch_http_error++;
        break;
    case FAIL_JWKS:
        s->st.fetch_bad_jwks++;
        break;
    case FAIL_DISCOVERY:
        s->st.fetch_discovery_error++;
        break;
    }
    /* Last good keys serve until jwks_max_stale past their expiry, then go: the
     * gateway answers 503 rather than trust keys it cannot confirm for so long. */
    if (s->keys != NULL && now > s->expires_at + s->max_stale) {
        install_keys(s, NULL);
        dropped = true;
    }
    /* While the fetch fails, a kid cannot be judged: the clients keep getting 503. */
    if (s->kid_wanted || s->npending > 0)
        s->kid_wanted = true;
    pthread_mutex_unlock(&s->km->lock);
    if (dropped)
        mg_log_error("issuer %s: key set dropped, stale for more than jwks_max_stale; "
                     "requests for its routes get 503 until a fetch succeeds",
                     s->url);
    if (!s->logged_failure) {
        mg_log_warn("issuer %s: cannot fetch keys: %s (retrying in %lld ms, keeping %s)", s->url,
                    what, (long long)s->backoff,
                    s->keys != NULL ? "the last good key set" : "no keys: 503 meanwhile");
        s->logged_failure = true;
    } else {
        mg_log_debug("issuer %s: cannot fetch keys: %s (retrying in %lld ms)", s->url, what,
                     (long long)s->backoff);
    }
    fetch_done(s);
}

static void
jwks_cb(mg_http_client_result_t *res, void *arg)
{
    source_t *s = arg;
    char err[256], what[512];
    mg_jwks_t *ks = NULL;
    int64_t now = now_ms(), life;
    bool first;
    size_t nnew = 0;

    s->req = NULL;
    if (res->error != MG_HTTPC_OK) {
        snprintf(what, sizeof(what), "GET %s: %s%s%s", s->jwks_uri ? s->jwks_uri : s->disc_uri,
                 mg_http_client_strerror(res->error), res->message[0] ? ": " : "", res->message);
        fetch_failed(s, FAIL_NET, what);
        return;
    }
    if (res->status != 200) {
        snprintf(what, sizeof(what), "GET %s: HTTP status %d", res->final_url, res->status);
        fetch_failed(s, FAIL_HTTP, what);
        return;
    }
    err[0] = '\0';
    ks = mg_jwks_parse(res->body, res->body_len, err, sizeof(err));
    if (ks == NULL || mg_jwks_count(ks) == 0) {
        snprintf(what, sizeof(what), "%s: %s%s%s", res->final_url,
                 ks == NULL ? "not a JSON Web Key Set" : "no usable signing key",
                 err[0] ? ": " : "", err);
        mg_jwks_unref(ks);
        fetch_failed(s, FAIL_JWKS, what);
        return;
    }
    if (err[0])
        mg_log_warn("issuer %s: %s: some keys ignored: %s", s->url, res->final_url, err);
    life = mg_cache_lifetime(res->cache_control, res->expires, time(NULL));
    life = life < 0 ? MG_KEYS_DEFAULT_LIFETIME_MS : life * 1000;
    if (life < s->min_refresh)
        life = s->min_refresh;
    if (life > s->max_refresh)
        life = s->max_refresh;

    pthread_mutex_lock(&s->km->lock);
    first = s->keys == NULL;
    for (size_t i = 0; i < mg_jwks_count(ks); i++)
        if (!set_has_kid(s->keys, mg_jwk_kid(mg_jwks_get(ks, i))))
            nnew++;
    install_keys(s, ks);
    s->fetched_at = now;
    s->expires_at = now + life;
    s->st.fetch_ok++;
    mg_metrics_jwks_fetch(s->km->metrics, s->url, "ok");
    mg_metrics_jwks_loaded(s->km->metrics, s->url, (int64_t)s->st.nkeys);
    /* Kids that were waiting for this fetch and are still missing are absent for one
     * cooldown: a flood of made-up kids costs one fetch per cooldown. */
    for (size_t i = 0; i < s->npending; i++) {
        if (set_has_kid(ks, s->pending[i].kid)) {
            free(s->pending[i].kid);
        } else {
            absent_add(s, s->pending[i].kid, now + s->cooldown);
        }
        s->pending[i].kid = NULL;
    }
    s->npending = 0;
    s->kid_wanted = false;
    pthread_mutex_unlock(&s->km->lock);

    /* Refresh ahead of expiry, so that a slow or failing fetch has time to recover. */
    s->next_refresh = now + life * 8 / 10;
    s->backoff = 0;
    if (first || nnew > 0 || s->logged_failure)
        mg_log_info("issuer %s: %zu key%s from %s (%zu new), fresh for %lld s", s->url,
                    mg_jwks_count(ks), mg_jwks_count(ks) == 1 ? "" : "s", res->final_url, nnew,
                    (long long)(life / 1000));
    else
        mg_log_debug("issuer %s: key set refreshed from %s, fresh for %lld s", s->url,
                     res->final_url, (long long)(life / 1000));
    s->logged_failure = false;
    mg_jwks_unref(ks);
    fetch_done(s);
}

static void
http_opts(const source_t *s, mg_http_client_opts_t *o)
{
    mg_http_client_opts_init(o);
    o->ca_file = s->ca_file;
    o->allow_http = s->allow_http;
}

static void
get_jwks(source_t *s)
{
    static const char *const headers[] = {"Accept: application/jwk-set+json, application/json",
                                          NULL};
    mg_http_client_opts_t o;

    http_opts(s, &o);
    s->req = mg_http_client_request(s->km->base, &o, "GET", s->jwks_uri ? s->jwks_uri : s->disc_uri,
                                    headers, NULL, 0, jwks_cb, s);
    if (s->req == NULL)
        fetch_failed(s, FAIL_NET, "out of memory");
}

static void
disc_cb(const mg_discovery_result_t *res, void *arg)
{
    source_t *s = arg;
    char what[600];

    s->disc = NULL;
    if (!res->ok) {
        snprintf(what, sizeof(what), "discovery: %s", res->error);
        fetch_failed(s, FAIL_DISCOVERY, what);
        return;
    }
    free(s->disc_uri);
    s->disc_uri = strdup(res->jwks_uri);
    {
        /* Workers read them (mg_keys_introspection_endpoint, mg_keys_metadata):
         * swapped under the lock. */
        char *ie = res->introspection_endpoint ? strdup(res->introspection_endpoint) : NULL;
        char *doc = res->document ? strndup(res->document, res->document_len) : NULL;
        pthread_mutex_lock(&s->km->lock);
        free(s->introspection_endpoint);
        s->introspection_endpoint = ie;
        if (doc != NULL) {
            free(s->metadata_doc);
            s->metadata_doc = doc;
            s->metadata_len = res->document_len;
        }
        pthread_mutex_unlock(&s->km->lock);
    }
    if (s->disc_uri == NULL) {
        fetch_failed(s, FAIL_DISCOVERY, "out of memory");
        return;
    }
    mg_log_debug("issuer %s: metadata from %s: jwks_uri %s", s->url,
                 res->metadata_url ? res->metadata_url : "?", s->disc_uri);
    get_jwks(s);
}

static void
start_fetch(source_t *s)
{
    mg_http_client_opts_t o;
    int64_t now = now_ms();

    if (s->fetching)
        return;
    pthread_mutex_lock(&s->km->lock);
    s->fetching = true;
    s->fetch_for_kid = s->kid_wanted;
    if (s->kid_wanted) {
        s->st.kid_refetches++;
        mg_metrics_kid_refetch(s->km->metrics, s->url);
    }
    /* Every fetch counts for the cooldown: it also answers for the kids asked before it. */
    s->last_kid_fetch = now;
    pthread_mutex_unlock(&s->km->lock);
    if (s->jwks_uri != NULL || s->disc_uri != NULL) {
        get_jwks(s);
        return;
    }
    http_opts(s, &o);
    s->disc = mg_discovery_fetch(s->km->base, &o, s->url, disc_cb, s);
    if (s->disc == NULL)
        fetch_failed(s, FAIL_DISCOVERY, "out of memory");
}

/* ---- API ---- */

mg_keys_t *
mg_keys_new(struct event_base *base)
{
    mg_keys_t *km = calloc(1, sizeof(*km));

    if (km == NULL)
        return NULL;
    km->base = base;
    pthread_mutex_init(&km->lock, NULL);
    km->started = now_ms();
    km->grace = 10 * 1000;
    km->kick = event_new(base, -1, 0, kick_cb, km);
    if (km->kick == NULL) {
        pthread_mutex_destroy(&km->lock);
        free(km);
        return NULL;
    }
    return km;
}

void
mg_keys_free(mg_keys_t *km)
{
    if (km == NULL)
        return;
    while (km->sources != NULL) {
        source_t *s = km->sources;
        km->sources = s->next;
        source_free(s);
    }
    event_free(km->kick);
    pthread_mutex_destroy(&km->lock);
    free(km);
}

void
mg_keys_set_grace(mg_keys_t *km, uint32_t ms)
{
    pthread_mutex_lock(&km->lock);
    km->grace = ms;
    pthread_mutex_unlock(&km->lock);
}

static char *
make_ident(const mg_conf_issuer_t *ci)
{
    char *id = NULL;

    if (asprintf(&id, "%s\n%s\n%s\n%d", ci->url, ci->jwks_uri ? ci->jwks_uri : "",
                 ci->ca_file ? ci->ca_file : "", ci->allow_http ? 1 : 0) < 0)
        return NULL;
    return id;
}

int
mg_keys_register(mg_keys_t *km, const mg_conf_issuer_t *ci, mg_jwt_issuer_t *is, const void *owner)
{
    char *ident = make_ident(ci);
    source_t *s = NULL;
    bool fresh = false;
    int rc = -1;

    if (ident == NULL)
        return -1;
    for (s = km->sources; s != NULL; s = s->next)
        if (strcmp(s->ident, ident) == 0)
            break;
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            goto done;
        s->km = km;
        s->ident = ident;
        ident = NULL;
        s->url = strdup(ci->url);
        s->jwks_uri = ci->jwks_uri ? strdup(ci->jwks_uri) : NULL;
        s->ca_file = ci->ca_file ? strdup(ci->ca_file) : NULL;
        s->allow_http = ci->allow_http;
        s->timer = evtimer_new(km->base, timer_cb, s);
        snprintf(s->st.issuer, sizeof(s->st.issuer), "%s", ci->url);
        s->st.age_ms = -1;
        if (s->url == NULL || (ci->jwks_uri && !s->jwks_uri) || (ci->ca_file && !s->ca_file) ||
            s->timer == NULL) {
            source_free(s);
            goto done;
        }
        fresh = true;
    }
    pthread_mutex_lock(&km->lock);
    if (s->nregs == s->capregs) {
        size_t cap = s->capregs ? s->capregs * 2 : 4;
        reg_t *v = realloc(s->regs, cap * sizeof(*v));
        if (v == NULL) {
            pthread_mutex_unlock(&km->lock);
            if (fresh)
                source_free(s);
            goto done;
        }
        s->regs = v;
        s->capregs = cap;
    }
    s->regs[s->nregs].is = is;
    s->regs[s->nregs].owner = owner;
    s->nregs++;
    s->min_refresh = ci->jwks_min_refresh;
    s->max_refresh = ci->jwks_max_refresh;
    s->cooldown = ci->kid_refetch_cooldown;
    s->max_stale = ci->jwks_max_stale;
    mg_jwt_issuer_set_keys(is, s->keys);
    if (fresh) {
        s->next = km->sources;
        km->sources = s;
    }
    pthread_mutex_unlock(&km->lock);
    if (fresh) {
        s->next_refresh = 0;
        arm_timer(s, 0); /* the first fetch, from the loop */
    }
    rc = 0;
done:
    free(ident);
    return rc;
}

void
mg_keys_unregister(mg_keys_t *km, const void *owner)
{
    if (km == NULL)
        return;
    pthread_mutex_lock(&km->lock);
    for (source_t *s = km->sources; s != NULL; s = s->next) {
        for (size_t i = 0; i < s->nregs;) {
            if (s->regs[i].owner == owner)
                s->regs[i] = s->regs[--s->nregs];
            else
                i++;
        }
    }
    pthread_mutex_unlock(&km->lock);
}

void
mg_keys_set_metrics(mg_keys_t *km, struct mg_metrics *m)
{
    km->metrics = m;
}

char *
mg_keys_metadata(mg_keys_t *km, const char *issuer_url, size_t *len)
{
    char *out = NULL;

    if (km == NULL || issuer_url == NULL)
        return NULL;
    pthread_mutex_lock(&km->lock);
    for (source_t *s = km->sources; s != NULL; s = s->next) {
        if (s->metadata_doc != NULL && strcmp(s->url, issuer_url) == 0) {
            out = malloc(s->metadata_len + 1);
            if (out != NULL) {
                memcpy(out, s->metadata_doc, s->metadata_len + 1);
                *len = s->metadata_len;
            }
            break;
        }
    }
    pthread_mutex_unlock(&km->lock);
    return out;
}

mg_keys_kid_t
mg_keys_kid_unknown(mg_keys_t *km, mg_jwt_issuer_t *is, const char *kid, int *retry_after)
{
    mg_keys_kid_t r = MG_KEYS_KID_ABSENT;
    int64_t now = now_ms();
    const char *k = kid != NULL ? kid : "";
    source_t *s;
    bool kick = false;

    *retry_after = 1;
    pthread_mutex_lock(&km->lock);
    for (s = km->sources; s != NULL; s = s->next) {
        size_t i;
        for (i = 0; i < s->nregs && s->regs[i].is != is; i++)
            ;
        if (i < s->nregs)
            break;
    }
    if (s == NULL)
        goto done; /* not managed (jwks_file): the file is all there is */
    s->st.kid_misses++;
    mg_metrics_kid_unknown(km->metrics, s->url);
    if (set_has_kid(s->keys, kid)) {
        r = MG_KEYS_KID_PRESENT;
        goto done;
    }
    if (list_has(s->absent, s->nabsent, k, now))
        goto done;
    if (!list_has(s->pending, s->npending, k, now) && s->npending < MG_KEYS_MAX_PENDING) {
        char *c = kid_copy(k);
        if (c != NULL) {
            s->pending[s->npending].kid = c;
            s->pending[s->npending].until = 0;
            s->npending++;
        }
    }
    r = MG_KEYS_KID_PENDING;
    if (!s->kid_wanted && !s->fetching)
        kick = true;
    s->kid_wanted = true;
    if (!s->fetching && s->last_kid_fetch != 0 && s->last_kid_fetch + s->cooldown > now) {
        int64_t wait = s->last_kid_fetch + s->cooldown - now;
        *retry_after = (int)((wait + 999) / 1000);
    }
done:
    pthread_mutex_unlock(&km->lock);
    if (kick)
        event_active(km->kick, EV_READ, 0); /* the main base is locked: any thread may */
    return r;
}

char *
mg_keys_introspection_endpoint(mg_keys_t *km, mg_jwt_issuer_t *is)
{
    char *r = NULL;

    if (km == NULL)
        return NULL;
    pthread_mutex_lock(&km->lock);
    for (source_t *s = km->sources; s != NULL && r == NULL; s = s->next)
        for (size_t i = 0; i < s->nregs; i++)
            if (s->regs[i].is == is) {
                if (s->introspection_endpoint != NULL)
                    r = strdup(s->introspection_endpoint);
                break;
            }
    pthread_mutex_unlock(&km->lock);
    return r;
}

bool
mg_keys_ready(mg_keys_t *km, char *why, size_t whylen)
{
    bool ready = true;

    pthread_mutex_lock(&km->lock);
    if (now_ms() - km->started < km->grace) {
        for (source_t *s = km->sources; s != NULL && ready; s = s->next) {
            if (s->nregs > 0 && s->keys == NULL) {
                ready = false;
                if (why != NULL)
                    snprintf(why, whylen, "no keys yet for issuer %s", s->url);
            }
        }
    }
    pthread_mutex_unlock(&km->lock);
    return ready;
}

size_t
mg_keys_stats(mg_keys_t *km, mg_keys_stats_t *out, size_t max)
{
    size_t n = 0;
    int64_t now = now_ms();

    pthread_mutex_lock(&km->lock);
    for (source_t *s = km->sources; s != NULL; s = s->next, n++) {
        if (n >= max)
            continue;
        out[n] = s->st;
        out[n].age_ms = s->keys != NULL ? now - s->fetched_at : -1;
        out[n].stale = s->keys != NULL && now > s->expires_at;
        out[n].registrations = s->nregs;
    }
    pthread_mutex_unlock(&km->lock);
    return n;
}
