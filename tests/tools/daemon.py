#!/usr/bin/python3
"""Runs the real jwtauthzd for integration and e2e tests: writes a config into a temp dir, starts
the daemon in the foreground on private sockets, waits until both sockets answer, and stops it
(SIGTERM, then SIGKILL after a grace period). Also speaks the wire protocol directly (frames of a
4-byte big-endian length + JSON), so tests can send malformed bytes a client library never would.

    from daemon import Daemon
    with Daemon(build_dir, issuers=[...], rules=[...]) as d:
        rc, reply = d.check("Bearer " + token, "arn:aws:execute-api:local:0:api/prod/GET/orders")
        d.admin({"cmd": "stats"})
Environment: JWTAUTHZ_BUILD (build dir), JWTAUTHZ_SRC (source dir); ctest sets both.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 15.0
STOP_GRACE_S = 10.0
DEFAULT_RECV_TIMEOUT_S = 10.0


def build_dir():
    return Path(os.environ.get("JWTAUTHZ_BUILD", Path(__file__).resolve().parents[2] / "build"))


def src_dir():
    return Path(os.environ.get("JWTAUTHZ_SRC", Path(__file__).resolve().parents[2]))


def frame(obj_or_bytes):
    body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return struct.pack(">I", len(body)) + body


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_frame(sock):
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    return json.loads(recv_exact(sock, n))


class Daemon:
    """One jwtauthzd process with its own temp dir, config, sockets and log file."""

    def __init__(self, build=None, issuers=(), rules=(), extra=None, valgrind=None,
                 env=None, workdir=None):
        self.build = Path(build or build_dir())
        self.bin = self.build / "daemon" / "jwtauthzd"
        self.ctl_bin = self.build / "client" / "ctl" / "jwtauthzctl"
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="jwtauthzd-")
        self.dir = Path(workdir or self._tmp.name)
        self.sock = str(self.dir / "d.sock")
        self.admin_sock = str(self.dir / "a.sock")
        self.conf_path = self.dir / "jwtauthz.conf"
        self.log_path = self.dir / "daemon.log"
        self.config = {
            "listen": self.sock,
            "admin_listen": self.admin_sock,
            "cache_dir": str(self.dir / "cache"),
            "log_level": "debug",
            "issuers": list(issuers),
            "rules": list(rules),
        }
        self.config.update(extra or {})
        self.valgrind = valgrind
        self.env = env
        self.proc = None

    # -- lifecycle ---------------------------------------------------------------------------
    def write_config(self, config=None, text=None):
        """Writes text, else config_text when set (a config file as a user wrote it, comments
        and all), else config (or self.config) as JSON."""
        if text is None:
            text = getattr(self, "config_text", None)
        self.conf_path.write_text(text if text is not None else json.dumps(config or self.config,
                                                                            indent=1))

    def start(self, wait=True):
        self.write_config()
        cmd = [str(self.bin), "-f", "-c", str(self.conf_path)]
        if self.valgrind:
            cmd = list(self.valgrind) + cmd
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout * (5 if self.valgrind else 1)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jwtauthzd exited {self.proc.returncode}:\n{self.log()}")
            if self._connects(self.sock) and self._connects(self.admin_sock):
                return
            time.sleep(0.02)
        raise RuntimeError(f"jwtauthzd not ready in {timeout}s:\n{self.log()}")

    @staticmethod
    def _connects(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        self.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM):
        """Stops the daemon; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_GRACE_S * (5 if self.valgrind else 1))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    # -- talking to it -----------------------------------------------------------------------
    def connect(self, admin=False, timeout=DEFAULT_RECV_TIMEOUT_S):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.admin_sock if admin else self.sock)
        return s

    def request(self, obj, admin=False):
        """One request on a fresh connection; returns the decoded reply."""
        with self.connect(admin) as s:
            s.sendall(frame(obj))
            return recv_frame(s)

    def token_request(self, authorization, method_arn, **extra):
        req = {"type": "TOKEN", "authorizationToken": authorization, "methodArn": method_arn}
        req.update(extra)
        return self.request(req)

    def admin(self, obj):
        return self.request(obj, admin=True)

    def ctl(self, *args, input=None):
        """Runs jwtauthzctl against this daemon: returns (exit code, parsed JSON or None)."""
        cmd = [str(self.ctl_bin), "-s", self.sock, "-a", self.admin_sock, *args]
        p = subprocess.run(cmd, capture_output=True, input=input, timeout=60)
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            out = None
        return p.returncode, out

    def check(self, authorization, method_arn):
        return self.ctl("check", "--token", authorization, "--resource", method_arn)
