/* gen.c -- a configuration generation at runtime: the parsed conf plus its TLS contexts,
 * refcounted. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "core_int.h"
#include "mcpgate/identity.h"
#include "mcpgate/jwk.h"
#include "mcpgate/mcp.h"
#include "mcpgate/keys.h"
#include "mcpgate/log.h"
#include "mcpgate/server.h"

/* Every issuer's policy and key set, then each protected route's list. */
static int
build_issuers(mg_gen_t *gen, const mg_conf_t *conf)
{
    char err[256];

    gen->issuers = calloc(conf->nissuers ? conf->nissuers : 1, sizeof(*gen->issuers));
    gen->route_issuers = calloc(conf->nroutes ? conf->nroutes : 1, sizeof(*gen->route_issuers));
    if (gen->issuers == NULL || gen->route_issuers == NULL)
        return -1;
    for (size_t i = 0; i < conf->nissuers; i++) {
        const mg_conf_issuer_t *ci = &conf->issuers[i];
        const char *file = ci->where.file ? ci->where.file : conf->source;
        mg_jwt_issuer_t *is = mg_jwt_issuer_new(ci->url);
        mg_jwks_t *keys;

        if (is == NULL)
            return -1;
        gen->issuers[i] = is;
        if (ci->algorithms != NULL && mg_jwt_issuer_set_algs(is, ci->algorithms) != NULL) {
            mg_log_error("%s:%d: invalid algorithms for issuer %s", file, ci->where.line, ci->url);
            return -1;
        }
        mg_jwt_issuer_set_leeway(is, ci->leeway / 1000);
        mg_jwt_issuer_set_require_typ(is, ci->require_typ);
        mg_jwt_issuer_set_max_lifetime(is, ci->max_token_lifetime / 1000);
        mg_jwt_issuer_set_max_token_size(is, ci->max_token_size);
        if (ci->jwks_file == NULL)
            continue; /* jwks_uri or discovery: keys from the key manager (keys.c) */
        err[0] = '\0';
        keys = mg_jwks_load_file(ci->jwks_file, err, sizeof(err));
        if (keys == NULL) {
            mg_log_error("%s:%d: cannot load jwks_file %s: %s", file, ci->where.line,
                         ci->jwks_file, err[0] ? err : "not a JSON Web Key Set");
            return -1;
        }
        if (mg_jwks_count(keys) == 0)
            mg_log_warn("%s:%d: jwks_file %s has no usable signing key%s%s: requests to routes "
                        "trusting %s will get 503",
                        file, ci->where.line, ci->jwks_file, err[0] ? ": " : "", err, ci->url);
        else if (err[0])
            mg_log_warn("%s:%d: jwks_file %s: some keys ignored: %s", file, ci->where.line,
                        ci->jwks_file, err);
        mg_jwt_issuer_set_keys(is, keys);
        mg_jwks_unref(keys);
    }
    for (size_t i = 0; i < conf->nroutes; i++) {
        const mg_conf_route_t *r = &conf->routes[i];
        if (r->nissuers == 0)
            continue;
        gen->route_issuers[i] = calloc(r->nissuers, sizeof(mg_jwt_issuer_t *));
        if (gen->route_issuers[i] == NULL)
            return -1;
        for (size_t j = 0; j < r->nissuers; j++)
            gen->route_issuers[i][j] = gen->issuers[r->issuers[j]];
    }
    return 0;
}

/* The front door of every route: PRM documents, challenge texts, identity signers. */
static int
build_front(mg_gen_t *gen, const mg_conf_t *conf)
{
    gen->mcp = mg_mcp_new(conf);
    gen->signers = calloc(conf->nroutes ? conf->nroutes : 1, sizeof(*gen->signers));
    if (gen->mcp == NULL || gen->signers == NULL)
        return -1;
    for (size_t i = 0; i < conf->nroutes; i++) {
        const mg_conf_route_t *r = &conf->routes[i];
        const char *why = NULL;
        if (r->identity_signing_key == NULL)
            continue;
        gen->signers[i] = mg_identity_signer_load(r->identity_signing_key, &why);
        if (gen->signers[i] == NULL) {
            mg_log_error("%s:%d: identity_signing_key %s: %s",
                         r->where.file ? r->where.file : conf->source, r->where.line,
                         r->identity_signing_key, why ? why : "cannot load");
            return -1;
        }
    }
    return 0;
}

static void
free_front(mg_gen_t *gen, const mg_conf_t *conf)
{
    mg_mcp_free(gen->mcp);
    gen->mcp = NULL;
    for (size_t i = 0; gen->signers && i < conf->nroutes; i++)
        mg_identity_signer_free(gen->signers[i]);
    free(gen->signers);
    gen->signers = NULL;
}

static void
free_issuers(mg_gen_t *gen, const mg_conf_t *conf)
{
    free_front(gen, conf);
    for (size_t i = 0; gen->issuers && i < conf->nissuers; i++)
        mg_jwt_issuer_free(gen->issuers[i]);
    for (size_t i = 0; gen->route_issuers && i < conf->nroutes; i++)
        free(gen->route_issuers[i]);
    free(gen->issuers);
    free(gen->route_issuers);
}

mg_gen_t *
mg_gen_new(mg_conf_t *conf, unsigned long serial)
{
    mg_gen_t *gen = NULL;
    char where[512];

    {
        /* Allowed but unsafe settings are loud: at -t, at start and on every reload. */
        mg_conf_errors_t warns = {0};
        mg_conf_warnings(conf, &warns);
        for (size_t i = 0; i < warns.n; i++)
            mg_log_warn("%s", warns.msgs[i]);
        mg_conf_errors_clear(&warns);
    }
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
    if (build_issuers(gen, conf) != 0 || build_front(gen, conf) != 0)
        goto fail;
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
        free_issuers(gen, conf);
        free(gen);
    }
    return NULL;
}

int
mg_gen_attach_keys(mg_gen_t *gen, struct mg_keys *km)
{
    gen->keys = km;
    for (size_t i = 0; i < gen->conf->nissuers; i++) {
        const mg_conf_issuer_t *ci = &gen->conf->issuers[i];
        if (ci->jwks_file != NULL)
            continue;
        if (mg_keys_register(km, ci, gen->issuers[i], gen) != 0)
            return -1;
    }
    return 0;
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
    /* The manager may be installing a key set into our issuers right now: it lets go of
     * them (under its lock) before they are freed. */
    mg_keys_unregister(gen->keys, gen);
    free_issuers(gen, gen->conf);
    mg_log_debug("configuration generation %lu freed", gen->serial);
    mg_conf_free(gen->conf);
    free(gen);
}

int
mg_server_check(const mg_conf_t *conf)
{
    mg_gen_t *gen = mg_gen_new((mg_conf_t *)conf, 0);

    if (gen == NULL)
        return -1;
    gen->conf = NULL; /* the caller's: detach before the generation goes */
    for (size_t i = 0; i < conf->nlistens; i++)
        SSL_CTX_free(gen->listen_ctx[i]);
    for (size_t i = 0; i < conf->nroutes; i++)
        SSL_CTX_free(gen->route_ctx[i]);
    free(gen->listen_ctx);
    free(gen->route_ctx);
    free_issuers(gen, conf);
    free(gen);
    return 0;
}
