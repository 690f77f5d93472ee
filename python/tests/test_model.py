"""test_model.py — armo.RewardModel (libarmo in process) against `armo
score` on the same records: the same result objects, numbers equal exactly
(both print them with the same code; any difference in the scoring path
shows)."""
import ctypes
import json
import threading

import pytest

import armo
from conftest import cli_score, example_records, model_dir

BAD_RECORDS = [
    {"id": "no-assistant", "messages": [{"role": "user", "content": "only a question"}]},
    {"id": "empty", "messages": []},
    {"id": 7, "prompt": "p", "chosen": "a"},
    {"id": "big-id", "input_ids": [128000, 99999999]},
]


def test_records_equal_cli(tmp_path, any_model):
    """Every record kind of the examples, and bad records mixed in: the same
    objects as the CLI's lines, in the same order."""
    name, rm = any_model
    records = example_records() + BAD_RECORDS + example_records()[:2]
    got = rm.score_records(records)
    assert got == cli_score(tmp_path, name, records)
    assert [r.get("id") for r in got] == [r.get("id") for r in records]


def test_score_json_is_cli_text(tmp_path, armorm):
    """The raw call: the result text holds the CLI's lines byte for byte,
    ids echoed as written (1.0, unicode, nested) and non-object elements a
    per-record error, as a non-object line is for the CLI."""
    lines = ['{"id": 1.0, "prompt": "Hi", "response": "Hello"}',
             '{"id": {"k": ["\\u00e9", 2]}, "prompt": "Hi", "response": "Hé"}',
             '{"id": "q\\"]},{", "prompt": "say \\"hi\\" [{", "response": "ok \\\\"}',
             '5', '"text"', '{"id":"x","input_ids":[128000,128006,882,128007,271,9906,0,128009,'
             '128006,78191,128007,271,13347,1070,0,128009]}']
    text = armorm.score_json("[" + ",\n ".join(lines) + "]")
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    import subprocess
    from conftest import EXE
    cli = subprocess.run([EXE, "score", "--model", model_dir("tiny-armorm"), "--device", "cpu",
                          "--quiet", "--input", str(path)], capture_output=True, text=True)
    assert text == "[" + ",".join(cli.stdout.splitlines()) + "]"
    one = armorm.score_json(lines[0])  # one object in, one object out
    assert one == cli.stdout.splitlines()[0]
    assert armorm.score_json("[]") == "[]"


def test_score_one_and_many(tmp_path, armorm):
    recs = [r for r in example_records() if "messages" in r]
    cli = cli_score(tmp_path, "tiny-armorm", recs)
    one = armorm.score(recs[0]["messages"])
    assert isinstance(one, armo.Score)
    assert one.score == cli[0]["score"] and one.rewards == cli[0]["rewards"]
    assert one.gating == cli[0]["gating"] and one.coefficients == cli[0]["coefficients"]
    assert one.tokens == cli[0]["tokens"]
    assert one.objectives == armorm.objectives and len(armorm.objectives) == 19
    many = armorm.score([r["messages"] for r in recs])
    assert [s.score for s in many] == [c["score"] for c in cli]
    # score = sum(rewards x coefficients), as the README says
    s = many[1]
    assert abs(sum(s.rewards[k] * s.coefficients[k] for k in s.rewards) - s.score) < 1e-5


def test_pairs(tmp_path, armorm):
    prompts = ["How do I sort a list of numbers in Python?",
               [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Name a prime number."}]]
    chosen = ["Use sorted(xs).", "7"]
    rejected = ["You cannot.", "8"]
    recs = [{"prompt": prompts[0], "chosen": chosen[0], "rejected": rejected[0]},
            {"messages": prompts[1], "chosen": chosen[1], "rejected": rejected[1]}]
    cli = cli_score(tmp_path, "tiny-armorm", recs)
    got = armorm.score_pairs(prompts, chosen, rejected)
    assert [g.raw for g in got] == cli
    assert got[0].margin == cli[0]["margin"] and got[0].preferred == cli[0]["preferred"]
    assert got[1].chosen.score == cli[1]["chosen"]["score"]
    assert got[1].explanation == cli[1]["explanation"]
    single = armorm.score_pairs(prompts[0], chosen[0], rejected[0])
    assert single.raw == cli[0]
    with pytest.raises(ValueError):
        armorm.score_pairs(prompts, chosen, rejected[:1])


def test_best_of_n(tmp_path, armorm):
    rec = next(r for r in example_records() if "responses" in r)
    cli = cli_score(tmp_path, "tiny-armorm", [{k: v for k, v in rec.items() if k != "id"}])[0]
    got = armorm.best_of_n(rec["prompt"], rec["responses"])
    assert isinstance(got, armo.BestOfN)
    assert got.raw == cli and got.ranking == cli["ranking"] and got.best == cli["best"]
    assert [r.score for r in got.responses] == [r["score"] for r in cli["responses"]]
    many = armorm.best_of_n([rec["prompt"], rec["prompt"]], [rec["responses"], rec["responses"][:2]])
    assert many[0].raw == cli and len(many[1].responses) == 2


def test_input_ids(tmp_path, armorm):
    rec = next(r for r in example_records() if "input_ids" in r)
    cli = cli_score(tmp_path, "tiny-armorm", [{"input_ids": rec["input_ids"]}])[0]
    got = armorm.score_ids([rec["input_ids"]])[0]
    assert got.raw == cli


def test_numpy(tmp_path, armorm):
    np = pytest.importorskip("numpy")
    rec = example_records()[0]
    s = armorm.score(rec["messages"])
    a = armorm.score(rec["messages"], as_numpy=True)
    assert isinstance(a.rewards, np.ndarray) and a.rewards.shape == (19,)
    assert a.rewards.tolist() == [s.rewards[k] for k in armorm.objectives]
    assert a.coefficients.tolist() == [s.coefficients[k] for k in armorm.objectives]
    assert a.gating.tolist() == [s.gating[k] for k in armorm.objectives]


def test_single_head_rm(tmp_path):
    with armo.RewardModel(model_dir("tiny-rm-llama3"), device="cpu", threads=2) as rm:
        assert rm.objectives == [] and rm.info["arch"] == "LlamaForSequenceClassification"
        rec = example_records()[0]
        s = rm.score(rec["messages"])
        cli = cli_score(tmp_path, "tiny-rm-llama3", [rec])[0]
        assert s.score == cli["score"] and s.rewards is None


def test_record_errors(tmp_path, armorm):
    """A bad record: ArmoError with the CLI's message, or None with
    errors="none"; the others still scored."""
    bad = [{"role": "user", "content": "no assistant turn"}]
    good = example_records()[0]["messages"]
    cli = cli_score(tmp_path, "tiny-armorm", [{"messages": good}, {"messages": bad}])
    with pytest.raises(armo.ArmoError) as exc:
        armorm.score([good, bad])
    assert str(exc.value) == cli[1]["error"]
    assert "Token pattern not found" in str(exc.value)
    got = armorm.score([good, bad], errors="none")
    assert got[0].score == cli[0]["score"] and got[1] is None


def test_call_errors(armorm):
    with pytest.raises(armo.ArmoError, match="not valid JSON"):
        armorm.score_json("{not json")
    with pytest.raises(armo.ArmoError, match="object or an array"):
        armorm.score_json("5")
    with pytest.raises(armo.ArmoError, match="nope"):
        armo.RewardModel(model_dir("nope"), device="cpu")
    with pytest.raises(armo.ArmoError, match="auto, cuda or cpu"):
        armo.RewardModel(model_dir("tiny-armorm"), device="tpu")
    with pytest.raises(TypeError):
        armorm.score("a string is not a conversation")


def test_closed_model():
    rm = armo.RewardModel(model_dir("tiny-armorm"), device="cpu", threads=1)
    rm.close()
    rm.close()
    with pytest.raises(armo.ArmoError, match="closed"):
        rm.score_json("[]")


def test_threads_share_a_model(tmp_path, armorm):
    """Concurrent calls on one handle (serialised inside) give the CLI's numbers."""
    records = example_records()
    want = cli_score(tmp_path, "tiny-armorm", records)
    got, errors = [None] * 6, []

    def work(i):
        try:
            got[i] = armorm.score_records(records)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(g == want for g in got)


def test_only_the_api_is_exported():
    lib = ctypes.CDLL(armo._lib.library()._name)
    assert hasattr(lib, "armo_api_score") and hasattr(lib, "armo_api_open")
    for internal in ("armo_model_open", "armo_schedule", "armo_score_jobs", "armo_scoring_init",
                     "armo_backend_open", "armo_err_set"):
        assert not hasattr(lib, internal), internal


def test_info(armorm):
    info = armorm.info
    assert info["device"] == "cpu" and info["threads"] == 2
    assert info["max_batch_tokens"] == 2048 and info["objectives"][0] == "helpsteer-helpfulness"
    assert json.loads(json.dumps(info)) == info


def test_many_records_cross_windows(tmp_path, armorm):
    """More records than one window (2048) in one call: order, numbering of
    the per-record errors ("line N") and numbers as the CLI's."""
    ids = next(r for r in example_records() if "input_ids" in r)["input_ids"]
    records = [{"id": i, "input_ids": ids[:8 + i % 9] if i % 7 else ids} for i in range(4200)]
    for i in (0, 2047, 2048, 4095, 4199):
        records[i] = {"id": i, "prompt": 5}
    got = armorm.score_records(records)
    assert got == cli_score(tmp_path, "tiny-armorm", records)
    assert got[2048]["error"].startswith("line 2049 (id 2048)")
