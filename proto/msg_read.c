/* Typed member getters for the message decoders (see msg_read.h). Error messages name members
 * and types, never values (a value may be a token); names that came from outside are quoted
 * with anything unprintable replaced, so a message is safe to log. */
#include "msg_read.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "msg_gen.h"

/* Longest slice of an outside member name quoted in a message. */
#define MSG_QUOTED_NAME_BYTES 40u

proto_msg_status_e proto_msg_fail(proto_msg_error_t *err, proto_msg_status_e st, const char *fmt,
                                  ...)
{
    if (err) {
        va_list ap;
        err->status = st;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return st;
}

/* Printable ASCII copy of an outside name for a message; '?' stands for anything else. */
static const char *quote_name(char *dst, size_t size, proto_str_t name)
{
    size_t n = name.len < MSG_QUOTED_NAME_BYTES ? name.len : MSG_QUOTED_NAME_BYTES;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < size; i++) {
        unsigned char c = (unsigned char)name.ptr[i];
        dst[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (n < name.len && o + 4 < size) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}

const char *proto_msg_json_type_name(const proto_json_t *v)
{
    switch (v->type) {
    case PROTO_JSON_NULL:
        return "null";
    case PROTO_JSON_BOOL:
        return "boolean";
    case PROTO_JSON_NUMBER:
        return "number";
    case PROTO_JSON_STRING:
        return "string";
    case PROTO_JSON_ARRAY:
        return "array";
    case PROTO_JSON_OBJECT:
        return "object";
    }
    return "unknown";
}

proto_msg_status_e proto_msg_read_object(const char *text, size_t len, const proto_alloc_t *alloc,
                                         const proto_json_t **root, proto_msg_error_t *err)
{
    proto_json_error_t jerr;
    proto_json_t *v = NULL;

    *root = NULL;
    proto_json_status_e js = proto_json_read(text, len, NULL, alloc, &v, &jerr);
    if (js == PROTO_JSON_NO_MEMORY) {
        return proto_msg_fail(err, PROTO_MSG_ERR_NO_MEMORY, "out of memory reading the message");
    }
    if (js != PROTO_JSON_OK) {
        return proto_msg_fail(err, PROTO_MSG_ERR_JSON, "not JSON (%s at byte %zu: %s)",
                              proto_json_status_name(js), jerr.offset, jerr.message);
    }
    if (v->type != PROTO_JSON_OBJECT) {
        return proto_msg_fail(err, PROTO_MSG_ERR_NOT_OBJECT, "expected a JSON object, got %s",
                              proto_msg_json_type_name(v));
    }
    *root = v;
    return PROTO_MSG_OK;
}

/* Looks name up; returns PROTO_MSG_OK with *v NULL when absent (or null and NULL_ABSENT). */
static proto_msg_status_e member_find(const proto_json_t *obj, const char *name, const char *what,
                                      unsigned flags, const proto_json_t **v,
                                      proto_msg_error_t *err)
{
    *v = proto_json_get(obj, name);
    if (*v && (*v)->type == PROTO_JSON_NULL && (flags & PROTO_MSG_NULL_ABSENT)) {
        *v = NULL;
    }
    if (*v == NULL && (flags & PROTO_MSG_REQUIRED)) {
        return proto_msg_fail(err, PROTO_MSG_ERR_MISSING, "\"%s\": required member missing", what);
    }
    return PROTO_MSG_OK;
}

static proto_msg_status_e wrong_type(proto_msg_error_t *err, const char *what, const char *want,
                                     const proto_json_t *v)
{
    return proto_msg_fail(err, PROTO_MSG_ERR_TYPE, "\"%s\": expected %s, got %s", what, want,
                          proto_msg_json_type_name(v));
}

/* The byte rules of a string (a value or a name). */
static proto_msg_status_e str_check(proto_str_t s, const char *what, unsigned flags,
                                    proto_msg_error_t *err)
{
    if ((flags & PROTO_MSG_NO_NUL) && proto_str_has_nul(s)) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"%s\": holds a NUL byte", what);
    }
    if ((flags & PROTO_MSG_UTF8) && !proto_msg_utf8_valid(s)) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"%s\": not valid UTF-8", what);
    }
    return PROTO_MSG_OK;
}

proto_msg_status_e proto_msg_read_str(const proto_json_t *obj, const char *name, const char *what,
                                      unsigned flags, proto_str_t *out, proto_msg_error_t *err)
{
    const proto_json_t *v;
    proto_msg_status_e st;

    out->ptr = NULL;
    out->len = 0;
    if (what == NULL) {
        what = name;
    }
    st = member_find(obj, name, what, flags, &v, err);
    if (st != PROTO_MSG_OK || v == NULL) {
        return st;
    }
    if (v->type != PROTO_JSON_STRING) {
        return wrong_type(err, what, "a string", v);
    }
    st = str_check(v->u.string, what, flags, err);
    if (st == PROTO_MSG_OK) {
        *out = v->u.string;
    }
    return st;
}

proto_msg_status_e proto_msg_read_bool(const proto_json_t *obj, const char *name, unsigned flags,
                                       int *present, int *out, proto_msg_error_t *err)
{
    const proto_json_t *v;
    proto_msg_status_e st;

    *present = 0;
    *out = 0;
    st = member_find(obj, name, name, flags, &v, err);
    if (st != PROTO_MSG_OK || v == NULL) {
        return st;
    }
    if (v->type != PROTO_JSON_BOOL) {
        return wrong_type(err, name, "a boolean", v);
    }
    *present = 1;
    *out = v->u.boolean;
    return PROTO_MSG_OK;
}

/* Parses an integer's text exactly ("-" then digits, as yajl guarantees for an integer).
 * Returns 1 and sets *out, or 0 when it does not fit in a long long. */
static int int_parse(proto_str_t t, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0, limit = (unsigned long long)LLONG_MAX;

    if (t.len > 0 && t.ptr[0] == '-') {
        neg = 1;
        i = 1;
        limit += 1; /* |LLONG_MIN| */
    }
    if (i == t.len) {
        return 0;
    }
    for (; i < t.len; i++) {
        unsigned d = (unsigned)(t.ptr[i] - '0');
        if (d > 9 || v > (limit - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    if (neg) {
        *out = v == limit ? LLONG_MIN : -(long long)v;
    } else {
        *out = (long long)v;
    }
    return 1;
}

proto_msg_status_e proto_msg_read_int(const proto_json_t *obj, const char *name, unsigned flags,
                                      long long lo, long long hi, int *present, long long *out,
                                      proto_msg_error_t *err)
{
    const proto_json_t *v;
    proto_msg_status_e st;
    long long n;

    *present = 0;
    *out = 0;
    st = member_find(obj, name, name, flags, &v, err);
    if (st != PROTO_MSG_OK || v == NULL) {
        return st;
    }
    if (v->type != PROTO_JSON_NUMBER) {
        return wrong_type(err, name, "an integer", v);
    }
    if (!v->u.number.is_integer || !int_parse(v->u.number.text, &n) || n < lo || n > hi) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"%s\": not an integer in [%lld, %lld]",
                              name, lo, hi);
    }
    *present = 1;
    *out = n;
    return PROTO_MSG_OK;
}

proto_msg_status_e proto_msg_read_object_member(const proto_json_t *obj, const char *name,
                                                const char *what, unsigned flags,
                                                const proto_json_t **out, proto_msg_error_t *err)
{
    const proto_json_t *v;
    proto_msg_status_e st;

    *out = NULL;
    if (what == NULL) {
        what = name;
    }
    st = member_find(obj, name, what, flags, &v, err);
    if (st != PROTO_MSG_OK || v == NULL) {
        return st;
    }
    if (v->type != PROTO_JSON_OBJECT) {
        return wrong_type(err, what, "an object", v);
    }
    *out = v;
    return PROTO_MSG_OK;
}

proto_msg_status_e proto_msg_read_id(const proto_json_t *obj, proto_str_t *id,
                                     const proto_json_t **id_json, proto_msg_error_t *err)
{
    const proto_json_t *v = proto_json_get(obj, "id");

    id->ptr = NULL;
    id->len = 0;
    *id_json = NULL;
    if (v == NULL) {
        return PROTO_MSG_OK;
    }
    if (v->type == PROTO_JSON_NUMBER) {
        *id = v->u.number.text;
    } else if (v->type == PROTO_JSON_STRING) {
        proto_msg_status_e st = str_check(v->u.string, "id", PROTO_MSG_STRICT, err);
        if (st != PROTO_MSG_OK) {
            return st;
        }
        *id = v->u.string;
    } else {
        return wrong_type(err, "id", "a string or a number", v);
    }
    *id_json = v;
    return PROTO_MSG_OK;
}

proto_msg_status_e proto_msg_read_pairs(const proto_json_t *obj, const char *what, unsigned flags,
                                        const proto_alloc_t *alloc, const proto_pair_t **out,
                                        size_t *count, proto_msg_error_t *err)
{
    proto_pair_t *pairs;
    char quoted[MSG_QUOTED_NAME_BYTES + 8];
    char path[160];
    proto_msg_status_e st;

    *out = NULL;
    *count = 0;
    if (obj == NULL || obj->u.object.count == 0) {
        return PROTO_MSG_OK;
    }
    pairs = proto_alloc(alloc, obj->u.object.count * sizeof(*pairs));
    if (pairs == NULL) {
        return proto_msg_fail(err, PROTO_MSG_ERR_NO_MEMORY, "\"%s\": out of memory", what);
    }
    for (size_t i = 0; i < obj->u.object.count; i++) {
        const proto_json_member_t *m = &obj->u.object.members[i];
        snprintf(path, sizeof(path), "%s.%s", what, quote_name(quoted, sizeof(quoted), m->key));
        st = str_check(m->key, path, flags, err);
        if (st != PROTO_MSG_OK) {
            return st;
        }
        pairs[i].name = m->key;
        pairs[i].json = m->value;
        if (m->value->type == PROTO_JSON_STRING) {
            st = str_check(m->value->u.string, path, flags, err);
            if (st != PROTO_MSG_OK) {
                return st;
            }
            pairs[i].value = m->value->u.string;
        } else if (!(flags & PROTO_MSG_ANY_VALUE)) {
            return wrong_type(err, path, "a string", m->value);
        } else if (m->value->type == PROTO_JSON_NUMBER) {
            pairs[i].value = m->value->u.number.text;
        } else {
            /* The JSON text escapes any NUL inside, so it is safe as a C string. */
            st = proto_msg_json_text(m->value, PROTO_MAX_REPLY_BYTES, alloc, &pairs[i].value);
            if (st != PROTO_MSG_OK) {
                return proto_msg_fail(err, st, "\"%s\": cannot render the value (%s)", path,
                                      proto_msg_status_name(st));
            }
        }
    }
    *out = pairs;
    *count = obj->u.object.count;
    return PROTO_MSG_OK;
}
