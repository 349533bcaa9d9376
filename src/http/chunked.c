/* chunked.c -- incremental, strict decoder of the chunked transfer coding (RFC 9112 7.1). */
#include "config.h"

#include <string.h>

#include "mcpgate/http_parse.h"
#include "http_int.h"

/* Decoder states. Every line (size line, CRLF after data, trailer lines,
 * final empty line) must end in CR LF; nothing else is a line end. */
enum {
    S_SIZE = 0,    /* reading 1..16 hex digits of a chunk size */
    S_EXT,         /* after ';': chunk extensions up to CR, skipped */
    S_SIZE_LF,     /* CR of the size line seen, LF expected */
    S_DATA,        /* chunk payload */
    S_DATA_CR,     /* payload done, CR expected */
    S_DATA_LF,     /* LF expected */
    S_TRAILER,     /* at the start of a trailer line (or the final CRLF) */
    S_TRAILER_NAME,
    S_TRAILER_VALUE,
    S_TRAILER_LF,  /* CR of a trailer line seen */
    S_FINAL_LF,    /* CR of the final empty line seen */
    S_DONE,
    S_ERROR,
};

void
mg_chunked_init(mg_chunked_t *dec, uint64_t max_total)
{
    memset(dec, 0, sizeof(*dec));
    dec->state = S_SIZE;
    dec->max_total = max_total;
}

mg_chunked_result_t
mg_chunked_feed(mg_chunked_t *dec, const char *in, size_t len, size_t *consumed,
                const char **data, size_t *data_len, const char **why)
{
    const char *w = NULL;
    mg_chunked_result_t res = MG_CHUNKED_NEED_MORE;
    size_t i = 0;

    if (data)
        *data = NULL;
    if (data_len)
        *data_len = 0;
    if (dec->state == S_DONE) {
        res = MG_CHUNKED_DONE;
        goto out;
    }
    if (dec->state == S_ERROR) {
        w = "chunked body already refused";
        res = MG_CHUNKED_ERROR;
        goto out;
    }

    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        int d;

        switch (dec->state) {
        case S_SIZE:
        case S_EXT:
        case S_SIZE_LF:
            if (++dec->line_len > MG_CHUNKED_MAX_LINE) {
                w = "chunk size line too long";
                goto fail;
            }
            if (dec->state == S_SIZE) {
                d = mg_http_hexval(c);
                if (d >= 0) {
                    if (dec->digits == 16) {
                        /* A 17th digit is malformed whatever its value: a size
                         * past max_total was already refused as too large at
                         * the digit that took it there. */
                        w = "chunk size has more than 16 hex digits";
                        goto fail;
                    }
                    dec->digits++;
                    dec->remaining = dec->remaining * 16 + (uint64_t)d;
                    if (dec->max_total && dec->remaining > dec->max_total - dec->total) {
                        w = "chunked body too large";
                        res = MG_CHUNKED_TOO_LARGE;
                        goto fail_res;
                    }
                    if (dec->remaining > UINT64_MAX - dec->total) {
                        w = "chunked body size overflows";
                        goto fail;
                    }
                } else if (dec->digits == 0) {
                    /* "+10", "-1", " 10", ";x", "\r\n": no digits first. */
                    w = "chunk size is not hex digits";
                    goto fail;
                } else if (c == ';') {
                    dec->state = S_EXT;
                } else if (c == '\r') {
                    dec->state = S_SIZE_LF;
                } else {
                    /* "0x10", "10 ", "10\n": strict, no BWS either. */
                    w = "invalid character after chunk size";
                    goto fail;
                }
            } else if (dec->state == S_EXT) {
                if (c == '\r')
                    dec->state = S_SIZE_LF;
                else if (!mg_http_is_field_byte(c)) {
                    w = "invalid character in chunk extension";
                    goto fail;
                }
            } else {
                if (c != '\n') {
                    w = "bare CR in chunk size line";
                    goto fail;
                }
                dec->line_len = 0;
                dec->digits = 0;
                dec->state = dec->remaining ? S_DATA : S_TRAILER;
            }
            i++;
            break;

        case S_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > dec->remaining)
                n = (size_t)dec->remaining;
            if (data)
                *data = in + i;
            if (data_len)
                *data_len = n;
            i += n;
            dec->remaining -= n;
            dec->total += n;
            if (dec->remaining == 0)
                dec->state = S_DATA_CR;
            res = MG_CHUNKED_DATA;
            goto out;
        }

        case S_DATA_CR:
            if (c != '\r') {
                w = "chunk data not followed by CRLF";
                goto fail;
            }
            dec->state = S_DATA_LF;
            i++;
            break;

        case S_DATA_LF:
            if (c != '\n') {
                w = "chunk data not followed by CRLF";
                goto fail;
            }
            dec->state = S_SIZE;
            dec->line_len = 0;
            dec->digits = 0;
            dec->remaining = 0;
            i++;
            break;

        case S_TRAILER:
        case S_TRAILER_NAME:
        case S_TRAILER_VALUE:
        case S_TRAILER_LF:
        case S_FINAL_LF:
            /* line_len counts the whole trailer section; digits the fields. */
            if (++dec->line_len > MG_CHUNKED_MAX_TRAILER_BYTES) {
                w = "chunked trailer section too large";
                goto fail;
            }
            switch (dec->state) {
            case S_TRAILER:
                if (c == '\r') {
                    dec->state = S_FINAL_LF;
                } else if (mg_http_is_tchar(c)) {
                    if (++dec->digits > MG_CHUNKED_MAX_TRAILERS) {
                        w = "too many chunked trailer fields";
                        goto fail;
                    }
                    dec->state = S_TRAILER_NAME;
                } else {
                    w = mg_http_is_ows(c) ? "obs-fold in chunked trailer"
                                          : "invalid chunked trailer field";
                    goto fail;
                }
                break;
            case S_TRAILER_NAME:
                if (c == ':') {
                    dec->state = S_TRAILER_VALUE;
                } else if (!mg_http_is_tchar(c)) {
                    w = "invalid chunked trailer field name";
                    goto fail;
                }
                break;
            case S_TRAILER_VALUE:
                if (c == '\r') {
                    dec->state = S_TRAILER_LF;
                } else if (!mg_http_is_field_byte(c)) {
                    w = "control character in chunked trailer value";
                    goto fail;
                }
                break;
            case S_TRAILER_LF:
                if (c != '\n') {
                    w = "bare CR in chunked trailer";
                    goto fail;
                }
                dec->state = S_TRAILER;
                break;
            default: /* S_FINAL_LF */
                if (c != '\n') {
                    w = "bare CR at end of chunked body";
                    goto fail;
                }
                dec->state = S_DONE;
                i++;
                res = MG_CHUNKED_DONE;
                goto out;
            }
            i++;
            break;

        default:
            w = "chunked decoder in an invalid state";
            goto fail;
        }
    }
    goto out;

fail:
    res = MG_CHUNKED_ERROR;
fail_res:
    dec->state = S_ERROR;
out:
    if (consumed)
        *consumed = i;
    if (why && w)
        *why = w;
    return res;
}
