/* One issuer of the key store: creation and reload settings, its jwks_file or persisted set,
 * installing a set (the removal epoch moves when a key went), and the request path: the current
 * set handed out by reference, expiry past max_stale, unknown-kid refresh requests. The mutex is
 * held only to copy pointers, counters and settings, never for parsing, key comparison, disk or
 * network. Fetch outcomes are jwks_update.c's, timing jwks_policy.c's, disk jwks_persist.c's. */
#include "daemon/jwks_issuer.h"

#include <stdio.h>
#include <string.h>

#include <apr_strings.h>

#include "daemon/discovery.h"
#include "daemon/jwks_persist.h"
#include "proto/limits.h"

/* HS keys come only from a jwks_file, and only when the issuer allows an HS algorithm
 * (RFC 8725 §3.1: a fetched set must never turn an RS256 verifier into an HS256 one). */
#define ISSUER_HMAC_ALGS                                                                           \
    (JOSE_ALG_BIT(JOSE_ALG_HS256) | JOSE_ALG_BIT(JOSE_ALG_HS384) | JOSE_ALG_BIT(JOSE_ALG_HS512))

const char *jwks_issuer_quote_name(char *out, size_t outlen, const jwks_issuer_t *iss)
{
    return jwks_quote(out, outlen, iss->name);
}

/* --- references ------------------------------------------------------------------------------ */

static apr_status_t issuer_cleanup(void *data)
{
    jwks_issuer_t *iss = data;
    jwks_set_release(iss->current);
    iss->current = NULL;
    return APR_SUCCESS;
}

void jwks_issuer_retain(jwks_issuer_t *iss)
{
    apr_atomic_inc32(&iss->refs);
}

void jwks_issuer_release(jwks_issuer_t *iss)
{
    if (iss != NULL && apr_atomic_dec32(&iss->refs) == 0) {
        apr_pool_destroy(iss->pool);
    }
}

proto_str_t jwks_issuer_name(const jwks_issuer_t *iss)
{
    return iss->name;
}

void jwks_issuer_removed(jwks_issuer_t *iss)
{
    if (iss->store->removal.fn != NULL) {
        iss->store->removal.fn(iss->store->removal.ctx);
    }
}

uint32_t jwks_issuer_removal_epoch(jwks_issuer_t *iss)
{
    return apr_atomic_read32(&iss->removal_epoch);
}

int jwks_issuer_fetch_pending(jwks_issuer_t *iss)
{
    ISSUER_LOCK(iss);
    int pending = iss->sched.queued || iss->sched.in_flight;
    ISSUER_UNLOCK(iss);
    return pending;
}

/* --- settings and creation ------------------------------------------------------------------- */

static const char *ci_source_ref(const conf_issuer_t *ci, char *buf, size_t buflen)
{
    switch (ci->key_source) {
    case CONF_KEYS_FILE:
        return ci->jwks_file;
    case CONF_KEYS_URI:
        return ci->jwks_uri;
    case CONF_KEYS_DISCOVERY:
        if (ci->discovery_uri != NULL) {
            return ci->discovery_uri;
        }
        return discovery_url_build(ci->issuer, buf, buflen) == 0 ? buf : NULL;
    }
    return NULL;
}

int jwks_issuer_same_source(const jwks_issuer_t *iss, const conf_issuer_t *ci)
{
    char buf[JWKS_URL_BYTES];
    const char *ref = ci_source_ref(ci, buf, sizeof(buf));
    return iss->source == ci->key_source && ref != NULL && strcmp(iss->source_ref, ref) == 0;
}

/* Called with the lock held (or before the issuer is shared). */
static void issuer_take_settings(jwks_issuer_t *iss, const conf_t *conf, const conf_issuer_t *ci,
                                 int64_t now)
{
    iss->params.refresh_s = ci->jwks_refresh_s;
    iss->params.min_refresh_s = ci->jwks_min_refresh_s;
    iss->params.max_stale_s = ci->jwks_max_stale_s;
    iss->fetch_timeout_s = (long)ci->fetch_timeout_s;
    iss->algorithms = ci->algorithms;
    jwks_copy_cstr(iss->ca_file, sizeof(iss->ca_file), ci->ca_file);
    jwks_copy_cstr(iss->cache_dir, sizeof(iss->cache_dir), conf->cache_dir);
    iss->active = 1;
    /* A shorter refresh in the new config applies from now, not after the old interval. */
    if (iss->source != CONF_KEYS_FILE && iss->sched.next_refresh_at > now &&
        iss->sched.next_refresh_at - now > iss->params.refresh_s) {
        iss->sched.next_refresh_at = now + iss->params.refresh_s;
    }
    jwks_issuer_publish_serving_locked(iss); /* max_stale may have changed */
}

/* Key comparison runs without the lock: one thread installs into a given issuer at a time (the
 * fetcher for fetched issuers, configure for files), and the loop covers the case where that ever
 * stops being true. */
int jwks_issuer_install(jwks_issuer_t *iss, jwks_set_t *set, int fetched, int64_t now,
                        const jwks_freshness_t *f, int64_t confirmed_at)
{
    jwks_set_t *old;
    int drops;
    for (;;) {
        ISSUER_LOCK(iss);
        old = iss->current;
        if (old != NULL) {
            apr_atomic_inc32(&old->refs);
        }
        ISSUER_UNLOCK(iss);
        drops = jwks_policy_drops_key(old ? old->keys : NULL, set->keys);
        ISSUER_LOCK(iss);
        if (iss->current == old) {
            break;
        }
        ISSUER_UNLOCK(iss);
        jwks_set_release(old);
    }
    set->serial = ++iss->serial;
    iss->current = set;
    iss->expired = 0;
    if (drops) {
        apr_atomic_inc32(&iss->removal_epoch);
        jwks_issuer_removed(iss);
    }
    if (fetched) {
        jwks_policy_fetch_succeeded(&iss->params, &iss->sched, now, f);
        iss->n_ok++;
    } else {
        iss->sched.confirmed_at = confirmed_at;
    }
    jwks_issuer_publish_serving_locked(iss);
    ISSUER_UNLOCK(iss);
    jwks_set_release(old); /* ours */
    jwks_set_release(old); /* the issuer's */
    return drops;
}

static void issuer_record_error(jwks_issuer_t *iss, int64_t now, const char *msg)
{
    ISSUER_LOCK(iss);
    jwks_copy_cstr(iss->last_error, sizeof(iss->last_error), msg);
    iss->last_error_at = now;
    ISSUER_UNLOCK(iss);
}

void jwks_issuer_log_installed(jwks_issuer_t *iss, const jwks_set_t *set, const char *from,
                               int drops)
{
    char qi[JWKS_LOG_QUOTE_BYTES + 8];
    jwks_log(iss->store, CONF_LOG_INFO,
             "jwks: issuer \"%s\": installed key set %llu from %s: %zu keys (%zu usable), %zu "
             "skipped%s",
             jwks_issuer_quote_name(qi, sizeof(qi), iss), (unsigned long long)set->serial, from,
             set->keys->nkeys, set->usable, set->keys->nskipped,
             drops ? "; a key was withdrawn: cached decisions dropped" : "");
}

/* Reads the jwks_file (configure time only: files are never fetched). A file that cannot be read
 * or holds no usable key leaves the set the issuer had. */
static void issuer_load_file(jwks_issuer_t *iss, int64_t now)
{
    apr_pool_t *scratch = NULL;
    char err[JWKS_ERROR_BYTES] = "", msg[JWKS_ERROR_BYTES + 64];
    char qi[JWKS_LOG_QUOTE_BYTES + 8];
    const char *text = NULL;
    size_t len = 0;
    jwks_set_t *set = NULL;

    if (apr_pool_create_unmanaged_ex(&scratch, NULL, NULL) != APR_SUCCESS) {
        issuer_record_error(iss, now, "out of memory reading jwks_file");
        return;
    }
    ISSUER_LOCK(iss);
    jose_alg_set_t algs = iss->algorithms;
    ISSUER_UNLOCK(iss);
    unsigned flags = (algs & ISSUER_HMAC_ALGS) ? JOSE_JWK_ALLOW_OCT : 0u;
    if (jwks_file_read(scratch, iss->source_ref, JWKS_MAX_BYTES, 1, &text, &len, NULL, err,
                       sizeof(err)) == APR_SUCCESS &&
        jwks_set_build(text, len, flags, algs, now, "", NULL, &set, err, sizeof(err)) ==
            APR_SUCCESS) {
        jwks_set_log_skipped(iss->store, iss->name, set, algs);
        if (set->usable == 0) {
            snprintf(err, sizeof(err), "%s: no usable key (%zu kept, %zu skipped)", iss->source_ref,
                     set->keys->nkeys, set->keys->nskipped);
            jwks_set_release(set);
            set = NULL;
        }
    }
    if (set != NULL) {
        int drops = jwks_issuer_install(iss, set, 0, now, NULL, now);
        jwks_issuer_log_installed(iss, set, iss->source_ref, drops);
    } else {
        snprintf(msg, sizeof(msg), "jwks_file: %s", err);
        jwks_one_line(msg);
        issuer_record_error(iss, now, msg);
        ISSUER_LOCK(iss);
        int has_set = iss->current != NULL;
        ISSUER_UNLOCK(iss);
        jwks_log(iss->store, CONF_LOG_ERROR, "jwks: issuer \"%s\": %s; %s",
                 jwks_issuer_quote_name(qi, sizeof(qi), iss), msg,
                 has_set ? "keeping the keys read before" : "its tokens get ERROR 503");
    }
    apr_pool_destroy(scratch);
}

/* Loads the last good set written before a restart: the issuer serves it (within max_stale,
 * counted from when it was last confirmed) while its first fetch runs. */
static void issuer_load_persisted(jwks_issuer_t *iss, int64_t now)
{
    apr_pool_t *scratch = NULL;
    jwks_persist_record_t rec;
    jwks_set_t *set = NULL;
    char err[JWKS_ERROR_BYTES] = "";
    char qi[JWKS_LOG_QUOTE_BYTES + 8];
    apr_status_t st;

    if (iss->cache_dir[0] == '\0' ||
        apr_pool_create_unmanaged_ex(&scratch, NULL, NULL) != APR_SUCCESS) {
        return;
    }
    jwks_issuer_quote_name(qi, sizeof(qi), iss);
    st = jwks_persist_load(scratch, iss->cache_dir, iss->name, &rec, err, sizeof(err));
    if (st != APR_SUCCESS) {
        if (st != APR_ENOENT) {
            jwks_one_line(err);
            jwks_log(iss->store, CONF_LOG_WARN, "jwks: issuer \"%s\": persisted set ignored: %s",
                     qi, err);
        }
    } else if (strcmp(rec.source, iss->source_ref) != 0) {
        jwks_log(iss->store, CONF_LOG_INFO,
                 "jwks: issuer \"%s\": persisted set came from another source; ignored", qi);
    } else if (jwks_set_build(rec.body, rec.body_len, 0, iss->algorithms, rec.fetched_at,
                              rec.jwks_uri,
                              jwks_policy_etag_is_valid(rec.etag, rec.etag ? strlen(rec.etag) : 0,
                                                        JWKS_ETAG_BYTES)
                                  ? rec.etag
                                  : NULL,
                              &set, err, sizeof(err)) != APR_SUCCESS) {
        jwks_one_line(err);
        jwks_log(iss->store, CONF_LOG_WARN, "jwks: issuer \"%s\": persisted set ignored: %s", qi,
                 err);
    } else if (set->usable == 0) {
        jwks_log(iss->store, CONF_LOG_WARN,
                 "jwks: issuer \"%s\": persisted set ignored: no usable key", qi);
        jwks_set_release(set);
    } else {
        jwks_issuer_install(iss, set, 0, now, NULL, rec.confirmed_at);
        jwks_log(iss->store, CONF_LOG_INFO,
                 "jwks: issuer \"%s\": loaded persisted key set: %zu keys, fetched at %lld, last "
                 "confirmed at %lld%s",
                 qi, set->keys->nkeys, (long long)rec.fetched_at, (long long)rec.confirmed_at,
                 jwks_policy_is_stale(&iss->params, &iss->sched, now)
                     ? " (older than jwks_max_stale: not served)"
                     : "");
    }
    apr_pool_destroy(scratch);
}

jwks_issuer_t *jwks_issuer_create(jwks_store_t *store, const conf_t *conf, const conf_issuer_t *ci,
                                  int64_t now)
{
    apr_pool_t *p = NULL;
    char buf[JWKS_URL_BYTES];
    const char *ref = ci_source_ref(ci, buf, sizeof(buf));

    if (ref == NULL || apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return NULL;
    }
    apr_pool_tag(p, "jwks_issuer");
    jwks_issuer_t *iss = apr_pcalloc(p, sizeof(*iss));
    iss->pool = p;
    if (apr_thread_mutex_create(&iss->lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
        apr_pool_destroy(p);
        return NULL;
    }
    /* Registered after the mutex, so it runs before the mutex's own cleanup. */
    apr_pool_cleanup_register(p, iss, issuer_cleanup, apr_pool_cleanup_null);
    iss->refs = 1;
    iss->store = store;
    iss->name = proto_str_make(apr_pstrmemdup(p, ci->issuer.ptr, ci->issuer.len), ci->issuer.len);
    iss->source = ci->key_source;
    iss->source_ref = apr_pstrdup(p, ref);
    jwks_policy_state_init(&iss->sched, now);
    iss->discovered_at = JWKS_NEVER;
    iss->last_error_at = JWKS_NEVER;
    if (ci->key_source == CONF_KEYS_URI) {
        jwks_copy_cstr(iss->jwks_uri, sizeof(iss->jwks_uri), ref);
    }
    issuer_take_settings(iss, conf, ci, now);
    if (ci->key_source == CONF_KEYS_FILE) {
        iss->sched.queued = 0;
        iss->sched.next_refresh_at = JWKS_NO_DEADLINE;
        issuer_load_file(iss, now);
    } else {
        issuer_load_persisted(iss, now);
    }
    return iss;
}

void jwks_issuer_update(jwks_issuer_t *iss, const conf_t *conf, const conf_issuer_t *ci,
                        int64_t now)
{
    ISSUER_LOCK(iss);
    issuer_take_settings(iss, conf, ci, now);
    ISSUER_UNLOCK(iss);
    if (iss->source == CONF_KEYS_FILE) {
        issuer_load_file(iss, now);
    }
}

void jwks_issuer_deactivate(jwks_issuer_t *iss)
{
    ISSUER_LOCK(iss);
    iss->active = 0;
    iss->sched.queued = 0;
    ISSUER_UNLOCK(iss);
}

/* --- the request path ------------------------------------------------------------------------ */

void jwks_issuer_publish_serving_locked(jwks_issuer_t *iss)
{
    int64_t until = INT64_MAX;
    if (iss->source != CONF_KEYS_FILE) {
        until = iss->sched.confirmed_at == JWKS_NEVER
                    ? INT64_MIN
                    : jwks_policy_stale_at(&iss->params, &iss->sched);
    }
    apr_atomic_set64(&iss->serving_until, (apr_uint64_t)until);
}

int64_t jwks_issuer_serving_until(jwks_issuer_t *iss)
{
    return (int64_t)apr_atomic_read64(&iss->serving_until);
}

int jwks_issuer_serving(jwks_issuer_t *iss, int64_t now)
{
    return now < (int64_t)apr_atomic_read64(&iss->serving_until);
}

int jwks_issuer_expire_locked(jwks_issuer_t *iss, int64_t now)
{
    if (iss->source == CONF_KEYS_FILE || iss->current == NULL || iss->expired ||
        !jwks_policy_is_stale(&iss->params, &iss->sched, now)) {
        return 0;
    }
    iss->expired = 1;
    apr_atomic_inc32(&iss->removal_epoch);
    jwks_issuer_removed(iss);
    return 1;
}

void jwks_issuer_log_expired(jwks_issuer_t *iss, int64_t max_stale_s)
{
    char qi[JWKS_LOG_QUOTE_BYTES + 8];
    jwks_log(iss->store, CONF_LOG_ERROR,
             "jwks: issuer \"%s\": no good fetch for longer than jwks_max_stale (%lld s): key set "
             "expired, its tokens get ERROR 503 until a fetch succeeds",
             jwks_issuer_quote_name(qi, sizeof(qi), iss), (long long)max_stale_s);
}

jwks_set_t *jwks_issuer_acquire_with_epoch(jwks_issuer_t *iss, int64_t now, uint32_t *epoch)
{
    ISSUER_LOCK(iss);
    int expired_now = jwks_issuer_expire_locked(iss, now);
    jwks_set_t *set = iss->expired ? NULL : iss->current;
    if (set != NULL) {
        apr_atomic_inc32(&set->refs);
    }
    if (epoch != NULL) {
        *epoch = apr_atomic_read32(&iss->removal_epoch);
    }
    int64_t max_stale_s = iss->params.max_stale_s;
    ISSUER_UNLOCK(iss);
    if (expired_now) {
        jwks_issuer_log_expired(iss, max_stale_s);
    }
    return set;
}

jwks_set_t *jwks_issuer_acquire(jwks_issuer_t *iss, int64_t now)
{
    return jwks_issuer_acquire_with_epoch(iss, now, NULL);
}

int jwks_issuer_request_refresh(jwks_issuer_t *iss, int64_t now)
{
    int pending = 0, queued = 0;
    if (iss->source == CONF_KEYS_FILE) {
        return 0;
    }
    ISSUER_LOCK(iss);
    if (iss->active) {
        if (iss->sched.queued || iss->sched.in_flight) {
            pending = 1;
        } else if (jwks_policy_may_refetch(&iss->params, &iss->sched, now)) {
            iss->sched.queued = 1;
            pending = queued = 1;
        }
    }
    ISSUER_UNLOCK(iss);
    if (queued) {
        jwks_store_wake(iss->store);
    }
    return pending;
}

int jwks_issuer_force_refresh(jwks_issuer_t *iss)
{
    int queued = 0;
    if (iss->source == CONF_KEYS_FILE) {
        return 0;
    }
    ISSUER_LOCK(iss);
    if (iss->active) {
        /* During a fetch this queues the next one, which begins when it ends: an operator's
         * refresh is never lost, and never runs two fetches of one issuer at once. */
        iss->sched.queued = 1;
        queued = 1;
    }
    ISSUER_UNLOCK(iss);
    return queued;
}
