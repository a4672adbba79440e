#!/usr/bin/python3
"""End-to-end tests of ngx_http_jwtauthz_module: Debian's own /usr/sbin/nginx loads the module we
built and asks the real jwtauthzd (tests/tools/daemon.py) — or small fake daemons started here, for
slow, wrong and broken replies — with tokens minted by PyJWT (tests/tools/mint.py). nginx listens
on 127.0.0.1 only and keeps everything (logs, pid, temp files) in a temp dir.

Each case prints "ok NAME" or "FAIL NAME: detail"; the last line is "N passed, N failed"; the exit
code is 1 when anything failed. Every process started here is stopped on the way out, on failure
and on SIGTERM (a ctest timeout) too.

Environment (ctest sets the first two): JWTAUTHZ_BUILD, JWTAUTHZ_SRC; JWTAUTHZ_NGINX_MODULE
overrides the module's path (default $JWTAUTHZ_BUILD/client/nginx/ngx_http_jwtauthz_module.so);
JWTAUTHZ_E2E_VALGRIND=1 runs nginx (master and worker) under valgrind's memcheck and fails on any
error it reports in the module's code paths (timing bounds are relaxed accordingly);
JWTAUTHZ_E2E_LOGS=DIR copies nginx's and the daemon's logs there at the end.
"""

import contextlib
import fcntl
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))

import daemon as daemon_tool  # noqa: E402
import mint  # noqa: E402
from daemon import frame, recv_frame  # noqa: E402

NGINX = "/usr/sbin/nginx"
BUILD = daemon_tool.build_dir()
MODULE = Path(os.environ.get("JWTAUTHZ_NGINX_MODULE",
                             BUILD / "client" / "nginx" / "ngx_http_jwtauthz_module.so"))
ISSUER = "https://idp.e2e.test/"
AUDIENCE = "api://orders"
PREFIX = "arn:aws:execute-api:local:0:api/prod"
RULES = [
    {"resource": "arn:aws:execute-api:*:*:*/*/GET/orders*", "scopes": ["orders:read"]},
    {"resource": "arn:aws:execute-api:*:*:*/*/POST/orders*", "scopes": ["orders:write"]},
    {"resource": "arn:aws:execute-api:*:*:*/*/*/internal/*", "effect": "Deny"},
    {"resource": "arn:aws:execute-api:*:*:*/*/GET/internal/*", "scopes": ["orders:read"]},
    # /cached/ is the location with jwtauthz_cache on.
    {"resource": "arn:aws:execute-api:*:*:*/*/GET/cached/*", "scopes": ["orders:read"]},
]
# How long the slow fake daemon sits on a request; far beyond what any other request may take.
SLOW_S = 3.0
# What "quickly" means for a request that must not wait on the slow daemon (a decision takes well
# under a millisecond; this leaves room for a loaded CI machine).
QUICK_S = 1.0
HTTP_TIMEOUT_S = 20.0
VALGRIND = os.environ.get("JWTAUTHZ_E2E_VALGRIND") == "1"
if VALGRIND:
    QUICK_S *= 10


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies (PR_SET_PDEATHSIG)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Daemon(daemon_tool.Daemon):
    """tests/tools/daemon.py's Daemon, started so that it dies with this process even when a
    ctest timeout kills it too hard for the cleanup to run."""

    def start(self, wait=True):
        self.write_config()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.bin), "-f", "-c", str(self.conf_path)],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        if wait:
            self.wait_ready()
        return self


class FakeDaemon:
    """A stand-in jwtauthzd on a Unix socket, one thread per connection, answering every request
    according to mode: "slow" (ALLOW after delay seconds, echoing the id), "trickle" (a large
    ALLOW in pieces: the frame header, then the body in 1000-byte parts), "wrong_id" (ALLOW for
    another id), "no_id" (ALLOW without an id), "garbage" (a frame that is not JSON), "close"
    (hang up without a reply), "scripted" (self.reply with the request's id). With epoch=True it
    also keeps an epoch file next to its socket (proto/epoch.h), locked as jwtauthzd keeps its
    own, so the module's jwtauthz_cache trusts it."""

    def __init__(self, path, mode, delay=0.0, epoch=False):
        self.path, self.mode, self.delay = str(path), mode, delay
        self.reply = {}
        self.epoch_fd = None
        if epoch:
            self.epoch_fd = os.open(self.path + ".epoch", os.O_CREAT | os.O_RDWR, 0o600)
            os.ftruncate(self.epoch_fd, 4096)
            os.pwrite(self.epoch_fd, b"JWTAUTHZEPOCH1\0\0" + struct.pack("=QQ", 0x5EED, 1), 0)
            fcntl.lockf(self.epoch_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.received = threading.Event()
        self.requests = []
        self.connections = 0
        self._stop = threading.Event()
        self._conns = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while not self._stop.is_set():
                req = recv_frame(conn)
                self.requests.append(req)
                self.received.set()
                rid = req.get("id")
                allow = {"verdict": "ALLOW", "status": 200, "principalId": "fake-user",
                         "context": {"scope": "fake:scope"}}
                if self.mode == "slow":
                    if self._stop.wait(self.delay):
                        return
                    conn.sendall(frame(dict(allow, id=rid)))
                elif self.mode == "trickle":
                    big = dict(allow, id=rid)
                    big["context"] = dict(allow["context"], blob="b" * 20000)
                    data = frame(big)
                    conn.sendall(data[:4])
                    for i in range(4, len(data), 1000):
                        time.sleep(0.002)
                        conn.sendall(data[i:i + 1000])
                elif self.mode == "wrong_id":
                    conn.sendall(frame(dict(allow, id=f"{rid}0")))
                elif self.mode == "no_id":
                    conn.sendall(frame(allow))
                elif self.mode == "garbage":
                    conn.sendall(struct.pack(">I", 9) + b"not json!")
                elif self.mode == "scripted":
                    conn.sendall(frame(dict(self.reply, id=rid)))
                else:
                    return
        except (OSError, EOFError, ValueError):
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self._sock.close()
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        if self.epoch_fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path + ".epoch")
            os.close(self.epoch_fd)


class Nginx:
    """Debian's nginx in the foreground with a config written here, stopped with its workers."""

    def __init__(self, workdir, conf_text):
        self.dir = Path(workdir)
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(conf_text)
        self.error_log = self.dir / "error.log"
        self.proc = None

    def test_config(self):
        return subprocess.run([NGINX, "-t", "-p", str(self.dir), "-c", str(self.conf)],
                              capture_output=True, text=True, timeout=60)

    def start(self, port):
        self._out = open(self.dir / "stderr.log", "ab")
        cmd = [NGINX, "-p", str(self.dir), "-c", str(self.conf), "-g", "daemon off;"]
        if VALGRIND:
            # Leaks are not counted as errors (nginx's own master and worker keep a few blocks
            # by design); valgrind_errors() looks for definite leaks through our code instead.
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--show-leak-kinds=definite", "--errors-for-leak-kinds=none",
                   f"--log-file={self.dir}/valgrind.%p.log"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=die_with_parent)
        deadline = time.monotonic() + (60 if VALGRIND else 15)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"nginx not listening on {port}:\n{self.log()}")

    def valgrind_errors(self):
        """The valgrind logs (one per process) that report a memory error anywhere, or a
        definite leak allocated through the module or libjwtauthz."""
        bad = []
        for f in sorted(self.dir.glob("valgrind.*.log")):
            text = f.read_text(errors="replace")
            records = text.split("are definitely lost")[1:]
            ours = [r for r in records if "jwtauthz" in r.split("\n\n")[0]]
            if "ERROR SUMMARY: 0 errors" not in text or ours:
                bad.append(f"{f.name}:\n{text[-3000:]}")
        return bad

    def worker_pids(self):
        """nginx's worker processes now: the master's children (this config has no cache
        processes; their titles are not looked at, valgrind hides them)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.master_pid())],
                             capture_output=True, text=True).stdout
        return {int(pid) for pid in out.split()}

    def master_pid(self):
        return int((self.dir / "nginx.pid").read_text())

    def log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                text += (self.dir / name).read_text(errors="replace")
        return text

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.proc.wait(60 if VALGRIND else 10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()
        self.proc = None


def nginx_conf(tmp, port, backend, sock, fakes, user_root):
    """One worker (so "other requests are not delayed" is about the same event loop), the
    module loaded from our build, everything in tmp, listening on 127.0.0.1 only."""
    t = str(tmp)
    loc = []
    for name, (fake, timeout) in fakes.items():
        loc.append(f"""
        location /{name}/ {{
            jwtauthz_socket {fake.path};
            jwtauthz_timeout {timeout};
            proxy_set_header X-Principal $jwtauthz_principal;
            proxy_set_header X-Scope $jwtauthz_ctx_scope;
            proxy_pass http://127.0.0.1:{backend};
        }}""")
    return f"""
{"user root;" if user_root else ""}
worker_processes 1;
error_log {t}/error.log info;
pid {t}/nginx.pid;
load_module {MODULE};
events {{ worker_connections 1024; }}
http {{
    log_format jwtauthz '$request $status $jwtauthz_verdict $jwtauthz_reason';
    access_log {t}/access.log jwtauthz;
    client_body_temp_path {t}/tmp/body;
    proxy_temp_path {t}/tmp/proxy;
    fastcgi_temp_path {t}/tmp/fastcgi;
    uwsgi_temp_path {t}/tmp/uwsgi;
    scgi_temp_path {t}/tmp/scgi;

    # Room for requests whose headers outgrow the daemon's max_frame_bytes (64 KiB), here and
    # in the backend they are passed on to.
    large_client_header_buffers 8 128k;

    jwtauthz_socket {sock};
    jwtauthz_resource_prefix {PREFIX}/;
    jwtauthz_timeout 2s;

    server {{
        listen 127.0.0.1:{port};
        jwtauthz on;

        location / {{
            proxy_set_header X-Principal $jwtauthz_principal;
            proxy_set_header X-Scope $jwtauthz_ctx_scope;
            proxy_set_header X-Sub $jwtauthz_ctx_SUB;
            proxy_pass http://127.0.0.1:{backend};
        }}
        # try_files falls through to a named location: an internal redirect, which resets
        # every module's context; the decision made here must still be what $jwtauthz_* read.
        location /orders-redirect/ {{
            try_files /nonexistent @unchecked;
        }}
        location @unchecked {{
            jwtauthz off;
            proxy_set_header X-Principal $jwtauthz_principal;
            proxy_set_header X-Scope $jwtauthz_ctx_scope;
            proxy_pass http://127.0.0.1:{backend};
        }}
        location /static {{
            jwtauthz off;
            return 200 "static\\n";
        }}
        location /nodaemon/ {{
            jwtauthz_socket unix:{t}/absent.sock;
            proxy_pass http://127.0.0.1:{backend};
        }}
        # The per-worker decision cache; every other location runs without it.
        location /fakecached/ {{
            jwtauthz_socket {Path(t).parent / "scripted.sock"};
            jwtauthz_cache 100;
            proxy_set_header X-Principal $jwtauthz_principal;
            proxy_pass http://127.0.0.1:{backend};
        }}
        location /cached/ {{
            jwtauthz_cache 1000 max_ttl=30s;
            proxy_set_header X-Principal $jwtauthz_principal;
            proxy_set_header X-Scope $jwtauthz_ctx_scope;
            proxy_set_header X-Sub $jwtauthz_ctx_SUB;
            proxy_pass http://127.0.0.1:{backend};
        }}
        {"".join(loc)}
    }}

    # The backend: echoes what nginx passed on, so a test sees what an application would.
    server {{
        listen 127.0.0.1:{backend};
        location / {{
            return 200 "principal=$http_x_principal scope=$http_x_scope sub=$http_x_sub admin=$http_x_admin uri=$uri\\n";
        }}
    }}
}}
"""


def get(port, path, token=None, method="GET", headers=None, timeout=HTTP_TIMEOUT_S):
    """One request on its own connection: (status, headers dict, body, seconds taken)."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, headers=h)
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, \
            time.monotonic() - t0
    finally:
        conn.close()


class Suite:
    def __init__(self):
        self.stack = contextlib.ExitStack()
        self.cases = []
        self.passed = self.failed = 0

    def case(self, fn):
        self.cases.append(fn)
        return fn

    def run(self, env):
        for fn in self.cases:
            try:
                fn(env)
                self.passed += 1
                print(f"ok {fn.__name__}", flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported, then the next case
                self.failed += 1
                detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
                print(f"FAIL {fn.__name__}: {detail}", flush=True)


suite = Suite()


class Env:
    """What the cases share: the keys, the daemon, nginx, the fakes, the port."""

    def token(self, kid="rs256-1", sub="user-123", scope="orders:read", **kw):
        kw.setdefault("iss", ISSUER)
        kw.setdefault("aud", AUDIENCE)
        return mint.mint(str(self.keys / f"{kid}.pem"), sub=sub, scope=scope, **kw)

    def get(self, path, token=None, **kw):
        return get(self.port, path, token, **kw)

    def daemon_decisions(self):
        """How many decisions the daemon has answered (all verdicts): what stays put while the
        module's cache answers."""
        reply = self.daemon.admin({"cmd": "stats"})
        check(reply.get("ok") is True, f"stats failed: {reply}")
        return sum(reply["requests"].values())

    def epoch_path(self):
        return Path(self.daemon.sock + ".epoch")

    def daemon_connections(self):
        """The daemon's count of accepted connections (this admin request's own included)."""
        reply = self.daemon.admin({"cmd": "stats"})
        check(reply.get("ok") is True, f"stats failed: {reply}")
        return reply["connections"]


# ---- cases ---------------------------------------------------------------------------------------

@suite.case
def module_loads_into_debians_nginx(env):
    r = env.nginx.test_config()
    check(r.returncode == 0, f"nginx -t failed: {r.stderr}")


@suite.case
def valid_token_reaches_backend_with_principal_and_context(env):
    st, _, body, _ = env.get("/orders/42", env.token())
    check(st == 200, f"want 200, got {st}: {body}")
    check("principal=user-123 scope=orders:read sub=user-123" in body, f"backend saw: {body}")
    check("uri=/orders/42" in body, f"backend saw: {body}")


@suite.case
def missing_token_gets_bare_bearer_challenge(env):
    st, h, body, _ = env.get("/orders/42")
    check(st == 401, f"want 401, got {st}")
    # RFC 6750 §3.1: no error code when the request carried no credentials.
    check(h.get("www-authenticate") == "Bearer", f"WWW-Authenticate: {h.get('www-authenticate')}")
    check("principal=" not in body, "the backend was reached")


@suite.case
def expired_token_is_401_invalid_token(env):
    st, h, _, _ = env.get("/orders/42", env.token(exp_in=-600, iat_in=-900))
    check(st == 401, f"want 401, got {st}")
    check(h.get("www-authenticate") ==
          'Bearer error="invalid_token", error_description="token_expired"',
          f"WWW-Authenticate: {h.get('www-authenticate')}")


@suite.case
def tampered_signature_is_401(env):
    st, h, _, _ = env.get("/orders/42", mint.tamper(env.token(), "signature"))
    check(st == 401, f"want 401, got {st}")
    check('error="invalid_token"' in h.get("www-authenticate", ""), f"headers: {h}")


@suite.case
def tampered_payload_is_401(env):
    st, _, body, _ = env.get("/orders/42", mint.tamper(env.token(sub="bob"), "payload"))
    check(st == 401, f"want 401, got {st}: {body}")


@suite.case
def alg_none_token_is_401(env):
    tok = mint.mint(None, alg="none", iss=ISSUER, aud=AUDIENCE, sub="x", scope="orders:read")
    st, _, _, _ = env.get("/orders/42", tok)
    check(st == 401, f"want 401, got {st}")


@suite.case
def wrong_scope_for_path_is_403(env):
    st, h, body, _ = env.get("/orders/42", env.token(scope="profile"))
    check(st == 403, f"want 403, got {st}: {body}")
    check(h.get("www-authenticate") == 'Bearer error="insufficient_scope"', f"headers: {h}")
    st, _, _, _ = env.get("/orders/42", env.token(), method="POST")
    check(st == 403, f"POST with a read-only token: want 403, got {st}")


@suite.case
def dot_segments_cannot_dodge_the_policy(env):
    # nginx resolves /orders/../internal/x to /internal/x before choosing a location; the
    # methodArn is built from that same path, so the explicit Deny on */internal/* applies.
    st, _, body, _ = env.get("/orders/../internal/x", env.token())
    check(st == 403, f"want 403, got {st}: {body}")
    st, _, body, _ = env.get("/orders/%2E%2E/internal/x", env.token())
    check(st == 403, f"percent-encoded dots: want 403, got {st}: {body}")


@suite.case
def claim_with_crlf_cannot_inject_backend_headers(env):
    st, _, body, _ = env.get("/orders/1", env.token(sub="evil\r\nX-Admin: 1"))
    check(st in (200, 401), f"want 200 (principal withheld) or 401, got {st}: {body}")
    if st == 200:
        check("admin= " in body and "principal= " in body, f"backend saw: {body!r}")


@suite.case
def jwtauthz_off_location_is_not_checked(env):
    st, _, body, _ = env.get("/static")
    check(st == 200 and body == "static\n", f"got {st}: {body}")


@suite.case
def keepalive_reuses_daemon_connections(env):
    tok = env.token()
    env.get("/orders/0", tok)  # a connection to keep, if none is yet
    before = env.daemon_connections()
    for i in range(20):
        st, _, body, _ = env.get(f"/orders/{i}", tok)
        check(st == 200, f"request {i}: {st} {body}")
    after = env.daemon_connections()
    # after - before counts the second stats request's own connection: nothing else is new.
    check(after - before == 1, f"20 requests opened {after - before - 1} daemon connections")


@suite.case
def concurrent_requests_are_all_decided(env):
    tok, results = env.token(), []

    def one(i):
        results.append(env.get(f"/orders/{i}", tok)[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT_S)
    check(results == [200] * 24, f"statuses: {results}")


@suite.case
def unreachable_daemon_fails_closed_with_503(env):
    st, _, body, took = env.get("/nodaemon/x", env.token())
    check(st == 503, f"want 503, got {st}: {body}")
    check(took < QUICK_S, f"took {took:.2f}s")


@suite.case
def stopped_daemon_gives_503_and_restart_recovers_without_nginx_restart(env):
    tok = env.token()
    st, _, _, _ = env.get("/orders/1", tok)
    check(st == 200, f"before stop: {st}")
    env.daemon.stop()
    st, _, body, took = env.get("/orders/1", tok)
    check(st == 503, f"daemon stopped: want 503, got {st}: {body}")
    check(took < QUICK_S, f"daemon stopped: 503 took {took:.2f}s")
    env.daemon.start()
    st, _, body, _ = env.get("/orders/1", tok)
    check(st == 200, f"daemon restarted: want 200, got {st}: {body}")
    check(env.nginx.proc.poll() is None, "nginx is not running")


@suite.case
def timeout_gives_503_within_the_timeout(env):
    # /timeout/ has "jwtauthz_timeout 500": a bare number is milliseconds (nginx's time syntax).
    st, _, body, took = env.get("/timeout/x", "anything")
    check(st == 503, f"want 503, got {st}: {body}")
    check(0.4 <= took < 1.5, f"503 after {took:.2f}s, want about 0.5s")


@suite.case
def slow_daemon_does_not_delay_other_requests(env):
    slow = env.fakes["slow"][0]
    slow.received.clear()
    out = {}

    def slow_request():
        out["slow"] = env.get("/slow/x", "anything")

    t = threading.Thread(target=slow_request)
    t.start()
    check(slow.received.wait(5), "the slow daemon never got the request")
    # The one worker is now waiting on the slow daemon for SLOW_S; its loop must not be.
    st, _, body, took = env.get("/orders/7", env.token())
    check(st == 200, f"real daemon's location: {st} {body}")
    check(took < QUICK_S, f"real daemon's location took {took:.2f}s while the slow one waited")
    st, _, body, took2 = env.get("/static")
    check(st == 200 and took2 < QUICK_S, f"static: {st} after {took2:.2f}s")
    check(t.is_alive(), "the slow request finished early: the test proves nothing")
    t.join(SLOW_S + 5)
    st, _, body, took3 = out["slow"]
    check(st == 200, f"slow request: {st} {body}")
    check("principal=fake-user scope=fake:scope" in body, f"slow request: {body}")
    check(took3 >= SLOW_S - 0.3, f"slow request answered after {took3:.2f}s")
    print(f"   slow decision {took3:.2f}s; meanwhile /orders {took * 1000:.0f}ms, "
          f"/static {took2 * 1000:.0f}ms", flush=True)


@suite.case
def reply_in_pieces_is_reassembled(env):
    # 20 KB of context arriving 1000 bytes at a time: several reads, each fed to the decoder.
    for _ in range(3):
        st, _, body, _ = env.get("/trickle/x", "anything")
        check(st == 200 and "principal=fake-user scope=fake:scope" in body, f"{st}: {body}")
    check(env.fakes["trickle"][0].connections == 1,
          f"{env.fakes['trickle'][0].connections} connections for 3 requests: not kept alive")


@suite.case
def reply_for_another_request_is_refused(env):
    fake = env.fakes["wrongid"][0]
    for _ in range(2):
        st, _, body, _ = env.get("/wrongid/x", "anything")
        check(st == 503, f"ALLOW echoing another id: want 503, got {st}: {body}")
    # A stream out of step is never reused: each request needed a connection of its own.
    check(fake.connections == 2, f"{fake.connections} connections for 2 requests")
    st, _, body, _ = env.get("/noid/x", "anything")
    check(st == 503, f"ALLOW without an id: want 503, got {st}: {body}")


@suite.case
def garbage_or_hangup_from_daemon_is_503(env):
    st, _, body, _ = env.get("/garbage/x", "anything")
    check(st == 503, f"garbage reply: want 503, got {st}: {body}")
    st, _, body, _ = env.get("/hangup/x", "anything")
    check(st == 503, f"hang-up: want 503, got {st}: {body}")


@suite.case
def decision_survives_internal_redirect(env):
    # /orders-redirect/ is covered by the GET */orders* rule; its try_files hands the request to
    # a named location with jwtauthz off, which must still pass the principal on.
    st, _, body, _ = env.get("/orders-redirect/x", env.token())
    check(st == 200, f"want 200, got {st}: {body}")
    check("principal=user-123 scope=orders:read" in body,
          f"the named location lost the decision: {body}")
    st, _, body, _ = env.get("/orders-redirect/x", env.token(scope="profile"))
    check(st == 403, f"without the scope: want 403, got {st}: {body}")


@suite.case
def token_in_configured_cookie_or_query_is_used(env):
    # REQUEST-type events carry the Cookie header and the query string when there is no
    # Authorization header, so the daemon's token_cookie and token_query work through nginx.
    tok = env.token()
    st, _, body, _ = env.get("/orders/1", headers={"Cookie": f"theme=dark; access_token={tok}"})
    check(st == 200 and "principal=user-123" in body, f"cookie: {st} {body}")
    st, _, body, _ = env.get(f"/orders/1?x=1&access_token={tok}")
    check(st == 200 and "principal=user-123" in body, f"query: {st} {body}")
    st, _, body, _ = env.get("/orders/1?access_token=" + mint.tamper(tok, "signature"))
    check(st == 401, f"tampered query token: want 401, got {st}")


@suite.case
def large_unrelated_headers_do_not_reach_the_daemon(env):
    # Only the headers a token can come from are sent: 90 KB of other headers would not fit in
    # the daemon's 64 KiB max_frame_bytes, and must not turn a valid request into an error.
    big = {f"X-Padding-{i}": "a" * 30000 for i in range(3)}
    st, _, body, _ = env.get("/orders/1", env.token(), headers=big)
    check(st == 200, f"want 200, got {st}: {body}")


@suite.case
def oversized_request_event_fails_closed(env):
    # Without an Authorization header the cookies go to the daemon; past its max_frame_bytes it
    # refuses the frame, and nginx must answer with an error, not let the request through.
    cookies = "; ".join(f"c{i}={'a' * 30000}" for i in range(3))
    st, _, body, _ = env.get("/orders/1", headers={"Cookie": cookies})
    check(st in (500, 503), f"want 500 or 503, got {st}: {body}")
    st, _, body, _ = env.get("/orders/1", env.token())
    check(st == 200, f"the next request: want 200, got {st}: {body}")


@suite.case
def reload_lets_old_worker_exit_despite_kept_alive_connections(env):
    tok = env.token()
    check(env.get("/orders/1", tok)[0] == 200, "before reload")
    old = env.nginx.worker_pids()
    check(len(old) == 1, f"workers: {old}")
    os.kill(env.nginx.master_pid(), signal.SIGHUP)
    # A graceful shutdown closes idle connections (ngx_close_idle_connections); ours are marked
    # idle, so the old worker must not linger on them.
    deadline = time.monotonic() + (60 if VALGRIND else 5)
    while time.monotonic() < deadline:
        now = env.nginx.worker_pids()
        if now and not (now & old):
            break
        time.sleep(0.05)
    else:
        raise Failure(f"old worker still running after reload: {old} -> {env.nginx.worker_pids()}")
    st, _, body, _ = env.get("/orders/2", tok)
    check(st == 200, f"after reload: want 200, got {st}: {body}")


@suite.case
def bad_directives_fail_nginx_t(env):
    bad = {
        "jwtauthz_timeout 0;": "must be greater than 0",
        "jwtauthz maybe;": "invalid value",
        "jwtauthz_socket /" + "x" * 120 + ";": "not a Unix socket path",
        "jwtauthz_resource_prefix \"\";": "must not be empty",
        "jwtauthz_timeout 5x;": "invalid value",
        "jwtauthz_cache 0;": "want \"off\" or a number",
        "jwtauthz_cache 1000001;": "want \"off\" or a number",
        "jwtauthz_cache lots;": "want \"off\" or a number",
        "jwtauthz_cache 100 max_ttl=60;": "a time with its unit",
        "jwtauthz_cache 100 max_ttl=0s;": "a time with its unit",
        "jwtauthz_cache 100 max_ttl=2d;": "a time with its unit",
        "jwtauthz_cache 100 max_size=1k;": "at least 64k",
        "jwtauthz_cache 100 colour=blue;": "invalid parameter",
        "jwtauthz_cache off max_ttl=1s;": "no parameters after",
        "jwtauthz_cache 10; jwtauthz_cache 20;": "is duplicate",
    }
    for directive, msg in bad.items():
        d = Path(tempfile.mkdtemp(prefix="bad-", dir=env.tmp))
        n = Nginx(d, f"load_module {MODULE};\nerror_log stderr;\npid {d}/nginx.pid;\n"
                     f"events {{}}\nhttp {{ {directive} }}\n")
        r = n.test_config()
        check(r.returncode != 0, f"nginx -t accepted {directive!r}")
        check(msg in r.stderr, f"{directive!r}: {r.stderr.strip()}")


@suite.case
def access_log_names_verdict_and_reason_never_the_token(env):
    tok = env.token(exp_in=-600, iat_in=-900)
    env.get("/orders/access-log", tok)
    want = "GET /orders/access-log HTTP/1.1 401 UNAUTHORIZED token_expired"
    # nginx writes the line just after the response has gone out: give it a moment.
    deadline = time.monotonic() + 5
    while True:
        text = (env.tmp / "nginx" / "access.log").read_text()
        if want in text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(want in text, f"access log: {text[-400:]}")
    check(tok not in env.nginx.log() and tok not in text, "the token appears in nginx's logs")


# ---- jwtauthz_cache (the module's per-worker decision cache; location /cached/) ----------------

def cached_get(env, path, token, **kw):
    """A request to the cached location, with what the daemon decided meanwhile."""
    before = env.daemon_decisions()
    st, h, body, took = env.get(path, token, **kw)
    return st, h, body, env.daemon_decisions() - before


def warm(env, path, token, want=200):
    """Makes sure path with token is in the cache: its first answer comes from the daemon, the
    next one from the cache (fails the case when it does not, so no later check passes for the
    wrong reason)."""
    st, h, body, _ = env.get(path, token)
    check(st == want, f"warming {path}: want {want}, got {st}: {body}")
    st2, h2, body2, asked = cached_get(env, path, token)
    check(st2 == want and body2 == body, f"warm {path}: {st2} {body2!r} after {st} {body!r}")
    check(asked == 0, f"warm {path}: the daemon was asked {asked} time(s): not cached")
    return st, h, body


@suite.case
def cache_hit_answers_without_the_daemon_exactly_as_it_did(env):
    tok = env.token()
    st, h, body, asked = cached_get(env, "/cached/a", tok)
    check(st == 200 and asked == 1, f"first request: {st} (daemon asked {asked}): {body}")
    check("principal=user-123 scope=orders:read sub=user-123" in body, f"backend saw: {body}")
    for i in range(10):
        st2, h2, body2, asked = cached_get(env, "/cached/a", tok)
        check(st2 == 200 and body2 == body, f"hit {i}: {st2} {body2!r}, want {body!r}")
        check(asked == 0, f"hit {i}: the daemon was asked {asked} time(s)")
    # DENY is cached too, with its challenge; another path is another key.
    deny = env.token(scope="profile")
    st, h, body, asked = cached_get(env, "/cached/a", deny)
    check(st == 403 and asked == 1, f"DENY: {st} (daemon asked {asked}): {body}")
    st2, h2, _, asked = cached_get(env, "/cached/a", deny)
    check(st2 == 403 and asked == 0, f"DENY again: {st2} (daemon asked {asked})")
    check(h2.get("www-authenticate") == h.get("www-authenticate") ==
          'Bearer error="insufficient_scope"', f"challenge: {h2}")
    st, _, _, asked = cached_get(env, "/cached/b", tok)
    check(st == 200 and asked == 1, f"another path: {st} (daemon asked {asked})")
    # Refusals are never cached: each one is the daemon's.
    expired = env.token(exp_in=-600, iat_in=-900)
    for _ in range(2):
        st, h, _, asked = cached_get(env, "/cached/a", expired)
        check(st == 401 and asked == 1, f"expired token: {st} (daemon asked {asked})")
        check('error_description="token_expired"' in h.get("www-authenticate", ""), f"{h}")


@suite.case
def cache_admin_flush_sends_the_next_request_to_the_daemon(env):
    tok = env.token(sub="flush-user")
    warm(env, "/cached/flush", tok)
    for cmd in ({"cmd": "flush"}, {"cmd": "flush", "principal": "someone-else"},
                {"cmd": "flush", "token": "Bearer x.y.z"}):
        reply = env.daemon.admin(cmd)
        check(reply.get("ok") is True, f"{cmd}: {reply}")
        # Any flush, of any scope: the cache is keyed by request, not by principal or token.
        st, _, body, asked = cached_get(env, "/cached/flush", tok)
        check(st == 200 and asked == 1, f"after {cmd}: {st}, daemon asked {asked}: {body}")
        st, _, _, asked = cached_get(env, "/cached/flush", tok)
        check(st == 200 and asked == 0, f"after {cmd}, again: {st}, daemon asked {asked}")


@suite.case
def cache_reload_turning_allow_into_deny_is_403_at_once(env):
    tok = env.token()
    warm(env, "/cached/reload/1", tok)
    deny = {"resource": "arn:aws:execute-api:*:*:*/*/GET/cached/reload/*", "effect": "Deny"}
    env.daemon.config["rules"] = RULES + [deny]
    env.daemon.write_config(env.daemon.config)
    try:
        reply = env.daemon.admin({"cmd": "reload"})
        check(reply.get("ok") is True, f"reload: {reply}")
        st, _, body, asked = cached_get(env, "/cached/reload/1", tok)
        check(st == 403 and asked == 1, f"after reload: want 403 from the daemon, got {st} "
                                        f"(asked {asked}): {body}")
    finally:
        env.daemon.config["rules"] = list(RULES)
        env.daemon.write_config(env.daemon.config)
        env.daemon.admin({"cmd": "reload"})
    # A SIGHUP reload counts the same: warm, reload by signal, the next one asks again.
    warm(env, "/cached/reload/2", tok)
    gen = env.daemon.admin({"cmd": "stats"})["generation"]
    env.daemon.reload()
    deadline = time.monotonic() + 10
    while env.daemon.admin({"cmd": "stats"})["generation"] == gen:
        check(time.monotonic() < deadline, "SIGHUP did not load a new generation")
        time.sleep(0.02)
    st, _, _, asked = cached_get(env, "/cached/reload/2", tok)
    check(st == 200 and asked == 1, f"after SIGHUP: {st}, daemon asked {asked}")


@suite.case
def cache_never_outlives_the_token_exp(env):
    exp = int(time.time()) + 3
    tok = env.token(exp_in=None, claims={"exp": exp})
    st, _, body, asked = cached_get(env, "/cached/exp", tok)
    check(st == 200 and asked == 1, f"fresh token: {st} (asked {asked}): {body}")
    st, _, _, asked = cached_get(env, "/cached/exp", tok)
    check(st == 200 and asked == 0, f"before exp: {st}, daemon asked {asked}: not cached, the "
                                    "test would prove nothing")
    while time.time() < exp + 0.05:
        time.sleep(0.02)
    st, h, _, asked = cached_get(env, "/cached/exp", tok)
    check(st == 401, f"right after exp: want 401, got {st} (daemon asked {asked})")
    check('error_description="token_expired"' in h.get("www-authenticate", ""), f"{h}")


@suite.case
def cache_forged_token_of_the_same_length_is_401(env):
    tok = env.token(sub="forge-target")
    warm(env, "/cached/forge", tok)
    for what in ("signature", "payload"):
        forged = mint.tamper(tok, what)
        if len(forged) != len(tok):
            # Keep the length: flip one character of the part instead.
            head, payload, sig = tok.split(".")
            if what == "signature":
                sig = ("A" if sig[0] != "A" else "B") + sig[1:]
            else:
                payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
            forged = ".".join((head, payload, sig))
        check(len(forged) == len(tok) and forged != tok, "forged token of another length")
        st, _, body, asked = cached_get(env, "/cached/forge", forged)
        check(st == 401 and asked == 1, f"forged {what}: want 401 from the daemon, got {st} "
                                        f"(asked {asked}): {body}")
    st, _, _, asked = cached_get(env, "/cached/forge", tok)
    check(st == 200 and asked == 0, f"the real token after: {st}, daemon asked {asked}")


@suite.case
def cache_daemon_stopped_is_503_at_once_and_restart_recovers(env):
    tok = env.token(sub="stop-user")
    warm(env, "/cached/stop", tok)
    check(env.epoch_path().exists(), "no epoch file while the daemon runs")
    env.daemon.stop()
    check(not env.epoch_path().exists(), "SIGTERM left the epoch file behind")
    st, _, body, took = env.get("/cached/stop", tok)
    check(st == 503, f"daemon stopped: want 503, got {st}: {body}")
    check(took < QUICK_S, f"503 took {took:.2f}s")
    env.daemon.start()
    st, _, body, _ = env.get("/cached/stop", tok)
    check(st == 200, f"daemon restarted: want 200, got {st}: {body}")
    warm(env, "/cached/stop", tok)


@suite.case
def cache_daemon_killed_is_503_at_once_and_restart_recovers(env):
    # SIGKILL bumps no epoch and unlinks nothing: the module sees the daemon's lock on the file
    # go, which the kernel drops with the process.
    tok = env.token(sub="kill-user")
    warm(env, "/cached/kill", tok)
    env.daemon.stop(signal.SIGKILL)
    check(env.epoch_path().exists(), "the killed daemon's file should still be there")
    st, _, body, took = env.get("/cached/kill", tok)
    check(st == 503, f"daemon killed: want 503, got {st}: {body}")
    check(took < QUICK_S, f"503 took {took:.2f}s")
    env.daemon.start()  # takes the stale socket and the file over, with a new instance
    st, _, body, asked = cached_get(env, "/cached/kill", tok)
    check(st == 200 and asked == 1, f"restarted: {st}, daemon asked {asked}: {body}")
    warm(env, "/cached/kill", tok)


@suite.case
def cache_ignores_an_epoch_file_that_is_not_ours(env):
    tok = env.token(sub="tamper-user")
    warm(env, "/cached/tamper", tok)
    path = env.epoch_path()
    with open(path, "r+b") as f:
        original = f.read(16)
        check(original == b"JWTAUTHZEPOCH1\0\0", f"magic: {original!r}")
        f.seek(0)
        f.write(b"NOTJWTAUTHZEPOCH")
    try:
        for i in range(3):
            st, _, body, asked = cached_get(env, "/cached/tamper", tok)
            check(st == 200 and asked == 1, f"request {i} with a foreign file: {st}, daemon "
                                            f"asked {asked}: {body}")
        st, _, _, asked = cached_get(env, "/cached/tamper", env.token(scope="profile"))
        check(st == 403 and asked == 1, f"DENY with a foreign file: {st}, asked {asked}")
    finally:
        with open(path, "r+b") as f:
            f.write(original)
    warm(env, "/cached/tamper", tok)


@suite.case
def cache_keeps_only_allow_and_deny_with_a_ttl(env):
    # A scripted daemon with an epoch file of its own: whatever it answers, only an ALLOW with
    # status 200 or a DENY, each with a positive ttl, may be answered again without asking it.
    fake = env.scripted
    allow = {"verdict": "ALLOW", "status": 200, "principalId": "scripted", "ttl": 300}
    cases = [
        ("allow", allow, 200, 1),
        ("deny", {"verdict": "DENY", "status": 403, "ttl": 300}, 403, 1),
        ("unauthorized", {"verdict": "UNAUTHORIZED", "status": 401, "reason": "bad_signature",
                          "ttl": 300}, 401, 2),
        ("error", {"verdict": "ERROR", "status": 503, "reason": "no_keys", "ttl": 300}, 503, 2),
        # A contradiction: the library refuses it as a bad reply (503), or the module does (500).
        ("allow-500", dict(allow, status=500), (500, 503), 2),
        ("allow-ttl0", dict(allow, ttl=0), 200, 2),
        ("allow-no-ttl", {k: v for k, v in allow.items() if k != "ttl"}, 200, 2),
    ]
    for name, reply, want, asked_want in cases:
        fake.reply = reply
        before = len(fake.requests)
        for _ in range(2):
            st, _, body, _ = env.get(f"/fakecached/{name}", "anything")
            check(st in (want if isinstance(want, tuple) else (want,)),
                  f"{name}: want {want}, got {st}: {body}")
        asked = len(fake.requests) - before
        check(asked == asked_want, f"{name}: the daemon was asked {asked} time(s) for 2 "
                                   f"requests, want {asked_want}")
    # The epoch file is all it takes: moving it sends the next request to the daemon.
    fake.reply = allow
    before = len(fake.requests)
    os.pwrite(fake.epoch_fd, struct.pack("=Q", 2), 24)
    st, _, body, _ = env.get("/fakecached/allow", "anything")
    check(st == 200 and len(fake.requests) - before == 1, f"after the epoch moved: {st}, asked "
                                                          f"{len(fake.requests) - before}")


@suite.case
def cache_directive_taken_at_every_level(env):
    d = Path(tempfile.mkdtemp(prefix="good-", dir=env.tmp))
    n = Nginx(d, f"load_module {MODULE};\nerror_log stderr;\npid {d}/nginx.pid;\nevents {{}}\n"
                 "http { jwtauthz_cache 100 max_ttl=500ms max_size=1m; server { listen "
                 "127.0.0.1:1; jwtauthz_cache 1000000 max_ttl=1d; location / { jwtauthz_cache "
                 "off; } location /x { jwtauthz_cache 5 max_size=64k max_ttl=1m; } } }\n")
    r = n.test_config()
    check(r.returncode == 0, f"nginx -t refused good jwtauthz_cache lines: {r.stderr}")


def setup(env):
    env.tmp = Path(suite.stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e-nginx-")))
    os.chmod(env.tmp, 0o755)
    env.keys = env.tmp / "keys"
    mint.keygen(env.keys)
    (env.tmp / "daemon").mkdir()
    env.daemon = Daemon(
        BUILD, workdir=env.tmp / "daemon",
        issuers=[{"issuer": ISSUER, "jwks_file": str(env.keys / "jwks.json"),
                  "audiences": [AUDIENCE], "leeway": 0, "context_claims": ["sub", "scope"]}],
        rules=RULES, extra={"token_cookie": "access_token", "token_query": "access_token"})
    suite.stack.callback(env.daemon.stop)
    env.daemon.start()

    env.fakes = {}
    for name, mode, timeout in (("slow", "slow", "10s"), ("timeout", "slow", "500"),
                                ("trickle", "trickle", "5s"), ("wrongid", "wrong_id", "2s"), ("noid", "no_id", "2s"),
                                ("garbage", "garbage", "2s"), ("hangup", "close", "2s")):
        fake = FakeDaemon(env.tmp / f"{name}.sock", mode, delay=SLOW_S)
        suite.stack.callback(fake.stop)
        env.fakes[name] = (fake, timeout)
    env.scripted = FakeDaemon(env.tmp / "scripted.sock", "scripted", epoch=True)
    suite.stack.callback(env.scripted.stop)

    env.port, backend = free_port(), free_port()
    # Run as root (CI containers), nginx would switch its workers to "nobody", who cannot reach
    # the daemon's socket (mode 0660); the workers stay root instead.
    env.nginx = Nginx(env.tmp / "nginx",
                      nginx_conf(env.tmp / "nginx", env.port, backend, env.daemon.sock,
                                 env.fakes, os.geteuid() == 0))
    suite.stack.callback(env.nginx.stop)
    env.nginx.start(env.port)


def check_error_log(env):
    """A worker that crashed, or nginx complaining about our module, fails the run."""
    log = env.nginx.log()
    for mark in ("exited on signal", "[alert]", "[emerg]"):
        if mark in log:
            suite.failed += 1
            print(f"FAIL nginx_error_log_is_clean: {mark!r} in error.log:\n{log[-2000:]}")
            return
    suite.passed += 1
    print("ok nginx_error_log_is_clean")


def save_logs(env):
    dest = os.environ.get("JWTAUTHZ_E2E_LOGS")
    if not dest or not hasattr(env, "tmp"):
        return
    Path(dest).mkdir(parents=True, exist_ok=True)
    for f in list((env.tmp / "nginx").glob("*.log")) + [env.tmp / "daemon" / "daemon.log"]:
        with contextlib.suppress(OSError):
            (Path(dest) / f.name).write_bytes(f.read_bytes())


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    env = Env()
    with suite.stack:
        try:
            if not MODULE.exists():
                raise RuntimeError(f"no module at {MODULE}")
            setup(env)
        except Exception:  # noqa: BLE001 - reported as a failed setup, then cleaned up
            suite.failed += 1
            print(f"FAIL setup: {traceback.format_exc()}", flush=True)
        else:
            suite.run(env)
            check_error_log(env)
            env.nginx.stop()
            if VALGRIND:
                bad = env.nginx.valgrind_errors()
                suite.failed += bool(bad)
                suite.passed += not bad
                print("FAIL valgrind_clean:\n" + "\n".join(bad) if bad else "ok valgrind_clean")
        finally:
            save_logs(env)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
