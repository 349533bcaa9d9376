/* test_jose.c -- unit tests of src/jose: base64url, JWK import, RFC examples, issuer policy, the negative-token table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include "mgtest.h"
#include "jose_testutil.h"
#include "mcpgate/token_cache.h"

static tkey_t rsa, rsa_b, ec, ed, attacker, rsa1024;
static mg_jwt_issuer_t *issuer;

/* RS256 header with kid "rsa-1" and typ at+jwt. */
#define H_RS "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\"}"
#define H_ES "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"ec-1\"}"

/* A standard claims set with <extra> members appended (starting with ","). */
static char *
claims(const char *extra)
{
    char *p = malloc(1024 + strlen(extra));
    sprintf(p,
            "{\"iss\":\"" T_ISS "\",\"sub\":\"alice\",\"aud\":\"" T_AUD "\",\"iat\":%lld,"
            "\"exp\":%lld,\"jti\":\"j-1\",\"client_id\":\"cli\",\"scope\":\"read write\"%s}",
            (long long)T_NOW - 10, (long long)T_NOW + 600, extra);
    return p;
}

static mg_jwt_reason_t
verify_with(mg_jwt_issuer_t *is, const char *tok)
{
    const char *aud = T_AUD;
    mg_jwt_claims_t *c = NULL;
    mg_jwt_reason_t r = mg_jwt_verify(tok, strlen(tok), &is, 1, &aud, 1, T_NOW, &c);
    if ((r == MG_JWT_OK) != (c != NULL))
        r = MG_JWT_REASON_COUNT; /* contract broken */
    mg_jwt_claims_free(c);
    return r;
}

static const char *
vcode(const char *tok)
{
    return mg_jwt_reason_code(verify_with(issuer, tok));
}

/* Sign std header+<payload> with rsa and check the reason code. */
#define ROW_RS(payload_extra, code)                                                    \
    do {                                                                               \
        char *p_ = claims(payload_extra);                                              \
        char *t_ = mint(&rsa, MG_JWS_RS256, H_RS, p_);                                 \
        MG_CHECK_STR(vcode(t_), code);                                                 \
        free(t_);                                                                      \
        free(p_);                                                                      \
    } while (0)

/* Raw payload text (full claims set). */
#define ROW_RAW(hdr, payload, code)                                                    \
    do {                                                                               \
        char *t_ = mint(&rsa, MG_JWS_RS256, hdr, payload);                             \
        MG_CHECK_STR(vcode(t_), code);                                                 \
        free(t_);                                                                      \
    } while (0)

/* Re-encode <sig> bytes as the signature segment of <tok>. */
static char *
with_sig(const char *tok, const uint8_t *sig, size_t siglen)
{
    const char *dot = strrchr(tok, '.');
    size_t head = (size_t)(dot - tok) + 1;
    char *out = malloc(head + MG_B64URL_ENCODED_LEN(siglen) + 1);
    memcpy(out, tok, head);
    mg_b64url_encode(sig, siglen, out + head);
    return out;
}

static size_t
get_sig(const char *tok, uint8_t *buf)
{
    const char *dot = strrchr(tok, '.');
    size_t n = 0;
    if (mg_b64url_decode(dot + 1, strlen(dot + 1), buf, &n) != 0)
        return 0;
    return n;
}

/* --- base64url ---------------------------------------------------------- */

static int
dec(const char *s, char *out)
{
    size_t n = 0;
    if (mg_b64url_decode(s, strlen(s), (uint8_t *)out, &n) != 0)
        return -1;
    out[n] = 0;
    return (int)n;
}

static void
test_b64url(void)
{
    char buf[64];
    char enc[64];

    MG_CHECK_INT(dec("", buf), 0);
    MG_CHECK_INT(dec("Zg", buf), 1);
    MG_CHECK_STR(buf, "f");
    MG_CHECK_INT(dec("Zm8", buf), 2);
    MG_CHECK_INT(dec("Zm9v", buf), 3);
    MG_CHECK_STR(buf, "foo");
    MG_CHECK_INT(dec("Zm9vYmFy", buf), 6);
    MG_CHECK_INT(dec("-_8", buf), 2);
    MG_CHECK_INT((uint8_t)buf[0], 0xfb);
    MG_CHECK_INT((uint8_t)buf[1], 0xff);
    MG_CHECK_INT(dec("Zg==", buf), -1);  /* padding */
    MG_CHECK_INT(dec("Zm9v=", buf), -1); /* padding */
    MG_CHECK_INT(dec("+/8", buf), -1);   /* base64, not base64url */
    MG_CHECK_INT(dec("Zm 9v", buf), -1); /* whitespace */
    MG_CHECK_INT(dec("Zm9v\n", buf), -1);
    MG_CHECK_INT(dec("Z", buf), -1);  /* 1 mod 4 */
    MG_CHECK_INT(dec("Zh", buf), -1); /* non-zero trailing bits: "Zg" is canonical */
    MG_CHECK_INT(dec("Zm9", buf), -1);
    MG_CHECK_INT(dec("Zm8", buf), 2);
    MG_CHECK_INT(dec("Zm?v", buf), -1);
    MG_CHECK_INT((int)mg_b64url_encode((const uint8_t *)"foob", 4, enc), 6);
    MG_CHECK_STR(enc, "Zm9vYg");
    mg_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc);
    MG_CHECK_STR(enc, "-_8");
    /* Round trip of every length up to 40 with every byte value pattern. */
    for (size_t len = 0; len < 40; len++) {
        uint8_t in[40], out[40];
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(i * 37 + len);
        mg_b64url_encode(in, len, enc);
        MG_CHECK(strlen(enc) == MG_B64URL_ENCODED_LEN(len));
        MG_CHECK(mg_b64url_decode(enc, strlen(enc), out, &n) == 0 && n == len &&
                 memcmp(in, out, len) == 0);
    }
}

/* --- RFC examples ------------------------------------------------------------ */

/* Verify a JWS-level example with a one-key set and no typ requirement. */
static mg_jwt_reason_t
jws_example(const char *jwk, const char *tok, char **payload)
{
    const char *list[] = {jwk, NULL};
    mg_jwks_t *ks = jwks_of(list, NULL, 0);
    mg_jwt_issuer_t *is = mg_jwt_issuer_new("example");
    uint8_t *p = NULL;
    size_t plen = 0;
    mg_jwt_reason_t r;

    mg_jwt_issuer_set_require_typ(is, false);
    mg_jwt_issuer_set_keys(is, ks);
    r = mg_jws_verify(tok, strlen(tok), is, &p, &plen);
    if (payload)
        *payload = (char *)p;
    else
        free(p);
    mg_jwt_issuer_free(is);
    mg_jwks_unref(ks);
    return r;
}

/* RFC 7515 appendix A.2 (RS256) and A.3 (ES256), RFC 8037 appendix A.4
 * (Ed25519): the keys and JWS texts of the RFCs. The claims set is the one of
 * RFC 7515 A.1 ({"iss":"joe", ... "http://example.com/is_root":true}). */
static const char rfc7515_a2_jwk[] =
    "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb"
    "_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5Z"
    "wKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"}";
static const char rfc7515_a2_jws[] =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujG"
    "bds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6"
    "LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
static const char rfc7515_a3_jwk[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
static const char rfc7515_a3_jws[] =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
static const char rfc8037_a4_jwk[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char rfc8037_a4_jws[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

static void
test_rfc7515_a2_rs256(void)
{
    char *p = NULL;
    MG_CHECK_STR(mg_jwt_reason_code(jws_example(rfc7515_a2_jwk, rfc7515_a2_jws, &p)), "ok");
    MG_CHECK(p && strncmp(p, "{\"iss\":\"joe\",\r\n \"exp\":1300819380,", 33) == 0);
    free(p);
    /* One flipped signature bit. */
    char *bad = strdup(rfc7515_a2_jws);
    bad[strlen(bad) - 5] ^= 1;
    MG_CHECK_STR(mg_jwt_reason_code(jws_example(rfc7515_a2_jwk, bad, NULL)), "bad_signature");
    free(bad);
}

static void
test_rfc7515_a3_es256(void)
{
    MG_CHECK_STR(mg_jwt_reason_code(jws_example(rfc7515_a3_jwk, rfc7515_a3_jws, NULL)), "ok");
    /* The same key cannot verify it as ES384 (curve mismatch). */
    char *hdr384 = strdup(rfc7515_a3_jws);
    memcpy(hdr384, "eyJhbGciOiJFUzM4NCJ9", 20); /* {"alg":"ES384"} */
    MG_CHECK_STR(mg_jwt_reason_code(jws_example(rfc7515_a3_jwk, hdr384, NULL)), "key_not_found");
    free(hdr384);
}

static void
test_rfc8037_a4_ed25519(void)
{
    char *p = NULL;
    MG_CHECK_STR(mg_jwt_reason_code(jws_example(rfc8037_a4_jwk, rfc8037_a4_jws, &p)), "ok");
    MG_CHECK_STR(p, "Example of Ed25519 signing");
    free(p);
}

/* --- JWK import ---------------------------------------------------------------- */

static void
test_jwks_import(void)
{
    char err[256];
    mg_jwks_t *ks;

    /* Not a JWKS at all. */
    MG_CHECK(mg_jwks_parse("[]", 2, err, sizeof(err)) == NULL);
    MG_CHECK(mg_jwks_parse("{\"keys\":{}}", 11, err, sizeof(err)) == NULL);
    MG_CHECK(mg_jwks_parse("{\"keys\":[],\"keys\":[]}", 21, err, sizeof(err)) == NULL);
    MG_CHECK(mg_jwks_parse("{\"keys\":[]", 10, err, sizeof(err)) == NULL);
    /* Empty set: valid, no key. */
    ks = mg_jwks_parse("{\"keys\":[]}", 11, err, sizeof(err));
    MG_CHECK(ks && mg_jwks_count(ks) == 0 && err[0] == '\0');
    mg_jwks_unref(ks);

    const char *list[] = {rsa.jwk, ec.jwk, ed.jwk,
                          "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}",
                          "{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"}", NULL};
    ks = jwks_of(list, err, sizeof(err));
    MG_CHECK(ks != NULL);
    MG_CHECK_INT(mg_jwks_count(ks), 3);
    MG_CHECK_INT(mg_jwks_ignored(ks), 2);
    MG_CHECK(strstr(err, "private") != NULL);
    MG_CHECK_STR(mg_jwk_kid(mg_jwks_get(ks, 0)), "rsa-1");
    MG_CHECK(mg_jwk_usable_for(mg_jwks_get(ks, 0), MG_JWS_RS256));
    MG_CHECK(mg_jwk_usable_for(mg_jwks_get(ks, 0), MG_JWS_PS512));
    MG_CHECK(!mg_jwk_usable_for(mg_jwks_get(ks, 0), MG_JWS_ES256));
    MG_CHECK(mg_jwk_usable_for(mg_jwks_get(ks, 1), MG_JWS_ES256));
    MG_CHECK(!mg_jwk_usable_for(mg_jwks_get(ks, 1), MG_JWS_ES384));
    MG_CHECK(mg_jwk_usable_for(mg_jwks_get(ks, 2), MG_JWS_EDDSA));
    /* Generations are unique per set and references are counted. */
    mg_jwks_t *ks2 = jwks_of(list, NULL, 0);
    MG_CHECK(mg_jwks_generation(ks2) != mg_jwks_generation(ks));
    MG_CHECK(mg_jwks_ref(ks2) == ks2);
    mg_jwks_unref(ks2);
    MG_CHECK_INT(mg_jwks_count(ks2), 3);
    mg_jwks_unref(ks2);
    mg_jwks_unref(ks);

    /* RSA exponent rules. */
    const char *e1 = "{\"kty\":\"RSA\",\"e\":\"AQ\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
                     "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb"
                     "_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5Z"
                     "wKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"}";
    const char *l1[] = {e1, NULL};
    ks = jwks_of(l1, err, sizeof(err));
    MG_CHECK(ks && mg_jwks_count(ks) == 0 && strstr(err, "exponent"));
    mg_jwks_unref(ks);
    /* use=enc, key_ops without verify. */
    const char *l2[] = {"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"enc\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"key_ops\":[\"sign\"],\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"key_ops\":[\"verify\"],\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\"}",
                        "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                        NULL};
    ks = jwks_of(l2, err, sizeof(err));
    MG_CHECK(ks && mg_jwks_count(ks) == 1 && mg_jwks_ignored(ks) == 4);
    mg_jwks_unref(ks);
    /* A file that does not exist. */
    MG_CHECK(mg_jwks_load_file("/nonexistent/jwks.json", err, sizeof(err)) == NULL && err[0]);
}

/* --- issuer policy ------------------------------------------------------------ */

static void
test_issuer_policy(void)
{
    mg_jwt_issuer_t *is = mg_jwt_issuer_new("https://x");

    MG_CHECK(mg_jwt_issuer_set_algs(is, "RS256 none") != NULL);
    MG_CHECK(mg_jwt_issuer_set_algs(is, "HS256") != NULL);
    MG_CHECK(mg_jwt_issuer_set_algs(is, "hs512") != NULL);
    MG_CHECK(mg_jwt_issuer_set_algs(is, "RS257") != NULL);
    MG_CHECK(mg_jwt_issuer_set_algs(is, "") != NULL);
    MG_CHECK(mg_jwt_issuer_set_algs(is, "RS256, ES256 EdDSA") == NULL);
    MG_CHECK_STR(mg_jwt_issuer_name(is), "https://x");
    MG_CHECK_INT(mg_jwt_issuer_leeway(is), 60);
    MG_CHECK(mg_jwt_issuer_keys(is) == NULL);
    MG_CHECK_INT(mg_jwt_issuer_keys_generation(is), 0);
    mg_jwt_issuer_free(is);
    mg_jwt_issuer_free(NULL);
    /* Codes and descriptions exist for every reason and leak nothing. */
    for (int r = 0; r < MG_JWT_REASON_COUNT; r++) {
        MG_CHECK(mg_jwt_reason_code((mg_jwt_reason_t)r)[0] != '\0');
        MG_CHECK(mg_jwt_reason_description((mg_jwt_reason_t)r)[0] != '\0');
    }
    MG_CHECK_STR(mg_jwt_reason_code(MG_JWT_EXPIRED), "expired");
    MG_CHECK_STR(mg_jwt_reason_code((mg_jwt_reason_t)999), "internal");
}

/* --- verified claims ------------------------------------------------------------ */

static void
test_claims_ok(void)
{
    const char *aud = T_AUD;
    mg_jwt_claims_t *c = NULL, *d;
    char *p = claims(",\"azp\":\"other\",\"nbf\":1699999990.5");
    char *t = mint(&rsa, MG_JWS_RS256, H_RS, p);

    MG_CHECK_INT(mg_jwt_verify(t, strlen(t), &issuer, 1, &aud, 1, T_NOW, &c), MG_JWT_OK);
    MG_CHECK(c != NULL);
    if (c) {
        MG_CHECK_STR(c->iss, T_ISS);
        MG_CHECK_STR(c->sub, "alice");
        MG_CHECK_STR(c->client_id, "cli"); /* client_id wins over azp */
        MG_CHECK_STR(c->jti, "j-1");
        MG_CHECK_INT(c->exp, T_NOW + 600);
        MG_CHECK(c->has_iat && c->iat == T_NOW - 10);
        MG_CHECK(c->has_nbf && c->nbf == 1699999991); /* real nbf rounds up */
        MG_CHECK_INT(c->n_scopes, 2);
        MG_CHECK(mg_jwt_claims_has_scope(c, "read") && mg_jwt_claims_has_scope(c, "write"));
        MG_CHECK(!mg_jwt_claims_has_scope(c, "rea"));
        MG_CHECK(c->issuer == issuer && c->alg == MG_JWS_RS256);
        d = mg_jwt_claims_dup(c);
        MG_CHECK(d && strcmp(d->sub, "alice") == 0 && d->n_scopes == 2 && d->n_aud == 1);
        mg_jwt_claims_free(d);
    }
    mg_jwt_claims_free(c);
    free(t);
    free(p);

    /* scp array, azp as client id, aud array, real exp. */
    p = malloc(512);
    snprintf(p, 512, "{\"iss\":\"" T_ISS "\",\"sub\":\"bob\",\"aud\":[\"x\",\"" T_AUD "\"],\"exp\":%lld.75,"
               "\"azp\":\"cli2\",\"scp\":[\"a\",\"b c\",\"a\"]}", (long long)T_NOW + 5);
    t = mint(&ec, MG_JWS_ES256, H_ES, p);
    MG_CHECK_INT(mg_jwt_verify(t, strlen(t), &issuer, 1, &aud, 1, T_NOW, &c), MG_JWT_OK);
    if (c) {
        MG_CHECK_STR(c->client_id, "cli2");
        MG_CHECK(c->jti == NULL && !c->has_iat);
        MG_CHECK_INT(c->exp, T_NOW + 5);
        MG_CHECK_INT(c->n_scopes, 3); /* a, b, c */
        MG_CHECK(mg_jwt_claims_has_scope(c, "c"));
        MG_CHECK_INT(c->n_aud, 2);
    }
    mg_jwt_claims_free(c);
    free(t);
    free(p);

    /* EdDSA and a second audience alias. */
    const char *auds[] = {"api://mcp", T_AUD};
    p = claims("");
    t = mint(&ed, MG_JWS_EDDSA, "{\"alg\":\"EdDSA\",\"typ\":\"application/AT+JWT\",\"kid\":\"ed-1\"}", p);
    MG_CHECK_INT(mg_jwt_verify(t, strlen(t), &issuer, 1, auds, 2, T_NOW, NULL), MG_JWT_OK);
    free(t);
    free(p);
}

/* --- the negative-token table ----------------------------------------------------- */

static void
test_neg_alg_none_and_hs256(void)
{
    char *p = claims(""), hdr[64], pl[1024], *t;
    size_t n;

    /* alg none, empty signature. */
    n = mg_b64url_encode((const uint8_t *)"{\"alg\":\"none\",\"typ\":\"at+jwt\"}", 29, hdr);
    MG_CHECK_INT(n, 39);
    mg_b64url_encode((const uint8_t *)p, strlen(p), pl);
    t = malloc(strlen(hdr) + strlen(pl) + 4);
    sprintf(t, "%s.%s.", hdr, pl);
    MG_CHECK_STR(vcode(t), "alg_not_allowed");
    free(t);

    /* HS256 keyed with the RSA public key (the classic confusion attack). */
    const char *h = "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\"}";
    char input[2048], mac_b64[64];
    unsigned char mac[32];
    unsigned int maclen = 0;
    mg_b64url_encode((const uint8_t *)h, strlen(h), hdr);
    snprintf(input, sizeof(input), "%s.%s", hdr, pl);
    HMAC(EVP_sha256(), rsa.jwk, (int)strlen(rsa.jwk), (const uint8_t *)input, strlen(input), mac,
         &maclen);
    mg_b64url_encode(mac, maclen, mac_b64);
    t = malloc(strlen(input) + sizeof(mac_b64) + 2);
    snprintf(t, strlen(input) + sizeof(mac_b64) + 2, "%s.%s", input, mac_b64);
    MG_CHECK_STR(vcode(t), "alg_not_allowed");
    free(t);
    /* Unknown alg and alg of the wrong type. */
    ROW_RAW("{\"alg\":\"RS257\",\"typ\":\"at+jwt\"}", p, "alg_not_allowed");
    ROW_RAW("{\"alg\":256,\"typ\":\"at+jwt\"}", p, "alg_not_allowed");
    ROW_RAW("{\"typ\":\"at+jwt\"}", p, "alg_not_allowed");
    free(p);
}

static void
test_neg_ecdsa_signature_forms(void)
{
    char *p = claims("");
    char *t = mint(&ec, MG_JWS_ES256, H_ES, p), *u;
    uint8_t sig[600], buf[600];
    size_t n = get_sig(t, sig);

    MG_CHECK_INT(n, 64);
    MG_CHECK_STR(vcode(t), "ok");
    /* Wrong length: one byte short, one byte long. */
    u = with_sig(t, sig, 63);
    MG_CHECK_STR(vcode(u), "bad_signature");
    free(u);
    memcpy(buf, sig, 64);
    buf[64] = 0;
    u = with_sig(t, buf, 65);
    MG_CHECK_STR(vcode(u), "bad_signature");
    free(u);
    /* The same signature DER-encoded (what OpenSSL produces natively). */
    {
        ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *der = NULL;
        int derlen;
        ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
        derlen = i2d_ECDSA_SIG(es, &der);
        u = with_sig(t, der, (size_t)derlen);
        MG_CHECK_STR(vcode(u), "bad_signature");
        free(u);
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
    }
    /* r = 0, s = 0, r = n. */
    memcpy(buf, sig, 64);
    memset(buf, 0, 32);
    u = with_sig(t, buf, 64);
    MG_CHECK_STR(vcode(u), "bad_signature");
    free(u);
    memcpy(buf, sig, 64);
    memset(buf + 32, 0, 32);
    u = with_sig(t, buf, 64);
    MG_CHECK_STR(vcode(u), "bad_signature");
    free(u);
    {
        static const uint8_t n256[32] = {
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
        memcpy(buf, n256, 32);
        memcpy(buf + 32, sig + 32, 32);
        u = with_sig(t, buf, 64);
        MG_CHECK_STR(vcode(u), "bad_signature");
        free(u);
    }
    free(t);
    free(p);
}

static void
test_neg_pss_salt(void)
{
    char *p = claims("");
    const char *h = "{\"alg\":\"PS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\"}";
    char *t = mg_jws_sign(rsa.pkey, MG_JWS_PS256, h, strlen(h), p, strlen(p), -1);
    MG_CHECK_STR(vcode(t), "ok");
    free(t);
    /* Salt 20 (SHA-1 habits) and 0 instead of 32. */
    t = mg_jws_sign(rsa.pkey, MG_JWS_PS256, h, strlen(h), p, strlen(p), 20);
    MG_CHECK_STR(vcode(t), "bad_signature");
    free(t);
    t = mg_jws_sign(rsa.pkey, MG_JWS_PS256, h, strlen(h), p, strlen(p), 0);
    MG_CHECK_STR(vcode(t), "bad_signature");
    free(t);
    /* An RS256 signature presented as PS256 and the other way round. */
    t = mint(&rsa, MG_JWS_RS256, h, p);
    MG_CHECK_STR(vcode(t), "bad_signature");
    free(t);
    free(p);
}

static void
test_neg_encoding(void)
{
    char *p = claims("");
    char *t = mint(&rsa, MG_JWS_RS256, H_RS, p), *u;
    size_t len = strlen(t);
    char *dot1 = strchr(t, '.');

    MG_CHECK_STR(vcode(t), "ok");
    u = malloc(len + 8);
    /* '=' padding on the signature, then on the header. */
    sprintf(u, "%s==", t);
    MG_CHECK_STR(vcode(u), "bad_encoding");
    sprintf(u, "%.*s=%s", (int)(dot1 - t), t, dot1);
    MG_CHECK_STR(vcode(u), "bad_encoding");
    /* '+' and '/' (base64, not base64url). */
    strcpy(u, t);
    u[len - 3] = '+';
    MG_CHECK_STR(vcode(u), "bad_encoding");
    u[len - 3] = '/';
    MG_CHECK_STR(vcode(u), "bad_encoding");
    /* Whitespace: inside the payload, and a trailing newline. */
    sprintf(u, "%.*s %s", (int)(dot1 - t) + 5, t, dot1 + 5);
    MG_CHECK_STR(vcode(u), "bad_encoding");
    sprintf(u, "%s\n", t);
    MG_CHECK_STR(vcode(u), "bad_encoding");
    /* Non-zero trailing bits: the RS256 signature is 256 bytes, so its last
     * character carries 4 unused bits; set one. */
    {
        static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        strcpy(u, t);
        int v = (int)(strchr(alpha, u[len - 1]) - alpha);
        MG_CHECK((v & 15) == 0);
        u[len - 1] = alpha[v | 1];
        MG_CHECK_STR(vcode(u), "bad_encoding");
    }
    /* Segment counts. */
    MG_CHECK_STR(vcode("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"), "jwe_unsupported");
    MG_CHECK_STR(vcode("a.b"), "malformed");
    MG_CHECK_STR(vcode("a.b.c.d"), "malformed");
    MG_CHECK_STR(vcode("a.b.c.d.e.f"), "malformed");
    MG_CHECK_STR(vcode(""), "malformed");
    free(u);
    free(t);
    free(p);
}

static void
test_neg_json(void)
{
    char deep[256], *t;
    const char *std = "{\"iss\":\"" T_ISS "\",\"sub\":\"a\",\"aud\":\"" T_AUD "\",\"exp\":1700000600";

    /* Duplicate claim and duplicate header member. */
    snprintf(deep, sizeof(deep), "%s,\"sub\":\"root\"}", std);
    ROW_RAW(H_RS, deep, "bad_json");
    snprintf(deep, sizeof(deep), "%s}", std);
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"kid\":\"x\"}", deep, "bad_json");
    /* NUL: escaped inside a string, and a raw byte after the object. */
    snprintf(deep, sizeof(deep), "%s,\"x\":\"a\\u0000b\"}", std);
    ROW_RAW(H_RS, deep, "bad_json");
    {
        char raw[256];
        size_t n = (size_t)snprintf(raw, sizeof(raw), "%s}", std);
        raw[n++] = '\0';
        t = mg_jws_sign(rsa.pkey, MG_JWS_RS256, H_RS, strlen(H_RS), raw, n, -1);
        MG_CHECK_STR(vcode(t), "bad_json");
        free(t);
    }
    /* Deep nesting (17 levels). */
    snprintf(deep, sizeof(deep), "%s,\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", std);
    ROW_RAW(H_RS, deep, "bad_json");
    /* 15 levels are fine. */
    snprintf(deep, sizeof(deep), "%s,\"x\":[[[[[[[[[[[[[[1]]]]]]]]]]]]]]}", std);
    ROW_RAW(H_RS, deep, "ok");
    /* Not objects. */
    ROW_RAW(H_RS, "[1]", "bad_json");
    ROW_RAW(H_RS, "\"str\"", "bad_json");
    ROW_RAW(H_RS, "{\"iss\":", "bad_json");
    ROW_RAW("[\"RS256\"]", "{}", "bad_json");
    ROW_RAW(H_RS, "", "bad_json");
    /* Bad UTF-8. */
    snprintf(deep, sizeof(deep), "%s,\"x\":\"\xc3\x28\"}", std);
    ROW_RAW(H_RS, deep, "bad_json");
}

static void
test_neg_times(void)
{
    char p[512];
    const char *base = "{\"iss\":\"" T_ISS "\",\"sub\":\"a\",\"aud\":\"" T_AUD "\"";

    snprintf(p, sizeof(p), "%s,\"exp\":\"1700000600\"}", base);
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "%s,\"exp\":1700000600,\"nbf\":\"1699999000\"}", base);
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "%s,\"exp\":1700000600,\"iat\":null}", base);
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "%s}", base);
    ROW_RAW(H_RS, p, "missing_claim"); /* no exp */
    snprintf(p, sizeof(p), "%s,\"exp\":-1}", base);
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "%s,\"exp\":1e12}", base);
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "%s,\"exp\":true}", base);
    ROW_RAW(H_RS, p, "invalid_claim");
    /* Expired: beyond the 60 s leeway; within it still accepted. */
    snprintf(p, sizeof(p), "%s,\"exp\":%lld}", base, (long long)T_NOW - 61);
    ROW_RAW(H_RS, p, "expired");
    snprintf(p, sizeof(p), "%s,\"exp\":%lld}", base, (long long)T_NOW - 59);
    ROW_RAW(H_RS, p, "ok");
    snprintf(p, sizeof(p), "%s,\"exp\":%lld}", base, (long long)T_NOW - 60);
    ROW_RAW(H_RS, p, "expired");
    /* Not yet valid, iat in the future. */
    snprintf(p, sizeof(p), "%s,\"exp\":%lld,\"nbf\":%lld}", base, (long long)T_NOW + 600,
             (long long)T_NOW + 120);
    ROW_RAW(H_RS, p, "not_yet_valid");
    snprintf(p, sizeof(p), "%s,\"exp\":%lld,\"nbf\":%lld}", base, (long long)T_NOW + 600,
             (long long)T_NOW + 30);
    ROW_RAW(H_RS, p, "ok");
    snprintf(p, sizeof(p), "%s,\"exp\":%lld,\"iat\":%lld}", base, (long long)T_NOW + 600,
             (long long)T_NOW + 120);
    ROW_RAW(H_RS, p, "iat_in_future");
    /* Maximum lifetime. */
    mg_jwt_issuer_set_max_lifetime(issuer, 300);
    snprintf(p, sizeof(p), "%s,\"exp\":%lld,\"iat\":%lld}", base, (long long)T_NOW + 600,
             (long long)T_NOW - 10);
    ROW_RAW(H_RS, p, "lifetime_too_long");
    snprintf(p, sizeof(p), "%s,\"exp\":%lld}", base, (long long)T_NOW + 100);
    ROW_RAW(H_RS, p, "missing_claim"); /* no iat to measure the lifetime */
    snprintf(p, sizeof(p), "%s,\"exp\":%lld,\"iat\":%lld}", base, (long long)T_NOW + 200,
             (long long)T_NOW - 10);
    ROW_RAW(H_RS, p, "ok");
    mg_jwt_issuer_set_max_lifetime(issuer, 0);
}

static void
test_neg_iss_aud_sub(void)
{
    char p[512];
    const char *rest = "\"sub\":\"a\",\"exp\":1700000600";

    snprintf(p, sizeof(p), "{\"iss\":\"https://as.example\",\"aud\":\"" T_AUD "\",%s}", rest);
    ROW_RAW(H_RS, p, "iss_mismatch"); /* prefix */
    snprintf(p, sizeof(p), "{\"iss\":\"https://as.example.com/\",\"aud\":\"" T_AUD "\",%s}", rest);
    ROW_RAW(H_RS, p, "iss_mismatch"); /* trailing slash */
    snprintf(p, sizeof(p), "{\"iss\":\"HTTPS://AS.EXAMPLE.COM\",\"aud\":\"" T_AUD "\",%s}", rest);
    ROW_RAW(H_RS, p, "iss_mismatch"); /* case */
    snprintf(p, sizeof(p), "{\"aud\":\"" T_AUD "\",%s}", rest);
    ROW_RAW(H_RS, p, "iss_mismatch"); /* absent */
    snprintf(p, sizeof(p), "{\"iss\":[\"" T_ISS "\"],\"aud\":\"" T_AUD "\",%s}", rest);
    ROW_RAW(H_RS, p, "iss_mismatch"); /* not a string */
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"https://mcp.example.com\",%s}", rest);
    ROW_RAW(H_RS, p, "aud_mismatch"); /* prefix */
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "/\",%s}", rest);
    ROW_RAW(H_RS, p, "aud_mismatch");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":[\"a\",\"b\"],%s}", rest);
    ROW_RAW(H_RS, p, "aud_mismatch");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":[],%s}", rest);
    ROW_RAW(H_RS, p, "aud_mismatch");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":[\"a\",\"" T_AUD "\"],%s}", rest);
    ROW_RAW(H_RS, p, "ok");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":[\"" T_AUD "\",7],%s}", rest);
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",%s}", rest);
    ROW_RAW(H_RS, p, "missing_claim");
    /* sub missing, sub not a string. */
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "\",\"exp\":1700000600}");
    ROW_RAW(H_RS, p, "missing_claim");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "\",\"exp\":1700000600,\"sub\":42}");
    ROW_RAW(H_RS, p, "invalid_claim");
    /* Optional claims of the wrong type. */
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "\",\"exp\":1700000600,\"sub\":\"a\",\"jti\":5}");
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "\",\"exp\":1700000600,\"sub\":\"a\",\"azp\":{}}");
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "\",\"exp\":1700000600,\"sub\":\"a\",\"client_id\":[]}");
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "\",\"exp\":1700000600,\"sub\":\"a\",\"scope\":[\"a\"]}");
    ROW_RAW(H_RS, p, "invalid_claim");
    snprintf(p, sizeof(p), "{\"iss\":\"" T_ISS "\",\"aud\":\"" T_AUD "\",\"exp\":1700000600,\"sub\":\"a\",\"scp\":[1]}");
    ROW_RAW(H_RS, p, "invalid_claim");
    /* cnf: sender-constrained. */
    ROW_RS(",\"cnf\":{\"jkt\":\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"}", "cnf_unsupported");
}

static void
test_neg_header(void)
{
    char *p = claims("");

    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"crit\":[\"exp\"],\"exp\":1}", p,
            "crit_unsupported");
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"crit\":[]}", p, "crit_unsupported");
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"b64\":false}", p, "b64_unsupported");
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"b64\":true}", p, "b64_unsupported");
    /* typ. */
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}", p, "bad_typ");
    ROW_RAW("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", p, "bad_typ");
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt \",\"kid\":\"rsa-1\"}", p, "bad_typ");
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"AT+JWT\",\"kid\":\"rsa-1\"}", p, "ok");
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"application/at+jwt\",\"kid\":\"rsa-1\"}", p, "ok");
    /* Keycloak mode: require_typ off accepts typ JWT. */
    mg_jwt_issuer_set_require_typ(issuer, false);
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}", p, "ok");
    mg_jwt_issuer_set_require_typ(issuer, true);
    /* kid of the wrong type. */
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":1}", p, "malformed");
    /* Algorithm not in this issuer's list. */
    mg_jwt_issuer_set_algs(issuer, "ES256");
    ROW_RAW(H_RS, p, "alg_not_allowed");
    mg_jwt_issuer_set_alg_mask(issuer, MG_JWS_ALGS_ALL);
    ROW_RAW(H_RS, p, "ok");
    free(p);
}

static void
test_neg_embedded_keys_ignored(void)
{
    char *p = claims(""), hdr[2048];

    /* Signed by the attacker, who names the real kid and embeds their own
     * key (jwk), a key URL (jku, x5u) and a certificate (x5c). */
    snprintf(hdr, sizeof(hdr),
             "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"jwk\":%s,"
             "\"jku\":\"https://evil.example/jwks\",\"x5u\":\"https://evil.example/c.pem\","
             "\"x5c\":[\"MIIB\"]}", attacker.jwk);
    char *t = mint(&attacker, MG_JWS_RS256, hdr, p);
    MG_CHECK_STR(vcode(t), "bad_signature");
    free(t);
    /* With the attacker's own kid: no such key in the issuer's set. */
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"evil\",\"jwk\":%s}",
             attacker.jwk);
    t = mint(&attacker, MG_JWS_RS256, hdr, p);
    MG_CHECK_STR(vcode(t), "key_not_found");
    free(t);
    /* A genuine token merely carrying jku is fine: the member is ignored. */
    ROW_RAW("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\",\"jku\":\"https://evil.example/\"}", p,
            "ok");
    free(p);
}

/* A one-off issuer with the given JWK texts. */
static const char *
vcode_keys(const char *const *jwks, const tkey_t *signer, mg_jws_alg_t alg, const char *hdr,
           size_t *count)
{
    mg_jwks_t *ks = jwks_of(jwks, NULL, 0);
    mg_jwt_issuer_t *is = mg_jwt_issuer_new(T_ISS);
    char *p = claims(""), *t = mint(signer, alg, hdr, p);
    const char *code;

    mg_jwt_issuer_set_keys(is, ks);
    if (count)
        *count = mg_jwks_count(ks);
    code = mg_jwt_reason_code(verify_with(is, t));
    mg_jwks_unref(ks);
    mg_jwt_issuer_free(is);
    free(t);
    free(p);
    return code;
}

/* <jwk> with extra members spliced in after the opening brace. */
static char *
jwk_plus(const char *jwk, const char *members)
{
    char *s = malloc(strlen(jwk) + strlen(members) + 2);
    sprintf(s, "{%s,%s", members, jwk + 1);
    return s;
}

static void
test_neg_keys(void)
{
    size_t n = 99;
    const char *hdr_nokid = "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}";

    /* Unknown kid. */
    {
        char *p = claims("");
        char *t = mint(&rsa, MG_JWS_RS256, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"nope\"}", p);
        MG_CHECK_STR(vcode(t), "key_not_found");
        free(t);
        free(p);
    }
    /* No kid: one candidate is tried, two are ambiguous. */
    const char *one[] = {rsa.jwk, ec.jwk, NULL};
    MG_CHECK_STR(vcode_keys(one, &rsa, MG_JWS_RS256, hdr_nokid, NULL), "ok");
    const char *two[] = {rsa.jwk, rsa_b.jwk, NULL};
    MG_CHECK_STR(vcode_keys(two, &rsa, MG_JWS_RS256, hdr_nokid, NULL), "key_ambiguous");
    /* Duplicate kid with two usable keys. */
    char *rsa_nokid = strdup(rsa_b.jwk);
    {
        /* rsa_b's JWK already has kid "rsa-2"; build a duplicate by renaming. */
        char *k = strstr(rsa_nokid, "\"rsa-2\"");
        memcpy(k, "\"rsa-1\"", 7);
    }
    const char *dupl[] = {rsa.jwk, rsa_nokid, NULL};
    MG_CHECK_STR(vcode_keys(dupl, &rsa, MG_JWS_RS256, H_RS, NULL), "key_ambiguous");
    free(rsa_nokid);
    /* JWK with use=enc: never imported. */
    char *enc = strdup(rsa.jwk);
    memcpy(strstr(enc, "\"use\":\"sig\""), "\"use\":\"enc\"", 11);
    const char *encl[] = {enc, NULL};
    MG_CHECK_STR(vcode_keys(encl, &rsa, MG_JWS_RS256, H_RS, &n), "key_not_found");
    MG_CHECK_INT(n, 0);
    free(enc);
    /* JWK alg (PS256) differs from the token's (RS256). */
    tkey_t ps;
    ps.pkey = rsa.pkey;
    ps.jwk = mg_jwk_public_json(rsa.pkey, "rsa-1", MG_JWS_PS256);
    const char *psl[] = {ps.jwk, NULL};
    MG_CHECK_STR(vcode_keys(psl, &rsa, MG_JWS_RS256, H_RS, &n), "key_alg_mismatch");
    MG_CHECK_INT(n, 1);
    MG_CHECK_STR(vcode_keys(psl, &rsa, MG_JWS_PS256,
                            "{\"alg\":\"PS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\"}", NULL),
                 "ok");
    free(ps.jwk);
    /* Key type mismatch: ES256 token naming an RSA key's kid. */
    {
        char *p = claims("");
        char *t = mint(&ec, MG_JWS_ES256, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\"}", p);
        MG_CHECK_STR(vcode(t), "key_alg_mismatch");
        free(t);
        free(p);
    }
    /* A private JWK (has "d") is ignored. */
    char *priv = jwk_plus(ec.jwk, "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"");
    const char *privl[] = {priv, NULL};
    MG_CHECK_STR(vcode_keys(privl, &ec, MG_JWS_ES256, H_ES, &n), "key_not_found");
    MG_CHECK_INT(n, 0);
    free(priv);
    /* RSA 1024-bit key: refused at import. */
    const char *smalll[] = {rsa1024.jwk, NULL};
    MG_CHECK_STR(vcode_keys(smalll, &rsa1024, MG_JWS_RS256,
                            "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1024\"}", &n),
                 "key_not_found");
    MG_CHECK_INT(n, 0);
    /* EC point not on the curve: y changed. */
    char *offc = strdup(ec.jwk);
    char *y = strstr(offc, "\"y\":\"") + 5;
    y[3] = y[3] == 'A' ? 'B' : 'A';
    const char *offl[] = {offc, NULL};
    MG_CHECK_STR(vcode_keys(offl, &ec, MG_JWS_ES256, H_ES, &n), "key_not_found");
    MG_CHECK_INT(n, 0);
    free(offc);
}

static void
test_neg_size(void)
{
    char *big = malloc(9000), *p, *t;

    memset(big, 'a', 8999);
    big[8999] = 0;
    p = malloc(9100);
    sprintf(p, ",\"pad\":\"%s\"", big);
    t = NULL;
    {
        char *c = claims(p);
        t = mint(&rsa, MG_JWS_RS256, H_RS, c);
        free(c);
    }
    MG_CHECK(strlen(t) > 8192);
    MG_CHECK_STR(vcode(t), "too_large");
    free(t);
    /* A smaller configured limit. */
    mg_jwt_issuer_set_max_token_size(issuer, 200);
    {
        char *c = claims("");
        t = mint(&rsa, MG_JWS_RS256, H_RS, c);
        MG_CHECK_STR(vcode(t), "too_large");
        free(t);
        free(c);
    }
    mg_jwt_issuer_set_max_token_size(issuer, MG_JWT_DEFAULT_MAX_TOKEN_SIZE);
    free(p);
    free(big);
}

/* Several issuers on one route: the unverified iss picks one, and only its
 * keys are tried. */
static void
test_multi_issuer(void)
{
    const char *la[] = {rsa.jwk, NULL}, *lb[] = {rsa_b.jwk, NULL};
    mg_jwks_t *ka = jwks_of(la, NULL, 0), *kb = jwks_of(lb, NULL, 0);
    mg_jwt_issuer_t *a = mg_jwt_issuer_new("https://a.example"), *b = mg_jwt_issuer_new("https://b.example");
    mg_jwt_issuer_t *both[] = {a, b};
    const char *aud = T_AUD;
    mg_jwt_claims_t *c = NULL;
    char p[512], *t;

    mg_jwt_issuer_set_keys(a, ka);
    mg_jwt_issuer_set_keys(b, kb);
    /* iss = b, signed with b's key. */
    snprintf(p, sizeof(p), "{\"iss\":\"https://b.example\",\"sub\":\"s\",\"aud\":\"" T_AUD "\",\"exp\":%lld}",
             (long long)T_NOW + 60);
    t = mint(&rsa_b, MG_JWS_RS256, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-2\"}", p);
    MG_CHECK_INT(mg_jwt_verify(t, strlen(t), both, 2, &aud, 1, T_NOW, &c), MG_JWT_OK);
    MG_CHECK(c && c->issuer == b);
    mg_jwt_claims_free(c);
    free(t);
    /* iss = a, but signed with b's key and kid: a's set has no such key. */
    snprintf(p, sizeof(p), "{\"iss\":\"https://a.example\",\"sub\":\"s\",\"aud\":\"" T_AUD "\",\"exp\":%lld}",
             (long long)T_NOW + 60);
    t = mint(&rsa_b, MG_JWS_RS256, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-2\"}", p);
    MG_CHECK_INT(mg_jwt_verify(t, strlen(t), both, 2, &aud, 1, T_NOW, &c), MG_JWT_KEY_NOT_FOUND);
    MG_CHECK(c == NULL);
    free(t);
    /* No kid: a's single key is the only candidate and the signature fails. */
    t = mint(&rsa_b, MG_JWS_RS256, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", p);
    MG_CHECK_INT(mg_jwt_verify(t, strlen(t), both, 2, &aud, 1, T_NOW, &c), MG_JWT_BAD_SIGNATURE);
    free(t);
    /* Key rotation: install b's key into a, the old set is released. */
    mg_jwt_issuer_set_keys(a, kb);
    t = mint(&rsa_b, MG_JWS_RS256, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-2\"}", p);
    MG_CHECK_INT(mg_jwt_verify(t, strlen(t), both, 2, &aud, 1, T_NOW, NULL), MG_JWT_OK);
    free(t);
    mg_jwt_issuer_set_keys(a, NULL);
    MG_CHECK_INT(mg_jwt_issuer_keys_generation(a), 0);
    mg_jwks_unref(ka);
    mg_jwks_unref(kb);
    mg_jwt_issuer_free(a);
    mg_jwt_issuer_free(b);
}

/* --- the token JSON reader against jansson ----------------------------------
 * The header and claims set are read by a small in-place reader (src/jose/jwt.c)
 * that must accept exactly what json_loadb(JSON_REJECT_DUPLICATES) accepted,
 * with the NUL and depth rules on top, and must unescape strings alike. Every
 * text below, and many random mutations of them, go through both. */

static bool
ref_depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > 16)
                return false;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return true;
}

/* jansson's verdict (the reader used before): 1 accepted, with *iss the
 * unescaped iss string (or NULL); 0 refused. */
static int
ref_parse(const char *s, size_t len, char **iss)
{
    json_error_t jerr;
    json_t *v;
    int ok;

    *iss = NULL;
    if (len == 0 || memchr(s, 0, len) != NULL || !ref_depth_ok(s, len))
        return 0;
    v = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    ok = v != NULL && json_is_object(v);
    if (ok && json_is_string(json_object_get(v, "iss")))
        *iss = strdup(json_string_value(json_object_get(v, "iss")));
    json_decref(v);
    return ok;
}

/* Ours, through mg_jwt_peek_header (header {"alg":"RS256"}, payload <s>). */
static int
our_parse(const char *s, size_t len, char **iss)
{
    static const char hdr[] = "eyJhbGciOiJSUzI1NiJ9"; /* {"alg":"RS256"} */
    char *tok = malloc(sizeof(hdr) + MG_B64URL_ENCODED_LEN(len) + 8), *kid = NULL;
    size_t n = sizeof(hdr) - 1;
    mg_jwt_reason_t r;

    memcpy(tok, hdr, n);
    tok[n++] = '.';
    n += mg_b64url_encode((const uint8_t *)s, len, tok + n);
    memcpy(tok + n, ".AA", 4);
    n += 3;
    r = mg_jwt_peek_header(tok, n, &kid, iss);
    free(tok);
    free(kid);
    if (r == MG_JWT_BAD_JSON)
        return 0;
    return r == MG_JWT_OK || r == MG_JWT_ISS_MISMATCH ? 1 : -1;
}

static int json_diff_fail;

static void
json_diff_one(const char *s, size_t len)
{
    char *a = NULL, *b = NULL;
    int ra = ref_parse(s, len, &a), rb = our_parse(s, len, &b);

    if (ra != rb || (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        if (json_diff_fail++ < 10) {
            printf("# JSON reader differs from jansson (jansson %d, ours %d) on: ", ra, rb);
            for (size_t i = 0; i < len && i < 200; i++)
                printf(s[i] >= 0x20 && s[i] < 0x7f ? "%c" : "\\x%02x", (unsigned char)s[i]);
            printf("\n");
        }
    }
    free(a);
    free(b);
}

static void
test_json_reader_matches_jansson(void)
{
    static const char *const seeds[] = {
        "{}", " {} ", "{\"iss\":\"x\"}", "\t{\"iss\" : \"x\" }\r\n", "[]", "\"x\"", "1", "null",
        "{\"iss\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\"}",
        "{\"iss\":\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"}",
        "{\"iss\":\"\\u0000\"}", "{\"iss\":\"\\ud800\"}", "{\"iss\":\"\\udc00\"}",
        "{\"iss\":\"\\ud800\\u0041\"}", "{\"iss\":\"\\ud800x\"}", "{\"iss\":\"\\uZZZZ\"}",
        "{\"iss\":\"\\x\"}", "{\"iss\":\"a\x01\"}", "{\"iss\":\"a\x7f\"}",
        "{\"iss\":\"\xc3\xa9\"}", "{\"iss\":\"\xc0\x80\"}", "{\"iss\":\"\xed\xa0\x80\"}",
        "{\"iss\":\"\xf4\x90\x80\x80\"}", "{\"iss\":\"\xf0\x9f\x98\x80\"}", "{\"iss\":\"\xe0\x80\xaf\"}",
        "{\"iss\":\"\xff\"}", "{\"iss\":\"\x80\"}", "{\"iss\":\"\xc3\"}",
        "{\"i\\u0073s\":\"esc\"}", "{\"iss\":\"a\",\"i\\u0073s\":\"b\"}", "{\"iss\":\"a\",\"iss\":\"a\"}",
        "{\"a\":{\"b\":1,\"b\":2}}", "{\"a\":[{\"b\":1},{\"b\":2}]}", "{\"\":1,\"\":2}",
        "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
        "\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17,\"r\":18,\"a\":19}",
        "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
        "\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17,\"r\":18,\"s\":19}",
        "{\"n\":0}", "{\"n\":-0}", "{\"n\":01}", "{\"n\":-}", "{\"n\":1.}", "{\"n\":.5}",
        "{\"n\":1e5}", "{\"n\":1E+5}", "{\"n\":1e-5}", "{\"n\":1e}", "{\"n\":+1}", "{\"n\":1.5e3}",
        "{\"n\":9223372036854775807}", "{\"n\":9223372036854775808}",
        "{\"n\":-9223372036854775808}", "{\"n\":-9223372036854775809}", "{\"n\":1e308}",
        "{\"n\":1e309}", "{\"n\":-1e309}", "{\"n\":1e-400}", "{\"n\":0x10}", "{\"n\":Infinity}",
        "{\"n\":NaN}", "{\"n\":1 2}", "{\"t\":true,\"f\":false,\"z\":null}", "{\"t\":tru}",
        "{\"t\":True}", "{\"t\":nul}", "{\"a\":[1,2,]}", "{\"a\":[,1]}", "{\"a\":1,}", "{,\"a\":1}",
        "{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}", "{\"a\":1}}", "{\"a\":1}x", "{\"a\":1} {}",
        "\xef\xbb\xbf{}", "{\"a\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}",
        "{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[\"}",
        "{\"a\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[\"}", "{\"a\":[\"x\",{\"y\":[null,true]}],\"b\":{}}",
        "{\"iss\":\"https://as.example.com\",\"aud\":[\"a\",\"b\"],\"scp\":[\"x y\",\"z\"],"
        "\"exp\":1700000600.5,\"nbf\":1.7e9,\"cnf\":{\"jkt\":\"x\"}}",
        "{\"a\":\"\xe2\x82\"}", "{\"a\":\"\t\"}", "{\"a\"\x0b:1}", "{\"a\":1\x0c}",
    };
    static const char alphabet[] = "{}[]\",:\\u0123456789abcdefABCDEFeE+-. tnrfl/\t\n\x80\xc3\xa9\xed\xa0\xf4\x90\xff\x01";
    uint64_t x = 0x9e3779b97f4a7c15u;
    size_t nseeds = sizeof(seeds) / sizeof(seeds[0]);

    json_diff_fail = 0;
    for (size_t i = 0; i < nseeds; i++)
        json_diff_one(seeds[i], strlen(seeds[i]));
    /* Large objects and arrays (sorted duplicate check, heap growth), with and
     * without a duplicate, at the top and nested. */
    for (int dup = 0; dup < 2; dup++) {
        for (int nested = 0; nested < 2; nested++) {
            char big[8192];
            size_t n = 0;
            n += (size_t)sprintf(big + n, "{\"iss\":\"x\",\"aud\":[");
            for (int i = 0; i < 40; i++)
                n += (size_t)sprintf(big + n, "%s\"a%d\"", i ? "," : "", i);
            n += (size_t)sprintf(big + n, "],%s", nested ? "\"o\":{" : "");
            for (int i = 0; i < 200; i++)
                n += (size_t)sprintf(big + n, "%s\"k%d\":%d", i ? "," : "", i, i);
            if (dup)
                n += (size_t)sprintf(big + n, ",\"k%d\":0", 137);
            n += (size_t)sprintf(big + n, "%s}", nested ? "}" : "");
            json_diff_one(big, n);
        }
    }
    /* A long aud array (the match is its last item) and a long scp array go
     * through the heap-grown item list into the claims. */
    {
        char big[4096], *tok;
        size_t n = 0;
        const char *aud = T_AUD;
        mg_jwt_claims_t *c = NULL;
        n += (size_t)sprintf(big + n, "{\"iss\":\"" T_ISS "\",\"sub\":\"s\",\"exp\":%lld,\"aud\":[",
                             (long long)T_NOW + 60);
        for (int i = 0; i < 40; i++)
            n += (size_t)sprintf(big + n, "\"https://other/%d\",", i);
        n += (size_t)sprintf(big + n, "\"" T_AUD "\"],\"scp\":[");
        for (int i = 0; i < 20; i++)
            n += (size_t)sprintf(big + n, "%s\"s\\u0030%d\"", i ? "," : "", i);
        sprintf(big + n, "]}");
        tok = mint(&rsa, MG_JWS_RS256, H_RS, big);
        MG_CHECK_INT(mg_jwt_verify(tok, strlen(tok), &issuer, 1, &aud, 1, T_NOW, &c), MG_JWT_OK);
        if (c) {
            MG_CHECK_INT(c->n_aud, 41);
            MG_CHECK_INT(c->n_scopes, 20);
            MG_CHECK(mg_jwt_claims_has_scope(c, "s019"));
        }
        mg_jwt_claims_free(c);
        free(tok);
    }
    for (int iter = 0; iter < 40000; iter++) {
        char buf[512];
        const char *seed = seeds[iter % nseeds];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + (int)(x % 3);
        for (int e = 0; e < edits; e++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t pos = len ? (size_t)(x >> 8) % len : 0;
            char ch = alphabet[(x >> 32) % (sizeof(alphabet) - 1)];
            switch (x % 3) {
            case 0: /* replace */
                if (len)
                    buf[pos] = ch;
                break;
            case 1: /* insert */
                if (len + 1 < sizeof(buf)) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = ch;
                    len++;
                }
                break;
            default: /* delete */
                if (len) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
            }
        }
        json_diff_one(buf, len);
    }
    MG_CHECK_INT(json_diff_fail, 0);
}

/* --- concurrency ------------------------------------------------------------
 * Four threads verify RS256, PS256, ES256 and EdDSA tokens while a fifth keeps
 * swapping the issuer's key set between fresh parses of the right keys and of
 * other keys under the same kids. Verifiers must only ever see ok or
 * bad_signature; then, with each set held still, every thread must get the
 * right answer (a per-thread prepared context is never used for another key). */

#define MT_VERIFIERS 4
#define MT_ITER 150

static struct {
    mg_jwt_issuer_t *is;
    const char *good_jwks, *other_jwks;
    char *tok[4];
    atomic_int stop, bad, ok_seen, badsig_seen;
    pthread_barrier_t bar;
    mg_jwt_reason_t expect; /* phase 2 and 3 */
} mt;

static mg_jwks_t *
mt_parse(const char *text)
{
    return mg_jwks_parse(text, strlen(text), NULL, 0);
}

static void *
mt_verifier(void *arg)
{
    const char *aud = T_AUD;
    mg_token_cache_t *cache = mg_token_cache_new(16, 60);
    int id = (int)(intptr_t)arg;

    for (int i = 0; i < MT_ITER; i++) {
        for (int t = 0; t < 4; t++) {
            const char *tok = mt.tok[(t + id) % 4];
            mg_jwt_claims_t *c = NULL;
            const mg_jwt_claims_t *cc = NULL;
            mg_jwt_reason_t r = (i & 1) ? mg_jwt_verify(tok, strlen(tok), &mt.is, 1, &aud, 1, T_NOW, &c)
                                        : mg_token_cache_verify(cache, tok, strlen(tok), &mt.is, 1,
                                                                &aud, 1, T_NOW, &cc);
            if (r == MG_JWT_OK)
                atomic_fetch_add(&mt.ok_seen, 1);
            else if (r == MG_JWT_BAD_SIGNATURE)
                atomic_fetch_add(&mt.badsig_seen, 1);
            else
                atomic_fetch_add(&mt.bad, 1);
            mg_jwt_claims_free(c);
        }
    }
    /* Phases with the key set held still: main installs it between barriers. */
    for (int phase = 0; phase < 2; phase++) {
        pthread_barrier_wait(&mt.bar);
        pthread_barrier_wait(&mt.bar);
        for (int t = 0; t < 4; t++) {
            mg_jwt_claims_t *c = NULL;
            if (mg_jwt_verify(mt.tok[t], strlen(mt.tok[t]), &mt.is, 1, &aud, 1, T_NOW, &c) !=
                mt.expect)
                atomic_fetch_add(&mt.bad, 1);
            mg_jwt_claims_free(c);
        }
    }
    mg_token_cache_free(cache);
    return NULL; /* the thread's verification contexts are freed at exit */
}

static void *
mt_swapper(void *arg)
{
    for (int i = 0; !atomic_load(&mt.stop); i++) {
        mg_jwks_t *ks = mt_parse(i & 1 ? mt.other_jwks : mt.good_jwks);
        mg_jwt_issuer_set_keys(mt.is, ks);
        mg_jwks_unref(ks); /* the issuer (and readers) hold the only references */
    }
    return NULL;
}

static char *
mt_jwks_text(const char *const *jwks)
{
    size_t len = 16;
    char *buf;

    for (size_t i = 0; jwks[i]; i++)
        len += strlen(jwks[i]) + 1;
    buf = malloc(len);
    strcpy(buf, "{\"keys\":[");
    for (size_t i = 0; jwks[i]; i++) {
        if (i)
            strcat(buf, ",");
        strcat(buf, jwks[i]);
    }
    strcat(buf, "]}");
    return buf;
}

static void
test_concurrent_verify_and_key_swap(void)
{
    tkey_t g_rsa, g_ec, g_ed, o_rsa, o_ec, o_ed;
    pthread_t th[MT_VERIFIERS], sw;
    char *good, *other, *p;
    mg_jwks_t *ks;

    tkey_make(&g_rsa, "RSA", NULL, 2048, "mt-rsa", MG_JWS_ALG_UNKNOWN);
    tkey_make(&g_ec, "EC", "P-256", 0, "mt-ec", MG_JWS_ES256);
    tkey_make(&g_ed, "ED25519", NULL, 0, "mt-ed", MG_JWS_EDDSA);
    tkey_make(&o_rsa, "RSA", NULL, 2048, "mt-rsa", MG_JWS_ALG_UNKNOWN);
    tkey_make(&o_ec, "EC", "P-256", 0, "mt-ec", MG_JWS_ES256);
    tkey_make(&o_ed, "ED25519", NULL, 0, "mt-ed", MG_JWS_EDDSA);
    const char *gl[] = {g_rsa.jwk, g_ec.jwk, g_ed.jwk, NULL}, *ol[] = {o_rsa.jwk, o_ec.jwk, o_ed.jwk, NULL};
    good = mt_jwks_text(gl);
    other = mt_jwks_text(ol);
    memset(&mt, 0, sizeof(mt));
    mt.good_jwks = good;
    mt.other_jwks = other;
    mt.is = mg_jwt_issuer_new(T_ISS);
    p = claims("");
    mt.tok[0] = mint(&g_rsa, MG_JWS_RS256, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"mt-rsa\"}", p);
    mt.tok[1] = mint(&g_rsa, MG_JWS_PS256, "{\"alg\":\"PS256\",\"typ\":\"at+jwt\",\"kid\":\"mt-rsa\"}", p);
    mt.tok[2] = mint(&g_ec, MG_JWS_ES256, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"mt-ec\"}", p);
    mt.tok[3] = mint(&g_ed, MG_JWS_EDDSA, "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"mt-ed\"}", p);
    free(p);
    ks = mt_parse(good);
    mg_jwt_issuer_set_keys(mt.is, ks);
    mg_jwks_unref(ks);
    pthread_barrier_init(&mt.bar, NULL, MT_VERIFIERS + 1);

    pthread_create(&sw, NULL, mt_swapper, NULL);
    for (int i = 0; i < MT_VERIFIERS; i++)
        pthread_create(&th[i], NULL, mt_verifier, (void *)(intptr_t)i);
    pthread_barrier_wait(&mt.bar); /* churn phase over */
    atomic_store(&mt.stop, 1);
    pthread_join(sw, NULL);
    /* Phase 2: the other keys, held still: every token is a bad signature. */
    ks = mt_parse(other);
    mg_jwt_issuer_set_keys(mt.is, ks);
    mg_jwks_unref(ks);
    mt.expect = MG_JWT_BAD_SIGNATURE;
    pthread_barrier_wait(&mt.bar);
    pthread_barrier_wait(&mt.bar);
    /* Phase 3: the right keys again: every token verifies. */
    ks = mt_parse(good);
    mg_jwt_issuer_set_keys(mt.is, ks);
    mg_jwks_unref(ks);
    mt.expect = MG_JWT_OK;
    pthread_barrier_wait(&mt.bar);
    for (int i = 0; i < MT_VERIFIERS; i++)
        pthread_join(th[i], NULL);

    MG_CHECK_INT(atomic_load(&mt.bad), 0);
    MG_CHECK(atomic_load(&mt.ok_seen) > 0);
    printf("# churn: %d ok, %d bad_signature across key-set swaps\n", atomic_load(&mt.ok_seen),
           atomic_load(&mt.badsig_seen));
    pthread_barrier_destroy(&mt.bar);
    for (int i = 0; i < 4; i++)
        free(mt.tok[i]);
    mg_jwt_issuer_free(mt.is);
    free(good);
    free(other);
    tkey_free(&g_rsa);
    tkey_free(&g_ec);
    tkey_free(&g_ed);
    tkey_free(&o_rsa);
    tkey_free(&o_ec);
    tkey_free(&o_ed);
}

int
main(void)
{
    const char *list[4];
    mg_jwks_t *ks;

    tkey_make(&rsa, "RSA", NULL, 2048, "rsa-1", MG_JWS_ALG_UNKNOWN);
    tkey_make(&rsa_b, "RSA", NULL, 2048, "rsa-2", MG_JWS_ALG_UNKNOWN);
    tkey_make(&attacker, "RSA", NULL, 2048, "evil", MG_JWS_ALG_UNKNOWN);
    tkey_make(&rsa1024, "RSA", NULL, 1024, "rsa-1024", MG_JWS_ALG_UNKNOWN);
    tkey_make(&ec, "EC", "P-256", 0, "ec-1", MG_JWS_ES256);
    tkey_make(&ed, "ED25519", NULL, 0, "ed-1", MG_JWS_EDDSA);
    list[0] = rsa.jwk, list[1] = ec.jwk, list[2] = ed.jwk, list[3] = NULL;
    ks = jwks_of(list, NULL, 0);
    issuer = mg_jwt_issuer_new(T_ISS);
    mg_jwt_issuer_set_keys(issuer, ks);
    mg_jwks_unref(ks);

    MG_RUN(test_b64url);
    MG_RUN(test_rfc7515_a2_rs256);
    MG_RUN(test_rfc7515_a3_es256);
    MG_RUN(test_rfc8037_a4_ed25519);
    MG_RUN(test_jwks_import);
    MG_RUN(test_issuer_policy);
    MG_RUN(test_claims_ok);
    MG_RUN(test_neg_alg_none_and_hs256);
    MG_RUN(test_neg_ecdsa_signature_forms);
    MG_RUN(test_neg_pss_salt);
    MG_RUN(test_neg_encoding);
    MG_RUN(test_neg_json);
    MG_RUN(test_neg_times);
    MG_RUN(test_neg_iss_aud_sub);
    MG_RUN(test_neg_header);
    MG_RUN(test_neg_embedded_keys_ignored);
    MG_RUN(test_neg_keys);
    MG_RUN(test_neg_size);
    MG_RUN(test_multi_issuer);
    MG_RUN(test_json_reader_matches_jansson);
    MG_RUN(test_concurrent_verify_and_key_swap);

    mg_jwt_issuer_free(issuer);
    tkey_free(&rsa);
    tkey_free(&rsa_b);
    tkey_free(&attacker);
    tkey_free(&rsa1024);
    tkey_free(&ec);
    tkey_free(&ed);
    mg_jwk_thread_cleanup();
    return mg_test_done();
}
