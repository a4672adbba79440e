/* One decision request, from frame body to reply frame: read the request, find the token, answer
 * from the decision cache or verify (jose/), build the policy from the rules, write the reply.
 * No I/O here: when the keys a token needs are being fetched, it says so and the event loop parks
 * the request until the fetch is done. Every failure path ends in UNAUTHORIZED or ERROR, never
 * ALLOW. */
#ifndef JWTAUTHZ_DAEMON_DECIDE_H
#define JWTAUTHZ_DAEMON_DECIDE_H

#include <apr_pools.h>
#include <openssl/evp.h>

#include "daemon/dcache.h"
#include "daemon/server.h"
#include "proto/buf.h"
#include "proto/str.h"

/* Per worker thread: reused on every request so the hot path allocates nothing outside the
 * request pool. */
typedef struct decide_env {
    srv_t *srv;
    EVP_MD_CTX *md_ctx; /* SHA-256 of tokens, for the cache key */
    EVP_MD *sha256;
    unsigned char value[DCACHE_MAX_VALUE_BYTES]; /* a cache entry, read or being built */
} decide_env_t;

typedef enum {
    DECIDE_REPLIED = 0,  /* a reply frame was appended to out */
    DECIDE_WAIT_KEYS,    /* nothing was appended: keys for the token's issuer are being fetched;
                            call again when the fetch is done, or with may_wait 0 at the deadline */
    DECIDE_REPLIED_CLOSE /* an ERROR reply was appended and the frame was not one JSON object:
                            close the connection once it is sent (CONTRACT "Wire protocol") */
} decide_result_e;

/* Makes env for one worker; objects freed by a cleanup on p. Returns APR_SUCCESS or APR_ENOMEM. */
apr_status_t decide_env_init(decide_env_t *env, srv_t *srv, apr_pool_t *p);

/* Decides the request in frame on generation g at time now (seconds), appending the reply frame
 * to out. req_pool holds everything the request allocates; the caller clears it afterwards.
 * may_wait 0 means: do not wait for keys, answer with what there is. */
decide_result_e decide_request(decide_env_t *env, gen_t *g, apr_pool_t *req_pool, proto_str_t frame,
                               int may_wait, int64_t now, proto_buf_t *out);

/* Appends an ERROR reply frame (status 500 or 503) with reason and message: for the event loop's
 * own failures (frame errors, overload). */
void decide_error_reply(gen_t *g, proto_buf_t *out, int status, const char *reason,
                        const char *message);

#endif
