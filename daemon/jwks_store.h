/* The per-issuer key store of jwtauthzd: each configured issuer's current key set, shared with the
 * worker threads as a reference-counted immutable object, its refresh schedule, its removal epoch
 * (what the decision cache checks), persistence of the last good set, and the admin report.
 * Readers never take a global lock and never wait on the network: fetches run on the fetcher
 * thread (jwks_fetch.c). Key URLs come only from the config or the issuer's discovery document. */
#ifndef JWTAUTHZ_DAEMON_JWKS_STORE_H
#define JWTAUTHZ_DAEMON_JWKS_STORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>
#include <yajl/yajl_gen.h>

#include "daemon/conf.h"
#include "daemon/jwks_policy.h"
#include "jose/jwk.h"
#include "proto/str.h"

/* Change hooks a store holds: one per event loop that parks requests waiting for keys. */
#define JWKS_MAX_CHANGE_HOOKS 16u
/* A URL kept by the store (configured or discovered), with its NUL: the config's bound. */
#define JWKS_URL_BYTES (CONF_MAX_URL_BYTES + 1u)
/* A path kept by the store (ca_file, cache_dir), with its NUL. */
#define JWKS_PATH_BYTES PATH_MAX
/* An ETag kept for If-None-Match; a longer one is not kept (the fetch is then unconditional). */
#define JWKS_ETAG_BYTES 256u
/* The last error of an issuer, as logged and reported. */
#define JWKS_ERROR_BYTES 512u

typedef struct jwks_store jwks_store_t;
typedef struct jwks_issuer jwks_issuer_t;

/* One key set of one issuer, immutable once installed. Readers use the first block only. */
typedef struct jwks_set {
    const jose_jwks_t *keys; /* the keys the parser took, and those it skipped, with why */
    int64_t fetched_at;      /* when this document was fetched (or the jwks_file read) */
    uint64_t serial;         /* per issuer, +1 for every set installed */
    size_t usable;           /* keys that verify at least one of the issuer's algorithms */

    /* The store's own: */
    apr_pool_t *pool;           /* unmanaged; the keys' EVP_PKEYs go with it */
    volatile apr_uint32_t refs; /* the issuer's reference plus one per acquire */
    const char *body;           /* the document as served, kept to persist it again after 304 */
    size_t body_len;
    const char *etag;     /* its ETag, NULL when none (or not a valid one) */
    const char *jwks_uri; /* where it came from ("" for a jwks_file set) */
} jwks_set_t;

/* Log levels are conf_log_level_e values (CONF_LOG_ERROR .. CONF_LOG_DEBUG). */
typedef void (*jwks_log_fn)(void *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Seconds since the epoch. */
typedef int64_t (*jwks_clock_fn)(void *ctx);
typedef void (*jwks_change_fn)(void *ctx);

/* --- the store ------------------------------------------------------------------------------- */

/* Makes an empty store in p (the process pool); a pre-cleanup on p stops the fetcher and drops
 * the store's references. Every issuer and set has its own unmanaged pool, so references may be
 * held and dropped from any thread, but issuers point back at their store (log, wake, hooks):
 * release every issuer reference (destroy every generation) before p goes. Returns APR_SUCCESS,
 * or the status of creating its mutex. */
apr_status_t jwks_store_create(jwks_store_t **out, apr_pool_t *p);

/* The log callback (default: none). Called from any thread, never with a store lock held. */
void jwks_store_set_log(jwks_store_t *store, jwks_log_fn fn, void *ctx);

/* The fetcher thread's clock (default jwks_clock_realtime). Set before jwks_store_start(). */
void jwks_store_set_clock(jwks_store_t *store, jwks_clock_fn fn, void *ctx);
int64_t jwks_clock_realtime(void *ctx);

/* Adds a hook the fetcher thread calls after every fetch attempt ends, good or not, so an event
 * loop can resume requests it parked waiting for keys. The hook must not block and must not call
 * back into the store. Returns APR_SUCCESS, or APR_ENOSPC past JWKS_MAX_CHANGE_HOOKS. */
apr_status_t jwks_store_on_change(jwks_store_t *store, jwks_change_fn fn, void *ctx);

/* Sets the hook called whenever an issuer's removal epoch moves (a newly installed set lacks a
 * key the previous one had; a set expired past jwks_max_stale), after the change is in place, on
 * whichever thread made it and possibly with that issuer's lock held: it must be lock-free and
 * must not call back into the store (the daemon bumps its epoch file, epoch_file.h). One hook;
 * set it before jwks_store_start() and before worker threads run. fn NULL removes it. */
void jwks_store_on_removal(jwks_store_t *store, jwks_change_fn fn, void *ctx);

/* Applies a config generation: issuers are matched by issuer string; one whose key source (kind
 * and URL or file) is unchanged keeps its set, schedule and epoch and takes the new timings; a new
 * one is created, loads its persisted set (fetched issuers, when cache_dir is set) or reads its
 * jwks_file, and a fetched one is queued for a fetch at once; issuers no longer configured leave
 * the store and are freed when the last generation holding them goes. jwks_file issuers re-read
 * their file on every call (a file that fails keeps the set it had). Safe while workers hold
 * references. When issuers_out is not NULL it receives an array, in conf->pool, of one referenced
 * issuer per conf->issuers entry (same order), released by a cleanup on conf->pool: the request
 * path goes from its generation to its issuer without a lookup. Returns APR_SUCCESS (key file and
 * cache problems are logged and reported, not returned), APR_EINVAL past CONF_MAX_ISSUERS, or
 * APR_ENOMEM / a mutex status when an issuer cannot be created (the store is then unchanged). */
apr_status_t jwks_store_configure(jwks_store_t *store, const conf_t *conf, int64_t now,
                                  jwks_issuer_t ***issuers_out);

/* Starts the fetcher thread (call once, after the first configure, before workers run). Returns
 * APR_SUCCESS or the status of curl, thread or pool creation. */
apr_status_t jwks_store_start(jwks_store_t *store);

/* Stops the fetcher thread (in-flight transfers are abandoned) and waits for it. Idempotent; the
 * pool's pre-cleanup calls it too. Sets stay readable. */
void jwks_store_stop(jwks_store_t *store);

/* The configured issuer named issuer, with a reference (jwks_issuer_release it), or NULL. Takes
 * the store lock: for admin commands and tests, not for the request path. */
jwks_issuer_t *jwks_store_issuer(jwks_store_t *store, proto_str_t issuer);

/* Admin "refresh": queues a fetch for issuer now, ignoring min_refresh; still at most one in
 * flight (one asked for during a fetch runs right after it). Returns APR_SUCCESS, APR_NOTFOUND
 * when no such issuer is configured, APR_EINVAL for a jwks_file issuer (a reload re-reads it). */
apr_status_t jwks_store_refresh(jwks_store_t *store, proto_str_t issuer);

/* Writes a JSON array, one object per configured issuer: issuer, source ("file", "uri",
 * "discovery"), jwks_uri (configured or discovered; null before discovery), jwks_file, keys
 * [{kid, kty, alg, algs, crv or bits}], skipped [{index, kid, reason}], serial, fetched_at,
 * confirmed_at, next_refresh, stale_at, stale, serving (what acquire would give), fetch_pending,
 * last_error {message, at} or null, fetches {ok, not_modified, failed}, removal_epoch. Times are
 * seconds since the epoch or null. Keys allowing none of the issuer's algorithms have usable:
 * false.
 * Returns the first yajl_gen status that was not ok. */
yajl_gen_status jwks_store_report(jwks_store_t *store, yajl_gen g, int64_t now);

/* --- the request path ------------------------------------------------------------------------ */

/* The issuer's current set with a reference (jwks_set_release it), or NULL when the issuer has no
 * set, or its last good fetch is more than jwks_max_stale before now (the daemon then answers
 * ERROR 503, never ALLOW). Holds the issuer's own mutex only to copy a pointer and count. */
jwks_set_t *jwks_issuer_acquire(jwks_issuer_t *iss, int64_t now);

/* The same, and *epoch set to the removal epoch read under the same lock as the set pointer: a
 * decision verified with the set and cached under that epoch is dropped by any later removal.
 * (Reading jwks_issuer_removal_epoch() after acquiring could pair an old set with a new epoch.) */
jwks_set_t *jwks_issuer_acquire_with_epoch(jwks_issuer_t *iss, int64_t now, uint32_t *epoch);

/* Drops a reference; the last one destroys the set's pool (and its keys). NULL is ignored. */
void jwks_set_release(jwks_set_t *set);

/* Moves whenever a newly installed set lacks a key (same kid, type and key material) the
 * previous one had, and when the set expires past jwks_max_stale: a cached decision made under an
 * older epoch must be treated as a miss. Lock-free (apr_atomic_read32). To pair an epoch with a
 * set, read it before jwks_issuer_acquire, or use jwks_issuer_acquire_with_epoch. */
uint32_t jwks_issuer_removal_epoch(jwks_issuer_t *iss);

/* 1 while the issuer's current set is within jwks_max_stale of its last good fetch at now (always
 * for key files), 0 otherwise. Lock-free, for the decision cache's hit path. */
int jwks_issuer_serving(jwks_issuer_t *iss, int64_t now);

/* The second (since the epoch) from which the issuer's current set stops serving: INT64_MAX for
 * key files, INT64_MIN when the issuer never had a confirmed set. Lock-free. A decision made with
 * the set must not be handed out as reusable past it (the reply's "ttl"). */
int64_t jwks_issuer_serving_until(jwks_issuer_t *iss);

/* A token's kid is not in the set: queues a fetch unless one is queued or in flight, or one began
 * within jwks_min_refresh. Returns 1 when a fetch is now pending (queued or in flight: park the
 * request and wait for the change hook), 0 otherwise (answer with what the set says). 0 always for
 * jwks_file issuers and for issuers no longer configured. */
int jwks_issuer_request_refresh(jwks_issuer_t *iss, int64_t now);

/* Returns 1 when a fetch is queued or in flight. */
int jwks_issuer_fetch_pending(jwks_issuer_t *iss);

/* The issuer string (NUL-terminated as well). */
proto_str_t jwks_issuer_name(const jwks_issuer_t *iss);

void jwks_issuer_retain(jwks_issuer_t *iss);
/* Drops a reference; the last one frees the issuer and its set reference. NULL is ignored. */
void jwks_issuer_release(jwks_issuer_t *iss);

/* --- the fetcher's side (jwks_fetch.c) and the scenario tests ------------------------------- */

/* What one fetch needs, copied out of the issuer when it begins (no lock held during I/O). */
typedef struct jwks_fetch_plan {
    int discover; /* fetch discovery_url first and take jwks_uri from it */
    char discovery_url[JWKS_URL_BYTES];
    char jwks_uri[JWKS_URL_BYTES]; /* configured or last discovered; "" when unknown */
    char etag[JWKS_ETAG_BYTES];    /* send If-None-Match with it; "" for none */
    char ca_file[JWKS_PATH_BYTES]; /* "" for the system store */
    long timeout_s;                /* whole-transfer bound (fetch_timeout) */
} jwks_fetch_plan_t;

typedef enum {
    JWKS_FETCH_OK = 0,       /* 200 with a body */
    JWKS_FETCH_NOT_MODIFIED, /* 304 for the If-None-Match sent */
    JWKS_FETCH_FAILED        /* transport, TLS, size, HTTP status, discovery */
} jwks_fetch_status_e;

typedef struct jwks_fetch_outcome {
    jwks_fetch_status_e status;
    const char *url;  /* what was fetched, for the log */
    const char *body; /* OK: the document (bounded by JWKS_MAX_BYTES by the fetcher) */
    size_t body_len;
    const char *etag;           /* OK: a valid ETag of the response, or NULL */
    jwks_freshness_t freshness; /* OK and NOT_MODIFIED: Cache-Control max-age and Age */
    const char *error;          /* FAILED: curl's message or "HTTP 500" */
} jwks_fetch_outcome_t;

/* Begins the fetch of every configured issuer whose fetch is due at now (jwks_policy_fetch_due),
 * up to max: fills issuers[i] (with a reference) and plans[i]. Returns how many began. */
size_t jwks_store_begin_due(jwks_store_t *store, int64_t now, jwks_issuer_t **issuers,
                            jwks_fetch_plan_t *plans, size_t max);

/* Expires sets past max_stale (moving their epochs), and returns the next time the fetcher has
 * something to do: a scheduled fetch or an expiry; now when a fetch is already due;
 * JWKS_NO_DEADLINE when nothing is scheduled. */
int64_t jwks_store_tick(jwks_store_t *store, int64_t now);

/* Begins one issuer's fetch if it is due: returns 1 and fills plan, else 0. */
int jwks_issuer_fetch_begin(jwks_issuer_t *iss, int64_t now, jwks_fetch_plan_t *plan);

/* Discovery gave jwks_uri (already checked by discovery_read): remembered for the next fetches,
 * and copied into plan (whose etag is dropped when the URL is not the one the set came from). */
void jwks_issuer_discovered(jwks_issuer_t *iss, int64_t now, const char *jwks_uri,
                            jwks_fetch_plan_t *plan);

/* Ends the fetch begun at jwks_issuer_fetch_begin: a body is parsed and installed when it has a
 * usable key (the epoch moves when a key went), a 304 confirms the set held, anything else (and a
 * body that is not a key set or has no usable key) is logged and recorded while the set held stays.
 * The schedule is updated, the set persisted, and the change hooks called. */
void jwks_issuer_fetch_end(jwks_issuer_t *iss, int64_t now, const jwks_fetch_outcome_t *o);

/* Ends a begun fetch without an outcome (the fetcher is stopping): not counted, not logged; the
 * fetch is queued again for whoever starts a fetcher next. */
void jwks_issuer_fetch_abandon(jwks_issuer_t *iss);

#endif
