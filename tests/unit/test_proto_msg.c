/* The message codec: requests and replies survive encode -> decode; the decoders refuse what a
 * hostile or broken peer could send (named after the attack), and a refused reply never reads as
 * ALLOW. */
#include <stdio.h>

#include "harness.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/msg_gen.h"

static proto_arena_t arena;
static proto_alloc_t alloc;

#define S(lit) PROTO_STR_LIT(lit)

static int str_is(proto_str_t s, const char *want)
{
    return s.ptr != NULL && proto_str_eq_cstr(s, want);
}

/* The body of the single frame in out. */
static proto_str_t body_of(const proto_buf_t *out)
{
    proto_str_t f = {NULL, 0};
    if (proto_frame_next(out, PROTO_MAX_FRAME_BYTES_CEILING, &f) != PROTO_FRAME_READY ||
        proto_buf_used(out) != f.len + 4) {
        f.ptr = NULL;
        f.len = 0;
    }
    return f;
}

static proto_msg_status_e reply_read(const char *json, proto_reply_t *r)
{
    proto_msg_error_t err;
    proto_msg_status_e st =
        proto_msg_reply_decode(json, strlen(json), PROTO_REPLY_DECISION, &alloc, r, &err);
    if (st != PROTO_MSG_OK && (st != err.status || err.message[0] == '\0')) {
        fprintf(stderr, "error status/message not filled for %s\n", json);
        return PROTO_MSG_OK; /* makes the calling CHECK fail */
    }
    return st;
}

/* ---- requests ------------------------------------------------------------------------------ */

TEST(request_token_round_trip)
{
    proto_decision_request_t in, out;
    proto_buf_t buf;
    proto_msg_error_t err;
    memset(&in, 0, sizeof(in));
    in.type = PROTO_REQ_TOKEN;
    in.authorization_token = S("Bearer aaa.bbb.ccc");
    in.method_arn = S("arn:aws:execute-api:local:0:api/prod/GET/orders/42");
    in.id = S("req-7");
    proto_buf_init(&buf, 4096, 1);
    CHECK(proto_msg_request_encode(&buf, 4096, &in, &err) == PROTO_MSG_OK);
    proto_str_t b = body_of(&buf);
    CHECK(b.ptr != NULL);
    CHECK(proto_msg_request_decode(b.ptr, b.len, &alloc, &out, &err) == PROTO_MSG_OK);
    CHECK(out.type == PROTO_REQ_TOKEN);
    CHECK(str_is(out.authorization_token, "Bearer aaa.bbb.ccc"));
    CHECK(str_is(out.method_arn, "arn:aws:execute-api:local:0:api/prod/GET/orders/42"));
    CHECK(str_is(out.id, "req-7") && out.id_json && out.id_json->type == PROTO_JSON_STRING);
    proto_buf_free(&buf);
}

TEST(request_request_round_trip_with_joined_repeats)
{
    proto_pair_t headers[] = {
        {S("Authorization"), S("Bearer t1"), NULL},
        {S("Accept"), S("a/b"), NULL},
        {S("authorization"), S("Bearer t2"), NULL},
        {S("Cookie"), S("a=1"), NULL},
        {S("cookie"), S("b=2"), NULL},
    };
    proto_pair_t query[] = {
        {S("tok"), S("x"), NULL}, {S("Tok"), S("y"), NULL}, {S("tok"), S("z"), NULL}};
    proto_decision_request_t in, out;
    proto_buf_t buf;
    proto_msg_error_t err;
    proto_str_t v;
    memset(&in, 0, sizeof(in));
    in.type = PROTO_REQ_REQUEST;
    in.method_arn = S("arn:aws:execute-api:local:0:api/prod/GET/orders");
    in.http_method = S("GET");
    in.path = S("/orders");
    in.headers = headers;
    in.header_count = 5;
    in.query = query;
    in.query_count = 3;
    in.source_ip = S("192.0.2.1");
    proto_buf_init(&buf, 4096, 1);
    CHECK(proto_msg_request_encode(&buf, 4096, &in, &err) == PROTO_MSG_OK);
    proto_str_t b = body_of(&buf);
    if (proto_msg_request_decode(b.ptr, b.len, &alloc, &out, &err) != PROTO_MSG_OK) {
        CHECK_MSG(0, "decode: %s", err.message);
        proto_buf_free(&buf);
        return;
    }
    CHECK(out.type == PROTO_REQ_REQUEST && str_is(out.http_method, "GET"));
    CHECK(str_is(out.path, "/orders") && str_is(out.source_ip, "192.0.2.1"));
    /* Two Authorization headers become one malformed value, not two candidates. */
    CHECK(out.header_count == 3);
    CHECK(proto_pairs_find_ci(out.headers, out.header_count, S("AUTHORIZATION"), &v) == 1);
    CHECK(str_is(v, "Bearer t1, Bearer t2"));
    CHECK(proto_pairs_find_ci(out.headers, out.header_count, S("cookie"), &v) == 1);
    CHECK(str_is(v, "a=1; b=2"));
    /* Query names are case-sensitive; repeats join with ",". */
    CHECK(out.query_count == 2);
    CHECK(str_is(out.query[0].name, "tok") && str_is(out.query[0].value, "x,z"));
    CHECK(str_is(out.query[1].name, "Tok") && str_is(out.query[1].value, "y"));
    proto_buf_free(&buf);
}

/* Encodes a REQUEST event carrying these headers and decodes it again into *out (headers read
 * from buf, which the caller frees). Returns 1 when both steps succeeded. */
static int request_headers_round_trip(const proto_pair_t *headers, size_t count, proto_buf_t *buf,
                                      proto_decision_request_t *out)
{
    proto_decision_request_t in;
    proto_msg_error_t err;
    memset(&in, 0, sizeof(in));
    memset(out, 0, sizeof(*out));
    in.type = PROTO_REQ_REQUEST;
    in.method_arn = S("arn:x");
    in.headers = headers;
    in.header_count = count;
    proto_buf_init(buf, 4096, 1);
    if (proto_msg_request_encode(buf, 4096, &in, &err) != PROTO_MSG_OK) {
        return 0;
    }
    proto_str_t b = body_of(buf);
    return proto_msg_request_decode(b.ptr, b.len, &alloc, out, &err) == PROTO_MSG_OK;
}

TEST(request_header_bytes_not_utf8_sent_as_replacement)
{
    proto_pair_t headers[] = {{S("X-Latin1"), S("caf\xe9"), NULL},
                              {S("Authorization"), S("Bearer \xc0\x80"), NULL}};
    proto_decision_request_t out;
    proto_buf_t buf;
    CHECK(request_headers_round_trip(headers, 2, &buf, &out));
    CHECK(out.header_count == 2);
    if (out.header_count != 2) {
        proto_buf_free(&buf);
        return;
    }
    CHECK(str_is(out.headers[0].value, "caf\xef\xbf\xbd"));
    /* An overlong NUL must not arrive as a NUL (or as anything a token could be). */
    CHECK(str_is(out.headers[1].value, "Bearer \xef\xbf\xbd\xef\xbf\xbd"));
    proto_buf_free(&buf);
}

/* The same repair (one U+FFFD per stray byte) when repeats are joined through scratch, and valid
 * multi-byte sequences between ASCII runs left alone. */
TEST(request_joined_header_bytes_not_utf8_sent_as_replacement)
{
    proto_pair_t headers[] = {{S("X-A"), S("a\xff"), NULL},
                              {S("x-a"),
                               S("b\xc3\xa9"
                                 "c\xe2\x82"),
                               NULL},
                              {S("X-B"),
                               S("\xe2\x82\xac"
                                 "1\xf0\x9f\x98\x80"),
                               NULL}};
    proto_decision_request_t out;
    proto_buf_t buf;
    proto_str_t v;
    CHECK(request_headers_round_trip(headers, 3, &buf, &out));
    CHECK(proto_pairs_find_ci(out.headers, out.header_count, S("x-a"), &v) == 1);
    CHECK(str_is(v, "a\xef\xbf\xbd, b\xc3\xa9"
                    "c\xef\xbf\xbd\xef\xbf\xbd"));
    CHECK(proto_pairs_find_ci(out.headers, out.header_count, S("x-b"), &v) == 1);
    CHECK(str_is(v, "\xe2\x82\xac"
                    "1\xf0\x9f\x98\x80"));
    proto_buf_free(&buf);
}

/* Found by fuzz_request: names that differ as bytes but are the same once repaired ("\xc0\x80" is
 * written as two U+FFFD) must be joined, or the object holds a member twice and the daemon
 * refuses the frame. */
TEST(request_pair_names_equal_once_repaired_are_joined)
{
    proto_pair_t query[] = {{S("a\xc0\x80"), S("1"), NULL},
                            {S("a\xef\xbf\xbd\xef\xbf\xbd"), S("2"), NULL},
                            {S("A\xc0\x80"), S("3"), NULL}};
    proto_pair_t headers[] = {{S("X-\xff"), S("1"), NULL}, {S("x-\xfe"), S("2"), NULL}};
    proto_decision_request_t in, out;
    proto_buf_t buf;
    proto_msg_error_t err;
    proto_str_t v;
    memset(&in, 0, sizeof(in));
    in.type = PROTO_REQ_REQUEST;
    in.method_arn = S("arn:x");
    in.query = query;
    in.query_count = 3;
    in.headers = headers;
    in.header_count = 2;
    proto_buf_init(&buf, 4096, 1);
    CHECK(proto_msg_request_encode(&buf, 4096, &in, &err) == PROTO_MSG_OK);
    proto_str_t b = body_of(&buf);
    CHECK(proto_msg_request_decode(b.ptr, b.len, &alloc, &out, &err) == PROTO_MSG_OK);
    CHECK(out.query_count == 2 && out.header_count == 1);
    if (out.query_count == 2 && out.header_count == 1) {
        CHECK(str_is(out.query[0].value, "1,2")); /* query names compare exactly: "A" is apart */
        CHECK(str_is(out.query[1].value, "3"));
        CHECK(proto_pairs_find_ci(out.headers, 1, S("x-\xef\xbf\xbd"), &v) == 1);
        CHECK(str_is(v, "1, 2"));
    }
    proto_buf_free(&buf);
}

/* Repeats far apart and in mixed case are joined in their order of arrival, whatever the sort
 * that groups them does; thousands of distinct names each stay their own member. */
TEST(request_pairs_joined_in_order_of_arrival_among_many)
{
    enum { N = 3000 };
    static proto_pair_t headers[N + 3];
    static char names[N][16];
    proto_decision_request_t in, out;
    proto_buf_t buf;
    proto_msg_error_t err;
    proto_str_t v;
    headers[0] = (proto_pair_t){S("X-Rep"), S("first"), NULL};
    for (int i = 0; i < N; i++) {
        int n = snprintf(names[i], sizeof(names[i]), "h%d", N - i);
        headers[i + 1] = (proto_pair_t){proto_str_make(names[i], (size_t)n), S("v"), NULL};
    }
    headers[N + 1] = (proto_pair_t){S("x-REP"), S("second"), NULL};
    headers[N + 2] = (proto_pair_t){S("x-rep"), S("third"), NULL};
    memset(&in, 0, sizeof(in));
    in.type = PROTO_REQ_REQUEST;
    in.method_arn = S("arn:x");
    in.headers = headers;
    in.header_count = N + 3;
    proto_buf_init(&buf, 1u << 20, 1);
    CHECK(proto_msg_request_encode(&buf, 1u << 20, &in, &err) == PROTO_MSG_OK);
    proto_str_t b = body_of(&buf);
    CHECK(proto_msg_request_decode(b.ptr, b.len, &alloc, &out, &err) == PROTO_MSG_OK);
    CHECK(out.header_count == N + 1);
    CHECK(proto_pairs_find_ci(out.headers, out.header_count, S("x-rep"), &v) == 1);
    CHECK(str_is(v, "first, second, third"));
    CHECK(proto_pairs_find_ci(out.headers, out.header_count, S("H1"), &v) == 1);
    CHECK(proto_pairs_find_ci(out.headers, out.header_count, S("h3000"), &v) == 1);
    /* The first member written is the first to arrive. */
    static const char head[] = "\"headers\":{\"X-Rep\":\"first, second, third\",\"h3000\":";
    CHECK(memmem(b.ptr, b.len, head, sizeof(head) - 1) != NULL);
    proto_buf_free(&buf);
}

TEST(request_encode_refuses_nul_or_bad_utf8_in_method_arn)
{
    proto_decision_request_t in;
    proto_buf_t buf;
    proto_msg_error_t err;
    memset(&in, 0, sizeof(in));
    in.type = PROTO_REQ_TOKEN;
    in.method_arn = proto_str_make("arn:x/GET/a\0/DELETE/b", 21);
    proto_buf_init(&buf, 4096, 1);
    CHECK(proto_msg_request_encode(&buf, 4096, &in, &err) == PROTO_MSG_ERR_VALUE);
    CHECK(strstr(err.message, "methodArn") != NULL);
    in.method_arn = S("arn:x/GET/\xed\xa0\x80");
    CHECK(proto_msg_request_encode(&buf, 4096, &in, &err) == PROTO_MSG_ERR_VALUE);
    CHECK(proto_buf_used(&buf) == 0);
    in.method_arn.ptr = NULL;
    CHECK(proto_msg_request_encode(&buf, 4096, &in, &err) == PROTO_MSG_ERR_MISSING);
    proto_buf_free(&buf);
}

TEST(request_encode_past_cap_leaves_buffer_as_it_was)
{
    char big[300];
    proto_decision_request_t in;
    proto_buf_t buf;
    proto_msg_error_t err;
    memset(big, 'a', sizeof(big));
    memset(&in, 0, sizeof(in));
    in.type = PROTO_REQ_TOKEN;
    in.method_arn = S("arn:x");
    proto_buf_init(&buf, 4096, 1);
    CHECK(proto_msg_request_encode(&buf, 4096, &in, &err) == PROTO_MSG_OK);
    size_t before = proto_buf_used(&buf);
    in.authorization_token = proto_str_make(big, sizeof(big));
    CHECK(proto_msg_request_encode(&buf, 256, &in, &err) == PROTO_MSG_ERR_TOO_LARGE);
    CHECK(proto_buf_used(&buf) == before);
    proto_buf_free(&buf);
}

static proto_msg_status_e request_read(const char *json, proto_decision_request_t *r,
                                       proto_msg_error_t *err)
{
    return proto_msg_request_decode(json, strlen(json), &alloc, r, err);
}

TEST(request_decode_api_gateway_event_with_nulls_and_extras)
{
    proto_decision_request_t r;
    proto_msg_error_t err;
    CHECK(request_read("{\"type\":\"REQUEST\",\"methodArn\":\"arn:x\",\"resource\":\"/{p+}\","
                       "\"headers\":null,\"queryStringParameters\":null,\"pathParameters\":null,"
                       "\"stageVariables\":null,\"multiValueHeaders\":{\"a\":[\"b\"]},"
                       "\"requestContext\":{\"accountId\":\"0\",\"identity\":{\"sourceIp\":"
                       "\"198.51.100.7\",\"userAgent\":\"x\"}}}",
                       &r, &err) == PROTO_MSG_OK);
    CHECK(r.header_count == 0 && r.query_count == 0);
    CHECK(str_is(r.source_ip, "198.51.100.7"));
}

TEST(request_decode_wrong_types_name_the_member)
{
    proto_decision_request_t r;
    proto_msg_error_t err;
    CHECK(request_read("{\"type\":\"REQUEST\",\"methodArn\":\"a\",\"headers\":\"x\"}", &r, &err) ==
          PROTO_MSG_ERR_TYPE);
    CHECK(strstr(err.message, "headers") != NULL);
    CHECK(request_read("{\"type\":\"REQUEST\",\"methodArn\":\"a\",\"headers\":{\"X-N\":1}}", &r,
                       &err) == PROTO_MSG_ERR_TYPE);
    CHECK(strstr(err.message, "headers.X-N") != NULL);
    CHECK(request_read("{\"type\":\"TOKEN\",\"methodArn\":7}", &r, &err) == PROTO_MSG_ERR_TYPE);
    CHECK(request_read("{\"type\":\"TOKEN\",\"methodArn\":\"a\",\"authorizationToken\":[]}", &r,
                       &err) == PROTO_MSG_ERR_TYPE);
    CHECK(request_read("{\"type\":\"TOKEN\",\"methodArn\":\"a\",\"id\":{}}", &r, &err) ==
          PROTO_MSG_ERR_TYPE);
    CHECK(request_read("{\"type\":\"REQUEST\",\"methodArn\":\"a\",\"requestContext\":"
                       "{\"identity\":{\"sourceIp\":1}}}",
                       &r, &err) == PROTO_MSG_ERR_TYPE);
    CHECK(strstr(err.message, "requestContext.identity.sourceIp") != NULL);
}

TEST(request_decode_missing_and_unknown_type)
{
    proto_decision_request_t r;
    proto_msg_error_t err;
    CHECK(request_read("{\"methodArn\":\"a\"}", &r, &err) == PROTO_MSG_ERR_MISSING);
    CHECK(request_read("{\"type\":\"TOKEN\"}", &r, &err) == PROTO_MSG_ERR_MISSING);
    CHECK(strstr(err.message, "methodArn") != NULL);
    CHECK(request_read("{\"type\":\"token\",\"methodArn\":\"a\",\"id\":9}", &r, &err) ==
          PROTO_MSG_ERR_VALUE);
    CHECK(r.type == PROTO_REQ_UNKNOWN && str_is(r.type_name, "token"));
    /* The id was read first, so the error reply can still echo it. */
    CHECK(r.id_json && str_is(r.id, "9"));
}

TEST(request_decode_token_absent_is_not_an_error)
{
    proto_decision_request_t r;
    proto_msg_error_t err;
    CHECK(request_read("{\"type\":\"TOKEN\",\"methodArn\":\"a\"}", &r, &err) == PROTO_MSG_OK);
    CHECK(r.authorization_token.ptr == NULL);
}

TEST(request_nul_in_method_arn_refused)
{
    proto_decision_request_t r;
    proto_msg_error_t err;
    CHECK(request_read("{\"type\":\"TOKEN\",\"methodArn\":\"arn/GET/ok\\u0000/DELETE/x\"}", &r,
                       &err) == PROTO_MSG_ERR_VALUE);
}

TEST(request_not_an_object_or_not_json)
{
    proto_decision_request_t r;
    proto_msg_error_t err;
    CHECK(request_read("[\"TOKEN\"]", &r, &err) == PROTO_MSG_ERR_NOT_OBJECT);
    CHECK(request_read("{\"type\":\"TOKEN\",", &r, &err) == PROTO_MSG_ERR_JSON);
    CHECK(request_read("{\"type\":\"TOKEN\",\"methodArn\":\"a\"} {}", &r, &err) ==
          PROTO_MSG_ERR_JSON);
    CHECK(request_read("{\"type\":\"TOKEN\",\"type\":\"REQUEST\",\"methodArn\":\"a\"}", &r, &err) ==
          PROTO_MSG_ERR_JSON);
}

/* ---- admin ----------------------------------------------------------------------------------- */

TEST(admin_round_trips)
{
    proto_admin_request_t in, out;
    proto_buf_t buf;
    proto_msg_error_t err;
    proto_buf_init(&buf, 4096, 1);
    memset(&in, 0, sizeof(in));
    in.cmd = PROTO_ADMIN_FLUSH;
    in.principal = S("user-123");
    in.id = S("1");
    CHECK(proto_msg_admin_encode(&buf, 4096, &in, &err) == PROTO_MSG_OK);
    proto_str_t b = body_of(&buf);
    CHECK(proto_msg_admin_decode(b.ptr, b.len, &alloc, &out, &err) == PROTO_MSG_OK);
    CHECK(out.cmd == PROTO_ADMIN_FLUSH && str_is(out.principal, "user-123"));
    CHECK(out.token.ptr == NULL && str_is(out.id, "1"));
    proto_buf_reset(&buf);
    memset(&in, 0, sizeof(in));
    in.cmd = PROTO_ADMIN_REFRESH;
    in.issuer = S("https://idp.example.com/");
    CHECK(proto_msg_admin_encode(&buf, 4096, &in, &err) == PROTO_MSG_OK);
    b = body_of(&buf);
    CHECK(proto_msg_admin_decode(b.ptr, b.len, &alloc, &out, &err) == PROTO_MSG_OK);
    CHECK(out.cmd == PROTO_ADMIN_REFRESH && str_is(out.issuer, "https://idp.example.com/"));
    proto_buf_free(&buf);
}

static proto_msg_status_e admin_read(const char *json)
{
    proto_admin_request_t r;
    proto_msg_error_t err;
    return proto_msg_admin_decode(json, strlen(json), &alloc, &r, &err);
}

TEST(admin_misspelt_principal_does_not_flush_everything)
{
    CHECK(admin_read("{\"cmd\":\"flush\",\"principle\":\"user-1\"}") == PROTO_MSG_ERR_VALUE);
    CHECK(admin_read("{\"cmd\":\"flush\"}") == PROTO_MSG_OK);
}

TEST(admin_arguments_must_fit_the_command)
{
    CHECK(admin_read("{\"cmd\":\"flush\",\"principal\":\"a\",\"token\":\"b\"}") ==
          PROTO_MSG_ERR_VALUE);
    CHECK(admin_read("{\"cmd\":\"refresh\"}") == PROTO_MSG_ERR_MISSING);
    CHECK(admin_read("{\"cmd\":\"stats\",\"issuer\":\"x\"}") == PROTO_MSG_ERR_VALUE);
    CHECK(admin_read("{\"cmd\":\"reload\",\"token\":\"x\"}") == PROTO_MSG_ERR_VALUE);
    CHECK(admin_read("{\"cmd\":\"FLUSH\"}") == PROTO_MSG_ERR_VALUE);
    CHECK(admin_read("{\"cmd\":1}") == PROTO_MSG_ERR_TYPE);
    CHECK(admin_read("{\"cmd\":\"flush\",\"principal\":\"a\\u0000b\"}") == PROTO_MSG_ERR_VALUE);

    proto_admin_request_t in;
    proto_buf_t buf;
    proto_msg_error_t err;
    proto_buf_init(&buf, 4096, 1);
    memset(&in, 0, sizeof(in));
    in.cmd = PROTO_ADMIN_REFRESH;
    CHECK(proto_msg_admin_encode(&buf, 4096, &in, &err) == PROTO_MSG_ERR_MISSING);
    in.cmd = PROTO_ADMIN_UNKNOWN;
    CHECK(proto_msg_admin_encode(&buf, 4096, &in, &err) == PROTO_MSG_ERR_VALUE);
    CHECK(proto_buf_used(&buf) == 0);
    proto_buf_free(&buf);
}

/* ---- replies --------------------------------------------------------------------------------- */

TEST(reply_round_trip_with_policy_context_and_id_echo)
{
    proto_str_t res[] = {S("arn:aws:execute-api:local:0:api/prod/GET/orders*")};
    proto_str_t deny[] = {S("arn:aws:execute-api:local:0:api/prod/DELETE/*")};
    proto_policy_statement_t stmts[] = {{1, res, 1}, {0, deny, 1}};
    proto_json_t *groups, *id;
    proto_json_error_t jerr;
    CHECK(proto_json_read("[\"a\",{\"b\":1e400}]", 17, NULL, &alloc, &groups, &jerr) ==
          PROTO_JSON_OK);
    CHECK(proto_json_read("42", 2, NULL, &alloc, &id, &jerr) == PROTO_JSON_OK);
    proto_pair_t ctx[] = {{S("sub"), S("user-123"), NULL}, {S("groups"), S(""), groups}};
    proto_reply_t in, out;
    proto_buf_t buf;
    proto_msg_error_t err;
    memset(&in, 0, sizeof(in));
    in.verdict = PROTO_VERDICT_ALLOW;
    in.status = 200;
    in.principal_id = S("user-123");
    in.has_policy = 1;
    in.statements = stmts;
    in.statement_count = 2;
    in.context = ctx;
    in.context_count = 2;
    in.has_cached = 1;
    in.cached = 1;
    in.has_ttl = 1;
    in.ttl = 300;
    in.id_json = id;
    proto_buf_init(&buf, 4096, 0);
    CHECK(proto_msg_reply_encode(&buf, 4096, &in, &err) == PROTO_MSG_OK);
    proto_str_t b = body_of(&buf);
    CHECK(b.ptr && memmem(b.ptr, b.len, "\"Version\":\"2012-10-17\"", 22) != NULL);
    CHECK(memmem(b.ptr, b.len, "\"Effect\":\"Deny\"", 15) != NULL);
    CHECK(proto_msg_reply_decode(b.ptr, b.len, PROTO_REPLY_DECISION, &alloc, &out, &err) ==
          PROTO_MSG_OK);
    CHECK(out.verdict == PROTO_VERDICT_ALLOW && out.status == 200);
    CHECK(str_is(out.principal_id, "user-123"));
    CHECK(out.context_count == 2 && str_is(out.context[0].value, "user-123"));
    /* Claims keep their types, numbers their exact text. */
    CHECK(str_is(out.context[1].value, "[\"a\",{\"b\":1e400}]"));
    CHECK(out.has_cached && out.cached && out.has_ttl && out.ttl == 300);
    CHECK(str_is(out.id, "42") && out.id_json->type == PROTO_JSON_NUMBER);
    CHECK(out.raw.len == b.len && memcmp(out.raw.ptr, b.ptr, b.len) == 0);
    proto_buf_free(&buf);
}

TEST(reply_error_helper_round_trip)
{
    proto_buf_t buf;
    proto_msg_error_t err;
    proto_reply_t out;
    proto_buf_init(&buf, 4096, 0);
    CHECK(proto_msg_error_reply_encode(&buf, 4096, 500, S("bad_request"),
                                       S("\"type\": unknown \xff"), NULL, &err) == PROTO_MSG_OK);
    proto_str_t b = body_of(&buf);
    CHECK(proto_msg_reply_decode(b.ptr, b.len, PROTO_REPLY_DECISION, &alloc, &out, &err) ==
          PROTO_MSG_OK);
    CHECK(out.verdict == PROTO_VERDICT_ERROR && out.status == 500);
    CHECK(str_is(out.reason, "bad_request"));
    CHECK(str_is(out.message, "\"type\": unknown \xef\xbf\xbd"));
    proto_buf_reset(&buf);
    CHECK(proto_msg_error_reply_encode(&buf, 4096, 200, S("x"), S("y"), NULL, &err) ==
          PROTO_MSG_ERR_VALUE);
    CHECK(proto_buf_used(&buf) == 0);
    proto_buf_free(&buf);
}

TEST(reply_encode_refuses_allow_with_error_status)
{
    proto_reply_t in;
    proto_buf_t buf;
    proto_msg_error_t err;
    memset(&in, 0, sizeof(in));
    in.verdict = PROTO_VERDICT_ALLOW;
    in.status = 500;
    proto_buf_init(&buf, 4096, 0);
    CHECK(proto_msg_reply_encode(&buf, 4096, &in, &err) == PROTO_MSG_ERR_VALUE);
    in.status = 200;
    in.principal_id = proto_str_make("a\0b", 3);
    CHECK(proto_msg_reply_encode(&buf, 4096, &in, &err) == PROTO_MSG_ERR_VALUE);
    CHECK(proto_buf_used(&buf) == 0);
    proto_buf_free(&buf);
}

TEST(reply_missing_verdict_refused)
{
    proto_reply_t r;
    CHECK(reply_read("{\"status\":200,\"principalId\":\"u\"}", &r) == PROTO_MSG_ERR_MISSING);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
}

TEST(reply_missing_status_refused)
{
    proto_reply_t r;
    CHECK(reply_read("{\"verdict\":\"ALLOW\"}", &r) == PROTO_MSG_ERR_MISSING);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
}

TEST(reply_unknown_verdict_refused)
{
    proto_reply_t r;
    CHECK(reply_read("{\"verdict\":\"allow\",\"status\":200}", &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"ALLOW \",\"status\":200}", &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"PERMIT\",\"status\":200}", &r) == PROTO_MSG_ERR_VALUE);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
}

TEST(reply_allow_with_wrong_types_refused)
{
    static const char *const bad[] = {
        "{\"verdict\":\"ALLOW\",\"status\":\"200\"}",
        "{\"verdict\":\"ALLOW\",\"status\":200.0}",
        "{\"verdict\":\"ALLOW\",\"status\":2e2}",
        "{\"verdict\":true,\"status\":200}",
        "{\"verdict\":[\"ALLOW\"],\"status\":200}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"principalId\":123}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"context\":\"sub=u\"}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"context\":[]}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"cached\":\"false\"}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"ttl\":\"300\"}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"ttl\":-1}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"ttl\":1.5}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"ttl\":99999999999999999999}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"policyDocument\":\"*\"}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"id\":[1]}",
        "{\"verdict\":\"ALLOW\",\"status\":200,\"reason\":{}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        proto_reply_t r;
        proto_msg_status_e st = reply_read(bad[i], &r);
        CHECK_MSG(st == PROTO_MSG_ERR_TYPE || st == PROTO_MSG_ERR_VALUE, "%s -> %s", bad[i],
                  proto_msg_status_name(st));
        CHECK_MSG(r.verdict == PROTO_VERDICT_ERROR, "%s read as a decision", bad[i]);
    }
}

TEST(reply_allow_with_deny_status_refused)
{
    proto_reply_t r;
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":403}", &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"DENY\",\"status\":200}", &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"ERROR\",\"status\":200}", &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"UNAUTHORIZED\",\"status\":401}", &r) == PROTO_MSG_OK);
    CHECK(reply_read("{\"verdict\":\"ERROR\",\"status\":503}", &r) == PROTO_MSG_OK);
}

TEST(reply_duplicate_verdict_refused)
{
    proto_reply_t r;
    /* Two parsers could each pick a different one: refuse instead of choosing. */
    CHECK(reply_read("{\"verdict\":\"DENY\",\"status\":403,\"verdict\":\"ALLOW\"}", &r) ==
          PROTO_MSG_ERR_JSON);
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":200,\"context\":{\"sub\":\"a\","
                     "\"sub\":\"admin\"}}",
                     &r) == PROTO_MSG_ERR_JSON);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
}

TEST(reply_deep_nesting_refused)
{
    char doc[1024];
    size_t n = (size_t)snprintf(doc, sizeof(doc),
                                "{\"verdict\":\"ALLOW\",\"status\":200,\"context\":{\"x\":");
    for (int i = 0; i < 200; i++) {
        doc[n++] = '[';
    }
    for (int i = 0; i < 200; i++) {
        doc[n++] = ']';
    }
    doc[n++] = '}';
    doc[n++] = '}';
    doc[n] = '\0';
    proto_reply_t r;
    CHECK(reply_read(doc, &r) == PROTO_MSG_ERR_JSON);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
}

TEST(reply_nul_in_principal_refused)
{
    proto_reply_t r;
    /* As a C string "admin\0evil" would be "admin": REMOTE_USER spoofing. */
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":200,\"principalId\":\"admin\\u0000evil\"}",
                     &r) == PROTO_MSG_ERR_VALUE);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
}

TEST(reply_nul_in_context_refused)
{
    proto_reply_t r;
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":200,\"context\":{\"role\":\"user\\u0000"
                     "admin\"}}",
                     &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":200,\"context\":{\"ro\\u0000le\":\"a\"}}",
                     &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"ERROR\",\"status\":500,\"message\":\"a\\u0000b\"}", &r) ==
          PROTO_MSG_ERR_VALUE);
}

/* A context of n members "kI":I as a reply document (caller frees). */
static char *reply_with_context(size_t n)
{
    size_t cap = 64 + n * 24;
    char *doc = malloc(cap);
    size_t o = (size_t)snprintf(doc, cap, "{\"verdict\":\"ALLOW\",\"status\":200,\"context\":{");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(doc + o, cap - o, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    }
    snprintf(doc + o, cap - o, "}}");
    return doc;
}

TEST(reply_huge_context_refused_and_large_one_kept)
{
    proto_reply_t r;
    char *doc = reply_with_context(JSON_MAX_NODES + 1);
    CHECK(reply_read(doc, &r) == PROTO_MSG_ERR_JSON);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
    free(doc);
    doc = reply_with_context(2000);
    CHECK(reply_read(doc, &r) == PROTO_MSG_OK);
    CHECK(r.context_count == 2000 && str_is(r.context[1999].value, "1999"));
    free(doc);
}

TEST(reply_over_allocator_cap_refused)
{
    proto_arena_t small;
    proto_alloc_t a;
    proto_reply_t r;
    proto_msg_error_t err;
    char *doc = reply_with_context(500);
    proto_arena_init(&small, 4096);
    a = proto_arena_allocator(&small);
    CHECK(proto_msg_reply_decode(doc, strlen(doc), PROTO_REPLY_DECISION, &a, &r, &err) ==
          PROTO_MSG_ERR_NO_MEMORY);
    CHECK(r.verdict == PROTO_VERDICT_ERROR);
    proto_arena_clear(&small);
    free(doc);
}

TEST(reply_not_one_object_refused)
{
    proto_reply_t r;
    CHECK(reply_read("\"ALLOW\"", &r) == PROTO_MSG_ERR_NOT_OBJECT);
    CHECK(reply_read("[{\"verdict\":\"ALLOW\",\"status\":200}]", &r) == PROTO_MSG_ERR_NOT_OBJECT);
    CHECK(reply_read("{\"verdict\":\"ERROR\",\"status\":503}{\"verdict\":\"ALLOW\",\"status\":200}",
                     &r) == PROTO_MSG_ERR_JSON);
    CHECK(reply_read("", &r) == PROTO_MSG_ERR_JSON);
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":200,}", &r) == PROTO_MSG_ERR_JSON);
    CHECK(reply_read("{\"verdict\":\"ALLOW\",/*x*/\"status\":200}", &r) == PROTO_MSG_ERR_JSON);
}

TEST(reply_unknown_members_ignored)
{
    proto_reply_t r;
    CHECK(reply_read("{\"verdict\":\"DENY\",\"status\":403,\"newField\":{\"x\":[1]},"
                     "\"policyDocument\":{\"Version\":\"2012-10-17\",\"Statement\":[]}}",
                     &r) == PROTO_MSG_OK);
    CHECK(r.verdict == PROTO_VERDICT_DENY && r.status == 403);
}

TEST(reply_context_values_rendered_as_json_text)
{
    proto_reply_t r;
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":200,\"context\":{\"n\":-42,\"b\":true,"
                     "\"z\":null,\"o\":{\"a\":[1,\"x\\u0000\"]}}}",
                     &r) == PROTO_MSG_ERR_VALUE);
    CHECK(reply_read("{\"verdict\":\"ALLOW\",\"status\":200,\"context\":{\"n\":-42,\"b\":true,"
                     "\"z\":null,\"o\":{\"a\":[1,\"x\"]}}}",
                     &r) == PROTO_MSG_OK);
    CHECK(r.context_count == 4);
    CHECK(str_is(r.context[0].value, "-42") && str_is(r.context[1].value, "true"));
    CHECK(str_is(r.context[2].value, "null"));
    CHECK(str_is(r.context[3].value, "{\"a\":[1,\"x\"]}"));
}

static proto_msg_status_e admin_reply_read(const char *json, proto_reply_t *r)
{
    proto_msg_error_t err;
    return proto_msg_reply_decode(json, strlen(json), PROTO_REPLY_ADMIN, &alloc, r, &err);
}

TEST(admin_reply_shapes)
{
    proto_reply_t r;
    CHECK(admin_reply_read("{\"ok\":true,\"entries\":3}", &r) == PROTO_MSG_OK && r.ok);
    CHECK(admin_reply_read("{\"ok\":false,\"error\":\"unknown issuer\"}", &r) == PROTO_MSG_OK);
    CHECK(!r.ok && str_is(r.error, "unknown issuer"));
    CHECK(admin_reply_read("{\"ok\":\"yes\"}", &r) == PROTO_MSG_ERR_TYPE && !r.ok);
    CHECK(admin_reply_read("{}", &r) == PROTO_MSG_ERR_MISSING);
    CHECK(admin_reply_read("{\"verdict\":\"ERROR\",\"status\":500,\"reason\":\"bad_request\"}",
                           &r) == PROTO_MSG_OK);
    CHECK(!r.ok && r.has_verdict && r.verdict == PROTO_VERDICT_ERROR);
    CHECK(admin_reply_read("{\"ok\":true,\"verdict\":\"ERROR\",\"status\":500}", &r) ==
          PROTO_MSG_ERR_VALUE);
    CHECK(!r.ok);
}

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

TEST(utf8_overlong_surrogate_and_past_max_refused)
{
    CHECK(proto_msg_utf8_valid(S("plain ascii")));
    CHECK(proto_msg_utf8_valid(S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf")));
    CHECK(!proto_msg_utf8_valid(S("\xc0\x80")));         /* overlong NUL */
    CHECK(!proto_msg_utf8_valid(S("\xe0\x80\xaf")));     /* overlong '/' */
    CHECK(!proto_msg_utf8_valid(S("\xed\xa0\x80")));     /* surrogate */
    CHECK(!proto_msg_utf8_valid(S("\xf4\x90\x80\x80"))); /* past U+10FFFF */
    CHECK(!proto_msg_utf8_valid(S("\xe2\x82")));         /* truncated */
    CHECK(!proto_msg_utf8_valid(S("\x80")));             /* lone continuation */
}

TEST(pairs_find_ci_counts_every_spelling)
{
    proto_pair_t p[] = {{S("Authorization"), S("a"), NULL},
                        {S("X"), S("x"), NULL},
                        {S("AUTHORIZATION"), S("b"), NULL}};
    proto_str_t v = {NULL, 0};
    CHECK(proto_pairs_find_ci(p, 3, S("authorization"), &v) == 2 && str_is(v, "a"));
    CHECK(proto_pairs_find_ci(p, 3, S("authorizatio"), NULL) == 0);
}

int main(void)
{
    proto_arena_init(&arena, 64u * 1024 * 1024);
    alloc = proto_arena_allocator(&arena);

    RUN(request_token_round_trip);
    RUN(request_request_round_trip_with_joined_repeats);
    RUN(request_header_bytes_not_utf8_sent_as_replacement);
    RUN(request_joined_header_bytes_not_utf8_sent_as_replacement);
    RUN(request_pair_names_equal_once_repaired_are_joined);
    RUN(request_pairs_joined_in_order_of_arrival_among_many);
    RUN(request_encode_refuses_nul_or_bad_utf8_in_method_arn);
    RUN(request_encode_past_cap_leaves_buffer_as_it_was);
    RUN(request_decode_api_gateway_event_with_nulls_and_extras);
    RUN(request_decode_wrong_types_name_the_member);
    RUN(request_decode_missing_and_unknown_type);
    RUN(request_decode_token_absent_is_not_an_error);
    RUN(request_nul_in_method_arn_refused);
    RUN(request_not_an_object_or_not_json);
    RUN(admin_round_trips);
    RUN(admin_misspelt_principal_does_not_flush_everything);
    RUN(admin_arguments_must_fit_the_command);
    RUN(reply_round_trip_with_policy_context_and_id_echo);
    RUN(reply_error_helper_round_trip);
    RUN(reply_encode_refuses_allow_with_error_status);
    RUN(reply_missing_verdict_refused);
    RUN(reply_missing_status_refused);
    RUN(reply_unknown_verdict_refused);
    RUN(reply_allow_with_wrong_types_refused);
    RUN(reply_allow_with_deny_status_refused);
    RUN(reply_duplicate_verdict_refused);
    RUN(reply_deep_nesting_refused);
    RUN(reply_nul_in_principal_refused);
    RUN(reply_nul_in_context_refused);
    RUN(reply_huge_context_refused_and_large_one_kept);
    RUN(reply_over_allocator_cap_refused);
    RUN(reply_not_one_object_refused);
    RUN(reply_unknown_members_ignored);
    RUN(reply_context_values_rendered_as_json_text);
    RUN(admin_reply_shapes);
    RUN(utf8_overlong_surrogate_and_past_max_refused);
    RUN(pairs_find_ci_counts_every_spelling);
    proto_arena_clear(&arena);
    return harness_report();
}
