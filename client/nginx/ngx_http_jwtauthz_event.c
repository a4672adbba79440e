/* ngx_http_jwtauthz_module: the decision request nginx sends, API Gateway's REQUEST-type
 * authorizer event (CONTRACT "Decision request") built from the parsed request — methodArn,
 * method, path, source address and the places a token may be in — and encoded into a frame in the
 * request's pool by libjwtauthz's sans-I/O codec. No I/O here, and no copy of the token besides
 * the frame itself (which the module wipes). */
#include "ngx_http_jwtauthz_module.h"

/* The frame is encoded into a first guess of this much per input byte, plus a fixed part for the
 * JSON around it; escaping rarely needs more, and when it does the codec says how much. */
#define NGX_HTTP_JWTAUTHZ_FRAME_GUESS_PER_BYTE 2
#define NGX_HTTP_JWTAUTHZ_FRAME_GUESS_FIXED 512

/* methodArn = prefix "/" METHOD PATH (CONTRACT "Web servers"). PATH is r->uri: decoded and
 * normalised ("..", "//" resolved) — the path nginx matched locations against — so no spelling
 * of a URL reaches a location under one resource and is decided under another. */
static ngx_int_t ngx_http_jwtauthz_method_arn(ngx_http_request_t *r, ngx_str_t *prefix,
                                              ngx_str_t *arn)
{
    u_char *p;

    arn->len = prefix->len + 1 + r->method_name.len + r->uri.len;
    arn->data = ngx_pnalloc(r->pool, arn->len);
    if (arn->data == NULL) {
        return NGX_ERROR;
    }
    p = ngx_cpymem(arn->data, prefix->data, prefix->len);
    *p++ = '/';
    p = ngx_cpymem(p, r->method_name.data, r->method_name.len);
    ngx_memcpy(p, r->uri.data, r->uri.len);
    return NGX_OK;
}

/* Whether h is one of the headers the daemon may read a token from: Authorization, or, when
 * want_cookie, Cookie (its token_cookie). Header names are case-insensitive (RFC 9110 §5.1). */
static ngx_uint_t ngx_http_jwtauthz_is_token_header(ngx_table_elt_t *h, ngx_uint_t want_cookie)
{
    if (h->key.len == sizeof("Authorization") - 1 &&
        ngx_strncasecmp(h->key.data, (u_char *)"Authorization", h->key.len) == 0) {
        return 1;
    }
    return want_cookie && h->key.len == sizeof("Cookie") - 1 &&
           ngx_strncasecmp(h->key.data, (u_char *)"Cookie", h->key.len) == 0;
}

/* The headers the daemon reads a token from, and nothing else: the Authorization header (nginx
 * refuses a request with two, 400), or, when there is none, the Cookie headers (the codec joins
 * them). Other headers would only make the frame larger — big enough, with large cookies, to pass
 * the daemon's max_frame_bytes — and send the daemon data it never reads. Sets *authorization
 * when there is an Authorization header. */
static ngx_int_t ngx_http_jwtauthz_headers(ngx_http_request_t *r, jwtauthz_pair_t **out,
                                           size_t *count, size_t *bytes, ngx_uint_t *authorization)
{
    ngx_uint_t i, n, pass, want_cookie;
    ngx_list_part_t *part;
    ngx_table_elt_t *h;
    jwtauthz_pair_t *pairs;

    *out = NULL;
    *count = 0;
    *authorization = r->headers_in.authorization != NULL;
    want_cookie = !*authorization;

    /* Two passes over the list: count, then fill an array of exactly that size. */
    pairs = NULL;
    for (pass = 0; pass < 2; pass++) {
        n = 0;
        for (part = &r->headers_in.headers.part; part; part = part->next) {
            h = part->elts;
            for (i = 0; i < part->nelts; i++) {
                if (!ngx_http_jwtauthz_is_token_header(&h[i], want_cookie)) {
                    continue;
                }
                if (pairs) {
                    pairs[n].name.ptr = (const char *)h[i].key.data;
                    pairs[n].name.len = h[i].key.len;
                    pairs[n].value.ptr = (const char *)h[i].value.data;
                    pairs[n].value.len = h[i].value.len;
                    *bytes += h[i].key.len + h[i].value.len + 8;
                }
                n++;
            }
        }
        if (n == 0) {
            return NGX_OK;
        }
        if (pairs == NULL) {
            pairs = ngx_palloc(r->pool, n * sizeof(jwtauthz_pair_t));
            if (pairs == NULL) {
                return NGX_ERROR;
            }
        }
    }
    *out = pairs;
    *count = n;
    return NGX_OK;
}

/* Percent-decodes s into a copy in r's pool, as API Gateway's queryStringParameters are. */
static ngx_int_t ngx_http_jwtauthz_unescape(ngx_http_request_t *r, u_char *s, size_t len,
                                            jwtauthz_str_t *out)
{
    u_char *dst, *src;

    dst = ngx_pnalloc(r->pool, len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }
    out->ptr = (const char *)dst;
    src = s;
    ngx_unescape_uri(&dst, &src, len, 0);
    out->len = dst - (u_char *)out->ptr;
    return NGX_OK;
}

/* The query string's name=value pairs (a name without "=" has an empty value; empty parts such
 * as "a=1&&b=2" are skipped). */
static ngx_int_t ngx_http_jwtauthz_query(ngx_http_request_t *r, jwtauthz_pair_t **out,
                                         size_t *count, size_t *bytes)
{
    u_char *p, *last, *amp, *eq;
    size_t n = 1;
    jwtauthz_pair_t *pairs;

    *out = NULL;
    *count = 0;
    if (r->args.len == 0) {
        return NGX_OK;
    }
    last = r->args.data + r->args.len;
    for (p = r->args.data; p < last; p++) {
        n += *p == '&';
    }
    pairs = ngx_palloc(r->pool, n * sizeof(jwtauthz_pair_t));
    if (pairs == NULL) {
        return NGX_ERROR;
    }
    n = 0;
    for (p = r->args.data; p < last; p = amp + 1) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }
        if (amp == p) {
            continue;
        }
        eq = ngx_strlchr(p, amp, '=');
        if (ngx_http_jwtauthz_unescape(r, p, (eq ? eq : amp) - p, &pairs[n].name) != NGX_OK ||
            ngx_http_jwtauthz_unescape(r, eq ? eq + 1 : amp, eq ? amp - eq - 1 : 0,
                                       &pairs[n].value) != NGX_OK) {
            return NGX_ERROR;
        }
        n++;
    }
    *bytes += r->args.len + 8 * n;
    *out = pairs;
    *count = n;
    return NGX_OK;
}

int ngx_http_jwtauthz_event_encode(ngx_http_request_t *r, ngx_http_jwtauthz_loc_conf_t *jlcf,
                                   ngx_str_t *id, ngx_str_t *out)
{
    int rc = JWTAUTHZ_E_NOMEM;
    size_t len, bytes = 0;
    ngx_uint_t attempt, authorization;
    ngx_str_t arn;
    u_char *buf;
    jwtauthz_str_t wire_id;
    jwtauthz_pair_t *headers, *query;
    jwtauthz_request_t req;

    ngx_memzero(&req, sizeof(jwtauthz_request_t));
    if (ngx_http_jwtauthz_method_arn(r, &jlcf->resource_prefix, &arn) != NGX_OK ||
        ngx_http_jwtauthz_headers(r, &headers, &req.header_count, &bytes, &authorization) !=
            NGX_OK) {
        return JWTAUTHZ_E_NOMEM;
    }
    /* With an Authorization header the daemon reads nothing else; without one, the query string
     * may hold the token (its token_query). */
    query = NULL;
    if (!authorization && ngx_http_jwtauthz_query(r, &query, &req.query_count, &bytes) != NGX_OK) {
        return JWTAUTHZ_E_NOMEM;
    }
    req.headers = headers;
    req.query = query;
    req.method_arn.ptr = (const char *)arn.data;
    req.method_arn.len = arn.len;
    req.http_method.ptr = (const char *)r->method_name.data;
    req.http_method.len = r->method_name.len;
    req.path.ptr = (const char *)r->uri.data;
    req.path.len = r->uri.len;
    /* The client's address as nginx sees it (after realip, when that module is configured). */
    req.source_ip.ptr = (const char *)r->connection->addr_text.data;
    req.source_ip.len = r->connection->addr_text.len;
    wire_id.ptr = id ? (const char *)id->data : NULL;
    wire_id.len = id ? id->len : 0;

    bytes += arn.len + r->uri.len + r->method_name.len + r->connection->addr_text.len;
    len = NGX_HTTP_JWTAUTHZ_FRAME_GUESS_FIXED + NGX_HTTP_JWTAUTHZ_FRAME_GUESS_PER_BYTE * bytes;

    /* The guess, then (on E_SPACE, which leaves the buffer untouched and says how much is
     * needed) the exact size. */
    for (attempt = 0; attempt < 2; attempt++) {
        buf = ngx_pnalloc(r->pool, len);
        if (buf == NULL) {
            return JWTAUTHZ_E_NOMEM;
        }
        rc = jwtauthz_encode_request(&req, wire_id, buf, len, &len);
        if (rc == JWTAUTHZ_OK) {
            out->data = buf;
            out->len = len;
            return JWTAUTHZ_OK;
        }
        if (rc != JWTAUTHZ_E_SPACE) {
            return rc;
        }
    }
    return rc == JWTAUTHZ_E_SPACE ? JWTAUTHZ_E_NOMEM : rc;
}
