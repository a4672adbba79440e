#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (build-fuzz/, ASan+UBSan) and runs each for SECONDS
# (default 30; the "long run" before a release is 600), starting from its seed corpus and the
# JOSE dictionary, then prints executions and coverage per harness. New inputs and crash files go
# to build-fuzz/fuzz-work/<name>/, never into fuzz/corpus/ (see fuzz/README.md for adding one).
# Exits non-zero when any harness crashed, leaked or broke an invariant.
# Usage: scripts/fuzz.sh [SECONDS [HARNESS...]]     e.g. scripts/fuzz.sh 600; scripts/fuzz.sh 60 token
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
all=(frame request admin reply json token jwks discovery config)
harnesses=("${@:-${all[@]}}")
build=${FUZZ_BUILD_DIR:-build-fuzz}
work=$build/fuzz-work

# Inputs past these sizes only repeat the size checks each parser makes first.
declare -A max_len=(
    [frame]=8192 [request]=8192 [admin]=4096 [reply]=8192 [json]=16384
    [token]=4096 [jwks]=16384 [discovery]=4096 [config]=8192
)

command -v clang >/dev/null || { echo "fuzz: clang is needed (libFuzzer)" >&2; exit 2; }
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DJWTAUTHZ_FUZZ=ON -DJWTAUTHZ_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzzers >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# A figure from libFuzzer's -print_final_stats=1 lines ("stat::NAME: VALUE").
stat_of() {
    grep -E "^stat::$1:" "$2" | grep -oE '[0-9]+$' | tail -1 || echo 0
}

failed=()
# cov: edges reached of the instrumented ones (harness and project code; yajl, APR and OpenSSL
# are Debian's, not instrumented); ft: libFuzzer's features (edges with hit counts and compares).
printf '%-10s %8s %12s %8s %12s %8s %s\n' harness seconds execs exec/s cov ft result
for name in "${harnesses[@]}"; do
    bin=$build/fuzz/fuzz_$name
    [[ -x $bin ]] || { echo "fuzz: no $bin" >&2; exit 2; }
    mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
    log=$work/$name/fuzz.log
    rc=0
    # The work corpus keeps what earlier runs found; the seeds are read alongside, untouched.
    "$bin" -max_total_time="$seconds" -max_len="${max_len[$name]}" -dict=fuzz/jose.dict \
        -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$work/$name/artifacts/" \
        "$work/$name/corpus" "fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
    stats=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
    execs=$(stat_of number_of_executed_units "$log")
    rate=$(stat_of average_exec_per_sec "$log")
    edges=$(grep -oE '\([0-9]+ inline 8-bit counters\)' "$log" | grep -oE '[0-9]+' | head -1 ||
        true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$stats" | grep -oE '[0-9]+' || echo 0)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$stats" | grep -oE '[0-9]+' || echo 0)
    result=ok
    if [[ $rc -ne 0 ]]; then
        result="FAILED (see $log, $work/$name/artifacts/)"
        failed+=("$name")
    fi
    printf '%-10s %8s %12s %8s %12s %8s %s\n' "$name" "$seconds" "$execs" "$rate" \
        "$cov/${edges:-?}" "$ft" "$result"
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all harnesses ran clean"
