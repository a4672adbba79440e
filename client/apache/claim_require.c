/* `Require jwtauthz-claim NAME VALUE [VALUE...]`: an httpd 2.4 authz provider that grants when the
 * context of the daemon's ALLOW reply holds claim NAME with one of the VALUEs. It only reads what
 * decision.c left on the request; it never asks the daemon, and without an ALLOW from this
 * module (another AuthType, no decision) it never grants. */
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_request.h>
#include <mod_auth.h>
#include <yajl/yajl_tree.h>

#include "mod_jwtauthz.h"

typedef struct claim_require {
    const char *name;
    apr_array_header_t *values; /* const char *: any one of them grants */
} claim_require_t;

/* Parsed once, at config time, as mod_authz_user parses `Require user`: words as httpd splits
 * them (ap_getword_conf: quotes group words with spaces). */
static const char *claim_require_parse(cmd_parms *cmd, const char *require_line,
                                       const void **parsed)
{
    claim_require_t *req = apr_pcalloc(cmd->pool, sizeof(*req));
    const char *line = require_line;

    req->name = ap_getword_conf(cmd->pool, &line);
    req->values = apr_array_make(cmd->pool, 2, sizeof(const char *));
    while (*line != '\0') {
        const char *word = ap_getword_conf(cmd->pool, &line);
        if (*word != '\0') {
            *(const char **)apr_array_push(req->values) = word;
        }
    }
    if (*req->name == '\0' || req->values->nelts == 0) {
        return "Require jwtauthz-claim takes a claim name and at least one value";
    }
    *parsed = req;
    return NULL;
}

static int claim_value_wanted(const claim_require_t *req, const char *s, size_t len)
{
    for (int i = 0; i < req->values->nelts; i++) {
        const char *want = APR_ARRAY_IDX(req->values, i, const char *);
        if (strlen(want) == len && memcmp(want, s, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* 1 when text is one flat JSON array: no '[' or '{' after the first byte outside strings, and no
 * escaped NUL (yajl_tree's C strings would end there and "adm\u0000x" would read as "adm").
 * The flat shape also bounds yajl_tree_free()'s recursion. */
static int claim_text_is_flat_array(const char *text)
{
    int in_string = 0;

    if (text[0] != '[') {
        return 0;
    }
    for (const char *c = text + 1; *c; c++) {
        if (in_string) {
            if (*c == '\\') {
                if (strncmp(c + 1, "u0000", 5) == 0) {
                    return 0;
                }
                if (c[1] != '\0') {
                    c++;
                }
            } else if (*c == '"') {
                in_string = 0;
            }
        } else if (*c == '"') {
            in_string = 1;
        } else if (*c == '[' || *c == '{') {
            return 0;
        }
    }
    return 1;
}

/* Array claims (groups, roles, scp) reach the context as their JSON text: '["admin","ops"]'
 * (jwtauthz.h, jwtauthz_reply_context_at). Grants when an element is wanted; numbers and
 * booleans compare by their JSON text. */
static int claim_array_holds(const claim_require_t *req, const char *text)
{
    char err[64];
    int found = 0;

    if (!claim_text_is_flat_array(text)) {
        return 0;
    }
    yajl_val tree = yajl_tree_parse(text, err, sizeof(err));
    if (!YAJL_IS_ARRAY(tree)) {
        yajl_tree_free(tree);
        return 0;
    }
    for (size_t i = 0; i < tree->u.array.len && !found; i++) {
        yajl_val v = tree->u.array.values[i];
        const char *s = YAJL_IS_STRING(v)   ? YAJL_GET_STRING(v)
                        : YAJL_IS_NUMBER(v) ? YAJL_GET_NUMBER(v)
                        : YAJL_IS_TRUE(v)   ? "true"
                        : YAJL_IS_FALSE(v)  ? "false"
                                            : NULL;
        found = s != NULL && claim_value_wanted(req, s, strlen(s));
    }
    yajl_tree_free(tree);
    return found;
}

/* RFC 6749 §3.3 (and RFC 9068 §2.2.3 for JWT access tokens): a scope claim is a list of
 * space-delimited, case-sensitive strings, so `Require jwtauthz-claim scope orders:read` means
 * "among the scopes". Other string claims compare whole: "John Admin" is not "Admin". */
static int claim_scope_holds(const claim_require_t *req, const char *text)
{
    const char *p = text;

    while (*p) {
        size_t len = strcspn(p, " ");
        if (len > 0 && claim_value_wanted(req, p, len)) {
            return 1;
        }
        p += len;
        p += strspn(p, " ");
    }
    return 0;
}

static int claim_matches(const claim_require_t *req, const char *value)
{
    if (claim_value_wanted(req, value, strlen(value))) {
        return 1;
    }
    if (claim_array_holds(req, value)) {
        return 1;
    }
    return (strcmp(req->name, "scope") == 0 || strcmp(req->name, "scp") == 0) &&
           claim_scope_holds(req, value);
}

static authz_status claim_require_check(request_rec *r, const char *require_line,
                                        const void *parsed)
{
    const claim_require_t *req = parsed;
    (void)require_line;

    /* No user yet: tell mod_authz_core to run authentication (AuthType jwtauthz) first. */
    if (r->user == NULL) {
        return AUTHZ_DENIED_NO_USER;
    }
    const jwtauthz_note_t *note = decision_note_get(r);
    if (note == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "jwtauthz: Require jwtauthz-claim needs AuthType jwtauthz; user \"%s\" was "
                      "authenticated some other way, denying",
                      r->user);
        return AUTHZ_DENIED;
    }
    const char *value = apr_hash_get(note->context, req->name, APR_HASH_KEY_STRING);
    if (value != NULL && claim_matches(req, value)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "jwtauthz: Require jwtauthz-claim %s: granted to \"%s\"", req->name, r->user);
        return AUTHZ_GRANTED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "jwtauthz: Require jwtauthz-claim %s: \"%s\" %s",
                  req->name, r->user,
                  value ? "holds none of the required values"
                        : "has no such claim in the daemon's context (see context_claims)");
    return AUTHZ_DENIED;
}

static const authz_provider claim_require_provider = {
    &claim_require_check,
    &claim_require_parse,
};

void claim_require_register(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "jwtauthz-claim", AUTHZ_PROVIDER_VERSION,
                              &claim_require_provider, AP_AUTH_INTERNAL_PER_CONF);
}
