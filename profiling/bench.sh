#!/usr/bin/env bash
# bench.sh — armo against Hugging Face transformers on the same card, in one go
# (DESIGN §6: every speed as a ratio to HF bf16 + sdpa, measured in the same
# run on the same card).
#
#   1. `armo bench` writes its workloads (--workload-out) and its results (--json);
#   2. profiling/bench_hf.py scores exactly those token ids with transformers
#      (length-sorted padded batches over a batch-size sweep, and one
#      conversation per call as the model card does) and prints armo / HF.
#
# usage: profiling/bench.sh [options] [-- extra armo bench options]
#   --armo PATH          armo binary (default build/armo)
#   --device cuda|cpu    (default cuda)
#   --layers N           decoder layers of the random ArmoRM-shaped model (default 8)
#   --sequences N        sequences per workload (default 256)
#   --workload a|b|c|all (default a)
#   --batch-sizes LIST   HF batch sizes (default 1,4,8,16,32,64)
#   --python PY          python with torch + transformers (default python3)
#   --out DIR            where the JSON / JSONL / logs go (default profiling/logs/bench)
#   --no-card            skip HF's one-conversation-per-call mode
# Other armo bench options (e.g. --hidden 256 for a CPU plumbing check) go after --.
set -euo pipefail
cd "$(dirname "$0")/.."
ARMO=build/armo DEVICE=cuda LAYERS=8 SEQS=256 WL=a SIZES=1,4,8,16,32,64 PY=python3
OUTDIR=profiling/logs/bench CARD=()
while [ $# -gt 0 ]; do
  case "$1" in
    --armo) ARMO=$2; shift 2;;
    --device) DEVICE=$2; shift 2;;
    --layers) LAYERS=$2; shift 2;;
    --sequences) SEQS=$2; shift 2;;
    --workload) WL=$2; shift 2;;
    --batch-sizes) SIZES=$2; shift 2;;
    --python) PY=$2; shift 2;;
    --out) OUTDIR=$2; shift 2;;
    --no-card) CARD=(--no-card); shift;;
    --) shift; break;;
    -h|--help) sed -n '2,23p' "$0"; exit 0;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done
mkdir -p "$OUTDIR"
echo "== armo bench ($DEVICE, $LAYERS layers, workload $WL, $SEQS sequences)"
"$ARMO" bench --device "$DEVICE" --layers "$LAYERS" --sequences "$SEQS" --workload "$WL" \
  --json "$OUTDIR/armo.json" --workload-out "$OUTDIR/workload.jsonl" --quiet "$@" \
  | tee "$OUTDIR/armo.txt"
echo
echo "== Hugging Face transformers (bf16, sdpa) on the same workloads"
PYTHONUNBUFFERED=1 "$PY" profiling/bench_hf.py --workloads "$OUTDIR/workload.jsonl" \
  --armo-json "$OUTDIR/armo.json" --device "$DEVICE" --batch-sizes "$SIZES" "${CARD[@]}" \
  --out "$OUTDIR/hf.json" | tee "$OUTDIR/hf.txt"
