#!/usr/bin/env bash
# sanitized_suite.sh SRC DIR — the CPU test suite once more under
# AddressSanitizer + UBSan (ARMO_SANITIZE=ON), for the ctest
# cpu_suite_sanitized: configures and builds SRC into DIR without the CUDA
# backend, the emulator or the fuzzers (they have their own sanitized runs),
# then runs the cpu-labelled tests there.  Left out: test_bench_cli (10 min
# under ASan for what the normal build covers), test_bench_cleanup (its
# default CPU bench run: 6 min under ASan on a loaded 2-core machine;
# checked by hand: clean) and test_output_safety (its kill loop needs ~30 s
# per run under ASan; checked by hand: clean).
set -euo pipefail
src=$1
dir=$2
jobs=${JOBS:-2}
cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARMO_SANITIZE=ON \
  -DARMO_CUDA=OFF -DARMO_EMULATOR=OFF -DARMO_FUZZ=OFF > "$dir.configure.log" 2>&1 ||
  { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j"$jobs" > "$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; exit 1; }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$dir" -L cpu -E 'test_bench_cli|test_bench_cleanup|test_output_safety|layout_rules|sanitized' \
  -j"$jobs" --output-on-failure
