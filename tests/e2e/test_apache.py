#!/usr/bin/python3
"""e2e: a real Apache httpd with mod_jwtauthz in front of the real jwtauthzd, whose keys come over
real HTTPS (tests/tools/https_server.py), with tokens minted by PyJWT (tests/tools/mint.py). Runs
the main cases under each MPM (event, worker, prefork) and the directive checks once.
Every case prints "ok NAME" or "FAIL NAME: detail"; the last line is "N passed, N failed"; exit 1
on any failure. Every process started here (httpd and children, daemon, nginx, a fake daemon) is
stopped on the way out, failure or not.

    test_apache.py [--mpm event|worker|prefork|all] [--config-only | --no-config]
Environment (ctest sets them): JWTAUTHZ_BUILD, JWTAUTHZ_SRC, JWTAUTHZ_MOD_JWTAUTHZ (the .so).
"""

import argparse
import concurrent.futures
import contextlib
import grp
import http.client
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tools"))

import apache  # noqa: E402
import daemon as daemon_tool  # noqa: E402
import https_server  # noqa: E402
import mint  # noqa: E402

ISSUER = "https://idp.jwtauthz.test/"
AUDIENCE = "api://orders"
PREFIX = "arn:aws:execute-api:local:0:api/prod"
PREFIX_V2 = "arn:aws:execute-api:local:0:api/v2"
PREFIX_HT = "arn:aws:execute-api:local:0:api/site"
REALM = "orders-api"
# The policy: read and write orders by scope, delete for admins, GET on /admin, /admin403 and
# /scoped for any valid token (Apache's Require lines decide those), an explicit Deny on
# /internal, and the v2 API under its own prefix only.
RULES = [
    {"resource": f"{PREFIX}/GET/orders*", "scopes": ["orders:read"]},
    {"resource": f"{PREFIX}/POST/orders*", "scopes": ["orders:write"]},
    {"resource": f"{PREFIX}/DELETE/*", "claims": {"groups": "admin"}},
    {"resource": f"{PREFIX}/GET/admin*"},
    {"resource": f"{PREFIX}/GET/scoped*"},
    {"resource": f"{PREFIX}/GET/cors*"},
    {"resource": f"{PREFIX}/GET/internal/*", "scopes": ["orders:read"]},
    {"resource": f"{PREFIX}/*/internal/*", "effect": "Deny"},
    {"resource": f"{PREFIX_V2}/GET/v2/*", "scopes": ["orders:read"]},
    {"resource": f"{PREFIX_HT}/GET/site/*", "scopes": ["orders:read"]},
]
CONTEXT_CLAIMS = ["sub", "scope", "groups", "tenant-id", "note"]
SLOW_TIMEOUT_MS = 300


def module_path():
    path = os.environ.get("JWTAUTHZ_MOD_JWTAUTHZ")
    if path:
        return Path(path)
    return daemon_tool.build_dir() / "client" / "apache" / "mod_jwtauthz.so"


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn, *args):
        try:
            note = fn(*args)
        except Exception as e:  # noqa: BLE001 - a crashing case is a failing case
            self.failed += 1
            detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
            print(f"FAIL {name}: {detail}", flush=True)
            return False
        self.passed += 1
        print(f"ok {name}" + (f" ({note})" if isinstance(note, str) else ""), flush=True)
        return True


class HangingDaemon:
    """A Unix socket that accepts and never answers: what a wedged daemon looks like."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)  # a test socket in a private dir; httpd's user must connect
        self.sock.listen(64)
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(5)


HTACCESS_OK = f"""AuthType jwtauthz
JwtAuthzResourcePrefix {PREFIX_HT}
Require valid-user
"""
HTACCESS_SOCKET = """AuthType jwtauthz
JwtAuthzSocket /tmp/somewhere-else.sock
Require valid-user
"""


def site_conf(daemon_sock, cgi, missing_sock, hang_sock, htdocs):
    return f"""
# Server-wide: every <Location> below inherits the socket and the timeout.
JwtAuthzSocket "{daemon_sock}"
JwtAuthzTimeout 2
<Location "/">
    AuthName "{REALM}"
</Location>
ScriptAliasMatch "^/(orders|admin|admin403|scoped|internal|v2|nodaemon|slow|cors)(/.*)?$" "{cgi}"
<Location "/orders">
    AuthType jwtauthz
    Require valid-user
</Location>
<Location "/internal">
    AuthType jwtauthz
    Require valid-user
</Location>
<Location "/admin">
    AuthType jwtauthz
    Require jwtauthz-claim groups admin
</Location>
<Location "/admin403">
    AuthType jwtauthz
    AuthzSendForbiddenOnFailure On
    Require jwtauthz-claim groups admin
</Location>
<Location "/scoped">
    AuthType Jwtauthz
    Require jwtauthz-claim scope orders:write
</Location>
<Location "/cors">
    AuthType jwtauthz
    <RequireAny>
        Require method OPTIONS
        Require valid-user
    </RequireAny>
</Location>
<Location "/v2">
    AuthType jwtauthz
    # The trailing "/" is dropped (as the nginx module does): the ARN is still .../api/v2/GET/...
    JwtAuthzResourcePrefix {PREFIX_V2}/
    Require valid-user
</Location>
<Location "/nodaemon">
    AuthType jwtauthz
    JwtAuthzSocket "{missing_sock}"
    Require valid-user
</Location>
<Location "/slow">
    AuthType jwtauthz
    JwtAuthzSocket "{hang_sock}"
    JwtAuthzTimeout {SLOW_TIMEOUT_MS}ms
    Require valid-user
</Location>
# .htaccess may use AuthType, Require and JwtAuthzResourcePrefix (AllowOverride AuthConfig), but
# never JwtAuthzSocket or JwtAuthzTimeout.
AccessFileName .htaccess
<Directory "{htdocs}">
    AllowOverride AuthConfig
</Directory>
"""


class Fixture:
    """Keys, tokens, the HTTPS key server, the daemon, a wedged fake daemon and httpd."""

    def __init__(self, tmp, mpm, stack):
        self.tmp = tmp
        self.mpm = mpm
        keys = tmp / "keys"
        mint.keygen(keys)
        keys.chmod(0o700)
        self.keys = keys
        self.tokens = self._mint_tokens()

        docroot = tmp / "idp"
        docroot.mkdir()
        self.srv = stack.enter_context(https_server.HttpsServer(docroot))
        self.srv.publish("jwks.json", (keys / "jwks.json").read_text())

        # httpd's children (www-data when we run as root) must reach the daemon's socket: the
        # dirs above it are traversable, the socket is group-accessible (mode 0660).
        ddir = tmp / "daemon"
        ddir.mkdir()
        ddir.chmod(0o711)
        extra = {"token_cookie": "access_token", "token_query": "access_token"}
        user = apache.run_user()
        if user:
            extra["listen_group"] = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        issuer = {"issuer": ISSUER, "jwks_uri": self.srv.url("jwks.json"),
                  "ca_file": self.srv.ca_file, "audiences": [AUDIENCE],
                  "algorithms": ["RS256", "ES256"], "context_claims": CONTEXT_CLAIMS}
        self.daemon = daemon_tool.Daemon(issuers=[issuer], rules=RULES, extra=extra,
                                         workdir=ddir)
        stack.callback(self.daemon.stop)
        self.daemon.start()
        self.wait_daemon_allows()

        self.hang = HangingDaemon(tmp / "hang.sock")
        stack.callback(self.hang.close)
        self.httpd = apache.Apache(
            tmp / "httpd", mpm, module_path(),
            site_conf(self.daemon.sock, tmp / "httpd" / "cgi" / "env.cgi",
                      tmp / "no-daemon-here.sock", self.hang.path, tmp / "httpd" / "htdocs"))
        for name, text in (("site", HTACCESS_OK), ("badsite", HTACCESS_SOCKET)):
            d = tmp / "httpd" / "htdocs" / name
            d.mkdir(parents=True)
            d.chmod(0o755)
            (d / ".htaccess").write_text(text)
            (d / "hello.txt").write_text("hello\n")
            for p in (d / ".htaccess", d / "hello.txt"):
                p.chmod(0o644)
        stack.callback(self.httpd.stop)
        self.httpd.start()

    def _mint_tokens(self):
        rs = str(self.keys / "rs256-1.pem")
        es = str(self.keys / "es256-1.pem")
        t = {}
        t["reader"] = mint.mint(rs, iss=ISSUER, aud=AUDIENCE, sub="alice", scope="orders:read",
                                claims={"groups": ["ops"], "tenant-id": "t-1",
                                        "note": "line1\nline2"})
        t["writer"] = mint.mint(es, iss=ISSUER, aud=AUDIENCE, sub="bob",
                                scope="orders:read orders:write",
                                claims={"groups": ["admin", "ops"]})
        t["expired"] = mint.mint(rs, iss=ISSUER, aud=AUDIENCE, sub="alice", scope="orders:read",
                                 exp_in=-3600, iat_in=-7200)
        t["tampered"] = mint.tamper(t["reader"], "signature")
        t["other_aud"] = mint.mint(rs, iss=ISSUER, aud="api://billing", sub="alice",
                                   scope="orders:read")
        t["alg_none"] = mint.tamper(t["reader"], "header-alg-none")
        return t

    def bearer(self, name):
        return {"Authorization": "Bearer " + self.tokens[name]}

    def wait_daemon_allows(self, timeout=15.0):
        """The daemon answers once its sockets are up; keys may take a fetch longer."""
        deadline = time.monotonic() + timeout
        rc = None
        while time.monotonic() < deadline:
            rc, reply = self.daemon.check("Bearer " + self.tokens["reader"],
                                          f"{PREFIX}/GET/orders/1")
            if rc == 0:
                return
            time.sleep(0.1)
        raise Failure(f"daemon never allowed the reader token (last exit {rc}):\n"
                      f"{self.daemon.log()[-3000:]}")

    def get(self, path, token=None, headers=None, method="GET"):
        h = dict(headers or {})
        if token:
            h.update(self.bearer(token))
        return self.httpd.request(method, path, headers=h)

    def env(self, body):
        """The backend CGI's answer: the variables it was started with."""
        return json.loads(body)


# ---- the cases -------------------------------------------------------------------------------

def valid_token_reaches_backend_as_principal(f):
    status, _, body = f.get("/orders/42", "reader")
    check(status == 200, f"status {status}: {body[:300]!r}")
    env = f.env(body)
    check(env.get("REMOTE_USER") == "alice", f"REMOTE_USER {env.get('REMOTE_USER')!r}")
    check(env.get("AUTH_TYPE") == "jwtauthz", f"AUTH_TYPE {env.get('AUTH_TYPE')!r}")
    check(env.get("JWTAUTHZ_PRINCIPAL") == "alice", f"JWTAUTHZ_PRINCIPAL {env!r}")
    check("HTTP_AUTHORIZATION" not in env, "the token leaked into the CGI environment")


def context_claims_become_env_vars(f):
    status, _, body = f.get("/orders/42", "reader")
    check(status == 200, f"status {status}")
    env = f.env(body)
    want = {"JWTAUTHZ_CTX_SUB": "alice", "JWTAUTHZ_CTX_SCOPE": "orders:read",
            "JWTAUTHZ_CTX_GROUPS": '["ops"]', "JWTAUTHZ_CTX_TENANT_ID": "t-1"}
    for k, v in want.items():
        check(env.get(k) == v, f"{k} = {env.get(k)!r}, want {v!r} (env {env!r})")


def claim_with_line_break_is_sanitised_in_env(f):
    status, _, body = f.get("/orders/42", "reader")
    check(status == 200, f"status {status}")
    note = f.env(body).get("JWTAUTHZ_CTX_NOTE")
    check(note == "line1?line2", f"JWTAUTHZ_CTX_NOTE = {note!r}")


def no_token_gets_challenge_without_error_code(f):
    status, headers, _ = f.get("/orders/42")
    check(status == 401, f"status {status}")
    check(headers.get("www-authenticate") == f'Bearer realm="{REALM}"',
          f"WWW-Authenticate {headers.get('www-authenticate')!r}")


def basic_credentials_get_bearer_challenge(f):
    status, headers, _ = f.get("/orders/42", headers={"Authorization": "Basic YWxpY2U6cHc="})
    check(status == 401, f"status {status}")
    check(headers.get("www-authenticate") == f'Bearer realm="{REALM}"',
          f"WWW-Authenticate {headers.get('www-authenticate')!r}")


def _expect_invalid_token(f, token, reason):
    status, headers, _ = f.get("/orders/42", token)
    check(status == 401, f"status {status}")
    www = headers.get("www-authenticate", "")
    check(www.startswith(f'Bearer realm="{REALM}", error="invalid_token", error_description="'),
          f"WWW-Authenticate {www!r}")
    check(reason in www, f"reason {reason} not in {www!r}")


def expired_token_is_invalid_token(f):
    _expect_invalid_token(f, "expired", "token_expired")


def tampered_signature_is_invalid_token(f):
    _expect_invalid_token(f, "tampered", "bad_signature")


def token_for_other_audience_is_invalid_token(f):
    _expect_invalid_token(f, "other_aud", "audience_mismatch")


def alg_none_token_is_invalid_token(f):
    _expect_invalid_token(f, "alg_none", "alg_none")


def wrong_scope_for_method_is_403(f):
    status, headers, _ = f.get("/orders/42", "reader", method="POST")
    check(status == 403, f"reader POST: status {status}")
    check("www-authenticate" not in headers, "a DENY carries no challenge")
    status, _, _ = f.get("/orders/42", "writer", method="POST")
    check(status == 200, f"writer POST: status {status}")


def explicit_deny_beats_allow(f):
    status, _, _ = f.get("/internal/keys", "writer")
    check(status == 403, f"status {status}")


def percent_encoded_path_cannot_dodge_policy(f):
    # httpd decodes the path before <Location> matching; the methodArn uses the same path.
    status, _, body = f.get("/ord%65rs/42", "reader")
    check(status == 200, f"/ord%65rs/42: status {status}")
    check(f.env(body).get("REMOTE_USER") == "alice", "no user on the decoded path")
    status, _, _ = f.get("/int%65rnal/keys", "writer")
    check(status == 403, f"/int%65rnal/keys: status {status}")


def path_not_utf8_is_400(f):
    status, _, _ = f.get("/orders/%FF", "reader")
    check(status == 400, f"status {status}")


def require_claim_grants_member(f):
    status, _, body = f.get("/admin/users", "writer")
    check(status == 200, f"status {status}")
    check(f.env(body).get("REMOTE_USER") == "bob", "REMOTE_USER")


def require_claim_refuses_non_member_with_insufficient_scope(f):
    status, headers, _ = f.get("/admin/users", "reader")
    check(status == 401, f"status {status} (httpd's default for an authz failure)")
    www = headers.get("www-authenticate", "")
    check(f'Bearer realm="{REALM}", error="insufficient_scope"' in www,
          f"WWW-Authenticate {www!r}")


def require_claim_forbidden_on_failure_is_403(f):
    status, _, _ = f.get("/admin403/users", "reader")
    check(status == 403, f"reader: status {status}")
    status, _, _ = f.get("/admin403/users", "writer")
    check(status == 200, f"writer: status {status}")


def require_claim_scope_matches_one_of_the_scopes(f):
    status, _, _ = f.get("/scoped/x", "writer")
    check(status == 200, f"writer (orders:read orders:write): status {status}")
    status, _, _ = f.get("/scoped/x", "reader")
    check(status == 401, f"reader (orders:read): status {status}")


def require_claim_without_token_is_401_challenge(f):
    status, headers, _ = f.get("/admin/users")
    check(status == 401, f"status {status}")
    check(headers.get("www-authenticate") == f'Bearer realm="{REALM}"',
          f"WWW-Authenticate {headers.get('www-authenticate')!r}")


def token_from_cookie(f):
    status, _, body = f.get("/orders/7", headers={
        "Cookie": "theme=dark; access_token=" + f.tokens["reader"] + "; lang=en"})
    check(status == 200, f"status {status}")
    check(f.env(body).get("REMOTE_USER") == "alice", "REMOTE_USER")


def token_from_query(f):
    status, _, body = f.get("/orders/7?x=1&access_token=" + f.tokens["reader"])
    check(status == 200, f"status {status}")
    check(f.env(body).get("REMOTE_USER") == "alice", "REMOTE_USER")


def location_prefix_overrides_and_socket_inherits(f):
    # Only the api/v2 rule allows /v2/*: a 200 shows the <Location>'s prefix went into the ARN,
    # and that the server-wide JwtAuthzSocket survived the merge.
    status, _, body = f.get("/v2/items", "reader")
    check(status == 200, f"status {status}")
    check(f.env(body).get("REMOTE_USER") == "alice", "REMOTE_USER")


def cors_preflight_passes_with_require_method(f):
    status, _, _ = f.get("/cors/x", method="OPTIONS")
    check(status == 200, f"OPTIONS without a token: status {status}")
    status, _, _ = f.get("/cors/x")
    check(status == 401, f"GET without a token: status {status}")
    status, _, _ = f.get("/cors/x", "reader")
    check(status == 200, f"GET with a token: status {status}")


def head_is_decided_as_head(f):
    # The rules allow GET /orders*, not HEAD: the methodArn carries the method as sent.
    status, _, _ = f.get("/orders/1", "reader", method="HEAD")
    check(status == 403, f"HEAD: status {status}")


def huge_cookie_header_fails_closed(f):
    # Without Authorization the Cookie header travels to the daemon. httpd refuses the merged
    # 84 KB header itself (LimitRequestFieldSize, 400); with that limit raised past the daemon's
    # max_frame_bytes the daemon refuses the frame (500). Whichever answers, it is not a pass.
    headers = [("Cookie", f"c{i}=" + "v" * 7000) for i in range(12)]
    conn = http.client.HTTPConnection("127.0.0.1", f.httpd.port, timeout=10)
    try:
        conn.putrequest("GET", "/orders/1")
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        status = resp.status
    finally:
        conn.close()
    check(status in (400, 401, 500, 503), f"status {status}")
    return f"status {status}"


def htaccess_sets_auth_and_prefix(f):
    status, _, body = f.get("/site/hello.txt", "reader")
    check(status == 200 and body == b"hello\n", f"reader: status {status} {body[:100]!r}")
    status, headers, _ = f.get("/site/hello.txt")
    check(status == 401, f"no token: status {status}")
    check(headers.get("www-authenticate") == f'Bearer realm="{REALM}"',
          f"WWW-Authenticate {headers.get('www-authenticate')!r}")


def htaccess_cannot_redirect_socket(f):
    # JwtAuthzSocket from .htaccess would let a site owner point httpd at any Unix socket.
    status, _, _ = f.get("/badsite/hello.txt", "reader")
    check(status == 500, f"status {status}")
    check("JwtAuthzSocket not allowed here" in f.httpd.log(), "no 'not allowed here' in the log")


def daemon_unreachable_is_503(f):
    status, headers, _ = f.get("/nodaemon/x", "reader")
    check(status == 503, f"status {status}")
    check("www-authenticate" not in headers, "no challenge when nobody decided")


def wedged_daemon_times_out_503(f):
    t0 = time.monotonic()
    status, _, _ = f.get("/slow/x", "reader")
    took = time.monotonic() - t0
    check(status == 503, f"status {status}")
    check(took < 2.0, f"took {took:.2f}s with JwtAuthzTimeout {SLOW_TIMEOUT_MS}ms")
    check(took >= SLOW_TIMEOUT_MS / 1000 * 0.9, f"answered in {took:.3f}s: no wait at all?")


def connections_to_daemon_are_reused(f):
    before = f.daemon.admin({"cmd": "stats"})
    n = 40
    for i in range(n):
        status, _, _ = f.get(f"/orders/{i}", "reader")
        check(status == 200, f"request {i}: status {status}")
    after = f.daemon.admin({"cmd": "stats"})
    opened = after["connections"] - before["connections"]
    allowed = after["requests"]["ALLOW"] - before["requests"]["ALLOW"]
    check(allowed >= n, f"daemon saw {allowed} ALLOWs for {n} requests")
    # Each httpd thread keeps its connection: at most one per thread (8 here), plus the admin
    # connection of the second stats call.
    check(opened <= 9, f"{opened} daemon connections for {n} requests")
    return f"{opened} new daemon connections for {n} requests"


def concurrent_requests_each_get_their_verdict(f):
    cases = [("/orders/1", "reader", "GET", 200), ("/orders/2", "expired", "GET", 401),
             ("/orders/3", "reader", "POST", 403), ("/admin/x", "writer", "GET", 200),
             ("/orders/4", None, "GET", 401), ("/admin403/x", "reader", "GET", 403)] * 8

    def one(c):
        path, token, method, want = c
        status, _, body = f.get(path, token, method=method)
        if status != want:
            return f"{method} {path} as {token}: {status}, want {want}"
        if status == 200:
            user = f.env(body).get("REMOTE_USER")
            if user != {"reader": "alice", "writer": "bob"}[token]:
                return f"{path} as {token}: REMOTE_USER {user!r}"
        return None

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        errors = [e for e in pool.map(one, cases) if e]
    check(not errors, "; ".join(errors[:5]))


def daemon_restart_recovers_without_httpd_restart(f):
    parent = f.httpd.proc.pid
    for i in range(8):  # warm every thread's connection first
        check(f.get(f"/orders/{i}", "reader")[0] == 200, "warm-up")
    f.daemon.stop()
    for i in range(6):
        status, _, _ = f.get(f"/orders/{i}", "reader")
        check(status == 503, f"daemon stopped, request {i}: status {status}")
    f.daemon.start()
    f.wait_daemon_allows()
    for i in range(16):
        status, _, _ = f.get(f"/orders/{i}", "reader")
        check(status == 200, f"daemon restarted, request {i}: status {status}\n"
                             f"{f.httpd.log()[-2000:]}")
    check(f.httpd.proc.pid == parent and f.httpd.proc.poll() is None, "httpd was restarted")


def error_log_has_reasons_never_tokens(f):
    log = f.httpd.log()
    check("token_expired" in log and "bad_signature" in log, "reason codes missing from the log")
    for name, tok in f.tokens.items():
        for part in {tok.split(".")[-1], tok.split(".")[0] + "." + tok.split(".")[1]}:
            if len(part) > 16:
                check(part not in log, f"{name} token text in error.log")
    check(f"{PREFIX}/GET/orders/42" in log, "methodArn not logged")


def graceful_restart_keeps_deciding(f):
    # SIGUSR1: new children (child_init again, the module reloaded in the parent) take over.
    generations = f.httpd.log().count("resuming normal operations")
    f.httpd.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    generation_seen = False
    while time.monotonic() < deadline and not generation_seen:
        generation_seen = f.httpd.log().count("resuming normal operations") > generations
        time.sleep(0.1)
    check(generation_seen, "httpd did not finish its graceful restart")
    for i in range(12):
        status, _, body = f.get(f"/orders/{i}", "reader")
        check(status == 200, f"after graceful restart, request {i}: status {status}")
    status, _, _ = f.get("/orders/1")
    check(status == 401, f"after graceful restart, no token: status {status}")
    check("no thread-local client slot" not in f.httpd.log(), "thread key creation failed")


def listens_on_loopback_only(f):
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    pids = set(f.httpd.pids())
    mine = [line for line in out.splitlines()
            if any(f"pid={p}," in line for p in pids)]
    check(mine, f"no listening socket found for httpd pids {sorted(pids)}")
    for line in mine:
        check(f"127.0.0.1:{f.httpd.port}" in line, f"httpd listens beyond 127.0.0.1: {line}")


MPM_CASES = [
    valid_token_reaches_backend_as_principal,
    context_claims_become_env_vars,
    claim_with_line_break_is_sanitised_in_env,
    no_token_gets_challenge_without_error_code,
    basic_credentials_get_bearer_challenge,
    expired_token_is_invalid_token,
    tampered_signature_is_invalid_token,
    token_for_other_audience_is_invalid_token,
    alg_none_token_is_invalid_token,
    wrong_scope_for_method_is_403,
    explicit_deny_beats_allow,
    percent_encoded_path_cannot_dodge_policy,
    path_not_utf8_is_400,
    require_claim_grants_member,
    require_claim_refuses_non_member_with_insufficient_scope,
    require_claim_forbidden_on_failure_is_403,
    require_claim_scope_matches_one_of_the_scopes,
    require_claim_without_token_is_401_challenge,
    token_from_cookie,
    token_from_query,
    location_prefix_overrides_and_socket_inherits,
    cors_preflight_passes_with_require_method,
    head_is_decided_as_head,
    huge_cookie_header_fails_closed,
    htaccess_sets_auth_and_prefix,
    htaccess_cannot_redirect_socket,
    daemon_unreachable_is_503,
    wedged_daemon_times_out_503,
    connections_to_daemon_are_reused,
    concurrent_requests_each_get_their_verdict,
    daemon_restart_recovers_without_httpd_restart,
    error_log_has_reasons_never_tokens,
    listens_on_loopback_only,
    graceful_restart_keeps_deciding,
]


def run_mpm(mpm, results):
    with tempfile.TemporaryDirectory(prefix=f"jwtauthz-e2e-apache-{mpm}-") as d:
        tmp = Path(d)
        tmp.chmod(0o711)
        with contextlib.ExitStack() as stack:
            try:
                f = Fixture(tmp, mpm, stack)
            except Exception:  # noqa: BLE001
                results.failed += 1
                print(f"FAIL {mpm}.setup: {traceback.format_exc()}", flush=True)
                return
            for case in MPM_CASES:
                results.run(f"{mpm}.{case.__name__}", case, f)
            if results.failed:
                print(f"--- {mpm} error.log (tail) ---\n{f.httpd.log()[-4000:]}", flush=True)


# ---- directive checks (apache2 -t) -----------------------------------------------------------

CONFIG_CASES = [
    # (name, directives inside <Location /x>, or at server level when prefixed "server:",
    #  expect success, text the error must contain)
    ("timeout_seconds_accepted", "JwtAuthzTimeout 3", True, None),
    ("timeout_ms_accepted", "JwtAuthzTimeout 250ms", True, None),
    ("timeout_zero_refused", "JwtAuthzTimeout 0", False, "JwtAuthzTimeout"),
    ("timeout_garbage_refused", "JwtAuthzTimeout soon", False, "is not a time"),
    ("timeout_past_ceiling_refused", "JwtAuthzTimeout 61", False, "outside"),
    ("prefix_only_slashes_refused", "JwtAuthzResourcePrefix //", False, "may not be empty"),
    ("socket_too_long_refused", "JwtAuthzSocket /" + "s" * 120, False, "longer than"),
    ("require_claim_without_value_refused", "Require jwtauthz-claim groups", False,
     "claim name and at least one value"),
    ("require_claim_with_values_accepted",
     'AuthType jwtauthz\nRequire jwtauthz-claim groups admin "power users"', True, None),
    ("server_level_directives_accepted",
     "server:JwtAuthzSocket /run/jwtauthz/jwtauthz.sock\nJwtAuthzTimeout 1500ms\n"
     "JwtAuthzResourcePrefix arn:aws:execute-api:eu-west-1:123:abc/prod", True, None),
]


def run_config_cases(results):
    with tempfile.TemporaryDirectory(prefix="jwtauthz-e2e-apache-conf-") as d:
        tmp = Path(d)
        for name, body, ok, text in CONFIG_CASES:
            if body.startswith("server:"):
                site = body[len("server:"):]
            else:
                site = f'<Location "/x">\n{body}\n</Location>'
            httpd = apache.Apache(tmp / name, "event", module_path(), site)
            httpd._prepare_tree()

            def case(httpd=httpd, ok=ok, text=text):
                rc, out = apache.config_test(httpd.config_text(apache.free_port()), httpd.dir)
                check((rc == 0) == ok, f"apache2 -t exit {rc}, want {'0' if ok else 'non-0'}:"
                                       f"\n{out}")
                if text:
                    check(text in out, f"{text!r} not in:\n{out}")

            results.run(f"config.{name}", case)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpm", default="all", choices=("all",) + apache.MPMS)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--config-only", action="store_true")
    group.add_argument("--no-config", action="store_true")
    args = ap.parse_args()

    # A ctest timeout sends SIGTERM: unwind through the ExitStacks so nothing is left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = Results()
    if not module_path().exists():
        print(f"FAIL setup: {module_path()} not built")
        results.failed += 1
    else:
        if not args.no_config:
            run_config_cases(results)
        if not args.config_only:
            for mpm in apache.MPMS if args.mpm == "all" else (args.mpm,):
                run_mpm(mpm, results)
    print(f"{results.passed} passed, {results.failed} failed", flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
