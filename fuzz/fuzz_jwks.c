/* Fuzzes jose_jwks_parse(), which reads every key set: fetched ones (no oct keys) and local
 * jwks_file ones (oct allowed when the issuer lists HS*), each input both ways, the second also
 * accepting a lone JWK as jwtauthzctl verify does. Whatever keys come out must be keys the
 * header promises: a known type bound to algorithms of that type, within the size bounds, kids
 * unique and NUL-free, no secret beside published keys, skipped entries in order with a reason. */
#include <string.h>

#include "fuzz/fuzz.h"
#include "fuzz/fuzz_apr.h"
#include "jose/jwk.h"
#include "proto/limits.h"

static void key_check(const jose_jwk_t *k, unsigned flags)
{
    FUZZ_CHECK(k != NULL);
    FUZZ_CHECK(k->algs != 0 && (k->algs & ~JOSE_ALG_SET_ALL) == 0);
    /* RFC 8725 §3.1: one family per key. */
    for (int a = 1; a < JOSE_ALG_COUNT; a++) {
        if (k->algs & JOSE_ALG_BIT(a)) {
            FUZZ_CHECK(jose_alg_kty((jose_alg_e)a) == k->kty);
            jose_crv_e crv = jose_alg_crv((jose_alg_e)a);
            FUZZ_CHECK(crv == JOSE_CRV_NONE || crv == k->crv);
        }
    }
    if (k->alg != JOSE_ALG_UNKNOWN) {
        FUZZ_CHECK(k->algs == JOSE_ALG_BIT(k->alg));
    }
    if (k->has_kid) {
        FUZZ_CHECK(k->kid.len <= JWK_MAX_KID_BYTES && !proto_str_has_nul(k->kid));
        fuzz_touch(k->kid.ptr, k->kid.len);
    }
    switch (k->kty) {
    case JOSE_KTY_RSA:
        FUZZ_CHECK(k->bits >= JWK_RSA_MIN_BITS && k->bits <= JWK_RSA_MAX_BITS);
        FUZZ_CHECK(k->pkey != NULL);
        break;
    case JOSE_KTY_EC:
        FUZZ_CHECK(k->crv == JOSE_CRV_P256 || k->crv == JOSE_CRV_P384 || k->crv == JOSE_CRV_P521);
        FUZZ_CHECK(k->pkey != NULL);
        break;
    case JOSE_KTY_OKP:
        FUZZ_CHECK(k->crv == JOSE_CRV_ED25519 && k->pkey != NULL);
        break;
    case JOSE_KTY_OCT:
        FUZZ_CHECK(flags & JOSE_JWK_ALLOW_OCT);
        FUZZ_CHECK(k->secret != NULL && k->secret_len >= 32 && k->secret_len <= JWK_OCT_MAX_BYTES);
        fuzz_touch(k->secret, k->secret_len);
        break;
    default:
        FUZZ_FAIL("unknown key type");
    }
}

static void set_check(const jose_jwks_t *ks, unsigned flags)
{
    int has_oct = 0, has_public = 0;
    FUZZ_CHECK(ks->nkeys <= JWKS_MAX_KEYS);
    for (size_t i = 0; i < ks->nkeys; i++) {
        const jose_jwk_t *k = ks->keys[i];
        key_check(k, flags);
        has_oct |= k->kty == JOSE_KTY_OCT;
        has_public |= k->kty != JOSE_KTY_OCT;
        for (size_t j = 0; j < i && k->has_kid; j++) {
            FUZZ_CHECK(!ks->keys[j]->has_kid || !proto_str_eq(ks->keys[j]->kid, k->kid));
        }
    }
    /* RFC 8725 §3.1: secrets do not ride along with published keys. */
    FUZZ_CHECK(!(has_oct && has_public));
    for (size_t i = 0; i < ks->nskipped; i++) {
        FUZZ_CHECK(ks->skipped[i].reason != NULL);
        fuzz_touch(ks->skipped[i].reason, strlen(ks->skipped[i].reason));
        fuzz_touch(ks->skipped[i].kid.ptr, ks->skipped[i].kid.len);
        if (i > 0) {
            FUZZ_CHECK(ks->skipped[i - 1].index < ks->skipped[i].index);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned flag_sets[2] = {0, JOSE_JWK_ALLOW_OCT | JOSE_JWKS_ACCEPT_SINGLE};
    apr_pool_t *p = fuzz_pools()->input;

    /* Over JWKS_MAX_BYTES goes through: the size check is the parser's first. */
    for (size_t f = 0; f < 2; f++) {
        jose_jwks_t *ks = NULL;
        char err[256];
        err[0] = '\0';
        apr_status_t rv =
            jose_jwks_parse(p, (const char *)data, size, flag_sets[f], &ks, err, sizeof(err));
        if (rv == APR_SUCCESS) {
            FUZZ_CHECK(ks != NULL);
            set_check(ks, flag_sets[f]);
        } else {
            FUZZ_CHECK(rv == APR_EINVAL || rv == APR_ENOMEM);
            FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        }
        if (size > JWKS_MAX_BYTES) {
            FUZZ_CHECK(rv == APR_EINVAL);
        }
        apr_pool_clear(p);
    }
    return 0;
}
