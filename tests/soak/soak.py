#!/usr/bin/python3
"""Soak: mixed valid, invalid and admin traffic against one jwtauthzd for a set time, meant for
the ASan build. Every reply is checked (valid tokens ALLOW or DENY as the policy says, every
invalid one UNAUTHORIZED with its reason, never ALLOW), and at the end: zero errors (no wrong or
missing reply, no sanitizer report, no error line in the daemon log, exit 0 on SIGTERM) and flat
memory (RSS after the first third may grow by allocator noise only).

Traffic, on threads of this process: keep-alive decision clients (cached and fresh tokens, DENY,
seven kinds of refusal, REQUEST events), a client minting a new token per request (every one a
verification and a cache insert), a churn client (a connection per request, pipelined batches,
malformed frames, clients vanishing mid-frame), and an admin client (stats and keys 10 times a
second, flushes, refreshes, and a SIGHUP reload every 30 s).

    /usr/bin/python3 tests/soak/soak.py --duration 600       # the 10-minute run (ASan build)
    ctest -L soak                                            # 30 s, registered in ASan builds

Environment: JWTAUTHZ_BUILD, JWTAUTHZ_SRC (ctest sets both). In an ASan build the daemon runs with
a 4 MiB quarantine and the slow unwinder (tests/faults/faults.py rss_env) so that RSS measures
the daemon, not the sanitizer's store of freed memory and of bogus stacks.
"""

import argparse
import json
import random
import signal
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "faults"))

import faults  # noqa: E402
from faults import is_asan_build, rss_env, rss_kb  # noqa: E402
from common import (Daemon, Idp, Suite, arn, frame, header, mint, recv_frame,  # noqa: E402
                    wait_until)

# After this share of the run, RSS must stay put: the caches are warm and every pool has reached
# its working size.
WARM_FRACTION = 1 / 3
# Allowed RSS growth after the warm-up: allocator noise, not a leak (a leak of one byte per
# request would be several MiB over the 10-minute run).
FLAT_KB = 8 * 1024
RELOAD_EVERY_S = 30.0
TOKEN_POOL = 300
MAX_ERRORS_KEPT = 20

suite = Suite("soak")
args = None


class Ctx:
    pass


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []

    def add(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def error(self, msg):
        with self.lock:
            self.counts["errors"] = self.counts.get("errors", 0) + 1
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append(msg)


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.mint = faults.Minter(s.keys)
    c.idp = Idp(s, s.keys)
    c.d = Daemon(s, issuers=[c.idp.issuer_conf(jwks_min_refresh=5)],
                 extra={"log_level": "info", "decision_cache": {"ttl": 300, "max_entries": 5000}},
                 env=rss_env()).start()
    c.d.wait_keys(c.idp.issuer)
    return c


def build_cases(c):
    """(request, want_verdict, want_reason) tuples the keep-alive clients draw from."""
    iss = c.idp.issuer
    hour = 7200 + int(args.duration)
    good = [c.mint.token(("es256-1", "rs256-1")[i % 2], iss=iss, exp_in=hour, sub=f"soak-{i}",
                         scope="orders:read orders:write") for i in range(TOKEN_POOL)]
    base = c.mint.token("es256-1", iss=iss, exp_in=hour)
    bad = [(mint.tamper(base, "signature"), "bad_signature"),
           (mint.tamper(base, "payload"), "bad_signature"),
           (c.mint.token("es256-1", iss=iss, exp_in=-600), "token_expired"),
           (c.mint.token("rs256-2", iss=iss, exp_in=hour), "unknown_kid"),
           (mint.tamper(base, "header-alg-none"), "alg_none"),
           (c.mint.token("es256-1", iss=iss, aud="api://other", exp_in=hour),
            "audience_mismatch"),
           (c.mint.token("es256-1", iss="https://stranger.example/", exp_in=hour),
            "issuer_mismatch")]
    cases = []
    for t in good:
        cases.append(({"type": "TOKEN", "methodArn": arn(), "authorizationToken": "Bearer " + t},
                      "ALLOW", None))
        cases.append(({"type": "TOKEN", "methodArn": arn("DELETE", "/orders/1"),
                       "authorizationToken": "Bearer " + t}, "DENY", None))
    for t, reason in bad:
        cases.append(({"type": "TOKEN", "methodArn": arn(), "authorizationToken": "Bearer " + t},
                      "UNAUTHORIZED", reason))
    cases.append(({"type": "TOKEN", "methodArn": arn(), "authorizationToken": "Basic dTpw"},
                  "UNAUTHORIZED", None))
    for t in good[:20]:
        cases.append(({"type": "REQUEST", "methodArn": arn(), "httpMethod": "GET",
                       "path": "/orders/42", "headers": {"authorization": "Bearer " + t},
                       "queryStringParameters": {}}, "ALLOW", None))
    return cases


def check_reply(tally, r, want, reason, what):
    v = r.get("verdict")
    if v == "ALLOW" and want != "ALLOW":
        tally.error(f"{what}: ALLOW where {want} was due: {json.dumps(r)[:300]}")
    elif v != want or (reason is not None and r.get("reason") != reason):
        tally.error(f"{what}: want {want} {reason or ''}, got {json.dumps(r)[:300]}")
    else:
        tally.add(v)


def keepalive_client(c, tally, cases, end, seed):
    rnd = random.Random(seed)
    s = None
    while time.monotonic() < end:
        try:
            if s is None:
                s = c.d.connect()
            batch = [rnd.choice(cases) for _ in range(rnd.choice((1, 1, 1, 4, 16)))]
            s.sendall(b"".join(frame(dict(req, id=str(i))) for i, (req, _, _) in
                               enumerate(batch)))
            for i, (_, want, reason) in enumerate(batch):
                r = recv_frame(s)
                if r.get("id") != str(i):
                    tally.error(f"keep-alive: reply {r.get('id')} for request {i}")
                check_reply(tally, r, want, reason, "keep-alive")
            tally.add("requests", len(batch))
        except Exception as e:  # noqa: BLE001 - every failure is an error of the run
            tally.error(f"keep-alive: {e!r}")
            s = None
    if s:
        s.close()


def fresh_client(c, tally, end):
    """A new token per request: a verification and a cache insert each time (the cache holds
    5,000: it evicts all run long)."""
    with c.d.connect() as s:
        i = 0
        while time.monotonic() < end:
            t = c.mint.token("es256-1", iss=c.idp.issuer, sub=f"fresh-{i}")
            i += 1
            try:
                s.sendall(frame({"type": "TOKEN", "methodArn": arn(),
                                 "authorizationToken": "Bearer " + t}))
                check_reply(tally, recv_frame(s), "ALLOW", None, "fresh")
                tally.add("requests")
            except Exception as e:  # noqa: BLE001
                tally.error(f"fresh: {e!r}")
                return


def churn_client(c, tally, cases, end, seed):
    rnd = random.Random(seed)
    good = next(req for req, want, _ in cases if want == "ALLOW")
    while time.monotonic() < end:
        kind = rnd.choice(("one", "one", "pipeline", "not_json", "zero_length", "vanish"))
        try:
            with c.d.connect() as s:
                if kind == "one":
                    req, want, reason = rnd.choice(cases)
                    s.sendall(frame(req))
                    check_reply(tally, recv_frame(s), want, reason, "churn")
                elif kind == "pipeline":
                    s.sendall(frame(good) * 32)
                    for _ in range(32):
                        check_reply(tally, recv_frame(s), "ALLOW", None, "churn-pipeline")
                elif kind in ("not_json", "zero_length"):
                    s.sendall(frame(b"{not json") if kind == "not_json" else header(0))
                    r = recv_frame(s)
                    if r.get("verdict") != "ERROR" or r.get("status") != 500:
                        tally.error(f"malformed frame answered {r}")
                    tally.add("malformed")
                else:
                    raw = frame(good)
                    s.sendall(raw[:rnd.randrange(1, len(raw))])
                    tally.add("vanished")
            tally.add("connections")
        except Exception as e:  # noqa: BLE001
            tally.error(f"churn {kind}: {e!r}")


def admin_client(c, tally, end):
    d, iss = c.d, c.idp.issuer
    tick = 0
    next_reload = time.monotonic() + RELOAD_EVERY_S
    gen = 1
    while time.monotonic() < end:
        try:
            for cmd in ({"cmd": "stats"}, {"cmd": "keys"}):
                if d.admin(cmd).get("ok") is not True:
                    tally.error(f"admin {cmd} failed")
            if tick % 20 == 0:
                d.admin({"cmd": "flush", "principal": f"soak-{tick % TOKEN_POOL}"})
            if tick % 50 == 0:
                d.admin({"cmd": "refresh", "issuer": iss})
            if tick % 150 == 0:
                d.admin({"cmd": "flush"})
            tally.add("admin", 2)
            if time.monotonic() >= next_reload:
                gen += 1
                d.send_signal(signal.SIGHUP)
                wait_until(lambda: f"config generation {gen} loaded" in d.log(), 20,
                           what=f"reload to generation {gen}")
                tally.add("reloads")
                next_reload += RELOAD_EVERY_S
        except Exception as e:  # noqa: BLE001
            tally.error(f"admin: {e!r}")
        tick += 1
        time.sleep(0.1)


@suite.case
def soak_mixed_traffic_zero_errors_flat_memory(c):
    duration = args.duration
    cases = build_cases(c)
    tally = Tally()
    pid = c.d.proc.pid
    start = time.monotonic()
    end = start + duration
    workers = [threading.Thread(target=keepalive_client, args=(c, tally, cases, end, k),
                                daemon=True) for k in range(3)]
    workers += [threading.Thread(target=fresh_client, args=(c, tally, end), daemon=True),
                threading.Thread(target=churn_client, args=(c, tally, cases, end, 99),
                                 daemon=True),
                threading.Thread(target=admin_client, args=(c, tally, end), daemon=True)]
    for w in workers:
        w.start()
    samples = []
    while time.monotonic() < end:
        samples.append((time.monotonic() - start, rss_kb(pid)))
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    for w in workers:
        w.join(60)
    samples.append((time.monotonic() - start, rss_kb(pid)))
    stuck = [w.name for w in workers if w.is_alive()]
    stats = c.d.admin({"cmd": "stats"})
    c.d.stop()
    log = c.d.log()
    error_lines = [ln for ln in log.splitlines() if " error " in ln or ln.startswith("<3>")]
    warm = [kb for t, kb in samples if t >= duration * WARM_FRACTION]
    rss_warm, rss_end, rss_max = warm[0], samples[-1][1], max(kb for _, kb in samples)
    summary = {
        "duration_s": duration, "asan": is_asan_build(), "counts": tally.counts,
        "errors": tally.counts.get("errors", 0),
        "rss_kb": {"start": samples[0][1], "warm": rss_warm, "end": rss_end, "max": rss_max},
        "rss_every_10s_kb": [kb for t, kb in samples[::10]],
        "daemon": {"requests": stats.get("requests"), "connections": stats.get("connections"),
                   "cache_hits": stats.get("cache_hits"), "latency_us": stats.get("latency_us"),
                   "bad_frames": stats.get("bad_frames"),
                   "admin_requests": stats.get("admin_requests")},
        "log_error_lines": len(error_lines),
    }
    print("# soak " + json.dumps(summary), flush=True)
    faults.check(not stuck, f"workers still running: {stuck}")
    faults.check(not tally.errors, f"{tally.counts.get('errors')} errors, first: "
                 f"{tally.errors[:5]}")
    faults.check(not error_lines, f"error lines in the daemon log: {error_lines[:5]}")
    faults.check(tally.counts.get("requests", 0) > duration * 100,
                 f"only {tally.counts.get('requests', 0)} requests: the soak soaked nothing")
    faults.check(rss_max - rss_warm <= FLAT_KB,
                 f"RSS grew {rss_max - rss_warm} kB after the warm-up ({rss_warm} -> {rss_max})")


def main():
    global args
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    args, rest = ap.parse_known_args()
    sys.argv = [sys.argv[0]] + rest
    suite.main(setup)


if __name__ == "__main__":
    main()
