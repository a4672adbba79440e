/* Signature primitives over OpenSSL 3 EVP: RSASSA-PKCS1-v1_5, RSASSA-PSS (salt = digest length,
 * RFC 7518 §3.5), ECDSA with JWS's raw r||s (RFC 7518 §3.4, exact length), Ed25519 (RFC 8037),
 * HMAC (constant-time compare). No parsing of tokens here. */
#ifndef JWTAUTHZ_JOSE_SIG_H
#define JWTAUTHZ_JOSE_SIG_H

#include <stddef.h>

#include <apr_pools.h>

#include "jose/alg.h"
#include "jose/jwk.h"

typedef enum {
    JOSE_SIG_VALID = 0,
    JOSE_SIG_INVALID,      /* does not verify (wrong length, r or s out of range, mismatch) */
    JOSE_SIG_KEY_MISMATCH, /* the key cannot be used with alg (type, curve, or key's own alg) */
    JOSE_SIG_ERROR         /* library failure (out of memory): not the token's fault */
} jose_sig_result_e;

/* Verifies sig over data with key under alg. Checks the key/alg pairing first:
 * JOSE_SIG_KEY_MISMATCH when alg is not in key->algs (this is what stops RS/HS and ES/RS
 * confusion). Then the exact signature length for alg and key (RSA: the modulus length; ECDSA:
 * 2 x field size; EdDSA: 64; HMAC: the hash length, no truncated tags) and, for ECDSA,
 * 0 < r, s < n before OpenSSL sees them (CVE-2022-21449): JOSE_SIG_INVALID. JOSE_SIG_VALID only
 * when the signature verifies; JOSE_SIG_ERROR when OpenSSL could not be set up (out of memory).
 * Thread-safe: any number of threads may verify with the same key at once; it is only read. */
jose_sig_result_e jose_sig_verify(jose_alg_e alg, const jose_jwk_t *key, const unsigned char *data,
                                  size_t data_len, const unsigned char *sig, size_t sig_len);

/* Added for jose/jwk.c: sets up key's verify templates, one per alg in key->algs (see jose_jwk_t),
 * and for EC keys caches the group order. Call once, after pkey or secret and algs are set and
 * before the key is shared between threads; the templates are freed by cleanups on p. Returns 0,
 * or -1 when OpenSSL fails (out of memory, algorithm missing from the provider). */
int jose_sig_prepare(apr_pool_t *p, jose_jwk_t *key);

#endif
