/* The "rules" section of the config into policy_rules_t: each rule's resource pattern, effect
 * (Allow unless "Deny"), required scopes (all of them) and claims (each one any of its values).
 * What a rule means at request time is policy.c's business; this file only reads and checks. */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "daemon/conf.h"
#include "daemon/conf_read.h"
#include "daemon/policy.h"

static const char *const conf_rule_keys[] = {"resource", "effect", "scopes", "claims", NULL};

static void conf_effect_parse(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                              policy_rule_t *rule)
{
    proto_str_t s;
    rule->effect = POLICY_ALLOW;
    if (conf_member_string(c, obj, where, "effect", 0, &s) != CONF_SET) {
        return;
    }
    /* IAM spells them so, case-sensitively; "deny" written by mistake must not become Allow. */
    if (proto_str_eq_cstr(s, "Allow")) {
        rule->effect = POLICY_ALLOW;
    } else if (proto_str_eq_cstr(s, "Deny")) {
        rule->effect = POLICY_DENY;
    } else {
        conf_error(c, proto_json_get(obj, "effect"),
                   "%s.effect must be \"Allow\" or \"Deny\", not %s", where, conf_quote(c, s));
    }
}

static void conf_scopes_parse(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                              policy_rule_t *rule)
{
    const proto_json_t *v = proto_json_get(obj, "scopes");
    if (conf_member_strings(c, obj, where, "scopes", CONF_MAX_RULE_ITEMS, &rule->scopes,
                            &rule->nscopes) != CONF_SET) {
        return;
    }
    if (rule->nscopes == 0) {
        conf_error(c, v, "%s.scopes lists no scope: omit it to match every valid token", where);
        return;
    }
    for (size_t i = 0; i < rule->nscopes; i++) {
        /* RFC 6749 §3.3: scope is a space-delimited list, so one scope never holds a space. */
        if (memchr(rule->scopes[i].ptr, ' ', rule->scopes[i].len) != NULL) {
            conf_error(c, v->u.array.items[i],
                       "%s.scopes[%zu] %s holds a space: list each scope as its own string", where,
                       i, conf_quote(c, rule->scopes[i]));
        }
    }
}

/* A claim's name as messages show it: bare while it is printable ASCII or UTF-8, else quoted with
 * its control bytes escaped (conf_quote): a newline in a name must not forge a line of -t's
 * output or of the log. Found by fuzz_config. */
static const char *conf_claim_label(conf_ctx_t *c, proto_str_t key)
{
    for (size_t i = 0; i < key.len; i++) {
        unsigned char b = (unsigned char)key.ptr[i];
        if (b < 0x20 || b == 0x7f || b == '"' || b == '\\') {
            return conf_quote(c, key);
        }
    }
    return apr_pstrmemdup(c->scratch, key.ptr, key.len);
}

/* One claim requirement: "name": "value" or "name": ["value", ...] (any of them). */
static int conf_claim_parse(conf_ctx_t *c, const proto_json_member_t *m, const char *where,
                            policy_claim_req_t *req)
{
    const proto_json_t *v = m->value;
    const char *name;
    if (m->key.len == 0 || proto_str_has_nul(m->key)) {
        conf_error(c, v, "%s.claims has a claim name that is empty or holds a NUL: %s", where,
                   conf_quote(c, m->key));
        return CONF_BAD;
    }
    req->name = proto_str_make(apr_pstrmemdup(c->pool, m->key.ptr, m->key.len), m->key.len);
    name = apr_pstrcat(c->scratch, where, ".claims.", conf_claim_label(c, m->key), NULL);
    if (v->type == PROTO_JSON_STRING) {
        req->values = apr_palloc(c->pool, sizeof(*req->values));
        req->nvalues = 1;
        return conf_value_string(c, v, name, 0, &req->values[0]);
    }
    if (v->type != PROTO_JSON_ARRAY || v->u.array.count == 0) {
        conf_error(c, v, "%s must be a string or a non-empty array of strings, not %s", name,
                   v->type == PROTO_JSON_ARRAY ? "an empty array" : conf_describe(c, v));
        return CONF_BAD;
    }
    if (v->u.array.count > CONF_MAX_RULE_ITEMS) {
        conf_error(c, v, "%s lists %zu values; at most %u are allowed", name, v->u.array.count,
                   CONF_MAX_RULE_ITEMS);
        return CONF_BAD;
    }
    int rc = CONF_SET;
    req->nvalues = v->u.array.count;
    req->values = apr_pcalloc(c->pool, req->nvalues * sizeof(*req->values));
    for (size_t i = 0; i < req->nvalues; i++) {
        const char *item = conf_sprintf(c, "%s[%zu]", name, i);
        if (conf_value_string(c, v->u.array.items[i], item, 0, &req->values[i]) != CONF_SET) {
            rc = CONF_BAD;
        }
    }
    return rc;
}

static void conf_claims_parse(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                              policy_rule_t *rule)
{
    const proto_json_t *v = proto_json_get(obj, "claims");
    if (v == NULL) {
        return;
    }
    if (v->type != PROTO_JSON_OBJECT || v->u.object.count == 0) {
        conf_error(c, v, "%s.claims must be a non-empty object of claim name to value(s), not %s",
                   where, v->type == PROTO_JSON_OBJECT ? "an empty object" : conf_describe(c, v));
        return;
    }
    if (v->u.object.count > CONF_MAX_RULE_CLAIMS) {
        conf_error(c, v, "%s.claims names %zu claims; at most %u are allowed", where,
                   v->u.object.count, CONF_MAX_RULE_CLAIMS);
        return;
    }
    rule->claims = apr_pcalloc(c->pool, v->u.object.count * sizeof(*rule->claims));
    rule->nclaims = v->u.object.count;
    for (size_t i = 0; i < v->u.object.count; i++) {
        conf_claim_parse(c, &v->u.object.members[i], where, &rule->claims[i]);
    }
}

static void conf_rule_parse(conf_ctx_t *c, const proto_json_t *obj, size_t index,
                            policy_rule_t *rule)
{
    const char *where = conf_sprintf(c, "rules[%zu]", index);
    rule->line = conf_line(c, obj);
    conf_keys_check(c, obj, where, conf_rule_keys);
    int rc = conf_member_string(c, obj, where, "resource", CONF_STR_NONEMPTY, &rule->resource);
    if (rc == CONF_ABSENT) {
        conf_error(c, obj, "%s has no \"resource\": it is required", where);
    } else if (rc == CONF_SET && rule->resource.len > POLICY_MAX_PATTERN_BYTES) {
        conf_error(c, proto_json_get(obj, "resource"),
                   "%s.resource is %zu bytes; a pattern may be at most %u", where,
                   rule->resource.len, POLICY_MAX_PATTERN_BYTES);
    }
    conf_effect_parse(c, obj, where, rule);
    conf_scopes_parse(c, obj, where, rule);
    conf_claims_parse(c, obj, where, rule);
}

/* The policy module's own check, as a last guard: what it refuses must never reach it. Its
 * message is "LINE: rules[I]: message". */
static void conf_rules_check_policy(conf_ctx_t *c, const policy_rules_t *rules)
{
    char err[CONF_MESSAGE_BYTES];
    if (policy_rules_check(rules, err, sizeof(err)) == 0) {
        return;
    }
    char *rest = NULL;
    unsigned long line = strtoul(err, &rest, 10);
    if (rest != NULL && rest != err && rest[0] == ':' && rest[1] == ' ') {
        conf_error_line(c, (unsigned)line, "%s", rest + 2);
    } else {
        conf_error_file(c, "%s", err);
    }
}

void conf_rules_parse(conf_ctx_t *c, const proto_json_t *root, policy_rules_t *rules)
{
    const proto_json_t *v = proto_json_get(root, "rules");
    size_t errors_before = c->errs->nerrors + c->errs->nerrors_dropped;
    if (v == NULL) {
        conf_warning(c, root, "no \"rules\": every request will be denied");
        return;
    }
    if (v->type != PROTO_JSON_ARRAY) {
        conf_error(c, v, "rules must be an array of objects, not %s", conf_describe(c, v));
        return;
    }
    if (v->u.array.count > POLICY_MAX_RULES) {
        conf_error(c, v, "rules lists %zu rules; at most %u are allowed", v->u.array.count,
                   POLICY_MAX_RULES);
        return;
    }
    if (v->u.array.count == 0) {
        conf_warning(c, v, "rules is empty: every request will be denied");
    }
    rules->n = v->u.array.count;
    rules->rules = apr_pcalloc(c->pool, (rules->n ? rules->n : 1) * sizeof(*rules->rules));
    for (size_t i = 0; i < rules->n; i++) {
        const proto_json_t *item = v->u.array.items[i];
        if (item->type != PROTO_JSON_OBJECT) {
            conf_error(c, item, "rules[%zu] must be an object, not %s", i, conf_describe(c, item));
            continue;
        }
        conf_rule_parse(c, item, i, &rules->rules[i]);
    }
    if (c->errs->nerrors + c->errs->nerrors_dropped == errors_before) {
        conf_rules_check_policy(c, rules);
    }
}
