/* Replies (CONTRACT "Decision reply", "Admin requests"): the daemon encodes them, libjwtauthz and
 * the nginx module decode them. Decoding fails closed: a missing or unknown verdict, a status that
 * does not go with it, a known member of the wrong type or a NUL in a string is an error, which
 * callers must turn into ERROR, never ALLOW. Unknown members are ignored for forward compatibility.
 */
#include "msg.h"

#include <limits.h>
#include <string.h>

#include "msg_gen.h"
#include "msg_read.h"

/* IAM policy language version the contract's policyDocument carries. */
#define REPLY_POLICY_VERSION "2012-10-17"
#define REPLY_POLICY_ACTION "execute-api:Invoke"

const char *proto_verdict_name(proto_verdict_e v)
{
    switch (v) {
    case PROTO_VERDICT_ALLOW:
        return "ALLOW";
    case PROTO_VERDICT_DENY:
        return "DENY";
    case PROTO_VERDICT_UNAUTHORIZED:
        return "UNAUTHORIZED";
    case PROTO_VERDICT_ERROR:
        break;
    }
    return "ERROR";
}

int proto_verdict_parse(proto_str_t s, proto_verdict_e *out)
{
    static const proto_verdict_e all[] = {PROTO_VERDICT_ALLOW, PROTO_VERDICT_DENY,
                                          PROTO_VERDICT_UNAUTHORIZED, PROTO_VERDICT_ERROR};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (proto_str_eq_cstr(s, proto_verdict_name(all[i]))) {
            *out = all[i];
            return 1;
        }
    }
    return 0;
}

int proto_verdict_status_match(proto_verdict_e v, long long status)
{
    switch (v) {
    case PROTO_VERDICT_ALLOW:
        return status == 200;
    case PROTO_VERDICT_DENY:
        return status == 403;
    case PROTO_VERDICT_UNAUTHORIZED:
        return status == 401;
    case PROTO_VERDICT_ERROR:
        return status == 500 || status == 503;
    }
    return 0;
}

const char *proto_msg_status_name(proto_msg_status_e st)
{
    switch (st) {
    case PROTO_MSG_OK:
        return "ok";
    case PROTO_MSG_ERR_JSON:
        return "bad_json";
    case PROTO_MSG_ERR_NOT_OBJECT:
        return "not_an_object";
    case PROTO_MSG_ERR_MISSING:
        return "missing_member";
    case PROTO_MSG_ERR_TYPE:
        return "wrong_type";
    case PROTO_MSG_ERR_VALUE:
        return "bad_value";
    case PROTO_MSG_ERR_TOO_LARGE:
        return "too_large";
    case PROTO_MSG_ERR_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}

static void reply_gen_policy(proto_msg_writer_t *w, const proto_reply_t *r)
{
    proto_msg_gen_key(w, "policyDocument");
    proto_msg_gen_map_open(w);
    proto_msg_gen_key(w, "Version");
    proto_msg_gen_str(w, PROTO_STR_LIT(REPLY_POLICY_VERSION));
    proto_msg_gen_key(w, "Statement");
    proto_msg_gen_array_open(w);
    for (size_t i = 0; i < r->statement_count; i++) {
        const proto_policy_statement_t *s = &r->statements[i];
        proto_msg_gen_map_open(w);
        proto_msg_gen_key(w, "Action");
        proto_msg_gen_str(w, PROTO_STR_LIT(REPLY_POLICY_ACTION));
        proto_msg_gen_key(w, "Effect");
        proto_msg_gen_str(w, s->allow ? PROTO_STR_LIT("Allow") : PROTO_STR_LIT("Deny"));
        proto_msg_gen_key(w, "Resource");
        proto_msg_gen_array_open(w);
        for (size_t j = 0; j < s->resource_count; j++) {
            proto_msg_gen_str(w, s->resources[j]);
        }
        proto_msg_gen_array_close(w);
        proto_msg_gen_map_close(w);
    }
    proto_msg_gen_array_close(w);
    proto_msg_gen_map_close(w);
}

static void reply_gen_context(proto_msg_writer_t *w, const proto_reply_t *r)
{
    proto_msg_gen_key(w, "context");
    proto_msg_gen_map_open(w);
    for (size_t i = 0; i < r->context_count; i++) {
        const proto_pair_t *p = &r->context[i];
        w->member = "context"; /* names in messages: the member this name belongs to */
        proto_msg_gen_str(w, p->name);
        if (p->json) {
            proto_msg_gen_json(w, p->json);
        } else {
            proto_msg_gen_str(w, p->value);
        }
    }
    proto_msg_gen_map_close(w);
}

proto_msg_status_e proto_msg_reply_encode(proto_buf_t *out, size_t max, const proto_reply_t *r,
                                          proto_msg_error_t *err)
{
    proto_msg_writer_t w;
    int with_verdict = r->kind == PROTO_REPLY_DECISION || r->has_verdict;
    proto_msg_status_e st;

    if (with_verdict && !proto_verdict_status_match(r->verdict, r->status)) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"status\": %d does not go with %s",
                              r->status, proto_verdict_name(r->verdict));
    }
    if (r->has_ttl && r->ttl < 0) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"ttl\": negative");
    }
    st = proto_msg_writer_begin(&w, out, max);
    if (st != PROTO_MSG_OK) {
        return proto_msg_fail(err, st, "cannot start a frame (%s)", proto_msg_status_name(st));
    }
    proto_msg_gen_map_open(&w);
    if (r->kind == PROTO_REPLY_ADMIN && r->has_ok) {
        proto_msg_gen_key(&w, "ok");
        proto_msg_gen_bool(&w, r->ok);
    }
    if (with_verdict) {
        const char *v = proto_verdict_name(r->verdict);
        proto_msg_gen_key(&w, "verdict");
        proto_msg_gen_str(&w, proto_str_make(v, strlen(v)));
        proto_msg_gen_key(&w, "status");
        proto_msg_gen_int(&w, r->status);
    }
    if (r->principal_id.ptr) {
        proto_msg_gen_key(&w, "principalId");
        proto_msg_gen_str(&w, r->principal_id);
    }
    if (r->has_policy) {
        reply_gen_policy(&w, r);
    }
    if (r->context_count) {
        reply_gen_context(&w, r);
    }
    if (r->reason.ptr) {
        proto_msg_gen_key(&w, "reason");
        proto_msg_gen_text(&w, r->reason);
    }
    if (r->message.ptr) {
        proto_msg_gen_key(&w, "message");
        proto_msg_gen_text(&w, r->message);
    }
    if (r->kind == PROTO_REPLY_ADMIN && r->error.ptr) {
        proto_msg_gen_key(&w, "error");
        proto_msg_gen_text(&w, r->error);
    }
    if (r->has_cached) {
        proto_msg_gen_key(&w, "cached");
        proto_msg_gen_bool(&w, r->cached);
    }
    if (r->has_ttl) {
        proto_msg_gen_key(&w, "ttl");
        proto_msg_gen_int(&w, r->ttl);
    }
    if (r->id_json) {
        proto_msg_gen_key(&w, "id");
        proto_msg_gen_json(&w, r->id_json);
    } else if (r->id.ptr) {
        proto_msg_gen_key(&w, "id");
        proto_msg_gen_str(&w, r->id);
    }
    proto_msg_gen_map_close(&w);
    return proto_msg_writer_end(&w, err);
}

proto_msg_status_e proto_msg_error_reply_encode(proto_buf_t *out, size_t max, int status,
                                                proto_str_t reason, proto_str_t message,
                                                const proto_json_t *id_json, proto_msg_error_t *err)
{
    proto_reply_t r;

    memset(&r, 0, sizeof(r));
    r.kind = PROTO_REPLY_DECISION;
    r.verdict = PROTO_VERDICT_ERROR;
    r.status = status;
    r.reason = reason;
    r.message = message;
    r.id_json = id_json;
    return proto_msg_reply_encode(out, max, &r, err);
}

/* verdict and status, with their rules; has_verdict says whether a verdict came. */
static proto_msg_status_e reply_decode_verdict(const proto_json_t *root, proto_reply_kind_e kind,
                                               proto_reply_t *r, proto_msg_error_t *err)
{
    proto_str_t v;
    long long status;
    int present;
    unsigned req = kind == PROTO_REPLY_DECISION ? PROTO_MSG_REQUIRED : 0;
    proto_msg_status_e st;

    st = proto_msg_read_str(root, "verdict", NULL, req | PROTO_MSG_STRICT, &v, err);
    if (st != PROTO_MSG_OK || v.ptr == NULL) {
        return st;
    }
    if (!proto_verdict_parse(v, &r->verdict)) {
        r->verdict = PROTO_VERDICT_ERROR;
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE,
                              "\"verdict\": not ALLOW, DENY, UNAUTHORIZED or ERROR");
    }
    r->has_verdict = 1;
    st = proto_msg_read_int(root, "status", PROTO_MSG_REQUIRED, 100, 599, &present, &status, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    if (!proto_verdict_status_match(r->verdict, status)) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"status\": %lld does not go with %s",
                              status, proto_verdict_name(r->verdict));
    }
    r->status = (int)status;
    return PROTO_MSG_OK;
}

static proto_msg_status_e reply_decode_admin(const proto_json_t *root, proto_reply_t *r,
                                             proto_msg_error_t *err)
{
    proto_msg_status_e st;

    st = proto_msg_read_bool(root, "ok", r->has_verdict ? 0 : PROTO_MSG_REQUIRED, &r->has_ok,
                             &r->ok, err);
    if (st == PROTO_MSG_OK && r->has_ok && r->ok && r->has_verdict &&
        r->verdict == PROTO_VERDICT_ERROR) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"ok\": true with an ERROR verdict");
    }
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_str(root, "error", NULL, PROTO_MSG_NO_NUL, &r->error, err);
    }
    return st;
}

static proto_msg_status_e reply_decode_members(const proto_json_t *root, const proto_alloc_t *alloc,
                                               proto_reply_t *r, proto_msg_error_t *err)
{
    const proto_json_t *obj;
    int present;
    proto_msg_status_e st;

    st = proto_msg_read_str(root, "principalId", NULL, PROTO_MSG_STRICT, &r->principal_id, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_object_member(root, "policyDocument", NULL, 0, &obj, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_object_member(root, "context", NULL, 0, &obj, err);
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_pairs(obj, "context", PROTO_MSG_NO_NUL | PROTO_MSG_ANY_VALUE, alloc,
                                  &r->context, &r->context_count, err);
    }
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_str(root, "reason", NULL, PROTO_MSG_NO_NUL, &r->reason, err);
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_str(root, "message", NULL, PROTO_MSG_NO_NUL, &r->message, err);
    }
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_bool(root, "cached", 0, &r->has_cached, &r->cached, err);
    }
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_int(root, "ttl", 0, 0, LLONG_MAX, &present, &r->ttl, err);
        r->has_ttl = present;
    }
    return st;
}

proto_msg_status_e proto_msg_reply_decode(const char *text, size_t len, proto_reply_kind_e kind,
                                          const proto_alloc_t *alloc, proto_reply_t *r,
                                          proto_msg_error_t *err)
{
    const proto_json_t *root;
    proto_msg_status_e st;
    char *raw;

    memset(r, 0, sizeof(*r));
    r->kind = kind;
    st = proto_msg_read_object(text, len, alloc, &root, err);
    if (st != PROTO_MSG_OK) {
        goto out;
    }
    raw = proto_alloc(alloc, len + 1);
    if (raw == NULL) {
        st = proto_msg_fail(err, PROTO_MSG_ERR_NO_MEMORY, "out of memory copying the reply");
        goto out;
    }
    memcpy(raw, text, len);
    raw[len] = '\0';
    r->raw = proto_str_make(raw, len);
    st = proto_msg_read_id(root, &r->id, &r->id_json, err);
    if (st == PROTO_MSG_OK) {
        st = reply_decode_verdict(root, kind, r, err);
    }
    if (st == PROTO_MSG_OK && kind == PROTO_REPLY_ADMIN) {
        st = reply_decode_admin(root, r, err);
    }
    if (st == PROTO_MSG_OK) {
        st = reply_decode_members(root, alloc, r, err);
    }
out:
    if (st != PROTO_MSG_OK) {
        /* Whatever was read, a failed reply must not look like a decision. */
        r->verdict = PROTO_VERDICT_ERROR;
        r->ok = 0;
    }
    return st;
}
