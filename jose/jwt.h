/* JWT claims (RFC 7519 §4.1): read the payload as a strict JSON object, type-check the registered
 * claims, then check them against an issuer's rules at a given time. The time is a parameter so
 * tests and scenario files drive it; nothing here reads a clock. */
#ifndef JWTAUTHZ_JOSE_JWT_H
#define JWTAUTHZ_JOSE_JWT_H

#include <apr_pools.h>

#include "jose/jws.h"
#include "jose/reason.h"
#include "proto/json.h"

typedef struct jose_claims {
    const proto_json_t *root; /* the claims object */
    proto_str_t iss;
    int has_iss;
    proto_str_t sub;
    int has_sub;
    const proto_json_t *aud; /* string or array of strings, or NULL */
    double exp, nbf, iat;    /* NumericDate (RFC 7519 §2): seconds, fractions allowed */
    int has_exp, has_nbf, has_iat;
} jose_claims_t;

typedef struct jose_claims_rules {
    const proto_str_t *issuer;    /* required iss, byte for byte; NULL: not checked */
    const proto_str_t *audiences; /* one of these must be in aud; none configured: not checked */
    size_t naudiences;
    long leeway_s; /* clock skew allowed on exp, nbf and iat */
} jose_claims_rules_t;

/* Reads the payload of a parsed JWS as claims. Returns JOSE_OK, or bad_payload (not a JSON
 * object), duplicate_member, nul_in_claim (a NUL in any string or member name, at any depth),
 * bad_claim_type (exp/nbf/iat not a finite non-negative number; iss/sub not a string; aud not a
 * string or an array of strings), internal_error. */
jose_reason_e jose_claims_parse(apr_pool_t *p, const jose_jws_t *jws, jose_claims_t *out);

/* Checks claims at time now (seconds since the epoch). exp is required. Order: exp_missing,
 * token_expired, token_not_yet_valid, iat_in_future, issuer_missing, issuer_mismatch,
 * audience_mismatch. Returns JOSE_OK when all hold. */
jose_reason_e jose_claims_check(const jose_claims_t *c, const jose_claims_rules_t *rules,
                                double now);

#endif
