/* A string as (pointer, length), as nginx's ngx_str_t: JOSE segments, kids, claim names and
 * values travel this way and never through strlen. NUL-terminated strings appear only at API
 * edges, where proto_str_to_cstr() refuses an embedded NUL. */
#ifndef JWTAUTHZ_PROTO_STR_H
#define JWTAUTHZ_PROTO_STR_H

#include <stddef.h>
#include <string.h>

typedef struct proto_str {
    const char *ptr;
    size_t len;
} proto_str_t;

#define PROTO_STR_LIT(s) ((proto_str_t){(s), sizeof(s) - 1})

static inline proto_str_t proto_str_make(const char *ptr, size_t len)
{
    proto_str_t s = {ptr, len};
    return s;
}

/* Exact byte-for-byte equality (no case folding, no normalisation: RFC 7519 §4.1.1 "iss"). */
static inline int proto_str_eq(proto_str_t a, proto_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline int proto_str_eq_cstr(proto_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && memcmp(a.ptr, b, n) == 0;
}

/* Returns 1 when the string holds a NUL byte: such a string must not become a C string. */
static inline int proto_str_has_nul(proto_str_t s)
{
    return s.len > 0 && memchr(s.ptr, '\0', s.len) != NULL;
}

#endif
