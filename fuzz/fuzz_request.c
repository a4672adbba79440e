/* Fuzzes what the daemon does with a decision request frame before any key is touched:
 * proto_msg_request_decode() (TOKEN and REQUEST events), then token_source_find() (the
 * Authorization header, else a cookie, else a query parameter, as a config with both set) and the
 * bearer extraction in it. A decoded request must hold what the header promises (required members,
 * no NUL in strict fields), re-encode with proto_msg_request_encode() and decode again to the same
 * fields; a decode whose allocator runs out part way must say PROTO_MSG_ERR_NO_MEMORY. */
#include <string.h>

#include "daemon/conf.h"
#include "daemon/token_source.h"
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

static void pairs_check(const proto_pair_t *p, size_t n)
{
    FUZZ_CHECK(n == 0 || p != NULL);
    for (size_t i = 0; i < n; i++) {
        str_check(p[i].name, 0);
        str_check(p[i].value, 0);
        FUZZ_CHECK(p[i].name.ptr != NULL && p[i].value.ptr != NULL);
    }
}

/* 1 when two pairs' names are equal ignoring ASCII case: the encoder joins those. */
static int pairs_have_folded_duplicate(const proto_pair_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (proto_pairs_find_ci(p, n, p[i].name, NULL) > 1) {
            return 1;
        }
    }
    return 0;
}

static int pairs_same(const proto_pair_t *a, size_t na, const proto_pair_t *b, size_t nb)
{
    if (na != nb) {
        return 0;
    }
    for (size_t i = 0; i < na; i++) {
        if (!proto_str_eq(a[i].name, b[i].name) || !proto_str_eq(a[i].value, b[i].value)) {
            return 0;
        }
    }
    return 1;
}

/* 1 when every name and value is UTF-8: the encoder sends other bytes as U+FFFD. */
static int pairs_utf8(const proto_pair_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!fuzz_utf8_valid(p[i].name.ptr, p[i].name.len) ||
            !fuzz_utf8_valid(p[i].value.ptr, p[i].value.len)) {
            return 0;
        }
    }
    return 1;
}

/* 1 when a name that is not UTF-8 could pass JSON_MAX_KEY_BYTES once the encoder has replaced
 * each bad byte with U+FFFD (three bytes): the encoder does not check, so the daemon refuses such
 * a frame as bad JSON. Reported; harmless (an ERROR for that request alone). */
static int pairs_may_outgrow_key(const proto_pair_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].name.len > JSON_MAX_KEY_BYTES / 3 &&
            !fuzz_utf8_valid(p[i].name.ptr, p[i].name.len)) {
            return 1;
        }
    }
    return 0;
}

static void request_check(const proto_decision_request_t *r)
{
    FUZZ_CHECK(r->type == PROTO_REQ_TOKEN || r->type == PROTO_REQ_REQUEST);
    FUZZ_CHECK(r->method_arn.ptr != NULL);
    str_check(r->type_name, 1);
    str_check(r->method_arn, 1);
    str_check(r->authorization_token, 0);
    str_check(r->http_method, 1);
    str_check(r->path, 1);
    str_check(r->source_ip, 1);
    str_check(r->id, 1);
    pairs_check(r->headers, r->header_count);
    pairs_check(r->query, r->query_count);
    if (r->type == PROTO_REQ_TOKEN) {
        FUZZ_CHECK(r->header_count == 0 && r->query_count == 0 && r->path.ptr == NULL);
    }
}

/* Encodes r and decodes the frame again: the same request must come back. */
static void request_roundtrip(const proto_decision_request_t *r)
{
    proto_buf_t out;
    proto_msg_error_t err;
    proto_decision_request_t back;
    fuzz_alloc_t fa;
    proto_alloc_t al = fuzz_alloc_make(&fa, 0);
    proto_msg_status_e st;

    proto_buf_init(&out, PROTO_FRAME_HEADER_BYTES + PROTO_MAX_FRAME_BYTES_CEILING, 1);
    st = proto_msg_request_encode(&out, PROTO_MAX_FRAME_BYTES_CEILING, r, &err);
    /* Escaping can grow a request that fitted past the cap; nothing else may refuse it. */
    if (st == PROTO_MSG_ERR_TOO_LARGE) {
        FUZZ_CHECK(proto_buf_used(&out) == 0);
        goto out;
    }
    if (st != PROTO_MSG_OK) {
        fprintf(stderr, "re-encode: %s: %s\n", proto_msg_status_name(st), err.message);
    }
    FUZZ_CHECK(st == PROTO_MSG_OK);
    FUZZ_CHECK(proto_buf_used(&out) > PROTO_FRAME_HEADER_BYTES);
    st =
        proto_msg_request_decode((const char *)proto_buf_ptr(&out) + PROTO_FRAME_HEADER_BYTES,
                                 proto_buf_used(&out) - PROTO_FRAME_HEADER_BYTES, &al, &back, &err);
    if (st != PROTO_MSG_OK && (pairs_may_outgrow_key(r->headers, r->header_count) ||
                               pairs_may_outgrow_key(r->query, r->query_count))) {
        /* Known and fail-closed: the daemon refuses the frame (member name too long). */
        FUZZ_CHECK(st == PROTO_MSG_ERR_JSON);
        goto out;
    }
    if (st != PROTO_MSG_OK) {
        fprintf(stderr, "re-decode: %s: %s\n", proto_msg_status_name(st), err.message);
    }
    FUZZ_CHECK(st == PROTO_MSG_OK);
    FUZZ_CHECK(back.type == r->type);
    FUZZ_CHECK(str_same(back.method_arn, r->method_arn));
    /* Token, header and query bytes that are not UTF-8 go out as U+FFFD (msg.h): then only
     * presence is kept. Strict fields were checked as UTF-8 on the way in. */
    if (r->authorization_token.ptr == NULL ||
        fuzz_utf8_valid(r->authorization_token.ptr, r->authorization_token.len)) {
        FUZZ_CHECK(str_same(back.authorization_token, r->authorization_token));
    } else {
        FUZZ_CHECK(back.authorization_token.ptr != NULL);
    }
    FUZZ_CHECK(str_same(back.http_method, r->http_method));
    FUZZ_CHECK(str_same(back.path, r->path));
    FUZZ_CHECK(str_same(back.source_ip, r->source_ip));
    FUZZ_CHECK(str_same(back.id, r->id));
    FUZZ_CHECK((back.id_json == NULL) == (r->id_json == NULL));
    if (pairs_have_folded_duplicate(r->headers, r->header_count)) {
        FUZZ_CHECK(back.header_count < r->header_count);
    } else if (pairs_utf8(r->headers, r->header_count)) {
        FUZZ_CHECK(pairs_same(back.headers, back.header_count, r->headers, r->header_count));
    }
    if (pairs_utf8(r->query, r->query_count)) {
        FUZZ_CHECK(pairs_same(back.query, back.query_count, r->query, r->query_count));
    } else {
        FUZZ_CHECK(back.query_count <= r->query_count);
    }
out:
    fuzz_alloc_free(&fa);
    proto_buf_free(&out);
}

/* The daemon's next step: where the token is. The config names a cookie and a query parameter
 * so every source is reachable. */
static void request_token(const proto_decision_request_t *r)
{
    conf_t conf;
    proto_str_t token;

    memset(&conf, 0, sizeof(conf));
    conf.token_cookie = PROTO_STR_LIT("access_token");
    conf.token_query = PROTO_STR_LIT("access_token");
    if (token_source_find(&conf, r, &token) == JOSE_OK) {
        FUZZ_CHECK(token.ptr != NULL && token.len > 0);
        fuzz_touch(token.ptr, token.len);
    } else {
        FUZZ_CHECK(token.ptr == NULL && token.len == 0);
    }
    for (size_t i = 0; i < r->header_count; i++) {
        proto_str_t v = {NULL, 0};
        if (token_source_cookie(r->headers[i].value, conf.token_cookie, &v)) {
            /* The value lies inside the header it came from. */
            FUZZ_CHECK(v.ptr >= r->headers[i].value.ptr &&
                       v.ptr + v.len <= r->headers[i].value.ptr + r->headers[i].value.len);
            /* RFC 6265 §4.2.1: one cookie-pair, never the separator after it. */
            FUZZ_CHECK(v.len == 0 || memchr(v.ptr, ';', v.len) == NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    proto_decision_request_t req, pooled;
    proto_msg_error_t err;
    fuzz_alloc_t fa;
    proto_alloc_t al;
    proto_msg_status_e st, st2;
    apr_pool_t *p = fuzz_pools()->input;

    /* The frame reader lets no body past the ceiling reach the decoder. */
    if (size > PROTO_MAX_FRAME_BYTES_CEILING) {
        return 0;
    }
    al = fuzz_alloc_make(&fa, 0);
    st = proto_msg_request_decode(text, size, &al, &req, &err);
    size_t needed = fa.used;
    if (st == PROTO_MSG_OK) {
        request_check(&req);
        request_token(&req);
        request_roundtrip(&req);
    } else {
        FUZZ_CHECK(err.status == st);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        str_check(req.id, 1); /* an error reply echoes it */
    }

    /* The daemon's allocator (decide.c: the request pool) must give the same answer. */
    proto_alloc_t pa = jose_pool_allocator(p);
    st2 = proto_msg_request_decode(text, size, &pa, &pooled, &err);
    FUZZ_CHECK(st2 == st);
    fuzz_alloc_free(&fa);
    apr_pool_clear(p);

    if (st == PROTO_MSG_OK && needed > 1) {
        al = fuzz_alloc_make(&fa, needed / 2);
        st = proto_msg_request_decode(text, size, &al, &req, &err);
        FUZZ_CHECK(st == PROTO_MSG_ERR_NO_MEMORY);
        fuzz_alloc_free(&fa);
    }
    return 0;
}
