#!/usr/bin/env bash
# sanitized_suite.sh SRC DIR — the CPU test suite once more under
# AddressSanitizer + UBSan (ARMO_SANITIZE=ON), for the ctest
# cpu_suite_sanitized: configures and builds SRC into DIR without the CUDA
# backend, the emulator or the fuzzers (they have their own sanitized runs),
# then runs the cpu-labelled tests there.  Left out: test_bench_cli (10 min
# under ASan for what the normal build covers), test_bench_cleanup (its
# default CPU bench run: 6 min under ASan on a loaded 2-core machine;
# checked by hand: clean) and test_output_safety (its
# kill loop needs ~30 s per run under ASan; checked by hand: clean),
# test_dist_mpirun and test_dist_slurm (daemons and launchers around the same
# armo score / merge that test_dist_cli runs here), armo_mpi (ARMO_MPI=OFF)
# and python_package (a Python process cannot load an ASan-built libarmo.so
# without preloading the runtime; the code behind libarmo's API is
# armo_core's and the scheduler's, run here by the CLI tests).
# report_browser runs with 5000 synthetic records instead of 100 000 (the
# same code paths; the large file is the normal build's timing check).
set -euo pipefail
src=$1
dir=$2
jobs=${JOBS:-2}
cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARMO_SANITIZE=ON \
  -DARMO_CUDA=OFF -DARMO_EMULATOR=OFF -DARMO_FUZZ=OFF -DARMO_MPI=OFF > "$dir.configure.log" 2>&1 ||
  { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j"$jobs" > "$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; exit 1; }
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
ARMO_REPORT_TEST_RECORDS=5000 \
  ctest --test-dir "$dir" -L cpu -E 'test_bench_cli|test_bench_cleanup|test_output_safety|test_dist_mpirun|test_dist_slurm|layout_rules|sanitized|python_package' \
  -j"$jobs" --output-on-failure
