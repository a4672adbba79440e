/* The key store as a whole: its issuer list (replaced whole by each configure, under the store
 * lock, which the request path never takes), the change hooks, the log and clock callbacks, and
 * the entry points the fetcher thread drives. One issuer's own behaviour is jwks_issuer.c's; the
 * network is jwks_fetch.c's. */
#include "daemon/jwks_issuer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/jwks_fetch.h"

#define STORE_LOCK(s) apr_thread_mutex_lock((s)->lock)
#define STORE_UNLOCK(s) apr_thread_mutex_unlock((s)->lock)

/* --- callbacks -------------------------------------------------------------------------------- */

int64_t jwks_clock_realtime(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

void jwks_log(const jwks_store_t *store, int level, const char *fmt, ...)
{
    char line[JWKS_LOG_LINE_BYTES];
    va_list ap;
    if (store->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    store->log(store->log_ctx, level, "%s", line);
}

const char *jwks_quote(char *out, size_t outlen, proto_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t limit = outlen < JWKS_LOG_QUOTE_BYTES + 8 ? outlen : JWKS_LOG_QUOTE_BYTES + 8;
    /* Room for one escape (4), "..." (3) and the NUL. */
    for (size_t i = 0; i < s.len && s.ptr != NULL; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (o + 4 + 3 + 1 > limit) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        /* Log lines must stay one line and say what the bytes were: a kid or URL from outside
         * could otherwise forge a second log entry. */
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    if (outlen > 0) {
        out[o < outlen ? o : outlen - 1] = '\0';
    }
    return out;
}

void jwks_store_set_log(jwks_store_t *store, jwks_log_fn fn, void *ctx)
{
    store->log = fn;
    store->log_ctx = ctx;
}

void jwks_store_set_clock(jwks_store_t *store, jwks_clock_fn fn, void *ctx)
{
    store->clock = fn ? fn : jwks_clock_realtime;
    store->clock_ctx = ctx;
}

apr_status_t jwks_store_on_change(jwks_store_t *store, jwks_change_fn fn, void *ctx)
{
    apr_status_t st = APR_SUCCESS;
    STORE_LOCK(store);
    if (store->nhooks < JWKS_MAX_CHANGE_HOOKS) {
        store->hooks[store->nhooks].fn = fn;
        store->hooks[store->nhooks].ctx = ctx;
        store->nhooks++;
    } else {
        st = APR_ENOSPC;
    }
    STORE_UNLOCK(store);
    return st;
}

void jwks_store_on_removal(jwks_store_t *store, jwks_change_fn fn, void *ctx)
{
    store->removal.fn = fn;
    store->removal.ctx = ctx;
}

void jwks_store_notify(jwks_store_t *store)
{
    jwks_change_fn fns[JWKS_MAX_CHANGE_HOOKS];
    void *ctxs[JWKS_MAX_CHANGE_HOOKS];
    size_t n;
    STORE_LOCK(store);
    n = store->nhooks;
    for (size_t i = 0; i < n; i++) {
        fns[i] = store->hooks[i].fn;
        ctxs[i] = store->hooks[i].ctx;
    }
    STORE_UNLOCK(store);
    for (size_t i = 0; i < n; i++) {
        fns[i](ctxs[i]);
    }
}

void jwks_store_wake(jwks_store_t *store)
{
    /* Set before workers start and cleared after they stop (jwks_store_start/stop). */
    if (store->fetcher != NULL) {
        jwks_fetcher_wake(store->fetcher);
    }
}

/* --- life cycle --------------------------------------------------------------------------------
 */

static void store_drop_issuers(jwks_store_t *store)
{
    jwks_issuer_t *list[CONF_MAX_ISSUERS];
    size_t n;
    STORE_LOCK(store);
    n = store->nissuers;
    memcpy(list, store->issuers, n * sizeof(list[0]));
    store->nissuers = 0;
    STORE_UNLOCK(store);
    for (size_t i = 0; i < n; i++) {
        jwks_issuer_deactivate(list[i]);
        jwks_issuer_release(list[i]);
    }
}

static apr_status_t store_cleanup(void *data)
{
    jwks_store_t *store = data;
    jwks_store_stop(store);
    store_drop_issuers(store);
    return APR_SUCCESS;
}

apr_status_t jwks_store_create(jwks_store_t **out, apr_pool_t *p)
{
    jwks_store_t *store = apr_pcalloc(p, sizeof(*store));
    apr_status_t st = apr_thread_mutex_create(&store->lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (st != APR_SUCCESS) {
        return st;
    }
    store->pool = p;
    store->clock = jwks_clock_realtime;
    /* A pre-cleanup: it runs before p's subpools go, and the fetcher thread's own pool is one
     * of them (apr_thread_create); it must be joined first. The mutex is still there then. */
    apr_pool_pre_cleanup_register(p, store, store_cleanup);
    *out = store;
    return APR_SUCCESS;
}

apr_status_t jwks_store_start(jwks_store_t *store)
{
    jwks_fetcher_t *f = NULL;
    if (store->fetcher != NULL) {
        return APR_SUCCESS;
    }
    apr_status_t st = jwks_fetcher_start(&f, store, store->pool);
    if (st == APR_SUCCESS) {
        store->fetcher = f;
    }
    return st;
}

void jwks_store_stop(jwks_store_t *store)
{
    jwks_fetcher_t *f = store->fetcher;
    if (f != NULL) {
        jwks_fetcher_stop(f);
        store->fetcher = NULL;
    }
}

/* --- configure ------------------------------------------------------------------------------- */

typedef struct issuer_refs {
    jwks_issuer_t **issuers;
    size_t n;
} issuer_refs_t;

static apr_status_t issuer_refs_cleanup(void *data)
{
    issuer_refs_t *r = data;
    for (size_t i = 0; i < r->n; i++) {
        jwks_issuer_release(r->issuers[i]);
    }
    return APR_SUCCESS;
}

static jwks_issuer_t *find_kept(jwks_issuer_t **old, size_t nold, const conf_issuer_t *ci)
{
    for (size_t j = 0; j < nold; j++) {
        if (proto_str_eq(jwks_issuer_name(old[j]), ci->issuer) &&
            jwks_issuer_same_source(old[j], ci)) {
            return old[j];
        }
    }
    return NULL;
}

apr_status_t jwks_store_configure(jwks_store_t *store, const conf_t *conf, int64_t now,
                                  jwks_issuer_t ***issuers_out)
{
    jwks_issuer_t *old[CONF_MAX_ISSUERS], *next[CONF_MAX_ISSUERS];
    int created[CONF_MAX_ISSUERS] = {0};
    size_t nold, n = conf->nissuers;

    if (n > CONF_MAX_ISSUERS) {
        return APR_EINVAL;
    }
    /* Only configure changes the list, and one configure runs at a time: the snapshot stays the
     * list until the swap below. References keep the snapshot alive meanwhile. */
    STORE_LOCK(store);
    nold = store->nissuers;
    memcpy(old, store->issuers, nold * sizeof(old[0]));
    STORE_UNLOCK(store);

    /* New issuers first, so a failure leaves every kept issuer's settings untouched. */
    for (size_t i = 0; i < n; i++) {
        next[i] = find_kept(old, nold, &conf->issuers[i]);
        if (next[i] != NULL) {
            continue;
        }
        next[i] = jwks_issuer_create(store, conf, &conf->issuers[i], now);
        if (next[i] == NULL) {
            for (size_t j = 0; j < i; j++) {
                if (created[j]) {
                    jwks_issuer_release(next[j]);
                }
            }
            return APR_ENOMEM;
        }
        created[i] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!created[i]) {
            jwks_issuer_retain(next[i]); /* the new list's; the old list's goes below */
            jwks_issuer_update(next[i], conf, &conf->issuers[i], now);
        }
    }

    STORE_LOCK(store);
    memcpy(store->issuers, next, n * sizeof(next[0]));
    store->nissuers = n;
    STORE_UNLOCK(store);

    for (size_t j = 0; j < nold; j++) {
        int kept = 0;
        for (size_t i = 0; i < n && !kept; i++) {
            kept = next[i] == old[j];
        }
        if (!kept) {
            jwks_issuer_deactivate(old[j]);
        }
        jwks_issuer_release(old[j]); /* the old list's reference */
    }
    if (issuers_out != NULL) {
        issuer_refs_t *r = apr_palloc(conf->pool, sizeof(*r));
        r->issuers = apr_pcalloc(conf->pool, (n ? n : 1) * sizeof(r->issuers[0]));
        r->n = n;
        for (size_t i = 0; i < n; i++) {
            jwks_issuer_retain(next[i]);
            r->issuers[i] = next[i];
        }
        apr_pool_cleanup_register(conf->pool, r, issuer_refs_cleanup, apr_pool_cleanup_null);
        *issuers_out = r->issuers;
    }
    jwks_store_wake(store);
    return APR_SUCCESS;
}

/* --- lookups and admin ------------------------------------------------------------------------ */

jwks_issuer_t *jwks_store_issuer(jwks_store_t *store, proto_str_t issuer)
{
    jwks_issuer_t *found = NULL;
    STORE_LOCK(store);
    for (size_t i = 0; i < store->nissuers && found == NULL; i++) {
        if (proto_str_eq(jwks_issuer_name(store->issuers[i]), issuer)) {
            found = store->issuers[i];
            jwks_issuer_retain(found);
        }
    }
    STORE_UNLOCK(store);
    return found;
}

apr_status_t jwks_store_refresh(jwks_store_t *store, proto_str_t issuer)
{
    jwks_issuer_t *iss = jwks_store_issuer(store, issuer);
    if (iss == NULL) {
        return APR_NOTFOUND;
    }
    apr_status_t st = jwks_issuer_force_refresh(iss) ? APR_SUCCESS : APR_EINVAL;
    if (st == APR_SUCCESS) {
        jwks_store_wake(store);
    }
    jwks_issuer_release(iss);
    return st;
}

/* --- the fetcher's entry points ----------------------------------------------------------------
 */

size_t jwks_store_begin_due(jwks_store_t *store, int64_t now, jwks_issuer_t **issuers,
                            jwks_fetch_plan_t *plans, size_t max)
{
    size_t n = 0;
    STORE_LOCK(store);
    for (size_t i = 0; i < store->nissuers && n < max; i++) {
        if (jwks_issuer_fetch_begin(store->issuers[i], now, &plans[n])) {
            issuers[n] = store->issuers[i];
            jwks_issuer_retain(issuers[n]);
            n++;
        }
    }
    STORE_UNLOCK(store);
    return n;
}

int64_t jwks_store_tick(jwks_store_t *store, int64_t now)
{
    jwks_issuer_t *list[CONF_MAX_ISSUERS];
    size_t n;
    int64_t next = JWKS_NO_DEADLINE;

    /* Ticking may log: do it on a referenced snapshot, not under the store lock. */
    STORE_LOCK(store);
    n = store->nissuers;
    for (size_t i = 0; i < n; i++) {
        list[i] = store->issuers[i];
        jwks_issuer_retain(list[i]);
    }
    STORE_UNLOCK(store);
    for (size_t i = 0; i < n; i++) {
        int64_t t = jwks_issuer_tick(list[i], now);
        next = t < next ? t : next;
        jwks_issuer_release(list[i]);
    }
    return next;
}
