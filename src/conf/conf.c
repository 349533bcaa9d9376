/* conf.c -- loading a configuration generation: error collection, defaults, the
 * load entry points, route matching, duration/size parsing and freeing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
    /* msgs is NULL when there is no error: do not offset it (NULL + 0 is undefined). */
    char **m = cx->nkeys > 1 ? cx->errs->msgs + cx->errs_start : NULL;

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
    c->max_connections = 10000;
    c->max_connections_per_client = 256;
    c->log_level = MG_LOG_INFO;
    c->token_cache_size = 10000;
    c->access_log = strdup("stdout");
    if (c->access_log == NULL) {
        free(c->source);
        free(c);
        return NULL;
    }
    c->startup_grace = 10 * 1000;
    c->hsts_max_age = 365 * 24 * 3600;
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
    free(cx->files);
    free(cx);
    mg_conf_errors_clear(&none);
    return conf;
fail:
    mg_conf_nodes_free(&top);
    if (cx != NULL) {
        free(cx->keys);
        free(cx->files);
    }
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
    free(conf->loose_secret_files);
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
        for (size_t j = 0; j < r->napi_keys; j++) {
            free(r->api_keys[j].name);
            free(r->api_keys[j].subject);
            mg_conf_strv_free(r->api_keys[j].scopes, r->api_keys[j].nscopes);
        }
        free(r->api_keys);
        free(r->api_key_header);
        for (size_t j = 0; j < r->nrate_limits; j++)
            free(r->rate_limits[j].glob);
        free(r->rate_limits);
    }
    free(conf->routes);
    if (conf->redis != NULL) {
        free(conf->redis->text);
        free(conf->redis->host);
        free(conf->redis->unix_path);
        free(conf->redis->user);
        if (conf->redis->password != NULL) {
            memset(conf->redis->password, 0, strlen(conf->redis->password));
            free(conf->redis->password);
        }
        free(conf->redis);
    }
    for (size_t i = 0; i < conf->nissuers; i++) {
        mg_conf_issuer_t *is = &conf->issuers[i];
        free(is->url);
        free(is->jwks_file);
        free(is->algorithms);
        free(is->jwks_uri);
        free(is->ca_file);
        free(is->introspection_endpoint);
        free(is->introspection_client_id);
        if (is->introspection_client_secret != NULL) {
            memset(is->introspection_client_secret, 0, strlen(is->introspection_client_secret));
            free(is->introspection_client_secret);
        }
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

/* --- API keys, secret files, transport policy ------------------------------------ */

int
mg_conf_parse_digest(const char *s, uint8_t out[MG_API_KEY_DIGEST_LEN])
{
    uint8_t v[MG_API_KEY_DIGEST_LEN];

    if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 2 * sizeof(v))
        return -1;
    s += 7;
    for (size_t i = 0; i < 2 * sizeof(v); i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        if (i % 2 == 0)
            v[i / 2] = (uint8_t)(d << 4);
        else
            v[i / 2] |= (uint8_t)d;
    }
    memcpy(out, v, sizeof(v));
    return 0;
}

/* Like ssh with its identity files: a private key anyone else can read (or a directory
 * anyone can swap it in) is refused, so that a careless deployment is loud. */
const char *
mg_conf_secret_file_problem(const char *path, char *buf, size_t len)
{
    return mg_conf_secret_file_problem_of(path, "a private key", buf, len);
}

const char *
mg_conf_secret_file_problem_of(const char *path, const char *what, char *buf, size_t len)
{
    struct stat st;
    char *dir = NULL, *slash;

    if (stat(path, &st) != 0)
        return NULL; /* reported by the caller (cannot read) */
    if ((st.st_mode & 077) != 0) {
        snprintf(buf, len,
                 "%s has mode %04o: %s must be readable by its owner only "
                 "(chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), what, path);
        return buf;
    }
    dir = strdup(path);
    if (dir == NULL)
        return NULL;
    slash = strrchr(dir, '/');
    if (slash != NULL)
        *(slash == dir ? slash + 1 : slash) = '\0';
    if (stat(slash != NULL ? dir : ".", &st) == 0 && (st.st_mode & S_IWOTH) &&
        !(st.st_mode & S_ISVTX)) {
        snprintf(buf, len,
                 "the directory of %s is writable by everyone: anyone could replace the file "
                 "(chmod o-w %s)",
                 path, slash != NULL ? dir : ".");
        free(dir);
        return buf;
    }
    free(dir);
    return NULL;
}

bool
mg_conf_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            return a->sin6_addr.s6_addr[12] == 127;
        return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
    return false;
}

bool
mg_conf_url_is_loopback(const char *url)
{
    const char *h = strstr(url, "://"), *e;
    char host[64];
    struct in_addr a4;
    struct in6_addr a6;

    if (h == NULL)
        return false;
    h += 3;
    if (*h == '[') {
        h++;
        e = strchr(h, ']');
    } else {
        e = h + strcspn(h, ":/?#");
    }
    if (e == NULL || e == h || (size_t)(e - h) >= sizeof(host))
        return false;
    memcpy(host, h, (size_t)(e - h));
    host[e - h] = '\0';
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static void
warn(mg_conf_errors_t *out, const mg_conf_where_t *w, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
warn(mg_conf_errors_t *out, const mg_conf_where_t *w, const char *src, const char *fmt, ...)
{
    char *msg = NULL, *line = NULL, **v;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg == NULL)
        return;
    if (asprintf(&line, "%s:%d: warning: %s", w->file ? w->file : src, w->line, msg) < 0)
        line = NULL;
    free(msg);
    if (line == NULL || (v = realloc(out->msgs, (out->n + 1) * sizeof(*v))) == NULL) {
        free(line);
        return;
    }
    out->msgs = v;
    v[out->n++] = line;
}

void
mg_conf_warnings(const mg_conf_t *conf, mg_conf_errors_t *out)
{
    const char *src = conf->source ? conf->source : "(string)";
    char buf[1024];

    for (size_t i = 0; i < conf->nlistens; i++) {
        const mg_conf_listen_t *l = &conf->listens[i];
        if (l->tls_certificate != NULL) {
            if (conf->allow_loose_key_permissions &&
                mg_conf_secret_file_problem(l->tls_certificate_key, buf, sizeof(buf)) != NULL)
                warn(out, &l->where, src, "tls_certificate_key %s (allowed by "
                     "allow_loose_key_permissions)", buf);
            continue;
        }
        /* without plaintext_ok the load refused it; with it, say so at every check */
        if (!mg_conf_addr_is_loopback((const struct sockaddr *)&l->addr))
            warn(out, &l->where, src,
                 "listen %s is plain HTTP on a non-loopback address (plaintext_ok): access "
                 "tokens and API keys cross the network in clear text unless a "
                 "TLS-terminating proxy or mesh is in front",
                 l->text);
    }
    for (size_t i = 0; i < conf->nloose_secret_files; i++) {
        const mg_conf_where_t *w = &conf->loose_secret_files[i];
        if (mg_conf_secret_file_problem_of(w->file, "a file holding secrets", buf, sizeof(buf)) !=
            NULL)
            warn(out, w, src, "%s (allowed by allow_loose_key_permissions)", buf);
    }
    for (size_t i = 0; i < conf->nroutes; i++) {
        const mg_conf_route_t *r = &conf->routes[i];
        if (r->upstream != NULL && !r->upstream_tls && !mg_conf_url_is_loopback(r->upstream))
            warn(out, &r->where, src,
                 "route %s: upstream %s is plain HTTP to a non-loopback host "
                 "(upstream_plaintext_ok): the caller's identity headers cross the network "
                 "in clear text",
                 r->path, r->upstream);
        if (r->identity_signing_key != NULL && conf->allow_loose_key_permissions &&
            mg_conf_secret_file_problem(r->identity_signing_key, buf, sizeof(buf)) != NULL)
            warn(out, &r->where, src,
                 "identity_signing_key %s (allowed by allow_loose_key_permissions)", buf);
    }
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
