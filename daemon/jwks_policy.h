/* The decisions behind an issuer's key set, with no I/O, no threads and no clock of their own:
 * when the next fetch is due, how much of a Cache-Control max-age is honoured, whether an unknown
 * kid may trigger a fetch, when a set is too stale to serve, and whether a new set withdrew a key.
 * Every function takes now (seconds) from its caller; the store applies the answers and
 * tests/scenarios/jwks/ replays them with a fake clock. Nothing here locks or allocates. */
#ifndef JWTAUTHZ_DAEMON_JWKS_POLICY_H
#define JWTAUTHZ_DAEMON_JWKS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "jose/jwk.h"

/* "Never happened": a time older than any real one. */
#define JWKS_NEVER INT64_MIN
/* "Not scheduled": a time later than any real one. */
#define JWKS_NO_DEADLINE INT64_MAX

/* RFC 9111 §1.2.2: a delta-seconds too large to represent is read as 2^31. */
#define JWKS_DELTA_SECONDS_MAX 2147483648LL

/* An issuer's timing settings, from its conf_issuer_t (fetched issuers only). */
typedef struct jwks_policy_params {
    int64_t refresh_s;     /* jwks_refresh: scheduled interval; the ceiling for max-age */
    int64_t min_refresh_s; /* jwks_min_refresh: the floor for max-age and the spacing of fetches
                              an unknown kid triggers */
    int64_t max_stale_s;   /* jwks_max_stale: how long a set serves after its last good fetch */
} jwks_policy_params_t;

/* An issuer's fetch schedule. The store keeps one per issuer under the issuer's lock. */
typedef struct jwks_policy_state {
    int64_t confirmed_at;    /* last good fetch: a usable set installed, or a 304 for the one
                                held (or the persisted copy's time); JWKS_NEVER: no set */
    int64_t last_attempt_at; /* start of the last fetch attempt; JWKS_NEVER: none yet */
    int64_t next_refresh_at; /* when the scheduled fetch is due */
    unsigned failures;       /* consecutive failed attempts, for the retry back-off */
    int queued;              /* a fetch was asked for (new issuer, unknown kid, admin) */
    int in_flight;           /* a fetch has begun and not ended */
} jwks_policy_state_t;

/* Freshness information of one response (RFC 9111 §4.2). */
typedef struct jwks_freshness {
    int has_max_age;   /* a max-age was given (no-cache and no-store read as max-age=0) */
    int64_t max_age_s; /* the first max-age (RFC 9111 §4.2.1: first occurrence wins) */
    int64_t age_s;     /* the Age header (RFC 9111 §5.1); 0 when absent */
} jwks_freshness_t;

/* Returns 1 when value is an entity-tag as RFC 9110 §8.8.3 spells it ([W/] DQUOTE *etagc DQUOTE,
 * etagc = %x21 / %x23-7E / obs-text) and shorter than max_len: only such a value is sent back in
 * If-None-Match, so a server cannot smuggle CR/LF into our request headers. */
int jwks_policy_etag_is_valid(const char *value, size_t len, size_t max_len);

/* A state for an issuer that has no set and wants its first fetch now. */
void jwks_policy_state_init(jwks_policy_state_t *st, int64_t now);

/* Reads one Cache-Control field value (RFC 9111 §5.2) into f; call once per field line, in order.
 * Directive names are case-insensitive; a max-age that is not delta-seconds is ignored;
 * no-cache and no-store set max-age 0 (fetch again as soon as min_refresh allows). */
void jwks_policy_read_cache_control(jwks_freshness_t *f, const char *value, size_t len);

/* Reads an Age field value (RFC 9111 §5.1: delta-seconds); anything else is ignored. */
void jwks_policy_read_age(jwks_freshness_t *f, const char *value, size_t len);

/* Seconds until the next scheduled fetch after a good one: the response's remaining freshness
 * (max-age − Age) clamped to [min_refresh, refresh], or refresh when no max-age was given. */
int64_t jwks_policy_refresh_interval(const jwks_policy_params_t *p, const jwks_freshness_t *f);

/* Seconds to wait after the n-th consecutive failure (n ≥ 1): min_refresh doubled per failure,
 * at most refresh, so a dead IdP is polled at min_refresh, then less and less often. */
int64_t jwks_policy_retry_delay(const jwks_policy_params_t *p, unsigned failures);

/* Returns 1 when a fetch should begin at now: one was asked for or the schedule is due (or the
 * clock stepped back past a whole refresh interval), and none is in flight. */
int jwks_policy_fetch_due(const jwks_policy_params_t *p, const jwks_policy_state_t *st,
                          int64_t now);

/* Records that a fetch begins at now (clears queued, sets in_flight). */
void jwks_policy_fetch_begin(jwks_policy_state_t *st, int64_t now);

/* Records a good fetch ended at now (a usable set installed, or 304 for the set held). */
void jwks_policy_fetch_succeeded(const jwks_policy_params_t *p, jwks_policy_state_t *st,
                                 int64_t now, const jwks_freshness_t *f);

/* Records a failed fetch at now (transport, HTTP status, not a key set, no usable key). The set
 * held, if any, stays; confirmed_at does not move. */
void jwks_policy_fetch_failed(const jwks_policy_params_t *p, jwks_policy_state_t *st, int64_t now);

/* An unknown kid: returns 1 when a fetch may be queued now, i.e. none is queued or in flight and
 * none began within min_refresh (a stream of tokens with made-up kids must not turn the daemon
 * into a load generator against the IdP). A clock that stepped back does not block it. */
int jwks_policy_may_refetch(const jwks_policy_params_t *p, const jwks_policy_state_t *st,
                            int64_t now);

/* Returns 1 when the issuer has no set to serve at now: none was ever good, or the last good fetch
 * is more than max_stale ago. Exactly max_stale seconds old still serves. */
int jwks_policy_is_stale(const jwks_policy_params_t *p, const jwks_policy_state_t *st, int64_t now);

/* The first second at which jwks_policy_is_stale() turns 1, or JWKS_NO_DEADLINE without a set. */
int64_t jwks_policy_stale_at(const jwks_policy_params_t *p, const jwks_policy_state_t *st);

/* Returns 1 when a discovery issuer should fetch its OpenID configuration again before the key
 * set: it never did, the last fetch failed (the jwks_uri may have moved), or the document is older
 * than refresh. */
int jwks_policy_rediscover(const jwks_policy_params_t *p, const jwks_policy_state_t *st,
                           int64_t discovered_at, int64_t now);

/* Returns 1 when two keys are the same key: same kid (or both without one), same type, and the
 * same public key (EVP_PKEY_eq) or the same secret (compared in constant time). */
int jwks_policy_same_key(const jose_jwk_t *a, const jose_jwk_t *b);

/* Returns 1 when new_set lacks a key old_set had: decisions that key verified must not be served
 * from the cache any more, so the issuer's removal epoch moves. 0 when old_set is NULL. */
int jwks_policy_drops_key(const jose_jwks_t *old_set, const jose_jwks_t *new_set);

#endif
