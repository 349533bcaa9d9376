/* fuzz_bearer.c -- libFuzzer target: Authorization parsing, access_token detection and WWW-Authenticate building. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpgate/bearer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v[2] = {(const char *)data, (const char *)data};
    size_t lens[2] = {size, size / 2};
    const char *tok;
    size_t tlen;
    char *s = malloc(size + 1), *ch;
    const char *scopes[2];

    if (s == NULL)
        return 0;
    mg_bearer_parse(v, lens, 1 + (size & 1), &tok, &tlen);
    if (mg_bearer_parse(v, lens, 1, &tok, &tlen) == MG_BEARER_OK &&
        !mg_bearer_is_b64token(tok, tlen))
        abort();
    mg_bearer_query_has_token((const char *)data, size);
    mg_bearer_form_has_token("application/x-www-form-urlencoded", (const char *)data, size);
    memcpy(s, data, size);
    s[size] = '\0';
    scopes[0] = s;
    scopes[1] = "read";
    for (int k = 0; k <= MG_CHALLENGE_INSUFFICIENT_SCOPE; k++) {
        ch = mg_challenge_build((mg_challenge_kind_t)k, s, scopes, 2, s);
        /* never a control byte, never an empty quoted value */
        for (const char *p = ch; ch && *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                abort();
        if (ch && strstr(ch, "=\"\"") != NULL)
            abort();
        free(ch);
    }
    free(s);
    return 0;
}
