/* server.h -- the running gateway: start workers, serve until drained, reload on SIGHUP.
 *
 * The only entry point of src/core/ used by main.c.
 */
#ifndef MCPGATE_SERVER_H
#define MCPGATE_SERVER_H

#include "mcpgate/conf.h"

/* Run the gateway with the loaded configuration <conf> (ownership passes to
 * the server, which frees it) read from <conf_path> (re-read on SIGHUP).
 * Blocks until SIGTERM/SIGINT has drained every worker. Returns the process
 * exit status: 0 after a clean drain, 1 when startup failed (bind, TLS,
 * threads); the reason has been logged. */
int mg_server_run(const char *conf_path, mg_conf_t *conf);

/* What `mcpgate -t` checks beyond the syntax: build the runtime generation
 * (TLS certificates and keys, issuer key sets) as a start would, then free
 * it. Returns 0 when it could be built; otherwise the reasons were logged.
 * <conf> stays the caller's. */
int mg_server_check(const mg_conf_t *conf);

#endif /* MCPGATE_SERVER_H */
