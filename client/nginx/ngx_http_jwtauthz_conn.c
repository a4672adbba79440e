/* ngx_http_jwtauthz_module: connections to jwtauthzd on the worker's event loop — non-blocking
 * connect, send, receive, and a per-worker cache of idle connections per socket path (the
 * upstream keepalive module's pattern). One request is on a connection at a time: no pipelining,
 * so a decision that takes long (the daemon waiting for an IdP's keys) delays nobody else.
 * Nothing here blocks or sleeps, and nothing here knows what a verdict means; a daemon found
 * unreachable empties the socket's decision cache. */
#include "ngx_http_jwtauthz_module.h"

struct ngx_http_jwtauthz_conn_s {
    ngx_queue_t queue; /* in peer->idle while idle */
    ngx_connection_t *connection;
    ngx_http_jwtauthz_peer_t *peer;
    jwtauthz_decoder_t *decoder;
    ngx_http_jwtauthz_ctx_t *ctx; /* the request on the wire; NULL while idle */
    unsigned idle : 1;
    unsigned reused : 1;    /* has carried a request before: the daemon may have closed it */
    unsigned got_bytes : 1; /* reply bytes arrived for the current request */
};

static void ngx_http_jwtauthz_conn_write(ngx_http_jwtauthz_conn_t *conn);
static void ngx_http_jwtauthz_conn_read(ngx_http_jwtauthz_conn_t *conn);

static void ngx_http_jwtauthz_conn_close(ngx_http_jwtauthz_conn_t *conn)
{
    if (conn->idle) {
        ngx_queue_remove(&conn->queue);
        conn->peer->nidle--;
    }
    ngx_close_connection(conn->connection);
    jwtauthz_decoder_free(conn->decoder);
    ngx_free(conn);
}

static void ngx_http_jwtauthz_conn_detach(ngx_http_jwtauthz_conn_t *conn)
{
    if (conn->ctx) {
        conn->ctx->conn = NULL;
        conn->ctx = NULL;
    }
}

/* ---- the idle cache -------------------------------------------------------------------------- */

static void ngx_http_jwtauthz_idle_dummy_handler(ngx_event_t *ev)
{
}

/* An idle connection became readable: the daemon closed it (its idle timeout, a restart) or sent
 * bytes nobody asked for. Either way it cannot carry a request any more. Also called with
 * c->close set when the worker shuts down gracefully (ngx_close_idle_connections). */
static void ngx_http_jwtauthz_idle_handler(ngx_event_t *ev)
{
    char byte;
    ssize_t n;
    ngx_connection_t *c = ev->data;
    ngx_http_jwtauthz_conn_t *conn = c->data;

    if (!c->close) {
        n = recv(c->fd, &byte, 1, MSG_PEEK);
        if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
            ev->ready = 0;
            if (ngx_handle_read_event(c->read, 0) == NGX_OK) {
                return;
            }
        }
    }
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0, "jwtauthz: closing idle connection to %V",
                   &conn->peer->name);
    ngx_http_jwtauthz_conn_close(conn);
}

/* Puts a connection that has just delivered a whole reply, and nothing more, into the cache. */
static void ngx_http_jwtauthz_conn_keep(ngx_http_jwtauthz_conn_t *conn)
{
    ngx_queue_t *q;
    ngx_connection_t *c = conn->connection;
    ngx_http_jwtauthz_peer_t *peer = conn->peer;

    if (ngx_terminate || ngx_exiting || c->read->eof || c->read->error || c->write->error ||
        ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_jwtauthz_conn_close(conn);
        return;
    }
    if (peer->nidle >= NGX_HTTP_JWTAUTHZ_KEEPALIVE_MAX) {
        q = ngx_queue_last(&peer->idle);
        ngx_http_jwtauthz_conn_close(ngx_queue_data(q, ngx_http_jwtauthz_conn_t, queue));
    }
    ngx_queue_insert_head(&peer->idle, &conn->queue);
    peer->nidle++;
    conn->idle = 1;
    conn->reused = 1;

    /* The request's log goes with the request; an idle connection logs to the cycle's. */
    c->idle = 1;
    c->log = ngx_cycle->log;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;
    c->read->handler = ngx_http_jwtauthz_idle_handler;
    c->write->handler = ngx_http_jwtauthz_idle_dummy_handler;
    if (c->read->ready) {
        ngx_http_jwtauthz_idle_handler(c->read);
    }
}

/* The most recently used idle connection (the others may then time out at the daemon and
 * close, which is what lets a burst's extra connections go). */
static ngx_http_jwtauthz_conn_t *ngx_http_jwtauthz_conn_take_idle(ngx_http_jwtauthz_peer_t *peer)
{
    ngx_queue_t *q;
    ngx_http_jwtauthz_conn_t *conn;

    if (ngx_queue_empty(&peer->idle)) {
        return NULL;
    }
    q = ngx_queue_head(&peer->idle);
    ngx_queue_remove(q);
    peer->nidle--;
    conn = ngx_queue_data(q, ngx_http_jwtauthz_conn_t, queue);
    conn->idle = 0;
    conn->connection->idle = 0;
    return conn;
}

/* ---- one request on the wire ----------------------------------------------------------------- */

static void ngx_http_jwtauthz_conn_read_handler(ngx_event_t *ev)
{
    ngx_connection_t *c = ev->data;
    ngx_http_jwtauthz_conn_t *conn = c->data;

    if (conn->ctx) {
        ngx_http_jwtauthz_conn_read(conn);
    }
}

static void ngx_http_jwtauthz_conn_write_handler(ngx_event_t *ev)
{
    ngx_connection_t *c = ev->data;
    ngx_http_jwtauthz_conn_t *conn = c->data;

    if (conn->ctx && conn->ctx->sent < conn->ctx->frame.len) {
        ngx_http_jwtauthz_conn_write(conn);
    }
}

/* A new connection to ctx's daemon, or NULL (nginx has logged why: no such socket, refused, a
 * full listen queue, out of descriptors). */
static ngx_http_jwtauthz_conn_t *ngx_http_jwtauthz_conn_open(ngx_http_jwtauthz_ctx_t *ctx)
{
    ngx_int_t rc;
    ngx_connection_t *c;
    ngx_peer_connection_t pc;
    ngx_http_jwtauthz_conn_t *conn;
    ngx_log_t *log = ctx->request->connection->log;

    ngx_memzero(&pc, sizeof(ngx_peer_connection_t));
    pc.sockaddr = (struct sockaddr *)&ctx->peer->sockaddr;
    pc.socklen = ctx->peer->socklen;
    pc.name = &ctx->peer->name;
    pc.get = ngx_event_get_peer;
    pc.log = log;
    pc.log_error = NGX_ERROR_ERR;

    /* NGX_OK: connected (a Unix socket connects at once or not at all); NGX_AGAIN: in
     * progress, the write event says when. Anything else: already closed and logged. */
    rc = ngx_event_connect_peer(&pc);
    if (rc != NGX_OK && rc != NGX_AGAIN) {
        return NULL;
    }
    c = pc.connection;
    conn = ngx_calloc(sizeof(ngx_http_jwtauthz_conn_t), log);
    if (conn == NULL || (conn->decoder = jwtauthz_decoder_new(0)) == NULL) {
        ngx_free(conn);
        ngx_close_connection(c);
        return NULL;
    }
    conn->connection = c;
    conn->peer = ctx->peer;
    c->data = conn;
    return conn;
}

static void ngx_http_jwtauthz_conn_attach(ngx_http_jwtauthz_conn_t *conn,
                                          ngx_http_jwtauthz_ctx_t *ctx)
{
    ngx_connection_t *c = conn->connection;

    conn->ctx = ctx;
    conn->got_bytes = 0;
    ctx->conn = conn;
    ctx->sent = 0;
    jwtauthz_decoder_reset(conn->decoder);

    c->log = ctx->request->connection->log;
    c->read->log = c->log;
    c->write->log = c->log;
    /* A kept-alive connection the daemon has just closed fails with EPIPE or ECONNRESET and is
     * retried on a new one: worth an info line, not an error. */
    c->log_error = conn->reused ? NGX_ERROR_INFO : NGX_ERROR_ERR;
    c->read->handler = ngx_http_jwtauthz_conn_read_handler;
    c->write->handler = ngx_http_jwtauthz_conn_write_handler;
}

void ngx_http_jwtauthz_conn_send(ngx_http_jwtauthz_ctx_t *ctx)
{
    ngx_http_jwtauthz_conn_t *conn = NULL;

    /* A retry takes a new connection: the idle ones may be as dead as the one that failed. */
    if (!ctx->retried) {
        conn = ngx_http_jwtauthz_conn_take_idle(ctx->peer);
    }
    if (conn == NULL) {
        conn = ngx_http_jwtauthz_conn_open(ctx);
    }
    if (conn == NULL) {
        ngx_http_jwtauthz_cache_flush(ctx->peer);
        ngx_http_jwtauthz_finish(ctx, jwtauthz_reply_for_status(JWTAUTHZ_E_UNAVAILABLE, NULL));
        return;
    }
    ngx_http_jwtauthz_conn_attach(conn, ctx);
    ngx_http_jwtauthz_conn_write(conn);
}

void ngx_http_jwtauthz_conn_abandon(ngx_http_jwtauthz_ctx_t *ctx)
{
    ngx_http_jwtauthz_conn_t *conn = ctx->conn;

    if (conn != NULL) {
        ngx_http_jwtauthz_conn_detach(conn);
        ngx_http_jwtauthz_conn_close(conn);
    }
}

/* The connection failed before a reply (send error, EOF, reset). A kept-alive connection that
 * fails before any reply byte is the daemon having closed it meanwhile: the request goes once
 * more on a new connection, as the blocking client does (decisions have no side effects to
 * repeat). Otherwise the daemon is unreachable: 503. */
static void ngx_http_jwtauthz_conn_fail(ngx_http_jwtauthz_conn_t *conn, const char *what)
{
    ngx_http_jwtauthz_ctx_t *ctx = conn->ctx;
    ngx_uint_t retry = conn->reused && !conn->got_bytes && !ctx->retried;

    ngx_http_jwtauthz_conn_detach(conn);
    ngx_http_jwtauthz_conn_close(conn);
    if (retry) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "jwtauthz: kept-alive connection to %V gone, reconnecting",
                       &ctx->peer->name);
        ctx->retried = 1;
        ngx_http_jwtauthz_conn_send(ctx);
        return;
    }
    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0, "jwtauthz: %s %V", what,
                  &ctx->peer->name);
    ngx_http_jwtauthz_cache_flush(ctx->peer);
    ngx_http_jwtauthz_finish(ctx, jwtauthz_reply_for_status(JWTAUTHZ_E_UNAVAILABLE, NULL));
}

/* A whole reply (or the decoder's verdict on bytes that are not one). The connection is kept
 * only when the reply echoed our id and nothing followed it: anything else means the stream is
 * out of step, and a later request must never read an earlier one's reply. */
static void ngx_http_jwtauthz_conn_done(ngx_http_jwtauthz_conn_t *conn, jwtauthz_reply_t *reply,
                                        ngx_uint_t decoded)
{
    ngx_uint_t keep = 0;
    ngx_http_jwtauthz_ctx_t *ctx = conn->ctx;
    ngx_log_t *log = ctx->request->connection->log;

    if (!decoded) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "jwtauthz: unreadable reply from %V", &ctx->peer->name);
    } else if (!jwtauthz_reply_answers(reply, (const char *)ctx->id.data)) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "jwtauthz: reply from %V is not for request %V",
                      &ctx->peer->name, &ctx->id);
        jwtauthz_reply_free(reply);
        reply = jwtauthz_reply_for_status(JWTAUTHZ_E_BAD_REPLY, NULL);
    } else {
        /* An ERROR without our id is the daemon refusing a frame it could not read; it closes
         * the connection after such a reply. */
        keep = jwtauthz_reply_id(reply) != NULL && jwtauthz_decoder_pending(conn->decoder) == 0;
    }

    ngx_http_jwtauthz_conn_detach(conn);
    if (keep) {
        ngx_http_jwtauthz_conn_keep(conn);
    } else {
        ngx_http_jwtauthz_conn_close(conn);
    }
    /* Last: it may resume the request, which may end it, or start another on this connection. */
    ngx_http_jwtauthz_finish(ctx, reply);
}

static void ngx_http_jwtauthz_conn_write(ngx_http_jwtauthz_conn_t *conn)
{
    ssize_t n;
    ngx_connection_t *c = conn->connection;
    ngx_http_jwtauthz_ctx_t *ctx = conn->ctx;

    while (ctx->sent < ctx->frame.len) {
        n = c->send(c, ctx->frame.data + ctx->sent, ctx->frame.len - ctx->sent);
        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ngx_http_jwtauthz_conn_fail(conn, "cannot wait to write to");
            }
            return;
        }
        if (n <= 0) {
            ngx_http_jwtauthz_conn_fail(conn, "cannot send to");
            return;
        }
        ctx->sent += n;
    }
    /* All sent: the reply may already be there (a Unix socket and an idle daemon are fast). */
    ngx_http_jwtauthz_conn_read(conn);
}

static void ngx_http_jwtauthz_conn_read(ngx_http_jwtauthz_conn_t *conn)
{
    int rc;
    ssize_t n;
    jwtauthz_reply_t *reply;
    ngx_connection_t *c = conn->connection;
    u_char buf[NGX_HTTP_JWTAUTHZ_READ_BYTES];

    for (;;) {
        n = c->recv(c, buf, sizeof(buf));
        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_http_jwtauthz_conn_fail(conn, "cannot wait to read from");
            }
            break;
        }
        if (n == 0 || n == NGX_ERROR) {
            ngx_http_jwtauthz_conn_fail(conn,
                                        n == 0 ? "connection closed by" : "cannot receive from");
            break;
        }
        conn->got_bytes = 1;
        /* n is at most NGX_HTTP_JWTAUTHZ_READ_BYTES, well under JWTAUTHZ_MAX_REPLY_BYTES, and
         * each feed is followed by taking a reply out, as jwtauthz_decoder_feed() asks. */
        rc = jwtauthz_decoder_feed(conn->decoder, buf, (size_t)n);
        if (rc != JWTAUTHZ_OK) {
            ngx_http_jwtauthz_conn_done(conn, jwtauthz_reply_for_status(rc, NULL), 0);
            break;
        }
        rc = jwtauthz_decoder_next(conn->decoder, &reply);
        if (rc != JWTAUTHZ_NEED_MORE) {
            ngx_http_jwtauthz_conn_done(conn, reply, rc == JWTAUTHZ_OK);
            break;
        }
    }
    /* Replies carry claims; the stack copy goes with them. */
    ngx_explicit_memzero(buf, sizeof(buf));
}
