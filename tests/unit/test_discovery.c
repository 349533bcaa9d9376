/* test_discovery.c -- unit tests of the pure discovery parts (src/net/discovery.c). */
#include "mcpgate/discovery.h"
#include "mgtest.h"

#include <stdlib.h>
#include <string.h>

static bool
contains(const char *hay, const char *needle)
{
    bool ok = hay != NULL && strstr(hay, needle) != NULL;
    if (!ok)
        printf("# \"%s\" does not contain \"%s\"\n", hay ? hay : "(null)", needle);
    return ok;
}

static void
test_urls(void)
{
    static const struct {
        const char *issuer;
        bool allow_http;
        size_t n;
        const char *want[MG_DISCOVERY_MAX_URLS];
    } cases[] = {
        {"https://a/t1",
         false,
         3,
         {"https://a/.well-known/oauth-authorization-server/t1",
          "https://a/.well-known/openid-configuration/t1",
          "https://a/t1/.well-known/openid-configuration"}},
        {"https://a/t1/",
         false,
         3,
         {"https://a/.well-known/oauth-authorization-server/t1",
          "https://a/.well-known/openid-configuration/t1",
          "https://a/t1/.well-known/openid-configuration"}},
        {"https://a/realms/x/y",
         false,
         3,
         {"https://a/.well-known/oauth-authorization-server/realms/x/y",
          "https://a/.well-known/openid-configuration/realms/x/y",
          "https://a/realms/x/y/.well-known/openid-configuration"}},
        {"https://a",
         false,
         2,
         {"https://a/.well-known/oauth-authorization-server",
          "https://a/.well-known/openid-configuration"}},
        {"https://a/",
         false,
         2,
         {"https://a/.well-known/oauth-authorization-server",
          "https://a/.well-known/openid-configuration"}},
        /* The issuer's origin is kept as written. */
        {"https://AS.example:8443/T",
         false,
         3,
         {"https://AS.example:8443/.well-known/oauth-authorization-server/T",
          "https://AS.example:8443/.well-known/openid-configuration/T",
          "https://AS.example:8443/T/.well-known/openid-configuration"}},
        {"https://[::1]:9/",
         false,
         2,
         {"https://[::1]:9/.well-known/oauth-authorization-server",
          "https://[::1]:9/.well-known/openid-configuration"}},
        {"http://127.0.0.1:8080/t",
         true,
         3,
         {"http://127.0.0.1:8080/.well-known/oauth-authorization-server/t",
          "http://127.0.0.1:8080/.well-known/openid-configuration/t",
          "http://127.0.0.1:8080/t/.well-known/openid-configuration"}},
        {"http://localhost",
         true,
         2,
         {"http://localhost/.well-known/oauth-authorization-server",
          "http://localhost/.well-known/openid-configuration"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *urls[MG_DISCOVERY_MAX_URLS];
        size_t n = 99;
        const char *why = NULL;
        int rc = mg_discovery_urls(cases[i].issuer, cases[i].allow_http, urls, &n, &why);
        if (rc != 0)
            printf("# %s: %s\n", cases[i].issuer, why);
        MG_CHECK_INT(rc, 0);
        MG_CHECK_INT(n, cases[i].n);
        for (size_t k = 0; rc == 0 && k < n; k++) {
            MG_CHECK_STR(urls[k], cases[i].want[k]);
            free(urls[k]);
        }
    }
}

static void
test_urls_refused(void)
{
    static const struct {
        const char *issuer;
        bool allow_http;
        const char *why;
    } cases[] = {
        {"http://a/t1", false, "issuer is not https (allow_http is off)"},
        {"http://127.0.0.1/t1", false, "issuer is not https (allow_http is off)"},
        {"http://a/t1", true, "http issuer is not a loopback host"},
        {"http://192.0.2.1/", true, "http issuer is not a loopback host"},
        {"http://[2001:db8::1]/", true, "http issuer is not a loopback host"},
        {"https://a/t1?x=1", false, "issuer has a query"},
        {"https://a/t1#f", false, "URL has a fragment"},
        {"https://u@a/t1", false, "URL has userinfo"},
        {"a/t1", false, "URL has no scheme"},
        {"", false, "URL has no scheme"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *urls[MG_DISCOVERY_MAX_URLS];
        size_t n = 99;
        const char *why = NULL;
        MG_CHECK_INT(mg_discovery_urls(cases[i].issuer, cases[i].allow_http, urls, &n, &why), -1);
        MG_CHECK_STR(why, cases[i].why);
        MG_CHECK_INT(n, 0);
        MG_CHECK(urls[0] == NULL && urls[1] == NULL && urls[2] == NULL);
    }
    {
        char *urls[MG_DISCOVERY_MAX_URLS];
        size_t n;
        MG_CHECK_INT(mg_discovery_urls(NULL, false, urls, &n, NULL), -1);
    }
}

static void
test_metadata_ok(void)
{
    mg_discovery_meta_t m;
    char err[256];
    const char *doc = "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"https://a/t1/jwks\","
                      "\"introspection_endpoint\":\"https://a/t1/introspect\","
                      "\"scopes_supported\":[\"x\"]}";

    MG_CHECK_INT(
        mg_discovery_parse_metadata("https://a/t1", doc, strlen(doc), false, &m, err, sizeof(err)),
        0);
    MG_CHECK_STR(m.jwks_uri, "https://a/t1/jwks");
    MG_CHECK_STR(m.introspection_endpoint, "https://a/t1/introspect");
    mg_discovery_meta_clear(&m);
    MG_CHECK(m.jwks_uri == NULL);
    mg_discovery_meta_clear(NULL);

    doc = "{\"issuer\":\"https://a/\",\"jwks_uri\":\"https://keys.example/k\"}";
    MG_CHECK_INT(
        mg_discovery_parse_metadata("https://a/", doc, strlen(doc), false, &m, err, sizeof(err)),
        0);
    MG_CHECK(m.introspection_endpoint == NULL);
    mg_discovery_meta_clear(&m);

    /* Loopback http endpoints with allow_http. */
    doc = "{\"issuer\":\"http://127.0.0.1:9/t\",\"jwks_uri\":\"http://127.0.0.1:9/jwks\","
          "\"introspection_endpoint\":\"http://[::1]:9/i\"}";
    MG_CHECK_INT(mg_discovery_parse_metadata("http://127.0.0.1:9/t", doc, strlen(doc), true, &m,
                                             err, sizeof(err)),
                 0);
    mg_discovery_meta_clear(&m);
}

static void
test_metadata_refused(void)
{
    static const struct {
        const char *issuer;
        const char *doc;
        bool allow_http;
        const char *err;
    } cases[] = {
        {"https://a/t1", "", false, "metadata is not valid JSON"},
        {"https://a/t1", "{", false, "metadata is not valid JSON"},
        {"https://a/t1", "[1]", false, "metadata is not a JSON object"},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\",\"issuer\":\"https://a/t1\"}", false,
         "metadata is not valid JSON: duplicate object key"},
        {"https://a/t1", "{\"jwks_uri\":\"https://a/j\"}", false, "metadata has no \"issuer\""},
        {"https://a/t1", "{\"issuer\":1,\"jwks_uri\":\"https://a/j\"}", false,
         "metadata \"issuer\" is not a string"},
        /* D-15: byte for byte. */
        {"https://a/t1", "{\"issuer\":\"https://a/t1/\",\"jwks_uri\":\"https://a/j\"}", false,
         "metadata issuer \"https://a/t1/\" does not equal the configured issuer \"https://a/t1\""},
        {"https://a/t1/", "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"https://a/j\"}", false,
         "does not equal the configured issuer \"https://a/t1/\""},
        {"https://a/t1", "{\"issuer\":\"https://A/t1\",\"jwks_uri\":\"https://a/j\"}", false,
         "does not equal"},
        {"https://a/t1", "{\"issuer\":\"https://a:443/t1\",\"jwks_uri\":\"https://a/j\"}", false,
         "does not equal"},
        {"https://a/t1", "{\"issuer\":\"https://a/t\\n1\",\"jwks_uri\":\"https://a/j\"}", false,
         "metadata issuer \"https://a/t?1\""},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\"}", false, "metadata has no \"jwks_uri\""},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\",\"jwks_uri\":null}", false,
         "metadata \"jwks_uri\" is not a string"},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"/jwks\"}", false,
         "metadata \"jwks_uri\" \"/jwks\" is not a usable URL: URL has no scheme"},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"http://a/j\"}", false,
         "metadata \"jwks_uri\" \"http://a/j\" is not https"},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"http://a/j\"}", true,
         "is not https nor http to a loopback host"},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"http://127.0.0.1/j\"}", false,
         "is not https"},
        {"https://a/t1", "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"https://u@a/j\"}", false,
         "URL has userinfo"},
        {"https://a/t1",
         "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"https://a/j\","
         "\"introspection_endpoint\":7}",
         false, "metadata \"introspection_endpoint\" is not a string"},
        {"https://a/t1",
         "{\"issuer\":\"https://a/t1\",\"jwks_uri\":\"https://a/j\","
         "\"introspection_endpoint\":\"http://a/i\"}",
         false, "metadata \"introspection_endpoint\" \"http://a/i\" is not https"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_discovery_meta_t m;
        char err[256] = "";
        int rc = mg_discovery_parse_metadata(cases[i].issuer, cases[i].doc, strlen(cases[i].doc),
                                             cases[i].allow_http, &m, err, sizeof(err));
        MG_CHECK_INT(rc, -1);
        MG_CHECK(contains(err, cases[i].err));
        MG_CHECK(m.jwks_uri == NULL && m.introspection_endpoint == NULL);
    }
    /* A long value is truncated in the message. */
    {
        char doc[600], err[256];
        mg_discovery_meta_t m;
        memset(doc, 0, sizeof(doc));
        strcpy(doc, "{\"issuer\":\"https://a/");
        memset(doc + strlen(doc), 'x', 300);
        strcat(doc, "\",\"jwks_uri\":\"https://a/j\"}");
        MG_CHECK_INT(mg_discovery_parse_metadata("https://a/t1", doc, strlen(doc), false, &m, err,
                                                 sizeof(err)),
                     -1);
        MG_CHECK(contains(err, "xxx...\""));
        MG_CHECK(strlen(err) < 255);
    }
}

static void
test_imf_fixdate(void)
{
    static const struct {
        const char *s;
        int rc;
        time_t t;
    } cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0, 0},
        {"Wed, 31 Dec 1969 23:59:59 GMT", 0, -1},
        {"Tue, 29 Feb 2000 12:00:00 GMT", 0, 951825600},
        {"Sat, 31 Dec 2044 23:59:60 GMT", 0, 2366841599},
        {"Sunday, 06-Nov-94 08:49:37 GMT", -1, 0}, /* RFC 850 */
        {"Sun Nov  6 08:49:37 1994", -1, 0},       /* asctime */
        {"Sun, 06 Nov 1994 08:49:37 UTC", -1, 0},
        {"Sun, 6 Nov 1994 08:49:37 GMT", -1, 0},
        {"Xyz, 06 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 06 Foo 1994 08:49:37 GMT", -1, 0},
        {"Sun, 31 Nov 1994 08:49:37 GMT", -1, 0},
        {"Thu, 29 Feb 2001 08:49:37 GMT", -1, 0},
        {"Mon, 29 Feb 1900 08:49:37 GMT", -1, 0},
        {"Sun, 06 Nov 1994 24:00:00 GMT", -1, 0},
        {"Sun, 06 Nov 1994 08:60:00 GMT", -1, 0},
        {"Sun, 06 Nov 1994 08:49:61 GMT", -1, 0},
        {"Sun, 00 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 06 Nov 19x4 08:49:37 GMT", -1, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT ", -1, 0},
        {"0", -1, 0},
        {"", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        time_t t = 12345;
        int rc = mg_http_parse_imf_fixdate(cases[i].s, strlen(cases[i].s), &t);
        if (rc != cases[i].rc)
            printf("# %s\n", cases[i].s);
        MG_CHECK_INT(rc, cases[i].rc);
        if (rc == 0)
            MG_CHECK_INT(t, cases[i].t);
    }
}

static void
test_cache_lifetime(void)
{
    const time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    static const struct {
        const char *cc, *expires;
        int64_t want;
    } cases[] = {
        {NULL, NULL, -1},
        {"", NULL, -1},
        {"public", NULL, -1},
        {"max-age=300", NULL, 300},
        {"MAX-AGE=300", NULL, 300},
        {"public, max-age=60", NULL, 60},
        {" max-age = 60 ", NULL, 60},
        {"max-age=\"90\"", NULL, 90},
        {"max-age=0", NULL, 0},
        {"max-age=60, max-age=120", NULL, 60},
        {"max-age=-1", NULL, 0},
        {"max-age=abc", NULL, 0},
        {"max-age=", NULL, 0},
        {"max-age", NULL, 0},
        {"max-age=99999999999999999999", NULL, INT64_C(2147483648)},
        {"s-maxage=600", NULL, -1},
        {"s-maxage=600, max-age=30", NULL, 30},
        {"no-store", NULL, 0},
        {"no-cache", NULL, 0},
        {"max-age=300, no-cache", NULL, 0},
        {"private, no-store, max-age=300", "Sun, 06 Nov 1994 09:49:37 GMT", 0},
        {"no-cache=\"Set-Cookie\"", NULL, 0},
        {"x-ext=\"a,max-age=5\", max-age=7", NULL, 7},
        {NULL, "Sun, 06 Nov 1994 09:49:37 GMT", 3600},
        {NULL, "Sun, 06 Nov 1994 08:49:37 GMT", 0},
        {NULL, "Sat, 05 Nov 1994 08:49:37 GMT", 0},
        {NULL, "0", 0},
        {NULL, "Sunday, 06-Nov-94 09:49:37 GMT", 0},
        {"public", "Sun, 06 Nov 1994 08:50:37 GMT", 60},
        {"max-age=10", "Sun, 06 Nov 1994 09:49:37 GMT", 10}, /* max-age wins (RFC 9111 5.3) */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = mg_cache_lifetime(cases[i].cc, cases[i].expires, now);
        if (got != cases[i].want)
            printf("# cc=%s expires=%s\n", cases[i].cc ? cases[i].cc : "(null)",
                   cases[i].expires ? cases[i].expires : "(null)");
        MG_CHECK_INT(got, cases[i].want);
    }
}

int
main(void)
{
    MG_RUN(test_urls);
    MG_RUN(test_urls_refused);
    MG_RUN(test_metadata_ok);
    MG_RUN(test_metadata_refused);
    MG_RUN(test_imf_fixdate);
    MG_RUN(test_cache_lifetime);
    return mg_test_done();
}
