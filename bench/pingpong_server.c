/* bench_pingpong_server: the anchor for cached decisions. A bare AF_UNIX request/reply server with
 * jwtauthzd's framing and shape (THREADS epoll threads accepting from one listening socket,
 * level-triggered, non-blocking): it reads whole frames and answers each with a canned reply of
 * REPLY_BYTES, so only the deciding is missing. The reply starts {"verdict":"ALLOW" and says
 * "cached":true, so bench_loadgen counts it as it counts the daemon's.
 * Usage: bench_pingpong_server SOCKET_PATH REPLY_BYTES THREADS (runs until SIGTERM/SIGINT). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The daemon's read chunk and frame cap (daemon/loop.c, proto/limits.h defaults). */
#define PP_READ_CHUNK_BYTES 16384u
#define PP_MAX_FRAME_BYTES 65536u
#define PP_EVENTS 256

typedef struct pp_conn {
    int fd;
    size_t in_len;
    unsigned char in[4 + PP_MAX_FRAME_BYTES];
} pp_conn_t;

static int listen_fd;
static unsigned char *reply; /* header + body */
static size_t reply_len;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void conn_close(int ep, pp_conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Reads what is there, answers every whole frame with one send. Returns -1 to close. */
static int conn_readable(pp_conn_t *c)
{
    size_t want = sizeof(c->in) - c->in_len;
    ssize_t n =
        read(c->fd, c->in + c->in_len, want < PP_READ_CHUNK_BYTES ? want : PP_READ_CHUNK_BYTES);
    if (n <= 0) {
        return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    }
    c->in_len += (size_t)n;
    size_t off = 0, replies = 0;
    while (c->in_len - off >= 4) {
        size_t body = (size_t)c->in[off] << 24 | (size_t)c->in[off + 1] << 16 |
                      (size_t)c->in[off + 2] << 8 | c->in[off + 3];
        if (body == 0 || body > PP_MAX_FRAME_BYTES) {
            return -1;
        }
        if (c->in_len - off < 4 + body) {
            break;
        }
        off += 4 + body;
        replies++;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    for (size_t r = 0; r < replies; r++) {
        /* Closed-loop clients send one frame at a time: one send per reply is what happens. */
        size_t done = 0;
        while (done < reply_len) {
            ssize_t w = send(c->fd, reply + done, reply_len - done, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR || errno == EAGAIN) {
                    continue;
                }
                return -1;
            }
            done += (size_t)w;
        }
    }
    return 0;
}

static void *pp_loop(void *arg)
{
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
        perror("bench_pingpong_server: epoll");
        exit(1);
    }
    struct epoll_event evs[PP_EVENTS];
    while (!stopping) {
        int n = epoll_wait(ep, evs, PP_EVENTS, 100);
        for (int i = 0; i < n; i++) {
            pp_conn_t *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                c = fd >= 0 ? calloc(1, sizeof(*c)) : NULL;
                if (c == NULL) {
                    if (fd >= 0) {
                        close(fd);
                    }
                    continue;
                }
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            if (conn_readable(c) != 0) {
                conn_close(ep, c);
            }
        }
    }
    close(ep);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_pingpong_server SOCKET_PATH REPLY_BYTES THREADS\n");
        return 2;
    }
    size_t body = strtoul(argv[2], NULL, 10);
    unsigned threads = (unsigned)strtoul(argv[3], NULL, 10);
    static const char head[] = "{\"verdict\":\"ALLOW\",\"status\":200,\"cached\":true,\"pad\":\"";
    if (body < sizeof(head) + 2 || body > PP_MAX_FRAME_BYTES || threads < 1 || threads > 64) {
        fprintf(stderr, "bench_pingpong_server: REPLY_BYTES %zu-%u, THREADS 1-64\n",
                sizeof(head) + 2, PP_MAX_FRAME_BYTES);
        return 2;
    }
    reply_len = 4 + body;
    reply = malloc(reply_len);
    if (reply == NULL) {
        return 1;
    }
    reply[0] = (unsigned char)(body >> 24);
    reply[1] = (unsigned char)(body >> 16);
    reply[2] = (unsigned char)(body >> 8);
    reply[3] = (unsigned char)body;
    memset(reply + 4, 'x', body);
    memcpy(reply + 4, head, sizeof(head) - 1);
    memcpy(reply + 4 + body - 2, "\"}", 2);

    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "bench_pingpong_server: socket path too long\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    unlink(argv[1]);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(listen_fd, 511) != 0) {
        perror("bench_pingpong_server: listen");
        return 1;
    }
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_handler = on_signal;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    pthread_t tid[64];
    for (unsigned t = 0; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, pp_loop, NULL) != 0) {
            return 1;
        }
    }
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
    }
    unlink(argv[1]);
    return 0;
}
