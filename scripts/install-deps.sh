#!/usr/bin/env bash
# Installs, from Debian 12's archive, everything jwtauthz's build and its whole test suite use.
# Idempotent and quick when nothing is missing (no apt-get at all then), so CI and test runs call
# it every time. JWTAUTHZ_SKIP_DEPS=1 skips it (machines managed some other way).
# Usage: scripts/install-deps.sh [--list]   (--list prints the package names and exits)
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config
    libapr1-dev libaprutil1-dev libyajl-dev libssl-dev libcurl4-openssl-dev
    # web server modules (client/apache, client/nginx) and the e2e tests that load them
    apache2 apache2-dev nginx nginx-dev
    # tests/tools/https_server.py: nginx plus echo_sleep for its /slow/ location (nginx-light is
    # only a metapackage for these two), and the openssl CLI for its throwaway CA
    libnginx-mod-http-echo openssl ca-certificates curl
    # tests/tools/mint.py: tokens from an implementation independent of ours
    python3 python3-jwt python3-cryptography
    # fuzzers and sanitizer builds; formatting and script checks CI runs
    clang libclang-rt-14-dev valgrind clang-format shellcheck
    # systemd-socket-activate and systemd-analyze for the unit and socket-activation tests
    systemd
    # benchmarks; ps/ss for tests that check what is running and listening
    wrk procps iproute2
    # bench/run_webservers.sh: the established C peer mod_jwtauthz is measured against
    # (mod_auth_openidc in OAuth 2.0 resource-server mode, on the same JWKS and tokens)
    libapache2-mod-auth-openidc
)

if [[ ${1:-} == --list ]]; then
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
fi
if [[ ${JWTAUTHZ_SKIP_DEPS:-0} == 1 ]]; then
    echo "install-deps: JWTAUTHZ_SKIP_DEPS=1, not checking packages"
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#PACKAGES[@]} packages installed"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"

SUDO=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
        echo "install-deps: not root and no sudo; install as root: ${missing[*]}" >&2
        exit 1
    fi
    SUDO=(sudo)
fi

# Installing nginx and apache2 would start both system services on port 80 of every interface:
# the second fails to bind (and dpkg with it), and the tests want no public listener anyway.
# policy-rc.d exit 101 ("action forbidden") is Debian's switch for this; container images ship
# one, a fresh install does not, so one is put in place only for this run.
POLICY=/usr/sbin/policy-rc.d
placed_policy=0
restore_policy() {
    if ((placed_policy)); then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap restore_policy EXIT
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\n# Placed by jwtauthz scripts/install-deps.sh while it runs.\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 0755 "$POLICY"
    placed_policy=1
fi

"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
