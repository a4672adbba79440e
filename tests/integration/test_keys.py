#!/usr/bin/python3
"""Key sets over real HTTPS: discovery, conditional refresh, rotation (a new kid is fetched on
sight, old tokens stay valid while their key is published, and a cached ALLOW dies with its key),
a flood of made-up kids not becoming a flood of fetches, key sets that are partly or wholly
unusable, an IdP that is down (cached and persisted keys keep working, bad tokens never pass), an
IdP that is slow (nobody else waits), and issuers that never get keys (ERROR 503, never ALLOW).
Run alone: /usr/bin/python3 test_keys.py [CASE ...]."""

import time

from cryptography.hazmat.primitives.asymmetric import rsa

from common import (KEY_WAIT_S, Daemon, Idp, Suite, arn, check, expect, frame, mint, parallel,
                    raw_connect, read_frames, recv_frame, request_token, wait_until)

suite = Suite("keys")
MAIN_KIDS = ("rs256-1", "es256-1")
SLOW_DELAY_S = 3.0


class Ctx:
    pass


# Issuers whose key endpoint never yields a usable set: (case suffix, jwks path, extra conf).
NO_KEYS = [
    ("http_500", "status500", {}),
    ("wrong_ca", "jwks.json", {"ca_file": "OTHER_CA"}),
    ("html_body", "garbage", {}),
    ("truncated_json", "truncated", {}),
    ("empty_body", "empty", {}),
    ("over_size_cap", "huge", {}),
    ("redirect_loop", "redirect-loop", {}),
    ("no_usable_key", "unusable.json", {}),
]


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.idp = Idp(s, s.keys, kids=MAIN_KIDS)
    c.down = Idp(s, s.keys, kids=("rs256-1",))
    c.idp.server.publish("unusable.json", {"keys": [
        {"kty": "RSA", "kid": "junk", "n": "AQAB", "e": "AQAB"},
        {"kty": "XYZ", "kid": "alien"}]})
    c.no_keys = {}
    issuers = [c.idp.issuer_conf(), c.down.issuer_conf()]
    for name, path, extra in NO_KEYS:
        iss = f"{c.idp.issuer}/nokeys/{name}"
        extra = {k: (c.idp.server.other_ca_file if v == "OTHER_CA" else v)
                 for k, v in extra.items()}
        issuers.append(c.idp.uri_issuer_conf(iss, path, **extra))
        c.no_keys[name] = iss
    c.d = Daemon(s, issuers=issuers).start()
    c.d.wait_keys(c.idp.issuer)
    c.d.wait_keys(c.down.issuer)
    return c


def fresh(c, signer="rs256-1", **kw):
    return c.idp.token(signer, **kw)


# ---- discovery, report, refresh ---------------------------------------------------------------

@suite.case
def discovery_document_gives_jwks_uri(c):
    k = c.d.keys_of(c.idp.issuer)
    check(k["source"] == "discovery", f"source {k['source']}")
    check(k["jwks_uri"] == c.idp.url("jwks.json"), f"jwks_uri {k['jwks_uri']}")
    uris = [r["uri"] for r in c.idp.server.requests()]
    check("/.well-known/openid-configuration" in uris, f"no discovery fetch in {uris}")
    i_disc = uris.index("/.well-known/openid-configuration")
    check("/jwks.json" in uris[i_disc:], f"no key set fetch after discovery: {uris}")


@suite.case
def keys_report_shape(c):
    r = c.d.admin_ok({"cmd": "keys"})
    check(isinstance(r.get("issuers"), list) and len(r["issuers"]) == 2 + len(NO_KEYS),
          f"issuers: {r.get('issuers')}")
    k = c.d.keys_of(c.idp.issuer)
    for field, types in (("issuer", str), ("source", str), ("jwks_uri", str), ("keys", list),
                         ("skipped", list), ("serial", int), ("fetched_at", int),
                         ("next_refresh", int), ("stale_at", int), ("stale", bool),
                         ("serving", bool), ("fetch_pending", bool), ("fetches", dict),
                         ("removal_epoch", int)):
        check(isinstance(k.get(field), types), f"{field}: {k.get(field)!r}")
    check(sorted(x["kid"] for x in k["keys"]) == sorted(MAIN_KIDS), f"kids {k['keys']}")
    rsa_key = next(x for x in k["keys"] if x["kid"] == "rs256-1")
    check(rsa_key["kty"] == "RSA" and rsa_key["alg"] == "RS256" and rsa_key["bits"] == 2048 and
          rsa_key["usable"] is True, f"rs256-1 entry {rsa_key}")
    ec_key = next(x for x in k["keys"] if x["kid"] == "es256-1")
    check(ec_key["kty"] == "EC" and ec_key["crv"] == "P-256", f"es256-1 entry {ec_key}")
    now = time.time()
    check(abs(k["fetched_at"] - now) < 60 and k["next_refresh"] > now, f"times {k}")
    check(k["serving"] and not k["stale"] and k["last_error"] is None, f"state {k}")


@suite.case
def refresh_of_unchanged_key_set_is_conditional(c):
    before = c.d.keys_of(c.idp.issuer)
    after = c.d.refresh_and_wait(c.idp.issuer)
    check(after["fetches"]["not_modified"] == before["fetches"]["not_modified"] + 1,
          f"fetches {before['fetches']} -> {after['fetches']}")
    check(after["serial"] == before["serial"], "a 304 installed a new set")
    last = c.idp.fetches()[-1]
    check(last["status"] == 304 and last["if_none_match"], f"last fetch {last}")
    expect(request_token(c.d, fresh(c)), "ALLOW")


@suite.case
def refresh_of_unknown_issuer_refused(c):
    r = c.d.admin({"cmd": "refresh", "issuer": "https://nobody.example/"})
    check(r.get("ok") is False and r.get("error"), f"{r}")


# ---- rotation ---------------------------------------------------------------------------------

@suite.case
def rotation_new_kid_picked_up_old_tokens_still_valid(c):
    old = fresh(c, "rs256-1")
    expect(request_token(c.d, old), "ALLOW")
    c.idp.publish("rs256-1", "rs256-2", "es256-1")
    time.sleep(1.1)  # past jwks_min_refresh (1 s) since the last fetch
    waited = c.d.admin_ok({"cmd": "stats"})["waited_for_keys"]
    t0 = time.monotonic()
    r = request_token(c.d, fresh(c, "rs256-2"))
    took = time.monotonic() - t0
    expect(r, "ALLOW", cached=False)
    check(took < KEY_WAIT_S, f"the new kid took {took:.2f}s")
    check(c.d.admin_ok({"cmd": "stats"})["waited_for_keys"] > waited,
          "the request did not wait for the fetch its kid triggered")
    kids = sorted(x["kid"] for x in c.d.keys_of(c.idp.issuer)["keys"])
    check(kids == ["es256-1", "rs256-1", "rs256-2"], f"kids {kids}")
    expect(request_token(c.d, old), "ALLOW")
    expect(request_token(c.d, fresh(c, "rs256-1")), "ALLOW", cached=False)


@suite.case
def random_kid_flood_does_not_flood_idp(c):
    time.sleep(1.1)
    n_before = len(c.idp.fetches())
    t0 = time.monotonic()
    for i in range(30):
        t = mint.tamper(fresh(c), "header-kid", value=f"made-up-{i}")
        expect(request_token(c.d, t), "UNAUTHORIZED", reason="unknown_kid")
    took = time.monotonic() - t0
    fetched = len(c.idp.fetches()) - n_before
    # jwks_min_refresh is 1 s: at most one fetch per second began, plus one at the start.
    check(1 <= fetched <= int(took) + 2, f"{fetched} fetches for 30 made-up kids in {took:.1f}s")


@suite.case
def cached_allow_refused_after_key_rotated_out(c):
    old = fresh(c, "rs256-1")
    expect(request_token(c.d, old), "ALLOW", cached=False)
    expect(request_token(c.d, old), "ALLOW", cached=True)
    epoch = c.d.keys_of(c.idp.issuer)["removal_epoch"]
    file_instance, file_epoch = c.d.epoch()
    c.idp.publish("rs256-2", "es256-1")
    k = c.d.refresh_and_wait(c.idp.issuer)
    check(sorted(x["kid"] for x in k["keys"]) == ["es256-1", "rs256-2"], f"keys {k['keys']}")
    check(k["removal_epoch"] > epoch, f"removal_epoch {epoch} -> {k['removal_epoch']}")
    # Web servers' caches hear of it too: the epoch file moved with the removal epoch.
    now_instance, now_epoch = c.d.epoch()
    check(now_instance == file_instance and now_epoch > file_epoch,
          f"epoch file {file_epoch} -> {now_epoch} on a withdrawn key")
    r = request_token(c.d, old)
    check(r.get("verdict") != "ALLOW", f"cached ALLOW survived the removal of its key: {r}")
    expect(r, "UNAUTHORIZED", cached=None, reason="unknown_kid")
    expect(request_token(c.d, fresh(c, "rs256-2")), "ALLOW")
    expect(request_token(c.d, fresh(c, "es256-1")), "ALLOW")


@suite.case
def unusable_keys_skipped_and_reported_others_used(c):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    keys = c.keys.jwks("rs256-2", "es256-1")["keys"] + [
        mint.public_jwk(weak, "weak-1024", "RS256"),
        {"kty": "RSA", "kid": "junk", "n": "AQAB", "e": "AQAB"},
        {"kty": "XYZ", "kid": "alien"},
        {"kty": "EC", "kid": "enc-only", "use": "enc", "crv": "P-256",
         "x": c.keys.jwk["es256-1"]["x"], "y": c.keys.jwk["es256-1"]["y"]},
    ]
    c.idp.server.publish("jwks.json", {"keys": keys})
    k = c.d.refresh_and_wait(c.idp.issuer)
    kids = sorted(x["kid"] for x in k["keys"])
    skipped = sorted(x.get("kid") or "" for x in k["skipped"])
    check(kids == ["es256-1", "rs256-2"], f"kept {kids}")
    check(skipped == ["alien", "enc-only", "junk", "weak-1024"], f"skipped {k['skipped']}")
    check(all(x.get("reason") for x in k["skipped"]), f"skipped without reason: {k['skipped']}")
    expect(request_token(c.d, fresh(c, "rs256-2")), "ALLOW")
    weak_tok = mint.mint(weak, iss=c.idp.issuer, aud="api://orders", sub="u", kid="weak-1024",
                         scope="orders:read")
    r = request_token(c.d, weak_tok)
    expect(r, "UNAUTHORIZED", reason="unknown_kid")


@suite.case
def key_set_without_usable_key_keeps_previous_set(c):
    before = c.d.keys_of(c.idp.issuer)
    for body in ({"keys": []}, {"keys": [{"kty": "RSA", "kid": "junk", "n": "AQAB"}]},
                 "<html>maintenance</html>", {"not": "a key set"}):
        c.idp.server.publish("jwks.json", body)
        k = c.d.refresh_and_wait(c.idp.issuer)
        check(k["serial"] == before["serial"], f"{body!r}: a set was replaced by it")
        check(k["serving"] and sorted(x["kid"] for x in k["keys"]) == ["es256-1", "rs256-2"],
              f"{body!r}: keys {k['keys']}")
        check(k["last_error"], f"{body!r}: no last_error")
        expect(request_token(c.d, fresh(c, "rs256-2")), "ALLOW")
    c.idp.publish("rs256-2", "es256-1")
    k = c.d.refresh_and_wait(c.idp.issuer)
    check(k["last_error"] is None or k["fetches"]["ok"] > before["fetches"]["ok"], f"{k}")


# ---- IdP down ---------------------------------------------------------------------------------

@suite.case
def idp_down_cached_keys_keep_working(c):
    cached = c.down.token("rs256-1")
    expect(request_token(c.d, cached), "ALLOW", cached=False)
    c.down.server.stop()
    k = c.d.refresh_and_wait(c.down.issuer)
    check(k["fetches"]["failed"] >= 1 and k["last_error"], f"fetch did not fail: {k}")
    check(k["serving"] and not k["stale"], f"keys not serving while the IdP is down: {k}")
    expect(request_token(c.d, cached), "ALLOW", cached=True)
    # A token never seen before verifies against the keys held.
    expect(request_token(c.d, c.down.token("rs256-1")), "ALLOW", cached=False)


@suite.case
def idp_down_no_allow_for_bad_tokens(c):
    t = c.down.token("rs256-1")
    for bad, reason in ((mint.tamper(t, "signature"), "bad_signature"),
                        (mint.tamper(t, "header-kid", value="rotated-in"), "unknown_kid"),
                        (mint.tamper(t, "header-alg-none"), "alg_none"),
                        (c.down.token("rs256-2", kid="rs256-1"), "bad_signature"),
                        (c.down.token("rs256-1", exp_in=-1), "token_expired")):
        expect(request_token(c.d, bad), "UNAUTHORIZED", reason=reason)


@suite.case
def restart_while_idp_down_uses_persisted_keys(c):
    rc = c.d.stop()
    check(rc == 0, f"SIGTERM exit {rc}")
    c.d.start()
    k = c.d.keys_of(c.down.issuer)
    check(k["serving"] and [x["kid"] for x in k["keys"]] == ["rs256-1"],
          f"persisted keys not loaded: {k}")
    expect(request_token(c.d, c.down.token("rs256-1")), "ALLOW", cached=False)
    expect(request_token(c.d, mint.tamper(c.down.token("rs256-1"), "signature")),
           "UNAUTHORIZED", reason="bad_signature")
    c.d.wait_keys(c.idp.issuer)
    expect(request_token(c.d, fresh(c, "rs256-2")), "ALLOW")


@suite.case
def idp_down_past_max_stale_is_error_503(c):
    """Keys the IdP may have withdrawn stop verifying after jwks_max_stale, even cached ALLOWs."""
    idp = Idp(suite, c.keys, kids=("rs256-1",))
    d = Daemon(suite, issuers=[idp.issuer_conf(jwks_refresh=2, jwks_max_stale=2)]).start()
    try:
        d.wait_keys(idp.issuer)
        t = idp.token("rs256-1")
        r = expect(request_token(d, t), "ALLOW", cached=False)
        # The reply's ttl (what web servers' caches reuse it for) ends when the keys go stale
        # (stale_at: the second after confirmed_at + jwks_max_stale), not at the decision
        # cache's 300 s.
        check(0 < r["ttl"] <= 3, f"ttl {r['ttl']} with jwks_max_stale 2")
        r = expect(request_token(d, t), "ALLOW", cached=True)
        check(0 < r["ttl"] <= 3, f"cached: ttl {r['ttl']} with jwks_max_stale 2")
        epoch = d.keys_of(idp.issuer)["removal_epoch"]
        file_epoch = d.epoch()[1]
        idp.server.stop()
        # The daemon expires the set (moving the epoch cached decisions are checked against) as
        # the second stale_at begins, not up to a second later.
        k = wait_until(lambda: (lambda k: k if k["removal_epoch"] > epoch else None)(
            d.keys_of(idp.issuer)), 6, interval=0.02, what="the key set expiring")
        late = time.time() - k["stale_at"]
        check(late < 0.5, f"the set expired {late:.2f}s after stale_at")
        check(d.epoch()[1] > file_epoch, "the epoch file did not move when the keys went stale")
        check(k["stale"] and not k["serving"] and k["fetches"]["failed"] >= 1, f"keys {k}")
        for tok in (t, idp.token("rs256-1")):
            r = request_token(d, tok)
            check(r.get("verdict") != "ALLOW", f"ALLOW on keys past jwks_max_stale: {r}")
            expect(r, "ERROR", 503, reason="no_keys")
    finally:
        d.cleanup()


# ---- issuers that never get keys --------------------------------------------------------------

def no_keys_case(name):
    def run(c):
        iss = c.no_keys[name]
        good = c.keys.token("rs256-1", iss=iss)
        for t in (good, mint.tamper(good, "signature"), mint.tamper(good, "header-kid")):
            r = request_token(c.d, t)
            check(r.get("verdict") != "ALLOW", f"ALLOW without keys: {r}")
        expect(request_token(c.d, good), "ERROR", 503, reason="no_keys")
        k = c.d.keys_of(iss)
        check(not k["serving"] and not k["keys"], f"keys report {k}")
        check(k["last_error"] and k["last_error"].get("message"), f"no last_error: {k}")
        check(k["fetches"]["failed"] >= 1 and k["fetches"]["ok"] == 0, f"fetches {k['fetches']}")
    return run


for _name, _path, _extra in NO_KEYS:
    suite.add(f"jwks_{_name}_gives_error_503_never_allow", no_keys_case(_name))


# ---- IdP slow ---------------------------------------------------------------------------------

@suite.case
def idp_slow_other_requests_not_delayed(c):
    """A daemon of its own whose second issuer's key set takes SLOW_DELAY_S to arrive."""
    slow_iss = c.idp.issuer + "/slow"
    fast_iss = c.idp.issuer + "/fast"
    c.idp.server.publish("slow.jwks.json", c.keys.jwks("es256-1"))
    c.idp.server.publish("fast.jwks.json", c.keys.jwks("rs256-1"))
    # Minted before the daemon starts, so the slow fetch's clock and the timed round trips hold
    # no Python signing time.
    fast_tokens = [c.keys.token(iss=fast_iss) for _ in range(20)]
    rotated_tok = c.keys.token("rs256-2", iss=fast_iss)
    d = Daemon(suite, issuers=[
        c.idp.uri_issuer_conf(fast_iss, "fast.jwks.json"),
        c.idp.uri_issuer_conf(slow_iss, f"slow/slow.jwks.json?delay={SLOW_DELAY_S:g}"),
    ]).start()
    try:
        d.wait_keys(fast_iss, timeout=2)
        slow_tok = c.keys.token("es256-1", iss=slow_iss)

        def slow_request():
            t0 = time.monotonic()
            r = request_token(d, slow_tok)
            return r, time.monotonic() - t0

        def fast_requests():
            took = []
            with raw_connect(d.sock) as s:
                for tok in fast_tokens:
                    t0 = time.monotonic()
                    s.sendall(frame({"type": "TOKEN", "methodArn": arn(),
                                     "authorizationToken": "Bearer " + tok}))
                    expect(recv_frame(s), "ALLOW")
                    took.append(time.monotonic() - t0)
            return max(took)

        def pipelined():
            with raw_connect(d.sock) as s:
                s.sendall(frame({"type": "TOKEN", "methodArn": arn(), "id": "slow",
                                 "authorizationToken": "Bearer " + slow_tok}) +
                          frame({"type": "TOKEN", "methodArn": arn(), "id": "fast",
                                 "authorizationToken": "Bearer " + c.keys.token(iss=fast_iss)}))
                return read_frames(s, 2)

        def rotation_meanwhile():
            # The fast issuer rotates while the slow fetch is in flight: its new kid is fetched
            # at once, not after the slow transfer.
            time.sleep(1.1)
            c.idp.server.publish("fast.jwks.json", c.keys.jwks("rs256-1", "rs256-2"))
            t0 = time.monotonic()
            r = request_token(d, rotated_tok)
            return r, time.monotonic() - t0

        (slow_r, slow_took), fast_max, (first, second), (rot_r, rot_took) = parallel(
            [slow_request, fast_requests, pipelined, rotation_meanwhile])
        expect(slow_r, "ERROR", 503, reason="no_keys")
        check(KEY_WAIT_S - 0.5 <= slow_took <= KEY_WAIT_S + 1.0,
              f"the parked request was answered after {slow_took:.2f}s")
        # "Delayed" would mean waiting for the slow fetch (SLOW_DELAY_S) or a park (KEY_WAIT_S);
        # the bound stays well under both yet leaves room for a loaded box under ASan.
        check(fast_max < KEY_WAIT_S - 0.5, f"a request of the other issuer took {fast_max:.2f}s")
        check((first.get("id"), second.get("id")) == ("slow", "fast"),
              f"pipelined replies out of order: {first} {second}")
        expect(first, "ERROR", 503, reason="no_keys")
        expect(second, "ALLOW")
        expect(rot_r, "ALLOW")
        check(rot_took < KEY_WAIT_S - 0.5, f"the fast issuer's rotation waited {rot_took:.2f}s")
        # Once the slow set arrives, its tokens pass.
        d.wait_keys(slow_iss, timeout=SLOW_DELAY_S + 3)
        expect(request_token(d, slow_tok), "ALLOW")
    finally:
        d.cleanup()


if __name__ == "__main__":
    suite.main(setup)
