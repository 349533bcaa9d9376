/* jsonrpc_scan.c -- mg_rpc_parse(): one validating pass over a POST body that keeps only the fields the gateway reads. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mcpgate/jsonrpc.h"
#include "mcpgate/utf8.h"

/*
 * Why a scanner: a jansson tree (an allocated node per value, then
 * json_delete) cost about 25,000 instructions for a 117-byte tools/call
 * (issue 8), to read five fields. This walks the bytes once, allocates only
 * the strings it returns, and builds the same mg_rpc_body_t.
 *
 * It must accept and refuse exactly what mg_rpc_parse_jansson() does: a
 * gateway that reads a body differently from the server behind it lets a
 * request be smuggled past its checks. jansson 2.14 json_loadb() with
 * JSON_REJECT_DUPLICATES | JSON_DECODE_ANY (load.c, utf.c, strconv.c) takes
 * RFC 8259 JSON with these rules, all reproduced here:
 *  - whitespace is space, tab, LF and CR, before and after the one value; any
 *    other byte after it is an error (so is a BOM before it);
 *  - strings: valid UTF-8 (no overlong forms, no surrogates, nothing above
 *    U+10FFFF), no byte below 0x20, the escapes of RFC 8259 section 7, a \u
 *    surrogate only as a high one followed by a low one, no \u0000;
 *  - numbers: RFC 8259 section 6 syntax; an integer (no fraction, no exponent)
 *    must fit json_int_t (strtoll), a real must not overflow strtod;
 *  - true, false, null: a run of ASCII letters equal to one of them;
 *  - a key repeated in one object (compared after unescaping) is an error;
 *  - a raw NUL byte anywhere is an error (mg_rpc_parse refuses it up front;
 *    jansson alone would skip one right after a number or a literal).
 * On top of that MG_RPC_MAX_DEPTH nested arrays and objects at most.
 * tests/fuzz/fuzz_jsonrpc_diff.c runs both on every input and aborts on any
 * difference.
 *
 * The rare and intricate parts are left to jansson itself rather than
 * re-implemented: ids that are reals or escaped strings are re-serialised by
 * jansson (its real formatting is build-dependent), and bodies with an
 * object of more than SCAN_OBJ_KEYS keys, or more than SCAN_OPEN_KEYS keys in
 * the objects open at one time, go to mg_rpc_parse_jansson().
 */

/* Duplicate keys are found by comparing a key with the keys seen before it in
 * the same object. Bounding an object to SCAN_OBJ_KEYS keys bounds that to
 * SCAN_OBJ_KEYS - 1 comparisons per key, so at most 31 times the body's size
 * in bytes compared; a larger object (rare in MCP requests, or hostile) sends
 * the whole body to jansson, whose hash table does it in linear time. */
#define SCAN_OBJ_KEYS 32
#define SCAN_OPEN_KEYS 256 /* keys of all the objects open at one time */
#define SCAN_FALLBACK 1    /* internal result: let mg_rpc_parse_jansson() decide */

typedef enum vtype {
    V_ABSENT = 0,
    V_STRING,
    V_INT,
    V_REAL,
    V_BOOL,
    V_NULL,
    V_OBJECT,
    V_ARRAY
} vtype_t;

/* One value of interest, pointing into the body. */
typedef struct span {
    const char *p; /* strings: the bytes between the quotes; numbers: the token */
    size_t len;
    vtype_t type;
    bool esc; /* a string with at least one backslash escape */
} span_t;

/* What read_msg() in jsonrpc.c looks up, for the message being scanned. */
typedef struct fields {
    span_t self; /* the message value itself */
    span_t jsonrpc, method, id, params, result, error;
    span_t name, uri, pversion, meta; /* members of params, when an object */
    span_t meta_version;              /* member of params._meta, when an object */
} fields_t;

/* Which fields the members of an object fill in. */
typedef enum role {
    R_NONE = 0,
    R_MSG,    /* a message object */
    R_PARAMS, /* its params */
    R_META,   /* params._meta */
    R_BATCH,  /* the top-level array: each element is a message */
} role_t;

typedef struct skey {
    const char *p; /* unescaped bytes */
    size_t len;
} skey_t;

typedef struct scan {
    const char *p, *end;
    int depth;
    int rc;       /* 0 while scanning; MG_RPC_PARSE_ERROR, -1 or SCAN_FALLBACK */
    skey_t *keys; /* SCAN_OPEN_KEYS entries: the keys of the open objects */
    size_t nkeys;
    char *arena; /* unescaped keys; malloc'd on the first escaped key */
    size_t arena_used, arena_size;
    fields_t f; /* the message being scanned */
    mg_rpc_body_t *body;
    size_t cap;    /* of body->msgs */
    size_t nelems; /* elements of a top-level array */
    bool invalid;  /* a message broke the JSON-RPC rules: MG_RPC_INVALID_REQUEST */
} scan_t;

static int scan_value(scan_t *s, role_t role, span_t *out);

static int
fail(scan_t *s, int rc)
{
    if (s->rc == 0)
        s->rc = rc;
    return -1;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void
skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* --- strings ------------------------------------------------------------------- */

static long
hex4(const unsigned char *p)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v += c - '0';
        else if (c >= 'a' && c <= 'f')
            v += c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v += c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Length of the escape at <p> (a backslash), 0 when jansson refuses it:
 * unknown escape, bad hex, \u0000 (no JSON_ALLOW_NUL), a low surrogate alone,
 * a high surrogate not followed by a \u low surrogate (RFC 8259 section 7
 * allows the last two; jansson does not). */
static size_t
escape_len(const unsigned char *p, const unsigned char *end)
{
    long hi, lo;

    if (end - p < 2)
        return 0;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }
    if (end - p < 6 || (hi = hex4(p + 2)) <= 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return 0;
    if (hi < 0xD800 || hi > 0xDBFF)
        return 6;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || (lo = hex4(p + 8)) < 0xDC00 || lo > 0xDFFF)
        return 0;
    return 12;
}

/* Bytes that stand for themselves in a string: 0x20..0x7F but '"' and '\\'
 * (a table: this loop is where most of a body's bytes go). 0x80 and up are
 * UTF-8, checked one sequence at a time. */
static const unsigned char str_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
};

/* The string starting at s->p (a quote). */
static int
scan_string(scan_t *s, span_t *out)
{
    const unsigned char *start = (const unsigned char *)s->p + 1;
    const unsigned char *p = start, *end = (const unsigned char *)s->end;
    bool esc = false;

    for (;;) {
        size_t n;

        while (p < end && str_plain[*p])
            p++;
        if (p == end)
            return fail(s, MG_RPC_PARSE_ERROR);
        if (*p == '"')
            break;
        if (*p < 0x20)
            return fail(s, MG_RPC_PARSE_ERROR);
        if (*p == '\\') {
            n = escape_len(p, end);
            esc = true;
        } else {
            n = mg_utf8_seq_len(p, end);
        }
        if (n == 0)
            return fail(s, MG_RPC_PARSE_ERROR);
        p += n;
    }
    out->type = V_STRING;
    out->p = (const char *)start;
    out->len = (size_t)(p - start);
    out->esc = esc;
    s->p = (const char *)p + 1;
    return 0;
}

static char *
put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Unescape a string scan_string() accepted into <out> (at most <len> bytes:
 * every escape is at least as long as what it stands for); returns the length. */
static size_t
unescape(const char *p, size_t len, char *out)
{
    const char *end = p + len;
    char *o = out;

    while (p < end) {
        uint32_t cp;

        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        switch (p[1]) {
        case 'u':
            cp = (uint32_t)hex4((const unsigned char *)p + 2);
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) +
                     ((uint32_t)hex4((const unsigned char *)p + 2) - 0xDC00);
                p += 6;
            }
            o = put_utf8(o, cp);
            continue;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        default: /* '"', '\\', '/' */
            *o++ = p[1];
            break;
        }
        p += 2;
    }
    return (size_t)(o - out);
}

/* A NUL-terminated malloc'd copy of a string's value; NULL on OOM. */
static char *
span_strdup(const span_t *sp)
{
    char *out = malloc(sp->len + 1);
    size_t n;

    if (out == NULL)
        return NULL;
    if (sp->esc) {
        n = unescape(sp->p, sp->len, out);
    } else {
        memcpy(out, sp->p, sp->len);
        n = sp->len;
    }
    out[n] = '\0';
    return out;
}

/* Does the string's value equal <lit> (a short ASCII literal)? */
static bool
span_is(const span_t *sp, const char *lit)
{
    size_t n = strlen(lit);
    char buf[32];

    if (!sp->esc)
        return sp->len == n && memcmp(sp->p, lit, n) == 0;
    /* one ASCII byte takes at most 6 escaped bytes, so a longer string cannot
     * match the literals used here (at most 5 bytes) */
    if (sp->len > sizeof(buf))
        return false;
    return unescape(sp->p, sp->len, buf) == n && memcmp(buf, lit, n) == 0;
}

/* --- numbers and literals ------------------------------------------------------- */

/* Would jansson's strtod of this real overflow (jsonp_strtod: ±HUGE_VAL with
 * ERANGE; underflow is accepted)? 1 yes, 0 no, -1 OOM. The gateway never
 * calls setlocale(), so "." is the decimal point jansson would hand strtod. */
static int
real_overflows(const char *tok, size_t len)
{
    char sbuf[64], *b = len < sizeof(sbuf) ? sbuf : malloc(len + 1);
    double v;
    int rc;

    if (b == NULL)
        return -1;
    memcpy(b, tok, len);
    b[len] = '\0';
    errno = 0;
    v = strtod(b, NULL);
    rc = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
    if (b != sbuf)
        free(b);
    return rc;
}

static int
scan_number(scan_t *s, span_t *out)
{
    static const char max_pos[] = "9223372036854775807", max_neg[] = "9223372036854775808";
    const char *p = s->p, *end = s->end, *digits;
    bool neg = false, real = false;
    long long nint, e10 = 0;

    if (*p == '-') {
        neg = true;
        p++;
    }
    digits = p;
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(s, MG_RPC_PARSE_ERROR); /* leading zero */
    } else if (p < end && is_digit(*p)) {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return fail(s, MG_RPC_PARSE_ERROR);
    }
    nint = p - digits;
    if (p < end && *p == '.') {
        real = true;
        if (++p == end || !is_digit(*p))
            return fail(s, MG_RPC_PARSE_ERROR);
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        real = true;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !is_digit(*p))
            return fail(s, MG_RPC_PARSE_ERROR);
        for (; p < end && is_digit(*p); p++)
            if (e10 < 100000) /* saturate: only "large" matters below */
                e10 = e10 * 10 + (*p - '0');
        if (eneg)
            e10 = -e10;
    }
    out->p = s->p;
    out->len = (size_t)(p - s->p);
    out->esc = false;
    if (!real) {
        /* strtoll's range (jansson: "too big integer"); no leading zeros, so
         * the digit count and then the digits decide */
        if (nint > 19 || (nint == 19 && memcmp(digits, neg ? max_neg : max_pos, 19) > 0))
            return fail(s, MG_RPC_PARSE_ERROR);
        out->type = V_INT;
    } else {
        /* |value| < 10^(nint + e10): at most 10^308 < DBL_MAX cannot overflow,
         * so strtod is only asked about very large exponents and long numbers */
        if (nint + e10 > 308) {
            int o = real_overflows(out->p, out->len);
            if (o != 0)
                return fail(s, o < 0 ? -1 : MG_RPC_PARSE_ERROR);
        }
        out->type = V_REAL;
    }
    s->p = p;
    return 0;
}

/* jansson reads a whole run of letters, then compares it. */
static int
scan_literal(scan_t *s, span_t *out)
{
    const char *q = s->p;
    size_t n;

    while (q < s->end && is_alpha(*q))
        q++;
    n = (size_t)(q - s->p);
    if (n == 4 && memcmp(s->p, "null", 4) == 0)
        out->type = V_NULL;
    else if ((n == 4 && memcmp(s->p, "true", 4) == 0) || (n == 5 && memcmp(s->p, "false", 5) == 0))
        out->type = V_BOOL;
    else
        return fail(s, MG_RPC_PARSE_ERROR);
    out->p = s->p;
    out->len = n;
    out->esc = false;
    s->p = q;
    return 0;
}

/* --- messages ------------------------------------------------------------------- */

/* The id as compact JSON, as json_dumps(JSON_ENCODE_ANY | JSON_COMPACT) of
 * jansson's value would write it. NULL on OOM. */
static char *
id_json(const span_t *id)
{
    const char *tok = id->p;
    size_t len = id->len;
    json_t *v;
    char *out;

    switch (id->type) {
    case V_NULL:
        return strdup("null");
    case V_INT:
        /* json_integer printed with "%lld": the token itself, JSON having no
         * leading zeros and no "+", except that -0 is 0 */
        if (len == 2 && memcmp(tok, "-0", 2) == 0)
            return strdup("0");
        return strndup(tok, len);
    case V_STRING:
        /* jansson escapes only '"', '\\' and bytes below 0x20 when dumping, none
         * of which can appear unescaped: an escape-free string is its own JSON */
        tok--;
        len += 2;
        if (!id->esc)
            return strndup(tok, len);
        break;
    default:
        break;
    }
    /* a real or an escaped string (rare): let jansson read the token and write
     * it, so that its formatting of reals and choice of escapes are kept as is */
    v = json_loadb(tok, len, JSON_DECODE_ANY, NULL);
    out = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(v);
    return out;
}

/* read_msg() of jsonrpc.c on the scanned fields: 0, MG_RPC_INVALID_REQUEST or
 * -1 (OOM). The same checks in the same order. */
static int
build_msg(const fields_t *f, mg_rpc_msg_t *m)
{
    bool has_id = f->id.type != V_ABSENT;
    bool has_result = f->result.type != V_ABSENT || f->error.type != V_ABSENT;

    if (f->self.type != V_OBJECT)
        return MG_RPC_INVALID_REQUEST;
    if (f->jsonrpc.type != V_STRING || !span_is(&f->jsonrpc, "2.0"))
        return MG_RPC_INVALID_REQUEST;
    if (has_id && f->id.type != V_STRING && f->id.type != V_INT && f->id.type != V_REAL &&
        f->id.type != V_NULL)
        return MG_RPC_INVALID_REQUEST;
    if (has_id && (m->id = id_json(&f->id)) == NULL)
        return -1;
    if (f->method.type != V_ABSENT) {
        if (f->method.type != V_STRING || has_result)
            return MG_RPC_INVALID_REQUEST;
        if ((m->method = span_strdup(&f->method)) == NULL)
            return -1;
        m->kind = has_id ? MG_RPC_REQUEST : MG_RPC_NOTIFICATION;
    } else if (has_result && has_id) {
        m->kind = MG_RPC_RESPONSE;
        return 0;
    } else {
        return MG_RPC_INVALID_REQUEST;
    }
    if (f->params.type != V_ABSENT && f->params.type != V_OBJECT && f->params.type != V_ARRAY)
        return MG_RPC_INVALID_REQUEST;
    if (f->params.type == V_OBJECT) {
        const span_t *t = NULL;
        if (strcmp(m->method, "tools/call") == 0 || strcmp(m->method, "prompts/get") == 0)
            t = &f->name;
        else if (strcmp(m->method, "resources/read") == 0)
            t = &f->uri;
        if (t != NULL && t->type != V_ABSENT) {
            m->has_target_field = true;
            if (t->type == V_STRING && (m->target = span_strdup(t)) == NULL)
                return -1;
        }
        if (f->meta.type == V_OBJECT && f->meta_version.type == V_STRING &&
            (m->meta_version = span_strdup(&f->meta_version)) == NULL)
            return -1;
        if (strcmp(m->method, "initialize") == 0 && f->pversion.type == V_STRING &&
            (m->requested_version = span_strdup(&f->pversion)) == NULL)
            return -1;
    }
    return 0;
}

/* The message in s->f is complete: append it to the body. Once one message is
 * invalid the answer is MG_RPC_INVALID_REQUEST (if the rest is JSON), so the
 * later ones are only validated. */
static int
add_msg(scan_t *s)
{
    mg_rpc_body_t *b = s->body;
    int rc;

    if (s->invalid)
        return 0;
    if (b->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1;
        mg_rpc_msg_t *m = reallocarray(b->msgs, cap, sizeof(*m));
        if (m == NULL)
            return fail(s, -1);
        b->msgs = m;
        s->cap = cap;
    }
    memset(&b->msgs[b->n], 0, sizeof(b->msgs[0]));
    rc = build_msg(&s->f, &b->msgs[b->n++]); /* counted: its strings are freed with it */
    if (rc == MG_RPC_INVALID_REQUEST)
        s->invalid = true;
    else if (rc != 0)
        return fail(s, -1);
    return 0;
}

/* --- containers ------------------------------------------------------------------ */

#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), (n)) == 0)

/* Where the value of member <k> goes, given the role of its object; NULL: nowhere. */
static span_t *
field_slot(scan_t *s, role_t role, const char *k, size_t n, role_t *child)
{
    fields_t *f = &s->f;

    *child = R_NONE;
    switch (role) {
    case R_MSG:
        if (KEY_IS(k, n, "jsonrpc"))
            return &f->jsonrpc;
        if (KEY_IS(k, n, "method"))
            return &f->method;
        if (KEY_IS(k, n, "id"))
            return &f->id;
        if (KEY_IS(k, n, "params")) {
            *child = R_PARAMS;
            return &f->params;
        }
        if (KEY_IS(k, n, "result"))
            return &f->result;
        if (KEY_IS(k, n, "error"))
            return &f->error;
        break;
    case R_PARAMS:
        if (KEY_IS(k, n, "name"))
            return &f->name;
        if (KEY_IS(k, n, "uri"))
            return &f->uri;
        if (KEY_IS(k, n, "protocolVersion"))
            return &f->pversion;
        if (KEY_IS(k, n, "_meta")) {
            *child = R_META;
            return &f->meta;
        }
        break;
    case R_META:
        if (KEY_IS(k, n, "io.modelcontextprotocol/protocolVersion"))
            return &f->meta_version;
        break;
    default:
        break;
    }
    return NULL;
}

/* The unescaped bytes of a key: the body itself, or a copy in the arena (one
 * buffer of the body's size: each key unescapes to at most its own length). */
static int
key_bytes(scan_t *s, const span_t *k, const char **kp, size_t *klen)
{
    if (!k->esc) {
        *kp = k->p;
        *klen = k->len;
        return 0;
    }
    if (s->arena == NULL && (s->arena = malloc(s->arena_size)) == NULL)
        return fail(s, -1);
    *kp = s->arena + s->arena_used;
    *klen = unescape(k->p, k->len, s->arena + s->arena_used);
    s->arena_used += *klen;
    return 0;
}

static int
scan_object(scan_t *s, role_t role)
{
    size_t first = s->nkeys;

    if (++s->depth > MG_RPC_MAX_DEPTH)
        return fail(s, MG_RPC_PARSE_ERROR);
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        goto done;
    }
    for (;;) {
        span_t k, ignored, *slot;
        const char *kp;
        size_t klen;
        role_t child;

        if (s->p == s->end || *s->p != '"')
            return fail(s, MG_RPC_PARSE_ERROR);
        if (scan_string(s, &k) != 0 || key_bytes(s, &k, &kp, &klen) != 0)
            return -1;
        for (size_t i = first; i < s->nkeys; i++)
            if (s->keys[i].len == klen && memcmp(s->keys[i].p, kp, klen) == 0)
                return fail(s, MG_RPC_PARSE_ERROR); /* JSON_REJECT_DUPLICATES */
        if (s->nkeys - first == SCAN_OBJ_KEYS || s->nkeys == SCAN_OPEN_KEYS)
            return fail(s, SCAN_FALLBACK);
        s->keys[s->nkeys].p = kp;
        s->keys[s->nkeys++].len = klen;
        skip_ws(s);
        if (s->p == s->end || *s->p != ':')
            return fail(s, MG_RPC_PARSE_ERROR);
        s->p++;
        skip_ws(s);
        slot = field_slot(s, role, kp, klen, &child);
        if (scan_value(s, child, slot ? slot : &ignored) != 0)
            return -1;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }
        return fail(s, MG_RPC_PARSE_ERROR);
    }
done:
    s->nkeys = first;
    s->depth--;
    return 0;
}

static int
scan_array(scan_t *s, role_t role)
{
    if (++s->depth > MG_RPC_MAX_DEPTH)
        return fail(s, MG_RPC_PARSE_ERROR);
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        goto done;
    }
    for (;;) {
        span_t ignored;

        if (role == R_BATCH) {
            memset(&s->f, 0, sizeof(s->f));
            if (scan_value(s, R_MSG, &s->f.self) != 0 || add_msg(s) != 0)
                return -1;
            s->nelems++;
        } else if (scan_value(s, R_NONE, &ignored) != 0) {
            return -1;
        }
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            break;
        }
        return fail(s, MG_RPC_PARSE_ERROR);
    }
done:
    s->depth--;
    return 0;
}

/* One value at s->p (no leading whitespace). <role> applies to an object
 * (R_MSG, R_PARAMS, R_META) or to an array (R_BATCH); nested values get R_NONE. */
static int
scan_value(scan_t *s, role_t role, span_t *out)
{
    if (s->p == s->end)
        return fail(s, MG_RPC_PARSE_ERROR);
    switch (*s->p) {
    case '{':
        out->type = V_OBJECT;
        return scan_object(s, role == R_BATCH ? R_NONE : role);
    case '[':
        out->type = V_ARRAY;
        return scan_array(s, role == R_BATCH ? R_BATCH : R_NONE);
    case '"':
        return scan_string(s, out);
    case '-':
        return scan_number(s, out);
    default:
        if (is_digit(*s->p))
            return scan_number(s, out);
        if (is_alpha(*s->p))
            return scan_literal(s, out);
        return fail(s, MG_RPC_PARSE_ERROR);
    }
}

int
mg_rpc_parse(const char *body, size_t len, mg_rpc_body_t **out)
{
    skey_t keys[SCAN_OPEN_KEYS];
    scan_t s;
    span_t top = {0};
    int rc = MG_RPC_PARSE_ERROR;

    *out = NULL;
    /* A raw NUL is never valid JSON (RFC 8259: not whitespace, and control
     * characters in strings must be escaped). jansson lets one through right
     * after a number or literal; an upstream's JSON.parse would not, so refuse
     * it here rather than forward a body the two read differently. */
    if (body == NULL || memchr(body, '\0', len) != NULL)
        return MG_RPC_PARSE_ERROR;
    memset(&s, 0, sizeof(s));
    s.p = body;
    s.end = body + len;
    s.keys = keys;
    s.arena_size = len;
    if ((s.body = calloc(1, sizeof(*s.body))) == NULL)
        return -1;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '[') {
        s.body->batch = true;
        if (scan_value(&s, R_BATCH, &top) != 0)
            goto done;
    } else if (scan_value(&s, R_MSG, &s.f.self) != 0) {
        goto done;
    }
    skip_ws(&s);
    if (s.p != s.end) {
        fail(&s, MG_RPC_PARSE_ERROR); /* "end of file expected" */
        goto done;
    }
    /* valid JSON: now the JSON-RPC shape (mg_rpc_parse_jansson's order) */
    if (s.body->batch) {
        if (s.nelems == 0)
            s.invalid = true;
    } else if (s.f.self.type != V_OBJECT) {
        s.invalid = true;
    } else if (add_msg(&s) != 0) {
        goto done;
    }
    if (s.invalid) {
        rc = MG_RPC_INVALID_REQUEST;
        goto done;
    }
    *out = s.body;
    s.body = NULL;
    rc = 0;
done:
    if (s.rc != 0)
        rc = s.rc;
    mg_rpc_body_free(s.body);
    free(s.arena);
    if (rc == SCAN_FALLBACK)
        rc = mg_rpc_parse_jansson(body, len, out);
    return rc;
}
