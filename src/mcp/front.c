/* front.c -- protected-resource metadata, well-known routing, Origin/Host/CORS checks and the replies of the MCP front door. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mcpgate/mcp.h"

#define WK_PRM "/.well-known/oauth-protected-resource"
#define WK_AS "/.well-known/oauth-authorization-server"
#define WK_OIDC "/.well-known/openid-configuration"

struct mg_mcp {
    const mg_conf_t *conf;
    char **prm_json; /* per route, NULL without a resource */
    char **prm_url;
    char **res_path; /* per route: the resource URL's path without a final "/" ("" for none) */
};

void
mg_mcp_reply_clear(mg_mcp_reply_t *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static const char *
reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

char *
mg_mcp_reply_serialize(const mg_mcp_reply_t *r, bool keep_alive, bool head_only, size_t *len_out)
{
    char *head = NULL, *out;
    int n;
    size_t blen = head_only || r->body == NULL ? 0 : r->body_len;

    char clen[48] = "";

    /* RFC 9110 8.6: no Content-Length in a 204 (or any 1xx). */
    if (r->status != 204 && r->status >= 200)
        snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", r->body ? r->body_len : 0);
    n = asprintf(&head, "HTTP/1.1 %d %s\r\n%s%s%s%sConnection: %s\r\n%s\r\n", r->status,
                 reason(r->status), r->content_type ? "Content-Type: " : "",
                 r->content_type ? r->content_type : "", r->content_type ? "\r\n" : "", clen,
                 keep_alive ? "keep-alive" : "close", r->headers ? r->headers : "");
    if (n < 0)
        return NULL;
    if ((out = realloc(head, (size_t)n + blen + 1)) == NULL) {
        free(head);
        return NULL;
    }
    if (blen)
        memcpy(out + n, r->body, blen);
    out[(size_t)n + blen] = '\0';
    *len_out = (size_t)n + blen;
    return out;
}

/* --- PRM ------------------------------------------------------------------------- */

/* Offset of the path in an absolute URL ("https://h/p" -> "/p"); strlen when none. */
static size_t
url_path_off(const char *url)
{
    const char *s = strstr(url, "://");
    const char *p = s ? strchr(s + 3, '/') : NULL;

    return p ? (size_t)(p - url) : strlen(url);
}

static char *
build_prm(const mg_conf_t *conf, const mg_conf_route_t *r)
{
    json_t *o = json_object(), *a;
    char *out = NULL;

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "resource", json_string(r->resource));
    if (r->nissuers > 0) {
        a = json_array();
        for (size_t i = 0; i < r->nissuers; i++)
            json_array_append_new(a, json_string(r->issuer_urls[i]));
        json_object_set_new(o, "authorization_servers", a);
    }
    if (r->nscopes_supported > 0) {
        a = json_array();
        for (size_t i = 0; i < r->nscopes_supported; i++)
            json_array_append_new(a, json_string(r->scopes_supported[i]));
        json_object_set_new(o, "scopes_supported", a);
    }
    a = json_array();
    json_array_append_new(a, json_string("header"));
    json_object_set_new(o, "bearer_methods_supported", a);
    if (r->resource_name != NULL)
        json_object_set_new(o, "resource_name", json_string(r->resource_name));
    if (r->resource_documentation != NULL)
        json_object_set_new(o, "resource_documentation", json_string(r->resource_documentation));
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return out;
}

void
mg_mcp_free(mg_mcp_t *mcp)
{
    if (mcp == NULL)
        return;
    for (size_t i = 0; i < mcp->conf->nroutes; i++) {
        if (mcp->prm_json)
            free(mcp->prm_json[i]);
        if (mcp->prm_url)
            free(mcp->prm_url[i]);
        if (mcp->res_path)
            free(mcp->res_path[i]);
    }
    free(mcp->prm_json);
    free(mcp->prm_url);
    free(mcp->res_path);
    free(mcp);
}

mg_mcp_t *
mg_mcp_new(const mg_conf_t *conf)
{
    mg_mcp_t *m = calloc(1, sizeof(*m));
    size_t n = conf->nroutes;

    if (m == NULL)
        return NULL;
    m->conf = conf;
    if ((m->prm_json = calloc(n + 1, sizeof(char *))) == NULL ||
        (m->prm_url = calloc(n + 1, sizeof(char *))) == NULL ||
        (m->res_path = calloc(n + 1, sizeof(char *))) == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const mg_conf_route_t *r = &conf->routes[i];
        size_t off, plen;
        if (r->resource == NULL)
            continue;
        off = url_path_off(r->resource);
        plen = strlen(r->resource + off);
        while (plen > 0 && r->resource[off + plen - 1] == '/')
            plen--; /* RFC 9728 section 3.1: a terminating slash is dropped */
        if ((m->res_path[i] = strndup(r->resource + off, plen)) == NULL)
            goto fail;
        if (asprintf(&m->prm_url[i], "%.*s" WK_PRM "%s", (int)off, r->resource,
                     m->res_path[i]) < 0) {
            m->prm_url[i] = NULL;
            goto fail;
        }
        if ((m->prm_json[i] = build_prm(conf, r)) == NULL)
            goto fail;
    }
    return m;
fail:
    mg_mcp_free(m);
    return NULL;
}

static size_t
route_index(const mg_mcp_t *mcp, const mg_conf_route_t *route)
{
    return (size_t)(route - mcp->conf->routes);
}

const char *
mg_mcp_prm_json(const mg_mcp_t *mcp, const mg_conf_route_t *route)
{
    return mcp->prm_json[route_index(mcp, route)];
}

const char *
mg_mcp_prm_url(const mg_mcp_t *mcp, const mg_conf_route_t *route)
{
    return mcp->prm_url[route_index(mcp, route)];
}

/* Does <rest> (what follows the well-known prefix) name <route>? */
static bool
suffix_names(const mg_mcp_t *mcp, size_t i, const char *rest, size_t len)
{
    const mg_conf_route_t *r = &mcp->conf->routes[i];
    const char *rp = strcmp(r->path, "/") == 0 ? "" : r->path;
    const char *pp = mcp->res_path[i];

    return (strlen(rp) == len && memcmp(rp, rest, len) == 0) ||
           (pp != NULL && strlen(pp) == len && memcmp(pp, rest, len) == 0);
}

static int
set_headers(mg_mcp_reply_t *out, const char *h)
{
    free(out->headers);
    out->headers = strdup(h);
    return out->headers ? 0 : -1;
}

static const char preflight_meta[] =
    "Access-Control-Allow-Origin: *\r\n"
    "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
    "Access-Control-Allow-Headers: MCP-Protocol-Version\r\n"
    "Access-Control-Max-Age: 86400\r\n";

static void
not_found(mg_mcp_reply_t *out)
{
    out->status = 404;
    out->content_type = "application/json";
    out->body = strdup("{\"error\":\"not_found\"}");
    out->body_len = out->body ? strlen(out->body) : 0;
    set_headers(out, "Access-Control-Allow-Origin: *\r\n");
}

mg_mcp_wk_t
mg_mcp_wellknown(const mg_mcp_t *mcp, mg_http_method_t method, const char *path,
                 size_t path_len, mg_mcp_reply_t *out, const mg_conf_route_t **as_route)
{
    static const size_t lprm = sizeof(WK_PRM) - 1, las = sizeof(WK_AS) - 1,
                        loidc = sizeof(WK_OIDC) - 1;
    const char *rest;
    size_t rlen, found = (size_t)-1;
    bool is_as;

    if (as_route)
        *as_route = NULL;
    memset(out, 0, sizeof(*out));
    if (path_len >= lprm && memcmp(path, WK_PRM, lprm) == 0 &&
        (path_len == lprm || path[lprm] == '/')) {
        rest = path + lprm;
        rlen = path_len - lprm;
        is_as = false;
    } else if (path_len >= las && memcmp(path, WK_AS, las) == 0 &&
               (path_len == las || path[las] == '/')) {
        rest = path + las;
        rlen = path_len - las;
        is_as = true;
    } else if (path_len >= loidc && memcmp(path, WK_OIDC, loidc) == 0 &&
               (path_len == loidc || path[loidc] == '/')) {
        not_found(out); /* never an OpenID provider (SPEC D-22) */
        return MG_MCP_WK_REPLY;
    } else {
        return MG_MCP_WK_NONE;
    }
    while (rlen > 0 && rest[rlen - 1] == '/')
        rlen--;
    for (size_t i = 0; i < mcp->conf->nroutes && found == (size_t)-1; i++) {
        if (mcp->prm_json[i] == NULL)
            continue;
        if (rlen == 0 ? mcp->conf->routes[i].is_default : suffix_names(mcp, i, rest, rlen))
            found = i;
    }
    if (is_as) {
        /* the legacy (2025-03-26) clients' view of the MCP origin as the AS */
        if (!mcp->conf->legacy_as_metadata || found == (size_t)-1 ||
            mcp->conf->routes[found].nissuers == 0 || method == MG_HTTP_OPTIONS ||
            (method != MG_HTTP_GET && method != MG_HTTP_HEAD)) {
            if (mcp->conf->legacy_as_metadata && found != (size_t)-1 &&
                method == MG_HTTP_OPTIONS) {
                out->status = 204;
                set_headers(out, preflight_meta);
                return MG_MCP_WK_REPLY;
            }
            not_found(out);
            return MG_MCP_WK_REPLY;
        }
        if (as_route)
            *as_route = &mcp->conf->routes[found];
        return MG_MCP_WK_AS_METADATA;
    }
    if (method == MG_HTTP_OPTIONS) {
        out->status = 204;
        set_headers(out, preflight_meta);
        return MG_MCP_WK_REPLY;
    }
    if (method != MG_HTTP_GET && method != MG_HTTP_HEAD) {
        out->status = 405;
        out->content_type = "application/json";
        out->body = strdup("{\"error\":\"method_not_allowed\"}");
        out->body_len = out->body ? strlen(out->body) : 0;
        set_headers(out, "Allow: GET, HEAD, OPTIONS\r\nAccess-Control-Allow-Origin: *\r\n");
        return MG_MCP_WK_REPLY;
    }
    if (found == (size_t)-1) {
        not_found(out);
        return MG_MCP_WK_REPLY;
    }
    out->status = 200;
    out->content_type = "application/json";
    out->body = strdup(mcp->prm_json[found]);
    out->body_len = out->body ? strlen(out->body) : 0;
    set_headers(out, "Cache-Control: public, max-age=3600\r\nAccess-Control-Allow-Origin: *\r\n");
    return MG_MCP_WK_REPLY;
}

/* --- Origin, Host, CORS -------------------------------------------------------- */

static bool
resource_origin_is(const mg_conf_route_t *r, const char *o, size_t len)
{
    size_t off;

    if (r->resource == NULL)
        return false;
    off = url_path_off(r->resource);
    return off == len && strncasecmp(r->resource, o, len) == 0;
}

bool
mg_mcp_origin_allowed(const mg_conf_route_t *route, const char *origin, size_t len)
{
    if (origin == NULL)
        return true;
    for (size_t i = 0; i < route->nallowed_origins; i++)
        if (strlen(route->allowed_origins[i]) == len &&
            strncasecmp(route->allowed_origins[i], origin, len) == 0)
            return true;
    return resource_origin_is(route, origin, len);
}

bool
mg_mcp_host_allowed(const mg_conf_route_t *route, const char *host, size_t len)
{
    size_t hl = len;

    if (route->nserver_names == 0)
        return true;
    if (host == NULL || len == 0)
        return false;
    if (host[0] == '[') {
        const char *rb = memchr(host, ']', len);
        if (rb == NULL)
            return false;
        hl = (size_t)(rb - host) + 1;
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon != NULL)
            hl = (size_t)(colon - host);
    }
    if (hl > 1 && host[hl - 1] == '.')
        hl--;
    for (size_t i = 0; i < route->nserver_names; i++)
        if (strlen(route->server_names[i]) == hl &&
            strncasecmp(route->server_names[i], host, hl) == 0)
            return true;
    return false;
}

int
mg_mcp_error(int status, const char *id_json, int rpc_code, const char *message,
             const char *data_json, mg_mcp_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    out->status = status;
    out->content_type = "application/json";
    out->body = mg_rpc_error_body(id_json, rpc_code, message, data_json, &out->body_len);
    return out->body ? 0 : -1;
}

bool
mg_mcp_check_origin_host(const mg_conf_route_t *route, const mg_http_request_head_t *head,
                         mg_mcp_reply_t *out)
{
    const mg_http_header_t *o = mg_http_find_header(head->headers, head->nheaders, "Origin");
    size_t norigin = 0;

    for (size_t i = 0; i < head->nheaders; i++)
        norigin += head->headers[i].name_len == 6 &&
                   strncasecmp(head->headers[i].name, "Origin", 6) == 0;
    if (norigin > 1 || (o != NULL && !mg_mcp_origin_allowed(route, o->value, o->value_len))) {
        mg_mcp_error(403, NULL, MG_RPC_INVALID_REQUEST, "Origin not allowed", NULL, out);
        return false;
    }
    if (!mg_mcp_host_allowed(route, head->host, head->host_len)) {
        mg_mcp_error(403, NULL, MG_RPC_INVALID_REQUEST, "Host not allowed", NULL, out);
        return false;
    }
    return true;
}

static const char *const cors_allowed[] = {
    "Authorization", "Content-Type", "Accept",   "Mcp-Session-Id", "MCP-Protocol-Version",
    "Last-Event-ID", "Mcp-Method",   "Mcp-Name",
};

void
mg_mcp_preflight(const mg_conf_route_t *route, const mg_http_request_head_t *head,
                 mg_mcp_reply_t *out)
{
    const mg_http_header_t *o = mg_http_find_header(head->headers, head->nheaders, "Origin");
    const mg_http_header_t *rh =
        mg_http_find_header(head->headers, head->nheaders, "Access-Control-Request-Headers");
    char *allow = NULL, *h = NULL;
    size_t alen = 0;
    FILE *f;

    memset(out, 0, sizeof(*out));
    if (o == NULL || !mg_mcp_origin_allowed(route, o->value, o->value_len)) {
        mg_mcp_error(403, NULL, MG_RPC_INVALID_REQUEST, "Origin not allowed", NULL, out);
        return;
    }
    if ((f = open_memstream(&allow, &alen)) == NULL)
        goto oom;
    /* echo the requested names we allow, in the order asked (H-16) */
    for (size_t i = 0, first = 1; rh != NULL && i < rh->value_len;) {
        size_t s, e;
        while (i < rh->value_len && (rh->value[i] == ' ' || rh->value[i] == '\t' ||
                                     rh->value[i] == ','))
            i++;
        s = i;
        while (i < rh->value_len && rh->value[i] != ',' && rh->value[i] != ' ' &&
               rh->value[i] != '\t')
            i++;
        e = i;
        if (e == s)
            continue;
        bool ok = (e - s > 10 && strncasecmp(rh->value + s, "Mcp-Param-", 10) == 0) ||
                  (route->api_key_header != NULL && strlen(route->api_key_header) == e - s &&
                   strncasecmp(route->api_key_header, rh->value + s, e - s) == 0);
        for (size_t k = 0; !ok && k < sizeof(cors_allowed) / sizeof(cors_allowed[0]); k++)
            ok = strlen(cors_allowed[k]) == e - s &&
                 strncasecmp(cors_allowed[k], rh->value + s, e - s) == 0;
        for (size_t k = s; ok && k < e; k++)
            ok = strchr("!#$%&'*+-.^_`|~", rh->value[k]) != NULL ||
                 (rh->value[k] >= '0' && rh->value[k] <= '9') ||
                 (rh->value[k] >= 'a' && rh->value[k] <= 'z') ||
                 (rh->value[k] >= 'A' && rh->value[k] <= 'Z');
        if (ok) {
            fprintf(f, "%s%.*s", first ? "" : ", ", (int)(e - s), rh->value + s);
            first = 0;
        }
    }
    fclose(f);
    if (asprintf(&h,
                 "Access-Control-Allow-Origin: %.*s\r\n"
                 "Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n"
                 "%s%s%s"
                 "Access-Control-Max-Age: 86400\r\n"
                 "Vary: Origin\r\n",
                 (int)o->value_len, o->value, *allow ? "Access-Control-Allow-Headers: " : "",
                 allow, *allow ? "\r\n" : "") < 0)
        goto oom;
    free(allow);
    out->status = 204;
    out->headers = h;
    return;
oom:
    free(allow);
    out->status = 503;
}

char *
mg_mcp_cors_headers(const mg_conf_route_t *route, const mg_http_request_head_t *head)
{
    const mg_http_header_t *o = mg_http_find_header(head->headers, head->nheaders, "Origin");
    char *h = NULL;

    if (o == NULL || !mg_mcp_origin_allowed(route, o->value, o->value_len))
        return strdup("");
    if (asprintf(&h,
                 "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n"
                 "Access-Control-Expose-Headers: WWW-Authenticate, Mcp-Session-Id, "
                 "MCP-Protocol-Version\r\n",
                 (int)o->value_len, o->value) < 0)
        return NULL;
    return h;
}

bool
mg_mcp_trusted_proxy(const mg_conf_t *conf, const struct sockaddr *peer)
{
    uint8_t a[16];
    int fam;

    if (peer == NULL)
        return false;
    if (peer->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
        fam = AF_INET;
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)peer;
        memcpy(a, &s6->sin6_addr, 16);
        fam = AF_INET6;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            memmove(a, a + 12, 4);
            fam = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < conf->ntrusted_proxies; i++) {
        const mg_conf_cidr_t *c = &conf->trusted_proxies[i];
        unsigned bits = c->prefix, k = 0;
        bool ok = c->family == fam;
        for (; ok && bits >= 8; bits -= 8, k++)
            ok = a[k] == c->addr[k];
        if (ok && bits > 0) {
            uint8_t mask = (uint8_t)(0xff << (8 - bits));
            ok = (a[k] & mask) == (c->addr[k] & mask);
        }
        if (ok)
            return true;
    }
    return false;
}

/* The forwarded elements considered, the last ones of the request: a longer chain than this
 * is not walked further back than its last MAX_FWD hops. */
#define MAX_FWD 32

typedef struct fwd_list {
    const char *p[MAX_FWD];
    size_t n[MAX_FWD];
    size_t count; /* elements seen; only the last MAX_FWD are kept (a ring) */
} fwd_list_t;

static void
fwd_push(fwd_list_t *l, const char *p, size_t n)
{
    l->p[l->count % MAX_FWD] = p;
    l->n[l->count % MAX_FWD] = n;
    l->count++;
}

static void
trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* ":port" of a node (RFC 7239 section 6: digits, or an obfuscated "_..." port). */
static bool
port_ok(const char *s, size_t n)
{
    if (n < 2 || s[0] != ':')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] >= '0' && s[i] <= '9') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= 'a' && s[i] <= 'z') && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* One node: "192.0.2.1", "192.0.2.1:5000", "2001:db8::1", "[2001:db8::1]" or
 * "[2001:db8::1]:5000", optionally quoted (Forwarded). Anything else ("unknown", an
 * obfuscated "_name", a host name) is not an address. */
static bool
fwd_addr(const char *s, size_t n, struct sockaddr_in6 *out)
{
    char buf[INET6_ADDRSTRLEN];
    const char *colon;

    trim_ows(&s, &n);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n > 0 && s[0] == '[') {
        const char *e = memchr(s, ']', n);
        size_t rest;
        if (e == NULL)
            return false;
        rest = n - (size_t)(e - s) - 1;
        if (rest > 0 && !port_ok(e + 1, rest))
            return false;
        s++;
        n = (size_t)(e - s);
    } else if ((colon = memchr(s, ':', n)) != NULL &&
               memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) == NULL) {
        /* One colon: IPv4 with a port (an IPv6 literal has two or more). */
        if (!port_ok(colon, n - (size_t)(colon - s)))
            return false;
        n = (size_t)(colon - s);
    }
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)(void *)out)->sin_addr) == 1) {
        ((struct sockaddr_in *)(void *)out)->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, &out->sin6_addr) == 1) {
        out->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

/* Splits <s> at commas outside quoted strings, pushing each element. */
static void
fwd_split(fwd_list_t *l, const char *s, size_t n)
{
    size_t start = 0;
    bool q = false;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] == '\\' && q) {
            i++;
            continue;
        }
        if (i < n && s[i] == '"')
            q = !q;
        if (i == n || (s[i] == ',' && !q)) {
            const char *e = s + start;
            size_t en = i - start;
            trim_ows(&e, &en);
            if (en > 0) /* empty list elements are allowed and ignored (RFC 9110 5.6.1) */
                fwd_push(l, e, en);
            start = i + 1;
        }
    }
}

/* The value of the for= parameter of one Forwarded element (RFC 7239 section 4), or
 * false when it has none. */
static bool
fwd_for(const char *s, size_t n, const char **v, size_t *vn)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i;
        bool q = false;
        const char *pair;
        size_t pn;
        while (j < n && (q || s[j] != ';')) {
            if (s[j] == '"')
                q = !q;
            j++;
        }
        pair = s + i;
        pn = j - i;
        trim_ows(&pair, &pn);
        if (pn > 4 && strncasecmp(pair, "for=", 4) == 0) {
            *v = pair + 4;
            *vn = pn - 4;
            return true;
        }
        i = j + 1;
    }
    return false;
}

bool
mg_mcp_forwarded_client(const mg_conf_t *conf, const mg_http_header_t *headers, size_t nheaders,
                        char *out, size_t outlen)
{
    fwd_list_t l = {.count = 0};
    bool xff = false, have = false;
    size_t first;

    for (size_t i = 0; i < nheaders; i++) {
        if (headers[i].name_len == 15 && strncasecmp(headers[i].name, "X-Forwarded-For", 15) == 0) {
            if (!xff)
                l.count = 0; /* X-Forwarded-For wins over Forwarded */
            xff = true;
            fwd_split(&l, headers[i].value, headers[i].value_len);
        } else if (!xff && headers[i].name_len == 9 &&
                   strncasecmp(headers[i].name, "Forwarded", 9) == 0) {
            fwd_split(&l, headers[i].value, headers[i].value_len);
        }
    }
    first = l.count > MAX_FWD ? l.count - MAX_FWD : 0;
    /* From the nearest hop back: each trusted hop vouches for the one before it; the first
     * untrusted address is the client. A node that is not an address ends the walk at the
     * last hop that was understood. */
    for (size_t k = l.count; k > first; k--) {
        const char *e = l.p[(k - 1) % MAX_FWD];
        size_t en = l.n[(k - 1) % MAX_FWD];
        struct sockaddr_in6 sa;
        const void *a;
        int fam;
        if (!xff && !fwd_for(e, en, &e, &en))
            break;
        if (!fwd_addr(e, en, &sa))
            break;
        fam = sa.sin6_family;
        a = fam == AF_INET ? (const void *)&((struct sockaddr_in *)(void *)&sa)->sin_addr
                           : (const void *)&sa.sin6_addr;
        if (fam == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sa.sin6_addr)) {
            /* one client, one rate-limit key: ::ffff:192.0.2.1 is written 192.0.2.1 */
            fam = AF_INET;
            a = sa.sin6_addr.s6_addr + 12;
        }
        if (inet_ntop(fam, a, out, (socklen_t)outlen) == NULL)
            break;
        have = true;
        if (!mg_mcp_trusted_proxy(conf, (const struct sockaddr *)&sa))
            break;
    }
    return have;
}

/* --- API keys ------------------------------------------------------------------- */

bool
mg_mcp_digest_equal(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, MG_API_KEY_DIGEST_LEN) == 0;
}

const mg_conf_api_key_t *
mg_mcp_api_key_find(const mg_conf_route_t *route, const char *key, size_t len)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    const mg_conf_api_key_t *found = NULL;

    if (route->napi_keys == 0 || key == NULL || len == 0)
        return NULL;
    /* Comparing digests, not keys: the configuration never holds a key, and how long a
     * comparison takes says nothing about the key presented. */
    if (EVP_Digest(key, len, d, &dlen, EVP_sha256(), NULL) != 1 ||
        dlen != MG_API_KEY_DIGEST_LEN)
        return NULL;
    for (size_t i = 0; i < route->napi_keys; i++) {
        const mg_conf_api_key_t *k = &route->api_keys[i];
        bool eq = k->has_digest && mg_mcp_digest_equal(d, k->digest);
        if (eq && found == NULL)
            found = k;
    }
    OPENSSL_cleanse(d, sizeof(d));
    return found;
}

mg_jwt_claims_t *
mg_mcp_api_key_claims(const mg_conf_api_key_t *key)
{
    mg_jwt_claims_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->iss = strdup(MG_API_KEY_ISSUER);
    c->sub = strdup(key->subject ? key->subject : key->name);
    c->client_id = strdup(key->name);
    if (c->iss == NULL || c->sub == NULL || c->client_id == NULL)
        goto fail;
    if (key->nscopes > 0) {
        c->scopes = calloc(key->nscopes, sizeof(char *));
        if (c->scopes == NULL)
            goto fail;
        for (size_t i = 0; i < key->nscopes; i++) {
            if ((c->scopes[i] = strdup(key->scopes[i])) == NULL)
                goto fail;
            c->n_scopes++;
        }
    }
    return c;
fail:
    mg_jwt_claims_free(c);
    return NULL;
}

/* --- challenges ------------------------------------------------------------------ */

int
mg_mcp_challenge(const mg_mcp_t *mcp, const mg_conf_route_t *route, mg_challenge_kind_t kind,
                 const char *description, const mg_scope_set_t *scopes, const char *id_json,
                 mg_mcp_reply_t *out)
{
    const char *const *sv = NULL;
    size_t ns = 0;
    char *ch;
    static const char *const msgs[] = {"Authorization required", "Invalid access token",
                                       "Invalid authorization request", "Insufficient scope"};

    memset(out, 0, sizeof(*out));
    if (kind == MG_CHALLENGE_NO_TOKEN || kind == MG_CHALLENGE_INVALID_TOKEN) {
        sv = (const char *const *)route->scopes_supported;
        ns = route->nscopes_supported;
    } else if (kind == MG_CHALLENGE_INSUFFICIENT_SCOPE && scopes != NULL) {
        sv = scopes->v;
        ns = scopes->n;
    }
    ch = mg_challenge_build(kind, mg_mcp_prm_url(mcp, route), sv, ns, description);
    if (ch == NULL)
        return -1;
    if (asprintf(&out->headers, "WWW-Authenticate: %s\r\n", ch) < 0)
        out->headers = NULL;
    free(ch);
    out->status = mg_challenge_status(kind);
    out->content_type = "application/json";
    out->body = mg_rpc_error_body(id_json,
                                  kind == MG_CHALLENGE_INVALID_REQUEST ? MG_RPC_INVALID_REQUEST
                                                                       : -32001,
                                  msgs[kind], NULL, &out->body_len);
    if (out->headers == NULL || out->body == NULL) {
        mg_mcp_reply_clear(out);
        return -1;
    }
    return 0;
}

int
mg_mcp_unavailable(unsigned retry_after, mg_mcp_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    out->status = 503;
    out->content_type = "application/json";
    out->body = mg_rpc_error_body(NULL, -32003, "Token verification temporarily unavailable",
                                  NULL, &out->body_len);
    if (asprintf(&out->headers, "Retry-After: %u\r\n", retry_after ? retry_after : 1) < 0)
        out->headers = NULL;
    return out->body && out->headers ? 0 : -1;
}
