# dist_lib.sh — what the split-run tests (tests/dist/test_dist_*.sh) share:
# the armo binary, the bundled tiny ArmoRM, the mixed input, a temporary
# folder removed at exit, the reference (one `armo score` process over the
# same input) and the checks.  Sourced, not run.
#   usage: . dist_lib.sh ARMO_EXE MODELS_DIR SOURCE_DIR
set -u
ARMO=$1
MODEL=$2/tiny-armorm
SRC=$3
INPUT=$SRC/tests/dist/mixed.jsonl   # records, pairs, best-of-N, ids, errors, blank lines
TMP=$(mktemp -d /tmp/armo-dist.XXXXXX)
chmod 755 "$TMP"
FAILS=0
CHECKS=0
CLEANUPS=()
cleanup() {
  local c
  for c in "${CLEANUPS[@]}"; do eval "$c"; done
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); }

# reference OUT [INPUT]: one armo score process over the input
reference() {
  "$ARMO" score --model "$MODEL" --device cpu --quiet --input "${2:-$INPUT}" --output "$1"
  REF_RC=$?
  [ $REF_RC -le 1 ] || { echo "reference run failed (exit $REF_RC)" >&2; exit 1; }
}

# merge WHAT ARGS...: armo merge ARGS succeeds with the exit status of the
# last reference run (1 when some records failed, as one armo score)
merge() {
  local what=$1
  shift
  check
  "$ARMO" merge --quiet "$@"
  local rc=$?
  [ $rc -eq "$REF_RC" ] || fail "merge ($what): exit $rc, one armo score process exited $REF_RC"
}

# same A B WHAT: A and B byte for byte
same() {
  check
  if cmp -s "$1" "$2"; then echo "ok: $3"; else fail "$3: $1 differs from $2"; cmp "$1" "$2" >&2; fi
}

# expect_error RC PATTERN CMD...: CMD exits RC and says PATTERN (fixed string) on stderr
expect_error() {
  local want=$1 pat=$2
  shift 2
  check
  "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
  local rc=$?
  if [ $rc -ne "$want" ] || ! grep -qF -- "$pat" "$TMP/err.txt"; then
    fail "expected exit $want and '$pat' from: $* — got exit $rc:"
    sed 's/^/    /' "$TMP/err.txt" >&2
  else
    echo "ok: refused as expected: $(grep -F -m1 -- "$pat" "$TMP/err.txt" | cut -c1-220)"
  fi
}

finish() {
  echo "$(basename "$0"): $CHECKS checks, $FAILS failed"
  [ $FAILS -eq 0 ]
  exit $?
}
