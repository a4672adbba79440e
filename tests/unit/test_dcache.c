/* The decision cache (daemon/dcache.h) on an injected clock: exact values back, expiry at exactly
 * expires_at, LRU eviction order, the three flushes, refusal of oversized entries, replacement,
 * bytes of an older value never leaking into a newer one, and threads hammering shared keys. */
#include "daemon/dcache.h"
#include "harness.h"

#include <apr_general.h>
#include <pthread.h>
#include <stdint.h>

static apr_pool_t *pool;

static void key_of(unsigned n, unsigned char key[DCACHE_KEY_BYTES])
{
    /* Keys are digests in the daemon; here any distinct 32 bytes do (the cache seeds its hash). */
    memset(key, 0x5a, DCACHE_KEY_BYTES);
    memcpy(key, &n, sizeof(n));
}

static proto_str_t P(const char *s)
{
    return proto_str_make(s, strlen(s));
}

static dcache_t *cache_new(size_t max_entries)
{
    dcache_t *c = NULL;
    CHECK(dcache_create(pool, max_entries, &c) == APR_SUCCESS);
    return c;
}

static apr_status_t put_str(dcache_t *c, unsigned n, int64_t exp, const char *principal,
                            const char *value, int64_t now)
{
    unsigned char key[DCACHE_KEY_BYTES];
    key_of(n, key);
    return dcache_put(c, key, exp, P(principal), value, strlen(value), now);
}

static dcache_lookup_e get_n(dcache_t *c, unsigned n, int64_t now, char *buf, size_t bufsize,
                             size_t *len)
{
    unsigned char key[DCACHE_KEY_BYTES];
    key_of(n, key);
    return dcache_get(c, key, now, buf, bufsize, len);
}

static int is_cached(dcache_t *c, unsigned n, int64_t now)
{
    char buf[DCACHE_MAX_VALUE_BYTES];
    size_t len;
    return get_n(c, n, now, buf, sizeof(buf), &len) == DCACHE_HIT;
}

static void check_books_balance(dcache_t *c)
{
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK_MSG(st.entries == st.inserts - st.evictions - st.expired - st.flushed,
              "entries %llu inserts %llu evictions %llu expired %llu flushed %llu",
              (unsigned long long)st.entries, (unsigned long long)st.inserts,
              (unsigned long long)st.evictions, (unsigned long long)st.expired,
              (unsigned long long)st.flushed);
    CHECK(st.entries <= st.capacity);
}

TEST(put_then_get_returns_exact_value)
{
    dcache_t *c = cache_new(16);
    char buf[64];
    size_t len = 0;
    CHECK(put_str(c, 1, 100, "user-1", "decision-bytes", 10) == APR_SUCCESS);
    memset(buf, 0xAA, sizeof(buf));
    CHECK(get_n(c, 1, 10, buf, sizeof(buf), &len) == DCACHE_HIT);
    CHECK(len == 14 && memcmp(buf, "decision-bytes", 14) == 0);
    CHECK((unsigned char)buf[14] == 0xAA); /* exactly len bytes copied */
    CHECK(get_n(c, 2, 10, buf, sizeof(buf), &len) == DCACHE_MISS);

    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.hits == 1 && st.misses == 1 && st.inserts == 1 && st.entries == 1);
}

TEST(entry_expires_at_exactly_expires_at)
{
    dcache_t *c = cache_new(16);
    CHECK(put_str(c, 1, 100, "u", "v", 0) == APR_SUCCESS);
    CHECK(is_cached(c, 1, 99));
    char buf[8];
    size_t len;
    CHECK(get_n(c, 1, 100, buf, sizeof(buf), &len) == DCACHE_EXPIRED);
    CHECK(get_n(c, 1, 99, buf, sizeof(buf), &len) == DCACHE_MISS); /* removed, not hidden */
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.expired == 1 && st.entries == 0);
    check_books_balance(c);
}

TEST(put_already_expired_is_not_stored)
{
    dcache_t *c = cache_new(16);
    CHECK(put_str(c, 1, 50, "u", "v", 50) == APR_EINVAL);
    CHECK(put_str(c, 1, 49, "u", "v", 50) == APR_EINVAL);
    CHECK(!is_cached(c, 1, 0));
}

TEST(lru_evicts_least_recently_used)
{
    dcache_t *c = cache_new(4); /* below 128 entries: one shard, exact LRU */
    for (unsigned i = 1; i <= 4; i++) {
        CHECK(put_str(c, i, 100, "u", "v", 0) == APR_SUCCESS);
    }
    CHECK(is_cached(c, 1, 1)); /* 1 is now the most recent; 2 the least */
    CHECK(put_str(c, 5, 100, "u", "v", 1) == APR_SUCCESS);
    CHECK(!is_cached(c, 2, 1));
    CHECK(put_str(c, 6, 100, "u", "v", 1) == APR_SUCCESS);
    CHECK(!is_cached(c, 3, 1));
    CHECK(is_cached(c, 1, 1) && is_cached(c, 4, 1) && is_cached(c, 5, 1) && is_cached(c, 6, 1));
    /* A replacing put refreshes recency too: 4 survives the next eviction, 1 does not. */
    CHECK(put_str(c, 4, 100, "u", "w", 1) == APR_SUCCESS);
    CHECK(put_str(c, 7, 100, "u", "v", 1) == APR_SUCCESS);
    CHECK(!is_cached(c, 1, 1) && is_cached(c, 4, 1));
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.evictions == 3 && st.entries == 4 && st.shards == 1);
    check_books_balance(c);
}

TEST(flush_all_empties_and_cache_refills)
{
    dcache_t *c = cache_new(1000);
    char big[400];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (unsigned i = 0; i < 500; i++) {
        CHECK(put_str(c, i, 100, "u", i % 2 ? big : "small", 0) == APR_SUCCESS);
    }
    CHECK(dcache_flush_all(c) == 500);
    CHECK(!is_cached(c, 7, 1));
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.entries == 0 && st.flushed == 500 && st.slab_bytes == 0);
    for (unsigned i = 0; i < 500; i++) {
        CHECK(put_str(c, i, 100, "u", i % 2 ? "small" : big, 0) == APR_SUCCESS);
    }
    char buf[DCACHE_MAX_VALUE_BYTES];
    size_t len;
    CHECK(get_n(c, 2, 1, buf, sizeof(buf), &len) == DCACHE_HIT && len == strlen(big));
    CHECK(get_n(c, 3, 1, buf, sizeof(buf), &len) == DCACHE_HIT && len == 5);
    check_books_balance(c);
}

TEST(flush_principal_removes_only_that_principal)
{
    dcache_t *c = cache_new(1000);
    CHECK(put_str(c, 1, 100, "alice", "a1", 0) == APR_SUCCESS);
    CHECK(put_str(c, 2, 100, "bob", "b1", 0) == APR_SUCCESS);
    CHECK(put_str(c, 3, 100, "alice", "a2", 0) == APR_SUCCESS);
    CHECK(put_str(c, 4, 100, "alice2", "x", 0) == APR_SUCCESS);
    CHECK(put_str(c, 5, 100, "alic", "y", 0) == APR_SUCCESS);
    CHECK(put_str(c, 6, 100, "", "anonymous", 0) == APR_SUCCESS);
    CHECK(dcache_flush_principal(c, P("alice")) == 2);
    CHECK(!is_cached(c, 1, 1) && !is_cached(c, 3, 1));
    CHECK(is_cached(c, 2, 1) && is_cached(c, 4, 1) && is_cached(c, 5, 1) && is_cached(c, 6, 1));
    CHECK(dcache_flush_principal(c, P("alice")) == 0);
    CHECK(dcache_flush_principal(c, P("")) == 1);
    check_books_balance(c);
}

TEST(flush_key_removes_one_token)
{
    dcache_t *c = cache_new(16);
    unsigned char key[DCACHE_KEY_BYTES];
    CHECK(put_str(c, 1, 100, "u", "v", 0) == APR_SUCCESS);
    CHECK(put_str(c, 2, 100, "u", "v", 0) == APR_SUCCESS);
    key_of(1, key);
    CHECK(dcache_flush_key(c, key) == 1);
    CHECK(dcache_flush_key(c, key) == 0);
    CHECK(!is_cached(c, 1, 1) && is_cached(c, 2, 1));
    check_books_balance(c);
}

TEST(value_too_large_is_refused_and_counted)
{
    dcache_t *c = cache_new(16);
    static char value[DCACHE_MAX_VALUE_BYTES + 1], principal[DCACHE_MAX_PRINCIPAL_BYTES + 1];
    unsigned char key[DCACHE_KEY_BYTES];
    memset(value, 'v', sizeof(value));
    memset(principal, 'p', sizeof(principal));
    key_of(1, key);
    CHECK(dcache_put(c, key, 100, P("u"), value, sizeof(value), 0) == DCACHE_ETOOLARGE);
    CHECK(dcache_put(c, key, 100, proto_str_make(principal, sizeof(principal)), "v", 1, 0) ==
          DCACHE_ETOOLARGE);
    CHECK(!is_cached(c, 1, 1));
    /* The largest entry both limits allow fits. */
    CHECK(dcache_put(c, key, 100, proto_str_make(principal, DCACHE_MAX_PRINCIPAL_BYTES), value,
                     DCACHE_MAX_VALUE_BYTES, 0) == APR_SUCCESS);
    char buf[DCACHE_MAX_VALUE_BYTES];
    size_t len;
    CHECK(dcache_get(c, key, 1, buf, sizeof(buf), &len) == DCACHE_HIT);
    CHECK(len == DCACHE_MAX_VALUE_BYTES && memcmp(buf, value, len) == 0);
    CHECK(dcache_flush_principal(c, proto_str_make(principal, DCACHE_MAX_PRINCIPAL_BYTES)) == 1);
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.uncacheable == 2 && st.inserts == 1);
}

TEST(replace_same_key_keeps_one_entry)
{
    dcache_t *c = cache_new(16);
    char big[300], buf[DCACHE_MAX_VALUE_BYTES];
    size_t len;
    memset(big, 'L', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(put_str(c, 1, 100, "u", "short", 0) == APR_SUCCESS);
    CHECK(put_str(c, 1, 200, "u", big, 0) == APR_SUCCESS); /* another size class */
    CHECK(get_n(c, 1, 150, buf, sizeof(buf), &len) == DCACHE_HIT && len == strlen(big));
    CHECK(put_str(c, 1, 300, "u2", "again", 0) == APR_SUCCESS);
    CHECK(get_n(c, 1, 250, buf, sizeof(buf), &len) == DCACHE_HIT && len == 5);
    CHECK(memcmp(buf, "again", 5) == 0);
    CHECK(dcache_flush_principal(c, P("u")) == 0 && dcache_flush_principal(c, P("u2")) == 1);
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.inserts == 1 && st.replaced == 2 && st.flushed == 1 && st.entries == 0);
    check_books_balance(c);
}

TEST(shorter_value_never_carries_older_bytes)
{
    dcache_t *c = cache_new(16);
    char a[200], b[190], buf[DCACHE_MAX_VALUE_BYTES];
    size_t len;
    memset(a, 'A', sizeof(a));
    memset(b, 'B', sizeof(b));
    unsigned char key[DCACHE_KEY_BYTES];
    key_of(9, key);
    /* Same slot class: the newer value is written over the older one in place. */
    CHECK(dcache_put(c, key, 100, P("u"), a, sizeof(a), 0) == APR_SUCCESS);
    CHECK(dcache_put(c, key, 100, P("u"), b, sizeof(b), 0) == APR_SUCCESS);
    memset(buf, 0, sizeof(buf));
    CHECK(dcache_get(c, key, 1, buf, sizeof(buf), &len) == DCACHE_HIT && len == sizeof(b));
    CHECK(memchr(buf, 'A', sizeof(buf)) == NULL);
    /* A freed slot reused by another key: only the new bytes come back. */
    CHECK(dcache_flush_key(c, key) == 1);
    key_of(10, key);
    CHECK(dcache_put(c, key, 100, P("u"), "tiny", 4, 0) == APR_SUCCESS);
    memset(buf, 0, sizeof(buf));
    CHECK(dcache_get(c, key, 1, buf, sizeof(buf), &len) == DCACHE_HIT && len == 4);
    CHECK(memchr(buf, 'B', sizeof(buf)) == NULL);
}

TEST(small_buffer_gets_length_and_no_copy)
{
    dcache_t *c = cache_new(16);
    char buf[4] = {'x', 'x', 'x', 'x'};
    size_t len = 0;
    CHECK(put_str(c, 1, 100, "u", "longer-than-four", 0) == APR_SUCCESS);
    CHECK(get_n(c, 1, 1, buf, sizeof(buf), &len) == DCACHE_BUF_TOO_SMALL && len == 16);
    CHECK(memcmp(buf, "xxxx", 4) == 0);
}

TEST(every_value_length_round_trips)
{
    dcache_t *c = cache_new(2000);
    static char value[DCACHE_MAX_VALUE_BYTES], buf[DCACHE_MAX_VALUE_BYTES];
    char principal[41];
    size_t len;
    memset(principal, 'p', 40);
    principal[40] = '\0';
    for (unsigned n = 0; n <= DCACHE_MAX_VALUE_BYTES; n++) {
        memset(value, (int)(n & 0xff), sizeof(value));
        unsigned char key[DCACHE_KEY_BYTES];
        key_of(n, key);
        CHECK(dcache_put(c, key, 100, P(principal), value, n, 0) == APR_SUCCESS);
    }
    for (unsigned n = 0; n <= DCACHE_MAX_VALUE_BYTES; n++) {
        unsigned char key[DCACHE_KEY_BYTES];
        key_of(n, key);
        memset(value, (int)(n & 0xff), sizeof(value));
        CHECK(dcache_get(c, key, 1, buf, sizeof(buf), &len) == DCACHE_HIT && len == n);
        CHECK(memcmp(buf, value, n) == 0);
    }
    CHECK(dcache_flush_principal(c, P(principal)) == DCACHE_MAX_VALUE_BYTES + 1);
}

TEST(create_refuses_zero_and_past_ceiling)
{
    dcache_t *c = (dcache_t *)&c;
    CHECK(dcache_create(pool, 0, &c) == APR_EINVAL && c == NULL);
    CHECK(dcache_create(pool, (size_t)DCACHE_MAX_ENTRIES_CEILING + 1, &c) == APR_EINVAL);
}

TEST(empty_cache_reserves_no_slabs)
{
    dcache_t *c = cache_new(1000000);
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.slab_bytes == 0 && st.capacity == 1000000 && st.shards == DCACHE_MAX_SHARDS);
}

TEST(sharded_cache_never_exceeds_max_entries)
{
    dcache_t *c = cache_new(10000);
    for (unsigned i = 0; i < 40000; i++) {
        CHECK(put_str(c, i, 100, "u", "v", 0) == APR_SUCCESS);
    }
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(st.capacity == 10000 && st.entries <= 10000);
    /* 40000 keys over the shards fill every one of them. */
    CHECK_MSG(st.entries == 10000, "entries %llu", (unsigned long long)st.entries);
    CHECK(st.evictions == 40000 - st.entries);
    check_books_balance(c);
}

/* ---- threads ----------------------------------------------------------------------------------
 */

#define HAMMER_THREADS 8
#define HAMMER_ITERATIONS 40000
#define HAMMER_KEYS 512u
#define HAMMER_MAX_ENTRIES 256u

typedef struct hammer {
    dcache_t *c;
    unsigned seed;
    uint64_t gets, hits, corrupt;
} hammer_t;

static unsigned next_rand(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A value tells which key it was stored under, so a torn or crossed copy shows. */
static size_t hammer_value(unsigned n, unsigned version, unsigned char *out)
{
    uint32_t len = 8 + (n * 7u + version) % 300u;
    memcpy(out, &n, sizeof(n));
    memcpy(out + 4, &len, sizeof(len));
    memset(out + 8, (int)((n ^ len) & 0xff), len - 8);
    return len;
}

static int hammer_value_ok(unsigned n, const unsigned char *v, size_t len)
{
    unsigned got;
    uint32_t stored_len;
    memcpy(&got, v, sizeof(got));
    memcpy(&stored_len, v + 4, 4);
    if (len < 8 || got != n || stored_len != len) {
        return 0;
    }
    for (size_t i = 8; i < len; i++) {
        if (v[i] != (unsigned char)((n ^ len) & 0xff)) {
            return 0;
        }
    }
    return 1;
}

static void *hammer_run(void *arg)
{
    hammer_t *h = arg;
    unsigned char key[DCACHE_KEY_BYTES], value[DCACHE_MAX_VALUE_BYTES];
    char principal[16];
    for (unsigned it = 0; it < HAMMER_ITERATIONS; it++) {
        unsigned r = next_rand(&h->seed), n = r % HAMMER_KEYS, op = (r >> 12) % 10000u;
        int64_t now = it / 200;
        size_t len;
        key_of(n, key);
        snprintf(principal, sizeof(principal), "p%u", n % 8u);
        if (op < 5000) {
            h->gets++;
            dcache_lookup_e got = dcache_get(h->c, key, now, value, sizeof(value), &len);
            if (got == DCACHE_HIT) {
                h->hits++;
                if (!hammer_value_ok(n, value, len)) {
                    h->corrupt++;
                }
            }
        } else if (op < 9500) {
            len = hammer_value(n, r >> 20, value);
            dcache_put(h->c, key, now + 1 + (r >> 8) % 5u, P(principal), value, len, now);
        } else if (op < 9980) {
            dcache_flush_key(h->c, key);
        } else if (op < 9995) {
            dcache_flush_principal(h->c, P(principal));
        } else {
            dcache_flush_all(h->c);
        }
    }
    return NULL;
}

TEST(threads_hammering_shared_keys_keep_invariants)
{
    dcache_t *c = cache_new(HAMMER_MAX_ENTRIES);
    pthread_t tid[HAMMER_THREADS];
    hammer_t h[HAMMER_THREADS];
    uint64_t gets = 0, hits = 0, corrupt = 0;

    for (int i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (hammer_t){c, 0x9e3779b9u * (unsigned)(i + 1), 0, 0, 0};
        CHECK(pthread_create(&tid[i], NULL, hammer_run, &h[i]) == 0);
    }
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(tid[i], NULL);
        gets += h[i].gets;
        hits += h[i].hits;
        corrupt += h[i].corrupt;
    }
    dcache_stats_t st;
    dcache_stats(c, &st);
    CHECK(corrupt == 0);
    CHECK(st.entries <= HAMMER_MAX_ENTRIES);
    CHECK(st.hits == hits && st.hits + st.misses == gets);
    CHECK_MSG(hits > 0 && st.evictions > 0 && st.expired > 0 && st.flushed > 0,
              "hits %llu evictions %llu expired %llu flushed %llu", (unsigned long long)hits,
              (unsigned long long)st.evictions, (unsigned long long)st.expired,
              (unsigned long long)st.flushed);
    check_books_balance(c);
    /* Whatever is left is still whole. */
    for (unsigned n = 0; n < HAMMER_KEYS; n++) {
        unsigned char key[DCACHE_KEY_BYTES], value[DCACHE_MAX_VALUE_BYTES];
        size_t len;
        key_of(n, key);
        if (dcache_get(c, key, 0, value, sizeof(value), &len) == DCACHE_HIT) {
            CHECK(hammer_value_ok(n, value, len));
        }
    }
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    RUN(put_then_get_returns_exact_value);
    RUN(entry_expires_at_exactly_expires_at);
    RUN(put_already_expired_is_not_stored);
    RUN(lru_evicts_least_recently_used);
    RUN(flush_all_empties_and_cache_refills);
    RUN(flush_principal_removes_only_that_principal);
    RUN(flush_key_removes_one_token);
    RUN(value_too_large_is_refused_and_counted);
    RUN(replace_same_key_keeps_one_entry);
    RUN(shorter_value_never_carries_older_bytes);
    RUN(small_buffer_gets_length_and_no_copy);
    RUN(every_value_length_round_trips);
    RUN(create_refuses_zero_and_past_ceiling);
    RUN(empty_cache_reserves_no_slabs);
    RUN(sharded_cache_never_exceeds_max_entries);
    RUN(threads_hammering_shared_keys_keep_invariants);

    apr_pool_destroy(pool);
    apr_terminate();
    return harness_report();
}
