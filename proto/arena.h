/* Where parsed values live. The reader takes an allocator, so the same code fills an APR pool in
 * the daemon and a capped libc arena in the client library (which must not depend on APR).
 * Memory handed out lives until its owner (the pool, the arena) is cleared; nothing is freed one
 * by one. */
#ifndef JWTAUTHZ_PROTO_ARENA_H
#define JWTAUTHZ_PROTO_ARENA_H

#include <stddef.h>

typedef struct proto_alloc {
    /* Returns size bytes aligned for any type, or NULL when out of memory or over a cap. */
    void *(*alloc)(void *ctx, size_t size);
    void *ctx;
} proto_alloc_t;

static inline void *proto_alloc(const proto_alloc_t *a, size_t size)
{
    return a->alloc(a->ctx, size ? size : 1);
}

/* A libc bump arena with a hard cap on the bytes it will hand out. */
typedef struct proto_arena_chunk proto_arena_chunk_t;
typedef struct proto_arena {
    proto_arena_chunk_t *chunks;
    size_t used; /* bytes handed out, counted against max */
    size_t max;
} proto_arena_t;

void proto_arena_init(proto_arena_t *a, size_t max_bytes);
/* Returns NULL past the cap or when malloc fails. */
void *proto_arena_alloc(void *arena, size_t size);
/* Frees every chunk; the arena can be used again. */
void proto_arena_clear(proto_arena_t *a);

static inline proto_alloc_t proto_arena_allocator(proto_arena_t *a)
{
    proto_alloc_t al = {proto_arena_alloc, a};
    return al;
}

#endif
