/* libjwtauthz's sans-I/O side: public request arguments encoded into frames through proto's
 * codec, and the reply decoder an event loop feeds. Used by the blocking client too. Nothing here
 * touches a file descriptor. */
#include "codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "reply.h"

/* Most header or query pairs one request may carry: far past what a web server accepts, and it
 * keeps the temporary pair array's size from overflowing. */
#define CODEC_MAX_PAIRS 100000u

struct jwtauthz_decoder {
    proto_buf_t in; /* sensitive: replies may carry claims */
    int admin;
};

static proto_str_t codec_str(jwtauthz_str_t s)
{
    return proto_str_make(s.ptr, s.ptr ? s.len : 0);
}

static int codec_status(proto_msg_status_e st)
{
    switch (st) {
    case PROTO_MSG_OK:
        return JWTAUTHZ_OK;
    case PROTO_MSG_ERR_TOO_LARGE:
        return JWTAUTHZ_E_TOO_LARGE;
    case PROTO_MSG_ERR_NO_MEMORY:
        return JWTAUTHZ_E_NOMEM;
    default:
        break;
    }
    return JWTAUTHZ_E_INVALID;
}

static int codec_finish(proto_msg_status_e st, const proto_msg_error_t *err, char *msg,
                        size_t msg_size)
{
    if (st != PROTO_MSG_OK) {
        snprintf(msg, msg_size, "request not sent: %s", err->message);
    }
    return codec_status(st);
}

int codec_token_encode(proto_buf_t *out, jwtauthz_str_t authorization, jwtauthz_str_t method_arn,
                       jwtauthz_str_t id, char *msg, size_t msg_size)
{
    proto_decision_request_t req;
    proto_msg_error_t err;

    if (authorization.ptr && authorization.len > PROTO_MAX_AUTHORIZATION_BYTES) {
        snprintf(msg, msg_size,
                 "Authorization value of %zu bytes: longer than any token "
                 "jwtauthzd accepts",
                 authorization.len);
        return JWTAUTHZ_E_TOKEN_TOO_LARGE;
    }
    if (method_arn.ptr == NULL) {
        snprintf(msg, msg_size, "request not sent: no methodArn");
        return JWTAUTHZ_E_INVALID;
    }
    memset(&req, 0, sizeof(req));
    req.type = PROTO_REQ_TOKEN;
    req.authorization_token = codec_str(authorization);
    req.method_arn = codec_str(method_arn);
    req.id = codec_str(id);
    return codec_finish(proto_msg_request_encode(out, CODEC_MAX_REQUEST_BYTES, &req, &err), &err,
                        msg, msg_size);
}

static int codec_pairs(const jwtauthz_pair_t *in, size_t n, proto_pair_t **out)
{
    *out = NULL;
    if (n == 0) {
        return JWTAUTHZ_OK;
    }
    if (in == NULL || n > CODEC_MAX_PAIRS) {
        return n > CODEC_MAX_PAIRS ? JWTAUTHZ_E_TOO_LARGE : JWTAUTHZ_E_INVALID;
    }
    *out = calloc(n, sizeof(**out));
    if (*out == NULL) {
        return JWTAUTHZ_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        (*out)[i].name = codec_str(in[i].name);
        (*out)[i].value = codec_str(in[i].value);
    }
    return JWTAUTHZ_OK;
}

int codec_request_encode(proto_buf_t *out, const jwtauthz_request_t *r, jwtauthz_str_t id,
                         char *msg, size_t msg_size)
{
    proto_decision_request_t req;
    proto_pair_t *headers = NULL, *query = NULL;
    proto_msg_error_t err;
    int rc;

    if (r == NULL || r->method_arn.ptr == NULL) {
        snprintf(msg, msg_size, "request not sent: no methodArn");
        return JWTAUTHZ_E_INVALID;
    }
    rc = codec_pairs(r->headers, r->header_count, &headers);
    if (rc == JWTAUTHZ_OK) {
        rc = codec_pairs(r->query, r->query_count, &query);
    }
    if (rc != JWTAUTHZ_OK) {
        snprintf(msg, msg_size, "request not sent: headers or query parameters unusable");
        goto out;
    }
    memset(&req, 0, sizeof(req));
    req.type = PROTO_REQ_REQUEST;
    req.method_arn = codec_str(r->method_arn);
    req.http_method = codec_str(r->http_method);
    req.path = codec_str(r->path);
    req.headers = headers;
    req.header_count = r->header_count;
    req.query = query;
    req.query_count = r->query_count;
    req.source_ip = codec_str(r->source_ip);
    req.id = codec_str(id);
    rc = codec_finish(proto_msg_request_encode(out, CODEC_MAX_REQUEST_BYTES, &req, &err), &err, msg,
                      msg_size);
out:
    free(headers);
    free(query);
    return rc;
}

int codec_admin_encode(proto_buf_t *out, jwtauthz_admin_cmd_t cmd, jwtauthz_str_t arg,
                       jwtauthz_str_t id, char *msg, size_t msg_size)
{
    proto_admin_request_t req;
    proto_msg_error_t err;
    int needs_arg = 0;

    memset(&req, 0, sizeof(req));
    switch (cmd) {
    case JWTAUTHZ_ADMIN_FLUSH:
        req.cmd = PROTO_ADMIN_FLUSH;
        break;
    case JWTAUTHZ_ADMIN_FLUSH_PRINCIPAL:
        req.cmd = PROTO_ADMIN_FLUSH;
        req.principal = codec_str(arg);
        needs_arg = 1;
        break;
    case JWTAUTHZ_ADMIN_FLUSH_TOKEN:
        req.cmd = PROTO_ADMIN_FLUSH;
        req.token = codec_str(arg);
        needs_arg = 1;
        break;
    case JWTAUTHZ_ADMIN_STATS:
        req.cmd = PROTO_ADMIN_STATS;
        break;
    case JWTAUTHZ_ADMIN_KEYS:
        req.cmd = PROTO_ADMIN_KEYS;
        break;
    case JWTAUTHZ_ADMIN_REFRESH:
        req.cmd = PROTO_ADMIN_REFRESH;
        req.issuer = codec_str(arg);
        needs_arg = 1;
        break;
    case JWTAUTHZ_ADMIN_RELOAD:
        req.cmd = PROTO_ADMIN_RELOAD;
        break;
    default:
        snprintf(msg, msg_size, "request not sent: unknown admin command %d", (int)cmd);
        return JWTAUTHZ_E_INVALID;
    }
    /* A targeted flush without its target would go out as a flush of everything. */
    if (needs_arg != (arg.ptr != NULL)) {
        snprintf(msg, msg_size, "request not sent: admin command %s an argument",
                 needs_arg ? "needs" : "takes no");
        return JWTAUTHZ_E_INVALID;
    }
    req.id = codec_str(id);
    return codec_finish(proto_msg_admin_encode(out, CODEC_MAX_REQUEST_BYTES, &req, &err), &err, msg,
                        msg_size);
}

/* ---- public sans-I/O encoding ------------------------------------------------------------------
 */

/* Hands a frame built in tmp to the caller's buffer. */
static int codec_copy_out(int rc, proto_buf_t *tmp, void *out, size_t size, size_t *len)
{
    if (rc == JWTAUTHZ_OK) {
        size_t n = proto_buf_used(tmp);
        if (len) {
            *len = n;
        }
        if (out == NULL || size < n) {
            rc = JWTAUTHZ_E_SPACE;
        } else {
            memcpy(out, proto_buf_ptr(tmp), n);
        }
    } else if (len) {
        *len = 0;
    }
    proto_buf_free(tmp);
    return rc;
}

static void codec_tmp_init(proto_buf_t *tmp)
{
    /* Sensitive: the frame holds a token. */
    proto_buf_init(tmp, CODEC_MAX_REQUEST_BYTES + PROTO_FRAME_HEADER_BYTES, 1);
}

JWTAUTHZ_API int jwtauthz_encode_token(jwtauthz_str_t authorization, jwtauthz_str_t method_arn,
                                       jwtauthz_str_t id, void *out, size_t size, size_t *len)
{
    proto_buf_t tmp;
    char msg[16];

    codec_tmp_init(&tmp);
    return codec_copy_out(codec_token_encode(&tmp, authorization, method_arn, id, msg, sizeof(msg)),
                          &tmp, out, size, len);
}

JWTAUTHZ_API int jwtauthz_encode_request(const jwtauthz_request_t *req, jwtauthz_str_t id,
                                         void *out, size_t size, size_t *len)
{
    proto_buf_t tmp;
    char msg[16];

    codec_tmp_init(&tmp);
    return codec_copy_out(codec_request_encode(&tmp, req, id, msg, sizeof(msg)), &tmp, out, size,
                          len);
}

JWTAUTHZ_API int jwtauthz_encode_admin(jwtauthz_admin_cmd_t cmd, jwtauthz_str_t arg,
                                       jwtauthz_str_t id, void *out, size_t size, size_t *len)
{
    proto_buf_t tmp;
    char msg[16];

    codec_tmp_init(&tmp);
    return codec_copy_out(codec_admin_encode(&tmp, cmd, arg, id, msg, sizeof(msg)), &tmp, out, size,
                          len);
}

/* ---- reply decoder ------------------------------------------------------------------------------
 */

JWTAUTHZ_API jwtauthz_decoder_t *jwtauthz_decoder_new(int admin)
{
    jwtauthz_decoder_t *d = calloc(1, sizeof(*d));
    if (d) {
        proto_buf_init(&d->in, JWTAUTHZ_DECODER_MAX_BYTES, 1);
        d->admin = admin != 0;
    }
    return d;
}

JWTAUTHZ_API int jwtauthz_decoder_feed(jwtauthz_decoder_t *d, const void *bytes, size_t len)
{
    if (d == NULL || (bytes == NULL && len > 0)) {
        return JWTAUTHZ_E_INVALID;
    }
    switch (proto_buf_append(&d->in, bytes, len)) {
    case PROTO_BUF_OK:
        return JWTAUTHZ_OK;
    case PROTO_BUF_TOO_LARGE:
        return JWTAUTHZ_E_BAD_REPLY;
    case PROTO_BUF_NO_MEMORY:
        break;
    }
    return JWTAUTHZ_E_NOMEM;
}

JWTAUTHZ_API int jwtauthz_decoder_next(jwtauthz_decoder_t *d, jwtauthz_reply_t **reply)
{
    proto_str_t frame;
    proto_frame_status_e fs;
    char msg[240];
    int st;

    if (reply == NULL) {
        return JWTAUTHZ_E_INVALID;
    }
    *reply = NULL;
    if (d == NULL) {
        *reply = reply_for_status(JWTAUTHZ_E_INVALID, "no decoder");
        return JWTAUTHZ_E_INVALID;
    }
    fs = proto_frame_next(&d->in, JWTAUTHZ_MAX_REPLY_BYTES, &frame);
    if (fs == PROTO_FRAME_NEED_MORE) {
        return JWTAUTHZ_NEED_MORE;
    }
    if (fs != PROTO_FRAME_READY) {
        /* The stream cannot be resynchronised: drop it all so nothing later is misread. */
        snprintf(msg, sizeof(msg), "reply frame refused: %s", proto_frame_status_name(fs));
        proto_buf_reset(&d->in);
        *reply = reply_for_status(JWTAUTHZ_E_BAD_REPLY, msg);
        return JWTAUTHZ_E_BAD_REPLY;
    }
    *reply = reply_decode(frame.ptr, frame.len, d->admin, &st, msg, sizeof(msg));
    proto_frame_consume(&d->in, &frame);
    if (*reply == NULL) {
        *reply = reply_for_status(st, msg);
        return st;
    }
    return JWTAUTHZ_OK;
}

JWTAUTHZ_API size_t jwtauthz_decoder_pending(const jwtauthz_decoder_t *d)
{
    return d ? proto_buf_used(&d->in) : 0;
}

JWTAUTHZ_API void jwtauthz_decoder_reset(jwtauthz_decoder_t *d)
{
    if (d) {
        proto_buf_reset(&d->in);
    }
}

JWTAUTHZ_API void jwtauthz_decoder_free(jwtauthz_decoder_t *d)
{
    if (d) {
        proto_buf_free(&d->in);
        free(d);
    }
}
