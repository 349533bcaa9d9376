/* test_http_client.c -- the outbound HTTPS client and discovery against tests/net/server.py on
 * loopback.
 *
 * Run by tests/net/run-http-client.sh, which sets MG_TEST_DIR to a directory
 * holding ports.json and the certificates (ip.pem: 127.0.0.1 + localhost;
 * other.pem: other.example). Every loop run is bounded by a watchdog timer.
 */
#include "mcpgate/discovery.h"
#include "mcpgate/http_client.h"
#include "mgtest.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/ssl.h>

static struct event_base *base;
static json_t *ports;
static const char *dir;
static char ca_ip[1024], ca_other[1024];

static int
port(const char *kind)
{
    return (int)json_integer_value(json_object_get(ports, kind));
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
contains(const char *hay, const char *needle)
{
    bool ok = hay != NULL && strstr(hay, needle) != NULL;
    if (!ok)
        printf("# \"%s\" does not contain \"%s\"\n", hay ? hay : "(null)", needle);
    return ok;
}

/* ---- running the loop, bounded ------------------------------------------ */

static bool watchdog_fired;

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    watchdog_fired = true;
    event_base_loopbreak(base);
}

/* Run the loop until *flag or <ms> elapsed. */
static void
loop_until(const bool *flag, int ms)
{
    struct event *wd = evtimer_new(base, watchdog_cb, NULL);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    watchdog_fired = false;
    evtimer_add(wd, &tv);
    /* Each pass blocks until something happens; the watchdog bounds it. */
    while ((flag == NULL || !*flag) && !watchdog_fired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(wd);
}

typedef struct outcome {
    bool done;
    int calls;
    mg_http_client_error_t err;
    int status;
    char msg[512];
    char *body;
    size_t body_len;
    char cc[256], ct[256], expires[64], final_url[512];
    int redirects;
} outcome_t;

static void
client_cb(mg_http_client_result_t *r, void *arg)
{
    outcome_t *o = arg;
    o->calls++;
    o->done = true;
    o->err = r->error;
    o->status = r->status;
    snprintf(o->msg, sizeof(o->msg), "%s", r->message);
    snprintf(o->cc, sizeof(o->cc), "%s", r->cache_control ? r->cache_control : "");
    snprintf(o->ct, sizeof(o->ct), "%s", r->content_type ? r->content_type : "");
    snprintf(o->expires, sizeof(o->expires), "%s", r->expires ? r->expires : "");
    snprintf(o->final_url, sizeof(o->final_url), "%s", r->final_url ? r->final_url : "");
    o->redirects = r->redirects;
    free(o->body);
    o->body = r->body; /* taken */
    o->body_len = r->body_len;
    r->body = NULL;
}

static mg_http_client_opts_t
opts_ca(const char *ca)
{
    mg_http_client_opts_t o;
    mg_http_client_opts_init(&o);
    o.ca_file = ca;
    o.connect_timeout_ms = 2000;
    o.total_timeout_ms = 5000;
    return o;
}

/* One request to completion; also checks the callback is asynchronous and
 * called exactly once. */
static void
fetch(outcome_t *o, const mg_http_client_opts_t *opts, const char *method, const char *url,
      const char *const *headers, const char *body, size_t body_len)
{
    mg_http_client_req_t *req;

    free(o->body);
    memset(o, 0, sizeof(*o));
    req = mg_http_client_request(base, opts, method, url, headers, body, body_len, client_cb, o);
    MG_CHECK(req != NULL);
    MG_CHECK_INT(o->calls, 0); /* never from inside the call */
    loop_until(&o->done, 10000);
    MG_CHECK(o->done);
    loop_until(NULL, 20); /* a second call would show up here */
    MG_CHECK_INT(o->calls, 1);
    if (o->err != MG_HTTPC_OK)
        printf("# %s -> %s: %s\n", url, mg_http_client_strerror(o->err), o->msg);
}

static void
get(outcome_t *o, const mg_http_client_opts_t *opts, const char *url)
{
    fetch(o, opts, "GET", url, NULL, NULL, 0);
}

static char *
url_of(char *buf, size_t cap, const char *scheme, const char *host, const char *kind,
       const char *path)
{
    snprintf(buf, cap, "%s://%s:%d%s", scheme, host, port(kind), path);
    return buf;
}

#define TLS_URL(path) url_of(url, sizeof(url), "https", "127.0.0.1", "tls", path)
#define PLAIN_URL(path) url_of(url, sizeof(url), "http", "127.0.0.1", "plain", path)

/* ---- framing ----------------------------------------------------------- */

static void
test_content_length(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char url[256], want[300];

    get(&o, &op, TLS_URL("/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.status, 200);
    MG_CHECK_STR(o.body, "{\"framing\":\"length\"}");
    MG_CHECK_INT(o.body_len, 20);
    MG_CHECK_STR(o.ct, "application/json");
    MG_CHECK_STR(o.cc, "max-age=300, public");
    MG_CHECK_STR(o.final_url, url);
    MG_CHECK_INT(o.redirects, 0);
    MG_CHECK_STR(o.msg, "");
    snprintf(want, sizeof(want), "%s", url);
    free(o.body);
}

static void
test_chunked_and_close(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char url[256];

    get(&o, &op, TLS_URL("/json-chunked"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_STR(o.body, "{\"framing\":\"chunked\"}");
    MG_CHECK_STR(o.cc, "no-cache");
    get(&o, &op, TLS_URL("/json-close"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_STR(o.body, "{\"framing\":\"close\"}");
    /* A TLS close without close_notify may have cut the body. */
    get(&o, &op, TLS_URL("/close-dirty"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_BAD_RESPONSE);
    MG_CHECK(contains(o.msg, "close_notify"));
    MG_CHECK(o.body == NULL);
    /* Plain http: a close is the end. */
    op.allow_http = true;
    get(&o, &op, PLAIN_URL("/json-close"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_STR(o.body, "{\"framing\":\"close\"}");
    free(o.body);
}

static void
test_other_responses(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char url[256];

    get(&o, &op, TLS_URL("/interim"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.status, 200);
    MG_CHECK_STR(o.body, "after-100");
    get(&o, &op, TLS_URL("/no-content"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.status, 204);
    MG_CHECK_INT(o.body_len, 0);
    get(&o, &op, TLS_URL("/nowhere"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.status, 404);
    MG_CHECK_STR(o.body, "not found");
    get(&o, &op, TLS_URL("/expires"));
    MG_CHECK_STR(o.expires, "Sun, 06 Nov 1994 08:49:37 GMT");
    get(&o, &op, TLS_URL("/bad-head"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_BAD_RESPONSE);
    MG_CHECK(contains(o.msg, "bad response head"));
    get(&o, &op, TLS_URL("/truncated"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_BAD_RESPONSE);
    MG_CHECK(contains(o.msg, "90 bytes before the end"));
    fetch(&o, &op, "HEAD", TLS_URL("/json-cl"), NULL, NULL, 0);
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.status, 200);
    MG_CHECK_INT(o.body_len, 0);
    free(o.body);
}

static void
test_post_and_headers(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    const char *const hdrs[] = {"X-Test: one", "Accept: application/json", NULL};
    char url[256], host[64];
    json_t *doc;

    fetch(&o, &op, "POST", TLS_URL("/echo"), hdrs, "a=1&b=2", 7);
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    doc = json_loads(o.body ? o.body : "", 0, NULL);
    MG_CHECK(doc != NULL);
    if (doc != NULL) {
        json_t *h = json_object_get(doc, "headers");
        bool saw_host = false, saw_test = false, saw_len = false;
        size_t i;
        json_t *kv;
        MG_CHECK_STR(json_string_value(json_object_get(doc, "method")), "POST");
        MG_CHECK_STR(json_string_value(json_object_get(doc, "body")), "a=1&b=2");
        snprintf(host, sizeof(host), "127.0.0.1:%d", port("tls"));
        json_array_foreach(h, i, kv)
        {
            const char *n = json_string_value(json_array_get(kv, 0));
            const char *v = json_string_value(json_array_get(kv, 1));
            saw_host |= strcmp(n, "Host") == 0 && strcmp(v, host) == 0;
            saw_test |= strcmp(n, "X-Test") == 0 && strcmp(v, "one") == 0;
            saw_len |= strcmp(n, "Content-Length") == 0 && strcmp(v, "7") == 0;
        }
        MG_CHECK(saw_host);
        MG_CHECK(saw_test);
        MG_CHECK(saw_len);
        json_decref(doc);
    }
    /* 303 after POST: retried as GET, without the body. */
    fetch(&o, &op, "POST", TLS_URL("/redirect-post"), NULL, "x", 1);
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    doc = json_loads(o.body ? o.body : "", 0, NULL);
    MG_CHECK(doc != NULL);
    if (doc != NULL) {
        MG_CHECK_STR(json_string_value(json_object_get(doc, "method")), "GET");
        MG_CHECK_STR(json_string_value(json_object_get(doc, "body")), "");
        json_decref(doc);
    }
    MG_CHECK_INT(o.redirects, 1);
    free(o.body);
}

static void
test_bad_requests(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    const char *const crlf[] = {"X-A: b\r\nX-Injected: 1", NULL};
    const char *const host[] = {"host: evil", NULL};
    const char *const noname[] = {": v", NULL};
    char url[256];

    get(&o, &op, "ftp://127.0.0.1/");
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REQUEST);
    MG_CHECK(contains(o.msg, "not http or https"));
    get(&o, &op, "https://user@127.0.0.1/");
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REQUEST);
    fetch(&o, &op, "GET", TLS_URL("/json-cl"), crlf, NULL, 0);
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REQUEST);
    fetch(&o, &op, "GET", TLS_URL("/json-cl"), host, NULL, 0);
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REQUEST);
    fetch(&o, &op, "GET", TLS_URL("/json-cl"), noname, NULL, 0);
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REQUEST);
    fetch(&o, &op, "GE T", TLS_URL("/json-cl"), NULL, NULL, 0);
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REQUEST);
    get(&o, NULL, NULL);
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REQUEST);
    free(o.body);
}

/* ---- TLS ----------------------------------------------------------------- */

static void
test_tls_verification(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(NULL);
    char url[256];
    SSL_CTX *ctx;
    const char *why = NULL;

    /* Self-signed: not in the system store. */
    get(&o, &op, TLS_URL("/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TLS);
    MG_CHECK(contains(o.msg, "certificate verification failed"));
    /* The wrong trust anchor. */
    op = opts_ca(ca_other);
    get(&o, &op, TLS_URL("/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TLS);
    MG_CHECK(contains(o.msg, "certificate verification failed"));
    /* A trusted certificate for another name: by IP literal, then by name. */
    get(&o, &op, url_of(url, sizeof(url), "https", "127.0.0.1", "tls_other", "/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TLS);
    MG_CHECK(contains(o.msg, "mismatch"));
    get(&o, &op, url_of(url, sizeof(url), "https", "localhost", "tls_other", "/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TLS);
    MG_CHECK(contains(o.msg, "hostname mismatch"));
    /* The right anchor: by IP (SAN IP) and by name (SAN DNS, resolved by evdns). */
    op = opts_ca(ca_ip);
    get(&o, &op, TLS_URL("/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    get(&o, &op, url_of(url, sizeof(url), "https", "localhost", "tls", "/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_STR(o.body, "{\"framing\":\"length\"}");
    /* A shared context. */
    ctx = mg_http_client_ssl_ctx_new(ca_ip, &why);
    MG_CHECK(ctx != NULL);
    op = opts_ca(NULL);
    op.ssl_ctx = ctx;
    get(&o, &op, TLS_URL("/json-chunked"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    SSL_CTX_free(ctx);
    /* A ca_file that cannot be read. */
    op = opts_ca("/nonexistent/ca.pem");
    get(&o, &op, TLS_URL("/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TLS);
    MG_CHECK(contains(o.msg, "cannot load ca_file"));
    MG_CHECK(mg_http_client_ssl_ctx_new("/nonexistent/ca.pem", &why) == NULL);
    MG_CHECK_STR(why, "cannot load ca_file");
    free(o.body);
}

/* ---- connecting, timeouts, sizes ---------------------------------------- */

static void
test_timeouts_and_refusal(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char url[256];
    double t0;

    /* Accepted by the kernel, never answered: the TLS handshake hangs. */
    op.connect_timeout_ms = 300;
    t0 = now_s();
    get(&o, &op, url_of(url, sizeof(url), "https", "127.0.0.1", "silent", "/"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TIMEOUT);
    MG_CHECK(contains(o.msg, "timed out after 300 ms"));
    MG_CHECK(now_s() - t0 < 2.0);
    /* The total timeout, while waiting for a response that never comes. */
    op = opts_ca(ca_ip);
    op.allow_http = true;
    op.total_timeout_ms = 400;
    t0 = now_s();
    get(&o, &op, PLAIN_URL("/hang"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TIMEOUT);
    MG_CHECK(contains(o.msg, "request timed out after 400 ms"));
    MG_CHECK(now_s() - t0 < 2.0);
    /* ... and while connecting, when it is the shorter one. */
    op = opts_ca(ca_ip);
    op.total_timeout_ms = 300;
    t0 = now_s();
    get(&o, &op, url_of(url, sizeof(url), "https", "127.0.0.1", "silent", "/"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TIMEOUT);
    MG_CHECK(contains(o.msg, "request timed out"));
    MG_CHECK(now_s() - t0 < 2.0);
    /* Nobody listening. */
    op = opts_ca(ca_ip);
    get(&o, &op, url_of(url, sizeof(url), "https", "127.0.0.1", "closed", "/"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_CONNECT);
    MG_CHECK(contains(o.msg, "refused"));
    free(o.body);
}

static void
test_size_cap(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char url[256];

    MG_CHECK_INT(op.max_response, 256 * 1024);
    get(&o, &op, TLS_URL("/big-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TOO_LARGE);
    MG_CHECK(contains(o.msg, "300000 bytes exceeds the limit of 262144"));
    get(&o, &op, TLS_URL("/big-chunked"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TOO_LARGE);
    get(&o, &op, TLS_URL("/big-close"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TOO_LARGE);
    op.max_response = 1000;
    get(&o, &op, TLS_URL("/exact-limit"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.body_len, 1000);
    op.max_response = 999;
    get(&o, &op, TLS_URL("/exact-limit"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_TOO_LARGE);
    op.max_response = 0; /* 0 = the default */
    get(&o, &op, TLS_URL("/exact-limit"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    free(o.body);
}

/* ---- redirects ----------------------------------------------------------- */

static void
test_redirects(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char url[256], want[256];

    get(&o, &op, TLS_URL("/redirect-same"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.status, 200);
    MG_CHECK_STR(o.body, "{\"framing\":\"length\"}");
    MG_CHECK_INT(o.redirects, 1);
    MG_CHECK_STR(o.final_url, url_of(want, sizeof(want), "https", "127.0.0.1", "tls", "/json-cl"));
    get(&o, &op, TLS_URL("/redirect-abs"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_STR(o.body, "{\"framing\":\"chunked\"}");
    get(&o, &op, TLS_URL("/redirect-rel"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_STR(o.body, "{\"framing\":\"length\"}");
    get(&o, &op, TLS_URL("/redirect-twice"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.redirects, 2);
    get(&o, &op, TLS_URL("/redirect-loop"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REDIRECT);
    MG_CHECK(contains(o.msg, "too many redirects (limit 3)"));
    /* Same host, other name: another origin. */
    get(&o, &op, TLS_URL("/redirect-cross"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REDIRECT);
    MG_CHECK(contains(o.msg, "another origin"));
    /* https -> http, even with allow_http. */
    op.allow_http = true;
    get(&o, &op, TLS_URL("/redirect-http"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REDIRECT);
    MG_CHECK(contains(o.msg, "another origin"));
    op = opts_ca(ca_ip);
    op.max_redirects = 0;
    get(&o, &op, TLS_URL("/redirect-same"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_REDIRECT);
    /* Plain http, same origin. */
    op = opts_ca(ca_ip);
    op.allow_http = true;
    get(&o, &op, PLAIN_URL("/redirect-same"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_INT(o.redirects, 1);
    free(o.body);
}

/* ---- plain http ---------------------------------------------------------- */

static void
test_http_scheme_rules(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char url[256];
    double t0;

    get(&o, &op, PLAIN_URL("/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_SCHEME);
    MG_CHECK(contains(o.msg, "allow_http is off"));
    op.allow_http = true;
    get(&o, &op, PLAIN_URL("/json-cl"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    MG_CHECK_STR(o.body, "{\"framing\":\"length\"}");
    /* By name: the resolved address is what counts (localhost is loopback). */
    get(&o, &op, url_of(url, sizeof(url), "http", "localhost", "plain", "/json-chunked"));
    MG_CHECK_INT(o.err, MG_HTTPC_OK);
    /* A non-loopback address is refused before any connect: TEST-NET-1 and
     * the IPv6 documentation prefix are not routed, so a connect would hang
     * until the timeout instead of failing at once. */
    op.connect_timeout_ms = 3000;
    t0 = now_s();
    get(&o, &op, "http://192.0.2.1:8080/jwks");
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_SCHEME);
    MG_CHECK(contains(o.msg, "non-loopback address 192.0.2.1:8080"));
    get(&o, &op, "http://[2001:db8::1]/jwks");
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_SCHEME);
    MG_CHECK(contains(o.msg, "non-loopback"));
    MG_CHECK(now_s() - t0 < 0.5);
    free(o.body);
}

/* ---- DNS and cancellation ----------------------------------------------- */

/* A UDP "name server" that never answers. */
static int
silent_udp(struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)sin, sizeof(*sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)sin, &len) != 0)
        return -1;
    return fd;
}

static void
test_dns_failure_and_cancel(void)
{
    outcome_t o = {0};
    mg_http_client_opts_t op = opts_ca(ca_ip);
    struct sockaddr_in ns;
    char nsaddr[64], url[256];
    int fd = silent_udp(&ns);
    struct evdns_base *dns = evdns_base_new(base, 0);
    mg_http_client_req_t *req;

    MG_CHECK(fd >= 0 && dns != NULL);
    snprintf(nsaddr, sizeof(nsaddr), "127.0.0.1:%d", ntohs(ns.sin_port));
    MG_CHECK_INT(evdns_base_nameserver_ip_add(dns, nsaddr), 0);
    evdns_base_set_option(dns, "timeout:", "0.2");
    evdns_base_set_option(dns, "attempts:", "1");
    evdns_base_set_option(dns, "getaddrinfo-allow-skew:", "0.1");
    op.dns = dns;
    get(&o, &op, "https://nothing.invalid/");
    MG_CHECK_INT(o.err, MG_HTTPC_ERR_DNS);
    MG_CHECK(contains(o.msg, "cannot resolve nothing.invalid"));

    /* Cancelled while resolving: no callback, nothing leaks. */
    memset(&o, 0, sizeof(o));
    req = mg_http_client_request(base, &op, "GET", "https://pending.invalid/", NULL, NULL, 0,
                                 client_cb, &o);
    MG_CHECK(req != NULL);
    loop_until(NULL, 50);
    mg_http_client_cancel(req);
    loop_until(NULL, 500);
    MG_CHECK_INT(o.calls, 0);

    /* Cancelled while waiting for the response, and before it even started. */
    op = opts_ca(ca_ip);
    op.allow_http = true;
    req =
        mg_http_client_request(base, &op, "GET", PLAIN_URL("/hang"), NULL, NULL, 0, client_cb, &o);
    loop_until(NULL, 100);
    mg_http_client_cancel(req);
    req =
        mg_http_client_request(base, &op, "GET", TLS_URL("/json-cl"), NULL, NULL, 0, client_cb, &o);
    mg_http_client_cancel(req);
    req = mg_http_client_request(base, &op, "GET", "ftp://x/", NULL, NULL, 0, client_cb, &o);
    mg_http_client_cancel(req);
    mg_http_client_cancel(NULL);
    /* With a resolver of its own, cancelled mid-lookup. */
    op.dns = NULL;
    req = mg_http_client_request(base, &op, "GET", "https://pending2.invalid/", NULL, NULL, 0,
                                 client_cb, &o);
    mg_http_client_cancel(req);
    loop_until(NULL, 300);
    MG_CHECK_INT(o.calls, 0);
    evdns_base_free(dns, 0);
    close(fd);
}

/* ---- discovery ----------------------------------------------------------- */

typedef struct disc_outcome {
    bool done;
    int calls;
    bool ok;
    char error[600], jwks[256], intro[256], meta_url[256];
    bool has_intro;
    int64_t lifetime;
} disc_outcome_t;

static void
disc_cb(const mg_discovery_result_t *r, void *arg)
{
    disc_outcome_t *o = arg;
    o->done = true;
    o->calls++;
    o->ok = r->ok;
    snprintf(o->error, sizeof(o->error), "%s", r->error);
    snprintf(o->jwks, sizeof(o->jwks), "%s", r->jwks_uri ? r->jwks_uri : "");
    o->has_intro = r->introspection_endpoint != NULL;
    snprintf(o->intro, sizeof(o->intro), "%s",
             r->introspection_endpoint ? r->introspection_endpoint : "");
    snprintf(o->meta_url, sizeof(o->meta_url), "%s", r->metadata_url ? r->metadata_url : "");
    o->lifetime = r->lifetime;
}

static void
discover(disc_outcome_t *o, const mg_http_client_opts_t *op, const char *issuer)
{
    mg_discovery_t *d;
    memset(o, 0, sizeof(*o));
    d = mg_discovery_fetch(base, op, issuer, disc_cb, o);
    MG_CHECK(d != NULL);
    MG_CHECK_INT(o->calls, 0);
    loop_until(&o->done, 10000);
    loop_until(NULL, 20);
    MG_CHECK_INT(o->calls, 1);
    if (!o->ok)
        printf("# discovery of %s: %s\n", issuer, o->error);
}

static void
test_discovery_fetch(void)
{
    disc_outcome_t o;
    mg_http_client_opts_t op = opts_ca(ca_ip);
    char iss[256], want[300], base_url[128];
    mg_discovery_t *d;

    snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port("tls"));
    /* RFC 8414 path-inserted. */
    snprintf(iss, sizeof(iss), "%s/t1", base_url);
    discover(&o, &op, iss);
    MG_CHECK(o.ok);
    snprintf(want, sizeof(want), "%s/jwks", base_url);
    MG_CHECK_STR(o.jwks, want);
    snprintf(want, sizeof(want), "%s/introspect", base_url);
    MG_CHECK_STR(o.intro, want);
    snprintf(want, sizeof(want), "%s/.well-known/oauth-authorization-server/t1", base_url);
    MG_CHECK_STR(o.meta_url, want);
    MG_CHECK_INT(o.lifetime, 600);
    /* OIDC appended, after two 404s; no introspection_endpoint. */
    snprintf(iss, sizeof(iss), "%s/t2", base_url);
    discover(&o, &op, iss);
    MG_CHECK(o.ok);
    MG_CHECK(!o.has_intro);
    snprintf(want, sizeof(want), "%s/t2/.well-known/openid-configuration", base_url);
    MG_CHECK_STR(o.meta_url, want);
    MG_CHECK_INT(o.lifetime, -1);
    /* OIDC inserted. */
    snprintf(iss, sizeof(iss), "%s/t6", base_url);
    discover(&o, &op, iss);
    MG_CHECK(o.ok);
    snprintf(want, sizeof(want), "%s/.well-known/openid-configuration/t6", base_url);
    MG_CHECK_STR(o.meta_url, want);
    /* No path: OIDC after the RFC 8414 404. */
    discover(&o, &op, base_url);
    MG_CHECK(o.ok);
    snprintf(want, sizeof(want), "%s/.well-known/openid-configuration", base_url);
    MG_CHECK_STR(o.meta_url, want);
    /* Wrong issuer (a trailing slash): refused, no fallback. */
    snprintf(iss, sizeof(iss), "%s/t3", base_url);
    discover(&o, &op, iss);
    MG_CHECK(!o.ok);
    MG_CHECK(contains(o.error, "does not equal the configured issuer"));
    MG_CHECK(contains(o.error, "/t3/\""));
    /* A 5xx stops discovery even though a later form would answer. */
    snprintf(iss, sizeof(iss), "%s/t5", base_url);
    discover(&o, &op, iss);
    MG_CHECK(!o.ok);
    MG_CHECK(contains(o.error, "answered 500"));
    /* Nothing anywhere. */
    snprintf(iss, sizeof(iss), "%s/t7", base_url);
    discover(&o, &op, iss);
    MG_CHECK(!o.ok);
    MG_CHECK(contains(o.error, "no metadata found (statuses 404, 404, 404)"));
    /* jwks_uri over http. */
    snprintf(iss, sizeof(iss), "%s/t8", base_url);
    discover(&o, &op, iss);
    MG_CHECK(!o.ok);
    MG_CHECK(contains(o.error, "\"jwks_uri\""));
    /* TLS failure stops discovery. */
    op = opts_ca(ca_other);
    snprintf(iss, sizeof(iss), "%s/t1", base_url);
    discover(&o, &op, iss);
    MG_CHECK(!o.ok);
    MG_CHECK(contains(o.error, "certificate verification failed"));
    /* Plain http issuer: only with allow_http. */
    op = opts_ca(ca_ip);
    snprintf(iss, sizeof(iss), "http://127.0.0.1:%d/t1", port("plain"));
    discover(&o, &op, iss);
    MG_CHECK(!o.ok);
    MG_CHECK(contains(o.error, "allow_http is off"));
    op.allow_http = true;
    discover(&o, &op, iss);
    MG_CHECK(o.ok);
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/jwks", port("plain"));
    MG_CHECK_STR(o.jwks, want);
    /* Cancelled in flight. */
    memset(&o, 0, sizeof(o));
    snprintf(iss, sizeof(iss), "https://127.0.0.1:%d/t1", port("silent"));
    d = mg_discovery_fetch(base, &op, iss, disc_cb, &o);
    loop_until(NULL, 50); /* the TLS handshake with the silent port hangs */
    mg_discovery_cancel(d);
    d = mg_discovery_fetch(base, &op, "ftp://x", disc_cb, &o);
    mg_discovery_cancel(d);
    mg_discovery_cancel(NULL);
    loop_until(NULL, 200);
    MG_CHECK_INT(o.calls, 0);
}

int
main(void)
{
    char path[1100];
    json_error_t jerr;

    dir = getenv("MG_TEST_DIR");
    if (dir == NULL) {
        printf("1..0 # SKIP MG_TEST_DIR not set (run tests/net/run-http-client.sh)\n");
        return 77;
    }
    snprintf(path, sizeof(path), "%s/ports.json", dir);
    ports = json_load_file(path, 0, &jerr);
    if (ports == NULL) {
        printf("not ok - %s: %s\n", path, jerr.text);
        return 1;
    }
    snprintf(ca_ip, sizeof(ca_ip), "%s/ip.pem", dir);
    snprintf(ca_other, sizeof(ca_other), "%s/other.pem", dir);
    base = event_base_new();

    MG_RUN(test_content_length);
    MG_RUN(test_chunked_and_close);
    MG_RUN(test_other_responses);
    MG_RUN(test_post_and_headers);
    MG_RUN(test_bad_requests);
    MG_RUN(test_tls_verification);
    MG_RUN(test_timeouts_and_refusal);
    MG_RUN(test_size_cap);
    MG_RUN(test_redirects);
    MG_RUN(test_http_scheme_rules);
    MG_RUN(test_dns_failure_and_cancel);
    MG_RUN(test_discovery_fetch);

    loop_until(NULL, 50);
    event_base_free(base);
    json_decref(ports);
    return mg_test_done();
}
