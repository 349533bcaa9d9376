/* gen.c -- a configuration generation at runtime: the parsed conf plus its TLS contexts,
 * refcounted. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "core_int.h"
#include "mcpgate/log.h"

mg_gen_t *
mg_gen_new(mg_conf_t *conf, unsigned long serial)
{
    mg_gen_t *gen = NULL;
    char where[512];

    gen = calloc(1, sizeof(*gen));
    if (gen == NULL)
        goto fail;
    atomic_init(&gen->refs, 1);
    gen->serial = serial;
    gen->listen_ctx = calloc(conf->nlistens ? conf->nlistens : 1, sizeof(SSL_CTX *));
    gen->route_ctx = calloc(conf->nroutes ? conf->nroutes : 1, sizeof(SSL_CTX *));
    if (gen->listen_ctx == NULL || gen->route_ctx == NULL)
        goto fail;
    for (size_t i = 0; i < conf->nlistens; i++) {
        const mg_conf_listen_t *l = &conf->listens[i];
        if (l->tls_certificate == NULL)
            continue;
        snprintf(where, sizeof(where), "%s:%d", l->where.file ? l->where.file : conf->source,
                 l->where.line);
        gen->listen_ctx[i] = mg_tls_server_ctx(l->tls_certificate, l->tls_certificate_key, where);
        if (gen->listen_ctx[i] == NULL)
            goto fail;
    }
    for (size_t i = 0; i < conf->nroutes; i++) {
        const mg_conf_route_t *r = &conf->routes[i];
        if (!r->upstream_tls)
            continue;
        snprintf(where, sizeof(where), "%s:%d", r->where.file ? r->where.file : conf->source,
                 r->where.line);
        gen->route_ctx[i] = mg_tls_client_ctx(r->upstream_ca_file, where);
        if (gen->route_ctx[i] == NULL)
            goto fail;
    }
    gen->conf = conf;
    return gen;
fail:
    if (gen != NULL) {
        gen->conf = NULL; /* still the caller's */
        for (size_t i = 0; gen->listen_ctx && i < conf->nlistens; i++)
            SSL_CTX_free(gen->listen_ctx[i]);
        for (size_t i = 0; gen->route_ctx && i < conf->nroutes; i++)
            SSL_CTX_free(gen->route_ctx[i]);
        free(gen->listen_ctx);
        free(gen->route_ctx);
        free(gen);
    }
    return NULL;
}

mg_gen_t *
mg_gen_ref(mg_gen_t *gen)
{
    atomic_fetch_add_explicit(&gen->refs, 1, memory_order_relaxed);
    return gen;
}

void
mg_gen_unref(mg_gen_t *gen)
{
    if (gen == NULL)
        return;
    /* acq_rel: every use of the generation by other threads happens-before the free. */
    if (atomic_fetch_sub_explicit(&gen->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < gen->conf->nlistens; i++)
        SSL_CTX_free(gen->listen_ctx[i]);
    for (size_t i = 0; i < gen->conf->nroutes; i++)
        SSL_CTX_free(gen->route_ctx[i]);
    free(gen->listen_ctx);
    free(gen->route_ctx);
    mg_log_debug("configuration generation %lu freed", gen->serial);
    mg_conf_free(gen->conf);
    free(gen);
}
