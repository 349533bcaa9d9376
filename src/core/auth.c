/* auth.c -- access tokens on protected routes: the Authorization header, token
 * verification through the worker's cache, and the challenge for a refusal. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core_int.h"
#include "introspect.h"
#include "mcpgate/log.h"
#include "mcpgate/metrics.h"
#include "mcpgate/keys.h"
#include "mcpgate/mcp.h"
#include "mcpgate/ratelimit.h"

/* Character classes of a bearer token, one table lookup per byte: a token is
 * ~1 KB and is scanned on every request, cache hit or not. TC_B64TOKEN: the
 * b64token characters (RFC 6750 section 2.1) but '='; TC_B64URL: the base64url
 * alphabet (RFC 4648 section 5). */
enum { TC_B64TOKEN = 1, TC_B64URL = 2 };

static const uint8_t tok_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 1, 1, /* 0x20 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x40 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 3, /* 0x50 */
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0x60 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 1, 0, /* 0x70 */
    /* 0x80-0xff: 0 */
};

/* RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool
is_b64token(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len && (tok_class[p[i]] & TC_B64TOKEN))
        i++;
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

/* <key> is one of <route>'s API keys: MG_AUTH_OK with its principal. False when not. */
static bool
api_key_ok(const mg_conf_route_t *route, const char *key, size_t len, mg_auth_result_t *out)
{
    const mg_conf_api_key_t *k = mg_mcp_api_key_find(route, key, len);

    if (k == NULL)
        return false;
    out->claims = mg_mcp_api_key_claims(k);
    out->api_key = true;
    if (out->claims == NULL) {
        out->outcome = MG_AUTH_UNAVAILABLE;
        out->reason = MG_JWT_INTERNAL;
        out->description = "out of memory";
        return true;
    }
    out->outcome = MG_AUTH_OK;
    return true;
}

static void
api_key_unknown(mg_auth_result_t *out)
{
    out->outcome = MG_AUTH_INVALID;
    out->reason = MG_JWT_MALFORMED;
    out->code = "api_key_unknown";
    out->description = "The API key is not valid for this resource.";
}

/* The route's api_key_header, when it has one and the request carries it: the key is
 * checked here and nothing else (a second credential in Authorization is refused, RFC
 * 6750 section 2: one method per request). False when the header is absent. */
static bool
header_key(const mg_conf_route_t *route, const mg_http_request_head_t *req,
           mg_auth_result_t *out)
{
    const mg_http_header_t *h = NULL;
    size_t n = 0, nl = route->api_key_header ? strlen(route->api_key_header) : 0;
    size_t s = 0, e;

    for (size_t i = 0; nl > 0 && i < req->nheaders; i++) {
        if (req->headers[i].name_len == nl &&
            strncasecmp(req->headers[i].name, route->api_key_header, nl) == 0) {
            h = &req->headers[i];
            n++;
        }
    }
    if (h == NULL)
        return false;
    e = h->value_len;
    while (s < e && (h->value[s] == ' ' || h->value[s] == '\t'))
        s++;
    while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
        e--;
    if (n > 1 || e == s || mg_http_find_header(req->headers, req->nheaders, "authorization")) {
        out->outcome = MG_AUTH_BAD_REQUEST;
        out->description = n > 1 || e == s ? "malformed API key header"
                                           : "more than one credential in the request";
        return true;
    }
    if (!api_key_ok(route, h->value + s, e - s, out))
        api_key_unknown(out);
    return true;
}

/* A compact JWS: three non-empty base64url segments (RFC 7515 section 7.1). */
static bool
is_compact_jws(const char *s, size_t len)
{
    size_t dots = 0, seg = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (seg == 0)
                return false;
            dots++;
            seg = 0;
        } else if (tok_class[ch] & TC_B64URL) {
            seg++;
        } else {
            return false;
        }
    }
    return dots == 2 && seg > 0;
}

/* Which of the route's issuers introspects this token (docs/keys.md): -1 for none (the token
 * goes the JWT way). An opaque token goes to the first issuer with introspection credentials
 * and validation auto|introspection; a JWS to an issuer with `validation introspection;` that
 * its unverified iss names (or the route's only issuer). */
static long
introspecting_issuer(mg_gen_t *gen, size_t route_idx, const char *tok, size_t toklen)
{
    const mg_conf_route_t *route = &gen->conf->routes[route_idx];
    const mg_conf_issuer_t *ci;
    char *kid = NULL, *iss = NULL;
    long pick = -1;
    bool any = false;

    /* No issuer of the route introspects (the usual case): nothing below can pick
     * one, so spare every request the token scan and the header and claims
     * decoding of mg_jwt_peek_header. */
    for (size_t k = 0; k < route->nissuers && !any; k++) {
        ci = &gen->conf->issuers[route->issuers[k]];
        any = ci->validation == MG_VALIDATION_INTROSPECTION ||
              (ci->introspection_client_id != NULL && ci->validation != MG_VALIDATION_JWT);
    }
    if (!any)
        return -1;
    if (!is_compact_jws(tok, toklen)) {
        for (size_t k = 0; k < route->nissuers && pick < 0; k++) {
            ci = &gen->conf->issuers[route->issuers[k]];
            if (ci->introspection_client_id != NULL && ci->validation != MG_VALIDATION_JWT)
                pick = (long)k;
        }
        return pick;
    }
    if (mg_jwt_peek_header(tok, toklen, &kid, &iss) == MG_JWT_OK) {
        for (size_t k = 0; k < route->nissuers && pick < 0; k++) {
            ci = &gen->conf->issuers[route->issuers[k]];
            if (ci->validation == MG_VALIDATION_INTROSPECTION && strcmp(ci->url, iss) == 0)
                pick = (long)k;
        }
    }
    if (pick < 0 && route->nissuers == 1 &&
        gen->conf->issuers[route->issuers[0]].validation == MG_VALIDATION_INTROSPECTION)
        pick = 0;
    free(kid);
    free(iss);
    return pick;
}

/* The token goes to an introspection endpoint: true with *out final or MG_AUTH_PENDING;
 * false when the token is to be verified as a JWT. */
static bool
introspect(mg_worker_t *w, mg_gen_t *gen, size_t route_idx, const char *tok, size_t toklen,
           int64_t now, mg_auth_result_t *out, mg_auth_cb cb, void *arg, mg_auth_wait_t **wait)
{
    const mg_conf_route_t *route = &gen->conf->routes[route_idx];
    long k = introspecting_issuer(gen, route_idx, tok, toklen);
    const mg_conf_issuer_t *ci;
    mg_introspect_req_t r;
    char *found = NULL;

    if (k < 0)
        return false;
    ci = &gen->conf->issuers[route->issuers[k]];
    memset(&r, 0, sizeof(r));
    r.serial = gen->serial;
    r.ci = ci;
    r.is = gen->route_issuers[route_idx][k];
    r.resource = route->resource;
    r.token = tok;
    r.token_len = toklen;
    r.now = now;
    r.endpoint = ci->introspection_endpoint;
    if (r.endpoint == NULL)
        r.endpoint = found = mg_keys_introspection_endpoint(gen->keys, r.is);
    if (r.endpoint == NULL) {
        /* Discovery has not succeeded (yet), or the metadata names no endpoint. */
        mg_log_debug("issuer %s: no introspection endpoint known", ci->url);
        out->outcome = MG_AUTH_UNAVAILABLE;
        out->reason = MG_JWT_INTERNAL;
        out->code = "no_introspection_endpoint";
        out->description = "the gateway cannot check this access token now";
        out->retry_after = MG_INTROSPECT_RETRY_AFTER;
        return true;
    }
    if (w->introspect == NULL)
        w->introspect = mg_introspect_new(w->base, w->dns, w->redis, w->metrics);
    if (w->introspect == NULL) {
        free(found);
        out->outcome = MG_AUTH_UNAVAILABLE;
        out->reason = MG_JWT_INTERNAL;
        out->description = "out of memory";
        return true;
    }
    if (!mg_introspect_check(w->introspect, &r, out, cb, arg, wait))
        out->outcome = MG_AUTH_PENDING;
    free(found);
    return true;
}

static void
auth_check(mg_worker_t *w, mg_gen_t *gen, size_t route_idx, const mg_http_request_head_t *req,
           int64_t now, mg_auth_result_t *out, mg_auth_cb cb, void *arg, mg_auth_wait_t **wait)
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
    if (header_key(route, req, out))
        return;
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
    /* API keys first (a digest and a few compares), then, on a route that also trusts
     * issuers, the same value as an access token. */
    if (api_key_ok(route, tok, toklen, out))
        return;
    if (route->nissuers == 0 || issuers == NULL) {
        api_key_unknown(out);
        return;
    }
    /* RFC 7662: opaque tokens, or every token of an issuer that says so (SPEC I-01). */
    if (wait != NULL && introspect(w, gen, route_idx, tok, toklen, now, out, cb, arg, wait))
        return;
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
        /* Shared with the cache entry, not copied: a hit allocates nothing, and
         * what the request path derives from the claims (their memo) is kept
         * for the token's next request. */
        if (reason == MG_JWT_OK)
            out->claims = mg_jwt_claims_ref(cl);
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
    /* Not even shaped like a JWS on a route with keys: call it what it most likely is. */
    if (reason == MG_JWT_MALFORMED && route->napi_keys > 0 && memchr(tok, '.', toklen) == NULL)
        api_key_unknown(out);
}

void
mg_auth_check(mg_worker_t *w, mg_gen_t *gen, size_t route_idx, const mg_http_request_head_t *req,
              int64_t now, mg_auth_result_t *out)
{
    auth_check(w, gen, route_idx, req, now, out, NULL, NULL, NULL);
}

void
mg_auth_check_async(mg_worker_t *w, mg_gen_t *gen, size_t route_idx,
                    const mg_http_request_head_t *req, int64_t now, mg_auth_result_t *out,
                    mg_auth_cb cb, void *arg, mg_auth_wait_t **wait)
{
    *wait = NULL;
    auth_check(w, gen, route_idx, req, now, out, cb, arg, wait);
}

void
mg_auth_cancel(mg_auth_wait_t *wait)
{
    mg_introspect_cancel(wait);
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

/* ---- rate-limit keys remembered with a cached token ---- */

/* A route's subject, client and route buckets for one token: their ids and
 * identities (digest, Redis key) follow from the verified claims and the rate_limit
 * lines alone, so they are worked out on the token's first request and kept in its
 * cache entry (the claims' memo) for the next ones. */
struct mg_rl_memo {
    unsigned long serial; /* the generation ... */
    size_t route_idx;     /* ... and the route the lines belong to */
    size_t nlines;        /* the route's rate_limit lines */
    struct {
        bool set;
        mg_rl_key_t key; /* id -> .id, resolved -> .res */
        char *id;
        mg_rl_resolved_t res;
    } line[];
};

static void
rl_memo_free(void *p)
{
    mg_rl_memo_t *m = p;

    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nlines; i++)
        free(m->line[i].id);
    free(m);
}

mg_rl_memo_t *
mg_auth_rl_memo(mg_jwt_claims_t *claims, const mg_gen_t *gen, size_t route_idx)
{
    size_t nlines = gen->conf->routes[route_idx].nrate_limits;
    mg_rl_memo_t *m = claims->memo;

    /* Claims nobody else holds end with the request: nothing to keep them for. */
    if (claims->refs == 0 || nlines == 0)
        return NULL;
    if (m != NULL && claims->memo_free != rl_memo_free)
        return NULL; /* another consumer's memo: leave it */
    if (m != NULL && m->serial == gen->serial && m->route_idx == route_idx)
        return m;
    /* First request with this token here, or one on another route or generation. */
    rl_memo_free(m);
    claims->memo = NULL;
    claims->memo_free = NULL;
    m = calloc(1, sizeof(*m) + nlines * sizeof(m->line[0]));
    if (m == NULL)
        return NULL;
    m->serial = gen->serial;
    m->route_idx = route_idx;
    m->nlines = nlines;
    claims->memo = m;
    claims->memo_free = rl_memo_free;
    return m;
}

const mg_rl_key_t *
mg_rl_memo_get(const mg_rl_memo_t *m, size_t line)
{
    return line < m->nlines && m->line[line].set ? &m->line[line].key : NULL;
}

const mg_rl_key_t *
mg_rl_memo_put(mg_rl_memo_t *m, size_t line, const char *scope, const mg_rl_key_t *key)
{
    char *id = NULL;

    if (line >= m->nlines || m->line[line].set || (id = strdup(key->id)) == NULL)
        goto fail;
    if (mg_rl_key_resolve(scope, key, &m->line[line].res) != 0)
        goto fail;
    m->line[line].id = id;
    m->line[line].key = *key;
    m->line[line].key.id = id;
    m->line[line].key.resolved = &m->line[line].res;
    m->line[line].set = true;
    return &m->line[line].key;
fail:
    free(id);
    return NULL;
}
