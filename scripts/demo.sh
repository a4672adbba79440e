#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, writes a demo issuer with local
# keys (made by python3-jwt, not by us) and a config for it under build/demo/, prints commands
# to paste into another terminal (ALLOW, DENY and 401), and runs jwtauthzd in the foreground.
# Stop it with Ctrl-C. Nothing outside this checkout is written (beyond Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

demo=${JWTAUTHZ_DEMO_DIR:-$root/build/demo}
mkdir -p "$demo/run" "$demo/keys"
py=/usr/bin/python3
mint=$root/tests/tools/mint.py
"$py" "$mint" keygen "$demo/keys" >/dev/null
iss=https://demo.jwtauthz.local/

cat >"$demo/jwtauthz.conf" <<CONF
// Demo config written by scripts/demo.sh; see docs/config.md for every key.
{
  "listen": "$demo/run/jwtauthz.sock",
  "admin_listen": "$demo/run/admin.sock",
  "cache_dir": "",
  "issuers": [{
    "issuer": "$iss",
    "jwks_file": "$demo/keys/jwks.json",   /* local keys: no network needed */
    "audiences": ["api://demo"],
    "algorithms": ["RS256", "ES256"],
    "context_claims": ["sub", "scope", "groups"]
  }],
  "rules": [
    { "resource": "arn:aws:execute-api:*:*:*/*/GET/orders*", "scopes": ["orders:read"] },
    { "resource": "arn:aws:execute-api:*:*:*/*/DELETE/*", "claims": { "groups": "admin" } }
  ],
  "decision_cache": { "ttl": 300, "max_entries": 100000 }
}
CONF

reader=$("$py" "$mint" mint --key "$demo/keys/rs256-1.pem" --iss "$iss" --aud api://demo \
    --sub alice --scope "orders:read" --exp-in 3600)
expired=$("$py" "$mint" mint --key "$demo/keys/es256-1.pem" --iss "$iss" --aud api://demo \
    --sub bob --scope "orders:read" --exp-in -3600 --iat-in -7200)
ctl=$root/build/client/ctl/jwtauthzctl
arn=arn:aws:execute-api:local:0:api/prod

cat >"$demo/try-me.sh" <<TRY
#!/usr/bin/env bash
# Paste these (or run this file) while jwtauthzd runs. Exit codes: 0 ALLOW, 1 DENY, 2 401.
set -x
$ctl -s $demo/run/jwtauthz.sock check --token "Bearer $reader" --resource $arn/GET/orders/42
$ctl -s $demo/run/jwtauthz.sock check --token "Bearer $reader" --resource $arn/DELETE/orders/42
$ctl -s $demo/run/jwtauthz.sock check --token "Bearer $expired" --resource $arn/GET/orders/42
$ctl -a $demo/run/admin.sock stats
TRY
chmod +x "$demo/try-me.sh"

cat <<MSG

jwtauthzd is starting on $demo/run/jwtauthz.sock with a demo issuer ($iss).
In another terminal, run:   bash $demo/try-me.sh
or paste one of these:

  # ALLOW (200): alice has scope orders:read
  $ctl -s $demo/run/jwtauthz.sock check --token "Bearer $reader" --resource $arn/GET/orders/42

  # DENY (403): DELETE needs groups=admin
  $ctl -s $demo/run/jwtauthz.sock check --token "Bearer $reader" --resource $arn/DELETE/orders/42

  # UNAUTHORIZED (401, token_expired)
  $ctl -s $demo/run/jwtauthz.sock check --token "Bearer $expired" --resource $arn/GET/orders/42

Ctrl-C stops the daemon.

MSG
exec "$root/build/daemon/jwtauthzd" -f -c "$demo/jwtauthz.conf"
