#!/usr/bin/python3
"""Helpers of bench/run_webservers.sh: CPU snapshots of the processes under test, the tokens for
its functional checks, and the final report (figures per configuration, the two target ratios).
Only reads /proc and the files the run wrote; starts nothing.

    webservers_stats.py cpu SESSION_ID [DAEMON_PID]   -> one JSON line of CPU ticks
    webservers_stats.py check-tokens KEYS_DIR ISS AUD -> NAME TOKEN lines (PyJWT, via mint.py)
    webservers_stats.py report WORK_DIR               -> the table, PASS/FAIL
"""

import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")

# The targets (bench/README.md, "Web servers").
APACHE_RATIO_MIN = 1.5   # Apache + mod_jwtauthz vs Apache + mod_auth_openidc, requests/s
NGINX_RATIO_MIN = 0.60   # nginx + jwtauthz (tokens cached) vs nginx with no auth, requests/s
SOCKET_ERRORS_MAX_SHARE = 1e-4  # of a run's requests, before the run is flagged


def proc_stat(pid):
    """(session id, utime + stime ticks) of a process, or None once it is gone. The command
    name may hold spaces and parentheses: fields are counted from the last ')'."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text.rsplit(")", 1)[1].split()
    return int(f[3]), int(f[11]) + int(f[12])


def cpu_snapshot(session, daemon_pid):
    server = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(entry)
            if st and st[0] == session:
                server += st[1]
    daemon = 0
    if daemon_pid:
        st = proc_stat(daemon_pid)
        daemon = st[1] if st else 0
    # /proc/stat "cpu" line: user nice system idle iowait irq softirq steal ...
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return {"server": server, "daemon": daemon, "busy": total - idle, "total": total}


def check_tokens(keys, iss, aud):
    """The functional checks' tokens, all from PyJWT (tests/tools/mint.py), none from our code."""
    sys.path.insert(0, str(HERE.parent / "tests" / "tools"))
    import mint  # noqa: E402

    rs1, rs2 = f"{keys}/rs256-1.pem", f"{keys}/rs256-2.pem"
    # A day: the checks of the last configuration run many minutes after these are minted.
    good = dict(iss=iss, aud=aud, sub="check-user", scope="orders:read", exp_in=86400)

    def m(key=rs1, **kw):
        return mint.mint(key, **dict(good, **kw))

    valid = m()
    out = [
        ("valid", valid),
        ("valid_second_key", m(rs2)),
        ("bad_signature", mint.tamper(valid, "signature")),
        ("expired", m(exp_in=-600, iat_in=-900)),
        ("not_yet_valid", m(nbf_in=600)),
        ("no_exp", m(exp_in=None)),
        ("wrong_audience", m(aud="api://other")),
        ("wrong_issuer", m(iss="https://other.test/")),
        ("scope_among_others", m(scope="profile orders:read email")),
        ("scope_missing", m(scope="profile")),
        ("scope_lookalike", m(scope="orders:readonly")),
        ("alg_none", mint.mint(None, alg="none", **good)),
        ("alg_confusion_hs256", mint.tamper(valid, "alg-confusion",
                                            secret=Path(f"{keys}/rs256-1.pub.pem").read_bytes())),
    ]
    for name, tok in out:
        print(name, tok)


def parse_kv(line):
    out = {}
    for word in line.split()[1:]:
        k, _, v = word.partition("=")
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = v
    return out


def load_run(path):
    """A measured run's file: wrk's RESULT and FIRSTPASS lines, CPU snapshots before and after,
    the load generator's CPU ticks, the daemon's cache counters before and after."""
    run = {"name": path.stem}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(" ")
        if key == "RESULT":
            run["wrk"] = parse_kv(line)
        elif key == "FIRSTPASS":
            run["first"] = parse_kv(line)
        elif key in ("CPU_BEFORE", "CPU_AFTER", "STATS_BEFORE", "STATS_AFTER"):
            run[key] = json.loads(rest)
        elif key == "WRK_TICKS":
            run["wrk_ticks"] = int(rest)
    w = run.get("wrk")
    if not w:
        return run
    run["rps"] = w["requests"] / w["duration_s"]
    c0, c1 = run.get("CPU_BEFORE"), run.get("CPU_AFTER")
    reqs = max(w["requests"], 1)
    if c0 and c1:
        run["server_us"] = (c1["server"] - c0["server"]) * TICK_S * 1e6 / reqs
        run["daemon_us"] = (c1["daemon"] - c0["daemon"]) * TICK_S * 1e6 / reqs
        total = max(c1["total"] - c0["total"], 1)
        run["box_busy"] = (c1["busy"] - c0["busy"]) / total
        ours = (c1["server"] - c0["server"]) + (c1["daemon"] - c0["daemon"])
        if "wrk_ticks" in run:
            run["wrk_us"] = run["wrk_ticks"] * TICK_S * 1e6 / reqs
            ours += run["wrk_ticks"]
        # What the rest of the box took meanwhile (other processes, interrupts): the noise.
        run["others"] = max(0, (c1["busy"] - c0["busy"]) - ours) / total
    s0, s1 = run.get("STATS_BEFORE"), run.get("STATS_AFTER")
    if s0 and s1:
        run["misses"] = s1["misses"] - s0["misses"]
        run["hits"] = s1["hits"] - s0["hits"]
    return run


def report(work):
    runs = {p.stem: load_run(p) for p in sorted(Path(work, "runs").glob("*.txt"),
                                                key=lambda p: p.stat().st_mtime)}
    settings = json.loads(Path(work, "settings.json").read_text())
    print()
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print()
    hdr = ("run (in order)", "requests/s", "p50 ms", "p99 ms", "non-2xx", "errors",
           "server us/req", "daemon us/req", "wrk us/req", "others", "daemon misses/hits")
    rows, problems = [], []
    for name, r in runs.items():
        w = r.get("wrk")
        if not w:
            rows.append((name, "no result") + ("",) * (len(hdr) - 2))
            problems.append(f"{name}: wrk gave no result")
            continue
        errs = int(w["connect"] + w["read"] + w["write"] + w["timeout"])
        # Any refusal means a check failed; a few socket errors in a million requests (a
        # kept-alive connection closed under load) do not change a rate.
        if w["non2xx"] or errs > SOCKET_ERRORS_MAX_SHARE * w["requests"]:
            problems.append(f"{name}: {int(w['non2xx'])} non-2xx, {errs} socket errors")
        rows.append((name, f"{r['rps']:.0f}", f"{w['p50_us'] / 1000:.2f}",
                     f"{w['p99_us'] / 1000:.2f}", f"{int(w['non2xx'])}", f"{errs}",
                     f"{r.get('server_us', 0):.1f}",
                     f"{r['daemon_us']:.1f}" if r.get("daemon_us") else "-",
                     f"{r['wrk_us']:.1f}" if "wrk_us" in r else "-",
                     f"{r.get('others', 0):.0%}",
                     f"{r['misses']}/{r['hits']}" if "misses" in r else "-"))
        if "first" in r:
            f = r["first"]
            rows.append(("  first pass", f"{f['rps']:.0f}",
                         f"{int(f['requests'])} requests in {f['seconds']:.2f} s"
                         f"{'' if f['complete'] == 'yes' else ' (incomplete)'}",
                         "", f"{int(f['non200'])}", "", "", "", "", "", ""))
            if f["non200"]:
                problems.append(f"{name}: first pass had {int(f['non200'])} non-200")
    widths = [max(len(str(row[i])) for row in rows + [hdr]) for i in range(len(hdr))]
    for row in [hdr] + rows:
        print("  " + "  ".join(str(c).ljust(wd) for c, wd in zip(row, widths)).rstrip())
    print("  (us/req: CPU time per request, all cores; others: the box's CPU taken by anything "
          "but server, daemon and wrk)")

    reps = range(1, int(settings["reps"]) + 1)

    def get(name, rep, what):
        r = runs.get(f"{name}.{rep}", {})
        return r.get("first", {}).get("rps") if what == "first" else r.get("rps")

    print()
    lines, verdicts = [], []

    def ratio(what, a, b, bound, judged, first=False):
        pairs = [(get(a, i, "first" if first else "rps"), get(b, i, "first" if first else "rps"))
                 for i in reps]
        pairs = [(x, y) for x, y in pairs if x and y]
        if not pairs:
            lines.append((what, "missing", "", "", ""))
            verdicts.append(False if judged else None)
            return
        vals = sorted(x / y for x, y in pairs)
        med = statistics.median(vals)
        x, y = min(pairs, key=lambda p: abs(p[0] / p[1] - med))
        ok = med >= bound
        verdict = ("PASS" if ok else "FAIL") if judged else "(extra)"
        lines.append((what, f"{x:.0f} / {y:.0f}", f"{med:.2f}",
                      "/".join(f"{v:.2f}" for v in vals) if len(vals) > 1 else "",
                      f">= {bound:g} {verdict}" if bound else "(extra)"))
        if judged:
            verdicts.append(ok)

    ratio("Apache: mod_jwtauthz / mod_auth_openidc, rotating from a cold cache (the target)",
          "apache-jwtauthz-cold", "apache-openidc-cold", APACHE_RATIO_MIN, True)
    ratio("Apache: the same, first pass only (every token new to the server)",
          "apache-jwtauthz-cold", "apache-openidc-cold", APACHE_RATIO_MIN, False, first=True)
    ratio("Apache: the same, steady state (a second run: every decision cached)",
          "apache-jwtauthz-warm", "apache-openidc-warm", APACHE_RATIO_MIN, False)
    ratio("Apache: mod_jwtauthz steady state / Apache with no auth", "apache-jwtauthz-warm",
          "apache-none", 0, False)
    ratio("Apache: mod_auth_openidc / Apache with no auth", "apache-openidc-warm",
          "apache-none", 0, False)
    ratio("nginx: jwtauthz + jwtauthz_cache, tokens cached / no auth (the target)",
          "nginx-jwtauthzcache-warm", "nginx-none", NGINX_RATIO_MIN, True)
    ratio("nginx: the same, rotating from a cold cache", "nginx-jwtauthzcache-cold",
          "nginx-none", NGINX_RATIO_MIN, False)
    ratio("nginx: jwtauthz without jwtauthz_cache (every request asks the daemon), cached",
          "nginx-jwtauthz-warm", "nginx-none", NGINX_RATIO_MIN, False)
    ratio("nginx: the same, rotating from a cold cache", "nginx-jwtauthz-cold", "nginx-none",
          NGINX_RATIO_MIN, False)
    # Companions that other load on the box disturbs less: the inverse ratio of the CPU a request
    # costs server, daemon and wrk together, i.e. the requests/s ratio on a box those three have
    # to themselves and keep busy. Apache only: the no-auth nginx floor does not keep the box
    # busy (one worker, one core), so there the CPU ratio would not predict requests/s.
    def cpu_per_req(name, rep):
        r = runs.get(f"{name}.{rep}", {})
        if "server_us" not in r or "wrk_us" not in r:
            return None
        return r["server_us"] + r.get("daemon_us", 0) + r["wrk_us"]

    def cpu_ratio(what, a, b):
        vals = sorted(y / x for x, y in ((cpu_per_req(a, i), cpu_per_req(b, i)) for i in reps)
                      if x and y)
        if vals:
            lines.append((what, "", f"{statistics.median(vals):.2f}",
                          "/".join(f"{v:.2f}" for v in vals) if len(vals) > 1 else "",
                          "(extra)"))

    cpu_ratio("  Apache, by CPU per request: mod_auth_openidc's / mod_jwtauthz's, cold",
              "apache-jwtauthz-cold", "apache-openidc-cold")
    cpu_ratio("  Apache, by CPU per request: the same, steady state", "apache-jwtauthz-warm",
              "apache-openidc-warm")
    hdr2 = ("ratio", "requests/s (median pair)", "median", "all runs", "target")
    widths = [max(len(l[i]) for l in lines + [hdr2]) for i in range(5)]
    for l in [hdr2] + lines:
        print("  " + "  ".join(c.ljust(wd) for c, wd in zip(l, widths)).rstrip())
    for p in problems:
        print(f"WARNING: {p}")
    if problems:
        print("WARNING: a run with errors or refusals does not measure what it claims to")
    judged = [v for v in verdicts if v is not None]
    return 0 if judged and all(judged) and not problems else 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "cpu":
        print(json.dumps(cpu_snapshot(int(argv[2]), int(argv[3]) if len(argv) > 3 else 0)))
        return 0
    if len(argv) == 5 and argv[1] == "check-tokens":
        check_tokens(*argv[2:5])
        return 0
    if len(argv) == 3 and argv[1] == "report":
        return report(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
