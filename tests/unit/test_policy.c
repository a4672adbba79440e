/* Policy rules (daemon/policy.h): IAM wildcards, explicit Deny over Allow, no match is Deny, scopes
 * from "scope" and "scp", claim requirements, NUL bytes that must never match, hostile patterns
 * that must stay cheap, the exact policyDocument, and the config checks' messages. */
#include "daemon/policy.h"
#include "proto/json.h"
#include "harness.h"

#include <yajl/yajl_gen.h>

static proto_arena_t arena;
static proto_alloc_t alloc;

#define ARN_GET_ORDER "arn:aws:execute-api:local:0:api/prod/GET/orders/42"
#define ARN_POST_ORDER "arn:aws:execute-api:local:0:api/prod/POST/orders/42"
#define ARN_DELETE_ORDER "arn:aws:execute-api:local:0:api/prod/DELETE/orders/42"

static proto_str_t S(const char *s)
{
    return proto_str_make(s, strlen(s));
}

static int glob(const char *pattern, const char *subject)
{
    return policy_pattern_match(S(pattern), S(subject), NULL);
}

static const proto_json_t *claims_of(const char *json)
{
    proto_json_t *v = NULL;
    proto_json_error_t err;
    if (proto_json_read(json, strlen(json), NULL, &alloc, &v, &err) != PROTO_JSON_OK) {
        fprintf(stderr, "bad test JSON: %s\n", err.message);
        return NULL;
    }
    return v;
}

static policy_rule_t rule_allow(const char *resource)
{
    policy_rule_t r;
    memset(&r, 0, sizeof(r));
    r.resource = S(resource);
    r.effect = POLICY_ALLOW;
    r.line = 1;
    return r;
}

static policy_rule_t rule_deny(const char *resource)
{
    policy_rule_t r = rule_allow(resource);
    r.effect = POLICY_DENY;
    return r;
}

/* One rule, one token: does the token meet it? */
static int meets(policy_rule_t *r, const char *claims_json)
{
    policy_rules_t rules = {r, 1};
    policy_match_t m;
    policy_match(&rules, claims_of(claims_json), &m);
    return policy_match_has(&m, 0);
}

static policy_effect_e decide(policy_rule_t *r, size_t n, const char *claims_json, const char *arn)
{
    policy_rules_t rules = {r, n};
    policy_match_t m;
    policy_match(&rules, claims_of(claims_json), &m);
    return policy_evaluate(&rules, &m, S(arn));
}

/* ---- wildcards ------------------------------------------------------------------------------- */

TEST(star_matches_empty_run)
{
    CHECK(glob("*", ""));
    CHECK(glob("a*b", "ab"));
    CHECK(glob("a*", "a"));
    CHECK(glob("*a", "a"));
    CHECK(glob("**", ""));
    CHECK(glob("a*b", "axxxb"));
    CHECK(!glob("a*b", "axxxbc"));
}

TEST(question_mark_is_exactly_one_character)
{
    CHECK(glob("a?c", "abc"));
    CHECK(!glob("a?c", "ac"));
    CHECK(!glob("a?c", "abbc"));
    CHECK(!glob("?", ""));
    CHECK(glob("??", "ab"));
    /* One character, not one byte: an e-acute is two bytes of UTF-8, a euro sign three. */
    CHECK(glob("a?c", "a\xc3\xa9"
                      "c"));
    CHECK(!glob("a??c", "a\xc3\xa9"
                        "c"));
    CHECK(glob("*/?", "orders/\xe2\x82\xac"));
    CHECK(glob("*\xc3\xa9*", "caf\xc3\xa9s"));
}

TEST(pattern_without_wildcards_is_literal_and_case_sensitive)
{
    CHECK(glob("GET/orders", "GET/orders"));
    CHECK(!glob("GET/orders", "get/orders"));
    CHECK(!glob("GET/orders", "GET/orders/"));
    CHECK(!glob("GET/orders", "GET/order"));
    CHECK(glob("a[b].c", "a[b].c"));
    CHECK(!glob("a[b].c", "ab.c"));
    CHECK(!glob("", "x"));
    CHECK(glob("", ""));
}

TEST(contract_patterns_match_execute_api_arns)
{
    const char *get_orders = "arn:aws:execute-api:*:*:*/*/GET/orders*";
    CHECK(glob(get_orders, ARN_GET_ORDER));
    CHECK(glob(get_orders, "arn:aws:execute-api:local:0:api/prod/GET/orders"));
    CHECK(!glob(get_orders, ARN_POST_ORDER));
    CHECK(!glob(get_orders, "arn:aws:execute-api:local:0:api/prod/get/orders/42"));
    CHECK(glob("*/DELETE/*", ARN_DELETE_ORDER));
    CHECK(!glob("*/DELETE/*", ARN_GET_ORDER));
    CHECK(!glob("*/DELETE/*", "arn:aws:execute-api:local:0:api/prod/DELETE"));
    CHECK(glob("arn:aws:execute-api:local:0:api/prod/??"
               "?/orders/42",
               ARN_GET_ORDER));
    CHECK(!glob("arn:aws:execute-api:local:0:api/prod/??"
                "?/orders/42",
                ARN_POST_ORDER));
}

TEST(hostile_glob_stays_linear)
{
    /* A recursive matcher takes exponential time on a*a*a*...b against a long run of a's. */
    static char pattern[4096], subject[65536];
    size_t plen = 0, slen = sizeof(subject) - 1, steps = 0;
    for (int i = 0; i < 1000; i++) {
        pattern[plen++] = 'a';
        pattern[plen++] = '*';
    }
    pattern[plen++] = 'b';
    memset(subject, 'a', slen);
    CHECK(!policy_pattern_match(proto_str_make(pattern, plen), proto_str_make(subject, slen),
                                &steps));
    /* Longest run between stars is 1: bound (|s|+1)(1+2) + 2|p|. */
    CHECK_MSG(steps <= (slen + 1) * 3 + 2 * plen, "steps %zu", steps);

    /* The iterative matcher's worst case: a long literal run after a star, retried at every
     * position. Work stays |s| x (run + 2), not more. */
    plen = 0;
    pattern[plen++] = '*';
    memset(pattern + plen, 'a', 64);
    plen += 64;
    pattern[plen++] = 'b';
    CHECK(!policy_pattern_match(proto_str_make(pattern, plen), proto_str_make(subject, slen),
                                &steps));
    CHECK_MSG(steps <= (slen + 1) * (65 + 2) + 2 * plen, "steps %zu", steps);

    /* And the matching case still matches. */
    subject[slen - 1] = 'b';
    CHECK(
        policy_pattern_match(proto_str_make(pattern, plen), proto_str_make(subject, slen), &steps));
}

/* ---- evaluation ------------------------------------------------------------------------------ */

TEST(deny_beats_allow)
{
    policy_rule_t r[2] = {rule_allow("*"), rule_deny("*/DELETE/*")};
    CHECK(decide(r, 2, "{\"sub\":\"u\"}", ARN_DELETE_ORDER) == POLICY_DENY);
    CHECK(decide(r, 2, "{\"sub\":\"u\"}", ARN_GET_ORDER) == POLICY_ALLOW);
    /* Order in the config does not matter: a Deny listed last still wins. */
    policy_rule_t rev[2] = {rule_deny("*/DELETE/*"), rule_allow("*")};
    CHECK(decide(rev, 2, "{\"sub\":\"u\"}", ARN_DELETE_ORDER) == POLICY_DENY);
    CHECK(decide(rev, 2, "{\"sub\":\"u\"}", ARN_GET_ORDER) == POLICY_ALLOW);
}

TEST(no_matching_rule_is_deny)
{
    policy_rule_t r[1] = {rule_allow("arn:aws:execute-api:*:*:*/*/GET/orders*")};
    proto_str_t scope = S("orders:read");
    r[0].scopes = &scope;
    r[0].nscopes = 1;
    CHECK(decide(r, 1, "{\"scope\":\"orders:read\"}", ARN_GET_ORDER) == POLICY_ALLOW);
    CHECK(decide(r, 1, "{\"scope\":\"orders:read\"}", ARN_POST_ORDER) == POLICY_DENY);
    CHECK(decide(r, 1, "{\"scope\":\"profile\"}", ARN_GET_ORDER) == POLICY_DENY);
    CHECK(decide(r, 0, "{\"scope\":\"orders:read\"}", ARN_GET_ORDER) == POLICY_DENY);
}

TEST(deny_rule_applies_only_to_tokens_meeting_it)
{
    proto_str_t blocked = S("blocked");
    policy_claim_req_t q = {S("groups"), &blocked, 1};
    policy_rule_t r[2] = {rule_allow("*"), rule_deny("*")};
    r[1].claims = &q;
    r[1].nclaims = 1;
    CHECK(decide(r, 2, "{\"groups\":[\"dev\"]}", ARN_GET_ORDER) == POLICY_ALLOW);
    CHECK(decide(r, 2, "{\"groups\":[\"dev\",\"blocked\"]}", ARN_GET_ORDER) == POLICY_DENY);
}

TEST(arn_with_nul_or_past_bound_is_deny)
{
    policy_rule_t r[1] = {rule_allow("*")};
    policy_rules_t rules = {r, 1};
    policy_match_t m;
    static char big[POLICY_MAX_ARN_BYTES + 1];
    policy_match(&rules, claims_of("{}"), &m);
    CHECK(policy_evaluate(&rules, &m, proto_str_make("a\0b", 3)) == POLICY_DENY);
    memset(big, 'a', sizeof(big));
    CHECK(policy_evaluate(&rules, &m, proto_str_make(big, POLICY_MAX_ARN_BYTES)) == POLICY_ALLOW);
    CHECK(policy_evaluate(&rules, &m, proto_str_make(big, sizeof(big))) == POLICY_DENY);
}

TEST(rule_without_requirements_meets_every_token)
{
    policy_rule_t r = rule_allow("*");
    CHECK(meets(&r, "{}"));
    CHECK(meets(&r, "{\"sub\":\"x\"}"));
}

TEST(claims_that_are_not_an_object_meet_nothing)
{
    policy_rule_t r[1] = {rule_allow("*")};
    policy_rules_t rules = {r, 1};
    policy_match_t m;
    policy_match(&rules, NULL, &m);
    CHECK(!policy_match_has(&m, 0));
    policy_match(&rules, claims_of("[\"scope\"]"), &m);
    CHECK(!policy_match_has(&m, 0));
    CHECK(policy_evaluate(&rules, &m, S(ARN_GET_ORDER)) == POLICY_DENY);
}

TEST(match_set_covers_rules_past_the_first_word)
{
    static policy_rule_t r[POLICY_MAX_RULES];
    proto_str_t scope = S("rare");
    for (size_t i = 0; i < POLICY_MAX_RULES; i++) {
        r[i] = rule_allow("x");
        r[i].scopes = &scope;
        r[i].nscopes = 1;
    }
    r[POLICY_MAX_RULES - 1] = rule_allow("*/GET/*");
    r[130] = rule_allow("*/POST/*");
    policy_rules_t rules = {r, POLICY_MAX_RULES};
    policy_match_t m;
    policy_match(&rules, claims_of("{}"), &m);
    CHECK(policy_match_has(&m, 130) && policy_match_has(&m, POLICY_MAX_RULES - 1));
    CHECK(!policy_match_has(&m, 0) && !policy_match_has(&m, 129));
    CHECK(policy_evaluate(&rules, &m, S(ARN_POST_ORDER)) == POLICY_ALLOW);
    CHECK(policy_evaluate(&rules, &m, S(ARN_GET_ORDER)) == POLICY_ALLOW);
    CHECK(policy_evaluate(&rules, &m, S(ARN_DELETE_ORDER)) == POLICY_DENY);
}

/* ---- scopes ---------------------------------------------------------------------------------- */

TEST(scope_string_is_space_delimited)
{
    proto_str_t want = S("orders:read");
    policy_rule_t r = rule_allow("*");
    r.scopes = &want;
    r.nscopes = 1;
    CHECK(meets(&r, "{\"scope\":\"orders:read\"}"));
    CHECK(meets(&r, "{\"scope\":\"openid orders:read profile\"}"));
    CHECK(meets(&r, "{\"scope\":\"openid  orders:read\"}"));
    CHECK(!meets(&r, "{\"scope\":[\"orders:read\"]}")); /* RFC 9068: scope is a string */
    CHECK(!meets(&r, "{\"scope\":\"\"}"));
    CHECK(!meets(&r, "{}"));
}

TEST(scp_array_or_string_satisfies_scope)
{
    proto_str_t want = S("orders:read");
    policy_rule_t r = rule_allow("*");
    r.scopes = &want;
    r.nscopes = 1;
    CHECK(meets(&r, "{\"scp\":[\"profile\",\"orders:read\"]}"));
    CHECK(meets(&r, "{\"scp\":\"profile orders:read\"}"));
    CHECK(meets(&r, "{\"scope\":\"profile\",\"scp\":[\"orders:read\"]}"));
    CHECK(!meets(&r, "{\"scp\":[\"profile orders:read\"]}")); /* an array item is one scope */
    CHECK(!meets(&r, "{\"scp\":[[\"orders:read\"]]}"));
}

TEST(scope_prefix_is_not_scope)
{
    proto_str_t want = S("orders:read");
    policy_rule_t r = rule_allow("*");
    r.scopes = &want;
    r.nscopes = 1;
    CHECK(!meets(&r, "{\"scope\":\"orders:readx\"}"));
    CHECK(!meets(&r, "{\"scope\":\"orders:rea\"}"));
    CHECK(!meets(&r, "{\"scope\":\"xorders:read\"}"));
    CHECK(!meets(&r, "{\"scope\":\"orders:read:all\"}"));
    CHECK(!meets(&r, "{\"scope\":\"ORDERS:READ\"}"));
    CHECK(!meets(&r, "{\"scp\":[\"orders:readx\"]}"));
}

TEST(every_listed_scope_is_required)
{
    proto_str_t want[2] = {S("orders:read"), S("orders:write")};
    policy_rule_t r = rule_allow("*");
    r.scopes = want;
    r.nscopes = 2;
    CHECK(meets(&r, "{\"scope\":\"orders:write orders:read\"}"));
    CHECK(meets(&r, "{\"scope\":\"orders:write\",\"scp\":[\"orders:read\"]}"));
    CHECK(!meets(&r, "{\"scope\":\"orders:read\"}"));
}

TEST(scope_claim_holding_nul_never_matches)
{
    proto_str_t want = S("orders:read");
    policy_rule_t r = rule_allow("*");
    r.scopes = &want;
    r.nscopes = 1;
    /* The whole string is refused, not just the token with the NUL in it. */
    CHECK(!meets(&r, "{\"scope\":\"x\\u0000 orders:read\"}"));
    CHECK(!meets(&r, "{\"scope\":\"orders:read\\u0000\"}"));
    CHECK(!meets(&r, "{\"scp\":[\"orders:read\\u0000\"]}"));
}

/* ---- claims ---------------------------------------------------------------------------------- */

TEST(claim_values_are_any_of)
{
    proto_str_t vals[2] = {S("admin"), S("ops")};
    policy_claim_req_t q = {S("groups"), vals, 2};
    policy_rule_t r = rule_allow("*");
    r.claims = &q;
    r.nclaims = 1;
    CHECK(meets(&r, "{\"groups\":\"ops\"}"));
    CHECK(meets(&r, "{\"groups\":\"admin\"}"));
    CHECK(!meets(&r, "{\"groups\":\"dev\"}"));
    CHECK(!meets(&r, "{\"groups\":\"Admin\"}"));
    CHECK(!meets(&r, "{\"groups\":\"admin ops\"}")); /* claims are not space-split */
    CHECK(!meets(&r, "{\"Groups\":\"admin\"}"));
    CHECK(!meets(&r, "{}"));
}

TEST(claim_met_by_array_holding_value)
{
    proto_str_t val = S("admin");
    policy_claim_req_t q = {S("groups"), &val, 1};
    policy_rule_t r = rule_allow("*");
    r.claims = &q;
    r.nclaims = 1;
    CHECK(meets(&r, "{\"groups\":[\"dev\",\"admin\"]}"));
    CHECK(!meets(&r, "{\"groups\":[\"dev\"]}"));
    CHECK(!meets(&r, "{\"groups\":[]}"));
    CHECK(!meets(&r, "{\"groups\":[[\"admin\"]]}"));
    CHECK(!meets(&r, "{\"groups\":{\"admin\":true}}"));
    CHECK(!meets(&r, "{\"groups\":null}"));
}

TEST(claim_numbers_and_booleans_compare_by_json_text)
{
    proto_str_t two = S("2"), yes = S("true");
    policy_claim_req_t q[2] = {{S("tier"), &two, 1}, {S("email_verified"), &yes, 1}};
    policy_rule_t r = rule_allow("*");
    r.claims = q;
    r.nclaims = 2;
    CHECK(meets(&r, "{\"tier\":2,\"email_verified\":true}"));
    CHECK(meets(&r, "{\"tier\":\"2\",\"email_verified\":\"true\"}"));
    CHECK(meets(&r, "{\"tier\":[1,2],\"email_verified\":true}"));
    CHECK(!meets(&r, "{\"tier\":2.0,\"email_verified\":true}"));
    CHECK(!meets(&r, "{\"tier\":2,\"email_verified\":false}"));
    CHECK(!meets(&r, "{\"tier\":2}")); /* every claim requirement is needed */
}

TEST(claim_holding_nul_never_matches)
{
    proto_str_t val = S("admin");
    policy_claim_req_t q = {S("groups"), &val, 1};
    policy_rule_t r = rule_allow("*");
    r.claims = &q;
    r.nclaims = 1;
    CHECK(!meets(&r, "{\"groups\":\"admin\\u0000\"}"));
    CHECK(!meets(&r, "{\"groups\":\"admin\\u0000x\"}"));
    CHECK(!meets(&r, "{\"groups\":[\"admin\\u0000\"]}"));

    /* Even a requirement that itself holds the NUL (the config check refuses it) matches
     * nothing. */
    proto_str_t nul_val = proto_str_make("admin\0", 6);
    q.values = &nul_val;
    CHECK(!meets(&r, "{\"groups\":\"admin\\u0000\"}"));
}

TEST(claim_name_holding_nul_is_not_a_prefix_match)
{
    proto_str_t val = S("x");
    policy_claim_req_t q = {S("role"), &val, 1};
    policy_rule_t r = rule_allow("*");
    r.claims = &q;
    r.nclaims = 1;
    CHECK(!meets(&r, "{\"role\\u0000evil\":\"x\"}"));
    CHECK(meets(&r, "{\"role\\u0000evil\":\"y\",\"role\":\"x\"}"));
}

/* ---- policyDocument -------------------------------------------------------------------------- */

static char doc_buf[4096];

static const char *document_of(policy_rule_t *r, size_t n, const char *claims_json)
{
    policy_rules_t rules = {r, n};
    policy_match_t m;
    const unsigned char *out;
    size_t len;
    yajl_gen g = yajl_gen_alloc(NULL);

    policy_match(&rules, claims_of(claims_json), &m);
    doc_buf[0] = '\0';
    if (policy_document_write(g, &rules, &m) == yajl_gen_status_ok &&
        yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok && len < sizeof(doc_buf)) {
        memcpy(doc_buf, out, len);
        doc_buf[len] = '\0';
    }
    yajl_gen_free(g);
    return doc_buf;
}

TEST(policy_document_lists_met_rules_exactly)
{
    proto_str_t read = S("orders:read"), admin = S("admin");
    policy_claim_req_t q = {S("groups"), &admin, 1};
    policy_rule_t r[4] = {rule_allow("arn:aws:execute-api:*:*:*/*/GET/orders*"),
                          rule_allow("*/DELETE/*"), rule_deny("*/GET/orders/secret"),
                          rule_allow("*/POST/*")};
    r[0].scopes = &read;
    r[0].nscopes = 1;
    r[1].claims = &q;
    r[1].nclaims = 1;
    r[3].scopes = &admin; /* not met: the token has no "admin" scope */
    r[3].nscopes = 1;
    CHECK_STREQ(document_of(r, 4, "{\"scope\":\"orders:read\",\"groups\":[\"admin\"]}"),
                "{\"Version\":\"2012-10-17\",\"Statement\":["
                "{\"Action\":\"execute-api:Invoke\",\"Effect\":\"Allow\",\"Resource\":["
                "\"arn:aws:execute-api:*:*:*/*/GET/orders*\",\"*/DELETE/*\"]},"
                "{\"Action\":\"execute-api:Invoke\",\"Effect\":\"Deny\",\"Resource\":["
                "\"*/GET/orders/secret\"]}]}");
    CHECK_STREQ(document_of(r, 4, "{\"scope\":\"orders:read\"}"),
                "{\"Version\":\"2012-10-17\",\"Statement\":["
                "{\"Action\":\"execute-api:Invoke\",\"Effect\":\"Allow\",\"Resource\":["
                "\"arn:aws:execute-api:*:*:*/*/GET/orders*\"]},"
                "{\"Action\":\"execute-api:Invoke\",\"Effect\":\"Deny\",\"Resource\":["
                "\"*/GET/orders/secret\"]}]}");
}

TEST(policy_document_folds_duplicate_resources)
{
    policy_rule_t r[5] = {rule_allow("*/GET/*"), rule_allow("*/PUT/*"), rule_allow("*/GET/*"),
                          rule_deny("*/GET/*"), rule_deny("*/GET/*")};
    CHECK_STREQ(document_of(r, 5, "{}"),
                "{\"Version\":\"2012-10-17\",\"Statement\":["
                "{\"Action\":\"execute-api:Invoke\",\"Effect\":\"Allow\",\"Resource\":["
                "\"*/GET/*\",\"*/PUT/*\"]},"
                "{\"Action\":\"execute-api:Invoke\",\"Effect\":\"Deny\",\"Resource\":["
                "\"*/GET/*\"]}]}");
}

TEST(policy_document_empty_when_no_rule_met)
{
    proto_str_t read = S("orders:read");
    policy_rule_t r[1] = {rule_allow("*")};
    r[0].scopes = &read;
    r[0].nscopes = 1;
    CHECK_STREQ(document_of(r, 1, "{}"), "{\"Version\":\"2012-10-17\",\"Statement\":[]}");
    CHECK_STREQ(document_of(r, 0, "{}"), "{\"Version\":\"2012-10-17\",\"Statement\":[]}");
}

TEST(policy_document_only_deny_statement)
{
    policy_rule_t r[1] = {rule_deny("*")};
    CHECK_STREQ(document_of(r, 1, "{}"),
                "{\"Version\":\"2012-10-17\",\"Statement\":["
                "{\"Action\":\"execute-api:Invoke\",\"Effect\":\"Deny\",\"Resource\":[\"*\"]}]}");
}

/* ---- config checks --------------------------------------------------------------------------- */

static const char *check_message(policy_rule_t *r, size_t n)
{
    static char err[256];
    policy_rules_t rules = {r, n};
    err[0] = '\0';
    return policy_rules_check(&rules, err, sizeof(err)) == 0 ? "ok" : err;
}

TEST(rules_check_accepts_contract_rules)
{
    proto_str_t read = S("orders:read"), admin = S("admin");
    policy_claim_req_t q = {S("groups"), &admin, 1};
    policy_rule_t r[2] = {rule_allow("arn:aws:execute-api:*:*:*/*/GET/orders*"),
                          rule_allow("*/DELETE/*")};
    r[0].scopes = &read;
    r[0].nscopes = 1;
    r[1].claims = &q;
    r[1].nclaims = 1;
    CHECK_STREQ(check_message(r, 2), "ok");
}

TEST(rules_check_names_line_of_bad_rule)
{
    policy_rule_t r[2] = {rule_allow("*"), rule_allow("")};
    r[1].line = 14;
    CHECK_STREQ(check_message(r, 2), "14: rules[1]: resource is empty");

    r[1].resource = proto_str_make("a\0b", 3);
    CHECK_STREQ(check_message(r, 2), "14: rules[1]: resource holds a NUL byte");

    static char longpat[POLICY_MAX_PATTERN_BYTES + 1];
    memset(longpat, '*', sizeof(longpat));
    r[1].resource = proto_str_make(longpat, POLICY_MAX_PATTERN_BYTES);
    CHECK_STREQ(check_message(r, 2), "ok");
    r[1].resource = proto_str_make(longpat, sizeof(longpat));
    CHECK_STREQ(check_message(r, 2), "14: rules[1]: resource is longer than 2048 bytes");
}

TEST(rules_check_refuses_scopes_that_can_never_match)
{
    proto_str_t scopes[2] = {S("orders:read"), S("orders:read orders:write")};
    policy_rule_t r[1] = {rule_allow("*")};
    r[0].line = 7;
    r[0].scopes = scopes;
    r[0].nscopes = 2;
    CHECK_STREQ(check_message(r, 1),
                "7: rules[0]: scope is empty or holds a space or NUL \"orders:read orders:write\"");
    scopes[1] = S("");
    CHECK_STREQ(check_message(r, 1), "7: rules[0]: scope is empty or holds a space or NUL \"\"");
    scopes[1] = proto_str_make("x\0", 2);
    CHECK_STREQ(check_message(r, 1), "7: rules[0]: scope is empty or holds a space or NUL");
}

TEST(rules_check_refuses_bad_claim_requirements)
{
    proto_str_t vals[1] = {proto_str_make("adm\0in", 6)};
    policy_claim_req_t q = {S("groups"), vals, 0};
    policy_rule_t r[1] = {rule_allow("*")};
    r[0].line = 3;
    r[0].claims = &q;
    r[0].nclaims = 1;
    CHECK_STREQ(check_message(r, 1), "3: rules[0]: no values for claim \"groups\"");
    q.nvalues = 1;
    CHECK_STREQ(check_message(r, 1), "3: rules[0]: value holds a NUL byte for claim \"groups\"");
    q.name = S("");
    CHECK_STREQ(check_message(r, 1), "3: rules[0]: claim name is empty or holds a NUL");
}

TEST(rules_check_refuses_one_rule_past_the_limit)
{
    static policy_rule_t r[POLICY_MAX_RULES + 1];
    for (size_t i = 0; i <= POLICY_MAX_RULES; i++) {
        r[i] = rule_allow("*");
        r[i].line = (unsigned)(10 + i);
    }
    CHECK_STREQ(check_message(r, POLICY_MAX_RULES), "ok");
    CHECK_STREQ(check_message(r, POLICY_MAX_RULES + 1),
                "266: rules[256]: too many rules (257), at most 256");
}

int main(void)
{
    proto_arena_init(&arena, 16u * 1024u * 1024u);
    alloc = proto_arena_allocator(&arena);

    RUN(star_matches_empty_run);
    RUN(question_mark_is_exactly_one_character);
    RUN(pattern_without_wildcards_is_literal_and_case_sensitive);
    RUN(contract_patterns_match_execute_api_arns);
    RUN(hostile_glob_stays_linear);
    RUN(deny_beats_allow);
    RUN(no_matching_rule_is_deny);
    RUN(deny_rule_applies_only_to_tokens_meeting_it);
    RUN(arn_with_nul_or_past_bound_is_deny);
    RUN(rule_without_requirements_meets_every_token);
    RUN(claims_that_are_not_an_object_meet_nothing);
    RUN(match_set_covers_rules_past_the_first_word);
    RUN(scope_string_is_space_delimited);
    RUN(scp_array_or_string_satisfies_scope);
    RUN(scope_prefix_is_not_scope);
    RUN(every_listed_scope_is_required);
    RUN(scope_claim_holding_nul_never_matches);
    RUN(claim_values_are_any_of);
    RUN(claim_met_by_array_holding_value);
    RUN(claim_numbers_and_booleans_compare_by_json_text);
    RUN(claim_holding_nul_never_matches);
    RUN(claim_name_holding_nul_is_not_a_prefix_match);
    RUN(policy_document_lists_met_rules_exactly);
    RUN(policy_document_folds_duplicate_resources);
    RUN(policy_document_empty_when_no_rule_met);
    RUN(policy_document_only_deny_statement);
    RUN(rules_check_accepts_contract_rules);
    RUN(rules_check_names_line_of_bad_rule);
    RUN(rules_check_refuses_scopes_that_can_never_match);
    RUN(rules_check_refuses_bad_claim_requirements);
    RUN(rules_check_refuses_one_rule_past_the_limit);

    proto_arena_clear(&arena);
    return harness_report();
}
