"""client.py — Client: the same scoring calls as RewardModel, answered by a
running `armo serve` over HTTP (standard library only).

Endpoints (issue 14, shared/notes/protocols.md):
  POST /score       a list of `armo score` records -> their result objects
  POST /get_reward  OpenRLHF's remote reward model protocol:
                    {"query": [...], "prompts": [...], "labels": [...]}
                    -> {"rewards": [...], "scores": [...], "extra_logs": {...}}
  POST /classify    vLLM / SGLang style: {"model", "input": [...]}
  GET  /health, GET /v1/models"""
import json
import urllib.error
import urllib.request

from ._lib import ArmoError
from .scorer import Scorer


class Client(Scorer):
    """A running `armo serve`:

        c = armo.Client("http://127.0.0.1:8000")
        c.score(conversation).rewards, c.score_pairs(...), c.best_of_n(...)
        c.get_reward(["<|begin_of_text|>..."])["rewards"]

    api_key: sent as "Authorization: Bearer <key>" (armo serve --api-key);
    timeout: seconds per request (OpenRLHF's client uses 180)."""

    def __init__(self, url, api_key=None, timeout=180.0, model=None):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.model = model

    def _request(self, method, path, body=None):
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ArmoError(f"{method} {path}: HTTP {exc.code}: {_error_text(exc.read())}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ArmoError(f"{method} {path}: {self.url} cannot be reached: {exc}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ArmoError(f"{method} {path}: the answer is not JSON: {raw[:200]!r}") from None

    def score_records(self, records):
        """Record dicts -> their result dicts, in order (POST /score)."""
        out = self._request("POST", "/score", list(records))
        if not isinstance(out, list):
            raise ArmoError(f"POST /score: expected a list of results, got {str(out)[:200]}")
        return out

    def get_reward(self, queries, prompts=None, labels=None):
        """OpenRLHF's call: queries are prompt+response texts with the chat
        template already applied (special tokens as text).  Returns the
        answer: {"rewards": [...], "scores": [...], "extra_logs": {...}}."""
        body = {"query": list(queries)}
        if prompts is not None:
            body["prompts"] = list(prompts)
        if labels is not None:
            body["labels"] = list(labels)
        return self._request("POST", "/get_reward", body)

    def classify(self, inputs, model=None):
        """vLLM's /classify: templated texts -> the answer as it comes
        ({"data": [{"index", "probs", ...}], ...})."""
        body = {"model": model or self.model or "armo",
                "input": [inputs] if isinstance(inputs, str) else list(inputs)}
        return self._request("POST", "/classify", body)

    def health(self):
        return self._request("GET", "/health")

    def models(self):
        return self._request("GET", "/v1/models")

    def __repr__(self):
        return f"Client({self.url!r})"


def _error_text(raw):
    """The message of an error answer ({"error": "..."} or {"error": {"message"}})."""
    try:
        obj = json.loads(raw)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        if isinstance(err, dict) and "message" in err:
            err = err["message"]
        return err if isinstance(err, str) else json.dumps(err)
    except ValueError:
        return raw[:300].decode("utf-8", "replace")
