/* Reply objects of libjwtauthz: decoding a reply frame through proto's codec into C strings the
 * caller can use, the replies the library makes up for its own failures, and the accessors.
 * Fail closed: anything that is not a valid reply becomes ERROR, never ALLOW. No I/O here. */
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/frame.h"
#include "proto/limits.h"
#include "proto/msg.h"

/* Where a decoded reply's values live: room for the JSON tree of the largest reply. */
#define REPLY_ARENA_MAX_BYTES (PROTO_MAX_REPLY_BYTES * 4u)

_Static_assert(JWTAUTHZ_MAX_REPLY_BYTES == PROTO_MAX_REPLY_BYTES,
               "jwtauthz.h and proto/limits.h must agree on the reply cap");

/* The last resort when memory runs out: static, never freed. */
static const char reply_no_memory_json[] =
    "{\"verdict\":\"ERROR\",\"status\":500,\"reason\":\"no_memory\","
    "\"message\":\"libjwtauthz: out of memory\"}";
static jwtauthz_reply_t reply_no_memory = {
    .verdict = JWTAUTHZ_ERROR,
    .status = 500,
    .reason = "no_memory",
    .message = "libjwtauthz: out of memory",
    .ttl = -1,
    .json = reply_no_memory_json,
    .json_len = sizeof(reply_no_memory_json) - 1,
};

/* A C string copy in the reply's arena; proto already refused inner NULs. NULL stays NULL. */
static int reply_cstr(jwtauthz_reply_t *r, proto_str_t s, const char **out)
{
    char *p;

    *out = NULL;
    if (s.ptr == NULL) {
        return 1;
    }
    if (proto_str_has_nul(s)) {
        return 0;
    }
    p = proto_arena_alloc(&r->arena, s.len + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    *out = p;
    return 1;
}

static jwtauthz_verdict_t verdict_from_proto(proto_verdict_e v)
{
    switch (v) {
    case PROTO_VERDICT_ALLOW:
        return JWTAUTHZ_ALLOW;
    case PROTO_VERDICT_DENY:
        return JWTAUTHZ_DENY;
    case PROTO_VERDICT_UNAUTHORIZED:
        return JWTAUTHZ_UNAUTHORIZED;
    case PROTO_VERDICT_ERROR:
        break;
    }
    return JWTAUTHZ_ERROR;
}

/* Copies what proto decoded into r's C strings. Returns 0 when the arena runs out. */
static int reply_fill(jwtauthz_reply_t *r, const proto_reply_t *p)
{
    r->verdict = p->has_verdict ? verdict_from_proto(p->verdict) : JWTAUTHZ_ERROR;
    r->status = p->status;
    r->ok = p->has_ok && p->ok;
    r->cached = p->has_cached && p->cached;
    r->ttl = p->has_ttl ? p->ttl : -1;
    if (!reply_cstr(r, p->principal_id, &r->principal) || !reply_cstr(r, p->reason, &r->reason) ||
        !reply_cstr(r, p->message, &r->message) || !reply_cstr(r, p->id, &r->id) ||
        !reply_cstr(r, p->error, &r->error) || !reply_cstr(r, p->raw, &r->json)) {
        return 0;
    }
    r->json_len = p->raw.len;
    if (p->context_count) {
        r->ctx_keys = proto_arena_alloc(&r->arena, p->context_count * sizeof(char *));
        r->ctx_values = proto_arena_alloc(&r->arena, p->context_count * sizeof(char *));
        if (r->ctx_keys == NULL || r->ctx_values == NULL) {
            return 0;
        }
        for (size_t i = 0; i < p->context_count; i++) {
            if (!reply_cstr(r, p->context[i].name, &r->ctx_keys[i]) ||
                !reply_cstr(r, p->context[i].value, &r->ctx_values[i])) {
                return 0;
            }
        }
        r->ctx_count = p->context_count;
    }
    return 1;
}

static void reply_destroy(jwtauthz_reply_t *r)
{
    if (r && r != &reply_no_memory) {
        proto_arena_clear(&r->arena);
        explicit_bzero(r, sizeof(*r));
        free(r);
    }
}

jwtauthz_reply_t *reply_decode(const char *text, size_t len, int admin, int *status, char *msg,
                               size_t msg_size)
{
    jwtauthz_reply_t *r = calloc(1, sizeof(*r));
    proto_arena_t scratch;
    proto_alloc_t alloc;
    proto_reply_t p;
    proto_msg_error_t err;
    proto_msg_status_e st;

    /* The JSON tree goes in a scratch arena dropped at the end; the reply keeps only copies. */
    proto_arena_init(&scratch, REPLY_ARENA_MAX_BYTES);
    alloc = proto_arena_allocator(&scratch);
    if (r == NULL) {
        *status = JWTAUTHZ_E_NOMEM;
        goto out;
    }
    proto_arena_init(&r->arena, REPLY_ARENA_MAX_BYTES);
    st = proto_msg_reply_decode(text, len, admin ? PROTO_REPLY_ADMIN : PROTO_REPLY_DECISION, &alloc,
                                &p, &err);
    if (st != PROTO_MSG_OK) {
        /* Past the arena cap is a reply built to exhaust us: a bad reply, not our shortage. */
        *status = JWTAUTHZ_E_BAD_REPLY;
        snprintf(msg, msg_size, "reply refused: %s", err.message);
        reply_destroy(r);
        r = NULL;
        goto out;
    }
    if (!reply_fill(r, &p)) {
        *status = JWTAUTHZ_E_NOMEM;
        snprintf(msg, msg_size, "out of memory copying the reply");
        reply_destroy(r);
        r = NULL;
        goto out;
    }
    *status = JWTAUTHZ_OK;
out:
    proto_arena_clear(&scratch);
    return r;
}

jwtauthz_reply_t *reply_for_status(int status, const char *message)
{
    proto_reply_t p;
    proto_buf_t buf;
    jwtauthz_reply_t *r = NULL;
    const char *reason = "bad_request", *dflt = "the request cannot be sent to jwtauthzd";
    int st;
    char why[160];

    memset(&p, 0, sizeof(p));
    p.kind = PROTO_REPLY_DECISION;
    p.verdict = PROTO_VERDICT_ERROR;
    p.status = 500;
    switch (status) {
    case JWTAUTHZ_E_UNAVAILABLE:
        p.status = 503;
        reason = "daemon_unavailable";
        dflt = "cannot reach jwtauthzd";
        break;
    case JWTAUTHZ_E_TIMEOUT:
        p.status = 503;
        reason = "daemon_timeout";
        dflt = "jwtauthzd did not answer in time";
        break;
    case JWTAUTHZ_E_BAD_REPLY:
        p.status = 503;
        reason = "bad_reply";
        dflt = "jwtauthzd's reply is not a valid reply";
        break;
    case JWTAUTHZ_E_TOKEN_TOO_LARGE:
        p.verdict = PROTO_VERDICT_UNAUTHORIZED;
        p.status = 401;
        reason = "token_too_large";
        dflt = "the Authorization value is longer than any token jwtauthzd accepts";
        break;
    case JWTAUTHZ_E_TOO_LARGE:
        reason = "request_too_large";
        dflt = "the request does not fit in a frame";
        break;
    case JWTAUTHZ_E_NOMEM:
        return &reply_no_memory;
    default:
        break;
    }
    if (message == NULL) {
        message = dflt;
    }
    p.reason = proto_str_make(reason, strlen(reason));
    p.message = proto_str_make(message, strlen(message));
    proto_buf_init(&buf, PROTO_MAX_REPLY_BYTES + PROTO_FRAME_HEADER_BYTES, 0);
    /* Made as the daemon would make it and read back the same way: one shape for every reply. */
    if (proto_msg_reply_encode(&buf, PROTO_MAX_REPLY_BYTES, &p, NULL) == PROTO_MSG_OK) {
        r = reply_decode((const char *)proto_buf_ptr(&buf) + PROTO_FRAME_HEADER_BYTES,
                         proto_buf_used(&buf) - PROTO_FRAME_HEADER_BYTES, 0, &st, why, sizeof(why));
    }
    proto_buf_free(&buf);
    return r ? r : &reply_no_memory;
}

/* ---- public accessors ------------------------------------------------------------------------ */

JWTAUTHZ_API jwtauthz_reply_t *jwtauthz_reply_for_status(int status, const char *message)
{
    return reply_for_status(status, message);
}

JWTAUTHZ_API void jwtauthz_reply_free(jwtauthz_reply_t *reply)
{
    reply_destroy(reply);
}

JWTAUTHZ_API const char *jwtauthz_verdict_name(jwtauthz_verdict_t v)
{
    switch (v) {
    case JWTAUTHZ_ALLOW:
        return "ALLOW";
    case JWTAUTHZ_DENY:
        return "DENY";
    case JWTAUTHZ_UNAUTHORIZED:
        return "UNAUTHORIZED";
    case JWTAUTHZ_ERROR:
        break;
    }
    return "ERROR";
}

JWTAUTHZ_API jwtauthz_verdict_t jwtauthz_reply_verdict(const jwtauthz_reply_t *r)
{
    return r ? r->verdict : JWTAUTHZ_ERROR;
}

JWTAUTHZ_API int jwtauthz_reply_status(const jwtauthz_reply_t *r)
{
    return r ? r->status : 503;
}

JWTAUTHZ_API const char *jwtauthz_reply_principal(const jwtauthz_reply_t *r)
{
    return r ? r->principal : NULL;
}

JWTAUTHZ_API const char *jwtauthz_reply_reason(const jwtauthz_reply_t *r)
{
    return r ? r->reason : NULL;
}

JWTAUTHZ_API const char *jwtauthz_reply_message(const jwtauthz_reply_t *r)
{
    return r ? r->message : NULL;
}

JWTAUTHZ_API int jwtauthz_reply_cached(const jwtauthz_reply_t *r)
{
    return r ? r->cached : 0;
}

JWTAUTHZ_API long long jwtauthz_reply_ttl(const jwtauthz_reply_t *r)
{
    return r ? r->ttl : -1;
}

JWTAUTHZ_API const char *jwtauthz_reply_id(const jwtauthz_reply_t *r)
{
    return r ? r->id : NULL;
}

JWTAUTHZ_API size_t jwtauthz_reply_context_count(const jwtauthz_reply_t *r)
{
    return r ? r->ctx_count : 0;
}

JWTAUTHZ_API int jwtauthz_reply_context_at(const jwtauthz_reply_t *r, size_t i, const char **key,
                                           const char **value)
{
    if (r == NULL || i >= r->ctx_count) {
        return 0;
    }
    if (key) {
        *key = r->ctx_keys[i];
    }
    if (value) {
        *value = r->ctx_values[i];
    }
    return 1;
}

JWTAUTHZ_API const char *jwtauthz_reply_context_get(const jwtauthz_reply_t *r, const char *key)
{
    if (r == NULL || key == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < r->ctx_count; i++) {
        if (strcmp(r->ctx_keys[i], key) == 0) {
            return r->ctx_values[i];
        }
    }
    return NULL;
}

JWTAUTHZ_API int jwtauthz_reply_ok(const jwtauthz_reply_t *r)
{
    return r ? r->ok : 0;
}

JWTAUTHZ_API const char *jwtauthz_reply_error(const jwtauthz_reply_t *r)
{
    return r ? r->error : NULL;
}

JWTAUTHZ_API int jwtauthz_reply_answers(const jwtauthz_reply_t *r, const char *id)
{
    if (r == NULL || id == NULL) {
        return 0;
    }
    if (r->id) {
        return strcmp(r->id, id) == 0;
    }
    return r->verdict == JWTAUTHZ_ERROR && !r->ok;
}

JWTAUTHZ_API const char *jwtauthz_reply_json(const jwtauthz_reply_t *r, size_t *len)
{
    static const char none[] = "{\"verdict\":\"ERROR\",\"status\":503}";

    if (r == NULL || r->json == NULL) {
        if (len) {
            *len = sizeof(none) - 1;
        }
        return none;
    }
    if (len) {
        *len = r->json_len;
    }
    return r->json;
}
