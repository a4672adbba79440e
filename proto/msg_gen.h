/* A yajl_gen that prints straight into a frame of a proto_buf_t (header in front, filled in at the
 * end), so an encoder makes no copy of the body; the message encoders use it and the daemon may
 * too (admin replies). Failures are sticky: the first one is kept and reported by
 * proto_msg_writer_end(), which then takes the partial frame back out. No I/O. */
#ifndef JWTAUTHZ_PROTO_MSG_GEN_H
#define JWTAUTHZ_PROTO_MSG_GEN_H

#include <stddef.h>

#include <yajl/yajl_gen.h>

#include "buf.h"
#include "frame.h"
#include "json.h"
#include "msg.h"
#include "str.h"

typedef struct proto_msg_writer {
    yajl_gen gen;
    proto_buf_t *out;
    int framed; /* 0 for proto_msg_json_text(): a bare document, no header */
    proto_frame_mark_t mark;
    size_t max;                /* body cap */
    size_t written;            /* body bytes so far */
    proto_msg_status_e failed; /* first failure, PROTO_MSG_OK while none */
    char failed_what[96];      /* what was being written when it failed */
    const char *member;        /* last member name written (a literal), for messages */
    proto_buf_t scratch;       /* repaired or joined strings; wiped: it may hold a token */
} proto_msg_writer_t;

/* Starts a frame at the end of out whose body may be at most max bytes. Returns PROTO_MSG_OK,
 * PROTO_MSG_ERR_TOO_LARGE or PROTO_MSG_ERR_NO_MEMORY (out unchanged, nothing to end). */
proto_msg_status_e proto_msg_writer_begin(proto_msg_writer_t *w, proto_buf_t *out, size_t max);

/* Finishes the frame and frees the generator. Returns PROTO_MSG_OK, or the first failure seen
 * (with err filled when not NULL), in which case out is as it was before begin. */
proto_msg_status_e proto_msg_writer_end(proto_msg_writer_t *w, proto_msg_error_t *err);

/* Each writes one token and returns 1, or 0 once the writer has failed (further calls are no-ops
 * returning 0, so a sequence can be written and checked once at the end). */
int proto_msg_gen_map_open(proto_msg_writer_t *w);
int proto_msg_gen_map_close(proto_msg_writer_t *w);
int proto_msg_gen_array_open(proto_msg_writer_t *w);
int proto_msg_gen_array_close(proto_msg_writer_t *w);
/* A member name we chose (a literal): remembered for error messages. */
int proto_msg_gen_key(proto_msg_writer_t *w, const char *literal);
/* Strict: s must be UTF-8 (RFC 3629, no overlongs or surrogates) without NUL, else the writer
 * fails with PROTO_MSG_ERR_VALUE naming the current member. */
int proto_msg_gen_str(proto_msg_writer_t *w, proto_str_t s);
/* Free text: bytes that are not UTF-8 are written as U+FFFD; NUL is written as \u0000. */
int proto_msg_gen_text(proto_msg_writer_t *w, proto_str_t s);
/* Writes pairs as one object of string values (free text, see above), each name once: a name
 * that repeats has its values joined in order. PROTO_MSG_PAIRS_HTTP: names compare ignoring ASCII
 * case and join with ", " ("; " for Cookie), RFC 9110 §5.3 and RFC 9113 §8.2.3;
 * PROTO_MSG_PAIRS_QUERY: names compare exactly and join with ",". */
#define PROTO_MSG_PAIRS_HTTP 1
#define PROTO_MSG_PAIRS_QUERY 2
int proto_msg_gen_pairs_joined(proto_msg_writer_t *w, const proto_pair_t *pairs, size_t count,
                               int how);
int proto_msg_gen_int(proto_msg_writer_t *w, long long v);
int proto_msg_gen_bool(proto_msg_writer_t *w, int v);
/* Writes a value read by proto_json_read() again: numbers keep their exact text. Strings must be
 * UTF-8 (they were, to be read); depth is bounded by what the reader accepted. */
int proto_msg_gen_json(proto_msg_writer_t *w, const proto_json_t *v);

/* 1 when s is UTF-8 by RFC 3629 §3/§4: no overlong forms, no surrogates, nothing past U+10FFFF. */
int proto_msg_utf8_valid(proto_str_t s);

/* Renders v as compact JSON text into alloc (a context value that is not a string). Returns
 * PROTO_MSG_OK, PROTO_MSG_ERR_TOO_LARGE (past max bytes) or PROTO_MSG_ERR_NO_MEMORY. */
proto_msg_status_e proto_msg_json_text(const proto_json_t *v, size_t max,
                                       const proto_alloc_t *alloc, proto_str_t *out);

#endif
