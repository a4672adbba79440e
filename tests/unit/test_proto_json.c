/* The strict JSON reader: what yajl_tree gets wrong (lengths, duplicates, number text) and the
 * bounds (depth, values, comments only when asked). */
#include "proto/json.h"
#include "proto/limits.h"
#include "harness.h"

static proto_arena_t arena;
static proto_alloc_t alloc;

static proto_json_status_e read_json(const char *text, proto_json_t **out, int comments)
{
    proto_json_options_t opt = {0, 0, comments};
    proto_json_error_t err;
    return proto_json_read(text, strlen(text), &opt, &alloc, out, &err);
}

TEST(json_nul_escape_keeps_string_length)
{
    proto_json_t *v;
    CHECK(read_json("{\"aud\":\"api\\u0000evil\"}", &v, 0) == PROTO_JSON_OK);
    const proto_json_t *aud = proto_json_get(v, "aud");
    CHECK(aud && aud->type == PROTO_JSON_STRING && aud->u.string.len == 8);
    CHECK(proto_str_has_nul(aud->u.string));
}

TEST(json_duplicate_member_refused)
{
    proto_json_t *v;
    CHECK(read_json("{\"alg\":\"RS256\",\"alg\":\"none\"}", &v, 0) == PROTO_JSON_DUPLICATE_KEY);
    CHECK(read_json("{\"a\":{\"x\":1,\"x\":2}}", &v, 0) == PROTO_JSON_DUPLICATE_KEY);
}

TEST(json_duplicate_member_refused_in_large_object)
{
    char doc[4096];
    size_t n = 0;
    n += (size_t)snprintf(doc + n, sizeof(doc) - n, "{");
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "\"k%d\":%d,", i, i);
    }
    n += (size_t)snprintf(doc + n, sizeof(doc) - n, "\"k17\":0}");
    proto_json_t *v;
    CHECK(read_json(doc, &v, 0) == PROTO_JSON_DUPLICATE_KEY);
}

TEST(json_number_text_kept_exactly)
{
    proto_json_t *v;
    CHECK(read_json("{\"exp\":1e26,\"nbf\":1.5,\"iat\":1700000000}", &v, 0) == PROTO_JSON_OK);
    const proto_json_t *exp = proto_json_get(v, "exp");
    CHECK(exp->type == PROTO_JSON_NUMBER && !exp->u.number.is_integer);
    CHECK(exp->u.number.value == 1e26);
    CHECK(proto_json_get(v, "nbf")->u.number.value == 1.5);
    CHECK(proto_json_get(v, "iat")->u.number.is_integer);
    CHECK(read_json("[1e999]", &v, 0) == PROTO_JSON_OK);
    CHECK(!v->u.array.items[0]->u.number.is_finite);
}

TEST(json_depth_limit_refuses_nesting)
{
    char doc[200];
    memset(doc, '[', JSON_MAX_DEPTH + 1);
    memset(doc + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    doc[2 * (JSON_MAX_DEPTH + 1)] = '\0';
    proto_json_t *v;
    CHECK(read_json(doc, &v, 0) == PROTO_JSON_TOO_DEEP);
    doc[JSON_MAX_DEPTH] = ']';
    memset(doc, '[', JSON_MAX_DEPTH);
    memset(doc + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    doc[2 * JSON_MAX_DEPTH] = '\0';
    CHECK(read_json(doc, &v, 0) == PROTO_JSON_OK);
}

TEST(json_value_limit_refuses_huge_arrays)
{
    proto_json_options_t opt = {0, 5, 0};
    proto_json_error_t err;
    proto_json_t *v;
    CHECK(proto_json_read("[1,2,3,4]", 9, &opt, &alloc, &v, &err) == PROTO_JSON_OK);
    CHECK(proto_json_read("[1,2,3,4,5]", 11, &opt, &alloc, &v, &err) == PROTO_JSON_TOO_MANY_VALUES);
}

TEST(json_comments_only_when_allowed)
{
    proto_json_t *v;
    CHECK(read_json("{\"a\":1 /* c */}", &v, 0) == PROTO_JSON_SYNTAX);
    CHECK(read_json("{\"a\":1 /* c */ // d\n}", &v, 1) == PROTO_JSON_OK);
}

TEST(json_trailing_garbage_and_multiple_values_refused)
{
    proto_json_t *v;
    CHECK(read_json("{} {}", &v, 0) == PROTO_JSON_SYNTAX);
    CHECK(read_json("{}x", &v, 0) == PROTO_JSON_SYNTAX);
    CHECK(read_json("", &v, 0) == PROTO_JSON_SYNTAX);
    CHECK(read_json("  {}  \n", &v, 0) == PROTO_JSON_OK);
}

TEST(json_invalid_utf8_refused)
{
    proto_json_t *v;
    CHECK(read_json("{\"a\":\"\xff\xfe\"}", &v, 0) == PROTO_JSON_SYNTAX);
}

TEST(json_error_offset_gives_line)
{
    const char *doc = "{\n  \"a\": 1,\n  \"b\": ,\n}";
    proto_json_options_t opt = {0, 0, 1};
    proto_json_error_t err;
    proto_json_t *v;
    CHECK(proto_json_read(doc, strlen(doc), &opt, &alloc, &v, &err) == PROTO_JSON_SYNTAX);
    CHECK_MSG(proto_json_line_of(doc, strlen(doc), err.offset) == 3, "line %u",
              proto_json_line_of(doc, strlen(doc), err.offset));
}

TEST(json_arena_cap_reports_no_memory)
{
    proto_arena_t small;
    proto_arena_init(&small, 64);
    proto_alloc_t a = proto_arena_allocator(&small);
    proto_json_t *v;
    proto_json_error_t err;
    const char *doc = "[\"aaaaaaaaaaaaaaaaaaaa\",\"bbbbbbbbbbbbbbbbbbbbbbbbbbb\",3,4,5,6]";
    CHECK(proto_json_read(doc, strlen(doc), NULL, &a, &v, &err) == PROTO_JSON_NO_MEMORY);
    proto_arena_clear(&small);
}

int main(void)
{
    proto_arena_init(&arena, 1u << 24);
    alloc = proto_arena_allocator(&arena);
    RUN(json_nul_escape_keeps_string_length);
    RUN(json_duplicate_member_refused);
    RUN(json_duplicate_member_refused_in_large_object);
    RUN(json_number_text_kept_exactly);
    RUN(json_depth_limit_refuses_nesting);
    RUN(json_value_limit_refuses_huge_arrays);
    RUN(json_comments_only_when_allowed);
    RUN(json_trailing_garbage_and_multiple_values_refused);
    RUN(json_invalid_utf8_refused);
    RUN(json_error_offset_gives_line);
    RUN(json_arena_cap_reports_no_memory);
    proto_arena_clear(&arena);
    return harness_report();
}
