/* The config reader (daemon/conf.h): defaults filled in, the shipped config accepted, and every
 * way a config could silently weaken verification refused with "FILE:LINE: message": typos,
 * duplicates, alg none, HS* with fetched keys, plain-http key URLs, world-writable sockets,
 * numbers that are not what they look like, NUL bytes, oversized files. */
#include "daemon/conf.h"
#include "proto/limits.h"
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>

static apr_pool_t *root_pool;
static char tmpdir[] = "/tmp/jwtauthz-test-conf-XXXXXX";
static char conf_path[256];
static conf_errors_t errs;

/* The smallest config that loads: one issuer with a fetched key set. */
#define ISSUER_OK                                                                                  \
    "{\"issuer\": \"https://idp.example.com/\", \"jwks_uri\": \"https://idp.example.com/jwks\", "  \
    "\"audiences\": [\"api://orders\"]}"

static void conf_write(const char *text, size_t len)
{
    FILE *fp = fopen(conf_path, "wb");
    CHECK(fp != NULL);
    if (fp != NULL) {
        CHECK(fwrite(text, 1, len, fp) == len);
        fclose(fp);
    }
}

/* Writes text to the test's config file and loads it into a fresh generation pool. */
static apr_status_t load(const char *text, apr_pool_t **gen, conf_t **conf)
{
    conf_write(text, strlen(text));
    apr_pool_create(gen, root_pool);
    return conf_load(*gen, conf_path, conf, &errs);
}

/* Loads text and expects it refused; returns 1 when an error line is exactly
 * "PATH:LINE: <message starting with want>" (line 0: any line). */
static int refused_with(const char *text, unsigned line, const char *want)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    apr_status_t rv = load(text, &gen, &conf);
    int found = 0;
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "%s:%u: ", conf_path, line);
    for (size_t i = 0; i < errs.nerrors && !found; i++) {
        const char *e = errs.errors[i];
        if (line == 0) {
            found = strncmp(e, conf_path, strlen(conf_path)) == 0 && strstr(e, want) != NULL;
        } else {
            found = strncmp(e, prefix, strlen(prefix)) == 0 &&
                    strncmp(e + strlen(prefix), want, strlen(want)) == 0;
        }
    }
    if (!found || rv != APR_EINVAL || conf != NULL) {
        fprintf(stderr, "expected line %u: %s (rv %d); got:\n", line, want, rv);
        conf_errors_print(&errs, stderr);
    }
    apr_pool_destroy(gen);
    return found && rv == APR_EINVAL && conf == NULL;
}

/* A config with one issuer object given as text, and no rules problem. */
static const char *with_issuer(const char *issuer)
{
    return apr_psprintf(root_pool, "{\"issuers\": [%s], \"rules\": []}", issuer);
}

static int accepted(const char *text)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    apr_status_t rv = load(text, &gen, &conf);
    if (rv != APR_SUCCESS) {
        conf_errors_print(&errs, stderr);
    }
    apr_pool_destroy(gen);
    return rv == APR_SUCCESS;
}

TEST(conf_minimal_config_gets_defaults)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    const char *text = "{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"resource\": \"*\"}]}";
    CHECK(load(text, &gen, &conf) == APR_SUCCESS);
    CHECK(conf != NULL);
    if (conf == NULL) {
        conf_errors_print(&errs, stderr);
        apr_pool_destroy(gen);
        return;
    }
    CHECK(errs.nerrors == 0 && errs.nwarnings == 0);
    CHECK_STREQ(conf->path, conf_path);
    CHECK(conf->pool == gen);
    CHECK_STREQ(conf->listen, "/run/jwtauthz/jwtauthz.sock");
    CHECK(conf->listen_mode == 0660);
    CHECK(conf->listen_group == NULL && !conf->listen_gid_set);
    CHECK_STREQ(conf->admin_listen, "/run/jwtauthz/admin.sock");
    CHECK(conf->admin_mode == 0600);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(conf->threads_auto && conf->threads >= 1 &&
          conf->threads == (ncpu < 1 ? 1u : (unsigned)ncpu));
    CHECK(conf->max_frame_bytes == 65536 && conf->max_token_bytes == 16384);
    CHECK(conf->log_level == CONF_LOG_INFO);
    CHECK(conf->token_cookie.ptr == NULL && conf->token_query.ptr == NULL);
    CHECK_STREQ(conf->cache_dir, "/var/cache/jwtauthz");
    CHECK(conf->cache_ttl_s == 300 && conf->cache_max_entries == 100000);
    CHECK(conf->nissuers == 1);
    const conf_issuer_t *iss = &conf->issuers[0];
    CHECK(proto_str_eq_cstr(iss->issuer, "https://idp.example.com/"));
    CHECK(iss->key_source == CONF_KEYS_URI);
    CHECK_STREQ(iss->jwks_uri, "https://idp.example.com/jwks");
    CHECK(iss->jwks_file == NULL && iss->discovery_uri == NULL && iss->ca_file == NULL);
    CHECK(iss->naudiences == 1 && proto_str_eq_cstr(iss->audiences[0], "api://orders"));
    CHECK(iss->algorithms == CONF_DEFAULT_ALGORITHMS);
    CHECK(iss->algorithms & JOSE_ALG_BIT(JOSE_ALG_RS256));
    CHECK(iss->algorithms & JOSE_ALG_BIT(JOSE_ALG_EDDSA));
    CHECK((iss->algorithms & CONF_ALG_SET_HMAC) == 0);
    CHECK(iss->leeway_s == 60 && iss->jwks_refresh_s == 600 && iss->jwks_min_refresh_s == 30);
    CHECK(iss->jwks_max_stale_s == 86400 && iss->fetch_timeout_s == 10);
    CHECK(proto_str_eq_cstr(iss->principal_claim, "sub"));
    CHECK(iss->ncontext_claims == 3 && proto_str_eq_cstr(iss->context_claims[0], "sub") &&
          proto_str_eq_cstr(iss->context_claims[1], "scope") &&
          proto_str_eq_cstr(iss->context_claims[2], "client_id"));
    CHECK(iss->typ.ptr == NULL);
    CHECK(iss->line == 1);
    CHECK(conf->rules.n == 1 && conf->rules.rules[0].effect == POLICY_ALLOW);
    CHECK(conf->rules.rules[0].nscopes == 0 && conf->rules.rules[0].nclaims == 0);
    apr_pool_destroy(gen);
}

/* The default config as the build configured it for installing (systemd/jwtauthz.conf with the
 * install paths filled in). */
TEST(conf_shipped_default_config_loads)
{
    const char *build = getenv("JWTAUTHZ_BUILD");
    CHECK_MSG(build != NULL, "JWTAUTHZ_BUILD is not set (run from ctest)");
    if (build == NULL) {
        return;
    }
    apr_pool_t *gen;
    conf_t *conf = NULL;
    apr_pool_create(&gen, root_pool);
    const char *path = apr_pstrcat(gen, build, "/systemd/jwtauthz.conf", NULL);
    CHECK(conf_load(gen, path, &conf, &errs) == APR_SUCCESS);
    if (conf == NULL) {
        conf_errors_print(&errs, stderr);
        apr_pool_destroy(gen);
        return;
    }
    CHECK(errs.nwarnings == 0);
    CHECK(conf->nissuers == 1);
    const conf_issuer_t *iss = &conf->issuers[0];
    CHECK(proto_str_eq_cstr(iss->issuer, "https://demo.jwtauthz.local/"));
    CHECK(iss->key_source == CONF_KEYS_FILE);
    /* Under the install prefix's sysconfdir: /etc/jwtauthz for prefix /usr. */
    size_t n = iss->jwks_file ? strlen(iss->jwks_file) : 0;
    static const char tail[] = "/jwtauthz/demo-jwks.json";
    CHECK(n > sizeof(tail) && iss->jwks_file[0] == '/' &&
          strcmp(iss->jwks_file + n - (sizeof(tail) - 1), tail) == 0);
    CHECK(iss->naudiences == 1 && proto_str_eq_cstr(iss->audiences[0], "api://demo"));
    CHECK(iss->algorithms == (JOSE_ALG_BIT(JOSE_ALG_RS256) | JOSE_ALG_BIT(JOSE_ALG_ES256)));
    CHECK(conf->rules.n == 2);
    const policy_rule_t *get = &conf->rules.rules[0], *del = &conf->rules.rules[1];
    CHECK(proto_str_eq_cstr(get->resource, "arn:aws:execute-api:*:*:*/*/GET/orders*"));
    CHECK(get->effect == POLICY_ALLOW && get->nscopes == 1 && get->nclaims == 0);
    CHECK(proto_str_eq_cstr(get->scopes[0], "orders:read"));
    CHECK(proto_str_eq_cstr(del->resource, "arn:aws:execute-api:*:*:*/*/DELETE/*"));
    CHECK(del->effect == POLICY_ALLOW && del->nscopes == 0 && del->nclaims == 1);
    CHECK(proto_str_eq_cstr(del->claims[0].name, "groups") && del->claims[0].nvalues == 1 &&
          proto_str_eq_cstr(del->claims[0].values[0], "admin"));
    CHECK(get->line > iss->line && del->line > get->line);
    CHECK(conf->cache_ttl_s == 300 && conf->cache_max_entries == 100000);
    apr_pool_destroy(gen);
}

TEST(conf_documented_example_loads)
{
    /* docs/config.md's complete example must stay a valid config. */
    const char *src = getenv("JWTAUTHZ_SRC");
    CHECK_MSG(src != NULL, "JWTAUTHZ_SRC is not set (run from ctest)");
    if (src == NULL) {
        return;
    }
    apr_pool_t *gen;
    apr_pool_create(&gen, root_pool);
    char *doc = NULL;
    apr_size_t len = 0;
    apr_file_t *f;
    apr_finfo_t fi;
    const char *md = apr_pstrcat(gen, src, "/docs/config.md", NULL);
    if (apr_file_open(&f, md, APR_FOPEN_READ, 0, gen) != APR_SUCCESS ||
        apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS) {
        CHECK_MSG(0, "cannot read %s", md);
        apr_pool_destroy(gen);
        return;
    }
    doc = apr_pcalloc(gen, (apr_size_t)fi.size + 1);
    CHECK(apr_file_read_full(f, doc, (apr_size_t)fi.size, &len) == APR_SUCCESS);
    apr_file_close(f);
    char *start = strstr(doc, "## A complete example");
    start = start ? strstr(start, "```\n") : NULL;
    char *end = start ? strstr(start + 4, "\n```") : NULL;
    CHECK(start != NULL && end != NULL);
    if (start == NULL || end == NULL) {
        apr_pool_destroy(gen);
        return;
    }
    *end = '\0';
    char *text = start + 4;
    /* The example names the web servers' group; not every test host has it. */
    char *grp = strstr(text, "\"www-data\"");
    if (grp != NULL && getgrnam("www-data") == NULL) {
        memcpy(grp, "\"root\"    ", 10);
    }
    conf_t *conf = NULL;
    conf_write(text, strlen(text));
    CHECK(conf_load(gen, conf_path, &conf, &errs) == APR_SUCCESS);
    if (conf == NULL) {
        conf_errors_print(&errs, stderr);
    } else {
        CHECK(conf->nissuers == 2 && conf->rules.n == 4);
        CHECK(conf->issuers[0].key_source == CONF_KEYS_DISCOVERY);
        CHECK(conf->issuers[1].algorithms == JOSE_ALG_BIT(JOSE_ALG_HS256));
        CHECK(conf->rules.rules[3].effect == POLICY_DENY);
        CHECK(proto_str_eq_cstr(conf->issuers[0].typ, "at+jwt"));
    }
    apr_pool_destroy(gen);
}

TEST(conf_typo_in_top_level_key_refused_with_line)
{
    const char *text = "{\n"
                       "  \"issuers\": [" ISSUER_OK "],\n"
                       "  \"thraeds\": 4\n"
                       "}\n";
    CHECK(refused_with(text, 3, "unknown key \"thraeds\" (did you mean \"threads\"?)"));
}

TEST(conf_typo_in_issuer_key_refused)
{
    /* "audience" for "audiences" would otherwise mean: no audience check at all. */
    const char *text = "{\"issuers\": [\n"
                       "  {\"issuer\": \"https://idp.example.com/\",\n"
                       "   \"jwks_uri\": \"https://idp.example.com/jwks\",\n"
                       "   \"audience\": [\"api://orders\"]}\n"
                       "]}";
    CHECK(refused_with(text, 4,
                       "issuers[0]: unknown key \"audience\" (did you mean \"audiences\"?)"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"decision_cache\": {\"tll\": 5}}", 1,
                       "decision_cache: unknown key \"tll\" (did you mean \"ttl\"?)"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"resource\": \"*\", "
                       "\"scope\": [\"a\"]}]}",
                       1, "rules[0]: unknown key \"scope\" (did you mean \"scopes\"?)"));
}

TEST(conf_duplicate_key_refused_at_second_occurrence)
{
    /* Two readers that keep the first or the last duplicate disagree on the setting. */
    const char *text = "{\n"
                       "  \"threads\": 2,\n"
                       "  \"issuers\": [" ISSUER_OK "],\n"
                       "  \"threads\": 8\n"
                       "}\n";
    CHECK(refused_with(text, 4, "duplicate key \"threads\" (first on line 2)"));
    const char *nested = "{\"issuers\": [\n"
                         "  {\"issuer\": \"https://idp.example.com/\",\n"
                         "   \"jwks_uri\": \"https://idp.example.com/jwks\",\n"
                         "   \"audiences\": [\"api://orders\"],\n"
                         "   \"audiences\": []}\n"
                         "]}";
    CHECK(refused_with(nested, 5, "duplicate key \"audiences\" (first on line 4)"));
}

TEST(conf_comments_allowed)
{
    const char *text = "// line comment before the document\n"
                       "{\n"
                       "  /* block\n"
                       "     comment */\n"
                       "  \"threads\": 2, // trailing comment\n"
                       "  \"issuers\": [" ISSUER_OK "], \"rules\": []\n"
                       "}\n"
                       "/* after */\n";
    CHECK(accepted(text));
}

TEST(conf_syntax_error_names_line)
{
    const char *text = "{\n"
                       "  \"threads\": 2,\n"
                       "  \"log_level\": \"info\"\n"
                       "  \"issuers\": []\n"
                       "}\n";
    CHECK(refused_with(text, 4, "JSON syntax error: "));
    /* An unclosed document is reported on its last line, not its first. */
    CHECK(refused_with("{\n\"threads\": 2,\n\n", 2, "JSON syntax error: premature EOF"));
    CHECK(refused_with("[1, 2]", 1, "the config must be a JSON object, not an array"));
}

TEST(conf_jwks_uri_plain_http_refused)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"http://idp/jwks\", \"audiences\": [\"a\"]}"),
                       1,
                       "issuers[0].jwks_uri must be an https:// URL; \"http://idp/jwks\" is plain "
                       "http"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://user:pw@idp/jwks\", \"audiences\": [\"a\"]}"),
                       1, "issuers[0].jwks_uri must be an https:// URL"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"ftp://idp/jwks\", \"audiences\": [\"a\"]}"),
                       1, "issuers[0].jwks_uri must be an https:// URL"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https:///jwks\", \"audiences\": [\"a\"]}"),
                       1, "issuers[0].jwks_uri must be an https:// URL"));
    /* Discovery fetches from the issuer itself: it must be https too. */
    CHECK(refused_with(with_issuer("{\"issuer\": \"http://idp/\", \"discovery\": true, "
                                   "\"audiences\": [\"a\"]}"),
                       1, "issuers[0]: discovery needs an https:// issuer"));
}

TEST(conf_alg_none_refused_in_any_spelling)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_file\": \"/k.json\", "
                                   "\"audiences\": [\"a\"], \"algorithms\": [\"RS256\", "
                                   "\"none\"]}"),
                       1, "issuers[0].algorithms[1] \"none\" is refused"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_file\": \"/k.json\", "
                                   "\"audiences\": [\"a\"], \"algorithms\": [\"NoNe\"]}"),
                       1, "issuers[0].algorithms[0] \"NoNe\" is refused"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_file\": \"/k.json\", "
                                   "\"audiences\": [\"a\"], \"algorithms\": [\"rs256\"]}"),
                       1, "issuers[0].algorithms[0] \"rs256\" is not a supported JWS algorithm"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_file\": \"/k.json\", "
                                   "\"audiences\": [\"a\"], \"algorithms\": []}"),
                       1, "issuers[0].algorithms lists no algorithm"));
}

TEST(conf_alg_confusion_hs256_with_fetched_keys_refused)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"algorithms\": [\"RS256\", \"HS256\"]}"),
                       1, "issuers[0].algorithms lists an HS* algorithm with a fetched key set"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"discovery\": true, "
                                   "\"audiences\": [\"a\"], \"algorithms\": [\"HS512\"]}"),
                       1, "issuers[0].algorithms lists an HS* algorithm with a fetched key set"));
    /* A local key file may hold a shared secret, when the operator lists HS* explicitly. */
    apr_pool_t *gen;
    conf_t *conf = NULL;
    CHECK(load(with_issuer("{\"issuer\": \"local\", \"jwks_file\": \"/etc/jwtauthz/hs.json\", "
                           "\"audiences\": [\"a\"], \"algorithms\": [\"HS256\"]}"),
               &gen, &conf) == APR_SUCCESS);
    CHECK(conf && conf->issuers[0].algorithms == JOSE_ALG_BIT(JOSE_ALG_HS256));
    apr_pool_destroy(gen);
}

TEST(conf_missing_key_source_refused)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"audiences\": [\"a\"]}"), 1,
                       "issuers[0] has no key source"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"discovery\": false, "
                                   "\"audiences\": [\"a\"]}"),
                       1, "issuers[0] has no key source"));
    CHECK(refused_with(with_issuer("{\"jwks_file\": \"/k.json\", \"audiences\": [\"a\"]}"), 1,
                       "issuers[0] has no \"issuer\""));
    CHECK(refused_with("{\"issuers\": []}", 1, "issuers must be a non-empty array"));
    CHECK(refused_with("{}", 1, "no \"issuers\""));
}

TEST(conf_two_key_sources_refused)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_file\": \"/k.json\", "
                                   "\"jwks_uri\": \"https://idp/jwks\", \"audiences\": [\"a\"]}"),
                       1, "issuers[0]: jwks_file and jwks_uri are two key sources"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"discovery\": true, "
                                   "\"jwks_uri\": \"https://idp/jwks\", \"audiences\": [\"a\"]}"),
                       1, "issuers[0]: discovery is true and jwks_uri is given: ambiguous"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"discovery\": true, "
                                   "\"jwks_file\": \"/k.json\", \"audiences\": [\"a\"]}"),
                       1, "issuers[0]: jwks_file and discovery are two key sources"));
}

TEST(conf_discovery_uri_built_from_issuer)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    CHECK(load(with_issuer("{\"issuer\": \"https://idp.example.com/tenant/\", \"discovery\": true, "
                           "\"audiences\": [\"a\"]}"),
               &gen, &conf) == APR_SUCCESS);
    CHECK(conf && conf->issuers[0].key_source == CONF_KEYS_DISCOVERY);
    CHECK(conf && conf->issuers[0].jwks_uri == NULL);
    CHECK_STREQ(conf ? conf->issuers[0].discovery_uri : NULL,
                "https://idp.example.com/tenant/.well-known/openid-configuration");
    apr_pool_destroy(gen);
}

TEST(conf_fetch_settings_refused_for_key_file)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"x\", \"jwks_file\": \"/k.json\", "
                                   "\"audiences\": [\"a\"], \"ca_file\": \"/ca.pem\"}"),
                       1, "issuers[0].ca_file applies only to fetched key sets"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"x\", \"jwks_file\": \"k.json\", "
                                   "\"audiences\": [\"a\"]}"),
                       1, "issuers[0].jwks_file must be an absolute path, not \"k.json\""));
}

TEST(conf_max_token_bytes_over_ceiling_refused)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"issuers\": [" ISSUER_OK "], \"max_frame_bytes\": %u, \"max_token_bytes\": %u}",
             PROTO_MAX_FRAME_BYTES_CEILING, JOSE_MAX_TOKEN_BYTES_CEILING);
    CHECK(accepted(text));
    snprintf(text, sizeof(text),
             "{\"issuers\": [" ISSUER_OK "], \"max_frame_bytes\": %u, \"max_token_bytes\": %u}",
             PROTO_MAX_FRAME_BYTES_CEILING, JOSE_MAX_TOKEN_BYTES_CEILING + 1);
    CHECK(refused_with(text, 1, "max_token_bytes must be between 512 and 262144, not 262145"));
    snprintf(text, sizeof(text), "{\"issuers\": [" ISSUER_OK "], \"max_frame_bytes\": %u}",
             PROTO_MAX_FRAME_BYTES_CEILING + 1);
    CHECK(refused_with(text, 1, "max_frame_bytes must be between 1 and 1048576, not 1048577"));
    /* The token must fit in a frame with the request around it. */
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"max_frame_bytes\": 16384}", 1,
                       "max_token_bytes (16384) must be less than max_frame_bytes (16384)"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"max_token_bytes\": 511}", 1,
                       "max_token_bytes must be between 512"));
}

TEST(conf_world_writable_socket_mode_refused)
{
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"listen_mode\": \"0666\"}", 1,
                       "listen_mode \"0666\" lets any local user connect"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"listen_mode\": \"777\"}", 1,
                       "listen_mode \"777\" lets any local user connect"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"admin_mode\": \"0660\"}", 1,
                       "admin_mode \"0660\" grants access beyond the owner"));
    /* A JSON number would be read as decimal: 660 is 01224. */
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"listen_mode\": 660}", 1,
                       "listen_mode must be a string of octal digits such as \"0660\", not 660"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"listen_mode\": \"0698\"}", 1,
                       "listen_mode must be 3 or 4 octal digits"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"listen_mode\": \"4660\"}", 1,
                       "listen_mode must be 3 or 4 octal digits no greater than \"0777\""));
    apr_pool_t *gen;
    conf_t *conf = NULL;
    CHECK(load("{\"issuers\": [" ISSUER_OK "], \"listen_mode\": \"0664\", \"admin_mode\": "
               "\"700\", \"rules\": []}",
               &gen, &conf) == APR_SUCCESS);
    CHECK(conf && conf->listen_mode == 0664 && conf->admin_mode == 0700);
    apr_pool_destroy(gen);
}

TEST(conf_listen_group_resolved_or_refused)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    CHECK(load("{\"issuers\": [" ISSUER_OK "], \"listen_group\": \"root\", \"rules\": []}", &gen,
               &conf) == APR_SUCCESS);
    CHECK(conf && conf->listen_gid_set && conf->listen_gid == 0);
    CHECK_STREQ(conf ? conf->listen_group : NULL, "root");
    apr_pool_destroy(gen);
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"listen_group\": \"no-such-grp-x7\"}", 1,
                       "listen_group \"no-such-grp-x7\" is not a known group"));
}

TEST(conf_non_integer_duration_refused)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"jwks_refresh\": 1e3}"),
                       1,
                       "issuers[0].jwks_refresh must be an integer written without fraction or "
                       "exponent, not 1e3"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"leeway\": 1.5}"),
                       1, "issuers[0].leeway must be an integer written without fraction"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"leeway\": \"60\"}"),
                       1, "issuers[0].leeway must be an integer, not the string \"60\""));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"decision_cache\": {\"ttl\": true}}", 1,
                       "decision_cache.ttl must be an integer, not true"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"threads\": 99999999999999999999999}", 1,
                       "threads must be between 0 and 256, not 99999999999999999999999"));
}

TEST(conf_negative_leeway_refused)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"leeway\": -5}"),
                       1, "issuers[0].leeway must be between 0 and 300, not -5"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"leeway\": 301}"),
                       1, "issuers[0].leeway must be between 0 and 300, not 301"));
    CHECK(accepted(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                               "\"https://idp/jwks\", \"audiences\": [\"a\"], \"leeway\": 300}")));
}

TEST(conf_refresh_timing_must_be_consistent)
{
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"jwks_min_refresh\": 900}"),
                       1,
                       "issuers[0].jwks_refresh (600, the default) must be at least "
                       "jwks_min_refresh (900)"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"jwks_max_stale\": 60}"),
                       1,
                       "issuers[0].jwks_max_stale (60) must be at least jwks_refresh (600, the "
                       "default)"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                                   "\"https://idp/jwks\", \"audiences\": [\"a\"], "
                                   "\"jwks_min_refresh\": 0}"),
                       1, "issuers[0].jwks_min_refresh must be between 1 and 86400, not 0"));
}

TEST(conf_several_errors_reported_at_once)
{
    const char *text = "{\n"
                       "  \"thraeds\": 4,\n"
                       "  \"log_level\": \"verbose\",\n"
                       "  \"issuers\": [{\n"
                       "    \"issuer\": \"https://idp/\",\n"
                       "    \"jwks_uri\": \"http://idp/jwks\",\n"
                       "    \"leeway\": -1\n"
                       "  }],\n"
                       "  \"rules\": [{\"resource\": \"*\", \"effect\": \"deny\"}]\n"
                       "}\n";
    CHECK(refused_with(text, 2, "unknown key \"thraeds\""));
    CHECK(errs.nerrors == 5);
    CHECK(refused_with(text, 3,
                       "log_level must be \"error\", \"warn\", \"info\" or \"debug\", "
                       "not \"verbose\""));
    CHECK(refused_with(text, 6, "issuers[0].jwks_uri must be an https:// URL"));
    CHECK(refused_with(text, 7, "issuers[0].leeway must be between 0 and 300, not -1"));
    CHECK(refused_with(text, 9, "rules[0].effect must be \"Allow\" or \"Deny\", not \"deny\""));
}

TEST(conf_error_count_capped)
{
    /* 30 unknown keys: the first CONF_MAX_ERRORS are kept, the rest counted. */
    char *text = apr_pstrdup(root_pool, "{\"issuers\": [" ISSUER_OK "]");
    for (int i = 0; i < 30; i++) {
        text = apr_psprintf(root_pool, "%s, \"bogus%d\": %d", text, i, i);
    }
    text = apr_pstrcat(root_pool, text, "}", NULL);
    CHECK(refused_with(text, 1, "unknown key \"bogus0\""));
    CHECK(errs.nerrors == CONF_MAX_ERRORS && errs.nerrors_dropped == 30 - CONF_MAX_ERRORS);
    char out[16384];
    FILE *fp = fmemopen(out, sizeof(out), "w");
    CHECK(fp != NULL);
    if (fp != NULL) {
        conf_errors_print(&errs, fp);
        fclose(fp);
        CHECK(strstr(out, "(10 more errors not shown)\n") != NULL);
        CHECK(strstr(out, "unknown key \"bogus19\"") != NULL);
        CHECK(strstr(out, "unknown key \"bogus20\"") == NULL);
    }
}

TEST(conf_oversized_file_refused_without_reading_it)
{
    /* Exactly CONF_MAX_BYTES loads (padding is whitespace); one byte more is refused. */
    const char *head = "{\"issuers\": [" ISSUER_OK "], \"rules\": []}";
    size_t n = CONF_MAX_BYTES;
    char *text = malloc(n + 1);
    CHECK(text != NULL);
    if (text == NULL) {
        return;
    }
    memset(text, ' ', n + 1);
    memcpy(text, head, strlen(head));
    apr_pool_t *gen;
    conf_t *conf = NULL;
    conf_write(text, n);
    apr_pool_create(&gen, root_pool);
    CHECK(conf_load(gen, conf_path, &conf, &errs) == APR_SUCCESS);
    apr_pool_destroy(gen);
    conf_write(text, n + 1);
    apr_pool_create(&gen, root_pool);
    CHECK(conf_load(gen, conf_path, &conf, &errs) == APR_EINVAL && conf == NULL);
    CHECK(errs.nerrors == 1 && strstr(errs.errors[0], "is 1048577 bytes; a config may be at most "
                                                      "1048576") != NULL);
    apr_pool_destroy(gen);
    free(text);
    /* A sparse 64 GiB file: reading or allocating it first would take the test down. */
    int fd = open(conf_path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)1 << 36) == 0);
    if (fd >= 0) {
        close(fd);
    }
    apr_pool_create(&gen, root_pool);
    CHECK(conf_load(gen, conf_path, &conf, &errs) == APR_EINVAL && conf == NULL);
    CHECK_STREQ(
        errs.errors[0],
        apr_psprintf(gen, "%s: is 68719476736 bytes; a config may be at most 1048576", conf_path));
    apr_pool_destroy(gen);
}

TEST(conf_unreadable_file_reported)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    apr_pool_create(&gen, root_pool);
    const char *missing = apr_pstrcat(gen, tmpdir, "/missing.conf", NULL);
    apr_status_t rv = conf_load(gen, missing, &conf, &errs);
    CHECK(APR_STATUS_IS_ENOENT(rv) && conf == NULL && errs.nerrors == 1);
    CHECK(strncmp(errs.errors[0], apr_pstrcat(gen, missing, ": cannot open: ", NULL),
                  strlen(missing) + 15) == 0);
    CHECK(conf_load(gen, tmpdir, &conf, &errs) == APR_EINVAL && conf == NULL);
    CHECK(errs.nerrors == 1 && strstr(errs.errors[0], "not a regular file") != NULL);
    apr_pool_destroy(gen);
}

TEST(conf_nul_in_issuer_refused)
{
    /* "https://idp/\u0000evil" would be "https://idp/" to any C string consumer. */
    CHECK(refused_with(with_issuer("{\"issuer\": \"https://idp/\\u0000evil\", \"jwks_file\": "
                                   "\"/k.json\", \"audiences\": [\"a\"]}"),
                       1,
                       "issuers[0].issuer must not contain a NUL byte: \"https://idp/\\x00evil\""));
    CHECK(refused_with(with_issuer("{\"issuer\": \"x\", \"jwks_file\": \"/k\\u0000.json\", "
                                   "\"audiences\": [\"a\"]}"),
                       1, "issuers[0].jwks_file must not contain a NUL byte"));
    CHECK(refused_with(with_issuer("{\"issuer\": \"x\", \"jwks_file\": \"/k.json\", "
                                   "\"audiences\": [\"a\\u0000b\"]}"),
                       1, "issuers[0].audiences[0] must not contain a NUL byte"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"resource\": \"*\", "
                       "\"claims\": {\"grp\": \"a\\u0000\"}}]}",
                       1, "rules[0].claims.grp must not contain a NUL byte"));
}

TEST(conf_duplicate_issuer_refused)
{
    const char *text = "{\"issuers\": [\n" ISSUER_OK ",\n" ISSUER_OK "\n]}";
    CHECK(refused_with(text, 3,
                       "issuers[1].issuer \"https://idp.example.com/\" is already configured by "
                       "issuers[0] (line 2)"));
}

TEST(conf_rules_read_into_policy)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    const char *text = "{\"issuers\": [" ISSUER_OK "], \"rules\": [\n"
                       "  {\"resource\": \"*/GET/*\", \"scopes\": [\"a:read\", \"b\"]},\n"
                       "  {\"resource\": \"*/DELETE/*\", \"effect\": \"Deny\",\n"
                       "   \"claims\": {\"groups\": [\"x\", \"y\"], \"tier\": \"gold\"}}\n"
                       "]}";
    CHECK(load(text, &gen, &conf) == APR_SUCCESS);
    if (conf != NULL) {
        const policy_rule_t *r = conf->rules.rules;
        CHECK(conf->rules.n == 2);
        CHECK(r[0].line == 2 && r[0].effect == POLICY_ALLOW && r[0].nscopes == 2);
        CHECK(proto_str_eq_cstr(r[0].scopes[1], "b"));
        CHECK(r[1].line == 3 && r[1].effect == POLICY_DENY && r[1].nclaims == 2);
        CHECK(proto_str_eq_cstr(r[1].claims[0].name, "groups") && r[1].claims[0].nvalues == 2);
        CHECK(proto_str_eq_cstr(r[1].claims[0].values[1], "y"));
        CHECK(proto_str_eq_cstr(r[1].claims[1].name, "tier") && r[1].claims[1].nvalues == 1);
    }
    apr_pool_destroy(gen);
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"resource\": \"*\", "
                       "\"scopes\": [\"a b\"]}]}",
                       1, "rules[0].scopes[0] \"a b\" holds a space"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"resource\": \"*\", "
                       "\"scopes\": []}]}",
                       1, "rules[0].scopes lists no scope"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"resource\": \"*\", "
                       "\"claims\": {\"g\": []}}]}",
                       1, "rules[0].claims.g must be a string or a non-empty array of strings"));
    /* A claim name with a newline is quoted and escaped: one message, one line (fuzz_config). */
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"resource\": \"*\", "
                       "\"claims\": {\"a\\nb\": 1}}]}",
                       1, "rules[0].claims.\"a\\x0ab\" must be a string"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"rules\": [{\"scopes\": [\"a\"]}]}", 1,
                       "rules[0] has no \"resource\""));
    char *many = apr_pstrdup(root_pool, "{\"issuers\": [" ISSUER_OK "], \"rules\": [");
    for (unsigned i = 0; i <= POLICY_MAX_RULES; i++) {
        many = apr_pstrcat(root_pool, many, i ? "," : "", "{\"resource\": \"*\"}", NULL);
    }
    many = apr_pstrcat(root_pool, many, "]}", NULL);
    CHECK(refused_with(many, 1, "rules lists 257 rules; at most 256 are allowed"));
}

TEST(conf_weak_settings_warned)
{
    apr_pool_t *gen;
    conf_t *conf = NULL;
    const char *text = "{\"issuers\": [{\"issuer\": \"https://idp/\", \"jwks_uri\": "
                       "\"https://idp/jwks\"}],\n"
                       "\"token_query\": \"access_token\", \"token_cookie\": \"jwt\"}";
    CHECK(load(text, &gen, &conf) == APR_SUCCESS);
    CHECK(conf && proto_str_eq_cstr(conf->token_query, "access_token"));
    CHECK(conf && proto_str_eq_cstr(conf->token_cookie, "jwt"));
    CHECK(errs.nwarnings == 3);
    int aud = 0, query = 0, rules = 0;
    for (size_t i = 0; i < errs.nwarnings; i++) {
        aud |= strstr(errs.warnings[i], ":1: warning: issuers[0] (\"https://idp/\") has no "
                                        "audiences") != NULL;
        query |= strstr(errs.warnings[i], ":2: warning: token_query: ") != NULL;
        rules |= strstr(errs.warnings[i], ":1: warning: no \"rules\"") != NULL;
    }
    CHECK(aud && query && rules);
    apr_pool_destroy(gen);
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"token_cookie\": \"a;b\"}", 1,
                       "token_cookie \"a;b\" is not a cookie name"));
}

TEST(conf_socket_paths_checked)
{
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"admin_listen\": "
                       "\"/run/jwtauthz/jwtauthz.sock\"}",
                       1, "admin_listen and listen are the same path"));
    CHECK(refused_with("{\"issuers\": [" ISSUER_OK "], \"listen\": \"jwtauthz.sock\"}", 1,
                       "listen must be an absolute path"));
    char text[512];
    char longpath[120];
    memset(longpath, 'a', sizeof(longpath));
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"issuers\": [" ISSUER_OK "], \"listen\": \"%s\"}", longpath);
    CHECK(refused_with(text, 1, "listen is 119 bytes; a socket path must be under 108"));
    CHECK(accepted("{\"issuers\": [" ISSUER_OK "], \"cache_dir\": \"\", \"rules\": []}"));
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&root_pool, NULL);
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(conf_path, sizeof(conf_path), "%s/jwtauthz.conf", tmpdir);

    RUN(conf_minimal_config_gets_defaults);
    RUN(conf_shipped_default_config_loads);
    RUN(conf_documented_example_loads);
    RUN(conf_typo_in_top_level_key_refused_with_line);
    RUN(conf_typo_in_issuer_key_refused);
    RUN(conf_duplicate_key_refused_at_second_occurrence);
    RUN(conf_comments_allowed);
    RUN(conf_syntax_error_names_line);
    RUN(conf_jwks_uri_plain_http_refused);
    RUN(conf_alg_none_refused_in_any_spelling);
    RUN(conf_alg_confusion_hs256_with_fetched_keys_refused);
    RUN(conf_missing_key_source_refused);
    RUN(conf_two_key_sources_refused);
    RUN(conf_discovery_uri_built_from_issuer);
    RUN(conf_fetch_settings_refused_for_key_file);
    RUN(conf_max_token_bytes_over_ceiling_refused);
    RUN(conf_world_writable_socket_mode_refused);
    RUN(conf_listen_group_resolved_or_refused);
    RUN(conf_non_integer_duration_refused);
    RUN(conf_negative_leeway_refused);
    RUN(conf_refresh_timing_must_be_consistent);
    RUN(conf_several_errors_reported_at_once);
    RUN(conf_error_count_capped);
    RUN(conf_oversized_file_refused_without_reading_it);
    RUN(conf_unreadable_file_reported);
    RUN(conf_nul_in_issuer_refused);
    RUN(conf_duplicate_issuer_refused);
    RUN(conf_rules_read_into_policy);
    RUN(conf_weak_settings_warned);
    RUN(conf_socket_paths_checked);

    unlink(conf_path);
    rmdir(tmpdir);
    apr_pool_destroy(root_pool);
    apr_terminate();
    return harness_report();
}
