/* url.h -- strict parsing of the absolute http(s) URLs the gateway fetches itself (pure, no I/O).
 *
 * Only what an outbound fetch needs (RFC 3986 3, RFC 9110 4.2): a scheme of
 * "http" or "https", a host (reg-name, dotted-quad IPv4 or bracketed IPv6),
 * an optional port and the path with its query. Refused, with a reason:
 * other schemes, userinfo ('@' in the authority: RFC 9110 4.2.4), fragments
 * (never sent on the wire), an empty host, percent-encoded or non-ASCII
 * hosts, IPv6 zone identifiers, numeric hosts that are not a plain dotted
 * quad ("127.1", "0x7f.0.0.1": inet_aton would accept them, we do not guess),
 * ports outside 1..65535 or with more than 5 digits, control bytes, spaces,
 * '\' and non-ASCII bytes anywhere.
 */
#ifndef MCPGATE_URL_H
#define MCPGATE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_URL_MAX_HOST 253 /* RFC 1035 2.3.4, also enough for any IPv6 literal */
#define MG_URL_MAX_LEN 8192

typedef enum mg_url_host_kind {
    MG_URL_HOST_NAME = 0,
    MG_URL_HOST_IPV4,
    MG_URL_HOST_IPV6,
} mg_url_host_kind_t;

/* Plain data, filled by mg_url_parse(); release with mg_url_clear(). */
typedef struct mg_url {
    bool https; /* scheme: "https" when true, else "http" */
    mg_url_host_kind_t host_kind;
    char host[MG_URL_MAX_HOST + 1]; /* lower-cased, NUL-terminated, no brackets */
    uint16_t port;                  /* explicit, or 443/80 by scheme */
    bool port_explicit;
    char *path; /* path + "?query", never empty ("/" by default); owned */
} mg_url_t;

/* Parse <len> bytes at <s> (no NUL needed). Returns 0 and fills *out (the
 * caller then owns out->path: mg_url_clear()), or -1 with *why set to a short
 * static reason and *out zeroed (nothing to free). */
int mg_url_parse(const char *s, size_t len, mg_url_t *out, const char **why);

/* Free what *u owns; zeroes it. NULL-safe and safe on a zeroed struct. */
void mg_url_clear(mg_url_t *u);

/* Same origin (RFC 6454 4): same scheme, host and port. */
bool mg_url_same_origin(const mg_url_t *a, const mg_url_t *b);

/* Write "scheme://host[:port]" (IPv6 bracketed, default port omitted) into
 * <buf> of <cap> bytes, NUL-terminated. Returns the length, or -1 if <cap>
 * is too small. */
int mg_url_format_origin(const mg_url_t *u, char *buf, size_t cap);

/* Write the value of a Host header for <u> ("host[:port]", IPv6 bracketed,
 * default port omitted) into <buf>. Returns the length or -1. */
int mg_url_format_host(const mg_url_t *u, char *buf, size_t cap);

/* Resolve a redirect's Location value against <base> (RFC 3986 5.2). An
 * absolute http(s) URL, a network-path reference ("//host/p") and an
 * absolute-path reference ("/p?q") are supported; a relative-path reference
 * is merged with the directory of base's path. A fragment in the Location
 * is dropped (RFC 9110 10.2.2 would carry it over: it is never sent).
 * Returns 0 and fills *out, or -1 with *why. */
int mg_url_resolve(const mg_url_t *base, const char *ref, size_t len, mg_url_t *out,
                   const char **why);

/* True for an address in 127.0.0.0/8 or ::1 (also ::ffff:127.0.0.0/104).
 * <sa> is a struct sockaddr *. */
struct sockaddr;
bool mg_sockaddr_is_loopback(const struct sockaddr *sa);

#endif /* MCPGATE_URL_H */
