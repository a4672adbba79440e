#!/usr/bin/python3
"""The seed's design, for bench/run_daemon.sh to compare jwtauthzd against: a Python authorizer
on PyJWT (Debian python3-jwt) doing the daemon's checks in-process, single-threaded, no socket:
bearer extraction, kid lookup in a JWKS, signature, exp/nbf/iss/aud (leeway 60 s), the config's
rules (scopes, claims) into a policy, IAM evaluation of the methodArn (* and ?, explicit Deny
wins), the context claims, and a dict cache keyed by token for min(ttl, exp - now).

Prints decisions per CPU-second (time.process_time) as JSON, for two input shapes:
  wire  the request frame's JSON text in, the reply's JSON text out (what the daemon does per
        decision, minus the socket);
  dict  an event dict in, a reply dict out (a Lambda-style authorizer: the kindest to Python).
Usage: pyjwt_authorizer.py JWKS_FILE TOKENS_FILE [--seconds S] [--cached-tokens K]
With --serve SOCKET it answers the daemon's wire protocol instead (one thread, selectors), so
bench_loadgen can measure it exactly as it measures the daemon: a like-for-like extra figure.
"""

import argparse
import json
import re
import selectors
import socket
import sys
import time

import jwt

ISSUER = "https://bench.test/"
AUDIENCE = "api://bench"
LEEWAY_S = 60
CACHE_TTL_S = 300
CONTEXT_CLAIMS = ("sub", "scope", "client_id")
METHOD_ARN = "arn:aws:execute-api:local:0:api/prod/GET/orders/42"
# The same rules as run_daemon.sh's daemon config.
RULES = (
    {"resource": "arn:aws:execute-api:*:*:*/*/GET/orders*", "scopes": ["orders:read"]},
    {"resource": "*/DELETE/*", "claims": {"groups": "admin"}},
)


def compile_pattern(pattern):
    """IAM wildcards: * any run of characters, ? one character; everything else literal."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


class Authorizer:
    def __init__(self, jwks):
        self.keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwks).keys}
        self.rules = []
        for r in RULES:
            claims = {n: v if isinstance(v, list) else [v] for n, v in r.get("claims", {}).items()}
            self.rules.append((r["resource"], compile_pattern(r["resource"]),
                               r.get("effect", "Allow") == "Allow", r.get("scopes", []), claims))
        self.cache = {}

    @staticmethod
    def has_scope(claims, want):
        scope = claims.get("scope")
        if isinstance(scope, str) and want in scope.split(" "):
            return True
        scp = claims.get("scp")
        if isinstance(scp, str):
            return want in scp.split(" ")
        return isinstance(scp, list) and want in scp

    @staticmethod
    def meets_claim(claims, name, values):
        v = claims.get(name)
        items = v if isinstance(v, list) else [v]
        for item in items:
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, (int, float)):
                item = json.dumps(item)
            if isinstance(item, str) and item in values:
                return True
        return False

    def match(self, claims):
        """Indices of the rules the token meets (the daemon's match set)."""
        return tuple(i for i, (_, _, _, scopes, creq) in enumerate(self.rules)
                     if all(self.has_scope(claims, s) for s in scopes)
                     and all(self.meets_claim(claims, n, v) for n, v in creq.items()))

    def policy_document(self, matched):
        statements = []
        for allow in (True, False):
            res = []
            for i in matched:
                resource, _, is_allow, _, _ = self.rules[i]
                if is_allow == allow and resource not in res:
                    res.append(resource)
            if res:
                statements.append({"Action": "execute-api:Invoke",
                                   "Effect": "Allow" if allow else "Deny", "Resource": res})
        return {"Version": "2012-10-17", "Statement": statements}

    def evaluate(self, matched, arn):
        allowed = False
        for i in matched:
            _, rx, is_allow, _, _ = self.rules[i]
            if rx.fullmatch(arn):
                if not is_allow:
                    return False
                allowed = True
        return allowed

    @staticmethod
    def unauthorized(reason):
        return {"verdict": "UNAUTHORIZED", "status": 401, "reason": reason}

    def decide(self, event):
        auth = event.get("authorizationToken")
        arn = event.get("methodArn")
        if not isinstance(auth, str) or auth[:7].lower() != "bearer " or not arn:
            return self.unauthorized("token_missing")
        token = auth[7:].lstrip(" ")
        now = int(time.time())
        hit = self.cache.get(token)
        if hit is not None and hit[0] > now:
            expires_at, principal, matched, context = hit
            cached = True
        else:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
                key = self.keys.get(kid)
                if key is None:
                    return self.unauthorized("unknown_kid")
                claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE,
                                    issuer=ISSUER, leeway=LEEWAY_S,
                                    options={"require": ["exp", "iss", "aud"]})
            except jwt.InvalidTokenError as e:
                return self.unauthorized(type(e).__name__)
            principal = claims.get("sub")
            if not isinstance(principal, str) or not principal:
                return self.unauthorized("principal_missing")
            matched = self.match(claims)
            context = {c: claims[c] for c in CONTEXT_CLAIMS if claims.get(c) is not None}
            expires_at = now + min(CACHE_TTL_S, int(claims["exp"]) - now)
            self.cache[token] = (expires_at, principal, matched, context)
            cached = False
        allow = self.evaluate(matched, arn)
        return {"verdict": "ALLOW" if allow else "DENY", "status": 200 if allow else 403,
                "principalId": principal, "policyDocument": self.policy_document(matched),
                "context": context, "cached": cached, "ttl": expires_at - now}


def run(authz, requests, seconds, wire, once):
    """Decides requests in order (cycling unless once) for `seconds` of CPU; returns the rate."""
    n = allow = 0
    t0 = time.process_time()
    t1 = t0
    total = len(requests)
    while t1 - t0 < seconds and not (once and n >= total):
        for _ in range(256):
            if once and n >= total:
                break
            req = requests[n % total]
            if wire:
                reply = json.dumps(authz.decide(json.loads(req)), separators=(",", ":")).encode()
                allow += reply.startswith(b'{"verdict":"ALLOW"')
            else:
                allow += authz.decide(req)["verdict"] == "ALLOW"
            n += 1
        t1 = time.process_time()
    if allow != n:
        sys.exit(f"pyjwt_authorizer: {n - allow} of {n} decisions were not ALLOW")
    return n / (t1 - t0), n


def serve(path, authz):
    """Frames in, frames out, one decision at a time, until killed."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(128)
    srv.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                conn, _ = srv.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, bytearray())
                continue
            conn, buf = key.fileobj, key.data
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            buf += data
            out = []
            while len(buf) >= 4:
                n = int.from_bytes(buf[:4], "big")
                if len(buf) < 4 + n:
                    break
                req = json.loads(bytes(buf[4:4 + n]))
                del buf[:4 + n]
                body = json.dumps(authz.decide(req), separators=(",", ":")).encode()
                out.append(len(body).to_bytes(4, "big") + body)
            if out:
                conn.setblocking(True)
                conn.sendall(b"".join(out))
                conn.setblocking(False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jwks")
    ap.add_argument("tokens")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--cached-tokens", type=int, default=10000)
    ap.add_argument("--serve", metavar="SOCKET")
    a = ap.parse_args()
    with open(a.jwks) as f:
        jwks = json.load(f)
    if a.serve:
        serve(a.serve, Authorizer(jwks))
        return
    with open(a.tokens) as f:
        tokens = [line.strip() for line in f if line.strip()]
    events = [{"type": "TOKEN", "authorizationToken": "Bearer " + t, "methodArn": METHOD_ARN}
              for t in tokens]
    frames = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    out = {}
    for shape, reqs in (("wire", frames), ("dict", events)):
        wire = shape == "wire"
        # Uncached: every request a token this authorizer has not seen (it still caches it,
        # as the daemon does). The halves of the file keep the two shapes apart.
        half = len(reqs) // 2
        part = reqs[:half] if wire else reqs[half:]
        rate, n = run(Authorizer(jwks), part, a.seconds, wire, once=True)
        out[f"{shape}_uncached_per_cpu_s"] = round(rate, 1)
        out[f"{shape}_uncached_decisions"] = n
        # Cached: the first K tokens, decided once to fill the cache, then cycled.
        authz = Authorizer(jwks)
        warm = reqs[:a.cached_tokens]
        run(authz, warm, 1e9, wire, once=True)
        rate, n = run(authz, warm, a.seconds, wire, once=False)
        out[f"{shape}_cached_per_cpu_s"] = round(rate, 1)
        out[f"{shape}_cached_decisions"] = n
    print(json.dumps(out))


if __name__ == "__main__":
    main()
