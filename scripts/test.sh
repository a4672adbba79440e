#!/usr/bin/env bash
# The README's second command, and what CI runs (.ci/run): installs what the suite needs, builds
# warnings-as-errors, runs the whole suite, then builds and runs it again under AddressSanitizer
# and UndefinedBehaviorSanitizer. Exits non-zero when anything fails.
# JWTAUTHZ_SKIP_ASAN=1 skips the sanitizer pass (a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc)

echo "== build (warnings are errors)"
cmake -S . -B build -DJWTAUTHZ_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

echo "== format check"
bash scripts/check-format.sh

echo "== test suite"
(cd build && ctest --output-on-failure -j2)

if [[ ${JWTAUTHZ_SKIP_ASAN:-0} != 1 ]]; then
    echo "== test suite under ASan+UBSan"
    cmake -S . -B build-asan -DJWTAUTHZ_WERROR=ON -DJWTAUTHZ_SANITIZE=ON \
        -DCMAKE_BUILD_TYPE=Debug >/dev/null
    cmake --build build-asan -j"$jobs"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j2)
fi
echo "== fuzz smoke (10 s per harness; the seed corpora already replayed in ctest)"
bash scripts/fuzz.sh 10

echo "== all tests passed"
