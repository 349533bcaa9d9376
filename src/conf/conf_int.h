/* conf_int.h -- layouts shared inside src/conf only: the parse tree, the load context,
 * the directive table entry type and the helpers the setters use. */
#ifndef MCPGATE_CONF_INT_H
#define MCPGATE_CONF_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mcpgate/conf.h"

/* Limits that keep hostile or broken input (and the fuzzer) bounded. */
#define MG_CONF_MAX_INCLUDE_DEPTH 16     /* nested include levels below the top file */
#define MG_CONF_MAX_BLOCK_DEPTH 32       /* nested { } levels */
#define MG_CONF_MAX_FILE_SIZE (8u << 20) /* bytes per file */
#define MG_CONF_MAX_ERRORS 200           /* then one "too many errors" line and stop */

/* One statement: `name arg ... ;` or `name arg ... { children }`. Every
 * string is owned by the node; where.file is owned by the generation. */
typedef struct mg_conf_node {
    char *name;
    char **args;
    size_t nargs;
    struct mg_conf_node *children;
    size_t nchildren;
    bool has_block;
    bool bad; /* a token had an error already reported: skip the statement */
    uint32_t env_args; /* bit i: args[i] took a value from ${VAR} (not written in the file) */
    mg_conf_where_t where;
} mg_conf_node_t;

/* A growable list of statements (a file's top level or a block body). */
typedef struct mg_conf_nodes {
    mg_conf_node_t *v;
    size_t n, cap;
} mg_conf_nodes_t;

/* Contexts a directive may appear in (bit mask). */
enum {
    MG_CTX_TOP = 1u << 0,
    MG_CTX_ROUTE = 1u << 1,
    MG_CTX_LISTEN = 1u << 2,
    MG_CTX_ISSUER = 1u << 3,
    MG_CTX_REDIS = 1u << 8, /* inside `redis ADDR { }` (a high bit: other blocks take the low ones) */
    MG_CTX_APIKEY = 1u << 9, /* inside `api_key NAME { }` in a route */
};

/* Directive flags. */
enum {
    MG_DIR_BLOCK = 1u << 0,     /* needs a { } block */
    MG_DIR_BLOCK_OPT = 1u << 1, /* may have a { } block */
    MG_DIR_ONCE = 1u << 2,      /* at most once per enclosing block */
};

struct mg_conf_ctx;
struct mg_conf_directive;

/* A setter interprets one statement into <obj> (the mg_conf_t at top level,
 * the mg_conf_route_t in a route block, the mg_conf_listen_t in a listen
 * block). Returns NULL or the error text (static, or from mg_conf_errf()).
 * A block directive sets cx->block to the object its children fill; it may
 * do so even when it returns an error, so that the body is still checked. */
typedef const char *(*mg_conf_set_fn)(struct mg_conf_ctx *cx, const mg_conf_node_t *n, void *obj,
                                      const struct mg_conf_directive *d);
/* Called after a block's children were interpreted: required directives,
 * cross-checks inside the block. Reports its own errors. */
typedef void (*mg_conf_post_fn)(struct mg_conf_ctx *cx, const mg_conf_node_t *n, void *obj);

typedef struct mg_conf_directive {
    const char *name;
    unsigned contexts; /* MG_CTX_* mask */
    int min_args, max_args;
    unsigned flags;     /* MG_DIR_* */
    unsigned block_ctx; /* context of the children of a block directive */
    mg_conf_set_fn set;
    mg_conf_post_fn post;
    size_t off;        /* for the generic setters: field offset in <obj> */
    uint64_t min, max; /* for the generic setters: bounds (ms or bytes) */
} mg_conf_directive_t;

extern const mg_conf_directive_t mg_conf_directives[];
extern const size_t mg_conf_ndirectives;

/* The state of one load. */
typedef struct mg_conf_ctx {
    mg_conf_t *conf;        /* the generation being built (owns file names) */
    mg_conf_errors_t *errs; /* may be NULL */
    size_t nerr;
    bool stopped;      /* MG_CONF_MAX_ERRORS reached */
    bool truncated;    /* a syntax error cut a file short: skip whole-config checks */
    void *block;       /* set by block setters */
    size_t errs_start; /* errs->n when this load began */
    uint64_t *keys;    /* sort key of each message added since: file, line */
    size_t nkeys;
    char errbuf[1024]; /* text returned by mg_conf_errf() */
    char qbuf[4][160]; /* rotating buffers for mg_conf_q() */
    unsigned qnext;
    /* include stack: identities of the files being read, for cycle detection */
    struct {
        bool known; /* false for text loaded from memory */
        dev_t dev;
        ino_t ino;
    } stack[MG_CONF_MAX_INCLUDE_DEPTH + 1];
    int depth; /* entries in stack[]; the top file is level 0 */
    /* the files read from disk (interned names), each with whether a secret directive
     * in it was judged already (mg_conf_check_secret_in_file) */
    struct mg_conf_file_read {
        const char *file;
        bool judged;
    } *files;
    size_t nfiles;
} mg_conf_ctx_t;

/* Record "FILE:LINE: message" (or "FILE: message" when <w> is NULL or has no line). */
void mg_conf_error(mg_conf_ctx_t *cx, const mg_conf_where_t *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Format into cx->errbuf and return it: for setters' return values. */
const char *mg_conf_errf(mg_conf_ctx_t *cx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* <s> in double quotes, non-printable bytes escaped, long values cut with "...".
 * The result lives until four more calls. */
const char *mg_conf_q(mg_conf_ctx_t *cx, const char *s);

/* Remember that <file> (interned) was read from disk. */
void mg_conf_note_file_read(mg_conf_ctx_t *cx, const char *file);

/* A directive holding a secret (<n>, argument <arg>) written literally in a file read
 * from disk: that file must be readable by its owner only, like a private key (unless
 * allow_loose_key_permissions: then mg_conf_warnings() says it). Returns an error text
 * (mg_conf_errf) or NULL; each file is judged once. */
const char *mg_conf_check_secret_in_file(mg_conf_ctx_t *cx, const mg_conf_node_t *n, size_t arg);

/* A copy of <name> owned by the generation (file names in where). NULL on OOM. */
const char *mg_conf_intern_file(mg_conf_ctx_t *cx, const char *name);

/* Parse <text> (the contents of <file>) into <out>, following includes. */
void mg_conf_parse_text(mg_conf_ctx_t *cx, const char *text, size_t len, const char *file,
                        mg_conf_nodes_t *out);
/* Read and parse a file (the top one, <from> NULL, or an include). */
void mg_conf_parse_file(mg_conf_ctx_t *cx, const char *path, const mg_conf_where_t *from,
                        mg_conf_nodes_t *out);
void mg_conf_nodes_free(mg_conf_nodes_t *nodes);

/* A path written in a config file, relative to that file's directory.
 * Returns a malloc'd string (NULL on OOM). */
char *mg_conf_resolve_path(const char *file, const char *path);

/* Free <n> strings of <v> and <v> itself (NULL-safe). */
void mg_conf_strv_free(char **v, size_t n);

/* Interpret the tree into cx->conf with the directive table. */
void mg_conf_interpret(mg_conf_ctx_t *cx, const mg_conf_nodes_t *top);

#endif /* MCPGATE_CONF_INT_H */
