/* Admin requests (CONTRACT "Admin requests"): {"cmd":...} with the one argument each cmd takes.
 * Stricter than decision requests: unknown members and arguments a cmd does not take are refused,
 * because a misspelt "principal" must not widen a flush to everything. Shapes only; the daemon
 * carries the commands out. */
#include "msg.h"

#include <string.h>

#include "msg_gen.h"
#include "msg_read.h"

static const struct {
    proto_admin_cmd_e cmd;
    const char *name;
} admin_cmds[] = {
    {PROTO_ADMIN_FLUSH, "flush"},     {PROTO_ADMIN_STATS, "stats"},   {PROTO_ADMIN_KEYS, "keys"},
    {PROTO_ADMIN_REFRESH, "refresh"}, {PROTO_ADMIN_RELOAD, "reload"},
};

const char *proto_admin_cmd_name(proto_admin_cmd_e cmd)
{
    for (size_t i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++) {
        if (admin_cmds[i].cmd == cmd) {
            return admin_cmds[i].name;
        }
    }
    return NULL;
}

/* Which arguments go with the cmd: the one rule both directions apply. */
static proto_msg_status_e admin_check_args(const proto_admin_request_t *req, proto_msg_error_t *err)
{
    const char *name = proto_admin_cmd_name(req->cmd);
    int takes_flush = req->cmd == PROTO_ADMIN_FLUSH;
    int takes_issuer = req->cmd == PROTO_ADMIN_REFRESH;

    if (name == NULL) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE,
                              "\"cmd\": unknown command (flush, stats, keys, refresh, reload)");
    }
    if (!takes_flush && (req->principal.ptr || req->token.ptr)) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"%s\": not taken by cmd \"%s\"",
                              req->principal.ptr ? "principal" : "token", name);
    }
    if (req->principal.ptr && req->token.ptr) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE,
                              "\"principal\" and \"token\": give one or neither");
    }
    if (!takes_issuer && req->issuer.ptr) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"issuer\": not taken by cmd \"%s\"",
                              name);
    }
    if (takes_issuer && req->issuer.ptr == NULL) {
        return proto_msg_fail(err, PROTO_MSG_ERR_MISSING, "\"issuer\": required by cmd \"%s\"",
                              name);
    }
    return PROTO_MSG_OK;
}

proto_msg_status_e proto_msg_admin_encode(proto_buf_t *out, size_t max,
                                          const proto_admin_request_t *req, proto_msg_error_t *err)
{
    proto_msg_writer_t w;
    proto_msg_status_e st = admin_check_args(req, err);
    const char *name = proto_admin_cmd_name(req->cmd);

    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_writer_begin(&w, out, max);
    if (st != PROTO_MSG_OK) {
        return proto_msg_fail(err, st, "cannot start a frame (%s)", proto_msg_status_name(st));
    }
    proto_msg_gen_map_open(&w);
    proto_msg_gen_key(&w, "cmd");
    proto_msg_gen_str(&w, proto_str_make(name, strlen(name)));
    if (req->principal.ptr) {
        proto_msg_gen_key(&w, "principal");
        proto_msg_gen_str(&w, req->principal);
    }
    if (req->token.ptr) {
        proto_msg_gen_key(&w, "token");
        proto_msg_gen_str(&w, req->token);
    }
    if (req->issuer.ptr) {
        proto_msg_gen_key(&w, "issuer");
        proto_msg_gen_str(&w, req->issuer);
    }
    if (req->id_json) {
        proto_msg_gen_key(&w, "id");
        proto_msg_gen_json(&w, req->id_json);
    } else if (req->id.ptr) {
        proto_msg_gen_key(&w, "id");
        proto_msg_gen_str(&w, req->id);
    }
    proto_msg_gen_map_close(&w);
    return proto_msg_writer_end(&w, err);
}

static int admin_member_known(proto_str_t name)
{
    static const char *const known[] = {"cmd", "id", "principal", "token", "issuer"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (proto_str_eq_cstr(name, known[i])) {
            return 1;
        }
    }
    return 0;
}

proto_msg_status_e proto_msg_admin_decode(const char *text, size_t len, const proto_alloc_t *alloc,
                                          proto_admin_request_t *req, proto_msg_error_t *err)
{
    const proto_json_t *root;
    proto_msg_status_e st;

    memset(req, 0, sizeof(*req));
    st = proto_msg_read_object(text, len, alloc, &root, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_id(root, &req->id, &req->id_json, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    for (size_t i = 0; i < root->u.object.count; i++) {
        if (!admin_member_known(root->u.object.members[i].key)) {
            return proto_msg_fail(err, PROTO_MSG_ERR_VALUE,
                                  "unknown member (admin requests take cmd, id, principal, "
                                  "token, issuer)");
        }
    }
    st = proto_msg_read_str(root, "cmd", NULL, PROTO_MSG_REQUIRED | PROTO_MSG_STRICT,
                            &req->cmd_name, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    for (size_t i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++) {
        if (proto_str_eq_cstr(req->cmd_name, admin_cmds[i].name)) {
            req->cmd = admin_cmds[i].cmd;
        }
    }
    st = proto_msg_read_str(root, "principal", NULL, PROTO_MSG_STRICT, &req->principal, err);
    if (st == PROTO_MSG_OK) {
        /* A token is judged by the daemon's token code; NUL bytes are its business. */
        st = proto_msg_read_str(root, "token", NULL, 0, &req->token, err);
    }
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_str(root, "issuer", NULL, PROTO_MSG_STRICT, &req->issuer, err);
    }
    if (st != PROTO_MSG_OK) {
        return st;
    }
    return admin_check_args(req, err);
}
