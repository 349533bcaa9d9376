/* conf.h -- the configuration: mcpgate.conf parsed into one immutable generation.
 *
 * The parser (src/conf/) turns a file into an mg_conf_t of plain data; the
 * runtime (src/core/) never parses text and never changes a generation once
 * it is built. A reload builds a whole new generation and swaps it in only
 * when it has no error (see src/core/server.c).
 *
 * Ownership: mg_conf_load() returns a generation owned by the caller, freed
 * with mg_conf_free(). Every pointer inside it (strings, arrays) is owned by
 * the generation and lives exactly as long as it does.
 */
#ifndef MCPGATE_CONF_H
#define MCPGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mcpgate/redis.h" /* mg_redis_conf_t: plain data */

/* Where a directive was written, for "FILE:LINE: message" errors. The file
 * name is owned by the generation. */
typedef struct mg_conf_where {
    const char *file;
    int line;
} mg_conf_where_t;

/* listen ADDR:PORT;  or  listen ADDR:PORT { tls_certificate F; tls_certificate_key F;
 *                                           plaintext_ok; max_connections N; }
 * admin_listen ADDR:PORT;  ADDR is an IPv4 literal, [IPv6] literal, "*" or "localhost". */
typedef struct mg_conf_listen {
    char *text;                   /* "127.0.0.1:8080" as written (after ${} expansion) */
    struct sockaddr_storage addr; /* resolved numeric address */
    socklen_t addrlen;
    char *tls_certificate;        /* PEM chain file; NULL for plain HTTP */
    char *tls_certificate_key;    /* PEM key file; set iff tls_certificate is */
    bool plaintext_ok;            /* `listen ADDR { plaintext_ok; }`: plain HTTP on a
                                     non-loopback address on purpose (behind a TLS proxy or
                                     mesh); without it such a listener is refused */
    size_t max_connections;       /* `listen ADDR { max_connections N; }`: the most client
                                     connections this listener holds (all workers); 0: no cap
                                     of its own (the top-level max_connections still applies) */
    mg_conf_where_t where;
} mg_conf_listen_t;

/* validation auto|jwt|introspection; in an issuer block. */
typedef enum mg_conf_validation {
    MG_VALIDATION_AUTO = 0,      /* a compact JWS is verified locally, any other token is
                                    introspected when the issuer has introspection credentials */
    MG_VALIDATION_JWT,           /* never introspect */
    MG_VALIDATION_INTROSPECTION, /* introspect every token of this issuer */
} mg_conf_validation_t;

/* issuer URL { jwks_file FILE | jwks_uri URL; ca_file FILE; allow_http on|off;
 *              jwks_min_refresh DUR; jwks_max_refresh DUR; kid_refetch_cooldown DUR;
 *              jwks_max_stale DUR; algorithms NAME ...; leeway DUR; require_typ on|off;
 *              max_token_lifetime DUR|off; max_token_size SIZE;
 *              introspection_endpoint URL; introspection_client_id ID;
 *              introspection_client_secret SECRET; introspection_cache_ttl DUR;
 *              validation auto|jwt|introspection; revocation on|off; }
 * An authorization server whose access tokens routes may trust. */
typedef struct mg_conf_issuer {
    char *url;                   /* compared byte for byte with the token's iss claim */
    char *jwks_file;             /* the issuer's public key set (JWKS JSON) */
    char *algorithms;            /* the names as written, space-separated; NULL: the default
                                    list RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384
                                    ES512 EdDSA */
    uint32_t leeway;             /* [60s] ms allowed on exp/nbf/iat */
    bool require_typ;            /* [on] typ must be at+jwt (RFC 9068 section 2.1) */
    uint32_t max_token_lifetime; /* [0 = off] ms; exp - iat above it is refused */
    size_t max_token_size;       /* [8k] */
    /* Where the keys come from (docs/keys.md): jwks_file, else jwks_uri, else
     * discovery from <url> (RFC 8414, then OIDC Discovery). */
    char *jwks_uri;              /* NULL: jwks_file or discovery */
    char *ca_file;               /* trust anchors for the issuer's URLs; NULL: system store */
    bool allow_http;             /* [off] plain http to loopback addresses only */
    uint32_t jwks_min_refresh;   /* [60s] ms; lower clamp of the key set's cache lifetime */
    uint32_t jwks_max_refresh;   /* [24h] ms; upper clamp */
    uint32_t kid_refetch_cooldown; /* [30s] ms; at most one unknown-kid refetch per this */
    uint32_t jwks_max_stale;     /* [24h] ms; last good keys kept this long past expiry */
    /* RFC 7662 introspection (docs/keys.md): for opaque tokens (validation auto) or every
     * token of this issuer (validation introspection). Needs client id and secret. */
    char *introspection_endpoint;      /* NULL: the one discovered from the metadata */
    char *introspection_client_id;
    char *introspection_client_secret; /* a secret: never logged, wiped when freed */
    uint32_t introspection_cache_ttl;  /* [60s] ms; results kept at most this long */
    mg_conf_validation_t validation;   /* [auto] */
    bool revocation; /* [off] refuse tokens whose jti is in the Redis set mg:revoked:<url>
                        (docs/redis.md); needs a redis block */
    mg_conf_where_t where;
} mg_conf_issuer_t;

/* `method|tool|prompt|resource_uri GLOB SCOPE...;` inside a route: a JSON-RPC
 * message matching GLOB (fnmatch without FNM_PATHNAME) needs every SCOPE. */
typedef enum mg_conf_rule_kind {
    MG_RULE_METHOD = 0,  /* the JSON-RPC method */
    MG_RULE_TOOL,        /* params.name of tools/call */
    MG_RULE_PROMPT,      /* params.name of prompts/get */
    MG_RULE_RESOURCE,    /* params.uri of resources/read */
} mg_conf_rule_kind_t;

typedef struct mg_conf_scope_rule {
    mg_conf_rule_kind_t kind;
    char *glob;
    char **scopes;
    size_t nscopes;
    mg_conf_where_t where;
} mg_conf_scope_rule_t;

/* identity_header subject|client_id|scopes|issuer NAME|off; */
enum {
    MG_IDENT_SUBJECT = 0, /* X-MCP-Subject */
    MG_IDENT_CLIENT_ID,   /* X-MCP-Client-Id */
    MG_IDENT_SCOPES,      /* X-MCP-Scopes */
    MG_IDENT_ISSUER,      /* X-MCP-Issuer */
    MG_CONF_IDENTITY_COUNT
};

/* rate_limit subject|client|route|tool[:GLOB] COUNT/second|minute|hour [burst N];
 * inside a route (docs/redis.md). Each line is one GCRA bucket per key value. */
typedef enum mg_conf_rl_kind {
    MG_CONF_RL_SUBJECT = 0, /* per (iss, sub); unprotected routes: per client address */
    MG_CONF_RL_CLIENT,      /* per (iss, client_id or azp); unprotected: per client address */
    MG_CONF_RL_ROUTE,       /* the route as a whole */
    MG_CONF_RL_TOOL,        /* per (tool name, iss, sub) for tools/call matching <glob> */
} mg_conf_rl_kind_t;

typedef struct mg_conf_rate_limit {
    mg_conf_rl_kind_t kind;
    char *glob;           /* MG_CONF_RL_TOOL: fnmatch pattern ("*" for plain `tool`); else NULL */
    uint32_t count;       /* COUNT */
    uint32_t period_s;    /* 1, 60 or 3600 */
    uint32_t burst;       /* [COUNT] */
    uint64_t interval_us; /* emission interval: period / count, rounded up */
    mg_conf_where_t where;
} mg_conf_rate_limit_t;

#define MG_CONF_MAX_RATE_LIMITS 16 /* = MG_RL_MAX_KEYS: one check per request */

/* redis HOST:PORT | unix:PATH { password P; user U; database N; timeout DUR;
 *                               on_failure local|deny|allow; }  (top level, at most once) */
typedef struct mg_conf_redis {
    mg_redis_conf_t rc; /* what mg_redis_new() takes; its strings point at the fields below */
    char *text;         /* the address as written */
    char *host;         /* IP literal or name; NULL for unix: */
    char *unix_path;    /* resolved relative to the config file; NULL for HOST:PORT */
    char *user;
    char *password;
    mg_conf_where_t where;
} mg_conf_redis_t;

/* api_key NAME { digest sha256:HEX; subject S; scopes SCOPE...; } inside a route: a
 * static credential for an internal caller. Only the SHA-256 of the key is configured;
 * the caller presents the key as `Authorization: Bearer KEY` or in the route's
 * api_key_header, and becomes the principal (MG_API_KEY_ISSUER, subject, client_id NAME,
 * scopes). */
#define MG_API_KEY_ISSUER "urn:mcpgate:api-key"
#define MG_API_KEY_DIGEST_LEN 32

typedef struct mg_conf_api_key {
    char *name;                             /* unique in its route; the client_id */
    uint8_t digest[MG_API_KEY_DIGEST_LEN];  /* SHA-256 of the key bytes */
    bool has_digest;
    char *subject;                          /* [NAME] the principal's sub */
    char **scopes;                          /* granted scopes, in config order */
    size_t nscopes;
    mg_conf_where_t where;
} mg_conf_api_key_t;

/* route PATH { upstream URL; upstream_ca_file FILE; resource URL; issuer URL; ... } */
typedef struct mg_conf_route {
    char *path;              /* "/" or "/a/b": starts with '/', no trailing '/', no '//',
                                no dot segments, no '%' (checked at parse time) */
    size_t path_len;
    char *upstream;          /* the URL as written */
    bool upstream_tls;       /* https:// */
    bool upstream_plaintext_ok; /* `upstream_plaintext_ok;`: an http:// upstream to a
                                   non-loopback host on purpose; without it refused */
    char *upstream_host;     /* host name or IP literal, without brackets */
    uint16_t upstream_port;  /* explicit, or 80/443 */
    char *upstream_hostport; /* "host:port" (IPv6 in brackets): the Host header sent upstream */
    char *upstream_path;     /* path prefix that replaces <path>, with no trailing '/':
                                the URL's path ("" for "/"); for a URL with no path, <path>
                                itself ("" for route "/"), so the request path is passed
                                unchanged, as nginx's proxy_pass does */
    char *upstream_ca_file;  /* NULL: the system trust store */
    char *resource;          /* the canonical URL clients dial (RFC 8707/9728); tokens must
                                name it in aud. Required when the route has an issuer */
    char **issuer_urls;      /* the route's `issuer URL;` lines, in config order */
    size_t *issuers;         /* the same as indexes into mg_conf_t.issuers (resolved at the
                                end of the load); a route with issuers requires a valid
                                token on every request */
    size_t nissuers;
    mg_conf_where_t *issuer_wheres;

    /* The MCP front door (src/mcp/, docs/mcp.md). Lists are in config order;
     * every string is owned by the generation. */
    bool is_default;               /* `default;`: also serves the bare
                                      /.well-known/oauth-protected-resource */
    char *resource_name;           /* PRM resource_name, or NULL */
    char *resource_documentation;  /* PRM resource_documentation URL, or NULL */
    char **scopes_supported;       /* PRM scopes_supported; also the 401 challenge scope */
    size_t nscopes_supported;
    char **require_scopes;         /* needed by every request on the route */
    size_t nrequire_scopes;
    mg_conf_scope_rule_t *scope_rules; /* method/tool/prompt/resource_uri rules */
    size_t nscope_rules;
    char **allowed_origins;        /* Origin allow-list (exact, case-insensitive); none: no
                                      request with an Origin header is accepted */
    size_t nallowed_origins;
    char **server_names;           /* accepted Host names (lowercase, no port); none: any */
    size_t nserver_names;
    bool identity_headers;         /* [on] add X-MCP-* identity headers upstream */
    char *identity_header_names[MG_CONF_IDENTITY_COUNT]; /* NULL: the default name;
                                      "" (written `off`): that header is not sent */
    char *identity_signing_key;    /* PEM private key (Ed25519 or P-256) for X-MCP-Identity */
    char *upstream_authorization;  /* Authorization value sent upstream, or NULL */
    uint32_t session_ttl;          /* [1h] ms; Mcp-Session-Id binding lifetime */
    mg_conf_api_key_t *api_keys;   /* `api_key` blocks in config order; a route with keys
                                      (and/or issuers) requires a credential */
    size_t napi_keys;
    char *api_key_header;          /* `api_key_header NAME;`: also accept the key in this
                                      header (never forwarded); NULL: Authorization only */
    mg_conf_rate_limit_t *rate_limits; /* `rate_limit` lines in config order (at most
                                          MG_CONF_MAX_RATE_LIMITS, no two identical) */
    size_t nrate_limits;
    mg_conf_where_t where;
} mg_conf_route_t;

/* trusted_proxy ADDR[/PREFIX] ...; */
typedef struct mg_conf_cidr {
    int family;                    /* AF_INET or AF_INET6 */
    uint8_t addr[16];              /* network byte order; 4 bytes used for AF_INET */
    unsigned prefix;               /* 0..32 or 0..128 */
} mg_conf_cidr_t;

typedef struct mg_conf {
    char *source;            /* the top-level file name */
    int workers;             /* resolved: "auto" becomes the number of online CPUs */

    mg_conf_listen_t *listens;
    size_t nlistens;
    mg_conf_listen_t *admin_listen; /* NULL when not configured */

    mg_conf_route_t *routes;
    size_t nroutes;

    mg_conf_issuer_t *issuers;
    size_t nissuers;
    size_t token_cache_size;         /* [10000] verified tokens cached per worker; 0 = off */
    uint32_t startup_grace;          /* [10s] ms; /readyz waits this long for key sets */

    /* Limits and timeouts (milliseconds), top level only. Defaults in brackets. */
    size_t max_header_size;          /* [16k]  request line + headers; over it: 431 */
    size_t max_body_size;            /* [1m]   request body; over it: 413 */
    uint32_t client_timeout;         /* [30s]  to receive a whole request; then 408 */
    uint32_t upstream_connect_timeout; /* [5s] then 504 */
    uint32_t upstream_timeout;       /* [60s]  request sent -> response headers; then 504 */
    uint32_t stream_idle_timeout;    /* [10m]  no byte either way on a streamed response */
    uint32_t drain_timeout;          /* [30s]  SIGTERM: in-flight requests get this long */
    uint32_t sse_keepalive;          /* [0 = off] idle SSE streams get ": keepalive" comments */
    size_t max_connections;          /* [10000] client connections held by the process (all
                                        workers and listeners); over it: closed at accept */
    size_t max_connections_per_client; /* [256] the same per client IP address; 0 = off */
    int log_level;                   /* [MG_LOG_INFO] log_level error|warn|info|debug; */
    char *access_log;                /* ["stdout"] access_log stdout|stderr|off|FILE; the JSON
                                        audit log, one line per request (a FILE is resolved
                                        relative to the config file) */

    /* MCP front door, top level. */
    mg_conf_cidr_t *trusted_proxies; /* trusted_proxy ADDR[/N] ...; peers allowed to set
                                        X-Forwarded-* (see mg_mcp_trusted_proxy) */
    size_t ntrusted_proxies;
    bool legacy_as_metadata;         /* [off] serve /.well-known/oauth-authorization-server */

    /* Transport and secret-file policy (docs/mcpgate.conf.5, SECURITY). */
    uint32_t hsts_max_age;           /* [365d] seconds of Strict-Transport-Security on TLS
                                        listeners; 0 (`hsts off`): no header */
    bool allow_loose_key_permissions; /* [off] a private key, or a config file holding a
                                        secret, readable by group/others is a warning
                                        instead of an error */
    mg_conf_where_t *loose_secret_files; /* config files holding a secret directive that
                                        group/others may read (allowed by
                                        allow_loose_key_permissions): the first such
                                        directive of each, for mg_conf_warnings() */
    size_t nloose_secret_files;

    /* Shared state (docs/redis.md): rate limits and session bindings in Redis.
     * NULL: no redis block; limits run in-process, sessions in memory. */
    mg_conf_redis_t *redis;

    /* Internal to src/conf: the names of every file read (the top one and its
     * includes); mg_conf_where_t.file points into this list. */
    char **files;
    size_t nfiles;
} mg_conf_t;

/* Errors collected while loading: each message is "FILE:LINE: message"
 * (or "FILE: message" when no line applies). Owned by the caller. */
typedef struct mg_conf_errors {
    char **msgs;
    size_t n;
} mg_conf_errors_t;

/* Load and validate a configuration file, following include directives.
 * Returns the new generation, or NULL when there was any error; every
 * error found (not only the first) is appended to <errs>. */
mg_conf_t *mg_conf_load(const char *path, mg_conf_errors_t *errs);

/* The same from a string in memory; <name> is used as the file name in
 * messages and as the base for relative include paths ("." when NULL).
 * Relative paths in a file (include, certificates, CA files) are taken
 * relative to the directory of the file that names them; a file name without
 * a '/' (or NULL, shown as "(string)" in messages) means the current directory.
 * For tests and the fuzz target. */
mg_conf_t *mg_conf_load_string(const char *text, size_t len, const char *name,
                               mg_conf_errors_t *errs);

/* The route whose path is the longest prefix of <path> on a segment
 * boundary ("/mcp" matches "/mcp" and "/mcp/x", never "/mcpx"; "/" matches
 * everything). <path> is already normalised. NULL when none matches. */
const mg_conf_route_t *mg_conf_route_match(const mg_conf_t *conf, const char *path,
                                           size_t path_len);

/* "sha256:" followed by 64 hex digits (either case) -> 32 bytes. Returns 0 or -1. */
int mg_conf_parse_digest(const char *s, uint8_t out[MG_API_KEY_DIGEST_LEN]);

/* A file holding a secret (private key) must be for its owner only: NULL when <path> has
 * no group/other permission bits and its directory is not writable by others (unless
 * sticky), else a message naming the file and the fix, written into <buf>. */
const char *mg_conf_secret_file_problem(const char *path, char *buf, size_t len);
/* The same check; <what> names the file in the message ("a private key", "a file
 * holding secrets"). */
const char *mg_conf_secret_file_problem_of(const char *path, const char *what, char *buf,
                                           size_t len);

/* True for an IPv4 127/8 or IPv6 ::1 address (also v4-mapped). */
bool mg_conf_addr_is_loopback(const struct sockaddr *sa);
/* True when the host of the http(s) URL <url> is localhost, 127.x.y.z or [::1]. */
bool mg_conf_url_is_loopback(const char *url);

/* Things that are allowed but unsafe (plain HTTP on a non-loopback listener with
 * plaintext_ok, a plain-HTTP upstream to a non-loopback host with upstream_plaintext_ok,
 * loose permissions on key files and config files holding secrets, allowed by
 * allow_loose_key_permissions): one "FILE:LINE: warning: ..." per finding
 * appended to <out>. Logged at -t, at start and on every reload. */
void mg_conf_warnings(const mg_conf_t *conf, mg_conf_errors_t *out);

/* NULL-safe. */
void mg_conf_free(mg_conf_t *conf);
void mg_conf_errors_clear(mg_conf_errors_t *errs);

/* Parse "30s", "5m", "250ms", "1h", "2d" (a bare number is seconds) into
 * milliseconds. Returns 0 on success, -1 on a bad or out-of-range value. */
int mg_conf_parse_duration(const char *s, uint32_t *ms_out);

/* Parse "512", "64k", "1m", "1g" (powers of 1024) into bytes. Returns 0 or -1. */
int mg_conf_parse_size(const char *s, size_t *bytes_out);

#endif /* MCPGATE_CONF_H */
