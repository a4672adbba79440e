/* The two verification stages (see token.h) and bearer extraction. The order of checks is fixed
 * here, once, for the daemon and jwtauthzctl alike: nothing about a token's claims is believed
 * before its signature verified with a configured key. */
#include "jose/token.h"

#include <string.h>

jose_reason_e jose_token_parse(apr_pool_t *p, proto_str_t token, size_t max_token_bytes,
                               int jws_only, jose_token_t *out)
{
    memset(out, 0, sizeof(*out));
    jose_reason_e r = jose_jws_parse(p, token, max_token_bytes, &out->jws);
    if (r != JOSE_OK || jws_only) {
        return r;
    }
    r = jose_claims_parse(p, out->jws, &out->claims);
    out->has_claims = r == JOSE_OK;
    return r;
}

jose_reason_e jose_token_verify(const jose_token_t *t, const jose_jwks_t *keys,
                                const jose_verify_opts_t *o, double now, const jose_jwk_t **used)
{
    if (used) {
        *used = NULL;
    }
    if (t->jws == NULL || (!o->jws_only && !t->has_claims)) {
        return JOSE_E_INTERNAL; /* stage 1 failed: the caller must not get here */
    }
    /* RFC 8725 §3.1: the verifier, not the token, decides which algorithms are acceptable. */
    if (!(o->algorithms & JOSE_ALG_BIT(t->jws->alg))) {
        return JOSE_R_ALG_NOT_ALLOWED;
    }
    /* RFC 8725 §3.11 / RFC 9068 §4: explicit typing keeps an ID token from passing as an
     * access token. */
    if (o->typ && (!t->jws->has_typ || !jose_jws_typ_matches(t->jws->typ, *o->typ))) {
        return JOSE_R_TYP_MISMATCH;
    }
    jose_reason_e r = jose_jws_verify(t->jws, keys, o->algorithms, used);
    if (r != JOSE_OK || o->jws_only) {
        return r;
    }
    return jose_claims_check(&t->claims, &o->claims, now);
}

/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int bearer_is_b64token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

jose_reason_e jose_bearer_extract(proto_str_t value, proto_str_t *token)
{
    static const char scheme[] = "bearer";
    size_t n = sizeof(scheme) - 1, i = 0;
    token->ptr = NULL;
    token->len = 0;
    if (value.len <= n) {
        return JOSE_R_TOKEN_MISSING;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value.ptr[i];
        if ((c | 0x20) != (unsigned char)scheme[i]) {
            return JOSE_R_TOKEN_MISSING;
        }
    }
    if (value.ptr[i] != ' ') {
        return JOSE_R_TOKEN_MISSING;
    }
    while (i < value.len && value.ptr[i] == ' ') {
        i++;
    }
    size_t start = i;
    while (i < value.len && bearer_is_b64token_char((unsigned char)value.ptr[i])) {
        i++;
    }
    size_t end = i;
    while (i < value.len && value.ptr[i] == '=') {
        i++;
    }
    if (end == start || i != value.len) {
        return JOSE_R_TOKEN_MISSING;
    }
    token->ptr = value.ptr + start;
    token->len = i - start;
    return JOSE_OK;
}
