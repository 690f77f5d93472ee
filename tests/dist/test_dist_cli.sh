#!/usr/bin/env bash
# test_dist_cli.sh — a run split over ranks by hand (--rank / --world, and
# the launchers' environment variables), without a launcher, on the CPU:
#  - W = 1, 2, 3 ranks (and 4 over 2 records: empty parts), then
#    armo merge (parts found beside OUT, or named) -> byte for byte one
#    armo score process's output over the same mixed input;
#  - the rank from OMPI_COMM_WORLD_*, from a Slurm step's and a job
#    array's variables: the same parts;
#  - kill: one rank SIGKILLed and one SIGTERMed mid-run; merge refuses,
#    naming the rank and the record; a rerun of each with --resume
#    completes its part; the merge equals the reference;
#  - bad launches and bad parts give clear errors (exit 2): rank >= world,
#    --rank alone, a world over standard output, a batch script's
#    SLURM_NTASKS without a step (not split), a missing part, parts of two
#    world sizes, a torn line, a rank that stopped early, parts of another
#    input, a part still being written, an OUT another armo is writing.
#   usage: test_dist_cli.sh ARMO_EXE MODELS_DIR SOURCE_DIR
. "$(dirname "$0")/dist_lib.sh" "$@"

REF=$TMP/ref.jsonl
reference "$REF"
MIXED_RC=$REF_RC

score() { "$ARMO" score --model "$MODEL" --device cpu --quiet --input "$INPUT" "$@"; }

# ---- W ranks by hand, merged -----------------------------------------------------
for W in 1 2 3; do
  OUT=$TMP/w$W.jsonl
  for ((r = 0; r < W; r++)); do
    score --output "$OUT" --rank $r --world $W
    rc=$?
    check  # a rank of several exits 0 though records failed (mpirun would end the others)
    [ $rc -eq 0 ] || [ $W -eq 1 ] || fail "rank $r of $W: exit $rc"
  done
  if [ $W -eq 1 ]; then
    same "$OUT" "$REF" "world 1 writes OUT itself"
    continue
  fi
  merge "$W parts" --output "$OUT" --input "$INPUT"
  same "$OUT" "$REF" "$W ranks by hand, merged (parts found beside OUT, --input checked)"
done
OUT=$TMP/named.jsonl
merge "named parts" --output "$OUT" "$TMP"/w3.jsonl.part-00002-of-00003 \
  "$TMP"/w3.jsonl.part-00000-of-00003 "$TMP"/w3.jsonl.part-00001-of-00003
same "$OUT" "$REF" "3 named parts in any order, no --input"
head -n 2 "$INPUT" >"$TMP/two.jsonl"
reference "$TMP/two-ref.jsonl" "$TMP/two.jsonl"
for r in 0 1 2 3; do
  "$ARMO" score --model "$MODEL" --device cpu --quiet --input "$TMP/two.jsonl" \
    --output "$TMP/two.jsonl.out" --rank $r --world 4
done
merge "4 over 2" --output "$TMP/two.jsonl.out" --input "$TMP/two.jsonl"
REF_RC=$MIXED_RC
same "$TMP/two.jsonl.out" "$TMP/two-ref.jsonl" "4 ranks over 2 records (2 empty parts)"

# ---- the rank from the launcher's environment ------------------------------------
OUT=$TMP/env.jsonl
env OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 "$ARMO" score --model "$MODEL" --device cpu \
  --quiet --input "$INPUT" --output "$OUT"
env SLURM_STEP_ID=0 SLURM_PROCID=1 SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=2 "$ARMO" score \
  --model "$MODEL" --device cpu --quiet --input "$INPUT" --output "$OUT"
merge "env" --output "$OUT" --input "$INPUT" --remove-parts
same "$OUT" "$REF" "ranks from OMPI_COMM_WORLD_* and a Slurm step's variables"
check
ls "$OUT".part-* >/dev/null 2>&1 && fail "--remove-parts left parts"
OUT=$TMP/array.jsonl
for a in 3 5 7; do  # --array=3-7:2 -> ranks 0, 1, 2 of 3
  env SLURM_ARRAY_TASK_ID=$a SLURM_ARRAY_TASK_MIN=3 SLURM_ARRAY_TASK_MAX=7 \
    SLURM_ARRAY_TASK_STEP=2 SLURM_ARRAY_TASK_COUNT=3 "$ARMO" score --model "$MODEL" \
    --device cpu --quiet --input "$INPUT" --output "$OUT"
done
merge "array" --output "$OUT" --input "$INPUT"
same "$OUT" "$REF" "ranks from a job array's variables (--array=3-7:2)"
OUT=$TMP/batch.jsonl  # a batch script itself: SLURM_NTASKS of the allocation, no step
env SLURM_PROCID=0 SLURM_NTASKS=4 SLURM_JOB_ID=9 "$ARMO" score --model "$MODEL" --device cpu \
  --quiet --input "$INPUT" --output "$OUT"
same "$OUT" "$REF" "a batch script's SLURM_NTASKS without a step is not a split"
OUT=$TMP/own.jsonl  # an array task scoring a file of its own: --rank 0 --world 1
env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 "$ARMO" score \
  --model "$MODEL" --device cpu --quiet --input "$INPUT" --output "$OUT" --rank 0 --world 1
same "$OUT" "$REF" "--rank 0 --world 1 in an array task scores the whole input into OUT"

# ---- a rank killed mid-run, rerun with --resume ----------------------------------
BIG=$TMP/big.jsonl
for i in $(seq 20); do cat "$INPUT"; echo; done >"$BIG"
BIGREF=$TMP/bigref.jsonl
reference "$BIGREF" "$BIG"
OUT=$TMP/kill.jsonl
slow=(--input "$BIG" --output "$OUT" --threads 1 --window 8 --max-batch-tokens 256 --world 3)
# kill_when_written RANK SIGNAL: starts the rank, kills it once its part has 30 lines
kill_when_written() {
  local part
  part=$(printf '%s.part-%05d-of-00003' "$OUT" "$1")
  "$ARMO" score --model "$MODEL" --device cpu --quiet "${slow[@]}" --rank "$1" &
  local pid=$! i
  for ((i = 0; i < 600; i++)); do
    [ -f "$part" ] && [ "$(wc -l <"$part")" -ge 30 ] && break
    sleep 0.02
  done
  kill -"$2" $pid
  wait $pid
  local rc=$? n
  n=$(wc -l <"$part")
  echo "rank $1: killed ($2) with $n of 273 lines written, exit $rc"
  check
  [ "$n" -lt 273 ] && [ $rc -ne 0 ] || fail "rank $1 finished before the kill: not a test of it"
}
kill_when_written 0 KILL
kill_when_written 1 TERM
"$ARMO" score --model "$MODEL" --device cpu --quiet "${slow[@]}" --rank 2
expect_error 2 "did not finish; rerun it with --resume" \
  "$ARMO" merge --output "$OUT" --input "$BIG"
check
[ -e "$OUT" ] && fail "a refused merge wrote $OUT"
for r in 0 1; do
  "$ARMO" score --model "$MODEL" --device cpu --quiet "${slow[@]}" --rank $r --resume
  [ $? -eq 0 ] || fail "rank $r --resume failed"
done
merge "after --resume" --output "$OUT" --input "$BIG"
same "$OUT" "$BIGREF" "ranks killed (SIGKILL, SIGTERM) mid-run, rerun with --resume, merged"

# ---- bad launches ----------------------------------------------------------------
expect_error 2 "--rank 2 is not below --world 2" score --output "$TMP/x" --rank 2 --world 2
expect_error 2 "--rank and --world go together" score --output "$TMP/x" --rank 1
expect_error 2 "OMPI_COMM_WORLD_RANK=2 with OMPI_COMM_WORLD_SIZE=2: the rank must be below" \
  env OMPI_COMM_WORLD_RANK=2 OMPI_COMM_WORLD_SIZE=2 "$ARMO" score --model "$MODEL" \
  --input "$INPUT" --output "$TMP/x"
expect_error 2 "OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is not" \
  env OMPI_COMM_WORLD_SIZE=2 "$ARMO" score --model "$MODEL" --input "$INPUT" --output "$TMP/x"
expect_error 2 "not the standard output" score --rank 0 --world 2
expect_error 2 "the Slurm array task ids are not a regular range" \
  env SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=5 \
  SLURM_ARRAY_TASK_COUNT=3 "$ARMO" score --model "$MODEL" --input "$INPUT" --output "$TMP/x"

# ---- bad parts -------------------------------------------------------------------
P=$TMP/bad.jsonl
for r in 0 1; do score --output "$TMP/good" --rank $r --world 2; done
mk() { rm -f "$P" "$P".part-*; for r in 0 1; do cp "$TMP/good.part-0000$r-of-00002" "$P.part-0000$r-of-00002"; done; }
mk
mv "$P".part-00001-of-00002 "$TMP/p1"
expect_error 2 "rank 1's part is missing (OUT.part-00001-of-00002" "$ARMO" merge --output "$P"
mv "$TMP/p1" "$P".part-00001-of-00002
score --output "$P" --rank 0 --world 3
expect_error 2 "the parts are of two different runs" "$ARMO" merge --output "$P"
mk
head -c -40 "$P".part-00001-of-00002 >"$TMP/p1" && cp "$TMP/p1" "$P".part-00001-of-00002
expect_error 2 "line 19 of rank 1's part $P.part-00001-of-00002 is torn" \
  "$ARMO" merge --output "$P"
mk
head -n 10 "$P".part-00000-of-00002 >"$TMP/p0" && cp "$TMP/p0" "$P".part-00000-of-00002
expect_error 2 "record 20 (0-based; line 11 of rank 0's part) is missing" \
  "$ARMO" merge --output "$P"
mk
head -n 18 "$P".part-00000-of-00002 >"$TMP/p0" && cp "$TMP/p0" "$P".part-00000-of-00002
head -n 18 "$P".part-00001-of-00002 >"$TMP/p1" && cp "$TMP/p1" "$P".part-00001-of-00002
expect_error 2 "input record 36 (line 39) has no output line: it belongs to rank 0" \
  "$ARMO" merge --output "$P" --input "$INPUT"
mk
expect_error 2 "the parts are not of this input" "$ARMO" merge --output "$P" \
  --input "$SRC/examples/conversations.jsonl"
check
[ -e "$P" ] && fail "a refused merge wrote $P"
python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(30)
' "$P".part-00001-of-00002 >"$TMP/lock.txt" &
LOCKER=$!
CLEANUPS+=("kill $LOCKER 2>/dev/null")
for ((i = 0; i < 250; i++)); do grep -qs locked "$TMP/lock.txt" && break; sleep 0.02; done
expect_error 2 "is being written by process $LOCKER (a rank still running)" \
  "$ARMO" merge --output "$P"
kill $LOCKER
wait $LOCKER 2>/dev/null
mk
"$ARMO" score --model "$MODEL" --device cpu --quiet --input "$BIG" --output "$P" --threads 1 \
  --max-batch-tokens 256 --window 8 &
SCORER=$!
CLEANUPS+=("kill $SCORER 2>/dev/null")
for ((i = 0; i < 500; i++)); do [ -s "$P" ] && break; sleep 0.02; done
expect_error 2 "--output $P is being written by process $SCORER" "$ARMO" merge --output "$P"
kill $SCORER
wait $SCORER 2>/dev/null
expect_error 2 "--output OUT is required" "$ARMO" merge "$P".part-00000-of-00002
expect_error 2 "is not named as a part file" "$ARMO" merge --output "$P" "$INPUT"

finish
