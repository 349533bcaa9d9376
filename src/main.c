/* main.c -- the mcpgate binary: command line, configuration check, then mg_server_run(). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mcpgate/conf.h"
#include "mcpgate/log.h"
#include "mcpgate/server.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: mcpgate [-c FILE] [-t] [-v] [-h]\n"
            "  -c FILE  configuration file (default %s/mcpgate.conf)\n"
            "  -t       check the configuration and exit\n"
            "  -v       print the version and exit\n"
            "  -h       this help\n",
            MG_SYSCONFDIR);
}

int
main(int argc, char **argv)
{
    const char *path = MG_SYSCONFDIR "/mcpgate.conf";
    mg_conf_errors_t errs = {0};
    mg_conf_t *conf;
    bool test = false;
    int opt;

    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'v':
            printf("mcpgate %s\n", PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    conf = mg_conf_load(path, &errs);
    if (conf == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        if (errs.n == 0)
            fprintf(stderr, "mcpgate: cannot load %s\n", path);
        mg_conf_errors_clear(&errs);
        return 1;
    }
    mg_conf_errors_clear(&errs);
    if (test) {
        /* Like nginx -t: also load what the files name (certificates, keys,
         * key sets), so that a reload with this file would succeed. */
        int rc = mg_server_check(conf);
        mg_conf_free(conf);
        if (rc != 0)
            return 1;
        printf("mcpgate: the configuration file %s syntax is ok\n", path);
        return 0;
    }
    return mg_server_run(path, conf);
}
