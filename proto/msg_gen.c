/* The framed yajl_gen writer (see msg_gen.h) and the UTF-8 checks every encoded string goes
 * through. yajl prints through writer_print() straight into the frame, bounded by the body cap.
 * Nothing here knows a message's shape; that is msg_request.c, msg_admin.c and msg_reply.c. */
#include "msg_gen.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* U+FFFD REPLACEMENT CHARACTER, written for each byte that is not part of a UTF-8 sequence. */
static const char utf8_replacement[] = "\xEF\xBF\xBD";

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 §4 syntax), or 0 if there is none. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0; /* no overlongs */
        } else if (c == 0xED) {
            hi = 0x9F; /* no surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90; /* no overlongs */
        } else if (c == 0xF4) {
            hi = 0x8F; /* nothing past U+10FFFF */
        }
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/* Length of the run of ASCII bytes at the start of p: most of what is encoded (tokens, paths,
 * header values) is ASCII, and one tight loop over it is several times cheaper than a sequence
 * check per byte. */
static size_t ascii_run_len(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len && p[i] < 0x80) {
        i++;
    }
    return i;
}

int proto_msg_utf8_valid(proto_str_t s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;
    while (i < s.len) {
        i += ascii_run_len(p + i, s.len - i);
        if (i == s.len) {
            break;
        }
        size_t n = utf8_seq_len(p + i, s.len - i);
        if (n == 0) {
            return 0;
        }
        i += n;
    }
    return 1;
}

static int writer_fail(proto_msg_writer_t *w, proto_msg_status_e st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int writer_fail(proto_msg_writer_t *w, proto_msg_status_e st, const char *fmt, ...)
{
    if (w->failed == PROTO_MSG_OK) {
        va_list ap;
        w->failed = st;
        va_start(ap, fmt);
        vsnprintf(w->failed_what, sizeof(w->failed_what), fmt, ap);
        va_end(ap);
    }
    return 0;
}

static proto_msg_status_e msg_status_from_buf(proto_buf_status_e st)
{
    return st == PROTO_BUF_TOO_LARGE ? PROTO_MSG_ERR_TOO_LARGE : PROTO_MSG_ERR_NO_MEMORY;
}

static void writer_print(void *ctx, const char *s, size_t len)
{
    proto_msg_writer_t *w = ctx;
    if (w->failed != PROTO_MSG_OK) {
        return;
    }
    if (len > w->max - w->written) {
        writer_fail(w, PROTO_MSG_ERR_TOO_LARGE, "message longer than %zu bytes", w->max);
        return;
    }
    proto_buf_status_e st = proto_buf_append(w->out, s, len);
    if (st != PROTO_BUF_OK) {
        writer_fail(w, msg_status_from_buf(st), "%s",
                    st == PROTO_BUF_TOO_LARGE ? "output buffer full" : "out of memory");
        return;
    }
    w->written += len;
}

static proto_msg_status_e writer_init(proto_msg_writer_t *w, proto_buf_t *out, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->max = max;
    w->member = "";
    proto_buf_init(&w->scratch, max, 1);
    w->gen = yajl_gen_alloc(NULL);
    if (w->gen == NULL) {
        return PROTO_MSG_ERR_NO_MEMORY;
    }
    yajl_gen_config(w->gen, yajl_gen_print_callback, writer_print, w);
    /* No yajl_gen_validate_utf8: every string is checked (proto_msg_gen_str) or repaired
     * (proto_msg_gen_text) before it reaches yajl, and member names are our literals, so a third
     * pass over each token would find nothing. The reader on the other side validates anyway. */
    return PROTO_MSG_OK;
}

proto_msg_status_e proto_msg_writer_begin(proto_msg_writer_t *w, proto_buf_t *out, size_t max)
{
    if (max > PROTO_MAX_FRAME_BYTES_CEILING) {
        max = PROTO_MAX_FRAME_BYTES_CEILING;
    }
    proto_msg_status_e st = writer_init(w, out, max);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    w->framed = 1;
    proto_frame_status_e fs = proto_frame_begin(out, &w->mark);
    if (fs != PROTO_FRAME_READY) {
        yajl_gen_free(w->gen);
        w->gen = NULL;
        return fs == PROTO_FRAME_ERR_TOO_LARGE ? PROTO_MSG_ERR_TOO_LARGE : PROTO_MSG_ERR_NO_MEMORY;
    }
    return PROTO_MSG_OK;
}

static void error_set(proto_msg_error_t *err, proto_msg_status_e st, const char *msg)
{
    if (err) {
        err->status = st;
        snprintf(err->message, sizeof(err->message), "%s", msg);
    }
}

proto_msg_status_e proto_msg_writer_end(proto_msg_writer_t *w, proto_msg_error_t *err)
{
    proto_msg_status_e st = w->failed;

    if (w->gen) {
        yajl_gen_free(w->gen);
        w->gen = NULL;
    }
    proto_buf_free(&w->scratch);
    if (st == PROTO_MSG_OK && w->framed) {
        proto_frame_status_e fs = proto_frame_end(w->out, &w->mark, w->max);
        if (fs != PROTO_FRAME_READY) {
            st = fs == PROTO_FRAME_ERR_EMPTY ? PROTO_MSG_ERR_VALUE : PROTO_MSG_ERR_TOO_LARGE;
            writer_fail(w, st, "frame: %s", proto_frame_status_name(fs));
        }
    }
    if (st != PROTO_MSG_OK) {
        if (w->framed) {
            proto_frame_abandon(w->out, &w->mark);
        }
        error_set(err, st, w->failed_what);
        return st;
    }
    error_set(err, PROTO_MSG_OK, "");
    return PROTO_MSG_OK;
}

/* yajl only fails here on a misuse (a key that is not a string, writing past the root) or a
 * string we let through unchecked; either way the message is not sent. */
static int writer_check(proto_msg_writer_t *w, yajl_gen_status gs)
{
    if (w->failed != PROTO_MSG_OK) {
        return 0;
    }
    if (gs != yajl_gen_status_ok) {
        return writer_fail(w, PROTO_MSG_ERR_VALUE, "\"%s\": JSON generator refused it (%d)",
                           w->member, (int)gs);
    }
    return 1;
}

int proto_msg_gen_map_open(proto_msg_writer_t *w)
{
    return w->failed == PROTO_MSG_OK && writer_check(w, yajl_gen_map_open(w->gen));
}

int proto_msg_gen_map_close(proto_msg_writer_t *w)
{
    return w->failed == PROTO_MSG_OK && writer_check(w, yajl_gen_map_close(w->gen));
}

int proto_msg_gen_array_open(proto_msg_writer_t *w)
{
    return w->failed == PROTO_MSG_OK && writer_check(w, yajl_gen_array_open(w->gen));
}

int proto_msg_gen_array_close(proto_msg_writer_t *w)
{
    return w->failed == PROTO_MSG_OK && writer_check(w, yajl_gen_array_close(w->gen));
}

static int gen_bytes(proto_msg_writer_t *w, const void *p, size_t len)
{
    return writer_check(w, yajl_gen_string(w->gen, len ? p : (const void *)"", len));
}

int proto_msg_gen_key(proto_msg_writer_t *w, const char *literal)
{
    if (w->failed != PROTO_MSG_OK) {
        return 0;
    }
    w->member = literal;
    return gen_bytes(w, literal, strlen(literal));
}

int proto_msg_gen_str(proto_msg_writer_t *w, proto_str_t s)
{
    if (w->failed != PROTO_MSG_OK) {
        return 0;
    }
    if (proto_str_has_nul(s) || !proto_msg_utf8_valid(s)) {
        return writer_fail(w, PROTO_MSG_ERR_VALUE, "\"%s\": not UTF-8, or holds a NUL byte",
                           w->member);
    }
    return gen_bytes(w, s.ptr, s.len);
}

/* Appends s to the scratch buffer with every byte outside a UTF-8 sequence replaced. */
static int scratch_append_repaired(proto_msg_writer_t *w, proto_str_t s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;

    while (i < s.len) {
        size_t run = 0, n;
        for (;;) {
            run += ascii_run_len(p + i + run, s.len - i - run);
            if (i + run == s.len || (n = utf8_seq_len(p + i + run, s.len - i - run)) == 0) {
                break;
            }
            run += n;
        }
        proto_buf_status_e st = proto_buf_append(&w->scratch, p + i, run);
        if (st == PROTO_BUF_OK && i + run < s.len) {
            st = proto_buf_append(&w->scratch, utf8_replacement, sizeof(utf8_replacement) - 1);
            run++;
        }
        if (st != PROTO_BUF_OK) {
            return writer_fail(w, msg_status_from_buf(st), "\"%s\": value too large", w->member);
        }
        i += run;
    }
    return 1;
}

static int gen_scratch(proto_msg_writer_t *w)
{
    int ok = gen_bytes(w, proto_buf_ptr(&w->scratch), proto_buf_used(&w->scratch));
    proto_buf_reset(&w->scratch);
    return ok;
}

int proto_msg_gen_text(proto_msg_writer_t *w, proto_str_t s)
{
    if (w->failed != PROTO_MSG_OK) {
        return 0;
    }
    if (proto_msg_utf8_valid(s)) {
        return gen_bytes(w, s.ptr, s.len);
    }
    proto_buf_reset(&w->scratch);
    return scratch_append_repaired(w, s) && gen_scratch(w);
}

/* The next character of s from *i as proto_msg_gen_text() writes it: a whole UTF-8 sequence, or
 * U+FFFD for a byte outside one. */
static proto_str_t text_next_char(proto_str_t s, size_t *i)
{
    const char *p = s.ptr + *i;
    size_t n = utf8_seq_len((const unsigned char *)p, s.len - *i);
    if (n == 0) {
        *i += 1;
        return proto_str_make(utf8_replacement, sizeof(utf8_replacement) - 1);
    }
    *i += n;
    return proto_str_make(p, n);
}

/* Orders two names as they will be written, not as they came: "\xc0\x80" and two U+FFFD are
 * different bytes but the same member once repaired, and a JSON object must not hold a member
 * twice (the daemon refuses such a frame). Character by character (a character's bytes, ASCII
 * letters folded when fold_case), so 0 means "the same member". */
static int pair_name_cmp(proto_str_t a, proto_str_t b, int fold_case)
{
    size_t i = 0, j = 0;
    while (i < a.len && j < b.len) {
        proto_str_t x = text_next_char(a, &i), y = text_next_char(b, &j);
        if (x.len == 1 && y.len == 1) {
            unsigned char cx = (unsigned char)x.ptr[0], cy = (unsigned char)y.ptr[0];
            if (fold_case) {
                cx = (cx >= 'A' && cx <= 'Z') ? (unsigned char)(cx + 32) : cx;
                cy = (cy >= 'A' && cy <= 'Z') ? (unsigned char)(cy + 32) : cy;
            }
            if (cx != cy) {
                return cx < cy ? -1 : 1;
            }
            continue;
        }
        int d = memcmp(x.ptr, y.ptr, x.len < y.len ? x.len : y.len);
        if (d != 0 || x.len != y.len) {
            return d != 0 ? d : (x.len < y.len ? -1 : 1);
        }
    }
    return (i < a.len) - (j < b.len);
}

/* One pair in the sort that groups equal names: qsort has no context argument, so each element
 * carries the comparison's case rule. */
typedef struct pair_slot {
    const proto_pair_t *pair;
    size_t index;
    int fold;
} pair_slot_t;

static int pair_slot_cmp(const void *pa, const void *pb)
{
    const pair_slot_t *a = pa, *b = pb;
    int d = pair_name_cmp(a->pair->name, b->pair->name, a->fold);
    if (d != 0) {
        return d;
    }
    return a->index < b->index ? -1 : a->index > b->index; /* stable: first occurrence first */
}

#define PAIR_NONE SIZE_MAX

/* Writes the group that starts at pairs[i]: its name once, its values joined in order along
 * next[] (RFC 9110 §5.3: ", ", or "; " for Cookie; "," for a query). */
static int gen_pair_group(proto_msg_writer_t *w, const proto_pair_t *pairs, const size_t *next,
                          size_t i, int fold)
{
    proto_str_t sep = PROTO_STR_LIT(",");
    if (fold) {
        sep = pair_name_cmp(pairs[i].name, PROTO_STR_LIT("cookie"), 1) == 0 ? PROTO_STR_LIT("; ")
                                                                            : PROTO_STR_LIT(", ");
    }
    if (!proto_msg_gen_text(w, pairs[i].name)) {
        return 0;
    }
    if (next[i] == PAIR_NONE) {
        /* The common case (one Authorization header): no copy through scratch. */
        return proto_msg_gen_text(w, pairs[i].value);
    }
    proto_buf_reset(&w->scratch);
    if (!scratch_append_repaired(w, pairs[i].value)) {
        return 0;
    }
    for (size_t k = next[i]; k != PAIR_NONE; k = next[k]) {
        if (!scratch_append_repaired(w, sep) || !scratch_append_repaired(w, pairs[k].value)) {
            return 0;
        }
    }
    return gen_scratch(w);
}

/* Groups equal names by sorting (n log n: a query string of thousands of parameters is the
 * client's to choose, and comparing every pair with every other cost 0.6 s at 4,000), then writes
 * each group where its first member stood. */
int proto_msg_gen_pairs_joined(proto_msg_writer_t *w, const proto_pair_t *pairs, size_t count,
                               int how)
{
    int fold = how == PROTO_MSG_PAIRS_HTTP, ok = 0;
    const char *member = w->member;
    pair_slot_t *slots = NULL;
    size_t *next = NULL;
    unsigned char *leads = NULL;

    if (!proto_msg_gen_map_open(w)) {
        return 0;
    }
    if (count > 0) {
        slots = count <= SIZE_MAX / sizeof(*slots) ? malloc(count * sizeof(*slots)) : NULL;
        next = count <= SIZE_MAX / sizeof(*next) ? malloc(count * sizeof(*next)) : NULL;
        leads = malloc(count);
        if (slots == NULL || next == NULL || leads == NULL) {
            writer_fail(w, PROTO_MSG_ERR_NO_MEMORY, "\"%s\": out of memory", member);
            goto out;
        }
    }
    for (size_t i = 0; i < count; i++) {
        slots[i] = (pair_slot_t){&pairs[i], i, fold};
    }
    if (count > 1) {
        qsort(slots, count, sizeof(*slots), pair_slot_cmp);
    }
    for (size_t g = 0; g < count; g++) {
        size_t i = slots[g].index;
        leads[i] = g == 0 || pair_name_cmp(slots[g - 1].pair->name, pairs[i].name, fold) != 0;
        next[i] = g + 1 < count && pair_name_cmp(pairs[i].name, slots[g + 1].pair->name, fold) == 0
                      ? slots[g + 1].index
                      : PAIR_NONE;
    }
    for (size_t i = 0; i < count; i++) {
        w->member = member;
        if (leads[i] && !gen_pair_group(w, pairs, next, i, fold)) {
            goto out;
        }
    }
    ok = proto_msg_gen_map_close(w);
out:
    free(slots);
    free(next);
    free(leads);
    return ok;
}

int proto_msg_gen_int(proto_msg_writer_t *w, long long v)
{
    return w->failed == PROTO_MSG_OK && writer_check(w, yajl_gen_integer(w->gen, v));
}

int proto_msg_gen_bool(proto_msg_writer_t *w, int v)
{
    return w->failed == PROTO_MSG_OK && writer_check(w, yajl_gen_bool(w->gen, v ? 1 : 0));
}

int proto_msg_gen_json(proto_msg_writer_t *w, const proto_json_t *v)
{
    if (w->failed != PROTO_MSG_OK) {
        return 0;
    }
    switch (v->type) {
    case PROTO_JSON_NULL:
        return writer_check(w, yajl_gen_null(w->gen));
    case PROTO_JSON_BOOL:
        return proto_msg_gen_bool(w, v->u.boolean);
    case PROTO_JSON_NUMBER:
        /* The text as read: yajl_gen_number writes it verbatim, so 1e400 stays 1e400. */
        return writer_check(w, yajl_gen_number(w->gen, v->u.number.text.ptr, v->u.number.text.len));
    case PROTO_JSON_STRING:
        return proto_msg_gen_str(w, v->u.string);
    case PROTO_JSON_ARRAY:
        if (!proto_msg_gen_array_open(w)) {
            return 0;
        }
        for (size_t i = 0; i < v->u.array.count; i++) {
            if (!proto_msg_gen_json(w, v->u.array.items[i])) {
                return 0;
            }
        }
        return proto_msg_gen_array_close(w);
    case PROTO_JSON_OBJECT:
        if (!proto_msg_gen_map_open(w)) {
            return 0;
        }
        for (size_t i = 0; i < v->u.object.count; i++) {
            if (!proto_msg_gen_str(w, v->u.object.members[i].key) ||
                !proto_msg_gen_json(w, v->u.object.members[i].value)) {
                return 0;
            }
        }
        return proto_msg_gen_map_close(w);
    }
    return writer_fail(w, PROTO_MSG_ERR_VALUE, "\"%s\": unknown JSON value type", w->member);
}

proto_msg_status_e proto_msg_json_text(const proto_json_t *v, size_t max,
                                       const proto_alloc_t *alloc, proto_str_t *out)
{
    proto_msg_writer_t w;
    proto_buf_t text;
    proto_msg_status_e st;
    char *p;

    out->ptr = NULL;
    out->len = 0;
    proto_buf_init(&text, max, 1);
    st = writer_init(&w, &text, max);
    if (st != PROTO_MSG_OK) {
        goto out;
    }
    proto_msg_gen_json(&w, v);
    st = proto_msg_writer_end(&w, NULL);
    if (st != PROTO_MSG_OK) {
        goto out;
    }
    p = proto_alloc(alloc, proto_buf_used(&text) + 1);
    if (p == NULL) {
        st = PROTO_MSG_ERR_NO_MEMORY;
        goto out;
    }
    memcpy(p, proto_buf_ptr(&text), proto_buf_used(&text));
    p[proto_buf_used(&text)] = '\0';
    out->ptr = p;
    out->len = proto_buf_used(&text);
out:
    if (w.gen) {
        yajl_gen_free(w.gen);
    }
    proto_buf_free(&w.scratch);
    proto_buf_free(&text);
    return st;
}
