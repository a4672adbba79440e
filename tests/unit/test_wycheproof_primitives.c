/* Project Wycheproof's signature primitive vectors (ECDSA P1363, Ed25519, HMAC, RSA PSS and
 * PKCS#1 v1.5) through jose_jwk_from_json + jose_sig_verify: every "valid" must verify, every
 * "invalid" must not, "acceptable" may go either way (counted). A group whose key the loader
 * refuses must hold no "valid" test. Files come from $JWTAUTHZ_TESTDATA/wycheproof. */
#include <errno.h>
#include <stdio.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "jose/b64url.h"
#include "jose/jwk.h"
#include "jose/pool.h"
#include "jose/sig.h"
#include "proto/json.h"
#include "harness.h"

/* The largest vector file is ~360 KiB; a bound keeps a broken checkout from eating memory. */
#define WYCHEPROOF_MAX_FILE_BYTES (8u * 1024u * 1024u)
/* Parsed values and strings of one file, with room. */
#define WYCHEPROOF_ARENA_BYTES (256u * 1024u * 1024u)
#define WYCHEPROOF_MAX_VALUES (4u * 1024u * 1024u)

typedef enum { KIND_ECDSA, KIND_EDDSA, KIND_HMAC, KIND_RSA_PSS, KIND_RSA_PKCS1 } vec_kind_e;

typedef struct vec_file {
    const char *name;
    vec_kind_e kind;
} vec_file_t;

static const vec_file_t vec_files[] = {
    {"ecdsa_secp256r1_sha256_p1363_test.json", KIND_ECDSA},
    {"ecdsa_secp384r1_sha384_p1363_test.json", KIND_ECDSA},
    {"ecdsa_secp521r1_sha512_p1363_test.json", KIND_ECDSA},
    {"ed25519_test.json", KIND_EDDSA},
    {"hmac_sha256_test.json", KIND_HMAC},
    {"hmac_sha384_test.json", KIND_HMAC},
    {"hmac_sha512_test.json", KIND_HMAC},
    {"rsa_pss_2048_sha256_mgf1_32_test.json", KIND_RSA_PSS},
    {"rsa_pss_2048_sha384_mgf1_48_test.json", KIND_RSA_PSS},
    {"rsa_pss_4096_sha512_mgf1_64_test.json", KIND_RSA_PSS},
    {"rsa_signature_2048_sha256_test.json", KIND_RSA_PKCS1},
    {"rsa_signature_2048_sha384_test.json", KIND_RSA_PKCS1},
    {"rsa_signature_2048_sha512_test.json", KIND_RSA_PKCS1},
    {"rsa_signature_3072_sha256_test.json", KIND_RSA_PKCS1},
    {"rsa_signature_4096_sha256_test.json", KIND_RSA_PKCS1},
    {"rsa_signature_4096_sha512_test.json", KIND_RSA_PKCS1},
};

typedef struct vec_counts {
    unsigned valid_accepted, invalid_refused, acceptable_accepted, acceptable_refused;
    unsigned skipped, refused_with_key, keys_from_coordinates;
} vec_counts_t;

static const char *testdata_dir;

static char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = malloc(WYCHEPROOF_MAX_FILE_BYTES + 1);
    if (buf != NULL) {
        *len = fread(buf, 1, WYCHEPROOF_MAX_FILE_BYTES + 1, f);
        if (*len > WYCHEPROOF_MAX_FILE_BYTES) {
            fprintf(stderr, "%s: over %u bytes\n", path, WYCHEPROOF_MAX_FILE_BYTES);
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Hex member of obj into pool memory; returns 0, or -1 when absent or not hex. */
static int hex_member(apr_pool_t *p, const proto_json_t *obj, const char *name, unsigned char **out,
                      size_t *len)
{
    const proto_json_t *v = proto_json_get(obj, name);
    if (v == NULL || v->type != PROTO_JSON_STRING || v->u.string.len % 2) {
        return -1;
    }
    size_t n = v->u.string.len / 2;
    unsigned char *b = apr_palloc(p, n + 1);
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(v->u.string.ptr[2 * i]), lo = hex_digit(v->u.string.ptr[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    *out = b;
    *len = n;
    return 0;
}

static long int_member(const proto_json_t *obj, const char *name)
{
    const proto_json_t *v = proto_json_get(obj, name);
    return v && v->type == PROTO_JSON_NUMBER && v->u.number.is_integer ? (long)v->u.number.value
                                                                       : -1;
}

static int str_member_is(const proto_json_t *obj, const char *name, const char *want)
{
    const proto_json_t *v = proto_json_get(obj, name);
    return v && v->type == PROTO_JSON_STRING && proto_str_eq_cstr(v->u.string, want);
}

/* "SHA-256" -> 0, "SHA-384" -> 1, "SHA-512" -> 2, else -1. */
static int sha_index(const proto_json_t *obj, const char *name)
{
    static const char *const names[] = {"SHA-256", "SHA-384", "SHA-512"};
    for (int i = 0; i < 3; i++) {
        if (str_member_is(obj, name, names[i])) {
            return i;
        }
    }
    return -1;
}

/* An EC JWK from the group's publicKey (wx, wy in hex, possibly with a sign byte or short), for
 * the groups Wycheproof publishes without publicKeyJwk. */
static proto_json_t *ec_jwk_from_coordinates(apr_pool_t *p, const proto_json_t *group)
{
    const proto_json_t *pk = proto_json_get(group, "publicKey");
    unsigned char *wx, *wy;
    size_t xl, yl, field;
    const char *crv;
    if (str_member_is(pk, "curve", "secp256r1")) {
        crv = "P-256", field = 32;
    } else if (str_member_is(pk, "curve", "secp384r1")) {
        crv = "P-384", field = 48;
    } else if (str_member_is(pk, "curve", "secp521r1")) {
        crv = "P-521", field = 66;
    } else {
        return NULL;
    }
    if (hex_member(p, pk, "wx", &wx, &xl) != 0 || hex_member(p, pk, "wy", &wy, &yl) != 0) {
        return NULL;
    }
    unsigned char x[66] = {0}, y[66] = {0};
    while (xl > field && *wx == 0) {
        wx++, xl--;
    }
    while (yl > field && *wy == 0) {
        wy++, yl--;
    }
    if (xl > field || yl > field) {
        return NULL;
    }
    memcpy(x + field - xl, wx, xl);
    memcpy(y + field - yl, wy, yl);
    const char *json =
        apr_psprintf(p, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", crv,
                     jose_b64url_encode(p, x, field, NULL), jose_b64url_encode(p, y, field, NULL));
    proto_json_t *v = NULL;
    proto_alloc_t a = jose_pool_allocator(p);
    return proto_json_read(json, strlen(json), NULL, &a, &v, NULL) == PROTO_JSON_OK ? v : NULL;
}

static proto_json_t *oct_jwk_from_hex_key(apr_pool_t *p, const proto_json_t *test)
{
    unsigned char *k;
    size_t kl;
    if (hex_member(p, test, "key", &k, &kl) != 0) {
        return NULL;
    }
    const char *json =
        apr_psprintf(p, "{\"kty\":\"oct\",\"k\":\"%s\"}", jose_b64url_encode(p, k, kl, NULL));
    proto_json_t *v = NULL;
    proto_alloc_t a = jose_pool_allocator(p);
    return proto_json_read(json, strlen(json), NULL, &a, &v, NULL) == PROTO_JSON_OK ? v : NULL;
}

/* One test vector against one key (NULL: the key was refused, with reason why). */
static void vector_check(const char *file, const proto_json_t *test, jose_alg_e alg,
                         const jose_jwk_t *key, const char *why, apr_pool_t *p, vec_counts_t *c)
{
    long id = int_member(test, "tcId");
    int want_valid = str_member_is(test, "result", "valid");
    int want_invalid = str_member_is(test, "result", "invalid");
    int acceptable = str_member_is(test, "result", "acceptable");
    unsigned char *msg, *sig;
    size_t msg_len, sig_len;
    CHECK_MSG(want_valid || want_invalid || acceptable, "%s tcId %ld: no result", file, id);
    if (key == NULL) {
        CHECK_MSG(!want_valid, "%s tcId %ld: valid, but the key was refused (%s)", file, id, why);
        c->refused_with_key++;
        return;
    }
    const char *sig_name = proto_json_get(test, "tag") ? "tag" : "sig";
    if (hex_member(p, test, "msg", &msg, &msg_len) != 0 ||
        hex_member(p, test, sig_name, &sig, &sig_len) != 0) {
        CHECK_MSG(0, "%s tcId %ld: bad hex", file, id);
        return;
    }
    jose_sig_result_e r = jose_sig_verify(alg, key, msg, msg_len, sig, sig_len);
    CHECK_MSG(r != JOSE_SIG_ERROR && r != JOSE_SIG_KEY_MISMATCH, "%s tcId %ld: result %d", file, id,
              (int)r);
    if (want_valid) {
        CHECK_MSG(r == JOSE_SIG_VALID, "%s tcId %ld: valid signature refused", file, id);
        c->valid_accepted += r == JOSE_SIG_VALID;
    } else if (want_invalid) {
        CHECK_MSG(r != JOSE_SIG_VALID, "%s tcId %ld: invalid signature accepted", file, id);
        c->invalid_refused += r != JOSE_SIG_VALID;
    } else if (r == JOSE_SIG_VALID) {
        c->acceptable_accepted++;
    } else {
        c->acceptable_refused++;
    }
}

static void group_run(const vec_file_t *vf, const proto_json_t *group, apr_pool_t *p,
                      vec_counts_t *c)
{
    static const jose_alg_e es[] = {JOSE_ALG_ES256, JOSE_ALG_ES384, JOSE_ALG_ES512};
    static const jose_alg_e rs[] = {JOSE_ALG_RS256, JOSE_ALG_RS384, JOSE_ALG_RS512};
    static const jose_alg_e ps[] = {JOSE_ALG_PS256, JOSE_ALG_PS384, JOSE_ALG_PS512};
    static const jose_alg_e hs[] = {JOSE_ALG_HS256, JOSE_ALG_HS384, JOSE_ALG_HS512};
    static const long hash_bits[] = {256, 384, 512};
    const proto_json_t *tests = proto_json_get(group, "tests");
    const proto_json_t *jwk = NULL;
    jose_alg_e alg = JOSE_ALG_UNKNOWN;
    int sha = sha_index(group, "sha");
    int model_jws = 1;

    if (tests == NULL || tests->type != PROTO_JSON_ARRAY) {
        CHECK_MSG(0, "%s: group without tests", vf->name);
        return;
    }
    switch (vf->kind) {
    case KIND_ECDSA:
        alg = sha >= 0 ? es[sha] : JOSE_ALG_UNKNOWN;
        jwk = proto_json_get(group, "publicKeyJwk");
        if (jwk == NULL) {
            jwk = ec_jwk_from_coordinates(p, group);
            c->keys_from_coordinates++;
        }
        break;
    case KIND_EDDSA:
        alg = JOSE_ALG_EDDSA;
        jwk = proto_json_get(group, "publicKeyJwk");
        break;
    case KIND_RSA_PKCS1:
        alg = sha >= 0 ? rs[sha] : JOSE_ALG_UNKNOWN;
        jwk = proto_json_get(group, "keyJwk");
        break;
    case KIND_RSA_PSS:
        alg = sha >= 0 ? ps[sha] : JOSE_ALG_UNKNOWN;
        jwk = proto_json_get(group, "publicKeyJwk");
        /* RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash. */
        model_jws = sha >= 0 && sha_index(group, "mgfSha") == sha &&
                    int_member(group, "sLen") == hash_bits[sha] / 8;
        break;
    case KIND_HMAC: {
        const char *a = strstr(vf->name, "sha");
        sha = a && a[3] == '2' ? 0 : a && a[3] == '3' ? 1 : a && a[3] == '5' ? 2 : -1;
        alg = sha >= 0 ? hs[sha] : JOSE_ALG_UNKNOWN;
        /* RFC 7518 §3.2: full-length tags, keys at least as long as the hash. */
        model_jws = sha >= 0 && int_member(group, "tagSize") == hash_bits[sha] &&
                    int_member(group, "keySize") >= hash_bits[sha];
        break;
    }
    }
    CHECK_MSG(alg != JOSE_ALG_UNKNOWN, "%s: cannot tell the algorithm", vf->name);
    if (!model_jws || alg == JOSE_ALG_UNKNOWN) {
        c->skipped += (unsigned)tests->u.array.count;
        return;
    }
    jose_jwk_t *key = NULL;
    const char *why = "no JWK in the group";
    if (vf->kind != KIND_HMAC && jwk != NULL) {
        why = jose_jwk_from_json(p, jwk, 0, &key);
    }
    for (size_t i = 0; i < tests->u.array.count; i++) {
        const proto_json_t *t = tests->u.array.items[i];
        if (vf->kind == KIND_HMAC) {
            const proto_json_t *oct = oct_jwk_from_hex_key(p, t);
            key = NULL;
            why = oct ? jose_jwk_from_json(p, oct, JOSE_JWK_ALLOW_OCT, &key) : "bad key hex";
        }
        vector_check(vf->name, t, alg, key, why, p, c);
    }
}

static void file_run(const vec_file_t *vf)
{
    char path[1024];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/wycheproof/%s", testdata_dir, vf->name);
    char *text = file_read(path, &len);
    CHECK_MSG(text != NULL, "%s: cannot read", path);
    if (text == NULL) {
        return;
    }
    proto_arena_t arena;
    proto_arena_init(&arena, WYCHEPROOF_ARENA_BYTES);
    proto_alloc_t alloc = proto_arena_allocator(&arena);
    proto_json_options_t opt = {0, WYCHEPROOF_MAX_VALUES, 0};
    proto_json_error_t err;
    proto_json_t *doc = NULL;
    vec_counts_t c = {0};
    apr_pool_t *p = NULL;
    if (proto_json_read(text, len, &opt, &alloc, &doc, &err) != PROTO_JSON_OK) {
        CHECK_MSG(0, "%s: %s at %zu", vf->name, err.message, err.offset);
        goto out;
    }
    const proto_json_t *groups = proto_json_get(doc, "testGroups");
    CHECK_MSG(groups && groups->type == PROTO_JSON_ARRAY, "%s: no testGroups", vf->name);
    if (groups == NULL || groups->type != PROTO_JSON_ARRAY) {
        goto out;
    }
    for (size_t g = 0; g < groups->u.array.count; g++) {
        /* A pool per group: its keys (EVP_PKEYs, templates, secrets) go with it. */
        apr_pool_create(&p, NULL);
        group_run(vf, groups->u.array.items[g], p, &c);
        apr_pool_destroy(p);
    }
    long total = int_member(doc, "numberOfTests");
    unsigned seen = c.valid_accepted + c.invalid_refused + c.acceptable_accepted +
                    c.acceptable_refused + c.skipped + c.refused_with_key;
    printf("%-42s valid accepted %3u, invalid refused %3u, acceptable %u (accepted %u), "
           "skipped %u, refused with their key %u\n",
           vf->name, c.valid_accepted, c.invalid_refused,
           c.acceptable_accepted + c.acceptable_refused, c.acceptable_accepted, c.skipped,
           c.refused_with_key);
    if (c.keys_from_coordinates) {
        printf("%-42s (%u groups without publicKeyJwk: JWK built from publicKey wx, wy)\n", "",
               c.keys_from_coordinates);
    }
    CHECK_MSG(total < 0 || (long)seen == total, "%s: counted %u of %ld tests", vf->name, seen,
              total);
out:
    proto_arena_clear(&arena);
    free(text);
}

int main(void)
{
    testdata_dir = getenv("JWTAUTHZ_TESTDATA");
    if (testdata_dir == NULL) {
        fprintf(stderr, "JWTAUTHZ_TESTDATA is not set (ctest sets it)\n");
        return 1;
    }
    apr_initialize();
    /* One harness test per file, as RUN() does it, named after the file. */
    for (size_t i = 0; i < sizeof(vec_files) / sizeof(vec_files[0]); i++) {
        harness_current_failed = 0;
        file_run(&vec_files[i]);
        if (harness_current_failed) {
            harness_failed++;
            fprintf(stderr, "FAIL %s\n", vec_files[i].name);
        } else {
            harness_passed++;
        }
    }
    apr_terminate();
    return harness_report();
}
