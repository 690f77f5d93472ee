#!/usr/bin/env bash
# device_check.sh — the ONE script a GPU session runs (DESIGN §5): build, GPU
# tests, compute-sanitizer, the end-to-end comparison with transformers, the
# throughput benchmark against HF, the kernel microbenchmarks; each step's full
# log in profiling/logs/<step>.log, a time limit per step, a short table last.
# Aim: under 8 minutes on an H100, so that a fix and a second run fit a slot.
#
# Deadline: the whole run ends within DEADLINE_S seconds (default 540: a
# device command may run 600 s).  Each step has a cap and the least time worth
# starting it with; a step that no longer fits is skipped with a line saying
# so, and a running one is cut at the deadline less a reserve for the summary.
# After every step the summary so far and all logs go to $OUT (summary.txt,
# device_logs.tgz: 2 of the 8 files the device tool hands back), so a run
# killed half-way still returns what it did.  A build without the CUDA
# backend, or a ctest step where no gpu test ran, is a failure, not a quiet
# green.  A gpu test that fails is rerun at once with ARMO_CUDA_SYNC=1 (the
# engine synchronises after every kernel and names the one that failed);
# memcheck runs the tests with ARMO_GPU_TEST_QUICK=1.
#
# jansson, PCRE2 and OpenBLAS on the GPU machine.  That machine has cmake,
# ninja, nvcc, python3 + torch + transformers, ncu and compute-sanitizer, but
# none of the Debian libraries this project links and no network.  So, once,
# HERE (on a machine with the Debian -dev packages):
#
#     profiling/device_check.sh --prepare
#
# copies the headers and the STATIC archives (libjansson.a, libpcre2-8.a; both
# reference only glibc 2.36-era symbols) into .deps/ at the repository root,
# with a tiny pkg-config stand-in (.deps/bin/pkg-config) that answers CMake's
# queries for exactly those modules.  OpenBLAS (the CPU backend's GEMMs) goes
# as the shared library instead (Debian's static archive, 58 MB, would not fit
# the 64 MiB a device call carries): libopenblas.so.0 with the libgfortran and
# libquadmath it needs, a one-line linker script libopenblas.so for -lopenblas,
# and an rpath (DT_RPATH, so that it covers libopenblas's own dependencies
# too) into .deps/lib; about 40 MB in all.  .deps/ is added to .git/info/exclude;
# name it in the device call's `carry`.  On the GPU machine the build then
# passes -DPKG_CONFIG_EXECUTABLE=.deps/bin/pkg-config, links jansson and
# PCRE2 statically and finds OpenBLAS through the rpath, with no
# LD_LIBRARY_PATH.  (Building here and carrying
# build/ does not work: it is > 64 MiB and full of absolute paths.)
#
# usage:
#   profiling/device_check.sh --prepare          # here: make .deps/
#   profiling/device_check.sh [--steps LIST]     # on the GPU machine
#   profiling/device_check.sh --dry-run [--steps LIST]   # here, without a GPU
#     LIST: comma-separated subset of build,ctest,emu,memcheck,compare,bench,graphs,kernels
#           (default: all, in that order; later steps need build; emu runs only
#           in a dry run)
#   env: JOBS (default nproc), PY (default python3), BUILD (default build),
#        LOGS (default profiling/logs), DEADLINE_S (default 540)
# --dry-run runs every step here, each as close to the GPU run as a machine
# without a GPU allows, so that the first GPU minute is spent measuring, not
# fixing the script: build as on the GPU; ctest -L gpu (every test must skip
# cleanly, exit 77) and then the same tests against the CPU emulator of the
# CUDA path (step emu: ctest -L emu); memcheck's loop with a stand-in
# compute-sanitizer that runs each binary as is (when the real one is
# missing); compare: the script compiles (torch is not here; with torch it
# runs as on the GPU); bench: armo_emu bench --device cuda on a small model
# with a 64^3 GEMM ceiling, summarised by the same code as the real step;
# kernels: bench_kernels must exit 77.  $OUT defaults to a temporary folder,
# and the files a GPU run would hand back are listed and checked against the
# device tool's limits (at most 8 files, plain names) at the end.
# Results: profiling/logs/<step>.log, profiling/logs/summary.txt; when $OUT is
# set (the device tool), profiling/logs is also packed into $OUT/device_logs.tgz
# and the summary copied to $OUT/summary.txt.
# Exit status: 0 every step passed (skips and timeouts of memcheck runs are
# reported, not failures), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
PY=${PY:-python3}
JOBS=${JOBS:-$(nproc)}
LOGS=${LOGS:-$ROOT/profiling/logs}

prepare() {
  set -e
  local D=$ROOT/.deps lib=/usr/lib/x86_64-linux-gnu
  rm -rf "$D"
  mkdir -p "$D/include" "$D/lib" "$D/bin"
  cp /usr/include/jansson.h /usr/include/jansson_config.h /usr/include/pcre2.h "$D/include/"
  cp "$lib/libjansson.a" "$lib/libpcre2-8.a" "$D/lib/"
  # OpenBLAS: the shared library and what it needs (see the top of this file)
  local ob=$lib/openblas-pthread
  cp /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h \
     /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h "$D/include/"
  cp "$(readlink -f "$ob/libopenblas.so.0")" "$D/lib/libopenblas.so.0"
  cp "$(readlink -f "$lib/libgfortran.so.5")" "$D/lib/libgfortran.so.5"
  cp "$(readlink -f "$lib/libquadmath.so.0")" "$D/lib/libquadmath.so.0"
  echo 'INPUT(libopenblas.so.0)' > "$D/lib/libopenblas.so"
  local vj vp vo
  vj=$(pkg-config --modversion jansson)
  vp=$(pkg-config --modversion libpcre2-8)
  vo=$(pkg-config --modversion openblas)
  cat > "$D/bin/pkg-config" <<SHIM
#!/bin/sh
# pkg-config stand-in written by profiling/device_check.sh --prepare: answers
# CMake's FindPkgConfig queries for jansson ($vj) and libpcre2-8 ($vp) from the
# static archives beside it, and for openblas ($vo) from the shared library
# there (with an rpath); any other module is "not found".
D=\$(cd "\$(dirname "\$0")/.." && pwd)
mode=; mods=
for a in "\$@"; do
  case "\$a" in
    --version) echo 0.29.2; exit 0;;
    --print-errors|--short-errors|--static) ;;
    --*) mode=\$a;;
    *) mods="\$mods \$a";;
  esac
done
libs=; other=
for m in \$mods; do
  case "\$m" in
    jansson) libs="\$libs -ljansson";;
    libpcre2-8) libs="\$libs -lpcre2-8";;
    openblas) libs="\$libs -lopenblas"; other="-Wl,--disable-new-dtags,-rpath,\$D/lib";;
    *) echo "Package \$m was not found (armo .deps pkg-config stand-in)" >&2; exit 1;;
  esac
done
case "\$mode" in
  --exists|"") exit 0;;
  --modversion) for m in \$mods; do case "\$m" in jansson) echo $vj;; openblas) echo $vo;; *) echo $vp;; esac; done;;
  --cflags|--cflags-only-I) echo "-I\$D/include";;
  --libs) echo "-L\$D/lib\$libs \$other";;
  --libs-only-other) echo "\$other";;
  --libs-only-L) echo "-L\$D/lib";;
  --libs-only-l) echo "\$libs";;
  --variable=prefix) echo "\$D";;
  --variable=includedir) echo "\$D/include";;
  --variable=libdir) echo "\$D/lib";;
  *) echo;;
esac
exit 0
SHIM
  chmod +x "$D/bin/pkg-config"
  local ex
  ex=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$ex")"
  grep -qx '/.deps/' "$ex" 2>/dev/null || echo '/.deps/' >> "$ex"
  echo "device_check: wrote $D ($(du -sh "$D" | cut -f1)); /.deps/ is in $ex."
  echo "device_check: on the GPU machine run profiling/device_check.sh with carry [\".deps\"]."
}

DRY=0
STEPS=
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) prepare; exit $?;;
    --dry-run) DRY=1; shift;;
    --steps) STEPS=${2:?--steps needs a list}; shift 2;;
    -h|--help) sed -n '2,66p' "$0"; exit 0;;
    *) echo "device_check: unknown argument '$1' (see --help)" >&2; exit 2;;
  esac
done
if [ -z "$STEPS" ]; then
  STEPS=build,ctest,memcheck,compare,bench,graphs,kernels
  [ $DRY = 1 ] && STEPS=build,ctest,emu,memcheck,compare,bench,graphs,kernels
fi
if [ $DRY = 1 ] && [ -z "${OUT:-}" ]; then
  OUT=$(mktemp -d /tmp/device_check_out.XXXXXX)   # where a GPU run's files would go
fi

mkdir -p "$LOGS"
echo '*' > "$LOGS/.gitignore"   # logs are results, never committed (RESULTS.md holds the numbers)
SUMMARY=()
FAILED=0
T_ALL=$(date +%s)
DEADLINE_S=${DEADLINE_S:-540}
T_END=$(( T_ALL + DEADLINE_S ))
RESERVE_S=8   # kept back for the summary and the last copy to $OUT
CARD=

# summary.txt and device_logs.tgz, in $LOGS and (when set) $OUT: after every step
publish() {
  {
    echo
    echo "device_check on ${CARD:-unknown GPU}, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(( $(date +%s) - T_ALL ))s of ${DEADLINE_S}s"
    printf '%-10s %-8s %7s  %s\n' step status time key
    for l in "${SUMMARY[@]}"; do echo "$l"; done
  } > "$LOGS/summary.txt"
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    cp "$LOGS/summary.txt" "$OUT/summary.txt"
    tar -czf "$OUT/device_logs.tgz.tmp" -C "$(dirname "$LOGS")" "$(basename "$LOGS")" &&
      mv "$OUT/device_logs.tgz.tmp" "$OUT/device_logs.tgz"
  fi
}

# record STEP STATUS SECONDS KEY
record() {
  SUMMARY+=("$(printf '%-10s %-8s %6ss  %s' "$1" "$2" "$3" "$4")")
  [ "$2" = ok ] || [ "$2" = skipped ] || FAILED=1
  publish
}
want() { case ",$STEPS," in *",$1,"*) return 0;; *) return 1;; esac; }
left() { echo $(( T_END - $(date +%s) - RESERVE_S )); }

# fits STEP NEED_S: 0 when at least NEED_S seconds are left before the
# deadline; else records the step as skipped, saying so
fits() {
  local l
  l=$(left)
  [ "$l" -ge "$2" ] && return 0
  echo "== $1: skipped: ${l}s left before the ${DEADLINE_S}s deadline, the step needs ${2}s"
  record "$1" skipped 0 "deadline: ${l}s left of ${DEADLINE_S}s, needs ${2}s"
  return 1
}

# run STEP CAP_S CMD... : runs CMD under timeout (CAP_S, or less if the
# deadline is nearer) with its log; sets RC and SECS
run() {
  local step=$1 limit=$2 l
  shift 2
  l=$(left)
  [ "$l" -lt "$limit" ] && limit=$l
  [ "$limit" -lt 1 ] && limit=1
  local t0
  t0=$(date +%s)
  echo "== $step: $* (limit ${limit}s)"
  { echo "# $(date -u) $*"; timeout --signal=TERM --kill-after=10 "$limit" "$@"; } \
    > "$LOGS/$step.log" 2>&1
  RC=$?
  SECS=$(( $(date +%s) - t0 ))
  echo "   exit $RC after ${SECS}s; log: $LOGS/$step.log"
}
status_of() { case $1 in 0) echo ok;; 77) echo skipped;; 124|137) echo timeout;; *) echo FAIL;; esac; }

{
  echo "# device_check $(date -u) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  nvcc --version 2>&1 | tail -2
  "$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1
} > "$LOGS/environment.log"
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

# ---- 1. build -------------------------------------------------------------------
if want build && fits build 60; then
  CMAKE_ARGS=(-S . -B "$BUILD" -G Ninja -DARMO_CUDA=ON -DCMAKE_BUILD_TYPE=Release)
  if [ -x .deps/bin/pkg-config ]; then
    CMAKE_ARGS+=(-DPKG_CONFIG_EXECUTABLE="$ROOT/.deps/bin/pkg-config")
  fi
  run build 360 bash -c "cmake ${CMAKE_ARGS[*]} && cmake --build $BUILD -j$JOBS"
  KEY="$(grep -c 'warning' "$LOGS/build.log") warnings"
  if [ $RC -eq 0 ] && ! grep -q 'armo: CUDA backend ON' "$LOGS/build.log"; then
    RC=1  # CMake found no nvcc: a CPU-only build would make every later step a false green
    KEY="$KEY; the CUDA backend was not built (CMake: $(grep -o 'armo: CUDA backend [A-Z]*' "$LOGS/build.log" | head -1))"
  fi
  [ $RC -ne 0 ] && [ ! -x .deps/bin/pkg-config ] && KEY="$KEY; no .deps/: run --prepare here first"
  record build "$(status_of $RC)" "$SECS" "$KEY"
  if [ $RC -ne 0 ]; then STEPS=""; fi  # nothing else can run
fi

# ---- 2. GPU tests ---------------------------------------------------------------
if want ctest && fits ctest 30; then
  run ctest 240 ctest --test-dir "$BUILD" -L gpu --output-on-failure
  KEY=$(grep -E 'tests passed|tests failed' "$LOGS/ctest.log" | tail -1)
  NRUN=$(grep -cE 'Test +#[0-9]+: .*(Passed|Failed)' "$LOGS/ctest.log")
  NSKIP=$(grep -cE 'Test +#[0-9]+: .*Skipped' "$LOGS/ctest.log")
  if [ $DRY = 1 ]; then  # without a GPU every gpu test must skip, none fail or pass
    KEY="dry run: $NSKIP skipped (exit 77), $NRUN ran; $KEY"
    { [ "$NRUN" -ne 0 ] || [ "$NSKIP" -eq 0 ]; } && RC=1
  elif [ "$NRUN" -eq 0 ]; then
    RC=1  # no device, or no gpu test built: not a pass
    KEY="no gpu test ran ($NSKIP skipped): no visible GPU or no CUDA build; $KEY"
  fi
  record ctest "$(status_of $RC)" "$SECS" "${KEY:-no summary}"
  # each failing gpu test again with ARMO_CUDA_SYNC=1: the engine then names
  # the kernel and layer that failed (an error raised while a kernel runs is
  # otherwise seen at a later launch or at the final sync)
  FAILED_TESTS=$(sed -n '/The following tests FAILED:/,$p' "$LOGS/ctest.log" |
                 grep -oE '[0-9]+ - [A-Za-z0-9_]+' | awk '{print $3}')
  if [ -n "$FAILED_TESTS" ] && fits rerun_sync 20; then
    run rerun_sync 120 env ARMO_CUDA_SYNC=1 ctest --test-dir "$BUILD" --output-on-failure \
      -R "^($(echo $FAILED_TESTS | tr ' ' '|'))\$"
    KEY="ARMO_CUDA_SYNC=1 rerun of $(echo $FAILED_TESTS | tr ' ' ','): $(grep -m1 -E 'failed while running|^FAIL ' "$LOGS/rerun_sync.log" | cut -c1-120)"
    record rerun_sync "$( [ $RC = 0 ] && echo ok || echo FAIL )" "$SECS" "$KEY"
  fi
fi

# ---- 2b. (dry run) the same tests against the CPU emulator of the CUDA path -----------
if want emu && [ $DRY = 1 ] && fits emu 60; then
  run emu 900 ctest --test-dir "$BUILD" -L emu -j"$JOBS" --output-on-failure
  KEY=$(grep -E 'tests passed|tests failed' "$LOGS/emu.log" | tail -1)
  record emu "$(status_of $RC)" "$SECS" "${KEY:-no summary}"
fi

# ---- 3. compute-sanitizer memcheck over each GPU test binary ---------------------
SANITIZER_NOTE=
if want memcheck && ! command -v compute-sanitizer > /dev/null && [ $DRY = 1 ]; then
  # a stand-in that drops compute-sanitizer's options and runs the program as is
  mkdir -p "$LOGS/dry-run-bin"
  cat > "$LOGS/dry-run-bin/compute-sanitizer" <<'STANDIN'
#!/usr/bin/env bash
# compute-sanitizer stand-in of device_check.sh --dry-run: runs the program
while [ $# -gt 0 ]; do
  case "$1" in
    --tool|--error-exitcode) shift 2;;
    --*) shift;;
    *) break;;
  esac
done
exec "$@"
STANDIN
  chmod +x "$LOGS/dry-run-bin/compute-sanitizer"
  PATH=$LOGS/dry-run-bin:$PATH
  SANITIZER_NOTE="dry run, stand-in compute-sanitizer: "
fi
if want memcheck && ! command -v compute-sanitizer > /dev/null; then
  record memcheck skipped 0 "compute-sanitizer not on PATH"
elif want memcheck && fits memcheck 30; then
  t0=$(date +%s)
  : > "$LOGS/memcheck.log"
  clean=0 total=0 errs=0 tos=0 notrun=0
  budget=${MEMCHECK_BUDGET:-200}   # seconds for the whole step; kernel tests first, engine last
  [ "$(left)" -lt "$budget" ] && budget=$(left)
  for bin in $(ls "$BUILD"/gpu_test_* 2>/dev/null | grep -v gpu_test_engine) "$BUILD/gpu_test_engine"; do
    [ -x "$bin" ] || continue
    total=$((total + 1))
    name=$(basename "$bin")
    left=$(( budget - ($(date +%s) - t0) ))
    limit=45
    [ "$name" = gpu_test_engine ] && limit=90
    [ $limit -gt $left ] && limit=$left
    if [ $limit -lt 10 ]; then
      echo "== memcheck $name: not run (step budget of ${budget}s spent)" | tee -a "$LOGS/memcheck.log"
      notrun=$((notrun + 1))
      continue
    fi
    echo "== memcheck $name (limit ${limit}s)" | tee -a "$LOGS/memcheck.log"
    (cd "$BUILD" && ARMO_GPU_TEST_QUICK=1 timeout --kill-after=10 "$limit" \
       compute-sanitizer --tool memcheck --error-exitcode 99 "./$name") >> "$LOGS/memcheck.log" 2>&1
    r=$?
    echo "   $name: exit $r" | tee -a "$LOGS/memcheck.log"
    case $r in
      0|77) clean=$((clean + 1));;
      124|137) tos=$((tos + 1));;
      *) errs=$((errs + 1));;
    esac
  done
  st=ok
  [ $errs -gt 0 ] && st=FAIL
  [ $total -eq 0 ] && st=FAIL   # no gpu_test_* binary: the build is not what this step expects
  record memcheck $st $(( $(date +%s) - t0 )) "$SANITIZER_NOTE$clean/$total clean, $errs with errors, $tos timed out, $notrun not run"
fi

# ---- 4. end-to-end comparison with transformers -----------------------------------
if want compare && [ $DRY = 1 ] && ! "$PY" -c 'import torch, transformers' 2> /dev/null &&
   fits compare 5; then
  run compare 60 "$PY" -m py_compile profiling/compare_hf.py profiling/bench_hf.py
  record compare "$( [ $RC = 0 ] && echo skipped || echo FAIL )" "$SECS" \
    "dry run: no torch/transformers here; compare_hf.py and bench_hf.py compile (exit $RC)"
elif want compare && fits compare 60; then
  run compare 200 env PYTHONUNBUFFERED=1 "$PY" profiling/compare_hf.py --armo "$BUILD/armo" \
    --device cuda --layers 2 --out "$LOGS/compare_hf.json"
  KEY=$(grep -E '^max \|score err\|' "$LOGS/compare.log" | awk '{print "max|err| armo " $4 " hf-bf16 " $5 " hf-bf16-head " $6}')
  KEY="$KEY; $(grep -E '^(OK|FAIL)' "$LOGS/compare.log" | cut -c1-60)"
  record compare "$(status_of $RC)" "$SECS" "$KEY"
fi

# ---- 5. throughput: armo bench and HF on the same card -----------------------------
BENCH_FITS=0
want bench && fits bench 60 && BENCH_FITS=1
if [ $BENCH_FITS = 1 ] && [ $DRY = 1 ]; then
  # armo's side of bench.sh on the emulated CUDA path (bench_hf.py needs torch)
  mkdir -p "$LOGS/bench"
  run bench 300 bash -c "bash -n profiling/bench.sh && profiling/bench.sh --help > /dev/null && \
    $BUILD/armo_emu bench --device cuda --hidden 256 --layers 1 --sequences 4 --ceiling 64 \
    --quiet --json $LOGS/bench/armo.json"
fi
if [ $BENCH_FITS = 1 ]; then
  [ $DRY = 1 ] || run bench 200 profiling/bench.sh --armo "$BUILD/armo" --device cuda --layers 8 \
    --sequences 256 --workload a --batch-sizes 1,8,32 --python "$PY" --out "$LOGS/bench" \
    -- --tokenizer "$BUILD/models/_data/llama3-tokenizer"
  KEY=$("$PY" - "$LOGS/bench/armo.json" "$LOGS/bench/hf.json" <<'PYEOF' 2>/dev/null
import json, sys
a = json.loads(open(sys.argv[1]).readline())
w = a["workloads"][0]
s = f"armo {w['tokens_per_s']:.0f} tok/s, MFU {100 * w['mfu']:.1f}% of {a['gemm_ceiling']['tflops']:.0f} TFLOP/s"
try:
    h = json.load(open(sys.argv[2]))["workloads"][w["workload"]]
    s += f"; HF best {h['best_tokens_per_s']:.0f} (x{h['ratio_best']:.2f})"
except Exception:
    pass
print(s)
PYEOF
)
  record bench "$(status_of $RC)" "$SECS" "${KEY:-no result}"
fi

# ---- 5b. CUDA graphs (issue 20, item 3): the same small-batch run with and without ---
# ARMO_CUDA_GRAPHS=1, phase timing off (its events keep graphs from running);
# batches of <= 2048 tokens, the graphs' range.  Key: the replays and the ratio.
if want graphs && fits graphs 45; then
  mkdir -p "$LOGS/graphs"
  if [ $DRY = 1 ]; then
    GARGS=(--hidden 128 --layers 1 --sequences 4 --ceiling 64)
    GEXE=$BUILD/armo_emu
  else
    GARGS=(--layers 8 --sequences 128 --ceiling 4096)
    GEXE=$BUILD/armo
  fi
  run graphs 150 bash -c "for G in 0 1; do ARMO_CUDA_GRAPHS=\$G '$GEXE' bench --device cuda \
    ${GARGS[*]} --workload a --max-batch-tokens 2048 --no-phase-times --quiet \
    --json '$LOGS/graphs/g'\$G.json || exit 1; done"
  KEY=$("$PY" - "$LOGS/graphs/g0.json" "$LOGS/graphs/g1.json" <<'PYEOF' 2>/dev/null
import json, sys
a, b = (json.loads(open(p).readline())["workloads"][0] for p in sys.argv[1:3])
print("graphs %d/%d batches replayed: %.0f vs %.0f tok/s without (x%.3f)" % (
    b["cuda_graph_replays"], b["batches"], b["tokens_per_s"], a["tokens_per_s"],
    b["tokens_per_s"] / a["tokens_per_s"]))
PYEOF
)
  record graphs "$(status_of $RC)" "$SECS" "${KEY:-no result}"
fi

# ---- 6. kernel microbenchmarks -------------------------------------------------------
if want kernels && fits kernels 20; then
  run kernels 120 "$BUILD/bench_kernels"
  KEY=$(grep -E 'gemm gate\|up +n 16384' "$LOGS/kernels.log" | head -1 | sed 's/  */ /g' | cut -c1-80)
  # the attention variants side by side (issue 20: the default is chosen by measurement)
  ATT=$(grep -E '^attention pipelined / flash 4 x 4096' "$LOGS/kernels.log" | head -1 | cut -c1-80)
  [ -n "$ATT" ] && KEY="${KEY:-see log}; $ATT"
  if [ $DRY = 1 ]; then  # no GPU: the binary must start and skip cleanly
    KEY="dry run: bench_kernels exit $RC (77 expected: no CUDA device)"
    [ $RC = 77 ] && RC=0
  fi
  record kernels "$(status_of $RC)" "$SECS" "${KEY:-see log}"
fi

# ---- summary ----------------------------------------------------------------------------
publish
cat "$LOGS/summary.txt"
if [ $DRY = 1 ] && [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
  echo "dry run: what a GPU run would hand back from \$OUT ($OUT):"
  ls -l "$OUT"
  tar -tzf "$OUT/device_logs.tgz" | sed 's/^/  /'
  # the device tool's limits: at most 8 files, names of letters, digits, . _ -
  NFILES=$(find "$OUT" -type f | wc -l)
  BADNAMES=$(find "$OUT" -mindepth 1 | sed "s|^$OUT/||" | grep -vE '^[A-Za-z0-9._/-]+$' || true)
  if [ "$NFILES" -gt 8 ] || [ -n "$BADNAMES" ] || [ ! -s "$OUT/summary.txt" ]; then
    echo "dry run: FAIL: \$OUT holds $NFILES files (at most 8) ${BADNAMES:+, bad names: $BADNAMES}"
    FAILED=1
  else
    echo "dry run: \$OUT holds $NFILES files, within the device tool's limits"
  fi
fi
exit $FAILED
