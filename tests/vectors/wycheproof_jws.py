#!/usr/bin/python3
"""Runs every Wycheproof JWS and JWK vector through `jwtauthzctl verify --jws`, the same code the
daemon runs. A "valid" vector must exit 0; an "invalid" one must exit 2 (refused, not crashed).
The vectors whose labels contradict each other (the folder's README) may go either way but must
still exit 0 or 2. Usage: wycheproof_jws.py CTL TESTDATA_DIR"""
import json
import os
import subprocess
import sys
import tempfile

# README of ../shared/testdata/wycheproof: labels that contradict other vectors or need a ROCA test.
EITHER_WAY = {
    "json_web_signature_test.json": {367, 370, 372, 373, 346, 347, 350, 351},
    "json_web_key_test.json": {7},
}


def group_keys(group):
    """The key material a verifier is given: the public form when the group has one."""
    return group.get("public") or group["private"]


def main():
    ctl, testdata = sys.argv[1], sys.argv[2]
    passed = failed = 0
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("json_web_signature_test.json", "json_web_key_test.json"):
            with open(os.path.join(testdata, "wycheproof", name)) as f:
                doc = json.load(f)
            for gi, group in enumerate(doc["testGroups"]):
                keyfile = os.path.join(tmp, f"{name}.{gi}.json")
                with open(keyfile, "w") as f:
                    json.dump(group_keys(group), f)
                for t in group["tests"]:
                    tc, want = t["tcId"], t["result"]
                    proc = subprocess.run([ctl, "verify", "--jws", "--jwks", keyfile, "-"],
                                          input=t["jws"].encode(), capture_output=True,
                                          timeout=30)
                    rc = proc.returncode
                    out = proc.stdout.decode(errors="replace")
                    ok = rc in (0, 2)
                    if ok and rc == 2:
                        ok = json.loads(out)["verdict"] == "invalid"
                    if tc in EITHER_WAY.get(name, ()):
                        kind = "either"
                    elif want == "valid":
                        kind = "valid"
                        ok = ok and rc == 0
                    else:
                        kind = "invalid"
                        ok = ok and rc == 2
                    key = (name, kind, "ok" if ok else "FAIL")
                    counts[key] = counts.get(key, 0) + 1
                    if ok:
                        passed += 1
                    else:
                        failed += 1
                        reason = ""
                        try:
                            reason = json.loads(out).get("reason", "")
                        except ValueError:
                            pass
                        print(f"FAIL {name} tcId {tc} ({group.get('comment')}: {t.get('comment')})"
                              f" want {want}, exit {rc} {reason} {proc.stderr.decode()[:200]}")
    for k in sorted(counts):
        print(f"{k[0]} {k[1]:7s} {k[2]:4s} {counts[k]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
