/* The key store without the network or a fake schedule: discovery document checks, the cache file
 * on disk (atomic, 0600, named by SHA-256, not trusted past its mtime), jwks_file issuers and
 * their reloads, reload keeping or replacing issuers, the persisted set served after a restart,
 * the admin report, and readers racing a writer (run it under ASan/UBSan). Timing decisions are
 * tested by test_jwks_scenarios.c. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "daemon/conf.h"
#include "daemon/discovery.h"
#include "daemon/jwks_persist.h"
#include "daemon/jwks_store.h"
#include "harness.h"
#include "jose/b64url.h"
#include "jose/pool.h"
#include "proto/limits.h"

static apr_pool_t *root;
static char tmpdir[256];

/* --- helpers ------------------------------------------------------------------------------------
 */

/* A fresh EC P-256 public JWK with kid, as JSON text in p. */
static char *ec_jwk(apr_pool_t *p, const char *kid)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    BIGNUM *x = NULL, *y = NULL;
    unsigned char bx[32], by[32];
    char *out = NULL;
    if (pk != NULL && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
        BN_bn2binpad(x, bx, 32) == 32 && BN_bn2binpad(y, by, 32) == 32) {
        out = apr_psprintf(p,
                           "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES256\",\"kid\":\"%s\","
                           "\"x\":\"%s\",\"y\":\"%s\"}",
                           kid, jose_b64url_encode(p, bx, 32, NULL),
                           jose_b64url_encode(p, by, 32, NULL));
    }
    BN_free(x);
    BN_free(y);
    EVP_PKEY_free(pk);
    return out;
}

static const char *jwks_of(apr_pool_t *p, const char *a, const char *b)
{
    return apr_psprintf(p, "{\"keys\":[%s%s%s]}", a ? a : "", (a && b) ? "," : "", b ? b : "");
}

static int write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        return -1;
    }
    fputs(text, fp);
    return fclose(fp);
}

typedef struct test_log {
    char text[16384];
    size_t len;
} test_log_t;

static void log_collect(void *ctx, int level, const char *fmt, ...)
{
    test_log_t *l = ctx;
    char line[1200];
    va_list ap;
    (void)level;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && l->len + (size_t)n + 2 < sizeof(l->text)) {
        memcpy(l->text + l->len, line, (size_t)n);
        l->len += (size_t)n;
        l->text[l->len++] = '\n';
        l->text[l->len] = '\0';
    }
}

/* A one-issuer config generation in its own pool (a child of root). */
static conf_t *conf_one(apr_pool_t **gen, const char *issuer, conf_key_source_e src,
                        const char *ref, const char *cache_dir)
{
    apr_pool_create(gen, root);
    conf_t *c = apr_pcalloc(*gen, sizeof(*c));
    conf_issuer_t *ci = apr_pcalloc(*gen, sizeof(*ci));
    c->pool = *gen;
    c->cache_dir = cache_dir;
    c->issuers = ci;
    c->nissuers = 1;
    ci->issuer = proto_str_make(apr_pstrdup(*gen, issuer), strlen(issuer));
    ci->key_source = src;
    if (src == CONF_KEYS_FILE) {
        ci->jwks_file = ref;
    } else if (src == CONF_KEYS_URI) {
        ci->jwks_uri = ref;
    } else {
        ci->discovery_uri = ref;
    }
    ci->algorithms = CONF_DEFAULT_ALGORITHMS;
    ci->jwks_refresh_s = 600;
    ci->jwks_min_refresh_s = 30;
    ci->jwks_max_stale_s = 86400;
    ci->fetch_timeout_s = 10;
    return c;
}

/* --- discovery ----------------------------------------------------------------------------------
 */

TEST(discovery_url_strips_one_trailing_slash)
{
    char out[256];
    CHECK(discovery_url_build(PROTO_STR_LIT("https://idp.example.com/"), out, sizeof(out)) == 0);
    CHECK_STREQ(out, "https://idp.example.com/.well-known/openid-configuration");
    CHECK(discovery_url_build(PROTO_STR_LIT("https://idp.example.com/tenant"), out, sizeof(out)) ==
          0);
    CHECK_STREQ(out, "https://idp.example.com/tenant/.well-known/openid-configuration");
    CHECK(discovery_url_build(PROTO_STR_LIT("https://idp.example.com/t//"), out, sizeof(out)) == 0);
    /* One slash goes; the path's own "t/" stays. */
    CHECK_STREQ(out, "https://idp.example.com/t//.well-known/openid-configuration");
    CHECK(discovery_url_build(PROTO_STR_LIT("http://idp.example.com"), out, sizeof(out)) == -1);
    CHECK(discovery_url_build(PROTO_STR_LIT("https://idp.example.com"), out, 40) == -1);
}

TEST(discovery_url_refuses_userinfo_and_odd_bytes)
{
    CHECK(discovery_url_is_https(PROTO_STR_LIT("HTTPS://idp.example.com/k"), 100));
    CHECK(!discovery_url_is_https(PROTO_STR_LIT("https://idp.example.com@evil.example/"), 100));
    CHECK(!discovery_url_is_https(PROTO_STR_LIT("https://"), 100));
    CHECK(!discovery_url_is_https(PROTO_STR_LIT("https:///path"), 100));
    CHECK(!discovery_url_is_https(PROTO_STR_LIT("https://idp.example.com/a b"), 100));
    CHECK(!discovery_url_is_https(PROTO_STR_LIT("https://idp.example.com/#frag"), 100));
    CHECK(!discovery_url_is_https(proto_str_make("https://idp\0.example.com/", 24), 100));
    CHECK(!discovery_url_is_https(PROTO_STR_LIT("https://idp.example.com/long"), 20));
    CHECK(!discovery_url_is_https(PROTO_STR_LIT("file:///etc/passwd"), 100));
}

static apr_status_t disc(const char *doc, const char *issuer, char *uri, char *err)
{
    apr_pool_t *p;
    apr_pool_create(&p, root);
    apr_status_t st = discovery_read(p, doc, strlen(doc), proto_str_make(issuer, strlen(issuer)),
                                     uri, 128, err, 256);
    apr_pool_destroy(p);
    return st;
}

TEST(discovery_issuer_impersonation_refused)
{
    char uri[128], err[256];
    const char *ok = "{\"issuer\":\"https://idp.example.com/\","
                     "\"jwks_uri\":\"https://idp.example.com/keys\"}";
    CHECK(disc(ok, "https://idp.example.com/", uri, err) == APR_SUCCESS);
    CHECK_STREQ(uri, "https://idp.example.com/keys");
    /* Discovery §4.3: byte for byte, no trailing-slash or case leniency. */
    CHECK(disc(ok, "https://idp.example.com", uri, err) == APR_EINVAL);
    CHECK(strstr(err, "differs") != NULL);
    CHECK(disc(ok, "https://IDP.example.com/", uri, err) == APR_EINVAL);
    CHECK(disc("{\"jwks_uri\":\"https://idp.example.com/keys\"}", "https://idp.example.com/", uri,
               err) == APR_EINVAL);
    CHECK(disc("{\"issuer\":[\"https://idp.example.com/\"],\"jwks_uri\":\"https://i/k\"}",
               "https://idp.example.com/", uri, err) == APR_EINVAL);
}

TEST(discovery_jwks_uri_downgrade_refused)
{
    char uri[128], err[256];
    const char *iss = "https://idp.example.com/";
    CHECK(
        disc("{\"issuer\":\"https://idp.example.com/\",\"jwks_uri\":\"http://idp.example.com/k\"}",
             iss, uri, err) == APR_EINVAL);
    CHECK(disc("{\"issuer\":\"https://idp.example.com/\"}", iss, uri, err) == APR_EINVAL);
    CHECK(disc("{\"issuer\":\"https://idp.example.com/\",\"jwks_uri\":\"https://i/\\u0000x\"}", iss,
               uri, err) == APR_EINVAL);
    /* Duplicate members: which one wins differs between parsers, so neither does. */
    CHECK(disc("{\"issuer\":\"https://idp.example.com/\",\"jwks_uri\":\"https://a/k\","
               "\"jwks_uri\":\"https://evil/k\"}",
               iss, uri, err) == APR_EINVAL);
    CHECK(disc("[1]", iss, uri, err) == APR_EINVAL);
    CHECK(disc("not json", iss, uri, err) == APR_EINVAL);
    /* Longer than the caller's buffer: refused, not cut. */
    char *doc = apr_psprintf(
        root, "{\"issuer\":\"%s\",\"jwks_uri\":\"https://idp.example.com/%0200d\"}", iss, 0);
    CHECK(disc(doc, iss, uri, err) == APR_EINVAL);
}

/* --- policy helpers not covered by the scenarios -----------------------------------------------
 */

TEST(etag_header_injection_refused)
{
    CHECK(jwks_policy_etag_is_valid("\"abc\"", 5, 256));
    CHECK(jwks_policy_etag_is_valid("W/\"abc\"", 7, 256));
    CHECK(jwks_policy_etag_is_valid("\"\"", 2, 256));
    CHECK(!jwks_policy_etag_is_valid("abc", 3, 256));
    CHECK(!jwks_policy_etag_is_valid("\"a\r\nX-Evil: 1\"", 14, 256));
    CHECK(!jwks_policy_etag_is_valid("\"a b\"", 5, 256));
    CHECK(!jwks_policy_etag_is_valid("\"a\"b\"", 5, 256));
    CHECK(!jwks_policy_etag_is_valid("\"", 1, 256));
    CHECK(!jwks_policy_etag_is_valid("\"abc\"", 5, 5));
    CHECK(!jwks_policy_etag_is_valid(NULL, 0, 256));
}

TEST(retry_delay_doubles_to_refresh)
{
    jwks_policy_params_t p = {600, 30, 86400};
    CHECK(jwks_policy_retry_delay(&p, 1) == 30);
    CHECK(jwks_policy_retry_delay(&p, 2) == 60);
    CHECK(jwks_policy_retry_delay(&p, 5) == 480);
    CHECK(jwks_policy_retry_delay(&p, 6) == 600);
    CHECK(jwks_policy_retry_delay(&p, 4000000000u) == 600);
    jwks_policy_params_t zero = {0, 0, 0};
    CHECK(jwks_policy_retry_delay(&zero, 1) == 1);
    jwks_freshness_t f = {1, 0, 0};
    CHECK(jwks_policy_refresh_interval(&zero, &f) == 1);
}

/* --- the cache file --------------------------------------------------------------------------- */

static jwks_persist_record_t record(const char *issuer, const char *body)
{
    jwks_persist_record_t r;
    memset(&r, 0, sizeof(r));
    r.issuer = proto_str_make(issuer, strlen(issuer));
    r.source = "https://idp.example.com/jwks.json";
    r.jwks_uri = "https://cdn.example.com/jwks.json";
    r.fetched_at = 1000;
    r.confirmed_at = 2000;
    r.etag = "\"e\\\"1\n\"";
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

TEST(persist_round_trip_atomic_0600)
{
    apr_pool_t *p;
    char err[512];
    const char *dir = apr_pstrcat(root, tmpdir, "/persist1/sub", NULL);
    apr_pool_create(&p, root);
    mkdir(apr_pstrcat(p, tmpdir, "/persist1", NULL), 0755);
    jwks_persist_record_t r = record("https://idp.example.com/", "{\"keys\":[]}\n");
    CHECK(jwks_persist_save(p, dir, &r, err, sizeof(err)) == APR_SUCCESS);

    const char *path;
    CHECK(jwks_persist_path(p, dir, r.issuer, &path) == APR_SUCCESS);
    /* echo -n https://idp.example.com/ | sha256sum */
    CHECK(strstr(path, "/sub/") != NULL && strlen(strrchr(path, '/') + 1) == 64 + 5);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    /* Only the file itself: no temporary left behind. */
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        entries += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    CHECK(entries == 1);

    jwks_persist_record_t back;
    CHECK(jwks_persist_load(p, dir, r.issuer, &back, err, sizeof(err)) == APR_SUCCESS);
    CHECK_STREQ(back.source, r.source);
    CHECK_STREQ(back.jwks_uri, r.jwks_uri);
    CHECK_STREQ(back.etag, r.etag);
    CHECK(back.fetched_at == 1000 && back.confirmed_at == 2000);
    CHECK(back.body_len == r.body_len && memcmp(back.body, r.body, r.body_len) == 0);

    /* A second save replaces the first. */
    r.confirmed_at = 3000;
    r.etag = NULL;
    CHECK(jwks_persist_save(p, dir, &r, err, sizeof(err)) == APR_SUCCESS);
    CHECK(jwks_persist_load(p, dir, r.issuer, &back, err, sizeof(err)) == APR_SUCCESS);
    CHECK(back.confirmed_at == 3000 && back.etag == NULL);

    /* Another issuer has no file; a file naming another issuer is not ours. */
    CHECK(jwks_persist_load(p, dir, PROTO_STR_LIT("https://other/"), &back, err, sizeof(err)) ==
          APR_ENOENT);
    const char *other;
    jwks_persist_path(p, dir, PROTO_STR_LIT("https://other/"), &other);
    CHECK(rename(path, other) == 0);
    CHECK(jwks_persist_load(p, dir, PROTO_STR_LIT("https://other/"), &back, err, sizeof(err)) ==
          APR_EINVAL);
    CHECK(strstr(err, "another issuer") != NULL);
    apr_pool_destroy(p);
}

TEST(persist_file_cannot_claim_fresher_than_mtime)
{
    apr_pool_t *p;
    char err[512];
    const char *dir = apr_pstrcat(root, tmpdir, "/persist2", NULL);
    apr_pool_create(&p, root);
    jwks_persist_record_t r = record("https://idp.example.com/", "{\"keys\":[]}");
    r.fetched_at = 4000000000LL;
    r.confirmed_at = 4000000000LL; /* 2096: a forged or clock-skewed file */
    CHECK(jwks_persist_save(p, dir, &r, err, sizeof(err)) == APR_SUCCESS);
    const char *path;
    jwks_persist_path(p, dir, r.issuer, &path);
    struct utimbuf ut = {5000, 5000};
    CHECK(utime(path, &ut) == 0);
    jwks_persist_record_t back;
    CHECK(jwks_persist_load(p, dir, r.issuer, &back, err, sizeof(err)) == APR_SUCCESS);
    CHECK(back.confirmed_at == 5000 && back.fetched_at == 5000);
    apr_pool_destroy(p);
}

TEST(persist_damaged_or_linked_file_refused)
{
    apr_pool_t *p;
    char err[512];
    const char *dir = apr_pstrcat(root, tmpdir, "/persist3", NULL);
    const char *path;
    jwks_persist_record_t back;
    apr_pool_create(&p, root);
    mkdir(dir, 0700);
    proto_str_t iss = PROTO_STR_LIT("https://idp.example.com/");
    jwks_persist_path(p, dir, iss, &path);

    CHECK(write_file(path, "no header line at all") == 0);
    CHECK(jwks_persist_load(p, dir, iss, &back, err, sizeof(err)) == APR_EINVAL);
    CHECK(write_file(path, "{\"format\":\"something-else/9\"}\n{}") == 0);
    CHECK(jwks_persist_load(p, dir, iss, &back, err, sizeof(err)) == APR_EINVAL);
    CHECK(write_file(path, "{\"format\":\"jwtauthz-jwks-cache/1\",\"issuer\":\"https://idp."
                           "example.com/\",\"source\":\"s\",\"jwks_uri\":\"u\",\"fetched_at\":"
                           "\"soon\",\"confirmed_at\":1}\n{}") == 0);
    CHECK(jwks_persist_load(p, dir, iss, &back, err, sizeof(err)) == APR_EINVAL);
    /* A symbolic link in the cache directory is not a file we wrote. */
    unlink(path);
    const char *target = apr_pstrcat(p, dir, "/target", NULL);
    CHECK(write_file(target, "x") == 0);
    CHECK(symlink(target, path) == 0);
    CHECK(jwks_persist_load(p, dir, iss, &back, err, sizeof(err)) == APR_EINVAL);
    CHECK(strstr(err, "symbolic link") != NULL);
    unlink(path);
    /* A cache_dir that is a file: saving fails cleanly. */
    jwks_persist_record_t r = record("https://idp.example.com/", "{}");
    CHECK(jwks_persist_save(p, target, &r, err, sizeof(err)) != APR_SUCCESS);
    apr_pool_destroy(p);
}

TEST(key_file_over_limit_refused_before_reading)
{
    apr_pool_t *p;
    char err[512];
    const char *text;
    size_t len;
    const char *path = apr_pstrcat(root, tmpdir, "/big.json", NULL);
    apr_pool_create(&p, root);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, JWKS_MAX_BYTES + 1) == 0);
    close(fd);
    CHECK(jwks_file_read(p, path, JWKS_MAX_BYTES, 1, &text, &len, NULL, err, sizeof(err)) ==
          APR_EINVAL);
    CHECK(jwks_file_read(p, tmpdir, JWKS_MAX_BYTES, 1, &text, &len, NULL, err, sizeof(err)) ==
          APR_EINVAL);
    CHECK(jwks_file_read(p, "/nonexistent/x", 10, 1, &text, &len, NULL, err, sizeof(err)) ==
          APR_ENOENT);
    apr_pool_destroy(p);
}

/* --- jwks_file issuers and reloads --------------------------------------------------------------
 */

TEST(jwks_file_loaded_and_reread_on_reload)
{
    apr_pool_t *g1, *g2, *g3, *sp;
    jwks_store_t *store;
    jwks_issuer_t **l1, **l2, **l3;
    test_log_t log = {.len = 0};
    const char *file = apr_pstrcat(root, tmpdir, "/keys.json", NULL);
    char *a = ec_jwk(root, "a"), *b = ec_jwk(root, "b");

    apr_pool_create(&sp, root);
    CHECK(jwks_store_create(&store, sp) == APR_SUCCESS);
    jwks_store_set_log(store, log_collect, &log);
    CHECK(write_file(file, jwks_of(root, a, b)) == 0);
    conf_t *c1 = conf_one(&g1, "https://file.example/", CONF_KEYS_FILE, file, NULL);
    CHECK(jwks_store_configure(store, c1, 100, &l1) == APR_SUCCESS);
    jwks_set_t *s = jwks_issuer_acquire(l1[0], 100);
    CHECK(s != NULL && s->keys->nkeys == 2 && s->serial == 1);
    jwks_set_release(s);
    /* Files are never fetched and never go stale. */
    CHECK(jwks_issuer_request_refresh(l1[0], 100) == 0);
    CHECK(!jwks_issuer_fetch_pending(l1[0]));
    CHECK(jwks_store_refresh(store, PROTO_STR_LIT("https://file.example/")) == APR_EINVAL);
    s = jwks_issuer_acquire(l1[0], 100 + 10 * 86400);
    CHECK(s != NULL);
    jwks_set_release(s);

    /* Reload: b withdrawn from the file. Same issuer object, new set, epoch moved. */
    CHECK(write_file(file, jwks_of(root, a, NULL)) == 0);
    conf_t *c2 = conf_one(&g2, "https://file.example/", CONF_KEYS_FILE, file, NULL);
    CHECK(jwks_store_configure(store, c2, 200, &l2) == APR_SUCCESS);
    CHECK(l2[0] == l1[0]);
    s = jwks_issuer_acquire(l2[0], 200);
    CHECK(s != NULL && s->keys->nkeys == 1 && s->serial == 2);
    jwks_set_release(s);
    CHECK(jwks_issuer_removal_epoch(l2[0]) == 1);

    /* Reload with a broken file: the keys read before stay, the error is logged and reported. */
    CHECK(write_file(file, "{\"keys\":[{\"kty\":\"EC\"") == 0);
    conf_t *c3 = conf_one(&g3, "https://file.example/", CONF_KEYS_FILE, file, NULL);
    CHECK(jwks_store_configure(store, c3, 300, &l3) == APR_SUCCESS);
    s = jwks_issuer_acquire(l3[0], 300);
    CHECK(s != NULL && s->serial == 2);
    jwks_set_release(s);
    CHECK(jwks_issuer_removal_epoch(l3[0]) == 1);
    CHECK(strstr(log.text, "keeping the keys read before") != NULL);

    yajl_gen gen = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    CHECK(jwks_store_report(store, gen, 300) == yajl_gen_status_ok);
    yajl_gen_get_buf(gen, &buf, &len);
    CHECK(strstr((const char *)buf, "\"source\":\"file\"") != NULL);
    CHECK(strstr((const char *)buf, "\"last_error\":{\"message\":\"jwks_file: ") != NULL);
    CHECK(strstr((const char *)buf, "\"stale\":false") != NULL);
    yajl_gen_free(gen);
    apr_pool_destroy(g1);
    apr_pool_destroy(g2);
    apr_pool_destroy(g3);
    apr_pool_destroy(sp);
}

TEST(hmac_key_only_from_file_with_hs_algorithm)
{
    apr_pool_t *g1, *g2, *sp;
    jwks_store_t *store;
    jwks_issuer_t **l;
    const char *file = apr_pstrcat(root, tmpdir, "/hs.json", NULL);
    /* 32 bytes of key: RFC 7518 §3.2's minimum for HS256. */
    CHECK(write_file(file, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"alg\":\"HS256\","
                           "\"k\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}]}") == 0);
    apr_pool_create(&sp, root);
    jwks_store_create(&store, sp);

    conf_t *c1 = conf_one(&g1, "https://hs.example/", CONF_KEYS_FILE, file, NULL);
    c1->issuers[0].algorithms = JOSE_ALG_BIT(JOSE_ALG_HS256);
    CHECK(jwks_store_configure(store, c1, 1, &l) == APR_SUCCESS);
    jwks_set_t *s = jwks_issuer_acquire(l[0], 1);
    CHECK(s != NULL && s->usable == 1);
    jwks_set_release(s);

    /* The same file for an issuer without HS algorithms: the oct key is not even loaded. */
    conf_t *c2 = conf_one(&g2, "https://rs.example/", CONF_KEYS_FILE, file, NULL);
    CHECK(jwks_store_configure(store, c2, 1, &l) == APR_SUCCESS);
    CHECK(jwks_issuer_acquire(l[0], 1) == NULL);
    apr_pool_destroy(g1);
    apr_pool_destroy(g2);
    apr_pool_destroy(sp);
}

TEST(reload_keeps_issuer_with_same_source_only)
{
    apr_pool_t *g1, *g2, *g3, *sp;
    jwks_store_t *store;
    jwks_issuer_t **l1, **l2, **l3;
    apr_pool_create(&sp, root);
    jwks_store_create(&store, sp);

    conf_t *c1 =
        conf_one(&g1, "https://idp.example/", CONF_KEYS_URI, "https://idp.example/k", NULL);
    CHECK(jwks_store_configure(store, c1, 0, &l1) == APR_SUCCESS);
    CHECK(jwks_issuer_fetch_pending(l1[0])); /* new: fetched at once */

    /* Same source, new timings: the same issuer, settings taken. */
    conf_t *c2 =
        conf_one(&g2, "https://idp.example/", CONF_KEYS_URI, "https://idp.example/k", NULL);
    c2->issuers[0].jwks_refresh_s = 60;
    CHECK(jwks_store_configure(store, c2, 10, &l2) == APR_SUCCESS);
    CHECK(l2[0] == l1[0]);

    /* Another URL: a new issuer; the old one leaves the store but stays usable by generation 1. */
    conf_t *c3 =
        conf_one(&g3, "https://idp.example/", CONF_KEYS_URI, "https://idp.example/k2", NULL);
    CHECK(jwks_store_configure(store, c3, 20, &l3) == APR_SUCCESS);
    CHECK(l3[0] != l1[0]);
    jwks_issuer_t *found = jwks_store_issuer(store, PROTO_STR_LIT("https://idp.example/"));
    CHECK(found == l3[0]);
    jwks_issuer_release(found);
    /* The dropped issuer is fetched no more. */
    CHECK(jwks_issuer_request_refresh(l1[0], 1000) == 0);
    jwks_issuer_t *due[4];
    jwks_fetch_plan_t plans[4];
    CHECK(jwks_store_begin_due(store, 20, due, plans, 4) == 1);
    CHECK(due[0] == l3[0] && strcmp(plans[0].jwks_uri, "https://idp.example/k2") == 0);
    CHECK(plans[0].etag[0] == '\0' && plans[0].timeout_s == 10 && !plans[0].discover);
    jwks_issuer_release(due[0]);
    CHECK(jwks_store_refresh(store, PROTO_STR_LIT("https://nobody.example/")) == APR_NOTFOUND);
    /* Generations may go in any order; the store goes last. */
    apr_pool_destroy(g2);
    apr_pool_destroy(g1);
    apr_pool_destroy(g3);
    apr_pool_destroy(sp);
}

/* --- a restart during an IdP outage
 * --------------------------------------------------------------- */

TEST(persisted_set_serves_after_restart_within_max_stale)
{
    apr_pool_t *g, *sp;
    jwks_store_t *store;
    jwks_issuer_t **l;
    char err[512];
    const char *dir = apr_pstrcat(root, tmpdir, "/restart", NULL);
    const char *uri = "https://idp.example/jwks";
    char *a = ec_jwk(root, "a");
    int64_t now = (int64_t)time(NULL);

    jwks_persist_record_t r = record("https://idp.example/", jwks_of(root, a, NULL));
    r.source = uri;
    r.jwks_uri = uri;
    r.etag = "\"p1\"";
    r.fetched_at = r.confirmed_at = now - 100;
    CHECK(jwks_persist_save(root, dir, &r, err, sizeof(err)) == APR_SUCCESS);

    apr_pool_create(&sp, root);
    jwks_store_create(&store, sp);
    conf_t *c = conf_one(&g, "https://idp.example/", CONF_KEYS_URI, uri, dir);
    CHECK(jwks_store_configure(store, c, now, &l) == APR_SUCCESS);
    jwks_set_t *s = jwks_issuer_acquire(l[0], now);
    CHECK(s != NULL && s->keys->nkeys == 1 && s->fetched_at == now - 100);
    jwks_set_release(s);
    /* Still fetched at once, conditionally. */
    jwks_issuer_t *due[1];
    jwks_fetch_plan_t plan;
    CHECK(jwks_store_begin_due(store, now, due, &plan, 1) == 1);
    CHECK_STREQ(plan.etag, "\"p1\"");
    jwks_issuer_release(due[0]);
    /* It still obeys max_stale, counted from when it was confirmed. */
    CHECK(jwks_issuer_acquire(l[0], now - 100 + 86401) == NULL);
    apr_pool_destroy(g);
    apr_pool_destroy(sp);

    /* Persisted from another source: not used. */
    apr_pool_create(&sp, root);
    jwks_store_create(&store, sp);
    c = conf_one(&g, "https://idp.example/", CONF_KEYS_URI, "https://idp.example/other", dir);
    CHECK(jwks_store_configure(store, c, now, &l) == APR_SUCCESS);
    CHECK(jwks_issuer_acquire(l[0], now) == NULL);
    apr_pool_destroy(g);
    apr_pool_destroy(sp);

    /* Older than max_stale already: loaded, not served. */
    r.fetched_at = r.confirmed_at = now - 90000;
    CHECK(jwks_persist_save(root, dir, &r, err, sizeof(err)) == APR_SUCCESS);
    apr_pool_create(&sp, root);
    jwks_store_create(&store, sp);
    c = conf_one(&g, "https://idp.example/", CONF_KEYS_URI, uri, dir);
    CHECK(jwks_store_configure(store, c, now, &l) == APR_SUCCESS);
    CHECK(jwks_issuer_acquire(l[0], now) == NULL);
    apr_pool_destroy(g);
    apr_pool_destroy(sp);
}

/* --- the report ------------------------------------------------------------------------------ */

TEST(report_lists_keys_and_skipped_keys)
{
    apr_pool_t *g, *sp, *p;
    jwks_store_t *store;
    jwks_issuer_t **l;
    apr_pool_create(&sp, root);
    apr_pool_create(&p, root);
    jwks_store_create(&store, sp);
    conf_t *c = conf_one(&g, "https://idp.example/", CONF_KEYS_URI, "https://idp.example/k", NULL);
    CHECK(jwks_store_configure(store, c, 0, &l) == APR_SUCCESS);

    jwks_issuer_t *due[1];
    jwks_fetch_plan_t plan;
    CHECK(jwks_store_begin_due(store, 0, due, &plan, 1) == 1);
    const char *body = apr_psprintf(
        p, "{\"keys\":[%s,{\"kty\":\"RSA\",\"kid\":\"weak\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        ec_jwk(p, "good"));
    jwks_fetch_outcome_t o = {.status = JWKS_FETCH_OK,
                              .url = "https://idp.example/k",
                              .body = body,
                              .body_len = strlen(body)};
    jwks_issuer_fetch_end(due[0], 0, &o);
    jwks_issuer_release(due[0]);

    yajl_gen gen = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    CHECK(jwks_store_report(store, gen, 5) == yajl_gen_status_ok);
    yajl_gen_get_buf(gen, &buf, &len);
    proto_json_t *doc;
    proto_json_error_t jerr;
    CHECK(jose_json_read(p, (const char *)buf, len, &doc, &jerr) == PROTO_JSON_OK);
    CHECK(doc->type == PROTO_JSON_ARRAY && doc->u.array.count == 1);
    const proto_json_t *iss = doc->u.array.items[0];
    const proto_json_t *keys = proto_json_get(iss, "keys");
    const proto_json_t *skipped = proto_json_get(iss, "skipped");
    CHECK(keys && keys->type == PROTO_JSON_ARRAY && keys->u.array.count == 1);
    CHECK(skipped && skipped->type == PROTO_JSON_ARRAY && skipped->u.array.count == 1);
    if (keys && keys->u.array.count == 1 && skipped && skipped->u.array.count == 1) {
        const proto_json_t *k = keys->u.array.items[0];
        CHECK(proto_str_eq_cstr(proto_json_get(k, "kid")->u.string, "good"));
        CHECK(proto_str_eq_cstr(proto_json_get(k, "kty")->u.string, "EC"));
        CHECK(proto_str_eq_cstr(proto_json_get(k, "crv")->u.string, "P-256"));
        CHECK(proto_json_get(k, "algs")->u.array.count == 1);
        const proto_json_t *sk = skipped->u.array.items[0];
        CHECK(proto_json_get(sk, "index")->u.number.value == 1);
        CHECK(proto_str_eq_cstr(proto_json_get(sk, "kid")->u.string, "weak"));
        CHECK(proto_json_get(sk, "reason")->type == PROTO_JSON_STRING);
    }
    CHECK(proto_str_eq_cstr(proto_json_get(iss, "source")->u.string, "uri"));
    CHECK(proto_json_get(iss, "fetched_at")->u.number.value == 0);
    CHECK(proto_json_get(iss, "next_refresh")->u.number.value == 600);
    CHECK(proto_json_get(iss, "removal_epoch")->u.number.value == 0);
    CHECK(proto_json_get(iss, "last_error")->type == PROTO_JSON_NULL);
    CHECK(proto_json_get(proto_json_get(iss, "fetches"), "ok")->u.number.value == 1);
    yajl_gen_free(gen);
    apr_pool_destroy(g);
    apr_pool_destroy(sp);
    apr_pool_destroy(p);
}

/* --- readers racing a writer -------------------------------------------------------------------
 */

#define RACE_READERS 4
#define RACE_ROUNDS 400

typedef struct race {
    jwks_issuer_t *iss;
    volatile apr_uint32_t stop;
    volatile apr_uint32_t bad;
    volatile apr_uint32_t reads;
} race_t;

static void *APR_THREAD_FUNC race_reader(apr_thread_t *thd, void *data)
{
    race_t *r = data;
    while (!apr_atomic_read32(&r->stop)) {
        uint32_t epoch;
        jwks_set_t *s = jwks_issuer_acquire_with_epoch(r->iss, 10, &epoch);
        /* Every set a reader sees is whole: keys, each with a public key. */
        if (s == NULL || s->keys->nkeys == 0 || s->keys->keys[0]->pkey == NULL) {
            apr_atomic_inc32(&r->bad);
        }
        jwks_set_release(s);
        apr_atomic_inc32(&r->reads);
    }
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

TEST(readers_race_installs_without_a_global_lock)
{
    apr_pool_t *g, *sp, *p;
    jwks_store_t *store;
    jwks_issuer_t **l;
    apr_thread_t *th[RACE_READERS];
    race_t r = {0};
    const char *bodies[3];

    apr_pool_create(&sp, root);
    apr_pool_create(&p, root);
    jwks_store_create(&store, sp);
    conf_t *c =
        conf_one(&g, "https://race.example/", CONF_KEYS_URI, "https://race.example/k", NULL);
    c->issuers[0].jwks_min_refresh_s = 1;
    CHECK(jwks_store_configure(store, c, 0, &l) == APR_SUCCESS);
    bodies[0] = jwks_of(p, ec_jwk(p, "a"), ec_jwk(p, "b"));
    bodies[1] = jwks_of(p, ec_jwk(p, "c"), NULL);
    bodies[2] = jwks_of(p, ec_jwk(p, "d"), ec_jwk(p, "e"));
    r.iss = l[0];

    jwks_issuer_t *due[1];
    jwks_fetch_plan_t plan;
    jwks_fetch_outcome_t o = {.status = JWKS_FETCH_OK, .url = "https://race.example/k"};
    CHECK(jwks_store_begin_due(store, 0, due, &plan, 1) == 1);
    o.body = bodies[0];
    o.body_len = strlen(bodies[0]);
    jwks_issuer_fetch_end(due[0], 0, &o);
    jwks_issuer_release(due[0]);

    for (int i = 0; i < RACE_READERS; i++) {
        apr_thread_create(&th[i], NULL, race_reader, &r, p);
    }
    uint32_t e0 = jwks_issuer_removal_epoch(l[0]);
    for (int i = 1; i <= RACE_ROUNDS; i++) {
        CHECK(jwks_store_refresh(store, PROTO_STR_LIT("https://race.example/")) == APR_SUCCESS);
        if (jwks_store_begin_due(store, 1, due, &plan, 1) == 1) {
            o.body = bodies[i % 3];
            o.body_len = strlen(o.body);
            jwks_issuer_fetch_end(due[0], 1, &o);
            jwks_issuer_release(due[0]);
        }
    }
    apr_atomic_set32(&r.stop, 1);
    for (int i = 0; i < RACE_READERS; i++) {
        apr_status_t rv;
        apr_thread_join(&rv, th[i]);
    }
    CHECK(apr_atomic_read32(&r.bad) == 0);
    CHECK(apr_atomic_read32(&r.reads) > 0);
    /* Every round replaced a set by one lacking its keys. */
    CHECK(jwks_issuer_removal_epoch(l[0]) - e0 == RACE_ROUNDS);
    apr_pool_destroy(g);
    apr_pool_destroy(sp);
    apr_pool_destroy(p);
}

TEST(store_pool_destroyed_while_fetcher_runs)
{
    apr_pool_t *g, *sp;
    jwks_store_t *store;
    jwks_issuer_t **l;
    apr_pool_create(&sp, root);
    CHECK(jwks_store_create(&store, sp) == APR_SUCCESS);
    /* Port 9 on loopback: refused at once, or at worst in flight when the pool goes. */
    conf_t *c =
        conf_one(&g, "https://down.example/", CONF_KEYS_URI, "https://127.0.0.1:9/jwks", NULL);
    CHECK(jwks_store_configure(store, c, (int64_t)time(NULL), &l) == APR_SUCCESS);
    CHECK(jwks_store_start(store) == APR_SUCCESS);
    CHECK(jwks_issuer_request_refresh(l[0], (int64_t)time(NULL)) == 1);
    /* No jwks_store_stop: the pool's pre-cleanup must join the thread before the thread's own
     * pool (a subpool) goes. Generations go before the store, as in the daemon. */
    apr_pool_destroy(g);
    apr_pool_destroy(sp);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&root, NULL);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_jwks_store.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(discovery_url_strips_one_trailing_slash);
    RUN(discovery_url_refuses_userinfo_and_odd_bytes);
    RUN(discovery_issuer_impersonation_refused);
    RUN(discovery_jwks_uri_downgrade_refused);
    RUN(etag_header_injection_refused);
    RUN(retry_delay_doubles_to_refresh);
    RUN(persist_round_trip_atomic_0600);
    RUN(persist_file_cannot_claim_fresher_than_mtime);
    RUN(persist_damaged_or_linked_file_refused);
    RUN(key_file_over_limit_refused_before_reading);
    RUN(jwks_file_loaded_and_reread_on_reload);
    RUN(hmac_key_only_from_file_with_hs_algorithm);
    RUN(reload_keeps_issuer_with_same_source_only);
    RUN(persisted_set_serves_after_restart_within_max_stale);
    RUN(report_lists_keys_and_skipped_keys);
    RUN(readers_race_installs_without_a_global_lock);
    RUN(store_pool_destroyed_while_fetcher_runs);
    apr_pool_destroy(root);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    apr_terminate();
    return harness_report();
}
