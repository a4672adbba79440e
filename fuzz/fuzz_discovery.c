/* Fuzzes the OpenID Connect discovery checks (daemon/discovery.h): discovery_read() on the
 * fetched document for a fixed configured issuer, with the jwks_uri buffer the key store uses;
 * and the URL rules themselves (discovery_url_is_https, discovery_url_build) on the raw input.
 * A jwks_uri that comes out must be an https URL that passes the same rules, and only from a
 * document whose issuer is ours byte for byte. */
#include <string.h>
#include <strings.h>

#include "daemon/conf.h"
#include "daemon/discovery.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_apr.h"
#include "proto/json.h"
#include "proto/limits.h"

/* jwks_store.h's JWKS_URL_BYTES: a URL of CONF_MAX_URL_BYTES and its NUL. */
#define FUZZ_URL_BYTES (CONF_MAX_URL_BYTES + 1u)

static const proto_str_t fuzz_issuer = PROTO_STR_LIT("https://issuer.example/");

static void url_rules_check(proto_str_t s)
{
    char out[FUZZ_URL_BYTES];
    int https = discovery_url_is_https(s, CONF_MAX_URL_BYTES);
    if (https) {
        FUZZ_CHECK(s.len > 8 && s.len <= CONF_MAX_URL_BYTES && !proto_str_has_nul(s));
        FUZZ_CHECK(strncasecmp(s.ptr, "https://", 8) == 0);
    }
    if (discovery_url_build(s, out, sizeof(out)) == 0) {
        size_t n = strlen(out), wk = strlen(DISCOVERY_WELL_KNOWN_PATH);
        FUZZ_CHECK(discovery_url_is_https(s, SIZE_MAX));
        FUZZ_CHECK(n < sizeof(out) && n >= wk);
        FUZZ_CHECK(strcmp(out + n - wk, DISCOVERY_WELL_KNOWN_PATH) == 0);
        FUZZ_CHECK(memcmp(out, s.ptr, n - wk) == 0);
        /* One trailing '/' is dropped before the path is appended (Discovery §4). */
        FUZZ_CHECK(n - wk == s.len || (n - wk + 1 == s.len && s.ptr[s.len - 1] == '/'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pools()->input;
    char uri[FUZZ_URL_BYTES];
    char err[256];
    proto_str_t doc = proto_str_make((const char *)data, size);

    /* Over DISCOVERY_MAX_BYTES goes through: the size check is discovery_read()'s first. */
    memset(uri, 'X', sizeof(uri));
    err[0] = '\0';
    apr_status_t rv =
        discovery_read(p, doc.ptr, doc.len, fuzz_issuer, uri, sizeof(uri), err, sizeof(err));
    if (rv == APR_SUCCESS) {
        size_t n = strnlen(uri, sizeof(uri));
        FUZZ_CHECK(n < sizeof(uri));
        FUZZ_CHECK(discovery_url_is_https(proto_str_make(uri, n), CONF_MAX_URL_BYTES));
    } else {
        FUZZ_CHECK(rv == APR_EINVAL);
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
    }
    if (size > DISCOVERY_MAX_BYTES) {
        FUZZ_CHECK(rv == APR_EINVAL);
    }
    apr_pool_clear(p);

    if (size <= FUZZ_URL_BYTES * 2) {
        url_rules_check(doc);
    }
    return 0;
}
