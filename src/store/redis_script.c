/* redis_script.c -- Lua scripts of a Redis client: SHA-1 names, the list loaded on connect. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store_int.h"

void
mg_store_sha1_hex(const char *source, char out[41])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    /* Redis names a script by the SHA-1 of its text (EVALSHA, SCRIPT LOAD). */
    if (EVP_Digest(source, strlen(source), md, &len, EVP_sha1(), NULL) != 1 || len != 20)
        len = 0;
    memset(out, '0', 40);
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
}

const mg_redis_script_t *
mg_redis_script_register(mg_redis_t *c, const char *source)
{
    mg_redis_script_t *s = NULL;
    char sha[41];

    if (source == NULL)
        goto fail;
    mg_store_sha1_hex(source, sha);
    for (const mg_redis_script_t *it = mg_redis_scripts(c); it; it = it->next)
        if (strcmp(it->sha, sha) == 0)
            return it;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->source = strdup(source)) == NULL)
        goto fail;
    memcpy(s->sha, sha, sizeof(sha));
    mg_redis_script_add(c, s);
    return s;
fail:
    if (s)
        free(s);
    return NULL;
}

const char *
mg_redis_script_sha(const mg_redis_script_t *s)
{
    return s->sha;
}
