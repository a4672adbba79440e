/* ngx_http_jwtauthz_module's access-phase handler: asks jwtauthzd for a decision (or, with
 * jwtauthz_cache, first the worker's cache of its decisions, _cache.c) and turns the verdict into
 * nginx's answer (continue, 401, 403, 503). It never waits: it parks the request (NGX_AGAIN) and
 * the reply, the timeout or a failure resumes it through ngx_http_jwtauthz_finish(). Wire I/O is
 * in _conn.c, the request event in _event.c; nothing here logs a token. */
#include "ngx_http_jwtauthz_module.h"

static ngx_int_t ngx_http_jwtauthz_answer(ngx_http_request_t *r, ngx_http_jwtauthz_ctx_t *ctx);
static void ngx_http_jwtauthz_log_refusal(ngx_http_jwtauthz_ctx_t *ctx);
static void ngx_http_jwtauthz_wipe(ngx_str_t *s);
static void ngx_http_jwtauthz_ctx_cleanup(void *data);
static void ngx_http_jwtauthz_deadline_handler(ngx_event_t *ev);

/* Called once to start a decision and again each time the phase engine runs while it is pending
 * (the client's connection turning writable runs the phases too); answers once it is done. */
ngx_int_t ngx_http_jwtauthz_handler(ngx_http_request_t *r)
{
    int rc;
    ngx_pool_cleanup_t *cln;
    ngx_http_jwtauthz_ctx_t *ctx;
    ngx_http_jwtauthz_loc_conf_t *jlcf;
    static ngx_uint_t next_id;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_jwtauthz_module);
    if (!jlcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_jwtauthz_module);
    if (ctx != NULL) {
        if (!ctx->done) {
            return NGX_AGAIN;
        }
        return ngx_http_jwtauthz_answer(r, ctx);
    }

    /* The cleanup is registered before anything that needs undoing exists, so every path below
     * (including a failed allocation) leaves the frame wiped and the timer and connection gone. */
    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_jwtauthz_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_jwtauthz_ctx_t));
    cln->handler = ngx_http_jwtauthz_ctx_cleanup;
    ctx->request = r;
    ctx->peer = jlcf->peer;
    ctx->timeout = jlcf->timeout;
    ctx->verdict = JWTAUTHZ_ERROR;
    ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
    ngx_http_set_ctx(r, ctx, ngx_http_jwtauthz_module);

    /* The cache first: a hit answers as the daemon's reply did, without any I/O. A request the
     * codec refuses is refused again just below, the same way as without the cache. */
    if (jlcf->cache_entries &&
        ngx_http_jwtauthz_event_encode(r, jlcf, NULL, &ctx->key) == JWTAUTHZ_OK) {
        switch (ngx_http_jwtauthz_cache_lookup(ctx, jlcf)) {
        case NGX_OK:
            ngx_http_jwtauthz_wipe(&ctx->key);
            ctx->done = 1;
            ngx_http_jwtauthz_log_refusal(ctx);
            return ngx_http_jwtauthz_answer(r, ctx);
        case NGX_ERROR:
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        default:
            break;
        }
    }

    /* One request per connection at a time (see _conn.c), so the id only has to tell this
     * request's reply from a stray one: a per-worker counter does. */
    ctx->id.data = ngx_pnalloc(r->pool, NGX_ATOMIC_T_LEN + 1);
    if (ctx->id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ctx->id.len = ngx_sprintf(ctx->id.data, "%ui", ++next_id) - ctx->id.data;
    ctx->id.data[ctx->id.len] = '\0';

    rc = ngx_http_jwtauthz_event_encode(r, jlcf, &ctx->id, &ctx->frame);
    if (rc == JWTAUTHZ_E_INVALID) {
        /* The prefix is checked at startup and nginx only accepts ASCII methods, so what the
         * codec refused is the client's path: not UTF-8 (RFC 3629 §3), or holding a NUL. */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "jwtauthz: request path is not UTF-8 text, refused");
        ctx->status = NGX_HTTP_BAD_REQUEST;
        ctx->done = 1;
        return ngx_http_jwtauthz_answer(r, ctx);
    }
    if (rc != JWTAUTHZ_OK) {
        ngx_http_jwtauthz_finish(ctx, jwtauthz_reply_for_status(rc, NULL));
        return ngx_http_jwtauthz_answer(r, ctx);
    }

    ctx->deadline.handler = ngx_http_jwtauthz_deadline_handler;
    ctx->deadline.data = ctx;
    ctx->deadline.log = r->connection->log;
    ngx_add_timer(&ctx->deadline, ctx->timeout);

    ngx_http_jwtauthz_conn_send(ctx);
    if (ctx->done) {
        return ngx_http_jwtauthz_answer(r, ctx);
    }
    ctx->waiting = 1;
    return NGX_AGAIN;
}

/* RFC 6750 §3: error_description is a quoted-string restricted to %x20-21 / %x23-5B / %x5D-7E.
 * Reason codes are such already; anything else is dropped rather than sent. */
static size_t ngx_http_jwtauthz_copy_description(u_char *dst, ngx_str_t *src)
{
    size_t i, n = 0;

    for (i = 0; i < src->len; i++) {
        u_char ch = src->data[i];
        if (ch >= 0x20 && ch <= 0x7e && ch != '"' && ch != '\\') {
            dst[n++] = ch;
        }
    }
    return n;
}

/* Adds WWW-Authenticate: Bearer ... (RFC 6750 §3) to r's response. */
static ngx_int_t ngx_http_jwtauthz_add_challenge(ngx_http_request_t *r,
                                                 ngx_http_jwtauthz_ctx_t *ctx)
{
    static const char bearer[] = "Bearer";
    static const char invalid[] = "Bearer error=\"invalid_token\"";
    static const char scope[] = "Bearer error=\"insufficient_scope\"";
    static const char description[] = ", error_description=\"";
    ngx_table_elt_t *h;
    u_char *p;
    size_t len;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    if (ctx->status == NGX_HTTP_FORBIDDEN) {
        /* RFC 6750 §3.1 insufficient_scope: a valid token the policy does not allow here. */
        ngx_str_set(&h->value, scope);

    } else if (ctx->reason.len == sizeof("token_missing") - 1 &&
               ngx_strncmp(ctx->reason.data, "token_missing", ctx->reason.len) == 0) {
        /* RFC 6750 §3.1: a request without credentials gets the challenge without an error code. */
        ngx_str_set(&h->value, bearer);

    } else {
        len = sizeof(invalid) - 1 + sizeof(description) - 1 + ctx->reason.len + 1;
        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }
        h->value.data = p;
        p = ngx_cpymem(p, invalid, sizeof(invalid) - 1);
        if (ctx->reason.len) {
            p = ngx_cpymem(p, description, sizeof(description) - 1);
            p += ngx_http_jwtauthz_copy_description(p, &ctx->reason);
            *p++ = '"';
        }
        h->value.len = p - h->value.data;
    }

    r->headers_out.www_authenticate = h;
    return NGX_OK;
}

/* The outcome as the access phase wants it: NGX_OK lets the request through (under "satisfy
 * any" it also skips the other access checks, as auth_basic's success does); 401 and 403 carry
 * their challenge; everything else fails closed with the daemon's 500 or a 503. */
static ngx_int_t ngx_http_jwtauthz_answer(ngx_http_request_t *r, ngx_http_jwtauthz_ctx_t *ctx)
{
    if (ctx->answered) {
        return ctx->status;
    }
    ctx->answered = 1;

    if (ctx->status == NGX_HTTP_UNAUTHORIZED || ctx->status == NGX_HTTP_FORBIDDEN) {
        if (ngx_http_jwtauthz_add_challenge(r, ctx) != NGX_OK) {
            ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return ctx->status;
}

/* Copies s into r's pool as an ngx_str_t (empty when s is NULL). */
static ngx_int_t ngx_http_jwtauthz_copy_str(ngx_pool_t *pool, const char *s, ngx_str_t *out)
{
    out->len = s ? ngx_strlen(s) : 0;
    out->data = NULL;
    if (out->len == 0) {
        return NGX_OK;
    }
    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(out->data, s, out->len);
    return NGX_OK;
}

/* The principal and context of an ALLOW, for the variables. */
static ngx_int_t ngx_http_jwtauthz_keep_identity(ngx_http_request_t *r,
                                                 ngx_http_jwtauthz_ctx_t *ctx,
                                                 const jwtauthz_reply_t *reply)
{
    size_t i, n;
    const char *key, *value;
    ngx_keyval_t *kv;

    if (ngx_http_jwtauthz_copy_str(r->pool, jwtauthz_reply_principal(reply), &ctx->principal) !=
        NGX_OK) {
        return NGX_ERROR;
    }
    n = jwtauthz_reply_context_count(reply);
    if (n == 0) {
        return NGX_OK;
    }
    ctx->context = ngx_array_create(r->pool, n, sizeof(ngx_keyval_t));
    if (ctx->context == NULL) {
        return NGX_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (!jwtauthz_reply_context_at(reply, i, &key, &value)) {
            break;
        }
        kv = ngx_array_push(ctx->context);
        if (kv == NULL || ngx_http_jwtauthz_copy_str(r->pool, key, &kv->key) != NGX_OK ||
            ngx_http_jwtauthz_copy_str(r->pool, value, &kv->value) != NGX_OK) {
            return NGX_ERROR;
        }
    }
    return NGX_OK;
}

/* Maps the verdict to the access handler's return. ALLOW needs status 200 as well: a reply that
 * contradicts itself is doubt, and doubt never lets a request through (CONTRACT, "Decision
 * reply"). */
static void ngx_http_jwtauthz_record(ngx_http_jwtauthz_ctx_t *ctx, const jwtauthz_reply_t *reply)
{
    ngx_http_request_t *r = ctx->request;
    int status = jwtauthz_reply_status(reply);

    ctx->verdict = jwtauthz_reply_verdict(reply);
    if (ngx_http_jwtauthz_copy_str(r->pool, jwtauthz_reply_reason(reply), &ctx->reason) != NGX_OK) {
        ctx->verdict = JWTAUTHZ_ERROR;
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    switch (ctx->verdict) {
    case JWTAUTHZ_ALLOW:
        if (status != NGX_HTTP_OK || ngx_http_jwtauthz_keep_identity(r, ctx, reply) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "jwtauthz: ALLOW with status %d not taken", status);
            ctx->verdict = JWTAUTHZ_ERROR;
            ctx->principal.len = 0;
            ctx->context = NULL;
            ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return;
        }
        ctx->status = NGX_OK;
        return;
    case JWTAUTHZ_UNAUTHORIZED:
        ctx->status = NGX_HTTP_UNAUTHORIZED;
        break;
    case JWTAUTHZ_DENY:
        ctx->status = NGX_HTTP_FORBIDDEN;
        break;
    default:
        ctx->status = status == NGX_HTTP_INTERNAL_SERVER_ERROR ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                                               : NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "jwtauthz: no decision (%V) from %V",
                      &ctx->reason, &ctx->peer->name);
        return;
    }
    ngx_http_jwtauthz_log_refusal(ctx);
}

/* A 401 or 403, logged the same whether the daemon or the cache answered it. */
static void ngx_http_jwtauthz_log_refusal(ngx_http_jwtauthz_ctx_t *ctx)
{
    ngx_http_request_t *r = ctx->request;

    if (ctx->verdict != JWTAUTHZ_UNAUTHORIZED && ctx->verdict != JWTAUTHZ_DENY) {
        return;
    }
    /* The reason code, never the token: enough to tell an expired token from a forged one. */
    if (ctx->reason.len) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "jwtauthz: %s (%V)",
                      jwtauthz_verdict_name(ctx->verdict), &ctx->reason);
    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "jwtauthz: %s",
                      jwtauthz_verdict_name(ctx->verdict));
    }
}

void ngx_http_jwtauthz_finish(ngx_http_jwtauthz_ctx_t *ctx, jwtauthz_reply_t *reply)
{
    ngx_connection_t *c;
    ngx_http_request_t *r = ctx->request;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
    ngx_http_jwtauthz_record(ctx, reply);
    if (ctx->key.data) {
        ngx_http_jwtauthz_cache_store(ctx, jwtauthz_reply_ttl(reply));
        ngx_http_jwtauthz_wipe(&ctx->key);
    }
    jwtauthz_reply_free(reply);
    ngx_http_jwtauthz_wipe(&ctx->frame);
    ctx->done = 1;

    if (!ctx->waiting) {
        return;
    }
    ctx->waiting = 0;

    /* Resume as the upstream module does when its peer answers: run the phases again from the
     * access handler (which now answers) and then whatever subrequests that posted. */
    c = r->connection;
    ngx_http_set_log_request(c->log, r);
    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}

static void ngx_http_jwtauthz_deadline_handler(ngx_event_t *ev)
{
    ngx_http_jwtauthz_ctx_t *ctx = ev->data;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0, "jwtauthz: %V did not answer within %Mms",
                  &ctx->peer->name, ctx->timeout);
    ngx_http_jwtauthz_conn_abandon(ctx);
    ngx_http_jwtauthz_finish(ctx, jwtauthz_reply_for_status(JWTAUTHZ_E_TIMEOUT, NULL));
}

/* The request's pool is going: nothing may point into it afterwards. */
static void ngx_http_jwtauthz_ctx_cleanup(void *data)
{
    ngx_http_jwtauthz_ctx_t *ctx = data;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
    ngx_http_jwtauthz_conn_abandon(ctx);
    ngx_http_jwtauthz_wipe(&ctx->frame);
    ngx_http_jwtauthz_wipe(&ctx->key);
}

/* An encoded request holds the token: wiped as soon as it is not needed. */
static void ngx_http_jwtauthz_wipe(ngx_str_t *s)
{
    if (s->data) {
        ngx_explicit_memzero(s->data, s->len);
        s->data = NULL;
        s->len = 0;
    }
}

ngx_http_jwtauthz_ctx_t *ngx_http_jwtauthz_ctx_find(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t *cln;
    ngx_http_jwtauthz_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_jwtauthz_module);
    if (ctx != NULL) {
        return ctx;
    }
    /* An internal redirect (try_files, error_page, rewrite ... last) zeroes the module contexts;
     * the decision is still the request's, so the variables keep reading it, as realip's
     * address survives redirects the same way. Newest first: pool cleanups are a stack. */
    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_jwtauthz_ctx_cleanup) {
            return cln->data;
        }
    }
    return NULL;
}
