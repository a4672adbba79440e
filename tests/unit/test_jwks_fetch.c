/* The real fetcher thread against a real HTTPS server on 127.0.0.1 (tests/tools/https_server.py),
 * with keys minted by tests/tools/mint.py (python3-cryptography, not our code). A trusted fetch
 * installs and persists a set; a wrong CA, plain http, an impostor discovery document, an oversized
 * or garbage body, HTTP 500, a redirect loop and a timeout each fail leaving the set held; a slow
 * IdP does not hold up another. A watchdog child stops the server even if this test is killed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "daemon/conf.h"
#include "daemon/jwks_persist.h"
#include "daemon/jwks_store.h"
#include "harness.h"
#include "jose/pool.h"
#include "proto/limits.h"

#define PYTHON "/usr/bin/python3"
/* Every fetch here ends within fetch_timeout (at most 3 s) plus a slow location's delay. */
#define WAIT_S 40

static apr_pool_t *root;
static const char *src, *work, *docroot, *state, *keydir, *cache_dir;
static const char *base_url, *ca_file, *other_ca_file;

/* --- the server and its watchdog ----------------------------------------------------------------
 */

static void server_stop(void)
{
    if (state != NULL) {
        char *cmd = apr_psprintf(root, PYTHON " '%s/tests/tools/https_server.py' stop --state '%s'",
                                 src, state);
        if (system(cmd) != 0) {
            fprintf(stderr, "https_server.py stop failed\n");
        }
    }
}

/* A child that waits for this process to go (its pipe closes, however we die) and then stops the
 * server, so no nginx outlives a crashed or killed test. */
static void watchdog_start(void)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        int null = open("/dev/null", O_WRONLY);
        close(fds[1]);
        /* "no server recorded" after a clean stop is the normal case: keep it quiet. */
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
        }
        execl(PYTHON, PYTHON, apr_psprintf(root, "%s/tests/tools/https_server.py", src), "stop",
              "--state", state, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    if (pid > 0) {
        fcntl(fds[1], F_SETFD, FD_CLOEXEC); /* kept open, never written: closes when we exit */
    } else {
        close(fds[1]);
    }
}

static const char *json_str(const proto_json_t *obj, const char *name)
{
    const proto_json_t *v = proto_json_get(obj, name);
    if (v == NULL || v->type != PROTO_JSON_STRING) {
        return NULL;
    }
    return apr_pstrmemdup(root, v->u.string.ptr, v->u.string.len);
}

static int server_start(void)
{
    char line[4096];
    char *cmd = apr_psprintf(root,
                             PYTHON " '%s/tests/tools/https_server.py' start --docroot '%s' "
                                    "--state '%s'",
                             src, docroot, state);
    FILE *fp = popen(cmd, "r");
    size_t len = fp ? fread(line, 1, sizeof(line) - 1, fp) : 0;
    int rc = fp ? pclose(fp) : -1;
    line[len] = '\0';
    proto_json_t *info;
    proto_json_error_t jerr;
    if (rc != 0 || jose_json_read(root, line, strlen(line), &info, &jerr) != PROTO_JSON_OK) {
        fprintf(stderr, "https_server.py start failed (%d): %s\n", rc, line);
        return -1;
    }
    base_url = json_str(info, "base_url");
    ca_file = json_str(info, "ca_file");
    other_ca_file = json_str(info, "other_ca_file");
    return base_url && ca_file && other_ca_file ? 0 : -1;
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

static const char *read_text(const char *path)
{
    const char *text = NULL;
    size_t len;
    char err[256];
    if (jwks_file_read(root, path, JWKS_MAX_BYTES, 1, &text, &len, NULL, err, sizeof(err)) !=
        APR_SUCCESS) {
        fprintf(stderr, "%s\n", err);
    }
    return text;
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* --- the store under test -----------------------------------------------------------------------
 */

typedef struct waiter {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *cond;
    unsigned changes;
} waiter_t;

static waiter_t waiter;

static void on_change(void *ctx)
{
    waiter_t *w = ctx;
    apr_thread_mutex_lock(w->lock);
    w->changes++;
    apr_thread_cond_broadcast(w->cond);
    apr_thread_mutex_unlock(w->lock);
}

static void log_stderr(void *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    (void)ctx;
    if (level > CONF_LOG_INFO && getenv("JWKS_FETCH_VERBOSE") == NULL) {
        return;
    }
    va_start(ap, fmt);
    fputs("  log: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* One issuer of the test config. */
typedef struct tissuer {
    const char *name;
    conf_key_source_e source;
    const char *ref; /* jwks_uri or discovery URL */
    const char *ca;
    unsigned timeout_s;
    int seed; /* persist a set for it first: a failure must leave that set in place */
} tissuer_t;

static conf_t *make_conf(apr_pool_t *gen, const tissuer_t *t, size_t n)
{
    conf_t *c = apr_pcalloc(gen, sizeof(*c));
    c->pool = gen;
    c->cache_dir = cache_dir;
    c->issuers = apr_pcalloc(gen, n * sizeof(*c->issuers));
    c->nissuers = n;
    for (size_t i = 0; i < n; i++) {
        conf_issuer_t *ci = &c->issuers[i];
        ci->issuer = proto_str_make(t[i].name, strlen(t[i].name));
        ci->key_source = t[i].source;
        if (t[i].source == CONF_KEYS_URI) {
            ci->jwks_uri = t[i].ref;
        } else {
            ci->discovery_uri = t[i].ref;
        }
        ci->algorithms = CONF_DEFAULT_ALGORITHMS;
        ci->jwks_refresh_s = 600;
        ci->jwks_min_refresh_s = 30;
        ci->jwks_max_stale_s = 86400;
        ci->fetch_timeout_s = t[i].timeout_s ? t[i].timeout_s : 3;
        ci->ca_file = t[i].ca;
    }
    return c;
}

/* The report object of one issuer, parsed into root. */
static const proto_json_t *view(jwks_store_t *store, const char *name)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    proto_json_t *doc = NULL;
    proto_json_error_t jerr;
    const proto_json_t *found = NULL;
    jwks_store_report(store, g, (int64_t)time(NULL));
    yajl_gen_get_buf(g, &buf, &len);
    if (jose_json_read(root, (const char *)buf, len, &doc, &jerr) == PROTO_JSON_OK) {
        for (size_t i = 0; i < doc->u.array.count && found == NULL; i++) {
            const proto_json_t *o = doc->u.array.items[i];
            if (proto_str_eq_cstr(proto_json_get(o, "issuer")->u.string, name)) {
                found = o;
            }
        }
    }
    yajl_gen_free(g);
    return found;
}

static long fetch_count(const proto_json_t *v, const char *which)
{
    const proto_json_t *f = v ? proto_json_get(v, "fetches") : NULL;
    const proto_json_t *n = f ? proto_json_get(f, which) : NULL;
    return n ? (long)n->u.number.value : -1;
}

static long attempts(const proto_json_t *v)
{
    return fetch_count(v, "ok") + fetch_count(v, "not_modified") + fetch_count(v, "failed");
}

static const char *last_error(const proto_json_t *v)
{
    const proto_json_t *e = v ? proto_json_get(v, "last_error") : NULL;
    const proto_json_t *m = e && e->type == PROTO_JSON_OBJECT ? proto_json_get(e, "message") : NULL;
    return m ? apr_pstrmemdup(root, m->u.string.ptr, m->u.string.len) : "";
}

/* Waits until issuer name has made at least n fetch attempts and none is pending. */
static int wait_attempts(jwks_store_t *store, const char *name, long n)
{
    time_t deadline = time(NULL) + WAIT_S;
    apr_thread_mutex_lock(waiter.lock);
    for (;;) {
        const proto_json_t *v = view(store, name);
        const proto_json_t *pending = v ? proto_json_get(v, "fetch_pending") : NULL;
        if (v != NULL && attempts(v) >= n && pending && !pending->u.boolean) {
            break;
        }
        if (time(NULL) >= deadline) {
            apr_thread_mutex_unlock(waiter.lock);
            fprintf(stderr, "timed out waiting for %s to fetch\n", name);
            return -1;
        }
        apr_thread_cond_timedwait(waiter.cond, waiter.lock, apr_time_from_sec(1));
    }
    apr_thread_mutex_unlock(waiter.lock);
    return 0;
}

static size_t nkeys(jwks_issuer_t *iss)
{
    jwks_set_t *s = jwks_issuer_acquire(iss, (int64_t)time(NULL));
    size_t n = s ? s->keys->nkeys : 0;
    jwks_set_release(s);
    return n;
}

static uint64_t serial(jwks_issuer_t *iss)
{
    jwks_set_t *s = jwks_issuer_acquire(iss, (int64_t)time(NULL));
    uint64_t n = s ? s->serial : 0;
    jwks_set_release(s);
    return n;
}

/* Persists a one-key set (es256-1) for issuer as if fetched from ref a minute ago. */
static void seed(const char *issuer, const char *ref)
{
    char err[512];
    jwks_persist_record_t r;
    memset(&r, 0, sizeof(r));
    r.issuer = proto_str_make(issuer, strlen(issuer));
    r.source = ref;
    r.jwks_uri = ref;
    r.fetched_at = r.confirmed_at = (int64_t)time(NULL) - 60;
    r.body = read_text(apr_pstrcat(root, keydir, "/es256-1.jwks.json", NULL));
    r.body_len = r.body ? strlen(r.body) : 0;
    if (r.body == NULL || jwks_persist_save(root, cache_dir, &r, err, sizeof(err)) != APR_SUCCESS) {
        fprintf(stderr, "seed %s: %s\n", issuer, err);
    }
}

/* --- the tests ----------------------------------------------------------------------------------
 */

enum {
    I_OK,
    I_REDIRECT,
    I_WRONG_CA,
    I_HTTP,
    I_DISCOVERY,
    I_DISC_IMPOSTOR,
    I_HUGE,
    I_STATUS500,
    I_GARBAGE,
    I_LOOP,
    I_TIMEOUT,
    I_COUNT
};

static tissuer_t issuers[I_COUNT];
static jwks_store_t *store;
static jwks_issuer_t **iss;
static apr_pool_t *gen;

static void setup_issuers(void)
{
    const char *u = base_url;
    tissuer_t t[I_COUNT] = {
        [I_OK] = {"https://ok.test/", CONF_KEYS_URI, apr_pstrcat(root, u, "/jwks.json", NULL),
                  ca_file, 0, 0},
        [I_REDIRECT] = {"https://redirect.test/", CONF_KEYS_URI,
                        apr_pstrcat(root, u, "/redirect/jwks.json", NULL), ca_file, 0, 0},
        [I_WRONG_CA] = {"https://wrong-ca.test/", CONF_KEYS_URI,
                        apr_pstrcat(root, u, "/jwks.json", NULL), other_ca_file, 0, 1},
        [I_HTTP] = {"https://http.test/", CONF_KEYS_URI,
                    apr_pstrcat(root, "http://", u + 8, "/jwks.json", NULL), ca_file, 0, 0},
        [I_DISCOVERY] = {u, CONF_KEYS_DISCOVERY,
                         apr_pstrcat(root, u, "/.well-known/openid-configuration", NULL), ca_file,
                         0, 0},
        [I_DISC_IMPOSTOR] = {apr_pstrcat(root, u, "/impostor", NULL), CONF_KEYS_DISCOVERY,
                             apr_pstrcat(root, u, "/impostor/.well-known/openid-configuration",
                                         NULL),
                             ca_file, 0, 0},
        [I_HUGE] = {"https://huge.test/", CONF_KEYS_URI, apr_pstrcat(root, u, "/huge", NULL),
                    ca_file, 0, 1},
        [I_STATUS500] = {"https://status500.test/", CONF_KEYS_URI,
                         apr_pstrcat(root, u, "/status500", NULL), ca_file, 0, 1},
        [I_GARBAGE] = {"https://garbage.test/", CONF_KEYS_URI,
                       apr_pstrcat(root, u, "/garbage", NULL), ca_file, 0, 1},
        [I_LOOP] = {"https://loop.test/", CONF_KEYS_URI,
                    apr_pstrcat(root, u, "/redirect-loop", NULL), ca_file, 0, 1},
        /* nginx waits 5 s before answering; fetch_timeout is 2. */
        [I_TIMEOUT] = {"https://timeout.test/", CONF_KEYS_URI,
                       apr_pstrcat(root, u, "/slow/jwks.json?delay=5", NULL), ca_file, 2, 1},
    };
    memcpy(issuers, t, sizeof(t));
    for (int i = 0; i < I_COUNT; i++) {
        if (issuers[i].seed) {
            seed(issuers[i].name, issuers[i].ref);
        }
    }
}

TEST(all_issuers_fetch_at_start_and_slow_idp_does_not_block)
{
    apr_pool_create(&gen, root);
    CHECK(jwks_store_create(&store, root) == APR_SUCCESS);
    jwks_store_set_log(store, log_stderr, NULL);
    CHECK(jwks_store_on_change(store, on_change, &waiter) == APR_SUCCESS);
    conf_t *c = make_conf(gen, issuers, I_COUNT);
    CHECK(jwks_store_configure(store, c, (int64_t)time(NULL), &iss) == APR_SUCCESS);
    time_t t0 = time(NULL);
    CHECK(jwks_store_start(store) == APR_SUCCESS);
    /* The fast issuers finish while the slow one is still waiting for nginx. */
    CHECK(wait_attempts(store, issuers[I_OK].name, 1) == 0);
    CHECK(wait_attempts(store, issuers[I_DISCOVERY].name, 1) == 0);
    CHECK_MSG(time(NULL) - t0 < 2, "fast fetches took %ld s", (long)(time(NULL) - t0));
    CHECK(jwks_issuer_fetch_pending(iss[I_TIMEOUT]));
    for (int i = 0; i < I_COUNT; i++) {
        CHECK_MSG(wait_attempts(store, issuers[i].name, 1) == 0, "%s", issuers[i].name);
    }
}

TEST(fetch_with_ca_file_installs_every_key)
{
    const proto_json_t *v = view(store, issuers[I_OK].name);
    CHECK(nkeys(iss[I_OK]) == 7);
    CHECK(fetch_count(v, "ok") == 1 && fetch_count(v, "failed") == 0);
    CHECK(proto_json_get(v, "skipped")->u.array.count == 0);
    /* The server says max-age=300: within [30, 600], so honoured. */
    CHECK(proto_json_get(v, "next_refresh")->u.number.value -
              proto_json_get(v, "confirmed_at")->u.number.value ==
          300);
    /* One redirect (to a CDN, say) is followed. */
    CHECK(nkeys(iss[I_REDIRECT]) == 7);
}

TEST(fetch_with_wrong_ca_refused)
{
    const proto_json_t *v = view(store, issuers[I_WRONG_CA].name);
    CHECK(fetch_count(v, "failed") == 1 && fetch_count(v, "ok") == 0);
    CHECK_MSG(strstr(last_error(v), "certificate") != NULL, "%s", last_error(v));
    /* The persisted set is still the one served. */
    CHECK(nkeys(iss[I_WRONG_CA]) == 1 && serial(iss[I_WRONG_CA]) == 1);
}

TEST(fetch_over_plain_http_refused)
{
    const proto_json_t *v = view(store, issuers[I_HTTP].name);
    CHECK(fetch_count(v, "failed") == 1);
    CHECK_MSG(strstr(last_error(v), "https") != NULL, "%s", last_error(v));
    CHECK(jwks_issuer_acquire(iss[I_HTTP], (int64_t)time(NULL)) == NULL);
}

TEST(discovery_finds_jwks_uri)
{
    const proto_json_t *v = view(store, issuers[I_DISCOVERY].name);
    CHECK(nkeys(iss[I_DISCOVERY]) == 7);
    const char *uri = json_str(v, "jwks_uri");
    CHECK_STREQ(uri, apr_pstrcat(root, base_url, "/jwks.json", NULL));
}

TEST(discovery_with_impostor_issuer_refused)
{
    const proto_json_t *v = view(store, issuers[I_DISC_IMPOSTOR].name);
    CHECK(fetch_count(v, "failed") == 1);
    CHECK_MSG(strstr(last_error(v), "differs from the configured issuer") != NULL, "%s",
              last_error(v));
    CHECK(jwks_issuer_acquire(iss[I_DISC_IMPOSTOR], (int64_t)time(NULL)) == NULL);
    /* Its jwks_uri was never taken. */
    CHECK(proto_json_get(v, "jwks_uri")->type == PROTO_JSON_NULL);
}

TEST(oversized_body_aborted_set_kept)
{
    const proto_json_t *v = view(store, issuers[I_HUGE].name);
    CHECK(fetch_count(v, "failed") == 1);
    CHECK_MSG(strstr(last_error(v), "over 1048576 bytes") != NULL, "%s", last_error(v));
    CHECK(nkeys(iss[I_HUGE]) == 1 && serial(iss[I_HUGE]) == 1);
}

TEST(http_500_keeps_old_set)
{
    const proto_json_t *v = view(store, issuers[I_STATUS500].name);
    CHECK(fetch_count(v, "failed") == 1);
    CHECK_STREQ(last_error(v), "HTTP status 500");
    CHECK(nkeys(iss[I_STATUS500]) == 1 && serial(iss[I_STATUS500]) == 1);
}

TEST(garbage_body_keeps_old_set)
{
    const proto_json_t *v = view(store, issuers[I_GARBAGE].name);
    CHECK(fetch_count(v, "failed") == 1);
    CHECK_MSG(strstr(last_error(v), "not a key set") != NULL, "%s", last_error(v));
    CHECK(nkeys(iss[I_GARBAGE]) == 1 && serial(iss[I_GARBAGE]) == 1);
}

TEST(redirect_loop_bounded)
{
    const proto_json_t *v = view(store, issuers[I_LOOP].name);
    CHECK(fetch_count(v, "failed") == 1);
    CHECK_MSG(strstr(last_error(v), "redirect") != NULL, "%s", last_error(v));
    CHECK(nkeys(iss[I_LOOP]) == 1);
}

TEST(slow_idp_times_out_set_kept)
{
    const proto_json_t *v = view(store, issuers[I_TIMEOUT].name);
    CHECK(fetch_count(v, "failed") == 1);
    CHECK_MSG(strstr(last_error(v), "imed out") != NULL, "%s", last_error(v));
    CHECK(nkeys(iss[I_TIMEOUT]) == 1);
}

TEST(refresh_sends_if_none_match_and_304_keeps_set)
{
    uint64_t before = serial(iss[I_OK]);
    CHECK(jwks_store_refresh(store, PROTO_STR_LIT("https://ok.test/")) == APR_SUCCESS);
    CHECK(wait_attempts(store, issuers[I_OK].name, 2) == 0);
    const proto_json_t *v = view(store, issuers[I_OK].name);
    CHECK(fetch_count(v, "not_modified") == 1);
    CHECK(serial(iss[I_OK]) == before && nkeys(iss[I_OK]) == 7);

    /* The key file changes (es256-1 only): the next fetch installs it and the epoch moves. */
    uint32_t epoch = jwks_issuer_removal_epoch(iss[I_OK]);
    const char *one = read_text(apr_pstrcat(root, keydir, "/es256-1.jwks.json", NULL));
    char *tmp = apr_pstrcat(root, docroot, "/jwks.json.tmp", NULL);
    CHECK(one != NULL && write_file(tmp, one) == 0);
    CHECK(rename(tmp, apr_pstrcat(root, docroot, "/jwks.json", NULL)) == 0);
    CHECK(jwks_store_refresh(store, PROTO_STR_LIT("https://ok.test/")) == APR_SUCCESS);
    CHECK(wait_attempts(store, issuers[I_OK].name, 3) == 0);
    CHECK(nkeys(iss[I_OK]) == 1 && serial(iss[I_OK]) == before + 1);
    CHECK(jwks_issuer_removal_epoch(iss[I_OK]) == epoch + 1);

    /* Now the body turns to garbage: the set stays. */
    CHECK(write_file(tmp, "{\"keys\": [") == 0);
    CHECK(rename(tmp, apr_pstrcat(root, docroot, "/jwks.json", NULL)) == 0);
    CHECK(jwks_store_refresh(store, PROTO_STR_LIT("https://ok.test/")) == APR_SUCCESS);
    CHECK(wait_attempts(store, issuers[I_OK].name, 4) == 0);
    CHECK(nkeys(iss[I_OK]) == 1 && serial(iss[I_OK]) == before + 1);
}

TEST(persisted_file_written_and_reloaded_by_fresh_store)
{
    const char *path;
    struct stat sb;
    CHECK(jwks_persist_path(root, cache_dir, PROTO_STR_LIT("https://ok.test/"), &path) ==
          APR_SUCCESS);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);

    /* Stop the fetcher: the fresh store must serve from the file alone, no network. */
    jwks_store_stop(store);
    apr_pool_t *p2, *g2;
    jwks_store_t *fresh;
    jwks_issuer_t **l;
    apr_pool_create(&p2, root);
    apr_pool_create(&g2, root);
    CHECK(jwks_store_create(&fresh, p2) == APR_SUCCESS);
    conf_t *c = make_conf(g2, issuers, I_COUNT);
    CHECK(jwks_store_configure(fresh, c, (int64_t)time(NULL), &l) == APR_SUCCESS);
    CHECK(nkeys(l[I_OK]) == 1);
    CHECK(nkeys(l[I_DISCOVERY]) == 7);
    /* Issuers whose fetches failed kept their seeded files, not a failed response. */
    CHECK(nkeys(l[I_STATUS500]) == 1);
    CHECK(jwks_issuer_acquire(l[I_HTTP], (int64_t)time(NULL)) == NULL);
    apr_pool_destroy(g2);
    apr_pool_destroy(p2);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&root, NULL);
    apr_thread_mutex_create(&waiter.lock, APR_THREAD_MUTEX_DEFAULT, root);
    apr_thread_cond_create(&waiter.cond, root);
    src = getenv("JWTAUTHZ_SRC");
    if (src == NULL) {
        fprintf(stderr, "JWTAUTHZ_SRC is not set (run from ctest)\n");
        return 1;
    }
    char tmpl[] = "/tmp/test_jwks_fetch.XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    work = apr_pstrdup(root, tmpl);
    docroot = apr_pstrcat(root, work, "/docroot", NULL);
    state = apr_pstrcat(root, work, "/state", NULL);
    keydir = apr_pstrcat(root, work, "/keys", NULL);
    cache_dir = apr_pstrcat(root, work, "/cache", NULL);
    mkdir(docroot, 0755);

    int ready = run(apr_psprintf(root, PYTHON " '%s/tests/tools/mint.py' keygen '%s' >/dev/null",
                                 src, keydir)) == 0 &&
                run(apr_psprintf(root, "cp '%s/jwks.json' '%s/jwks.json'", keydir, docroot)) == 0 &&
                server_start() == 0;
    if (ready) {
        watchdog_start();
        atexit(server_stop);
        mkdir(apr_pstrcat(root, docroot, "/.well-known", NULL), 0755);
        mkdir(apr_pstrcat(root, docroot, "/impostor", NULL), 0755);
        mkdir(apr_pstrcat(root, docroot, "/impostor/.well-known", NULL), 0755);
        ready = write_file(apr_pstrcat(root, docroot, "/.well-known/openid-configuration", NULL),
                           apr_psprintf(root, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks.json\"}",
                                        base_url, base_url)) == 0 &&
                write_file(
                    apr_pstrcat(root, docroot, "/impostor/.well-known/openid-configuration", NULL),
                    apr_psprintf(root,
                                 "{\"issuer\":\"https://accounts.example.com\","
                                 "\"jwks_uri\":\"%s/jwks.json\"}",
                                 base_url)) == 0;
    }
    if (!ready) {
        fprintf(stderr, "could not set up keys and the HTTPS server\n");
        return 1;
    }
    setup_issuers();
    RUN(all_issuers_fetch_at_start_and_slow_idp_does_not_block);
    if (store != NULL && iss != NULL) {
        RUN(fetch_with_ca_file_installs_every_key);
        RUN(fetch_with_wrong_ca_refused);
        RUN(fetch_over_plain_http_refused);
        RUN(discovery_finds_jwks_uri);
        RUN(discovery_with_impostor_issuer_refused);
        RUN(oversized_body_aborted_set_kept);
        RUN(http_500_keeps_old_set);
        RUN(garbage_body_keeps_old_set);
        RUN(redirect_loop_bounded);
        RUN(slow_idp_times_out_set_kept);
        RUN(refresh_sends_if_none_match_and_304_keeps_set);
        RUN(persisted_file_written_and_reloaded_by_fresh_store);
    }
    jwks_store_stop(store);
    apr_pool_destroy(gen);
    server_stop();
    run(apr_psprintf(root, "rm -rf '%s'", work));
    state = NULL;
    int rc = harness_report();
    apr_pool_destroy(root);
    apr_terminate();
    return rc;
}
