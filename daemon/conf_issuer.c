/* The "issuers" section of the config: each trusted issuer, its one key source (jwks_file,
 * jwks_uri or discovery), audiences, algorithms and key-refresh timing, checked against each
 * other. It only describes issuers: fetching and reading keys is jwks_*.c's business. */
#include <string.h>

#include <apr_strings.h>

#include "daemon/conf.h"
#include "daemon/conf_read.h"

/* OpenID Connect Discovery 1.0 §4: the configuration document's path under the issuer. */
#define CONF_DISCOVERY_SUFFIX "/.well-known/openid-configuration"

static const char *const conf_issuer_keys[] = {
    "issuer",           "discovery",
    "jwks_uri",         "jwks_file",
    "audiences",        "algorithms",
    "leeway",           "jwks_refresh",
    "jwks_min_refresh", "jwks_max_stale",
    "ca_file",          "principal_claim",
    "context_claims",   "typ",
    "fetch_timeout",    NULL,
};

/* Settings of a fetch: meaningless for a jwks_file, and refused there so nobody believes they
 * apply. */
static const char *const conf_fetch_only_keys[] = {
    "jwks_refresh", "jwks_min_refresh", "jwks_max_stale", "ca_file", "fetch_timeout", NULL,
};

static void conf_issuer_defaults_set(conf_ctx_t *c, conf_issuer_t *iss)
{
    static const char *const context_claims[] = {"sub", "scope", "client_id"};
    size_t n = sizeof(context_claims) / sizeof(context_claims[0]);
    iss->algorithms = CONF_DEFAULT_ALGORITHMS;
    iss->leeway_s = CONF_DEFAULT_LEEWAY_S;
    iss->jwks_refresh_s = CONF_DEFAULT_JWKS_REFRESH_S;
    iss->jwks_min_refresh_s = CONF_DEFAULT_JWKS_MIN_REFRESH_S;
    iss->jwks_max_stale_s = CONF_DEFAULT_JWKS_MAX_STALE_S;
    iss->fetch_timeout_s = CONF_DEFAULT_FETCH_TIMEOUT_S;
    iss->principal_claim = PROTO_STR_LIT("sub");
    iss->context_claims = apr_palloc(c->pool, n * sizeof(*iss->context_claims));
    for (size_t i = 0; i < n; i++) {
        iss->context_claims[i] = proto_str_make(context_claims[i], strlen(context_claims[i]));
    }
    iss->ncontext_claims = n;
}

/* "algorithms": known JWS names; "none" is refused by name (RFC 8725 §3.1), HS* only with a key
 * file (checked by the caller, who knows the key source). Returns the algorithms named validly,
 * even when another entry was refused, so the HS* check still runs. */
static jose_alg_set_t conf_algorithms_parse(conf_ctx_t *c, const proto_json_t *obj,
                                            const char *where, conf_issuer_t *iss)
{
    const proto_json_t *v = proto_json_get(obj, "algorithms");
    const char *name = conf_name(c, where, "algorithms");
    jose_alg_set_t set = 0;
    int bad = 0;
    if (v == NULL) {
        return iss->algorithms;
    }
    if (v->type != PROTO_JSON_ARRAY) {
        conf_error(c, v, "%s must be an array of algorithm names, not %s", name,
                   conf_describe(c, v));
        return 0;
    }
    if (v->u.array.count == 0) {
        conf_error(c, v, "%s lists no algorithm: omit it for the default (every asymmetric one)",
                   name);
        return 0;
    }
    for (size_t i = 0; i < v->u.array.count; i++) {
        const proto_json_t *item = v->u.array.items[i];
        const char *item_name = conf_sprintf(c, "%s[%zu]", name, i);
        proto_str_t alg;
        if (conf_value_string(c, item, item_name, CONF_STR_NONEMPTY, &alg) != CONF_SET) {
            bad = 1;
            continue;
        }
        if (jose_alg_is_none(alg)) {
            conf_error(c, item,
                       "%s %s is refused: an unsigned token proves nothing (RFC 8725 §3.1)",
                       item_name, conf_quote(c, alg));
            bad = 1;
            continue;
        }
        jose_alg_e a = jose_alg_from_name(alg);
        if (a == JOSE_ALG_UNKNOWN) {
            conf_error(c, item,
                       "%s %s is not a supported JWS algorithm (HS256..512, RS256..512, "
                       "PS256..512, ES256..512, EdDSA; names are case-sensitive)",
                       item_name, conf_quote(c, alg));
            bad = 1;
            continue;
        }
        set |= JOSE_ALG_BIT(a);
    }
    if (!bad) {
        iss->algorithms = set;
    }
    return set;
}

/* Works out the one key source. Returns 0 when there is none or more than one (error recorded). */
static int conf_key_source_decide(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                                  conf_issuer_t *iss, int discovery)
{
    const proto_json_t *uri = proto_json_get(obj, "jwks_uri");
    const proto_json_t *file = proto_json_get(obj, "jwks_file");
    if (discovery && uri != NULL) {
        conf_error(c, uri,
                   "%s: discovery is true and jwks_uri is given: ambiguous, give one of them",
                   where);
        return 0;
    }
    if (file != NULL && (uri != NULL || discovery)) {
        conf_error(c, file, "%s: jwks_file and %s are two key sources: give exactly one", where,
                   uri != NULL ? "jwks_uri" : "discovery");
        return 0;
    }
    if (file == NULL && uri == NULL && !discovery) {
        conf_error(c, obj, "%s has no key source: give jwks_file, jwks_uri, or \"discovery\": true",
                   where);
        return 0;
    }
    iss->key_source = file ? CONF_KEYS_FILE : uri ? CONF_KEYS_URI : CONF_KEYS_DISCOVERY;
    return 1;
}

/* The key source's own value: the file path, the URL, or the discovery URL made from the issuer. */
static void conf_key_source_parse(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                                  conf_issuer_t *iss, int issuer_ok)
{
    proto_str_t uri;
    const char *problem;
    switch (iss->key_source) {
    case CONF_KEYS_FILE:
        conf_member_path(c, obj, where, "jwks_file", 0, &iss->jwks_file);
        break;
    case CONF_KEYS_URI:
        if (conf_member_string(c, obj, where, "jwks_uri", CONF_STR_NONEMPTY, &uri) != CONF_SET) {
            break;
        }
        problem = conf_https_url_problem(c, uri);
        if (problem != NULL) {
            conf_error(c, proto_json_get(obj, "jwks_uri"),
                       "%s.jwks_uri must be an https:// URL; %s is %s", where, conf_quote(c, uri),
                       problem);
            break;
        }
        iss->jwks_uri = uri.ptr;
        break;
    case CONF_KEYS_DISCOVERY:
        if (!issuer_ok) {
            break;
        }
        problem = conf_https_url_problem(c, iss->issuer);
        if (problem == NULL && strpbrk(iss->issuer.ptr, "?#") != NULL) {
            problem = "not usable for discovery: an issuer has no query or fragment";
        }
        if (problem != NULL) {
            /* OpenID Connect Discovery 1.0 §2: the issuer is an https URL to fetch from. */
            conf_error(c, proto_json_get(obj, "issuer"),
                       "%s: discovery needs an https:// issuer; %s is %s", where,
                       conf_quote(c, iss->issuer), problem);
            break;
        }
        size_t n = iss->issuer.len;
        if (n > 0 && iss->issuer.ptr[n - 1] == '/') {
            n--; /* §4.1: a terminating "/" is removed before the suffix is appended */
        }
        /* The key store copies the URL into CONF_MAX_URL_BYTES + 1 bytes: a longer one would
         * be cut short there and a different URL fetched. */
        if (n + sizeof(CONF_DISCOVERY_SUFFIX) - 1 > CONF_MAX_URL_BYTES) {
            conf_error(c, proto_json_get(obj, "issuer"),
                       "%s: the discovery URL made from the issuer would be longer than %u bytes",
                       where, CONF_MAX_URL_BYTES);
            break;
        }
        iss->discovery_uri = apr_pstrcat(c->pool, apr_pstrmemdup(c->scratch, iss->issuer.ptr, n),
                                         CONF_DISCOVERY_SUFFIX, NULL);
        break;
    }
}

/* Refresh timing and the TLS settings of a fetch; refused outright for a key file. */
static void conf_fetch_parse(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                             conf_issuer_t *iss)
{
    if (iss->key_source == CONF_KEYS_FILE) {
        for (const char *const *k = conf_fetch_only_keys; *k; k++) {
            const proto_json_t *v = proto_json_get(obj, *k);
            if (v != NULL) {
                conf_error(c, v,
                           "%s.%s applies only to fetched key sets (jwks_uri or discovery), not "
                           "to jwks_file",
                           where, *k);
            }
        }
        return;
    }
    int min = conf_member_unsigned(c, obj, where, "jwks_min_refresh", 1, CONF_MAX_JWKS_REFRESH_S,
                                   &iss->jwks_min_refresh_s);
    int refresh = conf_member_unsigned(c, obj, where, "jwks_refresh", 1, CONF_MAX_JWKS_REFRESH_S,
                                       &iss->jwks_refresh_s);
    int stale = conf_member_unsigned(c, obj, where, "jwks_max_stale", 1, CONF_MAX_JWKS_MAX_STALE_S,
                                     &iss->jwks_max_stale_s);
    if (min != CONF_BAD && refresh != CONF_BAD && iss->jwks_refresh_s < iss->jwks_min_refresh_s) {
        conf_error(c,
                   proto_json_get(obj, refresh == CONF_SET ? "jwks_refresh" : "jwks_min_refresh"),
                   "%s.jwks_refresh (%u%s) must be at least jwks_min_refresh (%u%s)", where,
                   iss->jwks_refresh_s, refresh == CONF_SET ? "" : ", the default",
                   iss->jwks_min_refresh_s, min == CONF_SET ? "" : ", the default");
    }
    /* Keys go stale only after scheduled refreshes have failed: less than one period is a set
     * that expires while nothing is wrong. */
    if (refresh != CONF_BAD && stale != CONF_BAD && iss->jwks_max_stale_s < iss->jwks_refresh_s) {
        conf_error(c, proto_json_get(obj, stale == CONF_SET ? "jwks_max_stale" : "jwks_refresh"),
                   "%s.jwks_max_stale (%u%s) must be at least jwks_refresh (%u%s)", where,
                   iss->jwks_max_stale_s, stale == CONF_SET ? "" : ", the default",
                   iss->jwks_refresh_s, refresh == CONF_SET ? "" : ", the default");
    }
    conf_member_unsigned(c, obj, where, "fetch_timeout", 1, CONF_MAX_FETCH_TIMEOUT_S,
                         &iss->fetch_timeout_s);
    conf_member_path(c, obj, where, "ca_file", 0, &iss->ca_file);
}

static void conf_issuer_parse(conf_ctx_t *c, const proto_json_t *obj, size_t index,
                              conf_issuer_t *iss)
{
    const char *where = conf_sprintf(c, "issuers[%zu]", index);
    int discovery = 0, issuer_ok;

    conf_issuer_defaults_set(c, iss);
    iss->line = conf_line(c, obj);
    conf_keys_check(c, obj, where, conf_issuer_keys);

    issuer_ok = conf_member_string(c, obj, where, "issuer", CONF_STR_NONEMPTY, &iss->issuer);
    if (issuer_ok == CONF_ABSENT) {
        conf_error(c, obj, "%s has no \"issuer\": it is required (the token's iss)", where);
    }
    conf_member_bool(c, obj, where, "discovery", &discovery);
    if (conf_key_source_decide(c, obj, where, iss, discovery)) {
        conf_key_source_parse(c, obj, where, iss, issuer_ok == CONF_SET);
        conf_fetch_parse(c, obj, where, iss);
    }

    if (conf_member_strings(c, obj, where, "audiences", CONF_MAX_LIST_ITEMS, &iss->audiences,
                            &iss->naudiences) != CONF_BAD &&
        iss->naudiences == 0 && issuer_ok == CONF_SET) {
        const proto_json_t *aud = proto_json_get(obj, "audiences");
        conf_warning(c, aud ? aud : obj,
                     "%s (%s) has no audiences: its tokens are accepted whatever their aud, "
                     "including tokens minted for other APIs",
                     where, conf_quote(c, iss->issuer));
    }

    jose_alg_set_t listed = conf_algorithms_parse(c, obj, where, iss);
    /* RFC 8725 §3.1: with HS* allowed, a fetched set could hold (or be made to hold) a secret that
     * anyone who reads the set can sign with. HMAC keys come from a local file or not at all. */
    if ((listed & CONF_ALG_SET_HMAC) && iss->key_source != CONF_KEYS_FILE && iss->key_source != 0) {
        conf_error(c, proto_json_get(obj, "algorithms"),
                   "%s.algorithms lists an HS* algorithm with a fetched key set: HMAC keys are "
                   "shared secrets and must come from jwks_file (RFC 8725 §3.1)",
                   where);
    }

    conf_member_unsigned(c, obj, where, "leeway", 0, CONF_MAX_LEEWAY_S, &iss->leeway_s);
    conf_member_string(c, obj, where, "principal_claim", CONF_STR_NONEMPTY, &iss->principal_claim);
    conf_member_strings(c, obj, where, "context_claims", CONF_MAX_LIST_ITEMS, &iss->context_claims,
                        &iss->ncontext_claims);
    conf_member_string(c, obj, where, "typ", CONF_STR_NONEMPTY, &iss->typ);
}

void conf_issuers_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf)
{
    const proto_json_t *v = proto_json_get(root, "issuers");
    if (v == NULL) {
        conf_error(c, root, "no \"issuers\": at least one issuer is required");
        return;
    }
    if (v->type != PROTO_JSON_ARRAY || v->u.array.count == 0) {
        conf_error(c, v, "issuers must be a non-empty array of objects, not %s",
                   v->type == PROTO_JSON_ARRAY ? "an empty array" : conf_describe(c, v));
        return;
    }
    if (v->u.array.count > CONF_MAX_ISSUERS) {
        conf_error(c, v, "issuers lists %zu issuers; at most %u are allowed", v->u.array.count,
                   CONF_MAX_ISSUERS);
        return;
    }
    conf->nissuers = v->u.array.count;
    conf->issuers = apr_pcalloc(c->pool, conf->nissuers * sizeof(*conf->issuers));
    for (size_t i = 0; i < conf->nissuers; i++) {
        const proto_json_t *item = v->u.array.items[i];
        if (item->type != PROTO_JSON_OBJECT) {
            conf_error(c, item, "issuers[%zu] must be an object, not %s", i,
                       conf_describe(c, item));
            continue;
        }
        conf_issuer_parse(c, item, i, &conf->issuers[i]);
        /* Tokens are routed to an issuer by iss: two entries for one iss would make the choice
         * of keys and audiences depend on order. */
        for (size_t j = 0; j < i; j++) {
            if (conf->issuers[i].issuer.ptr != NULL &&
                proto_str_eq(conf->issuers[i].issuer, conf->issuers[j].issuer)) {
                conf_error(c, proto_json_get(item, "issuer"),
                           "issuers[%zu].issuer %s is already configured by issuers[%zu] (line "
                           "%u)",
                           i, conf_quote(c, conf->issuers[i].issuer), j, conf->issuers[j].line);
                break;
            }
        }
    }
}
