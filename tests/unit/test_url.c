/* test_url.c -- unit tests of the outbound URL parser (src/net/url.c). */
#include "mcpgate/url.h"
#include "mgtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const struct ok_case {
    const char *in;
    bool https;
    mg_url_host_kind_t kind;
    const char *host;
    unsigned port;
    bool port_explicit;
    const char *path;
} ok_cases[] = {
    {"https://as.example", true, MG_URL_HOST_NAME, "as.example", 443, false, "/"},
    {"https://as.example/", true, MG_URL_HOST_NAME, "as.example", 443, false, "/"},
    {"https://AS.Example/T1", true, MG_URL_HOST_NAME, "as.example", 443, false, "/T1"},
    {"HTTPS://as.example:8443/a/b?c=d&e", true, MG_URL_HOST_NAME, "as.example", 8443, true,
     "/a/b?c=d&e"},
    {"http://localhost:8080", false, MG_URL_HOST_NAME, "localhost", 8080, true, "/"},
    {"http://127.0.0.1/x", false, MG_URL_HOST_IPV4, "127.0.0.1", 80, false, "/x"},
    {"https://[::1]:9/p", true, MG_URL_HOST_IPV6, "::1", 9, true, "/p"},
    {"https://[2001:DB8:0:0::1]/", true, MG_URL_HOST_IPV6, "2001:db8::1", 443, false, "/"},
    {"https://[::ffff:127.0.0.1]/", true, MG_URL_HOST_IPV6, "::ffff:127.0.0.1", 443, false, "/"},
    {"https://a?q", true, MG_URL_HOST_NAME, "a", 443, false, "/?q"},
    {"https://a:65535/%2Fx%41", true, MG_URL_HOST_NAME, "a", 65535, true, "/%2Fx%41"},
    {"https://my_host-1.example/~u/!$&'()*+,;=:@", true, MG_URL_HOST_NAME, "my_host-1.example", 443,
     false, "/~u/!$&'()*+,;=:@"},
    {"https://1.example/", true, MG_URL_HOST_NAME, "1.example", 443, false, "/"},
    {"https://example.123a/", true, MG_URL_HOST_NAME, "example.123a", 443, false, "/"},
    {"https://a:00443/", true, MG_URL_HOST_NAME, "a", 443, true, "/"},
};

static const struct bad_case {
    const char *in;
    const char *why;
} bad_cases[] = {
    {"", "URL has no scheme"},
    {"as.example/t1", "URL has no scheme"},
    {"ftp://a/", "URL scheme is not http or https"},
    {"httpx://a/", "URL scheme is not http or https"},
    {"javascript:alert(1)", "URL scheme is not http or https"},
    {"https:a/", "URL has no authority (expected scheme://host)"},
    {"https:/a/", "URL has no authority (expected scheme://host)"},
    {"https://user@a/", "URL has userinfo"},
    {"https://user:pw@a/", "URL has userinfo"},
    {"https://a/#frag", "URL has a fragment"},
    {"https://a#frag", "URL has a fragment"},
    {"https://", "URL has an empty host"},
    {"https:///p", "URL has an empty host"},
    {"https://:443/", "URL has an empty host"},
    {"https://a:/", "empty port in URL"},
    {"https://a:0/", "port out of range in URL"},
    {"https://a:65536/", "port out of range in URL"},
    {"https://a:123456/", "bad port in URL"},
    {"https://a:8x/", "bad port in URL"},
    {"https://a:-1/", "bad port in URL"},
    {"https://127.1/", "numeric URL host is not a dotted-quad IPv4 address"},
    {"https://0x7f.0.0.1/", "numeric URL host is not a dotted-quad IPv4 address"},
    {"https://2130706433/", "numeric URL host is not a dotted-quad IPv4 address"},
    {"https://127.000.0.1/", "numeric URL host is not a dotted-quad IPv4 address"},
    {"https://256.0.0.1/", "numeric URL host is not a dotted-quad IPv4 address"},
    {"https://a..b/", "empty label in URL host"},
    {"https://.a/", "empty label in URL host"},
    {"https://a./", "empty label in URL host"},
    {"https://a%2eb/", "percent-encoded URL host"},
    {"https://a!b/", "invalid character in URL host"},
    {"https://[::1/", "unterminated IPv6 literal in URL"},
    {"https://[]/", "bad IPv6 literal in URL"},
    {"https://[::g]/", "bad IPv6 literal in URL"},
    {"https://[fe80::1%25eth0]/", "IPv6 zone identifier in URL"},
    {"https://[::1]x/", "junk after IPv6 literal in URL"},
    {"https://[::1]:0/", "port out of range in URL"},
    {"https://a/b c", "space in URL"},
    {"https://a/b\tc", "control byte in URL"},
    {"https://a/\x7f", "control byte in URL"},
    {"https://a/\xc3\xa9", "non-ASCII byte in URL"},
    {"https://a\\b/", "backslash in URL"},
    {"https://a/%", "bad percent-encoding in URL path"},
    {"https://a/%4", "bad percent-encoding in URL path"},
    {"https://a/%zz", "bad percent-encoding in URL path"},
    {"https://a/<x>", "invalid character in URL path"},
    {"https://a/{x}", "invalid character in URL path"},
    {"https://a/[x]", "invalid character in URL path"},
    {"https://a/\"", "invalid character in URL path"},
    {"https://a/|", "invalid character in URL path"},
    {"https://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b/",
     "URL host label longer than 63 bytes"},
};

static void
test_ok_table(void)
{
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *c = &ok_cases[i];
        mg_url_t u;
        const char *why = NULL;
        int rc = mg_url_parse(c->in, strlen(c->in), &u, &why);
        if (rc != 0)
            printf("# %s: %s\n", c->in, why);
        MG_CHECK_INT(rc, 0);
        if (rc != 0)
            continue;
        MG_CHECK_INT(u.https, c->https);
        MG_CHECK_INT(u.host_kind, c->kind);
        MG_CHECK_STR(u.host, c->host);
        MG_CHECK_INT(u.port, c->port);
        MG_CHECK_INT(u.port_explicit, c->port_explicit);
        MG_CHECK_STR(u.path, c->path);
        mg_url_clear(&u);
    }
}

static void
test_bad_table(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        mg_url_t u;
        const char *why = NULL;
        int rc = mg_url_parse(c->in, strlen(c->in), &u, &why);
        if (rc == 0)
            printf("# accepted: %s\n", c->in);
        MG_CHECK_INT(rc, -1);
        MG_CHECK_STR(why, c->why);
        MG_CHECK(u.path == NULL);
    }
}

static void
test_embedded_nul_and_length(void)
{
    mg_url_t u;
    const char *why = NULL;
    char *big;

    MG_CHECK_INT(mg_url_parse("https://a/\0b", 12, &u, &why), -1);
    MG_CHECK_STR(why, "NUL byte in URL");
    /* Only <len> bytes are read: a prefix parses on its own. */
    MG_CHECK_INT(mg_url_parse("https://a/bcd", 11, &u, &why), 0);
    MG_CHECK_STR(u.path, "/b");
    mg_url_clear(&u);
    big = malloc(MG_URL_MAX_LEN + 2);
    memset(big, 'a', MG_URL_MAX_LEN + 1);
    memcpy(big, "https://a/", 10);
    MG_CHECK_INT(mg_url_parse(big, MG_URL_MAX_LEN + 1, &u, &why), -1);
    MG_CHECK_STR(why, "URL too long");
    free(big);
    mg_url_clear(NULL);
}

static void
parse(const char *s, mg_url_t *u)
{
    const char *why = NULL;
    if (mg_url_parse(s, strlen(s), u, &why) != 0) {
        printf("# cannot parse %s: %s\n", s, why);
        memset(u, 0, sizeof(*u));
    }
}

static void
test_same_origin_and_format(void)
{
    static const struct {
        const char *a, *b;
        bool same;
    } cases[] = {
        {"https://a/x", "https://a:443/y", true},
        {"https://A/x", "https://a/", true},
        {"https://a/x", "http://a/x", false},
        {"https://a/x", "https://a:8443/x", false},
        {"https://a/x", "https://b/x", false},
        {"https://127.0.0.1/", "https://localhost/", false},
        {"https://[::1]/", "https://[0:0::1]/", true},
        {"http://a/", "http://a:80/", true},
    };
    char buf[300];
    mg_url_t a, b;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse(cases[i].a, &a);
        parse(cases[i].b, &b);
        if (mg_url_same_origin(&a, &b) != cases[i].same)
            printf("# %s vs %s\n", cases[i].a, cases[i].b);
        MG_CHECK_INT(mg_url_same_origin(&a, &b), cases[i].same);
        mg_url_clear(&a);
        mg_url_clear(&b);
    }
    parse("https://[::1]:8443/p", &a);
    MG_CHECK_INT(mg_url_format_origin(&a, buf, sizeof(buf)), 18);
    MG_CHECK_STR(buf, "https://[::1]:8443");
    MG_CHECK_INT(mg_url_format_host(&a, buf, sizeof(buf)), 10);
    MG_CHECK_STR(buf, "[::1]:8443");
    MG_CHECK_INT(mg_url_format_host(&a, buf, 5), -1);
    mg_url_clear(&a);
    parse("http://Example:80/", &a);
    mg_url_format_origin(&a, buf, sizeof(buf));
    MG_CHECK_STR(buf, "http://example");
    MG_CHECK_INT(mg_url_format_origin(&a, buf, 4), -1);
    mg_url_clear(&a);
}

static void
test_resolve(void)
{
    static const struct {
        const char *ref;
        const char *want; /* NULL: refused */
    } cases[] = {
        {"https://as.example:8443/other", "https://as.example:8443/other"},
        {"http://x/y", "http://x/y"},
        {"//as.example:8443/n", "https://as.example:8443/n"},
        {"//elsewhere/n", "https://elsewhere/n"},
        {"/abs?x=1", "https://as.example:8443/abs?x=1"},
        {"rel", "https://as.example:8443/a/rel"},
        {"rel/two?q", "https://as.example:8443/a/rel/two?q"},
        {"?only", "https://as.example:8443/a/b?only"},
        {"/p#frag", "https://as.example:8443/p"},
        {"", NULL},
        {"#frag", NULL},
        {"ftp://x/", NULL},
        {"/bad path", NULL},
        {"https://u@x/", NULL},
    };
    mg_url_t base, r;
    char buf[512];
    int n;

    parse("https://as.example:8443/a/b?q=1", &base);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = NULL;
        int rc = mg_url_resolve(&base, cases[i].ref, strlen(cases[i].ref), &r, &why);
        if (cases[i].want == NULL) {
            if (rc == 0)
                printf("# accepted Location %s\n", cases[i].ref);
            MG_CHECK_INT(rc, -1);
            MG_CHECK(why != NULL);
            continue;
        }
        if (rc != 0)
            printf("# refused Location %s: %s\n", cases[i].ref, why);
        MG_CHECK_INT(rc, 0);
        if (rc != 0)
            continue;
        n = mg_url_format_origin(&r, buf, sizeof(buf));
        snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", r.path);
        MG_CHECK_STR(buf, cases[i].want);
        mg_url_clear(&r);
    }
    mg_url_clear(&base);
}

static void
test_loopback(void)
{
    static const struct {
        int family;
        const char *addr;
        bool loopback;
    } cases[] = {
        {AF_INET, "127.0.0.1", true},
        {AF_INET, "127.255.3.4", true},
        {AF_INET, "128.0.0.1", false},
        {AF_INET, "192.0.2.1", false},
        {AF_INET, "0.0.0.0", false},
        {AF_INET6, "::1", true},
        {AF_INET6, "::", false},
        {AF_INET6, "::ffff:127.0.0.9", true},
        {AF_INET6, "::ffff:10.0.0.1", false},
        {AF_INET6, "2001:db8::1", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        ss.ss_family = (sa_family_t)cases[i].family;
        if (cases[i].family == AF_INET)
            inet_pton(AF_INET, cases[i].addr, &((struct sockaddr_in *)&ss)->sin_addr);
        else
            inet_pton(AF_INET6, cases[i].addr, &((struct sockaddr_in6 *)&ss)->sin6_addr);
        MG_CHECK_INT(mg_sockaddr_is_loopback((struct sockaddr *)&ss), cases[i].loopback);
    }
}

int
main(void)
{
    MG_RUN(test_ok_table);
    MG_RUN(test_bad_table);
    MG_RUN(test_embedded_nul_and_length);
    MG_RUN(test_same_origin_and_format);
    MG_RUN(test_resolve);
    MG_RUN(test_loopback);
    return mg_test_done();
}
