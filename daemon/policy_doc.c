/* The API Gateway policyDocument for a token's match set: what a decision reply carries so a
 * caller sees which resources the token may and may not invoke. Output only, via yajl_gen; it
 * decides nothing (policy.c does) and must list exactly the met rules' resources. */
#include "policy.h"

/* IAM's policy language version; the only one API Gateway accepts for authorizer policies. */
#define POLICY_DOC_VERSION "2012-10-17"
#define POLICY_DOC_ACTION "execute-api:Invoke"

#define GEN_STR(g, lit) yajl_gen_string((g), (const unsigned char *)(lit), sizeof(lit) - 1)

static int rule_effect_is(const policy_rule_t *r, policy_effect_e effect)
{
    /* Anything that is not a clean Allow is written and evaluated as Deny. */
    return effect == POLICY_ALLOW ? r->effect == POLICY_ALLOW : r->effect != POLICY_ALLOW;
}

/* Returns 1 when an earlier met rule of the same effect already listed this resource. With at
 * most POLICY_MAX_RULES rules the quadratic scan is at most ~32k short compares. */
static int resource_listed_before(const policy_rules_t *rules, const policy_match_t *m, size_t i,
                                  policy_effect_e effect)
{
    for (size_t j = 0; j < i; j++) {
        const policy_rule_t *r = &rules->rules[j];
        if (policy_match_has(m, j) && rule_effect_is(r, effect) &&
            proto_str_eq(r->resource, rules->rules[i].resource)) {
            return 1;
        }
    }
    return 0;
}

static size_t rules_in_use(const policy_rules_t *rules)
{
    return rules->n < POLICY_MAX_RULES ? rules->n : POLICY_MAX_RULES;
}

static int effect_has_resources(const policy_rules_t *rules, const policy_match_t *m,
                                policy_effect_e effect)
{
    size_t n = rules_in_use(rules);
    for (size_t i = 0; i < n; i++) {
        if (policy_match_has(m, i) && rule_effect_is(&rules->rules[i], effect)) {
            return 1;
        }
    }
    return 0;
}

static yajl_gen_status statement_write(yajl_gen g, const policy_rules_t *rules,
                                       const policy_match_t *m, policy_effect_e effect)
{
    yajl_gen_status st;
    size_t n = rules_in_use(rules);

    if ((st = yajl_gen_map_open(g)) != yajl_gen_status_ok ||
        (st = GEN_STR(g, "Action")) != yajl_gen_status_ok ||
        (st = GEN_STR(g, POLICY_DOC_ACTION)) != yajl_gen_status_ok ||
        (st = GEN_STR(g, "Effect")) != yajl_gen_status_ok) {
        return st;
    }
    st = effect == POLICY_ALLOW ? GEN_STR(g, "Allow") : GEN_STR(g, "Deny");
    if (st != yajl_gen_status_ok || (st = GEN_STR(g, "Resource")) != yajl_gen_status_ok ||
        (st = yajl_gen_array_open(g)) != yajl_gen_status_ok) {
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        const policy_rule_t *r = &rules->rules[i];
        if (!policy_match_has(m, i) || !rule_effect_is(r, effect) ||
            resource_listed_before(rules, m, i, effect)) {
            continue;
        }
        st = yajl_gen_string(g, (const unsigned char *)r->resource.ptr, r->resource.len);
        if (st != yajl_gen_status_ok) {
            return st;
        }
    }
    if ((st = yajl_gen_array_close(g)) != yajl_gen_status_ok) {
        return st;
    }
    return yajl_gen_map_close(g);
}

yajl_gen_status policy_document_write(yajl_gen g, const policy_rules_t *rules,
                                      const policy_match_t *m)
{
    yajl_gen_status st;

    if ((st = yajl_gen_map_open(g)) != yajl_gen_status_ok ||
        (st = GEN_STR(g, "Version")) != yajl_gen_status_ok ||
        (st = GEN_STR(g, POLICY_DOC_VERSION)) != yajl_gen_status_ok ||
        (st = GEN_STR(g, "Statement")) != yajl_gen_status_ok ||
        (st = yajl_gen_array_open(g)) != yajl_gen_status_ok) {
        return st;
    }
    if (effect_has_resources(rules, m, POLICY_ALLOW) &&
        (st = statement_write(g, rules, m, POLICY_ALLOW)) != yajl_gen_status_ok) {
        return st;
    }
    if (effect_has_resources(rules, m, POLICY_DENY) &&
        (st = statement_write(g, rules, m, POLICY_DENY)) != yajl_gen_status_ok) {
        return st;
    }
    if ((st = yajl_gen_array_close(g)) != yajl_gen_status_ok) {
        return st;
    }
    return yajl_gen_map_close(g);
}
