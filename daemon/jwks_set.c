/* One key set: built from a document into its own unmanaged pool (so whichever thread drops the
 * last reference can destroy it), counted, and released. The keys are parsed by jose_jwks_parse
 * (jose/jwk.c), which registers a cleanup on the pool for every EVP_PKEY and secret. No locks: a
 * set is immutable once built. */
#include "daemon/jwks_issuer.h"

#include <stdio.h>
#include <string.h>

#include <apr_strings.h>

#include "proto/limits.h"

apr_status_t jwks_set_build(const char *body, size_t len, unsigned flags, jose_alg_set_t algorithms,
                            int64_t fetched_at, const char *jwks_uri, const char *etag,
                            jwks_set_t **out, char *err, size_t errlen)
{
    apr_pool_t *p = NULL;
    jose_jwks_t *keys = NULL;

    if (len > JWKS_MAX_BYTES) {
        snprintf(err, errlen, "key set of %zu bytes is over JWKS_MAX_BYTES", len);
        return APR_EINVAL;
    }
    /* Unmanaged: no parent whose child list two threads could touch at once; the set's last
     * reference may go on any worker thread. */
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        snprintf(err, errlen, "out of memory");
        return APR_ENOMEM;
    }
    apr_pool_tag(p, "jwks_set");
    /* NUL-terminated for the log and persistence paths; parsing takes (ptr, len). */
    char *copy = apr_palloc(p, len + 1);
    memcpy(copy, body, len);
    copy[len] = '\0';
    apr_status_t st = jose_jwks_parse(p, copy, len, flags, &keys, err, errlen);
    if (st != APR_SUCCESS) {
        apr_pool_destroy(p);
        return st;
    }
    jwks_set_t *set = apr_pcalloc(p, sizeof(*set));
    set->pool = p;
    set->refs = 1;
    set->keys = keys;
    set->fetched_at = fetched_at;
    set->body = copy;
    set->body_len = len;
    set->etag = etag ? apr_pstrdup(p, etag) : NULL;
    set->jwks_uri = apr_pstrdup(p, jwks_uri ? jwks_uri : "");
    for (size_t i = 0; i < keys->nkeys; i++) {
        if ((keys->keys[i]->algs & algorithms) != 0) {
            set->usable++;
        }
    }
    *out = set;
    return APR_SUCCESS;
}

void jwks_set_release(jwks_set_t *set)
{
    /* apr_atomic_dec32 is a full barrier: every reader's loads happen before the destroy. */
    if (set != NULL && apr_atomic_dec32(&set->refs) == 0) {
        apr_pool_destroy(set->pool);
    }
}

void jwks_set_log_skipped(const jwks_store_t *store, proto_str_t issuer, const jwks_set_t *set,
                          jose_alg_set_t algorithms)
{
    char qi[JWKS_LOG_QUOTE_BYTES + 8], qk[JWKS_LOG_QUOTE_BYTES + 8];
    jwks_quote(qi, sizeof(qi), issuer);
    for (size_t i = 0; i < set->keys->nskipped; i++) {
        const jose_jwk_skipped_t *s = &set->keys->skipped[i];
        jwks_log(store, CONF_LOG_WARN, "jwks: issuer \"%s\": key %zu (kid \"%s\") skipped: %s", qi,
                 s->index, jwks_quote(qk, sizeof(qk), s->kid), s->reason ? s->reason : "unknown");
    }
    /* Keys the parser took but whose algorithms this issuer does not allow verify nothing here;
     * they stay in the set (the report marks them) but do not count as usable. */
    for (size_t i = 0; i < set->keys->nkeys; i++) {
        const jose_jwk_t *k = set->keys->keys[i];
        if ((k->algs & algorithms) == 0) {
            jwks_log(store, CONF_LOG_WARN,
                     "jwks: issuer \"%s\": key with kid \"%s\" unused: none of its algorithms "
                     "is in the issuer's \"algorithms\"",
                     qi, jwks_quote(qk, sizeof(qk), k->kid));
        }
    }
}
