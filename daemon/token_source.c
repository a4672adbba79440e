/* Finding the bearer token in a decision request (see token_source.h). Only syntax here: what
 * the token says is jose/'s business. A request that carries two different places' tokens uses
 * the first in the contract's order; one that carries two Authorization headers is refused. */
#include "daemon/token_source.h"

#include "jose/token.h"

int token_source_cookie(proto_str_t header, proto_str_t name, proto_str_t *value)
{
    size_t i = 0;
    while (i < header.len) {
        while (i < header.len && (header.ptr[i] == ' ' || header.ptr[i] == ';')) {
            i++;
        }
        size_t start = i;
        while (i < header.len && header.ptr[i] != ';') {
            i++;
        }
        proto_str_t pair = proto_str_make(header.ptr + start, i - start);
        const char *eq = memchr(pair.ptr, '=', pair.len);
        if (eq == NULL) {
            continue;
        }
        proto_str_t n = proto_str_make(pair.ptr, (size_t)(eq - pair.ptr));
        while (n.len && n.ptr[n.len - 1] == ' ') {
            n.len--;
        }
        if (!proto_str_eq(n, name)) {
            continue;
        }
        /* The value runs from after '=' to the end of the pair: measured from '=' itself, as
         * the name's length no longer counts the spaces trimmed off it. */
        proto_str_t v = proto_str_make(eq + 1, (size_t)(pair.ptr + pair.len - (eq + 1)));
        while (v.len && v.ptr[0] == ' ') {
            v.ptr++;
            v.len--;
        }
        while (v.len && v.ptr[v.len - 1] == ' ') {
            v.len--;
        }
        /* RFC 6265 §4.1.1: a cookie value may be wrapped in double quotes. */
        if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
            v.ptr++;
            v.len -= 2;
        }
        *value = v;
        return 1;
    }
    return 0;
}

/* A token taken from a cookie or query parameter is the bare compact JWS, not "Bearer ...". */
static jose_reason_e token_source_bare(proto_str_t v, proto_str_t *token)
{
    if (v.len == 0) {
        return JOSE_R_TOKEN_MISSING;
    }
    *token = v;
    return JOSE_OK;
}

jose_reason_e token_source_find(const conf_t *conf, const proto_decision_request_t *req,
                                proto_str_t *token)
{
    token->ptr = NULL;
    token->len = 0;
    if (req->type == PROTO_REQ_TOKEN) {
        if (req->authorization_token.ptr == NULL) {
            return JOSE_R_TOKEN_MISSING;
        }
        return jose_bearer_extract(req->authorization_token, token);
    }
    proto_str_t v;
    size_t n =
        proto_pairs_find_ci(req->headers, req->header_count, PROTO_STR_LIT("authorization"), &v);
    if (n > 1) {
        return JOSE_R_TOKEN_MISSING; /* two Authorization headers: which one would the app see? */
    }
    if (n == 1) {
        return jose_bearer_extract(v, token);
    }
    if (conf->token_cookie.ptr) {
        proto_str_t cookie;
        size_t nc =
            proto_pairs_find_ci(req->headers, req->header_count, PROTO_STR_LIT("cookie"), &cookie);
        if (nc == 1 && token_source_cookie(cookie, conf->token_cookie, &v)) {
            return token_source_bare(v, token);
        }
    }
    if (conf->token_query.ptr) {
        for (size_t i = 0; i < req->query_count; i++) {
            if (proto_str_eq(req->query[i].name, conf->token_query)) {
                return token_source_bare(req->query[i].value, token);
            }
        }
    }
    return JOSE_R_TOKEN_MISSING;
}
