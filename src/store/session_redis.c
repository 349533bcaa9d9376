/* session_redis.c -- Mcp-Session-Id bindings in Redis: one atomic script per operation, TTLs. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "mcpgate/redis.h"
#include "mcpgate/session.h"
#include "store_int.h"

/*
 * Key:   mg:sess:{<32 hex: SHA-256(session id), truncated>}  (a hash: ids are bounded
 *        and never appear in key names; the tag makes the key cluster-ready)
 * Value: a hash { o = <64 hex: SHA-256(iss, sub)>, v = <protocol version> } with
 *        PEXPIRE = the route's session_ttl, renewed by every OWNED check.
 * One script does all three operations so that "compare the owner, then write"
 * is atomic across replicas: two gateways binding the same id to different
 * callers cannot both win.
 *
 * ARGV[1] = op (b = bind, c = check, r = remove), ARGV[2] = owner digest,
 * ARGV[3] = ttl in ms (b, c), ARGV[4] = version (b).
 * Returns {0, version} OWNED, {1} UNKNOWN, {2} FOREIGN.
 */
static const char session_lua[] =
    "local o = redis.call('HGET', KEYS[1], 'o')\n"
    "local op = ARGV[1]\n"
    "if op == 'b' then\n"
    "  if o and o ~= ARGV[2] then return {2} end\n"
    "  redis.call('HSET', KEYS[1], 'o', ARGV[2], 'v', ARGV[4])\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "  return {0, ARGV[4]}\n"
    "end\n"
    "if not o then return {1} end\n"
    "if o ~= ARGV[2] then return {2} end\n"
    "if op == 'r' then redis.call('DEL', KEYS[1]) return {0, ''} end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "local v = redis.call('HGET', KEYS[1], 'v')\n"
    "return {0, v or ''}\n";

typedef struct redis_store {
    mg_session_store_t base;
    mg_redis_t *redis; /* borrowed */
    const mg_redis_script_t *script;
} redis_store_t;

/* One command in flight: self-contained, so that the store may be freed first. */
typedef struct sop {
    mg_session_cb cb;
    void *arg;
} sop_t;

static void
hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256 over length-prefixed fields, as hex (2 * <nbytes> digits). */
static bool
digest_hex(const char *tag, const char *a, size_t alen, const char *b, char *out, size_t nbytes)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char full[EVP_MAX_MD_SIZE], be[8];
    unsigned int len = 0;
    const char *f[3] = {tag, a, b};
    size_t fl[3] = {strlen(tag), alen, b ? strlen(b) : 0};
    bool ok = false;

    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto done;
    for (int i = 0; i < (b ? 3 : 2); i++) {
        for (int k = 0; k < 8; k++)
            be[k] = (unsigned char)((uint64_t)fl[i] >> (56 - 8 * k));
        EVP_DigestUpdate(md, be, sizeof(be));
        EVP_DigestUpdate(md, f[i], fl[i]);
    }
    if (EVP_DigestFinal_ex(md, full, &len) != 1 || len < nbytes)
        goto done;
    hex(full, nbytes, out);
    ok = true;
done:
    EVP_MD_CTX_free(md);
    return ok;
}

static void
on_reply(void *arg, mg_redis_err_t err, const redisReply *r)
{
    sop_t *op = arg;
    mg_session_result_t res = MG_SESSION_ERROR;
    char version[64] = "";
    const char *ver = NULL;

    if (err == MG_REDIS_OK && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        switch (r->element[0]->integer) {
        case 0:
            res = MG_SESSION_OWNED;
            if (r->elements >= 2 && r->element[1]->type == REDIS_REPLY_STRING &&
                r->element[1]->len > 0 && r->element[1]->len < sizeof(version)) {
                memcpy(version, r->element[1]->str, r->element[1]->len);
                version[r->element[1]->len] = '\0';
                ver = version;
            }
            break;
        case 1:
            res = MG_SESSION_UNKNOWN;
            break;
        case 2:
            res = MG_SESSION_FOREIGN;
            break;
        default:
            break;
        }
    }
    op->cb(op->arg, res, ver);
    free(op);
}

static void
run(redis_store_t *s, char op, const char *id, size_t id_len, const char *iss, const char *sub,
    const char *version, uint64_t ttl_ms, mg_session_cb cb, void *arg)
{
    char key[64], owner[65], ttl[24], opstr[2] = {op, '\0'};
    char keyhex[33];
    const char *keys[1] = {key};
    const char *args[4] = {opstr, owner, ttl, version ? version : ""};
    sop_t *o = NULL;

    if (!digest_hex("mg-sess-id-v1", id, id_len, NULL, keyhex, 16) ||
        !digest_hex("mg-sess-owner-v1", iss ? iss : "", iss ? strlen(iss) : 0, sub ? sub : "",
                    owner, 32))
        goto fail;
    snprintf(key, sizeof(key), "mg:sess:{%s}", keyhex);
    snprintf(ttl, sizeof(ttl), "%" PRIu64, ttl_ms ? ttl_ms : 1);
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        goto fail;
    o->cb = cb;
    o->arg = arg;
    if (mg_redis_evalsha(s->redis, s->script, 1, keys, op == 'b' ? 4 : 3, args, on_reply, o) != 0)
        goto fail;
    return;
fail:
    free(o);
    cb(arg, MG_SESSION_ERROR, NULL);
}

static void
r_bind(mg_session_store_t *base, const char *id, size_t id_len, const char *iss, const char *sub,
       const char *version, uint64_t ttl_ms, uint64_t now_ms, mg_session_cb cb, void *arg)
{
    run((redis_store_t *)base, 'b', id, id_len, iss, sub, version, ttl_ms, cb, arg);
}

static void
r_check(mg_session_store_t *base, const char *id, size_t id_len, const char *iss, const char *sub,
        uint64_t ttl_ms, uint64_t now_ms, mg_session_cb cb, void *arg)
{
    run((redis_store_t *)base, 'c', id, id_len, iss, sub, NULL, ttl_ms, cb, arg);
}

static void
r_remove(mg_session_store_t *base, const char *id, size_t id_len, const char *iss, const char *sub,
         mg_session_cb cb, void *arg)
{
    run((redis_store_t *)base, 'r', id, id_len, iss, sub, NULL, 0, cb, arg);
}

static void
r_free(mg_session_store_t *base)
{
    free(base);
}

static const mg_session_store_ops_t redis_ops = {r_bind, r_check, r_remove, r_free};

mg_session_store_t *
mg_session_store_redis_new(struct mg_redis *redis)
{
    redis_store_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->base.ops = &redis_ops;
    s->redis = redis;
    s->script = mg_redis_script_register(redis, session_lua);
    if (s->script == NULL) {
        free(s);
        return NULL;
    }
    return &s->base;
}
