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

/* The longest EC field element or ECDSA scalar: P-521's 66 bytes (RFC 7518 §3.4, §6.2.1.2). */
#define JOSE_EC_MAX_FIELD_BYTES 66

typedef struct jose_jwk {
    proto_str_t kid; /* empty when the key has no "kid"; a copy in the key's pool */
    int has_kid;
    jose_kty_e kty;
    jose_crv_e crv;              /* EC and OKP */
    jose_alg_e alg;              /* the key's own "alg", JOSE_ALG_UNKNOWN when it has none */
    jose_alg_set_t algs;         /* every algorithm this key may verify (type, curve, alg, use) */
    int bits;                    /* RSA modulus bits, EC/OKP field bits, oct key bits */
    EVP_PKEY *pkey;              /* RSA/EC/OKP: freed by a cleanup on the pool it was parsed in */
    const unsigned char *secret; /* oct: wiped by a cleanup on the pool */
    size_t secret_len;
    /* Added for jose/sig.c. Filled once by jose_sig_prepare() when the key is loaded, read-only
     * afterwards, so threads share them: each verify duplicates a template rather than fetching
     * algorithms and setting parameters again (OpenSSL 3.0 fetches are slow and take locks).
     * A key built by hand with prepared == 0 still verifies, by the slower path. */
    int prepared;
    EVP_PKEY_CTX *verify_tmpl[JOSE_ALG_COUNT]; /* RS/PS/ES: verify-initialised, per alg in algs */
    EVP_MAC_CTX *mac_tmpl[JOSE_ALG_COUNT];     /* HS: a keyed HMAC, per alg in algs */
    unsigned char ec_order[JOSE_EC_MAX_FIELD_BYTES]; /* EC: group order n, big-endian, padded to
                                                        the field size (for r, s < n) */
} jose_jwk_t;

/* A key the set could not use, and why. The reasons, all static strings:
 *   bad_member        the entry is not an object, or a member has the wrong JSON type, or "kid"
 *                     is over JWK_MAX_KID_BYTES or holds a NUL
 *   missing_member    "kty" or a member its type requires ("n", "e", "crv", "x", "y", "k")
 *   bad_base64url     a key member is not strict base64url (RFC 7515 §2)
 *   unknown_kty       "kty" is not RSA, EC, OKP or oct
 *   not_for_signing   "use" is not "sig", "key_ops" lacks "verify", or crv X25519/X448
 *   alg_key_mismatch  "alg" is not a JWS algorithm this key's type and curve can verify
 *   rsa_too_small     modulus under JWK_RSA_MIN_BITS (RFC 7518 §3.3)
 *   rsa_too_large     modulus over JWK_RSA_MAX_BITS
 *   rsa_bad_modulus   even modulus
 *   rsa_bad_exponent  e even, e = 1, or e wider than 64 bits
 *   rsa_roca_weak     modulus made by the ROCA-vulnerable generator (CVE-2017-15361)
 *   unsupported_crv   EC crv other than P-256/P-384/P-521, OKP crv other than Ed25519
 *   ec_bad_coordinate x or y not exactly the field size (RFC 7518 §6.2.1.2)
 *   not_on_curve      the point (x, y) is not a valid point of the curve
 *   okp_bad_key       Ed25519 x not exactly 32 bytes
 *   oct_not_allowed   an oct key without JOSE_JWK_ALLOW_OCT
 *   oct_too_short     empty, or shorter than every HS alg allows, or than its own "alg" needs
 *                     (RFC 7518 §3.2: HS256 >= 32 bytes, HS384 >= 48, HS512 >= 64)
 *   oct_too_large     over JWK_OCT_MAX_BYTES
 *   duplicate_kid     (sets only) another entry of the set has the same "kid"
 *   too_many_keys     (sets only) JWKS_MAX_KEYS usable keys came before it; not parsed
 *   mixed_key_set     (sets only) an oct key in a set that also has RSA, EC or OKP entries
 *   internal_error    OpenSSL failed (out of memory): not the key's fault */
typedef struct jose_jwk_skipped {
    size_t index;       /* position in "keys" */
    proto_str_t kid;    /* empty when absent or unreadable */
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

/* Added for jose/jwks.c: reads obj's "kid" (RFC 7517 §4.5) as jose_jwk_from_json() does. Returns 1
 * with *kid pointing into obj when it is a string of at most JWK_MAX_KID_BYTES with no NUL byte,
 * 0 when absent (or obj is not an object), -1 when present but not usable (key refused with
 * "bad_member"). */
int jose_jwk_kid_read(const proto_json_t *obj, proto_str_t *kid);

/* Builds one key from a JWK object. Returns NULL on success (and sets *out), or the static reason
 * string the key is refused for (see jose_jwk_skipped_t). Private members ("d", ...) are ignored:
 * only public parts are kept, except for oct keys. The key keeps no pointer into obj. Without
 * "alg", algs is every alg the key can serve (RSA: RS* and PS*; EC: the ES alg of its curve;
 * Ed25519: EdDSA; oct: the HS algs its length allows); with "alg", exactly that one. Key objects
 * (EVP_PKEY, verify templates, the wiped secret) are freed with the pool. */
const char *jose_jwk_from_json(apr_pool_t *p, const proto_json_t *obj, unsigned flags,
                               jose_jwk_t **out);

/* Parses a key set document ({"keys":[...]}; with JOSE_JWKS_ACCEPT_SINGLE also a lone JWK object
 * that has "kty"). Strict JSON: no comments, no duplicate members. Keys are taken one by one; a
 * refused one goes to skipped[] (ordered by index) and the rest are used, at most JWKS_MAX_KEYS.
 * A "kid" shared by two entries (usable or not) refuses every usable key with it as duplicate_kid:
 * a kid must identify one key. In a set with any RSA, EC or OKP entry, oct keys are refused as
 * mixed_key_set (RFC 8725 §3.1: secrets do not ride along with published keys).
 * Returns APR_SUCCESS with *out set even when every key was skipped (the caller decides what an
 * empty set means); APR_EINVAL when the document is not JSON, not an object, has no "keys" array,
 * or is over JWKS_MAX_BYTES; APR_ENOMEM when memory ran out; a message in err (which may be
 * NULL) on failure. */
apr_status_t jose_jwks_parse(apr_pool_t *p, const char *text, size_t len, unsigned flags,
                             jose_jwks_t **out, char *err, size_t errlen);

#endif
