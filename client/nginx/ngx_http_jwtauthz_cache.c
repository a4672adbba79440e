/* ngx_http_jwtauthz_module's decision cache (jwtauthz_cache): per worker and daemon socket, the
 * ALLOW and DENY replies of recent requests, keyed by the whole request event as sent (so only a
 * byte-identical request — token, methodArn, source address, token headers — can hit), reused
 * only while the daemon's epoch file (proto/epoch.h) says what it said before the request was
 * sent, within the reply's ttl and max_ttl. No usable epoch file, no cache: it can only ever
 * answer what the daemon would answer now. Holds tokens (in keys): entries are wiped when freed;
 * nothing here logs one. */
#include "ngx_http_jwtauthz_module.h"

#include <sys/mman.h>

#include "proto/epoch.h"

/* Requests larger than this are not cached: a key is kept whole, and a 16 KiB token (the
 * daemon's default max_token_bytes) plus the rest of the event fits. */
#define NGX_HTTP_JWTAUTHZ_CACHE_KEY_MAX_BYTES (16 * 1024 + 2048)
/* Nor are replies whose principal, reason and context come to more than this. */
#define NGX_HTTP_JWTAUTHZ_CACHE_VALUE_MAX_BYTES (16 * 1024)

struct ngx_http_jwtauthz_cache_s {
    ngx_rbtree_t tree; /* ngx_http_jwtauthz_entry_t by hash, then by the key's bytes */
    ngx_rbtree_node_t sentinel;
    ngx_queue_t lru; /* most recently used first */
    ngx_uint_t n;
    size_t bytes;
    ngx_uint_t max;
    size_t max_bytes;
    ngx_http_jwtauthz_peer_t *peer;

    /* The daemon's epoch file, mapped read-only; page NULL when there is none we trust. */
    u_char *path; /* socket path + PROTO_EPOCH_SUFFIX, NUL-terminated */
    ngx_fd_t fd;
    const proto_epoch_page_t *page;
    ngx_msec_t checked; /* ngx_current_msec of the last liveness check or open attempt */
    unsigned checked_once : 1;
    unsigned warned : 1; /* the file's absence was logged; reset once it is used */
};

typedef struct {
    ngx_str_node_t sn; /* first: sn.node.key is the key's hash, sn.str the key's bytes */
    ngx_queue_t queue;
    uint64_t instance; /* what the epoch file said before the request was sent */
    uint64_t epoch;
    time_t deadline; /* ngx_time() from which the daemon no longer gives this reply */
    ngx_msec_t born; /* ngx_current_msec before the request was sent */
    ngx_msec_t life; /* min(ttl, max_ttl) */
    size_t size;     /* the whole allocation */
    jwtauthz_verdict_t verdict;
    ngx_int_t status;
    ngx_str_t principal;
    ngx_str_t reason;
    ngx_keyval_t *context;
    ngx_uint_t ncontext;
} ngx_http_jwtauthz_entry_t;

/* ---- the epoch file ------------------------------------------------------------------------- */

/* Whether the daemon that made the file still runs: it has a name (a clean exit unlinks it) and
 * its maker's lock (a killed process loses it). */
static ngx_uint_t ngx_http_jwtauthz_epoch_alive(ngx_fd_t fd)
{
    struct stat st;
    struct flock fl;

    if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
        return 0;
    }
    ngx_memzero(&fl, sizeof(struct flock));
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    return fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK;
}

static void ngx_http_jwtauthz_epoch_unmap(ngx_http_jwtauthz_cache_t *cache)
{
    if (cache->page != NULL) {
        munmap((void *)cache->page, sizeof(proto_epoch_page_t));
        cache->page = NULL;
    }
    if (cache->fd != NGX_INVALID_FILE) {
        (void)close(cache->fd);
        cache->fd = NGX_INVALID_FILE;
    }
}

/* Maps the file when it is one the daemon at the socket made: a regular file, at least a header
 * long (so no mapped byte is ever past its end), its owner's alone to write and that owner the
 * socket's, alive, and with our magic. Returns the reason it is not (with *err set when a system
 * call said why), or NULL. */
static const char *ngx_http_jwtauthz_epoch_map(ngx_http_jwtauthz_cache_t *cache, ngx_err_t *err)
{
    void *map;
    struct stat st, sock;

    *err = 0;
    cache->fd = open((char *)cache->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (cache->fd == NGX_INVALID_FILE) {
        *err = ngx_errno;
        return "cannot open it";
    }
    if (fstat(cache->fd, &st) != 0 || stat((char *)cache->peer->path.data, &sock) != 0) {
        *err = ngx_errno;
        return "cannot stat it or the socket";
    }
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(proto_epoch_page_t)) {
        return "not a regular file of the right size";
    }
    /* Whoever can write the file can hold the epoch still through a flush. */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_uid != sock.st_uid) {
        return "writable by others than the socket's owner";
    }
    if (!ngx_http_jwtauthz_epoch_alive(cache->fd)) {
        return "left by a daemon that is not running";
    }
    map = mmap(NULL, sizeof(proto_epoch_page_t), PROT_READ, MAP_SHARED, cache->fd, 0);
    if (map == MAP_FAILED) {
        *err = ngx_errno;
        return "cannot map it";
    }
    cache->page = map;
    if (ngx_memcmp(cache->page->magic, PROTO_EPOCH_MAGIC, PROTO_EPOCH_MAGIC_BYTES) != 0) {
        return "not an epoch file of this version";
    }
    return NULL;
}

static void ngx_http_jwtauthz_cache_empty(ngx_http_jwtauthz_cache_t *cache);

/* What the epoch file says now, into *instance and *epoch: NGX_OK, or NGX_DECLINED when there is
 * no file to trust (then nothing may be reused or stored). The file is opened lazily, and checked
 * for its daemon's exit at most once per millisecond tick: two syscalls, not one per request. */
static ngx_int_t ngx_http_jwtauthz_epoch_read(ngx_http_jwtauthz_cache_t *cache, uint64_t *instance,
                                              uint64_t *epoch)
{
    const char *why;
    ngx_err_t err;
    ngx_uint_t tick = !cache->checked_once || cache->checked != ngx_current_msec;

    if (tick) {
        cache->checked = ngx_current_msec;
        cache->checked_once = 1;
        if (cache->page != NULL && !ngx_http_jwtauthz_epoch_alive(cache->fd)) {
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "jwtauthz: %V stopped (epoch file gone or unlocked): cached decisions "
                          "dropped",
                          &cache->peer->name);
            ngx_http_jwtauthz_epoch_unmap(cache);
            ngx_http_jwtauthz_cache_empty(cache);
        }
        if (cache->page == NULL) {
            why = ngx_http_jwtauthz_epoch_map(cache, &err);
            if (why != NULL) {
                if (!cache->warned) {
                    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, err,
                                  "jwtauthz: epoch file \"%s\": %s; decisions of %V are not "
                                  "cached until it is usable",
                                  cache->path, why, &cache->peer->name);
                    cache->warned = 1;
                }
                ngx_http_jwtauthz_epoch_unmap(cache);
                return NGX_DECLINED;
            }
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "jwtauthz: caching decisions of %V under epoch file \"%s\"",
                          &cache->peer->name, cache->path);
            cache->warned = 0;
        }
    }
    if (cache->page == NULL) {
        return NGX_DECLINED;
    }
    /* Checked on every read: a file overwritten by something else is trusted no more. */
    if (ngx_memcmp(cache->page->magic, PROTO_EPOCH_MAGIC, PROTO_EPOCH_MAGIC_BYTES) != 0) {
        return NGX_DECLINED;
    }
    *epoch = __atomic_load_n(&cache->page->epoch, __ATOMIC_ACQUIRE);
    *instance = __atomic_load_n(&cache->page->instance, __ATOMIC_ACQUIRE);
    return NGX_OK;
}

/* ---- entries -------------------------------------------------------------------------------- */

static void ngx_http_jwtauthz_entry_free(ngx_http_jwtauthz_cache_t *cache,
                                         ngx_http_jwtauthz_entry_t *e)
{
    ngx_rbtree_delete(&cache->tree, &e->sn.node);
    ngx_queue_remove(&e->queue);
    cache->n--;
    cache->bytes -= e->size;
    ngx_explicit_memzero(e, e->size); /* the key holds a token */
    ngx_free(e);
}

static void ngx_http_jwtauthz_cache_empty(ngx_http_jwtauthz_cache_t *cache)
{
    while (!ngx_queue_empty(&cache->lru)) {
        ngx_http_jwtauthz_entry_free(
            cache, ngx_queue_data(ngx_queue_head(&cache->lru), ngx_http_jwtauthz_entry_t, queue));
    }
}

/* The worker is exiting: its pool takes the cache with it. */
static void ngx_http_jwtauthz_cache_cleanup(void *data)
{
    ngx_http_jwtauthz_cache_t *cache = data;

    ngx_http_jwtauthz_cache_empty(cache);
    ngx_http_jwtauthz_epoch_unmap(cache);
    cache->peer->cache = NULL;
}

/* peer's cache in this worker, made at the first request that wants it; NULL when out of
 * memory (then nothing is cached). */
static ngx_http_jwtauthz_cache_t *ngx_http_jwtauthz_cache_get(ngx_http_jwtauthz_peer_t *peer)
{
    ngx_pool_cleanup_t *cln;
    ngx_http_jwtauthz_cache_t *cache;

    if (peer->cache != NULL) {
        return peer->cache;
    }
    cln = ngx_pool_cleanup_add(ngx_cycle->pool, sizeof(ngx_http_jwtauthz_cache_t));
    if (cln == NULL) {
        return NULL;
    }
    cache = cln->data;
    ngx_memzero(cache, sizeof(ngx_http_jwtauthz_cache_t));
    cache->path = ngx_pnalloc(ngx_cycle->pool, peer->path.len + sizeof(PROTO_EPOCH_SUFFIX));
    if (cache->path == NULL) {
        return NULL;
    }
    ngx_memcpy(ngx_cpymem(cache->path, peer->path.data, peer->path.len), PROTO_EPOCH_SUFFIX,
               sizeof(PROTO_EPOCH_SUFFIX));
    ngx_rbtree_init(&cache->tree, &cache->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&cache->lru);
    cache->max = peer->cache_entries;
    cache->max_bytes = peer->cache_size;
    cache->peer = peer;
    cache->fd = NGX_INVALID_FILE;
    cln->handler = ngx_http_jwtauthz_cache_cleanup;
    peer->cache = cache;
    return cache;
}

/* Whether e may answer now, under the epoch file's (instance, epoch) and the asking location's
 * max_ttl. Two clocks: the daemon counts ttl in whole wall-clock seconds from its own now, which
 * was no earlier than the second e's request left; the monotonic one holds max_ttl even if the
 * wall clock is set back. */
static ngx_uint_t ngx_http_jwtauthz_entry_valid(ngx_http_jwtauthz_entry_t *e, uint64_t instance,
                                                uint64_t epoch, ngx_msec_t max_ttl)
{
    ngx_msec_int_t age = (ngx_msec_int_t)(ngx_current_msec - e->born);

    return e->instance == instance && e->epoch == epoch && age >= 0 && (ngx_msec_t)age < e->life &&
           (ngx_msec_t)age < max_ttl && ngx_time() < e->deadline;
}

/* Copies e's outcome into ctx, in r's pool: e may be evicted while the request still runs. */
static ngx_int_t ngx_http_jwtauthz_entry_answer(ngx_http_jwtauthz_ctx_t *ctx,
                                                ngx_http_jwtauthz_entry_t *e)
{
    ngx_uint_t i;
    ngx_keyval_t *kv;
    ngx_pool_t *pool = ctx->request->pool;

    ctx->verdict = e->verdict;
    ctx->status = e->status;
    ctx->principal.len = e->principal.len;
    ctx->principal.data = e->principal.len ? ngx_pstrdup(pool, &e->principal) : NULL;
    ctx->reason.len = e->reason.len;
    ctx->reason.data = e->reason.len ? ngx_pstrdup(pool, &e->reason) : NULL;
    if ((e->principal.len && ctx->principal.data == NULL) ||
        (e->reason.len && ctx->reason.data == NULL)) {
        return NGX_ERROR;
    }
    ctx->context = NULL;
    if (e->ncontext == 0) {
        return NGX_OK;
    }
    ctx->context = ngx_array_create(pool, e->ncontext, sizeof(ngx_keyval_t));
    if (ctx->context == NULL) {
        return NGX_ERROR;
    }
    for (i = 0; i < e->ncontext; i++) {
        kv = ngx_array_push(ctx->context);
        if (kv == NULL) {
            return NGX_ERROR;
        }
        kv->key.len = e->context[i].key.len;
        kv->key.data = kv->key.len ? ngx_pstrdup(pool, &e->context[i].key) : NULL;
        kv->value.len = e->context[i].value.len;
        kv->value.data = kv->value.len ? ngx_pstrdup(pool, &e->context[i].value) : NULL;
        if ((kv->key.len && kv->key.data == NULL) || (kv->value.len && kv->value.data == NULL)) {
            return NGX_ERROR;
        }
    }
    return NGX_OK;
}

ngx_int_t ngx_http_jwtauthz_cache_lookup(ngx_http_jwtauthz_ctx_t *ctx,
                                         ngx_http_jwtauthz_loc_conf_t *jlcf)
{
    uint32_t hash;
    uint64_t instance, epoch;
    ngx_http_jwtauthz_entry_t *e;
    ngx_http_jwtauthz_cache_t *cache;

    ctx->cacheable = 0;
    cache = ngx_http_jwtauthz_cache_get(ctx->peer);
    if (cache == NULL || ctx->key.len > NGX_HTTP_JWTAUTHZ_CACHE_KEY_MAX_BYTES ||
        ngx_http_jwtauthz_epoch_read(cache, &instance, &epoch) != NGX_OK) {
        return NGX_DECLINED;
    }
    /* Read before the request is sent: a flush racing with it leaves its reply unusable. */
    ctx->cacheable = 1;
    ctx->cache_instance = instance;
    ctx->cache_epoch = epoch;
    ctx->cache_sec = ngx_time();
    ctx->cache_msec = ngx_current_msec;
    ctx->cache_max_ttl = jlcf->cache_max_ttl;

    hash = ngx_murmur_hash2(ctx->key.data, ctx->key.len);
    /* A hit needs the whole key byte for byte (ngx_str_rbtree_lookup compares lengths and
     * bytes after the hash): a forged token never reads a valid one's entry. */
    e = (ngx_http_jwtauthz_entry_t *)ngx_str_rbtree_lookup(&cache->tree, &ctx->key, hash);
    if (e == NULL) {
        return NGX_DECLINED;
    }
    if (!ngx_http_jwtauthz_entry_valid(e, instance, epoch, jlcf->cache_max_ttl)) {
        ngx_http_jwtauthz_entry_free(cache, e);
        return NGX_DECLINED;
    }
    ngx_queue_remove(&e->queue);
    ngx_queue_insert_head(&cache->lru, &e->queue);
    return ngx_http_jwtauthz_entry_answer(ctx, e);
}

/* Copies src's bytes to *p, points dst at them and moves *p past them. */
static void ngx_http_jwtauthz_entry_put(u_char **p, ngx_str_t *dst, ngx_str_t *src)
{
    dst->len = src->len;
    dst->data = *p;
    if (src->len) {
        *p = ngx_cpymem(*p, src->data, src->len);
    }
}

void ngx_http_jwtauthz_cache_store(ngx_http_jwtauthz_ctx_t *ctx, long long ttl)
{
    u_char *p;
    size_t size, value;
    uint32_t hash;
    uint64_t instance, epoch;
    ngx_uint_t i, ncontext;
    ngx_keyval_t *kv;
    ngx_http_jwtauthz_entry_t *e, *old;
    ngx_http_jwtauthz_cache_t *cache = ctx->peer->cache;

    if (!ctx->cacheable || cache == NULL || ttl <= 0 ||
        !((ctx->verdict == JWTAUTHZ_ALLOW && ctx->status == NGX_OK) ||
          (ctx->verdict == JWTAUTHZ_DENY && ctx->status == NGX_HTTP_FORBIDDEN))) {
        return;
    }
    /* Moved meanwhile (a flush, a reload, a restart): this reply may already be out of date. */
    if (ngx_http_jwtauthz_epoch_read(cache, &instance, &epoch) != NGX_OK ||
        instance != ctx->cache_instance || epoch != ctx->cache_epoch) {
        return;
    }

    ncontext = ctx->context ? ctx->context->nelts : 0;
    kv = ctx->context ? ctx->context->elts : NULL;
    value = ctx->principal.len + ctx->reason.len;
    for (i = 0; i < ncontext; i++) {
        value += kv[i].key.len + kv[i].value.len;
    }
    if (value > NGX_HTTP_JWTAUTHZ_CACHE_VALUE_MAX_BYTES) {
        return;
    }
    size =
        sizeof(ngx_http_jwtauthz_entry_t) + ncontext * sizeof(ngx_keyval_t) + ctx->key.len + value;
    if (size > cache->max_bytes) {
        return;
    }

    hash = ngx_murmur_hash2(ctx->key.data, ctx->key.len);
    old = (ngx_http_jwtauthz_entry_t *)ngx_str_rbtree_lookup(&cache->tree, &ctx->key, hash);
    if (old != NULL) {
        ngx_http_jwtauthz_entry_free(cache, old);
    }
    while (!ngx_queue_empty(&cache->lru) &&
           (cache->n >= cache->max || cache->bytes + size > cache->max_bytes)) {
        ngx_http_jwtauthz_entry_free(
            cache, ngx_queue_data(ngx_queue_last(&cache->lru), ngx_http_jwtauthz_entry_t, queue));
    }

    e = ngx_alloc(size, ngx_cycle->log);
    if (e == NULL) {
        return;
    }
    ngx_memzero(e, sizeof(ngx_http_jwtauthz_entry_t));
    e->size = size;
    e->instance = instance;
    e->epoch = epoch;
    /* The reply's ttl counts from the daemon's now, in whole seconds, which was no earlier than
     * ctx->cache_sec: counted from there, the entry ends no later than the daemon's. */
    if (ttl > NGX_HTTP_JWTAUTHZ_CACHE_MAX_TTL_CEILING_MS / 1000) {
        ttl = NGX_HTTP_JWTAUTHZ_CACHE_MAX_TTL_CEILING_MS / 1000;
    }
    e->deadline = ctx->cache_sec + (time_t)ttl;
    e->born = ctx->cache_msec;
    e->life = ngx_min((ngx_msec_t)ttl * 1000, ctx->cache_max_ttl);
    e->verdict = ctx->verdict;
    e->status = ctx->status;
    e->ncontext = ncontext;
    e->context = (ngx_keyval_t *)(e + 1);
    p = (u_char *)(e->context + ncontext);
    ngx_http_jwtauthz_entry_put(&p, &e->sn.str, &ctx->key);
    ngx_http_jwtauthz_entry_put(&p, &e->principal, &ctx->principal);
    ngx_http_jwtauthz_entry_put(&p, &e->reason, &ctx->reason);
    for (i = 0; i < ncontext; i++) {
        ngx_http_jwtauthz_entry_put(&p, &e->context[i].key, &kv[i].key);
        ngx_http_jwtauthz_entry_put(&p, &e->context[i].value, &kv[i].value);
    }

    e->sn.node.key = hash;
    ngx_rbtree_insert(&cache->tree, &e->sn.node);
    ngx_queue_insert_head(&cache->lru, &e->queue);
    cache->n++;
    cache->bytes += size;
}

void ngx_http_jwtauthz_cache_flush(ngx_http_jwtauthz_peer_t *peer)
{
    if (peer->cache == NULL || peer->cache->n == 0) {
        return;
    }
    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "jwtauthz: %V unreachable: %ui cached decision(s) dropped", &peer->name,
                  peer->cache->n);
    ngx_http_jwtauthz_cache_empty(peer->cache);
}
