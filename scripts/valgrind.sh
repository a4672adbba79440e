#!/usr/bin/env bash
# Runs integration and fault suites with every jwtauthzd under valgrind memcheck, and fails on any
# definite leak, invalid read or write, use of uninitialised memory or bad free in any daemon
# process. Results and what the timing failures mean: docs/robustness.md.
#
#   scripts/valgrind.sh [BUILD_DIR] [SUITE ...]
#
# BUILD_DIR (default build-rel) must be a build without sanitizers: valgrind and ASan do not mix.
# SUITE is a test file under tests/ (default: every integration suite and every fault suite but
# test_limits.py: valgrind keeps the top of a 64-descriptor limit for itself and closes what
# accept() returns there, and an RSS bound means nothing under memcheck). Each daemon writes OUT/vg.PID.log and each suite's output is
# OUT/SUITE.out, where OUT is $JWTAUTHZ_VALGRIND_OUT or BUILD_DIR/valgrind.
#
# Under valgrind the daemon runs 20-50x slower, so cases that assert a latency or a wait bound
# (KEY_WAIT, "fast" replies) may fail for time alone. Those are reported, not counted: the verdict
# of this script is valgrind's. A daemon that valgrind flags also exits 99 on SIGTERM
# (--error-exitcode), which the suite itself reports as daemons_exit_cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${1:-build-rel}
shift || true
build=$(cd "$build" && pwd)

if grep -q __asan_init "$build/daemon/jwtauthzd"; then
    echo "valgrind.sh: $build is an ASan build; use a plain one (e.g. build-rel)" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed" >&2; exit 2; }

suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
    suites=(integration/test_decisions.py integration/test_frames.py
            integration/test_cache_admin.py integration/test_keys.py
            integration/test_lifecycle.py faults/test_security.py faults/test_crash.py
            faults/test_idp_faults.py faults/test_client_abuse.py)
fi

out=${JWTAUTHZ_VALGRIND_OUT:-$build/valgrind}
rm -rf "$out"
mkdir -p "$out"
export JWTAUTHZ_BUILD=$build JWTAUTHZ_SRC=$src
export JWTAUTHZ_TESTDATA=${JWTAUTHZ_TESTDATA:-$src/../shared/testdata}
export JWTAUTHZ_VALGRIND="valgrind --leak-check=full --errors-for-leak-kinds=definite \
--error-exitcode=99 --track-fds=no --num-callers=30 --suppressions=$src/tests/valgrind.supp \
--log-file=$out/vg.%p.log"

declare -A passed failed
for s in "${suites[@]}"; do
    name=$(basename "$s" .py)
    echo "== $s under valgrind"
    start=$(date +%s)
    /usr/bin/python3 "$src/tests/$s" >"$out/$name.out" 2>&1 || true
    passed[$name]=$(grep -c '^ok ' "$out/$name.out" || true)
    failed[$name]=$(grep -c '^FAIL ' "$out/$name.out" || true)
    echo "   ${passed[$name]} passed, ${failed[$name]} failed in $(( $(date +%s) - start ))s"
    grep '^FAIL ' "$out/$name.out" | cut -c1-200 | sed 's/^/   /' || true
done

# The verdict: every daemon's memcheck log.
logs=("$out"/vg.*.log)
# What memcheck says when something is wrong (a clean log has "ERROR SUMMARY: 0 errors").
bad_re='ERROR SUMMARY: [1-9]|definitely lost: [1-9]|Invalid (read|write|free)|uninitialised'
bad_re+='|Mismatched free|Syscall param'
runs=0 complete=0 bad=0
for log in "${logs[@]}"; do
    [[ -e $log ]] || continue
    runs=$((runs + 1))
    if grep -q 'ERROR SUMMARY:' "$log"; then
        complete=$((complete + 1))
    fi
    if grep -qE "$bad_re" "$log"; then
        bad=$((bad + 1))
        echo "== valgrind reports in $log:"
        grep -E -A20 'Invalid|uninitialised|definitely lost in|Mismatched|Syscall param' \
            "$log" | head -80
    fi
done
echo "== $runs daemon processes under valgrind ($complete ran to exit; the others were killed by"
echo "   their test with SIGKILL, as crash tests do), $bad with errors"
grep -h 'definitely lost:\|indirectly lost:\|possibly lost:\|ERROR SUMMARY:' "${logs[@]}" \
    2>/dev/null | sed 's/^==[0-9]*== *//' | sort | uniq -c | sort -rn | head -12
if [[ $runs -eq 0 ]]; then
    echo "valgrind.sh: no daemon ran under valgrind" >&2
    exit 1
fi
[[ $bad -eq 0 ]]
