/* The fetcher thread (see jwks_fetch.h): a curl multi loop that begins the fetches the store says
 * are due, runs discovery then key set transfers, and hands each outcome to the store. Network
 * bytes land in a proto_buf capped at DISCOVERY_MAX_BYTES or JWKS_MAX_BYTES; the write callback
 * refuses past it (libcurl 7.88 does not stop a chunked body at CURLOPT_MAXFILESIZE). Each
 * transfer's pool cleanup frees its easy handle, headers and buffer; only this thread uses them. */
#include "daemon/jwks_fetch.h"

#include <stdio.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <curl/curl.h>

#include "daemon/discovery.h"
#include "daemon/jwks_issuer.h"
#include "proto/buf.h"
#include "proto/limits.h"
#include "version.h"

/* CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR appeared in 7.85.0. */
#define JWKS_FETCH_CURL_MIN_VERSION 0x075500

typedef struct jwks_transfer jwks_transfer_t;

struct jwks_fetcher {
    jwks_store_t *store;
    CURLM *multi;
    apr_thread_t *thread;
    volatile apr_uint32_t stopping;
    apr_pool_t *tpool;          /* the thread's own (unmanaged): transfers are its subpools */
    jwks_transfer_t *transfers; /* live ones, for the stop path */
};

struct jwks_transfer {
    apr_pool_t *pool;
    jwks_fetcher_t *f;
    jwks_transfer_t *next;
    jwks_issuer_t *iss; /* a reference, owned by the transfer */
    jwks_fetch_plan_t *plan;
    int discovery; /* fetching the OpenID configuration, not the key set */
    const char *url;
    CURL *easy;
    struct curl_slist *headers;
    proto_buf_t body;
    proto_buf_status_e body_status; /* why the write callback refused, if it did */
    char errbuf[CURL_ERROR_SIZE];
};

static int64_t fetcher_now(jwks_fetcher_t *f)
{
    return f->store->clock(f->store->clock_ctx);
}

/* --- one transfer ----------------------------------------------------------------------------- */

static apr_status_t transfer_cleanup(void *data)
{
    jwks_transfer_t *t = data;
    if (t->easy != NULL) {
        curl_multi_remove_handle(t->f->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    proto_buf_free(&t->body);
    return APR_SUCCESS;
}

static size_t transfer_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    jwks_transfer_t *t = userdata;
    size_t n = size * nmemb;
    /* Checked against the cap before anything is reserved; returning less than n makes curl
     * abort the transfer with CURLE_WRITE_ERROR. */
    t->body_status = proto_buf_append(&t->body, ptr, n);
    return t->body_status == PROTO_BUF_OK ? n : 0;
}

static CURLcode transfer_set_options(jwks_transfer_t *t, size_t max_bytes)
{
    const jwks_fetch_plan_t *plan = t->plan;
    long timeout = plan->timeout_s > 0 ? plan->timeout_s : 1L;
    long connect = timeout < JWKS_FETCH_CONNECT_TIMEOUT_S ? timeout : JWKS_FETCH_CONNECT_TIMEOUT_S;
    long low_time = timeout < JWKS_FETCH_LOW_SPEED_TIME_S ? timeout : JWKS_FETCH_LOW_SPEED_TIME_S;
    CURLcode rc = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (rc == CURLE_OK) {                                                                      \
            rc = curl_easy_setopt(t->easy, opt, val);                                              \
        }                                                                                          \
    } while (0)
    SETOPT(CURLOPT_PRIVATE, t);
    SETOPT(CURLOPT_URL, t->url);
    /* HTTPS only, redirects included: keys over plain HTTP can be swapped by anyone on path. */
    SETOPT(CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
    SETOPT(CURLOPT_MAXREDIRS, JWKS_FETCH_MAX_REDIRS);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (plan->ca_file[0] != '\0') {
        SETOPT(CURLOPT_CAINFO, plan->ca_file);
    }
    /* No proxy from the environment: an https_proxy inherited from whoever started the daemon
     * would decide where key requests go (and which CONNECT tunnels they take) without anything
     * in the config saying so. The empty string disables proxies, environment included. */
    SETOPT(CURLOPT_PROXY, "");
    SETOPT(CURLOPT_CONNECTTIMEOUT, connect);
    SETOPT(CURLOPT_TIMEOUT, timeout);
    SETOPT(CURLOPT_LOW_SPEED_LIMIT, JWKS_FETCH_LOW_SPEED_BYTES_PER_S);
    SETOPT(CURLOPT_LOW_SPEED_TIME, low_time);
    /* No SIGALRM for DNS timeouts: signals and threads do not mix. */
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    /* Refuses early when Content-Length says too much; the write callback is the real bound. */
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
    SETOPT(CURLOPT_WRITEFUNCTION, transfer_on_body);
    SETOPT(CURLOPT_WRITEDATA, t);
    SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
    SETOPT(CURLOPT_USERAGENT, "jwtauthz/" JWTAUTHZ_VERSION);
    SETOPT(CURLOPT_HTTPHEADER, t->headers);
#undef SETOPT
    return rc;
}

/* Starts a transfer for iss (whose reference it takes on success) of the discovery document or
 * the key set. Returns 0, or -1 with a message in err (iss is then still the caller's). */
static int transfer_start(jwks_fetcher_t *f, jwks_issuer_t *iss, const jwks_fetch_plan_t *plan,
                          int discovery, char *err, size_t errlen)
{
    apr_pool_t *p = NULL;
    const char *url = discovery ? plan->discovery_url : plan->jwks_uri;
    size_t max = discovery ? DISCOVERY_MAX_BYTES : JWKS_MAX_BYTES;

    /* curl refuses other schemes too (CURLOPT_PROTOCOLS_STR); checking first gives a plain
     * message and keeps userinfo and odd bytes out of the request. */
    if (!discovery_url_is_https(proto_str_make(url, strlen(url)), JWKS_URL_BYTES - 1)) {
        snprintf(err, errlen, "not an https URL: refused");
        return -1;
    }
    if (apr_pool_create(&p, f->tpool) != APR_SUCCESS) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    jwks_transfer_t *t = apr_pcalloc(p, sizeof(*t));
    t->pool = p;
    t->f = f;
    t->discovery = discovery;
    t->plan = apr_pmemdup(p, plan, sizeof(*plan));
    t->url = discovery ? t->plan->discovery_url : t->plan->jwks_uri;
    proto_buf_init(&t->body, max, 0);
    apr_pool_cleanup_register(p, t, transfer_cleanup, apr_pool_cleanup_null);

    CURLcode rc = CURLE_OUT_OF_MEMORY;
    struct curl_slist *h = curl_slist_append(
        NULL, discovery ? "Accept: application/json"
                        : "Accept: application/jwk-set+json, application/json;q=0.9");
    t->headers = h;
    /* RFC 9110 §13.1.2: a 304 then says our set is still current, without the body. */
    if (h != NULL && !discovery && t->plan->etag[0] != '\0') {
        h = curl_slist_append(t->headers, apr_pstrcat(p, "If-None-Match: ", t->plan->etag, NULL));
        t->headers = h ? h : t->headers;
    }
    t->easy = h ? curl_easy_init() : NULL;
    if (t->easy != NULL) {
        rc = transfer_set_options(t, max);
    }
    if (rc == CURLE_OK) {
        CURLMcode mrc = curl_multi_add_handle(f->multi, t->easy);
        rc = mrc == CURLM_OK ? CURLE_OK : CURLE_FAILED_INIT;
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "cannot set up the transfer: %s", curl_easy_strerror(rc));
        apr_pool_destroy(p);
        return -1;
    }
    t->iss = iss;
    t->next = f->transfers;
    f->transfers = t;
    jwks_log(f->store, CONF_LOG_DEBUG, "jwks: fetching %s%s", t->url,
             t->plan->etag[0] ? " (conditional)" : "");
    return 0;
}

static void transfer_unlink(jwks_fetcher_t *f, jwks_transfer_t *t)
{
    for (jwks_transfer_t **pp = &f->transfers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            return;
        }
    }
}

/* Reads freshness and the ETag of the last response (after redirects). */
static void transfer_read_headers(jwks_transfer_t *t, jwks_fetch_outcome_t *o)
{
    struct curl_header *h = NULL;
    /* Several Cache-Control lines read as one comma-joined list (RFC 9110 §5.3). */
    for (size_t i = 0;; i++) {
        if (curl_easy_header(t->easy, "Cache-Control", i, CURLH_HEADER, -1, &h) != CURLHE_OK) {
            break;
        }
        jwks_policy_read_cache_control(&o->freshness, h->value, strlen(h->value));
        if (i + 1 >= h->amount) {
            break;
        }
    }
    if (curl_easy_header(t->easy, "Age", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
        jwks_policy_read_age(&o->freshness, h->value, strlen(h->value));
    }
    if (curl_easy_header(t->easy, "ETag", 0, CURLH_HEADER, -1, &h) == CURLHE_OK &&
        jwks_policy_etag_is_valid(h->value, strlen(h->value), JWKS_ETAG_BYTES)) {
        o->etag = apr_pstrdup(t->pool, h->value);
    }
}

/* What a finished transfer amounts to. o->error points into err when it failed. */
static void transfer_outcome(jwks_transfer_t *t, CURLcode res, jwks_fetch_outcome_t *o, char *err,
                             size_t errlen)
{
    long code = 0;
    memset(o, 0, sizeof(*o));
    o->status = JWKS_FETCH_FAILED;
    o->url = t->url;
    o->error = err;
    if (t->body_status == PROTO_BUF_TOO_LARGE || res == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "response body over %zu bytes: transfer aborted", t->body.max);
        return;
    }
    if (t->body_status == PROTO_BUF_NO_MEMORY) {
        snprintf(err, errlen, "out of memory reading the response");
        return;
    }
    if (res != CURLE_OK) {
        snprintf(err, errlen, "%s (curl %d)", t->errbuf[0] ? t->errbuf : curl_easy_strerror(res),
                 (int)res);
        return;
    }
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
        o->status = JWKS_FETCH_OK;
        o->body = (const char *)proto_buf_ptr(&t->body);
        o->body_len = proto_buf_used(&t->body);
        transfer_read_headers(t, o);
        o->error = NULL;
    } else if (code == 304 && !t->discovery && t->plan->etag[0] != '\0') {
        o->status = JWKS_FETCH_NOT_MODIFIED;
        transfer_read_headers(t, o);
        o->etag = NULL;
        o->error = NULL;
    } else {
        snprintf(err, errlen, "HTTP status %ld", code);
    }
}

/* A finished transfer: discovery moves on to the key set; a key set goes to the store. */
static void transfer_finish(jwks_fetcher_t *f, jwks_transfer_t *t, CURLcode res)
{
    char err[JWKS_ERROR_BYTES], derr[JWKS_ERROR_BYTES], uri[JWKS_URL_BYTES];
    jwks_fetch_outcome_t o;
    int64_t now = fetcher_now(f);

    transfer_unlink(f, t);
    transfer_outcome(t, res, &o, err, sizeof(err));
    if (t->discovery) {
        if (o.status == JWKS_FETCH_OK &&
            discovery_read(t->pool, o.body, o.body_len, jwks_issuer_name(t->iss), uri, sizeof(uri),
                           derr, sizeof(derr)) == APR_SUCCESS) {
            jwks_issuer_discovered(t->iss, now, uri, t->plan);
            if (transfer_start(f, t->iss, t->plan, 0, derr, sizeof(derr)) == 0) {
                t->iss = NULL; /* the new transfer has the reference */
                apr_pool_destroy(t->pool);
                return;
            }
            snprintf(err, sizeof(err), "%s", derr);
            o.url = t->plan->jwks_uri;
        } else {
            /* The reason discovery failed: its document, or the transfer itself. */
            char why[JWKS_ERROR_BYTES - 16];
            snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1,
                     o.status == JWKS_FETCH_OK ? derr : err);
            snprintf(err, sizeof(err), "discovery: %s", why);
        }
        o.status = JWKS_FETCH_FAILED;
        o.error = err;
    }
    jwks_issuer_fetch_end(t->iss, now, &o);
    jwks_issuer_release(t->iss);
    t->iss = NULL;
    apr_pool_destroy(t->pool);
}

/* --- the loop --------------------------------------------------------------------------------- */

static void fetcher_begin_due(jwks_fetcher_t *f, int64_t now)
{
    char err[JWKS_ERROR_BYTES];
    jwks_issuer_t *iss;
    jwks_fetch_plan_t plan;
    /* One at a time: a begun fetch is no longer due, so each call finds the next one, and one
     * plan on the stack does (there are at most CONF_MAX_ISSUERS). */
    while (jwks_store_begin_due(f->store, now, &iss, &plan, 1) == 1) {
        int discovery = plan.discover || plan.jwks_uri[0] == '\0';
        if (transfer_start(f, iss, &plan, discovery, err, sizeof(err)) != 0) {
            jwks_fetch_outcome_t o;
            memset(&o, 0, sizeof(o));
            o.status = JWKS_FETCH_FAILED;
            o.url = discovery ? plan.discovery_url : plan.jwks_uri;
            o.error = err;
            jwks_issuer_fetch_end(iss, now, &o);
            jwks_issuer_release(iss);
        }
    }
}

static void fetcher_collect(jwks_fetcher_t *f)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        jwks_transfer_t *t = NULL;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        /* Read res before transfer_finish: it removes the handle, which frees msg. */
        CURLcode res = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t != NULL) {
            transfer_finish(f, t, res);
        }
    }
}

static int fetcher_wait_ms(jwks_fetcher_t *f, int64_t now)
{
    long wait_ms = JWKS_FETCH_IDLE_WAIT_MS, curl_ms = -1;
    int64_t deadline = jwks_store_tick(f->store, now);
    if (deadline != JWKS_NO_DEADLINE) {
        int64_t d = deadline - now;
        if (d <= 0) {
            wait_ms = 0;
        } else if (d == 1) {
            /* Deadlines and now are whole seconds, and up to a second of now has gone already:
             * waking a full second later would expire a set (and move the epoch cached decisions
             * are checked against) up to a second past jwks_max_stale. Look again shortly. */
            wait_ms = JWKS_FETCH_DEADLINE_STEP_MS;
        } else if (d < JWKS_FETCH_IDLE_WAIT_MS / 1000) {
            wait_ms = (long)(d - 1) * 1000L;
        }
    }
    curl_multi_timeout(f->multi, &curl_ms);
    if (curl_ms >= 0 && curl_ms < wait_ms) {
        wait_ms = curl_ms;
    }
    return (int)wait_ms;
}

static void *APR_THREAD_FUNC fetcher_main(apr_thread_t *thd, void *data)
{
    jwks_fetcher_t *f = data;
    int running = 0;

    while (!apr_atomic_read32(&f->stopping)) {
        int64_t now = fetcher_now(f);
        fetcher_begin_due(f, now);
        curl_multi_perform(f->multi, &running);
        fetcher_collect(f);
        /* A finished discovery may have added a key set transfer: let perform start it. */
        int wait_ms = fetcher_wait_ms(f, fetcher_now(f));
        curl_multi_poll(f->multi, NULL, 0, wait_ms, NULL);
    }
    while (f->transfers != NULL) {
        jwks_transfer_t *t = f->transfers;
        f->transfers = t->next;
        jwks_issuer_fetch_abandon(t->iss);
        jwks_issuer_release(t->iss);
        apr_pool_destroy(t->pool);
    }
    /* Returned rather than apr_thread_exit(): pthread_exit() unwinds past this frame without
     * unpoisoning its locals, and ASan then reports the thread's teardown as a stack error. */
    (void)thd;
    return NULL;
}

/* --- start and stop ----------------------------------------------------------------------------
 */

static apr_status_t curl_check(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    int https = 0;
    if (v == NULL || v->version_num < JWKS_FETCH_CURL_MIN_VERSION ||
        !(v->features & CURL_VERSION_SSL)) {
        return APR_ENOTIMPL;
    }
    for (const char *const *p = v->protocols; p != NULL && *p != NULL; p++) {
        https |= strcmp(*p, "https") == 0;
    }
    return https ? APR_SUCCESS : APR_ENOTIMPL;
}

apr_status_t jwks_fetcher_start(jwks_fetcher_t **out, jwks_store_t *store, apr_pool_t *p)
{
    apr_status_t st;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return APR_ENOMEM;
    }
    jwks_fetcher_t *f = apr_pcalloc(p, sizeof(*f));
    f->store = store;
    st = curl_check();
    if (st == APR_SUCCESS) {
        f->multi = curl_multi_init();
        st = f->multi ? APR_SUCCESS : APR_ENOMEM;
    }
    if (st == APR_SUCCESS) {
        /* Made here and destroyed after the join: this thread only, meanwhile. */
        st = apr_pool_create_unmanaged_ex(&f->tpool, NULL, NULL);
    }
    if (st == APR_SUCCESS) {
        st = apr_thread_create(&f->thread, NULL, fetcher_main, f, p);
    }
    if (st != APR_SUCCESS) {
        if (f->tpool != NULL) {
            apr_pool_destroy(f->tpool);
        }
        if (f->multi != NULL) {
            curl_multi_cleanup(f->multi);
        }
        curl_global_cleanup();
        return st;
    }
    *out = f;
    return APR_SUCCESS;
}

void jwks_fetcher_wake(jwks_fetcher_t *f)
{
    curl_multi_wakeup(f->multi);
}

void jwks_fetcher_stop(jwks_fetcher_t *f)
{
    apr_status_t rv;
    apr_atomic_set32(&f->stopping, 1);
    curl_multi_wakeup(f->multi);
    apr_thread_join(&rv, f->thread);
    apr_pool_destroy(f->tpool);
    curl_multi_cleanup(f->multi);
    curl_global_cleanup();
}
