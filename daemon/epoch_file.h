/* The epoch file next to the decision socket (layout: proto/epoch.h): a shared one-page mapping
 * whose counter moves whenever a decision the daemon gave earlier may no longer be the one it
 * would give now, so the web server modules may reuse decisions in their own process until it
 * moves. This file only makes, bumps and removes it; the events that bump it are the callers'.
 * While the daemon lives it holds a write lock (fcntl) on the file: a reader that finds no lock
 * knows the daemon is gone, even after SIGKILL. */
#ifndef JWTAUTHZ_DAEMON_EPOCH_FILE_H
#define JWTAUTHZ_DAEMON_EPOCH_FILE_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>

typedef struct epoch_file epoch_file_t;

/* Makes (or takes over: a file left by a daemon that was killed) socket_path + ".epoch", with
 * the permission bits the socket gives (read for whoever may connect; write for the daemon's
 * user only) and the socket's group, sized to one page, locked and mapped; writes a new random
 * instance id and moves the epoch. Allocated in p; destroying p does what epoch_file_close()
 * does. Call after the socket is ours (listen_open) and before requests are served.
 * Returns APR_SUCCESS and *out; otherwise *out is NULL, err holds a one-line reason naming the
 * path, and the status is ENAMETOOLONG (path too long), ENOTSOCK (no socket at socket_path),
 * ENOENT/EACCES from stat of it, EEXIST (something other than a regular file of ours with one
 * name is there), EAGAIN (another process holds the file's lock: another daemon serves that
 * path), or the status of open, fchown, fchmod, ftruncate, mmap or the random source. */
apr_status_t epoch_file_open(apr_pool_t *p, const char *socket_path, epoch_file_t **out, char *err,
                             size_t errlen);

/* Moves the epoch by one (release order: whatever changed before the call is visible to a reader
 * that sees the new value). Lock-free, async-signal-safe; NULL is ignored. */
void epoch_file_bump(epoch_file_t *ef);

/* The current epoch (acquire order), 0 for NULL. */
uint64_t epoch_file_epoch(const epoch_file_t *ef);

/* The file's path ("" for NULL). */
const char *epoch_file_path(const epoch_file_t *ef);

/* Clean exit: moves the epoch, unlinks the file when it is still the one we made (a successor's
 * at the same path is left alone), unmaps, and closes (which drops the lock). Idempotent; NULL
 * is ignored. */
void epoch_file_close(epoch_file_t *ef);

#endif
