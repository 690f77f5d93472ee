#!/usr/bin/env bash
# ncu.sh — Nsight Compute reports of the kernels of ONE decoder layer of
# `armo bench`, selected through armo's NVTX ranges (so an empty report also
# means the NVTX ranges are missing): cuBLASLt GEMMs (QKV, o, gate|up, down),
# RoPE, flash attention, fused add+RMSNorm, SwiGLU.
#
# usage: profiling/ncu.sh [armo bench options...]
#   default options: --device cuda --layers 4 --sequences 32 --workload a --warmup 0 --quiet
#   env: ARMO (default build/armo), OUTDIR (default profiling/logs), NAME (armo_ncu),
#        LAYER (NVTX range, default "armo.layer 1"), COUNT (kernels, default 12),
#        SKIP (kernels skipped inside the range first, default 0),
#        SET (ncu section set, default "full"; "basic" is faster)
# Output: $OUTDIR/$NAME.ncu-rep (open in the Nsight Compute GUI) and
#         $OUTDIR/$NAME.summary.txt (one line per kernel: duration, SM and
#         memory throughput as % of peak, tensor-pipe activity).
# Reading it: the GEMMs are tensor-core bound: sm__pipe_tensor_op_* near 70-90%
# of peak is good, a low value with high dram throughput means the shape is
# too thin (small batch) to feed the tensor cores.  Attention on 1k-4k tokens
# should be tensor-pipe bound too; RMSNorm, RoPE, SwiGLU are memory bound:
# compare dram__throughput with ~90% of peak.  Clocks are left unlocked
# (--clock-control none) so durations match real runs; add
# --clock-control base for steadier A/B comparisons.
set -uo pipefail
cd "$(dirname "$0")/.."
ARMO=${ARMO:-build/armo}
OUTDIR=${OUTDIR:-profiling/logs}
NAME=${NAME:-armo_ncu}
LAYER=${LAYER:-armo.layer 1}
COUNT=${COUNT:-12}
SKIP=${SKIP:-0}
SET=${SET:-full}
mkdir -p "$OUTDIR"
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--device cuda --layers 4 --sequences 32 --workload a --warmup 0 --quiet)
ncu --nvtx --nvtx-include "$LAYER/" --launch-skip "$SKIP" --launch-count "$COUNT" \
  --set "$SET" --clock-control none --force-overwrite --export "$OUTDIR/$NAME" \
  "$ARMO" bench "${ARGS[@]}" || { echo "ncu.sh: ncu failed" >&2; exit 1; }
ncu --import "$OUTDIR/$NAME.ncu-rep" --page raw --csv \
  --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,launch__grid_size,launch__registers_per_thread \
  > "$OUTDIR/$NAME.summary.txt" 2>&1
n=$(grep -c '^"' "$OUTDIR/$NAME.summary.txt")
if [ "$n" -le 2 ]; then
  echo "ncu.sh: no kernel inside NVTX range '$LAYER' was profiled: are the NVTX ranges there?" >&2
  exit 1
fi
cut -c1-400 "$OUTDIR/$NAME.summary.txt"
