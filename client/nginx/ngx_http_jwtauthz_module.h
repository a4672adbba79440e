/* ngx_http_jwtauthz_module: what the module's files share — configuration, the per-request
 * context, the per-socket keepalive cache and decision cache, and the functions each file offers
 * the others.
 * Nothing here blocks: every wait on jwtauthzd is an event on the worker's own loop. The module
 * never logs a token: the frame that holds one lives in the request's pool and is wiped. */
#ifndef NGX_HTTP_JWTAUTHZ_MODULE_H
#define NGX_HTTP_JWTAUTHZ_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/un.h>

#include "jwtauthz.h"

/* Idle connections to one socket kept per worker; busy ones are not capped (a request holds its
 * connection only while it waits, so worker_connections bounds them). A burst beyond this many
 * concurrent decisions reconnects, which on a Unix socket costs microseconds. */
#define NGX_HTTP_JWTAUTHZ_KEEPALIVE_MAX 64

/* One read(2) from the daemon: a typical reply (a policy and a few context claims) is under 1 KiB;
 * the decoder reassembles larger ones. */
#define NGX_HTTP_JWTAUTHZ_READ_BYTES 4096

/* jwtauthz_cache: entries per worker and socket at most (each holds a whole request event, so
 * memory is bounded by max_size as well); max_ttl's default and ceiling; max_size's default and
 * floor. */
#define NGX_HTTP_JWTAUTHZ_CACHE_MAX_ENTRIES 1000000
#define NGX_HTTP_JWTAUTHZ_CACHE_MAX_TTL_DEFAULT_MS 60000
#define NGX_HTTP_JWTAUTHZ_CACHE_MAX_TTL_CEILING_MS 86400000
#define NGX_HTTP_JWTAUTHZ_CACHE_MAX_SIZE_DEFAULT (64 * 1024 * 1024)
#define NGX_HTTP_JWTAUTHZ_CACHE_MAX_SIZE_FLOOR (64 * 1024)

typedef struct ngx_http_jwtauthz_peer_s ngx_http_jwtauthz_peer_t;
typedef struct ngx_http_jwtauthz_cache_s ngx_http_jwtauthz_cache_t;
typedef struct ngx_http_jwtauthz_conn_s ngx_http_jwtauthz_conn_t;
typedef struct ngx_http_jwtauthz_ctx_s ngx_http_jwtauthz_ctx_t;

/* One daemon socket: its address and this worker's idle connections to it. Made at
 * configuration time, shared by every location naming the same path; each worker mutates its
 * own copy after fork. */
struct ngx_http_jwtauthz_peer_s {
    ngx_str_t path; /* as configured, NUL-terminated */
    ngx_str_t name; /* "unix:PATH", for logs */
    struct sockaddr_un sockaddr;
    socklen_t socklen;
    ngx_queue_t idle; /* ngx_http_jwtauthz_conn_t, most recently used first */
    ngx_uint_t nidle;
    /* The decision cache (_cache.c): sized by the largest jwtauthz_cache of the locations using
     * this socket, made in each worker at its first use. */
    ngx_uint_t cache_entries;
    size_t cache_size;
    ngx_http_jwtauthz_cache_t *cache;
};

typedef struct {
    ngx_array_t peers; /* ngx_http_jwtauthz_peer_t *, one per distinct socket path */
} ngx_http_jwtauthz_main_conf_t;

typedef struct {
    ngx_flag_t enable;
    ngx_http_jwtauthz_peer_t *peer;
    ngx_str_t resource_prefix; /* methodArn = prefix "/" METHOD PATH, no trailing slash */
    ngx_msec_t timeout;        /* connect + send + reply, per request */
    ngx_uint_t cache_entries;  /* jwtauthz_cache N; 0: off */
    ngx_msec_t cache_max_ttl;  /* max_ttl= */
    size_t cache_max_size;     /* max_size= */
} ngx_http_jwtauthz_loc_conf_t;

/* One decision: what was asked, where it is on the wire, and what came back. Lives in the
 * request's pool; a pool cleanup detaches it from its connection and timer, so a request that
 * ends while waiting (a client resetting an HTTP/2 stream) leaves nothing pointing at it. */
struct ngx_http_jwtauthz_ctx_s {
    ngx_http_request_t *request;
    ngx_http_jwtauthz_peer_t *peer;
    ngx_http_jwtauthz_conn_t *conn; /* while the request is on the wire */
    ngx_event_t deadline;           /* jwtauthz_timeout, from the first byte sent */
    ngx_msec_t timeout;

    ngx_str_t frame; /* the encoded request; holds the token, wiped at cleanup */
    size_t sent;
    ngx_str_t id; /* NUL-terminated; the daemon echoes it */

    /* With jwtauthz_cache: the request encoded without an id (the cache key; holds the token,
     * wiped like frame), and what the epoch file said before the request left. */
    ngx_str_t key;
    uint64_t cache_instance;
    uint64_t cache_epoch;
    time_t cache_sec;      /* ngx_time() then */
    ngx_msec_t cache_msec; /* ngx_current_msec then */
    ngx_msec_t cache_max_ttl;

    /* The outcome, copied out of the library's reply into the request's pool. */
    jwtauthz_verdict_t verdict;
    ngx_int_t status;    /* what the access handler returns: NGX_OK or an HTTP status */
    ngx_str_t principal; /* ALLOW only */
    ngx_str_t reason;
    ngx_array_t *context; /* ngx_keyval_t, ALLOW only; NULL when none */

    unsigned waiting : 1; /* the access handler returned NGX_AGAIN: resume on completion */
    unsigned done : 1;
    unsigned retried : 1;   /* resent once after a kept-alive connection turned out dead */
    unsigned answered : 1;  /* the access handler has returned the outcome */
    unsigned cacheable : 1; /* the epoch file was usable before the request left */
};

extern ngx_module_t ngx_http_jwtauthz_module;

/* ngx_http_jwtauthz_access.c: the access-phase handler. */
ngx_int_t ngx_http_jwtauthz_handler(ngx_http_request_t *r);

/* ngx_http_jwtauthz_access.c: records a reply (freeing it) as ctx's outcome and, when the
 * request is parked in the access phase, resumes it. After this returns the request may be gone:
 * callers must not touch ctx again. */
void ngx_http_jwtauthz_finish(ngx_http_jwtauthz_ctx_t *ctx, jwtauthz_reply_t *reply);

/* ngx_http_jwtauthz_access.c: the context of r's latest decision, also after an internal redirect
 * reset the module's context (it is found through the pool's cleanups), or NULL. */
ngx_http_jwtauthz_ctx_t *ngx_http_jwtauthz_ctx_find(ngx_http_request_t *r);

/* ngx_http_jwtauthz_event.c: encodes r as a REQUEST-type decision request into *out, in r's
 * pool, carrying id (NULL: no id at all, so that equal requests give equal bytes: the cache key).
 * Returns JWTAUTHZ_OK or the library's failure status (jwtauthz.h); *out is then untouched. */
int ngx_http_jwtauthz_event_encode(ngx_http_request_t *r, ngx_http_jwtauthz_loc_conf_t *jlcf,
                                   ngx_str_t *id, ngx_str_t *out);

/* ngx_http_jwtauthz_conn.c: puts ctx->frame on a connection to ctx->peer (a kept-alive one when
 * there is one) and arranges for the reply to reach ngx_http_jwtauthz_finish(). Failures that
 * happen at once (no socket, refused) call ngx_http_jwtauthz_finish() before returning. */
void ngx_http_jwtauthz_conn_send(ngx_http_jwtauthz_ctx_t *ctx);

/* ngx_http_jwtauthz_conn.c: closes ctx's connection, for a request that stops waiting (timeout,
 * request freed): a late reply must never be read as the next request's. */
void ngx_http_jwtauthz_conn_abandon(ngx_http_jwtauthz_ctx_t *ctx);

/* ngx_http_jwtauthz_cache.c: looks ctx->key up in ctx->peer's decision cache, first reading the
 * daemon's epoch file (into ctx: what a reply to this request will be stored under). Returns
 * NGX_OK on a hit, with ctx's verdict, status, principal, reason and context set (in r's pool) as
 * the reply that made the entry set them; NGX_DECLINED on a miss or when there is no usable epoch
 * file (the daemon is asked); NGX_ERROR when out of memory. */
ngx_int_t ngx_http_jwtauthz_cache_lookup(ngx_http_jwtauthz_ctx_t *ctx,
                                         ngx_http_jwtauthz_loc_conf_t *jlcf);

/* ngx_http_jwtauthz_cache.c: keeps ctx's recorded outcome under ctx->key when it is an ALLOW or
 * a DENY, ttl (the reply's, seconds) is positive, and the epoch file still says what it said
 * before the request left. Anything else, including no memory, just is not cached. */
void ngx_http_jwtauthz_cache_store(ngx_http_jwtauthz_ctx_t *ctx, long long ttl);

/* ngx_http_jwtauthz_cache.c: drops every cached decision of peer: the daemon could not be
 * reached, so whatever it decided may be gone with it (a killed daemon bumps no epoch). */
void ngx_http_jwtauthz_cache_flush(ngx_http_jwtauthz_peer_t *peer);

/* ngx_http_jwtauthz_variables.c: registers $jwtauthz_principal, $jwtauthz_ctx_<key>,
 * $jwtauthz_verdict and $jwtauthz_reason. */
ngx_int_t ngx_http_jwtauthz_add_variables(ngx_conf_t *cf);

#endif
