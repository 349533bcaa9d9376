/* discovery.c -- metadata URL list, metadata document checks and cache lifetimes (pure, no I/O). */
#include "mcpgate/discovery.h"
#include "mcpgate/url.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* https, or with allow_http an http URL whose host is loopback by its
 * spelling; the HTTP client checks the resolved address again. */
static bool
url_allowed(const mg_url_t *u, bool allow_http)
{
    if (u->https)
        return true;
    if (!allow_http)
        return false;
    switch (u->host_kind) {
    case MG_URL_HOST_IPV4:
        return strncmp(u->host, "127.", 4) == 0;
    case MG_URL_HOST_IPV6:
        return strcmp(u->host, "::1") == 0;
    case MG_URL_HOST_NAME:
        return strcmp(u->host, "localhost") == 0;
    }
    return false;
}

static char *
concat3(const char *a, size_t al, const char *b, const char *c, size_t cl)
{
    size_t bl = strlen(b);
    char *s = malloc(al + bl + cl + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, a, al);
    memcpy(s + al, b, bl);
    memcpy(s + al + bl, c, cl);
    s[al + bl + cl] = '\0';
    return s;
}

int
mg_discovery_urls(const char *issuer, bool allow_http, char *urls[MG_DISCOVERY_MAX_URLS], size_t *n,
                  const char **why)
{
    static const char oauth[] = "/.well-known/oauth-authorization-server";
    static const char oidc[] = "/.well-known/openid-configuration";
    mg_url_t u;
    const char *origin_end, *path;
    size_t origin_len, path_len, i;
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    *n = 0;
    for (i = 0; i < MG_DISCOVERY_MAX_URLS; i++)
        urls[i] = NULL;
    if (issuer == NULL || mg_url_parse(issuer, strlen(issuer), &u, why) != 0)
        return -1;
    if (strchr(u.path, '?') != NULL) {
        *why = "issuer has a query";
        goto fail;
    }
    if (!url_allowed(&u, allow_http)) {
        *why = u.https      ? "issuer not allowed"
               : allow_http ? "http issuer is not a loopback host"
                            : "issuer is not https (allow_http is off)";
        goto fail;
    }
    /* Split the issuer as written: "scheme://authority" and the path. */
    origin_end = strstr(issuer, "://") + 3;
    origin_end += strcspn(origin_end, "/");
    origin_len = (size_t)(origin_end - issuer);
    path = origin_end;
    path_len = strlen(path);
    if (path_len > 0 && path[path_len - 1] == '/')
        path_len--; /* "https://a/t1/" and "https://a/" build like "https://a/t1", "https://a" */
    if (path_len == 0) {
        urls[0] = concat3(issuer, origin_len, oauth, "", 0);
        urls[1] = concat3(issuer, origin_len, oidc, "", 0);
        *n = 2;
    } else {
        urls[0] = concat3(issuer, origin_len, oauth, path, path_len);
        urls[1] = concat3(issuer, origin_len, oidc, path, path_len);
        urls[2] = concat3(issuer, origin_len + path_len, oidc, "", 0);
        *n = 3;
    }
    for (i = 0; i < *n; i++) {
        if (urls[i] == NULL) {
            *why = "out of memory";
            goto fail;
        }
    }
    mg_url_clear(&u);
    return 0;
fail:
    mg_url_clear(&u);
    for (i = 0; i < MG_DISCOVERY_MAX_URLS; i++) {
        free(urls[i]);
        urls[i] = NULL;
    }
    *n = 0;
    return -1;
}

/* Quote a document value for a message: at most 80 bytes, printable ASCII. */
static void
quote(char *dst, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    if (cap < 8)
        return;
    for (size_t i = 0; i < len && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 80) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        dst[o++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    dst[o] = '\0';
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* An endpoint member: absent (NULL, when optional) or a usable URL. */
static int
take_endpoint(json_t *doc, const char *name, bool required, bool allow_http, char **out, char *err,
              size_t errlen)
{
    json_t *v = json_object_get(doc, name);
    const char *s, *why = NULL;
    size_t len;
    mg_url_t u;
    char q[96];

    *out = NULL;
    if (v == NULL) {
        if (required)
            errf(err, errlen, "metadata has no \"%s\"", name);
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        errf(err, errlen, "metadata \"%s\" is not a string", name);
        return -1;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    quote(q, sizeof(q), s, len);
    if (strlen(s) != len || mg_url_parse(s, len, &u, &why) != 0) {
        errf(err, errlen, "metadata \"%s\" \"%s\" is not a usable URL: %s", name, q,
             why ? why : "NUL byte");
        return -1;
    }
    if (!url_allowed(&u, allow_http)) {
        errf(err, errlen, "metadata \"%s\" \"%s\" is not https%s", name, q,
             allow_http ? " nor http to a loopback host" : "");
        mg_url_clear(&u);
        return -1;
    }
    mg_url_clear(&u);
    if ((*out = strdup(s)) == NULL) {
        errf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int
mg_discovery_parse_metadata(const char *issuer, const char *doc, size_t len, bool allow_http,
                            mg_discovery_meta_t *out, char *err, size_t errlen)
{
    json_t *root = NULL, *iss;
    json_error_t jerr;
    char q[96], qc[96];
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        errf(err, errlen, "metadata is not valid JSON: %s (line %d)", jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_object(root)) {
        errf(err, errlen, "metadata is not a JSON object");
        goto done;
    }
    iss = json_object_get(root, "issuer");
    if (iss == NULL) {
        errf(err, errlen, "metadata has no \"issuer\"");
        goto done;
    }
    if (!json_is_string(iss)) {
        errf(err, errlen, "metadata \"issuer\" is not a string");
        goto done;
    }
    /* D-15, RFC 8414 3.3: identical, byte for byte. */
    if (json_string_length(iss) != strlen(issuer) ||
        memcmp(json_string_value(iss), issuer, strlen(issuer)) != 0) {
        quote(q, sizeof(q), json_string_value(iss), json_string_length(iss));
        quote(qc, sizeof(qc), issuer, strlen(issuer));
        errf(err, errlen, "metadata issuer \"%s\" does not equal the configured issuer \"%s\"", q,
             qc);
        goto done;
    }
    if (take_endpoint(root, "jwks_uri", true, allow_http, &out->jwks_uri, err, errlen) != 0 ||
        take_endpoint(root, "introspection_endpoint", false, allow_http,
                      &out->introspection_endpoint, err, errlen) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        mg_discovery_meta_clear(out);
    json_decref(root);
    return rc;
}

void
mg_discovery_meta_clear(mg_discovery_meta_t *m)
{
    if (m == NULL)
        return;
    free(m->jwks_uri);
    free(m->introspection_endpoint);
    m->jwks_uri = NULL;
    m->introspection_endpoint = NULL;
}

/* ---- dates and lifetimes ------------------------------------------------ */

static int
two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

int
mg_http_parse_imf_fixdate(const char *s, size_t len, time_t *out)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    struct tm tm;
    int day, mon = -1, year, hh, mm, ss, y1, y2;
    bool dayname = false;
    time_t t;

    /* "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes, fixed positions. */
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
        return -1;
    for (int i = 0; i < 7; i++)
        dayname = dayname || memcmp(s, days + 3 * i, 3) == 0;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, months + 3 * i, 3) == 0)
            mon = i;
    day = two_digits(s + 5);
    y1 = two_digits(s + 12);
    y2 = two_digits(s + 14);
    hh = two_digits(s + 17);
    mm = two_digits(s + 20);
    ss = two_digits(s + 23);
    if (!dayname || mon < 0 || day < 1 || y1 < 0 || y2 < 0 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 60 || day > mdays[mon])
        return -1;
    year = y1 * 100 + y2;
    if (mon == 1 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss == 60 ? 59 : ss;
    t = timegm(&tm);
    if (t == (time_t)-1 && !(year == 1969 && mon == 11 && day == 31))
        return -1;
    *out = t;
    return 0;
}

static bool
is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int64_t
mg_cache_lifetime(const char *cache_control, const char *expires, time_t now)
{
    const int64_t cap = INT64_C(2147483648); /* RFC 9111 1.2.2 */
    int64_t max_age = -1;
    bool have_max_age = false, bad_max_age = false, no_store = false;

    if (cache_control != NULL) {
        const char *p = cache_control;
        /* cache-directive = token [ "=" ( token / quoted-string ) ], comma
         * separated with optional whitespace (RFC 9111 5.2). Each turn
         * consumes at least one byte. */
        while (*p) {
            const char *name, *val = NULL;
            size_t nlen, vlen = 0;
            bool quoted = false;

            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            if (!*p)
                break;
            name = p;
            while (is_tchar((unsigned char)*p))
                p++;
            nlen = (size_t)(p - name);
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '=') {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                if (*p == '"') {
                    quoted = true;
                    val = ++p;
                    while (*p && *p != '"') {
                        if (*p == '\\' && p[1])
                            p++;
                        p++;
                    }
                    vlen = (size_t)(p - val);
                    if (*p == '"')
                        p++;
                } else {
                    val = p;
                    while (is_tchar((unsigned char)*p))
                        p++;
                    vlen = (size_t)(p - val);
                }
            }
            /* Skip anything malformed up to the next comma. */
            while (*p && *p != ',')
                p++;
            (void)quoted;
            if (nlen == 0)
                continue;
            if ((nlen == 8 && strncasecmp(name, "no-store", 8) == 0) ||
                (nlen == 8 && strncasecmp(name, "no-cache", 8) == 0)) {
                no_store = true;
            } else if (nlen == 7 && strncasecmp(name, "max-age", 7) == 0 && !have_max_age) {
                /* The first max-age counts (RFC 9111 4.2.1). */
                int64_t v = 0;
                have_max_age = true;
                if (val == NULL || vlen == 0) {
                    bad_max_age = true;
                    continue;
                }
                for (size_t i = 0; i < vlen; i++) {
                    if (val[i] < '0' || val[i] > '9') {
                        bad_max_age = true;
                        break;
                    }
                    if (v < cap)
                        v = v * 10 + (val[i] - '0');
                }
                max_age = v > cap ? cap : v;
            }
        }
    }
    if (no_store)
        return 0;
    if (have_max_age)
        return bad_max_age ? 0 : max_age;
    if (expires != NULL) {
        time_t t;
        if (mg_http_parse_imf_fixdate(expires, strlen(expires), &t) != 0)
            return 0; /* RFC 9111 5.3: an invalid date means already expired */
        if ((int64_t)t <= (int64_t)now)
            return 0;
        return ((int64_t)t - (int64_t)now) > cap ? cap : (int64_t)t - (int64_t)now;
    }
    return -1;
}
