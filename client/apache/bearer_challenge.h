/* The RFC 6750 §3 challenge mod_jwtauthz answers a refused request with:
 * WWW-Authenticate: Bearer realm="...", error="...", error_description="...".
 * Only the header's syntax is here; which error a verdict gets is decision.c's business. */
#ifndef MOD_JWTAUTHZ_BEARER_CHALLENGE_H
#define MOD_JWTAUTHZ_BEARER_CHALLENGE_H

#include <httpd.h>

/* RFC 6750 §3.1 error codes. */
#define BEARER_ERROR_INVALID_TOKEN "invalid_token"
#define BEARER_ERROR_INSUFFICIENT_SCOPE "insufficient_scope"

/* Sets WWW-Authenticate in r->err_headers_out (so it survives ErrorDocument), replacing any
 * earlier one. realm is AuthName when set, left out otherwise. error NULL: no error code and no
 * description (RFC 6750 §3.1: a request that lacked a token). description may be NULL. */
void bearer_challenge_set(request_rec *r, const char *error, const char *description);

#endif
