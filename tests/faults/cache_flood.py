#!/usr/bin/python3
"""A flood of distinct valid tokens against the decision cache's memory bound: every token is new,
so every request verifies and inserts, and past max_entries every insert evicts. The daemon's RSS
must stop growing once the cache is full, and stay within max_entries x ~400 B of where it began.

HS256 from a jwks_file (an oct key; algorithms ["HS256"]) keeps verification cheap, and tokens are
minted here with hmac and base64 directly (a few microseconds each; PyJWT per token would take
longer than the flood). The payload is written byte for byte, the signature is RFC 7515's over
the two segments: what the daemon checks is the same as for any HS256 token.

Module: used by test_limits.py (100,000 tokens, max_entries 20,000).
CLI (the long run, docs/robustness.md):
    JWTAUTHZ_BUILD=build-rel /usr/bin/python3 tests/faults/cache_flood.py \\
        --tokens 1000000 --max-entries 100000
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))

import daemon as daemon_tool  # noqa: E402
import mint  # noqa: E402

ISSUER = "https://hs.flood.test/"
AUDIENCE = "api://orders"
ARN = "arn:aws:execute-api:local:0:api/prod/GET/orders/1"
RULES = [{"resource": "arn:aws:execute-api:*:*:*/*/GET/orders*", "scopes": ["orders:read"]}]
KID = "hs256-1"
# The daemon's dcache entries land in 256-448 byte slots (daemon/dcache.c); ~400 B per entry is
# the issue's yardstick, plus the hash table's bucket array.
BYTES_PER_ENTRY = 400
# Frames written per sendall(): enough to keep the pipeline full, little enough to interleave.
BATCH = 256


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def hs256_tokens(secret, start, n, iss=ISSUER, aud=AUDIENCE, exp_in=3600):
    """n distinct HS256 tokens (bytes), numbered from start."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"},
                               separators=(",", ":")).encode())
    head = ('{"iss":"%s","aud":"%s","scope":"orders:read","iat":%d,"exp":%d,' % (
        iss, aud, now, now + exp_in)).encode()
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    out = []
    for i in range(start, start + n):
        payload = b64url(head + b'"sub":"flood-%d","jti":"%d"}' % (i, i))
        signing_input = header + b"." + payload
        m = mac.copy()
        m.update(signing_input)
        out.append(signing_input + b"." + b64url(m.digest()))
    return out


def frames_of(tokens):
    pre = b'{"type":"TOKEN","methodArn":"' + ARN.encode() + b'","authorizationToken":"Bearer '
    return [struct.pack(">I", len(pre) + len(t) + 2) + pre + t + b'"}' for t in tokens]


def _recv_exact(s, n, buf):
    while len(buf) < n:
        chunk = s.recv(262144)
        if not chunk:
            raise EOFError("the daemon closed a flood connection")
        buf += chunk
    return buf


def flood(sock_path, tokens, conns=4):
    """Sends every token once, pipelined over conns connections (a writer and a reader thread
    each); returns {"ALLOW": n, "other": [first few other replies], "replies": n}."""
    counts = {"ALLOW": 0, "replies": 0, "other": []}
    lock = threading.Lock()
    errors = []
    shares = [tokens[k::conns] for k in range(conns)]

    def writer(s, frames):
        try:
            for i in range(0, len(frames), BATCH):
                s.sendall(b"".join(frames[i:i + BATCH]))
        except Exception as e:  # noqa: BLE001 - reported by flood()
            errors.append(f"writer: {e!r}")

    def reader(s, n):
        allow = replies = 0
        other = []
        buf = b""
        try:
            for _ in range(n):
                buf = _recv_exact(s, 4, buf)
                (ln,) = struct.unpack(">I", buf[:4])
                buf = _recv_exact(s, 4 + ln, buf)
                body, buf = buf[4:4 + ln], buf[4 + ln:]
                replies += 1
                if b'"verdict":"ALLOW"' in body:
                    allow += 1
                elif len(other) < 3:
                    other.append(body[:300].decode(errors="replace"))
        except Exception as e:  # noqa: BLE001 - reported by flood()
            errors.append(f"reader: {e!r}")
        with lock:
            counts["ALLOW"] += allow
            counts["replies"] += replies
            counts["other"] += other

    threads, socks = [], []
    for share in shares:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(sock_path)
        socks.append(s)
        threads += [threading.Thread(target=writer, args=(s, frames_of(share)), daemon=True),
                    threading.Thread(target=reader, args=(s, len(share)), daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    for s in socks:
        s.close()
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return counts


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def issuer_conf(jwks_path):
    return {"issuer": ISSUER, "jwks_file": str(jwks_path), "algorithms": ["HS256"],
            "audiences": [AUDIENCE]}


def daemon_extra(max_entries):
    # log_level info: a million debug lines would be a test of the disk.
    return {"decision_cache": {"ttl": 300, "max_entries": max_entries}, "log_level": "info"}


def run(d_pid, sock_path, admin, secret, total, max_entries, warmup, step, say=print):
    """The measurement: warm-up tokens, RSS, then the flood in steps with RSS after each.
    admin(obj) sends an admin request. Returns a dict of figures."""
    counts = {"ALLOW": 0, "replies": 0, "other": []}

    def add(c):
        for k in ("ALLOW", "replies"):
            counts[k] += c[k]
        counts["other"] += c["other"]

    t0 = time.monotonic()
    add(flood(sock_path, hs256_tokens(secret, 0, warmup)))
    rss0 = rss_kb(d_pid)
    samples = [(warmup, rss0)]
    say(f"# warm-up {warmup} tokens: RSS {rss0} kB")
    sent = warmup
    while sent < total:
        n = min(step, total - sent)
        add(flood(sock_path, hs256_tokens(secret, sent, n)))
        sent += n
        samples.append((sent, rss_kb(d_pid)))
        say(f"# {sent} tokens: RSS {samples[-1][1]} kB, {time.monotonic() - t0:.1f}s")
    took = time.monotonic() - t0
    cache = admin({"cmd": "stats"})["decision_cache"]
    full_at = next((i for i, (n, _) in enumerate(samples) if n >= 2 * max_entries), None)
    return {
        "tokens": total, "seconds": took, "rate": total / took, "rss0_kb": rss0,
        "rss_end_kb": samples[-1][1], "rss_max_kb": max(r for _, r in samples),
        "samples": samples,
        # Growth once the cache has been filled twice over: flat means bounded.
        "growth_after_full_kb": (max(r for _, r in samples[full_at:]) - samples[full_at][1]
                                 if full_at is not None else None),
        "bound_kb": max_entries * BYTES_PER_ENTRY // 1024,
        "counts": counts, "cache": cache,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=1000000)
    ap.add_argument("--max-entries", type=int, default=100000)
    ap.add_argument("--warmup", type=int, default=5000)
    ap.add_argument("--step", type=int, default=100000)
    ap.add_argument("--slack-mb", type=int, default=16)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jwtauthz-flood-") as tmp:
        jwk = mint.keygen(tmp)
        secret = Path(tmp, KID + ".key").read_bytes()
        jwks = Path(tmp, "hs.jwks.json")
        jwks.write_text(json.dumps({"keys": [jwk[KID]]}))
        with daemon_tool.Daemon(issuers=[issuer_conf(jwks)], rules=RULES,
                                extra=daemon_extra(args.max_entries)) as d:
            print(f"# jwtauthzd {d.bin} pid {d.proc.pid}; {args.tokens} tokens, max_entries "
                  f"{args.max_entries}", flush=True)
            r = run(d.proc.pid, d.sock, d.admin, secret, args.tokens, args.max_entries,
                    args.warmup, args.step, say=lambda m: print(m, flush=True))
    growth = r["rss_max_kb"] - r["rss0_kb"]
    limit = r["bound_kb"] + args.slack_mb * 1024
    print(json.dumps({k: v for k, v in r.items() if k != "samples"}, indent=1))
    ok = (r["counts"]["ALLOW"] == args.tokens and r["counts"]["replies"] == args.tokens and
          r["cache"]["entries"] <= args.max_entries and growth <= limit)
    print(f"# RSS {r['rss0_kb']} -> {r['rss_end_kb']} kB (max {r['rss_max_kb']}): +{growth} kB, "
          f"bound {r['bound_kb']} kB + {args.slack_mb} MiB slack; {r['rate']:.0f} tokens/s; "
          f"{'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("JWTAUTHZ_BUILD", str(daemon_tool.build_dir()))
    sys.exit(main())
