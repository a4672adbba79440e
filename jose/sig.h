/* Signature primitives over OpenSSL 3 EVP: RSASSA-PKCS1-v1_5, RSASSA-PSS (salt = digest length,
 * RFC 7518 §3.5), ECDSA with JWS's raw r||s (RFC 7518 §3.4, exact length), Ed25519 (RFC 8037),
 * HMAC (constant-time compare). No parsing of tokens here. */
#ifndef JWTAUTHZ_JOSE_SIG_H
#define JWTAUTHZ_JOSE_SIG_H

#include <stddef.h>

#include "jose/alg.h"
#include "jose/jwk.h"

typedef enum {
    JOSE_SIG_VALID = 0,
    JOSE_SIG_INVALID,    /* does not verify (wrong length, r or s out of range, mismatch) */
    JOSE_SIG_KEY_MISMATCH, /* the key cannot be used with alg (type, curve, or key's own alg) */
    JOSE_SIG_ERROR       /* library failure (out of memory): not the token's fault */
} jose_sig_result_e;

/* Verifies sig over data with key under alg. Checks the key/alg pairing first. */
jose_sig_result_e jose_sig_verify(jose_alg_e alg, const jose_jwk_t *key, const unsigned char *data,
                                  size_t data_len, const unsigned char *sig, size_t sig_len);

#endif
