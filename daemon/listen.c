/* Listening sockets for jwtauthzd: adopt what systemd passed, or make the socket file with safe
 * permissions from the first instant, refusing to displace a live daemon or a non-socket. Must not
 * accept or touch connections, and must not unlink a socket file it did not create. */
#include "daemon/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <apr_portable.h>
#include <apr_strings.h>

#include "daemon/log.h"

/* A socket file is created under this umask, so it is never more open than 0600 before chmod
 * gives it spec->mode. */
#define LISTEN_BIND_UMASK 0177
/* A directory made outside systemd must let the web server's user reach the socket inside. */
#define LISTEN_DIR_MODE 0755

struct listen_t {
    apr_pool_t *pool;
    int fd;
    apr_socket_t *sock;
    const char *path;
    int inherited;
    int created; /* this process bound the file at path */
    dev_t dev;   /* which file it bound, so unlink spares a successor's */
    ino_t ino;
};

/* What a connect() to an existing socket file says about it. */
typedef enum { LISTEN_PEER_LIVE, LISTEN_PEER_STALE, LISTEN_PEER_GONE } listen_peer_e;

static void listen_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void listen_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static apr_status_t listen_cleanup(void *data)
{
    listen_t *l = data;
    struct stat st;

    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    if (l->created && lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        unlink(l->path);
    l->created = 0;
    return APR_SUCCESS;
}

static int listen_fill_addr(struct sockaddr_un *sa, const char *path)
{
    size_t len = strlen(path);

    if (len >= sizeof(sa->sun_path))
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, len + 1);
    return 0;
}

/* The filesystem path fd is bound to, into buf; "" for an unbound or abstract socket. */
static void listen_bound_path(int fd, char *buf, size_t buflen)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    size_t n;

    buf[0] = '\0';
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sun_family != AF_UNIX ||
        len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0')
        return;
    n = strnlen(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
    if (n >= buflen)
        return;
    memcpy(buf, sa.sun_path, n);
    buf[n] = '\0';
}

/* Index in sd of the fd for spec: by name first (the contract: "matched by name"), then by bound
 * path, for a systemd older than FileDescriptorName= or a unit that left it out. -1 when none. */
static int listen_find_inherited(const sd_fds_t *sd, const listen_spec_t *spec)
{
    char bound[sizeof(((struct sockaddr_un *)0)->sun_path)];

    if (sd == NULL)
        return -1;
    for (unsigned i = 0; i < sd->n; i++) {
        if (!sd->fds[i].claimed && sd->have_names && strcmp(sd->fds[i].name, spec->fdname) == 0)
            return (int)i;
    }
    for (unsigned i = 0; i < sd->n; i++) {
        if (sd->fds[i].claimed)
            continue;
        listen_bound_path(sd->fds[i].fd, bound, sizeof(bound));
        if (strcmp(bound, spec->path) == 0)
            return (int)i;
    }
    return -1;
}

static int listen_sockopt_int(int fd, int opt)
{
    int v = -1;
    socklen_t len = sizeof(v);

    if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0)
        return -1;
    return v;
}

/* Wraps l->fd for APR; timeout 0 makes APR set O_NONBLOCK and know it did. */
static apr_status_t listen_wrap(listen_t *l)
{
    apr_os_sock_t os = l->fd;
    apr_status_t rv;

    l->sock = NULL;
    rv = apr_os_sock_put(&l->sock, &os, l->pool);
    if (rv == APR_SUCCESS)
        rv = apr_socket_timeout_set(l->sock, 0);
    return rv;
}

/* Uses systemd's fd as it is: the socket unit owns its path, mode and group. */
static apr_status_t listen_adopt(listen_t *l, const listen_spec_t *spec, const sd_fd_t *sdfd,
                                 char *err, size_t errlen)
{
    char bound[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct stat st;
    int flags;
    apr_status_t rv;

    if (listen_sockopt_int(sdfd->fd, SO_DOMAIN) != AF_UNIX ||
        listen_sockopt_int(sdfd->fd, SO_TYPE) != SOCK_STREAM ||
        listen_sockopt_int(sdfd->fd, SO_ACCEPTCONN) != 1) {
        listen_fail(err, errlen,
                    "listen \"%s\": systemd passed fd %d (\"%s\") but it is not a listening "
                    "AF_UNIX stream socket: check ListenStream= in the socket unit",
                    spec->path, sdfd->fd, sdfd->name);
        return APR_FROM_OS_ERROR(ENOTSOCK);
    }
    flags = fcntl(sdfd->fd, F_GETFD);
    if (flags < 0 || fcntl(sdfd->fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen, "listen \"%s\": fd %d: %s", spec->path, sdfd->fd, strerror(errno));
        return rv;
    }

    listen_bound_path(sdfd->fd, bound, sizeof(bound));
    if (bound[0] != '\0' && strcmp(bound, spec->path) != 0) {
        log_msg(LOGL_WARN,
                "listen: systemd's socket \"%s\" is at \"%s\", the config says \"%s\": serving "
                "systemd's (align ListenStream= and the config)",
                sdfd->name, bound, spec->path);
        l->path = apr_pstrdup(l->pool, bound);
    }
    if (bound[0] != '\0' && stat(bound, &st) == 0) {
        if ((st.st_mode & 07777) != (spec->mode & 07777))
            log_msg(LOGL_WARN,
                    "listen: systemd's socket \"%s\" has mode %04o, the config asks %04o: the "
                    "socket unit's SocketMode= decides",
                    bound, (unsigned)(st.st_mode & 07777), (unsigned)(spec->mode & 07777));
        if (spec->gid != (gid_t)-1 && st.st_gid != spec->gid)
            log_msg(LOGL_WARN,
                    "listen: systemd's socket \"%s\" has group %u, the config asks %u: the socket "
                    "unit's SocketGroup= decides (web servers outside that group are refused)",
                    bound, (unsigned)st.st_gid, (unsigned)spec->gid);
    }

    l->fd = sdfd->fd;
    l->inherited = 1;
    rv = listen_wrap(l);
    if (rv != APR_SUCCESS) {
        /* The fd stays systemd's (unclaimed): the caller's cleanup must not close it. */
        l->fd = -1;
        listen_fail(err, errlen, "listen \"%s\": cannot use systemd's fd %d: %d", spec->path,
                    sdfd->fd, rv);
        return rv;
    }
    log_msg(LOGL_INFO, "listening on \"%s\" (from systemd, fd %d, name \"%s\")", l->path, l->fd,
            sdfd->name);
    return APR_SUCCESS;
}

/* Whether something accepts connections on the socket file at path. Non-blocking, so a live
 * daemon with a full backlog answers EAGAIN at once instead of holding us up. */
static apr_status_t listen_probe(const char *path, listen_peer_e *peer)
{
    struct sockaddr_un sa;
    apr_status_t rv = APR_SUCCESS;
    int fd;

    if (listen_fill_addr(&sa, path) != 0)
        return APR_FROM_OS_ERROR(ENAMETOOLONG);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return APR_FROM_OS_ERROR(errno);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN ||
        errno == EINPROGRESS)
        *peer = LISTEN_PEER_LIVE;
    else if (errno == ECONNREFUSED)
        *peer = LISTEN_PEER_STALE;
    else if (errno == ENOENT)
        *peer = LISTEN_PEER_GONE;
    else
        rv = APR_FROM_OS_ERROR(errno);
    close(fd);
    return rv;
}

/* The directory the socket goes in; made (one level, LISTEN_DIR_MODE) when missing. */
static apr_status_t listen_make_parent(apr_pool_t *p, const char *path, const char **dir_out,
                                       char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    const char *dir;
    struct stat st;
    apr_status_t rv;

    if (slash == NULL)
        dir = ".";
    else if (slash == path)
        dir = "/";
    else
        dir = apr_pstrndup(p, path, (apr_size_t)(slash - path));
    *dir_out = dir;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return APR_SUCCESS;
        listen_fail(err, errlen, "listen \"%s\": \"%s\" is not a directory", path, dir);
        return APR_FROM_OS_ERROR(ENOTDIR);
    }
    /* chmod after mkdir: the umask (UMask=0077 under systemd) would leave 0700, which keeps the
     * web server's user out of the directory and so away from the socket. */
    if (errno != ENOENT || mkdir(dir, LISTEN_DIR_MODE) != 0 || chmod(dir, LISTEN_DIR_MODE) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen, "listen \"%s\": cannot make directory \"%s\": %s", path, dir,
                    strerror(errno));
        return rv;
    }
    log_msg(LOGL_INFO, "created directory \"%s\" (mode %04o) for the socket \"%s\"", dir,
            LISTEN_DIR_MODE, path);
    return APR_SUCCESS;
}

/* Clears the way for bind: nothing at path, or a dead daemon's socket (removed). Refuses a live
 * socket and anything that is not a socket. */
static apr_status_t listen_clear_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    listen_peer_e peer = LISTEN_PEER_GONE;
    apr_status_t rv;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return APR_SUCCESS;
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen, "listen \"%s\": %s", path, strerror(errno));
        return rv;
    }
    if (!S_ISSOCK(st.st_mode)) {
        listen_fail(err, errlen,
                    "listen \"%s\": the path exists and is not a socket: refusing to replace it",
                    path);
        return APR_FROM_OS_ERROR(EEXIST);
    }
    rv = listen_probe(path, &peer);
    if (rv != APR_SUCCESS) {
        listen_fail(err, errlen, "listen \"%s\": cannot tell whether the socket is in use: %s",
                    path, strerror(APR_TO_OS_ERROR(rv)));
        return rv;
    }
    if (peer == LISTEN_PEER_LIVE) {
        listen_fail(err, errlen,
                    "listen \"%s\": another process is listening on this socket (a running "
                    "jwtauthzd?): stop it first, or configure another path",
                    path);
        return APR_FROM_OS_ERROR(EADDRINUSE);
    }
    if (peer == LISTEN_PEER_STALE) {
        if (unlink(path) != 0 && errno != ENOENT) {
            rv = APR_FROM_OS_ERROR(errno);
            listen_fail(err, errlen, "listen \"%s\": cannot remove the stale socket: %s", path,
                        strerror(errno));
            return rv;
        }
        log_msg(LOGL_INFO,
                "removed stale socket \"%s\" (left by a daemon that did not exit cleanly)", path);
    }
    return APR_SUCCESS;
}

/* Makes the socket at spec->path. Two daemons starting at once serialise on a lock on the
 * directory, so the second sees the first's socket live instead of unlinking it. */
static apr_status_t listen_create(listen_t *l, const listen_spec_t *spec, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    const char *dir;
    mode_t old_umask;
    int dir_fd = -1, bound;
    apr_status_t rv;

    if (listen_fill_addr(&sa, spec->path) != 0) {
        listen_fail(err, errlen, "listen \"%s\": path too long (%zu bytes, at most %zu)",
                    spec->path, strlen(spec->path), sizeof(sa.sun_path) - 1);
        rv = APR_FROM_OS_ERROR(ENAMETOOLONG);
        goto out;
    }
    rv = listen_make_parent(l->pool, spec->path, &dir, err, errlen);
    if (rv != APR_SUCCESS)
        goto out;
    /* Best effort: a directory we may not open is one no other daemon of ours locks either. */
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0)
        flock(dir_fd, LOCK_EX);

    rv = listen_clear_path(spec->path, err, errlen);
    if (rv != APR_SUCCESS)
        goto out;

    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen, "listen \"%s\": socket: %s", spec->path, strerror(errno));
        goto out;
    }
    old_umask = umask(LISTEN_BIND_UMASK);
    bound = bind(l->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old_umask);
    if (bound != 0 || lstat(spec->path, &st) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen, "listen \"%s\": bind: %s", spec->path, strerror(errno));
        goto out;
    }
    l->created = 1;
    l->dev = st.st_dev;
    l->ino = st.st_ino;

    if (spec->gid != (gid_t)-1 && lchown(spec->path, (uid_t)-1, spec->gid) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen,
                    "listen \"%s\": cannot give the socket to group %u: %s (the daemon's user "
                    "must be a member: SupplementaryGroups= in jwtauthz.service)",
                    spec->path, (unsigned)spec->gid, strerror(errno));
        goto out;
    }
    if (chmod(spec->path, spec->mode & 07777) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen, "listen \"%s\": chmod %04o: %s", spec->path,
                    (unsigned)(spec->mode & 07777), strerror(errno));
        goto out;
    }
    if (listen(l->fd, spec->backlog > 0 ? spec->backlog : LISTEN_BACKLOG_DEFAULT) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        listen_fail(err, errlen, "listen \"%s\": listen: %s", spec->path, strerror(errno));
        goto out;
    }
    rv = listen_wrap(l);
    if (rv != APR_SUCCESS) {
        listen_fail(err, errlen, "listen \"%s\": cannot wrap the socket for APR: %d", spec->path,
                    rv);
        goto out;
    }
    if (spec->gid == (gid_t)-1)
        log_msg(LOGL_INFO, "listening on \"%s\" (mode %04o)", spec->path,
                (unsigned)(spec->mode & 07777));
    else
        log_msg(LOGL_INFO, "listening on \"%s\" (mode %04o, group %u)", spec->path,
                (unsigned)(spec->mode & 07777), (unsigned)spec->gid);
out:
    if (dir_fd >= 0)
        close(dir_fd); /* releases the lock */
    return rv;
}

apr_status_t listen_open(apr_pool_t *p, const listen_spec_t *spec, sd_fds_t *sd, listen_t **out,
                         char *err, size_t errlen)
{
    listen_t *l;
    int idx;
    apr_status_t rv;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (spec == NULL || spec->path == NULL || spec->path[0] == '\0' || spec->fdname == NULL) {
        listen_fail(err, errlen, "listen: no socket path or name given");
        return APR_FROM_OS_ERROR(EINVAL);
    }

    l = apr_pcalloc(p, sizeof(*l));
    l->pool = p;
    l->fd = -1;
    l->path = apr_pstrdup(p, spec->path);
    /* No child cleanup: a forked child must neither close our listener early nor unlink it. */
    apr_pool_cleanup_register(p, l, listen_cleanup, apr_pool_cleanup_null);

    idx = listen_find_inherited(sd, spec);
    if (idx >= 0) {
        rv = listen_adopt(l, spec, &sd->fds[idx], err, errlen);
        if (rv == APR_SUCCESS)
            sd->fds[idx].claimed = 1;
    } else {
        rv = listen_create(l, spec, err, errlen);
    }

    if (rv != APR_SUCCESS)
        apr_pool_cleanup_run(p, l, listen_cleanup);
    else
        *out = l;
    return rv;
}

void listen_close(listen_t *l)
{
    if (l != NULL)
        apr_pool_cleanup_run(l->pool, l, listen_cleanup);
}

int listen_fd(const listen_t *l)
{
    return l->fd;
}

apr_socket_t *listen_socket(const listen_t *l)
{
    return l->fd >= 0 ? l->sock : NULL;
}

const char *listen_path(const listen_t *l)
{
    return l->path;
}

int listen_is_inherited(const listen_t *l)
{
    return l->inherited;
}

int listen_peer_creds(int fd, uid_t *uid, gid_t *gid, pid_t *pid)
{
    struct ucred uc;
    socklen_t len = sizeof(uc);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
        return -1;
    if (uid != NULL)
        *uid = uc.uid;
    if (gid != NULL)
        *gid = uc.gid;
    if (pid != NULL)
        *pid = uc.pid;
    return 0;
}

int listen_peer_is_admin(int fd)
{
    uid_t uid;

    if (listen_peer_creds(fd, &uid, NULL, NULL) != 0)
        return 0;
    return uid == 0 || uid == geteuid();
}
