#!/usr/bin/python3
"""The wire protocol as an attacker or a broken client speaks it: zero-length, oversized,
truncated, non-JSON and non-object frames get one error reply where possible and close that
connection only (a bystander connection opened before keeps working, on both sockets); the frame
cap is walked (limit accepted, limit + 1 refused); pipelined frames in one write are answered in
order with their ids echoed; a frame dribbled a byte at a time is still one frame. Run alone:
/usr/bin/python3 test_frames.py [CASE ...]."""

import json
import socket
import time

from common import (Daemon, Idp, Suite, arn, check, expect, frame, header, is_closed, mint,
                    raw_connect, read_frames, recv_frame)

suite = Suite("frames")
MAX_FRAME = 8192


class Ctx:
    pass


def setup(s):
    c = Ctx()
    c.idp = Idp(s, s.keys)
    c.d = Daemon(s, issuers=[c.idp.issuer_conf()],
                 extra={"max_frame_bytes": MAX_FRAME, "max_token_bytes": 4096}).start()
    c.d.wait_keys(c.idp.issuer)
    return c


def token_req(c, **extra):
    req = {"type": "TOKEN", "authorizationToken": "Bearer " + c.idp.token(), "methodArn": arn()}
    req.update(extra)
    return req


def connect(c, admin=False):
    return raw_connect(c.d.admin_sock if admin else c.d.sock)


def assert_bystander_works(c, bystander, admin=False):
    """A connection opened before the bad one still answers, and a new one does too."""
    for s in (bystander, connect(c, admin)):
        s.sendall(frame({"cmd": "stats"} if admin else token_req(c)))
        r = recv_frame(s)
        if admin:
            check(r.get("ok") is True, f"admin connection broken after a bad frame: {r}")
        else:
            expect(r, "ALLOW")
        s.close()


def bad_frame_case(data, admin, want):
    """want: "bad_frame" / "bad_request" (an ERROR reply, then EOF), or None (EOF, no reply)."""
    def run(c):
        bystander = connect(c, admin)
        victim = connect(c, admin)
        victim.sendall(data)
        if want is None:
            victim.shutdown(socket.SHUT_WR)
        else:
            r = recv_frame(victim)
            if want == "bad_frame" or not admin:
                expect(r, "ERROR", 500, reason=want)
            else:
                check(r.get("ok") is False and r.get("error"), f"admin error reply: {r}")
        check(is_closed(victim), "the connection stayed open after a malformed frame")
        victim.close()
        assert_bystander_works(c, bystander, admin)
    return run


MALFORMED = [
    ("zero_length_frame", header(0), "bad_frame"),
    ("frame_one_byte_over_max_frame_bytes", header(MAX_FRAME + 1) + b"{" * 64, "bad_frame"),
    ("frame_declaring_4_gib", header(0xFFFFFFFF) + b"{}", "bad_frame"),
    ("frame_not_json", frame(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "bad_request"),
    ("frame_json_array", frame(b'[{"type":"TOKEN"}]'), "bad_request"),
    ("frame_json_string", frame(b'"TOKEN"'), "bad_request"),
    ("frame_object_with_trailing_garbage", frame(b'{"type":"TOKEN","methodArn":"a"} x'),
     "bad_request"),
    ("frame_two_objects", frame(b'{"cmd":"stats"}{"cmd":"stats"}'), "bad_request"),
    ("frame_invalid_utf8", frame(b'{"type":"TOKEN","methodArn":"\xc3\x28"}'), "bad_request"),
    ("frame_nested_too_deep", frame(b'{"a":' * 200 + b'1' + b'}' * 200), "bad_request"),
    ("frame_truncated_then_eof", header(100) + b'{"type":"TOKEN"', None),
    ("frame_header_truncated_then_eof", b"\x00\x00", None),
]

for _name, _data, _want in MALFORMED:
    suite.add(_name, bad_frame_case(_data, False, _want))
    suite.add("admin_" + _name, bad_frame_case(_data, True, _want))


@suite.case
def frame_exactly_max_frame_bytes_accepted(c):
    body = json.dumps(token_req(c, pad="")).encode()
    body = json.dumps(token_req(c, pad="p" * (MAX_FRAME - len(body) - 2))).encode()
    body = body + b" " * (MAX_FRAME - len(body))
    check(len(body) == MAX_FRAME, f"built {len(body)} bytes")
    with connect(c) as s:
        s.sendall(frame(body))
        expect(recv_frame(s), "ALLOW")
        # The connection is still good for the next request.
        s.sendall(frame(token_req(c)))
        expect(recv_frame(s), "ALLOW")


@suite.case
def good_frames_before_a_bad_one_are_answered_after_it_not(c):
    with connect(c) as s:
        s.sendall(frame(token_req(c, id=1)) + frame(b"not json") + frame(token_req(c, id=3)))
        first, second = read_frames(s, 2)
        expect(first, "ALLOW")
        check(first.get("id") == 1, f"id: {first}")
        expect(second, "ERROR", 500, reason="bad_request")
        check(is_closed(s), "connection open after the bad frame; the third would be answered")


@suite.case
def object_that_is_not_a_request_keeps_connection(c):
    # One JSON object the daemon cannot use: an ERROR reply that echoes the id; the framing is
    # intact, so the connection goes on.
    with connect(c) as s:
        for bad, why in (({"type": "TOKEN", "id": "a"}, "methodArn"),
                         ({"type": "LAMBDA", "methodArn": arn(), "id": "a"}, "type"),
                         ({"type": "TOKEN", "methodArn": 7, "id": "a"}, "methodArn")):
            s.sendall(frame(bad))
            r = expect(recv_frame(s), "ERROR", 500, reason="bad_request")
            check(r.get("id") == "a", f"id not echoed: {r}")
            check(why in r.get("message", ""), f"message does not name {why}: {r}")
        s.sendall(frame(token_req(c)))
        expect(recv_frame(s), "ALLOW")


@suite.case
def pipelined_frames_in_one_write_answered_in_order(c):
    good = c.idp.token()
    reqs, want = [], []
    kinds = [
        ("ALLOW", "Bearer " + good, arn()),
        ("DENY", "Bearer " + good, arn("DELETE", "/orders/1")),
        ("UNAUTHORIZED", "Bearer " + mint.tamper(good, "signature"), arn()),
        ("UNAUTHORIZED", "Basic x", arn()),
        ("ALLOW", "Bearer " + c.idp.token("es256-1"), arn()),
    ]
    for i in range(40):
        verdict, auth, resource = kinds[i % len(kinds)]
        rid = i if i % 2 else f"req-{i}"
        reqs.append(frame({"type": "TOKEN", "authorizationToken": auth, "methodArn": resource,
                           "id": rid}))
        want.append((verdict, rid))
    with connect(c) as s:
        s.sendall(b"".join(reqs))
        got = [(r.get("verdict"), r.get("id")) for r in read_frames(s, len(reqs))]
    check(got == want, f"replies out of order or ids lost: {got[:8]}... want {want[:8]}...")


@suite.case
def pipelined_admin_frames_answered_in_order(c):
    with connect(c, admin=True) as s:
        s.sendall(frame({"cmd": "stats", "id": 1}) + frame({"cmd": "nope", "id": 2}) +
                  frame({"cmd": "keys", "id": 3}))
        a, b, k = read_frames(s, 3)
    check(a.get("ok") is True and a.get("id") == 1 and "requests" in a, f"stats: {a}")
    check(b.get("ok") is False and b.get("id") == 2, f"unknown cmd: {b}")
    check(k.get("ok") is True and k.get("id") == 3 and "issuers" in k, f"keys: {k}")


@suite.case
def pipelined_frames_then_half_close_all_answered(c):
    with connect(c) as s:
        s.sendall(b"".join(frame(token_req(c, id=i)) for i in range(3)))
        s.shutdown(socket.SHUT_WR)
        got = [r.get("id") for r in read_frames(s, 3)]
        check(got == [0, 1, 2], f"ids {got}")
        check(is_closed(s), "connection not closed after the client's EOF")


@suite.case
def frame_dribbled_one_byte_at_a_time(c):
    data = frame(token_req(c, id="slow"))
    with connect(c) as s:
        for i in range(len(data)):
            s.send(data[i:i + 1])
            if i % 200 == 0:
                time.sleep(0.002)
        r = expect(recv_frame(s), "ALLOW")
        check(r.get("id") == "slow", f"id: {r}")


@suite.case
def partial_frame_does_not_block_other_connections(c):
    stalled = connect(c)
    stalled.sendall(header(500) + b'{"type":"TOKEN",')
    t0 = time.monotonic()
    with connect(c) as s:
        for _ in range(5):
            s.sendall(frame(token_req(c)))
            expect(recv_frame(s), "ALLOW")
    took = time.monotonic() - t0
    check(took < 2.0, f"5 requests took {took:.2f}s next to a stalled frame")
    # The stalled one can still finish its frame.
    stalled.sendall(b" " * (500 - len(b'{"type":"TOKEN",')))
    r = recv_frame(stalled)
    expect(r, "ERROR", 500, reason="bad_request")
    stalled.close()


@suite.case
def bad_frames_counted_in_stats(c):
    st = c.d.admin({"cmd": "stats"})
    check(st.get("bad_frames", 0) >= 6, f"bad_frames {st.get('bad_frames')}")
    check(st.get("bad_requests", 0) >= 6, f"bad_requests {st.get('bad_requests')}")


@suite.case
def daemon_alive_after_all_malformed_frames(c):
    check(c.d.proc.poll() is None, "daemon exited")
    expect(c.d.request(token_req(c)), "ALLOW")


if __name__ == "__main__":
    suite.main(setup)
