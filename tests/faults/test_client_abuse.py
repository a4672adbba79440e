#!/usr/bin/python3
"""Clients that misbehave, and one that does not. 1,000 connections at once (each answered,
twice, on its own connection); slow writers sending one byte a second (cut off at the frame read
timeout, holding nobody up); clients that vanish mid-frame (closed, reset, or after half a
header: no descriptor kept); clients that pipeline without ever reading (the daemon stops reading
them at its high-water mark, its memory stays bounded, and every request sent is answered, in
order, once they read). Throughout, a well-behaved libjwtauthz client (fault_client, its own
process) keeps its latency: p99 during each abuse <= max(5 x p99 before, 50 ms), both printed.
Run alone: /usr/bin/python3 test_client_abuse.py [CASE ...]."""

import json
import selectors
import threading
import socket
import struct
import time

import faults
from faults import Prober, check_p99_kept, probe_latency, raise_nofile, rss_kb, unix_fd_count
from common import (Daemon, Idp, Suite, arn, check, expect, frame, is_closed, recv_frame,
                    request_token, wait_until)

suite = Suite("client_abuse")
CONNECTIONS = 1000
SLOW_WRITERS = 50
# daemon/loop.h LOOP_FRAME_READ_TIMEOUT_MS: a started frame must be finished within this.
FRAME_READ_TIMEOUT_S = 10.0
# Checked every LOOP_TICK_MS (100 ms); a second of slack for a busy box.
FRAME_TIMEOUT_SLACK_S = 1.5
# Connections that vanish, paced: a churn a busy host sees, not a connect flood (which measures
# how this box shares its 2 cores with the Python flooder more than the daemon).
VANISHERS = 4000
VANISH_RATE_PER_S = 2000
# A connection's pools and buffers are a few KiB: a leak of one per vanished client would show
# as several MiB.
VANISH_RSS_KB = 2 * 1024
NON_READERS = 20
# daemon/loop.h LOOP_OUT_HIGH_WATER_BYTES, proto/limits.h PROTO_MAX_REPLY_BYTES: what a connection
# that never reads can make the daemon hold (replies, and at most one frame read ahead of them).
OUT_HIGH_WATER = 64 * 1024
MAX_REPLY = 256 * 1024
PER_NON_READER_BOUND = OUT_HIGH_WATER + MAX_REPLY + 64 * 1024
RSS_SLACK_KB = 16 * 1024
PROBE_S = 3.0
# How long the 1,000 connections stay busy while the well-behaved client is measured.
BUSY_S = 4.0


class Ctx:
    pass


def setup(s):
    # One descriptor per connection in this process and in the daemon (which inherits it).
    c = Ctx()
    c.nofile = raise_nofile(CONNECTIONS * 2 + 256)
    c.keys = s.keys
    c.mint = faults.Minter(s.keys)
    c.idp = Idp(s, s.keys)
    c.d = Daemon(s, issuers=[c.idp.issuer_conf()], env=faults.rss_env()).start()
    c.d.wait_keys(c.idp.issuer)
    c.token = c.idp.token()
    expect(request_token(c.d, c.token), "ALLOW")
    c.before = probe_latency(suite, c.d, c.token, arn(), PROBE_S)
    print(f"# baseline: p50 {c.before['p50_us'] / 1000:.2f} ms, p99 "
          f"{c.before['p99_us'] / 1000:.2f} ms over {c.before['calls']} calls", flush=True)
    c.fds0 = unix_fd_count(c.d.proc.pid)
    return c


def req(c, i=None, token=None):
    r = {"type": "TOKEN", "methodArn": arn(), "authorizationToken": "Bearer " + (token or c.token)}
    if i is not None:
        r["id"] = str(i)
    return frame(r)


def wait_fds_back(c, what):
    """The daemon's Unix sockets return to what it had before the case (connections all
    closed)."""
    pid = c.d.proc.pid
    wait_until(lambda: unix_fd_count(pid) <= c.fds0, 15, interval=0.1,
               what=f"{what}: daemon Unix sockets back to {c.fds0} (now {unix_fd_count(pid)})")


class Multi:
    """Many non-blocking connections driven by one selector: send a frame on each, collect one
    reply per connection."""

    def __init__(self, path, n):
        self.sel = selectors.DefaultSelector()
        self.socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(path)  # blocking connect: the backlog may be full for a moment
            s.setblocking(False)
            self.socks.append(s)

    def round(self, payload_of, timeout=60.0):
        """Sends payload_of(i) on connection i and returns the replies, by connection."""
        out = {}
        pending = {}
        for i, s in enumerate(self.socks):
            pending[s] = [payload_of(i), b"", i]
            self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for key, ev in self.sel.select(timeout=1.0):
                s = key.fileobj
                st = pending.get(s)
                if st is None:
                    continue
                if ev & selectors.EVENT_WRITE and st[0]:
                    n = s.send(st[0])
                    st[0] = st[0][n:]
                    if not st[0]:
                        self.sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    data = s.recv(65536)
                    if not data:
                        raise faults.Failure(f"connection {st[2]} closed by the daemon")
                    st[1] += data
                    if len(st[1]) >= 4:
                        (n,) = struct.unpack(">I", st[1][:4])
                        if len(st[1]) >= 4 + n:
                            out[st[2]] = json.loads(st[1][4:4 + n])
                            self.sel.unregister(s)
                            del pending[s]
        for s in pending:
            self.sel.unregister(s)
        check(not pending, f"{len(pending)} of {len(self.socks)} connections got no reply "
              f"within {timeout:.0f}s")
        return out

    def paced(self, payload_of, rate_per_s, seconds):
        """Sends payload_of(i, k) on connection i in turn, rate_per_s in all, for seconds, one
        request in flight per connection; returns {(i, k): reply}."""
        out, inflight, buf = {}, {}, {}
        n = len(self.socks)
        fd_index = {s.fileno(): i for i, s in enumerate(self.socks)}
        for s in self.socks:
            self.sel.register(s, selectors.EVENT_READ)
        t0 = time.monotonic()
        sent = 0
        while True:
            now = time.monotonic()
            due = min(int((now - t0) * rate_per_s), int(seconds * rate_per_s))
            while sent < due:
                i = sent % n
                if i not in inflight:
                    k = sent // n
                    self.socks[i].sendall(payload_of(i, k))
                    inflight[i] = k
                sent += 1
            if sent >= int(seconds * rate_per_s) and not inflight:
                break
            check(now - t0 < seconds + 30, f"{len(inflight)} replies missing")
            for key, _ in self.sel.select(timeout=0.01):
                i = fd_index[key.fileobj.fileno()]
                data = key.fileobj.recv(65536)
                check(data, f"connection {i} closed by the daemon")
                buf[i] = buf.get(i, b"") + data
                while len(buf[i]) >= 4:
                    (ln,) = struct.unpack(">I", buf[i][:4])
                    if len(buf[i]) < 4 + ln:
                        break
                    out[(i, inflight.pop(i))] = json.loads(buf[i][4:4 + ln])
                    buf[i] = buf[i][4 + ln:]
        for s in self.socks:
            self.sel.unregister(s)
        return out

    def close(self):
        for s in self.socks:
            s.close()
        self.sel.close()


@suite.case
def thousand_concurrent_connections(c):
    """1,000 connections open at once, each answered on its own (a burst of 1,000 requests, then
    a second round); then all 1,000 stay open and busy, each asking about once a second as a web
    server worker does, while the well-behaved client is measured."""
    check(c.nofile >= CONNECTIONS * 2, f"RLIMIT_NOFILE {c.nofile} too low for the case")
    tokens = [c.mint.token("es256-1", iss=c.idp.issuer, sub=f"conn-{i}")
              for i in range(CONNECTIONS)]
    t0 = time.monotonic()
    m = Multi(c.d.sock, CONNECTIONS)
    t_conn = time.monotonic() - t0
    try:
        burst = []
        for rnd in range(2):
            t1 = time.monotonic()
            replies = m.round(lambda i: req(c, f"{rnd}-{i}", tokens[i]))
            burst.append(time.monotonic() - t1)
            bad = [(i, r) for i, r in replies.items()
                   if (r.get("verdict"), r.get("id"), r.get("principalId"))
                   != ("ALLOW", f"{rnd}-{i}", f"conn-{i}")]
            check(len(replies) == CONNECTIONS and not bad,
                  f"round {rnd}: {len(replies)} replies, wrong: {bad[:3]}")
        peak_fds = unix_fd_count(c.d.proc.pid)
        probe = Prober(suite, c.d, c.token, arn())
        # Busy: every connection asks again about once a second, staggered, for BUSY_S.
        busy = m.paced(lambda i, k: req(c, f"b{k}-{i}", tokens[i]), CONNECTIONS, BUSY_S)
        during = probe.stop()
        bad = [(i, r) for (i, k), r in busy.items()
               if (r.get("verdict"), r.get("id")) != ("ALLOW", f"b{k}-{i}")]
        check(not bad, f"busy phase: wrong replies {bad[:3]}")
    finally:
        m.close()
    print(f"# {CONNECTIONS} connections open in {t_conn:.2f}s; bursts of {CONNECTIONS} requests "
          f"answered in {burst[0]:.2f}s and {burst[1]:.2f}s; {len(busy)} requests over "
          f"{BUSY_S:.0f}s with all open; daemon descriptors {c.fds0} -> {peak_fds}", flush=True)
    check(peak_fds >= c.fds0 + CONNECTIONS, f"the daemon held {peak_fds} descriptors: were the "
          f"{CONNECTIONS} connections really concurrent?")
    check_p99_kept("1000 connections", c.before, during)
    wait_fds_back(c, "1000 connections")


@suite.case
def slow_writers_cut_off_at_frame_read_timeout(c):
    body = req(c)
    socks = [faults.raw_connect(c.d.sock) for _ in range(SLOW_WRITERS)]
    for s in socks:
        s.setblocking(False)
    probe = Prober(suite, c.d, c.token, arn())
    t0 = time.monotonic()
    closed_at = {}
    pos = 0
    try:
        # One byte a second on each; every 50 ms a look for connections the daemon closed.
        while len(closed_at) < len(socks) and time.monotonic() - t0 < FRAME_READ_TIMEOUT_S + 5:
            send_now = time.monotonic() >= t0 + pos
            for i, s in enumerate(socks):
                if i in closed_at:
                    continue
                try:
                    if s.recv(1) == b"":
                        closed_at[i] = time.monotonic() - t0
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed_at[i] = time.monotonic() - t0
                    continue
                if send_now:
                    try:
                        s.send(body[pos:pos + 1])
                    except OSError:
                        closed_at[i] = time.monotonic() - t0
            pos += 1 if send_now else 0
            time.sleep(0.05)
    finally:
        for s in socks:
            s.close()
    during = probe.stop()
    check(pos < len(body), "the frame was finished: the writers were not slow enough")
    check(len(closed_at) == len(socks), f"{len(socks) - len(closed_at)} slow writers still "
          f"connected after {time.monotonic() - t0:.0f}s")
    first, last = min(closed_at.values()), max(closed_at.values())
    print(f"# {SLOW_WRITERS} slow writers (1 byte/s) cut off after {first:.1f}-{last:.1f}s "
          f"({pos} bytes of {len(body)} sent)", flush=True)
    check(FRAME_READ_TIMEOUT_S - 0.5 <= first and last <= FRAME_READ_TIMEOUT_S +
          FRAME_TIMEOUT_SLACK_S, f"cut off after {first:.1f}-{last:.1f}s, want "
          f"~{FRAME_READ_TIMEOUT_S:.0f}s")
    check_p99_kept("slow writers", c.before, during)
    wait_fds_back(c, "slow writers")


@suite.case
def clients_vanishing_mid_frame_leave_nothing_behind(c):
    pid = c.d.proc.pid
    body = req(c)
    kinds = {"close_mid_body": 0, "reset_mid_body": 0, "close_mid_header": 0,
             "close_after_request": 0}

    def vanish(n):
        t0 = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, t0 + i / VANISH_RATE_PER_S - time.monotonic()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(c.d.sock)
            kind = list(kinds)[i % len(kinds)]
            if kind == "close_mid_header":
                s.sendall(body[:2])
            elif kind == "close_after_request":
                s.sendall(body)  # gone before its reply is written
            else:
                s.sendall(body[:len(body) // 2])
            if kind == "reset_mid_body":
                # SO_LINGER 0: on AF_UNIX no RST, but the peer vanishes with unread data.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            kinds[kind] += 1

    # A first round brings the allocators to their working size (and, in an ASan build, fills
    # its 4 MiB quarantine with the buffers freed: ~1 KiB a connection); the measured round
    # must then cost nothing.
    vanish(VANISHERS)
    wait_fds_back(c, "vanishing clients, first round")
    rss0 = rss_kb(pid)
    probe = Prober(suite, c.d, c.token, arn())
    vanish(VANISHERS)
    during = probe.stop()
    wait_fds_back(c, "vanishing clients")
    rss1 = rss_kb(pid)
    print(f"# {sum(kinds.values())} vanishing clients {kinds}; daemon RSS {rss0} -> {rss1} kB "
          f"over the last {VANISHERS}", flush=True)
    check(rss1 - rss0 <= VANISH_RSS_KB, f"RSS grew {rss1 - rss0} kB for {VANISHERS} vanished "
          "clients")
    expect(request_token(c.d, c.token), "ALLOW")
    check_p99_kept("vanishing clients", c.before, during)


@suite.case
def never_reading_clients_stop_being_read_memory_bounded(c):
    pid = c.d.proc.pid
    rss0 = rss_kb(pid)
    probe = Prober(suite, c.d, c.token, arn())
    socks, sent_frames, sent_bytes = [], [], []
    frames = [req(c, i) for i in range(4096)]
    for _ in range(NON_READERS):
        s = faults.raw_connect(c.d.sock)
        s.setblocking(False)
        socks.append(s)
        sent_frames.append(0)
        sent_bytes.append(0)

    partial = [b""] * NON_READERS

    def push(seconds):
        """Sends frames while the sockets take them, for seconds. A frame cut short by EAGAIN is
        continued first next time; sent_frames counts whole frames only."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            progressed = False
            for i, s in enumerate(socks):
                data = partial[i] or frames[sent_frames[i] % len(frames)]
                try:
                    n = s.send(data)
                except BlockingIOError:
                    continue
                progressed = True
                sent_bytes[i] += n
                if n == len(data):
                    partial[i] = b""
                    sent_frames[i] += 1
                else:
                    partial[i] = data[n:]
            if not progressed:
                time.sleep(0.01)

    push(3.0)
    plateau0 = sum(sent_bytes)
    rss1 = rss_kb(pid)
    push(2.0)
    plateau1 = sum(sent_bytes)
    rss2 = rss_kb(pid)
    growth_kb = max(rss1, rss2) - rss0
    bound_kb = NON_READERS * PER_NON_READER_BOUND // 1024 + RSS_SLACK_KB
    print(f"# {NON_READERS} clients that never read: {plateau0 // 1024} KiB taken in 3 s, "
          f"{(plateau1 - plateau0) // 1024} KiB in the next 2 s; daemon RSS {rss0} -> {rss1} -> "
          f"{rss2} kB (+{growth_kb} kB, bound {bound_kb} kB)", flush=True)
    check(plateau1 - plateau0 <= NON_READERS * 64 * 1024,
          f"the daemon kept reading: {plateau1 - plateau0} more bytes taken")
    check(growth_kb <= bound_kb, f"RSS grew {growth_kb} kB with {NON_READERS} non-readers")
    expect(request_token(c.d, c.token), "ALLOW")
    # They read at last: every whole frame sent is answered, in order, nothing lost.
    total = 0
    for i, s in enumerate(socks):
        s.setblocking(True)
        s.settimeout(30)
        # The rest of a frame cut short goes as the daemon makes room, while we read.
        rest = threading.Thread(target=s.sendall, args=(partial[i],), daemon=True)
        rest.start()
        expected = sent_frames[i] + (1 if partial[i] else 0)
        for k in range(expected):
            r = recv_frame(s)
            if r.get("id") != str(k % len(frames)) or r.get("verdict") != "ALLOW":
                raise faults.Failure(f"client {i} reply {k}: {r}")
        rest.join(10)
        total += expected
        s.shutdown(socket.SHUT_WR)
        check(is_closed(s, 10), f"client {i}: more replies than requests")
        s.close()
    during = probe.stop()
    print(f"# ... then read {total} replies, one per request sent, in order", flush=True)
    check_p99_kept("never-reading clients", c.before, during)
    wait_fds_back(c, "never-reading clients")


if __name__ == "__main__":
    suite.main(setup)
