/* tls.c -- OpenSSL 3 contexts: TLS listeners (server) and https upstreams (client). */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h> /* ev_read, ev_write: see tls_input_cb */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core_int.h"
#include "mcpgate/log.h"

/* TLS 1.2 suites: forward secrecy and AEAD only (Mozilla "intermediate"). */
#define MG_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static const unsigned char alpn_http11[] = "\x08http/1.1";

/* The largest plaintext a TLS record carries (RFC 8446 5.1, RFC 5246 6.2.1). */
#define MG_TLS_RECORD_MAX 16384

static void
log_ssl_errors(const char *where, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    if (e == 0) {
        mg_log_error("%s: %s", where, what);
        return;
    }
    ERR_error_string_n(e, buf, sizeof(buf));
    mg_log_error("%s: %s: %s", where, what, buf);
    ERR_clear_error();
}

/* RFC 7301: pick http/1.1 or refuse the handshake; h2 is never selected. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
            unsigned int inlen, void *arg)
{
    unsigned char *sel = NULL;

    if (SSL_select_next_proto(&sel, outlen, alpn_http11, sizeof(alpn_http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *
mg_tls_server_ctx(const char *cert_file, const char *key_file, const char *where)
{
    SSL_CTX *ctx = NULL;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto fail_ssl;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_set_cipher_list(ctx, MG_TLS12_CIPHERS) != 1)
        goto fail_ssl;
    /* Idle keep-alive connections hold no 2 x 17 KiB record buffers (nginx does the same).
     * It costs a malloc/free pair per record read and written: not measurable in
     * contrib/bench's TLS cases (gateway CPU time per request the same without it). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        log_ssl_errors(where, "cannot load tls_certificate");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        log_ssl_errors(where, "cannot load tls_certificate_key");
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl_errors(where, "tls_certificate_key does not match tls_certificate");
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
fail_ssl:
    log_ssl_errors(where, "cannot create the TLS context");
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Read-ahead (one read() per burst of records instead of two per record: the 5-byte header,
 * then the rest) is turned on once the handshake is done, so that no application data
 * sent with the client's Finished is pulled into OpenSSL's buffer while libevent is not
 * looking (it starts reading only after the handshake and would wait for the socket). */
static void
tls_info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (where & SSL_CB_HANDSHAKE_DONE)
        SSL_set_read_ahead((SSL *)ssl, 1);
}

/* With read-ahead OpenSSL may hold whole records that arrived with the one just returned;
 * SSL_pending() counts only what is left of that one, so bufferevent_openssl (2.1) stops
 * reading, and the socket, drained already, never wakes it again. Whenever the input
 * changes (a record was read, or the connection consumed input, perhaps with reading
 * re-enabled), records still buffered get the read event run again from the loop. */
static void
tls_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    (void)buf;
    (void)info;
    if (ssl != NULL && SSL_pending(ssl) == 0 && SSL_has_pending(ssl))
        event_active(&bev->ev_read, EV_READ, 1);
}

/* bufferevent_openssl makes one SSL_write, hence one record and one write(), per buffer
 * chain: a relayed response is two chains at least (our head, the upstream's body). Up to
 * one record's worth, the output is kept in one chain, so that a typical response leaves
 * in one record and one system call, as nginx's does.
 * It also writes only once epoll has said the socket is writable: an epoll_ctl to watch for
 * that, a loop iteration later the write, another epoll_ctl to stop. When output starts,
 * the write event is made active instead, so that it runs from the loop at once, after the
 * callback adding the output has returned (so with all of it); the socket is nearly always
 * writable. An active event is not registered with epoll by the event_add libevent does
 * next, so when the socket is full after all, tls_bio_cb registers it. */
static void
tls_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    size_t len;

    if (info->n_added == 0)
        return;
    if (info->orig_size == 0) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        if (ssl != NULL && SSL_is_init_finished(ssl))
            event_active(&bev->ev_write, EV_WRITE, 1);
    }
    len = evbuffer_get_length(buf);
    if (len <= MG_TLS_RECORD_MAX && evbuffer_get_contiguous_space(buf) < len)
        evbuffer_pullup(buf, -1);
}

/* After every operation on the socket BIO: a write that found the socket full (EAGAIN)
 * makes sure that the write event is watched, so that libevent retries once it drains
 * (during the handshake libevent watches the socket itself). */
static long
tls_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
           size_t *processed)
{
    struct bufferevent *bev = (struct bufferevent *)BIO_get_callback_arg(b);

    (void)argp;
    (void)len;
    (void)argi;
    (void)argl;
    (void)processed;
    if (oper == (BIO_CB_WRITE | BIO_CB_RETURN) && ret <= 0 && BIO_should_retry(b) &&
        SSL_is_init_finished(bufferevent_openssl_get_ssl(bev)) &&
        (bufferevent_get_enabled(bev) & EV_WRITE) && !event_pending(&bev->ev_write, EV_WRITE, NULL))
        bufferevent_enable(bev, EV_WRITE); /* enabled already: only registers the event */
    return ret;
}

bool
mg_tls_conn_tune(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    BIO *wbio = ssl != NULL ? SSL_get_wbio(ssl) : NULL;

    if (wbio == NULL || evbuffer_add_cb(bufferevent_get_input(bev), tls_input_cb, bev) == NULL ||
        evbuffer_add_cb(bufferevent_get_output(bev), tls_output_cb, bev) == NULL)
        return false;
    BIO_set_callback_arg(wbio, (char *)bev);
    BIO_set_callback_ex(wbio, tls_bio_cb);
    SSL_set_info_callback(ssl, tls_info_cb);
    return true;
}

SSL_CTX *
mg_tls_client_ctx(const char *ca_file, const char *where)
{
    SSL_CTX *ctx = NULL;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto fail_ssl;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            log_ssl_errors(where, "cannot load upstream_ca_file");
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        goto fail_ssl;
    }
    if (SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof(alpn_http11) - 1) != 0)
        goto fail_ssl;
    return ctx;
fail_ssl:
    log_ssl_errors(where, "cannot create the upstream TLS context");
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL *
mg_tls_client_ssl(SSL_CTX *ctx, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    unsigned char ip[16];
    bool is_ip;

    if (ssl == NULL)
        return NULL;
    is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (is_ip) {
        /* RFC 6066 3: no IP literals in SNI; check the IP SAN instead. */
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1)
            goto fail;
    } else {
        if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
            goto fail;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}
