#!/usr/bin/env bash
# setup.sh — install what armo needs, build it (CUDA too when nvcc is there),
# and run the main job on the bundled tiny model, on the GPU when one is
# present, else on the CPU.  Safe to re-run.
#   usage: ./setup.sh            (build dir: ./build, or $ARMO_BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")"
BUILD=${ARMO_BUILD_DIR:-build}

need_pkgs=()
for p in build-essential cmake ninja-build pkg-config libjansson-dev libpcre2-dev xz-utils; do
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

echo
echo "== armo inspect: the bundled tiny ArmoRM =="
"$BUILD/armo" inspect --model "$BUILD/models/tiny-armorm"
