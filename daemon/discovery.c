/* OpenID Connect Discovery 1.0: the document's URL and the checks on what comes back. Pure: the
 * document arrives as bytes already capped at DISCOVERY_MAX_BYTES by the fetcher; nothing here
 * does I/O or trusts a value it has not checked. */
#include "daemon/discovery.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jose/pool.h"
#include "proto/json.h"
#include "proto/limits.h"

static int set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", msg);
    }
    return -1;
}

int discovery_url_is_https(proto_str_t url, size_t max_len)
{
    static const char scheme[] = "https://";
    const size_t slen = sizeof(scheme) - 1;
    if (url.ptr == NULL || url.len <= slen || url.len > max_len) {
        return 0;
    }
    for (size_t i = 0; i < slen; i++) {
        char c = url.ptr[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != scheme[i]) {
            return 0;
        }
    }
    for (size_t i = 0; i < url.len; i++) {
        unsigned char c = (unsigned char)url.ptr[i];
        /* Space, controls, NUL, DEL and raw non-ASCII have no place in a URL (RFC 3986 §2);
         * '#' would end the request target early; '\\' is read as '/' by some parsers. */
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '\\') {
            return 0;
        }
    }
    /* The authority runs to the first '/', '?' (RFC 3986 §3.2): non-empty, and no userinfo, whose
     * "https://idp.example@evil.example/" spelling is a classic way to confuse a reader. */
    size_t end = slen;
    while (end < url.len && url.ptr[end] != '/' && url.ptr[end] != '?') {
        if (url.ptr[end] == '@') {
            return 0;
        }
        end++;
    }
    return end > slen;
}

int discovery_url_build(proto_str_t issuer, char *out, size_t outlen)
{
    static const char well_known[] = DISCOVERY_WELL_KNOWN_PATH;
    size_t n = issuer.len;
    if (!discovery_url_is_https(issuer, SIZE_MAX)) {
        return -1;
    }
    /* Discovery §4: "If the Issuer value contains a path component, any terminating / MUST be
     * removed before appending /.well-known/openid-configuration." One, not all. */
    if (n > 0 && issuer.ptr[n - 1] == '/') {
        n--;
    }
    if (outlen == 0 || n > outlen - 1 || sizeof(well_known) > outlen - n) {
        return -1;
    }
    memcpy(out, issuer.ptr, n);
    memcpy(out + n, well_known, sizeof(well_known));
    return 0;
}

apr_status_t discovery_read(apr_pool_t *scratch, const char *doc, size_t len, proto_str_t issuer,
                            char *jwks_uri, size_t jwks_uri_len, char *err, size_t errlen)
{
    proto_json_t *root = NULL;
    proto_json_error_t jerr;
    const proto_json_t *v;

    if (len > DISCOVERY_MAX_BYTES) {
        set_err(err, errlen, "discovery document over DISCOVERY_MAX_BYTES");
        return APR_EINVAL;
    }
    if (jose_json_read(scratch, doc, len, &root, &jerr) != PROTO_JSON_OK) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "discovery document is not JSON: %s at byte %zu", jerr.message,
                     jerr.offset);
        }
        return APR_EINVAL;
    }
    if (root->type != PROTO_JSON_OBJECT) {
        set_err(err, errlen, "discovery document is not a JSON object");
        return APR_EINVAL;
    }
    v = proto_json_get(root, "issuer");
    if (v == NULL || v->type != PROTO_JSON_STRING) {
        set_err(err, errlen, "discovery document has no \"issuer\" string");
        return APR_EINVAL;
    }
    /* Discovery §4.3: the returned issuer MUST be identical to the one the URL was built from;
     * no case folding, no trailing-slash leniency (RFC 7519 §4.1.1 compares iss the same way). */
    if (!proto_str_eq(v->u.string, issuer)) {
        set_err(err, errlen, "discovery document's \"issuer\" differs from the configured issuer");
        return APR_EINVAL;
    }
    v = proto_json_get(root, "jwks_uri");
    if (v == NULL || v->type != PROTO_JSON_STRING) {
        set_err(err, errlen, "discovery document has no \"jwks_uri\" string");
        return APR_EINVAL;
    }
    if (jwks_uri_len == 0 || !discovery_url_is_https(v->u.string, jwks_uri_len - 1)) {
        set_err(err, errlen, "discovery document's \"jwks_uri\" is not a usable https URL");
        return APR_EINVAL;
    }
    memcpy(jwks_uri, v->u.string.ptr, v->u.string.len);
    jwks_uri[v->u.string.len] = '\0';
    return APR_SUCCESS;
}
