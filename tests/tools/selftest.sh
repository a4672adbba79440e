#!/usr/bin/env bash
# Self-test of the test tooling the other suites build on: mint.py's keys and tokens checked by
# PyJWT itself (not by jwtauthz), then https_server.py started, probed with curl and stopped.
# If these are wrong every integration test is wrong with them, so they are tested first.
# Prints PASS/FAIL per check and ends with "N passed, N failed"; exits 1 on any failure.
set -euo pipefail

TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3 # Debian's: the one with python3-jwt and python3-cryptography
MINT=("$PY" "$TOOLS/mint.py")
HTTPS=("$PY" "$TOOLS/https_server.py")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwtauthz-tools-selftest.XXXXXX")
SERVER_UP=0
cleanup() {
    if [[ $SERVER_UP == 1 ]]; then
        "${HTTPS[@]}" stop --state "$WORK/state" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    echo "PASS $1"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL $1${2:+: $2}"
}
# check NAME CMD...: PASS when CMD exits 0; its output is shown only on failure.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
# check_fails NAME CMD...: PASS when CMD exits non-zero (a refusal that must happen).
check_fails() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then fail "$name" "unexpectedly succeeded: $out"; else pass "$name"; fi
}

# check_exit NAME CODE CMD...: PASS when CMD exits with exactly CODE (curl's codes tell a refused
# certificate, 60, from a closed port, 7, or a time-out, 28).
check_exit() {
    local name=$1 want=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if [[ $rc == "$want" ]]; then pass "$name"; else fail "$name" "exit $rc, wanted $want: $out"; fi
}
# verify TOKEN JWKS ALG [AUD]: PyJWT checks the signature with the key from the JWKS file (so the
# JWKS mint.py wrote is checked too) and the standard claims. Exit 0: valid; 3: PyJWT refused it;
# anything else: the test itself is broken (no token, unknown kid), which must not pass as a
# refusal.
verify() {
    "$PY" - "$@" <<'EOF'
import json, sys
import jwt
token, jwks_file, alg = sys.argv[1:4]
aud = sys.argv[4] if len(sys.argv) > 4 else None
if token.count(".") != 2 or not token.split(".")[0]:
    sys.exit(f"not a token: {token!r}")
keys = {k["kid"]: k for k in json.load(open(jwks_file))["keys"]}
try:
    key = jwt.PyJWK(keys[jwt.get_unverified_header(token)["kid"]]).key
    claims = jwt.decode(token, key, algorithms=[alg], audience=aud,
                        issuer="https://idp.test/", options={"require": ["exp", "iat"]})
except jwt.InvalidTokenError as err:
    print(f"refused: {type(err).__name__}: {err}")
    sys.exit(3)
assert claims["sub"] == "user-1", claims
EOF
}
# refused NAME TOKEN JWKS ALG [AUD]: PASS only when PyJWT refuses a well-formed test token.
refused() {
    local name=$1 out rc=0
    shift
    out=$(verify "$@" 2>&1) || rc=$?
    if [[ $rc == 3 ]]; then pass "$name"; else fail "$name" "verify exit $rc: $out"; fi
}

# --- mint.py ------------------------------------------------------------------------------------
KEYS=$WORK/keys
check "keygen writes a key set" "${MINT[@]}" keygen "$KEYS"

ALL_KIDS=(rs256-1 rs256-2 ps256-1 es256-1 es384-1 es512-1 eddsa-1 hs256-1)
declare -A ALG=([rs256-1]=RS256 [rs256-2]=RS256 [ps256-1]=PS256 [es256-1]=ES256
    [es384-1]=ES384 [es512-1]=ES512 [eddsa-1]=EdDSA [hs256-1]=HS256)

check "jwks.json has the 7 public keys, jwks-with-hs.json adds the oct key" "$PY" -c '
import json, sys
d = sys.argv[1]
pub = json.load(open(d + "/jwks.json"))["keys"]
allk = json.load(open(d + "/jwks-with-hs.json"))["keys"]
assert sorted(k["kid"] for k in pub) == sorted(sys.argv[2:-1]), pub
assert all("d" not in k and k["kty"] != "oct" and k["use"] == "sig" and k["alg"] for k in pub)
assert [k["kid"] for k in allk if k["kty"] == "oct"] == [sys.argv[-1]]
' "$KEYS" rs256-1 rs256-2 ps256-1 es256-1 es384-1 es512-1 eddsa-1 hs256-1

check "key sizes: RSA 2048/2048/3072, EC coordinates at full curve length" "$PY" -c '
import base64, json, sys
d = sys.argv[1]
def blen(s): return len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
want = {"rs256-1": 256, "rs256-2": 256, "ps256-1": 384, "es256-1": 32, "es384-1": 48,
        "es512-1": 66, "eddsa-1": 32, "hs256-1": 64}
for kid, n in want.items():
    k = json.load(open(f"{d}/{kid}.jwks.json"))["keys"][0]
    got = blen(k.get("n") or k.get("x") or k.get("k"))
    assert got == n, (kid, got, n)
' "$KEYS"

for kid in "${ALL_KIDS[@]}"; do
    alg=${ALG[$kid]}
    keyfile=$KEYS/$kid.pem
    [[ $kid == hs* ]] && keyfile=$KEYS/$kid.key
    if tok=$("${MINT[@]}" mint --key "$keyfile" --alg "$alg" --kid "$kid" \
        --iss https://idp.test/ --aud api://orders --sub user-1 --scope "orders:read" 2>&1); then
        check "mint $alg ($kid) verifies with PyJWT against $kid.jwks.json" \
            verify "$tok" "$KEYS/$kid.jwks.json" "$alg" api://orders
        jwks=$KEYS/jwks.json
        [[ $kid == hs* ]] && jwks=$KEYS/jwks-with-hs.json
        check "mint $alg ($kid) verifies against the combined set" verify "$tok" "$jwks" "$alg" \
            api://orders
        refused "$alg token with one flipped signature bit is refused" \
            "$("${MINT[@]}" tamper "$tok" --what signature)" "$jwks" "$alg" api://orders
        refused "$alg token with a changed claim and the old signature is refused" \
            "$("${MINT[@]}" tamper "$tok" --what payload)" "$jwks" "$alg" api://orders
    else
        fail "mint $alg ($kid)" "$tok"
    fi
done

RS=$KEYS/rs256-1.pem
base=(--key "$RS" --iss https://idp.test/ --sub user-1)
refused "expired token (exp 120 s ago) is refused" \
    "$("${MINT[@]}" mint "${base[@]}" --exp-in -120)" "$KEYS/jwks.json" RS256
refused "token not yet valid (nbf in 120 s) is refused" \
    "$("${MINT[@]}" mint "${base[@]}" --nbf-in 120)" "$KEYS/jwks.json" RS256
refused "token for another audience is refused" \
    "$("${MINT[@]}" mint "${base[@]}" --aud api://other)" "$KEYS/jwks.json" RS256 api://orders
refused "token signed by rs256-2 but labelled rs256-1 is refused" \
    "$("${MINT[@]}" mint --key "$KEYS/rs256-2.pem" --kid rs256-1 --iss https://idp.test/ \
        --sub user-1)" "$KEYS/jwks.json" RS256
check "--no-exp, --now, --claim, --header, --typ and repeated --aud land where asked" "$PY" -c '
import jwt, sys
t = sys.argv[1]
h = jwt.get_unverified_header(t)
c = jwt.decode(t, options={"verify_signature": False})
assert h == {"alg": "ES256", "kid": "es256-1", "typ": "at+jwt", "x5t": "abc"}, h
assert c == {"sub": "user-1", "aud": ["a", "b"], "iat": 1000, "nbf": 1010,
             "groups": ["admin"], "client_id": "c1"}, c
' "$("${MINT[@]}" mint --key "$KEYS/es256-1.pem" --sub user-1 --aud a --aud b --no-exp --now 1000 \
    --nbf-in 10 --claim 'groups=["admin"]' --claim 'client_id="c1"' --header 'x5t="abc"' \
    --typ at+jwt)"
check_fails "--claim with a bare word (not JSON) is an error" \
    "${MINT[@]}" mint --key "$RS" --claim groups=admin

tok=$("${MINT[@]}" mint "${base[@]}" --aud api://orders)
check "alg-none tampering yields header alg none and an empty signature" "$PY" -c '
import jwt, sys
t = sys.argv[1]
assert t.endswith(".") and t.count(".") == 2, t
assert jwt.get_unverified_header(t)["alg"] == "none"
' "$("${MINT[@]}" tamper "$tok" --what header-alg-none)"
refused "alg-none token is refused by PyJWT with RS256 expected" \
    "$("${MINT[@]}" tamper "$tok" --what header-alg-none)" "$KEYS/jwks.json" RS256 api://orders
refused "HS256 token keyed with the RSA public key PEM (alg confusion) is refused" \
    "$("${MINT[@]}" tamper "$tok" --what alg-confusion --secret-file "$KEYS/rs256-1.pub.pem")" \
    "$KEYS/jwks.json" RS256 api://orders
check "alg-confusion token is a correct HMAC over the public key PEM (the test is real)" "$PY" -c '
import jwt, sys
import hmac, hashlib, base64
h, p, s = sys.argv[1].split(".")
mac = hmac.new(open(sys.argv[2], "rb").read(), f"{h}.{p}".encode(), hashlib.sha256).digest()
assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == s
' "$("${MINT[@]}" tamper "$tok" --what alg-confusion --secret-file "$KEYS/rs256-1.pub.pem")" \
    "$KEYS/rs256-1.pub.pem"
es=$("${MINT[@]}" mint --key "$KEYS/es256-1.pem" --iss https://idp.test/ --sub user-1)
refused "ES256 token with an all-zero signature (CVE-2022-21449) is refused" \
    "$("${MINT[@]}" tamper "$es" --what zero-signature)" "$KEYS/jwks.json" ES256
check "mint-raw signs exact bytes (duplicate claim kept), PyJWT verifies the signature" "$PY" -c '
import base64, jwt, sys
t = sys.argv[1]
p = t.split(".")[1]
assert base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) == b"{\"sub\":\"a\",\"sub\":\"b\"}"
jwt.api_jws.decode(t, open(sys.argv[2], "rb").read(), algorithms=["RS256"])
' "$("${MINT[@]}" mint-raw --key "$RS" --alg RS256 --header-json '{"alg":"RS256","kid":"rs256-1"}' \
    --payload-json '{"sub":"a","sub":"b"}')" "$KEYS/rs256-1.pub.pem"
check "mint.py imports as a module (keygen, mint, tamper)" "$PY" -c '
import sys, tempfile
sys.path.insert(0, sys.argv[1])
import jwt, mint
d = tempfile.mkdtemp()
jwks = mint.keygen(d)
t = mint.mint(d + "/eddsa-1.pem", sub="m", aud="x")
key = jwt.PyJWK(jwks["eddsa-1"]).key
assert jwt.decode(t, key, algorithms=["EdDSA"], audience="x")["sub"] == "m"
assert mint.tamper(t, "strip-signature").endswith(".")
import shutil; shutil.rmtree(d)
' "$TOOLS"

# --- https_server.py ----------------------------------------------------------------------------
DOC=$WORK/docroot
mkdir -p "$DOC"
cp "$KEYS/jwks.json" "$DOC/jwks.json"
if info=$("${HTTPS[@]}" start --docroot "$DOC" --state "$WORK/state" --write-discovery \
    --slow-delay 1 --cache-control "max-age=42" 2>&1); then
    SERVER_UP=1
    pass "https_server.py start"
else
    fail "https_server.py start" "$info"
fi

if [[ $SERVER_UP == 1 ]]; then
    field() {
        "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$info" "$1"
    }
    PORT=$(field port)
    CA=$(field ca_file)
    OTHER_CA=$(field other_ca_file)
    BASE=$(field base_url)
    PGID=$(field pgid)
    echo "server: $BASE pid $PGID"
    C=(curl -sS --max-time 10 --cacert "$CA")

    check "GET /jwks.json over HTTPS with the test CA returns the file" \
        cmp <("${C[@]}" "$BASE/jwks.json") "$KEYS/jwks.json"
    check "https://localhost:PORT matches the certificate too" \
        "${C[@]}" -o /dev/null "https://localhost:$PORT/jwks.json"
    check_exit "without --cacert curl refuses the certificate" 60 \
        curl -sS --max-time 10 -o /dev/null "$BASE/jwks.json"
    check_exit "with an unrelated CA curl refuses the certificate" 60 \
        curl -sS --max-time 10 --cacert "$OTHER_CA" -o /dev/null "$BASE/jwks.json"
    hdrs=$("${C[@]}" -D - -o /dev/null "$BASE/jwks.json" | tr -d '\r')
    etag=$(sed -n 's/^[Ee][Tt]ag: //p' <<<"$hdrs")
    check "static files carry an ETag" test -n "$etag"
    check "static files carry the configured Cache-Control" \
        grep -qi '^cache-control: max-age=42$' <<<"$hdrs"
    check "If-None-Match with the ETag gets 304" test "$("${C[@]}" -o /dev/null -w '%{http_code}' \
        -H "If-None-Match: $etag" "$BASE/jwks.json")" = 304
    check "discovery document points at the served JWKS" "$PY" -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["issuer"] == sys.argv[2] and d["jwks_uri"] == sys.argv[2] + "/jwks.json", d
' "$("${C[@]}" "$BASE/.well-known/openid-configuration")" "$BASE"
    check "/status500 answers 500" test "$("${C[@]}" -o /dev/null -w '%{http_code}' \
        "$BASE/status500")" = 500
    check_exit "/redirect-loop never ends (curl: too many redirects)" 47 \
        "${C[@]}" -L --max-redirs 5 -o /dev/null "$BASE/redirect-loop"
    check "/huge is over 2 MiB" test "$("${C[@]}" -o /dev/null -w '%{size_download}' \
        "$BASE/huge")" -gt $((2 * 1024 * 1024))
    check "/garbage answers 200 with a body that is not JSON" "$PY" -c '
import json, subprocess, sys
body = subprocess.run(sys.argv[1:], check=True, capture_output=True).stdout
assert body, "empty body"
try:
    json.loads(body)
except ValueError:
    sys.exit(0)
sys.exit(f"parsed as JSON: {body!r}")
' "${C[@]}" --fail "$BASE/garbage"
    t0=$(date +%s%N)
    check "/slow/jwks.json serves the file" \
        cmp <("${C[@]}" "$BASE/slow/jwks.json") "$KEYS/jwks.json"
    ms=$((($(date +%s%N) - t0) / 1000000))
    if ((ms >= 900)); then pass "/slow/ waited the configured 1 s (${ms} ms)"; else
        fail "/slow/ waited the configured 1 s" "${ms} ms"; fi
    rc=0
    out=$("${C[@]}" --max-time 2 -o /dev/null -w '%{http_code} %{size_download}' \
        "$BASE/trickle/jwks.json" 2>/dev/null) || rc=$?
    if [[ $rc == 28 && $out == 200\ * ]]; then pass "/trickle/ sends 200 then stalls ($out)"; else
        fail "/trickle/ sends 200 then stalls" "curl exit $rc, $out"; fi
    check "access log records requests as JSON" "$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert any(r["uri"] == "/jwks.json" and r["status"] == 304 and r["if_none_match"] for r in rows)
' "$(field access_log)"

    pids=$(ps -eo pid=,pgid=,stat= | awk -v g="$PGID" '$2 == g && $3 !~ /^Z/ {print $1}' |
        paste -sd'|')
    listen=$(ss -Hltnp | grep -E "pid=($pids)," | awk '{print $4}' | sort -u)
    if [[ -n $listen && $(grep -vc '^127\.0\.0\.1:' <<<"$listen") == 0 ]]; then
        pass "nginx listens on 127.0.0.1 only ($(paste -sd' ' <<<"$listen"))"
    else
        fail "nginx listens on 127.0.0.1 only" "$listen"
    fi

    check "https_server.py stop" "${HTTPS[@]}" stop --state "$WORK/state"
    SERVER_UP=0
    alive=$(ps -eo pgid=,stat= | awk -v g="$PGID" '$1 == g && $2 !~ /^Z/' | wc -l)
    if [[ $alive == 0 ]]; then pass "no nginx process left after stop"; else
        fail "no nginx process left after stop" "$alive alive in group $PGID"; fi
    check_exit "port $PORT is closed after stop (connection refused)" 7 \
        "${C[@]}" -o /dev/null "$BASE/jwks.json"
fi

check "HttpsServer context manager serves, publishes and cleans up" "$PY" -c '
import json, os, ssl, sys, urllib.request
sys.path.insert(0, sys.argv[1])
import https_server
with https_server.HttpsServer(sys.argv[2]) as srv:
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    get = lambda p: urllib.request.urlopen(srv.url(p), context=ctx, timeout=10)
    before = get("jwks.json").headers["ETag"]
    srv.publish("jwks.json", {"keys": []})
    assert get("jwks.json").headers["ETag"] != before
    assert json.load(get("jwks.json")) == {"keys": []}
    pid, state = srv.pid, srv.state
assert not https_server._group_members(pid), "nginx left running"
assert not os.path.exists(state), "state dir left behind"
' "$TOOLS" "$DOC"

echo "$passed passed, $failed failed"
((failed == 0))
