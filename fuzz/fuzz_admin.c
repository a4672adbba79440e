/* Fuzzes proto_msg_admin_decode(), the admin socket's request decoder: unknown members and
 * arguments a command does not take must be refused (a misspelt "principal" must not widen a
 * flush to everything). A decoded request must be one the client could have sent: it re-encodes
 * with proto_msg_admin_encode() and decodes again to the same fields. A decode whose allocator
 * runs out part way must say PROTO_MSG_ERR_NO_MEMORY. */
#include <string.h>

#include "fuzz/fuzz.h"
#include "fuzz/fuzz_apr.h"
#include "jose/pool.h"
#include "proto/limits.h"
#include "proto/msg.h"

static void str_check(proto_str_t s, int strict)
{
    if (s.ptr == NULL) {
        FUZZ_CHECK(s.len == 0);
        return;
    }
    fuzz_touch(s.ptr, s.len);
    if (strict) {
        FUZZ_CHECK(!proto_str_has_nul(s) && fuzz_utf8_valid(s.ptr, s.len));
    }
}

static int str_same(proto_str_t a, proto_str_t b)
{
    return (a.ptr == NULL) == (b.ptr == NULL) && proto_str_eq(a, b);
}

static void admin_check(const proto_admin_request_t *r)
{
    FUZZ_CHECK(proto_admin_cmd_name(r->cmd) != NULL);
    FUZZ_CHECK(proto_str_eq_cstr(r->cmd_name, proto_admin_cmd_name(r->cmd)));
    str_check(r->principal, 1);
    str_check(r->token, 0);
    str_check(r->issuer, 1);
    str_check(r->id, 1);
    /* Arguments go only with the command that takes them. */
    FUZZ_CHECK(!(r->principal.ptr && r->token.ptr));
    if (r->cmd != PROTO_ADMIN_FLUSH) {
        FUZZ_CHECK(r->principal.ptr == NULL && r->token.ptr == NULL);
    }
    if (r->cmd == PROTO_ADMIN_REFRESH) {
        FUZZ_CHECK(r->issuer.ptr != NULL);
    } else {
        FUZZ_CHECK(r->issuer.ptr == NULL);
    }
}

static void admin_roundtrip(const proto_admin_request_t *r)
{
    proto_buf_t out;
    proto_msg_error_t err;
    proto_admin_request_t back;
    fuzz_alloc_t fa;
    proto_alloc_t al = fuzz_alloc_make(&fa, 0);
    proto_msg_status_e st;

    proto_buf_init(&out, PROTO_FRAME_HEADER_BYTES + PROTO_MAX_FRAME_BYTES_CEILING, 1);
    st = proto_msg_admin_encode(&out, PROTO_MAX_FRAME_BYTES_CEILING, r, &err);
    /* The client sends a token as UTF-8 without NUL (jwtauthz_admin() takes a C string); the
     * daemon reads any string and judges it as a token. Escaping can grow a request past the
     * cap. */
    if (proto_str_has_nul(r->token) ||
        (r->token.ptr && !fuzz_utf8_valid(r->token.ptr, r->token.len))) {
        FUZZ_CHECK(st == PROTO_MSG_ERR_VALUE);
        goto out;
    }
    if (st == PROTO_MSG_ERR_TOO_LARGE) {
        goto out;
    }
    if (st != PROTO_MSG_OK) {
        fprintf(stderr, "re-encode: %s: %s\n", proto_msg_status_name(st), err.message);
    }
    FUZZ_CHECK(st == PROTO_MSG_OK);
    st = proto_msg_admin_decode((const char *)proto_buf_ptr(&out) + PROTO_FRAME_HEADER_BYTES,
                                proto_buf_used(&out) - PROTO_FRAME_HEADER_BYTES, &al, &back, &err);
    FUZZ_CHECK(st == PROTO_MSG_OK);
    FUZZ_CHECK(back.cmd == r->cmd);
    FUZZ_CHECK(str_same(back.principal, r->principal));
    FUZZ_CHECK(str_same(back.token, r->token));
    FUZZ_CHECK(str_same(back.issuer, r->issuer));
    FUZZ_CHECK(str_same(back.id, r->id));
out:
    fuzz_alloc_free(&fa);
    proto_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    proto_admin_request_t req, pooled;
    proto_msg_error_t err;
    fuzz_alloc_t fa;
    proto_alloc_t al;
    proto_msg_status_e st, st2;
    apr_pool_t *p = fuzz_pools()->input;

    if (size > PROTO_MAX_FRAME_BYTES_CEILING) {
        return 0;
    }
    al = fuzz_alloc_make(&fa, 0);
    st = proto_msg_admin_decode(text, size, &al, &req, &err);
    size_t needed = fa.used;
    if (st == PROTO_MSG_OK) {
        admin_check(&req);
        admin_roundtrip(&req);
    } else {
        FUZZ_CHECK(err.status == st);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        str_check(req.id, 1);
    }
    /* admin.c decodes into the request pool. */
    proto_alloc_t pa = jose_pool_allocator(p);
    st2 = proto_msg_admin_decode(text, size, &pa, &pooled, &err);
    FUZZ_CHECK(st2 == st);
    fuzz_alloc_free(&fa);
    apr_pool_clear(p);

    if (st == PROTO_MSG_OK && needed > 1) {
        al = fuzz_alloc_make(&fa, needed / 2);
        st = proto_msg_admin_decode(text, size, &al, &req, &err);
        FUZZ_CHECK(st == PROTO_MSG_ERR_NO_MEMORY);
        fuzz_alloc_free(&fa);
    }
    return 0;
}
