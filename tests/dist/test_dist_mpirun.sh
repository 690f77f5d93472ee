#!/usr/bin/env bash
# test_dist_mpirun.sh — armo score launched by OpenMPI's mpirun (the ranks
# learn rank and world from OMPI_COMM_WORLD_RANK / _SIZE; armo starts no
# MPI in this mode), then armo merge, on the CPU:
#  - mpirun -np 2 and -np 3 over the mixed input -> merged output byte for
#    byte one armo score process's;
#    (records fail in it: a rank exits 0 all the same, or mpirun would end
#    the others; armo merge exits 1 as one process does);
#  - a job that dies: one rank SIGKILLed mid-run (mpirun then ends the
#    other: SIGTERM), merge refuses naming a rank; the same mpirun line with
#    --resume completes both parts; the merge equals the reference.
# Skipped (exit 77) when mpirun is not installed.
#   usage: test_dist_mpirun.sh ARMO_EXE MODELS_DIR SOURCE_DIR
. "$(dirname "$0")/dist_lib.sh" "$@"
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)

REF=$TMP/ref.jsonl
reference "$REF"
for np in 2 3; do
  OUT=$TMP/np$np.jsonl
  start=$(date +%s%N)
  "${MPIRUN[@]}" -np $np "$ARMO" score --model "$MODEL" --device cpu --quiet --threads 1 \
    --input "$INPUT" --output "$OUT"
  rc=$?
  echo "mpirun -np $np: exit $rc in $((($(date +%s%N) - start) / 1000000)) ms"
  check
  [ $rc -eq 0 ] || fail "mpirun -np $np armo score failed (exit $rc)"
  merge "mpirun -np $np" --output "$OUT" --input "$INPUT"
  same "$OUT" "$REF" "mpirun -np $np, merged"
done

# ---- a rank killed mid-run; the job rerun with --resume --------------------------
BIG=$TMP/big.jsonl
for i in $(seq 20); do cat "$INPUT"; echo; done >"$BIG"
BIGREF=$TMP/bigref.jsonl
reference "$BIGREF" "$BIG"
OUT=$TMP/kill.jsonl
# each rank writes its pid (the armo process: exec) so that the test can kill one
cat >"$TMP/rank.sh" <<EOF
#!/bin/sh
echo \$\$ >"$TMP/pid.\$OMPI_COMM_WORLD_RANK"
exec "$ARMO" score --model "$MODEL" --device cpu --quiet --threads 1 --window 8 \
  --max-batch-tokens 256 --input "$BIG" --output "$OUT" "\$@"
EOF
chmod +x "$TMP/rank.sh"
"${MPIRUN[@]}" -np 2 "$TMP/rank.sh" >"$TMP/mpirun.txt" 2>&1 &
JOB=$!
CLEANUPS+=("kill $JOB 2>/dev/null")
part1=$OUT.part-00001-of-00002
for ((i = 0; i < 1000; i++)); do
  [ -f "$TMP/pid.1" ] && [ -f "$part1" ] && [ "$(wc -l <"$part1")" -ge 30 ] && break
  sleep 0.02
done
kill -KILL "$(cat "$TMP/pid.1")"
wait $JOB
rc=$?
n=$(wc -l <"$part1")
echo "mpirun job with rank 1 SIGKILLed after $n of 410 lines: exit $rc"
check
[ $rc -ne 0 ] && [ "$n" -lt 410 ] || fail "the job was not cut short (exit $rc, $n lines)"
expect_error 2 "did not finish; rerun it with --resume" \
  "$ARMO" merge --output "$OUT" --input "$BIG"
"${MPIRUN[@]}" -np 2 "$TMP/rank.sh" --resume
rc=$?
check
[ $rc -eq 0 ] || fail "mpirun --resume failed (exit $rc)"
merge "after --resume" --output "$OUT" --input "$BIG"
same "$OUT" "$BIGREF" "mpirun job with a rank killed, rerun with --resume, merged"

finish
