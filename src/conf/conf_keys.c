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
    bool cert = false, key = false;

    /* look at the statements, not the fields: a bad file was already reported */
    for (size_t i = 0; i < n->nchildren; i++) {
        cert |= strcmp(n->children[i].name, "tls_certificate") == 0;
        key |= strcmp(n->children[i].name, "tls_certificate_key") == 0;
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

static void
post_issuer(mg_conf_ctx_t *cx, const mg_conf_node_t *n, void *obj)
{
    bool jwks = false;

    for (size_t i = 0; i < n->nchildren; i++)
        jwks |= strcmp(n->children[i].name, "jwks_file") == 0;
    if (!jwks)
        mg_conf_error(cx, &n->where, "issuer %s needs \"jwks_file\"", mg_conf_q(cx, n->args[0]));
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

/* --- the table ---------------------------------------------------------------------- */

#define MS_MAX UINT32_MAX
#define T MG_CTX_TOP
#define R MG_CTX_ROUTE
#define L MG_CTX_LISTEN
#define I MG_CTX_ISSUER
#define TOPOFF(f) offsetof(mg_conf_t, f)

/* clang-format off */
const mg_conf_directive_t mg_conf_directives[] = {
    /* DIRECTIVES BEGIN: name, contexts, min/max args, flags, block context, setter, post,
       field, bounds */
    {"workers", T, 1, 1, MG_DIR_ONCE, 0, set_workers, NULL, 0, 0, 0},
    {"listen", T, 1, 1, MG_DIR_BLOCK_OPT, L, set_listen, post_listen, 0, 0, 0},
    {"tls_certificate", L, 1, 1, MG_DIR_ONCE, 0, set_file, NULL,
     offsetof(mg_conf_listen_t, tls_certificate), 0, 0},
    {"tls_certificate_key", L, 1, 1, MG_DIR_ONCE, 0, set_file, NULL,
     offsetof(mg_conf_listen_t, tls_certificate_key), 0, 0},
    {"admin_listen", T, 1, 1, MG_DIR_ONCE, 0, set_admin_listen, NULL, 0, 0, 0},
    {"route", T, 1, 1, MG_DIR_BLOCK, R, set_route, post_route, 0, 0, 0},
    {"upstream", R, 1, 1, MG_DIR_ONCE, 0, set_upstream, NULL, 0, 0, 0},
    {"upstream_ca_file", R, 1, 1, MG_DIR_ONCE, 0, set_file, NULL,
     offsetof(mg_conf_route_t, upstream_ca_file), 0, 0},
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
    {"log_level", T, 1, 1, MG_DIR_ONCE, 0, set_log_level, NULL, 0, 0, 0},
    {"issuer", T | R, 1, 1, MG_DIR_BLOCK_OPT, I, set_issuer_any, post_issuer_any, 0, 0, 0},
    {"jwks_file", I, 1, 1, MG_DIR_ONCE, 0, set_file, NULL,
     offsetof(mg_conf_issuer_t, jwks_file), 0, 0},
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
    /* DIRECTIVES END */
};
/* clang-format on */
#undef T
#undef R
#undef L
#undef I
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
}
