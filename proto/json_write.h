/* Writes a value read by proto_json_read() back out through yajl_gen, with string lengths kept
 * and numbers emitted as their original text. */
#ifndef JWTAUTHZ_PROTO_JSON_WRITE_H
#define JWTAUTHZ_PROTO_JSON_WRITE_H

#include <yajl/yajl_gen.h>

#include "json.h"

/* Returns yajl_gen_status_ok or the first generator error (the value may be partly written). */
yajl_gen_status proto_json_write(yajl_gen g, const proto_json_t *v);

/* Writes a (ptr,len) string. */
static inline yajl_gen_status proto_json_write_str(yajl_gen g, proto_str_t s)
{
    return yajl_gen_string(g, (const unsigned char *)s.ptr, s.len);
}

static inline yajl_gen_status proto_json_write_cstr(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

#endif
