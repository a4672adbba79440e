/* jose_sig_verify against the attacks on JWS signature checks, each by name: algorithm confusion
 * (an RSA public key used as an HMAC secret, ES/RS swaps), ECDSA "psychic signatures"
 * (CVE-2022-21449), DER where raw r||s belongs, PSS with another salt length, truncated HMAC tags,
 * signatures of the wrong length; and many threads verifying with one shared key. Signatures are
 * made here with OpenSSL's signing side. */
#include <pthread.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "jose/b64url.h"
#include "jose/jwk.h"
#include "jose/pool.h"
#include "jose/sig.h"
#include "harness.h"

#define SIG_THREADS 4
#define SIG_THREAD_ROUNDS 200

static apr_pool_t *pool;
static EVP_PKEY *rsa_priv, *ec_priv, *ed_priv;
static jose_jwk_t *rsa_key, *ec_key, *ed_key, *hs_key, *rsa_rs256_key;
static const unsigned char msg[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9";
#define MSG_LEN (sizeof(msg) - 1)
static const unsigned char hs_secret[32] = "0123456789abcdef0123456789abcdef";

static const char *b64(const unsigned char *b, size_t n)
{
    return jose_b64url_encode(pool, b, n, NULL);
}

static const char *bn_b64(EVP_PKEY *k, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[600];
    if (EVP_PKEY_get_bn_param(k, name, &bn) != 1) {
        return "";
    }
    int len = pad ? pad : BN_num_bytes(bn);
    BN_bn2binpad(bn, buf, len);
    BN_free(bn);
    return b64(buf, (size_t)len);
}

static jose_jwk_t *load(const char *json, unsigned flags)
{
    proto_json_t *v = NULL;
    jose_jwk_t *k = NULL;
    if (jose_json_read(pool, json, strlen(json), &v, NULL) != PROTO_JSON_OK ||
        jose_jwk_from_json(pool, v, flags, &k) != NULL) {
        return NULL;
    }
    return k;
}

/* Signs msg with OpenSSL; for PSS, salt_len picks the salt length (-1: none set). */
static size_t sign(EVP_PKEY *k, const char *md, int pss_salt, unsigned char *sig, size_t cap)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = cap;
    int ok = EVP_DigestSignInit_ex(m, &pctx, md, NULL, NULL, k, NULL) == 1;
    if (ok && pss_salt >= 0) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt) == 1;
    }
    ok = ok && EVP_DigestSign(m, sig, &len, msg, MSG_LEN) == 1;
    EVP_MD_CTX_free(m);
    return ok ? len : 0;
}

/* ES256 over msg as JWS wants it: raw r || s, 32 bytes each. */
static int sign_es256_raw(unsigned char raw[64])
{
    unsigned char der[80];
    size_t der_len = sign(ec_priv, "SHA256", -1, der, sizeof(der));
    const unsigned char *pp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &pp, (long)der_len);
    if (es == NULL) {
        return -1;
    }
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    return 0;
}

TEST(rsa_public_key_as_hmac_secret_refused)
{
    /* The classic confusion: HS256 "signed" with the RSA public key the verifier publishes. */
    unsigned char tag[32];
    unsigned int tag_len = 0;
    const char *n = bn_b64(rsa_priv, OSSL_PKEY_PARAM_RSA_N, 0);
    HMAC(EVP_sha256(), n, (int)strlen(n), msg, MSG_LEN, tag, &tag_len);
    CHECK(jose_sig_verify(JOSE_ALG_HS256, rsa_key, msg, MSG_LEN, tag, tag_len) ==
          JOSE_SIG_KEY_MISMATCH);
}

TEST(alg_of_another_family_or_curve_refused)
{
    unsigned char raw[64], sig[512];
    CHECK(sign_es256_raw(raw) == 0);
    CHECK(jose_sig_verify(JOSE_ALG_RS256, ec_key, msg, MSG_LEN, raw, 64) == JOSE_SIG_KEY_MISMATCH);
    CHECK(jose_sig_verify(JOSE_ALG_ES384, ec_key, msg, MSG_LEN, raw, 64) == JOSE_SIG_KEY_MISMATCH);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, rsa_key, msg, MSG_LEN, raw, 64) == JOSE_SIG_KEY_MISMATCH);
    CHECK(jose_sig_verify(JOSE_ALG_EDDSA, ec_key, msg, MSG_LEN, raw, 64) == JOSE_SIG_KEY_MISMATCH);
    CHECK(jose_sig_verify(JOSE_ALG_UNKNOWN, ec_key, msg, MSG_LEN, raw, 64) ==
          JOSE_SIG_KEY_MISMATCH);
    CHECK(jose_sig_verify(JOSE_ALG_HS256, hs_key, msg, MSG_LEN, raw, 32) != JOSE_SIG_VALID);
    /* A key bound to RS256 by its own "alg" refuses PS256 even with a good PS256 signature. */
    size_t len = sign(rsa_priv, "SHA256", 32, sig, sizeof(sig));
    CHECK(jose_sig_verify(JOSE_ALG_PS256, rsa_key, msg, MSG_LEN, sig, len) == JOSE_SIG_VALID);
    CHECK(jose_sig_verify(JOSE_ALG_PS256, rsa_rs256_key, msg, MSG_LEN, sig, len) ==
          JOSE_SIG_KEY_MISMATCH);
}

TEST(ecdsa_psychic_signature_zero_refused)
{
    /* CVE-2022-21449: r = s = 0 verified every message in Java 15-18. */
    unsigned char zero[64] = {0};
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, zero, 64) == JOSE_SIG_INVALID);
    unsigned char raw[64];
    CHECK(sign_es256_raw(raw) == 0);
    memset(raw, 0, 32);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, raw, 64) == JOSE_SIG_INVALID);
    CHECK(sign_es256_raw(raw) == 0);
    memset(raw + 32, 0, 32);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, raw, 64) == JOSE_SIG_INVALID);
}

TEST(ecdsa_scalar_at_or_over_group_order_refused)
{
    /* r + n and s + n are the same residues: a verifier that reduces first accepts them. */
    unsigned char raw[64];
    CHECK(sign_es256_raw(raw) == 0);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, raw, 64) == JOSE_SIG_VALID);
    unsigned char bad[64];
    memcpy(bad, raw, 64);
    memcpy(bad, ec_key->ec_order, 32); /* r = n */
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, bad, 64) == JOSE_SIG_INVALID);
    memcpy(bad, raw, 64);
    memset(bad + 32, 0xff, 32); /* s = 2^256 - 1 > n */
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, bad, 64) == JOSE_SIG_INVALID);
}

TEST(ecdsa_der_or_wrong_length_signature_refused)
{
    /* RFC 7518 §3.4: JWS carries raw r || s; DER (what OpenSSL emits) is a different encoding. */
    unsigned char der[80], raw[66];
    size_t der_len = sign(ec_priv, "SHA256", -1, der, sizeof(der));
    CHECK(der_len > 0);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, der, der_len) == JOSE_SIG_INVALID);
    CHECK(sign_es256_raw(raw) == 0);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, raw, 63) == JOSE_SIG_INVALID);
    raw[64] = 0;
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, raw, 65) == JOSE_SIG_INVALID);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, NULL, 0) == JOSE_SIG_INVALID);
}

TEST(rsa_pss_salt_length_other_than_digest_refused)
{
    /* RFC 7518 §3.5: salt = hash length. OpenSSL's default verify accepts any salt. */
    unsigned char sig[512];
    size_t len = sign(rsa_priv, "SHA256", 32, sig, sizeof(sig));
    CHECK(jose_sig_verify(JOSE_ALG_PS256, rsa_key, msg, MSG_LEN, sig, len) == JOSE_SIG_VALID);
    len = sign(rsa_priv, "SHA256", 20, sig, sizeof(sig));
    CHECK(len > 0);
    CHECK(jose_sig_verify(JOSE_ALG_PS256, rsa_key, msg, MSG_LEN, sig, len) == JOSE_SIG_INVALID);
    len = sign(rsa_priv, "SHA256", 0, sig, sizeof(sig));
    CHECK(jose_sig_verify(JOSE_ALG_PS256, rsa_key, msg, MSG_LEN, sig, len) == JOSE_SIG_INVALID);
    /* A PKCS#1 v1.5 signature is not a PSS one, nor the other way round. */
    len = sign(rsa_priv, "SHA256", -1, sig, sizeof(sig));
    CHECK(jose_sig_verify(JOSE_ALG_RS256, rsa_key, msg, MSG_LEN, sig, len) == JOSE_SIG_VALID);
    CHECK(jose_sig_verify(JOSE_ALG_PS256, rsa_key, msg, MSG_LEN, sig, len) == JOSE_SIG_INVALID);
    CHECK(jose_sig_verify(JOSE_ALG_RS384, rsa_key, msg, MSG_LEN, sig, len) == JOSE_SIG_INVALID);
}

TEST(rsa_signature_not_modulus_length_refused)
{
    unsigned char sig[513];
    size_t len = sign(rsa_priv, "SHA256", -1, sig + 1, sizeof(sig) - 1);
    CHECK(len == 256);
    sig[0] = 0; /* same integer, one byte longer */
    CHECK(jose_sig_verify(JOSE_ALG_RS256, rsa_key, msg, MSG_LEN, sig, len + 1) == JOSE_SIG_INVALID);
    CHECK(jose_sig_verify(JOSE_ALG_RS256, rsa_key, msg, MSG_LEN, sig + 1, len - 1) ==
          JOSE_SIG_INVALID);
    CHECK(jose_sig_verify(JOSE_ALG_RS256, rsa_key, msg, MSG_LEN, sig + 1, len) == JOSE_SIG_VALID);
}

TEST(hmac_truncated_tag_refused)
{
    unsigned char tag[64];
    unsigned int tag_len = 0;
    HMAC(EVP_sha256(), hs_secret, sizeof(hs_secret), msg, MSG_LEN, tag, &tag_len);
    CHECK(jose_sig_verify(JOSE_ALG_HS256, hs_key, msg, MSG_LEN, tag, tag_len) == JOSE_SIG_VALID);
    CHECK(jose_sig_verify(JOSE_ALG_HS256, hs_key, msg, MSG_LEN, tag, 16) == JOSE_SIG_INVALID);
    CHECK(jose_sig_verify(JOSE_ALG_HS256, hs_key, msg, MSG_LEN, tag, 0) == JOSE_SIG_INVALID);
    tag[31] ^= 0x80;
    CHECK(jose_sig_verify(JOSE_ALG_HS256, hs_key, msg, MSG_LEN, tag, tag_len) == JOSE_SIG_INVALID);
    /* A 32-byte key serves HS256 only (RFC 7518 §3.2). */
    HMAC(EVP_sha384(), hs_secret, sizeof(hs_secret), msg, MSG_LEN, tag, &tag_len);
    CHECK(jose_sig_verify(JOSE_ALG_HS384, hs_key, msg, MSG_LEN, tag, tag_len) ==
          JOSE_SIG_KEY_MISMATCH);
}

TEST(eddsa_signature_wrong_length_refused)
{
    unsigned char sig[65];
    size_t len = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    len = sizeof(sig);
    CHECK(EVP_DigestSignInit(m, NULL, NULL, NULL, ed_priv) == 1 &&
          EVP_DigestSign(m, sig, &len, msg, MSG_LEN) == 1 && len == 64);
    EVP_MD_CTX_free(m);
    CHECK(jose_sig_verify(JOSE_ALG_EDDSA, ed_key, msg, MSG_LEN, sig, 64) == JOSE_SIG_VALID);
    sig[64] = 0;
    CHECK(jose_sig_verify(JOSE_ALG_EDDSA, ed_key, msg, MSG_LEN, sig, 65) == JOSE_SIG_INVALID);
    CHECK(jose_sig_verify(JOSE_ALG_EDDSA, ed_key, msg, MSG_LEN, sig, 63) == JOSE_SIG_INVALID);
    CHECK(jose_sig_verify(JOSE_ALG_EDDSA, ed_key, msg, MSG_LEN - 1, sig, 64) == JOSE_SIG_INVALID);
}

TEST(unprepared_key_verifies_by_slow_path)
{
    /* A key assembled by hand (no templates, no cached order) gives the same answers. */
    unsigned char raw[64], sig[512], tag[32];
    unsigned int tag_len = 0;
    jose_jwk_t ec = *ec_key, rsa = *rsa_key, hs = *hs_key;
    ec.prepared = rsa.prepared = hs.prepared = 0;
    memset(ec.verify_tmpl, 0, sizeof(ec.verify_tmpl));
    memset(ec.ec_order, 0, sizeof(ec.ec_order));
    memset(rsa.verify_tmpl, 0, sizeof(rsa.verify_tmpl));
    memset(hs.mac_tmpl, 0, sizeof(hs.mac_tmpl));
    CHECK(sign_es256_raw(raw) == 0);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, &ec, msg, MSG_LEN, raw, 64) == JOSE_SIG_VALID);
    memset(raw, 0, 32);
    CHECK(jose_sig_verify(JOSE_ALG_ES256, &ec, msg, MSG_LEN, raw, 64) == JOSE_SIG_INVALID);
    size_t len = sign(rsa_priv, "SHA256", 32, sig, sizeof(sig));
    CHECK(jose_sig_verify(JOSE_ALG_PS256, &rsa, msg, MSG_LEN, sig, len) == JOSE_SIG_VALID);
    len = sign(rsa_priv, "SHA256", 20, sig, sizeof(sig));
    CHECK(jose_sig_verify(JOSE_ALG_PS256, &rsa, msg, MSG_LEN, sig, len) == JOSE_SIG_INVALID);
    HMAC(EVP_sha256(), hs_secret, sizeof(hs_secret), msg, MSG_LEN, tag, &tag_len);
    CHECK(jose_sig_verify(JOSE_ALG_HS256, &hs, msg, MSG_LEN, tag, tag_len) == JOSE_SIG_VALID);
}

typedef struct thread_work {
    unsigned char es[64], rs[256], hs[32];
    size_t rs_len;
    int failures;
} thread_work_t;

static void *verify_many(void *arg)
{
    thread_work_t *w = arg;
    for (int i = 0; i < SIG_THREAD_ROUNDS; i++) {
        w->failures +=
            jose_sig_verify(JOSE_ALG_ES256, ec_key, msg, MSG_LEN, w->es, 64) != JOSE_SIG_VALID;
        w->failures += jose_sig_verify(JOSE_ALG_RS256, rsa_key, msg, MSG_LEN, w->rs, w->rs_len) !=
                       JOSE_SIG_VALID;
        w->failures +=
            jose_sig_verify(JOSE_ALG_HS256, hs_key, msg, MSG_LEN, w->hs, 32) != JOSE_SIG_VALID;
        w->failures += jose_sig_verify(JOSE_ALG_HS256, hs_key, msg, MSG_LEN - 1, w->hs, 32) !=
                       JOSE_SIG_INVALID;
    }
    return NULL;
}

TEST(concurrent_verify_with_one_shared_key)
{
    /* The daemon's workers share each key read-only; templates are duplicated, never shared. */
    thread_work_t w;
    unsigned int tag_len = 0;
    memset(&w, 0, sizeof(w));
    CHECK(sign_es256_raw(w.es) == 0);
    w.rs_len = sign(rsa_priv, "SHA256", -1, w.rs, sizeof(w.rs));
    HMAC(EVP_sha256(), hs_secret, sizeof(hs_secret), msg, MSG_LEN, w.hs, &tag_len);
    pthread_t t[SIG_THREADS];
    thread_work_t works[SIG_THREADS];
    for (int i = 0; i < SIG_THREADS; i++) {
        works[i] = w;
        CHECK(pthread_create(&t[i], NULL, verify_many, &works[i]) == 0);
    }
    for (int i = 0; i < SIG_THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(works[i].failures == 0, "thread %d: %d wrong answers", i, works[i].failures);
    }
}

static int make_keys(void)
{
    unsigned char raw[32];
    size_t raw_len = sizeof(raw);
    rsa_priv = EVP_RSA_gen(2048);
    ec_priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed_priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (rsa_priv == NULL || ec_priv == NULL || ed_priv == NULL ||
        EVP_PKEY_get_raw_public_key(ed_priv, raw, &raw_len) != 1) {
        return -1;
    }
    const char *n = bn_b64(rsa_priv, OSSL_PKEY_PARAM_RSA_N, 0);
    rsa_key = load(apr_psprintf(pool, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", n), 0);
    rsa_rs256_key = load(
        apr_psprintf(pool, "{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"AQAB\"}", n),
        0);
    ec_key = load(apr_psprintf(pool, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
                               bn_b64(ec_priv, OSSL_PKEY_PARAM_EC_PUB_X, 32),
                               bn_b64(ec_priv, OSSL_PKEY_PARAM_EC_PUB_Y, 32)),
                  0);
    ed_key = load(
        apr_psprintf(pool, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", b64(raw, raw_len)),
        0);
    hs_key = load(
        apr_psprintf(pool, "{\"kty\":\"oct\",\"k\":\"%s\"}", b64(hs_secret, sizeof(hs_secret))),
        JOSE_JWK_ALLOW_OCT);
    return rsa_key && rsa_rs256_key && ec_key && ed_key && hs_key ? 0 : -1;
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (make_keys() != 0) {
        fprintf(stderr, "cannot make test keys\n");
        return 1;
    }
    RUN(rsa_public_key_as_hmac_secret_refused);
    RUN(alg_of_another_family_or_curve_refused);
    RUN(ecdsa_psychic_signature_zero_refused);
    RUN(ecdsa_scalar_at_or_over_group_order_refused);
    RUN(ecdsa_der_or_wrong_length_signature_refused);
    RUN(rsa_pss_salt_length_other_than_digest_refused);
    RUN(rsa_signature_not_modulus_length_refused);
    RUN(hmac_truncated_tag_refused);
    RUN(eddsa_signature_wrong_length_refused);
    RUN(unprepared_key_verifies_by_slow_path);
    RUN(concurrent_verify_with_one_shared_key);
    apr_pool_destroy(pool);
    EVP_PKEY_free(rsa_priv);
    EVP_PKEY_free(ec_priv);
    EVP_PKEY_free(ed_priv);
    apr_terminate();
    return harness_report();
}
