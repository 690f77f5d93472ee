#!/usr/bin/env bash
# run.sh — builds and runs the CPU emulation of the attention kernels
# (attention_emu.cpp): kernels/attention.cuh is compiled unmodified, with
# shim/ first on the include path so that its kernel_util.cuh and mma.cuh
# (threads, barriers, shuffles, the mma fragment layouts) stand in for the
# CUDA ones; g++ -std=c++20.  Exit 0 when every case is within 1e-2 of the
# double-precision reference.  Takes about 2 minutes (thousands of barriers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
g++ -std=c++20 -O1 -I"$here/shim" -I"$root" -o "$work/attention_emu" "$here/attention_emu.cpp" -lpthread
"$work/attention_emu"
