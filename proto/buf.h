/* The one bounded byte buffer (OpenSSH's sshbuf and curl's dynbuf are the models): its maximum is
 * fixed when it is made, every append is checked against it before memory is reserved, and a
 * buffer marked sensitive (it held a token or a key) is wiped when reset or freed.
 * Plain libc: the client library and the nginx module use it without APR. */
#ifndef JWTAUTHZ_PROTO_BUF_H
#define JWTAUTHZ_PROTO_BUF_H

#include <stddef.h>

typedef struct proto_buf {
    unsigned char *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* bytes held, from data[0]; unconsumed are data[off..len) */
    size_t cap; /* bytes allocated */
    size_t max; /* never hold more than this many unconsumed bytes */
    int sensitive;
} proto_buf_t;

typedef enum {
    PROTO_BUF_OK = 0,
    PROTO_BUF_TOO_LARGE, /* the append would pass the buffer's maximum: nothing was appended */
    PROTO_BUF_NO_MEMORY  /* allocation failed: nothing was appended */
} proto_buf_status_e;

/* Makes an empty buffer that will never hold more than max bytes. Allocates nothing yet. */
void proto_buf_init(proto_buf_t *b, size_t max, int sensitive);

/* Appends n bytes. Returns PROTO_BUF_TOO_LARGE (checked before any allocation) or
 * PROTO_BUF_NO_MEMORY and leaves the buffer unchanged on failure. */
proto_buf_status_e proto_buf_append(proto_buf_t *b, const void *src, size_t n);

/* Makes room for n more bytes and returns where to write them, or NULL (too large or no memory).
 * Call proto_buf_commit() with the number actually written. */
unsigned char *proto_buf_reserve(proto_buf_t *b, size_t n);
void proto_buf_commit(proto_buf_t *b, size_t n);

/* Unconsumed bytes. */
static inline const unsigned char *proto_buf_ptr(const proto_buf_t *b)
{
    return b->data ? b->data + b->off : (const unsigned char *)"";
}
static inline size_t proto_buf_used(const proto_buf_t *b)
{
    return b->len - b->off;
}

/* Drops n bytes from the front (n larger than what is held drops everything). */
void proto_buf_consume(proto_buf_t *b, size_t n);

/* Empties the buffer, wiping it if sensitive; keeps the allocation. */
void proto_buf_reset(proto_buf_t *b);

/* Wipes if sensitive, then frees. The buffer may be initialised again. */
void proto_buf_free(proto_buf_t *b);

#endif
