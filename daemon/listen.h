/* jwtauthzd's listening Unix sockets (decisions, admin): taken from systemd when it passed one
 * (socket activation, matched by FileDescriptorName=), made by the daemon otherwise, with a stale
 * socket file replaced and a live one refused. Also who is on the other end of an accepted
 * connection (SO_PEERCRED). Nothing here accepts, reads or writes: the event loop does. */
#ifndef JWTAUTHZ_DAEMON_LISTEN_H
#define JWTAUTHZ_DAEMON_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

#include <apr_network_io.h>
#include <apr_pools.h>

#include "daemon/sdnotify.h"

/* FileDescriptorName= of systemd/jwtauthz.socket and systemd/jwtauthz-admin.socket. */
#define LISTEN_FDNAME_DECISIONS "jwtauthz"
#define LISTEN_FDNAME_ADMIN "admin"
/* httpd's ListenBacklog default: room for a burst of web server workers connecting at once; the
 * kernel caps it at net.core.somaxconn. */
#define LISTEN_BACKLOG_DEFAULT 511

typedef struct {
    const char *path;   /* where the socket lives, e.g. "/run/jwtauthz/jwtauthz.sock" */
    mode_t mode;        /* permission bits given to a socket the daemon makes, e.g. 0660 */
    gid_t gid;          /* group given to it; (gid_t)-1 keeps the daemon's own */
    const char *fdname; /* LISTEN_FDNAME_DECISIONS or LISTEN_FDNAME_ADMIN */
    int backlog;        /* listen(2) backlog; <= 0 means LISTEN_BACKLOG_DEFAULT */
} listen_spec_t;

typedef struct listen_t listen_t;

/* Opens the listener spec describes, allocated in p (whose destruction closes it as
 * listen_close() does).
 * - When sd holds an unclaimed fd named spec->fdname, or (names absent or none matching) one whose
 *   bound path is spec->path, that fd is used as systemd made it (its unit decides mode and group:
 *   a mismatch with spec is logged at warn), marked claimed in sd, and never unlinked.
 * - Otherwise the daemon makes the socket: the parent directory is created 0755 when missing (one
 *   level; under systemd RuntimeDirectory= has made it); a socket file left by a daemon that died
 *   is removed; then bind under umask 0177, chown to spec->gid, chmod to spec->mode, listen.
 * Either way the fd is non-blocking and close-on-exec. Changes the umask for an instant: call
 * before threads start. sd may be NULL.
 * Returns APR_SUCCESS and *out; otherwise *out is NULL, a one-line reason naming the path is in
 * err, and the status is: EADDRINUSE when another process listens on the path; EEXIST when
 * something other than a socket is there; ENAMETOOLONG when the path does not fit a sockaddr_un;
 * ENOTSOCK when systemd's fd is not a listening AF_UNIX stream socket; EINVAL for a spec without
 * path or fdname; EPERM/EACCES/ENOENT and others from mkdir, bind, chown, chmod or listen. */
apr_status_t listen_open(apr_pool_t *p, const listen_spec_t *spec, sd_fds_t *sd, listen_t **out,
                         char *err, size_t errlen);

/* Closes the listener and unlinks its socket file when the daemon made it and the file is still
 * that socket (a successor daemon's socket at the same path is left alone). Idempotent. */
void listen_close(listen_t *l);

/* The listening fd (-1 once closed). */
int listen_fd(const listen_t *l);
/* The same fd as an apr_socket_t for apr_pollset and apr_socket_accept (non-blocking). */
apr_socket_t *listen_socket(const listen_t *l);
/* The path served: spec->path, or the path systemd's socket is bound to. */
const char *listen_path(const listen_t *l);
/* 1 when systemd passed the socket, 0 when the daemon made it. */
int listen_is_inherited(const listen_t *l);

/* The peer of a connected Unix socket, from SO_PEERCRED (what it was when it connected). Any out
 * pointer may be NULL. Returns 0, or -1 with errno from getsockopt. */
int listen_peer_creds(int fd, uid_t *uid, gid_t *gid, pid_t *pid);

/* 1 when the peer may use admin commands: root, or the daemon's own user; 0 otherwise and when
 * the credentials cannot be read (fail closed). A second gate behind the admin socket's 0600. */
int listen_peer_is_admin(int fd);

#endif
