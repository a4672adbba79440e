#!/usr/bin/python3
"""Tokens minted by an independent implementation (Debian's python3-jwt + cryptography, via
tests/tools/mint.py) checked by `jwtauthzctl verify`, the daemon's own verification code:
every algorithm valid and tampered, every claim check, and the attack corpus, each case named
after the attack it covers. Usage: jose_tokens.py CTL SRCDIR"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

CTL, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "tests", "tools"))
import mint  # noqa: E402

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

ISS = "https://idp.test/"
AUD = "api://orders"
RESULTS = []


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify(token, jwks, *extra, claims=True):
    """Runs jwtauthzctl verify; returns (exit code, parsed JSON output or {})."""
    args = [CTL, "verify", "--jwks", jwks, *extra]
    if not claims:
        args.append("--jws")
    args.append("-")
    p = subprocess.run(args, input=token.encode() if isinstance(token, str) else token,
                       capture_output=True, timeout=30)
    try:
        out = json.loads(p.stdout or b"{}")
    except ValueError:
        out = {"unparsable": p.stdout[:200].decode(errors="replace")}
    return p.returncode, out


def case(name, token, jwks, want_reason, *extra, claims=True):
    """want_reason "ok" means valid (exit 0); anything else: exit 2 and that reason (a tuple
    accepts any of several reasons)."""
    rc, out = verify(token, jwks, *extra, claims=claims)
    reasons = want_reason if isinstance(want_reason, tuple) else (want_reason,)
    got = out.get("reason")
    ok = got in reasons and rc == (0 if "ok" in reasons else 2)
    RESULTS.append((name, ok, f"exit {rc} reason {got}, want {'/'.join(reasons)}"))


def std(keydir, keyname, **kw):
    kw.setdefault("iss", ISS)
    kw.setdefault("aud", AUD)
    kw.setdefault("sub", "user-123")
    suffix = ".key" if keyname.startswith("hs") else ".pem"
    return mint.mint(os.path.join(keydir, keyname + suffix), **kw)


def seg(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def run(k):
    # The published set (asymmetric keys only): a set that mixes secret and public keys is
    # refused key by key (Wycheproof jws_mixedSymmetryKeyset), so HS keys get their own file.
    all_keys = os.path.join(k, "jwks.json")
    chk = ["--issuer", ISS, "--audience", AUD]
    case("mixed_symmetric_asymmetric_set_refuses_hs", std(k, "hs256-1"),
         os.path.join(k, "jwks-with-hs.json"), ("unknown_kid", "no_matching_key"), *chk)

    # Every algorithm, valid and tampered (signature bit, payload claim, truncated signature).
    for kid, alg, _, _ in mint.KEY_SPECS:
        t = std(k, kid)
        keys = os.path.join(k, f"{kid}.jwks.json")
        case(f"valid_{alg}_{kid}", t, keys, "ok", *chk)
        if kid != "hs256-1":
            case(f"valid_{alg}_{kid}_in_full_set", t, all_keys, "ok", *chk)
        case(f"tampered_signature_{alg}", mint.tamper(t, "signature"), keys,
             "bad_signature", *chk)
        case(f"tampered_payload_{alg}", mint.tamper(t, "payload"), keys,
             "bad_signature", *chk)
        case(f"truncated_signature_{alg}", mint.tamper(t, "truncate-signature"), keys,
             "bad_signature", *chk)
        case(f"empty_signature_{alg}", mint.tamper(t, "strip-signature"), keys,
             "bad_signature", *chk)
        case(f"valid_{alg}_without_kid", std(k, kid, kid=None, alg=alg), keys, "ok", *chk)

    rs = os.path.join(k, "rs256-1.jwks.json")
    # Claims.
    case("exp_missing_refused", std(k, "rs256-1", exp_in=None), rs, "exp_missing", *chk)
    case("expired_refused", std(k, "rs256-1", exp_in=-120), rs, "token_expired", *chk)
    case("expired_within_leeway_accepted", std(k, "rs256-1", exp_in=-30), rs, "ok", *chk)
    case("expired_with_zero_leeway_refused", std(k, "rs256-1", exp_in=-1), rs, "token_expired",
         *chk, "--leeway", "0")
    case("nbf_in_future_refused", std(k, "rs256-1", nbf_in=600), rs, "token_not_yet_valid", *chk)
    case("iat_in_future_refused", std(k, "rs256-1", iat_in=600), rs, "iat_in_future", *chk)
    case("wrong_issuer_refused", std(k, "rs256-1", iss="https://evil.test/"), rs,
         "issuer_mismatch", *chk)
    case("issuer_with_trailing_byte_refused", std(k, "rs256-1", iss=ISS + "x"), rs,
         "issuer_mismatch", *chk)
    case("issuer_missing_refused", std(k, "rs256-1", iss=None), rs, "issuer_missing", *chk)
    case("wrong_audience_refused", std(k, "rs256-1", aud="api://other"), rs,
         "audience_mismatch", *chk)
    case("audience_in_array_accepted", std(k, "rs256-1", aud=["api://x", AUD]), rs, "ok", *chk)
    case("audience_missing_refused", std(k, "rs256-1", aud=None), rs, "audience_mismatch", *chk)
    case("exp_as_string_refused", std(k, "rs256-1", claims={"exp": str(int(time.time()) + 300)}),
         rs, "bad_claim_type", *chk)
    case("exp_as_bool_refused", std(k, "rs256-1", claims={"exp": True}), rs, "bad_claim_type",
         *chk)
    case("exp_negative_refused", std(k, "rs256-1", claims={"exp": -5}), rs, "bad_claim_type",
         *chk)
    case("exp_fractional_accepted", std(k, "rs256-1", claims={"exp": time.time() + 300.5}), rs,
         "ok", *chk)
    case("aud_as_number_refused", std(k, "rs256-1", aud=None, claims={"aud": 7}), rs,
         "bad_claim_type", *chk)

    key = mint.load_key(os.path.join(k, "rs256-1.pem"))
    now = int(time.time())
    base = {"iss": ISS, "aud": AUD, "sub": "u", "exp": now + 300}

    def raw(header_bytes, payload_bytes, alg="RS256", signer=key):
        return mint.sign_raw(header_bytes, payload_bytes, signer, alg)

    case("nul_in_audience_refused",
         raw(b'{"alg":"RS256","kid":"rs256-1"}',
             json.dumps({**base, "aud": "api://orders\u0000evil"}).encode()), rs,
         "nul_in_claim", *chk)
    case("duplicate_claim_refused",
         raw(b'{"alg":"RS256","kid":"rs256-1"}',
             json.dumps(base).encode()[:-1] + b',"sub":"admin"}'), rs,
         "duplicate_member", *chk)
    case("duplicate_alg_member_refused",
         raw(b'{"alg":"RS256","alg":"none","kid":"rs256-1"}', json.dumps(base).encode()), rs,
         "duplicate_member", *chk)
    deep = b"[" * 5000 + b"]" * 5000
    case("nested_json_payload_refused",
         raw(b'{"alg":"RS256","kid":"rs256-1"}', b'{"x":' + deep + b"}"), rs, "bad_payload",
         *chk)
    case("payload_not_object_refused", raw(b'{"alg":"RS256","kid":"rs256-1"}', b"[1,2]"), rs,
         "bad_payload", *chk)
    case("header_with_comment_refused",
         raw(b'{"alg":"RS256",/*x*/"kid":"rs256-1"}', json.dumps(base).encode()), rs,
         "bad_header", *chk)

    # alg none in every spelling, signed or not.
    t = std(k, "rs256-1")
    for spelling in ("none", "None", "NONE", "nOnE"):
        case(f"alg_none_{spelling}_refused", mint.tamper(t, "header-alg-none", value=spelling),
             rs, "alg_none", *chk)
    case("alg_missing_refused", raw(b'{"kid":"rs256-1"}', json.dumps(base).encode()), rs,
         "alg_missing", *chk)
    case("alg_unknown_refused", mint.tamper(t, "header-alg", value="RS257"), rs,
         "alg_unsupported", *chk)
    case("alg_lowercase_refused", mint.tamper(t, "header-alg", value="rs256"), rs,
         "alg_unsupported", *chk)

    # Algorithm confusion: HS256 with the RSA public key (PEM, DER, JWKS text) as the secret.
    pub = key.public_key()
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(rs, "rb") as f:
        jwks_text = f.read()
    for label, secret in (("pem", pem), ("der", der), ("jwks", jwks_text)):
        case(f"hs256_signed_with_rsa_public_{label}_refused",
             mint.tamper(t, "alg-confusion", secret=secret), rs,
             ("no_matching_key", "alg_not_allowed"), *chk)
    es = std(k, "es256-1")
    case("es256_token_against_rsa_key_refused", mint.tamper(es, "header-kid", value="rs256-1"),
         all_keys, ("no_matching_key", "bad_signature"), *chk)
    case("rs256_token_relabelled_ps256_refused", mint.tamper(t, "header-alg", value="PS256"),
         all_keys, ("bad_signature", "no_matching_key"), *chk)
    case("alg_restricted_by_option_refused", t, rs, "alg_not_allowed", *chk, "--alg", "ES256")

    # Keys offered by the token itself are never used.
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    anum = attacker.public_key().public_numbers()
    ajwk = {"kty": "RSA", "n": b64(anum.n.to_bytes(256, "big")), "e": "AQAB", "kid": "rs256-1"}
    case("embedded_jwk_header_ignored",
         raw(json.dumps({"alg": "RS256", "kid": "rs256-1", "jwk": ajwk}).encode(),
             json.dumps(base).encode(), signer=attacker), rs, "bad_signature", *chk)
    for member in ("jku", "x5u"):
        case(f"{member}_pointing_elsewhere_ignored",
             raw(json.dumps({"alg": "RS256", member: "https://evil.test/keys"}).encode(),
                 json.dumps(base).encode(), signer=attacker), rs, "bad_signature", *chk)
    case("x5c_in_header_ignored",
         raw(json.dumps({"alg": "RS256", "kid": "rs256-1", "x5c": ["MIIB"]}).encode(),
             json.dumps(base).encode(), signer=attacker), rs, "bad_signature", *chk)
    case("kid_path_traversal_refused", mint.tamper(t, "header-kid", value="../../../../dev/null"),
         rs, "unknown_kid", *chk)
    case("kid_sql_text_refused", mint.tamper(t, "header-kid", value="x' OR '1'='1"), rs,
         "unknown_kid", *chk)
    case("kid_not_a_string_refused",
         raw(b'{"alg":"RS256","kid":7}', json.dumps(base).encode()), rs, "bad_header_param",
         *chk)
    case("crit_unknown_extension_refused",
         raw(b'{"alg":"RS256","kid":"rs256-1","crit":["exp"],"exp":1}',
             json.dumps(base).encode()), rs, "crit_unsupported", *chk)
    case("b64_false_refused",
         raw(b'{"alg":"RS256","kid":"rs256-1","b64":false,"crit":["b64"]}',
             json.dumps(base).encode()), rs, "unencoded_payload", *chk)

    # ECDSA: r = s = 0 (CVE-2022-21449), r or s >= n, wrong lengths.
    esj = os.path.join(k, "es256-1.jwks.json")
    n256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 order
    h, p, _ = es.split(".")
    for label, sig in (("r_s_zero", bytes(64)),
                       ("r_s_equal_order", n256.to_bytes(32, "big") * 2),
                       ("s_equal_order", (1).to_bytes(32, "big") + n256.to_bytes(32, "big")),
                       ("signature_63_bytes", bytes(range(63))),
                       ("signature_65_bytes", bytes(range(65))),
                       ("signature_der_encoded", b"\x30\x06\x02\x01\x01\x02\x01\x01")):
        case(f"ecdsa_{label}_refused", f"{h}.{p}.{b64(sig)}", esj, "bad_signature", *chk)
    # A point not on the curve in the key file: the key is skipped, nothing verifies.
    bad = json.load(open(esj))
    y = bytearray(base64.urlsafe_b64decode(bad["keys"][0]["y"] + "=="))
    y[-1] ^= 1
    bad["keys"][0]["y"] = b64(bytes(y))
    badf = os.path.join(k, "bad-point.json")
    json.dump(bad, open(badf, "w"))
    case("ec_point_not_on_curve_key_refused", es, badf, ("no_keys", "unknown_kid"), *chk)

    # Encoding.
    hdr, pay, sig = t.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # A 256-byte RS256 signature ends in a character carrying 2 bits: its 4 low bits must be 0.
    idx = alphabet.index(sig[-1])
    case("nonzero_trailing_bits_refused", f"{hdr}.{pay}.{sig[:-1]}{alphabet[idx | 1]}", rs,
         "bad_base64url", *chk)
    case("padded_base64_refused", mint.tamper(t, "padded"), rs, "bad_base64url", *chk)
    case("standard_alphabet_refused", t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t)
         else t[:-1] + "+", rs, "bad_base64url", *chk)
    case("whitespace_in_token_refused", t[:20] + " " + t[20:], rs,
         ("bad_base64url", "malformed_token"), *chk)
    case("four_segments_refused", mint.tamper(t, "extra-segment"), rs, "malformed_token", *chk)
    case("jwe_five_segments_refused", "a.b.c.d.e", rs, "malformed_token", *chk)
    case("one_megabyte_token_refused", "a" * (1 << 20) + ".b.c", rs, "token_too_large", *chk)
    case("token_at_size_limit_judged", t, rs, "ok", *chk, "--max-token-bytes", str(len(t)))
    case("token_one_over_size_limit_refused", t, rs, "token_too_large", *chk,
         "--max-token-bytes", str(len(t) - 1))


def main():
    with tempfile.TemporaryDirectory() as d:
        mint.keygen(d)
        run(d)
    failed = [r for r in RESULTS if not r[1]]
    for name, ok, detail in RESULTS:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
