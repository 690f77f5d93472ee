#!/usr/bin/env bash
# setup.sh — install what armo needs, build it (CUDA too when nvcc is there),
# and run the main job on the bundled tiny model, on the GPU when one is
# present, else on the CPU.  Safe to re-run.
#   usage: ./setup.sh            (build dir: ./build, or $ARMO_BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")"
BUILD=${ARMO_BUILD_DIR:-build}

need_pkgs=()
# clang + libclang-rt-dev (libFuzzer and the sanitizer runtimes): the fuzz
# harnesses of tests/fuzz, built by cmake/fuzz.cmake, and their smoke ctests;
# OpenBLAS: the CPU backend's GEMMs (host/engine/cpu_gemm.c) and, with
# LAPACKE, armo train's matrix products and solvers (host/train);
# chromium: the headless browser that opens `armo report`'s pages in the
# ctest report_browser (tests/report/test_report_browser.py);
# libmicrohttpd-dev: the HTTP server of `armo serve` (host/serve)
for p in build-essential cmake ninja-build pkg-config libjansson-dev libpcre2-dev xz-utils python3 \
         python3-venv \
         clang libclang-rt-dev libopenblas-dev liblapacke-dev chromium libmicrohttpd-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
# slurm-wlm munge openmpi-bin libopenmpi-dev: the split-run tests
# (tests/dist: mpirun -np 2, a single-node Slurm cluster the test starts);
# without their recommends (mail, docs: ~20 s instead of minutes)
dist_pkgs=()
for p in slurm-wlm munge openmpi-bin libopenmpi-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || dist_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ] || [ ${#dist_pkgs[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "setup: installing ${need_pkgs[*]} ${dist_pkgs[*]}"
  $SUDO apt-get update -qq
  [ ${#need_pkgs[@]} -eq 0 ] ||
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  [ ${#dist_pkgs[@]} -eq 0 ] ||
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${dist_pkgs[@]}" >/dev/null
fi
# nvcc is usually outside PATH in a fresh shell
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

# NCCL (tensor parallel on CUDA, --tp) comes with the CUDA installation
# here; where nvcc is found but nccl.h is not, try the PyPI wheel
# nvidia-nccl-cu13 and point CMake at it (best effort: without NCCL the CUDA
# backend is built without tensor parallel, and CMake says so)
nccl_args=()
if command -v nvcc >/dev/null 2>&1; then
  cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
  if [ ! -f "$cuda_root/include/nccl.h" ]; then
    echo "setup: no nccl.h under $cuda_root: trying the PyPI wheel nvidia-nccl-cu13"
    python3 -m pip install -q nvidia-nccl-cu13 >/dev/null 2>&1 ||
      python3 -m pip install -q --break-system-packages nvidia-nccl-cu13 >/dev/null 2>&1 || true
    nccl_dir=$(python3 -c 'import importlib.util as u; s = u.find_spec("nvidia.nccl"); print(list(s.submodule_search_locations)[0])' 2>/dev/null || true)
    if [ -n "$nccl_dir" ] && [ -f "$nccl_dir/include/nccl.h" ] && [ -f "$nccl_dir/lib/libnccl.so.2" ]; then
      nccl_args=(-DARMO_NCCL_INCLUDE_DIR="$nccl_dir/include" -DARMO_NCCL_LIBRARY="$nccl_dir/lib/libnccl.so.2")
    else
      echo "setup: NCCL not available: the CUDA backend is built without tensor parallel"
    fi
  fi
fi

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${nccl_args[@]+"${nccl_args[@]}"} >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

# The Python package's tests (ctest python_package): pytest and numpy in a
# virtualenv of the build, and scikit-build-core's wheels for the test that
# pip-installs python/ into a fresh virtualenv offline.
PYENV="$BUILD/pyenv"
if ! "$PYENV/bin/python" -c "import pytest, numpy, scikit_build_core" >/dev/null 2>&1 ||
   ! ls "$PYENV"/wheelhouse/scikit_build_core-*.whl >/dev/null 2>&1; then
  echo "setup: python test environment in $PYENV (pytest, numpy, scikit-build-core)"
  python3 -m venv "$PYENV"
  "$PYENV/bin/python" -m pip install -q --disable-pip-version-check pytest numpy scikit-build-core
  "$PYENV/bin/python" -m pip download -q --disable-pip-version-check -d "$PYENV/wheelhouse" \
    scikit-build-core
fi

MODEL="$BUILD/models/tiny-armorm"
echo
echo "== armo inspect --model $MODEL =="
"$BUILD/armo" inspect --model "$MODEL"
echo
echo "== armo score: examples/conversations.jsonl -> $BUILD/example-scores.jsonl =="
echo "   (the bundled tiny ArmoRM has random weights: the numbers show the format, not quality)"
"$BUILD/armo" score --model "$MODEL" --input examples/conversations.jsonl \
  --output "$BUILD/example-scores.jsonl" --report "$BUILD/example-report.html"
python3 - "$BUILD/example-scores.jsonl" <<'PY' 2>/dev/null || cat "$BUILD/example-scores.jsonl"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "error" in r:
        print(f"{r.get('id')}: error: {r['error']}")
    elif "margin" in r:
        print(f"{r['id']}: pair, chosen {r['chosen']['score']:+.4f} rejected {r['rejected']['score']:+.4f} "
              f"-> {r['preferred']}; moved most by {r['explanation'][0]['objective']}")
    elif "ranking" in r:
        print(f"{r['id']}: best-of-{len(r['responses'])}, ranking {r['ranking']}")
    else:
        top = max(r["gating"], key=r["gating"].get)
        print(f"{r['id']}: score {r['score']:+.4f} over {r['tokens']} tokens; largest gating weight: {top}")
PY
echo
echo "== armo report: $BUILD/example-report.html (open it in a browser; armo report --help) =="
