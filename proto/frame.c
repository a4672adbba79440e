/* Frame decoding and encoding over the bounded buffer (see frame.h). A declared length is judged
 * against the cap from the 4 header bytes alone, so a hostile header never makes anyone reserve
 * memory for it. No I/O, no JSON. */
#include "frame.h"

#include <string.h>

static size_t frame_cap(size_t max)
{
    return max > PROTO_MAX_FRAME_BYTES_CEILING ? PROTO_MAX_FRAME_BYTES_CEILING : max;
}

static uint32_t frame_header_decode(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void proto_frame_header_encode(unsigned char hdr[PROTO_FRAME_HEADER_BYTES], uint32_t len)
{
    hdr[0] = (unsigned char)(len >> 24);
    hdr[1] = (unsigned char)(len >> 16);
    hdr[2] = (unsigned char)(len >> 8);
    hdr[3] = (unsigned char)len;
}

proto_frame_status_e proto_frame_next(const proto_buf_t *in, size_t max, proto_str_t *frame)
{
    size_t used = proto_buf_used(in);
    const unsigned char *p = proto_buf_ptr(in);

    frame->ptr = NULL;
    frame->len = 0;
    if (used < PROTO_FRAME_HEADER_BYTES) {
        return PROTO_FRAME_NEED_MORE;
    }
    uint32_t declared = frame_header_decode(p);
    if (declared == 0) {
        return PROTO_FRAME_ERR_EMPTY;
    }
    if (declared > frame_cap(max)) {
        return PROTO_FRAME_ERR_TOO_LARGE;
    }
    if (used - PROTO_FRAME_HEADER_BYTES < declared) {
        return PROTO_FRAME_NEED_MORE;
    }
    frame->ptr = (const char *)p + PROTO_FRAME_HEADER_BYTES;
    frame->len = declared;
    return PROTO_FRAME_READY;
}

void proto_frame_consume(proto_buf_t *in, const proto_str_t *frame)
{
    proto_buf_consume(in, PROTO_FRAME_HEADER_BYTES + frame->len);
}

size_t proto_frame_missing(const proto_buf_t *in, size_t max)
{
    size_t used = proto_buf_used(in);
    if (used < PROTO_FRAME_HEADER_BYTES) {
        return PROTO_FRAME_HEADER_BYTES - used;
    }
    uint32_t declared = frame_header_decode(proto_buf_ptr(in));
    if (declared == 0 || declared > frame_cap(max)) {
        return 0;
    }
    size_t want = PROTO_FRAME_HEADER_BYTES + (size_t)declared;
    return used >= want ? 0 : want - used;
}

static proto_frame_status_e frame_status_from_buf(proto_buf_status_e st)
{
    return st == PROTO_BUF_TOO_LARGE ? PROTO_FRAME_ERR_TOO_LARGE : PROTO_FRAME_ERR_NO_MEMORY;
}

proto_frame_status_e proto_frame_append(proto_buf_t *out, const void *body, size_t len, size_t max)
{
    unsigned char hdr[PROTO_FRAME_HEADER_BYTES];
    proto_frame_mark_t mark;
    proto_buf_status_e st;

    if (len == 0) {
        return PROTO_FRAME_ERR_EMPTY;
    }
    if (len > frame_cap(max)) {
        return PROTO_FRAME_ERR_TOO_LARGE;
    }
    /* Check the whole frame fits before writing either half, so failure leaves out unchanged. */
    if (proto_buf_used(out) > out->max || out->max - proto_buf_used(out) < len + sizeof(hdr)) {
        return PROTO_FRAME_ERR_TOO_LARGE;
    }
    mark.at = proto_buf_used(out);
    proto_frame_header_encode(hdr, (uint32_t)len);
    st = proto_buf_append(out, hdr, sizeof(hdr));
    if (st == PROTO_BUF_OK) {
        st = proto_buf_append(out, body, len);
    }
    if (st != PROTO_BUF_OK) {
        proto_frame_abandon(out, &mark);
        return frame_status_from_buf(st);
    }
    return PROTO_FRAME_READY;
}

proto_frame_status_e proto_frame_begin(proto_buf_t *out, proto_frame_mark_t *mark)
{
    static const unsigned char placeholder[PROTO_FRAME_HEADER_BYTES];

    mark->at = proto_buf_used(out);
    proto_buf_status_e st = proto_buf_append(out, placeholder, sizeof(placeholder));
    return st == PROTO_BUF_OK ? PROTO_FRAME_READY : frame_status_from_buf(st);
}

proto_frame_status_e proto_frame_end(proto_buf_t *out, const proto_frame_mark_t *mark, size_t max)
{
    size_t used = proto_buf_used(out);
    if (used < mark->at + PROTO_FRAME_HEADER_BYTES) {
        return PROTO_FRAME_ERR_EMPTY; /* the header itself is gone: nothing to take back */
    }
    size_t body = used - mark->at - PROTO_FRAME_HEADER_BYTES;

    if (body == 0 || body > frame_cap(max)) {
        proto_frame_abandon(out, mark);
        return body == 0 ? PROTO_FRAME_ERR_EMPTY : PROTO_FRAME_ERR_TOO_LARGE;
    }
    /* The buffer's unconsumed bytes start at data + off; compaction moves them as a block, so an
     * offset from there still finds the header. */
    proto_frame_header_encode(out->data + out->off + mark->at, (uint32_t)body);
    return PROTO_FRAME_READY;
}

void proto_frame_abandon(proto_buf_t *out, const proto_frame_mark_t *mark)
{
    size_t used = proto_buf_used(out);
    if (mark->at >= used) {
        return;
    }
    /* buf.h has no truncate: the fields are public and this is the one place that shortens. */
    size_t keep = out->off + mark->at;
    if (out->sensitive) {
        explicit_bzero(out->data + keep, out->len - keep);
    }
    out->len = keep;
}

const char *proto_frame_status_name(proto_frame_status_e st)
{
    switch (st) {
    case PROTO_FRAME_NEED_MORE:
        return "need_more";
    case PROTO_FRAME_READY:
        return "ready";
    case PROTO_FRAME_ERR_EMPTY:
        return "empty_frame";
    case PROTO_FRAME_ERR_TOO_LARGE:
        return "frame_too_large";
    case PROTO_FRAME_ERR_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}
