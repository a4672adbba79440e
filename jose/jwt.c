/* JWT claim reading and checking (see jwt.h). Registered claims are type-checked here, once, so
 * later code (policy, context, principal) can trust their shapes. This file must not verify
 * signatures: claims are only trusted after jose_jws_verify() said so. */
#include "jose/jwt.h"

#include <math.h>
#include <string.h>

#include "jose/pool.h"

/* A NUL inside a claim would be cut short by any C string API downstream (a header, an
 * environment variable, a log line): refuse it anywhere in the document. */
static int json_has_nul(const proto_json_t *v)
{
    switch (v->type) {
    case PROTO_JSON_STRING:
        return proto_str_has_nul(v->u.string);
    case PROTO_JSON_ARRAY:
        for (size_t i = 0; i < v->u.array.count; i++) {
            if (json_has_nul(v->u.array.items[i])) {
                return 1;
            }
        }
        return 0;
    case PROTO_JSON_OBJECT:
        for (size_t i = 0; i < v->u.object.count; i++) {
            if (proto_str_has_nul(v->u.object.members[i].key) ||
                json_has_nul(v->u.object.members[i].value)) {
                return 1;
            }
        }
        return 0;
    default:
        return 0;
    }
}

/* RFC 7519 §2 NumericDate: a JSON number of seconds, fractions allowed. Strings ("exp":"1700..."),
 * booleans, non-finite or negative values are refused rather than coerced. */
static int claims_numeric_date(const proto_json_t *root, const char *name, double *out,
                               int *present)
{
    const proto_json_t *v = proto_json_get(root, name);
    *present = 0;
    if (v == NULL) {
        return 1;
    }
    if (v->type != PROTO_JSON_NUMBER || !v->u.number.is_finite || v->u.number.value < 0) {
        return 0;
    }
    *out = v->u.number.value;
    *present = 1;
    return 1;
}

static int claims_string(const proto_json_t *root, const char *name, proto_str_t *out, int *present)
{
    const proto_json_t *v = proto_json_get(root, name);
    *present = 0;
    if (v == NULL) {
        return 1;
    }
    if (v->type != PROTO_JSON_STRING) {
        return 0;
    }
    *out = v->u.string;
    *present = 1;
    return 1;
}

/* RFC 7519 §4.1.3: aud is a string or an array of strings. */
static int claims_audience_shape_ok(const proto_json_t *aud)
{
    if (aud->type == PROTO_JSON_STRING) {
        return 1;
    }
    if (aud->type != PROTO_JSON_ARRAY) {
        return 0;
    }
    for (size_t i = 0; i < aud->u.array.count; i++) {
        if (aud->u.array.items[i]->type != PROTO_JSON_STRING) {
            return 0;
        }
    }
    return 1;
}

jose_reason_e jose_claims_parse(apr_pool_t *p, const jose_jws_t *jws, jose_claims_t *out)
{
    memset(out, 0, sizeof(*out));
    proto_json_t *root;
    proto_json_status_e st =
        jose_json_read(p, (const char *)jws->payload, jws->payload_len, &root, NULL);
    if (st == PROTO_JSON_DUPLICATE_KEY) {
        return JOSE_R_DUPLICATE_MEMBER;
    }
    if (st == PROTO_JSON_NO_MEMORY) {
        return JOSE_E_INTERNAL;
    }
    if (st != PROTO_JSON_OK || root->type != PROTO_JSON_OBJECT) {
        return JOSE_R_BAD_PAYLOAD;
    }
    if (json_has_nul(root)) {
        return JOSE_R_NUL_IN_CLAIM;
    }
    out->root = root;
    if (!claims_numeric_date(root, "exp", &out->exp, &out->has_exp) ||
        !claims_numeric_date(root, "nbf", &out->nbf, &out->has_nbf) ||
        !claims_numeric_date(root, "iat", &out->iat, &out->has_iat) ||
        !claims_string(root, "iss", &out->iss, &out->has_iss) ||
        !claims_string(root, "sub", &out->sub, &out->has_sub)) {
        return JOSE_R_BAD_CLAIM_TYPE;
    }
    out->aud = proto_json_get(root, "aud");
    if (out->aud && !claims_audience_shape_ok(out->aud)) {
        return JOSE_R_BAD_CLAIM_TYPE;
    }
    return JOSE_OK;
}

static int claims_audience_matches(const proto_json_t *aud, const jose_claims_rules_t *rules)
{
    size_t n = aud->type == PROTO_JSON_ARRAY ? aud->u.array.count : 1;
    for (size_t i = 0; i < n; i++) {
        proto_str_t a =
            aud->type == PROTO_JSON_ARRAY ? aud->u.array.items[i]->u.string : aud->u.string;
        for (size_t j = 0; j < rules->naudiences; j++) {
            if (proto_str_eq(a, rules->audiences[j])) {
                return 1;
            }
        }
    }
    return 0;
}

jose_reason_e jose_claims_check(const jose_claims_t *c, const jose_claims_rules_t *rules,
                                double now)
{
    double leeway = (double)rules->leeway_s;
    if (isnan(now)) {
        return JOSE_E_INTERNAL; /* a broken clock must not make every comparison false */
    }
    /* RFC 7519 §4.1.4 makes exp optional; an authorizer must not accept tokens that never
     * expire (RFC 8725 §3.10 is about the same class of mistake), so here it is required. */
    if (!c->has_exp) {
        return JOSE_R_EXP_MISSING;
    }
    /* §4.1.4: the current time must be before exp (now == exp is expired). */
    if (now >= c->exp + leeway) {
        return JOSE_R_TOKEN_EXPIRED;
    }
    /* §4.1.5: the current time must be at or after nbf. */
    if (c->has_nbf && now + leeway < c->nbf) {
        return JOSE_R_NOT_YET_VALID;
    }
    if (c->has_iat && c->iat > now + leeway) {
        return JOSE_R_IAT_IN_FUTURE;
    }
    if (rules->issuer) {
        if (!c->has_iss) {
            return JOSE_R_ISSUER_MISSING;
        }
        /* §4.1.1 and RFC 8414 §3.3: compared byte for byte, no normalisation. */
        if (!proto_str_eq(c->iss, *rules->issuer)) {
            return JOSE_R_ISSUER_MISMATCH;
        }
    }
    /* §4.1.3: when audiences are configured, the token must name one; a token with no aud is
     * refused, not waved through. */
    if (rules->naudiences > 0 && (c->aud == NULL || !claims_audience_matches(c->aud, rules))) {
        return JOSE_R_AUDIENCE_MISMATCH;
    }
    return JOSE_OK;
}
