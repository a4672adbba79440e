/* One JSON Web Key (RFC 7517) into a key ready to verify with: EVP_PKEYs built once with
 * OSSL_PARAM_BLD + EVP_PKEY_fromdata (RFC 7518 §6.2, §6.3; RFC 8037 §2) or HMAC secrets
 * (RFC 7518 §6.4). It loads public parts only (never "d", "p", ...), refuses a weak or malformed
 * key with a reason, and keeps no pointer into the JSON it was given. Sets are jwks.c's. No I/O;
 * no legacy RSA_* / EC_KEY_* calls. */
#include "jose/jwk.h"

#include <string.h>

#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "jose/b64url.h"
#include "jose/sig.h"
#include "proto/limits.h"

/* Why a key is skipped: stable strings for logs, "keys" and "stats" (documented in jwk.h). */
#define R_BAD_MEMBER "bad_member"
#define R_MISSING_MEMBER "missing_member"
#define R_BAD_BASE64URL "bad_base64url"
#define R_UNKNOWN_KTY "unknown_kty"
#define R_NOT_FOR_SIGNING "not_for_signing"
#define R_ALG_KEY_MISMATCH "alg_key_mismatch"
#define R_RSA_TOO_SMALL "rsa_too_small"
#define R_RSA_TOO_LARGE "rsa_too_large"
#define R_RSA_BAD_MODULUS "rsa_bad_modulus"
#define R_RSA_BAD_EXPONENT "rsa_bad_exponent"
#define R_RSA_ROCA "rsa_roca_weak"
#define R_UNSUPPORTED_CRV "unsupported_crv"
#define R_EC_BAD_COORDINATE "ec_bad_coordinate"
#define R_NOT_ON_CURVE "not_on_curve"
#define R_OKP_BAD_KEY "okp_bad_key"
#define R_OCT_NOT_ALLOWED "oct_not_allowed"
#define R_OCT_TOO_SHORT "oct_too_short"
#define R_OCT_TOO_LARGE "oct_too_large"
#define R_INTERNAL "internal_error"

/* Decoded bytes read for "n": the largest modulus plus the leading zero octet some IdPs add. */
#define JWK_RSA_N_MAX_BYTES (JWK_RSA_MAX_BITS / 8 + 1)
/* Decoded bytes read for "e" before leading zeros are dropped; the value may use 8 of them. */
#define JWK_RSA_E_READ_MAX_BYTES 16u
#define JWK_RSA_E_MAX_BITS 64
/* ROCA test primes: every odd prime up to the 126th prime, 701 (see jwk_rsa_is_roca). */
#define JWK_ROCA_LAST_PRIME 701u
/* Ed25519 public keys are 32 bytes (RFC 8032 §5.1.5). */
#define JWK_ED25519_BYTES 32u

typedef struct jwk_curve {
    const char *jwk_name; /* RFC 7518 §6.2.1.1 */
    const char *ossl_name;
    jose_crv_e crv;
    size_t field_bytes;
    jose_alg_e alg; /* RFC 7518 §3.4: one hash per curve */
} jwk_curve_t;

static const jwk_curve_t jwk_curves[] = {
    {"P-256", "prime256v1", JOSE_CRV_P256, 32, JOSE_ALG_ES256},
    {"P-384", "secp384r1", JOSE_CRV_P384, 48, JOSE_ALG_ES384},
    {"P-521", "secp521r1", JOSE_CRV_P521, 66, JOSE_ALG_ES512},
};

/* The oct secret and what the cleanup wipes (RFC 7518 §6.4.1 "k"). */
typedef struct jwk_secret {
    size_t len;
    unsigned char bytes[];
} jwk_secret_t;

static apr_status_t jwk_pkey_cleanup(void *pkey)
{
    EVP_PKEY_free(pkey);
    return APR_SUCCESS;
}

static apr_status_t jwk_secret_cleanup(void *data)
{
    jwk_secret_t *s = data;
    OPENSSL_cleanse(s->bytes, s->len);
    return APR_SUCCESS;
}

/* An optional string member: 1 and *out when present, 0 when absent, -1 when not a string. */
static int jwk_member_str(const proto_json_t *obj, const char *name, proto_str_t *out)
{
    const proto_json_t *v = proto_json_get(obj, name);
    if (v == NULL) {
        return 0;
    }
    if (v->type != PROTO_JSON_STRING) {
        return -1;
    }
    *out = v->u.string;
    return 1;
}

/* RFC 7517 §4.5 "kid": a lookup string, so bounded and free of NUL (it must survive as a C
 * string in logs and replies). */
int jose_jwk_kid_read(const proto_json_t *obj, proto_str_t *kid)
{
    if (obj == NULL || obj->type != PROTO_JSON_OBJECT) {
        return 0;
    }
    int rc = jwk_member_str(obj, "kid", kid);
    if (rc == 1 && (kid->len > JWK_MAX_KID_BYTES || proto_str_has_nul(*kid))) {
        rc = -1;
    }
    return rc;
}

/* Decodes a required base64url member into buf (cap bytes). Returns NULL with *len set, or the
 * reason: too_long when it would decode past cap, so nothing oversized is ever decoded. */
static const char *jwk_member_decode(const proto_json_t *obj, const char *name, unsigned char *buf,
                                     size_t cap, const char *too_long, size_t *len)
{
    proto_str_t s;
    int rc = jwk_member_str(obj, name, &s);
    if (rc == 0) {
        return R_MISSING_MEMBER;
    }
    if (rc < 0) {
        return R_BAD_MEMBER;
    }
    if (!jose_b64url_valid(s)) {
        return R_BAD_BASE64URL;
    }
    if (jose_b64url_decoded_len(s.len) > cap) {
        return too_long;
    }
    long got = jose_b64url_decode_into(s, buf, cap);
    if (got < 0) {
        return R_BAD_BASE64URL;
    }
    *len = (size_t)got;
    return NULL;
}

/* ROCA (CVE-2017-15361): Infineon's generator made primes congruent to a power of 65537 modulo a
 * primorial M; for keys of 1984-3936 bits M is the product of the first 126 primes, larger keys
 * use a multiple of it. So for every odd prime r up to 701, n mod r lies in the subgroup of
 * (Z/rZ)* that 65537 generates. A random modulus passes all 125 tests with probability ~2^-167.
 * Only called for n of at least JWK_RSA_MIN_BITS (>= 1984). */
static int jwk_rsa_is_roca(const BIGNUM *n)
{
    for (unsigned r = 3; r <= JWK_ROCA_LAST_PRIME; r += 2) {
        int prime = 1;
        for (unsigned d = 3; d * d <= r; d += 2) {
            if (r % d == 0) {
                prime = 0;
                break;
            }
        }
        if (!prime) {
            continue;
        }
        BN_ULONG rem = BN_mod_word(n, (BN_ULONG)r);
        if (rem == (BN_ULONG)-1) {
            return 0;
        }
        /* Walk the subgroup 1, g, g^2, ... until it closes. */
        unsigned long g = 65537ul % r, x = 1;
        int in_subgroup = 0;
        do {
            if (x == (unsigned long)rem) {
                in_subgroup = 1;
                break;
            }
            x = x * g % r;
        } while (x != 1);
        if (!in_subgroup) {
            return 0;
        }
    }
    return 1;
}

/* Builds an EVP_PKEY of the named type from params (public part only), or NULL. */
static EVP_PKEY *jwk_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

/* RFC 7518 §6.3.1: "n" and "e", unsigned big-endian. */
static const char *jwk_rsa_from_json(apr_pool_t *p, const proto_json_t *obj, jose_jwk_t *key)
{
    unsigned char nbuf[JWK_RSA_N_MAX_BYTES], ebuf[JWK_RSA_E_READ_MAX_BYTES];
    size_t nlen = 0, elen = 0;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    const char *why = jwk_member_decode(obj, "n", nbuf, sizeof(nbuf), R_RSA_TOO_LARGE, &nlen);
    if (why == NULL) {
        why = jwk_member_decode(obj, "e", ebuf, sizeof(ebuf), R_RSA_BAD_EXPONENT, &elen);
    }
    if (why != NULL) {
        goto out;
    }
    why = R_INTERNAL;
    n = BN_bin2bn(nbuf, (int)nlen, NULL);
    e = BN_bin2bn(ebuf, (int)elen, NULL);
    if (n == NULL || e == NULL) {
        goto out;
    }
    /* RFC 7518 §6.3.1.1 forbids a leading zero octet, but IdPs publish them: the size is the
     * value's, not the encoding's. */
    key->bits = BN_num_bits(n);
    if (key->bits < JWK_RSA_MIN_BITS) {
        why = R_RSA_TOO_SMALL; /* RFC 7518 §3.3 */
        goto out;
    }
    if (key->bits > JWK_RSA_MAX_BITS) {
        why = R_RSA_TOO_LARGE;
        goto out;
    }
    if (!BN_is_odd(n)) {
        why = R_RSA_BAD_MODULUS; /* a product of two odd primes is odd */
        goto out;
    }
    /* RFC 8017 §3.1: e odd, 3 <= e < n. OpenSSL happily verifies under e = 1, where every
     * "signature" is its own message. Wider than 64 bits is no exponent anyone issues. */
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > JWK_RSA_E_MAX_BITS) {
        why = R_RSA_BAD_EXPONENT;
        goto out;
    }
    if (jwk_rsa_is_roca(n)) {
        why = R_RSA_ROCA;
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1) {
        goto out;
    }
    key->pkey = jwk_pkey_fromdata("RSA", bld);
    if (key->pkey == NULL) {
        goto out;
    }
    apr_pool_cleanup_register(p, key->pkey, jwk_pkey_cleanup, apr_pool_cleanup_null);
    why = NULL;
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return why;
}

/* RFC 7518 §6.2.1: "crv", "x", "y", each coordinate exactly the field size (§6.2.1.2). */
static const char *jwk_ec_from_json(apr_pool_t *p, const proto_json_t *obj, jose_jwk_t *key)
{
    unsigned char point[1 + 2 * JOSE_EC_MAX_FIELD_BYTES];
    size_t xlen = 0, ylen = 0;
    const jwk_curve_t *curve = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY_CTX *check = NULL;
    proto_str_t crv;
    const char *why;

    int rc = jwk_member_str(obj, "crv", &crv);
    if (rc <= 0) {
        why = rc == 0 ? R_MISSING_MEMBER : R_BAD_MEMBER;
        goto out;
    }
    for (size_t i = 0; i < sizeof(jwk_curves) / sizeof(jwk_curves[0]); i++) {
        if (proto_str_eq_cstr(crv, jwk_curves[i].jwk_name)) {
            curve = &jwk_curves[i];
        }
    }
    if (curve == NULL) {
        why = R_UNSUPPORTED_CRV; /* secp256k1 (ES256K) and friends are not JWS algs here */
        goto out;
    }
    size_t f = curve->field_bytes;
    why = jwk_member_decode(obj, "x", point + 1, f, R_EC_BAD_COORDINATE, &xlen);
    if (why == NULL) {
        why = jwk_member_decode(obj, "y", point + 1 + f, f, R_EC_BAD_COORDINATE, &ylen);
    }
    if (why == NULL && (xlen != f || ylen != f)) {
        why = R_EC_BAD_COORDINATE;
    }
    if (why != NULL) {
        goto out;
    }
    point[0] = 0x04; /* SEC 1 §2.3.3: uncompressed */
    key->crv = curve->crv;
    key->bits = (int)(f * 8);
    why = R_INTERNAL;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve->ossl_name, 0) !=
            1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * f) != 1) {
        goto out;
    }
    /* With a known curve and well-sized coordinates, the import fails only for a point that is
     * not on the curve (invalid-curve attacks recover private keys from such points). */
    key->pkey = jwk_pkey_fromdata("EC", bld);
    if (key->pkey == NULL) {
        why = R_NOT_ON_CURVE;
        goto out;
    }
    apr_pool_cleanup_register(p, key->pkey, jwk_pkey_cleanup, apr_pool_cleanup_null);
    /* The full check also refuses coordinates >= p and the point at infinity. */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (check == NULL) {
        goto out;
    }
    why = EVP_PKEY_public_check(check) == 1 ? NULL : R_NOT_ON_CURVE;
out:
    EVP_PKEY_CTX_free(check);
    OSSL_PARAM_BLD_free(bld);
    return why;
}

/* RFC 8037 §2: "crv" and "x"; only Ed25519 signs here (X25519/X448 are key agreement). */
static const char *jwk_okp_from_json(apr_pool_t *p, const proto_json_t *obj, jose_jwk_t *key)
{
    unsigned char x[JWK_ED25519_BYTES];
    size_t xlen = 0;
    proto_str_t crv;
    int rc = jwk_member_str(obj, "crv", &crv);
    if (rc <= 0) {
        return rc == 0 ? R_MISSING_MEMBER : R_BAD_MEMBER;
    }
    if (proto_str_eq_cstr(crv, "X25519") || proto_str_eq_cstr(crv, "X448")) {
        return R_NOT_FOR_SIGNING;
    }
    if (!proto_str_eq_cstr(crv, "Ed25519")) {
        return R_UNSUPPORTED_CRV;
    }
    const char *why = jwk_member_decode(obj, "x", x, sizeof(x), R_OKP_BAD_KEY, &xlen);
    if (why != NULL) {
        return why;
    }
    if (xlen != sizeof(x)) {
        return R_OKP_BAD_KEY;
    }
    key->crv = JOSE_CRV_ED25519;
    key->bits = 256;
    key->pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, sizeof(x));
    if (key->pkey == NULL) {
        return R_INTERNAL;
    }
    apr_pool_cleanup_register(p, key->pkey, jwk_pkey_cleanup, apr_pool_cleanup_null);
    return NULL;
}

/* RFC 7518 §6.4.1: "k". The secret goes to pool memory that a cleanup wipes. */
static const char *jwk_oct_from_json(apr_pool_t *p, const proto_json_t *obj, unsigned flags,
                                     jose_jwk_t *key)
{
    /* RFC 8725 §3.1: a published set must not turn an RS256 verifier into an HS256 one. */
    if (!(flags & JOSE_JWK_ALLOW_OCT)) {
        return R_OCT_NOT_ALLOWED;
    }
    proto_str_t k;
    int rc = jwk_member_str(obj, "k", &k);
    if (rc <= 0) {
        return rc == 0 ? R_MISSING_MEMBER : R_BAD_MEMBER;
    }
    if (!jose_b64url_valid(k)) {
        return R_BAD_BASE64URL;
    }
    size_t len = jose_b64url_decoded_len(k.len);
    if (len == 0) {
        return R_OCT_TOO_SHORT;
    }
    if (len > JWK_OCT_MAX_BYTES) {
        return R_OCT_TOO_LARGE;
    }
    jwk_secret_t *s = apr_palloc(p, sizeof(*s) + len);
    s->len = len;
    apr_pool_cleanup_register(p, s, jwk_secret_cleanup, apr_pool_cleanup_null);
    if (jose_b64url_decode_into(k, s->bytes, len) != (long)len) {
        return R_BAD_BASE64URL;
    }
    key->secret = s->bytes;
    key->secret_len = len;
    key->bits = (int)(len * 8);
    return NULL;
}

/* Every algorithm a key of this type, curve and size may verify, before its own "alg" narrows it.
 */
static jose_alg_set_t jwk_algs_for(const jose_jwk_t *key)
{
    switch (key->kty) {
    case JOSE_KTY_RSA:
        return JOSE_ALG_BIT(JOSE_ALG_RS256) | JOSE_ALG_BIT(JOSE_ALG_RS384) |
               JOSE_ALG_BIT(JOSE_ALG_RS512) | JOSE_ALG_BIT(JOSE_ALG_PS256) |
               JOSE_ALG_BIT(JOSE_ALG_PS384) | JOSE_ALG_BIT(JOSE_ALG_PS512);
    case JOSE_KTY_EC:
        for (size_t i = 0; i < sizeof(jwk_curves) / sizeof(jwk_curves[0]); i++) {
            if (jwk_curves[i].crv == key->crv) {
                return JOSE_ALG_BIT(jwk_curves[i].alg);
            }
        }
        return 0;
    case JOSE_KTY_OKP:
        return key->crv == JOSE_CRV_ED25519 ? JOSE_ALG_BIT(JOSE_ALG_EDDSA) : 0;
    case JOSE_KTY_OCT: {
        /* RFC 7518 §3.2: a key at least as long as the hash output. */
        jose_alg_set_t s = 0;
        if (key->secret_len >= 32) {
            s |= JOSE_ALG_BIT(JOSE_ALG_HS256);
        }
        if (key->secret_len >= 48) {
            s |= JOSE_ALG_BIT(JOSE_ALG_HS384);
        }
        if (key->secret_len >= 64) {
            s |= JOSE_ALG_BIT(JOSE_ALG_HS512);
        }
        return s;
    }
    default:
        return 0;
    }
}

static jose_kty_e jwk_kty_from_name(proto_str_t s)
{
    /* RFC 7517 §4.1: "kty" values are case-sensitive. */
    if (proto_str_eq_cstr(s, "RSA")) {
        return JOSE_KTY_RSA;
    }
    if (proto_str_eq_cstr(s, "EC")) {
        return JOSE_KTY_EC;
    }
    if (proto_str_eq_cstr(s, "OKP")) {
        return JOSE_KTY_OKP;
    }
    if (proto_str_eq_cstr(s, "oct")) {
        return JOSE_KTY_OCT;
    }
    return JOSE_KTY_UNKNOWN;
}

/* RFC 7517 §4.2 "use" and §4.3 "key_ops": when present they must allow verifying signatures. */
static const char *jwk_usage_check(const proto_json_t *obj)
{
    proto_str_t use;
    int rc = jwk_member_str(obj, "use", &use);
    if (rc < 0) {
        return R_BAD_MEMBER;
    }
    if (rc == 1 && !proto_str_eq_cstr(use, "sig")) {
        return R_NOT_FOR_SIGNING;
    }
    const proto_json_t *ops = proto_json_get(obj, "key_ops");
    if (ops == NULL) {
        return NULL;
    }
    if (ops->type != PROTO_JSON_ARRAY) {
        return R_BAD_MEMBER;
    }
    int verify = 0;
    for (size_t i = 0; i < ops->u.array.count; i++) {
        const proto_json_t *op = ops->u.array.items[i];
        if (op->type != PROTO_JSON_STRING) {
            return R_BAD_MEMBER;
        }
        verify |= proto_str_eq_cstr(op->u.string, "verify");
    }
    return verify ? NULL : R_NOT_FOR_SIGNING;
}

const char *jose_jwk_from_json(apr_pool_t *p, const proto_json_t *obj, unsigned flags,
                               jose_jwk_t **out)
{
    *out = NULL;
    if (obj == NULL || obj->type != PROTO_JSON_OBJECT) {
        return R_BAD_MEMBER;
    }
    jose_jwk_t *key = apr_pcalloc(p, sizeof(*key));
    proto_str_t kid, kty, alg_name;

    int rc = jose_jwk_kid_read(obj, &kid);
    if (rc < 0) {
        return R_BAD_MEMBER;
    }
    if (rc == 1) {
        /* A copy: the key outlives the document it came from. */
        key->kid = proto_str_make(apr_pstrmemdup(p, kid.ptr, kid.len), kid.len);
        key->has_kid = 1;
    }
    rc = jwk_member_str(obj, "kty", &kty);
    if (rc <= 0) {
        return rc == 0 ? R_MISSING_MEMBER : R_BAD_MEMBER;
    }
    key->kty = jwk_kty_from_name(kty);
    if (key->kty == JOSE_KTY_UNKNOWN) {
        return R_UNKNOWN_KTY;
    }
    const char *why = jwk_usage_check(obj);
    if (why != NULL) {
        return why;
    }
    /* RFC 7517 §4.4: a key's "alg" names the one algorithm it is for (RFC 8725 §3.1); an
     * encryption or unknown algorithm cannot pair with a signature key. Checked against the type
     * now, before any key material is built, and against the curve once it is known. */
    rc = jwk_member_str(obj, "alg", &alg_name);
    if (rc < 0) {
        return R_BAD_MEMBER;
    }
    if (rc == 1) {
        key->alg = jose_alg_from_name(alg_name);
        if (key->alg == JOSE_ALG_UNKNOWN || jose_alg_kty(key->alg) != key->kty) {
            return R_ALG_KEY_MISMATCH;
        }
    }
    switch (key->kty) {
    case JOSE_KTY_RSA:
        why = jwk_rsa_from_json(p, obj, key);
        break;
    case JOSE_KTY_EC:
        why = jwk_ec_from_json(p, obj, key);
        break;
    case JOSE_KTY_OKP:
        why = jwk_okp_from_json(p, obj, key);
        break;
    default:
        why = jwk_oct_from_json(p, obj, flags, key);
        break;
    }
    if (why != NULL) {
        ERR_clear_error(); /* OpenSSL's view of a refused key is not ours to keep */
        return why;
    }
    key->algs = jwk_algs_for(key);
    if (key->alg != JOSE_ALG_UNKNOWN) {
        if (!(key->algs & JOSE_ALG_BIT(key->alg))) {
            /* Same type: for oct only the length can disagree; otherwise it is the curve. */
            return key->kty == JOSE_KTY_OCT ? R_OCT_TOO_SHORT : R_ALG_KEY_MISMATCH;
        }
        key->algs = JOSE_ALG_BIT(key->alg);
    }
    if (key->algs == 0) {
        return R_OCT_TOO_SHORT; /* an oct key shorter than 32 bytes serves no HS alg */
    }
    if (jose_sig_prepare(p, key) != 0) {
        ERR_clear_error();
        return R_INTERNAL;
    }
    *out = key;
    return NULL;
}
