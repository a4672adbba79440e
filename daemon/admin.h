/* The admin socket's commands (CONTRACT "Admin requests"): flush, stats, keys, refresh, reload.
 * Callers are checked with SO_PEERCRED at accept (root or the daemon's user); this file only
 * answers. Every reply is {"ok":true,...} or {"ok":false,"error":"..."}. */
#ifndef JWTAUTHZ_DAEMON_ADMIN_H
#define JWTAUTHZ_DAEMON_ADMIN_H

#include <apr_pools.h>

#include "daemon/server.h"
#include "proto/buf.h"
#include "proto/str.h"

/* Answers one admin frame on generation g, appending the reply frame to out. Returns 1 when the
 * frame was not one JSON object (the reply is {"ok":false,...} and the caller closes the
 * connection after sending it, CONTRACT "Wire protocol"), 0 otherwise. */
int admin_request(srv_t *srv, gen_t *g, apr_pool_t *rp, proto_str_t frame, int64_t now,
                  proto_buf_t *out);

#endif
