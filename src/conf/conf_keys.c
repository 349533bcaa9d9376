/* conf_keys.c -- the directive table and its setters: interprets the parse tree into
 * an mg_conf_t, checking contexts, argument counts, values and cross-directive rules.
 *
 * Adding a directive: one line in mg_conf_directives[] (between the DIRECTIVES
 * markers: tests/conf/check-drift.sh reads them) plus a setter, unless one of the
 * generic setters (size, duration, file) fits; then document it in
 * docs/mcpgate.conf.5 and etc/mcpgate.conf. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_int.h"
#include "mcpgate/log.h"

#define MG_MAX_WORKERS 64

#define FIELD(obj, off, type) ((type *)(void *)((char *)(obj) + (off)))

/* "16k", "1m", or bytes: the shortest exact spelling, for range messages. */
static void
fmt_size(char *buf, size_t len, uint64_t v)
{
    if (v != 0 && v % (1024u * 1024 * 1024) == 0)
        snprintf(buf, len, "%llug", (unsigned long long)(v >> 30));
    else if (v != 0 && v % (1024u * 1024) == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(v >> 20));
    else if (v != 0 && v % 1024 == 0)
        snprintf(buf, len, "%lluk", (unsigned long long)(v >> 10));
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void
fmt_ms(char *buf, size_t len, uint64_t v)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (v != 0 && v % units[i].ms == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(v / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, len, "%llums", (unsigned long long)v);
}

/* --- generic setters: d->off into <obj>, bounded by d->min..d->max ---------------- */

static const char *
set_size(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    size_t v;
    char lo[32], hi[32];

    if (mg_conf_parse_size(n->args[0], &v) != 0)
        return mg_conf_errf(cx, "invalid size %s for %s", mg_conf_q(cx, n->args[0]),
                            mg_conf_q(cx, d->name));
    if (v < d->min || v > d->max) {
        fmt_size(lo, sizeof(lo), d->min);
        fmt_size(hi, sizeof(hi), d->max);
        return mg_conf_errf(cx, "size %s for %s is out of range (%s..%s)",
                            mg_conf_q(cx, n->args[0]), mg_conf_q(cx, d->name), lo, hi);
    }
    *FIELD(obj, d->off, size_t) = v;
    return NULL;
}

static const char *
duration(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d,
         const char *extra)
{
    uint32_t v;
    char lo[32], hi[32];

    if (mg_conf_parse_duration(n->args[0], &v) != 0)
        return mg_conf_errf(cx, "invalid duration %s for %s%s", mg_conf_q(cx, n->args[0]),
                            mg_conf_q(cx, d->name), extra);
    if (v < d->min || v > d->max) {
        fmt_ms(lo, sizeof(lo), d->min);
        fmt_ms(hi, sizeof(hi), d->max);
        return mg_conf_errf(cx, "duration %s for %s is out of range (%s..%s)",
                            mg_conf_q(cx, n->args[0]), mg_conf_q(cx, d->name), lo, hi);
    }
    *FIELD(obj, d->off, uint32_t) = v;
    return NULL;
}

static const char *
set_duration(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    return duration(cx, n, obj, d, "");
}

/* A duration, or "off" (stored as 0). */
static const char *
set_duration_off(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                 const mg_conf_directive_t *d)
{
    if (strcmp(n->args[0], "off") == 0) {
        *FIELD(obj, d->off, uint32_t) = 0;
        return NULL;
    }
    return duration(cx, n, obj, d, " (expected a duration or \"off\")");
}

/* A file that must exist and be readable now; stored relative to the file that
 * names it (see conf.h). */
static const char *
set_file(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    struct stat st;
    char *path;
    char **field = FIELD(obj, d->off, char *);

    if (n->args[0][0] == '\0')
        return mg_conf_errf(cx, "empty file name for %s", mg_conf_q(cx, d->name));
    path = mg_conf_resolve_path(n->where.file, n->args[0]);
    if (path == NULL)
        return "out of memory";
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        const char *why = strerror(errno);
        const char *e = mg_conf_errf(cx, "cannot read %s for %s: %s", mg_conf_q(cx, path),
                                     mg_conf_q(cx, d->name), why);
        free(path);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *e = mg_conf_errf(cx, "%s for %s is not a regular file", mg_conf_q(cx, path),
                                     mg_conf_q(cx, d->name));
        free(path);
        return e;
    }
    free(*field);
    *field = path;
    return NULL;
}

/* --- top level -------------------------------------------------------------------- */

static const char *
set_workers(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;
    const char *s = n->args[0];
    long v = 0;

    if (strcmp(s, "auto") == 0) {
        c->workers = 0;
        return NULL;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > MG_MAX_WORKERS) {
            v = -1;
            break;
        }
        v = v * 10 + (*p - '0');
    }
    if (*s == '\0' || v < 1 || v > MG_MAX_WORKERS)
        return mg_conf_errf(cx, "invalid value %s for \"workers\" (expected 1..%d or \"auto\")",
                            mg_conf_q(cx, s), MG_MAX_WORKERS);
    c->workers = (int)v;
    return NULL;
}

static const char *
set_log_level(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    int level = mg_log_level_from_string(n->args[0]);

    if (level < 0)
        return mg_conf_errf(cx,
                            "invalid value %s for \"log_level\" (expected error, warn, info "
                            "or debug)",
                            mg_conf_q(cx, n->args[0]));
    ((mg_conf_t *)obj)->log_level = level;
    return NULL;
}

/* access_log stdout|stderr|off|FILE: a FILE need not exist yet, but its
 * directory must (it is created at start, and on reopen after rotation). */
static const char *
set_access_log(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
               const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;
    const char *v = n->args[0];
    char *val;

    if (v[0] == '\0')
        return "empty value for \"access_log\" (expected stdout, stderr, off or a file)";
    if (strcmp(v, "stdout") == 0 || strcmp(v, "stderr") == 0 || strcmp(v, "off") == 0) {
        val = strdup(v);
    } else {
        struct stat st;
        char *dir, *slash;
        val = mg_conf_resolve_path(n->where.file, v);
        if (val == NULL)
            return "out of memory";
        dir = strdup(val);
        if (dir == NULL) {
            free(val);
            return "out of memory";
        }
        slash = strrchr(dir, '/');
        if (slash != NULL)
            *(slash == dir ? slash + 1 : slash) = '\0';
        if (stat(slash != NULL ? dir : ".", &st) != 0 || !S_ISDIR(st.st_mode)) {
            const char *e = mg_conf_errf(cx, "no directory for access_log %s", mg_conf_q(cx, val));
            free(dir);
            free(val);
            return e;
        }
        free(dir);
    }
    if (val == NULL)
        return "out of memory";
    free(c->access_log);
    c->access_log = val;
    return NULL;
}

/* ADDR:PORT with ADDR an IPv4 literal, [IPv6], "*" or "localhost". No DNS. */
static const char *
parse_listen_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon, *hs, *he;
    long port = 0;

    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (he == NULL)
            return "missing \"]\"";
        colon = he + 1;
        if (*colon != ':')
            return "expected \":PORT\" after \"]\"";
    } else {
        hs = s;
        colon = strrchr(s, ':');
        if (colon == NULL)
            return "expected ADDR:PORT";
        he = colon;
        if (memchr(hs, ':', (size_t)(he - hs)) != NULL)
            return "an IPv6 address must be written in brackets";
    }
    if ((size_t)(he - hs) >= sizeof(host) || he == hs)
        return "invalid address";
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    for (const char *p = colon + 1;; p++) {
        if (*p == '\0' && p != colon + 1)
            break;
        if (*p < '0' || *p > '9' || port > 65535)
            return "invalid port";
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
        return "port must be 1..65535";
    if (s[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return "invalid IPv6 address";
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        if (strcmp(host, "*") == 0)
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (strcmp(host, "localhost") == 0)
            a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return "invalid IPv4 address (expected a literal, \"*\" or \"localhost\")";
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
    }
    return NULL;
}

static bool
same_addr(const mg_conf_listen_t *a, const struct sockaddr_storage *b)
{
    if (a->addr.ss_family != b->ss_family)
        return false;
    if (b->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* Fill <l> from n->args[0]; checks for a duplicate among every listener so far. */
static const char *
listen_common(mg_conf_ctx_t *cx, const mg_conf_node_t *n, mg_conf_listen_t *l)
{
    mg_conf_t *c = cx->conf;
    const char *why = parse_listen_addr(n->args[0], &l->addr, &l->addrlen);
    const mg_conf_listen_t *first = NULL;

    l->where = n->where;
    if (why != NULL)
        return mg_conf_errf(cx, "invalid address %s for %s: %s", mg_conf_q(cx, n->args[0]),
                            mg_conf_q(cx, n->name), why);
    for (size_t i = 0; i < c->nlistens && first == NULL; i++)
        if (&c->listens[i] != l && same_addr(&c->listens[i], &l->addr))
            first = &c->listens[i];
    if (first == NULL && c->admin_listen && c->admin_listen != l &&
        same_addr(c->admin_listen, &l->addr))
        first = c->admin_listen;
    if (first != NULL)
        return mg_conf_errf(cx, "duplicate listen address %s (first defined at %s:%d)",
                            mg_conf_q(cx, n->args[0]), first->where.file, first->where.line);
    l->text = strdup(n->args[0]);
    if (l->text == NULL)
        return "out of memory";
    return NULL;
}

static const char *
set_listen(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;
    mg_conf_listen_t *v = realloc(c->listens, (c->nlistens + 1) * sizeof(*v));
    mg_conf_listen_t *l;

    if (v == NULL)
        return "out of memory";
    c->listens = v;
    l = &c->listens[c->nlistens++];
    memset(l, 0, sizeof(*l));
    if (n->has_block)
        cx->block = l; /* check the TLS settings even if the address is bad */
    return listen_common(cx, n, l);
}

static void
post_listen(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj)
{
    bool cert = false, key = false, plain = false, limit = false;

    /* look at the statements, not the fields: a bad file was already reported */
    for (size_t i = 0; i < n->nchildren; i++) {
        cert |= strcmp(n->children[i].name, "tls_certificate") == 0;
        key |= strcmp(n->children[i].name, "tls_certificate_key") == 0;
        plain |= strcmp(n->children[i].name, "plaintext_ok") == 0;
        limit |= strcmp(n->children[i].name, "max_connections") == 0;
    }
    if (!cert && !key && limit)
        return; /* `listen ADDR { max_connections N; }`: a plain listener with a cap */
    if (plain) {
        /* `listen ADDR { plaintext_ok; }`: a plain listener, said out loud */
        if (cert || key)
            mg_conf_error(cx, &n->where,
                          "\"listen\" block for %s: \"plaintext_ok\" and TLS certificates "
                          "exclude each other",
                          mg_conf_q(cx, n->args[0]));
        return;
    }
    if (!cert)
        mg_conf_error(cx, &n->where, "\"listen\" block for %s needs \"tls_certificate\"",
                      mg_conf_q(cx, n->args[0]));
    if (!key)
        mg_conf_error(cx, &n->where, "\"listen\" block for %s needs \"tls_certificate_key\"",
                      mg_conf_q(cx, n->args[0]));
}

static const char *
set_admin_listen(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                 const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;

    c->admin_listen = calloc(1, sizeof(*c->admin_listen));
    if (c->admin_listen == NULL)
        return "out of memory";
    return listen_common(cx, n, c->admin_listen);
}

/* --- route -------------------------------------------------------------------------- */

/* The path rules shared by route paths and upstream URL paths. NULL when fine. */
static const char *
check_path(const char *p)
{
    if (p[0] != '/')
        return "must start with \"/\"";
    for (const unsigned char *s = (const unsigned char *)p; *s; s++) {
        if (*s == '%')
            return "must not contain \"%\" (write it decoded)";
        if (*s == '?')
            return "must not contain \"?\"";
        if (*s == '#')
            return "must not contain \"#\"";
        if (*s <= 0x20 || *s >= 0x7f)
            return "must not contain spaces, control or non-ASCII characters";
        if (s[0] == '/' && s[1] == '/')
            return "must not contain \"//\"";
        if (s[0] == '/' && s[1] == '.' &&
            (s[2] == '/' || s[2] == '\0' || (s[2] == '.' && (s[3] == '/' || s[3] == '\0'))))
            return "must not contain \".\" or \"..\" segments";
    }
    return NULL;
}

/* A copy of <p> without its trailing '/' (kept for "/" itself when keep_root). */
static char *
strip_slash(const char *p, bool keep_root)
{
    size_t len = strlen(p);

    if (len > 1 && p[len - 1] == '/')
        len--;
    if (len == 1 && p[0] == '/' && !keep_root)
        len = 0;
    return strndup(p, len);
}

static const char *
set_route(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;
    mg_conf_route_t *v = realloc(c->routes, (c->nroutes + 1) * sizeof(*v));
    mg_conf_route_t *r;
    const char *why = check_path(n->args[0]);

    if (v == NULL)
        return "out of memory";
    c->routes = v;
    r = &c->routes[c->nroutes++];
    memset(r, 0, sizeof(*r));
    r->where = n->where;
    r->identity_headers = true;
    r->session_ttl = 3600 * 1000;
    cx->block = r; /* check the body even when the path is bad */
    if (why != NULL)
        return mg_conf_errf(cx, "invalid route path %s: %s", mg_conf_q(cx, n->args[0]), why);
    r->path = strip_slash(n->args[0], true);
    if (r->path == NULL)
        return "out of memory";
    r->path_len = strlen(r->path);
    for (size_t i = 0; i + 1 < c->nroutes; i++) {
        const mg_conf_route_t *o = &c->routes[i];
        if (o->path != NULL && strcmp(o->path, r->path) == 0)
            return mg_conf_errf(cx, "duplicate route %s (first defined at %s:%d)",
                                mg_conf_q(cx, r->path), o->where.file, o->where.line);
    }
    return NULL;
}

static void
post_route(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj)
{
    const mg_conf_route_t *r = obj;
    const mg_conf_node_t *up = NULL, *ca = NULL;

    for (size_t i = 0; i < n->nchildren; i++) {
        if (strcmp(n->children[i].name, "upstream") == 0 && up == NULL)
            up = &n->children[i];
        if (strcmp(n->children[i].name, "upstream_ca_file") == 0 && ca == NULL)
            ca = &n->children[i];
    }
    if (up == NULL)
        mg_conf_error(cx, &n->where, "route %s has no \"upstream\"", mg_conf_q(cx, n->args[0]));
    /* only judged when the upstream itself was valid */
    if (ca != NULL && r->upstream != NULL && !r->upstream_tls)
        mg_conf_error(cx, &ca->where, "\"upstream_ca_file\" needs an https upstream, not %s",
                      mg_conf_q(cx, r->upstream));
}

static bool
valid_host_name(const char *h)
{
    size_t len = strlen(h);
    bool numeric = true;

    if (len == 0 || len > 253)
        return false;
    for (const char *p = h; *p; p++) {
        bool alnum =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && *p != '.' && *p != '-' && *p != '_')
            return false;
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            numeric = false;
    }
    if (numeric) {
        /* all digits and dots: it is meant as an IPv4 literal, so it must be one */
        struct in_addr a;
        return inet_pton(AF_INET, h, &a) == 1;
    }
    return h[0] != '.' && h[0] != '-';
}

/* Parse an upstream URL into <r>; returns the reason it is invalid or NULL. */
static const char *
parse_upstream(const char *url, mg_conf_route_t *r)
{
    const char *rest, *auth_end, *hs, *he, *ps = NULL;
    char *host = NULL;
    long port;
    bool v6 = false;

    if (strncasecmp(url, "http://", 7) == 0) {
        r->upstream_tls = false;
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        r->upstream_tls = true;
        rest = url + 8;
    } else {
        return "must start with \"http://\" or \"https://\"";
    }
    if (strpbrk(rest, "?#") != NULL)
        return "must not have a query or fragment";
    auth_end = strchr(rest, '/');
    if (auth_end == NULL)
        auth_end = rest + strlen(rest);
    if (memchr(rest, '@', (size_t)(auth_end - rest)) != NULL)
        return "must not contain userinfo (\"user@\")";
    if (auth_end == rest)
        return "missing host";
    if (rest[0] == '[') {
        struct in6_addr a6;
        hs = rest + 1;
        he = memchr(hs, ']', (size_t)(auth_end - hs));
        if (he == NULL)
            return "missing \"]\" after an IPv6 address";
        host = strndup(hs, (size_t)(he - hs));
        if (host == NULL)
            return "out of memory";
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            free(host);
            return "invalid IPv6 address";
        }
        v6 = true;
        if (he + 1 != auth_end && he[1] != ':') {
            free(host);
            return "unexpected text after \"]\"";
        }
        if (he[1] == ':')
            ps = he + 2;
    } else {
        he = memchr(rest, ':', (size_t)(auth_end - rest));
        if (he != NULL)
            ps = he + 1;
        else
            he = auth_end;
        host = strndup(rest, (size_t)(he - rest));
        if (host == NULL)
            return "out of memory";
        if (!valid_host_name(host)) {
            free(host);
            return "invalid host (an IPv6 address must be in brackets)";
        }
    }
    port = r->upstream_tls ? 443 : 80;
    if (ps != NULL) {
        port = 0;
        if (ps == auth_end) {
            free(host);
            return "empty port";
        }
        for (const char *p = ps; p < auth_end; p++) {
            if (*p < '0' || *p > '9' || port > 65535) {
                free(host);
                return "invalid port";
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            free(host);
            return "port must be 1..65535";
        }
    }
    if (*auth_end == '/') {
        const char *why = check_path(auth_end);
        if (why != NULL) {
            free(host);
            return why;
        }
    }
    r->upstream_host = host;
    r->upstream_port = (uint16_t)port;
    if (asprintf(&r->upstream_hostport, v6 ? "[%s]:%ld" : "%s:%ld", host, port) < 0)
        r->upstream_hostport = NULL;
    /* As nginx's proxy_pass: a URL with a path (even "/") replaces the route
     * prefix with it; a URL with no path passes the request path unchanged,
     * which is the route prefix mapped onto itself. */
    if (*auth_end != '\0')
        r->upstream_path = strip_slash(auth_end, false);
    else
        r->upstream_path = strip_slash(r->path != NULL ? r->path : "/", false);
    r->upstream = strdup(url);
    if (r->upstream_hostport == NULL || r->upstream_path == NULL || r->upstream == NULL)
        return "out of memory";
    return NULL;
}

static const char *
set_upstream(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    const char *why = parse_upstream(n->args[0], obj);

    if (why != NULL)
        return mg_conf_errf(cx, "invalid upstream URL %s: %s", mg_conf_q(cx, n->args[0]), why);
    return NULL;
}


/* --- issuers (access-token validation) --------------------------------------------- */

/* The JWS algorithms mcpgate verifies. "none" and HS* are never accepted: a
 * gateway holds no shared secret with the authorization server, and an HMAC
 * keyed with a public key is the classic algorithm-confusion attack (RFC 8725
 * section 3.1). */
static const char *const known_algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                         "PS512", "ES256", "ES384", "ES512", "EdDSA"};

/* An absolute http(s) URL with a host and no fragment; NULL when fine. */
static const char *
check_http_url(const char *u)
{
    const char *rest;

    if (strncmp(u, "https://", 8) == 0)
        rest = u + 8;
    else if (strncmp(u, "http://", 7) == 0)
        rest = u + 7;
    else
        return "must start with \"https://\" or \"http://\" (lowercase)";
    if (*rest == '\0' || *rest == '/')
        return "missing host";
    if (strchr(u, '#') != NULL)
        return "must not have a fragment";
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            return "must not contain spaces, quotes, backslashes or non-ASCII characters";
    return NULL;
}

static const char *
set_issuer(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;
    mg_conf_issuer_t *v, *is;
    const char *why = check_http_url(n->args[0]);

    v = realloc(c->issuers, (c->nissuers + 1) * sizeof(*v));
    if (v == NULL)
        return "out of memory";
    c->issuers = v;
    is = &c->issuers[c->nissuers++];
    memset(is, 0, sizeof(*is));
    is->where = n->where;
    is->leeway = 60 * 1000;
    is->require_typ = true;
    is->max_token_size = 8192;
    is->jwks_min_refresh = 60 * 1000;
    is->jwks_max_refresh = 24 * 3600 * 1000;
    is->kid_refetch_cooldown = 30 * 1000;
    is->jwks_max_stale = 24 * 3600 * 1000;
    is->introspection_cache_ttl = 60 * 1000;
    is->validation = MG_VALIDATION_AUTO;
    if (n->has_block)
        cx->block = is;
    if (why != NULL)
        return mg_conf_errf(cx, "invalid issuer %s: %s", mg_conf_q(cx, n->args[0]), why);
    for (size_t i = 0; i + 1 < c->nissuers; i++) {
        const mg_conf_issuer_t *o = &c->issuers[i];
        if (o->url != NULL && strcmp(o->url, n->args[0]) == 0)
            return mg_conf_errf(cx, "duplicate issuer %s (first defined at %s:%d)",
                                mg_conf_q(cx, n->args[0]), o->where.file, o->where.line);
    }
    is->url = strdup(n->args[0]);
    return is->url == NULL ? "out of memory" : NULL;
}

/* The key source: jwks_file, jwks_uri, or neither (discovery from the issuer
 * URL, docs/keys.md); plain http only to loopback and only when asked for. */
static void
post_issuer(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj)
{
    mg_conf_issuer_t *is = obj;
    const char *q = mg_conf_q(cx, n->args[0]);

    if (is->jwks_file != NULL && is->jwks_uri != NULL)
        mg_conf_error(cx, &n->where, "issuer %s: \"jwks_file\" and \"jwks_uri\" exclude each other",
                      q);
    if (is->jwks_file == NULL && !is->allow_http) {
        const char *u = is->jwks_uri != NULL ? is->jwks_uri : n->args[0];
        if (strncmp(u, "http://", 7) == 0)
            mg_conf_error(cx, &n->where,
                          "issuer %s: %s is plain http (use https, or \"allow_http on;\" for a "
                          "loopback address)",
                          q, is->jwks_uri != NULL ? "jwks_uri" : "discovery from the issuer URL");
    }
    if (is->jwks_min_refresh > is->jwks_max_refresh)
        mg_conf_error(cx, &n->where,
                      "issuer %s: \"jwks_min_refresh\" is longer than \"jwks_max_refresh\"", q);
    /* Introspection (RFC 7662): the gateway authenticates as a client (section 2.1), over
     * https or loopback http only (SPEC I-06). The secret is never part of a message. */
    if ((is->introspection_client_id == NULL) != (is->introspection_client_secret == NULL))
        mg_conf_error(cx, &n->where,
                      "issuer %s: \"introspection_client_id\" and "
                      "\"introspection_client_secret\" go together",
                      q);
    else if (is->validation == MG_VALIDATION_INTROSPECTION && is->introspection_client_id == NULL)
        mg_conf_error(cx, &n->where,
                      "issuer %s: \"validation introspection\" needs "
                      "\"introspection_client_id\" and \"introspection_client_secret\"",
                      q);
    if (is->introspection_client_id != NULL && is->introspection_endpoint == NULL &&
        is->jwks_file != NULL && is->jwks_uri == NULL)
        mg_conf_error(cx, &n->where,
                      "issuer %s: introspection needs \"introspection_endpoint\" (an issuer with "
                      "\"jwks_file\" is not discovered)",
                      q);
    if (is->introspection_endpoint != NULL && !is->allow_http &&
        strncmp(is->introspection_endpoint, "http://", 7) == 0)
        mg_conf_error(cx, &n->where,
                      "issuer %s: introspection_endpoint is plain http (use https, or "
                      "\"allow_http on;\" for a loopback address)",
                      q);
}

/* validation auto|jwt|introspection; */
static const char *
set_validation(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
               const mg_conf_directive_t *d)
{
    mg_conf_issuer_t *is = obj;
    const char *v = n->args[0];

    if (strcmp(v, "auto") == 0)
        is->validation = MG_VALIDATION_AUTO;
    else if (strcmp(v, "jwt") == 0)
        is->validation = MG_VALIDATION_JWT;
    else if (strcmp(v, "introspection") == 0)
        is->validation = MG_VALIDATION_INTROSPECTION;
    else
        return mg_conf_errf(cx,
                            "invalid value %s for \"validation\" (expected auto, jwt or "
                            "introspection)",
                            mg_conf_q(cx, v));
    return NULL;
}

static const char *
set_algorithms(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
               const mg_conf_directive_t *d)
{
    mg_conf_issuer_t *is = obj;
    size_t len = 0;
    char *list;

    for (size_t i = 0; i < n->nargs; i++) {
        const char *a = n->args[i];
        bool ok = false;
        for (size_t k = 0; k < sizeof(known_algs) / sizeof(known_algs[0]); k++)
            ok |= strcmp(a, known_algs[k]) == 0;
        if (strcasecmp(a, "none") == 0 || strncasecmp(a, "HS", 2) == 0)
            return mg_conf_errf(cx, "algorithm %s is never accepted (no \"none\", no HMAC)",
                                mg_conf_q(cx, a));
        if (!ok)
            return mg_conf_errf(cx,
                                "unknown algorithm %s (expected RS256, RS384, RS512, PS256, "
                                "PS384, PS512, ES256, ES384, ES512 or EdDSA)",
                                mg_conf_q(cx, a));
        len += strlen(a) + 1;
    }
    list = calloc(1, len + 1);
    if (list == NULL)
        return "out of memory";
    list[0] = '\0';
    for (size_t i = 0; i < n->nargs; i++) {
        if (i)
            strcat(list, " ");
        strcat(list, n->args[i]);
    }
    free(is->algorithms);
    is->algorithms = list;
    return NULL;
}

static const char *
set_on_off(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    bool *field = FIELD(obj, d->off, bool);

    if (strcmp(n->args[0], "on") == 0)
        *field = true;
    else if (strcmp(n->args[0], "off") == 0)
        *field = false;
    else
        return mg_conf_errf(cx, "invalid value %s for %s (expected \"on\" or \"off\")",
                            mg_conf_q(cx, n->args[0]), mg_conf_q(cx, d->name));
    return NULL;
}

static const char *
set_count(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    uint64_t v = 0;
    const char *s = n->args[0];

    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > d->max) {
            v = d->max + 1;
            break;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*s == '\0' || v < d->min || v > d->max)
        return mg_conf_errf(cx, "invalid value %s for %s (expected %llu..%llu)", mg_conf_q(cx, s),
                            mg_conf_q(cx, d->name), (unsigned long long)d->min,
                            (unsigned long long)d->max);
    *FIELD(obj, d->off, size_t) = (size_t)v;
    return NULL;
}

static const char *
set_resource(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;
    const char *why = check_http_url(n->args[0]);

    if (why == NULL && strchr(n->args[0], '?') != NULL)
        why = "must not have a query (RFC 9728 section 2)";
    if (why != NULL)
        return mg_conf_errf(cx, "invalid resource %s: %s", mg_conf_q(cx, n->args[0]), why);
    r->resource = strdup(n->args[0]);
    return r->resource == NULL ? "out of memory" : NULL;
}

/* `issuer URL;` inside a route: resolved against the top-level issuers once the
 * whole configuration has been read (they may be defined after the route). */
static const char *
set_route_issuer(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                 const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;
    char **urls;
    mg_conf_where_t *wh;

    if (n->has_block)
        return "an issuer is defined at the top level; inside a route write \"issuer URL;\"";
    for (size_t i = 0; i < r->nissuers; i++)
        if (strcmp(r->issuer_urls[i], n->args[0]) == 0)
            return mg_conf_errf(cx, "duplicate issuer %s in this route", mg_conf_q(cx, n->args[0]));
    urls = realloc(r->issuer_urls, (r->nissuers + 1) * sizeof(*urls));
    if (urls == NULL)
        return "out of memory";
    r->issuer_urls = urls;
    wh = realloc(r->issuer_wheres, (r->nissuers + 1) * sizeof(*wh));
    if (wh == NULL)
        return "out of memory";
    r->issuer_wheres = wh;
    urls[r->nissuers] = strdup(n->args[0]);
    if (urls[r->nissuers] == NULL)
        return "out of memory";
    wh[r->nissuers] = n->where;
    r->nissuers++;
    return NULL;
}

/* `issuer` is one name for two things: a block at the top level, a reference
 * inside a route. */
static const char *
set_issuer_any(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
               const mg_conf_directive_t *d)
{
    if (obj == cx->conf)
        return set_issuer(cx, n, obj, d);
    return set_route_issuer(cx, n, obj, d);
}

static void
post_issuer_any(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj)
{
    post_issuer(cx, n, obj);
}

/* After the whole file: every route issuer names a defined issuer, and a route
 * with issuers names its resource. */
static void
resolve_route_issuers(mg_conf_ctx_t *cx)
{
    mg_conf_t *c = cx->conf;

    for (size_t i = 0; i < c->nroutes; i++) {
        mg_conf_route_t *r = &c->routes[i];
        if (r->nissuers == 0)
            continue;
        r->issuers = calloc(r->nissuers, sizeof(*r->issuers));
        if (r->issuers == NULL) {
            mg_conf_error(cx, &r->where, "out of memory");
            return;
        }
        for (size_t j = 0; j < r->nissuers; j++) {
            size_t k;
            for (k = 0; k < c->nissuers; k++)
                if (c->issuers[k].url && strcmp(c->issuers[k].url, r->issuer_urls[j]) == 0)
                    break;
            if (k == c->nissuers)
                mg_conf_error(cx, &r->issuer_wheres[j],
                              "issuer %s is not defined (add a top-level \"issuer %s { ... }\")",
                              mg_conf_q(cx, r->issuer_urls[j]), r->issuer_urls[j]);
            r->issuers[j] = k;
        }
        if (r->resource == NULL && r->path != NULL)
            mg_conf_error(cx, &r->where,
                          "route %s has an issuer but no \"resource\" (the URL clients dial, "
                          "which tokens must name in aud)",
                          mg_conf_q(cx, r->path));
    }
}

/* --- the MCP front door (src/mcp/, docs/mcp.md) ----------------------------------- */

void
mg_conf_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

/* Append copies of args[from..] to *v (count *n). NULL or "out of memory". */
static const char *
strv_append(char ***v, size_t *n, const mg_conf_node_t *node, size_t from, bool lower)
{
    char **nv;

    if (node->nargs <= from)
        return NULL;
    nv = realloc(*v, (*n + node->nargs - from) * sizeof(*nv));
    if (nv == NULL)
        return "out of memory";
    *v = nv;
    for (size_t i = from; i < node->nargs; i++) {
        char *s = strdup(node->args[i]);
        if (s == NULL)
            return "out of memory";
        if (lower)
            for (char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        nv[(*n)++] = s;
    }
    return NULL;
}

/* A scope token (RFC 6750 section 3: %x21 / %x23-5B / %x5D-7E), never
 * offline_access (SPEC D-10: a refresh-token scope is not a resource scope). */
static const char *
check_scope(mg_conf_ctx_t *cx, const char *s)
{
    if (*s == '\0')
        return "empty scope";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
            return mg_conf_errf(cx,
                                "invalid scope %s (RFC 6750 section 3: visible ASCII except "
                                "'\"' and '\\')",
                                mg_conf_q(cx, s));
    if (strcmp(s, "offline_access") == 0)
        return "\"offline_access\" is not a resource scope (it would make clients ask for "
               "refresh tokens; MCP 2026-07-28 authorization, Refresh Tokens)";
    return NULL;
}

static const char *
check_scopes(mg_conf_ctx_t *cx, const mg_conf_node_t *n, size_t from)
{
    for (size_t i = from; i < n->nargs; i++) {
        const char *why = check_scope(cx, n->args[i]);
        if (why != NULL)
            return why;
    }
    return NULL;
}

static const char *
set_default(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    ((mg_conf_route_t *)obj)->is_default = true;
    return NULL;
}

/* A free text (a PRM member, a header value): printable, no control bytes. */
static const char *
set_text(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    char **field = FIELD(obj, d->off, char *);

    if (n->args[0][0] == '\0')
        return mg_conf_errf(cx, "empty value for %s", mg_conf_q(cx, d->name));
    for (const unsigned char *p = (const unsigned char *)n->args[0]; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return mg_conf_errf(cx, "%s must not contain control characters",
                                mg_conf_q(cx, d->name));
    free(*field);
    *field = strdup(n->args[0]);
    return *field == NULL ? "out of memory" : NULL;
}

static const char *
set_url(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    char **field = FIELD(obj, d->off, char *);
    const char *why = check_http_url(n->args[0]);

    if (why != NULL)
        return mg_conf_errf(cx, "invalid URL %s for %s: %s", mg_conf_q(cx, n->args[0]),
                            mg_conf_q(cx, d->name), why);
    free(*field);
    *field = strdup(n->args[0]);
    return *field == NULL ? "out of memory" : NULL;
}

static const char *
set_scopes_supported(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                     const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;
    const char *why = check_scopes(cx, n, 0);

    if (why != NULL)
        return why;
    return strv_append(&r->scopes_supported, &r->nscopes_supported, n, 0, false);
}

static const char *
set_require_scope(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                  const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;
    const char *why = check_scopes(cx, n, 0);

    if (why != NULL)
        return why;
    return strv_append(&r->require_scopes, &r->nrequire_scopes, n, 0, false);
}

/* method|tool|prompt|resource_uri GLOB SCOPE...; the kind is in d->off. */
static const char *
set_scope_rule(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
               const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;
    mg_conf_scope_rule_t *v, *rule;
    const char *why = check_scopes(cx, n, 1);

    if (n->args[0][0] == '\0')
        return mg_conf_errf(cx, "empty pattern for %s", mg_conf_q(cx, d->name));
    if (why != NULL)
        return why;
    v = realloc(r->scope_rules, (r->nscope_rules + 1) * sizeof(*v));
    if (v == NULL)
        return "out of memory";
    r->scope_rules = v;
    rule = &v[r->nscope_rules++];
    memset(rule, 0, sizeof(*rule));
    rule->kind = (mg_conf_rule_kind_t)d->off;
    rule->where = n->where;
    rule->glob = strdup(n->args[0]);
    if (rule->glob == NULL)
        return "out of memory";
    return strv_append(&rule->scopes, &rule->nscopes, n, 1, false);
}

/* An origin (RFC 6454): scheme "://" host [":" port], no path, compared
 * case-insensitively (stored lowercase). */
static const char *
set_allowed_origins(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                    const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;

    for (size_t i = 0; i < n->nargs; i++) {
        const char *o = n->args[i], *rest = strstr(o, "://");
        bool ok = rest != NULL && rest != o && rest[3] != '\0';
        if (strchr(o, '*') != NULL)
            return mg_conf_errf(cx,
                                "wildcard origin %s: list exact origins (a wildcard would let "
                                "any site drive the server with the caller's credentials)",
                                mg_conf_q(cx, o));
        for (const char *p = o; ok && p < rest; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.';
        for (const unsigned char *p = (const unsigned char *)(ok ? rest + 3 : ""); *p; p++)
            ok &= *p > 0x20 && *p < 0x7f && strchr("/?#@\"\\", *p) == NULL;
        if (!ok)
            return mg_conf_errf(cx,
                                "invalid origin %s (expected SCHEME://HOST[:PORT], no path, "
                                "e.g. \"https://app.example.com\")",
                                mg_conf_q(cx, o));
    }
    return strv_append(&r->allowed_origins, &r->nallowed_origins, n, 0, true);
}

/* Host names without a port (the port of a Host header is ignored), or an
 * [IPv6] literal. */
static const char *
set_server_name(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;

    for (size_t i = 0; i < n->nargs; i++) {
        const char *h = n->args[i];
        bool ok;
        if (h[0] == '[') {
            char buf[64];
            struct in6_addr a6;
            size_t len = strlen(h);
            ok = len > 2 && len - 2 < sizeof(buf) && h[len - 1] == ']';
            if (ok) {
                memcpy(buf, h + 1, len - 2);
                buf[len - 2] = '\0';
                ok = inet_pton(AF_INET6, buf, &a6) == 1;
            }
        } else {
            ok = valid_host_name(h);
        }
        if (!ok)
            return mg_conf_errf(cx, "invalid server name %s (a host name or [IPv6], no port)",
                                mg_conf_q(cx, h));
    }
    return strv_append(&r->server_names, &r->nserver_names, n, 0, true);
}

/* An HTTP field name (RFC 9110 section 5.1: a token). */
static bool
valid_field_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p) != NULL))
            return false;
    return true;
}

static const char *
set_identity_header(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                    const mg_conf_directive_t *d)
{
    static const char *const kinds[MG_CONF_IDENTITY_COUNT] = {"subject", "client_id", "scopes",
                                                              "issuer"};
    mg_conf_route_t *r = obj;
    const char *name = n->args[1];
    size_t k;

    for (k = 0; k < MG_CONF_IDENTITY_COUNT; k++)
        if (strcmp(n->args[0], kinds[k]) == 0)
            break;
    if (k == MG_CONF_IDENTITY_COUNT)
        return mg_conf_errf(cx,
                            "invalid identity %s for \"identity_header\" (expected subject, "
                            "client_id, scopes or issuer)",
                            mg_conf_q(cx, n->args[0]));
    if (strcmp(name, "off") == 0)
        name = "";
    else if (!valid_field_name(name))
        return mg_conf_errf(cx, "invalid header name %s", mg_conf_q(cx, name));
    else if (strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Host") == 0 ||
             strcasecmp(name, "X-MCP-Identity") == 0 || strncasecmp(name, "Mcp-", 4) == 0)
        return mg_conf_errf(cx, "header name %s is reserved", mg_conf_q(cx, name));
    if (r->identity_header_names[k] != NULL)
        return mg_conf_errf(cx, "duplicate \"identity_header %s\"", kinds[k]);
    r->identity_header_names[k] = strdup(name);
    return r->identity_header_names[k] == NULL ? "out of memory" : NULL;
}

/* ADDR or ADDR/PREFIX, IPv4 or IPv6 literals. */
static const char *
set_trusted_proxy(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                  const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;
    mg_conf_cidr_t *v = realloc(c->trusted_proxies,
                                (c->ntrusted_proxies + n->nargs) * sizeof(*v));

    if (v == NULL)
        return "out of memory";
    c->trusted_proxies = v;
    for (size_t i = 0; i < n->nargs; i++) {
        char buf[64];
        const char *a = n->args[i], *slash = strchr(a, '/');
        size_t alen = slash ? (size_t)(slash - a) : strlen(a);
        mg_conf_cidr_t *e = &v[c->ntrusted_proxies];
        long prefix = -1;
        bool ok = alen > 0 && alen < sizeof(buf);

        memset(e, 0, sizeof(*e));
        if (ok) {
            memcpy(buf, a, alen);
            buf[alen] = '\0';
            if (inet_pton(AF_INET, buf, e->addr) == 1)
                e->family = AF_INET;
            else if (inet_pton(AF_INET6, buf, e->addr) == 1)
                e->family = AF_INET6;
            else
                ok = false;
        }
        if (ok && slash != NULL) {
            prefix = 0;
            ok = slash[1] != '\0';
            for (const char *p = slash + 1; ok && *p; p++) {
                ok = *p >= '0' && *p <= '9' && prefix <= 128;
                prefix = prefix * 10 + (*p - '0');
            }
        }
        if (ok && prefix > (e->family == AF_INET ? 32 : 128))
            ok = false;
        if (!ok)
            return mg_conf_errf(cx,
                                "invalid address %s for \"trusted_proxy\" (expected an IPv4 or "
                                "IPv6 literal with an optional /PREFIX)",
                                mg_conf_q(cx, a));
        e->prefix = prefix < 0 ? (e->family == AF_INET ? 32u : 128u) : (unsigned)prefix;
        c->ntrusted_proxies++;
    }
    return NULL;
}

/* After the whole file: at most one default route, and it names its resource
 * (the bare well-known document describes exactly that resource). */
static void
check_default_route(mg_conf_ctx_t *cx)
{
    const mg_conf_t *c = cx->conf;
    const mg_conf_route_t *first = NULL;

    for (size_t i = 0; i < c->nroutes; i++) {
        const mg_conf_route_t *r = &c->routes[i];
        if (!r->is_default)
            continue;
        if (r->resource == NULL)
            mg_conf_error(cx, &r->where, "default route %s has no \"resource\"",
                          mg_conf_q(cx, r->path ? r->path : "?"));
        if (first != NULL)
            mg_conf_error(cx, &r->where, "only one route may be \"default\" (the first is at %s:%d)",
                          first->where.file, first->where.line);
        else
            first = r;
    }
}

/* --- shared state: redis { } and rate_limit (docs/redis.md) ------------------------- */

/* redis HOST:PORT | [IPv6]:PORT | unix:PATH [{ ... }] at the top level. */
static const char *
set_redis(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    mg_conf_t *c = obj;
    mg_conf_redis_t *r = calloc(1, sizeof(*r));
    const char *a = n->args[0], *colon;
    long port = 0;

    if (r == NULL)
        return "out of memory";
    c->redis = r;
    r->where = n->where;
    r->rc.timeout_ms = MG_REDIS_DEFAULT_TIMEOUT_MS;
    r->rc.on_failure = MG_REDIS_FAIL_LOCAL;
    if (n->has_block)
        cx->block = r;
    r->text = strdup(a);
    if (r->text == NULL)
        return "out of memory";
    if (strncmp(a, "unix:", 5) == 0) {
        if (a[5] == '\0')
            return mg_conf_errf(cx, "invalid redis address %s: empty socket path",
                                mg_conf_q(cx, a));
        r->unix_path = mg_conf_resolve_path(n->where.file, a + 5);
        return r->unix_path == NULL ? "out of memory" : NULL;
    }
    if (a[0] == '[') {
        const char *end = strchr(a, ']');
        struct in6_addr a6;
        if (end == NULL || end[1] != ':')
            return mg_conf_errf(cx,
                                "invalid redis address %s (expected HOST:PORT, [IPv6]:PORT or "
                                "unix:PATH)",
                                mg_conf_q(cx, a));
        r->host = strndup(a + 1, (size_t)(end - a - 1));
        if (r->host == NULL)
            return "out of memory";
        if (inet_pton(AF_INET6, r->host, &a6) != 1)
            return mg_conf_errf(cx, "invalid redis address %s: bad IPv6 address",
                                mg_conf_q(cx, a));
        colon = end + 1;
    } else {
        colon = strrchr(a, ':');
        if (colon == NULL || colon == a)
            return mg_conf_errf(cx,
                                "invalid redis address %s (expected HOST:PORT, [IPv6]:PORT or "
                                "unix:PATH)",
                                mg_conf_q(cx, a));
        r->host = strndup(a, (size_t)(colon - a));
        if (r->host == NULL)
            return "out of memory";
        if (!valid_host_name(r->host))
            return mg_conf_errf(cx, "invalid redis address %s: bad host", mg_conf_q(cx, a));
    }
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535) {
            port = -1;
            break;
        }
        port = port * 10 + (*p - '0');
    }
    if (colon[1] == '\0' || port < 1 || port > 65535)
        return mg_conf_errf(cx, "invalid redis address %s: port must be 1..65535",
                            mg_conf_q(cx, a));
    r->rc.port = (uint16_t)port;
    return NULL;
}

static void
post_redis(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj)
{
    const mg_conf_redis_t *r = obj;

    if (r->user != NULL && r->password == NULL)
        mg_conf_error(cx, &n->where, "redis %s: \"user\" needs a \"password\"",
                      mg_conf_q(cx, n->args[0]));
}

static const char *
set_redis_database(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                   const mg_conf_directive_t *d)
{
    mg_conf_redis_t *r = obj;
    const char *s = n->args[0];
    unsigned long v = 0;

    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > 65535) {
            v = 65536;
            break;
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (*s == '\0' || v > 65535)
        return mg_conf_errf(cx, "invalid value %s for \"database\" (expected 0..65535)",
                            mg_conf_q(cx, s));
    r->rc.database = (unsigned)v;
    return NULL;
}

static const char *
set_redis_on_failure(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                     const mg_conf_directive_t *d)
{
    mg_conf_redis_t *r = obj;
    const char *v = n->args[0];

    if (strcmp(v, "local") == 0)
        r->rc.on_failure = MG_REDIS_FAIL_LOCAL;
    else if (strcmp(v, "deny") == 0)
        r->rc.on_failure = MG_REDIS_FAIL_DENY;
    else if (strcmp(v, "allow") == 0)
        r->rc.on_failure = MG_REDIS_FAIL_ALLOW;
    else
        return mg_conf_errf(cx,
                            "invalid value %s for \"on_failure\" (expected local, deny or allow)",
                            mg_conf_q(cx, v));
    return NULL;
}

/* "1..1000000" for COUNT and burst. */
static bool
rl_number(const char *s, size_t len, uint32_t *out)
{
    uint32_t v = 0;

    if (len == 0 || len > 7)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v < 1 || v > 1000000)
        return false;
    *out = v;
    return true;
}

/* rate_limit subject|client|route|tool[:GLOB] COUNT/second|minute|hour [burst N]; */
static const char *
set_rate_limit(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
               const mg_conf_directive_t *d)
{
    mg_conf_route_t *route = obj;
    mg_conf_rate_limit_t rl, *v;
    const char *k = n->args[0], *rate = n->args[1], *slash;

    memset(&rl, 0, sizeof(rl));
    rl.where = n->where;
    if (strcmp(k, "subject") == 0)
        rl.kind = MG_CONF_RL_SUBJECT;
    else if (strcmp(k, "client") == 0)
        rl.kind = MG_CONF_RL_CLIENT;
    else if (strcmp(k, "route") == 0)
        rl.kind = MG_CONF_RL_ROUTE;
    else if (strcmp(k, "tool") == 0 || strncmp(k, "tool:", 5) == 0) {
        rl.kind = MG_CONF_RL_TOOL;
        if (k[4] == ':' && k[5] == '\0')
            return mg_conf_errf(cx, "empty tool pattern in %s", mg_conf_q(cx, k));
    } else
        return mg_conf_errf(cx,
                            "invalid key %s for \"rate_limit\" (expected subject, client, route, "
                            "tool or tool:GLOB)",
                            mg_conf_q(cx, k));
    slash = strchr(rate, '/');
    if (slash == NULL || !rl_number(rate, (size_t)(slash - rate), &rl.count))
        return mg_conf_errf(cx,
                            "invalid rate %s for \"rate_limit\" (expected COUNT/second, "
                            "COUNT/minute or COUNT/hour, COUNT 1..1000000)",
                            mg_conf_q(cx, rate));
    if (strcmp(slash + 1, "second") == 0)
        rl.period_s = 1;
    else if (strcmp(slash + 1, "minute") == 0)
        rl.period_s = 60;
    else if (strcmp(slash + 1, "hour") == 0)
        rl.period_s = 3600;
    else
        return mg_conf_errf(cx,
                            "invalid rate %s for \"rate_limit\" (expected COUNT/second, "
                            "COUNT/minute or COUNT/hour, COUNT 1..1000000)",
                            mg_conf_q(cx, rate));
    rl.burst = rl.count; /* docs/redis.md: without burst, B = COUNT */
    if (n->nargs == 3 && strcmp(n->args[2], "burst") == 0)
        return "\"burst\" needs a value (1..1000000)";
    if (n->nargs == 3 || (n->nargs == 4 && strcmp(n->args[2], "burst") != 0))
        return mg_conf_errf(cx, "unexpected %s after the rate (expected \"burst N\")",
                            mg_conf_q(cx, n->args[2]));
    if (n->nargs == 4 && !rl_number(n->args[3], strlen(n->args[3]), &rl.burst))
        return mg_conf_errf(cx, "invalid burst %s for \"rate_limit\" (expected 1..1000000)",
                            mg_conf_q(cx, n->args[3]));
    /* The same rounding as mg_rl_interval_us(). */
    rl.interval_us = ((uint64_t)rl.period_s * 1000000u + rl.count - 1) / rl.count;
    if (rl.interval_us * rl.burst > (UINT64_C(1) << 50))
        return mg_conf_errf(cx, "burst %u is too large for %s", rl.burst, mg_conf_q(cx, rate));
    if (route->nrate_limits >= MG_CONF_MAX_RATE_LIMITS)
        return mg_conf_errf(cx, "too many \"rate_limit\" lines in one route (at most %d)",
                            MG_CONF_MAX_RATE_LIMITS);
    if (rl.kind == MG_CONF_RL_TOOL) {
        rl.glob = strdup(k[4] == ':' ? k + 5 : "*");
        if (rl.glob == NULL)
            return "out of memory";
    }
    for (size_t i = 0; i < route->nrate_limits; i++) {
        const mg_conf_rate_limit_t *o = &route->rate_limits[i];
        if (o->kind == rl.kind && o->interval_us == rl.interval_us && o->burst == rl.burst &&
            (o->glob == NULL) == (rl.glob == NULL) &&
            (o->glob == NULL || strcmp(o->glob, rl.glob) == 0)) {
            free(rl.glob);
            return mg_conf_errf(cx, "duplicate \"rate_limit\" (first defined at %s:%d)",
                                o->where.file, o->where.line);
        }
    }
    v = realloc(route->rate_limits, (route->nrate_limits + 1) * sizeof(*v));
    if (v == NULL) {
        free(rl.glob);
        return "out of memory";
    }
    route->rate_limits = v;
    v[route->nrate_limits++] = rl;
    return NULL;
}

/* --- API keys, TLS policy, secret files (docs/mcpgate.conf.5) ------------------------ */

/* A file holding a private key: readable now, and for its owner only unless
 * allow_loose_key_permissions (pre-scanned before the walk, so that its place in the file
 * does not matter; the warning is then logged with the other warnings at start). */
static const char *
set_secret_file(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                const mg_conf_directive_t *d)
{
    const char *e = set_file(cx, n, obj, d);
    const char *path = *FIELD(obj, d->off, char *);
    char buf[768];

    if (e != NULL || path == NULL || cx->conf->allow_loose_key_permissions)
        return e;
    if (mg_conf_secret_file_problem(path, buf, sizeof(buf)) != NULL)
        return mg_conf_errf(cx, "%s %s (or \"allow_loose_key_permissions on;\" to only warn)",
                            d->name, buf);
    return NULL;
}

void
mg_conf_note_file_read(mg_conf_ctx_t *cx, const char *file)
{
    struct mg_conf_file_read *v;

    for (size_t i = 0; i < cx->nfiles; i++)
        if (cx->files[i].file == file)
            return;
    v = realloc(cx->files, (cx->nfiles + 1) * sizeof(*v));
    if (v == NULL)
        return; /* then that file is not judged: the load fails on OOM elsewhere anyway */
    cx->files = v;
    v[cx->nfiles].file = file;
    v[cx->nfiles++].judged = false;
}

const char *
mg_conf_check_secret_in_file(mg_conf_ctx_t *cx, const mg_conf_node_t *n, size_t arg)
{
    struct mg_conf_file_read *f = NULL;
    mg_conf_t *c = cx->conf;
    char buf[768];

    if (arg < 32 && (n->env_args & (1u << arg)))
        return NULL; /* ${VAR}: the secret is in the environment, not in the file */
    for (size_t i = 0; i < cx->nfiles && f == NULL; i++)
        if (cx->files[i].file == n->where.file)
            f = &cx->files[i];
    if (f == NULL || f->judged)
        return NULL; /* text loaded from memory, or said once for this file already */
    f->judged = true;
    if (mg_conf_secret_file_problem_of(f->file, "a file holding secrets", buf, sizeof(buf)) ==
        NULL)
        return NULL;
    if (c->allow_loose_key_permissions) {
        mg_conf_where_t *v =
            realloc(c->loose_secret_files, (c->nloose_secret_files + 1) * sizeof(*v));
        if (v == NULL)
            return "out of memory";
        c->loose_secret_files = v;
        v[c->nloose_secret_files++] = n->where;
        return NULL;
    }
    return mg_conf_errf(cx,
                        "%s: %s (or take the value from the environment with ${VAR}, or "
                        "\"allow_loose_key_permissions on;\" to only warn)",
                        n->name, buf);
}

/* A secret written in the config (redis password, introspection_client_secret,
 * upstream_authorization): the file that holds it is owner-only, like a private key. */
static const char *
set_secret_text(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                const mg_conf_directive_t *d)
{
    const char *e = set_text(cx, n, obj, d);

    return e != NULL ? e : mg_conf_check_secret_in_file(cx, n, 0);
}

/* A directive without arguments that turns a bool on (d->off). */
static const char *
set_flag(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    *FIELD(obj, d->off, bool) = true;
    return NULL;
}

/* max_connections N; at top level (the process) or in a listen block (that listener). */
static const char *
set_max_connections(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                    const mg_conf_directive_t *d)
{
    mg_conf_directive_t t = *d;

    t.off = obj == cx->conf ? offsetof(mg_conf_t, max_connections)
                            : offsetof(mg_conf_listen_t, max_connections);
    return set_count(cx, n, obj, &t);
}

/* hsts DURATION|off; in seconds (a year does not fit the millisecond durations). */
static const char *
set_hsts(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    const char *s = n->args[0];
    uint64_t v = 0, mult = 1;
    const char *p = s;

    if (strcmp(s, "off") == 0) {
        ((mg_conf_t *)obj)->hsts_max_age = 0;
        return NULL;
    }
    for (; *p >= '0' && *p <= '9' && v <= UINT32_MAX; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    if (*p == 'm')
        mult = 60;
    else if (*p == 'h')
        mult = 3600;
    else if (*p == 'd')
        mult = 86400;
    else if (*p != 's' && *p != '\0')
        mult = 0;
    if (*p != '\0')
        p++;
    if (p == s || *p != '\0' || mult == 0 || v == 0 || v * mult > 2u * 365 * 86400)
        return mg_conf_errf(cx,
                            "invalid value %s for \"hsts\" (expected a duration of 1s..730d "
                            "such as 365d, or \"off\")",
                            mg_conf_q(cx, s));
    ((mg_conf_t *)obj)->hsts_max_age = (uint32_t)(v * mult);
    return NULL;
}

/* API key names: what the audit log and X-MCP-Client-Id show. */
static bool
valid_key_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static const char *
set_api_key(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj, const mg_conf_directive_t *d)
{
    mg_conf_route_t *r = obj;
    mg_conf_api_key_t *v, *k;

    if (!valid_key_name(n->args[0]))
        return mg_conf_errf(cx,
                            "invalid api_key name %s (1..64 of A-Z a-z 0-9 - _ .)",
                            mg_conf_q(cx, n->args[0]));
    for (size_t i = 0; i < r->napi_keys; i++)
        if (strcmp(r->api_keys[i].name, n->args[0]) == 0)
            return mg_conf_errf(cx, "duplicate api_key %s in this route (first defined at %s:%d)",
                                mg_conf_q(cx, n->args[0]), r->api_keys[i].where.file,
                                r->api_keys[i].where.line);
    v = realloc(r->api_keys, (r->napi_keys + 1) * sizeof(*v));
    if (v == NULL)
        return "out of memory";
    r->api_keys = v;
    k = &v[r->napi_keys];
    memset(k, 0, sizeof(*k));
    k->where = n->where;
    k->name = strdup(n->args[0]);
    if (k->name == NULL)
        return "out of memory";
    r->napi_keys++;
    cx->block = k;
    return NULL;
}

/* The key is the last one of its route (set_api_key appended it). */
static void
post_api_key(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj)
{
    mg_conf_api_key_t *k = obj;
    const mg_conf_route_t *r = NULL;

    for (size_t i = 0; i < cx->conf->nroutes && r == NULL; i++)
        if (cx->conf->routes[i].napi_keys > 0 &&
            &cx->conf->routes[i].api_keys[cx->conf->routes[i].napi_keys - 1] == k)
            r = &cx->conf->routes[i];
    if (!k->has_digest) {
        /* a bad digest statement was already reported */
        for (size_t i = 0; i < n->nchildren; i++)
            if (strcmp(n->children[i].name, "digest") == 0)
                return;
        mg_conf_error(cx, &n->where,
                      "api_key %s has no \"digest\" (mcpgate-token apikey prints one)",
                      mg_conf_q(cx, k->name));
        return;
    }
    if (k->subject == NULL && (k->subject = strdup(k->name)) == NULL)
        mg_conf_error(cx, &n->where, "out of memory");
    for (size_t i = 0; r != NULL && i + 1 < r->napi_keys; i++)
        if (r->api_keys[i].has_digest &&
            memcmp(r->api_keys[i].digest, k->digest, sizeof(k->digest)) == 0)
            mg_conf_error(cx, &n->where, "api_key %s has the same digest as api_key %s (%s:%d)",
                          mg_conf_q(cx, k->name), mg_conf_q(cx, r->api_keys[i].name),
                          r->api_keys[i].where.file, r->api_keys[i].where.line);
}

static const char *
set_api_key_digest(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                   const mg_conf_directive_t *d)
{
    mg_conf_api_key_t *k = obj;

    if (mg_conf_parse_digest(n->args[0], k->digest) != 0)
        return "invalid digest (expected \"sha256:\" and 64 hex digits, the SHA-256 of the key "
               "as printed by mcpgate-token apikey; never the key itself)";
    k->has_digest = true;
    return NULL;
}

static const char *
set_api_key_scopes(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                   const mg_conf_directive_t *d)
{
    mg_conf_api_key_t *k = obj;
    const char *why = check_scopes(cx, n, 0);

    if (why != NULL)
        return why;
    return strv_append(&k->scopes, &k->nscopes, n, 0, false);
}

static const char *
set_api_key_header(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj,
                   const mg_conf_directive_t *d)
{
    static const char *const reserved[] = {
        "Authorization", "Proxy-Authorization", "Host", "Content-Type", "Content-Length",
        "Transfer-Encoding", "Connection", "Origin", "Cookie", "Forwarded", "X-Request-Id",
        "DPoP", "Accept", "Last-Event-ID", "TE", "Upgrade", "Expect", "Keep-Alive",
    };
    mg_conf_route_t *r = obj;
    const char *name = n->args[0];

    if (!valid_field_name(name))
        return mg_conf_errf(cx, "invalid header name %s", mg_conf_q(cx, name));
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return mg_conf_errf(cx, "header name %s is reserved", mg_conf_q(cx, name));
    if (strncasecmp(name, "Mcp-", 4) == 0 || strncasecmp(name, "X-MCP-", 6) == 0 ||
        strncasecmp(name, "X-Forwarded-", 12) == 0 || strncasecmp(name, "Access-Control-", 15) == 0)
        return mg_conf_errf(cx, "header name %s is reserved", mg_conf_q(cx, name));
    r->api_key_header = strdup(name);
    return r->api_key_header == NULL ? "out of memory" : NULL;
}

/* After the whole file: api_key_header needs keys; plain HTTP that leaves the host is
 * refused unless said out loud (SECURITY, issue 10): a plain listener on a non-loopback
 * address needs plaintext_ok, an http:// upstream to a non-loopback host
 * upstream_plaintext_ok, and an issuer fetched over http (allow_http) a loopback host. */
static void
check_transport_and_keys(mg_conf_ctx_t *cx)
{
    const mg_conf_t *c = cx->conf;

    for (size_t i = 0; i < c->nroutes; i++) {
        const mg_conf_route_t *r = &c->routes[i];
        if (r->api_key_header != NULL && r->napi_keys == 0)
            mg_conf_error(cx, &r->where, "route %s has \"api_key_header\" but no \"api_key\"",
                          mg_conf_q(cx, r->path ? r->path : "?"));
    }
    for (size_t i = 0; i < c->nlistens; i++) {
        const mg_conf_listen_t *l = &c->listens[i];
        if (l->text != NULL && l->tls_certificate == NULL && !l->plaintext_ok &&
            !mg_conf_addr_is_loopback((const struct sockaddr *)&l->addr))
            mg_conf_error(cx, &l->where,
                          "listen %s is plain HTTP on a non-loopback address: access tokens "
                          "and API keys would cross the network in clear text (add "
                          "tls_certificate and tls_certificate_key, or \"plaintext_ok;\" in "
                          "its block behind a TLS-terminating proxy or mesh)",
                          mg_conf_q(cx, l->text));
    }
    for (size_t i = 0; i < c->nroutes; i++) {
        const mg_conf_route_t *r = &c->routes[i];
        if (r->upstream != NULL && !r->upstream_tls && !r->upstream_plaintext_ok &&
            !mg_conf_url_is_loopback(r->upstream))
            mg_conf_error(cx, &r->where,
                          "route %s: upstream %s is plain HTTP to a non-loopback host: identity "
                          "headers and upstream_authorization would cross the network in clear "
                          "text (use https, or \"upstream_plaintext_ok;\" in the route behind a "
                          "mesh)",
                          mg_conf_q(cx, r->path ? r->path : "?"), mg_conf_q(cx, r->upstream));
    }
    for (size_t i = 0; i < c->nissuers; i++) {
        const mg_conf_issuer_t *is = &c->issuers[i];
        const char *u = is->jwks_uri != NULL ? is->jwks_uri : is->url;
        const char *what = is->jwks_uri != NULL ? "jwks_uri" : "discovery from the issuer URL";
        if (!is->allow_http)
            continue; /* then http was refused by post_issuer already */
        if (u != NULL && !(is->jwks_file != NULL && is->jwks_uri == NULL) &&
            strncmp(u, "http://", 7) == 0 && !mg_conf_url_is_loopback(u))
            mg_conf_error(cx, &is->where,
                          "issuer %s: %s is plain http to a non-loopback host (\"allow_http "
                          "on;\" only reaches loopback addresses; use https)",
                          mg_conf_q(cx, is->url ? is->url : "?"), what);
        if (is->introspection_endpoint != NULL &&
            strncmp(is->introspection_endpoint, "http://", 7) == 0 &&
            !mg_conf_url_is_loopback(is->introspection_endpoint))
            mg_conf_error(cx, &is->where,
                          "issuer %s: introspection_endpoint is plain http to a non-loopback "
                          "host (\"allow_http on;\" only reaches loopback addresses; use https)",
                          mg_conf_q(cx, is->url ? is->url : "?"));
    }
}

/* --- the table ---------------------------------------------------------------------- */

#define MS_MAX UINT32_MAX
#define T MG_CTX_TOP
#define R MG_CTX_ROUTE
#define L MG_CTX_LISTEN
#define I MG_CTX_ISSUER
#define X MG_CTX_REDIS
#define TOPOFF(f) offsetof(mg_conf_t, f)

/* clang-format off */
const mg_conf_directive_t mg_conf_directives[] = {
    /* DIRECTIVES BEGIN: name, contexts, min/max args, flags, block context, setter, post,
       field, bounds */
    {"workers", T, 1, 1, MG_DIR_ONCE, 0, set_workers, NULL, 0, 0, 0},
    {"listen", T, 1, 1, MG_DIR_BLOCK_OPT, L, set_listen, post_listen, 0, 0, 0},
    {"tls_certificate", L, 1, 1, MG_DIR_ONCE, 0, set_file, NULL,
     offsetof(mg_conf_listen_t, tls_certificate), 0, 0},
    {"tls_certificate_key", L, 1, 1, MG_DIR_ONCE, 0, set_secret_file, NULL,
     offsetof(mg_conf_listen_t, tls_certificate_key), 0, 0},
    {"admin_listen", T, 1, 1, MG_DIR_ONCE, 0, set_admin_listen, NULL, 0, 0, 0},
    {"route", T, 1, 1, MG_DIR_BLOCK, R, set_route, post_route, 0, 0, 0},
    {"upstream", R, 1, 1, MG_DIR_ONCE, 0, set_upstream, NULL, 0, 0, 0},
    {"upstream_ca_file", R, 1, 1, MG_DIR_ONCE, 0, set_file, NULL,
     offsetof(mg_conf_route_t, upstream_ca_file), 0, 0},
    {"upstream_plaintext_ok", R, 0, 0, MG_DIR_ONCE, 0, set_flag, NULL,
     offsetof(mg_conf_route_t, upstream_plaintext_ok), 0, 0},
    {"max_header_size", T, 1, 1, MG_DIR_ONCE, 0, set_size, NULL, TOPOFF(max_header_size),
     1024, 1024 * 1024},
    {"max_body_size", T, 1, 1, MG_DIR_ONCE, 0, set_size, NULL, TOPOFF(max_body_size),
     0, 64 * 1024 * 1024},
    {"client_timeout", T, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL, TOPOFF(client_timeout),
     1, MS_MAX},
    {"upstream_connect_timeout", T, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     TOPOFF(upstream_connect_timeout), 1, MS_MAX},
    {"upstream_timeout", T, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     TOPOFF(upstream_timeout), 1, MS_MAX},
    {"stream_idle_timeout", T, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     TOPOFF(stream_idle_timeout), 1, MS_MAX},
    {"drain_timeout", T, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL, TOPOFF(drain_timeout),
     0, MS_MAX},
    {"sse_keepalive", T, 1, 1, MG_DIR_ONCE, 0, set_duration_off, NULL, TOPOFF(sse_keepalive),
     0, MS_MAX},
    {"max_connections", T | L, 1, 1, MG_DIR_ONCE, 0, set_max_connections, NULL, 0,
     1, 1000000},
    {"max_connections_per_client", T, 1, 1, MG_DIR_ONCE, 0, set_count, NULL,
     TOPOFF(max_connections_per_client), 0, 1000000},
    {"log_level", T, 1, 1, MG_DIR_ONCE, 0, set_log_level, NULL, 0, 0, 0},
    {"access_log", T, 1, 1, MG_DIR_ONCE, 0, set_access_log, NULL, 0, 0, 0},
    {"issuer", T | R, 1, 1, MG_DIR_BLOCK_OPT, I, set_issuer_any, post_issuer_any, 0, 0, 0},
    {"jwks_file", I, 1, 1, MG_DIR_ONCE, 0, set_file, NULL,
     offsetof(mg_conf_issuer_t, jwks_file), 0, 0},
    {"jwks_uri", I, 1, 1, MG_DIR_ONCE, 0, set_url, NULL, offsetof(mg_conf_issuer_t, jwks_uri),
     0, 0},
    {"ca_file", I, 1, 1, MG_DIR_ONCE, 0, set_file, NULL, offsetof(mg_conf_issuer_t, ca_file),
     0, 0},
    {"allow_http", I, 1, 1, MG_DIR_ONCE, 0, set_on_off, NULL,
     offsetof(mg_conf_issuer_t, allow_http), 0, 0},
    {"jwks_min_refresh", I, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     offsetof(mg_conf_issuer_t, jwks_min_refresh), 1000, 7 * 24 * 3600 * 1000u},
    {"jwks_max_refresh", I, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     offsetof(mg_conf_issuer_t, jwks_max_refresh), 1000, 7 * 24 * 3600 * 1000u},
    {"kid_refetch_cooldown", I, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     offsetof(mg_conf_issuer_t, kid_refetch_cooldown), 1000, 24 * 3600 * 1000u},
    {"jwks_max_stale", I, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     offsetof(mg_conf_issuer_t, jwks_max_stale), 0, 30 * 24 * 3600 * 1000u},
    {"introspection_endpoint", I, 1, 1, MG_DIR_ONCE, 0, set_url, NULL,
     offsetof(mg_conf_issuer_t, introspection_endpoint), 0, 0},
    {"introspection_client_id", I, 1, 1, MG_DIR_ONCE, 0, set_text, NULL,
     offsetof(mg_conf_issuer_t, introspection_client_id), 0, 0},
    {"introspection_client_secret", I, 1, 1, MG_DIR_ONCE, 0, set_secret_text, NULL,
     offsetof(mg_conf_issuer_t, introspection_client_secret), 0, 0},
    {"introspection_cache_ttl", I, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     offsetof(mg_conf_issuer_t, introspection_cache_ttl), 1000, 24 * 3600 * 1000u},
    {"validation", I, 1, 1, MG_DIR_ONCE, 0, set_validation, NULL, 0, 0, 0},
    {"revocation", I, 1, 1, MG_DIR_ONCE, 0, set_on_off, NULL,
     offsetof(mg_conf_issuer_t, revocation), 0, 0},
    {"algorithms", I, 1, -1, MG_DIR_ONCE, 0, set_algorithms, NULL, 0, 0, 0},
    {"leeway", I, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL, offsetof(mg_conf_issuer_t, leeway),
     0, 5 * 60 * 1000},
    {"require_typ", I, 1, 1, MG_DIR_ONCE, 0, set_on_off, NULL,
     offsetof(mg_conf_issuer_t, require_typ), 0, 0},
    {"max_token_lifetime", I, 1, 1, MG_DIR_ONCE, 0, set_duration_off, NULL,
     offsetof(mg_conf_issuer_t, max_token_lifetime), 1000, MS_MAX},
    {"max_token_size", I, 1, 1, MG_DIR_ONCE, 0, set_size, NULL,
     offsetof(mg_conf_issuer_t, max_token_size), 1024, 64 * 1024},
    {"resource", R, 1, 1, MG_DIR_ONCE, 0, set_resource, NULL, 0, 0, 0},
    {"token_cache_size", T, 1, 1, MG_DIR_ONCE, 0, set_count, NULL, TOPOFF(token_cache_size),
     0, 1000000},
    {"startup_grace", T, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL, TOPOFF(startup_grace),
     0, 3600 * 1000},
    {"default", R, 0, 0, MG_DIR_ONCE, 0, set_default, NULL, 0, 0, 0},
    {"resource_name", R, 1, 1, MG_DIR_ONCE, 0, set_text, NULL,
     offsetof(mg_conf_route_t, resource_name), 0, 0},
    {"resource_documentation", R, 1, 1, MG_DIR_ONCE, 0, set_url, NULL,
     offsetof(mg_conf_route_t, resource_documentation), 0, 0},
    {"scopes_supported", R, 1, -1, MG_DIR_ONCE, 0, set_scopes_supported, NULL, 0, 0, 0},
    {"require_scope", R, 1, -1, 0, 0, set_require_scope, NULL, 0, 0, 0},
    {"method", R, 2, -1, 0, 0, set_scope_rule, NULL, MG_RULE_METHOD, 0, 0},
    {"tool", R, 2, -1, 0, 0, set_scope_rule, NULL, MG_RULE_TOOL, 0, 0},
    {"prompt", R, 2, -1, 0, 0, set_scope_rule, NULL, MG_RULE_PROMPT, 0, 0},
    {"resource_uri", R, 2, -1, 0, 0, set_scope_rule, NULL, MG_RULE_RESOURCE, 0, 0},
    {"allowed_origins", R, 1, -1, 0, 0, set_allowed_origins, NULL, 0, 0, 0},
    {"cors_origins", R, 1, -1, 0, 0, set_allowed_origins, NULL, 0, 0, 0},
    {"server_name", R, 1, -1, 0, 0, set_server_name, NULL, 0, 0, 0},
    {"identity_headers", R, 1, 1, MG_DIR_ONCE, 0, set_on_off, NULL,
     offsetof(mg_conf_route_t, identity_headers), 0, 0},
    {"identity_header", R, 2, 2, 0, 0, set_identity_header, NULL, 0, 0, 0},
    {"identity_signing_key", R, 1, 1, MG_DIR_ONCE, 0, set_secret_file, NULL,
     offsetof(mg_conf_route_t, identity_signing_key), 0, 0},
    {"upstream_authorization", R, 1, 1, MG_DIR_ONCE, 0, set_secret_text, NULL,
     offsetof(mg_conf_route_t, upstream_authorization), 0, 0},
    {"session_ttl", R, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     offsetof(mg_conf_route_t, session_ttl), 1000, 7 * 24 * 3600 * 1000u},
    {"trusted_proxy", T, 1, -1, 0, 0, set_trusted_proxy, NULL, 0, 0, 0},
    {"legacy_as_metadata", T, 1, 1, MG_DIR_ONCE, 0, set_on_off, NULL,
     TOPOFF(legacy_as_metadata), 0, 0},
    {"redis", T, 1, 1, MG_DIR_ONCE | MG_DIR_BLOCK_OPT, X, set_redis, post_redis, 0, 0, 0},
    {"password", X, 1, 1, MG_DIR_ONCE, 0, set_secret_text, NULL, offsetof(mg_conf_redis_t, password),
     0, 0},
    {"user", X, 1, 1, MG_DIR_ONCE, 0, set_text, NULL, offsetof(mg_conf_redis_t, user), 0, 0},
    {"database", X, 1, 1, MG_DIR_ONCE, 0, set_redis_database, NULL, 0, 0, 0},
    {"timeout", X, 1, 1, MG_DIR_ONCE, 0, set_duration, NULL,
     offsetof(mg_conf_redis_t, rc.timeout_ms), 1, 10 * 1000},
    {"on_failure", X, 1, 1, MG_DIR_ONCE, 0, set_redis_on_failure, NULL, 0, 0, 0},
    {"rate_limit", R, 2, 4, 0, 0, set_rate_limit, NULL, 0, 0, 0},
#define K MG_CTX_APIKEY
    {"api_key", R, 1, 1, MG_DIR_BLOCK, K, set_api_key, post_api_key, 0, 0, 0},
    {"digest", K, 1, 1, MG_DIR_ONCE, 0, set_api_key_digest, NULL, 0, 0, 0},
    {"subject", K, 1, 1, MG_DIR_ONCE, 0, set_text, NULL,
     offsetof(mg_conf_api_key_t, subject), 0, 0},
    {"scopes", K, 1, -1, MG_DIR_ONCE, 0, set_api_key_scopes, NULL, 0, 0, 0},
    {"api_key_header", R, 1, 1, MG_DIR_ONCE, 0, set_api_key_header, NULL, 0, 0, 0},
#undef K
    {"plaintext_ok", L, 0, 0, MG_DIR_ONCE, 0, set_flag, NULL,
     offsetof(mg_conf_listen_t, plaintext_ok), 0, 0},
    {"hsts", T, 1, 1, MG_DIR_ONCE, 0, set_hsts, NULL, 0, 0, 0},
    {"allow_loose_key_permissions", T, 1, 1, MG_DIR_ONCE, 0, set_on_off, NULL,
     TOPOFF(allow_loose_key_permissions), 0, 0},
    /* DIRECTIVES END */
};
/* clang-format on */
#undef T
#undef R
#undef L
#undef I
#undef X
#undef TOPOFF
#undef MS_MAX

const size_t mg_conf_ndirectives = sizeof(mg_conf_directives) / sizeof(mg_conf_directives[0]);

/* --- the interpreter ---------------------------------------------------------------- */

static const mg_conf_directive_t *
lookup(const char *name, size_t *idx)
{
    for (size_t i = 0; i < mg_conf_ndirectives; i++) {
        if (strcmp(mg_conf_directives[i].name, name) == 0) {
            *idx = i;
            return &mg_conf_directives[i];
        }
    }
    return NULL;
}

static const char *
check_shape(mg_conf_ctx_t *cx, const mg_conf_node_t *n, const mg_conf_directive_t *d)
{
    const char *q = mg_conf_q(cx, d->name);

    if ((int)n->nargs < d->min_args || (d->max_args >= 0 && (int)n->nargs > d->max_args)) {
        if (d->min_args == d->max_args)
            return mg_conf_errf(cx, "%s takes %d argument%s, %zu given", q, d->min_args,
                                d->min_args == 1 ? "" : "s", n->nargs);
        if (d->max_args < 0)
            return mg_conf_errf(cx, "%s takes at least %d argument%s, %zu given", q, d->min_args,
                                d->min_args == 1 ? "" : "s", n->nargs);
        return mg_conf_errf(cx, "%s takes %d to %d arguments, %zu given", q, d->min_args,
                            d->max_args, n->nargs);
    }
    if ((d->flags & MG_DIR_BLOCK) && !n->has_block)
        return mg_conf_errf(cx, "%s has no opening \"{\"", q);
    if (!(d->flags & (MG_DIR_BLOCK | MG_DIR_BLOCK_OPT)) && n->has_block)
        return mg_conf_errf(cx, "%s does not take a block", q);
    return NULL;
}

static void
walk(mg_conf_ctx_t *cx, const mg_conf_node_t *v, size_t nv, unsigned ctx, void *obj)
{
    mg_conf_where_t *seen = calloc(mg_conf_ndirectives, sizeof(*seen));

    if (seen == NULL) {
        mg_conf_error(cx, nv ? &v[0].where : NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < nv && !cx->stopped; i++) {
        const mg_conf_node_t *n = &v[i];
        const mg_conf_directive_t *d;
        const char *err;
        size_t idx;
        void *child;

        if (n->bad)
            continue;
        d = lookup(n->name, &idx);
        if (d == NULL) {
            mg_conf_error(cx, &n->where, "unknown directive %s", mg_conf_q(cx, n->name));
            continue;
        }
        if (!(d->contexts & ctx)) {
            mg_conf_error(cx, &n->where, "%s is not allowed here", mg_conf_q(cx, n->name));
            continue;
        }
        if ((err = check_shape(cx, n, d)) != NULL) {
            mg_conf_error(cx, &n->where, "%s", err);
            continue;
        }
        if (d->flags & MG_DIR_ONCE) {
            if (seen[idx].file != NULL) {
                mg_conf_error(cx, &n->where, "duplicate %s (first defined at %s:%d)",
                              mg_conf_q(cx, n->name), seen[idx].file, seen[idx].line);
                continue;
            }
            seen[idx] = n->where;
        }
        cx->block = NULL;
        err = d->set(cx, n, obj, d);
        child = cx->block;
        cx->block = NULL;
        if (err != NULL)
            mg_conf_error(cx, &n->where, "%s", err);
        if (child != NULL && n->has_block) {
            walk(cx, n->children, n->nchildren, d->block_ctx, child);
            if (d->post != NULL)
                d->post(cx, n, child);
        }
    }
    free(seen);
}

void
mg_conf_interpret(mg_conf_ctx_t *cx, const mg_conf_nodes_t *top)
{
    mg_conf_t *c = cx->conf;
    mg_conf_where_t src = {c->source, 0};

    /* Known before any key file is judged, wherever it is written. */
    for (size_t i = 0; i < top->n; i++)
        if (strcmp(top->v[i].name, "allow_loose_key_permissions") == 0 && top->v[i].nargs == 1 &&
            strcmp(top->v[i].args[0], "on") == 0)
            c->allow_loose_key_permissions = true;
    walk(cx, top->v, top->n, MG_CTX_TOP, c);
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n < 1 ? 1 : n > MG_MAX_WORKERS ? MG_MAX_WORKERS : (int)n;
    }
    if (cx->truncated)
        return; /* what is missing may be in the part that was not read */
    if (c->nlistens == 0)
        mg_conf_error(cx, &src, "no \"listen\" directive (at least one is required)");
    if (c->nroutes == 0)
        mg_conf_error(cx, &src, "no \"route\" directive (at least one is required)");
    resolve_route_issuers(cx);
    check_default_route(cx);
    check_transport_and_keys(cx);
    /* The revoked jti values live in Redis only (docs/redis.md, "Revocation"). */
    for (size_t i = 0; c->redis == NULL && i < c->nissuers; i++)
        if (c->issuers[i].revocation)
            mg_conf_error(cx, &c->issuers[i].where,
                          "issuer %s: \"revocation on\" needs a \"redis\" block",
                          mg_conf_q(cx, c->issuers[i].url));
    if (c->redis != NULL) {
        /* mg_redis_conf_t borrows the strings the generation owns. */
        c->redis->rc.host = c->redis->host;
        c->redis->rc.unix_path = c->redis->unix_path;
        c->redis->rc.user = c->redis->user;
        c->redis->rc.password = c->redis->password;
    }
}
