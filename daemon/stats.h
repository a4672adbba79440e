/* Counters the admin "stats" command reports: requests by verdict and by reason, cache outcomes,
 * and a latency histogram for percentiles. Lock-free (apr_atomic_*): every worker updates them on
 * every request. */
#ifndef JWTAUTHZ_DAEMON_STATS_H
#define JWTAUTHZ_DAEMON_STATS_H

#include <apr_atomic.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>

#include "jose/reason.h"
#include "proto/msg.h"

/* Latency buckets: 8 per power of two of microseconds, up to 2^26 us (~67 s). */
#define STATS_LATENCY_SUB_BUCKETS 8u
#define STATS_LATENCY_OCTAVES 27u
#define STATS_LATENCY_BUCKETS (STATS_LATENCY_SUB_BUCKETS * STATS_LATENCY_OCTAVES)
/* Reason slots: every jose_reason_e value, plus daemon-side ones below. */
#define STATS_REASON_SLOTS 64u

typedef struct stats {
    volatile apr_uint64_t verdicts[4]; /* by proto_verdict_e */
    volatile apr_uint64_t reasons[STATS_REASON_SLOTS];
    volatile apr_uint64_t cache_hits, cache_misses, cache_stale; /* stale: old gen/key epoch */
    volatile apr_uint64_t waited_for_keys, bad_frames, bad_requests, connections, admin_requests;
    volatile apr_uint64_t latency[STATS_LATENCY_BUCKETS];
    volatile apr_uint64_t latency_count;
    int64_t started_at;
} stats_t;

void stats_init(stats_t *s, int64_t now);
void stats_count_verdict(stats_t *s, proto_verdict_e v, jose_reason_e reason);
void stats_count_latency(stats_t *s, uint64_t usec);
/* Writes the counters as members of the currently open JSON object. */
void stats_write(stats_t *s, yajl_gen g, int64_t now);
/* The latency below which fraction q (0..1) of requests finished, in microseconds (upper bound
 * of the bucket). 0 when nothing was counted. */
uint64_t stats_latency_quantile(stats_t *s, double q);

#endif
