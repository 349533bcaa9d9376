/* conf.c -- loading a configuration generation: error collection, defaults, the
 * load entry points, route matching, duration/size parsing and freeing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"
#include "mcpgate/log.h"

/* Messages are sorted at the end of a load by file (in the order the files
 * were first read) and line, so that parse and value errors interleave the way
 * they appear in the text; messages without a line come last. */
static uint64_t
err_key(mg_conf_ctx_t *cx, const mg_conf_where_t *w)
{
    uint64_t file = 0xffffffffu, line = 0xffffffffu;

    if (w != NULL && w->line > 0) {
        line = (uint64_t)w->line;
        for (size_t i = 0; i < cx->conf->nfiles; i++)
            if (cx->conf->files[i] == w->file)
                file = i;
    }
    return file << 32 | line;
}

static void
errs_push(mg_conf_ctx_t *cx, char *msg, uint64_t key)
{
    char **v;
    uint64_t *k;

    cx->nerr++;
    if (msg == NULL)
        return;
    v = realloc(cx->errs->msgs, (cx->errs->n + 1) * sizeof(*v));
    if (v == NULL) {
        free(msg);
        return;
    }
    cx->errs->msgs = v;
    k = realloc(cx->keys, (cx->nkeys + 1) * sizeof(*k));
    if (k == NULL) {
        free(msg);
        return;
    }
    cx->keys = k;
    cx->keys[cx->nkeys++] = key;
    cx->errs->msgs[cx->errs->n++] = msg;
}

/* Stable insertion sort: at most MG_CONF_MAX_ERRORS + 1 messages. */
static void
errs_sort(mg_conf_ctx_t *cx)
{
    char **m = cx->errs->msgs + cx->errs_start;

    for (size_t i = 1; i < cx->nkeys; i++) {
        uint64_t key = cx->keys[i];
        char *msg = m[i];
        size_t j = i;
        for (; j > 0 && cx->keys[j - 1] > key; j--) {
            cx->keys[j] = cx->keys[j - 1];
            m[j] = m[j - 1];
        }
        cx->keys[j] = key;
        m[j] = msg;
    }
}

void
mg_conf_error(mg_conf_ctx_t *cx, const mg_conf_where_t *w, const char *fmt, ...)
{
    char text[1200];
    char *msg = NULL;
    va_list ap;

    if (cx->stopped)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (w != NULL && w->line > 0) {
        if (asprintf(&msg, "%s:%d: %s", w->file, w->line, text) < 0)
            msg = NULL;
    } else {
        const char *file = w && w->file ? w->file : cx->conf->source;
        if (asprintf(&msg, "%s: %s", file ? file : "(config)", text) < 0)
            msg = NULL;
    }
    errs_push(cx, msg, err_key(cx, w));
    if (cx->nerr >= MG_CONF_MAX_ERRORS) {
        cx->stopped = true;
        if (asprintf(&msg, "%s: too many errors, stopping", cx->conf->source) < 0)
            msg = NULL;
        errs_push(cx, msg, UINT64_MAX);
    }
}

const char *
mg_conf_errf(mg_conf_ctx_t *cx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cx->errbuf, sizeof(cx->errbuf), fmt, ap);
    va_end(ap);
    return cx->errbuf;
}

const char *
mg_conf_q(mg_conf_ctx_t *cx, const char *s)
{
    char *buf = cx->qbuf[cx->qnext++ % 4];
    size_t max = sizeof(cx->qbuf[0]), o = 0;

    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (o + 8 >= max) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            o += (size_t)snprintf(buf + o, max - o, "\\x%02x", *p);
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

const char *
mg_conf_intern_file(mg_conf_ctx_t *cx, const char *name)
{
    mg_conf_t *c = cx->conf;
    char **v;
    char *copy;

    for (size_t i = 0; i < c->nfiles; i++)
        if (strcmp(c->files[i], name) == 0)
            return c->files[i];
    copy = strdup(name);
    if (copy == NULL)
        return NULL;
    v = realloc(c->files, (c->nfiles + 1) * sizeof(*v));
    if (v == NULL) {
        free(copy);
        return NULL;
    }
    c->files = v;
    c->files[c->nfiles++] = copy;
    return copy;
}

static mg_conf_t *
conf_new(const char *source)
{
    mg_conf_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->source = strdup(source);
    if (c->source == NULL) {
        free(c);
        return NULL;
    }
    c->workers = 0; /* 0 = auto until the end of the load */
    c->max_header_size = 16 * 1024;
    c->max_body_size = 1024 * 1024;
    c->client_timeout = 30 * 1000;
    c->upstream_connect_timeout = 5 * 1000;
    c->upstream_timeout = 60 * 1000;
    c->stream_idle_timeout = 10 * 60 * 1000;
    c->drain_timeout = 30 * 1000;
    c->sse_keepalive = 0;
    c->log_level = MG_LOG_INFO;
    c->token_cache_size = 10000;
    c->access_log = strdup("stdout");
    if (c->access_log == NULL) {
        free(c->source);
        free(c);
        return NULL;
    }
    c->startup_grace = 10 * 1000;
    return c;
}

/* Shared by both entry points: <text> NULL means read <name> from disk. */
static mg_conf_t *
load(const char *text, size_t len, const char *name, mg_conf_errors_t *errs)
{
    mg_conf_ctx_t *cx = NULL;
    mg_conf_nodes_t top = {0};
    mg_conf_t *conf = NULL;
    mg_conf_errors_t none = {0};

    if (errs == NULL)
        errs = &none;
    cx = calloc(1, sizeof(*cx));
    conf = conf_new(name);
    if (cx == NULL || conf == NULL) {
        char *msg = NULL;
        char **v = realloc(errs->msgs, (errs->n + 1) * sizeof(*v));
        if (v != NULL) {
            errs->msgs = v;
            if (asprintf(&msg, "%s: out of memory", name) >= 0)
                errs->msgs[errs->n++] = msg;
        }
        goto fail;
    }
    cx->conf = conf;
    cx->errs = errs;
    cx->errs_start = errs->n;
    if (text == NULL) {
        mg_conf_parse_file(cx, name, NULL, &top);
    } else {
        const char *file = mg_conf_intern_file(cx, name);
        if (file == NULL) {
            mg_conf_error(cx, NULL, "out of memory");
        } else {
            cx->stack[0].known = false;
            cx->depth = 1;
            mg_conf_parse_text(cx, text, len, file, &top);
            cx->depth = 0;
        }
    }
    mg_conf_interpret(cx, &top);
    errs_sort(cx);
    if (cx->nerr != 0)
        goto fail;
    mg_conf_nodes_free(&top);
    free(cx->keys);
    free(cx);
    mg_conf_errors_clear(&none);
    return conf;
fail:
    mg_conf_nodes_free(&top);
    if (cx != NULL)
        free(cx->keys);
    free(cx);
    mg_conf_free(conf);
    mg_conf_errors_clear(&none);
    return NULL;
}

mg_conf_t *
mg_conf_load(const char *path, mg_conf_errors_t *errs)
{
    return load(NULL, 0, path, errs);
}

mg_conf_t *
mg_conf_load_string(const char *text, size_t len, const char *name, mg_conf_errors_t *errs)
{
    return load(text, len, name ? name : "(string)", errs);
}

const mg_conf_route_t *
mg_conf_route_match(const mg_conf_t *conf, const char *path, size_t path_len)
{
    const mg_conf_route_t *best = NULL;

    if (conf == NULL || path == NULL || path_len == 0 || path[0] != '/')
        return NULL;
    for (size_t i = 0; i < conf->nroutes; i++) {
        const mg_conf_route_t *r = &conf->routes[i];
        size_t rl = r->path_len;
        bool match;
        if (rl == 1)
            match = true; /* "/" */
        else
            match = path_len >= rl && memcmp(path, r->path, rl) == 0 &&
                    (path_len == rl || path[rl] == '/');
        if (match && (best == NULL || rl > best->path_len))
            best = r;
    }
    return best;
}

static void
listen_free(mg_conf_listen_t *l)
{
    free(l->text);
    free(l->tls_certificate);
    free(l->tls_certificate_key);
}

void
mg_conf_free(mg_conf_t *conf)
{
    if (conf == NULL)
        return;
    free(conf->source);
    free(conf->access_log);
    for (size_t i = 0; i < conf->nlistens; i++)
        listen_free(&conf->listens[i]);
    free(conf->listens);
    if (conf->admin_listen)
        listen_free(conf->admin_listen);
    free(conf->admin_listen);
    for (size_t i = 0; i < conf->nroutes; i++) {
        mg_conf_route_t *r = &conf->routes[i];
        free(r->path);
        free(r->upstream);
        free(r->upstream_host);
        free(r->upstream_hostport);
        free(r->upstream_path);
        free(r->upstream_ca_file);
        free(r->resource);
        for (size_t j = 0; j < r->nissuers; j++)
            free(r->issuer_urls[j]);
        free(r->issuer_urls);
        free(r->issuers);
        free(r->issuer_wheres);
        free(r->resource_name);
        free(r->resource_documentation);
        mg_conf_strv_free(r->scopes_supported, r->nscopes_supported);
        mg_conf_strv_free(r->require_scopes, r->nrequire_scopes);
        for (size_t j = 0; j < r->nscope_rules; j++) {
            free(r->scope_rules[j].glob);
            mg_conf_strv_free(r->scope_rules[j].scopes, r->scope_rules[j].nscopes);
        }
        free(r->scope_rules);
        mg_conf_strv_free(r->allowed_origins, r->nallowed_origins);
        mg_conf_strv_free(r->server_names, r->nserver_names);
        for (size_t j = 0; j < MG_CONF_IDENTITY_COUNT; j++)
            free(r->identity_header_names[j]);
        free(r->identity_signing_key);
        free(r->upstream_authorization);
    }
    free(conf->routes);
    for (size_t i = 0; i < conf->nissuers; i++) {
        mg_conf_issuer_t *is = &conf->issuers[i];
        free(is->url);
        free(is->jwks_file);
        free(is->algorithms);
        free(is->jwks_uri);
        free(is->ca_file);
    }
    free(conf->issuers);
    free(conf->trusted_proxies);
    for (size_t i = 0; i < conf->nfiles; i++)
        free(conf->files[i]);
    free(conf->files);
    free(conf);
}

void
mg_conf_errors_clear(mg_conf_errors_t *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
}

/* Digits then an optional suffix; returns false unless the whole string is that. */
static bool
split_number(const char *s, uint64_t *num, const char **suffix)
{
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *num = v;
    *suffix = p;
    return true;
}

int
mg_conf_parse_duration(const char *s, uint32_t *ms_out)
{
    uint64_t v, mult;
    const char *suf;

    if (s == NULL || !split_number(s, &v, &suf))
        return -1;
    if (strcmp(suf, "ms") == 0)
        mult = 1;
    else if (*suf == '\0' || strcmp(suf, "s") == 0)
        mult = 1000;
    else if (strcmp(suf, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(suf, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(suf, "d") == 0)
        mult = 86400 * 1000;
    else
        return -1;
    if (v > UINT32_MAX / mult)
        return -1;
    *ms_out = (uint32_t)(v * mult);
    return 0;
}

int
mg_conf_parse_size(const char *s, size_t *bytes_out)
{
    uint64_t v, mult;
    const char *suf;

    if (s == NULL || !split_number(s, &v, &suf))
        return -1;
    switch (*suf) {
    case '\0':
        mult = 1;
        break;
    case 'k':
    case 'K':
        mult = 1024;
        break;
    case 'm':
    case 'M':
        mult = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        mult = 1024 * 1024 * 1024;
        break;
    default:
        return -1;
    }
    if (*suf != '\0' && suf[1] != '\0')
        return -1;
    if (v > SIZE_MAX / mult)
        return -1;
    *bytes_out = (size_t)(v * mult);
    return 0;
}
