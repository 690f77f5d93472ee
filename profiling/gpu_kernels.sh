#!/usr/bin/env bash
# gpu_kernels.sh — what a GPU slot runs for the kernels of kernels/: every
# GPU kernel test, compute-sanitizer memcheck on them (quick shapes), the
# attention test once more through the ARMO_ATTN=simple and =pipelined
# dispatcher (every run of it checks the flash, simple and pipelined kernels
# directly too), and the
# microbenchmarks; full logs under $LOG, a short table last.
#
# Usage: profiling/gpu_kernels.sh [build-dir]   (default: build)
# Expects a build that already has the gpu_test_* and bench_kernels binaries
# (build here with sm_80 + sm_90a and carry it, or build on the GPU machine);
# LOG defaults to $OUT/kernel_logs when $OUT is set, else <build>/kernel_logs.
# Each step has a timeout (STEP_TIMEOUT, default 240 s) so one hang cannot eat
# the slot.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LOG=${LOG:-${OUT:+$OUT/kernel_logs}}
LOG=${LOG:-$BUILD/kernel_logs}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
mkdir -p "$LOG"
TESTS="embedding rmsnorm rope swiglu head gemm attention"
for t in $TESTS; do
    [ -x "$BUILD/gpu_test_$t" ] || { echo "missing $BUILD/gpu_test_$t: build first"; exit 1; }
done

rows=()
step() { # step NAME CMD... : runs CMD with a timeout, logs to $LOG/NAME.log
    local name=$1; shift
    local t0=$SECONDS
    timeout "$STEP_TIMEOUT" "$@" >"$LOG/$name.log" 2>&1
    local rc=$?
    local verdict=PASS
    case $rc in 0) ;; 77) verdict=SKIP ;; 124) verdict=TIMEOUT ;; *) verdict="FAIL($rc)" ;; esac
    rows+=("$(printf '%-28s %-10s %5ds' "$name" "$verdict" $((SECONDS - t0)))")
}

(nvidia-smi -L; nvcc --version | tail -1) >"$LOG/device.log" 2>&1
for t in $TESTS; do step "test_$t" "$BUILD/gpu_test_$t"; done
step "test_attention_dispatch" env ARMO_ATTN=simple "$BUILD/gpu_test_attention"
step "test_attention_pipelined" env ARMO_ATTN=pipelined "$BUILD/gpu_test_attention"
if command -v compute-sanitizer >/dev/null; then
    for t in $TESTS; do
        step "memcheck_$t" env ARMO_GPU_TEST_QUICK=1 compute-sanitizer --tool memcheck \
            --error-exitcode 9 "$BUILD/gpu_test_$t"
    done
else
    rows+=("compute-sanitizer          not found")
fi
[ -x "$BUILD/bench_kernels" ] && step bench_kernels "$BUILD/bench_kernels"

echo "==== errors measured (rel err vs the CPU reference) ===="
grep -h "rel err" "$LOG"/test_*.log | head -100
echo "==== failures ===="
grep -h "^FAIL\|failed\|ERROR SUMMARY: [1-9]" "$LOG"/*.log | head -40
echo "==== benchmark ===="
cat "$LOG/bench_kernels.log" 2>/dev/null
echo "==== summary (logs in $LOG) ===="
cat "$LOG/device.log"
printf '%s\n' "${rows[@]}"
