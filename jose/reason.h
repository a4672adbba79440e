/* Why a token is refused: one code per distinct failure, each with a stable short string used in
 * replies ("reason"), logs and stats alike. Internal failures (out of memory, no keys yet) are a
 * separate code range so they map to ERROR, never to UNAUTHORIZED or ALLOW. */
#ifndef JWTAUTHZ_JOSE_REASON_H
#define JWTAUTHZ_JOSE_REASON_H

typedef enum {
    JOSE_OK = 0,
    /* the token itself (UNAUTHORIZED 401) */
    JOSE_R_TOKEN_MISSING,     /* token_missing: no Authorization / not "Bearer ..." */
    JOSE_R_TOKEN_TOO_LARGE,   /* token_too_large: longer than max_token_bytes */
    JOSE_R_MALFORMED,         /* malformed_token: not three dot-separated parts */
    JOSE_R_BAD_BASE64,        /* bad_base64url: a part is not strict base64url (RFC 7515 §2) */
    JOSE_R_BAD_HEADER,        /* bad_header: header is not a JSON object */
    JOSE_R_BAD_PAYLOAD,       /* bad_payload: claims are not a JSON object */
    JOSE_R_DUPLICATE_MEMBER,  /* duplicate_member: a name twice in header or claims */
    JOSE_R_ALG_MISSING,       /* alg_missing */
    JOSE_R_ALG_NONE,          /* alg_none: "none" in any spelling (RFC 8725 §3.1) */
    JOSE_R_ALG_UNSUPPORTED,   /* alg_unsupported: unknown algorithm name */
    JOSE_R_ALG_NOT_ALLOWED,   /* alg_not_allowed: not in the issuer's list */
    JOSE_R_CRIT_UNSUPPORTED,  /* crit_unsupported: crit names an extension we do not know */
    JOSE_R_UNENCODED_PAYLOAD, /* unencoded_payload: "b64": false (RFC 7797) */
    JOSE_R_BAD_HEADER_PARAM,  /* bad_header_param: kid/typ/crit of the wrong JSON type */
    JOSE_R_TYP_MISMATCH,      /* typ_mismatch: typ differs from the issuer's required typ */
    JOSE_R_UNKNOWN_KID,       /* unknown_kid: no key with that kid */
    JOSE_R_NO_MATCHING_KEY,   /* no_matching_key: no key of the right type/alg/use */
    JOSE_R_BAD_SIGNATURE,     /* bad_signature */
    JOSE_R_EXP_MISSING,       /* exp_missing: an authorizer refuses tokens that never expire */
    JOSE_R_TOKEN_EXPIRED,     /* token_expired */
    JOSE_R_NOT_YET_VALID,     /* token_not_yet_valid: nbf in the future */
    JOSE_R_IAT_IN_FUTURE,     /* iat_in_future: issued later than now + leeway */
    JOSE_R_BAD_CLAIM_TYPE,    /* bad_claim_type: exp/nbf/iat/iss/aud/sub of the wrong type */
    JOSE_R_ISSUER_MISSING,    /* issuer_missing: no iss claim */
    JOSE_R_ISSUER_MISMATCH,   /* issuer_mismatch: iss not a configured issuer */
    JOSE_R_AUDIENCE_MISMATCH, /* audience_mismatch: no configured audience in aud */
    JOSE_R_NUL_IN_CLAIM,      /* nul_in_claim: a NUL byte inside a claim string */
    JOSE_R_PRINCIPAL_MISSING, /* principal_missing: the principal claim is absent or no string */
    JOSE_R_INVALID_LAST_,     /* marker: codes below are token failures */
    /* not the token's fault (ERROR 503/500) */
    JOSE_E_NO_KEYS, /* no_keys: no key set loaded for the issuer yet */
    JOSE_E_INTERNAL /* internal_error: out of memory, library failure */
} jose_reason_e;

/* The stable short string ("bad_signature"). Never NULL. */
const char *jose_reason_code(jose_reason_e r);
/* A sentence for "message" ("signature does not verify with the selected key"). Never NULL. */
const char *jose_reason_message(jose_reason_e r);
/* 1 when the reason is the token's fault (UNAUTHORIZED), 0 for OK and internal errors. */
int jose_reason_is_token_fault(jose_reason_e r);

#endif
