/* JSON Web Key Sets (RFC 7517 §5): a document taken key by key. A key jose_jwk_from_json()
 * refuses is listed in skipped[] with its reason and the rest are used; only a document that is
 * not a key set at all fails. The parsed document lives in a scratch pool for the length of the
 * call; the set keeps copies. No I/O. */
#include "jose/jwk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_strings.h>

#include "jose/pool.h"
#include "proto/limits.h"

#define R_DUPLICATE_KID "duplicate_kid"
#define R_TOO_MANY_KEYS "too_many_keys"
#define R_MIXED_KEY_SET "mixed_key_set"

static void jwks_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void jwks_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

static int jwks_skipped_cmp(const void *a, const void *b)
{
    const jose_jwk_skipped_t *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* RFC 7517 §4.5: a kid should name one key. Two entries with the same kid (usable or not) make
 * which key a token meant ambiguous, so every usable key with a shared kid is dropped: a strict
 * loader that refuses one twin must not leave the other answering for both. */
static void jwks_mark_duplicate_kids(const jose_jwks_t *set, const size_t *key_index,
                                     proto_json_t *const *items, size_t count, const char **drop)
{
    for (size_t k = 0; k < set->nkeys; k++) {
        const jose_jwk_t *key = set->keys[k];
        for (size_t j = 0; key->has_kid && j < count && drop[k] == NULL; j++) {
            proto_str_t kid;
            if (j != key_index[k] && jose_jwk_kid_read(items[j], &kid) == 1 &&
                proto_str_eq(kid, key->kid)) {
                drop[k] = R_DUPLICATE_KID;
            }
        }
    }
}

/* RFC 8725 §3.1 (and Wycheproof jws_mixedSymmetryKeyset): a set that publishes public keys is
 * what a public-key verifier is configured with; a secret beside them makes the set's meaning
 * ambiguous and puts an HMAC key where anyone who reads the set may look. In a set with any RSA,
 * EC or OKP entry (usable or not), the oct keys are dropped; the public keys stay. */
static void jwks_mark_mixed_oct(const jose_jwks_t *set, proto_json_t *const *items, size_t count,
                                const char **drop)
{
    int has_public = 0;
    for (size_t i = 0; i < count && !has_public; i++) {
        const proto_json_t *kty = proto_json_get(items[i], "kty");
        has_public =
            kty != NULL && kty->type == PROTO_JSON_STRING &&
            (proto_str_eq_cstr(kty->u.string, "RSA") || proto_str_eq_cstr(kty->u.string, "EC") ||
             proto_str_eq_cstr(kty->u.string, "OKP"));
    }
    for (size_t k = 0; has_public && k < set->nkeys; k++) {
        if (set->keys[k]->kty == JOSE_KTY_OCT && drop[k] == NULL) {
            drop[k] = R_MIXED_KEY_SET;
        }
    }
}

/* Moves the keys marked in drop to skipped, keeping the order of the rest. */
static void jwks_drop_marked(jose_jwks_t *set, const size_t *key_index, const char **drop)
{
    size_t kept = 0;
    for (size_t k = 0; k < set->nkeys; k++) {
        if (drop[k] != NULL) {
            jose_jwk_skipped_t *s = &set->skipped[set->nskipped++];
            s->index = key_index[k];
            s->kid = set->keys[k]->kid;
            s->reason = drop[k];
        } else {
            set->keys[kept++] = set->keys[k];
        }
    }
    set->nkeys = kept;
}

apr_status_t jose_jwks_parse(apr_pool_t *p, const char *text, size_t len, unsigned flags,
                             jose_jwks_t **out, char *err, size_t errlen)
{
    apr_pool_t *scratch = NULL;
    apr_status_t rv = APR_EINVAL;
    proto_json_t *doc = NULL, *single = NULL;
    proto_json_t *const *items = NULL;
    proto_json_error_t jerr;
    size_t count = 0;

    *out = NULL;
    if (len > JWKS_MAX_BYTES) {
        jwks_error(err, errlen, "key set is %zu bytes, over the %u-byte limit", len,
                   JWKS_MAX_BYTES);
        goto out;
    }
    /* The parsed document lives only as long as this call: keys copy what they keep. */
    if (apr_pool_create(&scratch, p) != APR_SUCCESS) {
        rv = APR_ENOMEM;
        jwks_error(err, errlen, "key set: out of memory");
        goto out;
    }
    if (jose_json_read(scratch, text, len, &doc, &jerr) != PROTO_JSON_OK) {
        rv = jerr.status == PROTO_JSON_NO_MEMORY ? APR_ENOMEM : APR_EINVAL;
        jwks_error(err, errlen, "key set is not strict JSON: %s at byte %zu", jerr.message,
                   jerr.offset);
        goto out;
    }
    if (doc->type != PROTO_JSON_OBJECT) {
        jwks_error(err, errlen, "key set is not a JSON object");
        goto out;
    }
    const proto_json_t *keys = proto_json_get(doc, "keys");
    if (keys != NULL) {
        if (keys->type != PROTO_JSON_ARRAY) {
            jwks_error(err, errlen, "key set: \"keys\" is not an array");
            goto out;
        }
        items = keys->u.array.items;
        count = keys->u.array.count;
    } else if ((flags & JOSE_JWKS_ACCEPT_SINGLE) && proto_json_get(doc, "kty") != NULL) {
        single = doc;
        items = &single;
        count = 1;
    } else {
        jwks_error(err, errlen, "key set has no \"keys\" array");
        goto out;
    }

    jose_jwks_t *set = apr_pcalloc(p, sizeof(*set));
    set->keys = apr_pcalloc(p, JWKS_MAX_KEYS * sizeof(*set->keys));
    /* count is bounded by JSON_MAX_NODES through the reader. */
    set->skipped = apr_pcalloc(p, (count ? count : 1) * sizeof(*set->skipped));
    size_t *key_index = apr_pcalloc(scratch, JWKS_MAX_KEYS * sizeof(*key_index));
    for (size_t i = 0; i < count; i++) {
        jose_jwk_t *key = NULL;
        const char *why;
        if (set->nkeys == JWKS_MAX_KEYS) {
            why = R_TOO_MANY_KEYS; /* not even parsed: bounds the work a hostile set costs */
        } else {
            why = jose_jwk_from_json(p, items[i], flags & JOSE_JWK_ALLOW_OCT, &key);
        }
        if (why == NULL) {
            key_index[set->nkeys] = i;
            set->keys[set->nkeys++] = key;
            continue;
        }
        jose_jwk_skipped_t *s = &set->skipped[set->nskipped++];
        proto_str_t kid;
        s->index = i;
        s->reason = why;
        if (jose_jwk_kid_read(items[i], &kid) == 1) {
            s->kid = proto_str_make(apr_pstrmemdup(p, kid.ptr, kid.len), kid.len);
        } else {
            s->kid = proto_str_make("", 0);
        }
    }
    /* What the set as a whole says about its usable keys. */
    const char **drop = apr_pcalloc(scratch, JWKS_MAX_KEYS * sizeof(*drop));
    jwks_mark_duplicate_kids(set, key_index, items, count, drop);
    jwks_mark_mixed_oct(set, items, count, drop);
    jwks_drop_marked(set, key_index, drop);
    qsort(set->skipped, set->nskipped, sizeof(*set->skipped), jwks_skipped_cmp);
    *out = set;
    rv = APR_SUCCESS;
out:
    if (scratch != NULL) {
        apr_pool_destroy(scratch);
    }
    return rv;
}
