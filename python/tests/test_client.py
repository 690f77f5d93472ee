"""test_client.py — armo.Client against a fake `armo serve` (fake_server.py)
that answers as issue 14 specifies: the bodies the client sends are checked
key by key against the protocols (POST /score: the records of `armo score`;
/get_reward: OpenRLHF's {"query", "prompts", "labels"}; /classify: vLLM's
{"model", "input"}), and the answers, canned from `armo score`'s output on
the same records, come back as the same dataclasses RewardModel gives."""
import json

import pytest

import armo
from conftest import cli_score, example_records
from fake_server import FakeServer


@pytest.fixture()
def server():
    s = FakeServer()
    yield s
    s.close()


def sent(server, i=-1):
    method, path, headers, body = server.requests[i]
    return method, path, {k.lower(): v for k, v in headers.items()}, body


def test_score_sends_the_records(tmp_path, server, armorm):
    records = example_records()
    canned = cli_score(tmp_path, "tiny-armorm", records)
    server.routes[("POST", "/score")] = lambda body: (200, canned[:len(body)])
    c = armo.Client(server.url + "/")
    got = c.score_records(records)
    method, path, headers, body = sent(server)
    assert (method, path) == ("POST", "/score")
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers
    assert json.loads(body) == records  # the records, a list, nothing added
    assert got == canned
    # the dataclass calls build the same records as RewardModel's
    conv = records[0]["messages"]
    s = c.score(conv)
    assert json.loads(sent(server)[3]) == [{"messages": conv}]
    assert s.score == canned[0]["score"] and s.rewards == canned[0]["rewards"]
    local = armorm.score(conv)  # the canned answer carries the example's id; the rest agrees
    assert (s.score, s.rewards, s.gating, s.coefficients, s.tokens) == (
        local.score, local.rewards, local.gating, local.coefficients, local.tokens)


def test_pairs_and_best_of_n_bodies(tmp_path, server):
    pair = {"prompt": "p?", "chosen": "yes", "rejected": "no"}
    bon = {"messages": [{"role": "user", "content": "q?"}], "responses": ["a", "b", "c"]}
    canned = cli_score(tmp_path, "tiny-armorm", [pair, bon])
    server.routes[("POST", "/score")] = lambda body: (
        200, [canned[0] if "chosen" in r else canned[1] for r in body])
    c = armo.Client(server.url)
    p = c.score_pairs("p?", "yes", "no")
    assert json.loads(sent(server)[3]) == [pair]
    assert p.margin == canned[0]["margin"] and p.preferred == canned[0]["preferred"]
    b = c.best_of_n(bon["messages"], bon["responses"])
    assert json.loads(sent(server)[3]) == [bon]
    assert b.ranking == canned[1]["ranking"]


def test_get_reward_openrlhf(server):
    """OpenRLHF's remote_rm_fn posts {"query", "prompts", "labels"} and reads
    "rewards" (and "scores", "extra_logs")."""
    answer = {"rewards": [0.5, -1.25], "scores": [0.5, -1.25],
              "extra_logs": {"helpsteer-helpfulness": [0.1, 0.2]}}
    server.routes[("POST", "/get_reward")] = lambda body: (
        200, answer if body["query"] else {"rewards": []})
    c = armo.Client(server.url, api_key="s3cret")
    q = ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>", "x"]
    assert c.get_reward(q, prompts=["Hi", "y"], labels=["", ""]) == answer
    method, path, headers, body = sent(server)
    assert (method, path) == ("POST", "/get_reward")
    assert json.loads(body) == {"query": q, "prompts": ["Hi", "y"], "labels": ["", ""]}
    assert headers["authorization"] == "Bearer s3cret"
    assert c.get_reward([]) == {"rewards": []}
    assert json.loads(sent(server)[3]) == {"query": []}


def test_classify_vllm_shape(server):
    answer = {"id": "classify-1", "object": "list", "created": 0, "model": "armo",
              "data": [{"index": 0, "label": "score", "probs": [1.5], "num_classes": 1}],
              "usage": {"prompt_tokens": 9, "total_tokens": 9, "completion_tokens": 0}}
    server.routes[("POST", "/classify")] = lambda body: (200, answer)
    c = armo.Client(server.url, model="ArmoRM")
    assert c.classify("templated text") == answer
    assert json.loads(sent(server)[3]) == {"model": "ArmoRM", "input": ["templated text"]}
    c.classify(["a", "b"], model="m2")
    assert json.loads(sent(server)[3]) == {"model": "m2", "input": ["a", "b"]}


def test_health_and_models(server):
    server.routes[("GET", "/health")] = lambda body: (200, {"status": "ok"})
    server.routes[("GET", "/v1/models")] = lambda body: (
        200, {"object": "list", "data": [{"id": "armo", "object": "model"}]})
    c = armo.Client(server.url)
    assert c.health() == {"status": "ok"}
    assert c.models()["data"][0]["id"] == "armo"
    assert sent(server)[3] == b"" and sent(server)[0] == "GET"


def test_errors(server):
    server.routes[("POST", "/score")] = lambda body: (
        400, {"error": "record 0: \"messages\" must be a list"})
    c = armo.Client(server.url)
    with pytest.raises(armo.ArmoError, match=r"HTTP 400: record 0: \"messages\" must be a list"):
        c.score_records([{"messages": 5}])
    server.routes[("POST", "/score")] = lambda body: (503, {"error": {"message": "queue full"}})
    with pytest.raises(armo.ArmoError, match="HTTP 503: queue full"):
        c.score_records([{"prompt": "a", "response": "b"}])
    server.routes[("POST", "/score")] = lambda body: (200, [{"id": 1, "error": "line 1 (id 1): x"}])
    with pytest.raises(armo.ArmoError, match=r"line 1 \(id 1\): x"):
        c.score([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    url = server.url
    server.close()
    with pytest.raises(armo.ArmoError, match="cannot be reached"):
        armo.Client(url, timeout=5).health()
    server.httpd = type("Closed", (), {"shutdown": lambda s: None,
                                       "server_close": lambda s: None})()
