/* test_conf.c -- unit tests of src/conf: values, defaults, syntax, env, include, routes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcpgate/conf.h"
#include "mcpgate/log.h"
#include "mgtest.h"

#define BASE "listen 127.0.0.1:8080;\nroute / { upstream http://127.0.0.1:3000; }\n"

static mg_conf_t *
load(const char *text, mg_conf_errors_t *errs)
{
    return mg_conf_load_string(text, strlen(text), "t.conf", errs);
}

/* True when some message equals <msg>. */
static int
has_error(const mg_conf_errors_t *errs, const char *msg)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strcmp(errs->msgs[i], msg) == 0)
            return 1;
    for (size_t i = 0; i < errs->n; i++)
        printf("# got: %s\n", errs->msgs[i]);
    return 0;
}

/* Load <text>, expect failure with <msg> among the errors. */
static int
fails_with(const char *text, const char *msg)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *c = load(text, &errs);
    int ok = c == NULL && has_error(&errs, msg);

    mg_conf_free(c);
    mg_conf_errors_clear(&errs);
    return ok;
}

static void
test_duration(void)
{
    uint32_t ms = 0;

    MG_CHECK(mg_conf_parse_duration("250ms", &ms) == 0 && ms == 250);
    MG_CHECK(mg_conf_parse_duration("30s", &ms) == 0 && ms == 30000);
    MG_CHECK(mg_conf_parse_duration("30", &ms) == 0 && ms == 30000);
    MG_CHECK(mg_conf_parse_duration("5m", &ms) == 0 && ms == 300000);
    MG_CHECK(mg_conf_parse_duration("1h", &ms) == 0 && ms == 3600000);
    MG_CHECK(mg_conf_parse_duration("2d", &ms) == 0 && ms == 172800000);
    MG_CHECK(mg_conf_parse_duration("0", &ms) == 0 && ms == 0);
    MG_CHECK(mg_conf_parse_duration("4294967295ms", &ms) == 0 && ms == UINT32_MAX);
    MG_CHECK(mg_conf_parse_duration("49d", &ms) == 0 && ms == 49u * 86400000u);
    MG_CHECK(mg_conf_parse_duration("50d", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("4294967296ms", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("4294968s", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("99999999999999999999999", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("s", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("5x", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("-1s", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("1.5s", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("5 s", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("5S", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration("5sm", &ms) == -1);
    MG_CHECK(mg_conf_parse_duration(NULL, &ms) == -1);
}

static void
test_size(void)
{
    size_t b = 0;

    MG_CHECK(mg_conf_parse_size("512", &b) == 0 && b == 512);
    MG_CHECK(mg_conf_parse_size("0", &b) == 0 && b == 0);
    MG_CHECK(mg_conf_parse_size("64k", &b) == 0 && b == 65536);
    MG_CHECK(mg_conf_parse_size("64K", &b) == 0 && b == 65536);
    MG_CHECK(mg_conf_parse_size("1m", &b) == 0 && b == 1048576);
    MG_CHECK(mg_conf_parse_size("1M", &b) == 0 && b == 1048576);
    MG_CHECK(mg_conf_parse_size("1g", &b) == 0 && b == 1073741824);
    MG_CHECK(mg_conf_parse_size("2G", &b) == 0 && b == 2147483648u);
    MG_CHECK(mg_conf_parse_size("", &b) == -1);
    MG_CHECK(mg_conf_parse_size("k", &b) == -1);
    MG_CHECK(mg_conf_parse_size("1kb", &b) == -1);
    MG_CHECK(mg_conf_parse_size("1t", &b) == -1);
    MG_CHECK(mg_conf_parse_size("-1", &b) == -1);
    MG_CHECK(mg_conf_parse_size("99999999999999999999g", &b) == -1);
    MG_CHECK(mg_conf_parse_size("18014398509481984g", &b) == -1); /* 2^54 g overflows */
    MG_CHECK(mg_conf_parse_size(NULL, &b) == -1);
}

static void
test_defaults(void)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *c = load(BASE, &errs);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    MG_CHECK(c != NULL);
    MG_CHECK_INT(errs.n, 0);
    if (c == NULL)
        return;
    MG_CHECK_STR(c->source, "t.conf");
    MG_CHECK_INT(c->workers, ncpu < 1 ? 1 : ncpu > 64 ? 64 : ncpu);
    MG_CHECK_INT(c->max_header_size, 16 * 1024);
    MG_CHECK_INT(c->max_body_size, 1024 * 1024);
    MG_CHECK_INT(c->client_timeout, 30000);
    MG_CHECK_INT(c->upstream_connect_timeout, 5000);
    MG_CHECK_INT(c->upstream_timeout, 60000);
    MG_CHECK_INT(c->stream_idle_timeout, 600000);
    MG_CHECK_INT(c->drain_timeout, 30000);
    MG_CHECK_INT(c->sse_keepalive, 0);
    MG_CHECK_INT(c->log_level, MG_LOG_INFO);
    MG_CHECK(c->admin_listen == NULL);
    MG_CHECK_INT(c->nlistens, 1);
    MG_CHECK_STR(c->listens[0].text, "127.0.0.1:8080");
    MG_CHECK(c->listens[0].tls_certificate == NULL);
    MG_CHECK(c->listens[0].tls_certificate_key == NULL);
    MG_CHECK_STR(c->listens[0].where.file, "t.conf");
    MG_CHECK_INT(c->listens[0].where.line, 1);
    MG_CHECK_INT(c->nroutes, 1);
    MG_CHECK_STR(c->routes[0].path, "/");
    MG_CHECK_INT(c->routes[0].path_len, 1);
    MG_CHECK(c->routes[0].upstream_ca_file == NULL);
    MG_CHECK_INT(c->routes[0].where.line, 2);
    mg_conf_free(c);
}

static void
test_values(void)
{
    const char *text = BASE "workers 3;\nmax_header_size 1k;\nmax_body_size 64m;\n"
                            "client_timeout 250ms;\nupstream_connect_timeout 2;\n"
                            "upstream_timeout 1h;\nstream_idle_timeout 1d;\ndrain_timeout 0;\n"
                            "sse_keepalive 15s;\nlog_level debug;\n";
    mg_conf_errors_t errs = {0};
    mg_conf_t *c = load(text, &errs);

    MG_CHECK(c != NULL);
    if (c != NULL) {
        MG_CHECK_INT(c->workers, 3);
        MG_CHECK_INT(c->max_header_size, 1024);
        MG_CHECK_INT(c->max_body_size, 64 * 1024 * 1024);
        MG_CHECK_INT(c->client_timeout, 250);
        MG_CHECK_INT(c->upstream_connect_timeout, 2000);
        MG_CHECK_INT(c->upstream_timeout, 3600000);
        MG_CHECK_INT(c->stream_idle_timeout, 86400000);
        MG_CHECK_INT(c->drain_timeout, 0);
        MG_CHECK_INT(c->sse_keepalive, 15000);
        MG_CHECK_INT(c->log_level, MG_LOG_DEBUG);
    }
    mg_conf_free(c);
    c = load(BASE "sse_keepalive off;\nworkers auto;\nlog_level error;\n", &errs);
    MG_CHECK(c != NULL && c->sse_keepalive == 0 && c->workers >= 1 && c->log_level == MG_LOG_ERROR);
    mg_conf_free(c);
    c = load(BASE "workers 64;\nmax_header_size 1m;\n", &errs);
    MG_CHECK(c != NULL && c->workers == 64 && c->max_header_size == 1024 * 1024);
    mg_conf_free(c);
    MG_CHECK_INT(errs.n, 0);
    mg_conf_errors_clear(&errs);
}

static void
test_listen(void)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *c = load("listen *:80 { plaintext_ok; }\nlisten localhost:81;\nlisten [::1]:8443;\n"
                        "listen [::]:82 { plaintext_ok; }\nlisten 10.1.2.3:65535 { plaintext_ok; }\n"
                        "admin_listen 127.0.0.1:9090;\n"
                        "route / { upstream http://x; upstream_plaintext_ok; }\n",
                        &errs);
    const struct sockaddr_in *a4;
    const struct sockaddr_in6 *a6;
    struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;

    MG_CHECK(c != NULL);
    if (c == NULL)
        return;
    MG_CHECK_INT(c->nlistens, 5);
    a4 = (const void *)&c->listens[0].addr;
    MG_CHECK(a4->sin_family == AF_INET && a4->sin_addr.s_addr == htonl(INADDR_ANY) &&
             a4->sin_port == htons(80) && c->listens[0].addrlen == sizeof(*a4));
    a4 = (const void *)&c->listens[1].addr;
    MG_CHECK(a4->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && a4->sin_port == htons(81));
    a6 = (const void *)&c->listens[2].addr;
    MG_CHECK(a6->sin6_family == AF_INET6 && a6->sin6_port == htons(8443) &&
             memcmp(&a6->sin6_addr, &lo6, sizeof(lo6)) == 0 &&
             c->listens[2].addrlen == sizeof(*a6));
    MG_CHECK_STR(c->listens[2].text, "[::1]:8443");
    a4 = (const void *)&c->listens[4].addr;
    MG_CHECK(a4->sin_addr.s_addr == htonl(0x0a010203) && a4->sin_port == htons(65535));
    MG_CHECK(c->admin_listen != NULL);
    if (c->admin_listen != NULL) {
        MG_CHECK_STR(c->admin_listen->text, "127.0.0.1:9090");
        MG_CHECK_INT(c->admin_listen->where.line, 6);
    }
    mg_conf_free(c);
    /* the same address in two spellings */
    MG_CHECK(fails_with(BASE "listen localhost:8080;\n",
                        "t.conf:3: duplicate listen address \"localhost:8080\" (first defined "
                        "at t.conf:1)"));
    MG_CHECK(fails_with(BASE "listen [::1:80;\n",
                        "t.conf:3: invalid address \"[::1:80\" for \"listen\": missing \"]\""));
    MG_CHECK(fails_with(BASE "listen 127.0.0.1:8x;\n",
                        "t.conf:3: invalid address \"127.0.0.1:8x\" for \"listen\": invalid port"));
    MG_CHECK(fails_with(BASE "listen :80;\n",
                        "t.conf:3: invalid address \":80\" for \"listen\": invalid address"));
}

static void
test_upstream(void)
{
    static const struct {
        const char *url;
        bool tls;
        const char *host;
        int port;
        const char *hostport, *path;
    } cases[] = {
        /* no path: the request path passes unchanged (route /r maps onto itself) */
        {"http://127.0.0.1:3000", false, "127.0.0.1", 3000, "127.0.0.1:3000", "/r"},
        {"http://example.com", false, "example.com", 80, "example.com:80", "/r"},
        {"https://example.com/", true, "example.com", 443, "example.com:443", ""},
        {"HTTPS://a.b:8443/x/y/", true, "a.b", 8443, "a.b:8443", "/x/y"},
        {"http://[::1]/mcp", false, "::1", 80, "[::1]:80", "/mcp"},
        {"https://[2001:db8::1]:9/", true, "2001:db8::1", 9, "[2001:db8::1]:9", ""},
        {"http://mcp_1-a", false, "mcp_1-a", 80, "mcp_1-a:80", "/r"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        mg_conf_errors_t errs = {0};
        mg_conf_t *c;
        snprintf(text, sizeof(text),
                 "listen 127.0.0.1:1;\nroute /r/ { upstream %s; upstream_plaintext_ok; }\n",
                 cases[i].url);
        c = load(text, &errs);
        MG_CHECK(c != NULL);
        if (c == NULL) {
            has_error(&errs, "");
            mg_conf_errors_clear(&errs);
            continue;
        }
        const mg_conf_route_t *r = &c->routes[0];
        MG_CHECK_STR(r->path, "/r");
        MG_CHECK_INT(r->path_len, 2);
        MG_CHECK_STR(r->upstream, cases[i].url);
        MG_CHECK(r->upstream_tls == cases[i].tls);
        MG_CHECK_STR(r->upstream_host, cases[i].host);
        MG_CHECK_INT(r->upstream_port, cases[i].port);
        MG_CHECK_STR(r->upstream_hostport, cases[i].hostport);
        MG_CHECK_STR(r->upstream_path, cases[i].path);
        mg_conf_free(c);
    }
    MG_CHECK(fails_with("listen 127.0.0.1:1;\nroute / { upstream http://h:99999; upstream_plaintext_ok; }\n",
                        "t.conf:2: invalid upstream URL \"http://h:99999\": port must be "
                        "1..65535"));
    MG_CHECK(fails_with("listen 127.0.0.1:1;\nroute / { upstream http://[::1]x/; }\n",
                        "t.conf:2: invalid upstream URL \"http://[::1]x/\": unexpected text "
                        "after \"]\""));
    MG_CHECK(fails_with("listen 127.0.0.1:1;\nroute / { upstream http://-h/; upstream_plaintext_ok; }\n",
                        "t.conf:2: invalid upstream URL \"http://-h/\": invalid host (an IPv6 "
                        "address must be in brackets)"));
    MG_CHECK(fails_with("listen 127.0.0.1:1;\nroute / { upstream http://h//x; upstream_plaintext_ok; }\n",
                        "t.conf:2: invalid upstream URL \"http://h//x\": must not contain "
                        "\"//\""));
}

static void
test_route_paths(void)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *c = load("listen 127.0.0.1:1;\nroute /a/b/ { upstream http://x; upstream_plaintext_ok; }\n"
                        "route /.well-known { upstream http://x; upstream_plaintext_ok; }\n"
                        "route /a..b/...c { upstream http://x; upstream_plaintext_ok; }\n",
                        &errs);

    MG_CHECK(c != NULL);
    if (c != NULL) {
        MG_CHECK_STR(c->routes[0].path, "/a/b");
        MG_CHECK_STR(c->routes[1].path, "/.well-known");
        MG_CHECK_STR(c->routes[2].path, "/a..b/...c");
    }
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);
    MG_CHECK(fails_with(BASE "route /a/.. { upstream http://x; upstream_plaintext_ok; }\n",
                        "t.conf:3: invalid route path \"/a/..\": must not contain \".\" or "
                        "\"..\" segments"));
    MG_CHECK(fails_with(BASE "route \"\" { upstream http://x; upstream_plaintext_ok; }\n",
                        "t.conf:3: invalid route path \"\": must start with \"/\""));
    MG_CHECK(fails_with(BASE "route \"/a b\" { upstream http://x; upstream_plaintext_ok; }\n",
                        "t.conf:3: invalid route path \"/a b\": must not contain spaces, "
                        "control or non-ASCII characters"));
    MG_CHECK(fails_with(BASE "route //a { upstream http://x; upstream_plaintext_ok; }\n",
                        "t.conf:3: invalid route path \"//a\": must not contain \"//\""));
    /* "/" and "" (after stripping) */
    MG_CHECK(fails_with(BASE "route / { upstream http://y; upstream_plaintext_ok; }\n",
                        "t.conf:3: duplicate route \"/\" (first defined at t.conf:2)"));
}

static void
test_route_match(void)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *c = load("listen 127.0.0.1:1;\n"
                        "route /mcp { upstream http://a; upstream_plaintext_ok; }\n"
                        "route /mcp/admin { upstream http://b; upstream_plaintext_ok; }\n"
                        "route /other/ { upstream http://c; upstream_plaintext_ok; }\n",
                        &errs);
    const mg_conf_route_t *r;

#define MATCH(p) mg_conf_route_match(c, (p), strlen(p))
    MG_CHECK(c != NULL);
    if (c == NULL)
        return;
    r = MATCH("/mcp");
    MG_CHECK(r != NULL && strcmp(r->path, "/mcp") == 0);
    r = MATCH("/mcp/");
    MG_CHECK(r != NULL && strcmp(r->path, "/mcp") == 0);
    r = MATCH("/mcp/x/y");
    MG_CHECK(r != NULL && strcmp(r->path, "/mcp") == 0);
    r = MATCH("/mcp/admin");
    MG_CHECK(r != NULL && strcmp(r->path, "/mcp/admin") == 0);
    r = MATCH("/mcp/admin/z");
    MG_CHECK(r != NULL && strcmp(r->path, "/mcp/admin") == 0);
    r = MATCH("/mcp/adminx");
    MG_CHECK(r != NULL && strcmp(r->path, "/mcp") == 0);
    r = MATCH("/other");
    MG_CHECK(r != NULL && strcmp(r->path, "/other") == 0);
    MG_CHECK(MATCH("/mcpx") == NULL);
    MG_CHECK(MATCH("/") == NULL);
    MG_CHECK(MATCH("/mc") == NULL);
    MG_CHECK(mg_conf_route_match(c, "/mcp/x", 3) == NULL); /* only the first 3 bytes */
    r = mg_conf_route_match(c, "/mcpxyz", 4);
    MG_CHECK(r != NULL && strcmp(r->path, "/mcp") == 0);
    MG_CHECK(mg_conf_route_match(c, "", 0) == NULL);
    MG_CHECK(mg_conf_route_match(NULL, "/mcp", 4) == NULL);
    mg_conf_free(c);

    c = load("listen 127.0.0.1:1;\nroute / { upstream http://root; upstream_plaintext_ok; }\n"
             "route /a { upstream http://a; upstream_plaintext_ok; }\n",
             &errs);
    MG_CHECK(c != NULL);
    if (c != NULL) {
        r = MATCH("/");
        MG_CHECK(r != NULL && strcmp(r->path, "/") == 0);
        r = MATCH("/anything/else");
        MG_CHECK(r != NULL && strcmp(r->path, "/") == 0);
        r = MATCH("/ab");
        MG_CHECK(r != NULL && strcmp(r->path, "/") == 0);
        r = MATCH("/a/b");
        MG_CHECK(r != NULL && strcmp(r->path, "/a") == 0);
    }
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);
#undef MATCH
}

static void
test_quoting(void)
{
    mg_conf_errors_t errs = {0};
    const char *text = "listen \"127.0.0.1:8080\"; # comment\n"
                       "route \"/q\\\"x\\\\y\" {upstream http://x; upstream_plaintext_ok;}\n"
                       "route \"/d\\$\" { upstream http://x; upstream_plaintext_ok; }\n"
                       "log_level\t\"debug\"#c\n;\r\n"
                       "route /h#x { upstream http://x; upstream_plaintext_ok; } # '#' inside a word is literal\n";
    mg_conf_t *c = load(text, &errs);

    /* /h#x is rejected by the path rules, which proves '#' stayed in the word */
    MG_CHECK(c == NULL);
    MG_CHECK(has_error(&errs, "t.conf:6: invalid route path \"/h#x\": must not contain \"#\""));
    MG_CHECK_INT(errs.n, 1);
    mg_conf_errors_clear(&errs);

    c = load("listen \"127.0.0.1:8080\"; # comment\n"
             "route \"/q\\\"x\\\\y\" {upstream http://x; upstream_plaintext_ok;}\n"
             "route \"/d\\$\" { upstream http://x; upstream_plaintext_ok; }\n"
             "log_level\t\"debug\"#c\n;\r\n",
             &errs);
    MG_CHECK(c != NULL);
    if (c != NULL) {
        MG_CHECK_STR(c->routes[0].path, "/q\"x\\y");
        MG_CHECK_STR(c->routes[1].path, "/d$");
        MG_CHECK_INT(c->log_level, MG_LOG_DEBUG);
        MG_CHECK_INT(c->routes[1].where.line, 3);
    }
    mg_conf_free(c);
    MG_CHECK(fails_with(BASE "log_level \"x\ny\";\n", "t.conf:3: newline inside a quoted string"));
    MG_CHECK(fails_with(BASE "log_level \"\\t\";\n",
                        "t.conf:3: invalid escape \"\\t\" in a quoted string (only \\\", \\\\ "
                        "and \\$ are allowed)"));
    MG_CHECK(fails_with(BASE "log_level \"\";\n",
                        "t.conf:3: invalid value \"\" for \"log_level\" (expected error, warn, "
                        "info or debug)"));
    /* an error message escapes control bytes in the value it quotes */
    MG_CHECK(fails_with(BASE "log_level \"a\tb\";\n",
                        "t.conf:3: invalid value \"a\\x09b\" for \"log_level\" (expected error, "
                        "warn, info or debug)"));
    {
        static const char nul[] = BASE "workers 1\0;\n";
        mg_conf_t *c2 = mg_conf_load_string(nul, sizeof(nul) - 1, "t.conf", &errs);
        MG_CHECK(c2 == NULL);
        MG_CHECK(has_error(&errs, "t.conf:3: NUL byte in the configuration"));
        mg_conf_free(c2);
        mg_conf_errors_clear(&errs);
    }
}

static void
test_env(void)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *c;

    setenv("MG_T_PORT", "9999", 1);
    setenv("MG_T_EMPTY", "", 1);
    setenv("MG_T_SPACE", "/a b", 1);
    setenv("MG_T_SEMI", "warn;", 1);
    unsetenv("MG_T_UNSET");
    c = load("listen 127.0.0.1:${MG_T_PORT};\n"
             "listen \"127.0.0.2:${MG_T_PORT}\";\n"
             "listen 127.0.0.3:${MG_T_UNSET:-7};\n"
             "listen 127.0.0.4:${MG_T_EMPTY:-8}${MG_T_EMPTY};\n"
             "client_timeout ${MG_T_UNSET:-1m};\n"
             "route /${MG_T_UNSET:-x} { upstream http://h:${MG_T_PORT}/p; upstream_plaintext_ok; }\n",
             &errs);
    MG_CHECK(c != NULL);
    if (c != NULL) {
        MG_CHECK_STR(c->listens[0].text, "127.0.0.1:9999");
        MG_CHECK_STR(c->listens[1].text, "127.0.0.2:9999");
        MG_CHECK_STR(c->listens[2].text, "127.0.0.3:7");
        MG_CHECK_STR(c->listens[3].text, "127.0.0.4:8");
        MG_CHECK_INT(c->client_timeout, 60000);
        MG_CHECK_STR(c->routes[0].path, "/x");
        MG_CHECK_INT(c->routes[0].upstream_port, 9999);
    }
    mg_conf_free(c);
    MG_CHECK_INT(errs.n, 0);
    mg_conf_errors_clear(&errs);
    /* a value is not re-tokenized: spaces and ";" stay inside the word */
    MG_CHECK(fails_with(BASE "route ${MG_T_SPACE} { upstream http://x; upstream_plaintext_ok; }\n",
                        "t.conf:3: invalid route path \"/a b\": must not contain spaces, "
                        "control or non-ASCII characters"));
    MG_CHECK(fails_with(BASE "log_level ${MG_T_SEMI};\n",
                        "t.conf:3: invalid value \"warn;\" for \"log_level\" (expected error, "
                        "warn, info or debug)"));
    MG_CHECK(fails_with(BASE "workers ${MG_T_UNSET};\n",
                        "t.conf:3: environment variable \"MG_T_UNSET\" is not set"));
    MG_CHECK(fails_with(BASE "workers \"${}\";\n",
                        "t.conf:3: invalid variable reference \"${}\" (expected ${NAME} or "
                        "${NAME:-default})"));
    MG_CHECK(fails_with(BASE "workers ${MG_T_UNSET\n;\n", "t.conf:3: unterminated \"${\""));
    /* "$" alone and "$x" are literal */
    MG_CHECK(fails_with(BASE "workers $x;\n",
                        "t.conf:3: invalid value \"$x\" for \"workers\" (expected 1..64 or "
                        "\"auto\")"));
    unsetenv("MG_T_PORT");
    unsetenv("MG_T_EMPTY");
    unsetenv("MG_T_SPACE");
    unsetenv("MG_T_SEMI");
}

static void
write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        MG_CHECK(!"cannot write a temp file");
        return;
    }
    fputs(text, f);
    fclose(f);
}

/* API key digests, secret-file modes, loopback tests (issue 10). */
static void
test_security_helpers(void)
{
    uint8_t d[MG_API_KEY_DIGEST_LEN];
    char dir[] = "/tmp/mgconfsecXXXXXX", path[600], buf[1024];
    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};

    MG_CHECK_INT(mg_conf_parse_digest(
                     "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", d),
                 0);
    MG_CHECK_INT(d[0], 0x9f);
    MG_CHECK_INT(d[31], 0x08);
    MG_CHECK_INT(mg_conf_parse_digest(
                     "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", d),
                 0);
    MG_CHECK_INT(d[1], 0x86);
    /* 63 and 65 digits, a non-hex digit, another algorithm, no prefix, NULL */
    MG_CHECK_INT(mg_conf_parse_digest(
                     "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0", d),
                 -1);
    MG_CHECK_INT(mg_conf_parse_digest(
                     "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a080", d),
                 -1);
    MG_CHECK_INT(mg_conf_parse_digest(
                     "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g", d),
                 -1);
    MG_CHECK_INT(mg_conf_parse_digest(
                     "sha512:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", d),
                 -1);
    MG_CHECK_INT(mg_conf_parse_digest(
                     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", d),
                 -1);
    MG_CHECK_INT(mg_conf_parse_digest(NULL, d), -1);

    if (mkdtemp(dir) == NULL) {
        MG_CHECK(!"mkdtemp");
        return;
    }
    chmod(dir, 0700);
    write_file(dir, "k.pem", "key\n");
    snprintf(path, sizeof(path), "%s/k.pem", dir);
    chmod(path, 0600);
    MG_CHECK(mg_conf_secret_file_problem(path, buf, sizeof(buf)) == NULL);
    chmod(path, 0400);
    MG_CHECK(mg_conf_secret_file_problem(path, buf, sizeof(buf)) == NULL);
    chmod(path, 0640);
    MG_CHECK(mg_conf_secret_file_problem(path, buf, sizeof(buf)) != NULL &&
             strstr(buf, "has mode 0640") != NULL && strstr(buf, "chmod 600") != NULL);
    chmod(path, 0604);
    MG_CHECK(mg_conf_secret_file_problem(path, buf, sizeof(buf)) != NULL);
    chmod(path, 0600);
    chmod(dir, 0777); /* anyone could swap the key */
    MG_CHECK(mg_conf_secret_file_problem(path, buf, sizeof(buf)) != NULL &&
             strstr(buf, "writable by everyone") != NULL);
    chmod(dir, 01777); /* sticky, like /tmp: others cannot replace it */
    MG_CHECK(mg_conf_secret_file_problem(path, buf, sizeof(buf)) == NULL);
    chmod(dir, 0700);
    unlink(path);
    rmdir(dir);

    a4.sin_family = AF_INET;
    inet_pton(AF_INET, "127.3.4.5", &a4.sin_addr);
    MG_CHECK(mg_conf_addr_is_loopback((struct sockaddr *)&a4));
    inet_pton(AF_INET, "0.0.0.0", &a4.sin_addr);
    MG_CHECK(!mg_conf_addr_is_loopback((struct sockaddr *)&a4));
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    MG_CHECK(mg_conf_addr_is_loopback((struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::", &a6.sin6_addr);
    MG_CHECK(!mg_conf_addr_is_loopback((struct sockaddr *)&a6));
    MG_CHECK(mg_conf_url_is_loopback("http://localhost:8080/x"));
    MG_CHECK(mg_conf_url_is_loopback("http://127.0.0.1/"));
    MG_CHECK(mg_conf_url_is_loopback("http://[::1]:9/"));
    MG_CHECK(!mg_conf_url_is_loopback("http://localhost.evil.example/"));
    MG_CHECK(!mg_conf_url_is_loopback("http://127.0.0.1.nip.io/"));
    MG_CHECK(!mg_conf_url_is_loopback("https://as.example.com"));
}

static void
test_include(void)
{
    char dir[] = "/tmp/mg-test-conf-XXXXXX";
    char path[512], sub[512], msg[1024];
    mg_conf_errors_t errs = {0};
    mg_conf_t *c;

    if (mkdtemp(dir) == NULL) {
        MG_CHECK(!"mkdtemp");
        return;
    }
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    mkdir(sub, 0700);
    write_file(dir, "main.conf",
               "listen 127.0.0.1:8080;\ninclude sub/routes.inc;\nroute /b {\n"
               "    include sub/up.inc;\n}\n");
    write_file(dir, "sub/routes.inc",
               "# routes\nroute /a { upstream http://a; upstream_plaintext_ok; }\n"
               "listen 127.0.0.1:8443 {\n"
               "    tls_certificate cert.pem;\n"
               "    tls_certificate_key cert.pem;\n}\n");
    write_file(dir, "sub/cert.pem", "not really a certificate\n");
    snprintf(path, sizeof(path), "%s/sub/cert.pem", dir);
    chmod(path, 0600); /* it is also the tls_certificate_key: owner-only, or refused */
    write_file(dir, "sub/up.inc", "upstream https://b;\nupstream_ca_file cert.pem;\n");
    snprintf(path, sizeof(path), "%s/main.conf", dir);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c != NULL);
    if (c != NULL) {
        char want[512];
        MG_CHECK_STR(c->source, path);
        MG_CHECK_INT(c->nroutes, 2);
        MG_CHECK_STR(c->routes[0].path, "/a");
        snprintf(want, sizeof(want), "%s/sub/routes.inc", dir);
        MG_CHECK_STR(c->routes[0].where.file, want);
        MG_CHECK_INT(c->routes[0].where.line, 2);
        MG_CHECK_STR(c->routes[1].upstream_host, "b");
        snprintf(want, sizeof(want), "%s/sub/cert.pem", dir);
        MG_CHECK_STR(c->routes[1].upstream_ca_file, want);
        MG_CHECK_STR(c->listens[1].tls_certificate, want);
        MG_CHECK_STR(c->listens[1].tls_certificate_key, want);
        MG_CHECK_STR(c->routes[1].where.file, path);
    }
    mg_conf_free(c);
    MG_CHECK_INT(errs.n, 0);

    /* a cycle through two files */
    write_file(dir, "a.conf", BASE "include b.conf;\n");
    write_file(dir, "b.conf", "\ninclude a.conf;\n");
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c == NULL);
    snprintf(msg, sizeof(msg), "%s/b.conf:2: include cycle: \"%s/a.conf\" is already being read",
             dir, dir);
    MG_CHECK(has_error(&errs, msg));
    mg_conf_errors_clear(&errs);

    /* exactly 16 levels below the top file are fine, 17 are not */
    for (int i = 1; i <= 17; i++) {
        char name[32], text[64];
        snprintf(name, sizeof(name), "d%d.inc", i);
        if (i < 17)
            snprintf(text, sizeof(text), "include d%d.inc;\n", i + 1);
        else
            snprintf(text, sizeof(text), "workers 2;\n");
        write_file(dir, name, text);
    }
    write_file(dir, "deep.conf", BASE "include d2.inc;\n"); /* 16 levels: d2..d17 */
    snprintf(path, sizeof(path), "%s/deep.conf", dir);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c != NULL && c->workers == 2);
    mg_conf_free(c);
    write_file(dir, "deeper.conf", BASE "include d1.inc;\n"); /* 17 levels */
    snprintf(path, sizeof(path), "%s/deeper.conf", dir);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c == NULL);
    snprintf(msg, sizeof(msg), "%s/d16.inc:1: includes nested more than 16 deep", dir);
    MG_CHECK(has_error(&errs, msg));
    mg_conf_errors_clear(&errs);

    /* load_string resolves includes against the directory of <name> */
    snprintf(path, sizeof(path), "%s/virtual.conf", dir);
    {
        const char *t = "listen 127.0.0.1:8080;\ninclude sub/routes.inc;\n";
        c = mg_conf_load_string(t, strlen(t), path, &errs);
    }
    MG_CHECK(c != NULL && c->nroutes == 1);
    mg_conf_free(c);
    MG_CHECK_INT(errs.n, 0);

    /* a missing top file */
    snprintf(path, sizeof(path), "%s/nope.conf", dir);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c == NULL);
    snprintf(msg, sizeof(msg), "%s: cannot open: No such file or directory", path);
    MG_CHECK(has_error(&errs, msg));
    MG_CHECK_INT(errs.n, 1);
    mg_conf_errors_clear(&errs);

    {
        static const char *names[] = {"main.conf", "sub/routes.inc", "sub/cert.pem", "sub/up.inc",
                                      "a.conf",    "b.conf",         "deep.conf",    "deeper.conf"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            unlink(path);
        }
        for (int i = 1; i <= 17; i++) {
            snprintf(path, sizeof(path), "%s/d%d.inc", dir, i);
            unlink(path);
        }
        rmdir(sub);
        rmdir(dir);
    }
}

static void
test_errors(void)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *c;

    /* every error is collected, in file order, and errors are appended */
    c = load("lisen 1;\nworkers 1 2;\nroute / { upstream http://x; upstream_plaintext_ok; workers 2; }\n"
             "client_timeout 5x;\nlisten 127.0.0.1:1;\nupstream http://x;\n"
             "listen 127.0.0.1:1;\nroute /a;\n}\n",
             &errs);
    MG_CHECK(c == NULL);
    MG_CHECK_INT(errs.n, 8);
    if (errs.n == 8) {
        MG_CHECK_STR(errs.msgs[0], "t.conf:1: unknown directive \"lisen\"");
        MG_CHECK_STR(errs.msgs[1], "t.conf:2: \"workers\" takes 1 argument, 2 given");
        MG_CHECK_STR(errs.msgs[2], "t.conf:3: \"workers\" is not allowed here");
        MG_CHECK_STR(errs.msgs[3], "t.conf:4: invalid duration \"5x\" for \"client_timeout\"");
        MG_CHECK_STR(errs.msgs[4], "t.conf:6: \"upstream\" is not allowed here");
        MG_CHECK_STR(errs.msgs[5], "t.conf:7: duplicate listen address \"127.0.0.1:1\" "
                                   "(first defined at t.conf:5)");
        MG_CHECK_STR(errs.msgs[6], "t.conf:8: \"route\" has no opening \"{\"");
        MG_CHECK_STR(errs.msgs[7], "t.conf:9: unexpected \"}\"");
    }
    c = load("workers x;\n", &errs);
    MG_CHECK(c == NULL);
    MG_CHECK_INT(errs.n, 11);
    if (errs.n == 11) {
        MG_CHECK_STR(errs.msgs[8], "t.conf:1: invalid value \"x\" for \"workers\" (expected "
                                   "1..64 or \"auto\")");
        MG_CHECK_STR(errs.msgs[9], "t.conf: no \"listen\" directive (at least one is required)");
        MG_CHECK_STR(errs.msgs[10], "t.conf: no \"route\" directive (at least one is required)");
    }
    mg_conf_errors_clear(&errs);
    MG_CHECK(errs.n == 0 && errs.msgs == NULL);
    mg_conf_errors_clear(&errs);
    mg_conf_errors_clear(NULL);
    mg_conf_free(NULL);

    /* NULL errs is allowed; NULL name is "(string)" */
    c = mg_conf_load_string("bogus;", 6, NULL, NULL);
    MG_CHECK(c == NULL);
    c = mg_conf_load_string("bogus;", 6, NULL, &errs);
    MG_CHECK(c == NULL && has_error(&errs, "(string):1: unknown directive \"bogus\""));
    mg_conf_errors_clear(&errs);

    /* a flood of errors is capped */
    {
        size_t n = 5000;
        char *text = malloc(n * 4 + 1);
        for (size_t i = 0; i < n; i++)
            memcpy(text + i * 4, "x;\n\n", 4);
        text[n * 4] = '\0';
        c = load(text, &errs);
        MG_CHECK(c == NULL);
        MG_CHECK(errs.n > 100 && errs.n < 300);
        MG_CHECK(errs.n > 0 &&
                 strcmp(errs.msgs[errs.n - 1], "t.conf: too many errors, stopping") == 0);
        mg_conf_errors_clear(&errs);
        free(text);
    }

    /* wrong block shapes and argument counts */
    MG_CHECK(fails_with(BASE "admin_listen 127.0.0.1:9 { }\n",
                        "t.conf:3: \"admin_listen\" does not take a block"));
    MG_CHECK(fails_with(BASE "listen;\n", "t.conf:3: \"listen\" takes 1 argument, 0 given"));
    MG_CHECK(fails_with(BASE "route / {\n", "t.conf:3: unexpected end of file, expecting \"}\""));
    MG_CHECK(fails_with(BASE "listen 127.0.0.1:8443 {\n tls_certificate /nonexistent/c.pem;\n"
                             " tls_certificate_key /nonexistent/k.pem;\n}\n",
                        "t.conf:5: cannot read \"/nonexistent/k.pem\" for "
                        "\"tls_certificate_key\": No such file or directory"));
    MG_CHECK(fails_with(BASE "listen 127.0.0.1:8443 {\n tls_certificate /nonexistent/c.pem;\n"
                             " tls_certificate /nonexistent/c.pem;\n}\n",
                        "t.conf:5: duplicate \"tls_certificate\" (first defined at t.conf:4)"));
}


/* issuer blocks, route references resolved in config order, defaults. */
static void
test_issuers(void)
{
    char dir[] = "/tmp/mgconfXXXXXX", path[300], text[1024];
    mg_conf_errors_t errs = {0};
    mg_conf_t *c;
    FILE *f;

    MG_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    f = fopen(path, "w");
    MG_CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("{\"keys\":[]}", f);
    fclose(f);
    snprintf(text, sizeof(text),
             "listen 127.0.0.1:1;\n"
             "route /mcp { upstream http://127.0.0.1:2/mcp; resource https://gw/mcp;\n"
             "  issuer https://b.example; issuer https://a.example; }\n"
             "issuer https://a.example { jwks_file %s; }\n"
             "issuer https://b.example { jwks_file %s; algorithms ES256 EdDSA; leeway 5s;\n"
             "  require_typ off; max_token_lifetime 2h; max_token_size 2k; }\n",
             path, path);
    c = load(text, &errs);
    MG_CHECK(c != NULL);
    if (c != NULL) {
        const mg_conf_route_t *r = &c->routes[0];
        MG_CHECK_INT(c->nissuers, 2);
        MG_CHECK_STR(c->issuers[0].url, "https://a.example");
        MG_CHECK_STR(c->issuers[0].jwks_file, path);
        MG_CHECK(c->issuers[0].algorithms == NULL);
        MG_CHECK_INT(c->issuers[0].leeway, 60000);
        MG_CHECK(c->issuers[0].require_typ);
        MG_CHECK_INT(c->issuers[0].max_token_lifetime, 0);
        MG_CHECK_INT(c->issuers[0].max_token_size, 8192);
        MG_CHECK_STR(c->issuers[1].algorithms, "ES256 EdDSA");
        MG_CHECK_INT(c->issuers[1].leeway, 5000);
        MG_CHECK(!c->issuers[1].require_typ);
        MG_CHECK_INT(c->issuers[1].max_token_lifetime, 2 * 3600 * 1000);
        MG_CHECK_INT(c->issuers[1].max_token_size, 2048);
        MG_CHECK_STR(r->resource, "https://gw/mcp");
        MG_CHECK_INT(r->nissuers, 2);
        MG_CHECK_INT(r->issuers[0], 1); /* b first, as the route lists it */
        MG_CHECK_INT(r->issuers[1], 0);
        MG_CHECK_INT(c->token_cache_size, 10000);
        MG_CHECK_INT(c->routes[0].nissuers, 2);
    }
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);
    unlink(path);
    rmdir(dir);
}

/* Issue 10: a file holding a literal secret (redis password, introspection_client_secret,
 * upstream_authorization) is owner-only like a private key; ${VAR} values do not count;
 * allow_loose_key_permissions turns the refusal into a warning. */
static void
test_secret_files(void)
{
    char dir[] = "/tmp/mgconf-secret-XXXXXX", path[512], inc[512], msg[2048];
    mg_conf_errors_t errs = {0};
    mg_conf_t *c;

    if (mkdtemp(dir) == NULL) {
        MG_CHECK(!"mkdtemp");
        return;
    }
    snprintf(path, sizeof(path), "%s/main.conf", dir);
    snprintf(inc, sizeof(inc), "%s/redis.inc", dir);
    write_file(dir, "main.conf", BASE "include redis.inc;\n");
    write_file(dir, "redis.inc", "redis 127.0.0.1:6379 {\n    password hunter2;\n}\n");
    chmod(path, 0644);
    chmod(inc, 0640);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c == NULL);
    snprintf(msg, sizeof(msg),
             "%s:2: password: %s has mode 0640: a file holding secrets must be readable by its "
             "owner only (chmod 600 %s) (or take the value from the environment with ${VAR}, or "
             "\"allow_loose_key_permissions on;\" to only warn)",
             inc, inc, inc);
    MG_CHECK(has_error(&errs, msg));
    MG_CHECK(strstr(errs.n > 0 ? errs.msgs[0] : "", "hunter2") == NULL); /* never the value */
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);

    chmod(inc, 0600); /* the top file holds no secret: 0644 is fine for it */
    c = mg_conf_load(path, &errs);
    MG_CHECK(c != NULL);
    MG_CHECK_INT(errs.n, 0);
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);

    /* from the environment: the file does not hold the secret */
    setenv("MG_T_REDIS_PW", "hunter2", 1);
    write_file(dir, "redis.inc", "redis 127.0.0.1:6379 {\n    password ${MG_T_REDIS_PW};\n}\n");
    chmod(inc, 0644);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c != NULL);
    MG_CHECK_INT(errs.n, 0);
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);
    /* a default written in the file is in the file */
    write_file(dir, "redis.inc",
               "redis 127.0.0.1:6379 {\n    password ${MG_T_NO_SUCH_PW:-hunter2};\n}\n");
    chmod(inc, 0644);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c == NULL);
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);

    /* the top file itself, and the opt-out that only warns */
    write_file(dir, "main.conf",
               BASE "allow_loose_key_permissions on;\nroute /u {\n"
                    "    upstream http://127.0.0.1:3001;\n"
                    "    upstream_authorization \"Bearer s3cret\";\n}\n");
    chmod(path, 0644);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c != NULL);
    if (c != NULL) {
        mg_conf_errors_t w = {0};
        mg_conf_warnings(c, &w);
        snprintf(msg, sizeof(msg),
                 "%s:6: warning: %s has mode 0644: a file holding secrets must be readable by "
                 "its owner only (chmod 600 %s) (allowed by allow_loose_key_permissions)",
                 path, path, path);
        MG_CHECK(has_error(&w, msg));
        mg_conf_errors_clear(&w);
    }
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);
    /* and without the opt-out, refused */
    write_file(dir, "main.conf",
               BASE "route /u {\n    upstream http://127.0.0.1:3001;\n"
                    "    upstream_authorization \"Bearer s3cret\";\n}\n");
    chmod(path, 0644);
    c = mg_conf_load(path, &errs);
    MG_CHECK(c == NULL);
    mg_conf_free(c);
    mg_conf_errors_clear(&errs);
    unsetenv("MG_T_REDIS_PW");
    unlink(inc);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    MG_RUN(test_duration);
    MG_RUN(test_issuers);
    MG_RUN(test_size);
    MG_RUN(test_defaults);
    MG_RUN(test_values);
    MG_RUN(test_listen);
    MG_RUN(test_upstream);
    MG_RUN(test_route_paths);
    MG_RUN(test_route_match);
    MG_RUN(test_quoting);
    MG_RUN(test_env);
    MG_RUN(test_security_helpers);
    MG_RUN(test_include);
    MG_RUN(test_errors);
    MG_RUN(test_secret_files);
    return mg_test_done();
}
