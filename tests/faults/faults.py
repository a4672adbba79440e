#!/usr/bin/python3
"""Shared helpers of the fault tests (tests/faults), on top of the integration fixtures
(tests/integration/common.py: Suite, Daemon, Idp, Keys, expect, ...), which they reuse as they are.

What is added here: reading a daemon's RSS and open descriptors from /proc, telling an ASan build
from a plain one, raising RLIMIT_NOFILE, the fault_client (a libjwtauthz client loop in C,
tests/faults/fault_client.c) as a subprocess, latency quantiles, and a well-behaved probe client
measured before and during an abuse.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import common  # noqa: E402
from common import (BUILD, Failure, check, die_with_parent, frame, raw_connect,  # noqa: E402,F401
                    recv_frame)

FAULT_CLIENT_BIN = BUILD / "tests" / "faults" / "fault_client"
# The latency bound a well-behaved client keeps under abuse (the "generous" bound: the
# box is noisy and has 2 cores): p99 during <= max(P99_FACTOR x p99 before, P99_FLOOR_MS).
P99_FACTOR = 5.0
P99_FLOOR_MS = 50.0


def is_asan_build(binary=None):
    """True when the daemon binary is built with AddressSanitizer (its dynamic symbols name the
    ASan runtime). RSS figures of such a build measure the sanitizer's shadow and quarantine."""
    data = Path(binary or common.DAEMON_BIN).read_bytes()
    return b"__asan_init" in data


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise Failure(f"no VmRSS for pid {pid}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def unix_fd_count(pid):
    """The daemon's descriptors that are Unix sockets: its listeners, its internal socketpairs and
    its clients' connections. TCP connections to IdPs come and go with the fetcher's connection
    cache, so a count meant to show client connections released leaves them out."""
    with open("/proc/net/unix") as f:
        inodes = {line.split()[6] for line in f.readlines()[1:] if len(line.split()) > 6}
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        n += link.startswith("socket:[") and link[8:-1] in inodes
    return n


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE to want (within the hard limit); returns the new
    soft limit. Children (the daemon) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def quantile(values, q):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def check_binary():
    if not os.access(FAULT_CLIENT_BIN, os.X_OK):
        raise Failure(f"{FAULT_CLIENT_BIN} not built (JWTAUTHZ_BUILD={BUILD})")


class FaultClient:
    """fault_client as a subprocess: threads of libjwtauthz clients asking for decisions in a loop.
    start() returns at once; result() waits and returns (changes, summary)."""

    def __init__(self, suite, sock, good, arn, bad=None, threads=4, timeout_ms=1000,
                 duration_s=5.0, pause_us=0):
        check_binary()
        self.cmd = [str(FAULT_CLIENT_BIN), "-s", sock, "-r", arn, "-g", "Bearer " + good,
                    "-t", str(timeout_ms), "-d", str(int(duration_s * 1000)),
                    "-n", str(threads), "-p", str(pause_us)]
        if bad is not None:
            self.cmd += ["-b", "Bearer " + bad]
        self.duration_s = duration_s
        self.proc = None
        suite.stack.callback(self.kill)

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=die_with_parent)
        return self

    def result(self, slack_s=30.0):
        try:
            out, err = self.proc.communicate(timeout=self.duration_s + slack_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure(f"fault_client did not finish within {self.duration_s + slack_s:.0f}s:"
                          " a call hung past its timeout")
        common.check_no_sanitizer_report(err, "fault_client")
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        summary = [e for e in events if e["event"] == "summary"]
        check(self.proc.returncode == 0 and summary,
              f"fault_client exit {self.proc.returncode}: {err[-2000:]}")
        return [e for e in events if e["event"] == "change"], summary[0]

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def probe_latency(suite, d, token, arn, duration_s, pause_us=2000):
    """One well-behaved client (one thread, one connection reused, a request every ~2 ms) for
    duration_s: its summary (p50/p99/max in microseconds, verdict counts)."""
    _, s = FaultClient(suite, d.sock, token, arn, threads=1, timeout_ms=2000,
                       duration_s=duration_s, pause_us=pause_us).start().result()
    return s


class Prober:
    """The same probe running in the background while a test does its worst; stop() ends it
    (SIGTERM: fault_client finishes its call and reports) and returns its summary."""

    MAX_S = 120.0
    # Enough calls for a p99 even when the abuse is short.
    MIN_S = 1.0

    def __init__(self, suite, d, token, arn, pause_us=2000):
        self.fc = FaultClient(suite, d.sock, token, arn, threads=1, timeout_ms=2000,
                              duration_s=self.MAX_S, pause_us=pause_us).start()
        self.t0 = time.monotonic()

    def stop(self):
        time.sleep(max(0.0, self.t0 + self.MIN_S - time.monotonic()))
        self.fc.proc.send_signal(signal.SIGTERM)
        return self.fc.result()[1]


def check_p99_kept(what, before, during):
    """Asserts the probe's p99 under abuse stays within the bound, and prints both figures."""
    b_ms, d_ms = before["p99_us"] / 1000.0, during["p99_us"] / 1000.0
    bound = max(P99_FACTOR * b_ms, P99_FLOOR_MS)
    print(f"# {what}: well-behaved p99 before {b_ms:.2f} ms ({before['calls']} calls), during "
          f"{d_ms:.2f} ms ({during['calls']} calls, max {during['max_us'] / 1000.0:.1f} ms); "
          f"bound {bound:.1f} ms", flush=True)
    check(during["good"]["ALLOW"] == during["calls"] and during["calls"] > 0,
          f"{what}: the well-behaved client did not get ALLOW every time: {during}")
    check(d_ms <= bound, f"{what}: p99 {d_ms:.2f} ms during the abuse, over {bound:.1f} ms")


class Minter:
    """Tokens from PyJWT (tests/tools/mint.py) with each private key loaded once: loading an RSA
    PEM runs cryptography's key checks (tens of ms), which Keys.token pays per token."""

    def __init__(self, keys):
        self.keys = keys
        self._loaded = {}

    def token(self, signer="rs256-1", iss=None, aud=common.AUDIENCE, sub="user-123",
              scope="orders:read", claims=None, **kw):
        if signer not in self._loaded:
            self._loaded[signer] = common.mint.load_key(self.keys.path(signer))
        c = {"jti": uuid.uuid4().hex}
        c.update(claims or {})
        alg = {"rs": "RS256", "es": "ES256", "hs": "HS256"}.get(signer[:2])
        return common.mint.mint(self._loaded[signer], alg=alg, kid=signer, iss=iss, aud=aud,
                                sub=sub, scope=scope, claims=c, **kw)


# Two things make an ASan build's RSS climb whatever the daemon does, and the daemons whose RSS a
# test bounds run without them (the ordinary suite keeps ASan's defaults):
# - the quarantine (256 MiB by default) holds freed memory to catch use after free: RSS grows by
#   every byte freed until it is full. A small one still catches use after free within it.
# - the fast (frame-pointer) unwinder that records each allocation's stack walks into OpenSSL's
#   assembly and libc, which keep no frame pointers, and reads stack garbage as return addresses:
#   every verification then records a "new" stack, and ASan's stack depot, which never frees,
#   grows by ~250 B per fresh ES256 token (measured: +27 MB for 120,000 tokens, flat with the
#   slow unwinder or with no stacks at all). The slow (DWARF) unwinder records true stacks.
ASAN_QUARANTINE_MB = 4
ASAN_RSS_OPTIONS = f"quarantine_size_mb={ASAN_QUARANTINE_MB}:fast_unwind_on_malloc=0"


def rss_env():
    """The environment for a daemon whose RSS is measured."""
    env = dict(os.environ)
    if is_asan_build():
        opts = env.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + ASAN_RSS_OPTIONS
    return env
