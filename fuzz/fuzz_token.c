/* Fuzzes a bearer token from the Authorization value to the verdict, as the daemon runs it:
 * jose_bearer_extract(), jose_token_parse() (header, then claims), jose_token_verify() against a
 * fixed key set built once (RSA, P-256, P-521, Ed25519; and a separate oct set, since the two
 * never mix), at a fixed time. The first input byte picks the verification options; the rest is
 * the Authorization value, or the bare token when it is not "Bearer ...". Whatever verifies must
 * have met every check the options asked for: a token never reaches JOSE_OK by a side door. */
#include <string.h>

#include "fuzz/fuzz.h"
#include "fuzz/fuzz_apr.h"
#include "jose/jwk.h"
#include "jose/token.h"
#include "proto/limits.h"

/* The keys are Project Wycheproof's JWS test keys ("kid-rsa-sign", "kid-ec-sign", "kid-aes-sign",
 * "hs256-key"; the P-521 and second HS256 key are RFC 7520's) and RFC 8037 §A.1's Ed25519 key,
 * so the seed corpus can hold tokens that verify (see README.md). The RSA key has no "alg", so it
 * serves RS* and PS*; the Ed25519 key has no "kid", so kid-less tokens try every key. */
static const char fuzz_jwks_asym[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"kid-rsa-sign\",\"e\":\"AQAB\",\"n\":\"kqGboBfAWttWPCA-0cGRgsY6SaYo"
    "IARt0B_PkaEcIq9HPYNdu9n6UuWHuuTHrjF_ZoQW97r5HaAorNvrMEGTGdxCHZdEtkHvNVVmrtxTBLiQCbCozXhFoIrV"
    "cr3qUBrdGnNn_M3jJi7Wg7p_-x62nS5gNG875oyheRkutHsQXikFZwsN3q_TsPNOVlCiHy8mxzaFTUQGm-X8UYexFyAi"
    "vlDSjgDJLAZSWfxd7k9Gxuwa3AUfQqQcVcegmgKGCaErQ3qQbh1x7WB6iopE3_-GZ8HMAVtR9AmrVscqYsnjhaCehfAI"
    "0iKKs8zXr8tISc0ORbaalrkk03H1ZrsEnDKEWQ\"},"
    "{\"kty\":\"EC\",\"kid\":\"kid-ec-sign\",\"crv\":\"P-256\",\"alg\":\"ES256\","
    "\"x\":\"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY\","
    "\"y\":\"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw\"},"
    "{\"kty\":\"EC\",\"kid\":\"bilbo.baggins@hobbiton.example\",\"crv\":\"P-521\","
    "\"alg\":\"ES512\",\"use\":\"sig\","
    "\"x\":\"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDy"
    "RXYgCF5cj0Kt\","
    "\"y\":\"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9c"
    "wlGfP-HqHZR1\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"
    "]}";

static const char fuzz_jwks_oct[] =
    "{\"keys\":["
    "{\"kty\":\"oct\",\"kid\":\"kid-aes-sign\",\"alg\":\"HS256\","
    "\"k\":\"-ebuDNsVZ2iJtoZ-akfXTSCt4UO2cruLCsbWlBinggE\"},"
    "{\"kty\":\"oct\",\"kid\":\"hs256-key\",\"alg\":\"HS256\","
    "\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},"
    "{\"kty\":\"oct\",\"kid\":\"018c0ae5-4d9b-471b-bfd6-eef314bc7037\","
    "\"k\":\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}"
    "]}";

/* The seed tokens' claims: iat/nbf 1600000000, exp 4102444800 (2100), this iss and aud. */
#define FUZZ_TOKEN_NOW 1700000000.0
#define FUZZ_TOKEN_LATER 5000000000.0 /* past every seed's exp */
#define FUZZ_TOKEN_LEEWAY_S 60

static const proto_str_t fuzz_issuer = PROTO_STR_LIT("https://issuer.example/");
static const proto_str_t fuzz_audiences[] = {PROTO_STR_LIT("api://other"),
                                             PROTO_STR_LIT("api://fuzz")};
static const proto_str_t fuzz_typ = PROTO_STR_LIT("at+jwt");

static jose_jwks_t *keys_asym, *keys_oct;

/* Option bits of the first input byte. */
#define OPT_JWS_ONLY 0x01u
#define OPT_TYP 0x02u
#define OPT_HMAC 0x04u     /* allow HS*: otherwise the asymmetric algorithms only */
#define OPT_ISSUER 0x08u   /* require iss */
#define OPT_AUDIENCE 0x10u /* require one of the audiences */
#define OPT_SMALL_CAP 0x20u
#define OPT_LATER 0x40u /* verify after every seed expired */

static jose_jwks_t *keys_load(const char *text, unsigned flags, size_t want)
{
    char err[200];
    jose_jwks_t *ks = NULL;
    if (jose_jwks_parse(fuzz_pools()->root, text, strlen(text), flags, &ks, err, sizeof(err)) !=
            APR_SUCCESS ||
        ks->nkeys != want) {
        fprintf(stderr, "fuzz_token: fixed key set refused: %s\n", ks ? "keys skipped" : err);
        for (size_t i = 0; ks && i < ks->nskipped; i++) {
            fprintf(stderr, "  key %zu: %s\n", ks->skipped[i].index, ks->skipped[i].reason);
        }
        abort();
    }
    return ks;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys_asym = keys_load(fuzz_jwks_asym, 0, 4);
    keys_oct = keys_load(fuzz_jwks_oct, JOSE_JWK_ALLOW_OCT, 3);
    fuzz_pools_destroy_at_exit();
    return 0;
}

static int aud_has(const proto_json_t *aud, proto_str_t want)
{
    if (aud == NULL) {
        return 0;
    }
    if (aud->type == PROTO_JSON_STRING) {
        return proto_str_eq(aud->u.string, want);
    }
    for (size_t i = 0; aud->type == PROTO_JSON_ARRAY && i < aud->u.array.count; i++) {
        const proto_json_t *a = aud->u.array.items[i];
        if (a->type == PROTO_JSON_STRING && proto_str_eq(a->u.string, want)) {
            return 1;
        }
    }
    return 0;
}

/* What JOSE_OK promises, checked from the outside. */
static void verified_check(const jose_token_t *t, const jose_verify_opts_t *o, double now,
                           const jose_jwk_t *used)
{
    const jose_jws_t *jws = t->jws;
    FUZZ_CHECK(used != NULL);
    FUZZ_CHECK(o->algorithms & JOSE_ALG_BIT(jws->alg));
    FUZZ_CHECK(used->algs & JOSE_ALG_BIT(jws->alg));
    FUZZ_CHECK(used->kty == jose_alg_kty(jws->alg));
    if (jws->has_kid) {
        FUZZ_CHECK(used->has_kid && proto_str_eq(used->kid, jws->kid));
    }
    if (o->typ) {
        FUZZ_CHECK(jws->has_typ && jose_jws_typ_matches(jws->typ, *o->typ));
    }
    if (o->jws_only) {
        return;
    }
    FUZZ_CHECK(t->has_claims && t->claims.has_exp);
    FUZZ_CHECK(now <= t->claims.exp + (double)o->claims.leeway_s);
    if (t->claims.has_nbf) {
        FUZZ_CHECK(t->claims.nbf <= now + (double)o->claims.leeway_s);
    }
    if (o->claims.issuer) {
        FUZZ_CHECK(t->claims.has_iss && proto_str_eq(t->claims.iss, *o->claims.issuer));
    }
    if (o->claims.naudiences) {
        int found = 0;
        for (size_t i = 0; i < o->claims.naudiences; i++) {
            found |= aud_has(t->claims.aud, o->claims.audiences[i]);
        }
        FUZZ_CHECK(found);
    }
}

static void parsed_check(const jose_token_t *t, int jws_only)
{
    const jose_jws_t *jws = t->jws;
    FUZZ_CHECK(jws != NULL && jws->header != NULL);
    FUZZ_CHECK(jws->header->type == PROTO_JSON_OBJECT);
    FUZZ_CHECK(jws->alg != JOSE_ALG_UNKNOWN && jws->alg < JOSE_ALG_COUNT);
    fuzz_touch(jws->signing_input.ptr, jws->signing_input.len);
    fuzz_touch(jws->payload, jws->payload_len + 1);
    FUZZ_CHECK(jws->payload[jws->payload_len] == '\0');
    fuzz_touch(jws->signature, jws->signature_len);
    if (jws->has_kid) {
        fuzz_touch(jws->kid.ptr, jws->kid.len);
    }
    if (jws->has_typ) {
        fuzz_touch(jws->typ.ptr, jws->typ.len);
    }
    if (!jws_only) {
        FUZZ_CHECK(t->has_claims && t->claims.root != NULL);
        FUZZ_CHECK(t->claims.root->type == PROTO_JSON_OBJECT);
        if (t->claims.has_iss) {
            fuzz_touch(t->claims.iss.ptr, t->claims.iss.len);
        }
        if (t->claims.has_sub) {
            fuzz_touch(t->claims.sub.ptr, t->claims.sub.len);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pools()->input;
    proto_str_t value, token;
    jose_token_t t;
    jose_verify_opts_t o;
    unsigned opt;
    size_t cap;
    double now;
    jose_reason_e r;

    if (size < 1) {
        return 0;
    }
    opt = data[0];
    value = proto_str_make((const char *)data + 1, size - 1);
    /* A client refuses a longer Authorization value before it is sent. */
    if (value.len > PROTO_MAX_AUTHORIZATION_BYTES) {
        return 0;
    }
    r = jose_bearer_extract(value, &token);
    if (r == JOSE_OK) {
        FUZZ_CHECK(token.len > 0 && token.ptr >= value.ptr &&
                   token.ptr + token.len == value.ptr + value.len);
    } else {
        FUZZ_CHECK(r == JOSE_R_TOKEN_MISSING && token.ptr == NULL);
        token = value;
    }

    /* The smallest cap a config may set, or the default: larger tokens go through the
     * token_too_large check first. */
    cap = (opt & OPT_SMALL_CAP) ? 512u : JOSE_MAX_TOKEN_BYTES_DEFAULT;
    r = jose_token_parse(p, token, cap, (opt & OPT_JWS_ONLY) != 0, &t);
    FUZZ_CHECK(jose_reason_code(r) != NULL && jose_reason_message(r) != NULL);
    if (token.len > cap) {
        FUZZ_CHECK(r == JOSE_R_TOKEN_TOO_LARGE);
    }
    if (r != JOSE_OK) {
        FUZZ_CHECK(jose_reason_is_token_fault(r) || r == JOSE_E_INTERNAL);
        goto out;
    }
    parsed_check(&t, (opt & OPT_JWS_ONLY) != 0);

    memset(&o, 0, sizeof(o));
    o.algorithms = JOSE_ALG_SET_ALL;
    if (!(opt & OPT_HMAC)) {
        o.algorithms &= ~(JOSE_ALG_BIT(JOSE_ALG_HS256) | JOSE_ALG_BIT(JOSE_ALG_HS384) |
                          JOSE_ALG_BIT(JOSE_ALG_HS512));
    }
    o.typ = (opt & OPT_TYP) ? &fuzz_typ : NULL;
    o.jws_only = (opt & OPT_JWS_ONLY) != 0;
    o.claims.issuer = (opt & OPT_ISSUER) ? &fuzz_issuer : NULL;
    if (opt & OPT_AUDIENCE) {
        o.claims.audiences = fuzz_audiences;
        o.claims.naudiences = sizeof(fuzz_audiences) / sizeof(fuzz_audiences[0]);
    }
    o.claims.leeway_s = FUZZ_TOKEN_LEEWAY_S;
    now = (opt & OPT_LATER) ? FUZZ_TOKEN_LATER : FUZZ_TOKEN_NOW;

    for (int k = 0; k < 2; k++) {
        const jose_jwk_t *used = NULL;
        r = jose_token_verify(&t, k ? keys_oct : keys_asym, &o, now, &used);
        FUZZ_CHECK(jose_reason_code(r) != NULL);
        if (r == JOSE_OK) {
            verified_check(&t, &o, now, used);
        } else {
            FUZZ_CHECK(r != JOSE_E_INTERNAL && jose_reason_is_token_fault(r));
        }
    }
out:
    apr_pool_clear(p);
    return 0;
}
