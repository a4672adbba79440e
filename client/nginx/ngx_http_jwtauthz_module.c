/* ngx_http_jwtauthz_module: the module itself — its directives (CONTRACT.md "Web servers"), their
 * checks and merging, and the registration of the access-phase handler (_access.c) and the
 * variables (_variables.c). Configuration only: nothing here runs per request. */
#include "ngx_http_jwtauthz_module.h"

/* Used when jwtauthz_resource_prefix is not set: the API and stage of the contract's examples
 * (CONTRACT.md, "Decision request"), which rules written as arn:aws:execute-api:*:*:*... match. */
#define NGX_HTTP_JWTAUTHZ_DEFAULT_PREFIX "arn:aws:execute-api:local:0:api/prod"

static char *ngx_http_jwtauthz_socket(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_jwtauthz_resource_prefix(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_jwtauthz_timeout(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_jwtauthz_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_http_jwtauthz_peer_t *ngx_http_jwtauthz_peer_get(ngx_conf_t *cf, ngx_str_t *path);
static ngx_int_t ngx_http_jwtauthz_init(ngx_conf_t *cf);
static void *ngx_http_jwtauthz_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_jwtauthz_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_jwtauthz_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);

/* CONTRACT.md "Web servers": the four directives, valid in http, server and location; and the
 * opt-in decision cache (docs/nginx.md). */
static ngx_command_t ngx_http_jwtauthz_commands[] = {
    {ngx_string("jwtauthz"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG,
     ngx_conf_set_flag_slot, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_jwtauthz_loc_conf_t, enable), NULL},

    {ngx_string("jwtauthz_socket"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_http_jwtauthz_socket, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},

    {ngx_string("jwtauthz_resource_prefix"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_http_jwtauthz_resource_prefix, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_jwtauthz_loc_conf_t, resource_prefix), NULL},

    {ngx_string("jwtauthz_timeout"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     ngx_http_jwtauthz_timeout, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_jwtauthz_loc_conf_t, timeout), NULL},

    {ngx_string("jwtauthz_cache"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE123,
     ngx_http_jwtauthz_cache, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},

    ngx_null_command};

static ngx_http_module_t ngx_http_jwtauthz_module_ctx = {
    ngx_http_jwtauthz_add_variables,    /* preconfiguration */
    ngx_http_jwtauthz_init,             /* postconfiguration */
    ngx_http_jwtauthz_create_main_conf, /* create main configuration */
    NULL,                               /* init main configuration */
    NULL,                               /* create server configuration */
    NULL,                               /* merge server configuration */
    ngx_http_jwtauthz_create_loc_conf,  /* create location configuration */
    ngx_http_jwtauthz_merge_loc_conf    /* merge location configuration */
};

ngx_module_t ngx_http_jwtauthz_module = {
    NGX_MODULE_V1,
    &ngx_http_jwtauthz_module_ctx, /* module context */
    ngx_http_jwtauthz_commands,    /* module directives */
    NGX_HTTP_MODULE,               /* module type */
    NULL,                          /* init master */
    NULL,                          /* init module */
    NULL,                          /* init process */
    NULL,                          /* init thread */
    NULL,                          /* exit thread */
    NULL,                          /* exit process */
    NULL,                          /* exit master */
    NGX_MODULE_V1_PADDING,
};

static ngx_http_jwtauthz_peer_t *ngx_http_jwtauthz_peer_get(ngx_conf_t *cf, ngx_str_t *path)
{
    ngx_uint_t i;
    ngx_http_jwtauthz_peer_t *peer, **slot, **peers;
    ngx_http_jwtauthz_main_conf_t *jmcf;

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtauthz_module);
    peers = jmcf->peers.elts;
    for (i = 0; i < jmcf->peers.nelts; i++) {
        if (peers[i]->path.len == path->len &&
            ngx_strncmp(peers[i]->path.data, path->data, path->len) == 0) {
            return peers[i];
        }
    }

    peer = ngx_pcalloc(cf->pool, sizeof(ngx_http_jwtauthz_peer_t));
    slot = ngx_array_push(&jmcf->peers);
    if (peer == NULL || slot == NULL) {
        return NULL;
    }
    peer->path.data = ngx_pnalloc(cf->pool, path->len + 1);
    peer->name.data = ngx_pnalloc(cf->pool, sizeof("unix:") - 1 + path->len);
    if (peer->path.data == NULL || peer->name.data == NULL) {
        return NULL;
    }
    peer->path.len = path->len;
    *ngx_cpymem(peer->path.data, path->data, path->len) = '\0';
    peer->name.len = ngx_sprintf(peer->name.data, "unix:%V", path) - peer->name.data;

    peer->sockaddr.sun_family = AF_UNIX;
    ngx_memcpy(peer->sockaddr.sun_path, path->data, path->len);
    peer->socklen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path->len + 1);
    ngx_queue_init(&peer->idle);
    *slot = peer;
    return peer;
}

/* jwtauthz_socket PATH (or unix:PATH, as nginx writes socket addresses elsewhere). */
static char *ngx_http_jwtauthz_socket(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_jwtauthz_loc_conf_t *jlcf = conf;
    ngx_str_t *value, path;

    if (jlcf->peer != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }
    value = cf->args->elts;
    path = value[1];
    if (path.len > 5 && ngx_strncmp(path.data, "unix:", 5) == 0) {
        path.data += 5;
        path.len -= 5;
    }
    /* unix(7): sun_path holds the path and its terminating NUL. */
    if (path.len == 0 || path.len >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
        ngx_strlchr(path.data, path.data + path.len, '\0') != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "jwtauthz_socket \"%V\": not a Unix socket path of 1 to %uz bytes",
                           &value[1], sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return NGX_CONF_ERROR;
    }
    jlcf->peer = ngx_http_jwtauthz_peer_get(cf, &path);
    return jlcf->peer ? NGX_CONF_OK : NGX_CONF_ERROR;
}

/* The prefix goes into every methodArn, which the codec requires to be UTF-8 without controls;
 * refusing a bad one here means a request-time refusal can only be the client's doing. */
static char *ngx_http_jwtauthz_resource_prefix(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char *rv;
    u_char *p, *last;
    uint32_t u;
    ngx_str_t *prefix;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }
    prefix = (ngx_str_t *)((u_char *)conf + cmd->offset);
    /* methodArn = prefix + "/" + METHOD + path: a trailing slash would double it. */
    while (prefix->len && prefix->data[prefix->len - 1] == '/') {
        prefix->len--;
    }
    p = prefix->data;
    last = p + prefix->len;
    while (p < last) {
        if (*p < 0x80) {
            u = *p++;
            if (u < 0x20 || u == 0x7f) {
                goto invalid;
            }
            continue;
        }
        /* RFC 3629 §3: no surrogates, nothing past U+10FFFF (ngx_utf8_decode returns larger
         * values for malformed or truncated sequences). */
        u = ngx_utf8_decode(&p, last - p);
        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            goto invalid;
        }
    }
    if (prefix->len == 0) {
        return "must not be empty";
    }
    return NGX_CONF_OK;

invalid:
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "jwtauthz_resource_prefix \"%V\": not UTF-8 text without controls", prefix);
    return NGX_CONF_ERROR;
}

/* jwtauthz_timeout TIME: nginx's time syntax ("500ms", "2s", "1m 30s"), except that a bare
 * number is milliseconds, as CONTRACT.md "Web servers" specifies (nginx's own
 * ngx_conf_set_msec_slot would read "500" as 500 seconds: an easy way to make every request
 * wait minutes on a dead daemon). */
static char *ngx_http_jwtauthz_timeout(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t n;
    ngx_str_t *value;
    ngx_msec_t *ms = (ngx_msec_t *)((u_char *)conf + cmd->offset);

    if (*ms != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }
    value = cf->args->elts;
    /* ngx_atoi takes digits only: anything with a unit goes to nginx's parser. */
    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR) {
        n = ngx_parse_time(&value[1], 0);
    }
    /* ngx_add_timer takes an ngx_msec_t; a day is far past any sensible wait anyway. */
    if (n == NGX_ERROR || n > NGX_MAX_INT32_VALUE) {
        return "invalid value";
    }
    /* 0 would answer 503 before the daemon could: a misconfiguration, not a choice. */
    if (n == 0) {
        return "must be greater than 0";
    }
    *ms = (ngx_msec_t)n;
    return NGX_CONF_OK;
}

/* jwtauthz_cache off | N [max_ttl=TIME] [max_size=SIZE]. max_ttl takes nginx's time syntax but
 * wants a unit: jwtauthz_timeout reads a bare number as milliseconds and nginx's own directives
 * as seconds, and a cache lifetime off by a factor of 1000 is not a typo to guess about. */
static char *ngx_http_jwtauthz_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_jwtauthz_loc_conf_t *jlcf = conf;
    ngx_str_t *value, s;
    ngx_int_t n, ttl;
    ssize_t size;
    ngx_uint_t i;

    if (jlcf->cache_entries != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }
    value = cf->args->elts;
    ttl = NGX_HTTP_JWTAUTHZ_CACHE_MAX_TTL_DEFAULT_MS;
    size = NGX_HTTP_JWTAUTHZ_CACHE_MAX_SIZE_DEFAULT;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        if (cf->args->nelts > 2) {
            return "takes no parameters after \"off\"";
        }
        jlcf->cache_entries = 0;
        jlcf->cache_max_ttl = (ngx_msec_t)ttl;
        jlcf->cache_max_size = (size_t)size;
        return NGX_CONF_OK;
    }
    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n == 0 || n > NGX_HTTP_JWTAUTHZ_CACHE_MAX_ENTRIES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "jwtauthz_cache \"%V\": want \"off\" or a number of entries from 1 "
                           "to %d",
                           &value[1], NGX_HTTP_JWTAUTHZ_CACHE_MAX_ENTRIES);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (value[i].len > 8 && ngx_strncmp(value[i].data, "max_ttl=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            ttl = ngx_atoi(s.data, s.len) == NGX_ERROR ? ngx_parse_time(&s, 0) : NGX_ERROR;
            if (ttl == NGX_ERROR || ttl == 0 || ttl > NGX_HTTP_JWTAUTHZ_CACHE_MAX_TTL_CEILING_MS) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "jwtauthz_cache: invalid \"%V\": a time with its unit "
                                   "(\"500ms\", \"30s\", \"5m\"), above 0 and at most 1d",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
            continue;
        }
        if (value[i].len > 9 && ngx_strncmp(value[i].data, "max_size=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;
            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < NGX_HTTP_JWTAUTHZ_CACHE_MAX_SIZE_FLOOR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "jwtauthz_cache: invalid \"%V\": a size of at least 64k",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
            continue;
        }
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtauthz_cache: invalid parameter \"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }
    jlcf->cache_entries = (ngx_uint_t)n;
    jlcf->cache_max_ttl = (ngx_msec_t)ttl;
    jlcf->cache_max_size = (size_t)size;
    return NGX_CONF_OK;
}

static void *ngx_http_jwtauthz_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_jwtauthz_main_conf_t *jmcf;

    jmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_jwtauthz_main_conf_t));
    if (jmcf == NULL) {
        return NULL;
    }
    if (ngx_array_init(&jmcf->peers, cf->pool, 2, sizeof(ngx_http_jwtauthz_peer_t *)) != NGX_OK) {
        return NULL;
    }
    return jmcf;
}

static void *ngx_http_jwtauthz_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_jwtauthz_loc_conf_t *jlcf;

    /* ngx_pcalloc leaves resource_prefix as { 0, NULL }, which ngx_conf_merge_str_value reads as
     * unset. */
    jlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_jwtauthz_loc_conf_t));
    if (jlcf == NULL) {
        return NULL;
    }
    jlcf->enable = NGX_CONF_UNSET;
    jlcf->peer = NGX_CONF_UNSET_PTR;
    jlcf->timeout = NGX_CONF_UNSET_MSEC;
    jlcf->cache_entries = NGX_CONF_UNSET_UINT;
    jlcf->cache_max_ttl = NGX_CONF_UNSET_MSEC;
    jlcf->cache_max_size = NGX_CONF_UNSET_SIZE;
    return jlcf;
}

static char *ngx_http_jwtauthz_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_jwtauthz_loc_conf_t *prev = parent;
    ngx_http_jwtauthz_loc_conf_t *conf = child;
    ngx_str_t path = ngx_string(JWTAUTHZ_DEFAULT_SOCKET);

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_ptr_value(conf->peer, prev->peer, NULL);
    if (conf->peer == NULL) {
        conf->peer = ngx_http_jwtauthz_peer_get(cf, &path);
        if (conf->peer == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    ngx_conf_merge_str_value(conf->resource_prefix, prev->resource_prefix,
                             NGX_HTTP_JWTAUTHZ_DEFAULT_PREFIX);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, JWTAUTHZ_DEFAULT_TIMEOUT_MS);

    /* jwtauthz_cache's parameters go together: a level that sets it takes none from above. */
    if (conf->cache_entries == NGX_CONF_UNSET_UINT) {
        conf->cache_entries = prev->cache_entries;
        conf->cache_max_ttl = prev->cache_max_ttl;
        conf->cache_max_size = prev->cache_max_size;
    }
    ngx_conf_init_uint_value(conf->cache_entries, 0);
    ngx_conf_init_msec_value(conf->cache_max_ttl, NGX_HTTP_JWTAUTHZ_CACHE_MAX_TTL_DEFAULT_MS);
    ngx_conf_init_size_value(conf->cache_max_size, NGX_HTTP_JWTAUTHZ_CACHE_MAX_SIZE_DEFAULT);
    /* One cache per socket in each worker, as large as the largest location using it asks. */
    if (conf->cache_entries > conf->peer->cache_entries) {
        conf->peer->cache_entries = conf->cache_entries;
    }
    if (conf->cache_entries && conf->cache_max_size > conf->peer->cache_size) {
        conf->peer->cache_size = conf->cache_max_size;
    }
    return NGX_CONF_OK;
}

static ngx_int_t ngx_http_jwtauthz_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt *h;
    ngx_http_core_main_conf_t *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_jwtauthz_handler;
    return NGX_OK;
}
