/* discovery.h -- authorization server metadata discovery (RFC 8414, OIDC Discovery) and cache
 * lifetimes.
 *
 * For an `issuer URL { ... }` block without jwks_uri/jwks_file the gateway
 * fetches the issuer's metadata (SPEC T-16, AS-01, D-15) and takes jwks_uri
 * and, when present, introspection_endpoint. The pure parts (URL list,
 * document checks, Cache-Control/Expires) are here without I/O so they are
 * unit-tested on their own; mg_discovery_fetch() drives them with
 * mg_http_client (http_client.h).
 */
#ifndef MCPGATE_DISCOVERY_H
#define MCPGATE_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mcpgate/http_client.h"

#define MG_DISCOVERY_MAX_URLS 3

/* The metadata URLs to try, in order (SPEC AS-01; RFC 8414 3.1 inserts the
 * well-known segment before the issuer's path; OIDC Discovery 4 appends it,
 * and is also commonly served path-inserted):
 *   https://a/t1 -> https://a/.well-known/oauth-authorization-server/t1
 *                   https://a/.well-known/openid-configuration/t1
 *                   https://a/t1/.well-known/openid-configuration
 *   https://a    -> https://a/.well-known/oauth-authorization-server
 *                   https://a/.well-known/openid-configuration
 * One trailing '/' of the issuer is dropped for building the URLs only (the
 * issuer compared in the document stays byte for byte the configured one).
 * The issuer must be an https URL (or, with <allow_http>, an http URL to a
 * loopback host: 127.0.0.0/8, ::1 or "localhost") without query or
 * fragment (RFC 8414 2).
 * Returns 0, writes *n malloc'd strings to urls[] (the caller frees each);
 * or -1 with *why (static) set and nothing to free. */
int mg_discovery_urls(const char *issuer, bool allow_http, char *urls[MG_DISCOVERY_MAX_URLS],
                      size_t *n, const char **why);

/* What a metadata document gave. Owned strings: mg_discovery_meta_clear(). */
typedef struct mg_discovery_meta {
    char *jwks_uri;
    char *introspection_endpoint; /* NULL when the document has none */
} mg_discovery_meta_t;

/* Check a metadata document (RFC 8414 3.2, 3.3): a JSON object without
 * duplicate members; "issuer" a string equal to <issuer> byte for byte
 * (D-15: no normalisation, a trailing '/' counts); "jwks_uri" a string, an
 * https URL (or loopback http with <allow_http>); "introspection_endpoint"
 * optional, same rules. Returns 0 and fills *out, or -1 with a precise
 * message in err[errlen] (document values quoted, truncated, control bytes
 * replaced) and *out zeroed. */
int mg_discovery_parse_metadata(const char *issuer, const char *doc, size_t len, bool allow_http,
                                mg_discovery_meta_t *out, char *err, size_t errlen);

void mg_discovery_meta_clear(mg_discovery_meta_t *m);

/* An IMF-fixdate (RFC 9110 5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT"), exactly.
 * Returns 0 and *out, or -1 (the obsolete RFC 850 and asctime forms are
 * refused: callers treat that as "already expired"). */
int mg_http_parse_imf_fixdate(const char *s, size_t len, time_t *out);

/* Freshness lifetime in seconds from a response's Cache-Control and Expires
 * values (either may be NULL), relative to <now> (RFC 9111 4.2.1):
 *   no-store or no-cache            -> 0
 *   max-age=N (first one wins)      -> N (up to 2^31, RFC 9111 1.2.2); a bad value -> 0
 *   else Expires (IMF-fixdate)      -> max(0, Expires - now); a bad date -> 0 (5.3)
 *   else                            -> -1: the headers say nothing
 * s-maxage, private, public and unknown directives are ignored. The caller
 * clamps the result to its own bounds. */
int64_t mg_cache_lifetime(const char *cache_control, const char *expires, time_t now);

/* ---- the fetch ---------------------------------------------------------- */

typedef struct mg_discovery_result {
    bool ok;
    const char *error;                  /* "" when ok; otherwise what went wrong, for the log */
    const char *jwks_uri;               /* when ok */
    const char *introspection_endpoint; /* when ok and advertised, else NULL */
    const char *metadata_url;           /* the URL whose document was used (NULL if none) */
    int64_t lifetime;                   /* mg_cache_lifetime() of that response, -1 if none */
    const char *document;               /* when ok: the metadata document as received */
    size_t document_len;
} mg_discovery_result_t;

/* Everything in *res is valid during the callback only. */
typedef void (*mg_discovery_cb)(const mg_discovery_result_t *res, void *arg);

typedef struct mg_discovery mg_discovery_t;

/* Fetch the metadata of <issuer> (copied): GET the URLs of
 * mg_discovery_urls() in order with "Accept: application/json". A 200 is
 * checked with mg_discovery_parse_metadata(), and its verdict is final (a
 * wrong issuer refuses the issuer: no other URL is tried); a 4xx moves on to
 * the next URL; anything else (5xx, other statuses, network or TLS errors)
 * stops discovery (SPEC "AS metadata": continue on 4xx, stop on 5xx).
 * <opts> (copied; may be NULL) also decides allow_http for the URL checks.
 * The callback is called exactly once, from the loop, unless cancelled
 * first. Returns NULL only when out of memory (no callback then). */
mg_discovery_t *mg_discovery_fetch(struct event_base *base, const mg_http_client_opts_t *opts,
                                   const char *issuer, mg_discovery_cb cb, void *arg);

/* Abort; the callback will not be called. Not from inside that callback. NULL-safe. */
void mg_discovery_cancel(mg_discovery_t *d);

#endif /* MCPGATE_DISCOVERY_H */
