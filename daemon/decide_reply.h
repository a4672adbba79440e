/* Writing decision replies (CONTRACT "Decision reply"): ALLOW/DENY with the policy and context,
 * UNAUTHORIZED with a reason, ERROR with a status. Every reply is counted in stats here, once. */
#ifndef JWTAUTHZ_DAEMON_DECIDE_REPLY_H
#define JWTAUTHZ_DAEMON_DECIDE_REPLY_H

#include <apr_pools.h>

#include "daemon/policy.h"
#include "daemon/server.h"
#include "jose/reason.h"
#include "proto/buf.h"
#include "proto/json.h"

typedef struct decide_reply_ctx {
    srv_t *srv;
    gen_t *gen;
    const proto_json_t *id_json; /* the request's "id", echoed */
    proto_str_t method_arn;
    const unsigned char *token_hash; /* for log lines; NULL before the token was found */
} decide_reply_ctx_t;

/* A verified token's grant: its policy (the rules it meets), principal and context. */
typedef struct decide_grant {
    const policy_match_t *match;
    proto_str_t principal;
    proto_str_t context_json; /* a JSON object's text, written verbatim */
    int cached;
    int64_t ttl; /* seconds the decision may be reused */
} decide_grant_t;

void decide_reply_ctx_init(decide_reply_ctx_t *rc, srv_t *srv, gen_t *g,
                           const proto_json_t *id_json, proto_str_t method_arn);

/* Evaluates method_arn against the grant's policy: ALLOW 200 or DENY 403, with the policy. */
void decide_reply_grant(const decide_reply_ctx_t *rc, const decide_grant_t *grant,
                        proto_buf_t *out);
/* UNAUTHORIZED 401 with reason and message. */
void decide_reply_refusal(const decide_reply_ctx_t *rc, jose_reason_e reason, proto_buf_t *out);
/* ERROR with status 500 or 503. */
void decide_reply_error(const decide_reply_ctx_t *rc, int status, jose_reason_e reason,
                        proto_buf_t *out);
/* ERROR 500 reason bad_request: the frame was JSON but not a decision request. */
void decide_reply_bad_request(const decide_reply_ctx_t *rc, const char *message, proto_buf_t *out);
/* ERROR with any reason string: the event loop's own failures (bad frame, overload). */
void decide_reply_error_text(const decide_reply_ctx_t *rc, int status, const char *reason,
                             const char *message, proto_buf_t *out);

/* Builds the context object from the issuer's context_claims: strings, numbers and booleans as
 * they are (API Gateway's context allows only those); arrays and objects as their JSON text in a
 * string. Returns 0 with *out in pool, or -1 when out of memory. */
int decide_context_json(apr_pool_t *pool, const conf_issuer_t *iss, const proto_json_t *claims,
                        proto_str_t *out);

#endif
