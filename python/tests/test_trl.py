"""test_trl.py — armo.trl_reward_func called the way TRL's GRPOTrainer calls
a reward function (keywords prompts, completions, completion_ids,
trainer_state and the dataset's columns), in both of TRL's formats, against
`armo score` on the records it stands for."""
import json

import pytest

import armo
from conftest import cli_score, model_dir
from fake_server import FakeServer

PROMPTS = ["Write a haiku about autumn.", "What is 2 + 2?"]
COMPLETIONS = ["Crisp leaves drift and fall\ngold light thins across the field\nthe year exhales slow",
               "4"]


def call(f, prompts, completions):
    return f(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(prompts),
             trainer_state=None, answer=["x"] * len(prompts))


def test_standard_format(tmp_path, armorm):
    f = armo.trl_reward_func(armorm)
    assert f.__name__ == "armo"
    got = call(f, PROMPTS, COMPLETIONS)
    cli = cli_score(tmp_path, "tiny-armorm",
                    [{"prompt": p, "response": c} for p, c in zip(PROMPTS, COMPLETIONS)])
    assert got == [r["score"] for r in cli]
    assert all(type(x) is float for x in got)


def test_conversational_format(tmp_path, armorm):
    prompts = [[{"role": "system", "content": "Be kind."}, {"role": "user", "content": p}]
               for p in PROMPTS]
    completions = [[{"role": "assistant", "content": c}] for c in COMPLETIONS]
    got = call(armo.trl_reward_func(armorm), prompts, completions)
    cli = cli_score(tmp_path, "tiny-armorm",
                    [{"messages": p + c} for p, c in zip(prompts, completions)])
    assert got == [r["score"] for r in cli]


def test_objective_and_errors(tmp_path, armorm):
    f = armo.trl_reward_func(armorm, objective="helpsteer-helpfulness")
    assert f.__name__ == "armo_helpsteer-helpfulness"
    cli = cli_score(tmp_path, "tiny-armorm", [{"prompt": PROMPTS[0], "response": COMPLETIONS[0]}])
    assert call(f, PROMPTS[:1], COMPLETIONS[:1]) == [cli[0]["rewards"]["helpsteer-helpfulness"]]
    with pytest.raises(armo.ArmoError, match="no objective"):
        call(armo.trl_reward_func(armorm, objective="nope"), PROMPTS[:1], COMPLETIONS[:1])
    ids = [128000, 128006, 882, 128007, 271, 9906, 0, 128009]  # no assistant turn
    bad = armo.trl_reward_func(armorm, errors="none")
    assert bad.scorer is armorm
    # a conversation without an assistant header after the user turn cannot be gated
    out = call(bad, [[{"role": "user", "content": "a"}], PROMPTS[0]], [[], COMPLETIONS[0]])
    assert out[0] is None and out[1] == cli[0]["score"]
    with pytest.raises(armo.ArmoError, match="Token pattern not found"):
        call(armo.trl_reward_func(armorm), [[{"role": "user", "content": "a"}]], [[]])
    with pytest.raises(ValueError):
        call(armo.trl_reward_func(armorm), PROMPTS, COMPLETIONS[:1])
    del ids


def test_opens_a_path(tmp_path):
    f = armo.trl_reward_func(model_dir("tiny-armorm"), device="cpu", threads=1)
    assert isinstance(f.scorer, armo.RewardModel)
    cli = cli_score(tmp_path, "tiny-armorm", [{"prompt": PROMPTS[1], "response": COMPLETIONS[1]}])
    assert call(f, PROMPTS[1:], COMPLETIONS[1:]) == [cli[0]["score"]]
    f.scorer.close()


def test_through_a_server(tmp_path):
    canned = cli_score(tmp_path, "tiny-armorm",
                       [{"prompt": p, "response": c} for p, c in zip(PROMPTS, COMPLETIONS)])
    server = FakeServer()
    try:
        server.routes[("POST", "/score")] = lambda body: (200, canned)
        f = armo.trl_reward_func(server.url)
        assert isinstance(f.scorer, armo.Client)
        assert call(f, PROMPTS, COMPLETIONS) == [r["score"] for r in canned]
        assert json.loads(server.requests[-1][3]) == [
            {"prompt": p, "response": c} for p, c in zip(PROMPTS, COMPLETIONS)]
    finally:
        server.close()
