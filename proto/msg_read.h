/* Typed member access for the message decoders: each getter checks presence, JSON type and the
 * byte rules of one member and fills a proto_msg_error_t naming it when they fail. Used by
 * msg_request.c, msg_admin.c and msg_reply.c only; not part of proto's interface to the daemon
 * or the client. No I/O; values stay where proto_json_read() put them (the caller's allocator). */
#ifndef JWTAUTHZ_PROTO_MSG_READ_H
#define JWTAUTHZ_PROTO_MSG_READ_H

#include <stddef.h>

#include "json.h"
#include "msg.h"

/* Flags for the getters. */
#define PROTO_MSG_REQUIRED 0x1u    /* absent is PROTO_MSG_ERR_MISSING */
#define PROTO_MSG_NO_NUL 0x2u      /* a NUL byte is PROTO_MSG_ERR_VALUE */
#define PROTO_MSG_UTF8 0x4u        /* not RFC 3629 UTF-8 is PROTO_MSG_ERR_VALUE */
#define PROTO_MSG_NULL_ABSENT 0x8u /* a JSON null counts as absent */
#define PROTO_MSG_ANY_VALUE 0x10u  /* pairs: values of any type, kept as JSON text */
#define PROTO_MSG_STRICT (PROTO_MSG_NO_NUL | PROTO_MSG_UTF8)

/* Fills err (when not NULL) and returns st. */
proto_msg_status_e proto_msg_fail(proto_msg_error_t *err, proto_msg_status_e st, const char *fmt,
                                  ...) __attribute__((format(printf, 3, 4)));

/* "null", "boolean", "number", "string", "array", "object". */
const char *proto_msg_json_type_name(const proto_json_t *v);

/* Reads text as one JSON object (JSON bounds from limits.h). Returns PROTO_MSG_OK,
 * PROTO_MSG_ERR_JSON, PROTO_MSG_ERR_NOT_OBJECT or PROTO_MSG_ERR_NO_MEMORY. */
proto_msg_status_e proto_msg_read_object(const char *text, size_t len, const proto_alloc_t *alloc,
                                         const proto_json_t **root, proto_msg_error_t *err);

/* A string member (what is a path for messages, e.g. "requestContext.identity.sourceIp").
 * Absent leaves *out {NULL, 0} and returns PROTO_MSG_OK unless PROTO_MSG_REQUIRED. */
proto_msg_status_e proto_msg_read_str(const proto_json_t *obj, const char *name, const char *what,
                                      unsigned flags, proto_str_t *out, proto_msg_error_t *err);

/* A boolean member; *present says whether it was there. */
proto_msg_status_e proto_msg_read_bool(const proto_json_t *obj, const char *name, unsigned flags,
                                       int *present, int *out, proto_msg_error_t *err);

/* An integer member within [lo, hi] (exact: the number's text, not a double, is parsed). */
proto_msg_status_e proto_msg_read_int(const proto_json_t *obj, const char *name, unsigned flags,
                                      long long lo, long long hi, int *present, long long *out,
                                      proto_msg_error_t *err);

/* An object member (or null/absent with PROTO_MSG_NULL_ABSENT): *out NULL when absent. */
proto_msg_status_e proto_msg_read_object_member(const proto_json_t *obj, const char *name,
                                                const char *what, unsigned flags,
                                                const proto_json_t **out, proto_msg_error_t *err);

/* "id": a string (UTF-8, no NUL) or a number; absent leaves both outputs empty. */
proto_msg_status_e proto_msg_read_id(const proto_json_t *obj, proto_str_t *id,
                                     const proto_json_t **id_json, proto_msg_error_t *err);

/* The members of an object (or of nothing, when obj is NULL) as pairs in alloc. Values must be
 * strings unless PROTO_MSG_ANY_VALUE; PROTO_MSG_NO_NUL / PROTO_MSG_UTF8 apply to names and string
 * values. what names the object in messages. */
proto_msg_status_e proto_msg_read_pairs(const proto_json_t *obj, const char *what, unsigned flags,
                                        const proto_alloc_t *alloc, const proto_pair_t **out,
                                        size_t *count, proto_msg_error_t *err);

#endif
