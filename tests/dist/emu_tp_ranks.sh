#!/usr/bin/env bash
# emu_tp_ranks.sh — `armo score --tp 2 --tp-across-ranks` under mpirun on the
# CPU emulator of the CUDA path (armo_emu; ctest emu_tp_across_ranks,
# cmake/emulator.cmake): TP groups whose ranks are processes, NCCL
# bootstrapped with the unique id broadcast over MPI, against the emulator's
# fake NCCL across processes (tests/emu/cuda/nccl_fake.cpp):
#  - mpirun -np 2 (one group of 2) over the mixed input: byte for byte the
#    single-process TP group (ARMO_EMU_DEVICES=2 armo_emu --tp 2), and
#    within bf16 tolerance of one device (TP 1);
#  - mpirun -np 4 (2 groups x TP 2) + armo merge: byte for byte the two
#    shards scored by single-process TP groups (--rank g --world 2), merged;
#  - mpirun -np 3: refused, naming the launch's rank count;
#  - one rank of a group that cannot load its model: both exit 2, the other
#    saying so, no hang;
#  - TP rank 1 made to fail a batch alone (ARMO_TEST_FAIL_TP_RANK): the job
#    ends (no hang; the failed rank waits for its blocked peer only
#    ARMO_TP_WATCHDOG_GRACE_MS, not ARMO_TP_PEER_TIMEOUT_S's 600 s, which
#    the test's 120-s timeout would cut) with a message naming the rank, the
#    output holds whole lines, and the same command with --resume completes it to the
#    single-process run's bytes;
#  - SIGTERM to one rank alone: the group's per-batch agreement stops both
#    after the same batch, the leader with the summary of an interrupted run;
#    --resume completes the output;
#  - no shared-memory segment of the fake NCCL is left behind.
# Skipped (exit 77) when mpirun is not installed.
#   usage: emu_tp_ranks.sh ARMO_EXE MODELS_DIR SOURCE_DIR ARMO_EMU_EXE
. "$(dirname "$0")/dist_lib.sh" "$@"
EMU=$4
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
export ASAN_OPTIONS=detect_leaks=0 # OpenMPI's own allocations at exit
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none -x ASAN_OPTIONS
        -x UBSAN_OPTIONS)
# small batches, so that the run has several and a failure can come mid-run
OPTS=(--model "$MODEL" --device cuda --quiet --max-batch-tokens 256 --window 8
      --input "$INPUT")
shm_before=$(ls /dev/shm | grep -c '^armo-emu-nccl-')

# ---- one group of 2 processes vs one process driving 2 devices ---------------
REF=$TMP/ref-tp2.jsonl
"$EMU" score "${OPTS[@]}" --output "$TMP/tp1.jsonl" &
TP1=$!
ARMO_EMU_DEVICES=2 "$EMU" score "${OPTS[@]}" --tp 2 --output "$REF"
REF_RC=$?
[ $REF_RC -le 1 ] || { echo "the single-process TP 2 run failed (exit $REF_RC)" >&2; exit 1; }
wait $TP1
[ $? -le 1 ] || fail "the TP 1 run failed"
OUT=$TMP/np2.jsonl
start=$(date +%s%N)
"${MPIRUN[@]}" -np 2 "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks --output "$OUT" \
  2>"$TMP/np2.err"
rc=$?
echo "mpirun -np 2 --tp 2 --tp-across-ranks: exit $rc in $((($(date +%s%N) - start) / 1000000)) ms"
check
[ $rc -eq "$REF_RC" ] || { fail "mpirun -np 2: exit $rc, the single process $REF_RC"; cat "$TMP/np2.err" >&2; }
same "$OUT" "$REF" "mpirun -np 2, one TP group of 2 processes = one process's TP group of 2"
check
python3 "$SRC/tests/dist/close_scores.py" "$OUT" "$TMP/tp1.jsonl" 5e-2 ||
  fail "mpirun -np 2 TP 2 vs TP 1: beyond the bf16 tolerance"

# ---- 2 groups of 2 processes + armo merge ---------------------------------------
for g in 0 1; do
  ARMO_EMU_DEVICES=2 "$EMU" score "${OPTS[@]}" --tp 2 --rank $g --world 2 \
    --output "$TMP/ref4.jsonl" &
done
wait
"$ARMO" merge --quiet --output "$TMP/ref4.jsonl" --input "$INPUT"
OUT=$TMP/np4.jsonl
"${MPIRUN[@]}" -np 4 "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks --output "$OUT" \
  2>"$TMP/np4.err"
rc=$?
check
[ $rc -eq 0 ] || { fail "mpirun -np 4: exit $rc"; cat "$TMP/np4.err" >&2; }
check
[ "$(ls "$TMP" | grep -c '^np4.jsonl.part-0000[01]-of-00002$')" -eq 2 ] ||
  fail "mpirun -np 4 did not write exactly the 2 groups' parts: $(ls "$TMP" | grep np4)"
merge "mpirun -np 4" --output "$OUT" --input "$INPUT"
same "$OUT" "$TMP/ref4.jsonl" "mpirun -np 4 (2 groups x TP 2), merged = 2 single-process TP groups, merged"

# ---- a world that does not divide --------------------------------------------
expect_error 2 "the launch has 3 ranks (OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE), not a multiple of 2" \
  "${MPIRUN[@]}" -np 3 "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks --output "$TMP/np3.jsonl"
check
[ ! -e "$TMP/np3.jsonl" ] || fail "the refused run created its output"

# ---- a rank that cannot set up (its model is missing): every rank exits 2 --------
expect_error 2 "another rank of TP group 0 could not set up its backend" \
  timeout -k 10 120 "${MPIRUN[@]}" -np 1 "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks \
  --output "$TMP/setup.jsonl" : -np 1 "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks \
  --output "$TMP/setup.jsonl" --model "$TMP/no-such-model"

# The job cut short in $OUT rerun with --resume (its stderr in $TMP/$1): the
# exit status and bytes of the single-process TP group's run ($2: what cut it)
resume_same() {
  "${MPIRUN[@]}" -np 2 "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks --output "$OUT" --resume \
    2>"$TMP/$1"
  local rc=$?
  check
  [ $rc -eq "$REF_RC" ] || { fail "$2: --resume: exit $rc"; cat "$TMP/$1" >&2; }
  same "$OUT" "$REF" "$2, the job rerun with --resume = one process's TP group"
}

# ---- one TP rank fails a batch alone: the job ends, --resume completes it -------
OUT=$TMP/fail.jsonl
start=$(date +%s)
timeout -k 10 120 "${MPIRUN[@]}" -np 2 -x ARMO_TEST_FAIL_TP_RANK=1:2 -x ARMO_TP_WATCHDOG_GRACE_MS=2000 \
  "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks --output "$OUT" 2>"$TMP/fail.err"
rc=$?
n=$(wc -l <"$OUT")
echo "TP rank 1 made to fail its third batch: exit $rc after $(($(date +%s) - start)) s, $n of 38 lines"
check
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && [ "$n" -lt 38 ] || fail "the failing job: exit $rc, $n lines"
check
grep -qF "TP rank 1 of group 0 (launcher rank 1 of 2): this rank failed a batch" "$TMP/fail.err" &&
  grep -qF "were not back within 2.0 s (ARMO_TP_WATCHDOG_GRACE_MS)" "$TMP/fail.err" &&
  grep -qF "made to fail by ARMO_TEST_FAIL_TP_RANK" "$TMP/fail.err" &&
  grep -qF "rerun the same command with --resume" "$TMP/fail.err" ||
  { fail "the failing job's message"; cat "$TMP/fail.err" >&2; }
resume_same resume.err "a TP rank failed mid-run"

# ---- SIGTERM to one rank alone: the whole group stops after the same batch -------
OUT=$TMP/sig.jsonl
{ echo '#!/bin/sh'
  echo "echo \$\$ >\"$TMP/pid.\$OMPI_COMM_WORLD_RANK\""
  printf 'exec'; printf ' %q' "$EMU" score "${OPTS[@]}" --tp 2 --tp-across-ranks --output "$OUT"
  echo; } >"$TMP/rank.sh"
chmod +x "$TMP/rank.sh"
"${MPIRUN[@]}" -np 2 timeout -k 10 120 "$TMP/rank.sh" 2>"$TMP/sig.err" &
JOB=$!
CLEANUPS+=("kill $JOB 2>/dev/null")
for ((i = 0; i < 3000; i++)); do
  [ -s "$TMP/pid.1" ] && [ -f "$OUT" ] && [ "$(wc -l <"$OUT")" -ge 4 ] && break
  sleep 0.02
done
kill -TERM "$(cat "$TMP/pid.1")"
wait $JOB
rc=$?
n=$(wc -l <"$OUT")
echo "SIGTERM to TP rank 1 alone after 4 lines: exit $rc, $n of 38 lines"
check
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && [ "$n" -lt 38 ] || fail "the signalled job: exit $rc, $n lines"
check
grep -qF "armo score: interrupted by SIGTERM: $OUT holds the whole lines of the first $n records" "$TMP/sig.err" ||
  { fail "the group's leader did not stop with the summary of an interrupted run"; cat "$TMP/sig.err" >&2; }
resume_same resume2.err "SIGTERM to one rank"

check
shm_after=$(ls /dev/shm | grep -c '^armo-emu-nccl-')
[ "$shm_after" -eq "$shm_before" ] || fail "shared-memory segments left in /dev/shm: $((shm_after - shm_before))"
finish
