#!/usr/bin/env bash
# nsys.sh — an Nsight Systems timeline of `armo bench` on the GPU, with armo's
# NVTX ranges (armo.score / armo.upload / armo.embed / armo.layer N /
# armo.head / armo.download, from host/cuda/cuda_backend.c) over the CUDA
# kernels and cuBLAS calls, then the text summaries nsys can print.
#
# usage: profiling/nsys.sh [armo bench options...]
#   default options: --device cuda --layers 8 --sequences 64 --workload a --quiet
#   env: ARMO (default build/armo), OUTDIR (default profiling/logs), NAME (armo_nsys)
# Output: $OUTDIR/$NAME.nsys-rep (open it in the Nsight Systems GUI) and
#         $OUTDIR/$NAME.stats.txt (nvtx_sum, cuda_gpu_kern_sum, cuda_api_sum,
#         cuda_gpu_mem_time_sum).  Keep the run short: the report of 64
#         sequences x 8 layers is a few MB (the device tool returns files of
#         at most 16 MiB).
# Reading it: in nvtx_sum, "armo.layer N" ranges should take nearly all of
# "armo.score"; the gap between consecutive armo.score ranges is host time
# (packing, result copy-out) the GPU sits idle.  In cuda_gpu_kern_sum the
# cuBLASLt GEMM kernels (names with "gemm"/"sm90_xmma") should dominate; the
# attention kernel is next on long sequences.  If nsys records but prints no
# report (seen on the GPU machine), use profiling/ncu.sh: its NVTX filter
# also proves that the ranges are there.
set -uo pipefail
cd "$(dirname "$0")/.."
ARMO=${ARMO:-build/armo}
OUTDIR=${OUTDIR:-profiling/logs}
NAME=${NAME:-armo_nsys}
mkdir -p "$OUTDIR"
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--device cuda --layers 8 --sequences 64 --workload a --quiet)
nsys profile --output "$OUTDIR/$NAME" --force-overwrite true \
  --trace cuda,nvtx,cublas,osrt --sample none --cpuctxsw none \
  "$ARMO" bench "${ARGS[@]}" || { echo "nsys.sh: nsys profile failed" >&2; exit 1; }
nsys stats --force-export true \
  --report nvtx_sum,cuda_gpu_kern_sum,cuda_api_sum,cuda_gpu_mem_time_sum \
  "$OUTDIR/$NAME.nsys-rep" > "$OUTDIR/$NAME.stats.txt" 2>&1 \
  || echo "nsys.sh: nsys stats failed (see $OUTDIR/$NAME.stats.txt); the .nsys-rep is still there" >&2
head -80 "$OUTDIR/$NAME.stats.txt"
