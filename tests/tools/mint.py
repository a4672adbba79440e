#!/usr/bin/python3
"""Independent token minter for jwtauthz tests.

Keys, JWKS files and tokens come from Debian's python3-jwt and python3-cryptography, never from
the project's C code, so a bug in jose/ cannot vouch for itself (STYLE.md, "Build, format, tests").
Use as a CLI (see --help) or import it: keygen(dir), mint(key=..., ...), tamper(token, what).
Run it with /usr/bin/python3: the python3 on PATH may lack the jwt and cryptography modules.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# The test key set: (kid, alg, key type, size or curve). The kids are part of the test interface:
# other tests name them, so changing one here breaks them.
KEY_SPECS = (
    ("rs256-1", "RS256", "RSA", 2048),
    ("rs256-2", "RS256", "RSA", 2048),  # a second RSA key, for rotation tests
    ("ps256-1", "PS256", "RSA", 3072),
    ("es256-1", "ES256", "EC", "P-256"),
    ("es384-1", "ES384", "EC", "P-384"),
    ("es512-1", "ES512", "EC", "P-521"),
    ("eddsa-1", "EdDSA", "OKP", "Ed25519"),
    ("hs256-1", "HS256", "oct", 64),  # secret length in bytes
)
KIDS = tuple(spec[0] for spec in KEY_SPECS)
ALG_BY_KID = {spec[0]: spec[1] for spec in KEY_SPECS}

_CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}

# Default lifetime of a minted token: long enough for a slow CI run, short enough that a test
# that forgets --exp-in does not depend on a token valid for days.
DEFAULT_EXP_IN_S = 300

# Keeps "no kid header" distinct from "kid derived from the key file name".
_FROM_FILE = object()


def b64url(data):
    """RFC 7515 §2: base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def _uint_bytes(value, length=None):
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


def public_jwk(key, kid, alg):
    """The public JWK of a private key object (or raw HMAC secret bytes) as a dict.

    Written out by hand from the key's numbers rather than with PyJWT's to_jwk(): RFC 7518
    §6.2.1.2 requires EC coordinates at the curve's full length (66 bytes for P-521), which
    PyJWT 2.6 does not pad to, and a JWKS that is wrong in that way would hide parser bugs.
    """
    if isinstance(key, bytes):
        jwk = {"kty": "oct", "k": b64url(key)}
    elif isinstance(key, rsa.RSAPrivateKey):
        nums = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": b64url(_uint_bytes(nums.n)), "e": b64url(_uint_bytes(nums.e))}
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        nums = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {v.name: k for k, v in _CURVES.items()}[key.curve.name]
        jwk = {
            "kty": "EC",
            "crv": crv,
            "x": b64url(_uint_bytes(nums.x, size)),
            "y": b64url(_uint_bytes(nums.y, size)),
        }
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    else:
        raise TypeError(f"unsupported key type {type(key).__name__}")
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def _generate(kty, size):
    if kty == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if kty == "EC":
        return ec.generate_private_key(_CURVES[size]())
    if kty == "OKP":
        return ed25519.Ed25519PrivateKey.generate()
    if kty == "oct":
        return os.urandom(size)
    raise ValueError(kty)


def _write(path, data, mode):
    # Write then rename, so a server or daemon reading the directory never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_jwks(path, keys):
    """Write a JWKS file {"keys": [...]} from a list of JWK dicts."""
    _write(Path(path), (json.dumps({"keys": list(keys)}, indent=1) + "\n").encode(), 0o644)


def keygen(directory):
    """Create a fresh test key set in `directory` (created if missing).

    Writes DIR/<kid>.pem (PKCS#8 private key) or DIR/<kid>.key (raw HMAC secret),
    DIR/<kid>.pub.pem for asymmetric keys, DIR/<kid>.jwks.json for every kid,
    DIR/jwks.json (all asymmetric public keys) and DIR/jwks-with-hs.json (those plus the oct key:
    only for local-file tests, a secret must never be published). Returns {kid: public JWK}.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    jwks = {}
    for kid, alg, kty, size in KEY_SPECS:
        key = _generate(kty, size)
        if kty == "oct":
            _write(directory / f"{kid}.key", key, 0o600)
        else:
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write(directory / f"{kid}.pem", pem, 0o600)
            pub = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            _write(directory / f"{kid}.pub.pem", pub, 0o644)
        jwks[kid] = public_jwk(key, kid, alg)
        write_jwks(directory / f"{kid}.jwks.json", [jwks[kid]])
    asym = [j for j in jwks.values() if j["kty"] != "oct"]
    write_jwks(directory / "jwks.json", asym)
    write_jwks(directory / "jwks-with-hs.json", list(jwks.values()))
    return jwks


def load_key(path):
    """A signing key from a file: *.key is a raw HMAC secret, anything else a PEM private key."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".key":
        return data
    return serialization.load_pem_private_key(data, password=None)


def _kid_of_path(path):
    name = Path(path).name
    for suffix in (".pem", ".key"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _alg_for(key, kid):
    if kid in ALG_BY_KID:
        return ALG_BY_KID[kid]
    if isinstance(key, bytes):
        return "HS256"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
    raise TypeError(f"cannot infer alg for {type(key).__name__}")


def mint(
    key,
    alg=None,
    kid=_FROM_FILE,
    iss=None,
    aud=None,
    sub=None,
    scope=None,
    exp_in=DEFAULT_EXP_IN_S,
    nbf_in=None,
    iat_in=0,
    claims=None,
    headers=None,
    typ=None,
    now=None,
):
    """Return one compact JWS signed with PyJWT.

    key: a path (*.pem private key, *.key HMAC secret), a cryptography private key, raw secret
    bytes, or None with alg "none". alg: defaults from the kid of the file name, else the key type.
    kid: defaults to the key file's name without extension; None leaves the header without kid.
    aud: a string (emitted as a string) or a list (emitted as an array).
    exp_in / nbf_in / iat_in: seconds relative to `now` (default: the real clock, so tests with an
    injected clock pass their own); None leaves the claim out. claims and headers are merged last,
    so they override anything; a header "alg" also changes the signing algorithm (PyJWT signs with
    it), so relabel an existing token with tamper() instead. typ: the header's typ ("JWT" by
    default); "" removes it.
    """
    path = None
    if isinstance(key, (str, Path)):
        path = key
        key = load_key(path)
    if kid is _FROM_FILE:
        kid = _kid_of_path(path) if path is not None else None
    if alg is None:
        alg = "none" if key is None else _alg_for(key, kid)
    base = int(time.time()) if now is None else int(now)

    payload = {}
    for name, value in (("iss", iss), ("sub", sub), ("aud", aud), ("scope", scope)):
        if value is not None:
            payload[name] = value
    for name, delta in (("iat", iat_in), ("nbf", nbf_in), ("exp", exp_in)):
        if delta is not None:
            payload[name] = base + int(delta)
    payload.update(claims or {})

    hdr = {}
    if kid is not None:
        hdr["kid"] = kid
    if typ is not None:
        hdr["typ"] = typ
    hdr.update(headers or {})
    return jwt.encode(payload, key, algorithm=alg, headers=hdr or None)


def sign_raw(header_bytes, payload_bytes, key, alg):
    """Sign exact header and payload bytes, for inputs jwt.encode() refuses to produce
    (duplicate JSON members, a non-object payload, a kid that is not a string, odd whitespace).
    The signature still comes from PyJWT's algorithm objects."""
    if isinstance(key, (str, Path)):
        key = load_key(key)
    signing_input = f"{b64url(header_bytes)}.{b64url(payload_bytes)}"
    if alg == "none":
        return signing_input + "."
    algo = jwt.algorithms.get_default_algorithms()[alg]
    sig = algo.sign(signing_input.encode("ascii"), algo.prepare_key(key))
    return f"{signing_input}.{b64url(sig)}"


def _split(token):
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"not a compact JWS: {len(parts)} segments")
    return parts


def _json_segment(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


TAMPERINGS = {
    "signature": "flip one bit in the middle of the signature",
    "zero-signature": "replace the signature with zero bytes of the same length "
    "(ECDSA r=s=0, CVE-2022-21449)",
    "strip-signature": "keep header and payload, empty signature",
    "truncate-signature": "drop the last 4 bytes of the signature",
    "payload": "set a claim (--claim, default sub=\"attacker\") keeping the old signature",
    "header-alg-none": "header alg \"none\" (or --value), empty signature",
    "header-alg": "set header alg to --value, keeping the old signature",
    "header-kid": "set header kid to --value (default \"no-such-kid\"), keeping the signature",
    "alg-confusion": "re-sign as HS256 using --secret-file (e.g. the RSA public key PEM or "
    "JWKS) as the HMAC secret",
    "extra-segment": "append a fourth segment",
    "padded": "add base64 '=' padding to every segment (forbidden by RFC 7515 §2)",
}


def tamper(token, what, value=None, claims=None, secret=None):
    """Return `token` altered as TAMPERINGS[what] says."""
    h, p, s = _split(token)
    if what in ("signature", "zero-signature", "truncate-signature"):
        sig = bytearray(b64url_decode(s))
        if not sig:
            raise ValueError("token has no signature to alter")
        if what == "signature":
            sig[len(sig) // 2] ^= 0x01
        elif what == "zero-signature":
            sig = bytearray(len(sig))
        else:
            sig = sig[:-4]
        return f"{h}.{p}.{b64url(bytes(sig))}"
    if what == "strip-signature":
        return f"{h}.{p}."
    if what == "payload":
        body = json.loads(b64url_decode(p))
        body.update(claims if claims else {"sub": "attacker"})
        return f"{h}.{_json_segment(body)}.{s}"
    if what in ("header-alg-none", "header-alg", "header-kid"):
        header = json.loads(b64url_decode(h))
        if what == "header-kid":
            header["kid"] = value if value is not None else "no-such-kid"
            return f"{_json_segment(header)}.{p}.{s}"
        if what == "header-alg" and value is None:
            raise ValueError("header-alg needs --value")
        header["alg"] = value if value is not None else "none"
        return f"{_json_segment(header)}.{p}.{s if what == 'header-alg' else ''}"
    if what == "alg-confusion":
        if secret is None:
            raise ValueError("alg-confusion needs --secret-file")
        header = json.loads(b64url_decode(h))
        header["alg"] = "HS256"
        # Computed with hmac directly: PyJWT rightly refuses a PEM public key as an HMAC secret,
        # and that refusal is exactly what the daemon must also do.
        signing_input = f"{_json_segment(header)}.{p}"
        mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"
    if what == "extra-segment":
        return f"{h}.{p}.{s}.{s}"
    if what == "padded":
        return ".".join(seg + "=" * (-len(seg) % 4) for seg in (h, p, s))
    raise ValueError(f"unknown tampering {what!r}; one of {', '.join(TAMPERINGS)}")


def _json_assignment(text, flag):
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"mint.py: {flag} wants NAME=JSONVALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError as err:
        # Strict on purpose: a bare word silently taken as a string would hide quoting bugs.
        raise SystemExit(
            f"mint.py: {flag} {name}: value is not JSON ({err}); quote strings: {name}='\"x\"'"
        ) from None


def _parse_args(argv):
    ap = argparse.ArgumentParser(prog="mint.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    k = sub.add_parser("keygen", help="write a fresh test key set into DIR")
    k.add_argument("dir")

    m = sub.add_parser("mint", help="print one signed token")
    m.add_argument("--key", help="DIR/<kid>.pem or DIR/<kid>.key (omit with --alg none)")
    m.add_argument("--alg", help="default: from the kid, else from the key type")
    m.add_argument("--kid", help="default: the key file's name without extension")
    m.add_argument("--no-kid", action="store_true", help="leave kid out of the header")
    m.add_argument("--iss")
    m.add_argument("--aud", action="append", help="repeatable; twice or more makes an array")
    m.add_argument("--sub")
    m.add_argument("--scope", help='space-separated scopes, e.g. "orders:read orders:write"')
    m.add_argument("--exp-in", type=int, default=DEFAULT_EXP_IN_S, help="seconds from now")
    m.add_argument("--no-exp", action="store_true")
    m.add_argument("--nbf-in", type=int)
    m.add_argument("--iat-in", type=int, default=0)
    m.add_argument("--no-iat", action="store_true")
    m.add_argument("--now", type=int, help="epoch seconds the *-in options count from")
    m.add_argument("--claim", action="append", default=[], metavar="NAME=JSON")
    m.add_argument("--header", action="append", default=[], metavar="NAME=JSON")
    m.add_argument("--typ", help='header typ, e.g. at+jwt; "" removes it')

    r = sub.add_parser("mint-raw", help="sign exact header and payload bytes")
    r.add_argument("--key")
    r.add_argument("--alg", required=True)
    r.add_argument("--header-json", required=True, help="used byte for byte")
    r.add_argument("--payload-json", required=True, help="used byte for byte")

    t = sub.add_parser(
        "tamper",
        help="alter a token",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="\n".join(f"  {k:20} {v}" for k, v in TAMPERINGS.items()),
    )
    t.add_argument("token")
    t.add_argument("--what", required=True, choices=list(TAMPERINGS))
    t.add_argument("--value")
    t.add_argument("--claim", action="append", default=[], metavar="NAME=JSON")
    t.add_argument("--secret-file")
    return ap.parse_args(argv)


def main(argv=None):
    args = _parse_args(argv)
    if args.cmd == "keygen":
        jwks = keygen(args.dir)
        print(json.dumps({"dir": str(Path(args.dir).resolve()), "kids": list(jwks)}))
        return 0
    if args.cmd == "mint":
        if args.key is None and (args.alg or "").lower() != "none":
            raise SystemExit("mint.py: --key is required unless --alg none")
        kid = None if args.no_kid else (args.kid if args.kid is not None else _FROM_FILE)
        aud = None
        if args.aud:
            aud = args.aud[0] if len(args.aud) == 1 else args.aud
        print(
            mint(
                args.key,
                alg=args.alg,
                kid=kid,
                iss=args.iss,
                aud=aud,
                sub=args.sub,
                scope=args.scope,
                exp_in=None if args.no_exp else args.exp_in,
                nbf_in=args.nbf_in,
                iat_in=None if args.no_iat else args.iat_in,
                claims=dict(_json_assignment(c, "--claim") for c in args.claim),
                headers=dict(_json_assignment(h, "--header") for h in args.header),
                typ=args.typ,
                now=args.now,
            )
        )
        return 0
    if args.cmd == "mint-raw":
        key = args.key if args.key is not None else None
        print(sign_raw(args.header_json.encode(), args.payload_json.encode(), key, args.alg))
        return 0
    secret = Path(args.secret_file).read_bytes() if args.secret_file else None
    claims = dict(_json_assignment(c, "--claim") for c in args.claim)
    try:
        print(tamper(args.token.strip(), args.what, value=args.value, claims=claims, secret=secret))
    except ValueError as err:
        raise SystemExit(f"mint.py: tamper: {err}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
