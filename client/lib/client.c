/* The blocking API of libjwtauthz: a client object holding one connection, a call that sends one
 * request and waits for its reply within the timeout, one reconnect-and-resend when a reused
 * connection turns out broken, and every failure turned into an ERROR reply. Not thread-safe by
 * design (one client per thread); no global state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "conn.h"
#include "jwtauthz.h"
#include "proto/frame.h"
#include "proto/limits.h"
#include "reply.h"
#include "version.h"

/* Room for a request id: a decimal unsigned long long and its NUL. */
#define CLIENT_ID_BYTES 24

struct jwtauthz_client {
    conn_t conn;
    int timeout_ms;
    unsigned long long calls; /* request ids: a reply must echo the id of the call it answers */
    proto_buf_t out;          /* the request frame; sensitive, it holds a token */
    proto_buf_t in;           /* the reply; sensitive, it may hold claims */
};

JWTAUTHZ_API const char *jwtauthz_version(void)
{
    return JWTAUTHZ_VERSION;
}

JWTAUTHZ_API jwtauthz_client_t *jwtauthz_client_new(const char *socket_path, int timeout_ms)
{
    jwtauthz_client_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    if (conn_init(&c->conn, socket_path ? socket_path : JWTAUTHZ_DEFAULT_SOCKET) != 0) {
        free(c);
        return NULL;
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : JWTAUTHZ_DEFAULT_TIMEOUT_MS;
    proto_buf_init(&c->out, CODEC_MAX_REQUEST_BYTES + PROTO_FRAME_HEADER_BYTES, 1);
    proto_buf_init(&c->in, PROTO_MAX_REPLY_BYTES + PROTO_FRAME_HEADER_BYTES, 1);
    return c;
}

JWTAUTHZ_API void jwtauthz_client_free(jwtauthz_client_t *c)
{
    if (c) {
        conn_close(&c->conn);
        proto_buf_free(&c->out);
        proto_buf_free(&c->in);
        free(c);
    }
}

static jwtauthz_str_t client_cstr(const char *s)
{
    jwtauthz_str_t r = {s, s ? strlen(s) : 0};
    return r;
}

static int client_status(conn_status_e st)
{
    switch (st) {
    case CONN_OK:
        return JWTAUTHZ_OK;
    case CONN_TIMEOUT:
        return JWTAUTHZ_E_TIMEOUT;
    case CONN_FULL:
        return JWTAUTHZ_E_BAD_REPLY;
    case CONN_NO_MEMORY:
        return JWTAUTHZ_E_NOMEM;
    case CONN_BROKEN:
    case CONN_UNAVAILABLE:
        break;
    }
    return JWTAUTHZ_E_UNAVAILABLE;
}

/* 1 when the open connection can carry the next request as it is. */
static int client_connection_reusable(jwtauthz_client_t *c)
{
    if (c->conn.fd < 0) {
        return 0;
    }
    /* After fork() parent and child would interleave on one socket: the child opens its own. */
    if (c->conn.pid != getpid() || conn_is_stale(&c->conn)) {
        conn_close(&c->conn);
        return 0;
    }
    return 1;
}

/* Receives until the buffer holds one whole reply frame. */
static conn_status_e client_read_frame(jwtauthz_client_t *c, long long deadline_ms,
                                       proto_str_t *frame, char *msg, size_t msg_size)
{
    for (;;) {
        proto_frame_status_e fs = proto_frame_next(&c->in, PROTO_MAX_REPLY_BYTES, frame);
        if (fs == PROTO_FRAME_READY) {
            return CONN_OK;
        }
        if (fs != PROTO_FRAME_NEED_MORE) {
            snprintf(msg, msg_size, "reply frame refused: %s", proto_frame_status_name(fs));
            return CONN_FULL;
        }
        conn_status_e st =
            conn_recv_some(&c->conn, &c->in, proto_frame_missing(&c->in, PROTO_MAX_REPLY_BYTES),
                           deadline_ms, msg, msg_size);
        if (st != CONN_OK) {
            return st;
        }
    }
}

/* Sends the frame in c->out and returns its reply (never NULL). */
static jwtauthz_reply_t *client_exchange(jwtauthz_client_t *c, int admin, const char *id)
{
    long long deadline_ms = conn_now_ms() + c->timeout_ms;
    conn_status_e st = CONN_OK;
    proto_str_t frame = {NULL, 0};
    jwtauthz_reply_t *r = NULL;
    char msg[256];
    int rc;

    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = client_connection_reusable(c);
        if (!reused) {
            st = conn_open(&c->conn, deadline_ms, msg, sizeof(msg));
            if (st != CONN_OK) {
                break;
            }
        }
        proto_buf_reset(&c->in);
        st = conn_send_all(&c->conn, proto_buf_ptr(&c->out), proto_buf_used(&c->out), deadline_ms,
                           msg, sizeof(msg));
        if (st == CONN_OK) {
            st = client_read_frame(c, deadline_ms, &frame, msg, sizeof(msg));
        }
        if (st == CONN_OK) {
            break;
        }
        conn_close(&c->conn);
        /* A kept-alive connection the daemon dropped is expected (restart, idle close): open a
         * new one and send again. A fresh connection failing means the daemon is in trouble. */
        if (st != CONN_BROKEN || !reused) {
            break;
        }
    }
    proto_buf_reset(&c->out);
    if (st != CONN_OK) {
        conn_close(&c->conn);
        r = reply_for_status(client_status(st), msg);
        goto out;
    }
    r = reply_decode(frame.ptr, frame.len, admin, &rc, msg, sizeof(msg));
    proto_frame_consume(&c->in, &frame);
    if (r == NULL) {
        conn_close(&c->conn);
        r = reply_for_status(rc, msg);
        goto out;
    }
    if (!jwtauthz_reply_answers(r, id)) {
        conn_close(&c->conn);
        jwtauthz_reply_free(r);
        r = reply_for_status(JWTAUTHZ_E_BAD_REPLY, "reply is for another request (id mismatch)");
        goto out;
    }
    if (proto_buf_used(&c->in) > 0) {
        /* Bytes nobody asked for: the stream is out of step, do not reuse it. */
        conn_close(&c->conn);
    }
out:
    proto_buf_reset(&c->in);
    return r;
}

static jwtauthz_verdict_t client_finish(jwtauthz_reply_t *r, jwtauthz_reply_t **out)
{
    jwtauthz_verdict_t v = jwtauthz_reply_verdict(r);
    if (out) {
        *out = r;
    } else {
        jwtauthz_reply_free(r);
    }
    return v;
}

static void client_next_id(jwtauthz_client_t *c, char id[CLIENT_ID_BYTES])
{
    snprintf(id, CLIENT_ID_BYTES, "%llu", ++c->calls);
}

JWTAUTHZ_API jwtauthz_verdict_t jwtauthz_check_token(jwtauthz_client_t *c,
                                                     const char *authorization,
                                                     const char *method_arn,
                                                     jwtauthz_reply_t **reply)
{
    char id[CLIENT_ID_BYTES], msg[256];
    int rc;

    if (c == NULL) {
        return client_finish(reply_for_status(JWTAUTHZ_E_INVALID, "no client"), reply);
    }
    client_next_id(c, id);
    proto_buf_reset(&c->out);
    rc = codec_token_encode(&c->out, client_cstr(authorization), client_cstr(method_arn),
                            client_cstr(id), msg, sizeof(msg));
    if (rc != JWTAUTHZ_OK) {
        return client_finish(reply_for_status(rc, msg), reply);
    }
    return client_finish(client_exchange(c, 0, id), reply);
}

JWTAUTHZ_API jwtauthz_verdict_t jwtauthz_check_request(jwtauthz_client_t *c,
                                                       const jwtauthz_request_t *req,
                                                       jwtauthz_reply_t **reply)
{
    char id[CLIENT_ID_BYTES], msg[256];
    int rc;

    if (c == NULL) {
        return client_finish(reply_for_status(JWTAUTHZ_E_INVALID, "no client"), reply);
    }
    client_next_id(c, id);
    proto_buf_reset(&c->out);
    rc = codec_request_encode(&c->out, req, client_cstr(id), msg, sizeof(msg));
    if (rc != JWTAUTHZ_OK) {
        return client_finish(reply_for_status(rc, msg), reply);
    }
    return client_finish(client_exchange(c, 0, id), reply);
}

JWTAUTHZ_API int jwtauthz_admin(jwtauthz_client_t *c, jwtauthz_admin_cmd_t cmd, const char *arg,
                                jwtauthz_reply_t **reply)
{
    jwtauthz_reply_t *r;
    char id[CLIENT_ID_BYTES], msg[256];
    int rc, ok;

    if (c == NULL) {
        r = reply_for_status(JWTAUTHZ_E_INVALID, "no client");
    } else {
        client_next_id(c, id);
        proto_buf_reset(&c->out);
        rc = codec_admin_encode(&c->out, cmd, client_cstr(arg), client_cstr(id), msg, sizeof(msg));
        r = rc == JWTAUTHZ_OK ? client_exchange(c, 1, id) : reply_for_status(rc, msg);
    }
    ok = jwtauthz_reply_ok(r);
    client_finish(r, reply);
    return ok;
}
