/* Fuzzes the frame decoder (proto/frame.h) the way the daemon's event loop drives it: bytes
 * arrive in pieces (the first input byte picks the piece size and the cap), each read sized by
 * proto_frame_missing() into a buffer reserved with proto_buf_reserve(), whole frames taken out
 * until NEED_MORE or an error. Every frame is checked against a plain reading of the whole
 * stream, and re-encoded both ways (append, begin/end) to the same bytes. */
#include <string.h>

#include "fuzz/fuzz.h"
#include "proto/buf.h"
#include "proto/frame.h"
#include "proto/limits.h"

/* The daemon reads at most this much per read(2) (loop.c's LOOP_READ_CHUNK_BYTES). */
#define FUZZ_FRAME_READ_CHUNK_BYTES 16384u

/* Caps the first byte may pick: tiny ones make the fuzzer reach "too large" in a few bytes; the
 * last is past the ceiling, which proto_frame_next() must lower. */
static const size_t frame_caps[4] = {16, 300, PROTO_MAX_FRAME_BYTES_DEFAULT,
                                     (size_t)PROTO_MAX_FRAME_BYTES_CEILING * 4};

static size_t frame_cap(size_t max)
{
    return max > PROTO_MAX_FRAME_BYTES_CEILING ? PROTO_MAX_FRAME_BYTES_CEILING : max;
}

/* The reference: what frame number k of the whole stream is, read without the decoder. Returns
 * PROTO_FRAME_READY with *at and *len, NEED_MORE (the stream ends inside it) or the header
 * error. */
static proto_frame_status_e frame_reference(const uint8_t *s, size_t n, size_t max, size_t k,
                                            size_t *at, size_t *len)
{
    size_t off = 0;
    for (size_t i = 0;; i++) {
        if (n - off < PROTO_FRAME_HEADER_BYTES) {
            return PROTO_FRAME_NEED_MORE;
        }
        size_t declared = ((size_t)s[off] << 24) | ((size_t)s[off + 1] << 16) |
                          ((size_t)s[off + 2] << 8) | (size_t)s[off + 3];
        if (declared == 0) {
            return PROTO_FRAME_ERR_EMPTY;
        }
        if (declared > frame_cap(max)) {
            return PROTO_FRAME_ERR_TOO_LARGE;
        }
        if (n - off - PROTO_FRAME_HEADER_BYTES < declared) {
            return PROTO_FRAME_NEED_MORE;
        }
        if (i == k) {
            *at = off + PROTO_FRAME_HEADER_BYTES;
            *len = declared;
            return PROTO_FRAME_READY;
        }
        off += PROTO_FRAME_HEADER_BYTES + declared;
    }
}

/* Re-encodes a frame body with both encoders; each must give header + body exactly. */
static void frame_reencode(proto_str_t body, size_t max)
{
    proto_buf_t a, b;
    proto_frame_mark_t mark;
    unsigned char hdr[PROTO_FRAME_HEADER_BYTES];

    proto_buf_init(&a, PROTO_FRAME_HEADER_BYTES + PROTO_MAX_FRAME_BYTES_CEILING, 0);
    proto_buf_init(&b, PROTO_FRAME_HEADER_BYTES + PROTO_MAX_FRAME_BYTES_CEILING, 1);
    proto_frame_header_encode(hdr, (uint32_t)body.len);
    FUZZ_CHECK(proto_frame_append(&a, body.ptr, body.len, max) == PROTO_FRAME_READY);
    FUZZ_CHECK(proto_frame_begin(&b, &mark) == PROTO_FRAME_READY);
    FUZZ_CHECK(proto_buf_append(&b, body.ptr, body.len) == PROTO_BUF_OK);
    FUZZ_CHECK(proto_frame_end(&b, &mark, max) == PROTO_FRAME_READY);
    FUZZ_CHECK(proto_buf_used(&a) == PROTO_FRAME_HEADER_BYTES + body.len);
    FUZZ_CHECK(proto_buf_used(&b) == proto_buf_used(&a));
    FUZZ_CHECK(memcmp(proto_buf_ptr(&a), hdr, sizeof(hdr)) == 0);
    FUZZ_CHECK(memcmp(proto_buf_ptr(&a), proto_buf_ptr(&b), proto_buf_used(&a)) == 0);
    /* A body one byte over the cap is refused, and the buffer is left as it was. */
    if (body.len == frame_cap(max)) {
        FUZZ_CHECK(proto_frame_begin(&b, &mark) == PROTO_FRAME_READY);
        FUZZ_CHECK(proto_buf_append(&b, body.ptr, body.len) == PROTO_BUF_OK);
        FUZZ_CHECK(proto_buf_append(&b, "x", 1) == PROTO_BUF_OK);
        FUZZ_CHECK(proto_frame_end(&b, &mark, max) == PROTO_FRAME_ERR_TOO_LARGE);
        FUZZ_CHECK(proto_buf_used(&b) == proto_buf_used(&a));
    }
    proto_buf_free(&a);
    proto_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_buf_t in;
    size_t piece, max, fed = 0, nframes = 0;
    proto_frame_status_e st = PROTO_FRAME_NEED_MORE;

    if (size < 1) {
        return 0;
    }
    piece = (size_t)(data[0] & 0x3f) + 1;
    max = frame_caps[data[0] >> 6];
    data++;
    size--;
    /* As loop.c: room for one header and the largest body any config allows. */
    proto_buf_init(&in, PROTO_FRAME_HEADER_BYTES + PROTO_MAX_FRAME_BYTES_CEILING, 1);
    while (st == PROTO_FRAME_NEED_MORE && fed < size) {
        size_t want = proto_frame_missing(&in, max);
        if (want == 0 || want > FUZZ_FRAME_READ_CHUNK_BYTES) {
            want = FUZZ_FRAME_READ_CHUNK_BYTES;
        }
        if (want > piece) {
            want = piece; /* the peer sent less than asked for */
        }
        if (want > size - fed) {
            want = size - fed;
        }
        unsigned char *dst = proto_buf_reserve(&in, want);
        if (dst != NULL) {
            memcpy(dst, data + fed, want);
            proto_buf_commit(&in, want);
            fed += want;
        }
        for (;;) {
            proto_str_t frame;
            size_t at = 0, len = 0;
            st = proto_frame_next(&in, max, &frame);
            proto_frame_status_e ref = frame_reference(data, fed, max, nframes, &at, &len);
            FUZZ_CHECK(st == ref);
            if (st != PROTO_FRAME_READY) {
                FUZZ_CHECK(frame.ptr == NULL && frame.len == 0);
                if (st == PROTO_FRAME_NEED_MORE) {
                    FUZZ_CHECK(proto_frame_missing(&in, max) > 0);
                } else {
                    FUZZ_CHECK(proto_frame_missing(&in, max) == 0);
                }
                break;
            }
            FUZZ_CHECK(frame.len > 0 && frame.len <= frame_cap(max));
            FUZZ_CHECK(frame.len == len && memcmp(frame.ptr, data + at, len) == 0);
            FUZZ_CHECK(proto_frame_missing(&in, max) == 0);
            frame_reencode(frame, max);
            proto_frame_consume(&in, &frame);
            nframes++;
        }
        /* Only a header over the cap stops reads (the reserve is refused), and then
         * proto_frame_next() has already said so above. */
        if (dst == NULL) {
            FUZZ_CHECK(st != PROTO_FRAME_NEED_MORE);
        }
    }
    proto_buf_free(&in);
    return 0;
}
