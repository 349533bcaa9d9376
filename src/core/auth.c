/* auth.c -- access tokens on protected routes: the Authorization header, token
 * verification through the worker's cache, and the challenge for a refusal. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core_int.h"
#include "mcpgate/metrics.h"
#include "mcpgate/keys.h"

/* RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool
is_b64token(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        char ch = s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/')
            i++;
        else
            break;
    }
    if (i == 0)
        return false;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

/* The worker's cache when <gen> is the worker's current generation, else NULL. */
static mg_token_cache_t *
cache_for(mg_worker_t *w, mg_gen_t *gen)
{
    if (gen != w->gen || gen->conf->token_cache_size == 0)
        return NULL;
    if (w->tcache_serial != gen->serial) {
        mg_token_cache_free(w->tcache);
        /* Entries live at most 5 minutes even for long-lived tokens, so that a
         * token is re-verified now and then against the current key set. */
        w->tcache = mg_token_cache_new(gen->conf->token_cache_size, 300);
        w->tcache_serial = w->tcache != NULL ? gen->serial : 0;
    }
    return w->tcache;
}

/* True when no issuer of the route has a usable key: the gateway cannot judge
 * any token, which is its problem, not the client's. */
static bool
no_keys(mg_jwt_issuer_t *const *issuers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mg_jwks_t *ks = mg_jwt_issuer_keys(issuers[i]);
        bool usable = ks != NULL && mg_jwks_count(ks) > 0;
        mg_jwks_unref(ks);
        if (usable)
            return false;
    }
    return true;
}

/* MG_JWT_KEY_NOT_FOUND for a well-formed token: ask the key manager whether the
 * issuer's key set may have changed (key rotation, SPEC T-12). Returns the new
 * verdict: MG_JWT_OK/other after a re-verification when the set already has the
 * kid, MG_JWT_KEY_NOT_FOUND when the kid is known to be absent, or sets
 * *pending (503 + Retry-After, never 401: SPEC C-14) while a refetch is due. */
static mg_jwt_reason_t
unknown_kid(mg_gen_t *gen, mg_jwt_issuer_t *const *issuers, size_t n, const char *tok,
            size_t toklen, const char *const *audiences, int64_t now, mg_jwt_claims_t **claims,
            bool *pending, int *retry_after)
{
    char *kid = NULL, *iss = NULL;
    mg_jwt_issuer_t *is = NULL;
    mg_jwt_reason_t r = MG_JWT_KEY_NOT_FOUND;

    *pending = false;
    if (gen->keys == NULL || mg_jwt_peek_header(tok, toklen, &kid, &iss) != MG_JWT_OK)
        goto done;
    for (size_t i = 0; i < n && is == NULL; i++)
        if (strcmp(mg_jwt_issuer_name(issuers[i]), iss) == 0)
            is = issuers[i];
    if (is == NULL)
        goto done;
    switch (mg_keys_kid_unknown(gen->keys, is, kid, retry_after)) {
    case MG_KEYS_KID_PRESENT:
        r = mg_jwt_verify(tok, toklen, issuers, n, audiences, 1, now, claims);
        break;
    case MG_KEYS_KID_PENDING:
        *pending = true;
        break;
    default:
        break;
    }
done:
    free(kid);
    free(iss);
    return r;
}

void
mg_auth_check(mg_worker_t *w, mg_gen_t *gen, size_t route_idx, const mg_http_request_head_t *req,
              int64_t now, mg_auth_result_t *out)
{
    const mg_conf_route_t *route = &gen->conf->routes[route_idx];
    mg_jwt_issuer_t *const *issuers = gen->route_issuers[route_idx];
    const char *audiences[1] = {route->resource};
    const mg_http_header_t *h;
    const char *tok;
    size_t toklen;
    mg_token_cache_t *cache;
    mg_jwt_reason_t reason;

    memset(out, 0, sizeof(*out));
    h = mg_http_find_header(req->headers, req->nheaders, "authorization");
    if (h == NULL) {
        out->outcome = MG_AUTH_NO_TOKEN;
        out->description = "no access token";
        return;
    }
    /* The parser already refused a second Authorization header. The scheme is
     * case-insensitive (RFC 9110 section 11.1), then one or more spaces. */
    if (h->value_len < 7 || strncasecmp(h->value, "bearer", 6) != 0 || h->value[6] != ' ') {
        out->outcome = MG_AUTH_BAD_REQUEST;
        out->description = "the Authorization header must be: Bearer <access token>";
        return;
    }
    tok = h->value + 7;
    toklen = h->value_len - 7;
    while (toklen > 0 && *tok == ' ') {
        tok++;
        toklen--;
    }
    if (!is_b64token(tok, toklen)) {
        out->outcome = MG_AUTH_BAD_REQUEST;
        out->description = "malformed bearer token";
        return;
    }
    if (no_keys(issuers, route->nissuers)) {
        out->outcome = MG_AUTH_UNAVAILABLE;
        out->description = "the gateway has no keys to verify access tokens";
        return;
    }
    cache = cache_for(w, gen);
    if (cache != NULL) {
        const mg_jwt_claims_t *cl = NULL;
        mg_token_cache_stats_t before, after;
        mg_token_cache_stats(cache, &before);
        reason = mg_token_cache_verify(cache, tok, toklen, issuers, route->nissuers, audiences, 1,
                                       now, &cl);
        mg_token_cache_stats(cache, &after);
        if (w->metrics != NULL)
            mg_metric_inc(after.hits > before.hits ? w->metrics->token_cache_hits
                                                   : w->metrics->token_cache_misses);
        if (reason == MG_JWT_OK) {
            out->claims = mg_jwt_claims_dup(cl);
            if (out->claims == NULL)
                reason = MG_JWT_INTERNAL;
        }
    } else {
        reason = mg_jwt_verify(tok, toklen, issuers, route->nissuers, audiences, 1, now,
                               &out->claims);
    }
    if (reason == MG_JWT_KEY_NOT_FOUND) {
        bool pending = false;
        reason = unknown_kid(gen, issuers, route->nissuers, tok, toklen, audiences, now,
                             &out->claims, &pending, &out->retry_after);
        if (pending) {
            out->outcome = MG_AUTH_UNAVAILABLE;
            out->reason = MG_JWT_KEY_NOT_FOUND;
            out->description = "the key that signed this token is being fetched; retry shortly";
            return;
        }
    }
    out->reason = reason;
    if (reason == MG_JWT_OK) {
        out->outcome = MG_AUTH_OK;
        return;
    }
    mg_jwt_claims_free(out->claims);
    out->claims = NULL;
    out->outcome = reason == MG_JWT_INTERNAL ? MG_AUTH_UNAVAILABLE : MG_AUTH_INVALID;
    out->description = mg_jwt_reason_description(reason);
}

const char *
mg_auth_challenge(const mg_auth_result_t *r, char **to_free)
{
    *to_free = NULL;
    switch (r->outcome) {
    case MG_AUTH_NO_TOKEN:
        /* No error code when the request had no credentials (RFC 6750 section 3.1). */
        return "WWW-Authenticate: Bearer\r\n";
    case MG_AUTH_BAD_REQUEST:
        return "WWW-Authenticate: Bearer error=\"invalid_request\"\r\n";
    case MG_AUTH_INVALID:
        /* The description is a static text without '"' or '\' (checked by the
         * jose unit tests' description table). */
        if (asprintf(to_free,
                     "WWW-Authenticate: Bearer error=\"invalid_token\", "
                     "error_description=\"%s\"\r\n",
                     r->description) < 0) {
            *to_free = NULL;
            return "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";
        }
        return *to_free;
    case MG_AUTH_UNAVAILABLE:
        if (r->retry_after > 0 && asprintf(to_free, "Retry-After: %d\r\n", r->retry_after) > 0)
            return *to_free;
        *to_free = NULL;
        return "Retry-After: 5\r\n";
    default:
        return NULL;
    }
}
