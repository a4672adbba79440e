#!/usr/bin/python3
"""Mints the verifying seed tokens of fuzz/corpus/token/ (valid-*) with Debian's python3-jwt, from
the private halves of the keys fuzz_token.c trusts: Wycheproof's JWS test keys (read from
../shared/testdata/wycheproof) and RFC 8037 section A.1's Ed25519 key. Run it again when the
fixed key set or the claims the harness checks change; the other seeds are hand-written files.
Each file is one option byte (see fuzz_token.c) followed by the Authorization value or token.
Usage: /usr/bin/python3 fuzz/mint_token_seeds.py [WYCHEPROOF_DIR]
"""

import json
import sys
from pathlib import Path

import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

HERE = Path(__file__).resolve().parent
WYCHEPROOF = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "../../shared/testdata/wycheproof"
OUT = HERE / "corpus" / "token"

# RFC 8037 A.1: an example key, published for tests.
ED25519 = {"kty": "OKP", "crv": "Ed25519", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
           "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}

# What fuzz_token.c expects: it verifies at 1700000000 for this issuer and audience.
CLAIMS = {"iss": "https://issuer.example/", "sub": "user-1", "aud": ["api://fuzz"],
          "iat": 1600000000, "nbf": 1600000000, "exp": 4102444800, "scope": "orders:read"}

# Option bits (fuzz_token.c): 0x02 typ, 0x04 HMAC allowed, 0x08 issuer, 0x10 audience.
STRICT = 0x02 | 0x08 | 0x10


def private_keys():
    doc = json.loads((WYCHEPROOF / "json_web_signature_test.json").read_text())
    keys = {}
    for group in doc["testGroups"]:
        priv = group.get("private")
        for k in (priv.get("keys", [priv]) if priv else []):
            keys.setdefault((k.get("kid"), k["kty"]), k)
    return keys


def main():
    keys = private_keys()
    rsa = RSAAlgorithm.from_jwk(json.dumps(keys[("kid-rsa-sign", "RSA")]))
    ec256 = ECAlgorithm.from_jwk(json.dumps(keys[("kid-ec-sign", "EC")]))
    p521 = dict(keys[("bilbo.baggins@hobbiton.example", "EC")])
    p521["alg"] = "ES512"  # Wycheproof spells it "ES521"
    ec521 = ECAlgorithm.from_jwk(json.dumps(p521))
    ed = OKPAlgorithm.from_jwk(json.dumps(ED25519))
    hs = jwt.utils.base64url_decode(keys[("kid-aes-sign", "oct")]["k"])
    tokens = [
        ("valid-rs256", STRICT, rsa, "RS256", "kid-rsa-sign", "Bearer "),
        ("valid-ps256", STRICT, rsa, "PS256", "kid-rsa-sign", ""),
        ("valid-es256", STRICT, ec256, "ES256", "kid-ec-sign", "Bearer "),
        ("valid-es512", STRICT, ec521, "ES512", "bilbo.baggins@hobbiton.example", ""),
        ("valid-eddsa-nokid", STRICT, ed, "EdDSA", None, "bearer  "),
        ("valid-hs256", STRICT | 0x04, hs, "HS256", "kid-aes-sign", "Bearer "),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    for name, opt, key, alg, kid, prefix in tokens:
        headers = {"typ": "at+jwt"}
        if kid:
            headers["kid"] = kid
        tok = jwt.encode(CLAIMS, key, algorithm=alg, headers=headers)
        (OUT / name).write_bytes(bytes([opt]) + (prefix + tok).encode("ascii"))
        print(name, len(tok))


if __name__ == "__main__":
    main()
