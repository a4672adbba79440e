/* Framing of the wire protocol: a 4-byte unsigned big-endian length N, then N bytes of JSON,
 * 0 < N <= a cap the caller gives (CONTRACT "Wire protocol"). Sans-I/O: the caller appends bytes
 * as they arrive to a proto_buf_t and takes whole frames out, any number per read (pipelining).
 * Nothing here reads a socket, allocates for a declared length, or looks inside the JSON. */
#ifndef JWTAUTHZ_PROTO_FRAME_H
#define JWTAUTHZ_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "limits.h"
#include "str.h"

typedef enum {
    PROTO_FRAME_NEED_MORE = 0, /* no whole frame yet: append more bytes and ask again */
    PROTO_FRAME_READY,         /* a whole frame: its body is in *frame */
    PROTO_FRAME_ERR_EMPTY,     /* the header declares 0 bytes */
    PROTO_FRAME_ERR_TOO_LARGE, /* the header declares more than the cap (or the body would) */
    PROTO_FRAME_ERR_NO_MEMORY  /* encoding only: the buffer could not grow */
} proto_frame_status_e;

/* Looks at the unconsumed bytes of in for the next frame; takes nothing out of it.
 * max is the body cap (values past PROTO_MAX_FRAME_BYTES_CEILING are lowered to it). The
 * declared length is judged as soon as the 4 header bytes are there, before any body byte and
 * before the caller reserves room for it.
 * Returns PROTO_FRAME_READY with *frame pointing at the body inside in (valid until the buffer
 * is next appended to or consumed), PROTO_FRAME_NEED_MORE with *frame empty, or
 * PROTO_FRAME_ERR_EMPTY / PROTO_FRAME_ERR_TOO_LARGE: the stream cannot be resynchronised and the
 * connection should be closed after any error reply. */
proto_frame_status_e proto_frame_next(const proto_buf_t *in, size_t max, proto_str_t *frame);

/* Drops the frame that proto_frame_next() just returned (header and body) from the front of in;
 * the next pipelined frame, if any, is then at the front. frame's bytes are gone afterwards
 * (wiped if the buffer is sensitive). */
void proto_frame_consume(proto_buf_t *in, const proto_str_t *frame);

/* How many more bytes the frame in progress needs before proto_frame_next() can answer READY:
 * the rest of the header, or the rest of a body whose length was accepted against max. Returns 0
 * when a whole frame is already there or when the header is refused (see proto_frame_next). */
size_t proto_frame_missing(const proto_buf_t *in, size_t max);

/* Writes the 4 header bytes for a body of len bytes (len must fit in 32 bits; callers bound it by
 * a cap first). */
void proto_frame_header_encode(unsigned char hdr[PROTO_FRAME_HEADER_BYTES], uint32_t len);

/* Appends one whole frame (header, then the len body bytes). Returns PROTO_FRAME_READY, or
 * PROTO_FRAME_ERR_EMPTY (len 0), PROTO_FRAME_ERR_TOO_LARGE (len > max, or out would pass its own
 * maximum), PROTO_FRAME_ERR_NO_MEMORY; on failure out is unchanged. */
proto_frame_status_e proto_frame_append(proto_buf_t *out, const void *body, size_t len, size_t max);

/* Writing a body in place, for encoders that stream into the buffer (yajl_gen's print callback)
 * so no copy is made: proto_frame_begin() reserves the header and returns a mark; the caller
 * appends the body to out; proto_frame_end() fills the header in. */
typedef struct proto_frame_mark {
    size_t at; /* offset of the header from the first unconsumed byte (stable across compaction) */
} proto_frame_mark_t;

/* Appends a placeholder header. Returns PROTO_FRAME_READY, or PROTO_FRAME_ERR_TOO_LARGE /
 * PROTO_FRAME_ERR_NO_MEMORY with out unchanged. */
proto_frame_status_e proto_frame_begin(proto_buf_t *out, proto_frame_mark_t *mark);

/* Fills in the header for everything appended since the mark. Returns PROTO_FRAME_READY, or
 * PROTO_FRAME_ERR_EMPTY / PROTO_FRAME_ERR_TOO_LARGE (body past max), in which case the frame is
 * taken back out as by proto_frame_abandon(). */
proto_frame_status_e proto_frame_end(proto_buf_t *out, const proto_frame_mark_t *mark, size_t max);

/* Takes back everything appended since the mark (wiped if the buffer is sensitive). */
void proto_frame_abandon(proto_buf_t *out, const proto_frame_mark_t *mark);

const char *proto_frame_status_name(proto_frame_status_e st);

#endif
