/* Decision requests (CONTRACT "Decision request"): the TOKEN and REQUEST shapes of API Gateway's
 * authorizer events, encoded by the client side and decoded by the daemon. Shapes and byte rules
 * only: no token parsing, no policy, no reply policy for decode errors (the daemon owns that). */
#include "msg.h"

#include <string.h>

#include "msg_gen.h"
#include "msg_read.h"

static const char *request_type_name(proto_req_type_e t)
{
    switch (t) {
    case PROTO_REQ_TOKEN:
        return "TOKEN";
    case PROTO_REQ_REQUEST:
        return "REQUEST";
    case PROTO_REQ_UNKNOWN:
        break;
    }
    return NULL;
}

size_t proto_pairs_find_ci(const proto_pair_t *pairs, size_t count, proto_str_t name,
                           proto_str_t *value)
{
    size_t found = 0;

    for (size_t i = 0; i < count; i++) {
        proto_str_t n = pairs[i].name;
        size_t j = 0;
        if (n.len != name.len) {
            continue;
        }
        for (; j < n.len; j++) {
            unsigned char a = (unsigned char)n.ptr[j], b = (unsigned char)name.ptr[j];
            a = (a >= 'A' && a <= 'Z') ? (unsigned char)(a + 32) : a;
            b = (b >= 'A' && b <= 'Z') ? (unsigned char)(b + 32) : b;
            if (a != b) {
                break;
            }
        }
        if (j == n.len) {
            if (found == 0 && value) {
                *value = pairs[i].value;
            }
            found++;
        }
    }
    return found;
}

/* Writes "id" from either form; shared in spirit with the admin and reply encoders. */
static void request_gen_id(proto_msg_writer_t *w, proto_str_t id, const proto_json_t *id_json)
{
    if (id_json) {
        proto_msg_gen_key(w, "id");
        proto_msg_gen_json(w, id_json);
    } else if (id.ptr) {
        proto_msg_gen_key(w, "id");
        proto_msg_gen_str(w, id);
    }
}

proto_msg_status_e proto_msg_request_encode(proto_buf_t *out, size_t max,
                                            const proto_decision_request_t *req,
                                            proto_msg_error_t *err)
{
    proto_msg_writer_t w;
    const char *type = request_type_name(req->type);
    proto_msg_status_e st;

    if (type == NULL) {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE, "\"type\": unknown request type");
    }
    if (req->method_arn.ptr == NULL) {
        return proto_msg_fail(err, PROTO_MSG_ERR_MISSING, "\"methodArn\": required");
    }
    st = proto_msg_writer_begin(&w, out, max);
    if (st != PROTO_MSG_OK) {
        return proto_msg_fail(err, st, "cannot start a frame (%s)", proto_msg_status_name(st));
    }
    proto_msg_gen_map_open(&w);
    proto_msg_gen_key(&w, "type");
    proto_msg_gen_str(&w, proto_str_make(type, strlen(type)));
    if (req->type == PROTO_REQ_TOKEN && req->authorization_token.ptr) {
        proto_msg_gen_key(&w, "authorizationToken");
        proto_msg_gen_text(&w, req->authorization_token);
    }
    proto_msg_gen_key(&w, "methodArn");
    proto_msg_gen_str(&w, req->method_arn);
    if (req->type == PROTO_REQ_REQUEST) {
        if (req->http_method.ptr) {
            proto_msg_gen_key(&w, "httpMethod");
            proto_msg_gen_str(&w, req->http_method);
        }
        if (req->path.ptr) {
            proto_msg_gen_key(&w, "path");
            proto_msg_gen_str(&w, req->path);
        }
        proto_msg_gen_key(&w, "headers");
        proto_msg_gen_pairs_joined(&w, req->headers, req->header_count, PROTO_MSG_PAIRS_HTTP);
        proto_msg_gen_key(&w, "queryStringParameters");
        proto_msg_gen_pairs_joined(&w, req->query, req->query_count, PROTO_MSG_PAIRS_QUERY);
        if (req->source_ip.ptr) {
            proto_msg_gen_key(&w, "requestContext");
            proto_msg_gen_map_open(&w);
            proto_msg_gen_key(&w, "identity");
            proto_msg_gen_map_open(&w);
            proto_msg_gen_key(&w, "sourceIp");
            proto_msg_gen_str(&w, req->source_ip);
            proto_msg_gen_map_close(&w);
            proto_msg_gen_map_close(&w);
        }
    }
    request_gen_id(&w, req->id, req->id_json);
    proto_msg_gen_map_close(&w);
    return proto_msg_writer_end(&w, err);
}

/* REQUEST-only members. */
static proto_msg_status_e request_decode_http(const proto_json_t *root, const proto_alloc_t *alloc,
                                              proto_decision_request_t *req, proto_msg_error_t *err)
{
    const proto_json_t *obj;
    proto_msg_status_e st;

    st = proto_msg_read_str(root, "httpMethod", NULL, PROTO_MSG_STRICT | PROTO_MSG_NULL_ABSENT,
                            &req->http_method, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_str(root, "path", NULL, PROTO_MSG_STRICT | PROTO_MSG_NULL_ABSENT,
                            &req->path, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    /* API Gateway sends null for an empty map ("queryStringParameters": null). */
    st = proto_msg_read_object_member(root, "headers", NULL, PROTO_MSG_NULL_ABSENT, &obj, err);
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_pairs(obj, "headers", 0, alloc, &req->headers, &req->header_count, err);
    }
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_object_member(root, "queryStringParameters", NULL, PROTO_MSG_NULL_ABSENT,
                                      &obj, err);
    if (st == PROTO_MSG_OK) {
        st = proto_msg_read_pairs(obj, "queryStringParameters", 0, alloc, &req->query,
                                  &req->query_count, err);
    }
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_object_member(root, "requestContext", NULL, PROTO_MSG_NULL_ABSENT, &obj,
                                      err);
    if (st == PROTO_MSG_OK && obj) {
        st = proto_msg_read_object_member(obj, "identity", "requestContext.identity",
                                          PROTO_MSG_NULL_ABSENT, &obj, err);
    }
    if (st == PROTO_MSG_OK && obj) {
        st = proto_msg_read_str(obj, "sourceIp", "requestContext.identity.sourceIp",
                                PROTO_MSG_STRICT | PROTO_MSG_NULL_ABSENT, &req->source_ip, err);
    }
    return st;
}

proto_msg_status_e proto_msg_request_decode(const char *text, size_t len,
                                            const proto_alloc_t *alloc,
                                            proto_decision_request_t *req, proto_msg_error_t *err)
{
    const proto_json_t *root;
    proto_msg_status_e st;

    memset(req, 0, sizeof(*req));
    st = proto_msg_read_object(text, len, alloc, &root, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    /* The id first, so that an error reply about the rest can still echo it. */
    st = proto_msg_read_id(root, &req->id, &req->id_json, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    st = proto_msg_read_str(root, "type", NULL, PROTO_MSG_REQUIRED | PROTO_MSG_STRICT,
                            &req->type_name, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    if (proto_str_eq_cstr(req->type_name, "TOKEN")) {
        req->type = PROTO_REQ_TOKEN;
    } else if (proto_str_eq_cstr(req->type_name, "REQUEST")) {
        req->type = PROTO_REQ_REQUEST;
    } else {
        return proto_msg_fail(err, PROTO_MSG_ERR_VALUE,
                              "\"type\": unknown request type (TOKEN or REQUEST)");
    }
    st = proto_msg_read_str(root, "methodArn", NULL, PROTO_MSG_REQUIRED | PROTO_MSG_STRICT,
                            &req->method_arn, err);
    if (st != PROTO_MSG_OK) {
        return st;
    }
    if (req->type == PROTO_REQ_TOKEN) {
        /* Absent is no token: the daemon answers UNAUTHORIZED, not a bad request. */
        return proto_msg_read_str(root, "authorizationToken", NULL, PROTO_MSG_NULL_ABSENT,
                                  &req->authorization_token, err);
    }
    return request_decode_http(root, alloc, req, err);
}
