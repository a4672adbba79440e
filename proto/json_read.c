/* Strict JSON reader on yajl's callback API (see json.h). yajl checks the grammar and UTF-8; this
 * file builds the values with their lengths, counts depth and values, and refuses duplicate member
 * names when an object closes. It must not call strlen on input bytes. */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "limits.h"

/* The frame stack is a fixed array: callers may lower the depth limit, never raise it past this. */
#define JSON_DEPTH_HARD_MAX 64u
/* Objects up to this size are checked for duplicates pairwise; larger ones are sorted. */
#define JSON_DUP_PAIRWISE_MAX 8u

typedef struct json_item {
    proto_str_t key;
    proto_json_t *value;
    struct json_item *next;
} json_item_t;

typedef struct json_frame {
    proto_json_t *node;
    json_item_t *head, *tail;
    size_t count;
    proto_str_t pending_key;
} json_frame_t;

typedef struct json_reader {
    const proto_alloc_t *alloc;
    yajl_handle yajl;
    size_t max_depth, max_values, values;
    size_t depth;
    json_frame_t stack[JSON_DEPTH_HARD_MAX];
    proto_json_t *root;
    proto_json_status_e status;          /* why a callback cancelled */
    struct json_yajl_fallback *fallback; /* yajl blocks the allocator refused (see below) */
    int yajl_oom;
} json_reader_t;

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_make(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static size_t reader_offset(json_reader_t *r)
{
    return yajl_get_bytes_consumed(r->yajl);
}

static int reader_fail(json_reader_t *r, proto_json_status_e st)
{
    r->status = st;
    return 0;
}

static proto_json_t *node_new(json_reader_t *r, proto_json_type_e type)
{
    if (r->yajl_oom) {
        r->status = PROTO_JSON_NO_MEMORY; /* the allocator is out: stop at the next value */
        return NULL;
    }
    if (++r->values > r->max_values) {
        r->status = PROTO_JSON_TOO_MANY_VALUES;
        return NULL;
    }
    proto_json_t *n = proto_alloc(r->alloc, sizeof(*n));
    if (n == NULL) {
        r->status = PROTO_JSON_NO_MEMORY;
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->type = type;
    n->offset = reader_offset(r);
    return n;
}

static int str_copy(json_reader_t *r, const unsigned char *s, size_t len, proto_str_t *out)
{
    char *p = proto_alloc(r->alloc, len + 1);
    if (p == NULL) {
        return reader_fail(r, PROTO_JSON_NO_MEMORY);
    }
    if (len) {
        memcpy(p, s, len);
    }
    p[len] = '\0'; /* convenience only: lengths rule, the data may hold NULs */
    out->ptr = p;
    out->len = len;
    return 1;
}

/* Attaches a finished value to its parent (or makes it the root). */
static int reader_attach(json_reader_t *r, proto_json_t *n)
{
    if (n == NULL) {
        return 0;
    }
    if (r->depth == 0) {
        r->root = n;
        return 1;
    }
    json_frame_t *f = &r->stack[r->depth - 1];
    json_item_t *it = proto_alloc(r->alloc, sizeof(*it));
    if (it == NULL) {
        return reader_fail(r, PROTO_JSON_NO_MEMORY);
    }
    it->value = n;
    it->next = NULL;
    if (f->node->type == PROTO_JSON_OBJECT) {
        it->key = f->pending_key;
        f->pending_key.ptr = NULL;
    } else {
        it->key.ptr = NULL;
        it->key.len = 0;
    }
    if (f->tail) {
        f->tail->next = it;
    } else {
        f->head = it;
    }
    f->tail = it;
    f->count++;
    return 1;
}

static int cb_null(void *ctx)
{
    json_reader_t *r = ctx;
    return reader_attach(r, node_new(r, PROTO_JSON_NULL));
}

static int cb_boolean(void *ctx, int v)
{
    json_reader_t *r = ctx;
    proto_json_t *n = node_new(r, PROTO_JSON_BOOL);
    if (n) {
        n->u.boolean = v ? 1 : 0;
    }
    return reader_attach(r, n);
}

/* Integers of up to 15 digits (every NumericDate) are exact in a double: converted here without
 * strtod, which costs as much as the rest of a claim on the request path. Returns 0 for anything
 * else (fractions, exponents, long integers), which strtod then reads. */
#define JSON_SMALL_INTEGER_DIGITS 15u

static int number_small_integer(const char *s, size_t len, double *out)
{
    size_t i = len && s[0] == '-' ? 1 : 0;
    if (len - i == 0 || len - i > JSON_SMALL_INTEGER_DIGITS) {
        return 0;
    }
    long long v = 0;
    for (size_t k = i; k < len; k++) {
        if (s[k] < '0' || s[k] > '9') {
            return 0;
        }
        v = v * 10 + (s[k] - '0');
    }
    *out = (double)(i ? -v : v);
    return 1;
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    json_reader_t *r = ctx;
    proto_json_t *n = node_new(r, PROTO_JSON_NUMBER);
    if (n == NULL || !str_copy(r, (const unsigned char *)s, len, &n->u.number.text)) {
        return 0;
    }
    double v;
    if (!number_small_integer(s, len, &v)) {
        pthread_once(&c_locale_once, c_locale_make);
        /* yajl guarantees the RFC 8259 number grammar, so strtod reads it whole; the C locale
         * keeps '.' the decimal point whatever the embedding program set. */
        v = c_locale ? strtod_l(n->u.number.text.ptr, NULL, c_locale)
                     : strtod(n->u.number.text.ptr, NULL);
    }
    n->u.number.value = v;
    n->u.number.is_finite = isfinite(v) ? 1 : 0;
    n->u.number.is_integer =
        memchr(s, '.', len) == NULL && memchr(s, 'e', len) == NULL && memchr(s, 'E', len) == NULL;
    return reader_attach(r, n);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    json_reader_t *r = ctx;
    proto_json_t *n = node_new(r, PROTO_JSON_STRING);
    if (n == NULL || !str_copy(r, s, len, &n->u.string)) {
        return 0;
    }
    return reader_attach(r, n);
}

static int container_open(json_reader_t *r, proto_json_type_e type)
{
    if (r->depth >= r->max_depth) {
        return reader_fail(r, PROTO_JSON_TOO_DEEP);
    }
    proto_json_t *n = node_new(r, type);
    if (n == NULL) {
        return 0;
    }
    json_frame_t *f = &r->stack[r->depth++];
    memset(f, 0, sizeof(*f));
    f->node = n;
    return 1;
}

static int start_map(void *ctx)
{
    return container_open(ctx, PROTO_JSON_OBJECT);
}

static int start_array(void *ctx)
{
    return container_open(ctx, PROTO_JSON_ARRAY);
}

static int map_key(void *ctx, const unsigned char *s, size_t len)
{
    json_reader_t *r = ctx;
    if (len > JSON_MAX_KEY_BYTES) {
        return reader_fail(r, PROTO_JSON_KEY_TOO_LONG);
    }
    return str_copy(r, s, len, &r->stack[r->depth - 1].pending_key);
}

static int key_cmp(const void *a, const void *b)
{
    const proto_json_member_t *x = a, *y = b;
    if (x->key.len != y->key.len) {
        return x->key.len < y->key.len ? -1 : 1;
    }
    return memcmp(x->key.ptr, y->key.ptr, x->key.len);
}

/* RFC 8259 §4 leaves duplicate names to the reader; RFC 7515 §4 and RFC 7519 §4 require a JOSE
 * reader to refuse them (or keep the last, which lets two parsers disagree). We refuse. */
static int members_have_duplicate(json_reader_t *r, const proto_json_member_t *m, size_t n)
{
    if (n <= JSON_DUP_PAIRWISE_MAX) {
        for (size_t i = 0; i < n; i++) {
            for (size_t j = i + 1; j < n; j++) {
                if (proto_str_eq(m[i].key, m[j].key)) {
                    return 1;
                }
            }
        }
        return 0;
    }
    proto_json_member_t *sorted = proto_alloc(r->alloc, n * sizeof(*sorted));
    if (sorted == NULL) {
        return -1;
    }
    memcpy(sorted, m, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (proto_str_eq(sorted[i - 1].key, sorted[i].key)) {
            return 1;
        }
    }
    return 0;
}

static int end_map(void *ctx)
{
    json_reader_t *r = ctx;
    json_frame_t *f = &r->stack[r->depth - 1];
    proto_json_t *n = f->node;
    n->u.object.count = f->count;
    n->u.object.members =
        proto_alloc(r->alloc, (f->count ? f->count : 1) * sizeof(proto_json_member_t));
    if (n->u.object.members == NULL) {
        return reader_fail(r, PROTO_JSON_NO_MEMORY);
    }
    size_t i = 0;
    for (json_item_t *it = f->head; it; it = it->next) {
        n->u.object.members[i].key = it->key;
        n->u.object.members[i].value = it->value;
        i++;
    }
    int dup = members_have_duplicate(r, n->u.object.members, f->count);
    if (dup != 0) {
        return reader_fail(r, dup < 0 ? PROTO_JSON_NO_MEMORY : PROTO_JSON_DUPLICATE_KEY);
    }
    r->depth--;
    return reader_attach(r, n);
}

static int end_array(void *ctx)
{
    json_reader_t *r = ctx;
    json_frame_t *f = &r->stack[r->depth - 1];
    proto_json_t *n = f->node;
    n->u.array.count = f->count;
    n->u.array.items = proto_alloc(r->alloc, (f->count ? f->count : 1) * sizeof(proto_json_t *));
    if (n->u.array.items == NULL) {
        return reader_fail(r, PROTO_JSON_NO_MEMORY);
    }
    size_t i = 0;
    for (json_item_t *it = f->head; it; it = it->next) {
        n->u.array.items[i++] = it->value;
    }
    r->depth--;
    return reader_attach(r, n);
}

/* yajl's own memory (handle, lexer buffer, state stack) comes from the caller's allocator too:
 * it lives exactly as long as the parse, so the pool or arena takes it back with the values, and
 * the request path makes no malloc/free pairs per document. A size header lets realloc copy.
 * yajl does not check its allocator for NULL, so when the caller's allocator says no (its cap),
 * the block comes from malloc instead, is freed when the parse ends, and the parse fails with
 * PROTO_JSON_NO_MEMORY: the cap holds for the result, and yajl never sees NULL. */
#define JSON_YAJL_HEADER_BYTES 16u

typedef struct json_yajl_fallback {
    struct json_yajl_fallback *next;
    size_t size;
} json_yajl_fallback_t;

static void *reader_yajl_malloc(void *ctx, size_t size)
{
    json_reader_t *r = ctx;
    if (size > SIZE_MAX - JSON_YAJL_HEADER_BYTES - sizeof(json_yajl_fallback_t)) {
        abort(); /* yajl asks for sizes bounded by the input; this cannot be reached */
    }
    unsigned char *p = proto_alloc(r->alloc, size + JSON_YAJL_HEADER_BYTES);
    if (p == NULL) {
        json_yajl_fallback_t *f = malloc(sizeof(*f) + JSON_YAJL_HEADER_BYTES + size);
        if (f == NULL) {
            abort(); /* as libc-malloc users of yajl do: it would dereference NULL */
        }
        f->next = r->fallback;
        f->size = size;
        r->fallback = f;
        r->yajl_oom = 1;
        p = (unsigned char *)(f + 1);
    }
    memcpy(p, &size, sizeof(size));
    return p + JSON_YAJL_HEADER_BYTES;
}

static void *reader_yajl_realloc(void *ctx, void *ptr, size_t size)
{
    if (ptr == NULL) {
        return reader_yajl_malloc(ctx, size);
    }
    size_t old;
    memcpy(&old, (unsigned char *)ptr - JSON_YAJL_HEADER_BYTES, sizeof(old));
    if (size <= old) {
        return ptr;
    }
    void *n = reader_yajl_malloc(ctx, size);
    memcpy(n, ptr, old);
    return n;
}

static void reader_yajl_free(void *ctx, void *ptr)
{
    (void)ctx;
    (void)ptr; /* returned with the allocator (or at the end of the parse, for fallbacks) */
}

static void reader_fallback_free(json_reader_t *r)
{
    while (r->fallback) {
        json_yajl_fallback_t *next = r->fallback->next;
        free(r->fallback);
        r->fallback = next;
    }
}

static const yajl_callbacks reader_callbacks = {
    cb_null,   cb_boolean, NULL,    NULL,        cb_number, cb_string,
    start_map, map_key,    end_map, start_array, end_array,
};

static void error_set(proto_json_error_t *err, proto_json_status_e st, size_t offset,
                      const char *msg)
{
    if (err == NULL) {
        return;
    }
    err->status = st;
    err->offset = offset;
    snprintf(err->message, sizeof(err->message), "%s", msg);
}

/* yajl's message names the problem; its verbose form quotes input, which may be secret. */
static void error_from_yajl(json_reader_t *r, const char *text, size_t len, proto_json_error_t *err)
{
    unsigned char *msg = yajl_get_error(r->yajl, 0, (const unsigned char *)text, len);
    const char *m = msg ? (const char *)msg : "parse error";
    /* "parse error: " is noise in our messages. */
    if (strncmp(m, "parse error: ", 13) == 0) {
        m += 13;
    }
    error_set(err, PROTO_JSON_SYNTAX, reader_offset(r), m);
    if (msg) {
        yajl_free_error(r->yajl, msg);
    }
}

proto_json_status_e proto_json_read(const char *text, size_t len, const proto_json_options_t *opt,
                                    const proto_alloc_t *alloc, proto_json_t **out,
                                    proto_json_error_t *err)
{
    json_reader_t r;
    memset(&r, 0, sizeof(r));
    r.alloc = alloc;
    r.max_depth = opt && opt->max_depth ? opt->max_depth : JSON_MAX_DEPTH;
    if (r.max_depth > JSON_DEPTH_HARD_MAX) {
        r.max_depth = JSON_DEPTH_HARD_MAX;
    }
    r.max_values = opt && opt->max_values ? opt->max_values : JSON_MAX_NODES;
    *out = NULL;

    yajl_alloc_funcs funcs = {reader_yajl_malloc, reader_yajl_realloc, reader_yajl_free, &r};
    r.yajl = yajl_alloc(&reader_callbacks, &funcs, &r);
    if (r.yajl == NULL) {
        error_set(err, PROTO_JSON_NO_MEMORY, 0, "out of memory");
        return PROTO_JSON_NO_MEMORY;
    }
    yajl_config(r.yajl, yajl_allow_comments, opt && opt->allow_comments ? 1 : 0);

    yajl_status ys = yajl_parse(r.yajl, (const unsigned char *)text, len);
    int at_end = 0;
    if (ys == yajl_status_ok) {
        /* Errors found here (an unfinished document) are at the end of the text; yajl's byte
         * count no longer points into it after this call. */
        ys = yajl_complete_parse(r.yajl);
        at_end = 1;
    }
    proto_json_status_e st = PROTO_JSON_OK;
    if (ys == yajl_status_client_canceled) {
        st = r.status;
        static const char *const why[] = {
            [PROTO_JSON_TOO_DEEP] = "nesting too deep",
            [PROTO_JSON_TOO_MANY_VALUES] = "too many values",
            [PROTO_JSON_DUPLICATE_KEY] = "duplicate member name",
            [PROTO_JSON_KEY_TOO_LONG] = "member name too long",
            [PROTO_JSON_NO_MEMORY] = "out of memory",
        };
        error_set(err, st, reader_offset(&r), why[st] ? why[st] : "invalid");
    } else if (ys != yajl_status_ok) {
        st = PROTO_JSON_SYNTAX;
        error_from_yajl(&r, text, len, err);
        if (at_end && err) {
            err->offset = len;
        }
    } else if (r.root == NULL) {
        st = PROTO_JSON_SYNTAX;
        error_set(err, st, len, "no value");
    }
    yajl_free(r.yajl);
    if (r.yajl_oom) {
        st = PROTO_JSON_NO_MEMORY;
        error_set(err, st, len, "out of memory");
    }
    reader_fallback_free(&r);
    if (st == PROTO_JSON_OK) {
        *out = r.root;
    }
    return st;
}

const proto_json_t *proto_json_get_str(const proto_json_t *obj, proto_str_t name)
{
    if (obj == NULL || obj->type != PROTO_JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < obj->u.object.count; i++) {
        if (proto_str_eq(obj->u.object.members[i].key, name)) {
            return obj->u.object.members[i].value;
        }
    }
    return NULL;
}

const proto_json_t *proto_json_get(const proto_json_t *obj, const char *name)
{
    return proto_json_get_str(obj, proto_str_make(name, strlen(name)));
}

unsigned proto_json_line_of(const char *text, size_t len, size_t offset)
{
    unsigned line = 1;
    if (offset > len) {
        offset = len;
    }
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            line++;
        }
    }
    return line;
}

const char *proto_json_status_name(proto_json_status_e st)
{
    switch (st) {
    case PROTO_JSON_OK:
        return "ok";
    case PROTO_JSON_SYNTAX:
        return "syntax";
    case PROTO_JSON_TOO_DEEP:
        return "too_deep";
    case PROTO_JSON_TOO_MANY_VALUES:
        return "too_many_values";
    case PROTO_JSON_DUPLICATE_KEY:
        return "duplicate_key";
    case PROTO_JSON_KEY_TOO_LONG:
        return "key_too_long";
    case PROTO_JSON_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}
