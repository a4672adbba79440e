/* A bearer token from end to end, in the two stages the daemon needs: parse (header and claims,
 * not yet trusted: the daemon reads iss to pick the issuer's keys and rules) and verify (algorithm,
 * typ, signature, then claims). jwtauthzctl verify runs the very same two calls. */
#ifndef JWTAUTHZ_JOSE_TOKEN_H
#define JWTAUTHZ_JOSE_TOKEN_H

#include <apr_pools.h>

#include "jose/jwk.h"
#include "jose/jws.h"
#include "jose/jwt.h"

typedef struct jose_token {
    jose_jws_t *jws;      /* NULL when parsing failed before the header was read */
    jose_claims_t claims; /* meaningful only when has_claims */
    int has_claims;
} jose_token_t;

typedef struct jose_verify_opts {
    jose_alg_set_t algorithms;  /* allowed algorithms (also bounded by each key's own) */
    const proto_str_t *typ;     /* required typ header, NULL: not checked */
    jose_claims_rules_t claims; /* iss, aud, leeway */
    int jws_only;               /* signature layer only: payload need not be claims */
} jose_verify_opts_t;

/* Stage 1: parses the compact token (at most max_token_bytes) and, unless jws_only, its claims.
 * Returns JOSE_OK or the reason from jose_jws_parse()/jose_claims_parse(). Nothing is trusted
 * yet: the signature has not been checked. */
jose_reason_e jose_token_parse(apr_pool_t *p, proto_str_t token, size_t max_token_bytes,
                               int jws_only, jose_token_t *out);

/* Stage 2: alg_not_allowed, typ_mismatch, then the signature (jose_jws_verify()), then the
 * claims at time now (jose_claims_check()). Returns JOSE_OK only when every check passed;
 * *used (if not NULL) is the key that verified. */
jose_reason_e jose_token_verify(const jose_token_t *t, const jose_jwks_t *keys,
                                const jose_verify_opts_t *o, double now, const jose_jwk_t **used);

/* RFC 6750 §2.1: extracts the token from an Authorization header value "Bearer <token>" (scheme
 * case-insensitive, one or more spaces, no trailing garbage, b64token characters only).
 * Returns JOSE_OK with *token pointing into value, or token_missing. */
jose_reason_e jose_bearer_extract(proto_str_t value, proto_str_t *token);

#endif
