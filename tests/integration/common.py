#!/usr/bin/python3
"""Shared fixtures of the integration suite: the real jwtauthzd (tests/tools/daemon.py) against
key sets served over real HTTPS by nginx under a test CA (tests/tools/https_server.py), with
tokens minted by PyJWT (tests/tools/mint.py), never by the project's own C code.

Each test file builds a Suite, registers its cases with @suite.case (named after the behaviour or
the attack), and calls suite.main(): every case prints "ok NAME" or "FAIL NAME: detail", the last
line is "N passed, N failed", and the exit code is 1 when anything failed. Every process a case
starts (daemon, nginx, helpers) is stopped by the suite's ExitStack, on failure and on SIGTERM
(a ctest timeout) too; a daemon that printed a sanitizer report fails the suite at its stop.

Environment (ctest sets all three): JWTAUTHZ_BUILD, JWTAUTHZ_SRC, JWTAUTHZ_TESTDATA. With
JWTAUTHZ_VALGRIND set (a command line, scripts/valgrind.sh sets it), every Daemon runs under it.
"""

import contextlib
import ctypes
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = HERE.parent / "tools"
sys.path.insert(0, str(TOOLS))

import daemon as daemon_tool  # noqa: E402
import https_server  # noqa: E402
import mint  # noqa: E402
from daemon import frame, recv_exact, recv_frame  # noqa: E402,F401 - re-exported

BUILD = daemon_tool.build_dir()
SRC = daemon_tool.src_dir()
DAEMON_BIN = BUILD / "daemon" / "jwtauthzd"
CTL_BIN = BUILD / "client" / "ctl" / "jwtauthzctl"

AUDIENCE = "api://orders"
ARN_PREFIX = "arn:aws:execute-api:local:0:api/prod"
# The daemon's own bound on waiting for keys (daemon/loop.h LOOP_KEY_WAIT_MS), in seconds.
KEY_WAIT_S = 2.0
# Sanitizer reports in a daemon log: any of them fails the suite.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: ThreadSanitizer")

# The policy most cases run under: read with orders:read, write with orders:write, delete for the
# admin group, and an explicit Deny that beats every Allow on the internal API.
RULES = [
    {"resource": "arn:aws:execute-api:*:*:*/*/GET/orders*", "scopes": ["orders:read"]},
    {"resource": "arn:aws:execute-api:*:*:*/*/POST/orders*", "scopes": ["orders:write"]},
    {"resource": "arn:aws:execute-api:*:*:*/*/DELETE/*", "claims": {"groups": "admin"}},
    {"resource": "arn:aws:execute-api:*:*:*/*/*/internal/*", "effect": "Deny"},
    {"resource": "arn:aws:execute-api:*:*:*/*/GET/internal/*", "scopes": ["orders:read"]},
]


def arn(method="GET", path="/orders/42"):
    return f"{ARN_PREFIX}/{method}{path}"


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def expect(reply, verdict, status=None, reason=None, cached=None):
    """Asserts a decision reply's verdict, status, reason and cached flag."""
    status = status if status is not None else {"ALLOW": 200, "DENY": 403,
                                                "UNAUTHORIZED": 401}.get(verdict)
    got = (reply.get("verdict"), reply.get("status"))
    if got != (verdict, status):
        raise Failure(f"want {verdict} {status}, got {json.dumps(reply)[:600]}")
    if reason is not None and reply.get("reason") != reason:
        raise Failure(f"want reason {reason}, got {json.dumps(reply)[:600]}")
    if cached is not None and reply.get("cached") is not cached:
        raise Failure(f"want cached {cached}, got {json.dumps(reply)[:600]}")
    return reply


def check_no_sanitizer_report(text, what):
    """Fails when a sanitizer report is in text (the stderr of a short-lived daemon or ctl run)."""
    for mark in SANITIZER_MARKS:
        if mark in (text or ""):
            at = text.index(mark)
            raise Failure(f"{what}: sanitizer report:\n{text[max(0, at - 200):at + 3000]}")


def run_tool(cmd, **kw):
    """Runs jwtauthzd or jwtauthzctl to completion (text output), checking for sanitizer
    reports."""
    p = subprocess.run([str(x) for x in cmd], capture_output=True, text=True, timeout=60, **kw)
    check_no_sanitizer_report(p.stderr, " ".join(str(x) for x in cmd[:3]))
    return p


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise Failure(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when the thread that started it dies (a killed ctest run
    must not leave a daemon listening). Nothing is imported or allocated here: it runs between
    fork and exec."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Keys:
    """One test key set per process (mint.keygen), with helpers to mint from it."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.jwk = mint.keygen(self.dir)

    def path(self, kid):
        return str(self.dir / (kid + (".key" if kid.startswith("hs") else ".pem")))

    def jwks(self, *kids):
        return {"keys": [self.jwk[k] for k in kids]}

    def token(self, signer="rs256-1", iss=None, aud=AUDIENCE, sub="user-123", scope="orders:read",
              claims=None, **kw):
        """A token from PyJWT; a random jti keeps every token distinct (the decision cache is keyed
        by the token), unless the caller passes its own claims["jti"]."""
        c = {"jti": uuid.uuid4().hex}
        c.update(claims or {})
        return mint.mint(self.path(signer), iss=iss, aud=aud, sub=sub, scope=scope, claims=c, **kw)


class Idp:
    """An identity provider on real HTTPS: nginx serving a JWKS and its discovery document."""

    def __init__(self, suite, keys, kids=("rs256-1", "es256-1"), **server_kw):
        self.keys = keys
        self.docroot = Path(suite.tmp("idp-docroot-"))
        # A state dir the suite owns: stopping nginx (IdP down) keeps its CA file, so a daemon
        # config naming it stays loadable.
        server_kw.setdefault("state_dir", suite.tmp("idp-state-"))
        self.server = https_server.HttpsServer(self.docroot, **server_kw)
        suite.stack.callback(self.server.stop)
        self.server.start()
        self.publish(*kids)
        self.issuer = self.server.publish_discovery()

    def publish(self, *kids, path="jwks.json"):
        return self.server.publish(path, self.keys.jwks(*kids))

    @property
    def url(self):
        return self.server.url

    def fetches(self, path="/jwks.json"):
        return [r for r in self.server.requests() if r["uri"] == path]

    def token(self, signer="rs256-1", **kw):
        """A token of this issuer (iss set) from PyJWT."""
        kw.setdefault("iss", self.issuer)
        return self.keys.token(signer, **kw)

    def issuer_conf(self, **over):
        """A discovery issuer with leeway 0 (expiry is exact) and short refresh bounds."""
        conf = {
            "issuer": self.issuer,
            "discovery": True,
            "ca_file": self.server.ca_file,
            "audiences": [AUDIENCE],
            "leeway": 0,
            "jwks_refresh": 600,
            "jwks_min_refresh": 1,
            "jwks_max_stale": 3600,
            "fetch_timeout": 5,
            "context_claims": ["sub", "scope", "groups"],
        }
        conf.update(over)
        return conf

    def uri_issuer_conf(self, issuer, jwks_path, **over):
        """An issuer whose keys come from jwks_uri on this server."""
        conf = self.issuer_conf(issuer=issuer, **over)
        del conf["discovery"]
        conf["jwks_uri"] = self.server.url(jwks_path)
        return conf


class Daemon(daemon_tool.Daemon):
    """tests/tools/daemon.py's Daemon, tied to the suite: stopped by its ExitStack, dying with the
    test process, and checked for sanitizer reports and a clean exit when stopped."""

    def __init__(self, suite, issuers=(), rules=RULES, extra=None, **kw):
        # scripts/valgrind.sh runs whole suites with every daemon under valgrind.
        if os.environ.get("JWTAUTHZ_VALGRIND") and "valgrind" not in kw:
            kw["valgrind"] = shlex.split(os.environ["JWTAUTHZ_VALGRIND"])
        super().__init__(BUILD, issuers=issuers, rules=rules, extra=extra, **kw)
        self.suite = suite
        self.exit_codes = []
        suite.daemons.append(self)
        suite.stack.callback(self.cleanup)

    def start(self, wait=True):
        self.write_config()
        self._log = open(self.log_path, "ab")
        cmd = [str(self.bin), "-f", "-c", str(self.conf_path)]
        self.proc = subprocess.Popen(list(self.valgrind or []) + cmd,
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=die_with_parent)
        if wait:
            self.wait_ready()
        return self

    def stop(self, sig=signal.SIGTERM):
        rc = super().stop(sig)
        if rc is not None:
            self.exit_codes.append((sig, rc))
        return rc

    def cleanup(self):
        self.stop()
        if self._tmp:
            self.suite.sanitizer_check(self)
            self._tmp.cleanup()
            self._tmp = None

    def set(self, **extra):
        """Changes the config this object will write on the next write_config()/start()."""
        self.config.update(extra)

    def admin_ok(self, obj):
        r = self.admin(obj)
        check(r.get("ok") is True, f"admin {obj} failed: {r}")
        return r

    @property
    def epoch_path(self):
        """The epoch file next to the decision socket (proto/epoch.h)."""
        return Path(self.sock + ".epoch")

    def epoch(self):
        """(instance, epoch) from the epoch file, read as a web server module reads it; checks
        the magic. Layout: 16 bytes of magic, then two native-endian 64-bit words."""
        data = self.epoch_path.read_bytes()
        check(len(data) == 4096, f"epoch file is {len(data)} bytes, want one page")
        check(data[:16] == b"JWTAUTHZEPOCH1\0\0", f"epoch file magic {data[:16]!r}")
        return struct.unpack("=QQ", data[16:32])

    def keys_of(self, issuer):
        for i in self.admin_ok({"cmd": "keys"})["issuers"]:
            if i["issuer"] == issuer:
                return i
        raise Failure(f"issuer {issuer} not in keys output")

    def refresh_and_wait(self, issuer, timeout=10.0):
        """Admin refresh, then waits until that fetch has ended (ok, 304 or failed)."""
        before = self.keys_of(issuer)["fetches"]
        self.admin_ok({"cmd": "refresh", "issuer": issuer})

        def done():
            k = self.keys_of(issuer)
            return k if (sum(k["fetches"].values()) > sum(before.values()) and
                         not k["fetch_pending"]) else None
        return wait_until(done, timeout, what=f"refresh of {issuer}")

    def wait_keys(self, issuer, timeout=10.0):
        """Waits until the issuer has a serving key set."""
        return wait_until(lambda: (lambda k: k if k["serving"] and k["keys"] else None)(
            self.keys_of(issuer)), timeout, what=f"keys of {issuer}")

    def ctl_run(self, *args):
        return run_tool([self.ctl_bin, "-s", self.sock, "-a", self.admin_sock, *args])

    def ctl(self, *args, input=None):
        """jwtauthzctl against this daemon: (exit code, parsed JSON or None), as the tool's
        Daemon.ctl, with its stderr checked for sanitizer reports."""
        p = self.ctl_run(*args)
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            out = None
        return p.returncode, out


class Suite:
    """Named cases run in order; a failure in one does not stop the others."""

    def __init__(self, name):
        self.name = name
        self.cases = []
        self.stack = contextlib.ExitStack()
        self.daemons = []
        self.sanitizer_failures = []
        self._tmpdirs = []
        self.keys = None

    def case(self, fn):
        self.cases.append(fn)
        return fn

    def add(self, name, fn):
        """Registers fn under name: for cases generated from a table."""
        fn.__name__ = name
        self.cases.append(fn)

    def tmp(self, prefix="jwtauthz-it-"):
        d = tempfile.TemporaryDirectory(prefix=prefix)
        self.stack.callback(d.cleanup)
        return d.name

    def sanitizer_check(self, d):
        log = d.log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                at = log.index(mark)
                self.sanitizer_failures.append(log[max(0, at - 200):at + 3000])
                return

    def main(self, setup=None):
        # A ctest timeout sends SIGTERM: unwind so every daemon and nginx is stopped.
        def on_term(signum, _frame):
            raise SystemExit(f"signal {signum}")
        signal.signal(signal.SIGTERM, on_term)
        check_binaries()
        passed = failed = 0
        only = set(sys.argv[1:])
        t_start = time.monotonic()
        try:
            with self.stack:
                self.keys = Keys(self.tmp("jwtauthz-keys-"))
                ctx = setup(self) if setup else None
                for fn in self.cases:
                    if only and fn.__name__ not in only:
                        continue
                    t0 = time.monotonic()
                    try:
                        fn(ctx) if setup else fn()
                        passed += 1
                        print(f"ok {fn.__name__}", flush=True)
                        took = time.monotonic() - t0
                        if took >= 1.0:
                            print(f"# {fn.__name__}: {took:.1f}s", flush=True)
                    except Exception as e:  # noqa: BLE001 - every failure is reported by name
                        failed += 1
                        detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
                        print(f"FAIL {fn.__name__}: {detail}", flush=True)
        except BaseException:
            failed += 1
            print(f"FAIL {self.name}.setup: {traceback.format_exc()}", flush=True)
        for report in self.sanitizer_failures:
            failed += 1
            print(f"FAIL sanitizer_clean: {report}", flush=True)
        unclean = [(d.conf_path, c) for d in self.daemons for c in d.exit_codes
                   if c[0] == signal.SIGTERM and c[1] != 0]
        print(f"# {self.name}: {time.monotonic() - t_start:.1f}s", flush=True)
        if unclean:
            failed += 1
            print(f"FAIL daemons_exit_cleanly: SIGTERM exit codes {unclean}", flush=True)
        print(f"{passed} passed, {failed} failed", flush=True)
        sys.exit(1 if failed else 0)


def check_binaries():
    for b in (DAEMON_BIN, CTL_BIN):
        if not os.access(b, os.X_OK):
            print(f"FAIL setup: {b} not built (JWTAUTHZ_BUILD={BUILD})")
            print("0 passed, 1 failed")
            sys.exit(1)


# ---- raw protocol helpers --------------------------------------------------------------------

def raw_connect(path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def is_closed(sock, timeout=5.0):
    """True when the peer closed the connection (EOF or reset) within timeout with nothing more
    to read."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(1)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return data == b""


def read_frames(sock, n):
    return [recv_frame(sock) for _ in range(n)]


def header(n):
    return struct.pack(">I", n)


def request_token(d, token, method_arn=None, **extra):
    return d.token_request("Bearer " + token, method_arn or arn(), **extra)


def parallel(fns, timeout=60.0):
    """Runs callables on threads at once; returns their results (an exception is re-raised)."""
    results = [None] * len(fns)
    errors = []
    barrier = threading.Barrier(len(fns))

    def run(i, fn):
        try:
            barrier.wait(timeout)
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in threads):
        raise Failure("parallel calls did not finish in time")
    return results
