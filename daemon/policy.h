/* IAM-style policies built from the config's "rules" (CONTRACT "Policy semantics"): which rules a
 * token meets (its scopes and claims), the verdict for a methodArn (explicit Deny beats Allow, no
 * match is Deny), and the API Gateway policyDocument. Pure: no I/O, no clock, no allocation; the
 * rules and claims belong to the caller. A match set is meaningful only with the rules it was
 * computed from: sets cached under one config generation must not be read with another's rules. */
#ifndef JWTAUTHZ_DAEMON_POLICY_H
#define JWTAUTHZ_DAEMON_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

#include "proto/json.h"
#include "proto/str.h"

/* Rules per config: the match set is a fixed bitset of this many bits (32 bytes) stored in every
 * cached decision; 256 rules is far past any hand-written route table, and a token meeting all of
 * them costs 256 pattern walks per request, which stays cheap. */
#define POLICY_MAX_RULES 256u
/* A resource pattern: execute-api ARNs are a few hundred bytes and IAM caps an ARN at 2048
 * characters; the bound also caps the work of one pattern walk. */
#define POLICY_MAX_PATTERN_BYTES 2048u
/* A methodArn longer than this is refused (DENY) before any pattern walk: it is prefix + method +
 * path, and httpd (LimitRequestLine 8190) and nginx (8k header buffers) refuse longer paths. */
#define POLICY_MAX_ARN_BYTES 8192u

#define POLICY_MATCH_WORDS (POLICY_MAX_RULES / 64u)

/* DENY is zero so that a verdict or rule left zeroed by mistake fails closed. */
typedef enum { POLICY_DENY = 0, POLICY_ALLOW = 1 } policy_effect_e;

/* One claim requirement: the token's claim `name` equals one of `values` (any-of). */
typedef struct policy_claim_req {
    proto_str_t name;
    proto_str_t *values;
    size_t nvalues;
} policy_claim_req_t;

/* One config rule: when a token has every scope and meets every claim requirement, `resource`
 * (an IAM pattern: `*` any run of characters, `?` exactly one, case-sensitive) gets `effect`.
 * The config reader sets effect explicitly (its default is Allow); `line` is where the rule
 * starts in the config file, for messages. */
typedef struct policy_rule {
    proto_str_t resource;
    policy_effect_e effect;
    proto_str_t *scopes;
    size_t nscopes;
    policy_claim_req_t *claims;
    size_t nclaims;
    unsigned line;
} policy_rule_t;

typedef struct policy_rules {
    policy_rule_t *rules;
    size_t n;
} policy_rules_t;

/* Bit i set: the token meets rule i. Plain bytes, so the decision cache stores it as is. */
typedef struct policy_match {
    uint64_t bits[POLICY_MATCH_WORDS];
} policy_match_t;

static inline int policy_match_has(const policy_match_t *m, size_t i)
{
    return i < POLICY_MAX_RULES && (m->bits[i / 64u] >> (i % 64u)) & 1u;
}

/* Checks the rules for the config reader: returns 0 when they are usable, else -1 with err
 * holding "LINE: rules[I]: message" (ready to be prefixed with "FILE:") for the first problem:
 * more than POLICY_MAX_RULES rules, an empty resource or one past POLICY_MAX_PATTERN_BYTES or
 * holding a NUL byte, a scope that is empty or holds a space or NUL (RFC 6749 §3.3: a scope
 * token has neither), a claim requirement with an empty or NUL-holding name, no values, or a
 * value holding a NUL. */
int policy_rules_check(const policy_rules_t *rules, char *err, size_t errlen);

/* Fills *out with the rules the token's claims meet. Scopes come from "scope" (a space-delimited
 * string, RFC 9068 §2.2.3, RFC 8693 §4.2) and "scp" (an array of strings or a space-delimited
 * string: Azure AD, Okta). A claim requirement is met by a string claim equal byte for byte to
 * one of its values, a number or boolean whose JSON text is, or an array holding such an item.
 * A string holding a NUL byte never satisfies anything. Claims that are NULL or not an object
 * meet no rule; rules past POLICY_MAX_RULES are ignored (policy_rules_check refuses them). */
void policy_match(const policy_rules_t *rules, const proto_json_t *claims, policy_match_t *out);

/* IAM evaluation of method_arn against the rules in m: DENY when a met Deny rule's pattern
 * matches, else ALLOW when a met Allow rule's pattern matches, else DENY. An ARN that is longer
 * than POLICY_MAX_ARN_BYTES or holds a NUL byte is DENY. */
policy_effect_e policy_evaluate(const policy_rules_t *rules, const policy_match_t *m,
                                proto_str_t method_arn);

/* Returns 1 when subject matches the IAM pattern (`*` any run including none, `?` exactly one
 * UTF-8 character, all else literal byte for byte, case-sensitive), else 0. Iterative with one
 * backtrack point: the work is at most about |subject| x (longest run between two `*` + 1) +
 * |pattern| steps, never exponential. When steps is not NULL it receives the number of steps taken
 * (tests bound it). */
int policy_pattern_match(proto_str_t pattern, proto_str_t subject, size_t *steps);

/* Writes the API Gateway policyDocument for the rules in m as one JSON object:
 * {"Version":"2012-10-17","Statement":[...]} with one execute-api:Invoke statement per effect
 * that has resources (Allow first, then Deny), resources in rule order without duplicates. A
 * token that meets no rule gets an empty Statement array. Returns yajl_gen_status_ok, or the
 * first yajl status that was not ok. */
yajl_gen_status policy_document_write(yajl_gen g, const policy_rules_t *rules,
                                      const policy_match_t *m);

#endif
