/* Generations and the clock (see server.h). A reload builds the whole new generation (config,
 * decision cache, key store wiring) before it is published with one pointer swap; a bad config
 * never replaces a good one. */
#include "daemon/server.h"

#include <time.h>

#include "daemon/epoch_file.h"
#include "daemon/jwks_store.h"
#include "daemon/log.h"

int64_t srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

uint64_t srv_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

gen_t *srv_gen_acquire(srv_t *s)
{
    apr_thread_mutex_lock(s->gen_lock);
    gen_t *g = s->gen;
    apr_atomic_inc32(&g->refs);
    apr_thread_mutex_unlock(s->gen_lock);
    return g;
}

void gen_release(gen_t *g)
{
    if (g && apr_atomic_dec32(&g->refs) == 0) {
        apr_pool_destroy(g->pool);
    }
}

int gen_issuer_index(const gen_t *g, proto_str_t iss)
{
    for (size_t i = 0; i < g->conf->nissuers; i++) {
        if (proto_str_eq(g->conf->issuers[i].issuer, iss)) {
            return (int)i;
        }
    }
    return -1;
}

/* Reloads are rare and come from the signal thread or an admin connection: one at a time. */
static apr_thread_mutex_t *reload_lock;

apr_status_t srv_reload(srv_t *s, conf_errors_t *errs)
{
    if (reload_lock == NULL &&
        apr_thread_mutex_create(&reload_lock, APR_THREAD_MUTEX_DEFAULT, s->pool) != APR_SUCCESS) {
        return APR_ENOMEM;
    }
    apr_thread_mutex_lock(reload_lock);
    apr_pool_t *p = NULL;
    /* Unmanaged: the generation outlives whichever thread created it and is destroyed by
     * whichever releases it last; no parent pool may be touched from both. */
    apr_status_t st = apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    conf_t *conf = NULL;
    if (st == APR_SUCCESS) {
        st = conf_load(p, s->conf_path, &conf, errs);
    }
    gen_t *g = NULL;
    if (st == APR_SUCCESS) {
        g = apr_pcalloc(p, sizeof(*g));
        g->pool = p;
        g->conf = conf;
        g->refs = 1;
        g->id = apr_atomic_read32(&s->gen_id) + 1;
        if (conf->cache_ttl_s > 0 && conf->cache_max_entries > 0) {
            st = dcache_create(p, conf->cache_max_entries, &g->dcache);
        }
    }
    /* Last, as it changes the shared store: the new generation's issuers, in conf order, each
     * referenced until the generation pool goes. */
    if (st == APR_SUCCESS) {
        st = jwks_store_configure(s->jwks, conf, srv_now(), &g->jwks);
    }
    if (st != APR_SUCCESS) {
        if (errs->nerrors == 0) {
            char buf[256];
            snprintf(errs->errors[0], sizeof(errs->errors[0]), "%s: %s", s->conf_path,
                     apr_strerror(st, buf, sizeof(buf)));
            errs->nerrors = 1;
        }
        if (p) {
            apr_pool_destroy(p);
        }
        apr_thread_mutex_unlock(reload_lock);
        return st;
    }
    log_set_level((log_level_e)conf->log_level);
    for (size_t i = 0; i < errs->nwarnings; i++) {
        log_msg(LOGL_WARN, "%s", errs->warnings[i]);
    }
    apr_thread_mutex_lock(s->gen_lock);
    gen_t *old = s->gen;
    s->gen = g;
    apr_atomic_set32(&s->gen_id, g->id);
    apr_thread_mutex_unlock(s->gen_lock);
    /* After the swap: a request a web server sends after it sees the new epoch reaches a loop
     * after the swap, and the loops take the current generation each time they wake, before
     * they read what woke them (loop.c), so it is decided under the new rules. */
    epoch_file_bump(s->epoch);
    gen_release(old);
    log_msg(LOGL_INFO, "config generation %u loaded from %s (%zu issuer(s), %zu rule(s))", g->id,
            s->conf_path, conf->nissuers, conf->rules.n);
    apr_thread_mutex_unlock(reload_lock);
    return APR_SUCCESS;
}
