/* Fuzzes the config reader through conf_load_text(), the in-memory twin of conf_load() (same
 * checks, no file). A config that loads must be one the header allows: every bound, mode and
 * cross-check holds (a socket never world-writable, HS* only with a key file, fetched keys only
 * over https), the rules pass policy_rules_check(); one that does not load must say why in
 * "NAME:LINE: message" lines. */
#include <string.h>

#include "daemon/conf.h"
#include "daemon/discovery.h"
#include "daemon/policy.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_apr.h"
#include "proto/limits.h"

#define FUZZ_CONF_NAME "fuzz.conf"

static void issuer_check(const conf_issuer_t *iss)
{
    FUZZ_CHECK(iss->issuer.ptr != NULL && iss->issuer.len > 0);
    FUZZ_CHECK(!proto_str_has_nul(iss->issuer));
    fuzz_touch(iss->issuer.ptr, iss->issuer.len + 1);
    FUZZ_CHECK(iss->algorithms != 0 && (iss->algorithms & ~JOSE_ALG_SET_ALL) == 0);
    switch (iss->key_source) {
    case CONF_KEYS_FILE:
        FUZZ_CHECK(iss->jwks_file != NULL && iss->jwks_file[0] == '/');
        FUZZ_CHECK(iss->jwks_uri == NULL && iss->discovery_uri == NULL);
        break;
    case CONF_KEYS_URI:
        FUZZ_CHECK(iss->jwks_uri != NULL && iss->jwks_file == NULL);
        FUZZ_CHECK(discovery_url_is_https(proto_str_make(iss->jwks_uri, strlen(iss->jwks_uri)),
                                          CONF_MAX_URL_BYTES));
        /* RFC 8725 §3.1: no HMAC with keys fetched from the network. */
        FUZZ_CHECK((iss->algorithms & CONF_ALG_SET_HMAC) == 0);
        break;
    case CONF_KEYS_DISCOVERY:
        FUZZ_CHECK(iss->discovery_uri != NULL && iss->jwks_file == NULL);
        /* What jwks_fetch.c checks before every fetch, at the length the key store keeps. */
        FUZZ_CHECK(discovery_url_is_https(
            proto_str_make(iss->discovery_uri, strlen(iss->discovery_uri)), CONF_MAX_URL_BYTES));
        FUZZ_CHECK((iss->algorithms & CONF_ALG_SET_HMAC) == 0);
        break;
    default:
        FUZZ_FAIL("no key source");
    }
    FUZZ_CHECK(iss->leeway_s <= CONF_MAX_LEEWAY_S);
    FUZZ_CHECK(iss->jwks_refresh_s <= CONF_MAX_JWKS_REFRESH_S);
    FUZZ_CHECK(iss->jwks_max_stale_s <= CONF_MAX_JWKS_MAX_STALE_S);
    FUZZ_CHECK(iss->fetch_timeout_s <= CONF_MAX_FETCH_TIMEOUT_S);
    FUZZ_CHECK(iss->naudiences <= CONF_MAX_LIST_ITEMS);
    FUZZ_CHECK(iss->ncontext_claims <= CONF_MAX_LIST_ITEMS);
    for (size_t i = 0; i < iss->naudiences; i++) {
        fuzz_touch(iss->audiences[i].ptr, iss->audiences[i].len);
    }
    for (size_t i = 0; i < iss->ncontext_claims; i++) {
        fuzz_touch(iss->context_claims[i].ptr, iss->context_claims[i].len);
    }
    fuzz_touch(iss->principal_claim.ptr, iss->principal_claim.len);
}

static void conf_check(const conf_t *conf)
{
    char err[256];
    FUZZ_CHECK(strcmp(conf->path, FUZZ_CONF_NAME) == 0);
    FUZZ_CHECK(conf->listen != NULL && conf->listen[0] == '/');
    FUZZ_CHECK(conf->admin_listen != NULL && strcmp(conf->listen, conf->admin_listen) != 0);
    FUZZ_CHECK((conf->listen_mode & 0002) == 0);
    FUZZ_CHECK((conf->admin_mode & 0077) == 0);
    FUZZ_CHECK(conf->threads >= 1 && conf->threads <= CONF_MAX_THREADS);
    FUZZ_CHECK(conf->max_frame_bytes >= 1 &&
               conf->max_frame_bytes <= PROTO_MAX_FRAME_BYTES_CEILING);
    FUZZ_CHECK(conf->max_token_bytes >= CONF_MIN_TOKEN_BYTES &&
               conf->max_token_bytes <= JOSE_MAX_TOKEN_BYTES_CEILING &&
               conf->max_token_bytes < conf->max_frame_bytes);
    FUZZ_CHECK((unsigned)conf->log_level <= CONF_LOG_DEBUG);
    FUZZ_CHECK(conf->nissuers >= 1 && conf->nissuers <= CONF_MAX_ISSUERS);
    for (size_t i = 0; i < conf->nissuers; i++) {
        issuer_check(&conf->issuers[i]);
        for (size_t j = 0; j < i; j++) {
            FUZZ_CHECK(!proto_str_eq(conf->issuers[i].issuer, conf->issuers[j].issuer));
        }
    }
    FUZZ_CHECK(policy_rules_check(&conf->rules, err, sizeof(err)) == 0);
    FUZZ_CHECK(conf->cache_ttl_s <= CONF_MAX_CACHE_TTL_S);
    FUZZ_CHECK(conf->cache_max_entries <= CONF_MAX_CACHE_ENTRIES);
}

static void errs_check(const conf_errors_t *e, int failed)
{
    FUZZ_CHECK(e->nerrors <= CONF_MAX_ERRORS && e->nwarnings <= CONF_MAX_WARNINGS);
    FUZZ_CHECK(failed ? e->nerrors > 0 : e->nerrors == 0 && e->nerrors_dropped == 0);
    if (e->nerrors_dropped) {
        FUZZ_CHECK(e->nerrors == CONF_MAX_ERRORS);
    }
    for (size_t i = 0; i < e->nerrors; i++) {
        FUZZ_CHECK(memchr(e->errors[i], '\0', CONF_MESSAGE_BYTES) != NULL);
        FUZZ_CHECK(strncmp(e->errors[i], FUZZ_CONF_NAME ":", sizeof(FUZZ_CONF_NAME)) == 0);
        /* One message, one line. */
        FUZZ_CHECK(strchr(e->errors[i], '\n') == NULL);
    }
    for (size_t i = 0; i < e->nwarnings; i++) {
        FUZZ_CHECK(memchr(e->warnings[i], '\0', CONF_MESSAGE_BYTES) != NULL);
        FUZZ_CHECK(strchr(e->warnings[i], '\n') == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static conf_errors_t errs; /* 20 KiB: not on the stack */
    apr_pool_t *p = fuzz_pools()->input;
    conf_t *conf = NULL;

    /* Over CONF_MAX_BYTES goes through: conf_load_text() refuses it before parsing. */
    apr_status_t rv = conf_load_text(p, FUZZ_CONF_NAME, (const char *)data, size, &conf, &errs);
    if (rv == APR_SUCCESS) {
        FUZZ_CHECK(conf != NULL);
        conf_check(conf);
    } else {
        FUZZ_CHECK(conf == NULL);
        FUZZ_CHECK(rv == APR_EINVAL || rv == APR_ENOMEM);
    }
    errs_check(&errs, rv != APR_SUCCESS);
    if (size > CONF_MAX_BYTES) {
        FUZZ_CHECK(rv == APR_EINVAL);
    }
    apr_pool_clear(p);
    return 0;
}
