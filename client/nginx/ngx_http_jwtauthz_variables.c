/* ngx_http_jwtauthz_module's variables: $jwtauthz_principal and $jwtauthz_ctx_<key> (the
 * principalId and context of an ALLOW), $jwtauthz_verdict and $jwtauthz_reason (for logs).
 * They only read the request's decision; they never ask the daemon, and a value that could
 * split a header when passed on with proxy_set_header is withheld rather than altered. */
#include "ngx_http_jwtauthz_module.h"

/* The prefix of $jwtauthz_ctx_<key>, a prefix variable as $http_<name> and $arg_<name> are. */
#define NGX_HTTP_JWTAUTHZ_CTX_PREFIX "jwtauthz_ctx_"

static ngx_int_t ngx_http_jwtauthz_principal_variable(ngx_http_request_t *r,
                                                      ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtauthz_context_variable(ngx_http_request_t *r,
                                                    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtauthz_verdict_variable(ngx_http_request_t *r,
                                                    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtauthz_reason_variable(ngx_http_request_t *r,
                                                   ngx_http_variable_value_t *v, uintptr_t data);

/* Not cacheable: a value read before the decision (a "set" in the rewrite phase) must not stick,
 * and an internal redirect may bring a new decision. */
static ngx_http_variable_t ngx_http_jwtauthz_vars[] = {
    {ngx_string("jwtauthz_principal"), NULL, ngx_http_jwtauthz_principal_variable, 0,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string(NGX_HTTP_JWTAUTHZ_CTX_PREFIX), NULL, ngx_http_jwtauthz_context_variable, 0,
     NGX_HTTP_VAR_NOCACHEABLE | NGX_HTTP_VAR_PREFIX, 0},
    {ngx_string("jwtauthz_verdict"), NULL, ngx_http_jwtauthz_verdict_variable, 0,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("jwtauthz_reason"), NULL, ngx_http_jwtauthz_reason_variable, 0,
     NGX_HTTP_VAR_NOCACHEABLE, 0},
    ngx_http_null_variable};

ngx_int_t ngx_http_jwtauthz_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t *var, *v;

    for (v = ngx_http_jwtauthz_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }
        var->get_handler = v->get_handler;
        var->data = v->data;
    }
    return NGX_OK;
}

/* RFC 9110 §5.5: a field value holds no control characters but HTAB. A claim that does (a "name"
 * with CR LF in it) would add headers of its own when passed to a backend, so it is withheld. */
static ngx_uint_t ngx_http_jwtauthz_is_field_safe(ngx_str_t *s)
{
    size_t i;

    for (i = 0; i < s->len; i++) {
        if ((s->data[i] < 0x20 && s->data[i] != '\t') || s->data[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static ngx_int_t ngx_http_jwtauthz_set_value(ngx_http_request_t *r, ngx_http_variable_value_t *v,
                                             ngx_str_t *s, const char *what)
{
    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }
    if (!ngx_http_jwtauthz_is_field_safe(s)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "jwtauthz: %s holds control characters, not exposed", what);
        v->not_found = 1;
        return NGX_OK;
    }
    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    return NGX_OK;
}

/* The decision of r when there is a finished one, else NULL. */
static ngx_http_jwtauthz_ctx_t *ngx_http_jwtauthz_decided(ngx_http_request_t *r)
{
    ngx_http_jwtauthz_ctx_t *ctx = ngx_http_jwtauthz_ctx_find(r);

    return ctx != NULL && ctx->done ? ctx : NULL;
}

static ngx_int_t ngx_http_jwtauthz_principal_variable(ngx_http_request_t *r,
                                                      ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_jwtauthz_ctx_t *ctx = ngx_http_jwtauthz_decided(r);

    if (ctx == NULL || ctx->verdict != JWTAUTHZ_ALLOW) {
        v->not_found = 1;
        return NGX_OK;
    }
    return ngx_http_jwtauthz_set_value(r, v, &ctx->principal, "principalId");
}

/* data is the variable's whole name (nginx passes &name for prefix variables), lowercase as
 * nginx keeps every variable name; context keys are matched ignoring case, first one wins. */
static ngx_int_t ngx_http_jwtauthz_context_variable(ngx_http_request_t *r,
                                                    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *)data;
    ngx_str_t key;
    ngx_uint_t i;
    ngx_keyval_t *kv;
    ngx_http_jwtauthz_ctx_t *ctx = ngx_http_jwtauthz_decided(r);

    v->not_found = 1;
    if (ctx == NULL || ctx->verdict != JWTAUTHZ_ALLOW || ctx->context == NULL) {
        return NGX_OK;
    }
    key.data = name->data + sizeof(NGX_HTTP_JWTAUTHZ_CTX_PREFIX) - 1;
    key.len = name->len - (sizeof(NGX_HTTP_JWTAUTHZ_CTX_PREFIX) - 1);
    kv = ctx->context->elts;
    for (i = 0; i < ctx->context->nelts; i++) {
        if (kv[i].key.len == key.len && ngx_strncasecmp(kv[i].key.data, key.data, key.len) == 0) {
            return ngx_http_jwtauthz_set_value(r, v, &kv[i].value, "a context value");
        }
    }
    return NGX_OK;
}

static ngx_int_t ngx_http_jwtauthz_verdict_variable(ngx_http_request_t *r,
                                                    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t name;
    ngx_http_jwtauthz_ctx_t *ctx = ngx_http_jwtauthz_decided(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }
    name.data = (u_char *)jwtauthz_verdict_name(ctx->verdict);
    name.len = ngx_strlen(name.data);
    return ngx_http_jwtauthz_set_value(r, v, &name, "verdict");
}

static ngx_int_t ngx_http_jwtauthz_reason_variable(ngx_http_request_t *r,
                                                   ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_jwtauthz_ctx_t *ctx = ngx_http_jwtauthz_decided(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }
    return ngx_http_jwtauthz_set_value(r, v, &ctx->reason, "reason");
}
