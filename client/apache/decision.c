/* AuthType jwtauthz: one REQUEST-type decision per request from jwtauthzd, and its verdict turned
 * into what httpd and the application see (r->user, JWTAUTHZ_* variables, 401/403/500/503).
 * Every path that is not an ALLOW from the daemon ends in a refusal: an unreachable daemon is
 * 503, never a pass. The token is never logged; only the daemon's reason code and message are. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "bearer_challenge.h"
#include "mod_jwtauthz.h"

/* Environment variable names: JWTAUTHZ_CTX_<KEY> for each context entry (CONTRACT "Web
 * servers"), JWTAUTHZ_PRINCIPAL for principalId. */
#define DECISION_ENV_PRINCIPAL "JWTAUTHZ_PRINCIPAL"
#define DECISION_ENV_CTX_PREFIX "JWTAUTHZ_CTX_"

/* Headers the daemon reads a token from (daemon/token_source.c): Authorization, else the
 * configured cookie. One of them is sent, never both (decision_request_build). */
#define DECISION_MAX_HEADERS 1

int decision_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned char c = *p;
        size_t n;
        unsigned int cp, min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1fu, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0fu, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= n) {
            return 0;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        /* RFC 3629 §3: overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        p += n + 1;
    }
    return 1;
}

const jwtauthz_note_t *decision_note_get(const request_rec *r)
{
    return ap_get_module_config(r->request_config, &jwtauthz_module);
}

static jwtauthz_str_t decision_str(const char *s)
{
    jwtauthz_str_t v = {s, s ? strlen(s) : 0};
    return v;
}

/* queryStringParameters from r->args, each name and value decoded as a form field is
 * (ap_unescape_urlencoded: "+" is a space). A pair whose escapes do not decode, or decode to a
 * NUL, travels as sent: the daemon then sees the bytes the client sent, never a shortened
 * value. */
static apr_array_header_t *decision_query_pairs(request_rec *r)
{
    apr_array_header_t *pairs = apr_array_make(r->pool, 4, sizeof(jwtauthz_pair_t));
    char *state = NULL;

    if (r->args == NULL) {
        return pairs;
    }
    for (char *field = apr_strtok(apr_pstrdup(r->pool, r->args), "&", &state); field != NULL;
         field = apr_strtok(NULL, "&", &state)) {
        char *eq = strchr(field, '=');
        const char *raw[2] = {field, eq ? eq + 1 : ""};
        jwtauthz_str_t decoded[2];
        if (eq) {
            *eq = '\0';
        }
        for (int i = 0; i < 2; i++) {
            char *copy = apr_pstrdup(r->pool, raw[i]);
            decoded[i] = decision_str(ap_unescape_urlencoded(copy) == OK ? copy : raw[i]);
        }
        jwtauthz_pair_t *pair = apr_array_push(pairs);
        pair->name = decoded[0];
        pair->value = decoded[1];
    }
    return pairs;
}

/* The decision request for r. The daemon takes the token from Authorization when there is one
 * (daemon/token_source.c), so then nothing else is sent: no cookies, no query string. Without
 * it, the Cookie header and the query string go, for a configured token_cookie / token_query. */
static void decision_request_build(request_rec *r, const char *method_arn, jwtauthz_request_t *req,
                                   jwtauthz_pair_t *headers)
{
    const char *authorization = apr_table_get(r->headers_in, "Authorization");

    memset(req, 0, sizeof(*req));
    req->method_arn = decision_str(method_arn);
    req->http_method = decision_str(r->method);
    req->path = decision_str(r->uri);
    req->source_ip = decision_str(r->useragent_ip);
    req->headers = headers;
    if (authorization != NULL) {
        headers[0].name = decision_str("Authorization");
        headers[0].value = decision_str(authorization);
        req->header_count = 1;
        return;
    }
    const char *cookie = apr_table_get(r->headers_in, "Cookie");
    if (cookie != NULL) {
        headers[0].name = decision_str("Cookie");
        headers[0].value = decision_str(cookie);
        req->header_count = 1;
    }
    apr_array_header_t *query = decision_query_pairs(r);
    req->query = (const jwtauthz_pair_t *)query->elts;
    req->query_count = (size_t)query->nelts;
}

/* Context keys become variable names: uppercased, anything but [A-Z0-9] as "_", as httpd itself
 * renames HTTP headers into HTTP_* variables. Two keys that map to one name: the later wins. */
static char *decision_env_name(apr_pool_t *p, const char *key)
{
    char *name = apr_pstrcat(p, DECISION_ENV_CTX_PREFIX, key, NULL);

    for (char *c = name + sizeof(DECISION_ENV_CTX_PREFIX) - 1; *c; c++) {
        *c = apr_isalnum(*c) ? (char)apr_toupper(*c) : '_';
    }
    return name;
}

/* A value for the environment: control bytes become "?", so a claim cannot smuggle a line
 * break into a CGI environment or a header built from %{...}e. r->user keeps the exact value. */
static char *decision_env_value(apr_pool_t *p, const char *value)
{
    char *v = apr_pstrdup(p, value);

    for (unsigned char *c = (unsigned char *)v; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            *c = '?';
        }
    }
    return v;
}

static int decision_allow(request_rec *r, const jwtauthz_reply_t *reply, const char *arn)
{
    const char *principal = jwtauthz_reply_principal(reply);

    /* An API Gateway authorizer reply without principalId is malformed; the user would be
     * anonymous and Require valid-user would still pass. Refuse it. */
    if (principal == NULL || *principal == '\0') {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "jwtauthz: ALLOW without principalId for %s; refusing (500)", arn);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    jwtauthz_note_t *note = apr_pcalloc(r->pool, sizeof(*note));
    note->principal = apr_pstrdup(r->pool, principal);
    note->context = apr_hash_make(r->pool);
    r->user = (char *)note->principal;
    apr_table_setn(r->subprocess_env, DECISION_ENV_PRINCIPAL,
                   decision_env_value(r->pool, principal));

    size_t n = jwtauthz_reply_context_count(reply);
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL, *value = NULL;
        if (!jwtauthz_reply_context_at(reply, i, &key, &value) || key == NULL || *key == '\0' ||
            value == NULL) {
            continue;
        }
        const char *k = apr_pstrdup(r->pool, key), *v = apr_pstrdup(r->pool, value);
        apr_hash_set(note->context, k, APR_HASH_KEY_STRING, v);
        apr_table_setn(r->subprocess_env, decision_env_name(r->pool, k),
                       decision_env_value(r->pool, v));
    }
    ap_set_module_config(r->request_config, &jwtauthz_module, note);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "jwtauthz: ALLOW %s for principal \"%s\"%s", arn,
                  principal, jwtauthz_reply_cached(reply) ? " (cached)" : "");
    return OK;
}

static const char *decision_reason(const jwtauthz_reply_t *reply)
{
    const char *reason = jwtauthz_reply_reason(reply);
    return reason ? reason : "-";
}

static const char *decision_message(const jwtauthz_reply_t *reply)
{
    const char *message = jwtauthz_reply_message(reply);
    return message ? message : "";
}

static int decision_refuse_token(request_rec *r, const jwtauthz_reply_t *reply, const char *arn)
{
    const char *reason = jwtauthz_reply_reason(reply), *message = jwtauthz_reply_message(reply);
    /* RFC 6750 §3.1: a request that lacks any authentication information gets the challenge
     * without an error code; every other refusal is about the token it sent. */
    int missing = reason != NULL && strcmp(reason, "token_missing") == 0;

    if (missing) {
        bearer_challenge_set(r, NULL, NULL);
    } else {
        const char *description = reason && message
                                      ? apr_pstrcat(r->pool, reason, ": ", message, NULL)
                                      : (reason ? reason : message);
        bearer_challenge_set(r, BEARER_ERROR_INVALID_TOKEN, description);
    }
    ap_log_rerror(APLOG_MARK, missing ? APLOG_DEBUG : APLOG_INFO, 0, r,
                  "jwtauthz: UNAUTHORIZED %s: %s %s", arn, decision_reason(reply),
                  decision_message(reply));
    return HTTP_UNAUTHORIZED;
}

static int decision_apply(request_rec *r, jwtauthz_verdict_t verdict, const jwtauthz_reply_t *reply,
                          const char *arn, const char *socket_path)
{
    switch (verdict) {
    case JWTAUTHZ_ALLOW:
        return decision_allow(r, reply, arn);
    case JWTAUTHZ_DENY: {
        const char *principal = jwtauthz_reply_principal(reply);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "jwtauthz: DENY %s for principal \"%s\"", arn,
                      principal ? principal : "-");
        return HTTP_FORBIDDEN;
    }
    case JWTAUTHZ_UNAUTHORIZED:
        return decision_refuse_token(r, reply, arn);
    case JWTAUTHZ_ERROR:
    default:
        break;
    }
    /* Fail closed (CONTRACT "Web servers"): 500 when the daemon (or the library) says the fault is
     * internal, 503 for everything else, which includes "no daemon there". */
    int status =
        jwtauthz_reply_status(reply) == 500 ? HTTP_INTERNAL_SERVER_ERROR : HTTP_SERVICE_UNAVAILABLE;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "jwtauthz: ERROR %s via %s: %s %s; answering %d",
                  arn, socket_path, decision_reason(reply), decision_message(reply), status);
    return status;
}

int decision_check_user_id(request_rec *r)
{
    const char *type = ap_auth_type(r);

    if (type == NULL || ap_cstr_casecmp(type, JWTAUTHZ_AUTH_TYPE) != 0) {
        return DECLINED;
    }
    /* As mod_auth_basic does: AUTH_TYPE for CGI and %{AUTH_TYPE} come from here. */
    r->ap_auth_type = (char *)type;

    const jwtauthz_dirconf_t *conf = ap_get_module_config(r->per_dir_config, &jwtauthz_module);
    const char *socket_path = dirconf_socket_path(conf);

    /* r->uri is the decoded, normalised path httpd matched <Location> against: the policy sees
     * the same resource httpd's own access control does, so "/adm%69n" cannot slip past a rule
     * written for "/admin". Bytes that are not UTF-8 cannot go into a methodArn at all. */
    if (!decision_utf8_valid(r->method, strlen(r->method)) ||
        !decision_utf8_valid(r->uri, strlen(r->uri))) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "jwtauthz: the request path is not UTF-8; refusing (400)");
        return HTTP_BAD_REQUEST;
    }
    const char *arn =
        apr_pstrcat(r->pool, dirconf_resource_prefix(conf), "/", r->method, r->uri, NULL);

    jwtauthz_pair_t headers[DECISION_MAX_HEADERS];
    jwtauthz_request_t req;
    decision_request_build(r, arn, &req, headers);

    jwtauthz_client_t *client = thread_client_get(r, socket_path, dirconf_timeout_ms(conf));
    if (client == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "jwtauthz: out of memory for a client of %s; refusing (500)", socket_path);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    jwtauthz_reply_t *reply = NULL;
    jwtauthz_verdict_t verdict = jwtauthz_check_request(client, &req, &reply);
    int status = decision_apply(r, verdict, reply, arn, socket_path);
    jwtauthz_reply_free(reply);
    return status;
}

int decision_note_auth_failure(request_rec *r, const char *auth_type)
{
    if (auth_type == NULL || ap_cstr_casecmp(auth_type, JWTAUTHZ_AUTH_TYPE) != 0) {
        return DECLINED;
    }
    /* mod_authz_core calls this when a user we authenticated fails a Require: the token is good
     * but does not grant this resource. RFC 6750 §3.1 names that insufficient_scope. */
    if (r->user != NULL && decision_note_get(r) != NULL) {
        bearer_challenge_set(r, BEARER_ERROR_INSUFFICIENT_SCOPE,
                             "the token does not meet this resource's Require lines");
    } else {
        bearer_challenge_set(r, NULL, NULL);
    }
    return OK;
}
