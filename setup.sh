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
# harnesses of tests/fuzz, built by cmake/fuzz.cmake, and their smoke ctests
# libopenblas-dev: the CPU backend's GEMMs (host/engine/cpu_gemm.c)
for p in build-essential cmake ninja-build pkg-config libjansson-dev libpcre2-dev xz-utils python3 \
         clang libclang-rt-dev libopenblas-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "setup: installing ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
# nvcc is usually outside PATH in a fresh shell
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

MODEL="$BUILD/models/tiny-armorm"
echo
echo "== armo inspect --model $MODEL =="
"$BUILD/armo" inspect --model "$MODEL"
echo
echo "== armo score: examples/conversations.jsonl -> $BUILD/example-scores.jsonl =="
echo "   (the bundled tiny ArmoRM has random weights: the numbers show the format, not quality)"
"$BUILD/armo" score --model "$MODEL" --input examples/conversations.jsonl \
  --output "$BUILD/example-scores.jsonl"
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
