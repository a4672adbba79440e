/* WWW-Authenticate: Bearer challenges (RFC 6750 §3). Text from outside the module (AuthName, the
 * daemon's reason and message) is made safe for its quoted-string here: nothing may end the
 * string early or start a new header line. */
#include "bearer_challenge.h"

#include <string.h>

#include <apr_strings.h>
#include <http_core.h>

/* error_description is for people reading logs and debuggers; the daemon's messages are short
 * sentences. Longer text is cut rather than letting a header grow with its input. */
#define BEARER_DESCRIPTION_MAX_BYTES 256

/* RFC 7235 §2.2 auth-param values as RFC 7230 §3.2.6 quoted-strings: '"' and '\' escaped with a
 * backslash; control bytes (never valid in a header field value) become spaces. */
static const char *bearer_quote_realm(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, 2 * strlen(s) + 1), *o = out;

    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        } else {
            *o++ = (*c < 0x20 || *c == 0x7f) ? ' ' : (char)*c;
        }
    }
    *o = '\0';
    return out;
}

/* RFC 6750 §3: error_description "MUST NOT include characters outside the set %x20-21 /
 * %x23-5B / %x5D-7E", so '"' and '\' cannot even be escaped: '"' becomes "'", '\' becomes '/',
 * and any other byte outside the set '?'. */
static const char *bearer_description_text(apr_pool_t *p, const char *s)
{
    size_t len = strlen(s);
    if (len > BEARER_DESCRIPTION_MAX_BYTES) {
        len = BEARER_DESCRIPTION_MAX_BYTES;
    }
    char *out = apr_pstrmemdup(p, s, len);

    for (unsigned char *c = (unsigned char *)out; *c; c++) {
        if (*c == '"') {
            *c = '\'';
        } else if (*c == '\\') {
            *c = '/';
        } else if (*c < 0x20 || *c > 0x7e) {
            *c = '?';
        }
    }
    return out;
}

void bearer_challenge_set(request_rec *r, const char *error, const char *description)
{
    const char *realm = ap_auth_name(r);
    const char *value = "Bearer";
    const char *sep = " ";

    if (realm != NULL) {
        value = apr_pstrcat(r->pool, value, sep, "realm=\"", bearer_quote_realm(r->pool, realm),
                            "\"", NULL);
        sep = ", ";
    }
    if (error != NULL) {
        /* The error codes are RFC 6750's own tokens: no quoting needed beyond the quotes. */
        value = apr_pstrcat(r->pool, value, sep, "error=\"", error, "\"", NULL);
        sep = ", ";
        if (description != NULL && *description != '\0') {
            value = apr_pstrcat(r->pool, value, sep, "error_description=\"",
                                bearer_description_text(r->pool, description), "\"", NULL);
        }
    }
    apr_table_setn(r->err_headers_out, "WWW-Authenticate", value);
}
