"""model.py — RewardModel: a reward model opened in this process through
libarmo (host/api/armo_api.h), scoring with the same code as `armo score`."""
import json

from ._lib import ArmoError, last_error, library, take_text
from .scorer import Scorer


class RewardModel(Scorer):
    """An ArmoRM or Llama-3 reward model checkpoint directory, opened once.

        rm = armo.RewardModel("path/to/ArmoRM-Llama3-8B-v0.1", device="auto")
        s = rm.score([{"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello!"}])
        s.score, s.rewards["helpsteer-helpfulness"], s.gating, s.coefficients

    device: "auto" (CUDA when libarmo has it and a GPU is visible, else the
    CPU), "cuda" or "cpu"; threads: tokenizer / CPU threads (0: all cores);
    max_batch_tokens: the packed batch's token budget (0: armo's default).
    Calls from several threads are served one at a time (the GIL is released
    while libarmo works)."""

    def __init__(self, path, device="auto", threads=0, max_batch_tokens=0):
        self._lib = library()
        self._h = None
        h = self._lib.armo_api_open(str(path).encode(), device.encode(), int(threads),
                                    int(max_batch_tokens))
        if not h:
            raise ArmoError(last_error(self._lib))
        self._h = h
        self.info = json.loads(take_text(self._lib, self._lib.armo_api_info(h)))
        self.objectives = self.info["objectives"]
        self.device = self.info["device"]

    def score_json(self, text):
        """The raw call: records as JSON text (one object or an array) -> the
        result JSON text `armo score` would write (an array for an array)."""
        if self._h is None:
            raise ArmoError("the model is closed")
        data = text.encode() if isinstance(text, str) else bytes(text)
        ptr = self._lib.armo_api_score(self._h, data, len(data))
        if not ptr:
            raise ArmoError(last_error(self._lib))
        return take_text(self._lib, ptr)

    def score_records(self, records):
        """Record dicts, as `armo score` reads them -> their result dicts, in
        order (a bad record: {"id", "error"})."""
        return json.loads(self.score_json(json.dumps(list(records), ensure_ascii=False)))

    def close(self):
        if self._h is not None:
            self._lib.armo_api_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return (f"RewardModel({self.info.get('model')!r}, arch={self.info.get('arch')}, "
                f"device={self.device!r})")
