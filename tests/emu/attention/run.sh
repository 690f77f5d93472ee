#!/usr/bin/env bash
# run.sh — builds and runs the CPU emulation of the attention kernels
# (attention_emu.cpp): extracts the kernel part of kernels/attention.cu (up to
# the host launchers), swaps the inline-asm mma for the emulated one, compiles
# with g++ -std=c++20 and runs.  Exit 0 when every case is within 1e-2 of the
# double-precision reference.  Takes about 2 minutes (thousands of barriers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kernels"
cp "$here/kernel_util_shim.cuh" "$work/kernels/kernel_util.cuh"
awk '/^static int check_common/{exit} {print}' "$root/kernels/attention.cu" >"$work/attn_body.inc"
python3 - "$work/attn_body.inc" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
start = s.index('    asm volatile(')
end = s.index(');\n', s.index('"r"(b0), "r"(b1)')) + 3
s = s[:start] + '    emu_mma(c, a, b0, b1);\n' + s[end:]
s = s.replace('#include "kernels/armo_kernels.h"\n', '')
open(p, 'w').write(s)
PY
cp "$here/attention_emu.cpp" "$work/"
g++ -std=c++20 -O1 -I"$work" -o "$work/attention_emu" "$work/attention_emu.cpp" -lpthread
"$work/attention_emu"
