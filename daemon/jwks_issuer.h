/* The insides of the key store, shared by jwks_store.c (the issuer list, configure, the fetcher's
 * entry points), jwks_issuer.c (one issuer: creation, loading, install, the request path),
 * jwks_update.c (fetch outcomes), jwks_set.c (a set from a document) and jwks_report.c. Nothing
 * outside daemon/jwks_*.c includes this: the rest of the daemon sees jwks_store.h only. */
#ifndef JWTAUTHZ_DAEMON_JWKS_ISSUER_H
#define JWTAUTHZ_DAEMON_JWKS_ISSUER_H

#include <stdio.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_thread_mutex.h>

#include "daemon/jwks_store.h"

#define ISSUER_LOCK(iss) apr_thread_mutex_lock((iss)->lock)
#define ISSUER_UNLOCK(iss) apr_thread_mutex_unlock((iss)->lock)

/* One log line, formatted before the callback sees it (values from outside are escaped first). */
#define JWKS_LOG_LINE_BYTES 1024u
/* How much of a kid, an issuer or a URL a log line quotes. */
#define JWKS_LOG_QUOTE_BYTES 200u

typedef struct jwks_fetcher jwks_fetcher_t;

struct jwks_issuer {
    apr_pool_t *pool; /* unmanaged: freed by the last jwks_issuer_release */
    volatile apr_uint32_t refs;
    volatile apr_uint32_t removal_epoch; /* read without the lock (apr_atomic_read32) */
    /* When the current set stops serving (jwks_max_stale after its last good fetch), republished
     * under the lock whenever that moves, read without it by the decision cache's hit path: a
     * cached ALLOW must not outlive its issuer's keys even before a request or the fetcher's
     * timer expires the set. INT64_MAX for key files (they never go stale). */
    volatile apr_uint64_t serving_until;
    jwks_store_t *store;
    apr_thread_mutex_t *lock; /* guards everything below; held briefly, never for I/O */

    /* Identity, fixed at creation: an issuer whose source changes is a new issuer. */
    proto_str_t name; /* NUL-terminated copy */
    conf_key_source_e source;
    const char *source_ref; /* jwks_uri, discovery URL or jwks_file as configured */

    /* Settings of the latest generation. */
    int active; /* in the store's list (0: dropped by a reload) */
    jwks_policy_params_t params;
    long fetch_timeout_s;
    jose_alg_set_t algorithms;
    char ca_file[JWKS_PATH_BYTES];
    char cache_dir[JWKS_PATH_BYTES]; /* "" when persistence is off */

    /* State. */
    jwks_set_t *current; /* NULL until a usable set was loaded or fetched */
    jwks_policy_state_t sched;
    int expired;                   /* the epoch moved for the current set's expiry */
    char jwks_uri[JWKS_URL_BYTES]; /* configured, or discovered; "" before discovery */
    int64_t discovered_at;
    uint64_t serial; /* of the last set installed */
    uint64_t n_ok, n_not_modified, n_failed;
    char last_error[JWKS_ERROR_BYTES]; /* "" when none since creation */
    int64_t last_error_at;
};

struct jwks_store {
    apr_pool_t *pool;
    apr_thread_mutex_t *lock; /* guards the list and the hooks; taken by configure, admin and
                                 the fetcher, never by the request path */
    jwks_issuer_t *issuers[CONF_MAX_ISSUERS];
    size_t nissuers;
    struct {
        jwks_change_fn fn;
        void *ctx;
    } hooks[JWKS_MAX_CHANGE_HOOKS];
    size_t nhooks;
    struct {
        jwks_change_fn fn; /* set before any thread but the main one runs; read without a lock */
        void *ctx;
    } removal;
    jwks_log_fn log;
    void *log_ctx;
    jwks_clock_fn clock;
    void *clock_ctx;
    jwks_fetcher_t *fetcher; /* set by jwks_store_start before workers run, cleared at stop */
};

/* Formats and sends one line to the store's log callback. */
void jwks_log(const jwks_store_t *store, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* s as a log line may show it: printable ASCII kept, anything else as \xNN, cut at
 * JWKS_LOG_QUOTE_BYTES with "...". Returns out. */
const char *jwks_quote(char *out, size_t outlen, proto_str_t s);

/* Copies src into dst, cut to fit (error texts and URLs kept for reports: a cut one is fine). */
static inline void jwks_copy_cstr(char *dst, size_t dstlen, const char *src)
{
    if (dstlen == 0) {
        return;
    }
    size_t n = src ? strnlen(src, dstlen - 1) : 0;
    if (n) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

/* Error texts come from yajl, curl and the parser, and yajl's hold a newline: a log line and the
 * report's last_error stay one line. */
static inline void jwks_one_line(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = ' ';
        }
    }
}

/* The issuer's name as a log line shows it (jwks_quote). */
const char *jwks_issuer_quote_name(char *out, size_t outlen, const jwks_issuer_t *iss);

/* Installs set as the issuer's current one (the set's reference passes to the issuer). fetched:
 * a good fetch at now, scheduled with f; otherwise a load (file, persisted copy) confirmed at
 * confirmed_at. Returns 1 when the removal epoch moved (the new set lacks a key the old had). */
int jwks_issuer_install(jwks_issuer_t *iss, jwks_set_t *set, int fetched, int64_t now,
                        const jwks_freshness_t *f, int64_t confirmed_at);

/* Logs an installed set: issuer, serial, where from, key counts, whether a key went. */
void jwks_issuer_log_installed(jwks_issuer_t *iss, const jwks_set_t *set, const char *from,
                               int drops);

/* With the lock held: republishes serving_until from the schedule (see the struct). */
void jwks_issuer_publish_serving_locked(jwks_issuer_t *iss);

/* With the lock held: expires the current set when it is past max_stale at now, moving the epoch
 * once. Returns 1 when it just did (then log with jwks_issuer_log_expired, unlocked). */
int jwks_issuer_expire_locked(jwks_issuer_t *iss, int64_t now);
void jwks_issuer_log_expired(jwks_issuer_t *iss, int64_t max_stale_s);

/* Calls the removal hook, if any (see jwks_store_on_removal): iss's removal epoch just moved. */
void jwks_issuer_removed(jwks_issuer_t *iss);

/* Wakes the fetcher (no-op without one): new work was queued. */
void jwks_store_wake(jwks_store_t *store);

/* Calls every change hook (the fetcher thread, after a fetch attempt ends). */
void jwks_store_notify(jwks_store_t *store);

/* Makes a new issuer for ci with one reference (the caller's), loading its jwks_file or its
 * persisted set. Returns NULL when memory or a mutex cannot be had. */
jwks_issuer_t *jwks_issuer_create(jwks_store_t *store, const conf_t *conf, const conf_issuer_t *ci,
                                  int64_t now);

/* Returns 1 when ci names the same key source as iss (then iss is kept across a reload). */
int jwks_issuer_same_source(const jwks_issuer_t *iss, const conf_issuer_t *ci);

/* Takes a reload's settings (timings, algorithms, ca_file, cache_dir), marks the issuer active,
 * and re-reads a jwks_file. */
void jwks_issuer_update(jwks_issuer_t *iss, const conf_t *conf, const conf_issuer_t *ci,
                        int64_t now);

/* Marks an issuer as dropped by a reload: no more fetches or persistence. */
void jwks_issuer_deactivate(jwks_issuer_t *iss);

/* Admin refresh: queues a fetch whatever min_refresh says. Returns 0 for a jwks_file issuer or
 * one a reload dropped (nothing queued), 1 otherwise. */
int jwks_issuer_force_refresh(jwks_issuer_t *iss);

/* The tick of one issuer (see jwks_store_tick). */
int64_t jwks_issuer_tick(jwks_issuer_t *iss, int64_t now);

/* Builds a set from a key set document in a new unmanaged pool (the body is copied into it), with
 * one reference. usable counts keys allowing one of algorithms. Returns APR_SUCCESS; APR_EINVAL
 * with a message when the document is not a key set (the pool is then gone); APR_ENOMEM. A set
 * with no usable key is still returned: the caller logs its skipped keys and releases it. */
apr_status_t jwks_set_build(const char *body, size_t len, unsigned flags, jose_alg_set_t algorithms,
                            int64_t fetched_at, const char *jwks_uri, const char *etag,
                            jwks_set_t **out, char *err, size_t errlen);

/* Logs, at warn, each key of set the parser skipped (issuer, index, kid, reason) and each key it
 * kept that allows none of algorithms. */
void jwks_set_log_skipped(const jwks_store_t *store, proto_str_t issuer, const jwks_set_t *set,
                          jose_alg_set_t algorithms);

#endif
