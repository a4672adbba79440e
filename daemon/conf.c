/* conf_load(): reads the config file (size checked before anything is allocated), parses it with
 * the strict JSON reader (comments allowed, duplicates refused and located), and checks the
 * top-level settings; issuers and rules have files of their own. It resolves names the kernel
 * needs (the socket group, the CPU count) but opens no socket and reads no key file. */
#include "daemon/conf.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <yajl/yajl_parse.h>

#include "daemon/conf_read.h"
#include "jose/pool.h"
#include "proto/limits.h"

/* A group entry with thousands of members needs a big buffer; past this the lookup gives up. */
#define CONF_GETGR_MAX_BYTES (1024u * 1024u)
/* A socket path must fit sockaddr_un.sun_path with its NUL. */
#define CONF_SUN_PATH_BYTES sizeof(((struct sockaddr_un *)0)->sun_path)
/* Mode bits a socket may not grant. World write is "anyone may connect" on Linux. */
#define CONF_LISTEN_MODE_FORBIDDEN 0002
/* The admin socket is for the owner (the daemon user) and root, who ignores modes. */
#define CONF_ADMIN_MODE_FORBIDDEN 0077

static const char *const conf_top_keys[] = {
    "listen",       "listen_mode", "listen_group",    "admin_listen",
    "admin_mode",   "threads",     "max_frame_bytes", "max_token_bytes",
    "log_level",    "issuers",     "rules",           "decision_cache",
    "token_cookie", "token_query", "cache_dir",       NULL,
};

static const char *const conf_cache_keys[] = {"ttl", "max_entries", NULL};

static const char *const conf_log_level_names[] = {
    [CONF_LOG_ERROR] = "error",
    [CONF_LOG_WARN] = "warn",
    [CONF_LOG_INFO] = "info",
    [CONF_LOG_DEBUG] = "debug",
};

const char *conf_log_level_name(conf_log_level_e level)
{
    if ((unsigned)level > CONF_LOG_DEBUG) {
        return "unknown";
    }
    return conf_log_level_names[level];
}

/* --- the file --------------------------------------------------------------------------------- */

/* Reads the whole file into scratch. The size is taken from the open descriptor and checked
 * against CONF_MAX_BYTES before the buffer is allocated; a file that grows while being read is
 * refused rather than read past its stated size. */
static apr_status_t conf_file_read(conf_ctx_t *c)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    char *buf;
    apr_size_t got = 0;
    char why[120];
    apr_status_t rv = apr_file_open(&f, c->path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, c->scratch);
    if (rv != APR_SUCCESS) {
        conf_error_file(c, "cannot open: %s", apr_strerror(rv, why, sizeof(why)));
        return rv;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE | APR_FINFO_PROT, f);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        conf_error_file(c, "cannot stat: %s", apr_strerror(rv, why, sizeof(why)));
        goto out;
    }
    if (fi.filetype != APR_REG) {
        conf_error_file(c, "not a regular file");
        rv = APR_EINVAL;
        goto out;
    }
    if (fi.size < 0 || (apr_uint64_t)fi.size > CONF_MAX_BYTES) {
        conf_error_file(c, "is %lld bytes; a config may be at most %u", (long long)fi.size,
                        CONF_MAX_BYTES);
        rv = APR_EINVAL;
        goto out;
    }
    if (fi.valid & APR_FINFO_PROT && fi.protection & APR_FPROT_WWRITE) {
        conf_warning(c, NULL, "the config file is world-writable: anyone can rewrite the policy");
    }
    /* One byte more than stated, to notice growth; NUL-terminated for nothing but debuggers. */
    buf = apr_palloc(c->scratch, (apr_size_t)fi.size + 2);
    rv = apr_file_read_full(f, buf, (apr_size_t)fi.size + 1, &got);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        conf_error_file(c, "cannot read: %s", apr_strerror(rv, why, sizeof(why)));
        goto out;
    }
    if (got > (apr_size_t)fi.size) {
        conf_error_file(c, "changed while being read");
        rv = APR_EINVAL;
        goto out;
    }
    buf[got] = '\0';
    c->text = buf;
    c->len = got;
    rv = APR_SUCCESS;
out:
    apr_file_close(f);
    return rv;
}

/* --- duplicate keys --------------------------------------------------------------------------- */

/* The strict reader refuses a duplicate when its object closes; this second pass over the text
 * finds the key itself, so the message names it and the line it is repeated on. */
typedef struct conf_dup_finder {
    conf_ctx_t *c;
    yajl_handle yajl;
    apr_hash_t *keys[JSON_MAX_DEPTH + 1]; /* per open container; NULL for arrays */
    size_t depth;
    int found;
    proto_str_t name;
    size_t offset, first_offset;
} conf_dup_finder_t;

static int dup_value(void *ctx)
{
    (void)ctx;
    return 1;
}

static int dup_bool(void *ctx, int v)
{
    (void)v;
    return dup_value(ctx);
}

static int dup_text(void *ctx, const char *s, size_t len)
{
    (void)s;
    (void)len;
    return dup_value(ctx);
}

static int dup_string(void *ctx, const unsigned char *s, size_t len)
{
    return dup_text(ctx, (const char *)s, len);
}

static int dup_open(conf_dup_finder_t *d, int is_object)
{
    if (d->depth >= JSON_MAX_DEPTH + 1) {
        return 0;
    }
    d->keys[d->depth++] = is_object ? apr_hash_make(d->c->scratch) : NULL;
    return 1;
}

static int dup_start_map(void *ctx)
{
    return dup_open(ctx, 1);
}

static int dup_start_array(void *ctx)
{
    return dup_open(ctx, 0);
}

static int dup_close(void *ctx)
{
    conf_dup_finder_t *d = ctx;
    d->depth--;
    return 1;
}

static int dup_map_key(void *ctx, const unsigned char *s, size_t len)
{
    conf_dup_finder_t *d = ctx;
    apr_hash_t *h = d->keys[d->depth - 1];
    size_t here = yajl_get_bytes_consumed(d->yajl);
    const size_t *first = apr_hash_get(h, s, (apr_ssize_t)len);
    if (first != NULL) {
        d->found = 1;
        d->name = proto_str_make(apr_pstrmemdup(d->c->scratch, (const char *)s, len), len);
        d->offset = here;
        d->first_offset = *first;
        return 0;
    }
    size_t *at = apr_palloc(d->c->scratch, sizeof(*at));
    *at = here;
    apr_hash_set(h, apr_pmemdup(d->c->scratch, s, len), (apr_ssize_t)len, at);
    return 1;
}

static const yajl_callbacks conf_dup_callbacks = {
    dup_value, dup_bool,        NULL,      NULL, dup_text, dup_string, dup_start_map, dup_map_key,
    dup_close, dup_start_array, dup_close,
};

static void conf_duplicate_report(conf_ctx_t *c, size_t reader_offset)
{
    conf_dup_finder_t d;
    memset(&d, 0, sizeof(d));
    d.c = c;
    d.yajl = yajl_alloc(&conf_dup_callbacks, NULL, &d);
    if (d.yajl != NULL) {
        yajl_config(d.yajl, yajl_allow_comments, 1);
        if (yajl_parse(d.yajl, (const unsigned char *)c->text, c->len) == yajl_status_ok) {
            yajl_complete_parse(d.yajl);
        }
        yajl_free(d.yajl);
    }
    if (!d.found) {
        /* Cannot happen when both passes read the same text; keep the reader's word for it. */
        proto_json_t at = {.offset = reader_offset};
        conf_error(c, &at, "duplicate key in the object that ends here");
        return;
    }
    proto_json_t at = {.offset = d.offset}, first = {.offset = d.first_offset};
    conf_error(c, &at, "duplicate key %s (first on line %u)", conf_quote(c, d.name),
               conf_line(c, &first));
}

/* --- top-level settings ----------------------------------------------------------------------- */

/* A mode as a string of 3 or 4 octal digits ("0660"): a JSON number would be read as decimal, and
 * 660 decimal is 01224 octal. Refuses forbidden bits with why. */
static int conf_mode_parse(conf_ctx_t *c, const proto_json_t *obj, const char *key,
                           mode_t forbidden, const char *why, mode_t *out)
{
    const proto_json_t *v = proto_json_get(obj, key);
    if (v == NULL) {
        return CONF_ABSENT;
    }
    if (v->type != PROTO_JSON_STRING) {
        conf_error(c, v, "%s must be a string of octal digits such as \"0660\", not %s", key,
                   conf_describe(c, v));
        return CONF_BAD;
    }
    proto_str_t s = v->u.string;
    unsigned mode = 0;
    int ok = s.len == 3 || s.len == 4;
    for (size_t i = 0; ok && i < s.len; i++) {
        ok = s.ptr[i] >= '0' && s.ptr[i] <= '7';
        mode = mode * 8u + (unsigned)(s.ptr[i] - '0');
    }
    /* setuid, setgid and sticky mean nothing on a socket; asking for them is a mistake. */
    if (!ok || mode > 0777) {
        conf_error(c, v, "%s must be 3 or 4 octal digits no greater than \"0777\", not %s", key,
                   conf_quote(c, s));
        return CONF_BAD;
    }
    if (mode & forbidden) {
        conf_error(c, v, "%s %s %s", key, conf_quote(c, s), why);
        return CONF_BAD;
    }
    *out = (mode_t)mode;
    return CONF_SET;
}

/* A socket path: absolute, and short enough for sockaddr_un, so bind() cannot fail on it later. */
static int conf_socket_path_parse(conf_ctx_t *c, const proto_json_t *obj, const char *key,
                                  const char **out)
{
    const char *path = NULL;
    int rc = conf_member_path(c, obj, NULL, key, 0, &path);
    if (rc == CONF_SET && strlen(path) >= CONF_SUN_PATH_BYTES) {
        conf_error(c, proto_json_get(obj, key), "%s is %zu bytes; a socket path must be under %zu",
                   key, strlen(path), CONF_SUN_PATH_BYTES);
        return CONF_BAD;
    }
    if (rc == CONF_SET) {
        *out = path;
    }
    return rc;
}

static void conf_group_resolve(conf_ctx_t *c, const proto_json_t *at, conf_t *conf)
{
    struct group gr, *found = NULL;
    long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : 4096u;
    int err;
    for (;;) {
        char *buf = apr_palloc(c->scratch, size);
        err = getgrnam_r(conf->listen_group, &gr, buf, size, &found);
        if (err != ERANGE || size >= CONF_GETGR_MAX_BYTES) {
            break;
        }
        size *= 2;
    }
    if (err != 0) {
        conf_error(c, at, "listen_group %s cannot be looked up: %s",
                   conf_quote(c, proto_str_make(conf->listen_group, strlen(conf->listen_group))),
                   strerror(err));
    } else if (found == NULL) {
        conf_error(c, at, "listen_group %s is not a known group",
                   conf_quote(c, proto_str_make(conf->listen_group, strlen(conf->listen_group))));
    } else {
        conf->listen_gid = gr.gr_gid;
        conf->listen_gid_set = 1;
    }
}

static void conf_log_level_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf)
{
    proto_str_t s;
    if (conf_member_string(c, root, NULL, "log_level", 0, &s) != CONF_SET) {
        return;
    }
    for (unsigned l = CONF_LOG_ERROR; l <= CONF_LOG_DEBUG; l++) {
        if (proto_str_eq_cstr(s, conf_log_level_names[l])) {
            conf->log_level = (conf_log_level_e)l;
            return;
        }
    }
    conf_error(c, proto_json_get(root, "log_level"),
               "log_level must be \"error\", \"warn\", \"info\" or \"debug\", not %s",
               conf_quote(c, s));
}

/* RFC 6265 §4.1.1: a cookie-name is an RFC 2616 token: visible ASCII except separators. */
static int cookie_name_valid(proto_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char b = (unsigned char)s.ptr[i];
        if (b <= 0x20 || b >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", b) != NULL) {
            return 0;
        }
    }
    return 1;
}

static int query_name_valid(proto_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char b = (unsigned char)s.ptr[i];
        if (b < 0x20 || b == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static void conf_token_sources_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf)
{
    const proto_json_t *v;
    if (conf_member_string(c, root, NULL, "token_cookie", CONF_STR_NONEMPTY, &conf->token_cookie) ==
            CONF_SET &&
        !cookie_name_valid(conf->token_cookie)) {
        v = proto_json_get(root, "token_cookie");
        conf_error(c, v, "token_cookie %s is not a cookie name (RFC 6265 §4.1.1)",
                   conf_quote(c, conf->token_cookie));
    }
    if (conf_member_string(c, root, NULL, "token_query", CONF_STR_NONEMPTY, &conf->token_query) ==
        CONF_SET) {
        v = proto_json_get(root, "token_query");
        if (!query_name_valid(conf->token_query)) {
            conf_error(c, v, "token_query %s holds a control byte",
                       conf_quote(c, conf->token_query));
        } else {
            conf_warning(c, v,
                         "token_query: tokens in URLs end up in access logs and browser "
                         "history (RFC 6750 §5.3); prefer the Authorization header");
        }
    }
}

static void conf_sockets_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf)
{
    proto_str_t group;
    conf_socket_path_parse(c, root, "listen", &conf->listen);
    conf_socket_path_parse(c, root, "admin_listen", &conf->admin_listen);
    if (strcmp(conf->listen, conf->admin_listen) == 0) {
        conf_error(c, proto_json_get(root, "admin_listen"),
                   "admin_listen and listen are the same path %s",
                   conf_quote(c, proto_str_make(conf->listen, strlen(conf->listen))));
    }
    conf_mode_parse(c, root, "listen_mode", CONF_LISTEN_MODE_FORBIDDEN,
                    "lets any local user connect (world-writable); use listen_group",
                    &conf->listen_mode);
    conf_mode_parse(c, root, "admin_mode", CONF_ADMIN_MODE_FORBIDDEN,
                    "grants access beyond the owner: admin commands are for root and the daemon "
                    "user only",
                    &conf->admin_mode);
    if (conf_member_string(c, root, NULL, "listen_group", CONF_STR_EMPTY_IS_UNSET, &group) ==
            CONF_SET &&
        group.ptr != NULL) {
        conf->listen_group = group.ptr;
        conf_group_resolve(c, proto_json_get(root, "listen_group"), conf);
    }
}

static void conf_limits_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf)
{
    unsigned threads = 0;
    conf_member_unsigned(c, root, NULL, "threads", 0, CONF_MAX_THREADS, &threads);
    if (threads == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu < 1 ? 1u : ncpu > (long)CONF_MAX_THREADS ? CONF_MAX_THREADS : (unsigned)ncpu;
        conf->threads_auto = 1;
    }
    conf->threads = threads;

    int frame = conf_member_size(c, root, NULL, "max_frame_bytes", 1, PROTO_MAX_FRAME_BYTES_CEILING,
                                 &conf->max_frame_bytes);
    int token = conf_member_size(c, root, NULL, "max_token_bytes", CONF_MIN_TOKEN_BYTES,
                                 JOSE_MAX_TOKEN_BYTES_CEILING, &conf->max_token_bytes);
    /* A token travels inside a frame with the rest of the request around it. */
    if (frame != CONF_BAD && token != CONF_BAD && conf->max_token_bytes >= conf->max_frame_bytes) {
        conf_error(c,
                   proto_json_get(root, token == CONF_SET ? "max_token_bytes" : "max_frame_bytes"),
                   "max_token_bytes (%zu) must be less than max_frame_bytes (%zu): a token "
                   "travels inside a frame",
                   conf->max_token_bytes, conf->max_frame_bytes);
    }
}

static void conf_cache_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf)
{
    const proto_json_t *v = proto_json_get(root, "decision_cache");
    if (v == NULL) {
        return;
    }
    if (v->type != PROTO_JSON_OBJECT) {
        conf_error(c, v, "decision_cache must be an object, not %s", conf_describe(c, v));
        return;
    }
    conf_keys_check(c, v, "decision_cache", conf_cache_keys);
    conf_member_unsigned(c, v, "decision_cache", "ttl", 0, CONF_MAX_CACHE_TTL_S,
                         &conf->cache_ttl_s);
    conf_member_size(c, v, "decision_cache", "max_entries", 0, CONF_MAX_CACHE_ENTRIES,
                     &conf->cache_max_entries);
}

static void conf_defaults_set(conf_t *conf)
{
    conf->listen = CONF_DEFAULT_LISTEN;
    conf->listen_mode = CONF_DEFAULT_LISTEN_MODE;
    conf->admin_listen = CONF_DEFAULT_ADMIN_LISTEN;
    conf->admin_mode = CONF_DEFAULT_ADMIN_MODE;
    conf->max_frame_bytes = PROTO_MAX_FRAME_BYTES_DEFAULT;
    conf->max_token_bytes = JOSE_MAX_TOKEN_BYTES_DEFAULT;
    conf->log_level = CONF_LOG_INFO;
    conf->cache_dir = CONF_DEFAULT_CACHE_DIR;
    conf->cache_ttl_s = CONF_DEFAULT_CACHE_TTL_S;
    conf->cache_max_entries = CONF_DEFAULT_CACHE_MAX_ENTRIES;
}

static void conf_root_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf)
{
    conf_keys_check(c, root, NULL, conf_top_keys);
    conf_sockets_parse(c, root, conf);
    conf_limits_parse(c, root, conf);
    conf_log_level_parse(c, root, conf);
    conf_token_sources_parse(c, root, conf);
    conf_member_path(c, root, NULL, "cache_dir", CONF_STR_EMPTY_IS_UNSET, &conf->cache_dir);
    conf_issuers_parse(c, root, conf);
    conf_rules_parse(c, root, &conf->rules);
    conf_cache_parse(c, root, conf);
}

/* --- loading ---------------------------------------------------------------------------------- */

/* Parses c->text; returns the root object or NULL with the error recorded. */
static const proto_json_t *conf_json_parse(conf_ctx_t *c, apr_status_t *rv)
{
    proto_json_options_t opt = {0, 0, 1};
    proto_alloc_t alloc = jose_pool_allocator(c->scratch);
    proto_json_error_t err;
    proto_json_t *root = NULL;
    proto_json_status_e st = proto_json_read(c->text, c->len, &opt, &alloc, &root, &err);
    *rv = st == PROTO_JSON_NO_MEMORY ? APR_ENOMEM : APR_EINVAL;
    if (st == PROTO_JSON_DUPLICATE_KEY) {
        conf_duplicate_report(c, err.offset);
        return NULL;
    }
    if (st != PROTO_JSON_OK) {
        /* yajl's message ends with a newline; a message is one line. */
        size_t n = strcspn(err.message, "\r\n");
        proto_json_t at = {.offset = err.offset};
        if (strstr(err.message, "premature EOF") != NULL) {
            /* Found when yajl is told the input ended, with an offset that no longer points
             * into the text: the file's last non-blank line is where the reader stopped. */
            at.offset = c->len;
            while (at.offset > 0 &&
                   (c->text[at.offset - 1] == ' ' || c->text[at.offset - 1] == '\t' ||
                    c->text[at.offset - 1] == '\r' || c->text[at.offset - 1] == '\n')) {
                at.offset--;
            }
        }
        conf_error(c, &at, "%s: %.*s", st == PROTO_JSON_SYNTAX ? "JSON syntax error" : "bad JSON",
                   (int)n, err.message);
        return NULL;
    }
    if (root->type != PROTO_JSON_OBJECT) {
        conf_error(c, root, "the config must be a JSON object, not %s", conf_describe(c, root));
        return NULL;
    }
    *rv = APR_SUCCESS;
    return root;
}

/* The line a recorded message names (0 for a file-level one). */
static unsigned conf_message_line(const conf_ctx_t *c, const char *msg)
{
    size_t n = strlen(c->path);
    if (strncmp(msg, c->path, n) != 0 || msg[n] != ':') {
        return 0;
    }
    return (unsigned)strtoul(msg + n + 1, NULL, 10);
}

/* Sections are checked one after another, and cross-checks come last: sorted by line (stably),
 * the messages read top to bottom like the file. */
static void conf_errors_sort(conf_ctx_t *c)
{
    conf_errors_t *e = c->errs;
    char tmp[CONF_MESSAGE_BYTES];
    for (size_t i = 1; i < e->nerrors; i++) {
        unsigned line = conf_message_line(c, e->errors[i]);
        size_t j = i;
        if (conf_message_line(c, e->errors[j - 1]) <= line) {
            continue;
        }
        memcpy(tmp, e->errors[i], sizeof(tmp));
        while (j > 0 && conf_message_line(c, e->errors[j - 1]) > line) {
            memcpy(e->errors[j], e->errors[j - 1], sizeof(tmp));
            j--;
        }
        memcpy(e->errors[j], tmp, sizeof(tmp));
    }
}

/* Starts a load: clears *errs and *out and makes the scratch pool the parse goes into. */
static apr_status_t conf_load_begin(conf_ctx_t *c, apr_pool_t *gen_pool, const char *path,
                                    conf_t **out, conf_errors_t *errs)
{
    apr_status_t rv;

    memset(errs, 0, sizeof(*errs));
    *out = NULL;
    memset(c, 0, sizeof(*c));
    c->pool = gen_pool;
    c->errs = errs;
    c->path = path;
    rv = apr_pool_create(&c->scratch, gen_pool);
    if (rv != APR_SUCCESS) {
        snprintf(errs->errors[errs->nerrors++], CONF_MESSAGE_BYTES, "%s: out of memory", path);
    }
    return rv;
}

/* Parses and checks c->text once it is there (rv is how getting it went), then drops the scratch
 * pool: one path for the file and for text handed in. */
static apr_status_t conf_load_end(conf_ctx_t *c, apr_status_t rv, conf_t **out)
{
    conf_t *conf;
    const proto_json_t *root;

    if (rv != APR_SUCCESS) {
        goto out;
    }
    root = conf_json_parse(c, &rv);
    if (root == NULL) {
        goto out;
    }
    conf = apr_pcalloc(c->pool, sizeof(*conf));
    conf->pool = c->pool;
    conf->path = apr_pstrdup(c->pool, c->path);
    conf_defaults_set(conf);
    conf_root_parse(c, root, conf);
    conf_errors_sort(c);
    if (c->errs->nerrors > 0 || c->errs->nerrors_dropped > 0) {
        rv = APR_EINVAL;
        goto out;
    }
    *out = conf;
out:
    apr_pool_destroy(c->scratch);
    return rv;
}

apr_status_t conf_load(apr_pool_t *gen_pool, const char *path, conf_t **out, conf_errors_t *errs)
{
    conf_ctx_t c;
    apr_status_t rv = conf_load_begin(&c, gen_pool, path, out, errs);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return conf_load_end(&c, conf_file_read(&c), out);
}

apr_status_t conf_load_text(apr_pool_t *gen_pool, const char *name, const char *text, size_t len,
                            conf_t **out, conf_errors_t *errs)
{
    conf_ctx_t c;
    apr_status_t rv = conf_load_begin(&c, gen_pool, name, out, errs);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* The same bound conf_file_read() puts on a file, so both entry points refuse alike. */
    if (len > CONF_MAX_BYTES) {
        conf_error_file(&c, "is %zu bytes; a config may be at most %u", len, CONF_MAX_BYTES);
        rv = APR_EINVAL;
    } else {
        c.text = text;
        c.len = len;
    }
    return conf_load_end(&c, rv, out);
}

void conf_errors_print(const conf_errors_t *errs, FILE *fp)
{
    for (size_t i = 0; i < errs->nerrors; i++) {
        fprintf(fp, "%s\n", errs->errors[i]);
    }
    if (errs->nerrors_dropped > 0) {
        fprintf(fp, "(%zu more errors not shown)\n", errs->nerrors_dropped);
    }
    for (size_t i = 0; i < errs->nwarnings; i++) {
        fprintf(fp, "%s\n", errs->warnings[i]);
    }
    if (errs->nwarnings_dropped > 0) {
        fprintf(fp, "(%zu more warnings not shown)\n", errs->nwarnings_dropped);
    }
}
