#!/usr/bin/python3
"""An IdP that misbehaves after the daemon has its keys: HTTP 500, an HTML body, a key set over
the size cap, a body that never ends (trickle), a 10 s stall against fetch_timeout, a certificate
from another CA, a redirect loop, a refused connection. In each case, while the bad fetch runs
and after it fails: the keys held keep serving (known kids ALLOW, fast), nothing bad passes
(unknown kid, bad signature), other issuers stay fast, pipelined requests all come back in order,
and the error shows in `keys` and `stats` (last_error). A stall that outlives jwks_max_stale turns
the issuer's tokens into ERROR 503 on time, fetch still hanging. A flood of unknown kids causes at
most one fetch per jwks_min_refresh, counted in nginx's access log.

tests/integration/test_keys.py covers the issuers that never get keys (500, wrong CA, HTML,
truncated, empty, huge, redirect loop) and an IdP stopped after a fetch; this file does not repeat
those. Each fault is switched on the way an IdP moves its key endpoint: the issuer uses discovery
with jwks_refresh 2, so the next refresh re-reads the discovery document, which now names the
broken endpoint. Run alone: /usr/bin/python3 test_idp_faults.py [CASE ...]."""

import socket
import threading
import time

import faults
from faults import common
from common import (KEY_WAIT_S, Daemon, Idp, Suite, check, expect, frame, mint, raw_connect,
                    read_frames, request_token, wait_until)

suite = Suite("idp_faults")
FETCH_TIMEOUT_S = 3
STALL_S = 10
# A decision with keys in memory is CPU work of a millisecond or two (more under ASan). A worker
# held by a fetch would show as KEY_WAIT_S (2 s) or FETCH_TIMEOUT_S; half a second separates the
# two on a noisy 2-core box.
FAST_S = 0.5
# Unknown kids that park for keys are answered by KEY_WAIT_S at the latest.
PARK_BOUND_S = KEY_WAIT_S + 1.0
TRICKLE_DOC_BYTES = 16384


class Ctx:
    pass


def refused_endpoint():
    """A TCP port on 127.0.0.1 bound but never listening: every connect is refused (RST), and
    nothing else can take the port while the socket is held."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


# name -> (how the discovery document's jwks_uri is made broken, words the last_error must hold,
#          whether the fetch hangs rather than failing at once)
FAULTS = {
    "http_500": (lambda c: c.idp.url("status500"), ("500",), False),
    "html_body": (lambda c: c.idp.url("garbage"), ("json",), False),
    "over_size_cap": (lambda c: c.idp.url("huge"), ("over", "bytes"), False),
    "trickle_never_ends": (lambda c: c.idp.url("trickle/big.jwks.json"),
                           ("too slow", "timed out", "timeout"), True),
    "stall_10s": (lambda c: c.idp.url(f"slow/jwks.json?delay={STALL_S}"),
                  ("timed out", "timeout"), True),
    "wrong_certificate": (lambda c: c.alien.url("jwks.json"),
                          ("certificate", "ssl", "issuer"), False),
    "redirect_loop": (lambda c: c.idp.url("redirect-loop"), ("redirect",), False),
    "connection_refused": (lambda c: f"https://127.0.0.1:{c.refused_port}/jwks.json",
                           ("refused", "connect"), False),
}


def fault_issuer(c, name):
    return f"{c.idp.url('f/' + name)}"


def point_discovery(c, iss, name, jwks_uri):
    c.idp.server.publish(f"f/{name}/.well-known/openid-configuration",
                         {"issuer": iss, "jwks_uri": jwks_uri})


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.mint = faults.Minter(s.keys)
    c.idp = Idp(s, s.keys, kids=("rs256-1", "es256-1"))
    # Another nginx, with its own CA: its certificate does not chain to the issuers' ca_file.
    c.alien = Idp(s, s.keys, kids=("rs256-1",)).server
    c.refused_sock, c.refused_port = refused_endpoint()
    s.stack.callback(c.refused_sock.close)
    # Valid JSON, a real key set, padded so the trickle (1 byte/s after the first 512) never
    # finishes within any test's life.
    big = c.keys.jwks("rs256-1", "es256-1")
    big["padding"] = "x" * TRICKLE_DOC_BYTES
    c.idp.server.publish("big.jwks.json", big)
    c.other = c.idp.issuer + "/other"
    issuers = [c.idp.uri_issuer_conf(c.other, "jwks.json")]
    c.iss = {}
    for name in list(FAULTS) + ["stale"]:
        iss = fault_issuer(c, name)
        point_discovery(c, iss, name, c.idp.url("jwks.json"))
        over = dict(issuer=iss, jwks_refresh=2, jwks_min_refresh=1, fetch_timeout=FETCH_TIMEOUT_S)
        if name == "stale":
            # Keys expire 4 s after their last confirmation; the hanging fetch gets 10 s.
            over.update(jwks_max_stale=4, fetch_timeout=STALL_S)
        issuers.append(c.idp.issuer_conf(**over))
        c.iss[name] = iss
    c.d = Daemon(s, issuers=issuers).start()
    for iss in [c.other] + list(c.iss.values()):
        c.d.wait_keys(iss)
    return c


def issuer_in_stats(d, iss):
    for i in d.admin_ok({"cmd": "stats"})["issuers"]:
        if i["issuer"] == iss:
            return i
    raise common.Failure(f"{iss} not in stats")


class Exercise:
    """Traffic while the fault is on: fresh tokens with known kids, a cached one, tampered ones
    and the other issuer's on one connection (latency of each recorded), unknown kids on another
    thread (they may park), and a pipelined batch whose replies must come back whole and in
    order."""

    def __init__(self, c, iss, n_unknown):
        self.c, self.iss = c, iss
        self.fresh = [c.mint.token("rs256-1", iss=iss) for _ in range(30)]
        self.fresh += [c.mint.token("es256-1", iss=iss) for _ in range(10)]
        self.cached = c.mint.token("rs256-1", iss=iss)
        expect(request_token(c.d, self.cached), "ALLOW")
        self.other = [c.mint.token("rs256-1", iss=c.other) for _ in range(20)]
        # rs256-2 is published nowhere: its kid is unknown to every issuer.
        self.unknown = [c.mint.token("rs256-2", iss=iss) for _ in range(n_unknown)]
        self.forged = mint.tamper(c.mint.token("rs256-1", iss=iss), "signature")
        self.lat = {"known": [], "cached": [], "other": [], "forged": [], "unknown": []}
        self.sent = self.replies = 0

    def _timed(self, s, what, token, verdict, reason=None):
        t0 = time.monotonic()
        s.sendall(frame({"type": "TOKEN", "methodArn": common.arn(),
                         "authorizationToken": "Bearer " + token}))
        self.sent += 1
        r = common.recv_frame(s)
        self.replies += 1
        self.lat[what].append(time.monotonic() - t0)
        check(r.get("verdict") != "ALLOW" or verdict == "ALLOW", f"{what}: ALLOW for {r}")
        expect(r, verdict, reason=reason)

    def _unknown_kids(self, errors):
        try:
            with raw_connect(self.c.d.sock, timeout=PARK_BOUND_S + 5) as s:
                for t in self.unknown:
                    self._timed(s, "unknown", t, "UNAUTHORIZED", "unknown_kid")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    def run(self):
        errors = []
        th = threading.Thread(target=self._unknown_kids, args=(errors,), daemon=True)
        th.start()
        with raw_connect(self.c.d.sock) as s:
            for i, t in enumerate(self.fresh):
                self._timed(s, "known", t, "ALLOW")
                self._timed(s, "cached", self.cached, "ALLOW")
                self._timed(s, "other", self.other[i % len(self.other)], "ALLOW")
                if i % 5 == 0:
                    self._timed(s, "forged", self.forged, "UNAUTHORIZED", "bad_signature")
            batch = [("k", self.fresh[0]), ("f", self.forged), ("o", self.other[0]),
                     ("c", self.cached)] * 5
            s.sendall(b"".join(frame({"type": "TOKEN", "methodArn": common.arn(), "id": f"{n}{i}",
                                      "authorizationToken": "Bearer " + t})
                               for i, (n, t) in enumerate(batch)))
            self.sent += len(batch)
            got = read_frames(s, len(batch))
            self.replies += len(got)
            check([r.get("id") for r in got] == [f"{n}{i}" for i, (n, _) in enumerate(batch)],
                  f"pipelined replies out of order: {[r.get('id') for r in got]}")
            for (n, _), r in zip(batch, got):
                expect(r, "UNAUTHORIZED" if n == "f" else "ALLOW")
        th.join(PARK_BOUND_S * len(self.unknown) + 10)
        check(not th.is_alive() and not errors, f"unknown-kid client: {errors}")
        check(self.sent == self.replies, f"{self.sent} requests, {self.replies} replies")

    def report(self, name):
        worst = {k: max(v) for k, v in self.lat.items() if v}
        print(f"# {name}: {self.sent} requests, {self.replies} replies; max latency "
              + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in worst.items()), flush=True)
        for what in ("known", "cached", "other", "forged"):
            check(worst[what] < FAST_S, f"{name}: a {what} request took {worst[what]:.2f}s")
        check(worst["unknown"] < PARK_BOUND_S, f"{name}: an unknown kid took "
              f"{worst['unknown']:.2f}s")


def fault_case(name):
    make_uri, words, hangs = FAULTS[name]

    def run(c):
        d, iss = c.d, c.iss[name]
        k0 = d.keys_of(iss)
        check(k0["serving"] and k0["last_error"] is None, f"not healthy before: {k0}")
        kids0 = sorted(x["kid"] for x in k0["keys"])
        bad_uri = make_uri(c)
        # Tokens minted first: the hang must not begin while PyJWT signs. During a hang an
        # unknown kid parks for up to KEY_WAIT_S: one fits in the hang.
        ex = Exercise(c, iss, 1 if hangs else 3)
        t_switch = time.monotonic()
        point_discovery(c, iss, name, bad_uri)
        if hangs:
            # The broken endpoint is known and its fetch is running: traffic now runs while the
            # fetch hangs, and must still be in flight when the traffic is done.
            wait_until(lambda: (lambda k: k["jwks_uri"] == bad_uri and k["fetch_pending"])(
                d.keys_of(iss)), 10, interval=0.02, what="the hanging fetch to begin")
            t_hang = time.monotonic()
            ex.run()
            k = d.keys_of(iss)
            check(k["fetch_pending"] and k["fetches"]["failed"] == k0["fetches"]["failed"],
                  f"the fetch ended before the traffic did ({time.monotonic() - t_hang:.1f}s):"
                  f" {k}")
        k = wait_until(lambda: (lambda k: k if k["fetches"]["failed"] > k0["fetches"]["failed"]
                                and k["last_error"] else None)(d.keys_of(iss)),
                       FETCH_TIMEOUT_S + 10, interval=0.02, what="the fetch to fail")
        took = time.monotonic() - (t_hang if hangs else t_switch)
        if hangs:
            check(took < FETCH_TIMEOUT_S + 1.5,
                  f"the hanging fetch ended {took:.1f}s after it began (fetch_timeout "
                  f"{FETCH_TIMEOUT_S}s)")
        else:
            ex.run()
        ex.report(name)
        msg = k["last_error"]["message"]
        check(any(w in msg.lower() for w in words), f"last_error {msg!r} names none of {words}")
        check(k["serving"] and not k["stale"] and sorted(x["kid"] for x in k["keys"]) == kids0
              and k["serial"] == k0["serial"], f"the keys held changed: {k}")
        st = issuer_in_stats(d, iss)
        check(st["last_error"] and st["last_error"]["message"] == msg,
              f"stats does not show the error: {st.get('last_error')}")
        # After the failure, a fresh token still verifies against the keys held.
        expect(request_token(d, c.mint.token("es256-1", iss=iss)), "ALLOW", cached=False)
        print(f"# {name}: failed fetch after {took:.1f}s, last_error {msg!r}", flush=True)
    return run


for _name in FAULTS:
    suite.add(f"keys_held_survive_{_name}", fault_case(_name))


@suite.case
def stall_past_max_stale_turns_error_503_on_time(c):
    d, iss = c.d, c.iss["stale"]
    tok = c.mint.token("rs256-1", iss=iss)
    expect(request_token(d, tok), "ALLOW")
    bad_uri = c.idp.url("slow/jwks.json?delay=30")
    point_discovery(c, iss, "stale", bad_uri)
    k = wait_until(lambda: (lambda k: k if k["jwks_uri"] == bad_uri and k["fetch_pending"]
                            else None)(d.keys_of(iss)), 10, interval=0.02,
                   what="the hanging fetch to begin")
    stale_at = k["stale_at"]
    # Up to stale_at the held keys serve: cached and fresh tokens alike.
    while time.time() < stale_at - 0.7:
        expect(request_token(d, tok), "ALLOW", cached=True)
        expect(request_token(d, c.mint.token("rs256-1", iss=iss)), "ALLOW", cached=False)
        time.sleep(0.2)
    wait_until(lambda: time.time() >= stale_at + 0.3, 10, what="stale_at")
    k = d.keys_of(iss)
    check(k["fetch_pending"] and not k["serving"] and k["stale"], f"keys at stale_at: {k}")
    for t in (tok, c.mint.token("rs256-1", iss=iss)):
        t0 = time.monotonic()
        r = request_token(d, t)
        check(r.get("verdict") != "ALLOW", f"ALLOW past jwks_max_stale: {r}")
        expect(r, "ERROR", 503, reason="no_keys")
        check(time.monotonic() - t0 < PARK_BOUND_S, "a request past max_stale waited too long")
    # The other issuers are untouched.
    expect(request_token(d, c.mint.token("rs256-1", iss=c.other)), "ALLOW")
    print("# stale: ERROR 503 from stale_at with the fetch still hanging", flush=True)


@suite.case
def unknown_kid_flood_one_fetch_per_min_refresh(c):
    """Its own nginx, so its access log counts this issuer's fetches alone."""
    min_refresh = 2
    flood_s = 7.0
    idp = Idp(suite, c.keys, kids=("rs256-1",), cache_control="")
    d = Daemon(suite, issuers=[idp.uri_issuer_conf(idp.issuer, "jwks.json", jwks_refresh=600,
                                                   jwks_min_refresh=min_refresh)]).start()
    try:
        d.wait_keys(idp.issuer)
        time.sleep(min_refresh + 0.1)  # the start-up fetch no longer holds back the next one
        base = c.mint.token("rs256-1", iss=idp.issuer)
        good = [c.mint.token("rs256-1", iss=idp.issuer) for _ in range(20)]
        n_before = len(idp.fetches())
        counts = {"sent": 0, "unknown_kid": 0, "ALLOW": 0, "other": []}
        lock = threading.Lock()
        deadline = time.monotonic() + flood_s

        def flooder(k):
            with raw_connect(d.sock, timeout=30) as s:
                i = 0
                while time.monotonic() < deadline:
                    batch = [mint.tamper(base, "header-kid", value=f"storm-{k}-{i}-{j}")
                             for j in range(50)] + [good[i % len(good)]]
                    s.sendall(b"".join(frame({"type": "TOKEN", "methodArn": common.arn(),
                                              "authorizationToken": "Bearer " + t})
                                       for t in batch))
                    replies = read_frames(s, len(batch))
                    with lock:
                        counts["sent"] += len(batch)
                        for r in replies[:-1]:
                            if r.get("reason") == "unknown_kid" and r.get("status") == 401:
                                counts["unknown_kid"] += 1
                            else:
                                counts["other"].append(r)
                        if replies[-1].get("verdict") == "ALLOW":
                            counts["ALLOW"] += 1
                        else:
                            counts["other"].append(replies[-1])
                    i += 1
                    # ~30,000 requests a second in all: a flood, leaving CPU to the tests
                    # ctest runs alongside.
                    time.sleep(0.01)

        t0 = time.monotonic()
        common.parallel([lambda k=k: flooder(k) for k in range(6)], timeout=flood_s + 30)
        took = time.monotonic() - t0
        time.sleep(0.5)  # nginx writes its log line as the response ends
        fetched = len(idp.fetches()) - n_before
        n = counts["sent"]
        allowed = n // 51
        print(f"# flood: {n} requests ({n - allowed} unknown kids) in {took:.1f}s, "
              f"{fetched} fetches (jwks_min_refresh {min_refresh}s)", flush=True)
        check(not counts["other"], f"{len(counts['other'])} unexpected replies, first "
              f"{counts['other'][:2]}")
        check(counts["unknown_kid"] + counts["ALLOW"] == n, f"lost requests: {counts}")
        check(n >= 2000, f"only {n} requests in {took:.1f}s: the flood was no flood")
        times = [r["time"] for r in idp.fetches()[n_before:]]
        gaps = [round(b - a, 2) for a, b in zip(times, times[1:])]
        print(f"# flood: seconds between fetches {gaps}", flush=True)
        # The key store's clock counts whole seconds: two fetches jwks_min_refresh clock-seconds
        # apart may be (min_refresh - 1) real seconds and a bit apart, so a window of T seconds
        # holds at most (T + 1) / min_refresh + 1 of them.
        check(1 <= fetched <= int((took + 1) / min_refresh) + 1,
              f"{fetched} fetches in {took:.1f}s with jwks_min_refresh {min_refresh}s: {gaps}")
        check(all(g >= min_refresh - 1 for g in gaps), f"fetches closer than "
              f"jwks_min_refresh - 1 s: {gaps}")
    finally:
        d.cleanup()


if __name__ == "__main__":
    suite.main(setup)
