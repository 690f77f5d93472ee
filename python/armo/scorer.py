"""scorer.py — what RewardModel (in process) and Client (over HTTP) share:
turning conversations, pairs and best-of-N sets into the records of `armo
score`, and its result objects into dataclasses (results.py).  A subclass
provides score_records(list of record dicts) -> list of result dicts."""
from typing import Any, Dict, List, Sequence

from .results import parse

Message = Dict[str, Any]


def _is_conversation(x):
    """A list of {"role", "content"} messages (one conversation)."""
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(
        isinstance(m, dict) and "role" in m for m in x)


def conversation_record(conv):
    """The record of one conversation: a list of messages, or a record dict
    as `armo score` reads it (messages, prompt+response, input_ids)."""
    if isinstance(conv, dict):
        return conv
    if _is_conversation(conv):
        return {"messages": list(conv)}
    raise TypeError("a conversation is a list of {'role', 'content'} messages or a record dict, "
                    f"not {type(conv).__name__}")


def prompt_fields(prompt):
    """{"prompt": text} for a string, {"messages": [...]} for the messages of
    the conversation before the response(s)."""
    if isinstance(prompt, str):
        return {"prompt": prompt}
    if _is_conversation(prompt):
        return {"messages": list(prompt)}
    raise TypeError("a prompt is a string or a list of {'role', 'content'} messages, not "
                    f"{type(prompt).__name__}")


def _is_single_prompt(p):
    return isinstance(p, str) or _is_conversation(p)


class Scorer:
    """score / score_pairs / best_of_n over score_records."""

    def score_records(self, records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def _parsed(self, records, as_numpy, errors):
        return [parse(r, as_numpy, errors) for r in self.score_records(records)]

    def score(self, conversations, *, as_numpy=False, errors="raise"):
        """Scores one conversation (a list of {"role", "content"} messages,
        or a record dict) -> Score, or a list of them -> list of Score, in
        order.  A record that cannot be scored raises ArmoError with its
        message (errors="none": None in its place)."""
        if _is_conversation(conversations) or isinstance(conversations, dict):
            return self._parsed([conversation_record(conversations)], as_numpy, errors)[0]
        return self._parsed([conversation_record(c) for c in conversations], as_numpy, errors)

    def score_pairs(self, prompts, chosen, rejected, *, as_numpy=False, errors="raise"):
        """Pairs: prompts[i] (a string or the messages before the response)
        with responses chosen[i] and rejected[i] -> list of PairScore.  One
        prompt with two strings -> one PairScore."""
        if _is_single_prompt(prompts) and isinstance(chosen, str):
            return self.score_pairs([prompts], [chosen], [rejected], as_numpy=as_numpy,
                                    errors=errors)[0]
        if not len(prompts) == len(chosen) == len(rejected):
            raise ValueError(f"prompts, chosen and rejected differ in length: {len(prompts)}, "
                             f"{len(chosen)}, {len(rejected)}")
        records = [dict(prompt_fields(p), chosen=c, rejected=r)
                   for p, c, r in zip(prompts, chosen, rejected)]
        return self._parsed(records, as_numpy, errors)

    def best_of_n(self, prompts, responses, *, as_numpy=False, errors="raise"):
        """One prompt (a string or messages) and its candidate responses ->
        BestOfN (every score, the ranking, the best); a list of prompts and a
        list of response lists -> list of BestOfN."""
        if _is_single_prompt(prompts):
            return self.best_of_n([prompts], [responses], as_numpy=as_numpy, errors=errors)[0]
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} response lists")
        records = [dict(prompt_fields(p), responses=list(rs)) for p, rs in zip(prompts, responses)]
        return self._parsed(records, as_numpy, errors)

    def score_ids(self, input_ids: Sequence[Sequence[int]], *, as_numpy=False, errors="raise"):
        """Already templated and tokenized sequences (cut at the first pad id)
        -> list of Score."""
        records = [{"input_ids": [int(t) for t in ids]} for ids in input_ids]
        return self._parsed(records, as_numpy, errors)
