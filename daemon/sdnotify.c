/* sd_notify(3) and sd_listen_fds(3) spoken directly: a datagram to $NOTIFY_SOCKET, and the
 * $LISTEN_* variables read into an sd_fds_t. Written from the man pages' protocol description, not
 * from libsystemd. Must not keep state between calls, and must not be called once threads run
 * when it touches the environment (sdnotify_listen_fds). */
#include "daemon/sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

int sdnotify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t sa_len;
    size_t path_len;
    int fd = -1, rc = -1, err = 0;

    if (state == NULL || *state == '\0') {
        err = EINVAL;
        goto out;
    }
    if (path == NULL || *path == '\0') {
        rc = 0;
        goto out;
    }
    /* An absolute path, or '@' for Linux's abstract namespace (the '@' stands for the leading
     * NUL). Anything else (vsock: in systemd ≥ 254) is not for this daemon. */
    if (path[0] != '/' && path[0] != '@') {
        err = EINVAL;
        goto out;
    }
    path_len = strlen(path);
    if (path_len >= sizeof(sa.sun_path)) {
        err = ENAMETOOLONG;
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, path_len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    /* An abstract name is exactly its bytes: a trailing NUL would be part of the name. */
    sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sa_len) < 0) {
        err = errno;
        goto out;
    }
    rc = 1;
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        errno = err;
    return rc;
}

int sdnotify_reloading(void)
{
    char state[64];
    struct timespec ts;
    unsigned long long usec;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    usec = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
    return sdnotify_send(state);
}

int sdnotify_status(const char *fmt, ...)
{
    char state[SDNOTIFY_STATE_MAX_BYTES];
    const size_t head = sizeof("STATUS=") - 1;
    va_list ap;

    memcpy(state, "STATUS=", head);
    va_start(ap, fmt);
    if (vsnprintf(state + head, sizeof(state) - head, fmt, ap) < 0)
        state[head] = '\0';
    va_end(ap);
    /* A newline would start another KEY=VALUE assignment: a hostile issuer name in a status text
     * must not be able to say READY=1 or MAINPID=. */
    for (char *c = state + head; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = ' ';
    }
    return sdnotify_send(state);
}

/* A whole decimal number in [0, max]; -1 for anything else (empty, sign, trailing bytes). */
static long sdnotify_parse_count(const char *s, unsigned long max)
{
    unsigned long v;
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    return (long)v;
}

/* Splits $LISTEN_FDNAMES into out->fds[].name. Returns 0, or -1 when the count differs from
 * out->n or a name is too long. */
static int sdnotify_split_names(sd_fds_t *out, const char *names)
{
    unsigned i = 0;
    const char *p = names;

    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);

        if (i >= out->n || len >= SDNOTIFY_FDNAME_MAX_BYTES)
            return -1;
        memcpy(out->fds[i].name, p, len);
        out->fds[i].name[len] = '\0';
        i++;
        if (colon == NULL)
            break;
        p = colon + 1;
    }
    return i == out->n ? 0 : -1;
}

int sdnotify_listen_fds(sd_fds_t *out)
{
    const char *pid_env = getenv("LISTEN_PID");
    const char *fds_env = getenv("LISTEN_FDS");
    const char *names_env = getenv("LISTEN_FDNAMES");
    long pid, count;
    int rc = -1, err = EINVAL;

    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < SDNOTIFY_MAX_FDS; i++)
        out->fds[i].fd = -1;

    /* No LISTEN_PID, or another process's: the variables were inherited, not meant for us. */
    pid = sdnotify_parse_count(pid_env, (unsigned long)INT32_MAX);
    if (pid_env == NULL || fds_env == NULL || (pid >= 0 && pid != (long)getpid())) {
        rc = 0;
        goto out;
    }
    count = sdnotify_parse_count(fds_env, SDNOTIFY_MAX_FDS);
    if (pid <= 0 || count < 0)
        goto out;
    out->n = (unsigned)count;
    if (names_env != NULL && out->n > 0) {
        if (sdnotify_split_names(out, names_env) != 0)
            goto out;
        out->have_names = 1;
    }
    for (unsigned i = 0; i < out->n; i++) {
        int fd = SDNOTIFY_LISTEN_FDS_START + (int)i;
        int flags = fcntl(fd, F_GETFD);

        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
            err = EBADF;
            goto out;
        }
        out->fds[i].fd = fd;
    }
    rc = (int)out->n;
out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        errno = err;
    }
    return rc;
}

unsigned sdnotify_listen_fds_close_unclaimed(sd_fds_t *fds)
{
    unsigned closed = 0;

    for (unsigned i = 0; i < fds->n; i++) {
        sd_fd_t *f = &fds->fds[i];

        if (f->claimed || f->fd < 0)
            continue;
        log_msg(LOGL_WARN,
                "systemd passed socket fd %d named \"%s\" that no listener of jwtauthzd takes "
                "(check FileDescriptorName= in the socket units): closing it",
                f->fd, f->name);
        close(f->fd);
        f->fd = -1;
        closed++;
    }
    return closed;
}
