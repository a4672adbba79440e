#!/usr/bin/python3
"""The daemon's own security. Tokens never reach its log, at log_level debug, whatever path a
request takes (ALLOW, DENY, every refusal, REQUEST events with header, cookie and query tokens,
malformed frames holding a token, admin flush by token, a key fetch triggered by a token, a
reload): no payload or signature segment, no claim value unique to a token. The systemd units as
the build configures them pass `systemd-analyze verify` without a word and score an exposure of
2.0 or less in `systemd-analyze security --offline=true` (skipped where systemd-analyze is
absent). The admin socket's SO_PEERCRED check is tests/integration/test_lifecycle.py's
admin_socket_refuses_non_admin_peer. Run alone: /usr/bin/python3 test_security.py [CASE ...]."""

import hashlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import faults
from common import (BUILD, DAEMON_BIN, SRC, Daemon, Failure, Idp, Suite, arn, check, expect,
                    frame, header, is_closed, mint, raw_connect, recv_frame, request_token,
                    wait_until)

suite = Suite("security")
COOKIE = "access_token"
QUERY = "access_token"
MAX_EXPOSURE = 2.0
UNITS = ("jwtauthz.service", "jwtauthz.socket", "jwtauthz-admin.socket")


class Ctx:
    pass


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.mint = faults.Minter(s.keys)
    c.idp = Idp(s, s.keys)
    return c


def secrets_of(token):
    """What of a token must never be logged: its payload and signature segments (the header
    segment is shared by every token of a key, and its kid may be logged by name), and the
    unique claim value inside the payload."""
    parts = token.split(".")
    found = [p for p in parts[1:] if len(p) >= 8]
    try:
        payload = mint.b64url_decode(parts[1]).decode(errors="replace")
    except (IndexError, ValueError):
        return found
    m = re.search(r'"jti":\s*"([^"]+)"', payload)
    if m:
        found.append(m.group(1))
    return found


def leaks(log, tokens):
    """Every (token, secret) pair whose secret appears in the log."""
    return [(t[:40], s) for t in tokens for s in secrets_of(t) if s in log]


@suite.case
def tokens_never_in_log_at_debug(c):
    d = Daemon(suite, issuers=[c.idp.issuer_conf(jwks_min_refresh=1)],
               extra={"log_level": "debug", "token_cookie": COOKIE, "token_query": QUERY}).start()
    try:
        d.wait_keys(c.idp.issuer)
        iss = c.idp.issuer
        used = []

        def tok(*a, **kw):
            t = c.mint.token(*a, iss=iss, **kw)
            used.append(t)
            return t

        def send(t, verdict, reason=None, method_arn=None):
            expect(request_token(d, t, method_arn), verdict, reason=reason)
        # Decisions: ALLOW, cached ALLOW, DENY, and refusals of every common kind.
        expired = tok(exp_in=-120)
        t = tok()
        send(t, "ALLOW")
        send(t, "ALLOW")
        send(tok(), "DENY", method_arn=arn("DELETE", "/orders/1"))
        for bad, reason in ((mint.tamper(tok(), "signature"), "bad_signature"),
                            (expired, "token_expired"),
                            (tok(aud="api://elsewhere"), "audience_mismatch"),
                            (mint.tamper(tok(), "header-alg-none"), "alg_none"),
                            (mint.tamper(tok(), "payload"), "bad_signature")):
            used.append(bad)
            send(bad, "UNAUTHORIZED", reason)
        # A kid nobody published: the daemon fetches the key set (debug lines) and refuses.
        time.sleep(1.1)  # past jwks_min_refresh since the start-up fetch
        send(tok("rs256-2"), "UNAUTHORIZED", "unknown_kid")
        # Not a JWS at all: a unique string where the token goes.
        junk = "not.a-jwt." + uuid.uuid4().hex
        used.append(junk)
        r = d.token_request("Bearer " + junk, arn())
        check(r.get("verdict") == "UNAUTHORIZED", f"{r}")
        # REQUEST events: the Authorization header, the cookie, the query parameter.
        for where in ("header", "cookie", "query"):
            t = tok()
            ev = {"type": "REQUEST", "methodArn": arn(), "httpMethod": "GET",
                  "path": "/orders/42", "headers": {}, "queryStringParameters": {}}
            if where == "header":
                ev["headers"]["Authorization"] = "Bearer " + t
            elif where == "cookie":
                ev["headers"]["Cookie"] = f"{COOKIE}={t}"
            else:
                ev["queryStringParameters"][QUERY] = t
            expect(d.request(ev), "ALLOW")
        # Malformed frames that carry a token: not JSON, an array, too long; each closes its
        # connection after an error reply.
        for body in (b"{\"authorizationToken\":\"Bearer " + tok().encode() + b"\"",
                     b"[\"Bearer " + tok().encode() + b"\"]"):
            with raw_connect(d.sock) as s:
                s.sendall(frame(body))
                expect(recv_frame(s), "ERROR", 500)
                check(is_closed(s), "a malformed frame left its connection open")
        with raw_connect(d.sock) as s:
            s.sendall(header(70000) + tok().encode())
            expect(recv_frame(s), "ERROR", 500, reason="bad_frame")
        # Admin: flush by token (the token travels on the admin socket), by principal, stats.
        t = tok()
        send(t, "ALLOW")
        check(d.admin_ok({"cmd": "flush", "token": t})["flushed"] == 1, "flush by token")
        d.admin_ok({"cmd": "flush", "principal": "user-123"})
        d.admin_ok({"cmd": "stats"})
        # A reload, then one more decision on the new generation.
        d.send_signal(signal.SIGHUP)
        wait_until(lambda: "config generation 2" in d.log(), 10, what="the reload")
        send(tok(), "ALLOW")
        d.stop()
        log = d.log()
        check(log.count("jwks: fetching") >= 3 and "config generation 2" in log,
              f"the log does not hold the debug lines the case relies on:\n{log[-2000:]}")
        found = leaks(log, used)
        lines = len(log.splitlines())
        print(f"# {len(used)} tokens through every path; daemon log {lines} lines at debug, "
              f"{len(found)} token segments or claims in it", flush=True)
        check(not found, f"tokens in the log: {found[:3]}")
        # What the log says instead: one line per decision naming the token by the first 8 bytes
        # of its SHA-256, so an operator can follow one token's refusals.
        tid = hashlib.sha256(expired.encode()).hexdigest()[:16]
        check(f"decision UNAUTHORIZED token_expired token {tid} resource" in log,
              f"no decision line names the expired token as {tid}:\n{log[-2000:]}")
        check("decision ALLOW cached token " in log and "decision DENY token " in log and
              "decision UNAUTHORIZED unknown_kid token " in log,
              f"decision lines missing:\n{log[-2000:]}")
        # The search itself finds what it looks for: a log line quoting a token would fail.
        check(leaks(log + "\nrefused token " + used[0] + "\n", used[:1]),
              "the leak search cannot find a token planted in the log")
    finally:
        d.cleanup()


def configured_units(dest):
    """The units as this build configured them (build/systemd/), with ExecStart pointing at the
    built daemon: `verify` checks that the program exists. Without a configured build, the
    templates are configured here as CMake does for prefix /usr."""
    built = BUILD / "systemd"
    subst = {"JWTAUTHZ_SBINDIR": str(DAEMON_BIN.parent),
             "JWTAUTHZ_CONF_FILE": "/etc/jwtauthz/jwtauthz.conf",
             "JWTAUTHZ_DOCDIR": "/usr/share/doc/jwtauthz",
             "JWTAUTHZ_UNIT_CONFIGDIR": "ConfigurationDirectory=jwtauthz"}
    for unit in UNITS:
        if (built / unit).exists():
            text = (built / unit).read_text()
            text = re.sub(r"^ExecStart=\S*/jwtauthzd ", f"ExecStart={DAEMON_BIN} ", text,
                          flags=re.M)
        else:
            text = (SRC / "systemd" / (unit + ".in")).read_text()
            text = re.sub(r"@(\w+)@", lambda m: subst[m.group(1)], text)
        check(not re.search(r"@JWTAUTHZ_\w+@", text), f"{unit}: unsubstituted variable")
        (dest / unit).write_text(text)
    return dest


@suite.case
def systemd_units_verify_clean_and_exposure_at_most_2(c):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("# systemd_units_verify_clean_and_exposure_at_most_2: skipped (no systemd-analyze)")
        return
    dest = configured_units(Path(tempfile.mkdtemp(prefix="jwtauthz-units-",
                                                  dir=suite.tmp("jwtauthz-units-"))))
    check(f"ExecStart={DAEMON_BIN} " in (dest / "jwtauthz.service").read_text(),
          "ExecStart not pointed at the built daemon")
    v = subprocess.run([tool, "verify", *UNITS], cwd=dest, capture_output=True, text=True,
                       timeout=60)
    check(v.returncode == 0 and not v.stdout.strip() and not v.stderr.strip(),
          f"systemd-analyze verify: exit {v.returncode}\n{v.stdout}{v.stderr}")
    s = subprocess.run([tool, "security", "--offline=true", "jwtauthz.service"], cwd=dest,
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for jwtauthz\.service: ([0-9.]+) (\w+)", s.stdout)
    if m is None:
        raise Failure(f"no exposure level in:\n{s.stdout[-1500:]}{s.stderr[-500:]}")
    exposure = float(m.group(1))
    print(f"# systemd-analyze verify: clean; security --offline=true: exposure {exposure} "
          f"{m.group(2)}", flush=True)
    check(exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}")


if __name__ == "__main__":
    suite.main(setup)
