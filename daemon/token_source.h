/* Where a request's bearer token comes from. TOKEN events: authorizationToken, as an
 * Authorization header carries it. REQUEST events: the Authorization header (any case), else the
 * configured cookie, else the configured query parameter (CONTRACT "Decision request"). */
#ifndef JWTAUTHZ_DAEMON_TOKEN_SOURCE_H
#define JWTAUTHZ_DAEMON_TOKEN_SOURCE_H

#include "daemon/conf.h"
#include "jose/reason.h"
#include "proto/msg.h"

/* Returns JOSE_OK with *token pointing into the request, or token_missing (no token, not
 * "Bearer <token>", or the source is ambiguous: two Authorization headers). */
jose_reason_e token_source_find(const conf_t *conf, const proto_decision_request_t *req,
                                proto_str_t *token);

/* RFC 6265 §4.2.1: finds cookie name in a Cookie header value ("a=1; b=2"). Returns 1 and sets
 * *value, 0 when absent. */
int token_source_cookie(proto_str_t header, proto_str_t name, proto_str_t *value);

#endif
