/* The decision cache (see dcache.h): shards chosen by seeded hash bits, each with its own lock,
 * chained hash table sized once, LRU list and slab allocator with size classes. Entries refer to
 * each other by 32-bit slot references, not pointers, which keeps the header at 57 bytes. Nothing
 * here reads a clock, takes a lock across shards, or copies a value past the length it was given.
 */
#include "dcache.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include <apr_allocator.h>
#include <apr_general.h>

/* Slot sizes, header included. A realistic decision (57-byte header, ~40-byte principal, a
 * ~150-byte value holding the 32-byte rule set, the principal again and ~80 bytes of context) is
 * 250-300 bytes: the classes step by 64 from 128 to 448 where nearly all decisions land, so the
 * slack per entry stays under 64 bytes, then coarsely to the largest possible entry
 * (57 + 256 + 640 = 953). Every size is a multiple of 64, which the slot reference relies on. */
static const uint16_t dcache_class_bytes[] = {128, 192, 256, 320, 384, 448, 640, 960};
#define DCACHE_NCLASSES (sizeof(dcache_class_bytes) / sizeof(dcache_class_bytes[0]))
#define DCACHE_SLOT_UNIT_BYTES 64u

/* A slab is one APR allocator node of exactly 64 KiB (the node header takes the rest): big
 * enough that carving is rare, small enough that a shard's partly carved slabs (one per class in
 * use) waste little. Only touched pages of a slab count toward RSS. */
#define DCACHE_SLAB_BYTES (65536u - 128u)

/* A slot reference: slab index << 10 | offset in 64-byte units (a slab holds < 1024 units). */
#define DCACHE_REF_OFFSET_BITS 10u
#define DCACHE_REF_OFFSET_MASK ((1u << DCACHE_REF_OFFSET_BITS) - 1u)
#define DCACHE_REF_MAX_SLABS (1u << (32u - DCACHE_REF_OFFSET_BITS))
/* Never a valid reference: its offset part (1023 units) lies past the end of any slab. */
#define DCACHE_REF_NONE UINT32_MAX

typedef struct dcache_entry {
    unsigned char key[DCACHE_KEY_BYTES];
    int64_t expires_at;
    uint32_t lru_prev, lru_next; /* toward the most / least recently used */
    uint32_t chain_next;         /* next in the bucket chain, or in the class's free list */
    uint16_t value_len, principal_len;
    uint8_t size_class;
    unsigned char data[]; /* principal, then value */
} dcache_entry_t;

#define DCACHE_HEADER_BYTES offsetof(dcache_entry_t, data)
_Static_assert(offsetof(dcache_entry_t, data) == 57, "entry header grew: revisit the classes");
_Static_assert(DCACHE_SLAB_BYTES / DCACHE_SLOT_UNIT_BYTES <= DCACHE_REF_OFFSET_MASK,
               "slab offsets must fit the reference and never reach DCACHE_REF_NONE's");
_Static_assert(DCACHE_MAX_PRINCIPAL_BYTES + DCACHE_MAX_VALUE_BYTES + 57 <= 960,
               "the largest entry must fit the largest class");

typedef struct dcache_class_state {
    uint32_t free_head;  /* freed slots, linked through chain_next */
    uint32_t carve_slab; /* slab being carved, DCACHE_REF_NONE before the first */
    uint32_t carve_off;  /* next unused byte in it */
} dcache_class_state_t;

/* Laid out by cache line, because a line written by one core and read by another costs a
 * transfer: first what is read on every call but written only at create or flush, then the lock
 * with what a hit writes (so a hit dirties one line of the shard), then the rest. */
typedef struct dcache_shard {
    _Alignas(64) uint32_t *buckets;
    unsigned char **slabs;
    apr_pool_t *slab_pool; /* its own allocator: used only under this shard's lock */
    uint32_t bucket_mask, max_slabs;
    size_t capacity;

    _Alignas(64) pthread_mutex_t lock;
    uint32_t lru_head, lru_tail; /* most / least recently used */
    uint64_t hits, misses;

    _Alignas(64) size_t count;
    uint32_t nslabs;
    dcache_class_state_t cls[DCACHE_NCLASSES];
    uint64_t inserts, replaced, expired, evictions, flushed, uncacheable;
} dcache_shard_t;

struct dcache {
    apr_pool_t *pool;
    dcache_shard_t *shards;
    uint32_t nshards, shard_bits;
    uint64_t seed[2];
    size_t max_entries;
};

/* ---- hashing ----------------------------------------------------------------------------------
 */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Keys are SHA-256 digests, already uniform; the secret per-cache seed keeps whoever can choose
 * tokens from grinding digests that pile onto one shard or bucket. */
static uint64_t key_hash(const dcache_t *c, const unsigned char *key)
{
    uint64_t a, b;
    memcpy(&a, key, sizeof(a));
    memcpy(&b, key + sizeof(a), sizeof(b));
    return mix64(a ^ c->seed[0]) ^ mix64(b ^ c->seed[1]);
}

static dcache_shard_t *shard_of(const dcache_t *c, uint64_t h)
{
    /* Top bits pick the shard, low bits the bucket, so the two choices are independent. */
    return &c->shards[c->shard_bits ? (uint32_t)(h >> (64u - c->shard_bits)) : 0];
}

/* ---- slots ------------------------------------------------------------------------------------
 */

static dcache_entry_t *entry_at(const dcache_shard_t *sh, uint32_t ref)
{
    return (dcache_entry_t *)(sh->slabs[ref >> DCACHE_REF_OFFSET_BITS] +
                              (size_t)(ref & DCACHE_REF_OFFSET_MASK) * DCACHE_SLOT_UNIT_BYTES);
}

static unsigned class_for(size_t bytes)
{
    unsigned k = 0;
    while (dcache_class_bytes[k] < bytes) {
        k++; /* dcache_put bounds bytes by the largest class (static assert above) */
    }
    return k;
}

/* Returns a free slot of class k, or DCACHE_REF_NONE when no slab can be had. */
static uint32_t slot_alloc(dcache_shard_t *sh, unsigned k)
{
    dcache_class_state_t *cs = &sh->cls[k];
    uint32_t size = dcache_class_bytes[k], ref;

    if (cs->free_head != DCACHE_REF_NONE) {
        ref = cs->free_head;
        cs->free_head = entry_at(sh, ref)->chain_next;
        return ref;
    }
    if (cs->carve_slab == DCACHE_REF_NONE || cs->carve_off + size > DCACHE_SLAB_BYTES) {
        unsigned char *slab;
        if (sh->nslabs >= sh->max_slabs) {
            return DCACHE_REF_NONE;
        }
        slab = apr_palloc(sh->slab_pool, DCACHE_SLAB_BYTES);
        if (slab == NULL) {
            return DCACHE_REF_NONE;
        }
        sh->slabs[sh->nslabs] = slab;
        cs->carve_slab = sh->nslabs++;
        cs->carve_off = 0;
    }
    ref = cs->carve_slab << DCACHE_REF_OFFSET_BITS | cs->carve_off / DCACHE_SLOT_UNIT_BYTES;
    cs->carve_off += size;
    return ref;
}

static void slot_free(dcache_shard_t *sh, uint32_t ref, dcache_entry_t *e)
{
    dcache_class_state_t *cs = &sh->cls[e->size_class];
    e->chain_next = cs->free_head;
    cs->free_head = ref;
}

/* ---- LRU and chains (shard lock held) ------------------------------------------------------- */

static void lru_unlink(dcache_shard_t *sh, dcache_entry_t *e)
{
    if (e->lru_prev != DCACHE_REF_NONE) {
        entry_at(sh, e->lru_prev)->lru_next = e->lru_next;
    } else {
        sh->lru_head = e->lru_next;
    }
    if (e->lru_next != DCACHE_REF_NONE) {
        entry_at(sh, e->lru_next)->lru_prev = e->lru_prev;
    } else {
        sh->lru_tail = e->lru_prev;
    }
}

static void lru_push_head(dcache_shard_t *sh, uint32_t ref, dcache_entry_t *e)
{
    e->lru_prev = DCACHE_REF_NONE;
    e->lru_next = sh->lru_head;
    if (sh->lru_head != DCACHE_REF_NONE) {
        entry_at(sh, sh->lru_head)->lru_prev = ref;
    } else {
        sh->lru_tail = ref;
    }
    sh->lru_head = ref;
}

static uint32_t *bucket_of(const dcache_t *c, dcache_shard_t *sh, const unsigned char *key)
{
    return &sh->buckets[(uint32_t)key_hash(c, key) & sh->bucket_mask];
}

static uint32_t chain_find(const dcache_shard_t *sh, uint32_t head, const unsigned char *key)
{
    uint32_t ref = head;
    while (ref != DCACHE_REF_NONE) {
        const dcache_entry_t *e = entry_at(sh, ref);
        if (memcmp(e->key, key, DCACHE_KEY_BYTES) == 0) {
            return ref;
        }
        ref = e->chain_next;
    }
    return DCACHE_REF_NONE;
}

/* Takes an entry out of its chain and the LRU and frees its slot. The caller counts why. */
static void entry_remove(const dcache_t *c, dcache_shard_t *sh, uint32_t ref)
{
    dcache_entry_t *e = entry_at(sh, ref);
    uint32_t *link = bucket_of(c, sh, e->key);
    while (*link != ref && *link != DCACHE_REF_NONE) {
        link = &entry_at(sh, *link)->chain_next;
    }
    if (*link == ref) {
        *link = e->chain_next;
    }
    lru_unlink(sh, e);
    slot_free(sh, ref, e);
    sh->count--;
}

static void shard_reset(dcache_shard_t *sh)
{
    memset(sh->buckets, 0xff, ((size_t)sh->bucket_mask + 1) * sizeof(uint32_t));
    sh->lru_head = sh->lru_tail = DCACHE_REF_NONE;
    sh->count = 0;
    sh->nslabs = 0;
    for (size_t k = 0; k < DCACHE_NCLASSES; k++) {
        sh->cls[k].free_head = sh->cls[k].carve_slab = DCACHE_REF_NONE;
        sh->cls[k].carve_off = 0;
    }
}

/* ---- creation ---------------------------------------------------------------------------------
 */

static apr_status_t dcache_cleanup(void *data)
{
    dcache_t *c = data;
    for (uint32_t i = 0; i < c->nshards; i++) {
        pthread_mutex_destroy(&c->shards[i].lock);
    }
    return APR_SUCCESS;
}

/* A lock is held for a few hundred nanoseconds (a bucket, an entry, two LRU neighbours: cache
 * misses, no calls). When two threads meet on one, spinning that long beats a futex sleep and
 * wake, so glibc's adaptive mutex is used where it exists. */
static apr_status_t shard_lock_init(dcache_shard_t *sh)
{
    pthread_mutexattr_t attr;
    int rc;
    if (pthread_mutexattr_init(&attr) != 0) {
        return APR_ENOMEM;
    }
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    rc = pthread_mutex_init(&sh->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc == 0 ? APR_SUCCESS : APR_ENOMEM;
}

/* The most slabs a shard can need: each class carves no more slots than the shard holds
 * entries, since freed slots are reused before a new one is carved. */
static uint32_t shard_max_slabs(size_t capacity)
{
    size_t total = 0;
    for (size_t k = 0; k < DCACHE_NCLASSES; k++) {
        size_t per_slab = DCACHE_SLAB_BYTES / dcache_class_bytes[k];
        total += (capacity + per_slab - 1) / per_slab;
    }
    return (uint32_t)total;
}

static apr_status_t shard_init(dcache_t *c, dcache_shard_t *sh, size_t capacity)
{
    apr_allocator_t *allocator;
    apr_status_t rv;
    size_t nbuckets = 1;

    while (nbuckets < capacity) {
        nbuckets <<= 1;
    }
    sh->capacity = capacity;
    sh->bucket_mask = (uint32_t)(nbuckets - 1);
    sh->buckets = apr_palloc(c->pool, nbuckets * sizeof(uint32_t));
    sh->max_slabs = shard_max_slabs(capacity);
    if (sh->max_slabs >= DCACHE_REF_MAX_SLABS) {
        return APR_EINVAL; /* unreachable under DCACHE_MAX_ENTRIES_CEILING; guards the refs */
    }
    sh->slabs = apr_palloc(c->pool, (size_t)sh->max_slabs * sizeof(unsigned char *) + 1);
    if (sh->buckets == NULL || sh->slabs == NULL) {
        return APR_ENOMEM;
    }
    shard_reset(sh);
    /* Slabs come from a pool with its own allocator, used only under this shard's lock: APR
     * pools are not thread-safe, and one shared allocator would be a global lock in disguise. */
    if ((rv = apr_allocator_create(&allocator)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_pool_create_ex(&sh->slab_pool, c->pool, NULL, allocator)) != APR_SUCCESS) {
        apr_allocator_destroy(allocator);
        return rv;
    }
    apr_allocator_owner_set(allocator, sh->slab_pool);
    return shard_lock_init(sh);
}

apr_status_t dcache_create(apr_pool_t *p, size_t max_entries, dcache_t **out)
{
    apr_pool_t *pool = NULL;
    dcache_t *c;
    apr_status_t rv;
    unsigned char *raw;

    *out = NULL;
    if (max_entries == 0 || max_entries > DCACHE_MAX_ENTRIES_CEILING) {
        return APR_EINVAL;
    }
    if ((rv = apr_pool_create(&pool, p)) != APR_SUCCESS) {
        return rv;
    }
    c = apr_pcalloc(pool, sizeof(*c));
    c->pool = pool;
    c->max_entries = max_entries;
    c->nshards = 1;
    while (c->nshards < DCACHE_MAX_SHARDS &&
           max_entries / (2u * c->nshards) >= DCACHE_MIN_SHARD_ENTRIES) {
        c->nshards <<= 1;
        c->shard_bits++;
    }
    if ((rv = apr_generate_random_bytes((unsigned char *)c->seed, sizeof(c->seed))) !=
        APR_SUCCESS) {
        goto out;
    }
    /* Pools align to 8 bytes; the shards want their cache lines. */
    raw = apr_pcalloc(pool, c->nshards * sizeof(dcache_shard_t) + 64);
    c->shards = (dcache_shard_t *)(void *)(raw + (64u - (uintptr_t)raw % 64u) % 64u);
    for (uint32_t i = 0; i < c->nshards; i++) {
        /* The first max_entries % nshards shards take one more, so the total is exact. */
        size_t cap = max_entries / c->nshards + (i < max_entries % c->nshards ? 1 : 0);
        if ((rv = shard_init(c, &c->shards[i], cap)) != APR_SUCCESS) {
            c->nshards = i; /* the cleanup destroys only the locks made */
            break;
        }
    }
    apr_pool_cleanup_register(pool, c, dcache_cleanup, apr_pool_cleanup_null);
    if (rv == APR_SUCCESS) {
        *out = c;
    }
out:
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(pool);
    }
    return rv;
}

/* ---- operations -------------------------------------------------------------------------------
 */

static void entry_fill(dcache_entry_t *e, const unsigned char *key, int64_t expires_at,
                       proto_str_t principal, const void *value, size_t len)
{
    memcpy(e->key, key, DCACHE_KEY_BYTES);
    e->expires_at = expires_at;
    e->principal_len = (uint16_t)principal.len;
    e->value_len = (uint16_t)len;
    if (principal.len > 0) {
        memcpy(e->data, principal.ptr, principal.len);
    }
    if (len > 0) {
        memcpy(e->data + principal.len, value, len);
    }
}

apr_status_t dcache_put(dcache_t *c, const unsigned char key[DCACHE_KEY_BYTES], int64_t expires_at,
                        proto_str_t principal, const void *value, size_t len, int64_t now)
{
    uint64_t h = key_hash(c, key);
    dcache_shard_t *sh = shard_of(c, h);
    uint32_t *bucket = &sh->buckets[(uint32_t)h & sh->bucket_mask];
    apr_status_t rv = APR_SUCCESS;
    uint32_t ref;
    dcache_entry_t *e;
    unsigned k;
    int replacing = 0;

    if (len > DCACHE_MAX_VALUE_BYTES || principal.len > DCACHE_MAX_PRINCIPAL_BYTES) {
        pthread_mutex_lock(&sh->lock);
        sh->uncacheable++;
        pthread_mutex_unlock(&sh->lock);
        return DCACHE_ETOOLARGE;
    }
    if (expires_at <= now) {
        return APR_EINVAL;
    }
    k = class_for(DCACHE_HEADER_BYTES + principal.len + len);

    pthread_mutex_lock(&sh->lock);
    ref = chain_find(sh, *bucket, key);
    if (ref != DCACHE_REF_NONE) {
        e = entry_at(sh, ref);
        if (e->size_class == k) {
            /* Same slot size: rewrite in place, keep its chain link, move it to the front. */
            entry_fill(e, key, expires_at, principal, value, len);
            lru_unlink(sh, e);
            lru_push_head(sh, ref, e);
            sh->replaced++;
            goto out;
        }
        entry_remove(c, sh, ref);
        replacing = 1;
    } else if (sh->count >= sh->capacity && sh->lru_tail != DCACHE_REF_NONE) {
        entry_remove(c, sh, sh->lru_tail);
        sh->evictions++;
    }
    ref = slot_alloc(sh, k);
    if (ref == DCACHE_REF_NONE) {
        /* A replaced entry is gone by now: count it as flushed so the books still balance. */
        if (replacing) {
            sh->flushed++;
        }
        rv = APR_ENOMEM;
        goto out;
    }
    e = entry_at(sh, ref);
    e->size_class = (uint8_t)k;
    entry_fill(e, key, expires_at, principal, value, len);
    e->chain_next = *bucket;
    *bucket = ref;
    lru_push_head(sh, ref, e);
    sh->count++;
    if (replacing) {
        sh->replaced++;
    } else {
        sh->inserts++;
    }
out:
    pthread_mutex_unlock(&sh->lock);
    return rv;
}

dcache_lookup_e dcache_get(dcache_t *c, const unsigned char key[DCACHE_KEY_BYTES], int64_t now,
                           void *buf, size_t bufsize, size_t *len)
{
    uint64_t h = key_hash(c, key);
    dcache_shard_t *sh = shard_of(c, h);
    dcache_lookup_e found = DCACHE_MISS;
    uint32_t ref;
    dcache_entry_t *e;

    /* Start the bucket's cache miss before queueing for the lock, not while holding it. */
    __builtin_prefetch(&sh->buckets[(uint32_t)h & sh->bucket_mask]);
    pthread_mutex_lock(&sh->lock);
    ref = chain_find(sh, sh->buckets[(uint32_t)h & sh->bucket_mask], key);
    if (ref == DCACHE_REF_NONE) {
        sh->misses++;
        goto out;
    }
    e = entry_at(sh, ref);
    if (now >= e->expires_at) {
        entry_remove(c, sh, ref);
        sh->expired++;
        sh->misses++;
        found = DCACHE_EXPIRED;
        goto out;
    }
    *len = e->value_len;
    if (e->value_len > bufsize) {
        sh->misses++;
        found = DCACHE_BUF_TOO_SMALL;
        goto out;
    }
    if (e->value_len > 0) {
        memcpy(buf, e->data + e->principal_len, e->value_len);
    }
    lru_unlink(sh, e);
    lru_push_head(sh, ref, e);
    sh->hits++;
    found = DCACHE_HIT;
out:
    pthread_mutex_unlock(&sh->lock);
    return found;
}

size_t dcache_flush_all(dcache_t *c)
{
    size_t removed = 0;
    for (uint32_t i = 0; i < c->nshards; i++) {
        dcache_shard_t *sh = &c->shards[i];
        pthread_mutex_lock(&sh->lock);
        removed += sh->count;
        sh->flushed += sh->count;
        shard_reset(sh);
        /* Slabs go back to the shard's allocator (kept there for refilling): this also undoes
         * any spread of slots over size classes that churn has left. */
        apr_pool_clear(sh->slab_pool);
        pthread_mutex_unlock(&sh->lock);
    }
    return removed;
}

size_t dcache_flush_principal(dcache_t *c, proto_str_t principal)
{
    size_t removed = 0;
    if (principal.len > DCACHE_MAX_PRINCIPAL_BYTES) {
        return 0; /* never stored */
    }
    for (uint32_t i = 0; i < c->nshards; i++) {
        dcache_shard_t *sh = &c->shards[i];
        pthread_mutex_lock(&sh->lock);
        uint32_t ref = sh->lru_head;
        while (ref != DCACHE_REF_NONE) {
            dcache_entry_t *e = entry_at(sh, ref);
            uint32_t next = e->lru_next;
            if (proto_str_eq(proto_str_make((const char *)e->data, e->principal_len), principal)) {
                entry_remove(c, sh, ref);
                sh->flushed++;
                removed++;
            }
            ref = next;
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return removed;
}

size_t dcache_flush_key(dcache_t *c, const unsigned char key[DCACHE_KEY_BYTES])
{
    uint64_t h = key_hash(c, key);
    dcache_shard_t *sh = shard_of(c, h);
    size_t removed = 0;

    pthread_mutex_lock(&sh->lock);
    uint32_t ref = chain_find(sh, sh->buckets[(uint32_t)h & sh->bucket_mask], key);
    if (ref != DCACHE_REF_NONE) {
        entry_remove(c, sh, ref);
        sh->flushed++;
        removed = 1;
    }
    pthread_mutex_unlock(&sh->lock);
    return removed;
}

void dcache_stats(dcache_t *c, dcache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->shards = c->nshards;
    for (uint32_t i = 0; i < c->nshards; i++) {
        dcache_shard_t *sh = &c->shards[i];
        pthread_mutex_lock(&sh->lock);
        out->entries += sh->count;
        out->capacity += sh->capacity;
        out->hits += sh->hits;
        out->misses += sh->misses;
        out->inserts += sh->inserts;
        out->replaced += sh->replaced;
        out->expired += sh->expired;
        out->evictions += sh->evictions;
        out->flushed += sh->flushed;
        out->uncacheable += sh->uncacheable;
        out->slab_bytes += (uint64_t)sh->nslabs * DCACHE_SLAB_BYTES;
        pthread_mutex_unlock(&sh->lock);
    }
}
