#!/bin/sh
# Makes the demo issuer's keys for the default config, once per machine: an RSA-2048 private key
# only root can read, and the key set the daemon reads (jwks_file). Run by `cmake --install` when
# DIR has no demo-jwks.json yet; never shipped as fixed keys, since anyone could sign with a
# published one. Needs only the openssl CLI and coreutils' basenc. Usage: jwtauthz-demo-keys.sh DIR
set -eu
dir=$1
[ -e "$dir/demo-jwks.json" ] && exit 0
mkdir -p "$dir"
umask 077
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/demo-rs256.pem" 2>/dev/null
# RFC 7518 §6.3.1: n and e as unsigned big-endian integers in base64url without padding.
# openssl prints the modulus in upper-case hex, which is what basenc --base16 reads.
n=$(openssl rsa -in "$dir/demo-rs256.pem" -noout -modulus | sed 's/^Modulus=//' |
    basenc --base16 -d | basenc --base64url -w0 | tr -d '=')
e=$(openssl rsa -in "$dir/demo-rs256.pem" -noout -text | sed -n 's/^publicExponent: \([0-9]*\).*/\1/p')
[ "$e" = 65537 ] || { echo "jwtauthz-demo-keys: unexpected public exponent $e" >&2; exit 1; }
umask 022
printf '{"keys":[{"kty":"RSA","kid":"demo-rs256-1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}\n' \
    "$n" >"$dir/demo-jwks.json.tmp"
mv "$dir/demo-jwks.json.tmp" "$dir/demo-jwks.json"
echo "jwtauthz-demo-keys: wrote $dir/demo-jwks.json (signing key: $dir/demo-rs256.pem, root only)"
