/* The fetcher thread: one thread and one curl multi handle carrying every issuer's fetch
 * (discovery document, then key set) as its own transfer, so a slow IdP never delays another's.
 * It wakes on queued work (curl_multi_wakeup), at the earliest refresh or expiry the store names,
 * and on stop. HTTPS only, TLS verified, every body capped while it arrives. Requests never wait
 * on it: they read the store. */
#ifndef JWTAUTHZ_DAEMON_JWKS_FETCH_H
#define JWTAUTHZ_DAEMON_JWKS_FETCH_H

#include <apr_pools.h>

#include "daemon/jwks_store.h"

/* Connecting (TCP and TLS handshake) longer than this is a dead IdP; fetch_timeout bounds the
 * rest. The smaller of the two applies. */
#define JWKS_FETCH_CONNECT_TIMEOUT_S 5L
/* Slower than this many bytes a second for JWKS_FETCH_LOW_SPEED_TIME_S is a stalled transfer:
 * a server trickling a byte at a time must not hold a fetch for the whole fetch_timeout. */
#define JWKS_FETCH_LOW_SPEED_BYTES_PER_S 64L
#define JWKS_FETCH_LOW_SPEED_TIME_S 5L
/* IdPs redirect a key URL once or twice (to a CDN); more is a loop or a misconfiguration. */
#define JWKS_FETCH_MAX_REDIRS 3L
/* With nothing scheduled the thread still looks again this often, so a clock step cannot make it
 * sleep past a refresh for long. */
#define JWKS_FETCH_IDLE_WAIT_MS 60000L
/* Within the second before a deadline (refresh, expiry past jwks_max_stale) the thread looks this
 * often: the store's clock counts whole seconds, so this bounds how late a deadline is acted on. */
#define JWKS_FETCH_DEADLINE_STEP_MS 50L

typedef struct jwks_fetcher jwks_fetcher_t;

/* Initialises libcurl (curl_global_init: call while no other thread uses curl, i.e. at start-up),
 * makes the multi handle and starts the thread, which runs until jwks_fetcher_stop. The fetcher
 * lives in p. Returns APR_SUCCESS; APR_ENOTIMPL when libcurl is older than 7.85 (no
 * CURLOPT_PROTOCOLS_STR) or lacks HTTPS; APR_ENOMEM; or the thread's creation status. */
apr_status_t jwks_fetcher_start(jwks_fetcher_t **out, jwks_store_t *store, apr_pool_t *p);

/* Makes the thread look at the store again now (new work queued). Any thread; never blocks. */
void jwks_fetcher_wake(jwks_fetcher_t *f);

/* Stops the thread: transfers in flight are abandoned (their issuers' fetches queued again), the
 * thread joined, curl cleaned up. Call once, after the workers stopped asking for refreshes. */
void jwks_fetcher_stop(jwks_fetcher_t *f);

#endif
