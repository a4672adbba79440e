/* The event loop threads (see loop.h): accept, read, frame, decide, write, park, time out.
 * A connection belongs to one loop for its life; its pools are children of that loop's pool and
 * only that thread touches them. A malformed frame closes that connection only. */
#include "daemon/loop.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_poll.h>
#include <apr_portable.h>
#include <apr_thread_proc.h>

#include "daemon/admin.h"
#include "daemon/decide.h"
#include "daemon/decide_reply.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "proto/frame.h"

/* Read at most this much per read(2): one typical frame, without hogging the loop. */
#define LOOP_READ_CHUNK_BYTES 16384u
/* How often timeouts are checked (a scan of the loop's connections). */
#define LOOP_TICK_MS 100
/* After accept fails for lack of file descriptors, stop accepting for this long. */
#define LOOP_ACCEPT_BACKOFF_MS 100
/* While descriptors stay exhausted accept fails again after every backoff: warn once per this
 * long (with the count meanwhile), not 10 lines a second per loop into the journal. */
#define LOOP_ACCEPT_WARN_INTERVAL_MS 10000

typedef struct conn conn_t;

struct conn {
    loop_t *loop;
    apr_pool_t *pool;     /* connection lifetime */
    apr_pool_t *req_pool; /* one request; cleared after each reply */
    apr_socket_t *sock;
    int fd;
    int is_admin;
    proto_buf_t in, out;
    apr_pollfd_t pfd;
    apr_int16_t events; /* what is registered in the pollset now (0: not registered) */
    int closing;        /* close once out is flushed; read nothing more */
    int parked;         /* the front frame waits for keys */
    gen_t *park_gen;    /* the generation it started on */
    uint64_t park_deadline_ms;
    uint64_t frame_started_ms; /* 0: no partial frame pending */
    uint64_t last_active_ms;
    conn_t *prev, *next;
};

struct loop {
    srv_t *srv;
    unsigned index;
    apr_pool_t *pool;
    apr_pollset_t *pollset;
    apr_thread_t *thread;
    decide_env_t env;
    gen_t *gen;
    conn_t *conns;
    unsigned nconns;
    loop_listeners_t ls;
    apr_socket_t *listen_sock[2];
    apr_pollfd_t listen_pfd[2];
    int accepting;
    uint64_t accept_resume_ms;
    uint64_t accept_warned_ms; /* last "accept: ..." warning; 0: none yet */
    uint64_t accept_failures;  /* since that warning */
    uint64_t next_tick_ms;
    volatile apr_uint32_t keys_changed;
};

static uint64_t loop_now_ms(void)
{
    return srv_monotonic_us() / 1000u;
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_close(conn_t *c)
{
    loop_t *l = c->loop;
    if (c->events) {
        apr_pollset_remove(l->pollset, &c->pfd);
    }
    if (c->park_gen) {
        gen_release(c->park_gen);
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        l->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    l->nconns--;
    proto_buf_free(&c->in);
    proto_buf_free(&c->out);
    close(c->fd);
    apr_pool_destroy(c->pool);
}

/* Registers what the connection can make progress on. While a request is parked or the client
 * leaves its replies unread, its socket is not read: level-triggered polling would otherwise spin
 * on bytes we will not take yet. */
static void conn_update_events(conn_t *c)
{
    apr_int16_t want = 0;
    if (!c->parked && !c->closing && proto_buf_used(&c->out) < LOOP_OUT_HIGH_WATER_BYTES) {
        want |= APR_POLLIN;
    }
    if (proto_buf_used(&c->out) > 0) {
        want |= APR_POLLOUT;
    }
    if (want == c->events) {
        return;
    }
    if (c->events) {
        apr_pollset_remove(c->loop->pollset, &c->pfd);
    }
    c->pfd.reqevents = want;
    if (want) {
        apr_pollset_add(c->loop->pollset, &c->pfd);
    }
    c->events = want;
}

/* Writes what it can without blocking. Returns -1 when the peer is gone. */
static int conn_flush(conn_t *c)
{
    while (proto_buf_used(&c->out) > 0) {
        ssize_t n = send(c->fd, proto_buf_ptr(&c->out), proto_buf_used(&c->out),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        proto_buf_consume(&c->out, (size_t)n);
    }
    return 0;
}

static size_t conn_max_frame(const conn_t *c)
{
    return c->loop->gen->conf->max_frame_bytes;
}

/* A frame that cannot be read: one ERROR reply where possible, then the connection closes
 * (CONTRACT "Wire protocol": nothing else is affected). */
static void conn_frame_error(conn_t *c, const char *reason, const char *message)
{
    decide_reply_ctx_t rc;
    decide_reply_ctx_init(&rc, c->loop->srv, c->loop->gen, NULL, proto_str_make(NULL, 0));
    apr_atomic_inc64(&c->loop->srv->stats.bad_frames);
    decide_reply_error_text(&rc, 500, reason, message, &c->out);
    c->closing = 1;
    log_msg(LOGL_DEBUG, "connection closed: %s", message);
}

/* Decides (or answers as admin) the frame at the front of c->in. Returns 1 when it was answered
 * and consumed, 0 when it was parked. */
static int conn_answer_frame(conn_t *c, proto_str_t frame, int may_wait)
{
    loop_t *l = c->loop;
    int64_t now = srv_now();
    uint64_t t0 = srv_monotonic_us();
    gen_t *g = c->park_gen ? c->park_gen : l->gen;
    if (c->is_admin) {
        if (admin_request(l->srv, g, c->req_pool, frame, now, &c->out)) {
            c->closing = 1;
        }
    } else {
        decide_result_e dr = decide_request(&l->env, g, c->req_pool, frame, may_wait, now, &c->out);
        if (dr == DECIDE_REPLIED_CLOSE) {
            c->closing = 1;
        } else if (dr == DECIDE_WAIT_KEYS) {
            if (!c->parked) {
                c->parked = 1;
                c->park_deadline_ms = loop_now_ms() + LOOP_KEY_WAIT_MS;
                c->park_gen = g;
                apr_atomic_inc32(&g->refs);
                apr_atomic_inc64(&l->srv->stats.waited_for_keys);
            }
            apr_pool_clear(c->req_pool);
            return 0;
        }
        stats_count_latency(&l->srv->stats, srv_monotonic_us() - t0);
    }
    if (c->parked) {
        c->parked = 0;
        gen_release(c->park_gen);
        c->park_gen = NULL;
    }
    apr_pool_clear(c->req_pool);
    return 1;
}

/* Answers the complete frames waiting in c->in, in order, while the client reads its replies. */
static void conn_process(conn_t *c, int may_wait)
{
    while (!c->closing && proto_buf_used(&c->out) < LOOP_OUT_HIGH_WATER_BYTES) {
        proto_str_t frame;
        proto_frame_status_e st = proto_frame_next(&c->in, conn_max_frame(c), &frame);
        if (st == PROTO_FRAME_NEED_MORE) {
            if (proto_buf_used(&c->in) == 0) {
                c->frame_started_ms = 0;
            } else if (c->frame_started_ms == 0) {
                c->frame_started_ms = loop_now_ms();
            }
            return;
        }
        if (st != PROTO_FRAME_READY) {
            conn_frame_error(c, "bad_frame",
                             st == PROTO_FRAME_ERR_EMPTY ? "frame length is zero"
                                                         : "frame longer than max_frame_bytes");
            return;
        }
        if (!conn_answer_frame(c, frame, may_wait)) {
            return;
        }
        proto_frame_consume(&c->in, &frame);
        c->frame_started_ms = 0;
    }
}

static void conn_readable(conn_t *c)
{
    if (c->closing) {
        return;
    }
    size_t want = proto_frame_missing(&c->in, conn_max_frame(c));
    if (want == 0 || want > LOOP_READ_CHUNK_BYTES) {
        want = LOOP_READ_CHUNK_BYTES;
    }
    /* Also take what the buffer already has room for: the next frame usually arrives whole, and
     * a read that stopped after its 4-byte header would cost a second read(2) and a second trip
     * through the poll loop per request. Never past the allocation: idle connections keep
     * buffers the size of their frames. */
    size_t room = c->in.cap - proto_buf_used(&c->in);
    if (room > want) {
        want = room < LOOP_READ_CHUNK_BYTES ? room : LOOP_READ_CHUNK_BYTES;
    }
    unsigned char *dst = proto_buf_reserve(&c->in, want);
    if (dst == NULL) {
        /* Only a declared length over the cap can get here; proto_frame_next() names it. */
        conn_process(c, 1);
        return;
    }
    ssize_t n = read(c->fd, dst, want);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c->closing = 2; /* the peer is gone: nothing to flush to */
        return;
    }
    if (n < 0) {
        return;
    }
    proto_buf_commit(&c->in, (size_t)n);
    c->last_active_ms = loop_now_ms();
    if (!c->parked) {
        conn_process(c, 1);
    }
}

/* Runs after any event on c: flush, re-arm, or close. */
static void conn_settle(conn_t *c)
{
    if (c->closing != 2 && conn_flush(c) < 0) {
        c->closing = 2;
    }
    if (c->closing == 2 || (c->closing && proto_buf_used(&c->out) == 0)) {
        conn_close(c);
        return;
    }
    /* Replies drained below the high-water mark: pipelined requests may go on. */
    if (!c->parked && !c->closing && proto_buf_used(&c->in) > 0 &&
        proto_buf_used(&c->out) < LOOP_OUT_HIGH_WATER_BYTES) {
        conn_process(c, 1);
        if (conn_flush(c) < 0) {
            conn_close(c);
            return;
        }
    }
    conn_update_events(c);
}

static void loop_accept(loop_t *l, int is_admin)
{
    int lfd = is_admin ? l->ls.admin_fd : l->ls.decision_fd;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: survive it, stop accepting briefly (level-triggered epoll
                 * would otherwise spin on the pending connection). */
                int err = errno;
                uint64_t now = loop_now_ms();
                l->accept_failures++;
                if (l->accept_warned_ms == 0 ||
                    now - l->accept_warned_ms >= LOOP_ACCEPT_WARN_INTERVAL_MS) {
                    log_msg(LOGL_WARN,
                            "accept: %s; pausing accepts for %d ms (%llu time(s) since the last "
                            "warning)",
                            strerror(err), LOOP_ACCEPT_BACKOFF_MS,
                            (unsigned long long)l->accept_failures);
                    l->accept_warned_ms = now;
                    l->accept_failures = 0;
                }
                for (int k = 0; k < 2; k++) {
                    apr_pollset_remove(l->pollset, &l->listen_pfd[k]);
                }
                l->accepting = 0;
                l->accept_resume_ms = now + LOOP_ACCEPT_BACKOFF_MS;
            }
            return;
        }
        if (l->nconns >= LOOP_MAX_CONNECTIONS || (is_admin && !listen_peer_is_admin(fd))) {
            if (is_admin) {
                log_msg(LOGL_WARN, "admin connection refused: peer is neither root nor us");
            }
            close(fd);
            continue;
        }
        apr_pool_t *cp;
        if (apr_pool_create(&cp, l->pool) != APR_SUCCESS) {
            close(fd);
            return;
        }
        conn_t *c = apr_pcalloc(cp, sizeof(*c));
        c->loop = l;
        c->pool = cp;
        c->fd = fd;
        c->is_admin = is_admin;
        if (apr_pool_create(&c->req_pool, cp) != APR_SUCCESS ||
            apr_os_sock_put(&c->sock, &c->fd, cp) != APR_SUCCESS) {
            close(fd);
            apr_pool_destroy(cp);
            return;
        }
        /* in: one frame and its header; out: the high-water mark plus one largest reply.
         * Both may hold tokens or claims: wiped when freed. */
        proto_buf_init(&c->in, PROTO_FRAME_HEADER_BYTES + PROTO_MAX_FRAME_BYTES_CEILING, 1);
        proto_buf_init(&c->out,
                       LOOP_OUT_HIGH_WATER_BYTES + PROTO_MAX_REPLY_BYTES + PROTO_FRAME_HEADER_BYTES,
                       1);
        c->pfd.p = cp;
        c->pfd.desc_type = APR_POLL_SOCKET;
        c->pfd.desc.s = c->sock;
        c->pfd.reqevents = APR_POLLIN;
        c->pfd.client_data = c;
        c->last_active_ms = loop_now_ms();
        c->events = APR_POLLIN;
        if (apr_pollset_add(l->pollset, &c->pfd) != APR_SUCCESS) {
            close(fd);
            apr_pool_destroy(cp);
            return;
        }
        c->next = l->conns;
        if (l->conns) {
            l->conns->prev = c;
        }
        l->conns = c;
        l->nconns++;
        apr_atomic_inc64(&l->srv->stats.connections);
    }
}

/* Timeouts and parked requests; runs every LOOP_TICK_MS and after a wake-up. */
static void loop_tick(loop_t *l, int keys_changed)
{
    uint64_t now = loop_now_ms();
    if (!l->accepting && now >= l->accept_resume_ms && !apr_atomic_read32(&l->srv->stopping)) {
        for (int k = 0; k < 2; k++) {
            apr_pollset_add(l->pollset, &l->listen_pfd[k]);
        }
        l->accepting = 1;
    }
    conn_t *next;
    for (conn_t *c = l->conns; c; c = next) {
        next = c->next;
        if (c->parked && (keys_changed || now >= c->park_deadline_ms)) {
            /* Keys arrived (or did not in time): decide again, waiting no longer past the
             * deadline. */
            conn_process(c, now < c->park_deadline_ms);
            conn_settle(c);
            continue;
        }
        if (c->frame_started_ms && now - c->frame_started_ms > LOOP_FRAME_READ_TIMEOUT_MS) {
            log_msg(LOGL_DEBUG, "closing a connection that sent part of a frame and stalled");
            c->closing = 2;
            conn_settle(c);
            continue;
        }
        if (!c->parked && proto_buf_used(&c->out) == 0 &&
            now - c->last_active_ms > LOOP_IDLE_TIMEOUT_MS) {
            c->closing = 2;
            conn_settle(c);
        }
    }
}

static void loop_refresh_gen(loop_t *l)
{
    if (l->gen->id == apr_atomic_read32(&l->srv->gen_id)) {
        return;
    }
    gen_t *g = srv_gen_acquire(l->srv);
    gen_release(l->gen);
    l->gen = g;
}

static void loop_stop_accepting(loop_t *l)
{
    if (l->accepting) {
        for (int k = 0; k < 2; k++) {
            apr_pollset_remove(l->pollset, &l->listen_pfd[k]);
        }
        l->accepting = 0;
    }
    l->accept_resume_ms = UINT64_MAX;
}

/* SIGTERM: answer what is in flight (parked requests without waiting), flush, close. */
static void loop_drain(loop_t *l)
{
    uint64_t deadline = loop_now_ms() + LOOP_SHUTDOWN_GRACE_MS;
    conn_t *next;
    for (conn_t *c = l->conns; c; c = next) {
        next = c->next;
        if (c->parked) {
            conn_process(c, 0);
        }
        c->closing = c->closing ? c->closing : 1;
        conn_settle(c);
    }
    while (l->conns && loop_now_ms() < deadline) {
        const apr_pollfd_t *fds;
        apr_int32_t n = 0;
        apr_pollset_poll(l->pollset, (apr_interval_time_t)LOOP_TICK_MS * 1000, &n, &fds);
        for (apr_int32_t i = 0; i < n; i++) {
            conn_t *c = fds[i].client_data;
            if (c && c != (conn_t *)&l->listen_pfd[0] && c != (conn_t *)&l->listen_pfd[1]) {
                conn_settle(c);
            }
        }
    }
    while (l->conns) {
        conn_close(l->conns);
    }
}

static void *APR_THREAD_FUNC loop_main(apr_thread_t *t, void *data)
{
    loop_t *l = data;
    l->gen = srv_gen_acquire(l->srv);
    while (!apr_atomic_read32(&l->srv->stopping)) {
        const apr_pollfd_t *fds;
        apr_int32_t n = 0;
        apr_status_t st =
            apr_pollset_poll(l->pollset, (apr_interval_time_t)LOOP_TICK_MS * 1000, &n, &fds);
        loop_refresh_gen(l);
        for (apr_int32_t i = 0; st == APR_SUCCESS && i < n; i++) {
            void *cd = fds[i].client_data;
            if (cd == &l->listen_pfd[0] || cd == &l->listen_pfd[1]) {
                loop_accept(l, cd == &l->listen_pfd[1]);
                continue;
            }
            conn_t *c = cd;
            if (fds[i].rtnevents & (APR_POLLIN | APR_POLLHUP | APR_POLLERR)) {
                conn_readable(c);
            }
            conn_settle(c);
        }
        int keys_changed = (int)apr_atomic_xchg32(&l->keys_changed, 0);
        uint64_t now = loop_now_ms();
        if (keys_changed || now >= l->next_tick_ms) {
            loop_tick(l, keys_changed);
            l->next_tick_ms = now + LOOP_TICK_MS;
        }
    }
    loop_stop_accepting(l);
    loop_drain(l);
    gen_release(l->gen);
    /* Returning (APR's thread wrapper then ends the thread, exit status APR_SUCCESS) rather than
     * apr_thread_exit(): pthread_exit() unwinds past this frame without unpoisoning its locals,
     * and ASan then reports the thread's own teardown as a stack-use-after-scope. */
    (void)t;
    return NULL;
}

static apr_status_t loop_create(srv_t *srv, const loop_listeners_t *ls, unsigned index,
                                apr_pool_t *parent, loop_t **out)
{
    apr_pool_t *p;
    apr_status_t st = apr_pool_create(&p, parent);
    if (st != APR_SUCCESS) {
        return st;
    }
    loop_t *l = apr_pcalloc(p, sizeof(*l));
    l->srv = srv;
    l->index = index;
    l->pool = p;
    l->ls = *ls;
    st = apr_pollset_create(&l->pollset, LOOP_MAX_CONNECTIONS + 2, p, APR_POLLSET_WAKEABLE);
    if (st == APR_SUCCESS) {
        st = decide_env_init(&l->env, srv, p);
    }
    int fds[2] = {ls->decision_fd, ls->admin_fd};
    for (int k = 0; st == APR_SUCCESS && k < 2; k++) {
        st = apr_os_sock_put(&l->listen_sock[k], &fds[k], p);
        l->listen_pfd[k].p = p;
        l->listen_pfd[k].desc_type = APR_POLL_SOCKET;
        l->listen_pfd[k].desc.s = l->listen_sock[k];
        l->listen_pfd[k].reqevents = APR_POLLIN;
        l->listen_pfd[k].client_data = &l->listen_pfd[k];
        if (st == APR_SUCCESS) {
            st = apr_pollset_add(l->pollset, &l->listen_pfd[k]);
        }
    }
    l->accepting = 1;
    *out = l;
    return st;
}

apr_status_t loops_start(srv_t *srv, const loop_listeners_t *ls, unsigned n, apr_pool_t *p,
                         loop_t ***out)
{
    loop_t **loops = apr_pcalloc(p, n * sizeof(*loops));
    for (unsigned i = 0; i < n; i++) {
        apr_status_t st = loop_create(srv, ls, i, p, &loops[i]);
        if (st == APR_SUCCESS) {
            st = apr_thread_create(&loops[i]->thread, NULL, loop_main, loops[i], p);
        }
        if (st != APR_SUCCESS) {
            return st;
        }
    }
    *out = loops;
    return APR_SUCCESS;
}

void loops_wake(loop_t **loops, unsigned n, int keys_changed)
{
    for (unsigned i = 0; i < n; i++) {
        if (loops[i] == NULL) {
            continue;
        }
        if (keys_changed) {
            apr_atomic_set32(&loops[i]->keys_changed, 1);
        }
        apr_pollset_wakeup(loops[i]->pollset);
    }
}

void loops_join(loop_t **loops, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        apr_status_t rv;
        if (loops[i] && loops[i]->thread) {
            apr_thread_join(&rv, loops[i]->thread);
        }
    }
}
