/* fuzz_conf.c -- libFuzzer target for the config tokenizer, parser and directive table.
 *
 * The input is loaded with mg_conf_load_string() under a file name in a directory
 * that does not exist, so relative includes and files fail to open; absolute ones
 * are read (regular files only, size-capped), which is harmless.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mcpgate/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *conf;

    conf = mg_conf_load_string((const char *)data, size, "/nonexistent-mcpgate-fuzz/f.conf", &errs);
    if (conf != NULL) {
        /* exercise the matcher on what was built */
        for (size_t i = 0; i < conf->nroutes; i++)
            (void)mg_conf_route_match(conf, conf->routes[i].path, conf->routes[i].path_len);
        (void)mg_conf_route_match(conf, "/", 1);
    }
    mg_conf_free(conf);
    mg_conf_errors_clear(&errs);
    return 0;
}
