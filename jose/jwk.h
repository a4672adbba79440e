/* JSON Web Keys (RFC 7517) and key sets, parsed into keys ready to verify with: an EVP_PKEY built
 * once per key (not per token) or an HMAC secret. A set is taken key by key: a key that is
 * malformed, too weak, of an unknown type or not for signatures is skipped with a reason, and the
 * rest are used. No network, no threads. */
#ifndef JWTAUTHZ_JOSE_JWK_H
#define JWTAUTHZ_JOSE_JWK_H

#include <stddef.h>

#include <apr_pools.h>
#include <openssl/evp.h>

#include "jose/alg.h"
#include "proto/json.h"

typedef struct jose_jwk {
    proto_str_t kid; /* empty when the key has no "kid" */
    int has_kid;
    jose_kty_e kty;
    jose_crv_e crv;         /* EC and OKP */
    jose_alg_e alg;         /* the key's own "alg", JOSE_ALG_UNKNOWN when it has none */
    jose_alg_set_t algs;    /* every algorithm this key may verify (type, curve, alg, use) */
    int bits;               /* RSA modulus bits, EC/OKP field bits, oct key bits */
    EVP_PKEY *pkey;         /* RSA/EC/OKP: freed by a cleanup on the pool it was parsed in */
    const unsigned char *secret; /* oct: wiped by a cleanup on the pool */
    size_t secret_len;
} jose_jwk_t;

/* A key the set could not use, and why ("rsa_too_small", "unknown_kty", "not_on_curve",
 * "not_for_signing", "bad_member", "duplicate_kid", "oct_not_allowed", "alg_key_mismatch", ...). */
typedef struct jose_jwk_skipped {
    size_t index;      /* position in "keys" */
    proto_str_t kid;   /* empty when absent or unreadable */
    const char *reason; /* static string */
} jose_jwk_skipped_t;

typedef struct jose_jwks {
    jose_jwk_t **keys;
    size_t nkeys;
    jose_jwk_skipped_t *skipped;
    size_t nskipped;
} jose_jwks_t;

/* oct (HMAC) keys are accepted only from local files (RFC 8725 §3.1: a fetched set must not turn
 * an RS256 verifier into an HS256 one). */
#define JOSE_JWK_ALLOW_OCT 0x1u
/* Accept a lone JWK object where a set is expected (jwtauthzctl verify, test vectors). */
#define JOSE_JWKS_ACCEPT_SINGLE 0x2u

/* Builds one key from a JWK object. Returns NULL on success (and sets *out), or the static reason
 * string the key is refused for. Private members ("d", ...) are ignored: only public parts are
 * kept, except for oct keys. Key objects are freed with the pool. */
const char *jose_jwk_from_json(apr_pool_t *p, const proto_json_t *obj, unsigned flags,
                               jose_jwk_t **out);

/* Parses a key set document ({"keys":[...]}). Returns APR_SUCCESS with *out set even when every
 * key was skipped (the caller decides what an empty set means); APR_EINVAL when the document is
 * not JSON, not an object, has no "keys" array, or is over JWKS_MAX_BYTES, with a message in err. */
apr_status_t jose_jwks_parse(apr_pool_t *p, const char *text, size_t len, unsigned flags,
                             jose_jwks_t **out, char *err, size_t errlen);

#endif
