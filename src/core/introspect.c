/* introspect.c -- RFC 7662 token introspection on a worker's event loop: the request, the
 * checks on the response (the same as for a JWT, SPEC I-04), the per-worker result cache and,
 * with a redis block, the result cache shared in Redis (docs/keys.md). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "introspect.h"
#include "mcpgate/http_client.h"
#include "mcpgate/log.h"
#include "mcpgate/metrics.h"
#include "mcpgate/redis.h"

#define NBUCKETS 4096 /* power of two */
#define MAX_RESPONSE (64 * 1024)
#define CONNECT_MS 3000
#define TOTAL_MS 5000

/* A cached verdict: MG_JWT_OK with the claims the endpoint returned (issuer pointer NULL;
 * audience and time are checked again on every use), or a refusal. */
typedef struct entry {
    struct entry *hnext;         /* bucket chain */
    struct entry *lprev, *lnext; /* LRU, most recent first */
    uint8_t key[SHA256_DIGEST_LENGTH];
    int64_t until; /* Unix time */
    mg_jwt_reason_t verdict;
    const char *code;        /* static code for a refusal, or NULL */
    const char *description; /* static, for a refusal */
    mg_jwt_claims_t *claims;
} entry_t;

struct mg_introspect_wait {
    struct mg_introspect_wait *prev, *next; /* in job->waiters */
    struct job *job;
    mg_introspect_cb cb;
    void *arg;
    mg_jwt_issuer_t *is;
    const char *resource;
};

/* A Redis lookup in flight: the callback owns it; the job drops its pointer when it goes
 * away first (cancelled, freed), so a late answer finds j NULL. */
typedef struct lookup {
    struct job *j;
} lookup_t;

typedef struct job {
    struct job *prev, *next; /* in->jobs */
    mg_introspect_t *in;
    uint8_t key[SHA256_DIGEST_LENGTH];
    char *issuer; /* the issuer URL, for the iss check and the logs */
    int64_t ttl;  /* s */
    mg_http_client_req_t *req;
    lookup_t *lookup; /* the shared cache is being asked first (req not sent yet) */
    /* The request to send when the shared cache has nothing (wiped when freed: the body
     * holds the token, the header the client secret). */
    char *endpoint, *auth, *body;
    bool allow_http;
    SSL_CTX *ssl_ctx; /* in->ctxs', or NULL for http */
    mg_introspect_wait_t *waiters;
    bool completing; /* callbacks running: waiters are only unlinked */
} job_t;

typedef struct ctx_entry {
    struct ctx_entry *next;
    char *ca_file; /* NULL: the system store */
    SSL_CTX *ctx;
} ctx_entry_t;

struct mg_introspect {
    struct event_base *base;
    struct evdns_base *dns;
    unsigned long serial;
    entry_t *buckets[NBUCKETS];
    entry_t *lru_head, *lru_tail;
    size_t n;
    job_t *jobs;
    ctx_entry_t *ctxs;
    mg_redis_t *redis;          /* NULL-able, borrowed: the shared result cache */
    struct mg_metrics *metrics; /* NULL-able, borrowed */
    mg_introspect_stats_t st;
};

/* ---- cache ---- */

static size_t
bucket_of(const uint8_t *key)
{
    return ((size_t)key[0] | (size_t)key[1] << 8) & (NBUCKETS - 1);
}

static void
entry_unlink(mg_introspect_t *in, entry_t *e)
{
    entry_t **pp = &in->buckets[bucket_of(e->key)];

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp == e)
        *pp = e->hnext;
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        in->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        in->lru_tail = e->lprev;
    in->n--;
    mg_jwt_claims_free(e->claims);
    free(e);
}

static void
cache_flush(mg_introspect_t *in)
{
    while (in->lru_head != NULL)
        entry_unlink(in, in->lru_head);
}

static entry_t *
cache_find(mg_introspect_t *in, const uint8_t *key, int64_t now)
{
    entry_t *e = in->buckets[bucket_of(key)];

    while (e != NULL && memcmp(e->key, key, sizeof(e->key)) != 0)
        e = e->hnext;
    if (e == NULL)
        return NULL;
    if (e->until <= now) {
        entry_unlink(in, e);
        return NULL;
    }
    if (e != in->lru_head) { /* move to the front */
        e->lprev->lnext = e->lnext;
        if (e->lnext)
            e->lnext->lprev = e->lprev;
        else
            in->lru_tail = e->lprev;
        e->lprev = NULL;
        e->lnext = in->lru_head;
        in->lru_head->lprev = e;
        in->lru_head = e;
    }
    return e;
}

/* Takes <claims>. */
static void
cache_put(mg_introspect_t *in, const uint8_t *key, int64_t until, mg_jwt_reason_t verdict,
          const char *code, const char *description, mg_jwt_claims_t *claims)
{
    entry_t *e;

    for (e = in->buckets[bucket_of(key)]; e != NULL; e = e->hnext)
        if (memcmp(e->key, key, sizeof(e->key)) == 0)
            break;
    if (e != NULL)
        entry_unlink(in, e);
    while (in->n >= MG_INTROSPECT_MAX_ENTRIES && in->lru_tail != NULL)
        entry_unlink(in, in->lru_tail);
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        mg_jwt_claims_free(claims);
        return;
    }
    memcpy(e->key, key, sizeof(e->key));
    e->until = until;
    e->verdict = verdict;
    e->code = code;
    e->description = description;
    e->claims = claims;
    e->hnext = in->buckets[bucket_of(key)];
    in->buckets[bucket_of(key)] = e;
    e->lnext = in->lru_head;
    if (in->lru_head)
        in->lru_head->lprev = e;
    in->lru_head = e;
    if (in->lru_tail == NULL)
        in->lru_tail = e;
    in->n++;
}

/* SHA-256 of issuer URL, NUL, token: the same token at two issuers is two entries. False
 * when OpenSSL fails (out of memory). */
static bool
make_key(const char *issuer, const char *tok, size_t len, uint8_t *key)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int klen = 0;
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, issuer, strlen(issuer) + 1) == 1 &&
              EVP_DigestUpdate(md, tok, len) == 1 && EVP_DigestFinal_ex(md, key, &klen) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

/* ---- the verdict for one caller ---- */

static void
refuse(mg_auth_result_t *out, mg_jwt_reason_t reason, const char *code, const char *description)
{
    out->outcome = reason == MG_JWT_INTERNAL ? MG_AUTH_UNAVAILABLE : MG_AUTH_INVALID;
    out->reason = reason;
    out->code = code;
    out->description = description != NULL ? description : mg_jwt_reason_description(reason);
}

static void
unavailable(mg_auth_result_t *out, const char *description)
{
    memset(out, 0, sizeof(*out));
    out->outcome = MG_AUTH_UNAVAILABLE;
    out->reason = MG_JWT_INTERNAL;
    out->code = "introspection_failed";
    out->description = description;
    out->retry_after = MG_INTROSPECT_RETRY_AFTER;
}

/* A cached or fresh verdict applied to one route: audience and time are per use. */
static void
judge(mg_jwt_reason_t verdict, const char *code, const char *description,
      const mg_jwt_claims_t *claims, mg_jwt_issuer_t *is, const char *resource, int64_t now,
      mg_auth_result_t *out)
{
    const char *aud[1] = {resource};
    mg_jwt_reason_t r;

    memset(out, 0, sizeof(*out));
    if (verdict != MG_JWT_OK) {
        refuse(out, verdict, code, description);
        return;
    }
    /* RFC 8707 section 2 / SPEC I-04: the audience rule is a MUST, also without a JWT. */
    if (!mg_jwt_claims_aud_matches(claims, aud, 1)) {
        refuse(out, MG_JWT_AUD_MISMATCH, NULL, NULL);
        return;
    }
    r = mg_jwt_check_time(claims, mg_jwt_issuer_leeway(is), now);
    if (r != MG_JWT_OK) {
        refuse(out, r, NULL, NULL);
        return;
    }
    out->claims = mg_jwt_claims_dup(claims);
    if (out->claims == NULL) {
        unavailable(out, "out of memory");
        return;
    }
    out->claims->issuer = is;
    out->outcome = MG_AUTH_OK;
    out->reason = MG_JWT_OK;
}

/* ---- the response (RFC 7662 section 2.2) ---- */

static int
push_str(char ***v, size_t *n, const char *s, size_t len)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));

    if (nv == NULL)
        return -1;
    *v = nv;
    if ((nv[*n] = strndup(s, len)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

static mg_jwt_reason_t
opt_str(json_t *o, const char *name, char **out)
{
    json_t *v = json_object_get(o, name);

    if (v == NULL || json_is_null(v))
        return MG_JWT_OK;
    if (!json_is_string(v))
        return MG_JWT_INVALID_CLAIM;
    free(*out);
    *out = strdup(json_string_value(v));
    return *out != NULL ? MG_JWT_OK : MG_JWT_INTERNAL;
}

static mg_jwt_reason_t
opt_time(json_t *o, const char *name, int64_t *out, bool *has)
{
    json_t *v = json_object_get(o, name);

    *has = false;
    if (v == NULL || json_is_null(v))
        return MG_JWT_OK;
    if (json_is_integer(v))
        *out = (int64_t)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e15)
        *out = (int64_t)json_real_value(v); /* NumericDate may be fractional (RFC 7519 2) */
    else
        return MG_JWT_INVALID_CLAIM;
    if (*out < 0)
        return MG_JWT_INVALID_CLAIM;
    *has = true;
    return MG_JWT_OK;
}

/* The claims of an active token, checked like a JWT's (SPEC I-04) except the audience and
 * the time, which judge() checks per use. *code is set for refusals without a JWT reason. */
static mg_jwt_reason_t
parse_active(json_t *o, const char *issuer, mg_jwt_claims_t **out, const char **code,
             const char **description)
{
    mg_jwt_claims_t *c = calloc(1, sizeof(*c));
    mg_jwt_reason_t r = MG_JWT_INTERNAL;
    bool has_exp = false;
    json_t *v;
    size_t i;

    if (c == NULL)
        goto done;
    /* exp: required here as for a JWT; a token that never expires would be cached and trusted
     * for ever. */
    if ((r = opt_time(o, "exp", &c->exp, &has_exp)) != MG_JWT_OK)
        goto done;
    if (!has_exp) {
        r = MG_JWT_MISSING_CLAIM;
        goto done;
    }
    if ((r = opt_time(o, "nbf", &c->nbf, &c->has_nbf)) != MG_JWT_OK ||
        (r = opt_time(o, "iat", &c->iat, &c->has_iat)) != MG_JWT_OK)
        goto done;
    /* iss, when present, is this issuer exactly (RFC 7662 2.2, RFC 9068 4). */
    if ((r = opt_str(o, "iss", &c->iss)) != MG_JWT_OK)
        goto done;
    if (c->iss != NULL && strcmp(c->iss, issuer) != 0) {
        r = MG_JWT_ISS_MISMATCH;
        goto done;
    }
    if (c->iss == NULL && (c->iss = strdup(issuer)) == NULL) {
        r = MG_JWT_INTERNAL;
        goto done;
    }
    /* A refresh token is not an access token (SPEC I-04). */
    v = json_object_get(o, "token_type");
    if (v != NULL && json_is_string(v) &&
        (strcasecmp(json_string_value(v), "refresh_token") == 0 ||
         strcasecmp(json_string_value(v), "urn:ietf:params:oauth:token-type:refresh_token") == 0)) {
        r = MG_JWT_INVALID_CLAIM;
        *code = "refresh_token";
        *description = "A refresh token is not an access token.";
        goto done;
    }
    /* Sender-constrained tokens need a proof the gateway does not check (as for JWTs). */
    if (json_object_get(o, "cnf") != NULL) {
        r = MG_JWT_CNF_UNSUPPORTED;
        goto done;
    }
    /* aud: a string or an array of strings (RFC 7662 2.2, RFC 7519 4.1.3). */
    v = json_object_get(o, "aud");
    if (json_is_string(v)) {
        if (push_str(&c->aud, &c->n_aud, json_string_value(v), json_string_length(v)) != 0)
            goto oom;
    } else if (json_is_array(v)) {
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item)) {
                r = MG_JWT_INVALID_CLAIM;
                goto done;
            }
            if (push_str(&c->aud, &c->n_aud, json_string_value(item), json_string_length(item)) !=
                0)
                goto oom;
        }
    } else if (v != NULL && !json_is_null(v)) {
        r = MG_JWT_INVALID_CLAIM;
        goto done;
    }
    if ((r = opt_str(o, "client_id", &c->client_id)) != MG_JWT_OK ||
        (r = opt_str(o, "sub", &c->sub)) != MG_JWT_OK ||
        (r = opt_str(o, "jti", &c->jti)) != MG_JWT_OK)
        goto done;
    /* sub: a token without a resource owner (client credentials) is the client's own; RFC 9068
     * section 2.2 names the client there, and several servers (oidc-provider) leave sub out
     * of the introspection response for such tokens. */
    if (c->sub == NULL) {
        if (c->client_id == NULL) {
            r = MG_JWT_MISSING_CLAIM;
            goto done;
        }
        if ((c->sub = strdup(c->client_id)) == NULL)
            goto oom;
    }
    /* scope: space-delimited (RFC 7662 2.2). */
    v = json_object_get(o, "scope");
    if (v != NULL && !json_is_null(v)) {
        const char *s;
        if (!json_is_string(v)) {
            r = MG_JWT_INVALID_CLAIM;
            goto done;
        }
        s = json_string_value(v);
        while (*s) {
            size_t n;
            while (*s == ' ')
                s++;
            n = strcspn(s, " ");
            if (n > 0 && push_str(&c->scopes, &c->n_scopes, s, n) != 0)
                goto oom;
            s += n;
        }
    }
    c->alg = 0;
    r = MG_JWT_OK;
    goto done;
oom:
    r = MG_JWT_INTERNAL;
done:
    if (r != MG_JWT_OK) {
        mg_jwt_claims_free(c);
        c = NULL;
    }
    *out = c;
    return r;
}

/* ---- requests ---- */

static void wipe_free(char *s);

static void
job_free(job_t *j)
{
    if (j->lookup != NULL)
        j->lookup->j = NULL;
    free(j->issuer);
    free(j->endpoint);
    wipe_free(j->auth);
    wipe_free(j->body);
    free(j);
}

static void
job_unlink(job_t *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        j->in->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

/* The verdict in an introspection response (or in a result from the shared cache, which has
 * the same form): *failed is set when there is none (the endpoint misbehaved). */
static void
read_response(json_t *root, const char *issuer, mg_jwt_reason_t *verdict, const char **code,
              const char **description, mg_jwt_claims_t **claims, const char **failed)
{
    json_t *active;

    *verdict = MG_JWT_INTERNAL;
    if (root == NULL || !json_is_object(root)) {
        *failed = "the response is not a JSON object";
    } else if (!json_is_boolean(active = json_object_get(root, "active"))) {
        *failed = "the response has no boolean \"active\"";
    } else if (!json_is_true(active)) {
        *verdict = MG_JWT_INVALID_CLAIM;
        *code = "inactive";
        *description = "The access token is not active.";
    } else {
        *verdict = parse_active(root, issuer, claims, code, description);
        if (*verdict == MG_JWT_INTERNAL)
            *failed = "out of memory";
    }
}

/* The shared-cache form of a result: what parse_active() reads back, without the token.
 * NULL when it is not worth sharing (refusals other than inactive stay local). */
static char *
store_value(mg_jwt_reason_t verdict, const char *code, const mg_jwt_claims_t *c)
{
    json_t *o = json_object(), *aud = NULL;
    char *out = NULL, *scope = NULL;
    size_t slen = 0;
    bool ok = o != NULL;

    if (verdict != MG_JWT_OK) {
        if (ok && code != NULL && strcmp(code, "inactive") == 0 &&
            json_object_set_new(o, "active", json_false()) == 0)
            out = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return out;
    }
    ok = ok && json_object_set_new(o, "active", json_true()) == 0 &&
         json_object_set_new(o, "exp", json_integer(c->exp)) == 0;
    if (ok && c->has_nbf)
        ok = json_object_set_new(o, "nbf", json_integer(c->nbf)) == 0;
    if (ok && c->has_iat)
        ok = json_object_set_new(o, "iat", json_integer(c->iat)) == 0;
    if (ok && c->iss)
        ok = json_object_set_new(o, "iss", json_string(c->iss)) == 0;
    if (ok && c->sub)
        ok = json_object_set_new(o, "sub", json_string(c->sub)) == 0;
    if (ok && c->client_id)
        ok = json_object_set_new(o, "client_id", json_string(c->client_id)) == 0;
    if (ok && c->jti)
        ok = json_object_set_new(o, "jti", json_string(c->jti)) == 0;
    if (ok && (aud = json_array()) == NULL)
        ok = false;
    for (size_t i = 0; ok && i < c->n_aud; i++)
        ok = json_array_append_new(aud, json_string(c->aud[i])) == 0;
    if (ok)
        ok = json_object_set_new(o, "aud", aud) == 0;
    else
        json_decref(aud);
    for (size_t i = 0; i < c->n_scopes; i++)
        slen += strlen(c->scopes[i]) + 1;
    if (ok && c->n_scopes > 0) {
        scope = calloc(1, slen + 1);
        ok = scope != NULL;
        for (size_t i = 0; ok && i < c->n_scopes; i++) {
            if (i > 0)
                strcat(scope, " ");
            strcat(scope, c->scopes[i]);
        }
        ok = ok && json_object_set_new(o, "scope", json_string(scope)) == 0;
    }
    if (ok)
        out = json_dumps(o, JSON_COMPACT);
    free(scope);
    json_decref(o);
    return out;
}

/* mg:introspect:<64 hex of the cache key>: the token itself never reaches Redis. */
static void
store_key(const uint8_t *key, char out[sizeof("mg:introspect:") + 2 * SHA256_DIGEST_LENGTH])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out + strlen("mg:introspect:");

    memcpy(out, "mg:introspect:", strlen("mg:introspect:"));
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        *p++ = hex[key[i] >> 4];
        *p++ = hex[key[i] & 15];
    }
    *p = '\0';
}

static void
store_set_cb(void *arg, mg_redis_err_t err, const struct redisReply *reply)
{
    (void)arg;
    (void)reply;
    if (err != MG_REDIS_OK && err != MG_REDIS_E_CLOSED)
        mg_log_debug("introspection cache: SET failed: %s", mg_redis_strerror(err));
}

/* Share a fresh result for <ttl_ms> (fire and forget: the local cache has it anyway). */
static void
store_put(mg_introspect_t *in, const uint8_t *key, int64_t ttl_ms, mg_jwt_reason_t verdict,
          const char *code, const mg_jwt_claims_t *claims)
{
    char k[sizeof("mg:introspect:") + 2 * SHA256_DIGEST_LENGTH], ms[24];
    char *v;
    const char *argv[5];

    if (in->redis == NULL || ttl_ms <= 0 || mg_redis_state(in->redis) != MG_REDIS_READY)
        return;
    if ((v = store_value(verdict, code, claims)) == NULL)
        return;
    store_key(key, k);
    snprintf(ms, sizeof(ms), "%lld", (long long)ttl_ms);
    argv[0] = "SET";
    argv[1] = k;
    argv[2] = v;
    argv[3] = "PX";
    argv[4] = ms;
    mg_redis_command_argv(in->redis, 5, argv, NULL, store_set_cb, NULL);
    free(v);
}

/* The job has a verdict (or failed): cache it, answer every waiter, free the job. */
static void
job_finish(job_t *j, const char *failed, mg_jwt_reason_t verdict, const char *code,
           const char *description, mg_jwt_claims_t *claims, bool from_store)
{
    mg_introspect_t *in = j->in;
    int64_t now = (int64_t)time(NULL);

    job_unlink(j);
    j->completing = true;
    if (failed == NULL && verdict == MG_JWT_OK) {
        int64_t until = now + j->ttl;
        if (claims->exp < until)
            until = claims->exp;
        if (!from_store)
            store_put(in, j->key, (until - now) * 1000, verdict, code, claims);
        cache_put(in, j->key, until, MG_JWT_OK, NULL, NULL, mg_jwt_claims_dup(claims));
    } else if (failed == NULL) {
        if (!from_store)
            store_put(in, j->key, MG_INTROSPECT_NEGATIVE_TTL * 1000, verdict, code, NULL);
        cache_put(in, j->key, now + MG_INTROSPECT_NEGATIVE_TTL, verdict, code, description, NULL);
    }
    /* Callbacks may cancel other waiters of this job (only unlinked while completing). */
    while (j->waiters != NULL) {
        mg_introspect_wait_t *w = j->waiters;
        mg_auth_result_t out;
        j->waiters = w->next;
        if (j->waiters)
            j->waiters->prev = NULL;
        if (failed != NULL)
            unavailable(&out, "the authorization server could not check the access token");
        else
            judge(verdict, code, description, claims, w->is, w->resource, now, &out);
        w->cb(w->arg, &out);
        mg_jwt_claims_free(out.claims); /* NULL when the callee took them */
        free(w);
    }
    mg_jwt_claims_free(claims);
    job_free(j);
}

static void
response_cb(mg_http_client_result_t *res, void *arg)
{
    job_t *j = arg;
    mg_introspect_t *in = j->in;
    json_t *root = NULL;
    mg_jwt_reason_t verdict = MG_JWT_INTERNAL;
    const char *code = NULL, *description = NULL, *failed = NULL;
    mg_jwt_claims_t *claims = NULL;
    json_error_t jerr;
    char why[256];

    j->req = NULL;
    if (res->error != MG_HTTPC_OK) {
        snprintf(why, sizeof(why), "%s",
                 res->message && *res->message ? res->message
                                               : mg_http_client_strerror(res->error));
        failed = why;
    } else if (res->status != 200) {
        /* 401/403: the gateway's own client credentials were refused (RFC 7662 2.3). */
        snprintf(why, sizeof(why), "HTTP status %d%s", res->status,
                 res->status == 401 || res->status == 403
                     ? " (check introspection_client_id and introspection_client_secret)"
                     : "");
        failed = why;
    } else {
        root = json_loadb(res->body ? res->body : "", res->body_len, JSON_REJECT_DUPLICATES, &jerr);
        read_response(root, j->issuer, &verdict, &code, &description, &claims, &failed);
    }
    json_decref(root);
    in->st.calls++;
    if (failed != NULL) {
        in->st.failures++;
        mg_log_error("issuer %s: token introspection failed: %s", j->issuer, failed);
    }
    mg_metrics_introspection(in->metrics, j->issuer,
                             failed != NULL                                  ? "error"
                             : verdict == MG_JWT_OK                          ? "active"
                             : code != NULL && strcmp(code, "inactive") == 0 ? "inactive"
                                                                             : "refused");
    job_finish(j, failed, verdict, code, description, claims, false);
}

static SSL_CTX *
ssl_ctx_for(mg_introspect_t *in, const char *ca_file)
{
    ctx_entry_t *e;
    const char *why = NULL;

    for (e = in->ctxs; e != NULL; e = e->next)
        if ((e->ca_file == NULL) == (ca_file == NULL) &&
            (ca_file == NULL || strcmp(e->ca_file, ca_file) == 0))
            return e->ctx;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->ctx = mg_http_client_ssl_ctx_new(ca_file, &why);
    if (e->ctx == NULL || (ca_file != NULL && (e->ca_file = strdup(ca_file)) == NULL)) {
        if (e->ctx == NULL)
            mg_log_warn("introspection: TLS setup for %s failed: %s",
                        ca_file ? ca_file : "the system store", why ? why : "?");
        if (e->ctx)
            SSL_CTX_free(e->ctx);
        free(e);
        return NULL;
    }
    e->next = in->ctxs;
    in->ctxs = e;
    return e->ctx;
}

/* application/x-www-form-urlencoded (RFC 6749 appendix B): everything but ALPHA, DIGIT, "-",
 * "." and "_" is percent-encoded. */
static char *
form_encode(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(len * 3 + 1), *p = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = '\0';
    return out;
}

static void
wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* "Authorization: Basic base64(urlenc(id) ":" urlenc(secret))" (RFC 6749 2.3.1). */
static char *
basic_auth(const char *id, const char *secret)
{
    char *eid = form_encode(id, strlen(id)), *esec = form_encode(secret, strlen(secret));
    char *pair = NULL, *line = NULL;
    size_t plen;
    int n;

    if (eid == NULL || esec == NULL)
        goto done;
    plen = strlen(eid) + 1 + strlen(esec);
    pair = malloc(plen + 1);
    if (pair == NULL)
        goto done;
    snprintf(pair, plen + 1, "%s:%s", eid, esec);
    line = malloc(sizeof("Authorization: Basic ") + 4 * ((plen + 2) / 3) + 1);
    if (line == NULL)
        goto done;
    strcpy(line, "Authorization: Basic ");
    n = EVP_EncodeBlock((unsigned char *)line + strlen(line), (const unsigned char *)pair,
                        (int)plen);
    if (n < 0) {
        free(line);
        line = NULL;
    }
done:
    wipe_free(eid);
    wipe_free(esec);
    wipe_free(pair);
    return line;
}

/* Send the prepared request. 0, or -1 when out of memory. */
static int
job_send(job_t *j)
{
    const char *headers[4];
    mg_http_client_opts_t o;

    headers[0] = j->auth;
    headers[1] = "Content-Type: application/x-www-form-urlencoded";
    headers[2] = "Accept: application/json";
    headers[3] = NULL;
    mg_http_client_opts_init(&o);
    o.dns = j->in->dns;
    o.allow_http = j->allow_http;
    o.connect_timeout_ms = CONNECT_MS;
    o.total_timeout_ms = TOTAL_MS;
    o.max_response = MAX_RESPONSE;
    o.max_redirects = 0; /* a POST with credentials is not replayed elsewhere */
    o.ssl_ctx = j->ssl_ctx;
    j->req = mg_http_client_request(j->in->base, &o, "POST", j->endpoint, headers, j->body,
                                    strlen(j->body), response_cb, j);
    /* The secret and the token are not needed any more. */
    wipe_free(j->auth);
    wipe_free(j->body);
    j->auth = j->body = NULL;
    return j->req != NULL ? 0 : -1;
}

static void
lookup_cb(void *arg, mg_redis_err_t err, const struct redisReply *reply)
{
    lookup_t *lk = arg;
    job_t *j = lk->j;
    mg_introspect_t *in;

    free(lk);
    if (j == NULL)
        return; /* nobody waits any more */
    j->lookup = NULL;
    in = j->in;
    if (err == MG_REDIS_OK && reply->type == REDIS_REPLY_STRING) {
        json_error_t jerr;
        json_t *root = json_loadb(reply->str, reply->len, JSON_REJECT_DUPLICATES, &jerr);
        mg_jwt_reason_t verdict = MG_JWT_INTERNAL;
        const char *code = NULL, *description = NULL, *failed = NULL;
        mg_jwt_claims_t *claims = NULL;

        read_response(root, j->issuer, &verdict, &code, &description, &claims, &failed);
        json_decref(root);
        if (failed == NULL) {
            in->st.store_hits++;
            mg_metrics_introspection_cache(in->metrics, "redis", 1);
            job_finish(j, NULL, verdict, code, description, claims, true);
            return;
        }
        mg_log_debug("issuer %s: unusable introspection result in Redis: %s", j->issuer, failed);
    } else if (err != MG_REDIS_OK && err != MG_REDIS_E_CLOSED) {
        mg_log_debug("issuer %s: introspection cache lookup failed: %s", j->issuer,
                     mg_redis_strerror(err));
    }
    /* Nothing shared (or Redis failed: the cache is an optimisation, on_failure does not
     * apply): ask the authorization server. */
    in->st.store_misses++;
    mg_metrics_introspection_cache(in->metrics, "redis", 0);
    if (job_send(j) != 0)
        job_finish(j, "out of memory", MG_JWT_INTERNAL, NULL, NULL, NULL, true);
}

/* Ask the shared cache first (true: lookup_cb goes on), when there is a ready one. */
static bool
job_lookup(job_t *j)
{
    mg_introspect_t *in = j->in;
    char k[sizeof("mg:introspect:") + 2 * SHA256_DIGEST_LENGTH];
    const char *argv[2];
    lookup_t *lk;

    if (in->redis == NULL || mg_redis_state(in->redis) != MG_REDIS_READY)
        return false;
    if ((lk = calloc(1, sizeof(*lk))) == NULL)
        return false;
    store_key(j->key, k);
    argv[0] = "GET";
    argv[1] = k;
    lk->j = j;
    if (mg_redis_command_argv(in->redis, 2, argv, NULL, lookup_cb, lk) != 0) {
        free(lk);
        return false;
    }
    j->lookup = lk;
    return true;
}

static job_t *
job_start(mg_introspect_t *in, const mg_introspect_req_t *r, const uint8_t *key)
{
    const mg_conf_issuer_t *ci = r->ci;
    job_t *j = calloc(1, sizeof(*j));
    char *etok = NULL;
    size_t blen;

    if (j == NULL || (j->issuer = strdup(ci->url)) == NULL ||
        (j->endpoint = strdup(r->endpoint)) == NULL)
        goto fail;
    j->in = in;
    memcpy(j->key, key, sizeof(j->key));
    j->ttl = ci->introspection_cache_ttl / 1000;
    if (j->ttl < 1)
        j->ttl = 1;
    j->allow_http = ci->allow_http;
    j->auth = basic_auth(ci->introspection_client_id, ci->introspection_client_secret);
    etok = form_encode(r->token, r->token_len);
    if (j->auth == NULL || etok == NULL)
        goto fail;
    blen = strlen(etok) + sizeof("token=&token_type_hint=access_token");
    if ((j->body = malloc(blen)) == NULL)
        goto fail;
    snprintf(j->body, blen, "token=%s&token_type_hint=access_token", etok);
    if (strncmp(r->endpoint, "https:", 6) == 0 &&
        (j->ssl_ctx = ssl_ctx_for(in, ci->ca_file)) == NULL)
        goto fail;
    if (!job_lookup(j) && job_send(j) != 0)
        goto fail;
    j->next = in->jobs;
    if (in->jobs)
        in->jobs->prev = j;
    in->jobs = j;
    wipe_free(etok);
    return j;
fail:
    wipe_free(etok);
    if (j != NULL)
        job_free(j);
    return NULL;
}

bool
mg_introspect_check(mg_introspect_t *in, const mg_introspect_req_t *r, mg_auth_result_t *out,
                    mg_introspect_cb cb, void *arg, mg_introspect_wait_t **wait)
{
    uint8_t key[SHA256_DIGEST_LENGTH];
    entry_t *e;
    job_t *j;
    mg_introspect_wait_t *w;

    *wait = NULL;
    memset(out, 0, sizeof(*out));
    if (r->token_len > r->ci->max_token_size) {
        refuse(out, MG_JWT_TOO_LARGE, NULL, NULL);
        return true;
    }
    if (r->serial > in->serial) {
        /* A new configuration may have changed credentials or the ttl: start afresh. */
        cache_flush(in);
        in->serial = r->serial;
    }
    if (!make_key(r->ci->url, r->token, r->token_len, key)) {
        unavailable(out, "out of memory");
        return true;
    }
    e = cache_find(in, key, r->now);
    mg_metrics_introspection_cache(in->metrics, "memory", e != NULL);
    if (e != NULL) {
        in->st.hits++;
        judge(e->verdict, e->code, e->description, e->claims, r->is, r->resource, r->now, out);
        return true;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        unavailable(out, "out of memory");
        return true;
    }
    for (j = in->jobs; j != NULL; j = j->next)
        if (memcmp(j->key, key, sizeof(key)) == 0)
            break;
    if (j != NULL) {
        in->st.joined++;
    } else if ((j = job_start(in, r, key)) == NULL) {
        free(w);
        unavailable(out, "out of memory");
        return true;
    }
    w->job = j;
    w->cb = cb;
    w->arg = arg;
    w->is = r->is;
    w->resource = r->resource;
    w->next = j->waiters;
    if (j->waiters)
        j->waiters->prev = w;
    j->waiters = w;
    *wait = w;
    return false;
}

void
mg_introspect_cancel(mg_introspect_wait_t *w)
{
    job_t *j;

    if (w == NULL)
        return;
    j = w->job;
    if (w->prev)
        w->prev->next = w->next;
    else
        j->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
    if (j->waiters == NULL && !j->completing) {
        /* Nobody waits any more: stop the request (its result would only fill the cache). */
        if (j->req != NULL)
            mg_http_client_cancel(j->req);
        job_unlink(j);
        job_free(j);
    }
}

mg_introspect_t *
mg_introspect_new(struct event_base *base, struct evdns_base *dns, struct mg_redis *redis,
                  struct mg_metrics *metrics)
{
    mg_introspect_t *in = calloc(1, sizeof(*in));

    if (in == NULL)
        return NULL;
    in->base = base;
    in->dns = dns;
    in->redis = redis;
    in->metrics = metrics;
    return in;
}

void
mg_introspect_free(mg_introspect_t *in)
{
    if (in == NULL)
        return;
    while (in->jobs != NULL) {
        job_t *j = in->jobs;
        if (j->req != NULL)
            mg_http_client_cancel(j->req);
        job_unlink(j);
        while (j->waiters != NULL) {
            mg_introspect_wait_t *w = j->waiters;
            j->waiters = w->next;
            free(w);
        }
        job_free(j);
    }
    cache_flush(in);
    while (in->ctxs != NULL) {
        ctx_entry_t *e = in->ctxs;
        in->ctxs = e->next;
        SSL_CTX_free(e->ctx);
        free(e->ca_file);
        free(e);
    }
    free(in);
}

void
mg_introspect_stats(const mg_introspect_t *in, mg_introspect_stats_t *out)
{
    *out = in->st;
    out->entries = in->n;
}
