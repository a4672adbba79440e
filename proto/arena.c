/* Capped bump arena for the client side (see arena.h). Chunks are wiped on clear: replies may
 * carry claims the caller considers private. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_BYTES 8192u
#define ARENA_ALIGN_BYTES 16u

struct proto_arena_chunk {
    proto_arena_chunk_t *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char mem[];
};

void proto_arena_init(proto_arena_t *a, size_t max_bytes)
{
    a->chunks = NULL;
    a->used = 0;
    a->max = max_bytes;
}

void *proto_arena_alloc(void *arena, size_t size)
{
    proto_arena_t *a = arena;
    if (size > SIZE_MAX - ARENA_ALIGN_BYTES) {
        return NULL;
    }
    size = (size + ARENA_ALIGN_BYTES - 1) & ~(size_t)(ARENA_ALIGN_BYTES - 1);
    if (size > a->max || a->used > a->max - size) {
        return NULL;
    }
    proto_arena_chunk_t *c = a->chunks;
    if (c == NULL || c->size - c->used < size) {
        size_t want = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
        c = malloc(sizeof(*c) + want);
        if (c == NULL) {
            return NULL;
        }
        c->size = want;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->mem + c->used;
    c->used += size;
    a->used += size;
    return p;
}

void proto_arena_clear(proto_arena_t *a)
{
    proto_arena_chunk_t *c = a->chunks;
    while (c) {
        proto_arena_chunk_t *next = c->next;
        explicit_bzero(c->mem, c->used);
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->used = 0;
}
