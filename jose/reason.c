/* Stable reason codes and their messages (see reason.h). The strings are part of the contract:
 * replies, logs and stats use them, and operators grep for them. Never rename one. */
#include "jose/reason.h"

#include <stddef.h>

typedef struct reason_text {
    const char *code;
    const char *message;
} reason_text_t;

static const reason_text_t reason_texts[] = {
    [JOSE_OK] = {"ok", "token is valid"},
    [JOSE_R_TOKEN_MISSING] = {"token_missing", "no bearer token in the request"},
    [JOSE_R_TOKEN_TOO_LARGE] = {"token_too_large", "token is longer than max_token_bytes"},
    [JOSE_R_MALFORMED] = {"malformed_token", "token is not a JWS in compact form (three parts)"},
    [JOSE_R_BAD_BASE64] = {"bad_base64url", "a token part is not canonical base64url"},
    [JOSE_R_BAD_HEADER] = {"bad_header", "protected header is not a JSON object"},
    [JOSE_R_BAD_PAYLOAD] = {"bad_payload", "claims are not a JSON object"},
    [JOSE_R_DUPLICATE_MEMBER] = {"duplicate_member", "a member name appears twice"},
    [JOSE_R_ALG_MISSING] = {"alg_missing", "header has no alg"},
    [JOSE_R_ALG_NONE] = {"alg_none", "unsigned tokens (alg none) are never accepted"},
    [JOSE_R_ALG_UNSUPPORTED] = {"alg_unsupported", "header alg is not a supported JWS algorithm"},
    [JOSE_R_ALG_NOT_ALLOWED] = {"alg_not_allowed", "header alg is not allowed for this issuer"},
    [JOSE_R_CRIT_UNSUPPORTED] = {"crit_unsupported", "header crit names an unsupported extension"},
    [JOSE_R_UNENCODED_PAYLOAD] = {"unencoded_payload",
                                  "unencoded payloads (b64 false) are refused"},
    [JOSE_R_BAD_HEADER_PARAM] = {"bad_header_param", "a header parameter has the wrong type"},
    [JOSE_R_TYP_MISMATCH] = {"typ_mismatch", "header typ is not the one this issuer requires"},
    [JOSE_R_UNKNOWN_KID] = {"unknown_kid", "no key with the token's kid"},
    [JOSE_R_NO_MATCHING_KEY] = {"no_matching_key", "no key may verify this algorithm"},
    [JOSE_R_BAD_SIGNATURE] = {"bad_signature", "signature does not verify"},
    [JOSE_R_EXP_MISSING] = {"exp_missing", "token has no exp claim"},
    [JOSE_R_TOKEN_EXPIRED] = {"token_expired", "token has expired"},
    [JOSE_R_NOT_YET_VALID] = {"token_not_yet_valid", "token is not valid yet (nbf)"},
    [JOSE_R_IAT_IN_FUTURE] = {"iat_in_future", "token was issued in the future (iat)"},
    [JOSE_R_BAD_CLAIM_TYPE] = {"bad_claim_type", "a registered claim has the wrong type"},
    [JOSE_R_ISSUER_MISSING] = {"issuer_missing", "token has no iss claim"},
    [JOSE_R_ISSUER_MISMATCH] = {"issuer_mismatch", "token iss is not a configured issuer"},
    [JOSE_R_AUDIENCE_MISMATCH] = {"audience_mismatch", "token aud has no configured audience"},
    [JOSE_R_NUL_IN_CLAIM] = {"nul_in_claim", "a claim string holds a NUL byte"},
    [JOSE_R_PRINCIPAL_MISSING] = {"principal_missing",
                                  "the principal claim is missing or not a string"},
    [JOSE_R_INVALID_LAST_] = {"invalid_token", "token is invalid"},
    [JOSE_E_NO_KEYS] = {"no_keys", "no keys are loaded for this issuer yet"},
    [JOSE_E_INTERNAL] = {"internal_error", "internal error while verifying"},
};

const char *jose_reason_code(jose_reason_e r)
{
    if ((unsigned)r >= sizeof(reason_texts) / sizeof(reason_texts[0]) ||
        reason_texts[r].code == NULL) {
        return "internal_error";
    }
    return reason_texts[r].code;
}

const char *jose_reason_message(jose_reason_e r)
{
    if ((unsigned)r >= sizeof(reason_texts) / sizeof(reason_texts[0]) ||
        reason_texts[r].message == NULL) {
        return "internal error";
    }
    return reason_texts[r].message;
}

int jose_reason_is_token_fault(jose_reason_e r)
{
    return r > JOSE_OK && r < JOSE_R_INVALID_LAST_;
}
