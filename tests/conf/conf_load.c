/* conf_load.c -- test helper: load one config file, print every error, exit 0 or 1. */
#include <stdio.h>

#include "mcpgate/conf.h"

int
main(int argc, char **argv)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *conf;

    if (argc != 2) {
        fprintf(stderr, "usage: conf_load FILE\n");
        return 2;
    }
    conf = mg_conf_load(argv[1], &errs);
    for (size_t i = 0; i < errs.n; i++)
        printf("%s\n", errs.msgs[i]);
    if (conf != NULL && errs.n != 0)
        printf("BUG: a generation was returned together with errors\n");
    if (conf == NULL && errs.n == 0)
        printf("BUG: no generation and no error\n");
    mg_conf_errors_clear(&errs);
    if (conf == NULL)
        return 1;
    mg_conf_free(conf);
    return 0;
}
