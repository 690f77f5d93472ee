"""test_client_live.py — armo.Client against a real `armo serve` (the
build's armo CLI, tiny ArmoRM, CPU, a free loopback port), checked against
the in-process RewardModel and `armo score` on the same records: the two
halves of issue 14 (server, Python package) meeting.  test_client.py pins
the bodies the client sends against a stand-in server; this test shows the
real server understands them and the numbers come back unchanged.  Skipped
where the armo CLI was built without `armo serve` (no libmicrohttpd)."""
import re
import subprocess
import threading
import time

import pytest

import armo
from conftest import EXE, cli_score, example_records, model_dir


@pytest.fixture(scope="module")
def live_server():
    help_run = subprocess.run([EXE, "--help"], capture_output=True, text=True, timeout=60)
    if not re.search(r"^\s+serve\s", help_run.stdout, re.M):
        pytest.skip("this armo was built without `armo serve` (libmicrohttpd)")
    p = subprocess.Popen([EXE, "serve", "--model", model_dir("tiny-armorm"), "--device", "cpu",
                          "--port", "0", "--threads", "1", "--http-threads", "2"],
                         stderr=subprocess.PIPE, text=True)
    log, port, deadline = [], None, time.time() + 120
    while port is None:
        line = p.stderr.readline()
        if not line:
            p.kill()
            raise RuntimeError("armo serve exited: " + "".join(log))
        log.append(line)
        m = re.search(r"listening on http://\S+:(\d+)", line)
        if m:
            port = int(m.group(1))
        if time.time() > deadline:
            p.kill()
            raise RuntimeError("armo serve did not start: " + "".join(log))
    threading.Thread(target=lambda: [log.append(x) for x in p.stderr], daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    p.terminate()  # SIGTERM: drain, exit 0
    assert p.wait(timeout=60) == 0, "".join(log)


def test_client_records_equal_armo_score(tmp_path, live_server):
    records = example_records()
    got = armo.Client(live_server).score_records(records)
    assert got == cli_score(tmp_path, "tiny-armorm", records)


def test_client_calls_equal_reward_model(live_server, armorm):
    c = armo.Client(live_server)
    conv = [{"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "4."}]
    a, b = c.score(conv), armorm.score(conv)
    assert (a.score, a.rewards, a.gating, a.coefficients, a.tokens) == (
        b.score, b.rewards, b.gating, b.coefficients, b.tokens)
    pa = c.score_pairs("Name a prime.", "7", "8")
    pb = armorm.score_pairs("Name a prime.", "7", "8")
    assert (pa.margin, pa.preferred) == (pb.margin, pb.preferred)
    ba = c.best_of_n("Say hi.", ["hi", "hello there", "no"])
    bb = armorm.best_of_n("Say hi.", ["hi", "hello there", "no"])
    assert ba.ranking == bb.ranking
    assert [r.score for r in ba.responses] == [r.score for r in bb.responses]
    assert c.health() is not None
