/* JWK and JWKS loading: each way a key is refused, by name (weak RSA, e = 1, invalid curve
 * points, HMAC keys from a fetched set, keys for encryption, alg/key confusion, ambiguous kids,
 * oversized sets), and that one bad key never takes the good ones down with it. Keys are made
 * here with OpenSSL, so nothing is checked against itself. */
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "jose/b64url.h"
#include "jose/jwk.h"
#include "jose/pool.h"
#include "jose/sig.h"
#include "proto/limits.h"
#include "harness.h"

static apr_pool_t *pool;
static const char *rsa2048_n, *rsa1024_n, *ec_x, *ec_y, *ed_x;
static EVP_PKEY *rsa2048, *ec256;

static const char *b64(const unsigned char *b, size_t n)
{
    return jose_b64url_encode(pool, b, n, NULL);
}

static const char *bn_param_b64(EVP_PKEY *k, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1200];
    if (EVP_PKEY_get_bn_param(k, name, &bn) != 1) {
        return NULL;
    }
    int len = pad ? pad : BN_num_bytes(bn);
    BN_bn2binpad(bn, buf, len);
    BN_free(bn);
    return b64(buf, (size_t)len);
}

/* Loads one JWK from JSON text; returns the reason (NULL when loaded). */
static const char *load(const char *json, unsigned flags, jose_jwk_t **out)
{
    proto_json_t *v = NULL;
    proto_json_error_t err;
    jose_jwk_t *dummy;
    if (jose_json_read(pool, json, strlen(json), &v, &err) != PROTO_JSON_OK) {
        fprintf(stderr, "test JSON does not parse: %s\n", err.message);
        return "test_json_broken";
    }
    return jose_jwk_from_json(pool, v, flags, out ? out : &dummy);
}

static const char *rsa_jwk(const char *n, const char *e, const char *extra)
{
    return apr_psprintf(pool, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", n, e, extra);
}

static const char *ec_jwk(const char *crv, const char *x, const char *y, const char *extra)
{
    return apr_psprintf(pool, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}", crv, x,
                        y, extra);
}

static const char *oct_jwk(size_t len, const char *extra)
{
    unsigned char k[JWK_OCT_MAX_BYTES + 8];
    for (size_t i = 0; i < len; i++) {
        k[i] = (unsigned char)(i + 1);
    }
    return apr_psprintf(pool, "{\"kty\":\"oct\",\"k\":\"%s\"%s}", b64(k, len), extra);
}

static jose_jwks_t *parse_set(const char *doc, unsigned flags, apr_status_t *rv)
{
    jose_jwks_t *set = NULL;
    char err[200] = "";
    *rv = jose_jwks_parse(pool, doc, strlen(doc), flags, &set, err, sizeof(err));
    return set;
}

TEST(rsa_2048_loaded_with_rs_and_ps_algs)
{
    jose_jwk_t *k = NULL;
    CHECK(load(rsa_jwk(rsa2048_n, "AQAB", ",\"kid\":\"r1\""), 0, &k) == NULL);
    CHECK(k && k->kty == JOSE_KTY_RSA && k->bits == 2048 && k->pkey != NULL && k->has_kid);
    CHECK(k && proto_str_eq_cstr(k->kid, "r1"));
    jose_alg_set_t want = JOSE_ALG_BIT(JOSE_ALG_RS256) | JOSE_ALG_BIT(JOSE_ALG_RS384) |
                          JOSE_ALG_BIT(JOSE_ALG_RS512) | JOSE_ALG_BIT(JOSE_ALG_PS256) |
                          JOSE_ALG_BIT(JOSE_ALG_PS384) | JOSE_ALG_BIT(JOSE_ALG_PS512);
    CHECK(k && k->algs == want);
}

TEST(rsa_own_alg_narrows_to_one_alg)
{
    jose_jwk_t *k = NULL;
    CHECK(load(rsa_jwk(rsa2048_n, "AQAB", ",\"alg\":\"PS384\""), 0, &k) == NULL);
    CHECK(k && k->algs == JOSE_ALG_BIT(JOSE_ALG_PS384) && k->alg == JOSE_ALG_PS384);
}

TEST(rsa_1024_refused_as_too_small)
{
    CHECK_STREQ(load(rsa_jwk(rsa1024_n, "AQAB", ""), 0, NULL), "rsa_too_small");
}

TEST(rsa_over_max_bits_refused_as_too_large)
{
    unsigned char n[JWK_RSA_MAX_BITS / 8 + 1];
    memset(n, 0xC5, sizeof(n)); /* odd, top bit set: 8200 bits */
    CHECK_STREQ(load(rsa_jwk(b64(n, sizeof(n)), "AQAB", ""), 0, NULL), "rsa_too_large");
    unsigned char big[JWK_RSA_MAX_BITS / 8 + 40];
    memset(big, 0xC5, sizeof(big)); /* refused from its length alone, before decoding */
    CHECK_STREQ(load(rsa_jwk(b64(big, sizeof(big)), "AQAB", ""), 0, NULL), "rsa_too_large");
}

TEST(rsa_leading_zero_octet_accepted_bits_from_value)
{
    unsigned char n[257];
    const char *plain = rsa2048_n;
    long got = jose_b64url_decode_into(proto_str_make(plain, strlen(plain)), n + 1, 256);
    CHECK(got == 256);
    n[0] = 0;
    jose_jwk_t *k = NULL;
    CHECK(load(rsa_jwk(b64(n, sizeof(n)), "AQAB", ""), 0, &k) == NULL);
    CHECK(k && k->bits == 2048);
}

TEST(rsa_exponent_one_refused)
{
    /* OpenSSL verifies under e = 1, where the "signature" is the padded digest itself. */
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AQ", ""), 0, NULL), "rsa_bad_exponent");
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AAE", ""), 0, NULL), "rsa_bad_exponent");
}

TEST(rsa_even_zero_or_wide_exponent_refused)
{
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AQAA", ""), 0, NULL), "rsa_bad_exponent"); /* 65536 */
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AA", ""), 0, NULL), "rsa_bad_exponent");   /* 0 */
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "", ""), 0, NULL), "rsa_bad_exponent");     /* empty */
    /* 2^64 + 1: 65 bits. */
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AQAAAAAAAAAB", ""), 0, NULL), "rsa_bad_exponent");
    /* 3 and 2^63 + 1 (64 bits) are fine. */
    CHECK(load(rsa_jwk(rsa2048_n, "Aw", ""), 0, NULL) == NULL);
    CHECK(load(rsa_jwk(rsa2048_n, "gAAAAAAAAAE", ""), 0, NULL) == NULL);
}

TEST(rsa_even_modulus_refused)
{
    unsigned char n[256];
    memset(n, 0xC4, sizeof(n));
    CHECK_STREQ(load(rsa_jwk(b64(n, sizeof(n)), "AQAB", ""), 0, NULL), "rsa_bad_modulus");
}

TEST(rsa_roca_key_refused)
{
    /* Wycheproof json_web_key_test.json, group jws_rsa_roca_key (CVE-2017-15361). */
    static const char roca_n[] =
        "AanFpofbj7KjD4Lf-N2hVMKR7yewSyXhhbirIMTGpfYEhZ_lnt5UoK98DnKIgArXGTu3MaW_"
        "HhFw16HGaTDUHqPrId7f"
        "e4r11CqRw09yBFuW79V8sYIwHdzCaWflUI6auImYbVfoN9_nD5n8N8SY9DwXw7mwZM9wREPXoDPgOoIWl6q_"
        "MPsp7n0z"
        "s3Z5ZaiQWOOzl1S9OhwAfSiiOwz6efnXEaxuTEtPd7BjSx7NaFka8Dx9U7YqXy2RFj1O9";
    const char *dir = getenv("JWTAUTHZ_TESTDATA");
    char path[1024];
    snprintf(path, sizeof(path), "%s/wycheproof/json_web_key_test.json", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (f == NULL) {
        return;
    }
    static char doc[64 * 1024];
    size_t len = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[len] = '\0';
    /* Take the full modulus from the file: the prefix above only identifies it. */
    char *at = strstr(doc, roca_n);
    CHECK(at != NULL);
    if (at == NULL) {
        return;
    }
    char *end = strchr(at, '"');
    const char *n = apr_pstrmemdup(pool, at, (size_t)(end - at));
    CHECK_STREQ(load(rsa_jwk(n, "AQAB", ""), 0, NULL), "rsa_roca_weak");
}

TEST(rsa_missing_or_malformed_members_refused)
{
    CHECK_STREQ(load("{\"kty\":\"RSA\",\"e\":\"AQAB\"}", 0, NULL), "missing_member");
    CHECK_STREQ(load(apr_psprintf(pool, "{\"kty\":\"RSA\",\"n\":\"%s\"}", rsa2048_n), 0, NULL),
                "missing_member");
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AQAB=", ""), 0, NULL), "bad_base64url");
    CHECK_STREQ(
        load(apr_psprintf(pool, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":65537}", rsa2048_n), 0, NULL),
        "bad_member");
}

TEST(private_members_ignored)
{
    /* A set that leaks "d" is still only a public key to us. */
    jose_jwk_t *k = NULL;
    CHECK(load(rsa_jwk(rsa2048_n, "AQAB", ",\"d\":\"AQAB\",\"p\":\"Aw\",\"q\":\"Bw\",\"dp\":7"), 0,
               &k) == NULL);
    BIGNUM *d = NULL;
    CHECK(k && EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_D, &d) != 1);
    BN_free(d);
    CHECK(load(ec_jwk("P-256", ec_x, ec_y, ",\"d\":\"AAAA\""), 0, &k) == NULL);
    CHECK(k && EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1);
    BN_free(d);
}

TEST(ec_p256_loaded_for_es256_only)
{
    jose_jwk_t *k = NULL;
    CHECK(load(ec_jwk("P-256", ec_x, ec_y, ""), 0, &k) == NULL);
    CHECK(k && k->kty == JOSE_KTY_EC && k->crv == JOSE_CRV_P256 && k->bits == 256);
    CHECK(k && k->algs == JOSE_ALG_BIT(JOSE_ALG_ES256) && k->prepared);
}

TEST(ec_point_not_on_curve_refused)
{
    /* Invalid-curve attack: a point off P-256 (last bit of y flipped). */
    unsigned char y[32];
    CHECK(jose_b64url_decode_into(proto_str_make(ec_y, strlen(ec_y)), y, sizeof(y)) == 32);
    y[31] ^= 1;
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, b64(y, 32), ""), 0, NULL), "not_on_curve");
    /* Wycheproof json_web_key_test.json 22 (invalid_point). */
    CHECK_STREQ(load(ec_jwk("P-256", "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
                            "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgnw", ""),
                     0, NULL),
                "not_on_curve");
    /* (0, 0) and coordinates >= p are not points either. */
    unsigned char zero[32] = {0}, ff[32];
    memset(ff, 0xff, sizeof(ff));
    CHECK_STREQ(load(ec_jwk("P-256", b64(zero, 32), b64(zero, 32), ""), 0, NULL), "not_on_curve");
    CHECK_STREQ(load(ec_jwk("P-256", b64(ff, 32), ec_y, ""), 0, NULL), "not_on_curve");
}

TEST(ec_point_from_another_curve_refused)
{
    /* Wycheproof json_web_key_test.json 23: a P-256 point labelled P-384. */
    CHECK_STREQ(load(ec_jwk("P-384", ec_x, ec_y, ""), 0, NULL), "ec_bad_coordinate");
}

TEST(ec_coordinate_wrong_length_refused)
{
    unsigned char x[33];
    CHECK(jose_b64url_decode_into(proto_str_make(ec_x, strlen(ec_x)), x + 1, 32) == 32);
    x[0] = 0;
    /* RFC 7518 §6.2.1.2: exactly the field size, even a leading zero more is wrong. */
    CHECK_STREQ(load(ec_jwk("P-256", b64(x, 33), ec_y, ""), 0, NULL), "ec_bad_coordinate");
    CHECK_STREQ(load(ec_jwk("P-256", b64(x + 2, 31), ec_y, ""), 0, NULL), "ec_bad_coordinate");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, "", ""), 0, NULL), "ec_bad_coordinate");
}

TEST(ec_unsupported_curve_refused)
{
    CHECK_STREQ(load(ec_jwk("secp256k1", ec_x, ec_y, ""), 0, NULL), "unsupported_crv");
    CHECK_STREQ(load(ec_jwk("p-256", ec_x, ec_y, ""), 0, NULL), "unsupported_crv");
    CHECK_STREQ(load("{\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"}", 0, NULL), "missing_member");
}

TEST(ed25519_loaded_for_eddsa)
{
    jose_jwk_t *k = NULL;
    CHECK(load(apr_psprintf(pool, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", ed_x), 0,
               &k) == NULL);
    CHECK(k && k->kty == JOSE_KTY_OKP && k->crv == JOSE_CRV_ED25519 &&
          k->algs == JOSE_ALG_BIT(JOSE_ALG_EDDSA));
}

TEST(okp_x25519_refused_as_not_for_signing)
{
    CHECK_STREQ(load(apr_psprintf(pool, "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"%s\"}", ed_x),
                     0, NULL),
                "not_for_signing");
    CHECK_STREQ(
        load(apr_psprintf(pool, "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"%s\"}", ed_x), 0, NULL),
        "unsupported_crv");
    CHECK_STREQ(load("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}", 0, NULL),
                "okp_bad_key");
}

TEST(oct_refused_from_fetched_set)
{
    CHECK_STREQ(load(oct_jwk(32, ""), 0, NULL), "oct_not_allowed");
}

TEST(oct_from_local_file_gets_hs_algs_its_length_allows)
{
    jose_jwk_t *k = NULL;
    CHECK(load(oct_jwk(32, ""), JOSE_JWK_ALLOW_OCT, &k) == NULL);
    CHECK(k && k->algs == JOSE_ALG_BIT(JOSE_ALG_HS256) && k->secret_len == 32);
    CHECK(load(oct_jwk(48, ""), JOSE_JWK_ALLOW_OCT, &k) == NULL);
    CHECK(k && k->algs == (JOSE_ALG_BIT(JOSE_ALG_HS256) | JOSE_ALG_BIT(JOSE_ALG_HS384)));
    CHECK(load(oct_jwk(64, ""), JOSE_JWK_ALLOW_OCT, &k) == NULL);
    CHECK(k && k->algs == (JOSE_ALG_BIT(JOSE_ALG_HS256) | JOSE_ALG_BIT(JOSE_ALG_HS384) |
                           JOSE_ALG_BIT(JOSE_ALG_HS512)));
}

TEST(oct_shorter_than_its_hash_refused)
{
    /* RFC 7518 §3.2; Wycheproof json_web_key_test.json 10-12 and 16-18. */
    CHECK_STREQ(load(oct_jwk(31, ""), JOSE_JWK_ALLOW_OCT, NULL), "oct_too_short");
    CHECK_STREQ(load(oct_jwk(47, ",\"alg\":\"HS384\""), JOSE_JWK_ALLOW_OCT, NULL), "oct_too_short");
    CHECK_STREQ(load(oct_jwk(63, ",\"alg\":\"HS512\""), JOSE_JWK_ALLOW_OCT, NULL), "oct_too_short");
    CHECK(load(oct_jwk(48, ",\"alg\":\"HS384\""), JOSE_JWK_ALLOW_OCT, NULL) == NULL);
    CHECK_STREQ(load("{\"kty\":\"oct\",\"k\":\"\"}", JOSE_JWK_ALLOW_OCT, NULL), "oct_too_short");
}

TEST(oct_over_max_bytes_refused)
{
    CHECK(load(oct_jwk(JWK_OCT_MAX_BYTES, ""), JOSE_JWK_ALLOW_OCT, NULL) == NULL);
    CHECK_STREQ(load(oct_jwk(JWK_OCT_MAX_BYTES + 1, ""), JOSE_JWK_ALLOW_OCT, NULL),
                "oct_too_large");
}

TEST(use_enc_refused)
{
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"use\":\"enc\""), 0, NULL), "not_for_signing");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"use\":\"SIG\""), 0, NULL), "not_for_signing");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"use\":[\"sig\"]"), 0, NULL), "bad_member");
    CHECK(load(ec_jwk("P-256", ec_x, ec_y, ",\"use\":\"sig\""), 0, NULL) == NULL);
}

TEST(key_ops_without_verify_refused)
{
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"key_ops\":[\"sign\",\"encrypt\"]"), 0, NULL),
                "not_for_signing");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"key_ops\":[]"), 0, NULL), "not_for_signing");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"key_ops\":\"verify\""), 0, NULL),
                "bad_member");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"key_ops\":[\"verify\",1]"), 0, NULL),
                "bad_member");
    CHECK(load(ec_jwk("P-256", ec_x, ec_y, ",\"key_ops\":[\"sign\",\"verify\"]"), 0, NULL) == NULL);
}

TEST(alg_mismatching_kty_refused)
{
    /* RS256 on an EC key, HS256 on an RSA key: the key-confusion setups. */
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"alg\":\"RS256\""), 0, NULL),
                "alg_key_mismatch");
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AQAB", ",\"alg\":\"HS256\""), 0, NULL),
                "alg_key_mismatch");
    CHECK_STREQ(load(oct_jwk(32, ",\"alg\":\"RS256\""), JOSE_JWK_ALLOW_OCT, NULL),
                "alg_key_mismatch");
}

TEST(alg_mismatching_curve_or_unknown_refused)
{
    /* Wycheproof json_web_key_test.json 19-20; "none" and encryption algs are not JWS algs. */
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"alg\":\"ES384\""), 0, NULL),
                "alg_key_mismatch");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"alg\":\"ES521\""), 0, NULL),
                "alg_key_mismatch");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"alg\":\"none\""), 0, NULL),
                "alg_key_mismatch");
    CHECK_STREQ(load(rsa_jwk(rsa2048_n, "AQAB", ",\"alg\":\"RSA-OAEP\""), 0, NULL),
                "alg_key_mismatch");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"alg\":256"), 0, NULL), "bad_member");
}

TEST(kid_bounds_and_types)
{
    char kid[JWK_MAX_KID_BYTES + 2];
    memset(kid, 'k', sizeof(kid));
    kid[JWK_MAX_KID_BYTES] = '\0';
    jose_jwk_t *k = NULL;
    CHECK(load(ec_jwk("P-256", ec_x, ec_y, apr_psprintf(pool, ",\"kid\":\"%s\"", kid)), 0, &k) ==
          NULL);
    CHECK(k && k->kid.len == JWK_MAX_KID_BYTES);
    kid[JWK_MAX_KID_BYTES] = 'k';
    kid[JWK_MAX_KID_BYTES + 1] = '\0';
    CHECK_STREQ(
        load(ec_jwk("P-256", ec_x, ec_y, apr_psprintf(pool, ",\"kid\":\"%s\"", kid)), 0, NULL),
        "bad_member");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"kid\":\"a\\u0000b\""), 0, NULL), "bad_member");
    CHECK_STREQ(load(ec_jwk("P-256", ec_x, ec_y, ",\"kid\":7"), 0, NULL), "bad_member");
}

TEST(kty_missing_unknown_or_wrong_type)
{
    CHECK_STREQ(load("{\"n\":\"AQAB\"}", 0, NULL), "missing_member");
    CHECK_STREQ(load("{\"kty\":\"DSA\"}", 0, NULL), "unknown_kty");
    CHECK_STREQ(load("{\"kty\":\"rsa\"}", 0, NULL), "unknown_kty");
    CHECK_STREQ(load("{\"kty\":1}", 0, NULL), "bad_member");
    CHECK_STREQ(load("[]", 0, NULL), "bad_member");
}

TEST(unknown_kty_skipped_others_kept)
{
    const char *doc = apr_psprintf(pool, "{\"keys\":[{\"kty\":\"DSA\",\"kid\":\"old\"},%s,%s]}",
                                   ec_jwk("P-256", ec_x, ec_y, ",\"kid\":\"ec1\""),
                                   rsa_jwk(rsa1024_n, "AQAB", ",\"kid\":\"weak\""));
    apr_status_t rv;
    jose_jwks_t *set = parse_set(doc, 0, &rv);
    CHECK(rv == APR_SUCCESS && set != NULL);
    if (set == NULL) {
        return;
    }
    CHECK(set->nkeys == 1 && proto_str_eq_cstr(set->keys[0]->kid, "ec1"));
    CHECK(set->nskipped == 2);
    CHECK(set->skipped[0].index == 0 && proto_str_eq_cstr(set->skipped[0].kid, "old"));
    CHECK_STREQ(set->skipped[0].reason, "unknown_kty");
    CHECK(set->skipped[1].index == 2 && proto_str_eq_cstr(set->skipped[1].kid, "weak"));
    CHECK_STREQ(set->skipped[1].reason, "rsa_too_small");
}

TEST(duplicate_kid_refused)
{
    const char *doc = apr_psprintf(pool, "{\"keys\":[%s,%s,%s]}",
                                   ec_jwk("P-256", ec_x, ec_y, ",\"kid\":\"same\""),
                                   rsa_jwk(rsa2048_n, "AQAB", ",\"kid\":\"same\""),
                                   rsa_jwk(rsa2048_n, "AQAB", ",\"kid\":\"other\""));
    apr_status_t rv;
    jose_jwks_t *set = parse_set(doc, 0, &rv);
    CHECK(rv == APR_SUCCESS && set != NULL);
    if (set == NULL) {
        return;
    }
    CHECK(set->nkeys == 1 && proto_str_eq_cstr(set->keys[0]->kid, "other"));
    CHECK(set->nskipped == 2);
    CHECK(set->skipped[0].index == 0 && set->skipped[1].index == 1);
    CHECK_STREQ(set->skipped[0].reason, "duplicate_kid");
    CHECK_STREQ(set->skipped[1].reason, "duplicate_kid");
}

TEST(duplicate_kid_with_refused_twin_still_refused)
{
    /* Wycheproof json_web_key_test.json 4: the twin's "k" is not canonical base64url. A loader
     * that only compared usable keys would let the first key answer for the ambiguous kid. */
    const char *doc =
        "{\"keys\":[{\"alg\":\"HS256\",\"use\":\"sig\",\"k\":\"-ebuDNsVZ2iJtoZ-akfXTSCt4UO2cruLCsbW"
        "lBinggE\",\"kid\":\"kid-aes-sign\",\"kty\":\"oct\"},{\"alg\":\"HS256\",\"use\":\"sig\","
        "\"k\":"
        "\"-xxuDNsVZ2iJtos-akfXTSCt4UO2cruLCsbWlBingge\",\"kid\":\"kid-aes-sign\",\"kty\":\"oct\"}]"
        "}";
    apr_status_t rv;
    jose_jwks_t *set = parse_set(doc, JOSE_JWK_ALLOW_OCT, &rv);
    CHECK(rv == APR_SUCCESS && set != NULL);
    if (set == NULL) {
        return;
    }
    CHECK(set->nkeys == 0 && set->nskipped == 2);
    CHECK_STREQ(set->skipped[0].reason, "duplicate_kid");
    CHECK_STREQ(set->skipped[1].reason, "bad_base64url");
}

TEST(oct_key_in_mixed_set_refused_public_keys_kept)
{
    /* Wycheproof json_web_key_test.json 1 (jws_mixedSymmetryKeyset), even from a local file. */
    const char *doc = apr_psprintf(pool, "{\"keys\":[%s,%s]}", oct_jwk(32, ",\"kid\":\"hs\""),
                                   ec_jwk("P-256", ec_x, ec_y, ",\"kid\":\"ec\""));
    apr_status_t rv;
    jose_jwks_t *set = parse_set(doc, JOSE_JWK_ALLOW_OCT, &rv);
    CHECK(rv == APR_SUCCESS && set != NULL);
    if (set == NULL) {
        return;
    }
    CHECK(set->nkeys == 1 && set->keys[0]->kty == JOSE_KTY_EC);
    CHECK(set->nskipped == 1 && proto_str_eq_cstr(set->skipped[0].kid, "hs"));
    CHECK_STREQ(set->nskipped ? set->skipped[0].reason : NULL, "mixed_key_set");
    /* A refused public key still makes the set mixed. */
    doc = apr_psprintf(pool, "{\"keys\":[%s,%s]}", oct_jwk(32, ""), rsa_jwk(rsa1024_n, "AQAB", ""));
    set = parse_set(doc, JOSE_JWK_ALLOW_OCT, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == 0 && set->nskipped == 2);
    /* Secrets alone are fine (Wycheproof json_web_key_test.json 2, jws_keyset). */
    doc = apr_psprintf(pool, "{\"keys\":[%s,%s]}", oct_jwk(32, ",\"kid\":\"a\""),
                       oct_jwk(64, ",\"kid\":\"b\""));
    set = parse_set(doc, JOSE_JWK_ALLOW_OCT, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == 2 && set->nskipped == 0);
}

TEST(kidless_keys_are_not_duplicates)
{
    const char *doc = apr_psprintf(pool, "{\"keys\":[%s,%s]}", ec_jwk("P-256", ec_x, ec_y, ""),
                                   rsa_jwk(rsa2048_n, "AQAB", ""));
    apr_status_t rv;
    jose_jwks_t *set = parse_set(doc, 0, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == 2 && set->nskipped == 0);
}

static const char *many_keys_doc(size_t n)
{
    char *doc = apr_pstrdup(pool, "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        doc = apr_pstrcat(
            pool, doc, i ? "," : "",
            ec_jwk("P-256", ec_x, ec_y, apr_psprintf(pool, ",\"kid\":\"k%u\"", (unsigned)i)), NULL);
    }
    return apr_pstrcat(pool, doc, "]}", NULL);
}

TEST(too_many_keys)
{
    apr_status_t rv;
    jose_jwks_t *set = parse_set(many_keys_doc(JWKS_MAX_KEYS), 0, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == JWKS_MAX_KEYS && set->nskipped == 0);
    set = parse_set(many_keys_doc(JWKS_MAX_KEYS + 2), 0, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == JWKS_MAX_KEYS && set->nskipped == 2);
    if (set && set->nskipped == 2) {
        CHECK_STREQ(set->skipped[0].reason, "too_many_keys");
        CHECK(set->skipped[0].index == JWKS_MAX_KEYS);
        CHECK(proto_str_eq_cstr(set->skipped[1].kid, apr_psprintf(pool, "k%u", JWKS_MAX_KEYS + 1)));
    }
}

TEST(jwks_over_size_limit_refused)
{
    /* The same valid set padded with whitespace to the limit, then one byte past it. */
    const char *body = apr_psprintf(pool, "{\"keys\":[%s]}", ec_jwk("P-256", ec_x, ec_y, ""));
    size_t blen = strlen(body);
    char *doc = malloc(JWKS_MAX_BYTES + 2);
    CHECK(doc != NULL);
    if (doc == NULL) {
        return;
    }
    memcpy(doc, body, blen);
    memset(doc + blen, ' ', JWKS_MAX_BYTES + 1 - blen);
    jose_jwks_t *set = NULL;
    char err[200] = "";
    CHECK(jose_jwks_parse(pool, doc, JWKS_MAX_BYTES, 0, &set, err, sizeof(err)) == APR_SUCCESS);
    CHECK(set && set->nkeys == 1);
    CHECK(jose_jwks_parse(pool, doc, JWKS_MAX_BYTES + 1, 0, &set, err, sizeof(err)) == APR_EINVAL);
    CHECK(set == NULL && strstr(err, "limit") != NULL);
    free(doc);
}

TEST(jwks_not_a_key_set_refused)
{
    apr_status_t rv;
    CHECK(parse_set("{\"keys\":[] /* c */}", 0, &rv) == NULL && rv == APR_EINVAL);
    CHECK(parse_set("[]", 0, &rv) == NULL && rv == APR_EINVAL);
    CHECK(parse_set("{\"keys\":{}}", 0, &rv) == NULL && rv == APR_EINVAL);
    CHECK(parse_set("{\"kty\":\"EC\"}", 0, &rv) == NULL && rv == APR_EINVAL);
    CHECK(parse_set("{\"keys\":[],\"keys\":[]}", 0, &rv) == NULL && rv == APR_EINVAL);
    CHECK(parse_set("", 0, &rv) == NULL && rv == APR_EINVAL);
    jose_jwks_t *set = parse_set("{\"keys\":[]}", 0, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == 0 && set->nskipped == 0);
    set = parse_set("{\"keys\":[1,\"x\",null]}", 0, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == 0 && set->nskipped == 3);
    if (set && set->nskipped == 3) {
        CHECK_STREQ(set->skipped[1].reason, "bad_member");
    }
}

TEST(jwks_single_jwk_only_when_asked)
{
    const char *one = ec_jwk("P-256", ec_x, ec_y, ",\"kid\":\"solo\"");
    apr_status_t rv;
    CHECK(parse_set(one, 0, &rv) == NULL && rv == APR_EINVAL);
    jose_jwks_t *set = parse_set(one, JOSE_JWKS_ACCEPT_SINGLE, &rv);
    CHECK(rv == APR_SUCCESS && set && set->nkeys == 1 &&
          proto_str_eq_cstr(set->keys[0]->kid, "solo"));
}

TEST(loaded_key_verifies_its_own_signature)
{
    /* End to end: a key from JSON verifies what OpenSSL signed with its private half. */
    static const unsigned char msg[] = "eyJhbGciOiJFUzI1NiJ9.Zm9v";
    unsigned char der[80], raw[64];
    size_t der_len = sizeof(der);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, ec256) == 1);
    CHECK(EVP_DigestSign(m, der, &der_len, msg, sizeof(msg) - 1) == 1);
    EVP_MD_CTX_free(m);
    const unsigned char *pp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &pp, (long)der_len);
    CHECK(es != NULL);
    if (es == NULL) {
        return;
    }
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    jose_jwk_t *k = NULL;
    CHECK(load(ec_jwk("P-256", ec_x, ec_y, ""), 0, &k) == NULL);
    if (k == NULL) {
        return;
    }
    CHECK(jose_sig_verify(JOSE_ALG_ES256, k, msg, sizeof(msg) - 1, raw, 64) == JOSE_SIG_VALID);
    raw[5] ^= 1;
    CHECK(jose_sig_verify(JOSE_ALG_ES256, k, msg, sizeof(msg) - 1, raw, 64) == JOSE_SIG_INVALID);
}

static int make_keys(void)
{
    rsa2048 = EVP_RSA_gen(2048);
    EVP_PKEY *rsa1024 = EVP_RSA_gen(1024);
    ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (rsa2048 == NULL || rsa1024 == NULL || ec256 == NULL || ed == NULL) {
        return -1;
    }
    rsa2048_n = bn_param_b64(rsa2048, OSSL_PKEY_PARAM_RSA_N, 0);
    rsa1024_n = bn_param_b64(rsa1024, OSSL_PKEY_PARAM_RSA_N, 0);
    ec_x = bn_param_b64(ec256, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    ec_y = bn_param_b64(ec256, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    unsigned char raw[32];
    size_t raw_len = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(ed, raw, &raw_len) != 1) {
        return -1;
    }
    ed_x = b64(raw, raw_len);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ed);
    return rsa2048_n && rsa1024_n && ec_x && ec_y ? 0 : -1;
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (make_keys() != 0) {
        fprintf(stderr, "cannot generate test keys\n");
        return 1;
    }
    RUN(rsa_2048_loaded_with_rs_and_ps_algs);
    RUN(rsa_own_alg_narrows_to_one_alg);
    RUN(rsa_1024_refused_as_too_small);
    RUN(rsa_over_max_bits_refused_as_too_large);
    RUN(rsa_leading_zero_octet_accepted_bits_from_value);
    RUN(rsa_exponent_one_refused);
    RUN(rsa_even_zero_or_wide_exponent_refused);
    RUN(rsa_even_modulus_refused);
    RUN(rsa_roca_key_refused);
    RUN(rsa_missing_or_malformed_members_refused);
    RUN(private_members_ignored);
    RUN(ec_p256_loaded_for_es256_only);
    RUN(ec_point_not_on_curve_refused);
    RUN(ec_point_from_another_curve_refused);
    RUN(ec_coordinate_wrong_length_refused);
    RUN(ec_unsupported_curve_refused);
    RUN(ed25519_loaded_for_eddsa);
    RUN(okp_x25519_refused_as_not_for_signing);
    RUN(oct_refused_from_fetched_set);
    RUN(oct_from_local_file_gets_hs_algs_its_length_allows);
    RUN(oct_shorter_than_its_hash_refused);
    RUN(oct_over_max_bytes_refused);
    RUN(use_enc_refused);
    RUN(key_ops_without_verify_refused);
    RUN(alg_mismatching_kty_refused);
    RUN(alg_mismatching_curve_or_unknown_refused);
    RUN(kid_bounds_and_types);
    RUN(kty_missing_unknown_or_wrong_type);
    RUN(unknown_kty_skipped_others_kept);
    RUN(duplicate_kid_refused);
    RUN(duplicate_kid_with_refused_twin_still_refused);
    RUN(oct_key_in_mixed_set_refused_public_keys_kept);
    RUN(kidless_keys_are_not_duplicates);
    RUN(too_many_keys);
    RUN(jwks_over_size_limit_refused);
    RUN(jwks_not_a_key_set_refused);
    RUN(jwks_single_jwk_only_when_asked);
    RUN(loaded_key_verifies_its_own_signature);
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(ec256);
    apr_pool_destroy(pool);
    apr_terminate();
    return harness_report();
}
