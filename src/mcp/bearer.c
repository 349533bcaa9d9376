/* bearer.c -- Authorization header parsing (RFC 6750 section 2) and WWW-Authenticate challenges (section 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mcpgate/bearer.h"
#include "mcpgate/strbuf.h"

static bool
is_ws(char c)
{
    return c == ' ' || c == '\t';
}

bool
mg_bearer_is_b64token(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'))
            break;
        i++;
    }
    if (i == 0)
        return false;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

mg_bearer_status_t
mg_bearer_parse(const char *const *values, const size_t *lens, size_t n, const char **token,
                size_t *token_len)
{
    const char *v, *end, *sp;

    *token = NULL;
    *token_len = 0;
    if (n == 0)
        return MG_BEARER_NONE;
    if (n > 1)
        return MG_BEARER_MALFORMED; /* RFC 6750 section 3.1: more than one method/credential */
    v = values[0];
    end = v + lens[0];
    while (v < end && is_ws(*v))
        v++;
    while (end > v && is_ws(end[-1]))
        end--;
    if (v == end || memchr(v, '\0', (size_t)(end - v)) != NULL)
        return MG_BEARER_MALFORMED;
    for (sp = v; sp < end && !is_ws(*sp);)
        sp++;
    /* the scheme is a token (RFC 9110 section 11.1) */
    for (const char *p = v; p < sp; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
            strchr("\"(),/:;<=>?@[\\]{}", *p) != NULL)
            return MG_BEARER_MALFORMED;
    if (!((size_t)(sp - v) == 6 && strncasecmp(v, "Bearer", 6) == 0))
        return MG_BEARER_OTHER_SCHEME;
    /* "Bearer" 1*SP b64token */
    if (sp == end || *sp != ' ')
        return MG_BEARER_MALFORMED;
    while (sp < end && *sp == ' ')
        sp++;
    if (!mg_bearer_is_b64token(sp, (size_t)(end - sp)))
        return MG_BEARER_MALFORMED;
    *token = sp;
    *token_len = (size_t)(end - sp);
    return MG_BEARER_OK;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Does an application/x-www-form-urlencoded string name access_token? */
static bool
form_has_token(const char *s, size_t len)
{
    static const char want[] = "access_token";
    size_t i = 0;

    while (i < len) {
        size_t k = 0;
        bool ok = true;
        while (i < len && s[i] != '&' && s[i] != ';' && s[i] != '=') {
            char c = s[i];
            if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                i += 2;
            } else if (c == '+') {
                c = ' ';
            }
            if (k >= sizeof(want) - 1 || want[k] != c)
                ok = false;
            k++;
            i++;
        }
        if (ok && k == sizeof(want) - 1)
            return true;
        while (i < len && s[i] != '&' && s[i] != ';')
            i++;
        if (i < len)
            i++;
    }
    return false;
}

bool
mg_bearer_query_has_token(const char *query, size_t len)
{
    return query != NULL && form_has_token(query, len);
}

bool
mg_bearer_form_has_token(const char *content_type, const char *body, size_t len)
{
    static const char form[] = "application/x-www-form-urlencoded";
    size_t n = sizeof(form) - 1;

    if (content_type == NULL || body == NULL)
        return false;
    while (is_ws(*content_type))
        content_type++;
    if (strncasecmp(content_type, form, n) != 0)
        return false;
    if (content_type[n] != '\0' && content_type[n] != ';' && !is_ws(content_type[n]))
        return false;
    return form_has_token(body, len);
}

/* --- challenges ------------------------------------------------------------------- */

int
mg_challenge_status(mg_challenge_kind_t kind)
{
    switch (kind) {
    case MG_CHALLENGE_INVALID_REQUEST:
        return 400;
    case MG_CHALLENGE_INSUFFICIENT_SCOPE:
        return 403;
    default:
        return 401;
    }
}

const char *
mg_challenge_default_description(mg_challenge_kind_t kind)
{
    switch (kind) {
    case MG_CHALLENGE_INVALID_TOKEN:
        return "The access token is invalid";
    case MG_CHALLENGE_INVALID_REQUEST:
        return "Malformed authorization request";
    case MG_CHALLENGE_INSUFFICIENT_SCOPE:
        return "The access token lacks a required scope";
    default:
        return "";
    }
}

static const char *const error_names[] = {NULL, "invalid_token", "invalid_request",
                                          "insufficient_scope"};

/* RFC 6750 section 3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
static bool
scope_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
            return false;
    return true;
}

static void
sb_param(mg_strbuf_t *b, bool *first, const char *name)
{
    mg_strbuf_str(b, *first ? " " : ", ");
    *first = false;
    mg_strbuf_str(b, name);
    mg_strbuf_str(b, "=\"");
}

char *
mg_challenge_build(mg_challenge_kind_t kind, const char *resource_metadata,
                   const char *const *scopes, size_t nscopes, const char *description)
{
    mg_strbuf_t b = {0};
    bool first = true, any_scope = false, rm_ok = resource_metadata && *resource_metadata;

    if ((unsigned)kind > MG_CHALLENGE_INSUFFICIENT_SCOPE)
        kind = MG_CHALLENGE_INVALID_TOKEN;
    mg_strbuf_str(&b, "Bearer");
    for (const unsigned char *p = (const unsigned char *)(rm_ok ? resource_metadata : "");
         *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            rm_ok = false;
    if (rm_ok) {
        sb_param(&b, &first, "resource_metadata");
        mg_strbuf_str(&b, resource_metadata);
        mg_strbuf_str(&b, "\"");
    }
    for (size_t i = 0; i < nscopes; i++) {
        bool dup = false;
        if (!scope_ok(scopes[i]))
            continue;
        for (size_t j = 0; j < i && !dup; j++)
            dup = scope_ok(scopes[j]) && strcmp(scopes[j], scopes[i]) == 0;
        if (dup)
            continue;
        if (!any_scope)
            sb_param(&b, &first, "scope");
        else
            mg_strbuf_str(&b, " ");
        mg_strbuf_str(&b, scopes[i]);
        any_scope = true;
    }
    if (any_scope)
        mg_strbuf_str(&b, "\"");
    if (kind != MG_CHALLENGE_NO_TOKEN) {
        const char *d = description ? description : mg_challenge_default_description(kind);
        size_t start;
        sb_param(&b, &first, "error");
        mg_strbuf_str(&b, error_names[kind]);
        mg_strbuf_str(&b, "\"");
        sb_param(&b, &first, "error_description");
        start = b.len;
        /* RFC 6750 section 3: %x20-21 / %x23-5B / %x5D-7E */
        for (const unsigned char *p = (const unsigned char *)d; *p; p++)
            if (*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\')
                mg_strbuf_add(&b, (const char *)p, 1);
        if (b.len == start && !b.oom) {
            /* never an empty quoted value: drop the member again */
            b.len = start - (sizeof(", error_description=\"") - 1);
            b.p[b.len] = '\0';
        } else {
            mg_strbuf_str(&b, "\"");
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
