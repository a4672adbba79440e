#!/usr/bin/python3
"""Resource limits. A daemon started with RLIMIT_NOFILE 64 and more clients than descriptors:
accept failures are logged and survived, the clients past the limit wait in the backlog rather
than being dropped, forged tokens still never pass, and every one of them is answered as the
others leave. A flood of 100,000 distinct valid tokens (HS256 from a jwks_file, minted with hmac
directly; tests/faults/cache_flood.py) against max_entries 20,000: RSS grows by no more than the
cache's bound plus slack, and stops growing once the cache is full. The 1,000,000-token run is
cache_flood.py's CLI (docs/robustness.md). Run alone: /usr/bin/python3 test_limits.py [CASE]."""

import json
import re
import resource
import select
import socket
import subprocess
import time
from pathlib import Path

import cache_flood
import faults
from faults import fd_count, rss_env, unix_fd_count
from common import (Daemon, Idp, Suite, arn, check, die_with_parent, expect, frame, mint,
                    raw_connect, recv_frame, request_token, wait_until)

suite = Suite("limits")
LOW_NOFILE = 64
CLIENTS = 150
# daemon/loop.c LOOP_ACCEPT_WARN_INTERVAL_MS.
ACCEPT_WARN_INTERVAL_S = 10.0
FLOOD_TOKENS = 100000
FLOOD_MAX_ENTRIES = 20000
FLOOD_STEP = 20000
# Beyond max_entries x 400 B: thread arenas, the hash table, buffers of the flood's 4
# connections. Measured +2.9 MB (plain) and +3.8 MB (ASan, small quarantine) in all.
FLOOD_SLACK_KB = 8 * 1024
# Once the cache has been filled twice over, RSS may move by allocator noise only.
FLOOD_FLAT_KB = 4 * 1024


class Ctx:
    pass


class LimitedDaemon(Daemon):
    """common.Daemon started with RLIMIT_NOFILE set (soft and hard) between fork and exec."""

    def __init__(self, suite_, nofile, **kw):
        super().__init__(suite_, **kw)
        self.nofile = nofile

    def start(self, wait=True):
        self.write_config()
        self._log = open(self.log_path, "ab")
        nofile = self.nofile

        def preexec():
            die_with_parent()
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(list(self.valgrind or []) +
                                     [str(self.bin), "-f", "-c", str(self.conf_path)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=preexec)
        if wait:
            self.wait_ready()
        return self


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.mint = faults.Minter(s.keys)
    c.idp = Idp(s, s.keys)
    return c


def nofile_of(pid):
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return None


def collect(socks, pending, timeout):
    """Reads whole replies from the sockets in pending (index -> socket) for up to timeout s;
    returns {index: reply} for those answered."""
    got, bufs = {}, {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        r, _, _ = select.select(list(pending.values()), [], [], 0.05)
        for s in r:
            i = next(k for k, v in pending.items() if v is s)
            data = s.recv(65536)
            check(data, f"client {i}: the daemon closed the connection")
            bufs[i] = bufs.get(i, b"") + data
            if len(bufs[i]) >= 4 and len(bufs[i]) >= 4 + int.from_bytes(bufs[i][:4], "big"):
                got[i] = json.loads(bufs[i][4:])
                del pending[i]
    return got


@suite.case
def fd_limit_64_accept_failures_survived_then_recovered(c):
    d = LimitedDaemon(suite, LOW_NOFILE, issuers=[c.idp.issuer_conf()]).start()
    try:
        d.wait_keys(c.idp.issuer)
        check(nofile_of(d.proc.pid) == LOW_NOFILE, f"limit not applied: {nofile_of(d.proc.pid)}")
        base_fds = fd_count(d.proc.pid)
        base_unix = unix_fd_count(d.proc.pid)
        control = raw_connect(d.sock)
        control.sendall(frame({"type": "TOKEN", "methodArn": arn(),
                               "authorizationToken": "Bearer " + c.idp.token()}))
        expect(recv_frame(control), "ALLOW")
        tokens = [c.mint.token("es256-1", iss=c.idp.issuer, sub=f"c{i}") for i in range(CLIENTS)]
        socks = []
        for i in range(CLIENTS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(d.sock)  # the kernel's backlog takes what the daemon cannot accept
            s.sendall(frame({"type": "TOKEN", "methodArn": arn(), "id": str(i),
                             "authorizationToken": "Bearer " + tokens[i]}))
            socks.append(s)
        t_starved = time.monotonic()
        pending = dict(enumerate(socks))
        first = collect(socks, pending, 2.0)
        at_limit = fd_count(d.proc.pid)
        print(f"# RLIMIT_NOFILE {LOW_NOFILE}: {base_fds} descriptors at rest; {len(first)} of "
              f"{CLIENTS} clients answered at first, {len(pending)} waiting; daemon holds "
              f"{at_limit}", flush=True)
        check(pending, "every client was answered: the limit was never reached")
        check(d.proc.poll() is None, "the daemon died at the descriptor limit")
        wait_until(lambda: re.search(r"accept: Too many open files", d.log()), 5,
                   what="the accept failure in the log")
        # At the limit: the connection already held still decides, and forged tokens fail. A
        # kid nobody published makes the daemon try a fetch it has no descriptor for (or reuse
        # a kept-alive connection); either way the answer is no.
        for bad, reason in ((mint.tamper(c.idp.token(), "signature"), "bad_signature"),
                            (c.mint.token("rs256-2", iss=c.idp.issuer), "unknown_kid")):
            control.sendall(frame({"type": "TOKEN", "methodArn": arn(),
                                   "authorizationToken": "Bearer " + bad}))
            expect(recv_frame(control), "UNAUTHORIZED", reason=reason)
        control.sendall(frame({"type": "TOKEN", "methodArn": arn(),
                               "authorizationToken": "Bearer " + c.idp.token()}))
        expect(recv_frame(control), "ALLOW")
        # The answered ones leave; the waiting ones are accepted and answered in turn.
        answered = dict(first)
        control.close()
        t0 = time.monotonic()
        while pending and time.monotonic() - t0 < 30:
            for i in list(answered):
                if socks[i].fileno() >= 0:
                    socks[i].close()
            answered.update(collect(socks, pending, 1.0))
        took = time.monotonic() - t0
        for s in socks:
            s.close()
        check(not pending, f"{len(pending)} clients never answered after the others left")
        wrong = [(i, r) for i, r in answered.items()
                 if (r.get("verdict"), r.get("id"), r.get("principalId")) != ("ALLOW", str(i),
                                                                            f"c{i}")]
        check(len(answered) == CLIENTS and not wrong, f"wrong replies: {wrong[:3]}")
        log = d.log()
        warnings = log.count("accept: Too many open files")
        loops = int(re.search(r"ready: (\d+) worker thread", log).group(1))
        starved_s = time.monotonic() - t_starved
        print(f"# all {CLIENTS} answered {took:.1f}s after the first ones left; {warnings} accept "
              f"warnings logged by {loops} loops over {starved_s:.1f}s", flush=True)
        # Logged, not flooded: once per LOOP_ACCEPT_WARN_INTERVAL_MS per loop at most.
        check(warnings <= loops * (int(starved_s / ACCEPT_WARN_INTERVAL_S) + 1),
              f"{warnings} accept warnings in {starved_s:.1f}s")
        wait_until(lambda: unix_fd_count(d.proc.pid) <= base_unix, 10,
                   what="client connections all released")
        expect(request_token(d, c.idp.token()), "ALLOW")
        check(d.admin_ok({"cmd": "stats"})["connections"] >= CLIENTS, "stats")
    finally:
        d.cleanup()


@suite.case
def token_flood_rss_within_cache_bound(c):
    jwks = Path(suite.tmp("jwtauthz-hs-")) / "hs.jwks.json"
    jwks.write_text(json.dumps(c.keys.jwks(cache_flood.KID)))
    secret = Path(c.keys.path(cache_flood.KID)).read_bytes()
    d = Daemon(suite, issuers=[cache_flood.issuer_conf(jwks)], rules=cache_flood.RULES,
               extra=cache_flood.daemon_extra(FLOOD_MAX_ENTRIES), env=rss_env()).start()
    try:
        r = cache_flood.run(d.proc.pid, d.sock, d.admin, secret, FLOOD_TOKENS, FLOOD_MAX_ENTRIES,
                            5000, FLOOD_STEP)
        growth = r["rss_max_kb"] - r["rss0_kb"]
        limit = r["bound_kb"] + FLOOD_SLACK_KB
        cache = r["cache"]
        print(f"# {FLOOD_TOKENS} tokens in {r['seconds']:.1f}s ({r['rate']:.0f}/s): RSS "
              + " -> ".join(f"{kb}" for _, kb in r["samples"]) + f" kB; +{growth} kB (bound "
              f"{r['bound_kb']} + {FLOOD_SLACK_KB} kB), +{r['growth_after_full_kb']} kB after "
              f"the cache was full; cache {cache['entries']} entries, {cache['evictions']} "
              f"evictions, {cache['memory_bytes'] // 1024} kB of slabs", flush=True)
        check(r["counts"]["replies"] == FLOOD_TOKENS and r["counts"]["ALLOW"] == FLOOD_TOKENS,
              f"replies {r['counts']}")
        check(cache["entries"] <= FLOOD_MAX_ENTRIES, f"cache {cache}")
        check(cache["evictions"] >= FLOOD_TOKENS - FLOOD_MAX_ENTRIES, f"cache {cache}")
        check(growth <= limit, f"RSS grew {growth} kB, over {limit} kB")
        check(r["growth_after_full_kb"] <= FLOOD_FLAT_KB,
              f"RSS still grew {r['growth_after_full_kb']} kB once the cache was full")
    finally:
        d.cleanup()


if __name__ == "__main__":
    suite.main(setup)
