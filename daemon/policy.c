/* Policy rules: checking them for the config reader, matching a token's scopes and claims against
 * them, and evaluating a methodArn with IAM's order (explicit Deny, then Allow, else Deny). Pure:
 * no I/O, no allocation. A string holding a NUL byte must never satisfy a requirement, and no
 * path here may end in ALLOW by default. The policyDocument writer is in policy_doc.c. */
#include "policy.h"

#include <stdio.h>
#include <string.h>

/* ---- config checks ------------------------------------------------------------------------- */

static int rule_fail(char *err, size_t errlen, const policy_rule_t *r, size_t i, const char *what,
                     proto_str_t name)
{
    if (err != NULL && errlen > 0) {
        /* Names come from the config and hold no NUL (checked before we print them); cap the
         * printed length so one long name cannot push the line number out of the message. */
        int shown = name.len > 64 ? 64 : (int)name.len;
        if (name.ptr != NULL && !proto_str_has_nul(name)) {
            snprintf(err, errlen, "%u: rules[%zu]: %s \"%.*s\"", r->line, i, what, shown, name.ptr);
        } else {
            snprintf(err, errlen, "%u: rules[%zu]: %s", r->line, i, what);
        }
    }
    return -1;
}

static int scope_token_is_valid(proto_str_t s)
{
    return s.len > 0 && s.ptr != NULL && memchr(s.ptr, ' ', s.len) == NULL && !proto_str_has_nul(s);
}

static int rule_check(const policy_rule_t *r, size_t i, char *err, size_t errlen)
{
    proto_str_t none = {NULL, 0};
    if (r->resource.len == 0 || r->resource.ptr == NULL) {
        return rule_fail(err, errlen, r, i, "resource is empty", none);
    }
    if (proto_str_has_nul(r->resource)) {
        return rule_fail(err, errlen, r, i, "resource holds a NUL byte", none);
    }
    if (r->resource.len > POLICY_MAX_PATTERN_BYTES) {
        return rule_fail(err, errlen, r, i, "resource is longer than 2048 bytes", none);
    }
    if (r->effect != POLICY_ALLOW && r->effect != POLICY_DENY) {
        return rule_fail(err, errlen, r, i, "effect is neither Allow nor Deny", none);
    }
    for (size_t s = 0; s < r->nscopes; s++) {
        if (!scope_token_is_valid(r->scopes[s])) {
            /* A scope with a space could never be one token of a space-delimited "scope". */
            return rule_fail(err, errlen, r, i, "scope is empty or holds a space or NUL",
                             r->scopes[s]);
        }
    }
    for (size_t c = 0; c < r->nclaims; c++) {
        const policy_claim_req_t *q = &r->claims[c];
        if (q->name.len == 0 || q->name.ptr == NULL || proto_str_has_nul(q->name)) {
            return rule_fail(err, errlen, r, i, "claim name is empty or holds a NUL", none);
        }
        if (q->nvalues == 0) {
            /* Any-of nothing can never be met: almost surely a mistake, and one that would
             * silently disable the rule. */
            return rule_fail(err, errlen, r, i, "no values for claim", q->name);
        }
        for (size_t v = 0; v < q->nvalues; v++) {
            if (q->values[v].len > 0 &&
                (q->values[v].ptr == NULL || proto_str_has_nul(q->values[v]))) {
                return rule_fail(err, errlen, r, i, "value holds a NUL byte for claim", q->name);
            }
        }
    }
    return 0;
}

int policy_rules_check(const policy_rules_t *rules, char *err, size_t errlen)
{
    if (rules->n > POLICY_MAX_RULES) {
        const policy_rule_t *r = &rules->rules[POLICY_MAX_RULES];
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%u: rules[%u]: too many rules (%zu), at most %u", r->line,
                     POLICY_MAX_RULES, rules->n, POLICY_MAX_RULES);
        }
        return -1;
    }
    for (size_t i = 0; i < rules->n; i++) {
        if (rule_check(&rules->rules[i], i, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- matching a token against the rules ------------------------------------------------------ */

/* Returns 1 when the space-delimited list holds want as one whole token ("orders:readx" and
 * "orders" are not "orders:read"). Runs of spaces leave empty tokens, which match nothing. */
static int scope_list_has(proto_str_t list, proto_str_t want)
{
    size_t start = 0;
    while (start <= list.len) {
        const char *sp = memchr(list.ptr + start, ' ', list.len - start);
        size_t end = sp ? (size_t)(sp - list.ptr) : list.len;
        if (proto_str_eq(proto_str_make(list.ptr + start, end - start), want)) {
            return 1;
        }
        start = end + 1;
    }
    return 0;
}

/* A claim string that holds a NUL byte satisfies nothing: whatever consumer sees it as a C
 * string would see a different value from the one compared here. */
static int claim_string_is_usable(const proto_json_t *v)
{
    return v != NULL && v->type == PROTO_JSON_STRING && v->u.string.ptr != NULL &&
           !proto_str_has_nul(v->u.string);
}

static int token_has_scope(const proto_json_t *claims, proto_str_t want)
{
    const proto_json_t *scope = proto_json_get(claims, "scope");
    if (claim_string_is_usable(scope) && scope_list_has(scope->u.string, want)) {
        return 1;
    }
    const proto_json_t *scp = proto_json_get(claims, "scp");
    if (claim_string_is_usable(scp)) {
        return scope_list_has(scp->u.string, want);
    }
    if (scp != NULL && scp->type == PROTO_JSON_ARRAY) {
        for (size_t i = 0; i < scp->u.array.count; i++) {
            const proto_json_t *item = scp->u.array.items[i];
            if (claim_string_is_usable(item) && proto_str_eq(item->u.string, want)) {
                return 1;
            }
        }
    }
    return 0;
}

/* The text a scalar claim is compared by: a string's decoded bytes, a number's JSON text as the
 * token wrote it, "true"/"false". Returns 0 for null, objects, arrays and NUL-holding strings. */
static int claim_scalar_text(const proto_json_t *v, proto_str_t *out)
{
    switch (v->type) {
    case PROTO_JSON_STRING:
        if (!claim_string_is_usable(v)) {
            return 0;
        }
        *out = v->u.string;
        return 1;
    case PROTO_JSON_NUMBER:
        *out = v->u.number.text;
        return 1;
    case PROTO_JSON_BOOL:
        *out = v->u.boolean ? PROTO_STR_LIT("true") : PROTO_STR_LIT("false");
        return 1;
    default:
        return 0;
    }
}

static int claim_scalar_is_one_of(const proto_json_t *v, const policy_claim_req_t *q)
{
    proto_str_t text;
    if (!claim_scalar_text(v, &text)) {
        return 0;
    }
    for (size_t i = 0; i < q->nvalues; i++) {
        if (!proto_str_has_nul(q->values[i]) && proto_str_eq(text, q->values[i])) {
            return 1;
        }
    }
    return 0;
}

static int token_meets_claim(const proto_json_t *claims, const policy_claim_req_t *q)
{
    const proto_json_t *v = proto_json_get_str(claims, q->name);
    if (v == NULL) {
        return 0;
    }
    if (v->type == PROTO_JSON_ARRAY) {
        /* One level only: ["admin"] holds "admin", [["admin"]] does not. */
        for (size_t i = 0; i < v->u.array.count; i++) {
            if (claim_scalar_is_one_of(v->u.array.items[i], q)) {
                return 1;
            }
        }
        return 0;
    }
    return claim_scalar_is_one_of(v, q);
}

static int token_meets_rule(const proto_json_t *claims, const policy_rule_t *r)
{
    for (size_t i = 0; i < r->nscopes; i++) {
        if (!token_has_scope(claims, r->scopes[i])) {
            return 0;
        }
    }
    for (size_t i = 0; i < r->nclaims; i++) {
        if (!token_meets_claim(claims, &r->claims[i])) {
            return 0;
        }
    }
    return 1;
}

void policy_match(const policy_rules_t *rules, const proto_json_t *claims, policy_match_t *out)
{
    memset(out, 0, sizeof(*out));
    if (claims == NULL || claims->type != PROTO_JSON_OBJECT) {
        return;
    }
    size_t n = rules->n < POLICY_MAX_RULES ? rules->n : POLICY_MAX_RULES;
    for (size_t i = 0; i < n; i++) {
        if (token_meets_rule(claims, &rules->rules[i])) {
            out->bits[i / 64u] |= (uint64_t)1 << (i % 64u);
        }
    }
}

/* ---- patterns and evaluation ----------------------------------------------------------------- */

/* Bytes in the UTF-8 character that starts at s[i], cut at the end of the subject. `?` takes one
 * character, as IAM's does, not one byte; a stray continuation byte counts as one. */
static size_t utf8_char_len(const char *s, size_t i, size_t len)
{
    unsigned char b = (unsigned char)s[i];
    size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return n < len - i ? n : len - i;
}

int policy_pattern_match(proto_str_t pattern, proto_str_t subject, size_t *steps)
{
    const char *p = pattern.ptr, *s = subject.ptr;
    size_t pi = 0, si = 0, work = 0;
    /* The last `*` seen and the subject position it currently stands for. A later `*` replaces
     * it: whatever an earlier star could still absorb, the later one can absorb too, so one
     * backtrack point is enough and no recursion is needed. */
    size_t star_pi = 0, star_si = 0;
    int have_star = 0, matched;

    while (si < subject.len) {
        work++;
        if (pi < pattern.len && p[pi] == '*') {
            have_star = 1;
            star_pi = pi++;
            star_si = si;
        } else if (pi < pattern.len && p[pi] == '?') {
            pi++;
            si += utf8_char_len(s, si, subject.len);
        } else if (pi < pattern.len && p[pi] == s[si]) {
            pi++;
            si++;
        } else if (have_star) {
            /* Let the star absorb one more character and retry the run after it. */
            star_si += utf8_char_len(s, star_si, subject.len);
            pi = star_pi + 1;
            si = star_si;
        } else {
            break;
        }
    }
    while (si == subject.len && pi < pattern.len && p[pi] == '*') {
        work++;
        pi++;
    }
    matched = si == subject.len && pi == pattern.len;
    if (steps != NULL) {
        *steps = work;
    }
    return matched;
}

policy_effect_e policy_evaluate(const policy_rules_t *rules, const policy_match_t *m,
                                proto_str_t method_arn)
{
    int allowed = 0;
    if (method_arn.len > POLICY_MAX_ARN_BYTES || (method_arn.len > 0 && method_arn.ptr == NULL) ||
        proto_str_has_nul(method_arn)) {
        return POLICY_DENY;
    }
    size_t n = rules->n < POLICY_MAX_RULES ? rules->n : POLICY_MAX_RULES;
    for (size_t i = 0; i < n; i++) {
        const policy_rule_t *r = &rules->rules[i];
        if (!policy_match_has(m, i)) {
            continue;
        }
        if (r->effect == POLICY_ALLOW) {
            /* An Allow never settles the verdict: a later Deny may still match. */
            if (!allowed && policy_pattern_match(r->resource, method_arn, NULL)) {
                allowed = 1;
            }
        } else if (policy_pattern_match(r->resource, method_arn, NULL)) {
            return POLICY_DENY;
        }
    }
    return allowed ? POLICY_ALLOW : POLICY_DENY;
}
