/* Unix socket I/O for the blocking client (see conn.h): non-blocking descriptors waited on with
 * poll() against one deadline per call, so no step can outlive the caller's timeout, and send()
 * with MSG_NOSIGNAL, so a daemon that went away never raises SIGPIPE in the caller. */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Receive at least this much when the buffer has room: fewer syscalls for a small reply. */
#define CONN_RECV_CHUNK_BYTES 4096u
/* When the daemon's listen backlog is full, try connecting again this often. */
#define CONN_BACKLOG_RETRY_MS 5

int conn_init(conn_t *c, const char *path)
{
    size_t n = strlen(path);

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (n == 0 || n >= sizeof(c->addr.sun_path)) {
        return -1;
    }
    c->addr.sun_family = AF_UNIX;
    memcpy(c->addr.sun_path, path, n + 1);
    c->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

long long conn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_errmsg(char *msg, size_t size, const char *what, const char *path, int err)
{
    char buf[128];
    /* GNU strerror_r (we build with _GNU_SOURCE): returns the message, thread-safe. */
    const char *s = strerror_r(err, buf, sizeof(buf));
    snprintf(msg, size, "%s %s: %s", what, path, s);
}

/* Waits for events on the descriptor until the deadline. CONN_OK when something happened (the
 * caller's next syscall reports errors and hang-ups precisely). */
static conn_status_e conn_wait(const conn_t *c, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - conn_now_ms();
        struct pollfd pfd = {c->fd, events, 0};
        if (left <= 0) {
            return CONN_TIMEOUT;
        }
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0) {
            return CONN_OK;
        }
        if (n < 0 && errno != EINTR) {
            return CONN_UNAVAILABLE;
        }
    }
}

void conn_close(conn_t *c)
{
    /* After fork() the descriptor is shared with the parent: closing our copy is what we want,
     * never shutdown(), which would cut the parent's connection too. */
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

conn_status_e conn_open(conn_t *c, long long deadline_ms, char *msg, size_t msg_size)
{
    conn_status_e st = CONN_UNAVAILABLE;
    int soerr = 0;
    socklen_t soerr_len = sizeof(soerr);

    conn_close(c);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_errmsg(msg, msg_size, "socket for", c->addr.sun_path, errno);
        goto out;
    }
    c->pid = getpid();
    for (;;) {
        if (connect(c->fd, (const struct sockaddr *)&c->addr, c->addr_len) == 0) {
            st = CONN_OK;
            goto out;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN) {
            /* Linux: the listen backlog is full; the attempt did not start, so try again. */
            if (conn_now_ms() + CONN_BACKLOG_RETRY_MS > deadline_ms) {
                snprintf(msg, msg_size, "connect %s: backlog full until the timeout",
                         c->addr.sun_path);
                st = CONN_TIMEOUT;
                goto out;
            }
            poll(NULL, 0, CONN_BACKLOG_RETRY_MS);
            continue;
        }
        if (errno != EINPROGRESS) {
            conn_errmsg(msg, msg_size, "connect", c->addr.sun_path, errno);
            goto out;
        }
        break;
    }
    st = conn_wait(c, POLLOUT, deadline_ms);
    if (st != CONN_OK) {
        snprintf(msg, msg_size, "connect %s: %s", c->addr.sun_path,
                 st == CONN_TIMEOUT ? "timed out" : "poll failed");
        goto out;
    }
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) < 0 || soerr != 0) {
        conn_errmsg(msg, msg_size, "connect", c->addr.sun_path, soerr ? soerr : errno);
        st = CONN_UNAVAILABLE;
    }
out:
    if (st != CONN_OK) {
        conn_close(c);
    }
    return st;
}

int conn_is_stale(const conn_t *c)
{
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int n;

    do {
        n = poll(&pfd, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n != 0; /* readable, hung up, in error, or poll itself failed */
}

conn_status_e conn_send_all(conn_t *c, const void *p, size_t len, long long deadline_ms, char *msg,
                            size_t msg_size)
{
    const unsigned char *b = p;
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(c->fd, b + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_status_e st = conn_wait(c, POLLOUT, deadline_ms);
            if (st != CONN_OK) {
                snprintf(msg, msg_size, "send to %s: %s", c->addr.sun_path,
                         st == CONN_TIMEOUT ? "timed out" : "poll failed");
                return st;
            }
            continue;
        }
        int err = n < 0 ? errno : EPIPE;
        conn_errmsg(msg, msg_size, "send to", c->addr.sun_path, err);
        return (err == EPIPE || err == ECONNRESET || err == ENOTCONN) ? CONN_BROKEN
                                                                      : CONN_UNAVAILABLE;
    }
    return CONN_OK;
}

conn_status_e conn_recv_some(conn_t *c, proto_buf_t *in, size_t want, long long deadline_ms,
                             char *msg, size_t msg_size)
{
    size_t room = in->max - proto_buf_used(in);
    size_t chunk = want < CONN_RECV_CHUNK_BYTES ? CONN_RECV_CHUNK_BYTES : want;

    if (chunk > room) {
        chunk = room;
    }
    if (chunk == 0) {
        snprintf(msg, msg_size, "receive from %s: reply buffer full", c->addr.sun_path);
        return CONN_FULL;
    }
    unsigned char *dst = proto_buf_reserve(in, chunk);
    if (dst == NULL) {
        snprintf(msg, msg_size, "receive from %s: out of memory", c->addr.sun_path);
        return CONN_NO_MEMORY;
    }
    for (;;) {
        ssize_t n = recv(c->fd, dst, chunk, 0);
        if (n > 0) {
            proto_buf_commit(in, (size_t)n);
            return CONN_OK;
        }
        if (n == 0) {
            snprintf(msg, msg_size, "receive from %s: connection closed before a whole reply",
                     c->addr.sun_path);
            return CONN_BROKEN;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            conn_status_e st = conn_wait(c, POLLIN, deadline_ms);
            if (st != CONN_OK) {
                snprintf(msg, msg_size, "no reply from %s in time", c->addr.sun_path);
                return st;
            }
            continue;
        }
        int err = errno;
        conn_errmsg(msg, msg_size, "receive from", c->addr.sun_path, err);
        return err == ECONNRESET ? CONN_BROKEN : CONN_UNAVAILABLE;
    }
}
