/* identity.h -- what the upstream learns about the caller: X-MCP-* identity headers, the signed X-MCP-Identity JWT, a static upstream credential.
 *
 * The client's access token is never forwarded (SPEC F-01); the upstream gets
 * the verified identity instead (F-02), and copies of those headers sent by
 * the client are stripped first.
 */
#ifndef MCPGATE_IDENTITY_H
#define MCPGATE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpgate/conf.h"
#include "mcpgate/jwt.h"

/* The header name used for identity <which> (MG_IDENT_*) on <route>: the
 * configured name, the default (X-MCP-Subject, X-MCP-Client-Id, X-MCP-Scopes,
 * X-MCP-Issuer), or NULL when it is not sent (identity_headers off or
 * `identity_header KIND off`). Borrowed/static. */
const char *mg_identity_header_name(const mg_conf_route_t *route, int which);

/* True when a request header must not reach the upstream because only the
 * gateway may set it: the four default names, the route's configured names,
 * X-MCP-Identity, Authorization (token passthrough, F-01) and DPoP.
 * Case-insensitive. Strip these from every forwarded request. */
bool mg_identity_is_client_header(const mg_conf_route_t *route, const char *name, size_t len);

/* The header lines to add to the forwarded request, each "Name: value\r\n":
 * the identity headers (values percent-encoded for bytes outside 0x20-0x7E
 * and for '%', so no CR/LF can get through; a claim that is absent is left
 * out; scopes space-separated), then "X-MCP-Identity: <jwt>" when <signed_jwt>
 * is not NULL, then "Authorization: <upstream_authorization>" when configured.
 * <claims> may be NULL (an unprotected route): only the last line then.
 * Malloc'd (possibly ""); NULL on OOM. */
char *mg_identity_headers(const mg_conf_route_t *route, const mg_jwt_claims_t *claims,
                          const char *signed_jwt);

/* --- the signed identity (identity_signing_key) --------------------------------- */

typedef struct mg_identity_signer mg_identity_signer_t;

/* Load a PEM private key: Ed25519 (signs EdDSA) or EC P-256 (signs ES256).
 * NULL with a static reason in *why on failure. Thread-safe to use once built. */
mg_identity_signer_t *mg_identity_signer_load(const char *pem_path, const char **why);
void mg_identity_signer_free(mg_identity_signer_t *s); /* NULL-safe */
/* The public key as a JWK (JSON text, malloc'd), for the upstream's config. */
char *mg_identity_signer_public_jwk(const mg_identity_signer_t *s);

#define MG_IDENTITY_TTL 60 /* seconds */

/* A compact JWS: header {"alg":"EdDSA"|"ES256","typ":"mcp-identity+jwt"},
 * claims {"iss":<route resource or "mcpgate">,"aud":<route upstream URL>,
 * "iat":now,"exp":now+MG_IDENTITY_TTL,"sub","client_id","scope","token_iss",
 * "token_jti"} (absent token claims left out). Malloc'd; NULL on failure. */
char *mg_identity_sign(const mg_identity_signer_t *s, const mg_conf_route_t *route,
                       const mg_jwt_claims_t *claims, int64_t now);

#endif /* MCPGATE_IDENTITY_H */
