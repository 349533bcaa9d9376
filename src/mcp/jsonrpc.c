/* jsonrpc.c -- JSON-RPC body inspection, MCP protocol versions and eras, Mcp-Method/Mcp-Name validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "mcpgate/jsonrpc.h"

static const char *const version_names[MG_MCP_VERSION_COUNT] = {
    "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"};

/* data.supported of an UnsupportedProtocolVersion error (2026 base, Error Codes) */
static const char supported_json[] =
    "{\"supported\":[\"2024-11-05\",\"2025-03-26\",\"2025-06-18\",\"2025-11-25\","
    "\"2026-07-28\"]}";

mg_mcp_version_t
mg_mcp_version_parse(const char *s, size_t len)
{
    for (int i = 0; s != NULL && i < MG_MCP_VERSION_COUNT; i++)
        if (strlen(version_names[i]) == len && memcmp(version_names[i], s, len) == 0)
            return (mg_mcp_version_t)i;
    return MG_MCP_VERSION_UNKNOWN;
}

const char *
mg_mcp_version_name(mg_mcp_version_t v)
{
    return v >= 0 && v < MG_MCP_VERSION_COUNT ? version_names[v] : "";
}

bool
mg_mcp_version_is_modern(mg_mcp_version_t v)
{
    return v >= MG_MCP_2026_07_28;
}

bool
mg_mcp_version_allows_batch(mg_mcp_version_t v)
{
    return v == MG_MCP_2024_11_05 || v == MG_MCP_2025_03_26;
}

/* --- error bodies -------------------------------------------------------------- */

char *
mg_rpc_error_body(const char *id_json, int code, const char *message, const char *data_json,
                  size_t *len_out)
{
    json_t *m = json_string(message ? message : "");
    char *msg = m ? json_dumps(m, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    char *out = NULL;
    int n;

    json_decref(m);
    if (msg == NULL)
        return NULL;
    if (data_json != NULL)
        n = asprintf(&out,
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":%s,"
                     "\"data\":%s}}",
                     id_json ? id_json : "null", code, msg, data_json);
    else
        n = asprintf(&out, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":%s}}",
                     id_json ? id_json : "null", code, msg);
    free(msg);
    if (n < 0)
        return NULL;
    if (len_out)
        *len_out = (size_t)n;
    return out;
}

/* --- parsing ------------------------------------------------------------------- */

/* Nesting depth outside strings; jansson's own limit is 2048, far too deep. */
static bool
depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > MG_RPC_MAX_DEPTH)
                return false;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

static char *
dup_string(json_t *v)
{
    return json_is_string(v) ? strndup(json_string_value(v), json_string_length(v)) : NULL;
}

static void
msg_clear(mg_rpc_msg_t *m)
{
    free(m->method);
    free(m->id);
    free(m->target);
    free(m->meta_version);
    free(m->requested_version);
}

void
mg_rpc_body_free(mg_rpc_body_t *body)
{
    if (body == NULL)
        return;
    for (size_t i = 0; i < body->n; i++)
        msg_clear(&body->msgs[i]);
    free(body->msgs);
    free(body);
}

/* Fill <m> from one message object; 0, MG_RPC_INVALID_REQUEST or -1 (OOM). */
static int
read_msg(json_t *o, mg_rpc_msg_t *m)
{
    json_t *jv, *method, *id, *params;
    bool has_result;

    if (!json_is_object(o))
        return MG_RPC_INVALID_REQUEST;
    jv = json_object_get(o, "jsonrpc");
    if (!json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0)
        return MG_RPC_INVALID_REQUEST;
    method = json_object_get(o, "method");
    id = json_object_get(o, "id");
    params = json_object_get(o, "params");
    has_result = json_object_get(o, "result") != NULL || json_object_get(o, "error") != NULL;
    if (id != NULL && !json_is_string(id) && !json_is_number(id) && !json_is_null(id))
        return MG_RPC_INVALID_REQUEST;
    if (id != NULL && (m->id = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
        return -1;
    if (method != NULL) {
        if (!json_is_string(method) || has_result)
            return MG_RPC_INVALID_REQUEST;
        if ((m->method = dup_string(method)) == NULL)
            return -1;
        m->kind = id != NULL ? MG_RPC_REQUEST : MG_RPC_NOTIFICATION;
    } else if (has_result && id != NULL) {
        m->kind = MG_RPC_RESPONSE;
        return 0;
    } else {
        return MG_RPC_INVALID_REQUEST;
    }
    if (params != NULL && !json_is_object(params) && !json_is_array(params))
        return MG_RPC_INVALID_REQUEST;
    if (json_is_object(params)) {
        const char *key = NULL;
        json_t *meta = json_object_get(params, "_meta");
        if (strcmp(m->method, "tools/call") == 0 || strcmp(m->method, "prompts/get") == 0)
            key = "name";
        else if (strcmp(m->method, "resources/read") == 0)
            key = "uri";
        if (key != NULL && json_object_get(params, key) != NULL) {
            json_t *t = json_object_get(params, key);
            m->has_target_field = true;
            if (json_is_string(t) && (m->target = dup_string(t)) == NULL)
                return -1;
        }
        if (json_is_object(meta)) {
            json_t *v = json_object_get(meta, "io.modelcontextprotocol/protocolVersion");
            if (json_is_string(v) && (m->meta_version = dup_string(v)) == NULL)
                return -1;
        }
        if (strcmp(m->method, "initialize") == 0) {
            json_t *v = json_object_get(params, "protocolVersion");
            if (json_is_string(v) && (m->requested_version = dup_string(v)) == NULL)
                return -1;
        }
    }
    return 0;
}

/* The reference reading of a body: a whole jansson tree. mg_rpc_parse()
 * (jsonrpc_scan.c) must give the same answer for every input; it hands
 * bodies to this function when its own bounds are exceeded. */
int
mg_rpc_parse_jansson(const char *body, size_t len, mg_rpc_body_t **out)
{
    json_error_t jerr;
    json_t *root = NULL;
    mg_rpc_body_t *b = NULL;
    int rc = MG_RPC_PARSE_ERROR;
    size_t n;

    *out = NULL;
    /* No raw NUL anywhere (see mg_rpc_parse in jsonrpc_scan.c). */
    if (body == NULL || memchr(body, '\0', len) != NULL || !depth_ok(body, len))
        goto done;
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        goto done;
    rc = MG_RPC_INVALID_REQUEST;
    if (json_is_array(root) && json_array_size(root) == 0)
        goto done;
    if (!json_is_array(root) && !json_is_object(root))
        goto done;
    n = json_is_array(root) ? json_array_size(root) : 1;
    rc = -1;
    if ((b = calloc(1, sizeof(*b))) == NULL || (b->msgs = calloc(n, sizeof(*b->msgs))) == NULL)
        goto done;
    b->batch = json_is_array(root);
    for (size_t i = 0; i < n; i++) {
        b->n = i + 1;
        rc = read_msg(b->batch ? json_array_get(root, i) : root, &b->msgs[i]);
        if (rc != 0)
            goto done;
    }
    *out = b;
    b = NULL;
    rc = 0;
done:
    mg_rpc_body_free(b);
    json_decref(root);
    return rc;
}

/* --- headers ------------------------------------------------------------------- */

static int
b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

char *
mg_mcp_header_decode(const char *value, size_t len, size_t *out_len)
{
    static const char pre[] = "=?base64?", post[] = "?=";
    char *out;
    size_t n = 0;

    if (len >= sizeof(pre) - 1 + sizeof(post) - 1 && memcmp(value, pre, sizeof(pre) - 1) == 0 &&
        memcmp(value + len - 2, post, 2) == 0) {
        const char *s = value + sizeof(pre) - 1;
        size_t slen = len - (sizeof(pre) - 1) - 2;
        unsigned acc = 0;
        int bits = 0;
        while (slen > 0 && s[slen - 1] == '=')
            slen--;
        if (slen % 4 == 1 || len - (sizeof(pre) - 1) - 2 - slen > 2)
            return NULL;
        if ((out = malloc(slen * 3 / 4 + 1)) == NULL)
            return NULL;
        for (size_t i = 0; i < slen; i++) {
            int v = b64val((unsigned char)s[i]);
            if (v < 0) {
                free(out);
                return NULL;
            }
            acc = (acc << 6) | (unsigned)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[n++] = (char)((acc >> bits) & 0xff);
            }
        }
        out[n] = '\0';
    } else {
        if ((out = malloc(len + 1)) == NULL)
            return NULL;
        memcpy(out, value, len);
        out[len] = '\0';
        n = len;
    }
    if (out_len)
        *out_len = n;
    return out;
}

static const mg_http_header_t *
find(const mg_http_header_t *h, size_t n, const char *name, size_t *count)
{
    const mg_http_header_t *first = NULL;
    size_t nl = strlen(name);

    *count = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == nl && strncasecmp(h[i].name, name, nl) == 0) {
            if (first == NULL)
                first = &h[i];
            (*count)++;
        }
    }
    return first;
}

/* Does the (decoded) header equal the body string <want> (NULL: must be absent)? */
static bool
header_matches(const mg_http_header_t *h, size_t count, const char *want)
{
    char *dec;
    size_t dlen;
    bool ok;

    if (h == NULL || want == NULL)
        return h == NULL && want == NULL;
    if (count != 1)
        return false;
    dec = mg_mcp_header_decode(h->value, h->value_len, &dlen);
    ok = dec != NULL && dlen == strlen(want) && memcmp(dec, want, dlen) == 0;
    free(dec);
    return ok;
}

static void
refuse(mg_mcp_check_t *out, int code, const char *message)
{
    out->status = 400;
    out->rpc_code = code;
    out->message = message;
    out->data_json = code == MG_RPC_UNSUPPORTED_VERSION ? supported_json : NULL;
}

mg_mcp_version_t
mg_mcp_request_version(const mg_http_header_t *headers, size_t nheaders,
                       const char *session_version)
{
    size_t count;
    const mg_http_header_t *h = find(headers, nheaders, "MCP-Protocol-Version", &count);

    if (h != NULL)
        return count == 1 ? mg_mcp_version_parse(h->value, h->value_len)
                          : MG_MCP_VERSION_UNKNOWN;
    if (session_version != NULL) {
        mg_mcp_version_t v = mg_mcp_version_parse(session_version, strlen(session_version));
        if (v != MG_MCP_VERSION_UNKNOWN)
            return v;
    }
    return MG_MCP_2025_03_26;
}

void
mg_mcp_check_post(const mg_rpc_body_t *body, const mg_http_header_t *headers, size_t nheaders,
                  const char *session_version, mg_mcp_check_t *out)
{
    size_t nver, nmethod, nname;
    const mg_http_header_t *hver = find(headers, nheaders, "MCP-Protocol-Version", &nver);
    const mg_http_header_t *hmethod = find(headers, nheaders, "Mcp-Method", &nmethod);
    const mg_http_header_t *hname = find(headers, nheaders, "Mcp-Name", &nname);
    mg_mcp_version_t hv = MG_MCP_VERSION_UNKNOWN;
    const char *meta = NULL;

    memset(out, 0, sizeof(*out));
    out->version = MG_MCP_VERSION_UNKNOWN;
    if (hver != NULL)
        hv = nver == 1 ? mg_mcp_version_parse(hver->value, hver->value_len)
                       : MG_MCP_VERSION_UNKNOWN;
    for (size_t i = 0; i < body->n && meta == NULL; i++)
        meta = body->msgs[i].meta_version;

    if (meta != NULL || mg_mcp_version_is_modern(hv)) {
        const mg_rpc_msg_t *m = &body->msgs[0];
        out->modern = true;
        out->version = hv;
        if (body->batch) {
            refuse(out, MG_RPC_INVALID_REQUEST, "Batch requests are not supported");
            return;
        }
        if (hver == NULL) {
            refuse(out, MG_RPC_HEADER_MISMATCH, "Missing MCP-Protocol-Version header");
            return;
        }
        if (hv == MG_MCP_VERSION_UNKNOWN) {
            refuse(out, MG_RPC_UNSUPPORTED_VERSION, "Unsupported protocol version");
            return;
        }
        if (meta != NULL && strcmp(meta, mg_mcp_version_name(hv)) != 0) {
            refuse(out, MG_RPC_HEADER_MISMATCH,
                   "MCP-Protocol-Version header does not match _meta protocolVersion");
            return;
        }
        if (m->kind == MG_RPC_RESPONSE) {
            refuse(out, MG_RPC_INVALID_REQUEST, "Clients must not send responses");
            return;
        }
        if (!header_matches(hmethod, nmethod, m->method)) {
            refuse(out, MG_RPC_HEADER_MISMATCH, "Mcp-Method header does not match the body");
            return;
        }
        /* Mcp-Name mirrors params.name/params.uri of the three named methods */
        if (!header_matches(hname, nname,
                            m->has_target_field ? (m->target ? m->target : "\x01") : NULL)) {
            refuse(out, MG_RPC_HEADER_MISMATCH, "Mcp-Name header does not match the body");
            return;
        }
        return;
    }

    if (hver != NULL && hv == MG_MCP_VERSION_UNKNOWN) {
        refuse(out, MG_RPC_UNSUPPORTED_VERSION, "Unsupported protocol version");
        return;
    }
    out->version = mg_mcp_request_version(headers, nheaders, session_version);
    if (body->batch && !mg_mcp_version_allows_batch(out->version))
        refuse(out, MG_RPC_INVALID_REQUEST, "Batch requests are not supported");
}

char *
mg_mcp_check_error_body(const mg_mcp_check_t *check, const mg_rpc_body_t *body, size_t *len_out)
{
    const char *id = body != NULL && !body->batch && body->n > 0 ? body->msgs[0].id : NULL;

    return mg_rpc_error_body(id, check->rpc_code, check->message, check->data_json, len_out);
}

/* ---- body encoding ------------------------------------------------------------ */

static bool
ieq_n(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);

    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Every charset parameter of one Content-Type value says UTF-8. Parameters are
 * `; name=value` (RFC 9110 5.6.6), value a token or a quoted-string; anything
 * that does not parse as a parameter is skipped: only a charset can change
 * what the upstream reads. */
static bool
charset_is_utf8(const char *v, size_t len)
{
    size_t i = 0;

    while (i < len && v[i] != ';')
        i++; /* the media type */
    while (i < len) {
        size_t ns, ne;
        char val[32];
        size_t vl = 0;
        bool too_long = false;

        i++; /* the ';' */
        while (i < len && is_ows(v[i]))
            i++;
        ns = i;
        while (i < len && v[i] != '=' && v[i] != ';' && !is_ows(v[i]))
            i++;
        ne = i;
        while (i < len && is_ows(v[i]))
            i++;
        if (i >= len || v[i] != '=') {
            while (i < len && v[i] != ';')
                i++;
            continue;
        }
        i++; /* the '=' */
        while (i < len && is_ows(v[i]))
            i++;
        if (i < len && v[i] == '"') {
            for (i++; i < len && v[i] != '"'; i++) {
                if (v[i] == '\\' && i + 1 < len)
                    i++;
                if (vl < sizeof(val))
                    val[vl++] = v[i];
                else
                    too_long = true;
            }
            if (i < len)
                i++; /* the closing quote */
        } else {
            for (; i < len && v[i] != ';' && !is_ows(v[i]); i++) {
                if (vl < sizeof(val))
                    val[vl++] = v[i];
                else
                    too_long = true;
            }
        }
        while (i < len && v[i] != ';')
            i++;
        if (ieq_n(v + ns, ne - ns, "charset") &&
            (too_long || !(ieq_n(val, vl, "utf-8") || ieq_n(val, vl, "utf8"))))
            return false;
    }
    return true;
}

/* Every comma-separated element of a Content-Encoding value is "identity". */
static bool
encoding_is_identity(const char *v, size_t len)
{
    size_t i = 0;

    while (i <= len) {
        size_t s, e;
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        if (i >= len)
            return true;
        s = i;
        while (i < len && v[i] != ',')
            i++;
        e = i;
        while (e > s && is_ows(v[e - 1]))
            e--;
        if (!ieq_n(v + s, e - s, "identity"))
            return false;
    }
    return true;
}

const char *
mg_mcp_body_encoding_refusal(const mg_http_header_t *headers, size_t nheaders)
{
    size_t ntypes = 0;

    for (size_t i = 0; i < nheaders; i++) {
        const mg_http_header_t *h = &headers[i];
        if (ieq_n(h->name, h->name_len, "content-type")) {
            if (++ntypes > 1)
                return "More than one Content-Type.";
            if (!charset_is_utf8(h->value, h->value_len))
                return "The body must be UTF-8 JSON (Content-Type charset).";
        } else if (ieq_n(h->name, h->name_len, "content-encoding")) {
            if (!encoding_is_identity(h->value, h->value_len))
                return "The body must not be compressed (Content-Encoding).";
        }
    }
    return NULL;
}
