/* JWS signature primitives (RFC 7518 §3, RFC 8037 §3.1) over OpenSSL 3 EVP: what each algorithm
 * demands of the signature bytes (exact lengths, ECDSA scalar ranges, PSS salt length) and the
 * calls that verify them. It never parses tokens, never allocates from pools on the verify path,
 * and never writes to a key after jose_sig_prepare(): verifiers share keys across threads. */
#include "jose/sig.h"

#include <pthread.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

/* Ed25519 signatures are R || S, 32 bytes each (RFC 8032 §5.1.6). */
#define SIG_ED25519_BYTES 64u
/* DER of an ECDSA-Sig-Value for P-521: two 67-byte INTEGERs with headers, in a SEQUENCE. */
#define SIG_ECDSA_DER_MAX_BYTES 160u

typedef enum { SIG_SHA256 = 0, SIG_SHA384, SIG_SHA512, SIG_MD_COUNT } sig_md_e;

static const char *const sig_md_names[SIG_MD_COUNT] = {"SHA2-256", "SHA2-384", "SHA2-512"};

/* Fetched once: EVP_sha256() and friends make OpenSSL 3 fetch the implementation again on every
 * init (measured here: ~15% of an RS256 verify), an explicitly fetched EVP_MD does not. */
static EVP_MD *sig_md[SIG_MD_COUNT];
static EVP_MAC *sig_hmac;
static int sig_fetched_ok;
static pthread_once_t sig_fetch_once = PTHREAD_ONCE_INIT;

/* Never freed: they live as long as the process, as OpenSSL's own default provider does. */
static void sig_fetch(void)
{
    for (int i = 0; i < SIG_MD_COUNT; i++) {
        sig_md[i] = EVP_MD_fetch(NULL, sig_md_names[i], NULL);
        if (sig_md[i] == NULL) {
            return;
        }
    }
    sig_hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    sig_fetched_ok = sig_hmac != NULL;
}

static int sig_ready(void)
{
    return pthread_once(&sig_fetch_once, sig_fetch) == 0 && sig_fetched_ok;
}

/* RFC 7518 §3.1: the number in the name is the SHA-2 size; EdDSA hashes internally. */
static int sig_md_index(jose_alg_e alg)
{
    switch (alg) {
    case JOSE_ALG_HS256:
    case JOSE_ALG_RS256:
    case JOSE_ALG_PS256:
    case JOSE_ALG_ES256:
        return SIG_SHA256;
    case JOSE_ALG_HS384:
    case JOSE_ALG_RS384:
    case JOSE_ALG_PS384:
    case JOSE_ALG_ES384:
        return SIG_SHA384;
    case JOSE_ALG_HS512:
    case JOSE_ALG_RS512:
    case JOSE_ALG_PS512:
    case JOSE_ALG_ES512:
        return SIG_SHA512;
    default:
        return -1;
    }
}

static int sig_is_pss(jose_alg_e alg)
{
    return alg == JOSE_ALG_PS256 || alg == JOSE_ALG_PS384 || alg == JOSE_ALG_PS512;
}

/* RFC 7518 §3.4: each of R and S is as long as the curve's field (P-521: 66 bytes). */
static size_t sig_ec_field_bytes(jose_crv_e crv)
{
    switch (crv) {
    case JOSE_CRV_P256:
        return 32;
    case JOSE_CRV_P384:
        return 48;
    case JOSE_CRV_P521:
        return 66;
    default:
        return 0;
    }
}

/* A context ready for EVP_PKEY_verify() over a digest under alg (RS, PS, ES), or NULL. */
static EVP_PKEY_CTX *sig_pkey_ctx_new(const jose_jwk_t *key, jose_alg_e alg)
{
    const EVP_MD *md = sig_md[sig_md_index(alg)];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1;
    if (ok && key->kty == JOSE_KTY_RSA) {
        if (sig_is_pss(alg)) {
            /* RFC 7518 §3.5: MGF1 with the same hash, salt exactly as long as the hash.
             * OpenSSL's default (auto) accepts any salt length. */
            ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, EVP_MD_get_size(md)) == 1;
        } else {
            ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
        }
    }
    /* With the md set, OpenSSL also checks that what it is given is one digest long. */
    ok = ok && EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* A keyed HMAC for an HS alg, or NULL. */
static EVP_MAC_CTX *sig_mac_ctx_new(const jose_jwk_t *key, jose_alg_e alg)
{
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)sig_md_names[sig_md_index(alg)], 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(sig_hmac);
    if (ctx != NULL && EVP_MAC_init(ctx, key->secret, key->secret_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* The group order n as big-endian bytes padded to the field size (n fits: Hasse's bound). */
static int sig_ec_order_get(const jose_jwk_t *key, unsigned char *out, size_t field)
{
    BIGNUM *order = NULL;
    int ok = EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_ORDER, &order) == 1 &&
             BN_bn2binpad(order, out, (int)field) == (int)field;
    BN_free(order);
    return ok;
}

static apr_status_t sig_pkey_ctx_cleanup(void *ctx)
{
    EVP_PKEY_CTX_free(ctx);
    return APR_SUCCESS;
}

static apr_status_t sig_mac_ctx_cleanup(void *ctx)
{
    EVP_MAC_CTX_free(ctx); /* the HMAC implementation wipes its key copy */
    return APR_SUCCESS;
}

int jose_sig_prepare(apr_pool_t *p, jose_jwk_t *key)
{
    if (!sig_ready()) {
        return -1;
    }
    for (int a = JOSE_ALG_UNKNOWN + 1; a < JOSE_ALG_COUNT; a++) {
        jose_alg_e alg = (jose_alg_e)a;
        if (!(key->algs & JOSE_ALG_BIT(alg)) || alg == JOSE_ALG_EDDSA) {
            continue; /* Ed25519 is one-shot in OpenSSL 3.0: nothing to keep between calls */
        }
        if (key->kty == JOSE_KTY_OCT) {
            key->mac_tmpl[a] = sig_mac_ctx_new(key, alg);
            if (key->mac_tmpl[a] == NULL) {
                return -1;
            }
            apr_pool_cleanup_register(p, key->mac_tmpl[a], sig_mac_ctx_cleanup,
                                      apr_pool_cleanup_null);
        } else {
            key->verify_tmpl[a] = sig_pkey_ctx_new(key, alg);
            if (key->verify_tmpl[a] == NULL) {
                return -1;
            }
            apr_pool_cleanup_register(p, key->verify_tmpl[a], sig_pkey_ctx_cleanup,
                                      apr_pool_cleanup_null);
        }
    }
    if (key->kty == JOSE_KTY_EC &&
        !sig_ec_order_get(key, key->ec_order, sig_ec_field_bytes(key->crv))) {
        return -1;
    }
    key->prepared = 1;
    return 0;
}

static jose_sig_result_e sig_verify_hmac(jose_alg_e alg, const jose_jwk_t *key,
                                         const unsigned char *data, size_t data_len,
                                         const unsigned char *sig, size_t sig_len)
{
    unsigned char tag[EVP_MAX_MD_SIZE];
    size_t tag_len = 0;
    jose_sig_result_e res = JOSE_SIG_ERROR;
    const EVP_MD *md = sig_md[sig_md_index(alg)];
    EVP_MAC_CTX *ctx = NULL;

    /* RFC 7518 §3.2: the whole hash output is the tag; a truncated tag is a weaker MAC. */
    if (sig_len != (size_t)EVP_MD_get_size(md)) {
        res = JOSE_SIG_INVALID;
        goto out;
    }
    ctx = key->mac_tmpl[alg] ? EVP_MAC_CTX_dup(key->mac_tmpl[alg]) : sig_mac_ctx_new(key, alg);
    if (ctx == NULL || EVP_MAC_update(ctx, data, data_len) != 1 ||
        EVP_MAC_final(ctx, tag, &tag_len, sizeof(tag)) != 1 || tag_len != sig_len) {
        goto out;
    }
    /* Constant time: a byte-by-byte early exit would let a forger learn the tag a byte at a time.
     */
    res = CRYPTO_memcmp(tag, sig, sig_len) == 0 ? JOSE_SIG_VALID : JOSE_SIG_INVALID;
out:
    EVP_MAC_CTX_free(ctx);
    OPENSSL_cleanse(tag, sizeof(tag));
    return res;
}

static int sig_bytes_are_zero(const unsigned char *b, size_t n)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= b[i];
    }
    return acc == 0;
}

/* RFC 7518 §3.4: R || S, each exactly the field size, to the DER form OpenSSL verifies. Refuses r
 * or s outside [1, n-1] itself: CVE-2022-21449 accepted r = s = 0 in a verifier that trusted its
 * arithmetic to catch it. Returns the DER length, 0 for an out-of-range scalar, -1 on failure. */
static int sig_ecdsa_to_der(const jose_jwk_t *key, const unsigned char *sig, size_t field,
                            unsigned char *der)
{
    unsigned char order_buf[JOSE_EC_MAX_FIELD_BYTES];
    const unsigned char *order = key->ec_order;
    const unsigned char *r = sig, *s = sig + field;
    ECDSA_SIG *es = NULL;
    BIGNUM *rb = NULL, *sb = NULL;
    int len = -1;

    if (!key->prepared) {
        if (!sig_ec_order_get(key, order_buf, field)) {
            goto out;
        }
        order = order_buf;
    }
    if (sig_bytes_are_zero(r, field) || sig_bytes_are_zero(s, field) ||
        memcmp(r, order, field) >= 0 || memcmp(s, order, field) >= 0) {
        len = 0;
        goto out;
    }
    es = ECDSA_SIG_new();
    rb = BN_bin2bn(r, (int)field, NULL);
    sb = BN_bin2bn(s, (int)field, NULL);
    if (es == NULL || rb == NULL || sb == NULL || ECDSA_SIG_set0(es, rb, sb) != 1) {
        goto out;
    }
    rb = sb = NULL; /* es owns them now */
    int need = i2d_ECDSA_SIG(es, NULL);
    if (need <= 0 || (size_t)need > SIG_ECDSA_DER_MAX_BYTES) {
        goto out;
    }
    unsigned char *pos = der;
    len = i2d_ECDSA_SIG(es, &pos);
out:
    BN_free(rb);
    BN_free(sb);
    ECDSA_SIG_free(es);
    return len;
}

/* RS, PS and ES: hash once, then verify the digest with a copy of the key's template. */
static jose_sig_result_e sig_verify_pkey(jose_alg_e alg, const jose_jwk_t *key,
                                         const unsigned char *data, size_t data_len,
                                         const unsigned char *sig, size_t sig_len)
{
    unsigned char digest[EVP_MAX_MD_SIZE], der[SIG_ECDSA_DER_MAX_BYTES];
    unsigned int digest_len = 0;
    const unsigned char *to_verify = sig;
    size_t to_verify_len = sig_len;
    jose_sig_result_e res = JOSE_SIG_ERROR;
    EVP_PKEY_CTX *ctx = NULL;

    if (key->kty == JOSE_KTY_RSA) {
        /* RFC 8017 §8.2.2 / §8.1.2: the signature is exactly k = modulus-length bytes. */
        if (key->bits <= 0 || sig_len != ((size_t)key->bits + 7) / 8) {
            res = JOSE_SIG_INVALID;
            goto out;
        }
    } else {
        size_t field = sig_ec_field_bytes(key->crv);
        if (field == 0 || sig_len != 2 * field) {
            res = JOSE_SIG_INVALID;
            goto out;
        }
        int der_len = sig_ecdsa_to_der(key, sig, field, der);
        if (der_len <= 0) {
            res = der_len == 0 ? JOSE_SIG_INVALID : JOSE_SIG_ERROR;
            goto out;
        }
        to_verify = der;
        to_verify_len = (size_t)der_len;
    }
    if (EVP_Digest(data, data_len, digest, &digest_len, sig_md[sig_md_index(alg)], NULL) != 1) {
        goto out;
    }
    ctx = key->verify_tmpl[alg] ? EVP_PKEY_CTX_dup(key->verify_tmpl[alg])
                                : sig_pkey_ctx_new(key, alg);
    if (ctx == NULL) {
        goto out;
    }
    res = EVP_PKEY_verify(ctx, to_verify, to_verify_len, digest, digest_len) == 1
              ? JOSE_SIG_VALID
              : JOSE_SIG_INVALID;
out:
    EVP_PKEY_CTX_free(ctx);
    return res;
}

/* RFC 8037 §3.1: Ed25519 over the signing input itself (PureEdDSA, no prehash). */
static jose_sig_result_e sig_verify_eddsa(const jose_jwk_t *key, const unsigned char *data,
                                          size_t data_len, const unsigned char *sig, size_t sig_len)
{
    jose_sig_result_e res = JOSE_SIG_ERROR;
    EVP_MD_CTX *ctx = NULL;

    if (sig_len != SIG_ED25519_BYTES) {
        res = JOSE_SIG_INVALID;
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, key->pkey, NULL) != 1) {
        goto out;
    }
    res = EVP_DigestVerify(ctx, sig, sig_len, data, data_len) == 1 ? JOSE_SIG_VALID
                                                                   : JOSE_SIG_INVALID;
out:
    EVP_MD_CTX_free(ctx);
    return res;
}

jose_sig_result_e jose_sig_verify(jose_alg_e alg, const jose_jwk_t *key, const unsigned char *data,
                                  size_t data_len, const unsigned char *sig, size_t sig_len)
{
    jose_sig_result_e res;
    /* RFC 8725 §3.1: the key decides which algorithms it verifies, never the token alone. The
     * type check repeats what algs already says, for keys assembled by hand. */
    if (key == NULL || (int)alg <= JOSE_ALG_UNKNOWN || (int)alg >= JOSE_ALG_COUNT ||
        !(key->algs & JOSE_ALG_BIT(alg)) || jose_alg_kty(alg) != key->kty) {
        return JOSE_SIG_KEY_MISMATCH;
    }
    if (jose_alg_crv(alg) != JOSE_CRV_NONE && jose_alg_crv(alg) != key->crv) {
        return JOSE_SIG_KEY_MISMATCH;
    }
    if (sig == NULL && sig_len != 0) {
        return JOSE_SIG_INVALID;
    }
    if (!sig_ready()) {
        return JOSE_SIG_ERROR;
    }
    switch (key->kty) {
    case JOSE_KTY_OCT:
        res = key->secret ? sig_verify_hmac(alg, key, data, data_len, sig, sig_len)
                          : JOSE_SIG_KEY_MISMATCH;
        break;
    case JOSE_KTY_RSA:
    case JOSE_KTY_EC:
        res = key->pkey ? sig_verify_pkey(alg, key, data, data_len, sig, sig_len)
                        : JOSE_SIG_KEY_MISMATCH;
        break;
    case JOSE_KTY_OKP:
        res =
            key->pkey ? sig_verify_eddsa(key, data, data_len, sig, sig_len) : JOSE_SIG_KEY_MISMATCH;
        break;
    default:
        res = JOSE_SIG_KEY_MISMATCH;
        break;
    }
    if (res != JOSE_SIG_VALID) {
        /* A refused signature leaves reasons on this thread's OpenSSL error queue; they are not
         * ours to report, and must not be mistaken later for the cause of some other failure. */
        ERR_clear_error();
    }
    return res;
}
