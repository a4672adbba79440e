/* JWS compact serialization (RFC 7515 §7.1): split, strictly decode and read the protected
 * header; then verify the signature with a key chosen from a set by kid and algorithm. The header
 * may offer keys (jwk, jku, x5u, x5c): they are never read. No claims here (see jwt.h). */
#ifndef JWTAUTHZ_JOSE_JWS_H
#define JWTAUTHZ_JOSE_JWS_H

#include <stddef.h>

#include <apr_pools.h>

#include "jose/alg.h"
#include "jose/jwk.h"
#include "jose/reason.h"
#include "proto/json.h"

typedef struct jose_jws {
    proto_str_t signing_input; /* ASCII(BASE64URL(header) '.' BASE64URL(payload)), RFC 7515 §5.2 */
    const proto_json_t *header;
    const unsigned char *payload; /* decoded; NUL-terminated for convenience, length rules */
    size_t payload_len;
    const unsigned char *signature;
    size_t signature_len;
    jose_alg_e alg;
    proto_str_t kid; /* empty unless has_kid */
    int has_kid;
    proto_str_t typ; /* empty unless has_typ */
    int has_typ;
} jose_jws_t;

/* Splits and decodes a compact JWS of at most max_token_bytes and reads its header.
 * Returns JOSE_OK and sets *out, or: token_too_large (checked first, before any work),
 * malformed_token, bad_base64url, bad_header, duplicate_member, alg_missing, alg_none,
 * alg_unsupported, crit_unsupported, unencoded_payload, bad_header_param; internal_error when
 * memory runs out. */
jose_reason_e jose_jws_parse(apr_pool_t *p, proto_str_t token, size_t max_token_bytes,
                             jose_jws_t **out);

/* Verifies the signature with a key from keys: the one whose kid equals the token's kid when the
 * token names one, otherwise each key that may verify alg. The algorithm must be in allowed and
 * in the key's own set (type, curve, the key's alg).
 * Returns JOSE_OK (and *used, if not NULL, is the key), alg_not_allowed, unknown_kid,
 * no_matching_key, bad_signature, or internal_error. */
jose_reason_e jose_jws_verify(const jose_jws_t *jws, const jose_jwks_t *keys,
                              jose_alg_set_t allowed, const jose_jwk_t **used);

/* RFC 7515 §4.1.9 / RFC 9068 §4: compares typ with a required media type, ignoring ASCII case
 * and an "application/" prefix on either side. Returns 1 when they name the same type. */
int jose_jws_typ_matches(proto_str_t typ, proto_str_t required);

#endif
