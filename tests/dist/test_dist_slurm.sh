#!/usr/bin/env bash
# test_dist_slurm.sh — armo score under a real single-node Slurm cluster
# that the test starts itself (its own munged, slurmctld and slurmd, as
# ../shared/notes/cluster.md measured, but with every path in a temporary
# folder, random free ports and its own munge socket, so that it touches
# no system state and no other cluster), then armo merge, on the CPU:
#  - srun -n 2 (ranks from SLURM_PROCID / SLURM_STEP_NUM_TASKS);
#  - examples/slurm/armo-array.sbatch submitted with --array=0-1 (ranks
#    from SLURM_ARRAY_TASK_*);
#  - examples/slurm/armo-multinode.sbatch with 2 tasks on the one node
#    (srun inside the batch script, then the script's own armo merge);
#  - where the build has the CUDA emulator (ARMO_EMU set by
#    cmake/emulator.cmake): srun --mpi=pmix -n 2 of armo_emu score --tp 2
#    --tp-across-ranks, one TP group whose ranks are Slurm's tasks, MPI
#    started through PMIx, against the single-process group;
# each merged output byte for byte one armo score process's.  The README's
# scripts are run as written but for their --gpus-per-task line (no GPU
# here) and the sizes given on the sbatch command line.
# The daemons are stopped by their PIDs at exit, whatever happened.
# Skipped (exit 77) when Slurm or munge is not installed or the cluster
# does not come up (its logs printed).
#   usage: test_dist_slurm.sh ARMO_EXE MODELS_DIR SOURCE_DIR
. "$(dirname "$0")/dist_lib.sh" "$@"
for t in munged slurmctld slurmd srun sbatch squeue sinfo; do
  command -v $t >/dev/null || [ -x /usr/sbin/$t ] ||
    { echo "SKIP: $t not found (apt-get install slurm-wlm munge)"; exit 77; }
done
export PATH=$PATH:/usr/sbin
T=$TMP/slurm
mkdir -p "$T/state" "$T/spool" "$T/log" "$T/munge"
id munge >/dev/null 2>&1 && chown munge:munge "$T/munge"

# stop PIDFILE: the daemon's PID from its file, SIGTERM, wait (up to 15 s), SIGKILL
stop() {
  [ -s "$1" ] || return 0
  local pid i
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "$1: pid $pid did not stop in 15 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null
}
CLEANUPS+=("stop $T/slurmd.pid; stop $T/slurmctld.pid; stop $T/munge/munged.pid")
skip() {
  echo "SKIP: the test's Slurm cluster did not come up: $*"
  for f in "$T"/log/* "$T"/munge/munged.log; do [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }; done
  exit 77
}

# ---- the cluster ----------------------------------------------------------------
MUNGE=(/usr/sbin/munged --socket="$T/munge/sock" --pid-file="$T/munge/munged.pid"
       --log-file="$T/munge/munged.log" --seed-file="$T/munge/seed")
if id munge >/dev/null 2>&1; then runuser -u munge -- "${MUNGE[@]}"; else "${MUNGE[@]}" --force; fi ||
  skip "munged failed to start"
read -r P1 P2 < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
H=$(hostname -s)
cat >"$T/slurm.conf" <<EOF
ClusterName=armotest
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$P1
SlurmdPort=$P2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/sock
MailProg=/bin/true
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
/usr/sbin/slurmctld || skip "slurmctld failed to start"
/usr/sbin/slurmd || skip "slurmd failed to start"
for ((i = 0; i < 200; i++)); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 0.1
done
[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || skip "the node is not idle after 20 s"
echo "cluster up: slurmctld pid $(cat "$T/slurmctld.pid") port $P1, slurmd pid $(cat "$T/slurmd.pid") port $P2"

REF=$TMP/ref.jsonl
reference "$REF"
cd "$TMP"

# ---- srun -n 2 ------------------------------------------------------------------
OUT=$TMP/srun.jsonl
check
timeout 300 srun -n 2 --kill-on-bad-exit=0 "$ARMO" score --model "$MODEL" --device cpu \
  --quiet --threads 1 --input "$INPUT" --output "$OUT" || fail "srun -n 2 armo score failed"
merge "srun -n 2" --output "$OUT" --input "$INPUT"
same "$OUT" "$REF" "srun -n 2, merged"

# wait_job ID: until squeue no longer lists the job (its array tasks too), 300 s at most
wait_job() {
  local i
  for ((i = 0; i < 1500; i++)); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  fail "job $1 still queued or running after 300 s"
  scancel "$1"
}
export ARMO
sed '/--gpus-per-task/d' "$SRC/examples/slurm/armo-array.sbatch" >"$TMP/array.sbatch"
sed '/--gpus-per-task/d' "$SRC/examples/slurm/armo-multinode.sbatch" >"$TMP/multinode.sbatch"

# ---- sbatch --array=0-1 ---------------------------------------------------------
OUT=$TMP/array.jsonl
JOB=$(sbatch --parsable --array=0-1 --cpus-per-task=1 "$TMP/array.sbatch" "$MODEL" "$INPUT" "$OUT")
check
[ -n "$JOB" ] || fail "sbatch --array=0-1 refused"
wait_job "$JOB"
for f in "$TMP"/armo-"$JOB"_*.log; do echo "== $f"; cat "$f"; done
merge "sbatch --array=0-1" --output "$OUT" --input "$INPUT"
same "$OUT" "$REF" "sbatch --array=0-1 (examples/slurm/armo-array.sbatch), merged"

# ---- sbatch with srun -n 2 inside, the script merging ---------------------------
OUT=$TMP/multinode.jsonl
JOB=$(sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 "$TMP/multinode.sbatch" \
  "$MODEL" "$INPUT" "$OUT")
check
[ -n "$JOB" ] || fail "sbatch (2 tasks) refused"
wait_job "$JOB"
cat "$TMP/armo-$JOB.log"
same "$OUT" "$REF" "sbatch 2 tasks (examples/slurm/armo-multinode.sbatch): srun, its merge"

# ---- srun --mpi=pmix -n 2 of a TP group across processes (armo_emu) -------------
# where the build has the CUDA emulator with MPI and NCCL (cmake/emulator.cmake
# sets ARMO_EMU): the group's output byte for byte the single-process group's
if [ -n "${ARMO_EMU:-}" ]; then
  export ASAN_OPTIONS=detect_leaks=0 # OpenMPI's own allocations at exit
  EOPTS=(score --model "$MODEL" --device cuda --quiet --tp 2 --input "$INPUT")
  ARMO_EMU_DEVICES=2 "$ARMO_EMU" "${EOPTS[@]}" --output "$TMP/emu-ref.jsonl"
  ref_rc=$?
  OUT=$TMP/srun-tp.jsonl
  timeout -k 10 300 srun --mpi=pmix -n 2 --kill-on-bad-exit=1 "$ARMO_EMU" "${EOPTS[@]}" \
    --tp-across-ranks --output "$OUT"
  rc=$?
  check
  [ $rc -eq $ref_rc ] || fail "srun --mpi=pmix -n 2 --tp 2 --tp-across-ranks: exit $rc, one process $ref_rc"
  same "$OUT" "$TMP/emu-ref.jsonl" "srun --mpi=pmix -n 2, one TP group of 2 processes (armo_emu) = one process's group"
fi

finish
