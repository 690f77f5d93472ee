"""test_install.py — `pip install ./python` into a fresh virtualenv, offline:
scikit-build-core (from the wheels ./setup.sh keeps in build/pyenv/wheelhouse)
drives the project's CMake to build libarmo.so, which lands inside the
installed package; the package then scores the examples from any directory,
without ARMO_LIBRARY, exactly as `armo score` does.  ~15 s on 2 cores (the
CPU build; ARMO_CUDA=OFF keeps it short where nvcc exists)."""
import glob
import json
import os
import subprocess
import venv

import pytest

from conftest import SOURCE, cli_score, example_records, model_dir

WHEELHOUSE = os.path.join(os.environ.get("ARMO_PYENV", ""), "wheelhouse")


@pytest.mark.skipif(not glob.glob(os.path.join(WHEELHOUSE, "scikit_build_core-*.whl")),
                    reason="no scikit-build-core wheel in build/pyenv/wheelhouse (./setup.sh)")
def test_pip_install_into_a_venv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("ARMO_LIBRARY", "PYTHONPATH")}
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index"]
    subprocess.run(pip + ["--find-links", WHEELHOUSE, "scikit-build-core"], check=True, env=env,
                   timeout=300)
    run = subprocess.run(pip + ["--no-build-isolation", os.path.join(SOURCE, "python"),
                                "--config-settings=cmake.define.ARMO_CUDA=OFF"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    records = example_records()
    script = ("import armo, json, sys\n"
              "rm = armo.RewardModel(sys.argv[1], device='cpu', threads=2)\n"
              "print(armo._lib.library()._name)\n"
              "print(json.dumps(rm.score_records(json.loads(sys.argv[2]))))\n")
    out = subprocess.run([py, "-c", script, model_dir("tiny-armorm"), json.dumps(records)],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr
    lib_path, results = out.stdout.splitlines()
    assert lib_path.startswith(str(env_dir)) and lib_path.endswith("armo/libarmo.so")
    assert json.loads(results) == cli_score(tmp_path, "tiny-armorm", records)
