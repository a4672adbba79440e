/* Replays the .scn files of tests/scenarios/jwks/ (format: tests/scenarios/README.md) against the
 * real key store with a fake clock: each "at T" line calls the store as the fetcher thread or a
 * worker would at time T, and each "expect" checks what the store then says. No thread, no network,
 * no sleeping: fetch outcomes are fed in, key sets are built from EC keys generated here. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "daemon/conf.h"
#include "daemon/jwks_store.h"
#include "harness.h"
#include "jose/b64url.h"

#define SCN_LINE_BYTES 1024
#define SCN_MAX_KEYS 64
#define SCN_LOG_BYTES (64 * 1024)
#define SCN_ISSUER "https://idp.example.com/"

/* --- keys: one EC P-256 key per name ("a", "a@2" is another key with kid "a") ------------------
 */

typedef struct scn_key {
    char name[64];
    char *jwk; /* JSON object text, in the run pool */
} scn_key_t;

static scn_key_t scn_keys[256];
static size_t scn_nkeys;
static apr_pool_t *run_pool;

static char *bn_b64(const EVP_PKEY *pk, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char buf[32];
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1 || BN_bn2binpad(bn, buf, 32) != 32) {
        BN_free(bn);
        return NULL;
    }
    BN_free(bn);
    return jose_b64url_encode(run_pool, buf, sizeof(buf), NULL);
}

/* The JWK for a key name; "!kid" is a malformed key (not on the curve) that the parser skips. */
static const char *key_jwk(const char *name)
{
    const char *at = strchr(name, '@');
    size_t kid_len = at ? (size_t)(at - name) : strlen(name);
    if (name[0] == '!') {
        return apr_psprintf(run_pool,
                            "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"AAAA\","
                            "\"y\":\"AAAA\"}",
                            name + 1);
    }
    for (size_t i = 0; i < scn_nkeys; i++) {
        if (strcmp(scn_keys[i].name, name) == 0) {
            return scn_keys[i].jwk;
        }
    }
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    if (pk == NULL || scn_nkeys == sizeof(scn_keys) / sizeof(scn_keys[0])) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    char *x = bn_b64(pk, OSSL_PKEY_PARAM_EC_PUB_X), *y = bn_b64(pk, OSSL_PKEY_PARAM_EC_PUB_Y);
    EVP_PKEY_free(pk);
    if (x == NULL || y == NULL) {
        return NULL;
    }
    scn_key_t *k = &scn_keys[scn_nkeys++];
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->jwk = apr_psprintf(run_pool,
                          "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES256\",\"use\":\"sig\","
                          "\"kid\":\"%.*s\",\"x\":\"%s\",\"y\":\"%s\"}",
                          (int)kid_len, name, x, y);
    return k->jwk;
}

/* --- one scenario ------------------------------------------------------------------------------
 */

typedef struct scn {
    const char *file;
    unsigned line;
    apr_pool_t *pool; /* this scenario's: store, conf, bodies */
    jwks_store_t *store;
    jwks_issuer_t *iss;
    conf_t conf;
    conf_issuer_t ci;
    jwks_fetch_plan_t plan; /* of the fetch begun last */
    int begun;
    int64_t last_t; /* lines go forward in time */
    unsigned notified;
    char log[SCN_LOG_BYTES];
    size_t log_len;
    int failed;
} scn_t;

static void scn_fail(scn_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void scn_fail(scn_t *s, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%u: ", s->file, s->line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    s->failed = 1;
}

static void scn_log(void *ctx, int level, const char *fmt, ...)
{
    scn_t *s = ctx;
    char line[1200];
    va_list ap;
    (void)level;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && s->log_len + (size_t)n + 2 < sizeof(s->log)) {
        memcpy(s->log + s->log_len, line, (size_t)n);
        s->log_len += (size_t)n;
        s->log[s->log_len++] = '\n';
        s->log[s->log_len] = '\0';
    }
    if (getenv("JWKS_SCENARIO_VERBOSE") != NULL) {
        fprintf(stderr, "  log: %s\n", line);
    }
}

static void scn_changed(void *ctx)
{
    ((scn_t *)ctx)->notified++;
}

/* "name=value" options of a line, after the words the command takes. */
static const char *opt(char **words, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(words[i], name, len) == 0 && words[i][len] == '=') {
            return words[i] + len + 1;
        }
    }
    return NULL;
}

static int64_t num(scn_t *s, const char *text)
{
    char *end = NULL;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (text == NULL || *text == '\0' || *end != '\0' || errno != 0) {
        scn_fail(s, "not a number: %s", text ? text : "(missing)");
        return 0;
    }
    return (int64_t)v;
}

static int scn_issuer(scn_t *s, char **w, size_t n)
{
    const char *v;
    memset(&s->conf, 0, sizeof(s->conf));
    memset(&s->ci, 0, sizeof(s->ci));
    s->conf.pool = s->pool;
    s->conf.issuers = &s->ci;
    s->conf.nissuers = 1;
    s->ci.issuer = PROTO_STR_LIT(SCN_ISSUER);
    s->ci.key_source = CONF_KEYS_URI;
    s->ci.jwks_uri = SCN_ISSUER "jwks.json";
    if ((v = opt(w, n, "source")) != NULL && strcmp(v, "discovery") == 0) {
        s->ci.key_source = CONF_KEYS_DISCOVERY;
        s->ci.jwks_uri = NULL;
        s->ci.discovery_uri = "https://idp.example.com/.well-known/openid-configuration";
    }
    s->ci.algorithms = CONF_DEFAULT_ALGORITHMS;
    if ((v = opt(w, n, "algorithms")) != NULL) {
        s->ci.algorithms = 0;
        if (!jose_alg_set_add(&s->ci.algorithms, proto_str_make(v, strlen(v)))) {
            scn_fail(s, "unknown algorithm in %s", v);
        }
    }
    s->ci.jwks_refresh_s = CONF_DEFAULT_JWKS_REFRESH_S;
    s->ci.jwks_min_refresh_s = CONF_DEFAULT_JWKS_MIN_REFRESH_S;
    s->ci.jwks_max_stale_s = CONF_DEFAULT_JWKS_MAX_STALE_S;
    s->ci.fetch_timeout_s = CONF_DEFAULT_FETCH_TIMEOUT_S;
    if ((v = opt(w, n, "refresh")) != NULL) {
        s->ci.jwks_refresh_s = (unsigned)num(s, v);
    }
    if ((v = opt(w, n, "min_refresh")) != NULL) {
        s->ci.jwks_min_refresh_s = (unsigned)num(s, v);
    }
    if ((v = opt(w, n, "max_stale")) != NULL) {
        s->ci.jwks_max_stale_s = (unsigned)num(s, v);
    }
    int64_t start = (v = opt(w, n, "start")) != NULL ? num(s, v) : 0;
    s->last_t = start;
    jwks_issuer_t **list = NULL;
    if (jwks_store_configure(s->store, &s->conf, start, &list) != APR_SUCCESS || list == NULL) {
        scn_fail(s, "jwks_store_configure failed");
        return -1;
    }
    s->iss = list[0];
    return 0;
}

/* Builds the outcome an "ok|not_modified|fail|garbage ..." tail describes. */
static void scn_outcome(scn_t *s, char **w, size_t n, jwks_fetch_outcome_t *o)
{
    const char *v;
    memset(o, 0, sizeof(*o));
    o->url = s->plan.jwks_uri[0] ? s->plan.jwks_uri : SCN_ISSUER "jwks.json";
    if (n == 0) {
        scn_fail(s, "fetch outcome missing");
        o->status = JWKS_FETCH_FAILED;
        o->error = "scenario error";
        return;
    }
    if ((v = opt(w, n, "maxage")) != NULL) {
        o->freshness.has_max_age = 1;
        o->freshness.max_age_s = num(s, v);
    }
    if ((v = opt(w, n, "cache_control")) != NULL) {
        jwks_policy_read_cache_control(&o->freshness, v, strlen(v));
    }
    if ((v = opt(w, n, "age")) != NULL) {
        jwks_policy_read_age(&o->freshness, v, strlen(v));
    }
    if (strcmp(w[0], "ok") == 0) {
        const char *keys = opt(w, n, "keys");
        char *body = apr_pstrdup(s->pool, "{\"keys\":[");
        char *list = apr_pstrdup(s->pool, keys ? keys : "");
        char *save = NULL;
        int first = 1;
        for (char *k = strtok_r(list, ",", &save); k != NULL; k = strtok_r(NULL, ",", &save)) {
            const char *jwk = key_jwk(k);
            if (jwk == NULL) {
                scn_fail(s, "cannot make key %s", k);
                continue;
            }
            body = apr_pstrcat(s->pool, body, first ? "" : ",", jwk, NULL);
            first = 0;
        }
        o->status = JWKS_FETCH_OK;
        o->body = apr_pstrcat(s->pool, body, "]}", NULL);
        o->body_len = strlen(o->body);
        o->etag = opt(w, n, "etag");
    } else if (strcmp(w[0], "garbage") == 0) {
        o->status = JWKS_FETCH_OK;
        o->body = "<html>this is not a key set</html>";
        o->body_len = strlen(o->body);
    } else if (strcmp(w[0], "not_modified") == 0) {
        o->status = JWKS_FETCH_NOT_MODIFIED;
    } else if (strcmp(w[0], "fail") == 0) {
        o->status = JWKS_FETCH_FAILED;
        o->error = (v = opt(w, n, "error")) != NULL ? v : "HTTP status 500";
    } else {
        scn_fail(s, "unknown fetch outcome %s", w[0]);
        o->status = JWKS_FETCH_FAILED;
        o->error = "scenario error";
    }
}

static void scn_begin(scn_t *s, int64_t t)
{
    if (s->begun) {
        scn_fail(s, "begin while a fetch begun at an earlier line has not ended");
        return;
    }
    jwks_issuer_t *iss[1];
    size_t n = jwks_store_begin_due(s->store, t, iss, &s->plan, 1);
    if (n != 1) {
        scn_fail(s, "no fetch is due at %lld", (long long)t);
        return;
    }
    if (iss[0] != s->iss) {
        scn_fail(s, "the fetch begun is not the scenario's issuer's");
    }
    /* The fetcher would discover first; in a scenario discovery always names the same URL. */
    if (s->plan.discover) {
        jwks_issuer_discovered(iss[0], t, SCN_ISSUER "jwks.json", &s->plan);
    }
    jwks_issuer_release(iss[0]);
    s->begun = 1;
}

static void scn_end(scn_t *s, int64_t t, char **w, size_t n)
{
    jwks_fetch_outcome_t o;
    if (!s->begun) {
        scn_fail(s, "end without a begun fetch");
        return;
    }
    scn_outcome(s, w, n, &o);
    jwks_issuer_fetch_end(s->iss, t, &o);
    s->begun = 0;
}

static void expect_keys(scn_t *s, int64_t t, const char *want)
{
    jwks_set_t *set = jwks_issuer_acquire(s->iss, t);
    char got[512] = "";
    size_t off = 0;
    if (set == NULL) {
        snprintf(got, sizeof(got), "none");
    }
    for (size_t i = 0; set != NULL && i < set->keys->nkeys && off < sizeof(got) - 1; i++) {
        const jose_jwk_t *k = set->keys->keys[i];
        off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%.*s", i ? "," : "",
                                (int)k->kid.len, k->kid.ptr);
    }
    if (set != NULL && set->keys->nkeys == 0) {
        snprintf(got, sizeof(got), "-");
    }
    if (strcmp(got, want) != 0) {
        scn_fail(s, "expect keys %s: got %s", want, got);
    }
    jwks_set_release(set);
}

static void expect_fetches(scn_t *s, int64_t t, char **w, size_t n)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    jwks_store_report(s->store, g, t);
    yajl_gen_get_buf(g, &buf, &len);
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(w[i], '=');
        if (eq == NULL) {
            scn_fail(s, "fetches wants name=N, got %s", w[i]);
            continue;
        }
        char *needle = apr_psprintf(s->pool, "\"%.*s\":%s", (int)(eq - w[i]), w[i], eq + 1);
        const char *fetches = strstr((const char *)buf, "\"fetches\":");
        const char *end = fetches ? strchr(fetches, '}') : NULL;
        const char *hit = fetches ? strstr(fetches, needle) : NULL;
        if (hit == NULL || hit > end) {
            scn_fail(s, "expect fetches %s: report says %.*s", w[i],
                     fetches ? (int)(end - fetches + 1) : 0, fetches ? fetches : "");
        }
    }
    yajl_gen_free(g);
}

/* The text of a top-level member of the issuer's report object ("300", "null", "true"). */
static void report_field(scn_t *s, int64_t t, const char *name, char *out, size_t outlen)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    jwks_store_report(s->store, g, t);
    yajl_gen_get_buf(g, &buf, &len);
    char *needle = apr_psprintf(s->pool, "\"%s\":", name);
    const char *hit = strstr((const char *)buf, needle);
    size_t n = 0;
    if (hit != NULL) {
        hit += strlen(needle);
        n = strcspn(hit, ",}");
    }
    snprintf(out, outlen, "%.*s", hit ? (int)n : 7, hit ? hit : "missing");
    yajl_gen_free(g);
}

static void scn_expect(scn_t *s, int64_t t, char **w, size_t n)
{
    const char *what = n > 0 ? w[0] : "";
    const char *arg = n > 1 ? w[1] : NULL;

    if (strcmp(what, "due") == 0 || strcmp(what, "not_due") == 0) {
        /* The fetcher's view without beginning anything: the tick names now when a fetch is due
         * (an expiry at now has already happened inside the tick and is not a deadline). */
        int due = jwks_store_tick(s->store, t) <= t;
        if (due != (what[0] == 'd')) {
            scn_fail(s, "expect %s: it is %s", what, due ? "due" : "not due");
        }
    } else if (strcmp(what, "deadline") == 0) {
        int64_t next = jwks_store_tick(s->store, t);
        if (arg != NULL && strcmp(arg, "none") == 0 ? next != JWKS_NO_DEADLINE
                                                    : next != num(s, arg)) {
            scn_fail(s, "expect deadline %s: the fetcher would wake at %lld", arg, (long long)next);
        }
    } else if (strcmp(what, "next_refresh") == 0 || strcmp(what, "fetched_at") == 0 ||
               strcmp(what, "confirmed_at") == 0 || strcmp(what, "stale_at") == 0) {
        char got[64];
        report_field(s, t, what, got, sizeof(got));
        if (arg == NULL || strcmp(got, arg) != 0) {
            scn_fail(s, "expect %s %s: the report says %s", what, arg ? arg : "", got);
        }
    } else if (strcmp(what, "keys") == 0) {
        expect_keys(s, t, arg ? arg : "");
    } else if (strcmp(what, "stale") == 0 || strcmp(what, "serving") == 0) {
        jwks_set_t *set = jwks_issuer_acquire(s->iss, t);
        if ((set == NULL) != (what[1] == 't')) {
            scn_fail(s, "expect %s: acquire returned %s", what, set ? "a set" : "NULL");
        }
        jwks_set_release(set);
    } else if (strcmp(what, "epoch") == 0) {
        uint32_t e = jwks_issuer_removal_epoch(s->iss);
        if ((int64_t)e != num(s, arg)) {
            scn_fail(s, "expect epoch %s: it is %u", arg, e);
        }
    } else if (strcmp(what, "serial") == 0) {
        jwks_set_t *set = jwks_issuer_acquire(s->iss, t);
        if (set == NULL || (int64_t)set->serial != num(s, arg)) {
            scn_fail(s, "expect serial %s: got %lld", arg, set ? (long long)set->serial : -1LL);
        }
        jwks_set_release(set);
    } else if (strcmp(what, "pending") == 0 || strcmp(what, "not_pending") == 0) {
        int p = jwks_issuer_fetch_pending(s->iss);
        if (p != (what[0] == 'p')) {
            scn_fail(s, "expect %s: fetch_pending is %d", what, p);
        }
    } else if (strcmp(what, "fetches") == 0) {
        expect_fetches(s, t, w + 1, n - 1);
    } else if (strcmp(what, "sent_etag") == 0) {
        const char *want = arg && strcmp(arg, "none") != 0 ? arg : "";
        if (strcmp(s->plan.etag, want) != 0) {
            scn_fail(s, "expect sent_etag %s: the last fetch sent \"%s\"", arg ? arg : "",
                     s->plan.etag);
        }
    } else if (strcmp(what, "discover") == 0 || strcmp(what, "no_discover") == 0) {
        if (s->plan.discover != (what[0] == 'd')) {
            scn_fail(s, "expect %s: the last fetch had discover=%d", what, s->plan.discover);
        }
    } else if (strcmp(what, "notified") == 0) {
        if ((int64_t)s->notified != num(s, arg)) {
            scn_fail(s, "expect notified %s: hooks ran %u times", arg, s->notified);
        }
    } else if (strcmp(what, "log") == 0) {
        /* The rest of the line, as one substring of the log so far. */
        char text[SCN_LINE_BYTES] = "";
        for (size_t i = 1; i < n; i++) {
            strncat(text, w[i], sizeof(text) - strlen(text) - 2);
            if (i + 1 < n) {
                strcat(text, " ");
            }
        }
        if (strstr(s->log, text) == NULL) {
            scn_fail(s, "expect log \"%s\": not logged; log so far:\n%s", text, s->log);
        }
    } else {
        scn_fail(s, "unknown expectation %s", what);
    }
}

static void scn_at(scn_t *s, char **w, size_t n)
{
    if (n < 2) {
        scn_fail(s, "at T COMMAND ...");
        return;
    }
    int64_t t = num(s, w[0]);
    const char *cmd = w[1];
    if (t < s->last_t) {
        scn_fail(s, "time goes back from %lld to %lld", (long long)s->last_t, (long long)t);
    }
    s->last_t = t;
    char **rest = w + 2;
    size_t nrest = n - 2;

    if (strcmp(cmd, "fetch") == 0) {
        scn_begin(s, t);
        if (s->begun) {
            scn_end(s, t, rest, nrest);
        }
    } else if (strcmp(cmd, "begin") == 0) {
        scn_begin(s, t);
    } else if (strcmp(cmd, "end") == 0) {
        scn_end(s, t, rest, nrest);
    } else if (strcmp(cmd, "unknown_kid") == 0) {
        if (nrest != 2 || strcmp(rest[0], "->") != 0) {
            scn_fail(s, "unknown_kid -> fetch|no_fetch");
            return;
        }
        int got = jwks_issuer_request_refresh(s->iss, t);
        int want = strcmp(rest[1], "fetch") == 0;
        if (!want && strcmp(rest[1], "no_fetch") != 0) {
            scn_fail(s, "unknown_kid -> fetch|no_fetch, not %s", rest[1]);
        } else if (got != want) {
            scn_fail(s, "unknown_kid: request_refresh returned %d, expected %s", got, rest[1]);
        }
    } else if (strcmp(cmd, "refresh") == 0) {
        if (jwks_store_refresh(s->store, PROTO_STR_LIT(SCN_ISSUER)) != APR_SUCCESS) {
            scn_fail(s, "jwks_store_refresh refused");
        }
    } else if (strcmp(cmd, "tick") == 0) {
        (void)jwks_store_tick(s->store, t);
    } else if (strcmp(cmd, "expect") == 0) {
        scn_expect(s, t, rest, nrest);
    } else {
        scn_fail(s, "unknown command %s", cmd);
    }
}

static size_t split(char *line, char **words, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(line, " \t\r\n", &save); w != NULL && n < max;
         w = strtok_r(NULL, " \t\r\n", &save)) {
        words[n++] = w;
    }
    return n;
}

static int scn_run(const char *path, const char *name)
{
    scn_t *s = calloc(1, sizeof(*s));
    char line[SCN_LINE_BYTES];
    char *words[32];
    int have_issuer = 0, failed;
    FILE *fp = fopen(path, "r");

    if (s == NULL || fp == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        free(s);
        if (fp) {
            fclose(fp);
        }
        return 1;
    }
    s->file = name;
    apr_pool_create(&s->pool, run_pool);
    jwks_store_create(&s->store, s->pool);
    jwks_store_set_log(s->store, scn_log, s);
    jwks_store_on_change(s->store, scn_changed, s);
    while (fgets(line, sizeof(line), fp) != NULL) {
        s->line++;
        char *hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = '\0';
        }
        size_t n = split(line, words, sizeof(words) / sizeof(words[0]));
        if (n == 0) {
            continue;
        }
        if (strcmp(words[0], "issuer") == 0 && !have_issuer) {
            have_issuer = scn_issuer(s, words + 1, n - 1) == 0;
        } else if (strcmp(words[0], "at") == 0 && have_issuer) {
            scn_at(s, words + 1, n - 1);
        } else {
            scn_fail(s, "expected \"issuer ...\" first, then \"at T ...\" lines");
        }
    }
    fclose(fp);
    if (!have_issuer) {
        scn_fail(s, "no issuer line");
    }
    /* The generation holding s->iss is s->pool: destroying it drops every reference. */
    apr_pool_destroy(s->pool);
    failed = s->failed;
    free(s);
    return failed;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *src = getenv("JWTAUTHZ_SRC");
    char dir[4096], *names[256];
    size_t n = 0;

    apr_initialize();
    apr_pool_create(&run_pool, NULL);
    snprintf(dir, sizeof(dir), "%s/tests/scenarios/jwks", src ? src : ".");
    if (argc > 1) {
        /* One file by path: what a developer runs while writing a scenario. */
        for (int i = 1; i < argc; i++) {
            harness_current_failed = scn_run(argv[i], argv[i]);
            harness_current_failed ? harness_failed++ : harness_passed++;
        }
        return harness_report();
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: cannot open (set JWTAUTHZ_SRC)\n", dir);
        return 1;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL && n < 256;) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".scn") == 0) {
            names[n++] = apr_pstrdup(run_pool, e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), name_cmp);
    for (size_t i = 0; i < n; i++) {
        char *path = apr_pstrcat(run_pool, dir, "/", names[i], NULL);
        if (scn_run(path, names[i]) != 0) {
            harness_failed++;
            fprintf(stderr, "FAIL %s\n", names[i]);
        } else {
            harness_passed++;
        }
    }
    /* The issue lists nine behaviours, each with its own file at least. */
    if (n < 9) {
        fprintf(stderr, "only %zu scenario files in %s\n", n, dir);
        harness_failed++;
    }
    apr_pool_destroy(run_pool);
    apr_terminate();
    return harness_report();
}
