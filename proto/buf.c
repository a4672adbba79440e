/* Bounded byte buffer: see buf.h. The bound is checked before every allocation; consumed bytes
 * are compacted away lazily so a stream of frames does not grow the allocation. */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Smallest allocation, so a stream of tiny appends does not realloc each time. */
#define PROTO_BUF_MIN_ALLOC_BYTES 256u

static void buf_wipe(void *p, size_t n)
{
    if (p && n) {
        explicit_bzero(p, n);
    }
}

void proto_buf_init(proto_buf_t *b, size_t max, int sensitive)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
    b->sensitive = sensitive;
}

/* Moves the unconsumed bytes to the front so their room can be reused. */
static void buf_compact(proto_buf_t *b)
{
    if (b->off == 0) {
        return;
    }
    size_t used = b->len - b->off;
    memmove(b->data, b->data + b->off, used);
    if (b->sensitive) {
        buf_wipe(b->data + used, b->len - used);
    }
    b->off = 0;
    b->len = used;
}

unsigned char *proto_buf_reserve(proto_buf_t *b, size_t n)
{
    size_t used = b->len - b->off;
    if (n > b->max || used > b->max - n) {
        return NULL;
    }
    if (b->cap - b->len >= n) {
        return b->data + b->len;
    }
    buf_compact(b);
    if (b->cap - b->len >= n) {
        return b->data + b->len;
    }
    size_t want = b->cap ? b->cap : PROTO_BUF_MIN_ALLOC_BYTES;
    while (want < b->len + n) {
        want = want > SIZE_MAX / 2 ? SIZE_MAX : want * 2;
    }
    if (want > b->max) {
        want = b->max;
    }
    unsigned char *p;
    if (b->sensitive) {
        /* realloc could leave the old copy behind unwiped: move it by hand. */
        p = malloc(want);
        if (p == NULL) {
            return NULL;
        }
        if (b->data) {
            memcpy(p, b->data, b->len);
            buf_wipe(b->data, b->cap);
            free(b->data);
        }
    } else {
        p = realloc(b->data, want);
        if (p == NULL) {
            return NULL;
        }
    }
    b->data = p;
    b->cap = want;
    return b->data + b->len;
}

void proto_buf_commit(proto_buf_t *b, size_t n)
{
    if (n > b->cap - b->len) {
        n = b->cap - b->len;
    }
    b->len += n;
}

proto_buf_status_e proto_buf_append(proto_buf_t *b, const void *src, size_t n)
{
    size_t used = b->len - b->off;
    if (n > b->max || used > b->max - n) {
        return PROTO_BUF_TOO_LARGE;
    }
    if (n == 0) {
        return PROTO_BUF_OK;
    }
    unsigned char *dst = proto_buf_reserve(b, n);
    if (dst == NULL) {
        return PROTO_BUF_NO_MEMORY;
    }
    memcpy(dst, src, n);
    b->len += n;
    return PROTO_BUF_OK;
}

void proto_buf_consume(proto_buf_t *b, size_t n)
{
    size_t used = b->len - b->off;
    if (n >= used) {
        proto_buf_reset(b);
        return;
    }
    b->off += n;
}

void proto_buf_reset(proto_buf_t *b)
{
    if (b->sensitive) {
        buf_wipe(b->data, b->len);
    }
    b->off = 0;
    b->len = 0;
}

void proto_buf_free(proto_buf_t *b)
{
    if (b->sensitive) {
        buf_wipe(b->data, b->cap);
    }
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
