#!/usr/bin/python3
"""jwtauthzd killed with SIGKILL under load. Web server workers (fault_client: threads of
libjwtauthz clients, as mod_jwtauthz's workers are) get ERROR 503 at once, never a hang past
their timeout and never ALLOW for a forged token; the socket files left behind do not stop the
restart, even with clients knocking on them; every worker recovers on its own, on the connection
it opens next. jwtauthzctl says 3 (no daemon) at once meanwhile. A raw client with a pipeline in
flight sees the connection end, not silence. Run alone: /usr/bin/python3 test_crash.py [CASE]."""

import os
import signal
import time

from faults import FaultClient
from common import (CTL_BIN, Daemon, Idp, Suite, arn, check, expect, frame, is_closed, mint,
                    raw_connect, request_token, run_tool)

suite = Suite("crash")
CLIENT_TIMEOUT_MS = 1000
# "At once": a refused connect is immediate; allow the box's noise, far below the timeout.
AT_ONCE_S = 0.5
OUTAGE_S = 2.0
THREADS = 4


class Ctx:
    pass


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.idp = Idp(s, s.keys)
    return c


def sigkill(d):
    """SIGKILL, reaped; the Daemon object is left ready for start() on the same paths."""
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.proc = None
    d._log.close()


@suite.case
def sigkill_under_load_clients_fail_fast_and_recover(c):
    d = Daemon(suite, issuers=[c.idp.issuer_conf()]).start()
    d.wait_keys(c.idp.issuer)
    good = c.idp.token()
    forged = mint.tamper(c.idp.token(), "signature")
    expect(request_token(d, good), "ALLOW")
    run_s = 4.0 + OUTAGE_S + 4.0
    fc = FaultClient(suite, d.sock, good, arn(), bad=forged, threads=THREADS,
                     timeout_ms=CLIENT_TIMEOUT_MS, duration_s=run_s, pause_us=500).start()
    time.sleep(3.0)
    t_kill = time.time()
    sigkill(d)
    check(os.path.exists(d.sock) and os.path.exists(d.admin_sock),
          "SIGKILL left no socket file: the case tests nothing")
    # jwtauthzctl against the dead daemon: exit 3, at once.
    t0 = time.monotonic()
    p = run_tool([CTL_BIN, "-s", d.sock, "check", "--token", "Bearer " + good,
                  "--resource", arn()])
    ctl_s = time.monotonic() - t0
    check(p.returncode == 3 and "ALLOW" not in p.stdout, f"ctl: {p.returncode} {p.stdout!r}")
    check(ctl_s < AT_ONCE_S + 0.5, f"jwtauthzctl took {ctl_s:.2f}s with no daemon")
    time.sleep(OUTAGE_S)
    t_start = time.time()
    d.start()  # over the stale socket files, with the workers knocking on them
    t_up = time.time()
    changes, s = fc.result()
    print(f"# {s['calls']} calls: good {s['good']}, forged {s['bad']}; max call "
          f"{s['max_us'] / 1000:.1f} ms, p99 {s['p99_us'] / 1000:.2f} ms; restart took "
          f"{t_up - t_start:.2f}s; ctl {ctl_s * 1000:.0f} ms", flush=True)
    check(s["bad_allowed"] == 0, f"ALLOW for a forged token: {s}")
    check(s["max_us"] <= CLIENT_TIMEOUT_MS * 1000 + 500_000,
          f"a call took {s['max_us'] / 1000:.0f} ms, past the {CLIENT_TIMEOUT_MS} ms timeout")
    check(s["good"]["DENY"] == 0 and s["good"]["UNAUTHORIZED"] == 0, f"good token: {s['good']}")
    down_lat, up_lat = [], []
    for th in range(THREADS):
        mine = [e for e in changes if e["thread"] == th]
        down = [e for e in mine if e["at"] >= t_kill and e["verdict"] == "ERROR"]
        check(down, f"thread {th} never saw the daemon go: {mine}")
        check(down[0]["status"] == 503 and down[0]["reason"] in (
              "daemon_unavailable", "daemon_timeout"), f"thread {th}: {down[0]}")
        down_lat.append(down[0]["at"] - t_kill)
        up = [e for e in mine if e["at"] >= down[0]["at"] and e["verdict"] == "ALLOW"]
        check(up, f"thread {th} never recovered: {mine}")
        check(up[0]["at"] >= t_start, f"thread {th}: ALLOW while the daemon was down: {up[0]}")
        up_lat.append(up[0]["at"] - t_up)
        check(mine[-1]["verdict"] == "ALLOW", f"thread {th} ended on {mine[-1]}")
    print(f"# first ERROR after the kill: max {max(down_lat) * 1000:.0f} ms; first ALLOW after "
          f"the restart was ready: max {max(up_lat) * 1000:.0f} ms", flush=True)
    check(max(down_lat) < AT_ONCE_S, f"ERROR came {max(down_lat):.2f}s after the kill")
    check(max(up_lat) < 1.0, f"a worker recovered {max(up_lat):.2f}s after the restart")
    check(s["good"]["ERROR"] > 0, "no ERROR counted during the outage")
    d.cleanup()


@suite.case
def sigkill_with_pipeline_in_flight_ends_the_connection(c):
    slow_iss = c.idp.issuer + "/slow-kill"
    c.idp.server.publish("slowkill.jwks.json", c.keys.jwks("es256-1"))
    d = Daemon(suite, issuers=[c.idp.issuer_conf(), c.idp.uri_issuer_conf(
        slow_iss, "slow/slowkill.jwks.json?delay=8")]).start()
    d.wait_keys(c.idp.issuer)
    s = raw_connect(d.sock, timeout=10)
    # A parked request (its issuer's keys take 8 s) holds the pipeline behind it.
    s.sendall(frame({"type": "TOKEN", "id": "parked", "methodArn": arn(),
                     "authorizationToken": "Bearer " + c.keys.token("es256-1", iss=slow_iss)}))
    s.sendall(b"".join(frame({"type": "TOKEN", "id": str(i), "methodArn": arn(),
                              "authorizationToken": "Bearer " + c.idp.token()})
                       for i in range(20)))
    time.sleep(0.3)
    t0 = time.monotonic()
    sigkill(d)
    check(is_closed(s, timeout=5), "the connection stayed open after SIGKILL")
    took = time.monotonic() - t0
    check(took < AT_ONCE_S, f"the client learnt of the kill after {took:.2f}s")
    s.close()
    # Twice more in a row: each restart finds the previous one's socket files.
    for _ in range(2):
        d.start()
        expect(request_token(d, c.idp.token()), "ALLOW")
        sigkill(d)
    d.start()
    d.wait_keys(c.idp.issuer)
    expect(request_token(d, c.idp.token()), "ALLOW")
    d.cleanup()


if __name__ == "__main__":
    suite.main(setup)
