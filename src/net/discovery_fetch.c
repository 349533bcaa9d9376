/* discovery_fetch.c -- drives metadata discovery over mg_http_client: try each URL, check the
 * document. */
#include "mcpgate/discovery.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mg_discovery {
    struct event_base *base;
    mg_http_client_opts_t opts;
    char *issuer;
    mg_discovery_cb cb;
    void *arg;
    char *urls[MG_DISCOVERY_MAX_URLS];
    size_t nurls, next;
    mg_http_client_req_t *http; /* the request in flight */
    struct event *done_ev;
    bool finished;
    /* the outcome */
    bool ok;
    char error[512];
    char tried[64]; /* statuses seen, for the "not found" message */
    mg_discovery_meta_t meta;
    const char *metadata_url;
    int64_t lifetime;
    char *document; /* the accepted metadata document (owned) */
    size_t document_len;
};

static void try_next(mg_discovery_t *d);

static void
disc_free(mg_discovery_t *d)
{
    if (d == NULL)
        return;
    mg_http_client_cancel(d->http);
    if (d->done_ev != NULL)
        event_free(d->done_ev);
    for (size_t i = 0; i < MG_DISCOVERY_MAX_URLS; i++)
        free(d->urls[i]);
    mg_discovery_meta_clear(&d->meta);
    free(d->document);
    free(d->issuer);
    free(d);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_discovery_t *d = arg;
    mg_discovery_result_t res;

    memset(&res, 0, sizeof(res));
    res.ok = d->ok;
    res.error = d->ok ? "" : d->error;
    res.jwks_uri = d->ok ? d->meta.jwks_uri : NULL;
    res.introspection_endpoint = d->ok ? d->meta.introspection_endpoint : NULL;
    res.metadata_url = d->metadata_url;
    res.lifetime = d->ok ? d->lifetime : -1;
    res.document = d->ok ? d->document : NULL;
    res.document_len = d->ok ? d->document_len : 0;
    d->cb(&res, d->arg);
    disc_free(d);
}

/* Record the outcome; the user callback runs from done_cb (never from
 * inside mg_discovery_fetch() or an HTTP client callback). */
static void finish(mg_discovery_t *d, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
finish(mg_discovery_t *d, bool ok, const char *fmt, ...)
{
    va_list ap;

    if (d->finished)
        return;
    d->finished = true;
    d->ok = ok;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof(d->error), fmt, ap);
    va_end(ap);
    event_active(d->done_ev, EV_TIMEOUT, 0);
}

static void
http_cb(mg_http_client_result_t *r, void *arg)
{
    mg_discovery_t *d = arg;
    const char *url = d->urls[d->next - 1];
    char err[384];

    d->http = NULL; /* freed by the client when this returns */
    if (r->error != MG_HTTPC_OK) {
        finish(d, false, "issuer %s: metadata fetch from %s failed: %s", d->issuer, url,
               r->message);
        return;
    }
    if (r->status >= 400 && r->status <= 499) {
        /* Not there: the next form (SPEC AS-01, "AS metadata" row). */
        size_t l = strlen(d->tried);
        snprintf(d->tried + l, sizeof(d->tried) - l, "%s%d", l ? ", " : "", r->status);
        try_next(d);
        return;
    }
    if (r->status != 200) {
        finish(d, false, "issuer %s: metadata fetch from %s answered %d", d->issuer, url,
               r->status);
        return;
    }
    if (mg_discovery_parse_metadata(d->issuer, r->body, r->body_len, d->opts.allow_http, &d->meta,
                                    err, sizeof(err)) != 0) {
        finish(d, false, "issuer %s refused: %s (from %s)", d->issuer, err, url);
        return;
    }
    d->metadata_url = url;
    d->lifetime = mg_cache_lifetime(r->cache_control, r->expires, time(NULL));
    d->document = malloc(r->body_len + 1);
    if (d->document != NULL) {
        memcpy(d->document, r->body, r->body_len);
        d->document[r->body_len] = '\0';
        d->document_len = r->body_len;
    }
    finish(d, true, "%s", "");
}

static void
try_next(mg_discovery_t *d)
{
    static const char *const hdrs[] = {"Accept: application/json", NULL};

    if (d->next >= d->nurls) {
        finish(d, false, "issuer %s: no metadata found (statuses %s)", d->issuer, d->tried);
        return;
    }
    d->http = mg_http_client_request(d->base, &d->opts, "GET", d->urls[d->next++], hdrs, NULL, 0,
                                     http_cb, d);
    if (d->http == NULL)
        finish(d, false, "issuer %s: out of memory", d->issuer);
}

mg_discovery_t *
mg_discovery_fetch(struct event_base *base, const mg_http_client_opts_t *opts, const char *issuer,
                   mg_discovery_cb cb, void *arg)
{
    mg_discovery_t *d = calloc(1, sizeof(*d));
    const char *why = NULL;

    if (d == NULL)
        return NULL;
    d->base = base;
    d->cb = cb;
    d->arg = arg;
    d->lifetime = -1;
    if (opts != NULL)
        d->opts = *opts;
    else
        mg_http_client_opts_init(&d->opts);
    if ((d->done_ev = event_new(base, -1, 0, done_cb, d)) == NULL)
        goto fail;
    if ((d->issuer = strdup(issuer ? issuer : "")) == NULL)
        goto fail;
    if (mg_discovery_urls(d->issuer, d->opts.allow_http, d->urls, &d->nurls, &why) != 0) {
        finish(d, false, "issuer %s: %s", d->issuer, why);
        return d;
    }
    try_next(d);
    return d;
fail:
    disc_free(d);
    return NULL;
}

void
mg_discovery_cancel(mg_discovery_t *d)
{
    disc_free(d);
}
