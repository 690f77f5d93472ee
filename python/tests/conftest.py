"""conftest.py — what the armo package's tests need: libarmo.so, the armo
CLI (the reference: every number is checked against `armo score` on the same
records) and the bundled tiny models, found through the environment the
ctest python_package sets (ARMO_LIBRARY, ARMO_EXE, ARMO_MODELS_DIR,
ARMO_SOURCE_DIR) or, run by hand, a build directory ./build beside python/."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("ARMO_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BUILD = os.path.join(SOURCE, "build")
os.environ.setdefault("ARMO_LIBRARY", os.path.join(BUILD, "libarmo.so"))
EXE = os.environ.get("ARMO_EXE", os.path.join(BUILD, "armo"))
MODELS = os.environ.get("ARMO_MODELS_DIR", os.path.join(BUILD, "models"))
sys.path.insert(0, os.path.join(SOURCE, "python"))

import armo  # noqa: E402  (the checkout's package, over ARMO_LIBRARY)

MODEL_NAMES = ["tiny-armorm", "tiny-armorm-sharded", "tiny-rm-llama3"]


def model_dir(name):
    return os.path.join(MODELS, name)


def example_records():
    """examples/conversations.jsonl: every record kind."""
    with open(os.path.join(SOURCE, "examples", "conversations.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cli_score(tmp_path, model, records, *args):
    """`armo score` on the records (one JSON line each, as json.dumps writes
    them) -> its result objects, one per line."""
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    run = subprocess.run([EXE, "score", "--model", model_dir(model), "--device", "cpu", "--quiet",
                          "--threads", "2", "--input", str(path), *args],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.fixture(scope="session", params=MODEL_NAMES)
def any_model(request):
    with armo.RewardModel(model_dir(request.param), device="cpu", threads=2) as rm:
        yield request.param, rm


@pytest.fixture(scope="session")
def armorm():
    with armo.RewardModel(model_dir("tiny-armorm"), device="cpu", threads=2) as rm:
        yield rm
