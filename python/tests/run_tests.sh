#!/usr/bin/env bash
# run_tests.sh BUILD_DIR — the ctest python_package: the armo package's
# pytest suite (python/tests) over BUILD_DIR's libarmo.so, armo CLI and
# bundled models, with BUILD_DIR/pyenv's python (./setup.sh makes it: pytest,
# numpy, scikit-build-core); without pytest it says so and exits 77 (skipped).
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY="$BUILD/pyenv/bin/python"
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import pytest" >/dev/null 2>&1; then
  echo "python_package: skipped: pytest is not installed for $PY (./setup.sh installs it into $BUILD/pyenv)"
  exit 77
fi
export ARMO_SOURCE_DIR="$SRC" ARMO_LIBRARY="$BUILD/libarmo.so" ARMO_EXE="$BUILD/armo" \
       ARMO_MODELS_DIR="$BUILD/models" ARMO_PYENV="$BUILD/pyenv"
cd "$SRC"
exec "$PY" -m pytest -q -p no:cacheprovider "$SRC/python/tests" "${@:2}"
