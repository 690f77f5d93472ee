#!/usr/bin/env bash
# run_engine.sh — runs tests/gpu/test_engine.c (the CUDA engine against the
# CPU backend, tiny fixtures + a hidden-1024 random model + prefix sharing)
# on the CPU: host/cuda/cuda_backend.c is compiled unchanged, the CUDA
# runtime calls go to cuda_fake.c and the kernels' launchers to
# kernels_host.c (same semantics and bf16 rounding points as the kernels),
# optionally under AddressSanitizer + UBSan.  Checks the engine's host side (buffer
# sizes, row indices, last-layer gather, expanded layout, head output
# layout, error paths) and whether test_engine's bf16 tolerances hold for
# bf16-rounded activations.  Needs gcc, jansson and PCRE2 dev packages and
# the CUDA headers (no GPU, no nvcc).  About a minute on 2 cores
# (the medium model dominates); with ARMO_EMU_SANITIZE=1 the build adds
# AddressSanitizer + UBSan (several times slower).
# Usage: [ARMO_EMU_SANITIZE=1] tests/gpu/emu/engine/run_engine.sh [work dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cuda_inc=${CUDA_HOME:-/usr/local/cuda}/include
cmake -DSRC="$root" -DDST="$work/models" -P "$root/cmake/fixtures.cmake" >/dev/null
srcs=$(ls "$root"/host/*.c "$root"/weights/*.c | grep -v '/host/main.c$')
san=""
[ "${ARMO_EMU_SANITIZE:-0}" != 0 ] && san="-fsanitize=address,undefined -fno-omit-frame-pointer"
gcc -std=c11 -D_GNU_SOURCE -O2 -g $san \
    -Wall -Wextra -I"$root" -I"$cuda_inc" $(pkg-config --cflags jansson libpcre2-8) \
    -DARMO_SOURCE_DIR="\"$root\"" -DARMO_BINARY_DIR="\"$work\"" \
    -DARMO_MODELS_DIR="\"$work/models\"" -DARMO_EXE="\"/nonexistent\"" \
    -o "$work/test_engine_emu" $srcs "$root/host/cuda/cuda_backend.c" "$root/host/cuda/gemm_ceiling.c" \
    "$here/cuda_fake.c" "$here/kernels_host.c" "$root/tests/gpu/test_engine.c" \
    $(pkg-config --libs jansson libpcre2-8) -lm -lpthread
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$work/test_engine_emu"
