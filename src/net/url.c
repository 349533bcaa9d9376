/* url.c -- strict parsing, origin comparison and redirect resolution of http(s) URLs (pure). */
#include "mcpgate/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static bool
is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned char
lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* A byte allowed literally in path or query (RFC 3986 3.3, 3.4: pchar, '/',
 * '?'); '%' is checked separately for its two hex digits. */
static bool
is_path_byte(unsigned char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    /* clang-format off */
    switch (c) {
    case '-': case '.': case '_': case '~':                               /* unreserved */
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': /* sub-delims */
    case '+': case ',': case ';': case '=':
    case ':': case '@': case '/': case '?':
        return true;
    default:
        return false;
    }
    /* clang-format on */
}

/* Check a path+query span; on success, a copy ("/" when empty) goes to *out. */
static int
copy_path(const char *p, size_t n, char **out, const char **why)
{
    char *s = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '#') {
            *why = "URL has a fragment";
            goto fail;
        }
        if (c == '%') {
            if (i + 2 >= n) {
                *why = "bad percent-encoding in URL path";
                goto fail;
            }
            if (!is_hex((unsigned char)p[i + 1]) || !is_hex((unsigned char)p[i + 2])) {
                *why = "bad percent-encoding in URL path";
                goto fail;
            }
            i += 2;
            continue;
        }
        if (!is_path_byte(c)) {
            *why = "invalid character in URL path";
            goto fail;
        }
    }
    if (n == 0 || p[0] == '?') {
        /* RFC 9110 4.2.1: an empty path is sent as "/". */
        s = malloc(n + 2);
        if (s == NULL)
            goto nomem;
        s[0] = '/';
        memcpy(s + 1, p, n);
        s[n + 1] = '\0';
    } else {
        s = malloc(n + 1);
        if (s == NULL)
            goto nomem;
        memcpy(s, p, n);
        s[n] = '\0';
    }
    *out = s;
    return 0;
nomem:
    *why = "out of memory";
fail:
    free(s);
    return -1;
}

/* A reg-name host: labels of [a-z0-9_-], 1..63 bytes, separated by single
 * dots. A host whose last label looks numeric must be a dotted quad. */
static int
check_host(mg_url_t *u, const char *why_numeric, const char **why)
{
    const char *h = u->host;
    size_t n = strlen(h), label = 0, last_start = 0;
    struct in_addr a4;

    if (n == 0) {
        *why = "URL has an empty host";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0) {
                *why = "empty label in URL host";
                return -1;
            }
            label = 0;
            last_start = i + 1;
            continue;
        }
        if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) {
            *why = c == '%' ? "percent-encoded URL host" : "invalid character in URL host";
            return -1;
        }
        if (++label > 63) {
            *why = "URL host label longer than 63 bytes";
            return -1;
        }
    }
    if (label == 0) {
        *why = "empty label in URL host";
        return -1;
    }
    /* The last label decides (WHATWG URL "ends in a number"): all digits, or
     * 0x followed by hex digits, means an IPv4 address was meant. */
    {
        const char *l = h + last_start;
        bool numeric = true;
        if (l[0] == '0' && l[1] == 'x') {
            for (const char *q = l + 2; *q; q++)
                numeric = numeric && is_hex((unsigned char)*q);
        } else {
            for (const char *q = l; *q; q++)
                numeric = numeric && is_digit((unsigned char)*q);
        }
        if (numeric) {
            if (inet_pton(AF_INET, h, &a4) != 1) {
                *why = why_numeric;
                return -1;
            }
            u->host_kind = MG_URL_HOST_IPV4;
        }
    }
    return 0;
}

int
mg_url_parse(const char *s, size_t len, mg_url_t *out, const char **why)
{
    const char *p, *end = s + len, *auth, *auth_end, *host_end;
    const char *dummy;
    size_t i;

    if (why == NULL)
        why = &dummy;
    memset(out, 0, sizeof(*out));
    if (len > MG_URL_MAX_LEN) {
        *why = "URL too long";
        goto fail;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F) {
            *why = c == 0      ? "NUL byte in URL"
                   : c == ' '  ? "space in URL"
                   : c >= 0x80 ? "non-ASCII byte in URL"
                               : "control byte in URL";
            goto fail;
        }
        if (c == '\\') {
            *why = "backslash in URL";
            goto fail;
        }
    }
    /* scheme ":" "//" (RFC 3986 3.1, 3.2): only http and https. */
    for (p = s; p < end &&
                (is_alpha((unsigned char)*p) ||
                 (p > s && (is_digit((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')));
         p++)
        ;
    if (p == s || p == end || *p != ':') {
        *why = "URL has no scheme";
        goto fail;
    }
    if (p - s == 5 && strncasecmp(s, "https", 5) == 0) {
        out->https = true;
    } else if (p - s == 4 && strncasecmp(s, "http", 4) == 0) {
        out->https = false;
    } else {
        *why = "URL scheme is not http or https";
        goto fail;
    }
    if (end - p < 3 || p[1] != '/' || p[2] != '/') {
        *why = "URL has no authority (expected scheme://host)";
        goto fail;
    }
    auth = p + 3;
    for (auth_end = auth;
         auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#'; auth_end++)
        ;
    if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL) {
        *why = "URL has userinfo";
        goto fail;
    }
    if (auth < auth_end && *auth == '[') {
        /* IP-literal (RFC 3986 3.2.2); IPvFuture and zone ids are refused. */
        const char *close = memchr(auth, ']', (size_t)(auth_end - auth));
        struct in6_addr a6;
        char tmp[64];
        size_t n;
        if (close == NULL) {
            *why = "unterminated IPv6 literal in URL";
            goto fail;
        }
        n = (size_t)(close - auth - 1);
        if (n == 0 || n >= sizeof(tmp)) {
            *why = "bad IPv6 literal in URL";
            goto fail;
        }
        memcpy(tmp, auth + 1, n);
        tmp[n] = '\0';
        if (strchr(tmp, '%') != NULL) {
            *why = "IPv6 zone identifier in URL";
            goto fail;
        }
        if (inet_pton(AF_INET6, tmp, &a6) != 1) {
            *why = "bad IPv6 literal in URL";
            goto fail;
        }
        /* Canonical text form, so that origins compare byte for byte. */
        if (inet_ntop(AF_INET6, &a6, out->host, sizeof(out->host)) == NULL) {
            *why = "bad IPv6 literal in URL";
            goto fail;
        }
        out->host_kind = MG_URL_HOST_IPV6;
        host_end = close + 1;
        if (host_end < auth_end && *host_end != ':') {
            *why = "junk after IPv6 literal in URL";
            goto fail;
        }
    } else {
        const char *colon = memchr(auth, ':', (size_t)(auth_end - auth));
        size_t n;
        host_end = colon ? colon : auth_end;
        n = (size_t)(host_end - auth);
        if (n > MG_URL_MAX_HOST) {
            *why = "URL host too long";
            goto fail;
        }
        for (i = 0; i < n; i++)
            out->host[i] = (char)lower((unsigned char)auth[i]);
        out->host[n] = '\0';
        out->host_kind = MG_URL_HOST_NAME;
        if (check_host(out, "numeric URL host is not a dotted-quad IPv4 address", why) != 0)
            goto fail;
    }
    out->port = out->https ? 443 : 80;
    if (host_end < auth_end) {
        /* host_end points at ':' */
        const char *d = host_end + 1;
        unsigned long port = 0;
        size_t nd = (size_t)(auth_end - d);
        if (nd == 0) {
            *why = "empty port in URL";
            goto fail;
        }
        if (nd > 5) {
            *why = "bad port in URL";
            goto fail;
        }
        for (i = 0; i < nd; i++) {
            if (!is_digit((unsigned char)d[i])) {
                *why = "bad port in URL";
                goto fail;
            }
            port = port * 10 + (unsigned long)(d[i] - '0');
        }
        if (port == 0 || port > 65535) {
            *why = "port out of range in URL";
            goto fail;
        }
        out->port = (uint16_t)port;
        out->port_explicit = true;
    }
    if (copy_path(auth_end, (size_t)(end - auth_end), &out->path, why) != 0)
        goto fail;
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

void
mg_url_clear(mg_url_t *u)
{
    if (u == NULL)
        return;
    free(u->path);
    memset(u, 0, sizeof(*u));
}

bool
mg_url_same_origin(const mg_url_t *a, const mg_url_t *b)
{
    return a->https == b->https && a->port == b->port && strcmp(a->host, b->host) == 0;
}

int
mg_url_format_host(const mg_url_t *u, char *buf, size_t cap)
{
    bool v6 = u->host_kind == MG_URL_HOST_IPV6;
    bool dflt = u->port == (u->https ? 443 : 80);
    int n;

    if (dflt)
        n = snprintf(buf, cap, "%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "");
    else
        n = snprintf(buf, cap, "%s%s%s:%u", v6 ? "[" : "", u->host, v6 ? "]" : "",
                     (unsigned)u->port);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

int
mg_url_format_origin(const mg_url_t *u, char *buf, size_t cap)
{
    const char *scheme = u->https ? "https://" : "http://";
    size_t sl = strlen(scheme);
    int n;

    if (cap <= sl)
        return -1;
    memcpy(buf, scheme, sl);
    n = mg_url_format_host(u, buf + sl, cap - sl);
    return n < 0 ? -1 : (int)sl + n;
}

int
mg_url_resolve(const mg_url_t *base, const char *ref, size_t len, mg_url_t *out, const char **why)
{
    char origin[MG_URL_MAX_HOST + 32];
    char *abs = NULL;
    const char *hash;
    const char *dummy;
    size_t n, i;
    int on, rc = -1;

    if (why == NULL)
        why = &dummy;
    memset(out, 0, sizeof(*out));
    hash = memchr(ref, '#', len);
    if (hash != NULL)
        len = (size_t)(hash - ref);
    if (len == 0) {
        *why = "empty Location";
        goto done;
    }
    /* Has a scheme? (RFC 3986 4.2: a colon before any '/', '?' or '#'.) */
    for (i = 0; i < len && ref[i] != '/' && ref[i] != '?' && ref[i] != ':'; i++)
        ;
    if (i < len && ref[i] == ':' && i > 0) {
        rc = mg_url_parse(ref, len, out, why);
        goto done;
    }
    if (len >= 2 && ref[0] == '/' && ref[1] == '/') {
        const char *scheme = base->https ? "https:" : "http:";
        n = strlen(scheme) + len;
        if ((abs = malloc(n + 1)) == NULL)
            goto nomem;
        snprintf(abs, n + 1, "%s%.*s", scheme, (int)len, ref);
        rc = mg_url_parse(abs, n, out, why);
        goto done;
    }
    on = mg_url_format_origin(base, origin, sizeof(origin));
    if (on < 0) {
        *why = "bad base URL";
        goto done;
    }
    if (ref[0] == '/') {
        n = (size_t)on + len;
        if ((abs = malloc(n + 1)) == NULL)
            goto nomem;
        snprintf(abs, n + 1, "%s%.*s", origin, (int)len, ref);
    } else {
        /* RFC 3986 5.2.3: merge with the base path up to its last '/'. Dot
         * segments are left for the server to judge: no request goes to
         * another origin whatever they say. */
        const char *bp = base->path ? base->path : "/";
        size_t qpos = strcspn(bp, "?");
        size_t dir = 0;
        for (i = 0; i < qpos; i++)
            if (bp[i] == '/')
                dir = i + 1;
        if (ref[0] == '?')
            dir = qpos;
        n = (size_t)on + dir + len;
        if ((abs = malloc(n + 1)) == NULL)
            goto nomem;
        snprintf(abs, n + 1, "%s%.*s%.*s", origin, (int)dir, bp, (int)len, ref);
    }
    rc = mg_url_parse(abs, n, out, why);
    goto done;
nomem:
    *why = "out of memory";
done:
    free(abs);
    return rc;
}

bool
mg_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = s6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && b[12] == 127;
    }
    return false;
}
