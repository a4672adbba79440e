/* Request encoding shared by the blocking client and the sans-I/O functions: public arguments in,
 * a whole frame appended to a proto_buf_t out, with the library's status codes. Internal to
 * libjwtauthz; not installed. No I/O. */
#ifndef JWTAUTHZ_CLIENT_CODEC_H
#define JWTAUTHZ_CLIENT_CODEC_H

#include <stddef.h>

#include "jwtauthz.h"
#include "proto/buf.h"
#include "proto/limits.h"

/* The largest request frame body the library writes: any daemon's frame cap is at most this. */
#define CODEC_MAX_REQUEST_BYTES PROTO_MAX_FRAME_BYTES_CEILING

/* Each appends one request frame to out and returns JWTAUTHZ_OK, or JWTAUTHZ_E_INVALID,
 * JWTAUTHZ_E_TOKEN_TOO_LARGE (token only), JWTAUTHZ_E_TOO_LARGE, JWTAUTHZ_E_NOMEM with why in msg
 * and out unchanged. */
int codec_token_encode(proto_buf_t *out, jwtauthz_str_t authorization, jwtauthz_str_t method_arn,
                       jwtauthz_str_t id, char *msg, size_t msg_size);
int codec_request_encode(proto_buf_t *out, const jwtauthz_request_t *req, jwtauthz_str_t id,
                         char *msg, size_t msg_size);
int codec_admin_encode(proto_buf_t *out, jwtauthz_admin_cmd_t cmd, jwtauthz_str_t arg,
                       jwtauthz_str_t id, char *msg, size_t msg_size);

#endif
