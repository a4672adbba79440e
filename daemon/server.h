/* The daemon's process-wide state and its config generations. A generation is one loaded config
 * with what was built from it (its decision cache, its issuers' key stores); it is reference
 * counted, so requests that started on it finish on it while a reload installs the next one.
 * Readers find the current generation without a lock: they compare an atomic id. */
#ifndef JWTAUTHZ_DAEMON_SERVER_H
#define JWTAUTHZ_DAEMON_SERVER_H

#include <stdint.h>

#include <apr_atomic.h>
#include <apr_pools.h>
#include <apr_thread_mutex.h>

#include "daemon/conf.h"
#include "daemon/dcache.h"
#include "daemon/stats.h"

struct jwks_store;
struct jwks_issuer;
struct epoch_file;

typedef struct gen {
    apr_pool_t *pool; /* the generation pool: conf, cache, lookup tables */
    conf_t *conf;
    uint32_t id;                /* 1, 2, ... in load order */
    volatile apr_uint32_t refs; /* the server's own reference + one per holder */
    dcache_t *dcache;           /* NULL when caching is off; decisions die with the generation */
    struct jwks_issuer **jwks;  /* key store of conf->issuers[i], same order (referenced) */
} gen_t;

typedef struct srv {
    apr_pool_t *pool; /* process lifetime */
    const char *conf_path;
    apr_thread_mutex_t *gen_lock; /* guards gen (the pointer swap, not its contents) */
    gen_t *gen;
    volatile apr_uint32_t gen_id; /* id of gen: the lock-free "has it changed?" check */
    struct jwks_store *jwks;
    struct epoch_file *epoch; /* next to the decision socket; NULL when it could not be made */
    stats_t stats;
    volatile apr_uint32_t stopping;
} srv_t;

/* Loads path as a new generation and, on success, makes it current (the old one lives on until
 * its last holder releases it) and then moves the epoch file (web servers stop reusing decisions
 * made under the old rules). On failure the current generation stays, and errs says why.
 * Returns APR_SUCCESS or conf_load()'s status. Callers serialise reloads (admin, SIGHUP). */
apr_status_t srv_reload(srv_t *s, conf_errors_t *errs);

/* The current generation with a reference taken: release it with gen_release(). */
gen_t *srv_gen_acquire(srv_t *s);
void gen_release(gen_t *g);

/* The configured issuer whose "issuer" equals iss byte for byte, or -1. */
int gen_issuer_index(const gen_t *g, proto_str_t iss);

/* Seconds since the epoch (CLOCK_REALTIME): token times are wall-clock times. */
int64_t srv_now(void);
/* Microseconds from CLOCK_MONOTONIC, for latency. */
uint64_t srv_monotonic_us(void);

#endif
