/* identity.c -- identity headers for the upstream, the client-header strip list and the signed X-MCP-Identity token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mcpgate/identity.h"
#include "mcpgate/strbuf.h"
#include "mcpgate/jwk.h"

static const char *const default_names[MG_CONF_IDENTITY_COUNT] = {
    "X-MCP-Subject", "X-MCP-Client-Id", "X-MCP-Scopes", "X-MCP-Issuer"};

const char *
mg_identity_header_name(const mg_conf_route_t *route, int which)
{
    const char *n;

    if (which < 0 || which >= MG_CONF_IDENTITY_COUNT || !route->identity_headers)
        return NULL;
    n = route->identity_header_names[which];
    if (n == NULL)
        return default_names[which];
    return *n ? n : NULL;
}

static bool
name_is(const char *name, size_t len, const char *want)
{
    return want != NULL && strlen(want) == len && strncasecmp(name, want, len) == 0;
}

bool
mg_identity_is_client_header(const mg_conf_route_t *route, const char *name, size_t len)
{
    /* The fixed names (the last four: default_names[]) with their lengths: this runs for
     * every header of every forwarded request, and most differ in length from all of them. */
    static const struct {
        const char *s;
        size_t len;
    } fixed[] = {{"X-MCP-Identity", 14}, {"Authorization", 13},   {"DPoP", 4},
                 {"X-MCP-Subject", 13},  {"X-MCP-Client-Id", 15}, {"X-MCP-Scopes", 12},
                 {"X-MCP-Issuer", 12}};

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (fixed[i].len == len && strncasecmp(name, fixed[i].s, len) == 0)
            return true;
    for (int i = 0; route != NULL && i < MG_CONF_IDENTITY_COUNT; i++)
        if (route->identity_header_names[i] != NULL &&
            name_is(name, len, route->identity_header_names[i]))
            return true;
    return false;
}

/* A header value: printable ASCII as is, '%' and anything else as %XX. */
static void
put_value(mg_strbuf_t *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";

    const unsigned char *p = (const unsigned char *)v, *run = p;

    /* Runs of plain characters are appended whole: this runs for every forwarded request. */
    for (; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%')
            continue;
        char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        mg_strbuf_add(b, (const char *)run, (size_t)(p - run));
        mg_strbuf_add(b, e, 3);
        run = p + 1;
    }
    mg_strbuf_add(b, (const char *)run, (size_t)(p - run));
}

static void
header(mg_strbuf_t *b, const char *name, const char *value)
{
    if (name == NULL || value == NULL)
        return;
    mg_strbuf_str(b, name);
    mg_strbuf_str(b, ": ");
    put_value(b, value);
    mg_strbuf_str(b, "\r\n");
}

char *
mg_identity_headers(const mg_conf_route_t *route, const mg_jwt_claims_t *claims,
                    const char *signed_jwt)
{
    mg_strbuf_t b = {0};
    const char *name;

    mg_strbuf_add(&b, "", 0);
    if (claims != NULL) {
        header(&b, mg_identity_header_name(route, MG_IDENT_SUBJECT), claims->sub);
        header(&b, mg_identity_header_name(route, MG_IDENT_CLIENT_ID), claims->client_id);
        if ((name = mg_identity_header_name(route, MG_IDENT_SCOPES)) != NULL) {
            /* Space-separated, written in place (a space needs no encoding). */
            mg_strbuf_str(&b, name);
            mg_strbuf_add(&b, ": ", 2);
            for (size_t i = 0; i < claims->n_scopes; i++) {
                if (i)
                    mg_strbuf_add(&b, " ", 1);
                put_value(&b, claims->scopes[i]);
            }
            mg_strbuf_add(&b, "\r\n", 2);
        }
        header(&b, mg_identity_header_name(route, MG_IDENT_ISSUER), claims->iss);
        header(&b, "X-MCP-Identity", signed_jwt);
    }
    header(&b, "Authorization", route->upstream_authorization);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* --- signing ------------------------------------------------------------------- */

struct mg_identity_signer {
    EVP_PKEY *pkey;
    mg_jws_alg_t alg;
};

mg_identity_signer_t *
mg_identity_signer_load(const char *pem_path, const char **why)
{
    mg_identity_signer_t *s = NULL;
    FILE *f = fopen(pem_path, "r");
    EVP_PKEY *pkey = NULL;
    char group[32];
    size_t glen = 0;

    *why = NULL;
    if (f == NULL) {
        *why = "cannot open the key file";
        return NULL;
    }
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (pkey == NULL) {
        *why = "not a PEM private key";
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        *why = "out of memory";
        EVP_PKEY_free(pkey);
        return NULL;
    }
    s->pkey = pkey;
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        s->alg = MG_JWS_EDDSA;
    } else if (EVP_PKEY_is_a(pkey, "EC") &&
               EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), &glen) == 1 &&
               strcmp(group, "prime256v1") == 0) {
        s->alg = MG_JWS_ES256;
    } else {
        *why = "the identity key must be Ed25519 or EC P-256";
        mg_identity_signer_free(s);
        return NULL;
    }
    return s;
}

void
mg_identity_signer_free(mg_identity_signer_t *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->pkey);
    free(s);
}

char *
mg_identity_signer_public_jwk(const mg_identity_signer_t *s)
{
    return mg_jwk_public_json(s->pkey, NULL, s->alg);
}

static void
set_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, k, json_string(v));
}

char *
mg_identity_sign(const mg_identity_signer_t *s, const mg_conf_route_t *route,
                 const mg_jwt_claims_t *claims, int64_t now)
{
    const char *hdr = s->alg == MG_JWS_EDDSA
                          ? "{\"alg\":\"EdDSA\",\"typ\":\"mcp-identity+jwt\"}"
                          : "{\"alg\":\"ES256\",\"typ\":\"mcp-identity+jwt\"}";
    json_t *c = json_object();
    char *payload = NULL, *jws = NULL;

    if (c == NULL || claims == NULL)
        goto done;
    set_str(c, "iss", route->resource ? route->resource : "mcpgate");
    set_str(c, "aud", route->upstream);
    json_object_set_new(c, "iat", json_integer(now));
    json_object_set_new(c, "exp", json_integer(now + MG_IDENTITY_TTL));
    set_str(c, "sub", claims->sub);
    set_str(c, "client_id", claims->client_id);
    if (claims->n_scopes > 0) {
        size_t len = 0;
        char *sc;
        for (size_t i = 0; i < claims->n_scopes; i++)
            len += strlen(claims->scopes[i]) + 1;
        if ((sc = calloc(1, len + 1)) == NULL)
            goto done;
        for (size_t i = 0; i < claims->n_scopes; i++) {
            if (i)
                strcat(sc, " ");
            strcat(sc, claims->scopes[i]);
        }
        set_str(c, "scope", sc);
        free(sc);
    }
    set_str(c, "token_iss", claims->iss);
    set_str(c, "token_jti", claims->jti);
    if ((payload = json_dumps(c, JSON_COMPACT)) == NULL)
        goto done;
    jws = mg_jws_sign(s->pkey, s->alg, hdr, strlen(hdr), payload, strlen(payload), -1);
done:
    free(payload);
    json_decref(c);
    return jws;
}
