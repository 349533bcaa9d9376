/* mcpgate-token.c -- operator tool: generate signing keys with their JWKS, mint and check access tokens. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "mcpgate/b64url.h"
#include "mcpgate/jwk.h"
#include "mcpgate/jwt.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: mcpgate-token keygen --alg ALG --kid KID --key OUT.pem --jwks OUT.jwks [--bits N]\n"
            "       mcpgate-token mint --key KEY.pem --kid KID --alg ALG --iss ISS --aud AUD\n"
            "                          --sub SUB [--scope \"a b\"] [--client-id X] [--ttl 1h]\n"
            "                          [--typ TYP] [--claim name=json]...\n"
            "       mcpgate-token verify --jwks FILE --iss ISS --aud AUD [--no-typ] [TOKEN]\n"
            "       mcpgate-token apikey [--name NAME] [--subject SUB] [--scopes \"a b\"]\n"
            "       mcpgate-token apikey --digest < KEYFILE\n"
            "ALG is one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA.\n");
}

/* "90", "90s", "15m", "1h", "2d" -> seconds; -1 when invalid. */
static long long
parse_duration(const char *s)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    switch (*end) {
    case '\0':
    case 's': break;
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    default: return -1;
    }
    if (*end && end[1] != '\0')
        return -1;
    return v;
}

static int
write_file(const char *path, const char *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t len = strlen(data), off = 0;

    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) != 0)
        goto fail;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0)
            goto fail;
        off += (size_t)n;
    }
    return close(fd);
fail:
    close(fd);
    return -1;
}

static int
cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"alg", required_argument, NULL, 'a'}, {"kid", required_argument, NULL, 'k'},
        {"key", required_argument, NULL, 'o'}, {"jwks", required_argument, NULL, 'j'},
        {"bits", required_argument, NULL, 'b'}, {NULL, 0, NULL, 0}};
    const char *algname = NULL, *kid = NULL, *keyout = NULL, *jwksout = NULL;
    int bits = 2048, c, rc = 1;
    mg_jws_alg_t alg;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    char *jwk = NULL, *jwks = NULL, *pem = NULL;
    long pemlen;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': algname = optarg; break;
        case 'k': kid = optarg; break;
        case 'o': keyout = optarg; break;
        case 'j': jwksout = optarg; break;
        case 'b': bits = atoi(optarg); break;
        default: usage(stderr); return 2;
        }
    }
    if (!algname || !kid || !keyout || !jwksout) {
        usage(stderr);
        return 2;
    }
    alg = mg_jws_alg_from_name(algname);
    switch (alg) {
    case MG_JWS_RS256: case MG_JWS_RS384: case MG_JWS_RS512:
    case MG_JWS_PS256: case MG_JWS_PS384: case MG_JWS_PS512:
        if (bits < 2048 || bits > 8192) {
            fprintf(stderr, "mcpgate-token: --bits must be 2048..8192\n");
            return 2;
        }
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
        break;
    case MG_JWS_ES256: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case MG_JWS_ES384: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"); break;
    case MG_JWS_ES512: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"); break;
    case MG_JWS_EDDSA: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    default:
        fprintf(stderr, "mcpgate-token: unsupported --alg %s\n", algname);
        return 2;
    }
    if (pkey == NULL) {
        fprintf(stderr, "mcpgate-token: key generation failed\n");
        goto done;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL ||
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
        goto done;
    pemlen = BIO_get_mem_data(bio, &pem);
    {
        char *pemz = strndup(pem, (size_t)pemlen);
        int w = pemz ? write_file(keyout, pemz, 0600) : -1;
        OPENSSL_cleanse(pemz, pemz ? strlen(pemz) : 0);
        free(pemz);
        if (w != 0) {
            fprintf(stderr, "mcpgate-token: cannot write %s: %s\n", keyout, strerror(errno));
            goto done;
        }
    }
    if ((jwk = mg_jwk_public_json(pkey, kid, alg)) == NULL)
        goto done;
    if ((jwks = malloc(strlen(jwk) + 16)) == NULL)
        goto done;
    sprintf(jwks, "{\"keys\":[%s]}\n", jwk);
    if (write_file(jwksout, jwks, 0644) != 0) {
        fprintf(stderr, "mcpgate-token: cannot write %s: %s\n", jwksout, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    free(jwk);
    free(jwks);
    return rc;
}

static EVP_PKEY *
load_private_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *pkey;

    if (f == NULL) {
        fprintf(stderr, "mcpgate-token: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (pkey == NULL)
        fprintf(stderr, "mcpgate-token: %s: not a PEM private key\n", path);
    return pkey;
}

static int
cmd_mint(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'K'},   {"kid", required_argument, NULL, 'k'},
        {"alg", required_argument, NULL, 'a'},   {"iss", required_argument, NULL, 'i'},
        {"aud", required_argument, NULL, 'u'},   {"sub", required_argument, NULL, 's'},
        {"scope", required_argument, NULL, 'S'}, {"client-id", required_argument, NULL, 'c'},
        {"ttl", required_argument, NULL, 't'},   {"claim", required_argument, NULL, 'C'},
        {"typ", required_argument, NULL, 'y'},   {NULL, 0, NULL, 0}};
    const char *keyfile = NULL, *kid = NULL, *algname = NULL, *typ = "at+jwt";
    json_t *claims = json_object(), *aud = json_array(), *hdr = json_object();
    long long ttl = 3600;
    int c, rc = 1;
    mg_jws_alg_t alg;
    EVP_PKEY *pkey = NULL;
    char *h = NULL, *p = NULL, *tok = NULL, jti[33];
    unsigned char rnd[16];
    time_t now = time(NULL);

    if (!claims || !aud || !hdr)
        goto done;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'K': keyfile = optarg; break;
        case 'k': kid = optarg; break;
        case 'a': algname = optarg; break;
        case 'y': typ = optarg; break;
        case 'i': json_object_set_new(claims, "iss", json_string(optarg)); break;
        case 'u': json_array_append_new(aud, json_string(optarg)); break;
        case 's': json_object_set_new(claims, "sub", json_string(optarg)); break;
        case 'S': json_object_set_new(claims, "scope", json_string(optarg)); break;
        case 'c': json_object_set_new(claims, "client_id", json_string(optarg)); break;
        case 't':
            if ((ttl = parse_duration(optarg)) < 0) {
                fprintf(stderr, "mcpgate-token: bad --ttl %s\n", optarg);
                rc = 2;
                goto done;
            }
            break;
        case 'C': {
            char *eq = strchr(optarg, '=');
            json_error_t jerr;
            json_t *v;
            if (eq == NULL || eq == optarg ||
                (v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
                fprintf(stderr, "mcpgate-token: --claim wants name=<JSON value>: %s\n", optarg);
                rc = 2;
                goto done;
            }
            *eq = '\0';
            json_object_set_new(claims, optarg, v);
            *eq = '=';
            break;
        }
        default: usage(stderr); rc = 2; goto done;
        }
    }
    if (!keyfile || !algname || !json_object_get(claims, "iss") || json_array_size(aud) == 0 ||
        !json_object_get(claims, "sub")) {
        usage(stderr);
        rc = 2;
        goto done;
    }
    if ((alg = mg_jws_alg_from_name(algname)) == MG_JWS_ALG_UNKNOWN) {
        fprintf(stderr, "mcpgate-token: unsupported --alg %s\n", algname);
        rc = 2;
        goto done;
    }
    if ((pkey = load_private_key(keyfile)) == NULL)
        goto done;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto done;
    for (size_t i = 0; i < sizeof(rnd); i++)
        sprintf(jti + 2 * i, "%02x", rnd[i]);
    json_object_set(claims, "aud", json_array_size(aud) == 1 ? json_array_get(aud, 0) : aud);
    if (!json_object_get(claims, "iat"))
        json_object_set_new(claims, "iat", json_integer((json_int_t)now));
    if (!json_object_get(claims, "exp"))
        json_object_set_new(claims, "exp", json_integer((json_int_t)now + ttl));
    if (!json_object_get(claims, "jti"))
        json_object_set_new(claims, "jti", json_string(jti));
    json_object_set_new(hdr, "alg", json_string(mg_jws_alg_name(alg)));
    json_object_set_new(hdr, "typ", json_string(typ));
    if (kid)
        json_object_set_new(hdr, "kid", json_string(kid));
    if ((h = json_dumps(hdr, JSON_COMPACT)) == NULL || (p = json_dumps(claims, JSON_COMPACT)) == NULL)
        goto done;
    if ((tok = mg_jws_sign(pkey, alg, h, strlen(h), p, strlen(p), -1)) == NULL) {
        fprintf(stderr, "mcpgate-token: signing failed (does --alg fit the key?)\n");
        goto done;
    }
    printf("%s\n", tok);
    rc = 0;
done:
    json_decref(claims);
    json_decref(aud);
    json_decref(hdr);
    EVP_PKEY_free(pkey);
    free(h);
    free(p);
    free(tok);
    return rc;
}

static int
cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"jwks", required_argument, NULL, 'j'}, {"iss", required_argument, NULL, 'i'},
        {"aud", required_argument, NULL, 'u'},  {"no-typ", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0}};
    const char *jwksfile = NULL, *iss = NULL, *aud = NULL;
    bool typ = true;
    int c, rc = 1;
    mg_jwks_t *ks = NULL;
    mg_jwt_issuer_t *is = NULL;
    mg_jwt_claims_t *cl = NULL;
    char err[256], line[16384], *tok;
    mg_jwt_reason_t r;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j': jwksfile = optarg; break;
        case 'i': iss = optarg; break;
        case 'u': aud = optarg; break;
        case 'n': typ = false; break;
        default: usage(stderr); return 2;
        }
    }
    if (!jwksfile || !iss || !aud) {
        usage(stderr);
        return 2;
    }
    if (optind < argc) {
        tok = argv[optind];
    } else {
        if (fgets(line, sizeof(line), stdin) == NULL)
            return 2;
        line[strcspn(line, "\r\n")] = '\0';
        tok = line;
    }
    if ((ks = mg_jwks_load_file(jwksfile, err, sizeof(err))) == NULL) {
        fprintf(stderr, "mcpgate-token: %s\n", err);
        return 1;
    }
    if (err[0])
        fprintf(stderr, "mcpgate-token: warning: %s\n", err);
    if ((is = mg_jwt_issuer_new(iss)) == NULL)
        goto done;
    mg_jwt_issuer_set_keys(is, ks);
    mg_jwt_issuer_set_require_typ(is, typ);
    r = mg_jwt_verify(tok, strlen(tok), &is, 1, &aud, 1, (int64_t)time(NULL), &cl);
    if (r != MG_JWT_OK) {
        printf("invalid: %s (%s)\n", mg_jwt_reason_code(r), mg_jwt_reason_description(r));
        goto done;
    }
    printf("valid: alg=%s sub=%s client_id=%s jti=%s exp=%lld scopes=", mg_jws_alg_name(cl->alg),
           cl->sub, cl->client_id ? cl->client_id : "-", cl->jti ? cl->jti : "-",
           (long long)cl->exp);
    for (size_t i = 0; i < cl->n_scopes; i++)
        printf("%s%s", i ? "," : "", cl->scopes[i]);
    printf("\n");
    rc = 0;
done:
    mg_jwt_claims_free(cl);
    mg_jwt_issuer_free(is);
    mg_jwks_unref(ks);
    return rc;
}

/* "sha256:<hex>" of <key> into <out> (7 + 64 + 1 bytes). */
static int
key_digest(const char *key, size_t len, char out[72])
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;

    if (EVP_Digest(key, len, d, &dl, EVP_sha256(), NULL) != 1 || dl != 32)
        return -1;
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < dl; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
    return 0;
}

static bool
key_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* A new API key (32 random bytes, base64url), printed once, with the config block that
 * holds only its digest; or, with --digest, the digest line of a key read from stdin. */
static int
cmd_apikey(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'}, {"subject", required_argument, NULL, 's'},
        {"scopes", required_argument, NULL, 'S'}, {"digest", no_argument, NULL, 'd'},
        {NULL, 0, NULL, 0}};
    const char *name = "client", *subject = NULL, *scopes = NULL;
    bool digest_only = false;
    uint8_t raw[32];
    char key[64], dig[72];
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 's': subject = optarg; break;
        case 'S': scopes = optarg; break;
        case 'd': digest_only = true; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (digest_only) {
        char line[4096];
        size_t n = fread(line, 1, sizeof(line) - 1, stdin);
        line[n] = '\0';
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        if (n == 0 || key_digest(line, n, dig) != 0) {
            fprintf(stderr, "mcpgate-token: no key on stdin\n");
            return 1;
        }
        OPENSSL_cleanse(line, sizeof(line));
        printf("digest %s;\n", dig);
        return 0;
    }
    if (!key_name_ok(name)) {
        fprintf(stderr, "mcpgate-token: --name must be 1..64 of A-Z a-z 0-9 - _ .\n");
        return 2;
    }
    for (const unsigned char *p = (const unsigned char *)(subject ? subject : ""); *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "mcpgate-token: --subject must not contain control characters\n");
            return 2;
        }
    for (const unsigned char *p = (const unsigned char *)(scopes ? scopes : ""); *p; p++)
        if (*p != ' ' && (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')) {
            fprintf(stderr, "mcpgate-token: --scopes: invalid character in a scope\n");
            return 2;
        }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        fprintf(stderr, "mcpgate-token: no randomness\n");
        return 1;
    }
    mg_b64url_encode(raw, sizeof(raw), key);
    key[43] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    if (key_digest(key, strlen(key), dig) != 0) {
        fprintf(stderr, "mcpgate-token: cannot hash the key\n");
        return 1;
    }
    printf("# API key, shown only this once: give it to the caller (Authorization: Bearer KEY)\n"
           "%s\n"
           "# In mcpgate.conf, inside the route (only the digest is kept):\n"
           "api_key %s {\n"
           "    digest %s;\n",
           key, name, dig);
    if (subject != NULL) {
        printf("    subject \"");
        for (const char *p = subject; *p; p++)
            printf(*p == '"' || *p == '\\' || *p == '$' ? "\\%c" : "%c", *p);
        printf("\";\n");
    }
    if (scopes != NULL && strspn(scopes, " ") != strlen(scopes)) {
        const char *p = scopes;
        printf("    scopes");
        while (*p) {
            size_t n;
            p += strspn(p, " ");
            n = strcspn(p, " ");
            if (n > 0)
                printf(" %.*s", (int)n, p);
            p += n;
        }
        printf(";\n");
    }
    printf("}\n");
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "mint") == 0)
        return cmd_mint(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "apikey") == 0)
        return cmd_apikey(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
