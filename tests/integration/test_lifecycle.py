#!/usr/bin/python3
"""The daemon as a process: `-t` on good and bad configs, option errors, start-up refusals,
200 concurrent clients, a clean SIGTERM (in-flight requests answered, sockets unlinked, exit 0),
a stale socket left by SIGKILL not blocking a restart while a live one is never displaced, socket
activation through systemd-socket-activate (sockets matched by name, never unlinked), sd_notify
readiness, the admin socket refusing a peer that is neither root nor the daemon's user, and
jwtauthzctl's exit code when no daemon answers. Run alone: /usr/bin/python3 test_lifecycle.py
[CASE ...]."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from common import (BUILD, CTL_BIN, DAEMON_BIN, Daemon, Failure, Idp, Suite, arn, check,
                    die_with_parent, expect, frame, raw_connect, recv_frame, request_token,
                    run_tool, wait_until)
import mint  # noqa: E402 (common puts tests/tools on the path)

suite = Suite("lifecycle")
CLIENTS = 200
REQUESTS_PER_CLIENT = 5


class Ctx:
    pass


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.idp = Idp(s, s.keys)
    return c


def new_daemon(c, **kw):
    return Daemon(suite, issuers=[c.idp.issuer_conf()], **kw)


def run(cmd, **kw):
    return run_tool(cmd, **kw)


# ---- the installed default config ---------------------------------------------------------------

@suite.case
def installed_default_config_checks_and_decides(c):
    """`cmake --install` into a DESTDIR: the default config passes -t as installed, its demo
    issuer's keys were made on this machine (the signing key root-only), and the daemon on it
    decides a token PyJWT signs with that key: ALLOW, DENY by rule, UNAUTHORIZED when expired."""
    cmake = shutil.which("cmake")
    if cmake is None:
        print("# skipped: no cmake", flush=True)
        return
    dest = Path(suite.tmp("jwtauthz-destdir-"))
    p = run([cmake, "--install", str(BUILD), "--component", "Unspecified"],
            env={**os.environ, "DESTDIR": str(dest)})
    check(p.returncode == 0, f"cmake --install: {p.stdout}{p.stderr}")
    confs = [f for f in dest.rglob("jwtauthz.conf") if f.parent.name == "jwtauthz"]
    check(len(confs) == 1, f"installed configs: {confs}")
    conf = confs[0]
    key, jwks = conf.parent / "demo-rs256.pem", conf.parent / "demo-jwks.json"
    check(key.exists() and jwks.exists(), f"demo keys missing: {sorted(conf.parent.iterdir())}")
    check(key.stat().st_mode & 0o077 == 0, f"signing key mode {oct(key.stat().st_mode)}")
    text = conf.read_text()
    # The installed file names its real paths (DESTDIR is not part of them): point them into
    # the DESTDIR, and the sockets into it too; nothing else changes.
    installed_dir = "/" + str(conf.parent.relative_to(dest))
    check(f'"jwks_file": "{installed_dir}/demo-jwks.json"' in text, "jwks_file path")
    d = Daemon(suite)
    text = text.replace(installed_dir + "/", str(conf.parent) + "/")
    text = text.replace('"/run/jwtauthz/jwtauthz.sock"', json.dumps(d.sock))
    text = text.replace('"/run/jwtauthz/admin.sock"', json.dumps(d.admin_sock))
    check(f'"jwks_file": "{conf.parent}/demo-jwks.json"' in text and d.sock in text and
          d.admin_sock in text,
          "the installed config's paths were not where the test expected them")
    conf.write_text(text)
    p = run([DAEMON_BIN, "-t", "-c", str(conf)])
    check(p.returncode == 0, f"-t on the installed config: exit {p.returncode}: {p.stderr}")
    d.config_text = text
    try:
        d.start()
        iss, aud = "https://demo.jwtauthz.local/", "api://demo"
        good = mint.mint(str(key), kid="demo-rs256-1", iss=iss, aud=aud, sub="ada",
                         scope="orders:read")
        expect(request_token(d, good, arn("GET", "/orders/7")), "ALLOW")
        expect(request_token(d, good, arn("DELETE", "/orders/7")), "DENY")
        old = mint.mint(str(key), kid="demo-rs256-1", iss=iss, aud=aud, sub="ada",
                        scope="orders:read", exp_in=-600)
        expect(request_token(d, old, arn("GET", "/orders/7")), "UNAUTHORIZED",
               reason="token_expired")
    finally:
        d.cleanup()


# ---- command line -----------------------------------------------------------------------------

@suite.case
def config_check_good_file_exits_0(c):
    d = new_daemon(c)
    d.write_config()
    p = run([DAEMON_BIN, "-t", "-c", d.conf_path])
    check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
    check("configuration is valid" in p.stderr, f"stderr {p.stderr!r}")
    check(not os.path.exists(d.sock), "-t created a socket")


BAD_CONFIG = """{
  "listen": "%(dir)s/d.sock",
  "admin_listen": "%(dir)s/a.sock",
  "thraeds": 4,
  "cache_dir": "",
  "issuers": [{
    "issuer": "https://idp.example/",
    "jwks_uri": "http://idp.example/jwks.json",
    "leeway": 1e3,
    "algorithms": ["none"]
  }],
  "rules": [{"resource": "*", "effect": "deny"}]
}
"""


@suite.case
def config_check_bad_file_lists_every_problem(c):
    d = new_daemon(c)
    d.write_config(text=BAD_CONFIG % {"dir": d.dir})
    p = run([DAEMON_BIN, "-t", "-c", d.conf_path])
    check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    pat = re.compile(re.escape(str(d.conf_path)) + r":(\d+): (.+)")
    found = {}
    for ln in lines:
        m = pat.match(ln)
        if m and "warning" not in m.group(2):
            found.setdefault(int(m.group(1)), []).append(m.group(2))
    want = {4: "thraeds", 8: "http", 9: "leeway", 10: "none", 12: "effect"}
    for line, word in want.items():
        check(any(word in msg for msg in found.get(line, [])),
              f"no FILE:{line}: error naming {word!r}; got {found}")


@suite.case
def config_check_missing_file_exits_1(c):
    p = run([DAEMON_BIN, "-t", "-c", "/nonexistent/jwtauthz.conf"])
    check(p.returncode == 1 and "/nonexistent/jwtauthz.conf" in p.stderr,
          f"exit {p.returncode}: {p.stderr}")


@suite.case
def config_check_reads_jwks_file(c):
    d = new_daemon(c)
    bad_keys = d.dir / "keys.json"
    bad_keys.write_text('{"keys": [{"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB"}]}')
    d.set(issuers=[{"issuer": "file", "jwks_file": str(bad_keys), "audiences": ["a"]}])
    d.write_config()
    p = run([DAEMON_BIN, "-t", "-c", d.conf_path])
    check(p.returncode == 1 and re.search(re.escape(str(d.conf_path)) + r":\d+: .*jwks_file",
                                          p.stderr), f"exit {p.returncode}: {p.stderr}")


@suite.case
def unknown_option_exits_2_with_usage(c):
    for args in (["-Z"], ["-c"], ["-f", "stray-argument"], ["--frobnicate"]):
        p = run([DAEMON_BIN, *args])
        check(p.returncode == 2 and "usage:" in p.stderr, f"{args}: exit {p.returncode} "
              f"stderr {p.stderr!r}")


@suite.case
def help_and_version_exit_0(c):
    p = run([DAEMON_BIN, "-h"])
    check(p.returncode == 0 and "usage:" in p.stdout, f"-h: {p.returncode} {p.stdout!r}")
    p = run([DAEMON_BIN, "-V"])
    check(p.returncode == 0 and p.stdout.startswith("jwtauthzd "), f"-V: {p.stdout!r}")


@suite.case
def start_with_bad_config_exits_1_without_sockets(c):
    d = new_daemon(c)
    d.write_config(text=BAD_CONFIG % {"dir": d.dir})
    p = run([DAEMON_BIN, "-f", "-c", d.conf_path])
    check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    check(str(d.conf_path) + ":4:" in p.stderr, f"stderr {p.stderr!r}")
    check(not os.path.exists(d.sock) and not os.path.exists(d.admin_sock), "sockets made")


@suite.case
def ctl_without_daemon_exits_3(c):
    missing = "/nonexistent/jwtauthz.sock"
    p = run([CTL_BIN, "-s", missing, "check", "--token", "Bearer " + c.idp.token(),
             "--resource", arn()])
    check(p.returncode == 3, f"check: exit {p.returncode} {p.stdout!r} {p.stderr!r}")
    check("ALLOW" not in p.stdout, f"check printed {p.stdout!r}")
    for cmd in (["stats"], ["flush"], ["reload"]):
        p = run([CTL_BIN, "-a", missing, *cmd])
        check(p.returncode == 3, f"{cmd}: exit {p.returncode} {p.stderr!r}")


# ---- load -------------------------------------------------------------------------------------

@suite.case
def two_hundred_concurrent_clients(c):
    d = new_daemon(c).start()
    try:
        d.wait_keys(c.idp.issuer)
        tokens = [c.idp.token("es256-1", sub=f"client-{i}") for i in range(CLIENTS)]
        barrier = threading.Barrier(CLIENTS)
        errors, latencies = [], []

        def client(i):
            try:
                s = raw_connect(d.sock, timeout=30)
                barrier.wait(30)
                with s:
                    for k in range(REQUESTS_PER_CLIENT):
                        deny = k % 2 == 1
                        t0 = time.monotonic()
                        s.sendall(frame({"type": "TOKEN", "id": f"{i}-{k}",
                                         "authorizationToken": "Bearer " + tokens[i],
                                         "methodArn": arn("DELETE" if deny else "GET",
                                                          "/orders/1")}))
                        r = recv_frame(s)
                        latencies.append(time.monotonic() - t0)
                        want = "DENY" if deny else "ALLOW"
                        if (r.get("verdict"), r.get("id"), r.get("principalId")) != (
                                want, f"{i}-{k}", f"client-{i}"):
                            errors.append(f"client {i} request {k}: {r}")
                            return
            except Exception as e:  # noqa: BLE001 - collected and reported
                errors.append(f"client {i}: {e!r}")

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        took = time.monotonic() - t0
        check(not any(t.is_alive() for t in threads), "clients still running after 60 s")
        check(not errors, f"{len(errors)} client errors, first: {errors[:3]}")
        check(len(latencies) == CLIENTS * REQUESTS_PER_CLIENT, f"{len(latencies)} replies")
        st = d.admin_ok({"cmd": "stats"})
        check(st["connections"] >= CLIENTS, f"connections {st['connections']}")
        check(st["requests"]["ALLOW"] >= CLIENTS * 3 and st["requests"]["DENY"] >= CLIENTS * 2,
              f"requests {st['requests']}")
        check(st["cache_hits"] >= CLIENTS * (REQUESTS_PER_CLIENT - 1),
              f"cache_hits {st['cache_hits']}")
        print(f"# {CLIENTS} clients x {REQUESTS_PER_CLIENT}: {took:.2f}s, "
              f"max latency {max(latencies) * 1000:.0f} ms", flush=True)
    finally:
        d.cleanup()


# ---- stopping ---------------------------------------------------------------------------------

@suite.case
def sigterm_answers_in_flight_then_exits_0(c):
    slow_iss = c.idp.issuer + "/slow-stop"
    c.idp.server.publish("slowstop.jwks.json", c.keys.jwks("es256-1"))
    d = Daemon(suite, issuers=[c.idp.issuer_conf(), c.idp.uri_issuer_conf(
        slow_iss, "slow/slowstop.jwks.json?delay=8")]).start()
    try:
        d.wait_keys(c.idp.issuer)
        idle = raw_connect(d.sock)
        parked = raw_connect(d.sock)
        parked.sendall(frame({"type": "TOKEN", "id": "parked", "methodArn": arn(),
                              "authorizationToken": "Bearer " +
                              c.keys.token("es256-1", iss=slow_iss)}))
        time.sleep(0.3)  # parked: its issuer's first fetch takes 8 s
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        r = recv_frame(parked)
        check(r.get("id") == "parked" and r.get("verdict") == "ERROR" and r.get("status") == 503,
              f"in-flight reply {r}")
        check(time.monotonic() - t0 < 2.0, "the parked request waited past SIGTERM")
        rc = d.proc.wait(10)
        took = time.monotonic() - t0
        check(rc == 0, f"exit {rc}")
        check(took < 5.0, f"SIGTERM took {took:.1f}s with a fetch in flight")
        check(idle.recv(1) == b"", "idle connection not closed")
        check(not os.path.exists(d.sock) and not os.path.exists(d.admin_sock),
              "socket files left behind")
        check("stopped" in d.log(), "no 'stopped' log line")
        idle.close()
        parked.close()
    finally:
        d.cleanup()


@suite.case
def sigint_stops_cleanly(c):
    d = new_daemon(c).start()
    try:
        rc = d.stop(signal.SIGINT)
        check(rc == 0, f"exit {rc}")
        check(not os.path.exists(d.sock), "socket left behind")
    finally:
        d.cleanup()


@suite.case
def stale_socket_after_sigkill_does_not_block_restart(c):
    d = new_daemon(c).start()
    try:
        d.wait_keys(c.idp.issuer)
        d.proc.kill()
        d.proc.wait()
        check(os.path.exists(d.sock) and os.path.exists(d.admin_sock),
              "SIGKILL left no socket file: the case tests nothing")
        d.proc = None
        d._log.close()
        d.start()
        d.wait_keys(c.idp.issuer)
        expect(request_token(d, c.idp.token()), "ALLOW")
    finally:
        d.cleanup()


@suite.case
def live_socket_not_displaced_by_second_daemon(c):
    d = new_daemon(c).start()
    try:
        d.wait_keys(c.idp.issuer)
        ino = os.stat(d.sock).st_ino
        second = Path(d.dir) / "second.conf"
        second.write_text(json.dumps(d.config))
        p = run([DAEMON_BIN, "-f", "-c", second], env=None)
        check(p.returncode not in (0, None), f"second daemon exit {p.returncode}")
        check("in use" in p.stderr or "listen" in p.stderr, f"stderr {p.stderr[-500:]!r}")
        check(os.stat(d.sock).st_ino == ino, "the live socket file was replaced")
        expect(request_token(d, c.idp.token()), "ALLOW")
    finally:
        d.cleanup()


# ---- systemd ----------------------------------------------------------------------------------

@suite.case
def socket_activation_through_systemd_socket_activate(c):
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        raise Failure("systemd-socket-activate not installed (package systemd)")
    d = new_daemon(c)
    # The config names other paths: the passed sockets must be taken by FileDescriptorName.
    act_dir = Path(suite.tmp("jwtauthz-act-"))
    dec, adm = str(act_dir / "dec.sock"), str(act_dir / "adm.sock")
    d.write_config()
    d._log = open(d.log_path, "ab")
    d.proc = subprocess.Popen([tool, "-l", dec, "-l", adm, "--fdname=jwtauthz:admin",
                               str(DAEMON_BIN), "-f", "-c", str(d.conf_path)],
                              stdout=d._log, stderr=subprocess.STDOUT,
                              preexec_fn=die_with_parent)
    try:
        wait_until(lambda: os.path.exists(dec) and os.path.exists(adm), 10,
                   what="systemd-socket-activate's sockets")
        # The first connection starts the daemon (the tool execs it); it waits in the backlog.
        d.sock, d.admin_sock = dec, adm
        d.wait_keys(c.idp.issuer)
        expect(request_token(d, c.idp.token()), "ALLOW")
        log = d.log()
        check('from systemd' in log and 'name "jwtauthz"' in log and 'name "admin"' in log,
              f"log does not show the passed sockets taken by name:\n{log[-1500:]}")
        check(not os.path.exists(d.dir / "d.sock") and not os.path.exists(d.dir / "a.sock"),
              "the daemon made its own sockets next to the passed ones")
        rc = d.stop()
        check(rc == 0, f"exit {rc}")
        check(os.path.exists(dec) and os.path.exists(adm),
              "the daemon unlinked sockets systemd made")
    finally:
        d.cleanup()


@suite.case
def sd_notify_ready_reloading_stopping(c):
    d = new_daemon(c)
    nsock_path = str(d.dir / "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(nsock_path)
    ns.settimeout(10)
    d.env = dict(os.environ, NOTIFY_SOCKET=nsock_path)
    try:
        d.start(wait=False)

        def next_msg():
            return ns.recv(4096).decode()
        check("READY=1" in next_msg(), "no READY=1")
        d.reload()
        msgs = next_msg()
        check("RELOADING=1" in msgs and "MONOTONIC_USEC=" in msgs, f"reload sent {msgs!r}")
        check("READY=1" in next_msg(), "no READY=1 after the reload")
        d.send_signal(signal.SIGTERM)
        check("STOPPING=1" in next_msg(), "no STOPPING=1")
        check(d.stop() == 0, "exit code")
    finally:
        ns.close()
        d.cleanup()


# ---- admin socket peers -----------------------------------------------------------------------

PEER_CLIENT = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect_error": e.errno})); sys.exit(0)
body = sys.argv[2].encode()
try:
    s.sendall(struct.pack(">I", len(body)) + body)
    hdr = s.recv(4)
except OSError as e:
    print(json.dumps({"recv_error": e.errno})); sys.exit(0)
if len(hdr) < 4:
    print(json.dumps({"closed": True})); sys.exit(0)
n = struct.unpack(">I", hdr)[0]
data = b""
while len(data) < n:
    data += s.recv(n - len(data))
print(json.dumps({"reply": json.loads(data)}))
"""


def as_nobody(path, obj):
    p = run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", PEER_CLIENT, path,
             json.dumps(obj)])
    if p.returncode != 0:
        raise Failure(f"runuser: {p.returncode} {p.stderr}")
    return json.loads(p.stdout)


@suite.case
def admin_socket_refuses_non_admin_peer(c):
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        print("# admin_socket_refuses_non_admin_peer: skipped (needs root and runuser)")
        return
    d = new_daemon(c).start()
    try:
        d.wait_keys(c.idp.issuer)
        os.chmod(d.dir, 0o755)
        # With the configured mode (0600) the kernel refuses the connect itself.
        r = as_nobody(d.admin_sock, {"cmd": "stats"})
        check(r.get("connect_error") == 13, f"nobody connected to a 0600 admin socket: {r}")
        # Opened up, the daemon's own SO_PEERCRED check still refuses: no reply, closed.
        os.chmod(d.admin_sock, 0o666)
        os.chmod(d.sock, 0o666)
        r = as_nobody(d.admin_sock, {"cmd": "flush"})
        check(r.get("closed") or r.get("recv_error"), f"admin command from nobody: {r}")
        check("admin connection refused" in d.log(), "refusal not logged")
        # The same peer gets decisions: the refusal is the admin gate, not a broken client.
        r = as_nobody(d.sock, {"type": "TOKEN", "methodArn": arn(),
                               "authorizationToken": "Bearer " + c.idp.token()})
        check(r.get("reply", {}).get("verdict") == "ALLOW", f"decision for nobody: {r}")
        check(d.admin_ok({"cmd": "stats"})["decision_cache"]["entries"] >= 1,
              "nobody's flush took effect")
    finally:
        d.cleanup()


if __name__ == "__main__":
    suite.main(setup)
