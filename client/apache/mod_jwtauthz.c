/* mod_jwtauthz: `AuthType jwtauthz` for httpd 2.4, decided by jwtauthzd over its Unix socket.
 * Here: the module record, the directives with their per-directory merge, hook registration.
 * The decision is decision.c's, `Require jwtauthz-claim` claim_require.c's, connection reuse
 * thread_client.c's. Nothing here talks to the daemon, and a directive value that could weaken a
 * decision is a startup error, never a silent default. */
#include <string.h>
#include <sys/un.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_auth.h>

#define MOD_JWTAUTHZ_DEFINES_MODULE
#include "mod_jwtauthz.h"

/* The kernel's limit for a socket address (unix(7)), less the terminating NUL. */
#define DIRCONF_SOCKET_PATH_MAX_BYTES (sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

const char *dirconf_socket_path(const jwtauthz_dirconf_t *conf)
{
    return conf->socket_path ? conf->socket_path : JWTAUTHZ_DEFAULT_SOCKET;
}

const char *dirconf_resource_prefix(const jwtauthz_dirconf_t *conf)
{
    return conf->resource_prefix ? conf->resource_prefix : JWTAUTHZ_DEFAULT_RESOURCE_PREFIX;
}

int dirconf_timeout_ms(const jwtauthz_dirconf_t *conf)
{
    return conf->timeout_ms > 0 ? conf->timeout_ms : JWTAUTHZ_DEFAULT_TIMEOUT_MS;
}

static void *dirconf_create(apr_pool_t *p, char *dir)
{
    (void)dir;
    return apr_pcalloc(p, sizeof(jwtauthz_dirconf_t));
}

/* A child section overrides its parent field by field, only where it set something: a
 * <Location> that sets JwtAuthzResourcePrefix keeps the server's JwtAuthzSocket. */
static void *dirconf_merge(apr_pool_t *p, void *basev, void *addv)
{
    const jwtauthz_dirconf_t *base = basev, *add = addv;
    jwtauthz_dirconf_t *conf = apr_palloc(p, sizeof(*conf));

    conf->socket_path = add->socket_path ? add->socket_path : base->socket_path;
    conf->resource_prefix = add->resource_prefix ? add->resource_prefix : base->resource_prefix;
    conf->timeout_ms = add->timeout_ms > 0 ? add->timeout_ms : base->timeout_ms;
    return conf;
}

static const char *dirconf_set_socket(cmd_parms *cmd, void *dirv, const char *arg)
{
    jwtauthz_dirconf_t *conf = dirv;
    /* Relative paths are taken from ServerRoot, as httpd takes every file name it is given. */
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (path == NULL || *arg == '\0') {
        return apr_psprintf(cmd->pool, "%s: invalid socket path \"%s\"", cmd->cmd->name, arg);
    }
    /* Refused now rather than at the first request, when every request would fail. */
    if (strlen(path) > DIRCONF_SOCKET_PATH_MAX_BYTES) {
        return apr_psprintf(cmd->pool,
                            "%s: \"%s\" is longer than a Unix socket address allows "
                            "(%zu bytes)",
                            cmd->cmd->name, path, DIRCONF_SOCKET_PATH_MAX_BYTES);
    }
    conf->socket_path = path;
    return NULL;
}

static const char *dirconf_set_resource_prefix(cmd_parms *cmd, void *dirv, const char *arg)
{
    jwtauthz_dirconf_t *conf = dirv;
    size_t len = strlen(arg);

    /* methodArn = prefix + "/" + METHOD + path (CONTRACT "Web servers"): a trailing "/" would
     * give ".../prod//GET/...", which no rule written for API Gateway's ARNs matches. Dropped,
     * as the nginx module drops it, so one prefix string means the same in both servers. */
    while (len > 0 && arg[len - 1] == '/') {
        len--;
    }
    if (len == 0) {
        return apr_psprintf(cmd->pool, "%s: the prefix may not be empty", cmd->cmd->name);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)arg[i];
        if (c < 0x20 || c == 0x7f) {
            return apr_psprintf(cmd->pool, "%s: the prefix holds a control character",
                                cmd->cmd->name);
        }
    }
    if (!decision_utf8_valid(arg, len)) {
        return apr_psprintf(cmd->pool, "%s: the prefix is not UTF-8", cmd->cmd->name);
    }
    conf->resource_prefix = apr_pstrmemdup(cmd->pool, arg, len);
    return NULL;
}

/* "2", "2s", "500ms", "1mi": ap_timeout_parameter_parse() with seconds as the default unit,
 * exactly as httpd's ProxyTimeout and friends read theirs. */
static const char *dirconf_set_timeout(cmd_parms *cmd, void *dirv, const char *arg)
{
    jwtauthz_dirconf_t *conf = dirv;
    apr_interval_time_t t;

    /* ap_timeout_parameter_parse() reads "soon" as 0 seconds (no digits, unit "s"): a time must
     * start with one. */
    if (!apr_isdigit(arg[0]) || ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS) {
        return apr_psprintf(cmd->pool,
                            "%s: \"%s\" is not a time (seconds, or with a unit: "
                            "500ms, 2s)",
                            cmd->cmd->name, arg);
    }
    apr_int64_t ms = apr_time_as_msec(t);
    if (ms < JWTAUTHZ_TIMEOUT_MIN_MS || ms > JWTAUTHZ_TIMEOUT_MAX_MS) {
        return apr_psprintf(cmd->pool, "%s: \"%s\" is outside %d ms .. %d s", cmd->cmd->name, arg,
                            JWTAUTHZ_TIMEOUT_MIN_MS, JWTAUTHZ_TIMEOUT_MAX_MS / 1000);
    }
    conf->timeout_ms = (int)ms;
    return NULL;
}

/* The socket and timeout are server-admin settings (RSRC_CONF, ACCESS_CONF): from .htaccess,
 * JwtAuthzSocket would let a site owner make httpd connect to, and write JSON into, any Unix
 * socket its user can reach. The resource prefix only renames the caller's own resources, so
 * AllowOverride AuthConfig may set it, as it may set AuthType and Require. */
static const command_rec dirconf_cmds[] = {
    AP_INIT_TAKE1("JwtAuthzSocket", dirconf_set_socket, NULL, RSRC_CONF | ACCESS_CONF,
                  "jwtauthzd's decision socket (default " JWTAUTHZ_DEFAULT_SOCKET ")"),
    AP_INIT_TAKE1(
        "JwtAuthzResourcePrefix", dirconf_set_resource_prefix, NULL,
        RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
        "methodArn prefix: the ARN is PREFIX/METHOD/path (default " JWTAUTHZ_DEFAULT_RESOURCE_PREFIX
        ")"),
    AP_INIT_TAKE1("JwtAuthzTimeout", dirconf_set_timeout, NULL, RSRC_CONF | ACCESS_CONF,
                  "how long one decision may take: seconds, or 500ms (default 2s)"),
    {0},
};

static void module_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv = thread_client_init(pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "jwtauthz: no thread-local client slot; each request will open its own "
                     "connection to jwtauthzd");
    }
}

static void module_register_hooks(apr_pool_t *p)
{
    /* AP_AUTH_INTERNAL_PER_CONF: httpd calls the hook only where auth is configured, as it does
     * for mod_auth_basic. */
    ap_hook_check_authn(decision_check_user_id, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(decision_note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(module_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    claim_require_register(p);
}

AP_DECLARE_MODULE(jwtauthz) = {
    STANDARD20_MODULE_STUFF,
    dirconf_create, /* per-directory config */
    dirconf_merge,  /* per-directory merge: child overrides parent where set */
    NULL,           /* per-server config */
    NULL,           /* per-server merge */
    dirconf_cmds,
    module_register_hooks,
    AP_MODULE_FLAG_NONE,
};
