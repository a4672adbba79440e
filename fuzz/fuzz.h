/* What every harness shares: the libFuzzer entry points (declared here because nothing else
 * declares them, and -Wmissing-prototypes is on), a check that aborts so libFuzzer and the replay
 * driver both report a broken invariant as a crash, and an allocator for the readers that take a
 * proto_alloc_t. libc only: the frame and reply harnesses do not link APR. */
#ifndef JWTAUTHZ_FUZZ_FUZZ_H
#define JWTAUTHZ_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/arena.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant the code under test promises (an error never reads as success, a length stays
 * under its cap). Not assert(): it must hold in release builds too. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A case the code under test promises never to produce (an out-of-range enum). */
#define FUZZ_FAIL(what)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, what);                                  \
        abort();                                                                                   \
    } while (0)

/* Reads every byte of [p, p + n) so AddressSanitizer checks that a returned (pointer, length)
 * really is memory the caller may read. */
static inline void fuzz_touch(const void *p, size_t n)
{
    const volatile unsigned char *b = (const volatile unsigned char *)p;
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (unsigned char)(acc ^ b[i]);
    }
    (void)acc;
}

/* 1 when [p, p + n) is UTF-8 as RFC 3629 §3 defines it (no overlong forms, no surrogates, nothing
 * past U+10FFFF), which is what the encoders demand; yajl's reader lets encoded surrogates through,
 * so a decoded string need not be. Written here, not taken from proto/, to check proto against. */
static inline int fuzz_utf8_valid(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, min = 0x80, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, min = 0x800, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) {
            return 0;
        }
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

/* Each block malloc'd at its exact size: AddressSanitizer then sees every value's bounds, where
 * an APR pool or the client's arena hands out slices of larger chunks and an overrun inside one
 * goes unseen. cap (0: none) walks the readers' out-of-memory paths. Freed per input. */
typedef struct fuzz_alloc {
    void **blocks;
    size_t nblocks, room;
    size_t used; /* bytes handed out */
    size_t cap;
} fuzz_alloc_t;

static inline void *fuzz_alloc_block(void *ctx, size_t size)
{
    fuzz_alloc_t *a = ctx;
    if (a->cap && (size > a->cap || a->used > a->cap - size)) {
        return NULL;
    }
    if (a->nblocks == a->room) {
        size_t room = a->room ? a->room * 2 : 64;
        void **blocks = realloc(a->blocks, room * sizeof(*blocks));
        if (blocks == NULL) {
            return NULL;
        }
        a->blocks = blocks;
        a->room = room;
    }
    void *p = malloc(size);
    if (p != NULL) {
        a->blocks[a->nblocks++] = p;
        a->used += size;
    }
    return p;
}

static inline proto_alloc_t fuzz_alloc_make(fuzz_alloc_t *a, size_t cap)
{
    proto_alloc_t al = {fuzz_alloc_block, a};
    a->blocks = NULL;
    a->nblocks = a->room = a->used = 0;
    a->cap = cap;
    return al;
}

static inline void fuzz_alloc_free(fuzz_alloc_t *a)
{
    for (size_t i = 0; i < a->nblocks; i++) {
        free(a->blocks[i]);
    }
    free(a->blocks);
    a->blocks = NULL;
    a->nblocks = a->room = a->used = 0;
}

#endif
