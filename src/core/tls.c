/* tls.c -- OpenSSL 3 contexts: TLS listeners (server) and https upstreams (client). */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

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
