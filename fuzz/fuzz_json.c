/* Fuzzes the strict JSON reader (proto/json.h) that every outside document goes through. The
 * first input byte picks the options: comments (as for the config) or not, a lowered depth or
 * value limit, and how far into the parse a capped allocator runs out. A document read is
 * checked against the reader's promises (limits, no duplicate names, exact lengths), written
 * back with proto_json_write() and read again to the same tree; the same document under a cap
 * below what it needed must fail with PROTO_JSON_NO_MEMORY, never succeed half-read. */
#include <string.h>

#include <yajl/yajl_gen.h>

#include "fuzz/fuzz.h"
#include "proto/json.h"
#include "proto/json_write.h"
#include "proto/limits.h"

/* The largest document any caller reads (a key set); past it every caller refuses first. */
#define FUZZ_JSON_MAX_INPUT_BYTES JWKS_MAX_BYTES

typedef struct json_walk {
    size_t values;
    size_t max_depth;
} json_walk_t;

static int member_key_cmp(const void *a, const void *b)
{
    const proto_json_member_t *x = a, *y = b;
    if (x->key.len != y->key.len) {
        return x->key.len < y->key.len ? -1 : 1;
    }
    return memcmp(x->key.ptr, y->key.ptr, x->key.len);
}

/* Checks one value and what it holds; depth counts containers as the reader does. */
static void json_check(const proto_json_t *v, size_t depth, size_t len, json_walk_t *w)
{
    FUZZ_CHECK(v != NULL);
    FUZZ_CHECK(v->offset <= len);
    w->values++;
    switch (v->type) {
    case PROTO_JSON_NULL:
        break;
    case PROTO_JSON_BOOL:
        FUZZ_CHECK(v->u.boolean == 0 || v->u.boolean == 1);
        break;
    case PROTO_JSON_NUMBER: {
        proto_str_t t = v->u.number.text;
        FUZZ_CHECK(t.len > 0 && t.len <= len);
        fuzz_touch(t.ptr, t.len + 1); /* the reader NUL-terminates its copies */
        FUZZ_CHECK(t.ptr[t.len] == '\0');
        int integer = memchr(t.ptr, '.', t.len) == NULL && memchr(t.ptr, 'e', t.len) == NULL &&
                      memchr(t.ptr, 'E', t.len) == NULL;
        FUZZ_CHECK(v->u.number.is_integer == integer);
        break;
    }
    case PROTO_JSON_STRING:
        FUZZ_CHECK(v->u.string.len <= len);
        fuzz_touch(v->u.string.ptr, v->u.string.len + 1);
        FUZZ_CHECK(v->u.string.ptr[v->u.string.len] == '\0');
        break;
    case PROTO_JSON_ARRAY:
        FUZZ_CHECK(depth + 1 <= w->max_depth);
        for (size_t i = 0; i < v->u.array.count; i++) {
            json_check(v->u.array.items[i], depth + 1, len, w);
        }
        break;
    case PROTO_JSON_OBJECT: {
        size_t n = v->u.object.count;
        FUZZ_CHECK(depth + 1 <= w->max_depth);
        for (size_t i = 0; i < n; i++) {
            proto_str_t k = v->u.object.members[i].key;
            FUZZ_CHECK(k.len <= JSON_MAX_KEY_BYTES);
            fuzz_touch(k.ptr, k.len);
            json_check(v->u.object.members[i].value, depth + 1, len, w);
        }
        /* RFC 7515 §4: no name twice. */
        if (n > 1) {
            proto_json_member_t *m = malloc(n * sizeof(*m));
            FUZZ_CHECK(m != NULL);
            memcpy(m, v->u.object.members, n * sizeof(*m));
            qsort(m, n, sizeof(*m), member_key_cmp);
            for (size_t i = 1; i < n; i++) {
                FUZZ_CHECK(!proto_str_eq(m[i - 1].key, m[i].key));
            }
            free(m);
        }
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(proto_json_get_str(v, v->u.object.members[i].key) ==
                       v->u.object.members[i].value);
        }
        break;
    }
    default:
        FUZZ_FAIL("unknown JSON type");
    }
}

/* Two trees hold the same values, in the same order, with the same number texts. */
static int json_same(const proto_json_t *a, const proto_json_t *b)
{
    if (a->type != b->type) {
        return 0;
    }
    switch (a->type) {
    case PROTO_JSON_NULL:
        return 1;
    case PROTO_JSON_BOOL:
        return a->u.boolean == b->u.boolean;
    case PROTO_JSON_NUMBER:
        return proto_str_eq(a->u.number.text, b->u.number.text);
    case PROTO_JSON_STRING:
        return proto_str_eq(a->u.string, b->u.string);
    case PROTO_JSON_ARRAY:
        if (a->u.array.count != b->u.array.count) {
            return 0;
        }
        for (size_t i = 0; i < a->u.array.count; i++) {
            if (!json_same(a->u.array.items[i], b->u.array.items[i])) {
                return 0;
            }
        }
        return 1;
    case PROTO_JSON_OBJECT:
        if (a->u.object.count != b->u.object.count) {
            return 0;
        }
        for (size_t i = 0; i < a->u.object.count; i++) {
            if (!proto_str_eq(a->u.object.members[i].key, b->u.object.members[i].key) ||
                !json_same(a->u.object.members[i].value, b->u.object.members[i].value)) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

/* Writes v out and reads it back (without comments: the writer emits none). */
static void json_roundtrip(const proto_json_t *v, const proto_json_options_t *opt)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *out;
    size_t outlen;
    fuzz_alloc_t fa;
    proto_alloc_t al = fuzz_alloc_make(&fa, 0);
    proto_json_options_t again = *opt;
    proto_json_t *back = NULL;

    FUZZ_CHECK(g != NULL);
    FUZZ_CHECK(proto_json_write(g, v) == yajl_gen_status_ok);
    FUZZ_CHECK(yajl_gen_get_buf(g, &out, &outlen) == yajl_gen_status_ok);
    again.allow_comments = 0;
    FUZZ_CHECK(proto_json_read((const char *)out, outlen, &again, &al, &back, NULL) ==
               PROTO_JSON_OK);
    FUZZ_CHECK(json_same(v, back));
    fuzz_alloc_free(&fa);
    yajl_gen_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_json_options_t opt;
    proto_json_error_t err;
    proto_json_t *root = NULL;
    fuzz_alloc_t fa;
    proto_alloc_t al;
    proto_json_status_e st;
    unsigned mode, knob;
    json_walk_t w = {0, 0};

    if (size < 1) {
        return 0;
    }
    mode = data[0] & 0x0f;
    knob = data[0] >> 4;
    data++;
    size--;
    if (size > FUZZ_JSON_MAX_INPUT_BYTES) {
        return 0;
    }
    memset(&opt, 0, sizeof(opt));
    opt.allow_comments = mode & 1;
    if (mode & 2) {
        opt.max_depth = 1 + knob; /* 1..16 */
    }
    if (mode & 4) {
        opt.max_values = 1 + knob * 7; /* 1..106 */
    }
    w.max_depth = opt.max_depth ? opt.max_depth : JSON_MAX_DEPTH;

    al = fuzz_alloc_make(&fa, 0);
    st = proto_json_read((const char *)data, size, &opt, &al, &root, &err);
    size_t needed = fa.used;
    FUZZ_CHECK(st == PROTO_JSON_OK ? root != NULL : root == NULL);
    if (st != PROTO_JSON_OK) {
        FUZZ_CHECK(err.status == st);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        (void)proto_json_line_of((const char *)data, size, err.offset);
    } else {
        json_check(root, 0, size, &w);
        FUZZ_CHECK(w.values <= (opt.max_values ? opt.max_values : JSON_MAX_NODES));
        (void)proto_json_line_of((const char *)data, size, root->offset);
        json_roundtrip(root, &opt);
    }
    fuzz_alloc_free(&fa);

    /* The same read with the allocator cut off part way: an error, and nothing leaked (the
     * reader frees its malloc fallbacks itself; LeakSanitizer checks). */
    if (st == PROTO_JSON_OK && (mode & 8) && needed > 1) {
        size_t cap = needed * (knob + 1) / 17;
        al = fuzz_alloc_make(&fa, cap ? cap : 1);
        root = NULL;
        st = proto_json_read((const char *)data, size, &opt, &al, &root, &err);
        FUZZ_CHECK(st == PROTO_JSON_NO_MEMORY && root == NULL);
        FUZZ_CHECK(fa.used <= fa.cap);
        fuzz_alloc_free(&fa);
    }
    return 0;
}
