/* The two halves of systemd's daemon interface jwtauthzd speaks, without libsystemd: readiness and
 * status notifications (sd_notify(3): one datagram to $NOTIFY_SOCKET) and socket activation
 * (sd_listen_fds(3): $LISTEN_PID, $LISTEN_FDS, $LISTEN_FDNAMES, fds from 3 on). systemd documents
 * both as stable interfaces meant to be reimplemented. Outside systemd everything here is a no-op.
 * Nothing here binds or listens: listen.c decides what to do with the fds. */
#ifndef JWTAUTHZ_DAEMON_SDNOTIFY_H
#define JWTAUTHZ_DAEMON_SDNOTIFY_H

#include <stddef.h>

/* sd_listen_fds(3): the first passed fd. */
#define SDNOTIFY_LISTEN_FDS_START 3
/* jwtauthzd takes two sockets (decisions, admin); more means a unit that is not ours. */
#define SDNOTIFY_MAX_FDS 16u
/* systemd.socket(5): a FileDescriptorName= is at most 255 characters. */
#define SDNOTIFY_FDNAME_MAX_BYTES 256u
/* A state string is a few KEY=VALUE lines; STATUS= text is cut to fit. */
#define SDNOTIFY_STATE_MAX_BYTES 1024u

typedef struct {
    int fd;
    /* FileDescriptorName= of the socket unit, or "" when $LISTEN_FDNAMES was not set. */
    char name[SDNOTIFY_FDNAME_MAX_BYTES];
    /* Set by listen_open() when a listener took this fd; sdnotify_listen_fds_close_unclaimed()
     * closes the others. */
    int claimed;
} sd_fd_t;

typedef struct {
    unsigned n;     /* fds passed; 0 when not socket-activated */
    int have_names; /* $LISTEN_FDNAMES was set (systemd ≥ 227 always sets it) */
    sd_fd_t fds[SDNOTIFY_MAX_FDS];
} sd_fds_t;

/* Sends state (e.g. "READY=1", "STOPPING=1", "STATUS=...") as one datagram to $NOTIFY_SOCKET: a
 * path, or an abstract socket when it starts with '@'. The variable stays set, for later
 * notifications. Returns 1 when sent; 0 when $NOTIFY_SOCKET is unset or empty (not under systemd,
 * or not Type=notify); -1 with errno set when state is NULL or empty (EINVAL), the variable is not
 * a usable address (EINVAL, ENAMETOOLONG), or socket/sendto failed. */
int sdnotify_send(const char *state);

/* "RELOADING=1" with "MONOTONIC_USEC=<now>" (what systemd ≥ 253's Type=notify-reload requires and
 * older ones ignore). Send "READY=1" when the reload is done, whether it took or was refused.
 * Returns as sdnotify_send(). */
int sdnotify_reloading(void);

/* "STATUS=" and the formatted text (cut to fit, newlines turned into spaces): what
 * `systemctl status` shows under the unit. Returns as sdnotify_send(). */
int sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads the fds systemd passed: when $LISTEN_PID is this process, $LISTEN_FDS of them from fd 3
 * on, named by the colon-separated $LISTEN_FDNAMES. Sets FD_CLOEXEC on each so nothing the daemon
 * runs inherits a listener. Unsets the three variables in every case (as sd_listen_fds(1) does),
 * so a child is never told it owns our fds. Call once, before any thread starts (it changes the
 * environment). Fills *out (n = 0 when not socket-activated) and returns out->n; returns -1 with
 * errno EINVAL (and out->n = 0) when the variables are malformed, name a different number of fds
 * than they pass, or pass more than SDNOTIFY_MAX_FDS, or EBADF when a passed fd is not open. */
int sdnotify_listen_fds(sd_fds_t *out);

/* Closes the passed fds no listen_open() claimed (a socket unit that names something jwtauthzd does
 * not serve: left open, its clients would wait forever in the backlog) and logs each at warn.
 * Returns how many it closed. */
unsigned sdnotify_listen_fds_close_unclaimed(sd_fds_t *fds);

#endif
