/* One issuer's side of a fetch (see jwks_store.h "the fetcher's side"): beginning it with a plan
 * copied out under the lock, discovery's result, and what an outcome does (install a usable set,
 * confirm on 304, or record a failure while the set held stays), then persistence and the change
 * hooks. Also the timer pass that expires sets past max_stale. Runs on the fetcher thread (and in
 * the scenario tests); parsing, key comparison and disk happen without the issuer's lock. */
#include "daemon/jwks_issuer.h"

#include <stdio.h>
#include <string.h>

#include "daemon/jwks_persist.h"

int64_t jwks_issuer_tick(jwks_issuer_t *iss, int64_t now)
{
    int64_t next = JWKS_NO_DEADLINE;
    ISSUER_LOCK(iss);
    int expired_now = jwks_issuer_expire_locked(iss, now);
    if (iss->active && iss->source != CONF_KEYS_FILE) {
        if (jwks_policy_fetch_due(&iss->params, &iss->sched, now)) {
            next = now;
        } else if (!iss->sched.in_flight) {
            next = iss->sched.next_refresh_at;
        }
        if (iss->current != NULL && !iss->expired) {
            int64_t stale_at = jwks_policy_stale_at(&iss->params, &iss->sched);
            next = stale_at < next ? stale_at : next;
        }
    }
    int64_t max_stale_s = iss->params.max_stale_s;
    ISSUER_UNLOCK(iss);
    if (expired_now) {
        jwks_issuer_log_expired(iss, max_stale_s);
    }
    return next;
}

/* Called with the lock held: the ETag to send for a fetch of uri, or "". */
static void plan_etag_locked(const jwks_issuer_t *iss, const char *uri, jwks_fetch_plan_t *plan)
{
    const jwks_set_t *cur = iss->current;
    plan->etag[0] = '\0';
    if (cur != NULL && cur->etag != NULL && strcmp(cur->jwks_uri, uri) == 0 &&
        jwks_policy_etag_is_valid(cur->etag, strlen(cur->etag), sizeof(plan->etag))) {
        jwks_copy_cstr(plan->etag, sizeof(plan->etag), cur->etag);
    }
}

int jwks_issuer_fetch_begin(jwks_issuer_t *iss, int64_t now, jwks_fetch_plan_t *plan)
{
    int begun = 0;
    ISSUER_LOCK(iss);
    if (iss->active && iss->source != CONF_KEYS_FILE &&
        jwks_policy_fetch_due(&iss->params, &iss->sched, now)) {
        jwks_policy_fetch_begin(&iss->sched, now);
        plan->discover =
            iss->source == CONF_KEYS_DISCOVERY &&
            (iss->jwks_uri[0] == '\0' ||
             jwks_policy_rediscover(&iss->params, &iss->sched, iss->discovered_at, now));
        jwks_copy_cstr(plan->discovery_url, sizeof(plan->discovery_url),
                       iss->source == CONF_KEYS_DISCOVERY ? iss->source_ref : "");
        jwks_copy_cstr(plan->jwks_uri, sizeof(plan->jwks_uri), iss->jwks_uri);
        plan_etag_locked(iss, iss->jwks_uri, plan);
        jwks_copy_cstr(plan->ca_file, sizeof(plan->ca_file), iss->ca_file);
        plan->timeout_s = iss->fetch_timeout_s;
        begun = 1;
    }
    ISSUER_UNLOCK(iss);
    return begun;
}

void jwks_issuer_discovered(jwks_issuer_t *iss, int64_t now, const char *jwks_uri,
                            jwks_fetch_plan_t *plan)
{
    ISSUER_LOCK(iss);
    jwks_copy_cstr(iss->jwks_uri, sizeof(iss->jwks_uri), jwks_uri);
    iss->discovered_at = now;
    jwks_copy_cstr(plan->jwks_uri, sizeof(plan->jwks_uri), jwks_uri);
    plan_etag_locked(iss, jwks_uri, plan);
    ISSUER_UNLOCK(iss);
}

/* Writes set to the cache directory, confirmed at confirmed_at. Failures are logged: the set in
 * memory is what serves; the file only helps a restart. */
static void issuer_persist(jwks_issuer_t *iss, const jwks_set_t *set, int64_t confirmed_at)
{
    char cache_dir[JWKS_PATH_BYTES], err[JWKS_ERROR_BYTES], qi[JWKS_LOG_QUOTE_BYTES + 8];
    apr_pool_t *scratch = NULL;

    ISSUER_LOCK(iss);
    int active = iss->active;
    jwks_copy_cstr(cache_dir, sizeof(cache_dir), iss->cache_dir);
    ISSUER_UNLOCK(iss);
    /* An issuer a reload dropped must not overwrite the file of its successor. */
    if (!active || cache_dir[0] == '\0' ||
        apr_pool_create_unmanaged_ex(&scratch, NULL, NULL) != APR_SUCCESS) {
        return;
    }
    jwks_persist_record_t rec = {
        .issuer = iss->name,
        .source = iss->source_ref,
        .jwks_uri = set->jwks_uri,
        .fetched_at = set->fetched_at,
        .confirmed_at = confirmed_at,
        .etag = set->etag,
        .body = set->body,
        .body_len = set->body_len,
    };
    if (jwks_persist_save(scratch, cache_dir, &rec, err, sizeof(err)) != APR_SUCCESS) {
        jwks_one_line(err);
        jwks_log(iss->store, CONF_LOG_WARN, "jwks: issuer \"%s\": cannot persist key set: %s",
                 jwks_issuer_quote_name(qi, sizeof(qi), iss), err);
    }
    apr_pool_destroy(scratch);
}

/* A 200: parse, and install when the set has a usable key. Returns 0, or -1 with err set. */
static int fetch_end_body(jwks_issuer_t *iss, int64_t now, const jwks_fetch_outcome_t *o, char *err,
                          size_t errlen)
{
    /* Room for the prefix below: the parser's message is cut, never the prefix. */
    char perr[JWKS_ERROR_BYTES - 32];
    jwks_set_t *set = NULL;

    ISSUER_LOCK(iss);
    jose_alg_set_t algs = iss->algorithms;
    ISSUER_UNLOCK(iss);
    /* Fetched sets never carry HS keys (flags 0): see ISSUER_HMAC_ALGS. */
    if (jwks_set_build(o->body, o->body_len, 0, algs, now, o->url, o->etag, &set, perr,
                       sizeof(perr)) != APR_SUCCESS) {
        snprintf(err, errlen, "not a key set: %s", perr);
        return -1;
    }
    jwks_set_log_skipped(iss->store, iss->name, set, algs);
    if (set->usable == 0) {
        snprintf(err, errlen, "no usable key (%zu kept, %zu skipped)", set->keys->nkeys,
                 set->keys->nskipped);
        jwks_set_release(set);
        return -1;
    }
    int drops = jwks_issuer_install(iss, set, 1, now, &o->freshness, now);
    jwks_issuer_log_installed(iss, set, o->url, drops);
    issuer_persist(iss, set, now);
    return 0;
}

/* A 304: the set held is confirmed. Returns 0, or -1 with err set. */
static int fetch_end_not_modified(jwks_issuer_t *iss, int64_t now, const jwks_fetch_outcome_t *o,
                                  char *err, size_t errlen)
{
    char qi[JWKS_LOG_QUOTE_BYTES + 8];
    ISSUER_LOCK(iss);
    jwks_set_t *set = iss->current;
    if (set != NULL) {
        apr_atomic_inc32(&set->refs);
        jwks_policy_fetch_succeeded(&iss->params, &iss->sched, now, &o->freshness);
        jwks_issuer_publish_serving_locked(iss);
        iss->n_not_modified++;
        iss->expired = 0;
    }
    ISSUER_UNLOCK(iss);
    if (set == NULL) {
        snprintf(err, errlen, "304 Not Modified without a key set held");
        return -1;
    }
    jwks_log(iss->store, CONF_LOG_DEBUG, "jwks: issuer \"%s\": key set %llu not modified",
             jwks_issuer_quote_name(qi, sizeof(qi), iss), (unsigned long long)set->serial);
    issuer_persist(iss, set, now);
    jwks_set_release(set);
    return 0;
}

void jwks_issuer_fetch_end(jwks_issuer_t *iss, int64_t now, const jwks_fetch_outcome_t *o)
{
    char err[JWKS_ERROR_BYTES] = "", qi[JWKS_LOG_QUOTE_BYTES + 8];
    char qu[JWKS_LOG_QUOTE_BYTES + 8];
    int failed;

    switch (o->status) {
    case JWKS_FETCH_OK:
        failed = fetch_end_body(iss, now, o, err, sizeof(err));
        break;
    case JWKS_FETCH_NOT_MODIFIED:
        failed = fetch_end_not_modified(iss, now, o, err, sizeof(err));
        break;
    default:
        jwks_copy_cstr(err, sizeof(err), o->error ? o->error : "fetch failed");
        failed = 1;
        break;
    }
    if (failed) {
        jwks_one_line(err);
        ISSUER_LOCK(iss);
        jwks_policy_fetch_failed(&iss->params, &iss->sched, now);
        iss->n_failed++;
        jwks_copy_cstr(iss->last_error, sizeof(iss->last_error), err);
        iss->last_error_at = now;
        int has_set = iss->current != NULL && !iss->expired;
        int64_t retry = iss->sched.next_refresh_at;
        ISSUER_UNLOCK(iss);
        const char *url = o->url ? o->url : "";
        jwks_log(iss->store, CONF_LOG_ERROR,
                 "jwks: issuer \"%s\": fetch of %s failed: %s; %s; next try at %lld",
                 jwks_issuer_quote_name(qi, sizeof(qi), iss),
                 jwks_quote(qu, sizeof(qu), proto_str_make(url, strlen(url))), err,
                 has_set ? "keeping the key set held" : "no key set to serve", (long long)retry);
    }
    jwks_store_notify(iss->store);
}

void jwks_issuer_fetch_abandon(jwks_issuer_t *iss)
{
    ISSUER_LOCK(iss);
    iss->sched.in_flight = 0;
    iss->sched.queued = iss->active;
    ISSUER_UNLOCK(iss);
}
