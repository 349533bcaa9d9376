/* conf_parse.c -- the config tokenizer and parser: text to a tree of statements, with
 * quoting, ${VAR} expansion and include; every token carries its file and line. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_int.h"
#include "mcpgate/strbuf.h"

enum tok_type { TOK_WORD, TOK_SEMI, TOK_LBRACE, TOK_RBRACE, TOK_EOF, TOK_FATAL };


typedef struct lexer {
    mg_conf_ctx_t *cx;
    const char *start, *p, *end;
    const char *file; /* interned */
    int line;
    bool env_used; /* the current word took a value from the environment */
} lexer_t;

typedef struct token {
    enum tok_type type;
    char *text;    /* TOK_WORD: malloc'd, owned by the receiver */
    bool bad;      /* an error inside the word was already reported */
    bool from_env; /* a ${VAR} in the word was set: the value is not in the file */
    mg_conf_where_t where;
} token_t;

static bool
is_name_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool
is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* lx->p is at "${". Expand into <b>. Returns false on a fatal error (no closing
 * brace on the line); sets *bad for a reported, non-fatal one. */
static bool
expand_var(lexer_t *lx, mg_strbuf_t *b, bool *bad)
{
    mg_conf_where_t w = {lx->file, lx->line};
    const char *start = lx->p + 2, *close = start, *dflt = NULL;
    char name[256];
    size_t nlen;

    while (close < lx->end && *close != '}' && *close != '\n' && *close != '\0')
        close++;
    if (close >= lx->end || *close != '}') {
        mg_conf_error(lx->cx, &w, "unterminated \"${\"");
        return false;
    }
    nlen = 0;
    while (start + nlen < close && is_name_char((unsigned char)start[nlen]))
        nlen++;
    if (start + nlen < close && close - (start + nlen) >= 2 && start[nlen] == ':' &&
        start[nlen + 1] == '-')
        dflt = start + nlen + 2;
    if (nlen == 0 || !is_name_start((unsigned char)start[0]) || nlen >= sizeof(name) ||
        (start + nlen != close && dflt == NULL)) {
        char ref[200];
        size_t rl = (size_t)(close - lx->p) + 1;
        if (rl >= sizeof(ref))
            rl = sizeof(ref) - 1;
        memcpy(ref, lx->p, rl);
        ref[rl] = '\0';
        mg_conf_error(lx->cx, &w,
                      "invalid variable reference %s (expected ${NAME} or "
                      "${NAME:-default})",
                      mg_conf_q(lx->cx, ref));
        *bad = true;
    } else {
        const char *val;
        memcpy(name, start, nlen);
        name[nlen] = '\0';
        val = getenv(name);
        if (val != NULL && (*val != '\0' || dflt == NULL)) {
            mg_strbuf_add(b, val, strlen(val));
            lx->env_used = true;
        } else if (dflt != NULL) {
            mg_strbuf_add(b, dflt, (size_t)(close - dflt));
        } else {
            mg_conf_error(lx->cx, &w, "environment variable %s is not set",
                          mg_conf_q(lx->cx, name));
            *bad = true;
        }
    }
    lx->p = close + 1;
    return true;
}

static void
skip_space(lexer_t *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (c == '\n') {
            lx->line++;
            lx->p++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            lx->p++;
        } else if (c == '#') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else {
            break;
        }
    }
}

static bool
ends_word(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v' || c == ';' ||
           c == '{' || c == '}';
}

static void
next_token(lexer_t *lx, token_t *t)
{
    mg_strbuf_t b = {0};
    char c;

    t->text = NULL;
    t->bad = false;
    t->from_env = false;
    lx->env_used = false;
    skip_space(lx);
    t->where.file = lx->file;
    t->where.line = lx->line;
    if (lx->p >= lx->end) {
        t->type = TOK_EOF;
        return;
    }
    c = *lx->p;
    if (c == ';' || c == '{' || c == '}') {
        t->type = c == ';' ? TOK_SEMI : c == '{' ? TOK_LBRACE : TOK_RBRACE;
        lx->p++;
        return;
    }
    mg_strbuf_add(&b, "", 0);
    if (c == '"') {
        lx->p++;
        for (;;) {
            if (lx->p >= lx->end) {
                mg_conf_error(lx->cx, &t->where, "unexpected end of file inside a quoted string");
                goto fatal;
            }
            c = *lx->p;
            if (c == '"') {
                lx->p++;
                break;
            }
            if (c == '\n') {
                mg_conf_error(lx->cx, &t->where, "newline inside a quoted string");
                goto fatal;
            }
            if (c == '\0') {
                mg_conf_error(lx->cx, &t->where, "NUL byte in the configuration");
                goto fatal;
            }
            if (c == '\\') {
                char e = lx->p + 1 < lx->end ? lx->p[1] : '\0';
                if (e == '"' || e == '\\' || e == '$') {
                    mg_strbuf_add(&b, &e, 1);
                    lx->p += 2;
                    continue;
                }
                if (e == '\n' || e == '\0') {
                    lx->p++;
                    continue; /* reported by the next round */
                }
                mg_conf_error(lx->cx, &t->where,
                              "invalid escape \"\\%c\" in a quoted string (only \\\", \\\\ "
                              "and \\$ are allowed)",
                              (e >= 0x20 && e < 0x7f) ? e : '?');
                t->bad = true;
                lx->p += 2;
                continue;
            }
            if (c == '$' && lx->p + 1 < lx->end && lx->p[1] == '{') {
                if (!expand_var(lx, &b, &t->bad))
                    goto fatal;
                continue;
            }
            mg_strbuf_add(&b, &c, 1);
            lx->p++;
        }
        if (lx->p < lx->end && !ends_word(*lx->p) && *lx->p != '#') {
            mg_conf_error(lx->cx, &t->where, "unexpected character after a quoted string");
            goto fatal;
        }
    } else {
        while (lx->p < lx->end && !ends_word(*lx->p)) {
            c = *lx->p;
            if (c == '"') {
                mg_conf_error(lx->cx, &t->where,
                              "unexpected quote inside a word (quote the whole word)");
                goto fatal;
            }
            if (c == '\0') {
                mg_conf_error(lx->cx, &t->where, "NUL byte in the configuration");
                goto fatal;
            }
            if (c == '$' && lx->p + 1 < lx->end && lx->p[1] == '{') {
                if (!expand_var(lx, &b, &t->bad))
                    goto fatal;
                continue;
            }
            mg_strbuf_add(&b, &c, 1);
            lx->p++;
        }
    }
    if (b.oom) {
        mg_conf_error(lx->cx, &t->where, "out of memory");
        goto fatal;
    }
    t->type = TOK_WORD;
    t->text = b.p;
    t->from_env = lx->env_used;
    return;
fatal:
    free(b.p);
    t->type = TOK_FATAL;
}

static void
node_free(mg_conf_node_t *n)
{
    free(n->name);
    for (size_t i = 0; i < n->nargs; i++)
        free(n->args[i]);
    free(n->args);
    for (size_t i = 0; i < n->nchildren; i++)
        node_free(&n->children[i]);
    free(n->children);
}

void
mg_conf_nodes_free(mg_conf_nodes_t *nodes)
{
    for (size_t i = 0; i < nodes->n; i++)
        node_free(&nodes->v[i]);
    free(nodes->v);
    nodes->v = NULL;
    nodes->n = nodes->cap = 0;
}

/* Append <n> (moved) to <out>; frees it on OOM. */
static bool
nodes_push(mg_conf_nodes_t *out, mg_conf_node_t *n)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        mg_conf_node_t *v = realloc(out->v, cap * sizeof(*v));
        if (v == NULL) {
            node_free(n);
            return false;
        }
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = *n;
    return true;
}

static bool
args_push(mg_conf_node_t *n, char *arg)
{
    char **v = realloc(n->args, (n->nargs + 1) * sizeof(*v));
    if (v == NULL) {
        free(arg);
        return false;
    }
    n->args = v;
    n->args[n->nargs++] = arg;
    return true;
}

char *
mg_conf_resolve_path(const char *file, const char *path)
{
    const char *slash = file ? strrchr(file, '/') : NULL;
    size_t dlen;
    char *r;

    if (path[0] == '/' || slash == NULL)
        return strdup(path);
    dlen = (size_t)(slash - file) + 1;
    r = malloc(dlen + strlen(path) + 1);
    if (r == NULL)
        return NULL;
    memcpy(r, file, dlen);
    strcpy(r + dlen, path);
    return r;
}

static void do_include(mg_conf_ctx_t *cx, const mg_conf_node_t *n, mg_conf_nodes_t *out);

/* Parse statements into <out> until EOF (top of a file) or "}" (a block).
 * Returns 0, or -1 after a syntax error that stops this file. */
static int
parse_block(lexer_t *lx, mg_conf_nodes_t *out, int depth, bool top)
{
    token_t t;

    for (;;) {
        mg_conf_node_t n;

        if (lx->cx->stopped)
            return -1;
        next_token(lx, &t);
        switch (t.type) {
        case TOK_FATAL:
            return -1;
        case TOK_EOF:
            if (top)
                return 0;
            /* report the last line of the file, not the empty one after it */
            if (lx->end > lx->start && lx->end[-1] == '\n' && t.where.line > 1)
                t.where.line--;
            mg_conf_error(lx->cx, &t.where, "unexpected end of file, expecting \"}\"");
            return -1;
        case TOK_RBRACE:
            if (!top)
                return 0;
            mg_conf_error(lx->cx, &t.where, "unexpected \"}\"");
            return -1;
        case TOK_SEMI:
            mg_conf_error(lx->cx, &t.where, "unexpected \";\"");
            continue;
        case TOK_LBRACE:
            mg_conf_error(lx->cx, &t.where, "unexpected \"{\"");
            return -1;
        case TOK_WORD:
            break;
        }
        memset(&n, 0, sizeof(n));
        n.name = t.text;
        n.bad = t.bad;
        n.where = t.where;
        for (;;) {
            next_token(lx, &t);
            if (t.type == TOK_WORD) {
                n.bad |= t.bad;
                if (t.from_env && n.nargs < 32)
                    n.env_args |= 1u << n.nargs;
                if (!args_push(&n, t.text)) {
                    mg_conf_error(lx->cx, &t.where, "out of memory");
                    node_free(&n);
                    return -1;
                }
                continue;
            }
            break;
        }
        if (t.type == TOK_FATAL) {
            node_free(&n);
            return -1;
        }
        if (t.type == TOK_EOF || t.type == TOK_RBRACE) {
            if (t.type == TOK_EOF && lx->end > lx->start && lx->end[-1] == '\n' && t.where.line > 1)
                t.where.line--;
            mg_conf_error(lx->cx, &t.where, "unexpected %s, expecting \";\" or \"{\" after %s",
                          t.type == TOK_EOF ? "end of file" : "\"}\"", mg_conf_q(lx->cx, n.name));
            node_free(&n);
            return -1;
        }
        if (t.type == TOK_LBRACE) {
            mg_conf_nodes_t kids = {0};
            int rc;
            if (depth + 1 > MG_CONF_MAX_BLOCK_DEPTH) {
                mg_conf_error(lx->cx, &t.where, "blocks nested more than %d deep",
                              MG_CONF_MAX_BLOCK_DEPTH);
                node_free(&n);
                return -1;
            }
            n.has_block = true;
            rc = parse_block(lx, &kids, depth + 1, false);
            n.children = kids.v;
            n.nchildren = kids.n;
            if (rc != 0) {
                node_free(&n);
                return -1;
            }
        }
        if (strcmp(n.name, "include") == 0) {
            if (n.has_block)
                mg_conf_error(lx->cx, &n.where, "\"include\" does not take a block");
            else if (!n.bad)
                do_include(lx->cx, &n, out);
            node_free(&n);
            continue;
        }
        if (!nodes_push(out, &n)) {
            mg_conf_error(lx->cx, &n.where, "out of memory");
            return -1;
        }
    }
}

void
mg_conf_parse_text(mg_conf_ctx_t *cx, const char *text, size_t len, const char *file,
                   mg_conf_nodes_t *out)
{
    lexer_t lx = {cx, text, text, text + len, file, 1, false};
    if (parse_block(&lx, out, 0, true) != 0)
        cx->truncated = true;
}

/* Read a regular file of bounded size. Opened non-blocking so that a FIFO
 * named by mistake (or by the fuzzer) cannot hang the load. */
static char *
read_file(const char *path, struct stat *st_out, size_t *len_out, int *err_out, bool *too_big)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    *too_big = false;
    if (fd < 0) {
        *err_out = errno;
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        *err_out = errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        *err_out = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        goto fail;
    }
    for (;;) {
        ssize_t r;
        if (len == cap) {
            char *nb;
            if (cap > MG_CONF_MAX_FILE_SIZE) {
                *too_big = true;
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                *err_out = ENOMEM;
                goto fail;
            }
            buf = nb;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err_out = errno;
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > MG_CONF_MAX_FILE_SIZE) {
        *too_big = true;
        goto fail;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL) {
        *err_out = ENOMEM;
        goto fail;
    }
    buf[len] = '\0';
    close(fd);
    *st_out = st;
    *len_out = len;
    return buf;
fail:
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

void
mg_conf_parse_file(mg_conf_ctx_t *cx, const char *path, const mg_conf_where_t *from,
                   mg_conf_nodes_t *out)
{
    const char *file = mg_conf_intern_file(cx, path);
    mg_conf_where_t fw = {file ? file : path, 0};
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    int err = 0;
    bool too_big = false;

    if (file == NULL) {
        mg_conf_error(cx, from, "out of memory");
        cx->truncated = true;
        return;
    }
    text = read_file(path, &st, &len, &err, &too_big);
    if (text == NULL) {
        cx->truncated = true;
        if (too_big && from)
            mg_conf_error(cx, from, "include file %s is larger than %u bytes", mg_conf_q(cx, path),
                          MG_CONF_MAX_FILE_SIZE);
        else if (too_big)
            mg_conf_error(cx, &fw, "file is larger than %u bytes", MG_CONF_MAX_FILE_SIZE);
        else if (from)
            mg_conf_error(cx, from, "cannot open include file %s: %s", mg_conf_q(cx, path),
                          strerror(err));
        else
            mg_conf_error(cx, &fw, "cannot open: %s", strerror(err));
        return;
    }
    for (int i = 0; i < cx->depth; i++) {
        if (cx->stack[i].known && cx->stack[i].dev == st.st_dev && cx->stack[i].ino == st.st_ino) {
            mg_conf_error(cx, from, "include cycle: %s is already being read", mg_conf_q(cx, path));
            cx->truncated = true;
            free(text);
            return;
        }
    }
    cx->stack[cx->depth].known = true;
    cx->stack[cx->depth].dev = st.st_dev;
    cx->stack[cx->depth].ino = st.st_ino;
    mg_conf_note_file_read(cx, file);
    cx->depth++;
    mg_conf_parse_text(cx, text, len, file, out);
    cx->depth--;
    free(text);
}

static void
do_include(mg_conf_ctx_t *cx, const mg_conf_node_t *n, mg_conf_nodes_t *out)
{
    char *path = NULL;

    if (n->nargs != 1) {
        mg_conf_error(cx, &n->where, "\"include\" takes 1 argument, %zu given", n->nargs);
        return;
    }
    if (n->args[0][0] == '\0') {
        mg_conf_error(cx, &n->where, "empty file name for \"include\"");
        return;
    }
    /* depth counts the files being read: the top one plus each include level */
    if (cx->depth > MG_CONF_MAX_INCLUDE_DEPTH) {
        mg_conf_error(cx, &n->where, "includes nested more than %d deep",
                      MG_CONF_MAX_INCLUDE_DEPTH);
        return;
    }
    path = mg_conf_resolve_path(n->where.file, n->args[0]);
    if (path == NULL) {
        mg_conf_error(cx, &n->where, "out of memory");
        return;
    }
    mg_conf_parse_file(cx, path, &n->where, out);
    free(path);
}
