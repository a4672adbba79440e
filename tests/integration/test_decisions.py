#!/usr/bin/python3
"""Decisions of the real jwtauthzd against keys fetched over HTTPS (discovery): ALLOW, DENY by
rule (scope, claim, explicit Deny, no match), every UNAUTHORIZED reason a token can earn (each an
attack or a mistake, tokens minted by PyJWT), REQUEST events (Authorization in any case, cookie
and query fallbacks), and jwtauthzctl's exit codes. Run alone: /usr/bin/python3 test_decisions.py
[CASE ...]."""

import json

from common import (AUDIENCE, Daemon, Failure, Idp, Suite, arn, check, expect, mint,
                    request_token)

suite = Suite("decisions")
MAX_TOKEN_BYTES = 4096
COOKIE = "access_token"
QUERY = "access_token"


class Ctx:
    pass


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.idp = Idp(s, s.keys, kids=("rs256-1", "es256-1", "ps256-1", "eddsa-1"))
    # A second issuer on the same IdP: jwks_uri given directly, RS256 only, RFC 9068 typing.
    c.typed_iss = c.idp.issuer + "/typed"
    c.idp.publish("rs256-2", path="typed/jwks.json")
    # A third that never gets keys: its JWKS endpoint answers 500.
    c.nokeys_iss = c.idp.issuer + "/nokeys"
    c.d = Daemon(s, issuers=[
        c.idp.issuer_conf(),
        c.idp.uri_issuer_conf(c.typed_iss, "typed/jwks.json", typ="at+jwt",
                              algorithms=["RS256"]),
        c.idp.uri_issuer_conf(c.nokeys_iss, "status500"),
    ], extra={"max_token_bytes": MAX_TOKEN_BYTES, "token_cookie": COOKIE,
              "token_query": QUERY}).start()
    c.d.wait_keys(c.idp.issuer)
    c.d.wait_keys(c.typed_iss)
    return c


def tok(c, signer="rs256-1", **kw):
    return c.idp.token(signer, **kw)


def statement(reply):
    doc = reply.get("policyDocument") or {}
    check(doc.get("Version") == "2012-10-17", f"policy Version: {reply}")
    st = doc.get("Statement")
    check(isinstance(st, list) and st, f"policy Statement: {reply}")
    for s in st:
        check(s.get("Action") == "execute-api:Invoke", f"statement Action: {s}")
        check(s.get("Effect") in ("Allow", "Deny"), f"statement Effect: {s}")
        check(isinstance(s.get("Resource"), list), f"statement Resource: {s}")
    return st


# ---- ALLOW and DENY ---------------------------------------------------------------------------

@suite.case
def allow_token_with_required_scope(c):
    r = expect(request_token(c.d, tok(c, scope="orders:read profile")), "ALLOW", cached=False)
    check(r.get("principalId") == "user-123", f"principalId: {r}")
    check(r.get("context") == {"sub": "user-123", "scope": "orders:read profile"},
          f"context: {r.get('context')}")
    allows = [s for s in statement(r) if s["Effect"] == "Allow"]
    check(any("arn:aws:execute-api:*:*:*/*/GET/orders*" in s["Resource"] for s in allows),
          f"the matching rule's resource is not allowed in the policy: {r['policyDocument']}")
    check(0 < r.get("ttl", 0) <= 300, f"ttl: {r}")
    check("reason" not in r, f"ALLOW with a reason: {r}")


@suite.case
def allow_every_published_asymmetric_alg(c):
    for kid in ("rs256-1", "es256-1", "ps256-1", "eddsa-1"):
        r = request_token(c.d, tok(c, kid))
        if r.get("verdict") != "ALLOW":
            raise Failure(f"{kid}: {r}")


@suite.case
def deny_token_without_required_scope(c):
    r = expect(request_token(c.d, tok(c, scope="profile")), "DENY")
    check(r.get("principalId") == "user-123", f"DENY names the principal: {r}")
    statement(r)


@suite.case
def deny_write_with_read_scope(c):
    expect(request_token(c.d, tok(c), arn("POST", "/orders")), "DENY")
    expect(request_token(c.d, tok(c, scope="orders:write"), arn("POST", "/orders")), "ALLOW")


@suite.case
def deny_explicit_deny_beats_allow(c):
    # GET /internal/* is allowed by a rule the token meets and denied by an explicit Deny.
    r = expect(request_token(c.d, tok(c), arn("GET", "/internal/x")), "DENY")
    check(any(s["Effect"] == "Deny" for s in statement(r)), f"no Deny statement: {r}")


@suite.case
def deny_resource_no_rule_matches(c):
    expect(request_token(c.d, tok(c), arn("GET", "/customers/1")), "DENY")
    expect(request_token(c.d, tok(c), "arn:aws:execute-api:local:0:api/prod/get/orders"), "DENY")


@suite.case
def allow_by_claim_rule_and_deny_other_group(c):
    expect(request_token(c.d, tok(c, claims={"groups": "admin"}), arn("DELETE", "/orders/1")),
           "ALLOW")
    expect(request_token(c.d, tok(c, claims={"groups": ["ops", "admin"]}),
                         arn("DELETE", "/orders/1")), "ALLOW")
    expect(request_token(c.d, tok(c, claims={"groups": ["ops"]}), arn("DELETE", "/orders/1")),
           "DENY")
    expect(request_token(c.d, tok(c, claims={"groups": "Admin"}), arn("DELETE", "/orders/1")),
           "DENY")


@suite.case
def ttl_never_outlives_token_exp(c):
    r = expect(request_token(c.d, tok(c, exp_in=20)), "ALLOW")
    check(0 < r["ttl"] <= 20, f"ttl {r['ttl']} for a token expiring in 20 s")


@suite.case
def typed_issuer_accepts_at_jwt(c):
    for typ in ("at+jwt", "application/at+jwt", "AT+JWT"):
        t = c.keys.token("rs256-2", iss=c.typed_iss, typ=typ)
        r = request_token(c.d, t)
        if r.get("verdict") != "ALLOW":
            raise Failure(f"typ {typ}: {r}")


# ---- UNAUTHORIZED: every reason ---------------------------------------------------------------

def b64(obj):
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return mint.b64url(raw)


def raw_token(c, header, payload, kid="rs256-1", alg="RS256"):
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    pb = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return mint.sign_raw(hb, pb, c.keys.path(kid), alg)


def claims(c, **over):
    import time
    now = int(time.time())
    p = {"iss": c.idp.issuer, "aud": AUDIENCE, "sub": "user-123", "scope": "orders:read",
         "iat": now, "exp": now + 300}
    p.update(over)
    return p


def sized_token(c, total):
    """A valid token exactly `total` characters long (padding claim and sub varied)."""
    base = len(tok(c, claims={"pad": "", "jti": "x"}))
    for pad in range(max(0, (total - base) * 3 // 4 - 8), total):
        for extra in range(4):
            t = tok(c, sub="user-123" + "x" * extra, claims={"pad": "p" * pad, "jti": "x"})
            if len(t) == total:
                return t
            if len(t) > total + 8:
                break
    raise Failure(f"could not mint a token of exactly {total} characters")


# (case name, request authorization value builder, reason). Each builder gets the context.
UNAUTHORIZED = [
    ("no_authorization_token", None, "token_missing"),
    ("basic_scheme_not_bearer", lambda c: "Basic dXNlcjpwYXNz", "token_missing"),
    ("bearer_without_token", lambda c: "Bearer ", "token_missing"),
    ("bearer_token_with_inner_space", lambda c: "Bearer " + tok(c).replace(".", ". ", 1),
     "token_missing"),
    ("token_one_byte_over_max_token_bytes",
     lambda c: "Bearer " + sized_token(c, MAX_TOKEN_BYTES + 1), "token_too_large"),
    ("two_segment_token", lambda c: "Bearer " + ".".join(tok(c).split(".")[:2]),
     "malformed_token"),
    ("extra_segment_token", lambda c: "Bearer " + mint.tamper(tok(c), "extra-segment"),
     "malformed_token"),
    ("payload_not_base64url", lambda c: "Bearer " + (lambda h, p, s: f"{h}.{p}+/.{s}")(
        *tok(c).split(".")), "bad_base64url"),
    ("header_not_json", lambda c: "Bearer " + b64(b"not json") + "." +
     b64(claims(c)) + ".AAAA", "bad_header"),
    ("header_json_array", lambda c: "Bearer " + raw_token(c, b'["RS256"]', claims(c)),
     "bad_header"),
    ("payload_json_array", lambda c: "Bearer " + raw_token(
        c, {"alg": "RS256", "kid": "rs256-1"}, b'[1,2]'), "bad_payload"),
    ("duplicate_sub_in_payload", lambda c: "Bearer " + raw_token(
        c, {"alg": "RS256", "kid": "rs256-1"},
        json.dumps(claims(c))[:-1].encode() + b', "sub": "admin"}'), "duplicate_member"),
    ("duplicate_alg_in_header", lambda c: "Bearer " + raw_token(
        c, b'{"alg":"RS256","kid":"rs256-1","alg":"none"}', claims(c)), "duplicate_member"),
    ("header_without_alg", lambda c: "Bearer " + raw_token(c, {"kid": "rs256-1"}, claims(c)),
     "alg_missing"),
    ("alg_none_unsigned", lambda c: "Bearer " + mint.tamper(tok(c), "header-alg-none"),
     "alg_none"),
    ("alg_none_mixed_case", lambda c: "Bearer " + mint.tamper(tok(c), "header-alg-none",
                                                              value="nOnE"), "alg_none"),
    ("alg_unknown_name", lambda c: "Bearer " + mint.tamper(tok(c), "header-alg", value="RS257"),
     "alg_unsupported"),
    ("alg_confusion_hs256_keyed_with_rsa_public_key", lambda c: "Bearer " + mint.tamper(
        tok(c), "alg-confusion", secret=open(c.keys.dir / "rs256-1.pub.pem", "rb").read()),
     "alg_not_allowed"),
    ("alg_not_in_issuer_algorithms", lambda c: "Bearer " + c.keys.token(
        "es256-1", iss=c.typed_iss, typ="at+jwt"), "alg_not_allowed"),
    ("crit_names_unknown_extension", lambda c: "Bearer " + tok(
        c, headers={"crit": ["urn:example:ext"], "urn:example:ext": 1}), "crit_unsupported"),
    ("unencoded_payload_b64_false", lambda c: "Bearer " + raw_token(
        c, {"alg": "RS256", "kid": "rs256-1", "b64": False, "crit": ["b64"]}, claims(c)),
     "unencoded_payload"),
    ("numeric_kid_header", lambda c: "Bearer " + raw_token(
        c, {"alg": "RS256", "kid": 1}, claims(c)), "bad_header_param"),
    ("id_token_typ_for_at_jwt_issuer", lambda c: "Bearer " + c.keys.token(
        "rs256-2", iss=c.typed_iss, typ="JWT"), "typ_mismatch"),
    ("missing_typ_for_at_jwt_issuer", lambda c: "Bearer " + c.keys.token(
        "rs256-2", iss=c.typed_iss, typ=""), "typ_mismatch"),
    ("kid_not_in_key_set", lambda c: "Bearer " + mint.tamper(tok(c), "header-kid"),
     "unknown_kid"),
    ("kid_of_rsa_key_on_es256_token", lambda c: "Bearer " + tok(c, "es256-1", kid="rs256-1",
                                                            alg="ES256"),
     "no_matching_key"),
    ("no_kid_and_no_key_for_alg", lambda c: "Bearer " + tok(c, "es384-1", kid=None),
     "no_matching_key"),
    ("flipped_signature_bit", lambda c: "Bearer " + mint.tamper(tok(c), "signature"),
     "bad_signature"),
    ("payload_changed_signature_kept", lambda c: "Bearer " + mint.tamper(
        tok(c, scope="profile"), "payload", claims={"scope": "orders:read"}), "bad_signature"),
    ("ecdsa_zero_signature_cve_2022_21449", lambda c: "Bearer " + mint.tamper(
        tok(c, "es256-1"), "zero-signature"), "bad_signature"),
    ("truncated_signature", lambda c: "Bearer " + mint.tamper(tok(c), "truncate-signature"),
     "bad_signature"),
    ("stripped_signature", lambda c: "Bearer " + mint.tamper(tok(c), "strip-signature"),
     "bad_signature"),
    ("signed_by_unpublished_key_with_published_kid", lambda c: "Bearer " + c.keys.token(
        "rs256-2", iss=c.idp.issuer, kid="rs256-1"), "bad_signature"),
    ("token_without_exp", lambda c: "Bearer " + tok(c, exp_in=None), "exp_missing"),
    ("token_expired", lambda c: "Bearer " + tok(c, exp_in=-1), "token_expired"),
    ("token_expiring_this_second", lambda c: "Bearer " + tok(c, exp_in=0), "token_expired"),
    ("token_not_yet_valid", lambda c: "Bearer " + tok(c, nbf_in=60), "token_not_yet_valid"),
    ("token_issued_in_future", lambda c: "Bearer " + tok(c, iat_in=60), "iat_in_future"),
    ("exp_as_string", lambda c: "Bearer " + tok(c, exp_in=None, claims={"exp": "tomorrow"}),
     "bad_claim_type"),
    ("aud_as_number", lambda c: "Bearer " + tok(c, aud=42), "bad_claim_type"),
    ("token_without_iss", lambda c: "Bearer " + c.keys.token(iss=None), "issuer_missing"),
    ("token_from_unknown_issuer", lambda c: "Bearer " + c.keys.token(
        iss="https://evil.example/"), "issuer_mismatch"),
    ("issuer_with_trailing_slash_variant", lambda c: "Bearer " + c.keys.token(
        iss=c.idp.issuer + "/"), "issuer_mismatch"),
    ("token_for_other_audience", lambda c: "Bearer " + tok(c, aud="api://billing"),
     "audience_mismatch"),
    ("token_without_aud", lambda c: "Bearer " + tok(c, aud=None), "audience_mismatch"),
    ("nul_byte_in_claim", lambda c: "Bearer " + tok(c, claims={"name": "a\u0000b"}),
     "nul_in_claim"),
    ("token_without_principal_claim", lambda c: "Bearer " + tok(c, sub=None),
     "principal_missing"),
]


def unauthorized_case(build, reason):
    def run(c):
        req = {"type": "TOKEN", "methodArn": arn()}
        if build is not None:
            req["authorizationToken"] = build(c)
        r = expect(c.d.request(req), "UNAUTHORIZED", reason=reason)
        check(isinstance(r.get("message"), str) and r["message"], f"no message: {r}")
        check("policyDocument" not in r and "principalId" not in r, f"refusal with a grant: {r}")
        # Asking again must not turn into a cached ALLOW.
        if build is not None:
            expect(c.d.request(req), "UNAUTHORIZED", reason=reason)
    return run


for _name, _build, _reason in UNAUTHORIZED:
    suite.add(_name, unauthorized_case(_build, _reason))


@suite.case
def every_jose_reason_code_has_a_case(c):
    """A refusal reason added to jose/ without a case here fails this."""
    import re
    from common import SRC
    text = (SRC / "jose" / "reason.c").read_text()
    codes = set(re.findall(r'\[JOSE_R_\w+\] = \{"(\w+)"', text)) - {"invalid_token"}
    check(len(codes) >= 25, f"parsed only {sorted(codes)} from jose/reason.c")
    missing = sorted(codes - {r for _, _, r in UNAUTHORIZED})
    check(not missing, f"reasons without a case: {missing}")


@suite.case
def token_exactly_max_token_bytes_accepted(c):
    t = sized_token(c, MAX_TOKEN_BYTES)
    expect(request_token(c.d, t), "ALLOW")


@suite.case
def every_refusal_reason_counted_in_stats(c):
    reasons = c.d.admin_ok({"cmd": "stats"})["reasons"]
    missing = sorted({r for _, _, r in UNAUTHORIZED} - set(reasons))
    check(not missing, f"reasons not counted in stats: {missing}")


# ---- REQUEST events ---------------------------------------------------------------------------

def request_event(method="GET", path="/orders/42", headers=None, query=None, **extra):
    ev = {"type": "REQUEST", "methodArn": arn(method, path), "httpMethod": method, "path": path,
          "headers": headers or {}, "queryStringParameters": query or {},
          "requestContext": {"identity": {"sourceIp": "192.0.2.7"}}}
    ev.update(extra)
    return ev


@suite.case
def request_authorization_header_any_case(c):
    for name in ("Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"):
        for scheme in ("Bearer", "bearer", "BEARER"):
            r = c.d.request(request_event(headers={name: f"{scheme} {tok(c)}", "Accept": "*/*"}))
            if r.get("verdict") != "ALLOW":
                raise Failure(f"{name}: {scheme}: {r}")


@suite.case
def request_method_arn_decides_policy(c):
    expect(c.d.request(request_event("DELETE", "/orders/1",
                                     headers={"Authorization": "Bearer " + tok(c)})), "DENY")


@suite.case
def request_cookie_fallback(c):
    cookie = f"theme=dark; {COOKIE}={tok(c)}; lang=en"
    expect(c.d.request(request_event(headers={"Cookie": cookie})), "ALLOW")
    expect(c.d.request(request_event(headers={"cookie": f'{COOKIE}="{tok(c)}"'})), "ALLOW")


@suite.case
def request_cookie_with_other_name_ignored(c):
    expect(c.d.request(request_event(headers={"Cookie": f"session={tok(c)}"})), "UNAUTHORIZED",
           reason="token_missing")


@suite.case
def request_query_fallback(c):
    expect(c.d.request(request_event(query={QUERY: tok(c), "page": "2"})), "ALLOW")


@suite.case
def request_authorization_header_wins_over_cookie(c):
    bad = mint.tamper(tok(c), "signature")
    r = c.d.request(request_event(headers={"Authorization": "Bearer " + bad,
                                           "Cookie": f"{COOKIE}={tok(c)}"}))
    expect(r, "UNAUTHORIZED", reason="bad_signature")


@suite.case
def request_cookie_wins_over_query(c):
    bad = mint.tamper(tok(c), "signature")
    r = c.d.request(request_event(headers={"Cookie": f"{COOKIE}={bad}"}, query={QUERY: tok(c)}))
    expect(r, "UNAUTHORIZED", reason="bad_signature")


@suite.case
def request_two_authorization_headers_refused(c):
    r = c.d.request(request_event(headers={"Authorization": "Bearer " + tok(c),
                                           "authorization": "Bearer " + tok(c)}))
    expect(r, "UNAUTHORIZED", reason="token_missing")


@suite.case
def request_without_token_anywhere(c):
    expect(c.d.request(request_event(headers={"Accept": "*/*"})), "UNAUTHORIZED",
           reason="token_missing")


@suite.case
def request_fallbacks_off_unless_configured(c):
    d = Daemon(suite, issuers=[c.idp.issuer_conf()]).start()
    try:
        d.wait_keys(c.idp.issuer)
        expect(d.request(request_event(headers={"Cookie": f"{COOKIE}={tok(c)}"})),
               "UNAUTHORIZED", reason="token_missing")
        expect(d.request(request_event(query={QUERY: tok(c)})), "UNAUTHORIZED",
               reason="token_missing")
        expect(d.request(request_event(headers={"Authorization": "Bearer " + tok(c)})), "ALLOW")
    finally:
        d.cleanup()


@suite.case
def request_without_method_arn_is_error(c):
    ev = request_event(headers={"Authorization": "Bearer " + tok(c)})
    del ev["methodArn"]
    r = c.d.request(ev)
    check(r.get("verdict") == "ERROR" and r.get("status") in (500, 503), f"{r}")


# ---- ERROR and jwtauthzctl --------------------------------------------------------------------

@suite.case
def issuer_without_keys_is_error_503_never_allow(c):
    t = c.keys.token(iss=c.nokeys_iss)
    for bad in (t, mint.tamper(t, "signature"), mint.tamper(t, "header-alg-none")):
        r = request_token(c.d, bad)
        check(r.get("verdict") != "ALLOW", f"ALLOW without keys: {r}")
    expect(request_token(c.d, t), "ERROR", 503, reason="no_keys")


@suite.case
def ctl_check_exit_codes_follow_verdict(c):
    cases = [
        ("ALLOW", 0, "Bearer " + tok(c), arn()),
        ("DENY", 1, "Bearer " + tok(c), arn("DELETE", "/orders/1")),
        ("UNAUTHORIZED", 2, "Bearer " + mint.tamper(tok(c), "signature"), arn()),
        ("UNAUTHORIZED", 2, "", arn()),
        ("ERROR", 3, "Bearer " + c.keys.token(iss=c.nokeys_iss), arn()),
    ]
    for verdict, code, value, resource in cases:
        rc, out = c.d.check(value, resource)
        if rc != code or not out or out.get("verdict") != verdict:
            raise Failure(f"{verdict}: exit {rc} (want {code}), printed {out}")


if __name__ == "__main__":
    suite.main(setup)
