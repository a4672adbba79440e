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

/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
 * A table: every decision request's token passes through here, ~700 bytes each, and a chain of
 * comparisons per byte was 12 % of a cached decision. */
static const unsigned char bearer_b64token_char[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['+'] = 1, ['/'] = 1, ['0'] = 1, ['1'] = 1,
    ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1,
    ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

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
    while (i < value.len && bearer_b64token_char[(unsigned char)value.ptr[i]]) {
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
