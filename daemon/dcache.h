/* The decision cache: a token's decision kept under a 32-byte hash of the token (the daemon's
 * SHA-256; the cache never sees a token) until its expiry, so a repeated token skips signature
 * checks. Sharded with a lock per shard and an LRU per shard; entries live in slabs carved from
 * the cache's pools, never one malloc per entry. It reads no clock: every call takes `now`
 * (seconds), so tests drive time. Values are opaque bytes built by the daemon and hold no secret.
 */
#ifndef JWTAUTHZ_DAEMON_DCACHE_H
#define JWTAUTHZ_DAEMON_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <apr_errno.h>
#include <apr_pools.h>

#include "proto/str.h"

/* The key is a SHA-256 digest of the token. */
#define DCACHE_KEY_BYTES 32u
/* A principal (the "sub" or configured claim) kept beside the value for flush-by-principal:
 * subjects are short ids; past 256 bytes the decision is not cached at all. */
#define DCACHE_MAX_PRINCIPAL_BYTES 256u
/* A value: a 32-byte rule set, the principal, the context claims. Realistic ones are ~150
 * bytes; past this they are refused (uncacheable) rather than paying for a rare huge slot. */
#define DCACHE_MAX_VALUE_BYTES 640u
/* No config may ask for more: 16M decisions are ~4 GiB; a box that needs more is mis-sized. */
#define DCACHE_MAX_ENTRIES_CEILING (16u * 1024u * 1024u)
/* Shards, a power of two: enough that 2-64 worker threads rarely meet on one lock. */
#define DCACHE_MAX_SHARDS 64u
/* Fewer entries than this per shard and sharding only shrinks each LRU window: a small cache
 * uses fewer shards (one below 128 entries), which also makes its eviction order exact. */
#define DCACHE_MIN_SHARD_ENTRIES 64u

/* dcache_put: principal or value too long for any slot. The caller counts it "uncacheable". */
#define DCACHE_ETOOLARGE APR_ENOSPC

typedef struct dcache dcache_t;

typedef enum {
    DCACHE_MISS = 0,         /* no entry for the key */
    DCACHE_HIT = 1,          /* value copied into buf, *len set */
    DCACHE_EXPIRED = 2,      /* there was one, but now >= its expires_at: it was removed */
    DCACHE_BUF_TOO_SMALL = 3 /* a valid entry longer than bufsize: *len = its length, no copy */
} dcache_lookup_e;

/* Counters summed over the shards. Always entries == inserts - evictions - expired - flushed
 * (a put over an existing key counts "replaced", not "inserts"); hits + misses == gets (expired
 * and too-small lookups are misses). */
typedef struct dcache_stats {
    uint64_t entries, capacity, shards;
    uint64_t hits, misses;
    uint64_t inserts, replaced;
    uint64_t expired;     /* removed because a lookup found them expired */
    uint64_t evictions;   /* removed to make room: the shard's least recently used */
    uint64_t flushed;     /* removed by a flush */
    uint64_t uncacheable; /* puts refused with DCACHE_ETOOLARGE */
    uint64_t slab_bytes;  /* memory carved for entries so far */
} dcache_stats_t;

/* Makes a cache for at most max_entries decisions in a subpool of p (destroyed with p). Only the
 * hash tables (about 4-8 bytes per entry) are reserved now; slots come as the cache fills.
 * Returns APR_EINVAL when max_entries is 0 or above DCACHE_MAX_ENTRIES_CEILING, or the status
 * of the pool, mutex or random-seed call that failed. */
apr_status_t dcache_create(apr_pool_t *p, size_t max_entries, dcache_t **out);

/* Stores value (len bytes, copied) and principal for key until expires_at, replacing any entry
 * for the same key; a full shard drops its least recently used entry first. Returns
 * APR_SUCCESS; DCACHE_ETOOLARGE when len > DCACHE_MAX_VALUE_BYTES or principal.len >
 * DCACHE_MAX_PRINCIPAL_BYTES (nothing stored); APR_EINVAL when expires_at <= now (nothing worth
 * storing); APR_ENOMEM when no slab could be had. */
apr_status_t dcache_put(dcache_t *c, const unsigned char key[DCACHE_KEY_BYTES], int64_t expires_at,
                        proto_str_t principal, const void *value, size_t len, int64_t now);

/* Looks key up at time now. An entry is valid while now < expires_at. On DCACHE_HIT exactly its
 * len bytes are copied into buf (under the shard lock) and it becomes the most recently used. */
dcache_lookup_e dcache_get(dcache_t *c, const unsigned char key[DCACHE_KEY_BYTES], int64_t now,
                           void *buf, size_t bufsize, size_t *len);

/* Admin flushes. Each takes one shard lock at a time, never all at once, so requests on other
 * shards go on. Return how many entries were removed. */
size_t dcache_flush_all(dcache_t *c);
size_t dcache_flush_principal(dcache_t *c, proto_str_t principal);
size_t dcache_flush_key(dcache_t *c, const unsigned char key[DCACHE_KEY_BYTES]);

/* Sums the shards' counters into *out, one shard lock at a time (so the sum is not one instant's
 * snapshot while requests run; each shard's share of it is consistent). */
void dcache_stats(dcache_t *c, dcache_stats_t *out);

#endif
