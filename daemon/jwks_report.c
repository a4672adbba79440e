/* The key store as the admin "keys" and "stats" commands show it: per issuer its source, keys
 * (and the keys skipped, with why, as CONTRACT "Key sets" requires), schedule, last error, fetch
 * counts and removal epoch. Reads a snapshot copied under each issuer's lock; writes JSON through
 * yajl_gen outside it. Changes nothing. */
#include "daemon/jwks_issuer.h"

#include <string.h>

/* A generator that remembers its first failure, so the writer reads as the document it writes. */
typedef struct report_gen {
    yajl_gen g;
    yajl_gen_status st;
} report_gen_t;

static void r_step(report_gen_t *r, yajl_gen_status st)
{
    if (r->st == yajl_gen_status_ok) {
        r->st = st;
    }
}

static void r_str(report_gen_t *r, proto_str_t s)
{
    if (r->st == yajl_gen_status_ok) {
        r_step(r, yajl_gen_string(r->g, (const unsigned char *)s.ptr, s.len));
    }
}

static void r_cstr(report_gen_t *r, const char *s)
{
    if (s == NULL) {
        r_step(r, r->st == yajl_gen_status_ok ? yajl_gen_null(r->g) : r->st);
        return;
    }
    r_str(r, proto_str_make(s, strlen(s)));
}

static void r_key(report_gen_t *r, const char *k)
{
    r_cstr(r, k);
}

static void r_int(report_gen_t *r, long long v)
{
    if (r->st == yajl_gen_status_ok) {
        r_step(r, yajl_gen_integer(r->g, v));
    }
}

static void r_bool(report_gen_t *r, int v)
{
    if (r->st == yajl_gen_status_ok) {
        r_step(r, yajl_gen_bool(r->g, v));
    }
}

/* A time, or null for "never" / "not scheduled". */
static void r_time(report_gen_t *r, int64_t t)
{
    if (t == JWKS_NEVER || t == JWKS_NO_DEADLINE) {
        r_cstr(r, NULL);
    } else {
        r_int(r, (long long)t);
    }
}

static void r_open(report_gen_t *r, int map)
{
    if (r->st == yajl_gen_status_ok) {
        r_step(r, map ? yajl_gen_map_open(r->g) : yajl_gen_array_open(r->g));
    }
}

static void r_close(report_gen_t *r, int map)
{
    if (r->st == yajl_gen_status_ok) {
        r_step(r, map ? yajl_gen_map_close(r->g) : yajl_gen_array_close(r->g));
    }
}

static const char *kty_name(jose_kty_e kty)
{
    switch (kty) {
    case JOSE_KTY_RSA:
        return "RSA";
    case JOSE_KTY_EC:
        return "EC";
    case JOSE_KTY_OKP:
        return "OKP";
    case JOSE_KTY_OCT:
        return "oct";
    default:
        return "unknown";
    }
}

static const char *crv_name(jose_crv_e crv)
{
    switch (crv) {
    case JOSE_CRV_P256:
        return "P-256";
    case JOSE_CRV_P384:
        return "P-384";
    case JOSE_CRV_P521:
        return "P-521";
    case JOSE_CRV_ED25519:
        return "Ed25519";
    default:
        return NULL;
    }
}

static const char *source_name(conf_key_source_e s)
{
    switch (s) {
    case CONF_KEYS_FILE:
        return "file";
    case CONF_KEYS_URI:
        return "uri";
    case CONF_KEYS_DISCOVERY:
        return "discovery";
    }
    return "unknown";
}

static void report_key(report_gen_t *r, const jose_jwk_t *k, jose_alg_set_t allowed)
{
    r_open(r, 1);
    r_key(r, "kid");
    if (k->has_kid) {
        r_str(r, k->kid);
    } else {
        r_cstr(r, NULL);
    }
    r_key(r, "kty");
    r_cstr(r, kty_name(k->kty));
    r_key(r, "alg");
    r_cstr(r, k->alg != JOSE_ALG_UNKNOWN ? jose_alg_name(k->alg) : NULL);
    r_key(r, "algs");
    r_open(r, 0);
    for (int a = JOSE_ALG_UNKNOWN + 1; a < JOSE_ALG_COUNT; a++) {
        if (k->algs & JOSE_ALG_BIT(a)) {
            r_cstr(r, jose_alg_name((jose_alg_e)a));
        }
    }
    r_close(r, 0);
    if (k->kty == JOSE_KTY_EC || k->kty == JOSE_KTY_OKP) {
        r_key(r, "crv");
        r_cstr(r, crv_name(k->crv));
    } else {
        r_key(r, "bits");
        r_int(r, k->bits);
    }
    /* A key kept by the parser but allowing none of the issuer's algorithms verifies nothing. */
    r_key(r, "usable");
    r_bool(r, (k->algs & allowed) != 0);
    r_close(r, 1);
}

static void report_keys(report_gen_t *r, const jwks_set_t *set, jose_alg_set_t allowed)
{
    r_key(r, "keys");
    r_open(r, 0);
    for (size_t i = 0; set != NULL && i < set->keys->nkeys; i++) {
        report_key(r, set->keys->keys[i], allowed);
    }
    r_close(r, 0);
    r_key(r, "skipped");
    r_open(r, 0);
    for (size_t i = 0; set != NULL && i < set->keys->nskipped; i++) {
        const jose_jwk_skipped_t *s = &set->keys->skipped[i];
        r_open(r, 1);
        r_key(r, "index");
        r_int(r, (long long)s->index);
        r_key(r, "kid");
        if (s->kid.len > 0) {
            r_str(r, s->kid);
        } else {
            r_cstr(r, NULL);
        }
        r_key(r, "reason");
        r_cstr(r, s->reason ? s->reason : "unknown");
        r_close(r, 1);
    }
    r_close(r, 0);
}

/* What the report shows of one issuer, copied under its lock. */
typedef struct issuer_view {
    jwks_set_t *set; /* referenced */
    conf_key_source_e source;
    jwks_policy_params_t params;
    jwks_policy_state_t sched;
    jose_alg_set_t algorithms;
    int expired;
    char jwks_uri[JWKS_URL_BYTES];
    char last_error[JWKS_ERROR_BYTES];
    int64_t last_error_at;
    uint64_t n_ok, n_not_modified, n_failed;
} issuer_view_t;

static void issuer_view(jwks_issuer_t *iss, issuer_view_t *v)
{
    apr_thread_mutex_lock(iss->lock);
    v->set = iss->current;
    if (v->set != NULL) {
        apr_atomic_inc32(&v->set->refs);
    }
    v->source = iss->source;
    v->params = iss->params;
    v->sched = iss->sched;
    v->algorithms = iss->algorithms;
    v->expired = iss->expired;
    memcpy(v->jwks_uri, iss->jwks_uri, sizeof(v->jwks_uri));
    memcpy(v->last_error, iss->last_error, sizeof(v->last_error));
    v->last_error_at = iss->last_error_at;
    v->n_ok = iss->n_ok;
    v->n_not_modified = iss->n_not_modified;
    v->n_failed = iss->n_failed;
    apr_thread_mutex_unlock(iss->lock);
}

static void report_issuer(report_gen_t *r, jwks_issuer_t *iss, int64_t now)
{
    issuer_view_t v;
    issuer_view(iss, &v);
    int fetched = v.source != CONF_KEYS_FILE;
    int stale =
        fetched && v.set != NULL && (v.expired || jwks_policy_is_stale(&v.params, &v.sched, now));

    r_open(r, 1);
    r_key(r, "issuer");
    r_str(r, iss->name);
    r_key(r, "source");
    r_cstr(r, source_name(v.source));
    r_key(r, "jwks_uri");
    r_cstr(r, v.jwks_uri[0] ? v.jwks_uri : NULL);
    r_key(r, "discovery_uri");
    r_cstr(r, v.source == CONF_KEYS_DISCOVERY ? iss->source_ref : NULL);
    r_key(r, "jwks_file");
    r_cstr(r, v.source == CONF_KEYS_FILE ? iss->source_ref : NULL);
    report_keys(r, v.set, v.algorithms);
    r_key(r, "serial");
    if (v.set != NULL) {
        r_int(r, (long long)v.set->serial);
    } else {
        r_cstr(r, NULL);
    }
    r_key(r, "fetched_at");
    r_time(r, v.set ? v.set->fetched_at : JWKS_NEVER);
    r_key(r, "confirmed_at");
    r_time(r, v.set ? v.sched.confirmed_at : JWKS_NEVER);
    r_key(r, "next_refresh");
    r_time(r, !fetched ? JWKS_NEVER : v.sched.queued ? now : v.sched.next_refresh_at);
    r_key(r, "stale_at");
    r_time(r, fetched && v.set ? jwks_policy_stale_at(&v.params, &v.sched) : JWKS_NEVER);
    r_key(r, "stale");
    r_bool(r, stale);
    /* What jwks_issuer_acquire would answer now: 0 means this issuer's tokens get ERROR 503. */
    r_key(r, "serving");
    r_bool(r, v.set != NULL && !stale);
    r_key(r, "fetch_pending");
    r_bool(r, v.sched.queued || v.sched.in_flight);
    r_key(r, "last_error");
    if (v.last_error[0] != '\0') {
        r_open(r, 1);
        r_key(r, "message");
        r_cstr(r, v.last_error);
        r_key(r, "at");
        r_time(r, v.last_error_at);
        r_close(r, 1);
    } else {
        r_cstr(r, NULL);
    }
    r_key(r, "fetches");
    r_open(r, 1);
    r_key(r, "ok");
    r_int(r, (long long)v.n_ok);
    r_key(r, "not_modified");
    r_int(r, (long long)v.n_not_modified);
    r_key(r, "failed");
    r_int(r, (long long)v.n_failed);
    r_close(r, 1);
    r_key(r, "removal_epoch");
    r_int(r, (long long)jwks_issuer_removal_epoch(iss));
    r_close(r, 1);
    jwks_set_release(v.set);
}

yajl_gen_status jwks_store_report(jwks_store_t *store, yajl_gen g, int64_t now)
{
    jwks_issuer_t *list[CONF_MAX_ISSUERS];
    size_t n;
    report_gen_t r = {g, yajl_gen_status_ok};

    apr_thread_mutex_lock(store->lock);
    n = store->nissuers;
    for (size_t i = 0; i < n; i++) {
        list[i] = store->issuers[i];
        jwks_issuer_retain(list[i]);
    }
    apr_thread_mutex_unlock(store->lock);
    r_open(&r, 0);
    for (size_t i = 0; i < n; i++) {
        report_issuer(&r, list[i], now);
        jwks_issuer_release(list[i]);
    }
    r_close(&r, 0);
    return r.st;
}
