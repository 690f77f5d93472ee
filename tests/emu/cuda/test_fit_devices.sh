#!/usr/bin/env bash
# test_fit_devices.sh — the ctest emu_fit_devices: armo score's GPU memory
# check asks every GPU a data-parallel run uses, not only device 0 (issue 13).
# The emulator gives each device its own free memory (ARMO_EMU_MEM_FREE_BYTES
# =B0,B1,...), so one GPU of the list is made too small:
#   - nothing fits on GPU 1 (or on GPU 0): exit 2, the message names that GPU;
#   - GPU 1 holds less than the default budget: the budget is lowered for
#     every worker, the note names GPU 1, the run scores every record;
#   - the same with an explicit --max-batch-tokens: exit 2 naming GPU 1;
#   - a small GPU the run does not use (--devices 0,1 of 3) is not asked.
# usage: test_fit_devices.sh ARMO_EMU MODEL_DIR WORK_DIR
set -u
EMU=$1 MODEL=$2 WORK=$3
mkdir -p "$WORK"
IN=$WORK/in.jsonl
printf '%s\n' \
  '{"id":"a","messages":[{"role":"user","content":"Name a prime."},{"role":"assistant","content":"7"}]}' \
  '{"id":"b","prompt":"2+2?","chosen":"4","rejected":"5"}' > "$IN"
BIG=68719476736 TINY=1000 SMALL=200000000
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# run NAME FREE DEVICES EXTRA...: sets RC, ERR (stderr), OUTF
run() {
  local name=$1 free=$2 ndev=$3
  shift 3
  OUTF=$WORK/$name.out
  rm -f "$OUTF"
  ARMO_EMU_DEVICES=$ndev ARMO_EMU_MEM_FREE_BYTES=$free timeout 600 "$EMU" score --model "$MODEL" \
    --input "$IN" --output "$OUTF" "$@" 2> "$WORK/$name.err"
  RC=$?
  ERR=$(cat "$WORK/$name.err")
  CMD="ARMO_EMU_DEVICES=$ndev ARMO_EMU_MEM_FREE_BYTES=$free $EMU score ... $*"
}

run none1 "$BIG,$TINY" 2 --devices 0,1
[ "$RC" = 2 ] || fail "$CMD: exit $RC, expected 2"
grep -q "the model does not fit on GPU 1: .*1000 B free" <<< "$ERR" || fail "$CMD: stderr does not name GPU 1: $ERR"

run none0 "$TINY,$BIG" 2 --devices 0,1
[ "$RC" = 2 ] || fail "$CMD: exit $RC, expected 2"
grep -q "the model does not fit on GPU 0" <<< "$ERR" || fail "$CMD: stderr does not name GPU 0: $ERR"

run lowered "$BIG,$SMALL" 2 --devices 0,1
[ "$RC" = 0 ] || fail "$CMD: exit $RC, expected 0: $ERR"
USING=$(sed -n 's/.*default --max-batch-tokens does not fit on GPU 1: .*; using \([0-9]*\)$/\1/p' <<< "$ERR")
if [ -z "$USING" ] || [ "$USING" -ge 16384 ]; then
  fail "$CMD: no note lowering the default 16384-token budget for GPU 1: $ERR"
else
  grep -q "batches of up to $USING tokens" <<< "$ERR" || fail "$CMD: the run does not use the lowered budget $USING: $ERR"
fi
grep -q "worker 1 on" <<< "$ERR" || fail "$CMD: no second worker: $ERR"
[ "$(grep -c '"score"' "$OUTF" 2>/dev/null)" = 2 ] || fail "$CMD: expected 2 scored records in $OUTF"

run explicit "$BIG,$SMALL" 2 --devices 0,1 --max-batch-tokens 16384
[ "$RC" = 2 ] || fail "$CMD: exit $RC, expected 2"
grep -q -- "--max-batch-tokens 16384 does not fit on GPU 1" <<< "$ERR" || fail "$CMD: stderr does not name GPU 1: $ERR"

run unused "$BIG,$BIG,$TINY" 3 --devices 0,1
[ "$RC" = 0 ] || fail "$CMD: exit $RC, expected 0 (GPU 2 is not used): $ERR"

[ $FAILS = 0 ] && echo "PASS: the fit check asks each GPU of the run" && exit 0
echo "FAILED: $FAILS checks"
exit 1
