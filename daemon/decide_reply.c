/* Decision reply frames (see decide_reply.h), written with proto's framed yajl writer straight
 * into the connection's output buffer. A reply that cannot be written as built (too large for
 * the frame cap) degrades to an ERROR reply, never to a truncated ALLOW. */
#include "daemon/decide_reply.h"

#include <string.h>

#include <apr_strings.h>

#include "daemon/log.h"
#include "jose/pool.h"
#include "proto/msg.h"
#include "proto/msg_gen.h"

void decide_reply_ctx_init(decide_reply_ctx_t *rc, srv_t *srv, gen_t *g,
                           const proto_json_t *id_json, proto_str_t method_arn)
{
    rc->srv = srv;
    rc->gen = g;
    rc->id_json = id_json;
    rc->method_arn = method_arn;
    rc->token_hash = NULL;
}

/* Replies are bounded like requests are: a client reads each into a buffer of this size. */
static size_t reply_max(const decide_reply_ctx_t *rc)
{
    (void)rc;
    return PROTO_MAX_REPLY_BYTES;
}

/* One debug line per decision, so an operator can follow a client's refusals: the token only by
 * its short hash (log.h), the resource as the client sent it (log_msg escapes control bytes).
 * Not at info: a client sending garbage would otherwise write the journal at its own pace. */
static void reply_log(const decide_reply_ctx_t *rc, const char *verdict, const char *reason)
{
    if (!log_enabled(LOGL_DEBUG)) {
        return;
    }
    char id[17] = "-";
    if (rc->token_hash) {
        log_token_id(rc->token_hash, id);
    }
    int arn_len = rc->method_arn.len > 512 ? 512 : (int)rc->method_arn.len;
    log_msg(LOGL_DEBUG, "decision %s%s%s token %s resource \"%.*s\"", verdict, reason ? " " : "",
            reason ? reason : "", id, arn_len, rc->method_arn.ptr ? rc->method_arn.ptr : "");
}

void decide_reply_error_text(const decide_reply_ctx_t *rc, int status, const char *reason,
                             const char *message, proto_buf_t *out)
{
    proto_msg_error_t err;
    stats_count_verdict(&rc->srv->stats, PROTO_VERDICT_ERROR, 0);
    reply_log(rc, "ERROR", reason);
    if (proto_msg_error_reply_encode(out, reply_max(rc), status,
                                     proto_str_make(reason, strlen(reason)),
                                     proto_str_make(message, message ? strlen(message) : 0),
                                     rc->id_json, &err) != PROTO_MSG_OK) {
        /* The id echo is the only part that could be at fault: answer without it. */
        proto_msg_error_reply_encode(
            out, reply_max(rc), status, proto_str_make(reason, strlen(reason)),
            proto_str_make(message, message ? strlen(message) : 0), NULL, &err);
    }
}

void decide_reply_error(const decide_reply_ctx_t *rc, int status, jose_reason_e reason,
                        proto_buf_t *out)
{
    stats_count_verdict(&rc->srv->stats, PROTO_VERDICT_ERROR, reason);
    proto_msg_error_t err;
    const char *code = jose_reason_code(reason), *msg = jose_reason_message(reason);
    reply_log(rc, "ERROR", code);
    proto_msg_error_reply_encode(out, reply_max(rc), status, proto_str_make(code, strlen(code)),
                                 proto_str_make(msg, strlen(msg)), rc->id_json, &err);
}

void decide_reply_bad_request(const decide_reply_ctx_t *rc, const char *message, proto_buf_t *out)
{
    decide_reply_error_text(rc, 500, "bad_request", message, out);
}

void decide_reply_refusal(const decide_reply_ctx_t *rc, jose_reason_e reason, proto_buf_t *out)
{
    proto_reply_t r;
    proto_msg_error_t err;
    memset(&r, 0, sizeof(r));
    r.kind = PROTO_REPLY_DECISION;
    r.verdict = PROTO_VERDICT_UNAUTHORIZED;
    r.status = 401;
    const char *code = jose_reason_code(reason), *msg = jose_reason_message(reason);
    r.reason = proto_str_make(code, strlen(code));
    r.message = proto_str_make(msg, strlen(msg));
    r.id_json = rc->id_json;
    stats_count_verdict(&rc->srv->stats, PROTO_VERDICT_UNAUTHORIZED, reason);
    reply_log(rc, "UNAUTHORIZED", code);
    if (proto_msg_reply_encode(out, reply_max(rc), &r, &err) != PROTO_MSG_OK) {
        r.id_json = NULL;
        proto_msg_reply_encode(out, reply_max(rc), &r, &err);
    }
}

static int reply_grant_body(proto_msg_writer_t *w, const decide_reply_ctx_t *rc,
                            const decide_grant_t *grant, policy_effect_e effect)
{
    int allow = effect == POLICY_ALLOW;
    proto_msg_gen_map_open(w);
    proto_msg_gen_key(w, "verdict");
    proto_msg_gen_str(w, proto_str_make(allow ? "ALLOW" : "DENY", allow ? 5 : 4));
    proto_msg_gen_key(w, "status");
    proto_msg_gen_int(w, allow ? 200 : 403);
    proto_msg_gen_key(w, "principalId");
    proto_msg_gen_str(w, grant->principal);
    proto_msg_gen_key(w, "policyDocument");
    if (w->failed == PROTO_MSG_OK &&
        policy_document_write(w->gen, &rc->gen->conf->rules, grant->match) != yajl_gen_status_ok) {
        return 0;
    }
    proto_msg_gen_key(w, "context");
    /* yajl_gen_number() writes its bytes verbatim: it splices in the context object text that
     * decide_context_json() produced with yajl_gen, so a cached entry needs no re-encoding. */
    if (w->failed == PROTO_MSG_OK &&
        yajl_gen_number(w->gen, grant->context_json.ptr, grant->context_json.len) !=
            yajl_gen_status_ok) {
        return 0;
    }
    proto_msg_gen_key(w, "cached");
    proto_msg_gen_bool(w, grant->cached);
    proto_msg_gen_key(w, "ttl");
    proto_msg_gen_int(w, grant->ttl > 0 ? grant->ttl : 0);
    if (rc->id_json) {
        proto_msg_gen_key(w, "id");
        proto_msg_gen_json(w, rc->id_json);
    }
    return proto_msg_gen_map_close(w);
}

void decide_reply_grant(const decide_reply_ctx_t *rc, const decide_grant_t *grant, proto_buf_t *out)
{
    policy_effect_e effect = policy_evaluate(&rc->gen->conf->rules, grant->match, rc->method_arn);
    proto_msg_writer_t w;
    proto_msg_error_t err;
    if (proto_msg_writer_begin(&w, out, reply_max(rc)) != PROTO_MSG_OK) {
        decide_reply_error(rc, 500, JOSE_E_INTERNAL, out);
        return;
    }
    int ok = reply_grant_body(&w, rc, grant, effect);
    if (!ok && w.failed == PROTO_MSG_OK) {
        w.failed = PROTO_MSG_ERR_TOO_LARGE;
    }
    if (proto_msg_writer_end(&w, &err) != PROTO_MSG_OK) {
        /* The writer took its partial frame back out: the reply is an ERROR, not a half ALLOW. */
        decide_reply_error_text(rc, 500, "reply_too_large", err.message, out);
        return;
    }
    stats_count_verdict(&rc->srv->stats,
                        effect == POLICY_ALLOW ? PROTO_VERDICT_ALLOW : PROTO_VERDICT_DENY, 0);
    reply_log(rc, effect == POLICY_ALLOW ? "ALLOW" : "DENY", grant->cached ? "cached" : NULL);
}

/* yajl_gen's print callback: appends to a pool-backed growing string, bounded. */
typedef struct context_text {
    proto_buf_t buf;
    int failed;
} context_text_t;

static void context_print(void *ctx, const char *s, size_t len)
{
    context_text_t *t = ctx;
    if (!t->failed && proto_buf_append(&t->buf, s, len) != PROTO_BUF_OK) {
        t->failed = 1;
    }
}

/* The context object's text may not exceed this: it goes into every reply and cache entry. */
#define DECIDE_CONTEXT_MAX_BYTES 8192u

int decide_context_json(apr_pool_t *pool, const conf_issuer_t *iss, const proto_json_t *claims,
                        proto_str_t *out)
{
    context_text_t t;
    proto_buf_init(&t.buf, DECIDE_CONTEXT_MAX_BYTES, 0);
    t.failed = 0;
    int rc = -1;
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        goto out;
    }
    yajl_gen_config(g, yajl_gen_print_callback, context_print, &t);
    yajl_gen_map_open(g);
    for (size_t i = 0; i < iss->ncontext_claims; i++) {
        const proto_json_t *v = proto_json_get_str(claims, iss->context_claims[i]);
        if (v == NULL || v->type == PROTO_JSON_NULL) {
            continue;
        }
        yajl_gen_string(g, (const unsigned char *)iss->context_claims[i].ptr,
                        iss->context_claims[i].len);
        if (v->type == PROTO_JSON_STRING) {
            yajl_gen_string(g, (const unsigned char *)v->u.string.ptr, v->u.string.len);
        } else if (v->type == PROTO_JSON_NUMBER) {
            yajl_gen_number(g, v->u.number.text.ptr, v->u.number.text.len);
        } else if (v->type == PROTO_JSON_BOOL) {
            yajl_gen_bool(g, v->u.boolean);
        } else {
            proto_alloc_t a = jose_pool_allocator(pool);
            proto_str_t text;
            if (proto_msg_json_text(v, DECIDE_CONTEXT_MAX_BYTES, &a, &text) != PROTO_MSG_OK) {
                goto out;
            }
            yajl_gen_string(g, (const unsigned char *)text.ptr, text.len);
        }
    }
    yajl_gen_map_close(g);
    if (t.failed) {
        goto out;
    }
    char *copy = apr_pmemdup(pool, proto_buf_ptr(&t.buf), proto_buf_used(&t.buf));
    *out = proto_str_make(copy, proto_buf_used(&t.buf));
    rc = 0;
out:
    if (g) {
        yajl_gen_free(g);
    }
    proto_buf_free(&t.buf);
    return rc;
}
