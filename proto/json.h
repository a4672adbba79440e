/* Strict JSON reading over yajl's callback (SAX) API, for every document that comes from outside:
 * token headers and claims, key sets, frames, the config. It keeps what yajl_tree loses: string
 * lengths (a "\u0000" stays inside the string instead of cutting it short), the exact text of
 * numbers (1e26 is not LLONG_MAX), duplicate member names (refused, RFC 7515 §4 / RFC 8259 §4),
 * and it bounds depth and value count. Comments are accepted only when the caller asks (config).
 * Values live in the caller's allocator; nothing here does I/O. */
#ifndef JWTAUTHZ_PROTO_JSON_H
#define JWTAUTHZ_PROTO_JSON_H

#include <stddef.h>

#include "arena.h"
#include "str.h"

typedef enum {
    PROTO_JSON_NULL,
    PROTO_JSON_BOOL,
    PROTO_JSON_NUMBER,
    PROTO_JSON_STRING,
    PROTO_JSON_ARRAY,
    PROTO_JSON_OBJECT
} proto_json_type_e;

typedef struct proto_json proto_json_t;

typedef struct proto_json_member {
    proto_str_t key;
    proto_json_t *value;
} proto_json_member_t;

struct proto_json {
    proto_json_type_e type;
    size_t offset; /* byte offset in the input just past this value's first token */
    union {
        int boolean;
        struct {
            proto_str_t text; /* exactly as written */
            double value;     /* strtod of text; may be inf for 1e999 (see is_finite) */
            int is_finite;
            int is_integer; /* no '.', 'e' or 'E' in the text */
        } number;
        proto_str_t string; /* decoded UTF-8, may hold NUL bytes */
        struct {
            proto_json_t **items;
            size_t count;
        } array;
        struct {
            proto_json_member_t *members; /* in document order */
            size_t count;
        } object;
    } u;
};

typedef enum {
    PROTO_JSON_OK = 0,
    PROTO_JSON_SYNTAX,          /* not JSON (or trailing bytes, or comments not allowed) */
    PROTO_JSON_TOO_DEEP,        /* nesting past the depth limit */
    PROTO_JSON_TOO_MANY_VALUES, /* past the value limit */
    PROTO_JSON_DUPLICATE_KEY,   /* an object names the same member twice */
    PROTO_JSON_KEY_TOO_LONG,    /* a member name past JSON_MAX_KEY_BYTES */
    PROTO_JSON_NO_MEMORY        /* the allocator said no (its cap, or malloc) */
} proto_json_status_e;

typedef struct proto_json_options {
    size_t max_depth;  /* 0: JSON_MAX_DEPTH */
    size_t max_values; /* 0: JSON_MAX_NODES */
    int allow_comments;
} proto_json_options_t;

typedef struct proto_json_error {
    proto_json_status_e status;
    size_t offset; /* byte offset where reading stopped */
    char message[160];
} proto_json_error_t;

/* Reads one JSON value from exactly len bytes (whitespace around it allowed, nothing else).
 * Returns PROTO_JSON_OK and sets *out, or a status with err filled (err may be NULL). On failure
 * whatever was allocated stays in the allocator, to go with it. */
proto_json_status_e proto_json_read(const char *text, size_t len, const proto_json_options_t *opt,
                                    const proto_alloc_t *alloc, proto_json_t **out,
                                    proto_json_error_t *err);

/* Member lookup by name in an object; NULL when absent or when obj is not an object. */
const proto_json_t *proto_json_get(const proto_json_t *obj, const char *name);
const proto_json_t *proto_json_get_str(const proto_json_t *obj, proto_str_t name);

/* Returns the 1-based line of a byte offset in text (for "FILE:LINE: message"). */
unsigned proto_json_line_of(const char *text, size_t len, size_t offset);

const char *proto_json_status_name(proto_json_status_e st);

#endif
