/* bearer.h -- RFC 6750 on the wire: reading the Authorization header and writing WWW-Authenticate challenges.
 *
 * Pure functions, no I/O. The token returned by mg_bearer_parse() points into
 * the caller's header value; nothing here copies or logs a token.
 */
#ifndef MCPGATE_BEARER_H
#define MCPGATE_BEARER_H

#include <stdbool.h>
#include <stddef.h>

typedef enum mg_bearer_status {
    MG_BEARER_OK = 0,       /* exactly one `Bearer <b64token>`: *token is set */
    MG_BEARER_NONE,         /* no Authorization header: 401, challenge without error */
    MG_BEARER_OTHER_SCHEME, /* one well-formed credential of another scheme (Basic, DPoP...):
                               RFC 6750 section 3.1 counts it as no credentials, so 401
                               without error (SPEC C-04) */
    MG_BEARER_MALFORMED,    /* several Authorization headers, an empty value, `Bearer`
                               without a token, or a token that is not a b64token:
                               400 invalid_request (SPEC C-06) */
} mg_bearer_status_t;

/* Read the Authorization header(s) of a request. <values>/<lens> are the
 * values of every Authorization field, in order (n = 0 when absent); leading
 * and trailing spaces/tabs are ignored. The scheme is case-insensitive
 * (RFC 9110 section 11.1); the token must match
 * b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 * (RFC 6750 section 2.1). On MG_BEARER_OK, *token and *token_len point into
 * values[0]. */
mg_bearer_status_t mg_bearer_parse(const char *const *values, const size_t *lens, size_t n,
                                   const char **token, size_t *token_len);

/* True when <s> is a b64token (above). */
bool mg_bearer_is_b64token(const char *s, size_t len);

/* True when the query string <query> (without the '?') has a parameter named
 * access_token (the name percent-decoded; RFC 6750 section 2.3). Such a
 * request gets 400 invalid_request and is never forwarded (SPEC T-01). */
bool mg_bearer_query_has_token(const char *query, size_t len);

/* True when the body is a form (<content_type> application/x-www-form-urlencoded,
 * parameters ignored, case-insensitive) with an access_token parameter
 * (RFC 6750 section 2.2): 400 invalid_request. <content_type> may be NULL. */
bool mg_bearer_form_has_token(const char *content_type, const char *body, size_t len);

/* --- WWW-Authenticate ------------------------------------------------------- */

typedef enum mg_challenge_kind {
    MG_CHALLENGE_NO_TOKEN = 0,      /* 401, no error attribute (RFC 6750 section 3.1) */
    MG_CHALLENGE_INVALID_TOKEN,     /* 401 error="invalid_token" */
    MG_CHALLENGE_INVALID_REQUEST,   /* 400 error="invalid_request" */
    MG_CHALLENGE_INSUFFICIENT_SCOPE /* 403 error="insufficient_scope" */
} mg_challenge_kind_t;

/* The HTTP status of a challenge kind: 401, 401, 400, 403. */
int mg_challenge_status(mg_challenge_kind_t kind);

/* The error_description used when the caller passes NULL (static text). */
const char *mg_challenge_default_description(mg_challenge_kind_t kind);

/* Build the WWW-Authenticate value
 *   Bearer resource_metadata="<url>", scope="<s1 s2>", error="<e>", error_description="<d>"
 * always in that order (SPEC C-10/C-11: the same situation gives the same
 * bytes). A member is left out when it would be empty: <resource_metadata>
 * NULL or "", no usable scope, no error for MG_CHALLENGE_NO_TOKEN (which also
 * never carries a description). Scopes keep their order, duplicates and
 * scopes with characters outside RFC 6750's scope-token set are dropped;
 * <description> NULL means mg_challenge_default_description(); characters not
 * allowed in error_description ('"', '\\', controls, non-ASCII) are dropped.
 * A resource_metadata URL containing '"' or '\\' or controls is left out.
 * With nothing at all to say the value is just "Bearer".
 * Returns a malloc'd string; NULL only when out of memory. */
char *mg_challenge_build(mg_challenge_kind_t kind, const char *resource_metadata,
                         const char *const *scopes, size_t nscopes, const char *description);

#endif /* MCPGATE_BEARER_H */
