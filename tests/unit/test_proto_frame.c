/* Framing: pipelined frames come out whole however the stream is split; a zero length and a length
 * past the cap are distinct errors judged from the header alone, before any room is reserved;
 * truncated headers and bodies wait for more; the encoders write big-endian lengths and leave the
 * buffer as it was when they fail. */
#include <stdint.h>

#include "harness.h"
#include "proto/frame.h"

#define SMALL_MAX 64u

/* Three frames back to back, of different sizes, the last exactly SMALL_MAX. */
static size_t stream_make(unsigned char *s, const char **bodies, size_t *lens)
{
    static char big[SMALL_MAX];
    size_t n = 0;
    memset(big, 'x', sizeof(big));
    big[0] = '{';
    big[SMALL_MAX - 1] = '}';
    bodies[0] = "{\"a\":1}";
    bodies[1] = "[]";
    bodies[2] = big;
    lens[0] = 7;
    lens[1] = 2;
    lens[2] = SMALL_MAX;
    for (int i = 0; i < 3; i++) {
        proto_frame_header_encode(s + n, (uint32_t)lens[i]);
        memcpy(s + n + 4, bodies[i], lens[i]);
        n += 4 + lens[i];
    }
    return n;
}

/* Takes every whole frame out; returns how many matched the expected ones in order, or -1. */
static int frames_drain(proto_buf_t *in, const char **bodies, const size_t *lens, int *seen)
{
    proto_str_t f;
    proto_frame_status_e st;
    while ((st = proto_frame_next(in, SMALL_MAX, &f)) == PROTO_FRAME_READY) {
        if (*seen >= 3 || f.len != lens[*seen] || memcmp(f.ptr, bodies[*seen], f.len) != 0) {
            return -1;
        }
        (*seen)++;
        proto_frame_consume(in, &f);
    }
    return st == PROTO_FRAME_NEED_MORE ? 0 : -1;
}

TEST(frame_three_pipelined_every_two_cut_split)
{
    unsigned char s[256];
    const char *bodies[3];
    size_t lens[3];
    size_t n = stream_make(s, bodies, lens);
    int failures = 0;

    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            proto_buf_t in;
            int seen = 0;
            proto_buf_init(&in, 2 * (SMALL_MAX + 4), 0);
            int ok = proto_buf_append(&in, s, i) == PROTO_BUF_OK &&
                     frames_drain(&in, bodies, lens, &seen) == 0 &&
                     proto_buf_append(&in, s + i, j - i) == PROTO_BUF_OK &&
                     frames_drain(&in, bodies, lens, &seen) == 0 &&
                     proto_buf_append(&in, s + j, n - j) == PROTO_BUF_OK &&
                     frames_drain(&in, bodies, lens, &seen) == 0;
            if (!ok || seen != 3 || proto_buf_used(&in) != 0) {
                failures++;
            }
            proto_buf_free(&in);
        }
    }
    CHECK_MSG(failures == 0, "%d splits lost or garbled a frame", failures);
}

TEST(frame_three_pipelined_one_byte_at_a_time)
{
    unsigned char s[256];
    const char *bodies[3];
    size_t lens[3];
    size_t n = stream_make(s, bodies, lens);
    proto_buf_t in;
    int seen = 0;

    proto_buf_init(&in, SMALL_MAX + 4, 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(proto_buf_append(&in, s + i, 1) == PROTO_BUF_OK);
        CHECK(frames_drain(&in, bodies, lens, &seen) == 0);
    }
    CHECK(seen == 3);
    proto_buf_free(&in);
}

TEST(frame_all_in_one_read)
{
    unsigned char s[256];
    const char *bodies[3];
    size_t lens[3];
    size_t n = stream_make(s, bodies, lens);
    proto_buf_t in;
    int seen = 0;

    proto_buf_init(&in, sizeof(s), 0);
    CHECK(proto_buf_append(&in, s, n) == PROTO_BUF_OK);
    CHECK(frames_drain(&in, bodies, lens, &seen) == 0);
    CHECK(seen == 3);
    proto_buf_free(&in);
}

TEST(frame_zero_length_is_its_own_error)
{
    proto_buf_t in;
    proto_str_t f;
    proto_buf_init(&in, 64, 0);
    CHECK(proto_buf_append(&in, "\0\0\0\0{}", 6) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SMALL_MAX, &f) == PROTO_FRAME_ERR_EMPTY);
    CHECK(f.ptr == NULL && f.len == 0);
    CHECK(proto_frame_missing(&in, SMALL_MAX) == 0);
    proto_buf_free(&in);
}

TEST(frame_exactly_max_accepted)
{
    unsigned char s[4 + SMALL_MAX];
    proto_buf_t in;
    proto_str_t f;
    proto_frame_header_encode(s, SMALL_MAX);
    memset(s + 4, 'a', SMALL_MAX);
    proto_buf_init(&in, sizeof(s), 0);
    CHECK(proto_buf_append(&in, s, sizeof(s)) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SMALL_MAX, &f) == PROTO_FRAME_READY);
    CHECK(f.len == SMALL_MAX);
    proto_buf_free(&in);
}

TEST(frame_max_plus_one_refused_from_header_before_allocation)
{
    unsigned char hdr[4];
    proto_buf_t in;
    proto_str_t f;
    proto_frame_header_encode(hdr, SMALL_MAX + 1);
    proto_buf_init(&in, 8, 0);
    CHECK(proto_buf_append(&in, hdr, 4) == PROTO_BUF_OK);
    size_t cap_before = in.cap;
    /* Only the header is there: the verdict must not wait for (or make room for) the body. */
    CHECK(proto_frame_next(&in, SMALL_MAX, &f) == PROTO_FRAME_ERR_TOO_LARGE);
    CHECK(proto_frame_missing(&in, SMALL_MAX) == 0);
    CHECK(in.cap == cap_before && in.cap <= 8);
    proto_buf_free(&in);
}

TEST(frame_length_4gib_refused_whatever_the_callers_max)
{
    proto_buf_t in;
    proto_str_t f;
    proto_buf_init(&in, 8, 0);
    CHECK(proto_buf_append(&in, "\xff\xff\xff\xff", 4) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SIZE_MAX, &f) == PROTO_FRAME_ERR_TOO_LARGE);
    proto_buf_reset(&in);
    unsigned char hdr[4];
    proto_frame_header_encode(hdr, PROTO_MAX_FRAME_BYTES_CEILING + 1);
    CHECK(proto_buf_append(&in, hdr, 4) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SIZE_MAX, &f) == PROTO_FRAME_ERR_TOO_LARGE);
    proto_buf_reset(&in);
    proto_frame_header_encode(hdr, PROTO_MAX_FRAME_BYTES_CEILING);
    CHECK(proto_buf_append(&in, hdr, 4) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SIZE_MAX, &f) == PROTO_FRAME_NEED_MORE);
    proto_buf_free(&in);
}

TEST(frame_truncated_header_waits)
{
    proto_buf_t in;
    proto_str_t f;
    proto_buf_init(&in, 64, 0);
    CHECK(proto_frame_next(&in, SMALL_MAX, &f) == PROTO_FRAME_NEED_MORE);
    CHECK(proto_frame_missing(&in, SMALL_MAX) == 4);
    CHECK(proto_buf_append(&in, "\0\0\0", 3) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SMALL_MAX, &f) == PROTO_FRAME_NEED_MORE);
    CHECK(proto_frame_missing(&in, SMALL_MAX) == 1);
    proto_buf_free(&in);
}

TEST(frame_truncated_body_waits)
{
    proto_buf_t in;
    proto_str_t f;
    proto_buf_init(&in, 64, 0);
    CHECK(proto_buf_append(&in, "\0\0\0\x09{\"k\":\"v\"", 12) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SMALL_MAX, &f) == PROTO_FRAME_NEED_MORE);
    CHECK(proto_frame_missing(&in, SMALL_MAX) == 1);
    CHECK(proto_buf_append(&in, "}", 1) == PROTO_BUF_OK);
    CHECK(proto_frame_next(&in, SMALL_MAX, &f) == PROTO_FRAME_READY);
    CHECK(f.len == 9 && memcmp(f.ptr, "{\"k\":\"v\"}", 9) == 0);
    proto_buf_free(&in);
}

TEST(frame_header_is_big_endian)
{
    unsigned char hdr[4];
    proto_frame_header_encode(hdr, 0x01020304u);
    CHECK(hdr[0] == 1 && hdr[1] == 2 && hdr[2] == 3 && hdr[3] == 4);
}

TEST(frame_append_round_trip_and_limits)
{
    proto_buf_t out;
    proto_str_t f;
    proto_buf_init(&out, 4 + SMALL_MAX, 0);
    CHECK(proto_frame_append(&out, "{}", 0, SMALL_MAX) == PROTO_FRAME_ERR_EMPTY);
    CHECK(proto_frame_append(&out, "{}", SMALL_MAX + 1, SMALL_MAX) == PROTO_FRAME_ERR_TOO_LARGE);
    CHECK(proto_buf_used(&out) == 0);
    CHECK(proto_frame_append(&out, "{}", 2, SMALL_MAX) == PROTO_FRAME_READY);
    CHECK(proto_frame_next(&out, SMALL_MAX, &f) == PROTO_FRAME_READY);
    CHECK(f.len == 2 && memcmp(f.ptr, "{}", 2) == 0);
    /* The buffer's own maximum: the whole frame or nothing. */
    size_t before = proto_buf_used(&out);
    char body[SMALL_MAX];
    memset(body, 'z', sizeof(body));
    CHECK(proto_frame_append(&out, body, SMALL_MAX - 2, SMALL_MAX) == PROTO_FRAME_ERR_TOO_LARGE);
    CHECK(proto_buf_used(&out) == before);
    proto_buf_free(&out);
}

TEST(frame_begin_end_patches_header_after_compaction)
{
    proto_buf_t out;
    proto_frame_mark_t mark;
    proto_str_t f;
    char body[1000];
    proto_buf_init(&out, 4096, 1);
    /* Two frames, the first consumed: off > 0, so growing for the body compacts the buffer and
     * moves the header that proto_frame_end() must still find. */
    CHECK(proto_frame_append(&out, "[1]", 3, SMALL_MAX) == PROTO_FRAME_READY);
    CHECK(proto_frame_append(&out, "[2]", 3, SMALL_MAX) == PROTO_FRAME_READY);
    CHECK(proto_frame_next(&out, SMALL_MAX, &f) == PROTO_FRAME_READY);
    proto_frame_consume(&out, &f);
    CHECK(out.off == 7);
    CHECK(proto_frame_begin(&out, &mark) == PROTO_FRAME_READY);
    memset(body, 'q', sizeof(body));
    CHECK(proto_buf_append(&out, body, sizeof(body)) == PROTO_BUF_OK);
    CHECK(out.off == 0);
    CHECK(proto_frame_end(&out, &mark, 4096) == PROTO_FRAME_READY);
    CHECK(proto_frame_next(&out, 4096, &f) == PROTO_FRAME_READY && f.len == 3);
    CHECK(memcmp(f.ptr, "[2]", 3) == 0);
    proto_frame_consume(&out, &f);
    CHECK(proto_frame_next(&out, 4096, &f) == PROTO_FRAME_READY && f.len == sizeof(body));
    proto_buf_free(&out);
}

TEST(frame_end_refuses_empty_and_oversize_and_takes_them_back)
{
    proto_buf_t out;
    proto_frame_mark_t mark;
    proto_buf_init(&out, 4096, 1);
    CHECK(proto_frame_append(&out, "{}", 2, SMALL_MAX) == PROTO_FRAME_READY);
    CHECK(proto_frame_begin(&out, &mark) == PROTO_FRAME_READY);
    CHECK(proto_frame_end(&out, &mark, SMALL_MAX) == PROTO_FRAME_ERR_EMPTY);
    CHECK(proto_buf_used(&out) == 6);
    CHECK(proto_frame_begin(&out, &mark) == PROTO_FRAME_READY);
    char body[SMALL_MAX + 1];
    memset(body, 'q', sizeof(body));
    CHECK(proto_buf_append(&out, body, sizeof(body)) == PROTO_BUF_OK);
    CHECK(proto_frame_end(&out, &mark, SMALL_MAX) == PROTO_FRAME_ERR_TOO_LARGE);
    CHECK(proto_buf_used(&out) == 6);
    /* Sensitive: the bytes taken back are wiped, not just forgotten. */
    CHECK(out.data[10] == 0 && out.data[6 + 4 + SMALL_MAX] == 0);
    proto_buf_free(&out);
}

int main(void)
{
    RUN(frame_three_pipelined_every_two_cut_split);
    RUN(frame_three_pipelined_one_byte_at_a_time);
    RUN(frame_all_in_one_read);
    RUN(frame_zero_length_is_its_own_error);
    RUN(frame_exactly_max_accepted);
    RUN(frame_max_plus_one_refused_from_header_before_allocation);
    RUN(frame_length_4gib_refused_whatever_the_callers_max);
    RUN(frame_truncated_header_waits);
    RUN(frame_truncated_body_waits);
    RUN(frame_header_is_big_endian);
    RUN(frame_append_round_trip_and_limits);
    RUN(frame_begin_end_patches_header_after_compaction);
    RUN(frame_end_refuses_empty_and_oversize_and_takes_them_back);
    return harness_report();
}
