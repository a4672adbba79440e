/* jwtauthzd: options, start-up, signals, shutdown. The main thread loads the config, opens the
 * sockets (or takes systemd's), starts the key fetcher and the event loops, tells systemd it is
 * ready, then only waits for signals: SIGHUP reloads, SIGTERM/SIGINT stop gracefully. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "daemon/conf.h"
#include "daemon/epoch_file.h"
#include "daemon/jwks_persist.h"
#include "daemon/jwks_store.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/sdnotify.h"
#include "daemon/server.h"
#include "proto/limits.h"
#include "version.h"

/* CONTRACT "jwtauthzd": -t exits 0 or 1; unknown options exit 2. */
#define MAIN_EXIT_OK 0
#define MAIN_EXIT_CONFIG 1
#define MAIN_EXIT_USAGE 2
#define MAIN_EXIT_STARTUP 3

/* Decision sockets accept bursts from every web server worker at once. */
#define MAIN_LISTEN_BACKLOG 1024

typedef struct main_opts {
    const char *conf_path;
    int foreground;
    int test_only;
} main_opts_t;

static void main_usage(FILE *f)
{
    fprintf(f,
            "usage: jwtauthzd [-c FILE] [-f] [-t] [-V] [-h]\n"
            "  -c FILE  config file (default %s)\n"
            "  -f       stay in the foreground (what systemd runs)\n"
            "  -t       check the config and exit: 0 valid, 1 with FILE:LINE: messages\n"
            "  -V       print the version\n"
            "  -h       this help\n",
            CONF_DEFAULT_PATH);
}

static int main_parse_opts(int argc, char **argv, main_opts_t *o)
{
    int c;
    memset(o, 0, sizeof(*o));
    o->conf_path = CONF_DEFAULT_PATH;
    opterr = 0;
    while ((c = getopt(argc, argv, "c:ftVh")) != -1) {
        switch (c) {
        case 'c':
            o->conf_path = optarg;
            break;
        case 'f':
            o->foreground = 1;
            break;
        case 't':
            o->test_only = 1;
            break;
        case 'V':
            printf("jwtauthzd %s\n", JWTAUTHZ_VERSION);
            exit(MAIN_EXIT_OK);
        case 'h':
            main_usage(stdout);
            exit(MAIN_EXIT_OK);
        default:
            fprintf(stderr, "jwtauthzd: unknown option or missing argument: -%c\n", optopt);
            main_usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "jwtauthzd: unexpected argument \"%s\"\n", argv[optind]);
        main_usage(stderr);
        return -1;
    }
    return 0;
}

/* -t also reads every jwks_file: a start with a key file that yields no usable key would answer
 * ERROR for all of that issuer's tokens. */
static apr_status_t main_check_key_files(apr_pool_t *p, const conf_t *conf, conf_errors_t *errs)
{
    apr_status_t rc = APR_SUCCESS;
    for (size_t i = 0; i < conf->nissuers; i++) {
        const conf_issuer_t *iss = &conf->issuers[i];
        if (iss->key_source != CONF_KEYS_FILE) {
            continue;
        }
        char msg[CONF_MESSAGE_BYTES - 64];
        jose_jwks_t *keys = NULL;
        const char *text;
        size_t len;
        int64_t mtime;
        unsigned flags = (iss->algorithms & CONF_ALG_SET_HMAC) ? JOSE_JWK_ALLOW_OCT : 0;
        apr_status_t st = jwks_file_read(p, iss->jwks_file, JWKS_MAX_BYTES, 1, &text, &len, &mtime,
                                         msg, sizeof(msg));
        if (st == APR_SUCCESS) {
            st = jose_jwks_parse(p, text, len, flags, &keys, msg, sizeof(msg));
        } else if (msg[0] == '\0') {
            apr_strerror(st, msg, sizeof(msg));
        }
        size_t usable = 0;
        for (size_t k = 0; st == APR_SUCCESS && k < keys->nkeys; k++) {
            usable += (keys->keys[k]->algs & iss->algorithms) != 0;
        }
        if (st == APR_SUCCESS && usable == 0) {
            snprintf(msg, sizeof(msg),
                     "jwks_file \"%s\": no key usable with the issuer's algorithms",
                     iss->jwks_file);
            st = APR_EINVAL;
        }
        if (st != APR_SUCCESS) {
            if (errs->nerrors < CONF_MAX_ERRORS) {
                snprintf(errs->errors[errs->nerrors++], CONF_MESSAGE_BYTES, "%s:%u: %s", conf->path,
                         iss->line, msg);
            }
            rc = APR_EINVAL;
        }
    }
    return rc;
}

/* -t: the config is checked exactly as a start would load it, key files included. */
static int main_check_config(const char *path)
{
    apr_pool_t *p;
    conf_errors_t *errs;
    conf_t *conf;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return MAIN_EXIT_CONFIG;
    }
    errs = apr_palloc(p, sizeof(*errs));
    apr_status_t st = conf_load(p, path, &conf, errs);
    if (st == APR_SUCCESS) {
        st = main_check_key_files(p, conf, errs);
    }
    conf_errors_print(errs, stderr);
    if (st == APR_SUCCESS) {
        fprintf(stderr, "%s: configuration is valid\n", path);
    }
    apr_pool_destroy(p);
    return st == APR_SUCCESS ? MAIN_EXIT_OK : MAIN_EXIT_CONFIG;
}

/* The key store logs through the daemon's logger; its levels are log_level_e values. */
static void main_jwks_log(void *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    (void)ctx;
    va_start(ap, fmt);
    log_vmsg((log_level_e)level, fmt, ap);
    va_end(ap);
}

static loop_t **main_loops;
static unsigned main_nloops;

/* Called on the fetcher thread after every fetch: parked requests may now go on. */
static void main_keys_changed(void *ctx)
{
    (void)ctx;
    if (main_loops) {
        loops_wake(main_loops, main_nloops, 1);
    }
}

/* Called when an issuer's removal epoch moves (a withdrawn key, keys past jwks_max_stale), on
 * the thread that moved it, maybe under an issuer lock: only the lock-free bump. */
static void main_keys_removed(void *ctx)
{
    srv_t *srv = ctx;
    epoch_file_bump(srv->epoch);
}

/* The epoch file next to the decision socket, wherever it really is (systemd's socket may be
 * bound elsewhere than the config says). Without it web servers simply do not reuse decisions. */
static void main_open_epoch_file(srv_t *srv, apr_pool_t *p, const listen_t *dec)
{
    char err[512];
    if (epoch_file_open(p, listen_path(dec), &srv->epoch, err, sizeof(err)) != APR_SUCCESS) {
        log_msg(LOGL_WARN, "%s: web servers will not cache decisions", err);
    }
}

static apr_status_t main_open_listeners(srv_t *srv, apr_pool_t *p, listen_t **dec, listen_t **adm)
{
    sd_fds_t sd;
    char err[512];
    sdnotify_listen_fds(&sd);
    gen_t *g = srv_gen_acquire(srv);
    listen_spec_t ds = {g->conf->listen, g->conf->listen_mode,
                        g->conf->listen_gid_set ? g->conf->listen_gid : (gid_t)-1, "jwtauthz",
                        MAIN_LISTEN_BACKLOG};
    listen_spec_t as = {g->conf->admin_listen, g->conf->admin_mode, (gid_t)-1, "admin",
                        MAIN_LISTEN_BACKLOG};
    gen_release(g);
    apr_status_t st = listen_open(p, &ds, &sd, dec, err, sizeof(err));
    if (st != APR_SUCCESS) {
        log_msg(LOGL_ERROR, "decision socket: %s", err);
        return st;
    }
    st = listen_open(p, &as, &sd, adm, err, sizeof(err));
    if (st != APR_SUCCESS) {
        log_msg(LOGL_ERROR, "admin socket: %s", err);
        return st;
    }
    sdnotify_listen_fds_close_unclaimed(&sd);
    return APR_SUCCESS;
}

static void main_reload(srv_t *srv)
{
    /* Only the main thread reloads on SIGHUP: one static error list serves. */
    static conf_errors_t reload_errs;
    conf_errors_t *errs = &reload_errs;
    sdnotify_reloading();
    if (srv_reload(srv, errs) != APR_SUCCESS) {
        for (size_t i = 0; i < errs->nerrors; i++) {
            log_msg(LOGL_ERROR, "reload: %s", errs->errors[i]);
        }
        log_msg(LOGL_ERROR, "reload failed; keeping config generation %u",
                apr_atomic_read32(&srv->gen_id));
    }
    sdnotify_send("READY=1");
}

/* Drops the server's reference to the current generation, and with it the generation's references
 * to the key store's issuers: on every way out of main_run once a config loaded, before the
 * process pool (and the store in it) goes. */
static void main_drop_gen(srv_t *srv)
{
    apr_thread_mutex_lock(srv->gen_lock);
    gen_t *last = srv->gen;
    srv->gen = NULL;
    apr_thread_mutex_unlock(srv->gen_lock);
    gen_release(last);
}

/* Blocks every signal the main thread handles, so threads started after inherit the mask and
 * only sigwait() below sees them. */
static void main_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int main_run(const main_opts_t *o, apr_pool_t *pool)
{
    srv_t *srv = apr_pcalloc(pool, sizeof(*srv));
    srv->pool = pool;
    srv->conf_path = o->conf_path;
    stats_init(&srv->stats, srv_now());
    conf_errors_t *errs = apr_palloc(pool, sizeof(*errs));
    sigset_t sigs;
    main_block_signals(&sigs);

    if (apr_thread_mutex_create(&srv->gen_lock, APR_THREAD_MUTEX_DEFAULT, pool) != APR_SUCCESS ||
        jwks_store_create(&srv->jwks, pool) != APR_SUCCESS) {
        log_msg(LOGL_ERROR, "cannot initialise");
        return MAIN_EXIT_STARTUP;
    }
    jwks_store_set_log(srv->jwks, main_jwks_log, NULL);
    if (srv_reload(srv, errs) != APR_SUCCESS) {
        conf_errors_print(errs, stderr);
        return MAIN_EXIT_CONFIG;
    }
    listen_t *dec = NULL, *adm = NULL;
    if (main_open_listeners(srv, pool, &dec, &adm) != APR_SUCCESS) {
        main_drop_gen(srv);
        return MAIN_EXIT_STARTUP;
    }
    main_open_epoch_file(srv, pool, dec);
    jwks_store_on_removal(srv->jwks, main_keys_removed, srv);
    jwks_store_on_change(srv->jwks, main_keys_changed, NULL);
    if (jwks_store_start(srv->jwks) != APR_SUCCESS) {
        log_msg(LOGL_ERROR, "cannot start the key fetcher");
        main_drop_gen(srv);
        return MAIN_EXIT_STARTUP;
    }
    gen_t *g = srv_gen_acquire(srv);
    unsigned n = g->conf->threads;
    gen_release(g);
    loop_listeners_t ls = {listen_fd(dec), listen_fd(adm)};
    if (loops_start(srv, &ls, n, pool, &main_loops) != APR_SUCCESS) {
        log_msg(LOGL_ERROR, "cannot start %u worker thread(s)", n);
        return MAIN_EXIT_STARTUP;
    }
    main_nloops = n;
    log_msg(LOGL_INFO, "jwtauthzd %s ready: %u worker thread(s)", JWTAUTHZ_VERSION, n);
    sdnotify_send("READY=1");

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            log_msg(LOGL_INFO, "SIGHUP: reloading %s", srv->conf_path);
            main_reload(srv);
            continue;
        }
        log_msg(LOGL_INFO, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    sdnotify_send("STOPPING=1");
    apr_atomic_set32(&srv->stopping, 1);
    loops_wake(main_loops, main_nloops, 0);
    loops_join(main_loops, main_nloops);
    jwks_store_stop(srv->jwks);
    /* Nothing decides any more: the web servers' reused decisions end with us. */
    epoch_file_close(srv->epoch);
    listen_close(dec);
    listen_close(adm);
    main_drop_gen(srv);
    log_msg(LOGL_INFO, "stopped");
    return MAIN_EXIT_OK;
}

int main(int argc, char **argv)
{
    main_opts_t o;
    if (main_parse_opts(argc, argv, &o) != 0) {
        return MAIN_EXIT_USAGE;
    }
    apr_pool_t *pool;
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        fprintf(stderr, "jwtauthzd: cannot initialise APR\n");
        return MAIN_EXIT_STARTUP;
    }
    int rc;
    if (o.test_only) {
        rc = main_check_config(o.conf_path);
    } else {
        if (!o.foreground && daemon(0, 1) != 0) {
            fprintf(stderr, "jwtauthzd: cannot detach: %s\n", strerror(errno));
            return MAIN_EXIT_STARTUP;
        }
        rc = main_run(&o, pool);
    }
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
