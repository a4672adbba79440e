/* Lock-free request counters and latency histogram (see stats.h). Reading them while workers
 * write gives a slightly moving picture, never a torn counter. */
#include "daemon/stats.h"

#include <string.h>

#include "proto/json_write.h"

void stats_init(stats_t *s, int64_t now)
{
    memset(s, 0, sizeof(*s));
    s->started_at = now;
}

void stats_count_verdict(stats_t *s, proto_verdict_e v, jose_reason_e reason)
{
    if ((unsigned)v < 4) {
        apr_atomic_inc64(&s->verdicts[v]);
    }
    if ((unsigned)reason < STATS_REASON_SLOTS) {
        apr_atomic_inc64(&s->reasons[reason]);
    }
}

/* Bucket = octave (highest bit) x 8 sub-buckets from the next three bits: ~12 % resolution. */
static unsigned stats_bucket_of(uint64_t usec)
{
    if (usec < STATS_LATENCY_SUB_BUCKETS) {
        return (unsigned)usec;
    }
    unsigned hi = 63u - (unsigned)__builtin_clzll(usec);
    unsigned sub = (unsigned)((usec >> (hi - 3u)) & (STATS_LATENCY_SUB_BUCKETS - 1u));
    unsigned b = (hi - 2u) * STATS_LATENCY_SUB_BUCKETS + sub;
    return b < STATS_LATENCY_BUCKETS ? b : STATS_LATENCY_BUCKETS - 1u;
}

static uint64_t stats_bucket_upper(unsigned b)
{
    if (b < STATS_LATENCY_SUB_BUCKETS) {
        return b + 1u;
    }
    unsigned hi = b / STATS_LATENCY_SUB_BUCKETS + 2u;
    uint64_t sub = b % STATS_LATENCY_SUB_BUCKETS;
    return ((8u + sub + 1u) << (hi - 3u));
}

void stats_count_latency(stats_t *s, uint64_t usec)
{
    apr_atomic_inc64(&s->latency[stats_bucket_of(usec)]);
    apr_atomic_inc64(&s->latency_count);
}

uint64_t stats_latency_quantile(stats_t *s, double q)
{
    uint64_t total = 0;
    uint64_t counts[STATS_LATENCY_BUCKETS];
    for (unsigned b = 0; b < STATS_LATENCY_BUCKETS; b++) {
        counts[b] = apr_atomic_read64(&s->latency[b]);
        total += counts[b];
    }
    if (total == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)((double)total * q);
    if (want >= total) {
        want = total - 1;
    }
    uint64_t seen = 0;
    for (unsigned b = 0; b < STATS_LATENCY_BUCKETS; b++) {
        seen += counts[b];
        if (seen > want) {
            return stats_bucket_upper(b);
        }
    }
    return stats_bucket_upper(STATS_LATENCY_BUCKETS - 1u);
}

static void stats_int(yajl_gen g, const char *name, uint64_t v)
{
    proto_json_write_cstr(g, name);
    yajl_gen_integer(g, (long long)v);
}

void stats_write(stats_t *s, yajl_gen g, int64_t now)
{
    stats_int(g, "uptime", (uint64_t)(now - s->started_at));
    proto_json_write_cstr(g, "requests");
    yajl_gen_map_open(g);
    for (unsigned v = 0; v < 4; v++) {
        stats_int(g, proto_verdict_name((proto_verdict_e)v), apr_atomic_read64(&s->verdicts[v]));
    }
    yajl_gen_map_close(g);
    proto_json_write_cstr(g, "reasons");
    yajl_gen_map_open(g);
    for (unsigned r = 1; r < STATS_REASON_SLOTS; r++) {
        uint64_t n = apr_atomic_read64(&s->reasons[r]);
        if (n) {
            stats_int(g, jose_reason_code((jose_reason_e)r), n);
        }
    }
    yajl_gen_map_close(g);
    uint64_t hits = apr_atomic_read64(&s->cache_hits), misses = apr_atomic_read64(&s->cache_misses);
    stats_int(g, "cache_hits", hits);
    stats_int(g, "cache_misses", misses);
    stats_int(g, "cache_stale", apr_atomic_read64(&s->cache_stale));
    proto_json_write_cstr(g, "cache_hit_rate");
    yajl_gen_double(g, hits + misses ? (double)hits / (double)(hits + misses) : 0.0);
    stats_int(g, "waited_for_keys", apr_atomic_read64(&s->waited_for_keys));
    stats_int(g, "bad_frames", apr_atomic_read64(&s->bad_frames));
    stats_int(g, "bad_requests", apr_atomic_read64(&s->bad_requests));
    stats_int(g, "connections", apr_atomic_read64(&s->connections));
    stats_int(g, "admin_requests", apr_atomic_read64(&s->admin_requests));
    proto_json_write_cstr(g, "latency_us");
    yajl_gen_map_open(g);
    stats_int(g, "count", apr_atomic_read64(&s->latency_count));
    stats_int(g, "p50", stats_latency_quantile(s, 0.50));
    stats_int(g, "p90", stats_latency_quantile(s, 0.90));
    stats_int(g, "p99", stats_latency_quantile(s, 0.99));
    stats_int(g, "p999", stats_latency_quantile(s, 0.999));
    yajl_gen_map_close(g);
}
