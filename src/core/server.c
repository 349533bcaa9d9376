/* server.c -- the main thread: event base, signals, reload, drain, admin listener, worker threads
 * start/stop. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "core_int.h"
#include "mcpgate/keys.h"
#include "mcpgate/audit.h"
#include "mcpgate/log.h"
#include "mcpgate/metrics.h"
#include "mcpgate/ratelimit.h"
#include "mcpgate/server.h"
#include "mcpgate/session.h"

typedef struct mg_server {
    const char *conf_path;
    struct event_base *base;
    mg_gen_t *gen;      /* the newest good generation (own reference) */
    mg_gen_t *boot_gen; /* the one the sockets were opened from (own reference) */
    unsigned long serial;
    mg_worker_t **workers;
    int nworkers;
    int nstarted;
    mg_admin_t *admin;
    mg_keys_t *keys; /* the key manager: fetches run on this thread's base */
    atomic_bool draining; /* read by the admin handler (same thread) */
    atomic_int done;      /* workers that have finished */
    struct event *done_ev;
    struct event *sig_hup, *sig_term, *sig_int, *sig_usr1;
    mg_metrics_t *metrics; /* shared by every worker (atomic counters) */
    mg_audit_t *audit;     /* shared by every worker (one write(2) per line) */
    mg_session_store_t *sessions; /* Mcp-Session-Id bindings, shared (locked inside) */
    mg_rl_local_t *rl_local;      /* the in-process limiter, shared (locked inside) */
    mg_connlimit_t *climit;       /* max_connections counters, shared (atomics, locks inside) */
} mg_server_t;

void
mg_server_worker_done(struct mg_server *srv)
{
    atomic_fetch_add(&srv->done, 1);
    event_active(srv->done_ev, EV_READ, 0); /* the main base is locked: any thread may */
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
    mg_server_t *srv = arg;

    if (atomic_load(&srv->done) >= srv->nstarted)
        event_base_loopbreak(srv->base);
}

static bool
same_listen(const mg_conf_listen_t *a, const mg_conf_listen_t *b)
{
    return strcmp(a->text, b->text) == 0 &&
           (a->tls_certificate != NULL) == (b->tls_certificate != NULL);
}

static void
warn_restart_only(const mg_conf_t *old, const mg_conf_t *new)
{
    bool changed = old->nlistens != new->nlistens;

    for (size_t i = 0; !changed && i < old->nlistens; i++)
        changed = !same_listen(&old->listens[i], &new->listens[i]);
    if ((old->admin_listen == NULL) != (new->admin_listen == NULL) ||
        (old->admin_listen && !same_listen(old->admin_listen, new->admin_listen)))
        changed = true;
    if (changed)
        mg_log_warn("listen address changes need a restart; keeping the old sockets");
    if (old->workers != new->workers)
        mg_log_warn("a change of workers (%d -> %d) needs a restart", old->workers, new->workers);
    if ((old->redis == NULL) != (new->redis == NULL) ||
        (old->redis && new->redis &&
         (strcmp(old->redis->text, new->redis->text) != 0 ||
          old->redis->rc.database != new->redis->rc.database ||
          old->redis->rc.timeout_ms != new->redis->rc.timeout_ms ||
          old->redis->rc.on_failure != new->redis->rc.on_failure ||
          (old->redis->user == NULL) != (new->redis->user == NULL) ||
          (old->redis->user && strcmp(old->redis->user, new->redis->user) != 0) ||
          (old->redis->password == NULL) != (new->redis->password == NULL) ||
          (old->redis->password && strcmp(old->redis->password, new->redis->password) != 0))))
        mg_log_warn("a change of the redis block needs a restart; keeping the running "
                    "connections");
}

/* The workers bind with SO_REUSEPORT, which would happily share a port
 * with another running mcpgate: bind each address once without it first so
 * that "address in use" is reported instead. */
static int
probe_listens(const mg_conf_t *conf)
{
    int rc = 0;

    for (size_t i = 0; i < conf->nlistens; i++) {
        const mg_conf_listen_t *l = &conf->listens[i];
        int one = 1;
        int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) != 0) {
            mg_log_error("%s:%d: listen %s: %s", l->where.file ? l->where.file : conf->source,
                         l->where.line, l->text, strerror(errno));
            rc = -1;
        }
        if (fd >= 0)
            close(fd);
    }
    return rc;
}

static void
reload(mg_server_t *srv)
{
    mg_conf_errors_t errs = {0};
    mg_conf_t *conf;
    mg_gen_t *gen;

    if (atomic_load(&srv->draining)) {
        mg_log_warn("SIGHUP while draining: ignored");
        return;
    }
    mg_log_info("reloading %s", srv->conf_path);
    conf = mg_conf_load(srv->conf_path, &errs);
    if (conf == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            mg_log_error("%s", errs.msgs[i]);
        mg_conf_errors_clear(&errs);
        mg_log_error("configuration reload failed, keeping the running configuration");
        mg_metrics_config_reload(srv->metrics, 0);
        return;
    }
    mg_conf_errors_clear(&errs);
    gen = mg_gen_new(conf, srv->serial + 1);
    if (gen == NULL) {
        mg_conf_free(conf);
        mg_log_error("configuration reload failed, keeping the running configuration");
        mg_metrics_config_reload(srv->metrics, 0);
        return;
    }
    /* Key sources the running configuration already has keep their keys: no refetch. */
    if (mg_gen_attach_keys(gen, srv->keys) != 0) {
        mg_gen_unref(gen);
        mg_log_error("configuration reload failed (out of memory), keeping the running "
                     "configuration");
        return;
    }
    mg_keys_set_grace(srv->keys, conf->startup_grace);
    srv->serial++;
    warn_restart_only(srv->boot_gen->conf, conf);
    mg_log_set_level((mg_log_level_t)conf->log_level);
    for (int i = 0; i < srv->nstarted; i++)
        mg_worker_post_gen(srv->workers[i], gen);
    mg_gen_unref(srv->gen);
    srv->gen = gen;
    {
        /* The same sink is reopened, which is harmless; a new one replaces it. */
        char err[256];
        if (mg_audit_set_sink(srv->audit, conf->access_log, err, sizeof(err)) != 0)
            mg_log_error("access_log %s: %s (keeping the previous one)", conf->access_log, err);
    }
    mg_metrics_config_reload(srv->metrics, 1);
    mg_log_info("configuration reloaded");
}

static void
start_drain(mg_server_t *srv)
{
    if (atomic_exchange(&srv->draining, true)) {
        mg_log_info("already draining");
        return;
    }
    mg_log_info("draining: no new connections, in-flight requests get %u ms",
                srv->gen->conf->drain_timeout);
    for (int i = 0; i < srv->nstarted; i++)
        mg_worker_post_drain(srv->workers[i]);
    if (srv->nstarted == 0)
        event_base_loopbreak(srv->base);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
    mg_server_t *srv = arg;

    if (sig == SIGHUP) {
        reload(srv);
    } else if (sig == SIGUSR1) {
        /* logrotate has moved the audit log: open the file under its name again. */
        char err[256];
        if (mg_audit_reopen(srv->audit, err, sizeof(err)) != 0)
            mg_log_error("reopening the access log: %s", err);
        else
            mg_log_info("access log reopened");
    } else {
        start_drain(srv);
    }
}

static void
server_free(mg_server_t *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        mg_worker_free(srv->workers[i]);
    free(srv->workers);
    mg_admin_free(srv->admin);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_usr1)
        event_free(srv->sig_usr1);
    if (srv->done_ev)
        event_free(srv->done_ev);
    /* The generations unregister from the key manager, which frees its events before
     * the base goes. */
    mg_gen_unref(srv->gen);
    mg_gen_unref(srv->boot_gen);
    mg_keys_free(srv->keys);
    mg_metrics_free(srv->metrics);
    mg_session_store_free(srv->sessions);
    mg_rl_local_free(srv->rl_local); /* after the workers: their limiters borrow it */
    mg_connlimit_free(srv->climit);  /* after the workers: their connections hold places */
    mg_audit_free(srv->audit);
    if (srv->base)
        event_base_free(srv->base);
}

int
mg_server_run(const char *conf_path, mg_conf_t *conf)
{
    mg_server_t srv;
    sigset_t block, old;
    int rc = 1;

    memset(&srv, 0, sizeof(srv));
    srv.conf_path = conf_path;
    atomic_init(&srv.draining, false);
    atomic_init(&srv.done, 0);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        mg_log_error("libevent: no pthreads support");
        mg_conf_free(conf);
        return 1;
    }
    mg_log_set_level((mg_log_level_t)conf->log_level);
    srv.serial = 1;
    srv.gen = mg_gen_new(conf, srv.serial);
    if (srv.gen == NULL) {
        mg_conf_free(conf);
        return 1;
    }
    srv.boot_gen = mg_gen_ref(srv.gen);
    srv.base = event_base_new();
    if (srv.base == NULL)
        goto done;
    srv.keys = mg_keys_new(srv.base);
    if (srv.keys == NULL || mg_gen_attach_keys(srv.gen, srv.keys) != 0)
        goto done;
    mg_keys_set_grace(srv.keys, conf->startup_grace);
    if (probe_listens(conf) != 0)
        goto done;
    srv.metrics = mg_metrics_new(PACKAGE_VERSION);
    mg_keys_set_metrics(srv.keys, srv.metrics);
    {
        char err[256];
        srv.audit = mg_audit_new(conf->access_log, err, sizeof(err));
        if (srv.audit == NULL) {
            mg_log_error("access_log %s: %s", conf->access_log, err);
            goto done;
        }
    }
    srv.sessions = mg_session_store_memory_new(0);
    srv.rl_local = mg_rl_local_new(0);
    srv.climit = mg_connlimit_new(conf->nlistens, srv.metrics);
    if (srv.metrics == NULL || srv.sessions == NULL || srv.rl_local == NULL || srv.climit == NULL)
        goto done;
    srv.nworkers = conf->workers > 0 ? conf->workers : 1;
    srv.workers = calloc((size_t)srv.nworkers, sizeof(*srv.workers));
    if (srv.workers == NULL)
        goto done;
    for (int i = 0; i < srv.nworkers; i++) {
        srv.workers[i] = mg_worker_new(&srv, i, srv.gen);
        if (srv.workers[i] == NULL)
            goto done;
        srv.workers[i]->metrics = srv.metrics;
        srv.workers[i]->audit = srv.audit;
        srv.workers[i]->sessions = srv.sessions;
        srv.workers[i]->rl_local = srv.rl_local;
        srv.workers[i]->climit = srv.climit;
        if (conf->redis != NULL &&
            mg_worker_use_redis(srv.workers[i], conf->redis, srv.rl_local) != 0)
            goto done;
    }
    if (conf->admin_listen != NULL) {
        srv.admin = mg_admin_new(srv.base, conf->admin_listen, &srv.draining, srv.keys);
        if (srv.admin == NULL)
            goto done;
        mg_admin_set_metrics(srv.admin, srv.metrics);
    }
    srv.done_ev = event_new(srv.base, -1, 0, done_cb, &srv);
    srv.sig_hup = evsignal_new(srv.base, SIGHUP, signal_cb, &srv);
    srv.sig_term = evsignal_new(srv.base, SIGTERM, signal_cb, &srv);
    srv.sig_int = evsignal_new(srv.base, SIGINT, signal_cb, &srv);
    srv.sig_usr1 = evsignal_new(srv.base, SIGUSR1, signal_cb, &srv);
    if (!srv.done_ev || !srv.sig_hup || !srv.sig_term || !srv.sig_int || !srv.sig_usr1 ||
        event_add(srv.sig_hup, NULL) || event_add(srv.sig_term, NULL) ||
        event_add(srv.sig_int, NULL) || event_add(srv.sig_usr1, NULL))
        goto done;

    /* Workers inherit a mask without our signals: they are handled here only. */
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (int i = 0; i < srv.nworkers; i++) {
        if (mg_worker_start(srv.workers[i]) != 0)
            break;
        srv.nstarted++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (srv.nstarted < srv.nworkers) {
        start_drain(&srv);
    } else {
        mg_log_info("mcpgate %s started: %d workers, %zu listeners, %zu routes", PACKAGE_VERSION,
                    srv.nworkers, conf->nlistens, conf->nroutes);
        if (conf->redis != NULL)
            mg_log_info("shared state in redis %s (timeout %u ms, on_failure %s)",
                        conf->redis->text, conf->redis->rc.timeout_ms,
                        conf->redis->rc.on_failure == MG_REDIS_FAIL_DENY    ? "deny"
                        : conf->redis->rc.on_failure == MG_REDIS_FAIL_ALLOW ? "allow"
                                                                            : "local");
        rc = 0;
    }
    if (srv.nstarted > 0)
        event_base_loop(srv.base, EVLOOP_NO_EXIT_ON_EMPTY);
    for (int i = 0; i < srv.nstarted; i++)
        pthread_join(srv.workers[i]->thread, NULL);
    if (rc == 0)
        mg_log_info("drained, exiting");
done:
    if (rc != 0 && srv.nstarted == 0)
        mg_log_error("startup failed");
    server_free(&srv);
    return rc;
}
