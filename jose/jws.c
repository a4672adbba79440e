/* JWS compact parsing and signature verification (see jws.h). Bounds are checked before any
 * decoding; header parameters are checked for type; keys offered by the token are ignored. This
 * file must not look at claims, and must never treat a key from the token as trusted. */
#include "jose/jws.h"

#include <string.h>

#include "jose/b64url.h"
#include "jose/pool.h"
#include "jose/sig.h"
#include "proto/limits.h"

/* Splits token at its dots. Returns the number of parts found (up to max_parts + 1, so the
 * caller sees "too many" without scanning further). */
static size_t jws_split(proto_str_t token, proto_str_t *parts, size_t max_parts)
{
    const char *p = token.ptr, *end = token.ptr + token.len;
    size_t n = 0;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (n == max_parts) {
            return n + 1;
        }
        parts[n].ptr = p;
        parts[n].len = (size_t)((dot ? dot : end) - p);
        n++;
        if (dot == NULL) {
            return n;
        }
        p = dot + 1;
    }
}

static jose_reason_e jws_reason_of_json(proto_json_status_e st, jose_reason_e not_json)
{
    switch (st) {
    case PROTO_JSON_OK:
        return JOSE_OK;
    case PROTO_JSON_DUPLICATE_KEY:
        return JOSE_R_DUPLICATE_MEMBER;
    case PROTO_JSON_NO_MEMORY:
        return JOSE_E_INTERNAL;
    default:
        return not_json;
    }
}

/* RFC 7515 §4.1.11: a recipient must refuse a JWS whose crit lists an extension it does not
 * understand. We understand none; "b64" (RFC 7797) gets its own reason when it asks for an
 * unencoded payload. */
static jose_reason_e jws_header_check_crit(const proto_json_t *hdr)
{
    const proto_json_t *b64 = proto_json_get(hdr, "b64");
    if (b64) {
        if (b64->type != PROTO_JSON_BOOL) {
            return JOSE_R_BAD_HEADER_PARAM;
        }
        if (!b64->u.boolean) {
            return JOSE_R_UNENCODED_PAYLOAD;
        }
    }
    const proto_json_t *crit = proto_json_get(hdr, "crit");
    if (crit == NULL) {
        return JOSE_OK;
    }
    if (crit->type != PROTO_JSON_ARRAY || crit->u.array.count == 0) {
        return JOSE_R_BAD_HEADER_PARAM;
    }
    for (size_t i = 0; i < crit->u.array.count; i++) {
        if (crit->u.array.items[i]->type != PROTO_JSON_STRING) {
            return JOSE_R_BAD_HEADER_PARAM;
        }
    }
    return JOSE_R_CRIT_UNSUPPORTED;
}

/* Reads an optional string parameter; refuses other JSON types and NUL bytes. */
static jose_reason_e jws_header_string(const proto_json_t *hdr, const char *name, size_t max_len,
                                       proto_str_t *out, int *present)
{
    const proto_json_t *v = proto_json_get(hdr, name);
    *present = 0;
    if (v == NULL) {
        return JOSE_OK;
    }
    if (v->type != PROTO_JSON_STRING || v->u.string.len > max_len ||
        proto_str_has_nul(v->u.string)) {
        return JOSE_R_BAD_HEADER_PARAM;
    }
    *out = v->u.string;
    *present = 1;
    return JOSE_OK;
}

static jose_reason_e jws_header_read(jose_jws_t *jws)
{
    const proto_json_t *hdr = jws->header;
    if (hdr->type != PROTO_JSON_OBJECT) {
        return JOSE_R_BAD_HEADER;
    }
    /* RFC 7515 §4.1.1: alg is required and case-sensitive. */
    const proto_json_t *alg = proto_json_get(hdr, "alg");
    if (alg == NULL) {
        return JOSE_R_ALG_MISSING;
    }
    if (alg->type != PROTO_JSON_STRING) {
        return JOSE_R_BAD_HEADER_PARAM;
    }
    /* RFC 8725 §3.1 / §2.1: "none" is refused in every spelling, before anything else. */
    if (jose_alg_is_none(alg->u.string)) {
        return JOSE_R_ALG_NONE;
    }
    jws->alg = jose_alg_from_name(alg->u.string);
    if (jws->alg == JOSE_ALG_UNKNOWN) {
        return JOSE_R_ALG_UNSUPPORTED;
    }
    jose_reason_e r = jws_header_check_crit(hdr);
    if (r != JOSE_OK) {
        return r;
    }
    r = jws_header_string(hdr, "kid", JWK_MAX_KID_BYTES, &jws->kid, &jws->has_kid);
    if (r != JOSE_OK) {
        return r;
    }
    /* jwk, jku, x5u, x5c, x5t (RFC 7515 §4.1.2-4.1.7) are deliberately not read: keys come only
     * from configuration, never from the token they would vouch for. */
    return jws_header_string(hdr, "typ", JOSE_MAX_HEADER_BYTES, &jws->typ, &jws->has_typ);
}

jose_reason_e jose_jws_parse(apr_pool_t *p, proto_str_t token, size_t max_token_bytes,
                             jose_jws_t **out)
{
    *out = NULL;
    if (token.len > max_token_bytes) {
        return JOSE_R_TOKEN_TOO_LARGE;
    }
    proto_str_t part[JOSE_COMPACT_PARTS];
    if (jws_split(token, part, JOSE_COMPACT_PARTS) != JOSE_COMPACT_PARTS || part[0].len == 0) {
        return JOSE_R_MALFORMED;
    }
    jose_jws_t *jws = apr_pcalloc(p, sizeof(*jws));
    unsigned char *hdr_bytes;
    size_t hdr_len;
    if (jose_b64url_decode(p, part[0], JOSE_MAX_HEADER_BYTES, &hdr_bytes, &hdr_len) != 0) {
        /* Over the header bound or not base64url: either way not a header we read. */
        return jose_b64url_valid(part[0]) ? JOSE_R_BAD_HEADER : JOSE_R_BAD_BASE64;
    }
    unsigned char *payload, *sig;
    if (jose_b64url_decode(p, part[1], max_token_bytes, &payload, &jws->payload_len) != 0) {
        return JOSE_R_BAD_BASE64;
    }
    /* No algorithm here has a signature past JOSE_MAX_SIGNATURE_BYTES (RSA-8192): a longer one
     * cannot verify, whatever its bytes. */
    if (jose_b64url_decode(p, part[2], JOSE_MAX_SIGNATURE_BYTES, &sig, &jws->signature_len) != 0) {
        return jose_b64url_valid(part[2]) ? JOSE_R_BAD_SIGNATURE : JOSE_R_BAD_BASE64;
    }
    jws->payload = payload;
    jws->signature = sig;
    jws->signing_input.ptr = token.ptr;
    jws->signing_input.len = part[0].len + 1 + part[1].len;

    proto_json_t *hdr;
    proto_json_status_e st = jose_json_read(p, (const char *)hdr_bytes, hdr_len, &hdr, NULL);
    if (st != PROTO_JSON_OK) {
        return jws_reason_of_json(st, JOSE_R_BAD_HEADER);
    }
    jws->header = hdr;
    jose_reason_e r = jws_header_read(jws);
    if (r != JOSE_OK) {
        return r;
    }
    *out = jws;
    return JOSE_OK;
}

static jose_reason_e jws_verify_with(const jose_jws_t *jws, const jose_jwk_t *key)
{
    switch (jose_sig_verify(jws->alg, key, (const unsigned char *)jws->signing_input.ptr,
                            jws->signing_input.len, jws->signature, jws->signature_len)) {
    case JOSE_SIG_VALID:
        return JOSE_OK;
    case JOSE_SIG_INVALID:
        return JOSE_R_BAD_SIGNATURE;
    case JOSE_SIG_KEY_MISMATCH:
        return JOSE_R_NO_MATCHING_KEY;
    case JOSE_SIG_ERROR:
        break;
    }
    return JOSE_E_INTERNAL;
}

jose_reason_e jose_jws_verify(const jose_jws_t *jws, const jose_jwks_t *keys,
                              jose_alg_set_t allowed, const jose_jwk_t **used)
{
    if (used) {
        *used = NULL;
    }
    if (!(allowed & JOSE_ALG_BIT(jws->alg))) {
        return JOSE_R_ALG_NOT_ALLOWED;
    }
    if (keys == NULL || keys->nkeys == 0) {
        return JOSE_E_NO_KEYS;
    }
    /* With a kid, the kid alone picks the key (key sets refuse duplicate kids); the key must
     * still accept this alg, so a kid cannot steer an HS256 token onto an RSA key. Without a
     * kid, every key that accepts the alg is tried: bounded by JWKS_MAX_KEYS. */
    int kid_found = 0, alg_ok = 0;
    jose_reason_e last = JOSE_R_BAD_SIGNATURE;
    for (size_t i = 0; i < keys->nkeys; i++) {
        const jose_jwk_t *key = keys->keys[i];
        if (jws->has_kid) {
            if (!key->has_kid || !proto_str_eq(key->kid, jws->kid)) {
                continue;
            }
            kid_found = 1;
        }
        if (!(key->algs & JOSE_ALG_BIT(jws->alg))) {
            continue;
        }
        alg_ok = 1;
        last = jws_verify_with(jws, key);
        if (last == JOSE_OK) {
            if (used) {
                *used = key;
            }
            return JOSE_OK;
        }
        if (last == JOSE_E_INTERNAL) {
            return last;
        }
    }
    if (jws->has_kid && !kid_found) {
        return JOSE_R_UNKNOWN_KID;
    }
    if (!alg_ok) {
        return JOSE_R_NO_MATCHING_KEY;
    }
    return last;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static proto_str_t typ_strip_application(proto_str_t t)
{
    static const char prefix[] = "application/";
    size_t n = sizeof(prefix) - 1;
    if (t.len > n) {
        for (size_t i = 0; i < n; i++) {
            if (ascii_lower((unsigned char)t.ptr[i]) != prefix[i]) {
                return t;
            }
        }
        t.ptr += n;
        t.len -= n;
    }
    return t;
}

int jose_jws_typ_matches(proto_str_t typ, proto_str_t required)
{
    typ = typ_strip_application(typ);
    required = typ_strip_application(required);
    if (typ.len != required.len) {
        return 0;
    }
    for (size_t i = 0; i < typ.len; i++) {
        if (ascii_lower((unsigned char)typ.ptr[i]) != ascii_lower((unsigned char)required.ptr[i])) {
            return 0;
        }
    }
    return 1;
}
