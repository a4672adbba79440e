/* Event loops: `threads` symmetric loop threads, each with its own apr_pollset, its own
 * connections and its own decision scratch, so no lock is shared on the request path. Each loop
 * accepts from the shared listening sockets, reads frames, decides them inline (verification is
 * CPU work; the network is never waited on), writes replies in request order, and parks a
 * request whose keys are being fetched until the fetch is done or its wait runs out. */
#ifndef JWTAUTHZ_DAEMON_LOOP_H
#define JWTAUTHZ_DAEMON_LOOP_H

#include <apr_pools.h>

#include "daemon/server.h"

/* A slow writer must finish a frame it started within this: it holds a buffer, not a thread. */
#define LOOP_FRAME_READ_TIMEOUT_MS 10000
/* An idle keep-alive connection is closed after this (web servers reconnect on demand). */
#define LOOP_IDLE_TIMEOUT_MS 300000
/* A request waits at most this long for its issuer's keys; then it is answered with what there
 * is (ERROR 503 no_keys, or UNAUTHORIZED unknown_kid). Below common web server timeouts (3 s+). */
#define LOOP_KEY_WAIT_MS 2000
/* Connections per loop; past it new ones are refused until some close. */
#define LOOP_MAX_CONNECTIONS 16384u
/* Stop deciding a connection's pipelined requests while this many reply bytes wait to be read:
 * a client that never reads its replies must not make us buffer without bound. */
#define LOOP_OUT_HIGH_WATER_BYTES (64u * 1024u)
/* On SIGTERM, in-flight replies get this long to drain before connections are closed. */
#define LOOP_SHUTDOWN_GRACE_MS 5000

typedef struct loop loop_t;

typedef struct loop_listeners {
    int decision_fd;
    int admin_fd;
} loop_listeners_t;

/* Starts n loop threads on the listeners. Returns APR_SUCCESS or the failing status. */
apr_status_t loops_start(srv_t *srv, const loop_listeners_t *ls, unsigned n, apr_pool_t *p,
                         loop_t ***out);

/* Wakes every loop (keys changed, generation changed, stopping). Safe from any thread. */
void loops_wake(loop_t **loops, unsigned n, int keys_changed);

/* After srv->stopping was set: waits for every loop to finish its in-flight requests and exit. */
void loops_join(loop_t **loops, unsigned n);

#endif
