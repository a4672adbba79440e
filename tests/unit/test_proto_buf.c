/* The bounded buffer: its maximum holds at the limit and refuses limit + 1 before allocating. */
#include "proto/buf.h"
#include "harness.h"

TEST(buf_accepts_exactly_its_maximum)
{
    proto_buf_t b;
    proto_buf_init(&b, 8, 0);
    CHECK(proto_buf_append(&b, "12345678", 8) == PROTO_BUF_OK);
    CHECK(proto_buf_used(&b) == 8);
    CHECK(proto_buf_append(&b, "9", 1) == PROTO_BUF_TOO_LARGE);
    CHECK(proto_buf_used(&b) == 8);
    proto_buf_free(&b);
}

TEST(buf_refuses_oversize_before_allocating)
{
    proto_buf_t b;
    proto_buf_init(&b, 16, 1);
    CHECK(proto_buf_append(&b, "x", (size_t)-1) == PROTO_BUF_TOO_LARGE);
    CHECK(b.data == NULL);
    CHECK(proto_buf_reserve(&b, 17) == NULL);
    CHECK(b.data == NULL);
    proto_buf_free(&b);
}

TEST(buf_consume_frees_room_for_more)
{
    proto_buf_t b;
    proto_buf_init(&b, 4, 0);
    CHECK(proto_buf_append(&b, "abcd", 4) == PROTO_BUF_OK);
    proto_buf_consume(&b, 3);
    CHECK(proto_buf_used(&b) == 1 && proto_buf_ptr(&b)[0] == 'd');
    CHECK(proto_buf_append(&b, "efg", 3) == PROTO_BUF_OK);
    CHECK(memcmp(proto_buf_ptr(&b), "defg", 4) == 0);
    proto_buf_free(&b);
}

TEST(buf_sensitive_reset_wipes_bytes)
{
    proto_buf_t b;
    proto_buf_init(&b, 64, 1);
    CHECK(proto_buf_append(&b, "secret", 6) == PROTO_BUF_OK);
    unsigned char *raw = b.data;
    proto_buf_reset(&b);
    CHECK(memcmp(raw, "\0\0\0\0\0\0", 6) == 0);
    proto_buf_free(&b);
}

int main(void)
{
    RUN(buf_accepts_exactly_its_maximum);
    RUN(buf_refuses_oversize_before_allocating);
    RUN(buf_consume_frees_room_for_more);
    RUN(buf_sensitive_reset_wipes_bytes);
    return harness_report();
}
