#!/usr/bin/python3
"""The decision cache and the admin socket: a repeat is a cache hit evaluated against the cached
policy, an entry dies at the token's exp (and at the cache ttl), flush all / by principal / by
token drop exactly what they name, stats and keys have their documented shapes, and reloads
(admin and SIGHUP) take a good config as a new generation (decisions made under the old rules do
not survive) and keep the old one when the new file is bad. jwtauthzctl's admin exit codes too.
Run alone: /usr/bin/python3 test_cache_admin.py [CASE ...]."""

import json
import mmap
import signal
import struct
import time

from common import (Daemon, Idp, Suite, arn, check, expect, mint, request_token, wait_until)

suite = Suite("cache_admin")


class Ctx:
    pass


def setup(s):
    c = Ctx()
    c.keys = s.keys
    c.idp = Idp(s, s.keys)
    c.d = Daemon(s, issuers=[c.idp.issuer_conf()]).start()
    c.d.wait_keys(c.idp.issuer)
    return c


def tok(c, **kw):
    return c.idp.token(**kw)


def cached(c, t, method_arn=None):
    return request_token(c.d, t, method_arn).get("cached")


def generation(d):
    return d.admin_ok({"cmd": "stats"})["generation"]


# ---- the cache --------------------------------------------------------------------------------

@suite.case
def repeat_request_is_cache_hit(c):
    before = c.d.admin_ok({"cmd": "stats"})
    t = tok(c)
    first = expect(request_token(c.d, t), "ALLOW", cached=False)
    second = expect(request_token(c.d, t), "ALLOW", cached=True)
    check(second["principalId"] == first["principalId"] and
          second["context"] == first["context"] and
          second["policyDocument"] == first["policyDocument"],
          f"cached reply differs: {first} vs {second}")
    check(0 < second["ttl"] <= first["ttl"], f"ttl {first['ttl']} then {second['ttl']}")
    after = c.d.admin_ok({"cmd": "stats"})
    check(after["cache_hits"] == before["cache_hits"] + 1, f"hits {after['cache_hits']}")
    check(after["decision_cache"]["entries"] >= 1, f"{after['decision_cache']}")


@suite.case
def cached_policy_evaluated_against_each_resource(c):
    t = tok(c)
    expect(request_token(c.d, t), "ALLOW", cached=False)
    expect(request_token(c.d, t, arn("DELETE", "/orders/1")), "DENY", cached=True)
    expect(request_token(c.d, t, arn("GET", "/internal/x")), "DENY", cached=True)
    expect(request_token(c.d, t, arn("GET", "/orders/7")), "ALLOW", cached=True)


@suite.case
def cached_decision_expires_at_token_exp(c):
    exp = int(time.time()) + 2
    t = tok(c, exp_in=None, claims={"exp": exp})
    r = expect(request_token(c.d, t), "ALLOW", cached=False)
    check(r["ttl"] <= 2, f"ttl {r['ttl']} past exp")
    expect(request_token(c.d, t), "ALLOW", cached=True)
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    r = request_token(c.d, t)
    check(r.get("verdict") != "ALLOW", f"ALLOW after exp: {r}")
    expect(r, "UNAUTHORIZED", reason="token_expired")


@suite.case
def cache_entry_expires_after_ttl(c):
    d = Daemon(suite, issuers=[c.idp.issuer_conf()],
               extra={"decision_cache": {"ttl": 1, "max_entries": 100}}).start()
    try:
        d.wait_keys(c.idp.issuer)
        t = tok(c)
        r = expect(request_token(d, t), "ALLOW", cached=False)
        check(r["ttl"] == 1, f"ttl {r['ttl']} with decision_cache.ttl 1")
        expect(request_token(d, t), "ALLOW", cached=True)
        time.sleep(1.1)
        expect(request_token(d, t), "ALLOW", cached=False)
    finally:
        d.cleanup()


@suite.case
def cache_disabled_with_ttl_zero(c):
    d = Daemon(suite, issuers=[c.idp.issuer_conf()],
               extra={"decision_cache": {"ttl": 0, "max_entries": 100}}).start()
    try:
        d.wait_keys(c.idp.issuer)
        t = tok(c)
        for _ in range(3):
            expect(request_token(d, t), "ALLOW", cached=False)
        dc = d.admin_ok({"cmd": "stats"})["decision_cache"]
        check(dc["enabled"] is False and dc["entries"] == 0, f"{dc}")
    finally:
        d.cleanup()


@suite.case
def refusals_are_not_cached(c):
    t = mint.tamper(tok(c), "signature")
    for _ in range(2):
        r = expect(request_token(c.d, t), "UNAUTHORIZED", reason="bad_signature")
        check("cached" not in r or r["cached"] is False, f"{r}")


# ---- flush ------------------------------------------------------------------------------------

@suite.case
def flush_all_drops_every_decision(c):
    ts = [tok(c, sub=f"flush-all-{i}") for i in range(3)]
    for t in ts:
        request_token(c.d, t)
        check(cached(c, t) is True, "not cached before the flush")
    r = c.d.admin_ok({"cmd": "flush"})
    check(r.get("flushed", 0) >= 3, f"flushed {r}")
    check(c.d.admin_ok({"cmd": "stats"})["decision_cache"]["entries"] == 0, "entries after flush")
    for t in ts:
        check(cached(c, t) is False, "a decision survived flush all")


@suite.case
def flush_principal_drops_only_that_principal(c):
    a = [tok(c, sub="alice"), tok(c, sub="alice", scope="orders:write")]
    b = tok(c, sub="bob")
    for t in a + [b]:
        request_token(c.d, t)
    r = c.d.admin_ok({"cmd": "flush", "principal": "alice"})
    check(r.get("flushed") == 2, f"flushed {r}")
    for t in a:
        check(cached(c, t) is False, "alice's decision survived her flush")
    check(cached(c, b) is True, "bob's decision was flushed with alice's")
    check(c.d.admin_ok({"cmd": "flush", "principal": "nobody"}).get("flushed") == 0, "nobody")


@suite.case
def flush_token_drops_only_that_token(c):
    t1, t2, t3 = tok(c), tok(c), tok(c)
    for t in (t1, t2, t3):
        request_token(c.d, t)
    check(c.d.admin_ok({"cmd": "flush", "token": t1}).get("flushed") == 1, "bare token")
    check(c.d.admin_ok({"cmd": "flush", "token": "Bearer " + t2}).get("flushed") == 1,
          "token as an Authorization header carries it")
    check(cached(c, t1) is False and cached(c, t2) is False, "flushed tokens still cached")
    check(cached(c, t3) is True, "an unnamed token was flushed")
    check(c.d.admin_ok({"cmd": "flush", "token": tok(c)}).get("flushed") == 0, "unknown token")


# ---- stats and admin errors -------------------------------------------------------------------

@suite.case
def stats_shape_and_counters(c):
    s0 = c.d.admin_ok({"cmd": "stats"})
    for field, types in (("generation", int), ("uptime", int), ("requests", dict),
                         ("reasons", dict), ("cache_hits", int), ("cache_misses", int),
                         ("cache_stale", int), ("cache_hit_rate", (int, float)),
                         ("waited_for_keys", int), ("bad_frames", int), ("bad_requests", int),
                         ("connections", int), ("admin_requests", int), ("latency_us", dict),
                         ("decision_cache", dict), ("issuers", list)):
        check(isinstance(s0.get(field), types), f"{field}: {s0.get(field)!r}")
    check(set(s0["requests"]) == {"ALLOW", "DENY", "UNAUTHORIZED", "ERROR"}, f"{s0['requests']}")
    check({"count", "p50", "p90", "p99", "p999"} <= set(s0["latency_us"]), f"{s0['latency_us']}")
    check({"enabled", "entries", "capacity", "hits", "misses", "ttl"} <= set(s0["decision_cache"]),
          f"{s0['decision_cache']}")
    check(0.0 <= s0["cache_hit_rate"] <= 1.0, f"hit rate {s0['cache_hit_rate']}")
    t = tok(c)
    request_token(c.d, t)
    request_token(c.d, t, arn("DELETE", "/x"))
    request_token(c.d, mint.tamper(t, "header-alg-none"))
    s1 = c.d.admin_ok({"cmd": "stats"})
    for v, n in (("ALLOW", 1), ("DENY", 1), ("UNAUTHORIZED", 1), ("ERROR", 0)):
        check(s1["requests"][v] == s0["requests"][v] + n, f"{v}: {s0['requests']} -> "
              f"{s1['requests']}")
    check(s1["reasons"].get("alg_none", 0) == s0["reasons"].get("alg_none", 0) + 1,
          f"reasons {s1['reasons']}")
    check(s1["latency_us"]["count"] >= s0["latency_us"]["count"] + 3, "latency count")
    check(s1["admin_requests"] > s0["admin_requests"], "admin_requests")
    check(s1["issuers"][0]["issuer"] == c.idp.issuer, "per-issuer key state missing")


@suite.case
def admin_unknown_command_and_member_refused(c):
    for bad in ({"cmd": "shutdown"}, {"cmd": "flush", "principle": "x"}, {"nocmd": 1},
                {"cmd": "refresh"}):
        r = c.d.admin(bad)
        check(r.get("ok") is False and isinstance(r.get("error"), str), f"{bad}: {r}")
        check(r.get("verdict") == "ERROR" and r.get("status") == 500, f"{bad}: {r}")


@suite.case
def admin_replies_carry_verdict_and_status(c):
    """CONTRACT, wire protocol of both sockets: every reply has "verdict" and "status"."""
    for cmd in ({"cmd": "stats"}, {"cmd": "keys"}, {"cmd": "flush"}, {"cmd": "flush", "id": 7},
                {"cmd": "refresh", "issuer": c.idp.issuer}):
        r = c.d.admin(cmd)
        check(r.get("ok") is True and r.get("verdict") == "ALLOW" and r.get("status") == 200,
              f"{cmd}: {r}")
        check(r.get("id") == cmd.get("id"), f"{cmd}: id not echoed: {r}")


@suite.case
def decision_socket_does_not_take_admin_commands(c):
    r = c.d.request({"cmd": "flush"})
    check(r.get("verdict") == "ERROR", f"admin command on the decision socket: {r}")
    r = c.d.admin({"type": "TOKEN", "authorizationToken": "Bearer " + tok(c),
                   "methodArn": arn()})
    check(r.get("ok") is False and r.get("verdict") == "ERROR" and "principalId" not in r,
          f"decision on the admin socket: {r}")


@suite.case
def ctl_admin_commands_exit_codes(c):
    t = tok(c)
    request_token(c.d, t)
    for args, code, key in ((["stats"], 0, "requests"), (["keys"], 0, "issuers"),
                            (["flush", "--token", t], 0, "flushed"),
                            (["flush", "--principal", "user-123"], 0, "flushed"),
                            (["flush"], 0, "flushed"),
                            (["refresh", c.idp.issuer], 0, "queued"),
                            (["refresh", "https://nobody.example/"], 3, "error"),
                            (["reload"], 0, "generation")):
        p = c.d.ctl_run(*args)
        out = json.loads(p.stdout) if p.stdout.strip() else {}
        check(p.returncode == code and key in out,
              f"jwtauthzctl {args[0]}: exit {p.returncode} (want {code}), out {p.stdout[:300]!r}"
              f" err {p.stderr[:300]!r}")


# ---- reload -----------------------------------------------------------------------------------

def stricter_rules():
    return [{"resource": "arn:aws:execute-api:*:*:*/*/GET/orders*", "scopes": ["orders:admin"]}]


@suite.case
def admin_reload_good_config_new_rules_apply(c):
    t = tok(c)
    expect(request_token(c.d, t), "ALLOW", cached=False)
    expect(request_token(c.d, t), "ALLOW", cached=True)
    gen = generation(c.d)
    old_rules = c.d.config["rules"]
    c.d.set(rules=stricter_rules())
    c.d.write_config()
    try:
        r = c.d.admin_ok({"cmd": "reload"})
        check(r.get("generation") == gen + 1, f"reload reply {r}")
        check(generation(c.d) == gen + 1, "generation did not move")
        r = request_token(c.d, t)
        check(r.get("verdict") != "ALLOW", f"decision made under the old rules survived: {r}")
        expect(r, "DENY", cached=False)
        expect(request_token(c.d, tok(c, scope="orders:admin")), "ALLOW")
    finally:
        c.d.set(rules=old_rules)
        c.d.write_config()
        c.d.admin_ok({"cmd": "reload"})
    expect(request_token(c.d, t), "ALLOW", cached=False)


@suite.case
def sighup_reload_good_config(c):
    t = tok(c)
    expect(request_token(c.d, t), "ALLOW")
    gen = generation(c.d)
    old_rules = c.d.config["rules"]
    c.d.set(rules=stricter_rules())
    c.d.write_config()
    try:
        c.d.reload()
        wait_until(lambda: generation(c.d) == gen + 1, 5, what="SIGHUP reload")
        expect(request_token(c.d, t), "DENY", cached=False)
    finally:
        c.d.set(rules=old_rules)
        c.d.write_config()
        c.d.admin_ok({"cmd": "reload"})


BAD_CONFIGS = [
    ("unknown key", lambda conf: dict(conf, thraeds=4)),
    ("http jwks_uri", lambda conf: dict(conf, issuers=[dict(
        {k: v for k, v in conf["issuers"][0].items() if k != "discovery"},
        jwks_uri="http://127.0.0.1/jwks.json")])),
    ("rule effect lowercase", lambda conf: dict(conf, rules=[{"resource": "*",
                                                              "effect": "deny"}])),
]


@suite.case
def admin_reload_bad_config_keeps_old(c):
    t = tok(c)
    expect(request_token(c.d, t), "ALLOW", cached=False)
    gen = generation(c.d)
    good = dict(c.d.config)
    try:
        for what, make in BAD_CONFIGS + [("not JSON", None)]:
            if make is None:
                c.d.write_config(text='{"listen": ')
            else:
                c.d.write_config(make(good))
            r = c.d.admin({"cmd": "reload"})
            check(r.get("ok") is False and r.get("error"), f"{what}: reload reply {r}")
            errs = r.get("errors") or []
            check(errs and all(str(c.d.conf_path) + ":" in e for e in errs),
                  f"{what}: errors not FILE:LINE: {errs}")
            check(generation(c.d) == gen, f"{what}: generation moved")
            # Same generation: the cached decision is still good.
            expect(request_token(c.d, t), "ALLOW", cached=True)
    finally:
        c.d.write_config(good)


@suite.case
def sighup_bad_config_keeps_running(c):
    t = tok(c)
    expect(request_token(c.d, t), "ALLOW")
    gen = generation(c.d)
    try:
        c.d.write_config(text="{ // not a config\n")
        c.d.reload()
        wait_until(lambda: "reload failed" in c.d.log(), 5, what="the reload failure log line")
        check(c.d.proc.poll() is None, "daemon exited on a bad SIGHUP reload")
        check(generation(c.d) == gen, "generation moved")
        expect(request_token(c.d, t), "ALLOW", cached=True)
    finally:
        c.d.write_config()


@suite.case
def reload_adds_issuer_and_its_keys_are_fetched(c):
    new_iss = c.idp.issuer + "/added"
    c.idp.publish("es256-1", path="added.jwks.json")
    t = c.keys.token("es256-1", iss=new_iss)
    expect(request_token(c.d, t), "UNAUTHORIZED", reason="issuer_mismatch")
    old = list(c.d.config["issuers"])
    c.d.set(issuers=old + [c.idp.uri_issuer_conf(new_iss, "added.jwks.json")])
    c.d.write_config()
    try:
        c.d.admin_ok({"cmd": "reload"})
        expect(request_token(c.d, t), "ALLOW")
    finally:
        c.d.set(issuers=old)
        c.d.write_config()
        c.d.admin_ok({"cmd": "reload"})
    expect(request_token(c.d, t), "UNAUTHORIZED", reason="issuer_mismatch")


@suite.case
def reload_rereads_jwks_file(c):
    kdir = c.keys.dir
    jwks_file = kdir / "file-issuer.jwks.json"
    mint.write_jwks(jwks_file, c.keys.jwks("rs256-1")["keys"])
    file_iss = "local-file-issuer"
    d = Daemon(suite, issuers=[{"issuer": file_iss, "jwks_file": str(jwks_file),
                                "audiences": ["api://orders"], "leeway": 0}]).start()
    try:
        new = c.keys.token("rs256-2", iss=file_iss)
        expect(request_token(d, new), "UNAUTHORIZED", reason="unknown_kid")
        r = d.admin({"cmd": "refresh", "issuer": file_iss})
        check(r.get("ok") is False, f"refresh of a jwks_file issuer: {r}")
        mint.write_jwks(jwks_file, c.keys.jwks("rs256-2")["keys"])
        d.admin_ok({"cmd": "reload"})
        expect(request_token(d, new), "ALLOW")
        expect(request_token(d, c.keys.token("rs256-1", iss=file_iss)), "UNAUTHORIZED",
               reason="unknown_kid")
    finally:
        d.cleanup()


# ---- the epoch file (what web servers' own caches check) ------------------------------------------

@suite.case
def epoch_file_moves_on_every_flush_and_reload_only(c):
    instance, epoch = c.d.epoch()
    check(instance != 0 and epoch >= 1, f"instance {instance:#x}, epoch {epoch}")
    mode = c.d.epoch_path.stat().st_mode & 0o777
    check(mode & 0o022 == 0, f"epoch file mode {mode:o}: writable by others")
    moves = [
        ("flush", lambda: c.d.admin_ok({"cmd": "flush"})),
        ("flush principal", lambda: c.d.admin_ok({"cmd": "flush", "principal": "nobody"})),
        ("flush token", lambda: c.d.admin_ok({"cmd": "flush", "token": tok(c)})),
        ("admin reload", lambda: c.d.admin_ok({"cmd": "reload"})),
    ]
    for what, do in moves:
        do()
        now_instance, now_epoch = c.d.epoch()
        check(now_instance == instance, f"{what}: the instance changed")
        check(now_epoch == epoch + 1, f"{what}: epoch {epoch} -> {now_epoch}, want +1")
        epoch = now_epoch
    gen = generation(c.d)
    c.d.reload()
    wait_until(lambda: generation(c.d) == gen + 1, 5, what="SIGHUP reload")
    check(c.d.epoch() == (instance, epoch + 1), f"SIGHUP: {c.d.epoch()}")
    epoch += 1
    # Decisions, stats and a bad reload decide nothing anew: the epoch stays.
    t = tok(c)
    expect(request_token(c.d, t), "ALLOW")
    expect(request_token(c.d, t), "ALLOW", cached=True)
    c.d.admin_ok({"cmd": "stats"})
    good = dict(c.d.config)
    try:
        c.d.write_config(text='{"listen": ')
        check(c.d.admin({"cmd": "reload"}).get("ok") is False, "a bad config loaded")
    finally:
        c.d.write_config(good)
    check(c.d.epoch() == (instance, epoch), f"moved without a reason: {c.d.epoch()}")


@suite.case
def epoch_file_gone_at_sigterm_new_instance_at_start(c):
    d = Daemon(suite, issuers=[c.idp.issuer_conf()]).start()
    try:
        instance, _ = d.epoch()
        with open(d.epoch_path, "rb") as f:
            # A module's view across the stop: its mapping outlives the name.
            m = mmap.mmap(f.fileno(), 4096, prot=mmap.PROT_READ)
            before = struct.unpack("=Q", m[24:32])[0]
            d.stop()
            check(not d.epoch_path.exists(), "SIGTERM left the epoch file")
            after = struct.unpack("=Q", m[24:32])[0]
            check(after == before + 1, f"SIGTERM: epoch {before} -> {after}, want +1")
            m.close()
        d.start()
        check(d.epoch()[0] != instance, "a restart kept the instance id")
        # SIGKILL leaves the file; the next start takes it over with a new instance and a later
        # epoch, so nothing decided by the killed one can match.
        instance, epoch = d.epoch()
        d.stop(signal.SIGKILL)
        check(d.epoch_path.exists() and d.epoch() == (instance, epoch), "SIGKILL changed the file")
        d.start()
        new_instance, new_epoch = d.epoch()
        check(new_instance != instance and new_epoch > epoch,
              f"after SIGKILL: {instance:#x}/{epoch} -> {new_instance:#x}/{new_epoch}")
    finally:
        d.cleanup()


if __name__ == "__main__":
    suite.main(setup)
