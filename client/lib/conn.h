/* The blocking client's socket: connect to a Unix socket path, send a whole buffer, receive into
 * a proto_buf_t, each bounded by an absolute deadline with poll(). Internal to libjwtauthz; not
 * installed. Knows nothing of frames or JSON. */
#ifndef JWTAUTHZ_CLIENT_CONN_H
#define JWTAUTHZ_CLIENT_CONN_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "proto/buf.h"

typedef enum {
    CONN_OK = 0,
    CONN_BROKEN,      /* the peer closed or reset an open connection (EOF, EPIPE, ECONNRESET) */
    CONN_UNAVAILABLE, /* cannot connect, or another socket error */
    CONN_TIMEOUT,     /* the deadline passed */
    CONN_FULL,        /* receiving: the buffer is at its maximum */
    CONN_NO_MEMORY
} conn_status_e;

typedef struct conn {
    int fd;    /* -1 when closed */
    pid_t pid; /* the process that opened fd: after fork() the child opens its own */
    struct sockaddr_un addr;
    socklen_t addr_len;
} conn_t;

/* Prepares c for path; does not connect. Returns 0, or -1 when path does not fit sun_path. */
int conn_init(conn_t *c, const char *path);

/* Milliseconds on a monotonic clock, for deadlines. */
long long conn_now_ms(void);

/* Connects (non-blocking, CLOEXEC). Returns CONN_OK, CONN_UNAVAILABLE or CONN_TIMEOUT with why
 * in msg. */
conn_status_e conn_open(conn_t *c, long long deadline_ms, char *msg, size_t msg_size);

/* 1 when an open connection has something to read or was closed by the peer before we asked
 * anything: it is not fit to carry a request (a late reply or an EOF would be misread). */
int conn_is_stale(const conn_t *c);

/* Sends all len bytes with MSG_NOSIGNAL. Returns CONN_OK, CONN_BROKEN, CONN_UNAVAILABLE or
 * CONN_TIMEOUT with why in msg. */
conn_status_e conn_send_all(conn_t *c, const void *p, size_t len, long long deadline_ms, char *msg,
                            size_t msg_size);

/* Receives at least one byte (up to want, or more when room allows) into in. Returns CONN_OK,
 * CONN_BROKEN (EOF or reset), CONN_UNAVAILABLE, CONN_TIMEOUT, CONN_FULL or CONN_NO_MEMORY. */
conn_status_e conn_recv_some(conn_t *c, proto_buf_t *in, size_t want, long long deadline_ms,
                             char *msg, size_t msg_size);

/* Closes the connection if open. Safe to call twice. */
void conn_close(conn_t *c);

#endif
