#!/usr/bin/env bash
# tp_watchdog.sh — a tensor-parallel group one of whose ranks fails a batch
# alone while its peer goes on into the batch's collectives (ctest
# emu_tp_watchdog, cmake/emulator.cmake), on armo_emu with the fake NCCL:
# the group's watchdog (host/cuda/tp_group.c) sees the failed rank, aborts
# the communicators after ARMO_TP_WATCHDOG_GRACE_MS, and the peer blocked in
# ncclAllReduce returns; then
#  - 2 workers x TP 2 (4 emulated devices): the failure is named, the batch
#    is scored by the other worker, the output is byte for byte the run
#    without a failure (one TP group of 2);
#  - 1 worker (TP 2 on 2 devices): no hang, every record has its line, in
#    input order: the lines before the failure as in the run without one,
#    the rest per-record errors naming the failure.
# Every run has a timeout: a hang fails the test.
#   usage: tp_watchdog.sh ARMO_EMU_EXE MODELS_DIR SOURCE_DIR
set -u
EMU=$1
MODEL=$2/tiny-armorm
INPUT=$3/tests/dist/mixed.jsonl
TMP=$(mktemp -d /tmp/armo-tpwd.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export ASAN_OPTIONS=detect_leaks=0
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
OPTS=(score --model "$MODEL" --device cuda --tp 2 --max-batch-tokens 256 --window 8
      --input "$INPUT")

ARMO_EMU_DEVICES=2 timeout -k 10 120 "$EMU" "${OPTS[@]}" --quiet --output "$TMP/ref.jsonl"
REF_RC=$?
[ $REF_RC -le 1 ] || { echo "the reference run failed (exit $REF_RC)"; exit 1; }

# 2 workers: the other takes the batch
start=$(date +%s)
ARMO_EMU_DEVICES=4 ARMO_TEST_FAIL_TP_GROUP=1:2 ARMO_TP_WATCHDOG_GRACE_MS=300 timeout -k 10 120 \
  "$EMU" "${OPTS[@]}" --devices 0,1,2,3 --output "$TMP/dp.jsonl" 2>"$TMP/dp.err"
rc=$?
echo "2 workers x TP 2, TP rank 1 failing a batch alone: exit $rc in $(($(date +%s) - start)) s"
[ $rc -eq $REF_RC ] || { fail "exit $rc (124 or 137: a hang), the reference $REF_RC"; tail -5 "$TMP/dp.err" >&2; }
grep -qF "TP rank 1 failed (made to fail by ARMO_TEST_FAIL_TP_GROUP (test hook)) while its peers" "$TMP/dp.err" &&
  grep -qF "the watchdog aborted the group's NCCL communicators; its batch goes back to the queue (1 worker left)" "$TMP/dp.err" ||
  { fail "2 workers: the failure is not named as expected"; cat "$TMP/dp.err" >&2; }
if cmp -s "$TMP/dp.jsonl" "$TMP/ref.jsonl"; then echo "ok: 2 workers, one group failing: output byte for byte the run without a failure"
else fail "2 workers: the output differs from the run without a failure"; fi

# 1 worker: per-record errors for what is left, none lost or duplicated
start=$(date +%s)
ARMO_EMU_DEVICES=2 ARMO_TEST_FAIL_TP_GROUP=1:2 ARMO_TP_WATCHDOG_GRACE_MS=300 timeout -k 10 120 \
  "$EMU" "${OPTS[@]}" --output "$TMP/one.jsonl" 2>"$TMP/one.err"
rc=$?
echo "1 worker (TP 2), TP rank 1 failing a batch alone: exit $rc in $(($(date +%s) - start)) s"
[ $rc -eq 1 ] || { fail "1 worker: exit $rc (124 or 137: a hang), expected 1"; tail -5 "$TMP/one.err" >&2; }
python3 - "$TMP/one.jsonl" "$TMP/ref.jsonl" <<'PY' || fail "1 worker: the lines"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
ref = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(ref), "%d lines, the reference %d" % (len(got), len(ref))
cut = next(i for i, g in enumerate(got) if g != ref[i])
for i in range(cut, len(got)):
    assert got[i].get("id") == ref[i].get("id"), "line %d: id %r, reference %r" % (i + 1, got[i].get("id"), ref[i].get("id"))
    if "error" in ref[i] and got[i] == ref[i]:
        continue  # a record that fails before scoring fails alike
    e = got[i].get("error", "")
    assert "no worker is left" in e and "ARMO_TEST_FAIL_TP_GROUP" in e, "line %d: %r" % (i + 1, got[i])
print("ok: 1 worker: %d lines as the reference, then %d per-record errors naming the failure, "
      "ids in input order" % (cut, len(got) - cut))
PY
echo "tp_watchdog.sh: $FAILS failed"
[ $FAILS -eq 0 ]
